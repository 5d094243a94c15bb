"""Quota rules as counts: selection masks, tallies per scope group and exact integer shortfalls.

Shared by the solver (to build the quota rows from masks) and the independent checker (to count
what an allocation achieves). Both read the *same selection* of the policy but compute the
constraint separately: the solver as linear rows, the checker by counting.

A share target p/q is handled exactly in integers: a floor holds when q x counted >= p x base,
and its shortfall is the least number of extra counted allocations that would make it hold,
``ceil((p x base - q x counted) / q)``. Year-so-far tallies are added to both sides first (A4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from matching.policy.conditions import evaluate
from matching.policy.model import QuotaRule
from matching.types import Bound, Measure

NO_RESERVATAIRE = ""
"""Réservataire of an allocation of a unit excluded from the flux: it belongs to nobody (A4)."""


def _a_count(value: object) -> object:
    """Refuse a boolean or a text where a count is given (a year-so-far file, a mapping).

    Why: ``flux_units: true`` was read as 1 and ``counted: "12"`` as 12, where the policy and
    scenario files refuse both.
    """
    if isinstance(value, bool | np.bool_):
        raise ValueError("a count is a whole number, not a boolean")
    if isinstance(value, str):
        raise ValueError("a count is a whole number, not text")
    return value


Count = Annotated[int, BeforeValidator(_a_count)]
"""A number of units or allocations in the year so far."""


class Tally(BaseModel):
    """Allocations in a quota's base and how many of them count toward its target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: Count = Field(default=0, ge=0, description="Allocations selected by the rule's base")
    counted: Count = Field(default=0, ge=0, description="Those that also meet the rule's count")

    def __add__(self, other: Tally) -> Tally:
        return Tally(base=self.base + other.base, counted=self.counted + other.counted)


def allocation_frame(
    units: pd.DataFrame,
    demands: pd.DataFrame,
    unit_pos: np.ndarray,
    demand_pos: np.ndarray,
    reservataire: np.ndarray,
) -> pd.DataFrame:
    """One row per allocation with ``unit.*``, ``demand.*``, ``reservataire`` and ``in_flux``.

    ``demands`` must carry the derived facts (matching.facts). Positions index the tables' rows.
    """
    u = units.iloc[unit_pos].reset_index(drop=True).add_prefix("unit.")
    d = demands.iloc[demand_pos].reset_index(drop=True).add_prefix("demand.")
    frame = pd.concat([u, d], axis=1)
    frame["reservataire"] = np.asarray(reservataire, dtype=object)
    frame["in_flux"] = frame["unit.flux_excluded"].to_numpy() == ""
    return frame


