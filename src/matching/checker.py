"""The independent checker: judge any allocation against the policy, without the solver.

An allocation (made by `matching.solver` or by people) is re-judged from the policy and the raw
tables alone: eligibility is re-evaluated from the predicates of `matching.eligibility`, pools from
the réservataires' conditions (or the demand's explicit ``pools``), quotas are counted with
`matching.policy.quotas`, flux bands with `matching.flux`, and each objective stage is recomputed
from the cotation grid. Nothing here imports ``ortools`` or ``matching.solver``: a bug in the model
builder cannot hide itself by being shared with its audit (STYLE practice 7).

Each finding is a `Violation` with a stable rule id, the unit and demand involved and the numbers
that decide it, so that a commission can read it without a traceback (STYLE practice 8). The
checks, with their rule ids:

- ``unknown_unit`` / ``unknown_demand``: an allocation row names an id absent from the round;
- ``one_household_per_unit`` / ``one_unit_per_household``: a unit or a demand allocated twice;
- each eligibility rule id (``income_ceiling``, ``typology``, ...): an allocated pair fails it (A2);
- ``pool``: a flux unit allocated through an unknown réservataire, or to a household outside its
  pool (A3; a pool condition on ``priority`` holds whatever an explicit ``pools`` list says);
- ``state_priority_only``: an allocation through a réservataire whose pool is "priority households
  only" (the État's) to a non-priority household, even when an explicit ``pools`` list let it in;
- ``flux_exclusion_reservataire``: an excluded unit allocated through a réservataire, or a flux unit
  allocated without one (A3, A4);
- ``orientation``: every flux unit oriented exactly once, to a known réservataire, no excluded unit
  oriented, each allocation through its unit's orientation;
- ``flux_band``: orientation counts within the round's bands (the landlord is unconstrained; A4);
- each quota rule id: the rule's shortfall, per scope group, year so far included (hard mode only;
  in soft mode the exact shortfall is reported in `Audit.quotas`, not as a violation).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matching.arguments import round_arguments
from matching.domain import Demand, Unit
from matching.eligibility import (
    demand_pools,
    eur_above,
    income_ceiling_eur,
    minimum_surface_m2,
    pair_failures,
    typology_rooms,
)
from matching.exceptions import CheckFailedError, DataError, RowProblem
from matching.facts import derive_facts
from matching.flux import FluxBand, YearSoFar, flux_bands
from matching.io import round_table
from matching.policy.conditions import Condition, evaluate
from matching.policy.model import Policy, QuotaRule
from matching.policy.quotas import (
    NO_RESERVATAIRE,
    QuotaStatus,
    Tally,
    allocation_frame,
    possible_groups,
    scope_keys,
    selection,
    shortfall,
)
from matching.policy.scoring import score
from matching.types import (
    Bound,
    DemandId,
    FluxExclusion,
    Measure,
    QuotaMode,
    RuleId,
    Stage,
    UnitId,
)

Number = int | float | str
"""A value shown with a violation: a count, an amount or a short text (an id, a list of ids)."""

UNKNOWN_UNIT: RuleId = "unknown_unit"
UNKNOWN_DEMAND: RuleId = "unknown_demand"
ONE_HOUSEHOLD_PER_UNIT: RuleId = "one_household_per_unit"
ONE_UNIT_PER_HOUSEHOLD: RuleId = "one_unit_per_household"
POOL: RuleId = "pool"
STATE_PRIORITY_ONLY: RuleId = "state_priority_only"
FLUX_EXCLUSION_RESERVATAIRE: RuleId = "flux_exclusion_reservataire"
ORIENTATION: RuleId = "orientation"
FLUX_BAND: RuleId = "flux_band"

STRUCTURAL_RULES: tuple[RuleId, ...] = (
    UNKNOWN_UNIT,
    UNKNOWN_DEMAND,
    ONE_HOUSEHOLD_PER_UNIT,
    ONE_UNIT_PER_HOUSEHOLD,
    POOL,
    STATE_PRIORITY_ONLY,
    FLUX_EXCLUSION_RESERVATAIRE,
    ORIENTATION,
    FLUX_BAND,
)
"""Rule ids of the checks that are not eligibility rules nor quota rules of the policy."""

ALLOCATION_COLUMNS: tuple[str, ...] = ("unit_id", "demand_id", "reservataire")
"""Columns an allocation table must have (others, such as ``score``, are ignored)."""

ORIENTATION_COLUMNS: tuple[str, ...] = ("unit_id", "reservataire")
"""Columns an orientation table must have: one row per flux unit of the round."""

_PRIORITY_ONLY = Condition(field="priority", op="eq", value=True)
"""A pool condition that makes a réservataire's allocations priority-only (the État's, A3)."""


@dataclass(frozen=True)
class Violation:
    """One breach of a rule by an allocation, with the entities and numbers that decide it.

    Attributes
    ----------
    rule_id
        Stable id: an eligibility rule, a quota rule or one of `STRUCTURAL_RULES`.
    message
        The breach in words, with the values (e.g. income against ceiling).
    unit_id
        Unit involved, or None for a rule about a set of allocations (a quota, a band).
    demand_id
        Demand involved, or None.
    numbers
        The values that decide the breach, by name (counts, amounts, targets, ids).
    """

    rule_id: RuleId
    message: str
    unit_id: UnitId | None = None
    demand_id: DemandId | None = None
    numbers: dict[str, Number] = field(default_factory=dict)

    def __str__(self) -> str:
        who = []
        if self.unit_id is not None:
            who.append(f"unit {self.unit_id}")
        if self.demand_id is not None:
            who.append(f"demand {self.demand_id}")
        where = f" ({', '.join(who)})" if who else ""
        nums = ", ".join(f"{k}={_show(v)}" for k, v in self.numbers.items())
        return f"[{self.rule_id}]{where} {self.message}" + (f" [{nums}]" if nums else "")


def group_label(group: str, scope_field: str | None) -> str:
    """A quota rule's scope group as printed: ``''`` only for an EPCI-wide rule.

    The group ``''`` of a scoped rule is named: ``(no réservataire)`` for the units excluded
    from the flux under a ``reservataire`` scope, ``(<field> empty)`` otherwise.
    """
    if scope_field is None or group:
        return group
    if scope_field == "reservataire":
        return "(no réservataire)"
    return f"({scope_field} empty)"


@dataclass(frozen=True)
class QuotaOutcome:
    """How one scope group of one quota rule stands after the round, year so far included.

    Attributes
    ----------
    rule_id, label
        The rule.
    scope
        The scope group (``''`` for an EPCI-wide rule).
    bound, measure, target
        The rule's direction, measure and target (a share in [0, 1] or a count).
    weight
        Penalty per unit of shortfall in soft mode.
    round
        Base and counted allocations of this round.
    prior
        Base and counted allocations of earlier rounds of the year (`YearSoFar.tallies`).
    scope_field
        The rule's ``scope`` (None for an EPCI-wide rule): with it, ``''`` is a group of its
        own (``reservataire``: the units excluded from the flux), not the EPCI.
    limit
        Counted allocations the total base needs (floor) or allows (ceiling), rounded the way
        the rule reads: ``ceil(target x base)`` for a share floor, ``floor(target x base)`` for a
        share ceiling, the target itself for a count.
    status
        Totals and exact shortfall, as computed by `matching.policy.quotas.shortfall`.
    """

    rule_id: RuleId
    label: str
    scope: str
    bound: Bound
    measure: Measure
    target: float
    weight: int
    round: Tally
    prior: Tally
    limit: int
    status: QuotaStatus
    scope_field: str | None = None

    @property
    def group_label(self) -> str:
        """The scope group as printed: ``''`` for an EPCI-wide rule, else never empty.

        Why: the group ``''`` of a rule scoped by ``reservataire`` (the units excluded from the
        flux) printed as an EPCI-wide row ('-', or no group at all), beside the réservataires'.
        """
        return group_label(self.scope, self.scope_field)

    @property
    def total(self) -> Tally:
        """Round plus year so far."""
        return self.status.total

    @property
    def shortfall(self) -> int:
        """Least number of allocations by which the rule is missed (0 when it holds)."""
        return self.status.shortfall

    @property
    def rate(self) -> float | None:
        """Counted share of the base, year so far included (None when the base is empty)."""
        return self.status.rate


@dataclass(frozen=True)
class Audit:
    """Everything the checker found about one allocation.

    Attributes
    ----------
    violations
        Every violation, in check order (structure, eligibility, pools, orientation, bands,
        quotas), rows in allocation order.
    quotas
        Every quota rule's outcome per scope group, in policy then group order (both modes).
    stages
        Recomputed value of each objective stage of the policy, in stage order.
    counts
        Sizes: units, flux and excluded units, demands, allocation rows, units and demands
        allocated, rows with unknown ids.
    mode
        Quota mode of the policy (hard: shortfalls are violations; soft: reported only).
    """

    violations: tuple[Violation, ...]
    quotas: tuple[QuotaOutcome, ...]
    stages: dict[Stage, int]
    counts: dict[str, int]
    mode: QuotaMode

    @property
    def ok(self) -> bool:
        """True when there is no violation."""
        return not self.violations

    def shortfalls(self) -> tuple[QuotaOutcome, ...]:
        """Quota outcomes with a shortfall (violations in hard mode, penalties in soft mode)."""
        return tuple(q for q in self.quotas if q.shortfall > 0)

    def raise_if_violations(self, what: str = "allocation") -> None:
        """Raise CheckFailedError listing the violations (used by the solver on its own result)."""
        if self.violations:
            raise CheckFailedError(
                f"the independent checker found {len(self.violations)} violation(s) "
                f"in the {what}:\n" + render_violations(self.violations)
            )


UnitsTable = pd.DataFrame | Sequence[Unit] | Sequence[Mapping[str, Any]]
"""The units in any form `matching.round.solve` takes."""
DemandsTable = pd.DataFrame | Sequence[Demand] | Sequence[Mapping[str, Any]]
"""The demands in any form `matching.round.solve` takes."""
Rows = pd.DataFrame | Sequence[Mapping[str, Any]]
"""An allocation or orientation table: a DataFrame or a list of rows as mappings."""


# ----------------------------------------------------------------------------------------------
# Input normalisation
# ----------------------------------------------------------------------------------------------


def _text(column: pd.Series) -> np.ndarray:
    """Return a column as stripped Python strings, missing values as ''."""
    values = column.astype(object).where(column.notna(), "")
    return np.array([str(v).strip() for v in values], dtype=object)


def _blank_cell(value: object) -> bool:
    """True for a missing cell or one of spaces only."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def normalise_table(frame: Rows, columns: tuple[str, ...], source: str) -> pd.DataFrame:
    """Keep ``columns`` of an allocation or orientation table as text, or refuse it.

    A table read from a file made by people may carry missing cells or numbers for ids; they are
    compared as text, the réservataire of an excluded unit being ``''``. A list of rows as
    mappings is taken as the table of those rows, as the units and demands are; anything else
    is a TypeError naming the table (it was an AttributeError on ``.columns``).
    """
    if not isinstance(frame, pd.DataFrame):
        rows = list(frame) if isinstance(frame, Sequence) and not isinstance(frame, str) else None
        if rows is None or not all(isinstance(r, Mapping) for r in rows):
            raise TypeError(
                f"{source}: a DataFrame or a list of rows as mappings, not {type(frame).__name__}"
            )
        frame = pd.DataFrame(rows, columns=list(columns) if not rows else None)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError([RowProblem(source, None, c, "", "missing column") for c in missing])
    # a name given twice (`reservataire` and `reservataire `, stripped alike) is ambiguous:
    # which of the two is the table's? (it raised a ValueError deep in pandas)
    names = pd.Index(frame.columns)
    repeated = [c for c in columns if (names == c).sum() > 1]
    if repeated:
        reason = "column appears more than once"
        raise DataError([RowProblem(source, None, c, "", reason) for c in repeated])
    table = pd.DataFrame({c: _text(frame[c]) for c in columns}).reset_index(drop=True)
    # a blank line (an editor's or a spreadsheet's, often at the end) is the file's problem,
    # as in the units and demands: it was judged as an allocation of unit '' to demand '',
    # exit code 1 and one more allocation counted. Only rows with an empty first column are
    # looked at, so a valid table costs nothing
    suspects = np.flatnonzero(table[columns[0]].to_numpy() == "")
    blank = [int(i) for i in suspects if all(_blank_cell(v) for v in frame.iloc[i])]
    if blank:
        reason = "a blank line: every field is empty (remove it)"
        raise DataError([RowProblem(source, i + 1, "", "", reason) for i in blank])
    return table


