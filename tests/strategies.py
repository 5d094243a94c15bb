"""Hypothesis strategies for tiny allocation rounds (STYLE practice 12, property tests).

Values are drawn from small sets that sit on the rule boundaries of the default policy, so that
random rounds exercise the places where an off-by-one would hide:

- incomes around the Q1 threshold (10,656 EUR per CU for one adult, 15,984 for two adults) and
  around the PLAI / PLUS ceilings of categories 1 and 2;
- rents at exactly 33 % of the resources (495 of 1,500) and above it (400 of 1,200);
- seniority at 30 and 31 months (the +20 beyond the abnormally long delay);
- QPV and non-QPV units, units excluded from the flux (mutation, ANRU), two landlords;
- priority (DALO, L441-1 categories), State agents, private employees, social tenants, ANRU;
- explicit pools (one or two réservataires, never ``etat``, never empty: a non-priority household
  named in the État's pool, and an explicitly empty pool list, are known bugs tested on their
  own in tests/solver/test_reliability.py).

The rounds are small enough (at most 4 units x 6 demands) for a brute-force enumeration.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from hypothesis import strategies as st

from matching.flux import YearSoFar
from matching.policy.quotas import Tally
from tests.factories import ROUND_DATE, demand, demands_of, unit, units_of

# Annual incomes, by number of adults (1 CU, 1.5 CU), below the Q1 threshold and above it.
Q1_INCOMES = {1: (10655.0, 8000.0), 2: (15983.0, 8000.0)}
NON_Q1_INCOMES = {
    1: (10656.0, 12870.0, 12871.0, 15000.0, 23403.0, 23404.0),
    2: (15984.0, 18752.0, 18753.0, 31254.0, 31255.0),
}
SENIORITY_MONTHS = (0, 12, 30, 31, 60)
CATEGORIES = ((), ("violences",), ("habitat_indigne",))
EXPLICIT_POOLS = ("etat_agents", "collectivite", "action_logement", "bailleur")
RESERVATAIRES = ("etat", "etat_agents", "collectivite", "action_logement", "bailleur")

rarely = st.sampled_from((False, False, True))
"""A flag true one time in three (keeps the number of pools per household small)."""


def months_before_round(months: int) -> dt.date:
    """First filing date exactly ``months`` whole months before the round date (day 1)."""
    total = ROUND_DATE.year * 12 + (ROUND_DATE.month - 1) - months
    return dt.date(total // 12, total % 12 + 1, 1)


@st.composite
def units_tables(draw: st.DrawFn, max_units: int = 4, min_units: int = 2) -> pd.DataFrame:
    """A canonical units table of ``min_units`` to ``max_units`` units near the boundaries."""
    n = draw(st.integers(min_units, max_units))
    units = []
    for i in range(n):
        units.append(
            unit(
                f"U{i + 1}",
                bailleur=draw(st.sampled_from(("B1", "B2"))),
                commune_insee=draw(st.sampled_from(("14118", "14118", "14047"))),
                qpv=draw(st.booleans()),
                rooms=draw(st.sampled_from((2, 1, 2, 3))),
                surface_m2=draw(st.sampled_from((25.0, 45.0))),
                financing=draw(st.sampled_from(("PLAI", "PLUS"))),
                rent_eur=draw(st.sampled_from((300.0, 400.0, 495.0))),
                flux_excluded=draw(st.sampled_from(("", "", "", "", "", "mutation", "anru"))),
            )
        )
    return units_of(*units)


@st.composite
def demands_tables(
    draw: st.DrawFn, max_demands: int = 6, explicit_pools: bool = True, min_demands: int = 3
) -> pd.DataFrame:
    """A canonical demands table of ``min_demands`` to ``max_demands`` households."""
    n = draw(st.integers(min_demands, max_demands))
    demands = []
    for i in range(n):
        size = draw(st.sampled_from((1, 2)))
        adults = size if size == 1 else draw(st.sampled_from((1, 2)))
        incomes = (Q1_INCOMES if draw(st.booleans()) else NON_Q1_INCOMES)[adults]
        fields: dict[str, Any] = {
            "filed_on": months_before_round(draw(st.sampled_from(SENIORITY_MONTHS))),
            "household_size": size,
            "adults": adults,
            "children_under_14": size - adults,
            "dependants": size - adults,
            "single_parent": size > adults,
            "annual_income_eur": draw(st.sampled_from(incomes)),
            "monthly_resources_eur": draw(st.sampled_from((1500.0, 1500.0, 1200.0))),
            "wished_communes": draw(st.sampled_from(((), (), ("14118",)))),
            "dalo": draw(rarely),
            "priority_categories": draw(st.sampled_from(CATEGORIES)),
            "anru": draw(rarely),
            "state_agent": draw(rarely),
            "private_employee": draw(rarely),
            "current_social_tenant": draw(rarely),
        }
        if explicit_pools and draw(st.sampled_from((False, False, False, True))):
            fields["pools"] = tuple(
                draw(st.lists(st.sampled_from(EXPLICIT_POOLS), min_size=1, max_size=2, unique=True))
            )
        demands.append(demand(f"D{i + 1}", **fields))
    return demands_of(*demands)


@st.composite
def tiny_rounds(
    draw: st.DrawFn, max_units: int = 4, max_demands: int = 6, explicit_pools: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A round ``(units, demands)`` small enough to enumerate every allocation."""
    return draw(units_tables(max_units)), draw(demands_tables(max_demands, explicit_pools))


@st.composite
def earlier_orientations(draw: st.DrawFn) -> YearSoFar:
    """Earlier rounds' flux units and orientations only (shifts the bands; no quota tally)."""
    flux_units = draw(st.integers(0, 8))
    oriented: dict[str, int] = {}
    left = flux_units
    for res in RESERVATAIRES:
        k = draw(st.integers(0, left))
        if k:
            oriented[res] = k
        left -= k
    return YearSoFar(flux_units=flux_units, oriented=oriented)


@st.composite
def years_so_far(draw: st.DrawFn, rule_ids: tuple[str, ...]) -> YearSoFar:
    """Earlier rounds: orientations and, for some of the given quota rules, small tallies."""
    year = draw(earlier_orientations())
    tallies: dict[str, dict[str, Tally]] = {}
    for rule_id in rule_ids:
        if draw(st.booleans()):
            base = draw(st.integers(0, 4))
            tallies[rule_id] = {"": Tally(base=base, counted=draw(st.integers(0, base)))}
    return year.model_copy(update={"tallies": tallies})