def selection(rule: QuotaRule, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the rows in the rule's base and of those counted (a subset of the base)."""
    base = evaluate(rule.base, frame)
    counted = base & evaluate(rule.count, frame)
    return base, counted


def scope_keys(rule: QuotaRule, frame: pd.DataFrame) -> np.ndarray:
    """The scope group of each row as text ('' when the rule is EPCI-wide)."""
    if rule.scope is None:
        return np.full(len(frame), "", dtype=object)
    return frame[rule.scope].astype(str).to_numpy(dtype=object)


def possible_groups(
    rule: QuotaRule, units: pd.DataFrame, demands: pd.DataFrame, reservataires: tuple[str, ...]
) -> set[str]:
    """Every scope group that could take an allocation of the rule's base, allocated in or not.

    A count floor binds even on a group left empty, so these are judged. A group could take one
    when a unit of the round, through a réservataire it may go through (any, for a flux unit;
    none, ``""``, for a unit excluded from the flux), meets the base's ``unit.*``,
    ``reservataire`` and ``in_flux`` conditions; for a ``demand.*`` scope, when a household
    meets its ``demand.*`` conditions. Whether anyone eligible is there is not asked (a
    landlord whose only unit fits no household is judged, and misses the floor).

    Why the base: a floor of one DALO household on the QPV units of each landlord judged the
    landlord with no QPV unit in the round, and a floor per ``in_flux`` side the side with no
    unit: the round was infeasible whatever the households, every unit left vacant. Why
    ``""``: the solver judges every group its triples reach, that one too, so a soft round
    whose excluded unit stayed empty had a shortfall there the checker did not judge, and the
    self-check raised `CheckFailedError`.
    """
    scope = rule.scope
    if scope is None:
        return {""}
    if scope.startswith("demand."):
        if scope[7:] not in demands.columns:
            return set()
        conditions = [c for c in rule.base if c.field.startswith("demand.")]
        frame = pd.DataFrame({c.field: demands[c.field[7:]] for c in conditions})
        holds = evaluate(conditions, frame) if conditions else np.ones(len(demands), dtype=bool)
        return set(demands[scope[7:]][holds].astype(str).tolist())
    if scope.startswith("unit.") and scope[5:] not in units.columns:
        return set()
    conditions = [c for c in rule.base if not c.field.startswith("demand.")]
    options = _unit_options(units, reservataires, {scope, *(c.field for c in conditions)})
    holds = evaluate(conditions, options)
    return set(options[scope][holds].astype(str).tolist())


def _unit_options(
    units: pd.DataFrame, reservataires: tuple[str, ...], fields: set[str]
) -> pd.DataFrame:
    """One row per unit and réservataire it may go through, with the ``fields`` asked.

    A flux unit has a row per réservataire, a unit excluded from the flux one row with none
    (``""``); the columns are ``unit.*``, ``reservataire`` and ``in_flux``.
    """
    in_flux = units["flux_excluded"].astype(str).to_numpy(dtype=object) == ""
    per_unit = np.where(in_flux, max(1, len(reservataires)), 1)
    rows = np.repeat(np.arange(len(units)), per_unit)
    flux_res = np.array(list(reservataires) or [NO_RESERVATAIRE], dtype=object)
    starts = np.repeat(np.cumsum(per_unit) - per_unit, per_unit)
    res = np.where(
        in_flux[rows],
        flux_res[(np.arange(len(rows)) - starts) % len(flux_res)],
        NO_RESERVATAIRE,
    )
    frame: dict[str, object] = {}
    for name in fields:
        if name == "reservataire":
            frame[name] = res
        elif name == "in_flux":
            frame[name] = in_flux[rows]
        else:
            frame[name] = units[name[5:]].to_numpy()[rows]
    return pd.DataFrame(frame, index=pd.RangeIndex(len(rows)))


def tally(rule: QuotaRule, frame: pd.DataFrame) -> dict[str, Tally]:
    """Count base and counted allocations of ``frame`` per scope group, in sorted group order."""
    base, counted = selection(rule, frame)
    keys = scope_keys(rule, frame)
    out: dict[str, Tally] = {}
    for key in sorted(set(keys[base].tolist())):
        in_group = keys == key
        out[key] = Tally(base=int((base & in_group).sum()), counted=int((counted & in_group).sum()))
    return out


def shortfall(rule: QuotaRule, total: Tally) -> int:
    """Least number of allocations by which ``total`` misses the rule (0 when it holds).

    For a floor: extra counted allocations needed; for a ceiling: counted allocations too many.
    """
    if rule.measure == Measure.COUNT:
        target = int(rule.target)
        gap = target - total.counted if rule.bound == Bound.FLOOR else total.counted - target
        return max(0, gap)
    frac = rule.target_fraction()
    p, q = frac.numerator, frac.denominator
    if rule.bound == Bound.FLOOR:
        excess = p * total.base - q * total.counted
    else:
        excess = q * total.counted - p * total.base
    return max(0, -(-excess // q))


@dataclass(frozen=True)
class QuotaStatus:
    """How one scope group of one rule stands: totals including the year so far, and shortfall."""

    rule_id: str
    scope: str
    total: Tally
    shortfall: int

    @property
    def rate(self) -> float | None:
        """Counted share of the base (None when the base is empty)."""
        return self.total.counted / self.total.base if self.total.base else None