def _positions(wanted: np.ndarray, ids: pd.Series) -> np.ndarray:
    """Row position in ``ids`` of each wanted id (first occurrence), -1 when absent.

    Ids are compared as text. A column that is already all ``str`` with no repeat (every table
    the library makes) is hashed once and looked up as it is: 1.4 ms instead of 9.6 ms for
    17,000 demands (the simulated year resolves 135 allocation tables, two columns each).
    """
    values = ids.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=False) != "string":
        values = ids.astype(str).to_numpy(dtype=object)
    index = pd.Index(values, dtype=object, copy=False)
    if index.is_unique:
        return index.get_indexer(pd.Index(wanted, dtype=object)).astype(np.int64)
    first = ~index.duplicated()
    found = index[first].get_indexer(pd.Index(wanted))
    rows = np.flatnonzero(first)
    return np.where(found >= 0, rows[np.maximum(found, 0)], -1).astype(np.int64)


@dataclass(frozen=True)
class ResolvedAllocation:
    """An allocation table resolved against the round: text columns and row positions.

    Attributes
    ----------
    unit_id, demand_id, reservataire
        The table's columns as text (object arrays), in row order.
    unit_pos, demand_pos
        Row position of each unit and demand in the round's tables, -1 when the id is unknown.
    """

    unit_id: np.ndarray
    demand_id: np.ndarray
    reservataire: np.ndarray
    unit_pos: np.ndarray
    demand_pos: np.ndarray

    @property
    def known(self) -> np.ndarray:
        """Rows whose unit and demand both belong to the round."""
        return (self.unit_pos >= 0) & (self.demand_pos >= 0)

    def only(self, mask: np.ndarray) -> ResolvedAllocation:
        """Keep the rows selected by a boolean mask."""
        return ResolvedAllocation(
            self.unit_id[mask],
            self.demand_id[mask],
            self.reservataire[mask],
            self.unit_pos[mask],
            self.demand_pos[mask],
        )


