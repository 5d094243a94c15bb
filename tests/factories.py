"""Builders of tiny hand-made instances for tests: a unit or demand with sensible defaults.

Defaults describe an ordinary case (a T2 PLUS unit in Caen at 400 EUR, a single adult earning
15,000 EUR a year, filed 12 months before the 2026-03-31 round), so that each test states only the
fields it is about.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from matching.domain import Demand, Unit
from matching.frames import demands_frame, units_frame

ROUND_DATE = dt.date(2026, 3, 31)


def unit(unit_id: str = "U1", **overrides: Any) -> Unit:
    """A unit with defaults: T2 PLUS in Caen, 45 m2, 400 EUR, outside QPV, in the flux."""
    base: dict[str, Any] = {
        "unit_id": unit_id, "bailleur": "B1", "commune_insee": "14118", "qpv": False,
        "rooms": 2, "surface_m2": 45.0, "financing": "PLUS", "rent_eur": 400.0,
        "accessible": False, "flux_excluded": "", "released_on": dt.date(2026, 3, 1),
    }  # fmt: skip
    base.update(overrides)
    return Unit.model_validate(base)


def demand(demand_id: str = "D1", **overrides: Any) -> Demand:
    """A demand with defaults: one adult, 15,000 EUR/year, 1,500 EUR/month, no priority."""
    base: dict[str, Any] = {
        "demand_id": demand_id, "filed_on": dt.date(2025, 3, 31), "household_size": 1,
        "adults": 1, "children_under_14": 0, "dependants": 0, "disabled_member": False,
        "young_couple": False, "annual_income_eur": 15000.0, "monthly_resources_eur": 1500.0,
        "housing_benefit_eur": 0.0, "wished_communes": (), "needs_accessible": False,
        "dalo": False, "priority_categories": (), "anru": False, "state_agent": False,
        "private_employee": False, "resident_commune_insee": "14118",
        "current_social_tenant": False,
    }  # fmt: skip
    base.update(overrides)
    return Demand.model_validate(base)


def units_of(*units: Unit) -> pd.DataFrame:
    """Canonical units table of the given units."""
    return units_frame(units)


def demands_of(*demands: Demand) -> pd.DataFrame:
    """Canonical demands table of the given demands."""
    return demands_frame(demands)