def resolve_allocation(
    units: pd.DataFrame,
    demands: pd.DataFrame,
    allocation: Rows,
) -> ResolvedAllocation:
    """Resolve an allocation table's ids to row positions of the round's units and demands.

    Raises
    ------
    DataError
        When a column of `ALLOCATION_COLUMNS` is missing.
    """
    table = normalise_table(allocation, ALLOCATION_COLUMNS, "allocation")
    unit_id = table["unit_id"].to_numpy(dtype=object)
    demand_id = table["demand_id"].to_numpy(dtype=object)
    return ResolvedAllocation(
        unit_id=unit_id,
        demand_id=demand_id,
        reservataire=table["reservataire"].to_numpy(dtype=object),
        unit_pos=_positions(unit_id, units["unit_id"]),
        demand_pos=_positions(demand_id, demands["demand_id"]),
    )


def _flux_mask(units: pd.DataFrame) -> np.ndarray:
    """Return True for the units in the flux (``flux_excluded`` empty)."""
    return _text(units["flux_excluded"]) == ""


# ----------------------------------------------------------------------------------------------
# Quotas and objective (shared with matching.kpis and the solver's self-check)
# ----------------------------------------------------------------------------------------------


def _limit(rule: QuotaRule, base: int) -> int:
    if rule.measure == Measure.COUNT:
        return int(rule.target)
    frac = rule.target_fraction()
    p, q = frac.numerator, frac.denominator
    if rule.bound == Bound.FLOOR:
        return -(-(p * base) // q)
    return (p * base) // q


def _groups(
    rule: QuotaRule,
    keys: np.ndarray,
    base: np.ndarray,
    year: YearSoFar,
    units: pd.DataFrame,
    demands: pd.DataFrame,
    policy: Policy,
) -> list[str]:
    """Scope groups judged for a rule, sorted.

    Groups with allocations in the base this round or earlier are judged. An empty group cannot
    miss a share floor nor any ceiling, but it misses a count floor by its whole target, so for
    count floors every possible group is judged too; an EPCI-wide rule is always judged.
    """
    groups = set(keys[base].tolist()) | set(year.tallies.get(rule.id, {}))
    if rule.scope is None:
        groups.add("")
    if rule.measure == Measure.COUNT and rule.bound == Bound.FLOOR:
        groups |= possible_groups(rule, units, demands, policy.reservataire_ids())
    return sorted(groups)


def _quota_outcomes(
    units: pd.DataFrame,
    demands_with_facts: pd.DataFrame,
    policy: Policy,
    rows: ResolvedAllocation,
    year: YearSoFar,
) -> list[QuotaOutcome]:
    frame = allocation_frame(
        units, demands_with_facts, rows.unit_pos, rows.demand_pos, rows.reservataire
    )
    outcomes = []
    for rule in policy.quotas.rules:
        base, counted = selection(rule, frame)
        keys = scope_keys(rule, frame)
        for group in _groups(rule, keys, base, year, units, demands_with_facts, policy):
            in_group = keys == group
            this_round = Tally(
                base=int((base & in_group).sum()), counted=int((counted & in_group).sum())
            )
            prior = year.tally(rule.id, group)
            total = this_round + prior
            status = QuotaStatus(rule.id, group, total, shortfall(rule, total))
            outcomes.append(
                QuotaOutcome(
                    rule_id=rule.id,
                    label=rule.label,
                    scope=group,
                    bound=rule.bound,
                    measure=rule.measure,
                    target=rule.target,
                    weight=rule.weight,
                    round=this_round,
                    prior=prior,
                    limit=_limit(rule, total.base),
                    status=status,
                    scope_field=rule.scope,
                )
            )
    return outcomes


def quota_outcomes(
    units: pd.DataFrame,
    demands_with_facts: pd.DataFrame,
    policy: Policy,
    allocation: pd.DataFrame,
    year_so_far: YearSoFar | None = None,
) -> list[QuotaOutcome]:
    """Every quota rule's outcome per scope group, counting the allocation and the year so far.

    Rows naming an unknown unit or demand are left out (the checker reports them).

    Parameters
    ----------
    units, demands_with_facts
        The round's tables, demands with the derived facts of `matching.facts.derive_facts`.
    policy
        The policy whose ``quotas.rules`` are judged.
    allocation
        Columns ``unit_id``, ``demand_id``, ``reservataire``.
    year_so_far
        Tallies of earlier rounds, added per (rule, scope group) before judging.
    """
    rows = resolve_allocation(units, demands_with_facts, allocation)
    rows = rows.only(rows.known)
    return _quota_outcomes(units, demands_with_facts, policy, rows, year_so_far or YearSoFar())


def _stage_values(
    demands_with_facts: pd.DataFrame,
    policy: Policy,
    rows: ResolvedAllocation,
    outcomes: list[QuotaOutcome],
) -> dict[Stage, int]:
    if policy.quotas.mode == QuotaMode.SOFT:
        penalty = sum(o.weight * o.shortfall for o in outcomes)
    else:
        penalty = 0
    allocated = demands_with_facts.iloc[rows.demand_pos]
    total_score = int(score(allocated, policy.cotation).total.sum()) if len(allocated) else 0
    values = {
        Stage.SHORTFALL: int(penalty),
        Stage.ALLOCATIONS: len(rows.demand_pos),
        Stage.SCORE: total_score,
    }
    return {stage: values[stage] for stage in policy.objective.stages}


def objective_values(
    units: pd.DataFrame,
    demands_with_facts: pd.DataFrame,
    policy: Policy,
    allocation: pd.DataFrame,
    year_so_far: YearSoFar | None = None,
) -> dict[Stage, int]:
    """Recompute each objective stage of the policy for an allocation (DOMAIN A5).

    ``shortfall`` is the sum over quota rules and scope groups of weight x shortfall (always 0 in
    hard mode, where a shortfall is a violation rather than a cost); ``allocations`` the number of
    allocation rows; ``score`` the sum of the cotation scores of the allocated households, from
    the policy's grid. The solver compares its own stage values with these.

    Returns
    -------
    dict[Stage, int]
        One value per stage of ``policy.objective.stages``, in that order.
    """
    rows = resolve_allocation(units, demands_with_facts, allocation)
    rows = rows.only(rows.known)
    outcomes = _quota_outcomes(units, demands_with_facts, policy, rows, year_so_far or YearSoFar())
    return _stage_values(demands_with_facts, policy, rows, outcomes)


# ----------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------


def _show(value: Number) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _digits_above(value: float, limit: float) -> int:
    """Decimals (4 at least) that show ``value`` above ``limit``: 0.330006 is not '0.3300'."""
    for digits in range(4, 16):
        if round(value, digits) > limit:
            return digits
    return 16


def _join(items: Iterable[object]) -> str:
    return ", ".join(str(i) for i in items)


def _check_known(rows: ResolvedAllocation) -> list[Violation]:
    out = []
    for i in np.flatnonzero(rows.unit_pos < 0):
        out.append(
            Violation(
                UNKNOWN_UNIT,
                f"allocation row {i + 1} names unit '{rows.unit_id[i]}', not a unit of the round",
                unit_id=str(rows.unit_id[i]),
                demand_id=str(rows.demand_id[i]),
                numbers={"row": int(i + 1)},
            )
        )
    for i in np.flatnonzero(rows.demand_pos < 0):
        out.append(
            Violation(
                UNKNOWN_DEMAND,
                f"allocation row {i + 1} names demand '{rows.demand_id[i]}', "
                "not a demand of the round",
                unit_id=str(rows.unit_id[i]),
                demand_id=str(rows.demand_id[i]),
                numbers={"row": int(i + 1)},
            )
        )
    return out


def _check_one_to_one(rows: ResolvedAllocation) -> list[Violation]:
    out = []
    for ids, others, rule, what, other in (
        (rows.unit_id, rows.demand_id, ONE_HOUSEHOLD_PER_UNIT, "unit", "demands"),
        (rows.demand_id, rows.unit_id, ONE_UNIT_PER_HOUSEHOLD, "demand", "units"),
    ):
        series = pd.Series(ids)
        counts = series.value_counts(sort=False)
        for key in series[series.duplicated(keep="first")].drop_duplicates():
            linked = others[ids == key].tolist()
            out.append(
                Violation(
                    rule,
                    f"{what} {key} is allocated {int(counts[key])} times (to {_join(linked)})",
                    unit_id=str(key) if what == "unit" else None,
                    demand_id=str(key) if what == "demand" else None,
                    numbers={"allocations": int(counts[key]), other: _join(linked)},
                )
            )
    return out


Details = list[tuple[str, dict[str, Number]]]
"""Message and numbers of each failing pair of one rule."""


def _describe_failures(
    rule_id: RuleId,
    policy: Policy,
    units: pd.DataFrame,
    demands: pd.DataFrame,
    u_idx: np.ndarray,
    d_idx: np.ndarray,
) -> Details:
    """Say, in words and numbers, why each of these allocated pairs fails one eligibility rule.

    The verdict comes from `matching.eligibility.pair_failures`; this only gathers what a reader
    needs to see why, with the policy parameters read through the same helpers. Columns are read
    once per rule for all its failing pairs, so a file with thousands of errors stays fast.
    """

    def col(frame: pd.DataFrame, name: str, idx: np.ndarray) -> list[Any]:
        return frame[name].to_numpy(dtype=object)[idx].tolist()

    n = len(u_idx)
    if rule_id == "income_ceiling":
        cats = demands["category"].to_numpy(dtype=np.int64)[d_idx]
        fins = np.array([str(f) for f in col(units, "financing", u_idx)], dtype=object)
        ceilings = income_ceiling_eur(cats, fins, policy).tolist() if n else []
        incomes = col(demands, "annual_income_eur", d_idx)
        return [
            (
                f"income {eur_above(float(inc), ceil)} EUR/year above the {fin} ceiling "
                f"{ceil:,} EUR for household category {int(cat)}",
                {
                    "annual_income_eur": float(inc),
                    "ceiling_eur": int(ceil),
                    "category": int(cat),
                    "financing": str(fin),
                },
            )
            for inc, ceil, cat, fin in zip(incomes, ceilings, cats.tolist(), fins, strict=True)
        ]
    if rule_id in ("typology", "surface"):
        sizes = demands["household_size"].to_numpy(dtype=np.int64)[d_idx]
        if rule_id == "typology":
            lo, hi = typology_rooms(sizes, policy)
            rooms = col(units, "rooms", u_idx)
            return [
                (
                    f"T{int(r)} outside T{int(a)}-T{int(b)} admissible for {int(z)} person(s)",
                    {
                        "rooms": int(r),
                        "min_rooms": int(a),
                        "max_rooms": int(b),
                        "household_size": int(z),
                    },
                )
                for r, a, b, z in zip(rooms, lo.tolist(), hi.tolist(), sizes.tolist(), strict=True)
            ]
        need = minimum_surface_m2(sizes, policy).tolist()
        surface = col(units, "surface_m2", u_idx)
        return [
            (
                f"{float(m2):g} m2 below the {float(k):g} m2 minimum for {int(z)} person(s)",
                {"surface_m2": float(m2), "minimum_m2": float(k), "household_size": int(z)},
            )
            for m2, k, z in zip(surface, need, sizes.tolist(), strict=True)
        ]
    if rule_id == "rent_effort":
        limit = policy.eligibility.rent_effort.max_ratio
        out: Details = []
        for rent, benefit, resources in zip(
            col(units, "rent_eur", u_idx),
            col(demands, "housing_benefit_eur", d_idx),
            col(demands, "monthly_resources_eur", d_idx),
            strict=True,
        ):
            rent, benefit, resources = float(rent), float(benefit), float(resources)
            net = rent - benefit
            effort = net / resources if resources > 0 else (math.inf if net > 0 else 0.0)
            finite = math.isfinite(effort)
            digits = _digits_above(effort, limit) if finite else 4
            shown = f"{effort:.{digits}f}" if finite else "infinite (no resources)"
            out.append(
                (
                    f"rent effort {shown} above {limit:g}: (rent {rent:g} - benefit {benefit:g}) "
                    f"/ resources {resources:g} EUR/month",
                    {
                        "rent_eur": rent,
                        "housing_benefit_eur": benefit,
                        "monthly_resources_eur": resources,
                        "effort": round(effort, digits) if finite else "inf",
                        "max_ratio": limit,
                    },
                )
            )
        return out
    if rule_id == "location":
        return [
            (
                f"unit in commune {c}, not among the wished communes ({_join(w)})",
                {"commune_insee": str(c), "wished_communes": _join(w)},
            )
            for c, w in zip(
                col(units, "commune_insee", u_idx),
                col(demands, "wished_communes", d_idx),
                strict=True,
            )
        ]
    if rule_id == "accessibility":
        return [
            (
                "the household needs an adapted (PMR) unit and the unit is not adapted",
                {"needs_accessible": "true", "accessible": "false"},
            )
            for _ in range(n)
        ]
    if rule_id == "flux_exclusion":
        out = []
        for reason in col(units, "flux_excluded", u_idx):
            conds = policy.flux.exclusions.get(FluxExclusion(str(reason)), ())
            wanted = " and ".join(c.describe() for c in conds) or "(none)"
            out.append(
                (
                    f"unit excluded from the flux ({reason}) may only go to households with "
                    f"{wanted}",
                    {"flux_excluded": str(reason), "requires": wanted},
                )
            )
        return out
    return [(f"the pair fails eligibility rule {rule_id}", {}) for _ in range(n)]


def _check_eligibility(
    units: pd.DataFrame, demands: pd.DataFrame, policy: Policy, rows: ResolvedAllocation
) -> list[Violation]:
    """Re-evaluate every enabled eligibility predicate on the allocated pairs (DOMAIN A2, A3)."""
    if len(rows.unit_pos) == 0:
        return []
    failures = pair_failures(units, demands, rows.unit_pos, rows.demand_pos, policy)
    found: list[tuple[int, int, Violation]] = []
    for order, (rule_id, fails) in enumerate(failures.items()):
        at = np.flatnonzero(np.asarray(fails))
        details = _describe_failures(
            rule_id, policy, units, demands, rows.unit_pos[at], rows.demand_pos[at]
        )
        for i, (message, numbers) in zip(at.tolist(), details, strict=True):
            violation = Violation(
                rule_id, message, str(rows.unit_id[i]), str(rows.demand_id[i]), numbers
            )
            found.append((i, order, violation))
    found.sort(key=lambda item: (item[0], item[1]))
    return [v for _, _, v in found]


def _pool_names(bits: int, ids: tuple[str, ...]) -> str:
    names = [r for k, r in enumerate(ids) if bits >> k & 1]
    return _join(names) or "(none)"


def _check_pools(
    units: pd.DataFrame, demands: pd.DataFrame, policy: Policy, rows: ResolvedAllocation
) -> list[Violation]:
    """Réservataire of each allocation: none for excluded units, a pool holder for flux units."""
    ids = policy.reservataire_ids()
    res = rows.reservataire
    in_flux = _flux_mask(units)[rows.unit_pos]
    no_res = res == NO_RESERVATAIRE
    known_res = np.isin(res, np.array(ids, dtype=object))
    res_bit = np.array([ids.index(r) if r in ids else 0 for r in res], dtype=np.int64)
    pools = np.zeros(len(res), dtype=np.int64)
    if len(res):
        subset = demands.iloc[rows.demand_pos].reset_index(drop=True)
        pools = np.asarray(demand_pools(subset, policy)).astype(np.int64)
    in_pool = ((pools >> res_bit) & 1) == 1
    priority = demands["priority"].to_numpy(dtype=bool)[rows.demand_pos]
    priority_only = np.isin(
        res,
        np.array([r.id for r in policy.reservataires if _PRIORITY_ONLY in r.pool], dtype=object),
    )

    # a pool condition on `priority` other than the État's is the law too (the pair table's
    # `proposable_pools`): an explicit pools list does not lift it; a household breaking it is
    # outside the pool (until the sixteenth session only the État's was checked, so an
    # allocation the solver can never make, a priority household through a réservataire for
    # non-priority households, passed the check)
    for holder in policy.reservataires:
        legal = tuple(c for c in holder.pool if c.field == "priority")
        if not legal or legal == (_PRIORITY_ONLY,):
            continue
        mine = np.flatnonzero(in_flux & (res == holder.id))
        if len(mine):
            subset = demands.iloc[rows.demand_pos[mine]].reset_index(drop=True)
            in_pool[mine] &= evaluate(legal, subset)

    excluded_through = ~in_flux & ~no_res
    flux_without = in_flux & no_res
    unknown = in_flux & ~no_res & ~known_res
    outside_pool = in_flux & known_res & ~in_pool
    not_priority = in_flux & known_res & priority_only & ~priority

    out = []
    for i in np.flatnonzero(
        excluded_through | flux_without | unknown | outside_pool | not_priority
    ):
        unit_id, demand_id, r = str(rows.unit_id[i]), str(rows.demand_id[i]), str(res[i])
        if excluded_through[i]:
            reason = str(units["flux_excluded"].iloc[int(rows.unit_pos[i])])
            out.append(
                Violation(
                    FLUX_EXCLUSION_RESERVATAIRE,
                    f"unit excluded from the flux ({reason}) allocated through réservataire "
                    f"'{r}'; excluded units belong to no réservataire",
                    unit_id,
                    demand_id,
                    {"reservataire": r, "flux_excluded": reason},
                )
            )
        if flux_without[i]:
            out.append(
                Violation(
                    FLUX_EXCLUSION_RESERVATAIRE,
                    "flux unit allocated without a réservataire",
                    unit_id,
                    demand_id,
                    {"reservataire": ""},
                )
            )
        if unknown[i]:
            out.append(
                Violation(
                    POOL,
                    f"unknown réservataire '{r}' (known: {_join(ids)})",
                    unit_id,
                    demand_id,
                    {"reservataire": r},
                )
            )
        if outside_pool[i]:
            out.append(
                Violation(
                    POOL,
                    f"household not in the pool of réservataire '{r}'",
                    unit_id,
                    demand_id,
                    {"reservataire": r, "demand_pools": _pool_names(int(pools[i]), ids)},
                )
            )
        if not_priority[i]:
            out.append(
                Violation(
                    STATE_PRIORITY_ONLY,
                    f"réservataire '{r}' allocates to priority households only; "
                    "this household is not priority (no DALO, no L441-1 category)",
                    unit_id,
                    demand_id,
                    {"reservataire": r, "priority": "false"},
                )
            )
    return out


def _band_violation(band: FluxBand, count: int, what: str) -> Violation:
    return Violation(
        FLUX_BAND,
        f"{count} flux unit(s) {what} réservataire '{band.reservataire}', outside its band "
        f"[{band.low}, {band.high}] (target {float(band.target):.4f})",
        numbers={
            "reservataire": band.reservataire,
            what.split()[0]: count,
            "low": band.low,
            "high": band.high,
            "target": round(float(band.target), 4),
            "target_exact": fraction_text(band.target),
        },
    )


def _check_orientation(
    units: pd.DataFrame,
    policy: Policy,
    rows: ResolvedAllocation,
    orientation: Rows,
    year: YearSoFar,
) -> list[Violation]:
    """Check the orientation table, the allocations against it, and its counts against the bands.

    Every flux unit is oriented exactly once to a known réservataire and no excluded unit is
    oriented (A3); an allocation of a flux unit goes through its unit's orientation; each banded
    réservataire receives between ``floor(t_r)`` and ``ceil(t_r)`` units (A4). A row with an
    empty réservataire is no orientation: right for an excluded unit, a missing one for a flux
    unit.
    """
    ids = policy.reservataire_ids()
    table = normalise_table(orientation, ORIENTATION_COLUMNS, "orientation")
    o_unit = table["unit_id"].to_numpy(dtype=object)
    o_res = table["reservataire"].to_numpy(dtype=object)
    o_pos = _positions(o_unit, units["unit_id"])
    flux = _flux_mask(units)
    # an empty réservataire says "not oriented": true of an excluded unit (as in the allocation
    # table, where its réservataire is ''), a missing orientation for a flux unit. It was read
    # as an orientation to a réservataire named '': an excluded unit listed with '' got two
    # false violations ("oriented to ''", "unknown réservataire ''")
    empty = o_res == NO_RESERVATAIRE
    out = []
    for i in np.flatnonzero(o_pos < 0):
        out.append(
            Violation(
                ORIENTATION,
                f"orientation row {i + 1} names unit '{o_unit[i]}', not a unit of the round",
                unit_id=str(o_unit[i]),
                numbers={"row": int(i + 1), "reservataire": str(o_res[i])},
            )
        )
    known = o_pos >= 0
    for i in np.flatnonzero(known & flux[np.maximum(o_pos, 0)] & empty):
        out.append(
            Violation(
                ORIENTATION,
                f"flux unit not oriented: orientation row {i + 1} names no réservataire",
                unit_id=str(o_unit[i]),
                numbers={"row": int(i + 1), "reservataire": ""},
            )
        )
    for i in np.flatnonzero(known & ~flux[np.maximum(o_pos, 0)] & ~empty):
        reason = str(units["flux_excluded"].iloc[int(o_pos[i])])
        out.append(
            Violation(
                ORIENTATION,
                f"unit excluded from the flux ({reason}) is oriented to '{o_res[i]}'; "
                "excluded units are not oriented",
                unit_id=str(o_unit[i]),
                numbers={"reservataire": str(o_res[i]), "flux_excluded": reason},
            )
        )
    for i in np.flatnonzero(known & ~empty & ~np.isin(o_res, np.array(ids, dtype=object))):
        out.append(
            Violation(
                ORIENTATION,
                f"unit oriented to unknown réservataire '{o_res[i]}' (known: {_join(ids)})",
                unit_id=str(o_unit[i]),
                numbers={"reservataire": str(o_res[i])},
            )
        )
    times = np.bincount(o_pos[known & ~empty], minlength=len(units))
    reported = np.zeros(len(units), dtype=bool)
    reported[o_pos[known & empty]] = True
    for p in np.flatnonzero(flux & (times != 1) & ~(reported & (times == 0))):
        n = int(times[p])
        out.append(
            Violation(
                ORIENTATION,
                "flux unit not oriented" if n == 0 else f"flux unit oriented {n} times",
                unit_id=str(units["unit_id"].iloc[int(p)]),
                numbers={"orientations": n},
            )
        )

    # The orientation of each flux unit (its first row), to compare allocations with.
    valid = known & flux[np.maximum(o_pos, 0)] & ~empty
    oriented_to = np.full(len(units), None, dtype=object)
    first = pd.Series(o_pos[valid]).duplicated(keep="first").to_numpy()
    oriented_to[o_pos[valid][~first]] = o_res[valid][~first]
    alloc_flux = flux[rows.unit_pos]
    for i in np.flatnonzero(alloc_flux & (rows.reservataire != NO_RESERVATAIRE)):
        expected = oriented_to[rows.unit_pos[i]]
        if expected is not None and expected != rows.reservataire[i]:
            out.append(
                Violation(
                    ORIENTATION,
                    f"allocated through '{rows.reservataire[i]}' but the unit is oriented to "
                    f"'{expected}'",
                    str(rows.unit_id[i]),
                    str(rows.demand_id[i]),
                    {"reservataire": str(rows.reservataire[i]), "oriented_to": str(expected)},
                )
            )

    # Flux bands on the orientation counts (one per flux unit, first row, known réservataire).
    bands = flux_bands(policy, int(flux.sum()), year)
    counted = valid & np.isin(o_res, np.array(ids, dtype=object))
    counted_first = counted.copy()
    counted_first[np.flatnonzero(counted)] = ~pd.Series(o_pos[counted]).duplicated().to_numpy()
    per_res = pd.Series(o_res[counted_first]).value_counts()
    for r, band in bands.items():
        n = int(per_res.get(r, 0))
        if not band.low <= n <= band.high:
            out.append(_band_violation(band, n, "oriented to"))
    return out


def _check_bands_without_orientation(
    units: pd.DataFrame, policy: Policy, rows: ResolvedAllocation, year: YearSoFar
) -> list[Violation]:
    """Without an orientation, check that one consistent with the allocation can exist.

    Each banded réservataire must not allocate more flux units than its band's high end, and the
    flux units left unallocated must suffice to lift every réservataire to its low end (the
    landlord takes whatever remains).
    """
    ids = policy.reservataire_ids()
    flux = _flux_mask(units)
    bands = flux_bands(policy, int(flux.sum()), year)
    mask = flux[rows.unit_pos] & np.isin(rows.reservataire, np.array(ids, dtype=object))
    first = ~pd.Series(rows.unit_pos[mask]).duplicated().to_numpy()
    res = rows.reservataire[mask][first]
    per_res = pd.Series(res).value_counts()
    allocated_units = np.unique(rows.unit_pos[flux[rows.unit_pos]])
    free = int(flux.sum()) - len(allocated_units)
    out = []
    missing = 0
    for r, band in bands.items():
        n = int(per_res.get(r, 0))
        if n > band.high:
            out.append(_band_violation(band, n, "allocated through"))
        missing += max(0, band.low - n)
    if missing > free:
        out.append(
            Violation(
                FLUX_BAND,
                f"the bands' low ends need {missing} more flux unit(s) than allocated, but only "
                f"{free} flux unit(s) are left unallocated to orient",
                numbers={"needed": missing, "unallocated_flux_units": free},
            )
        )
    return out


def _quota_violation(outcome: QuotaOutcome) -> Violation:
    """Describe a quota shortfall: counted vs base (year so far included), what the rule needs."""
    t, p, total = outcome.round, outcome.prior, outcome.total
    floor = outcome.bound == Bound.FLOOR
    if outcome.measure == Measure.SHARE:
        bound = "at least" if floor else "at most"
        # the share in full: 12.5 %, not '12%' (which read 'at least 12% of 8, i.e. 1')
        need = f"{bound} {outcome.target * 100:g}% of {total.base}, i.e. {bound} {outcome.limit}"
    else:
        need = f"{'at least' if floor else 'at most'} {outcome.limit}"
    miss = "short by" if floor else "over by"
    group = f" [{outcome.group_label}]" if outcome.group_label else ""
    earlier = f" ({p.counted} of {p.base} in earlier rounds)" if p.base or p.counted else ""
    return Violation(
        outcome.rule_id,
        f"{outcome.label}{group}: {total.counted} counted of {total.base}{earlier}; "
        f"needs {need}; {miss} {outcome.shortfall}",
        numbers={
            "scope": outcome.scope,
            "base": t.base,
            "counted": t.counted,
            "prior_base": p.base,
            "prior_counted": p.counted,
            "target": outcome.target,
            "limit": outcome.limit,
            "shortfall": outcome.shortfall,
        },
    )


def audit(
    units: UnitsTable,
    demands: DemandsTable,
    policy: Policy | str | Path,
    allocation: Rows,
    year_so_far: YearSoFar | Mapping[str, Any] | None = None,
    *,
    orientation: Rows | None = None,
    on: dt.date | str,
) -> Audit:
    """Judge an allocation against the policy and recompute its objective, without the solver.

    Parameters
    ----------
    units, demands
        The round's tables, in any form `matching.round.solve` takes (validated here as it
        validates them, unless a `matching.frames.canonical_tables` block vouches for them;
        the derived facts and score ``matching solve`` writes are dropped). The derived facts
        are recomputed here at ``on``, so that the audit never trusts a fact computed elsewhere.
    policy
        The policy the allocation claims to follow: a `Policy`, a bundled name or a path.
    allocation
        Columns ``unit_id``, ``demand_id``, ``reservataire`` (``''`` for an excluded unit); other
        columns (a ``score``) are ignored. A DataFrame or a list of rows as mappings.
    year_so_far
        Earlier rounds of the year: their flux units, orientations and quota tallies (a
        `YearSoFar` or a mapping, checked against the policy).
    orientation
        Columns ``unit_id``, ``reservataire``: one row per flux unit. Without it, the flux bands
        are checked only as far as the allocation decides them.
    on
        The round's date (a date or ``"YYYY-MM-DD"``), for the seniority in the derived facts
        and the cotation.

    Returns
    -------
    Audit
        Violations, quota outcomes per rule and scope group, stage values and counts.

    Raises
    ------
    TypeError
        An argument of another type (naming it), as `matching.round.solve` says.
    DataError
        A bad cell of the units or demands (naming table, row and field), a unit released or
        a demand filed after ``on``.
    PolicyError
        ``on`` lies in another year than the policy's (`matching.arguments.same_year`).
    """
    # the forms `solve` takes (a policy name, an ISO date, a mapping), converted alike: each
    # failed deep in the facts or the flux with an AttributeError
    policy, day, given = round_arguments(policy, on, year_so_far)
    if day is None:
        raise TypeError("on: the round's date, a date or an ISO date string, not None")
    on, year = day, given or YearSoFar()
    # validated as `solve` validates them: a table it accepts but not canonical was misjudged
    # without a word (lists as ';'-joined text read character by character, "non" as true);
    # frames vouched for (the self-check's, the simulation's) are taken as they are
    unit_table = round_table(units, "units", as_of=on)
    demand_table = round_table(demands, "demands", as_of=on, ignore_derived=True)
    facts = derive_facts(demand_table, policy, on)
    rows = resolve_allocation(unit_table, facts, allocation)
    known = rows.only(rows.known)

    violations = _check_known(rows)
    violations += _check_one_to_one(rows)
    violations += _check_eligibility(unit_table, facts, policy, known)
    violations += _check_pools(unit_table, facts, policy, known)
    if orientation is not None:
        violations += _check_orientation(unit_table, policy, known, orientation, year)
    else:
        violations += _check_bands_without_orientation(unit_table, policy, known, year)
    outcomes = _quota_outcomes(unit_table, facts, policy, known, year)
    if policy.quotas.mode == QuotaMode.HARD:
        violations += [_quota_violation(o) for o in outcomes if o.shortfall > 0]

    flux = _flux_mask(unit_table)
    counts = {
        "units": len(unit_table),
        "flux_units": int(flux.sum()),
        "excluded_units": int((~flux).sum()),
        "demands": len(demand_table),
        "allocations": len(rows.unit_id),
        "unknown_rows": int((~rows.known).sum()),
        "units_allocated": len(np.unique(known.unit_pos)),
        "demands_allocated": len(np.unique(known.demand_pos)),
    }
    return Audit(
        violations=tuple(violations),
        quotas=tuple(outcomes),
        stages=_stage_values(facts, policy, known, outcomes),
        counts=counts,
        mode=policy.quotas.mode,
    )


def check(
    units: UnitsTable,
    demands: DemandsTable,
    policy: Policy | str | Path,
    allocation: Rows,
    year_so_far: YearSoFar | Mapping[str, Any] | None = None,
    *,
    orientation: Rows | None = None,
    on: dt.date | str,
) -> list[Violation]:
    """Every violation of the policy by an allocation (empty when it is valid); see `audit`."""
    result = audit(units, demands, policy, allocation, year_so_far, orientation=orientation, on=on)
    return list(result.violations)


def render_violations(violations: Iterable[Violation]) -> str:
    """One line per violation: rule, unit, demand, message and numbers."""
    return "\n".join(f"  - {v}" for v in violations)


def fraction_text(value: Fraction) -> str:
    """Write an exact fraction as ``p/q`` (or ``p`` when whole), for reports."""
    return (
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    )
