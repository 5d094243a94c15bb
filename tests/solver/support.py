"""Shared helpers of the solver tests: policy variants, a checked solve, and build-level probes.

Every solve in tests/solver goes through `solve_checked`, which runs the public
`matching.round.solve` and then the independent checker *again, explicitly* (STYLE practice 7):
no violation, each stage value equal to the checker's recomputation, every unit reported once
(allocated or with a reason), every flux unit oriented once and no excluded unit oriented.

Dates: the round is `tests.factories.ROUND_DATE` (2026-03-31); `filed(m)` gives a first filing
date exactly ``m`` whole months earlier, so a plain household filed with `filed(m)` scores ``m``
points under the default grid (``m + 20`` when ``m > 30``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from ortools.sat.python import cp_model

from matching import checker
from matching.facts import derive_facts
from matching.flux import YearSoFar
from matching.generate import generate_territory
from matching.params import SolveParams
from matching.policy import load_policy
from matching.policy.conditions import Condition
from matching.policy.model import Policy, QuotaRule
from matching.result import Result
from matching.round import prepare_round, solve
from matching.solver.build import BuiltModel, build_model
from matching.solver.instance import NONE, RoundInstance, Triples, build_triples
from matching.types import Bound, Measure, QuotaMode, Stage
from tests.factories import ROUND_DATE

POLICY = load_policy("default-2026")
"""The default policy (DOMAIN Part A), the base of every variant."""

FAST = SolveParams(num_workers=1, time_limit_s=20.0)
"""One worker (reproducible and light on the shared machine), a generous limit for tiny rounds."""
PRUNED = SolveParams(num_workers=1, time_limit_s=30.0, prune=True, prune_above_triples=0)
"""The LP path on every round, however small (the default sends small rounds to CP-SAT)."""
FULL = SolveParams(num_workers=1, time_limit_s=30.0, prune=False)
"""The full CP-SAT model, the reference the LP path is checked against."""

Row = tuple[str, str, str]
"""An allocation row: (unit_id, demand_id, réservataire), '' for a unit excluded from the flux."""


def generated_round(
    seed: int, n_units: int, n_demands: int, policy: Policy
) -> tuple[pd.DataFrame, pd.DataFrame, dt.date, RoundInstance]:
    """A generated Caen la Mer round: its units, demands, date (the last release) and instance."""
    units, demands = generate_territory(
        "caen-la-mer", 2026, seed=seed, n_units=n_units, n_demands=n_demands
    )
    on = pd.Timestamp(units["released_on"].max()).date()
    return units, demands, on, prepare_round(units, demands, policy, on=on).instance


def filed(months: int) -> dt.date:
    """First filing date exactly ``months`` whole months before the round date (day 1)."""
    total = ROUND_DATE.year * 12 + (ROUND_DATE.month - 1) - months
    return dt.date(total // 12, total % 12 + 1, 1)


def with_mode(policy: Policy, mode: QuotaMode) -> Policy:
    """The policy with its quotas hard or soft."""
    return policy.model_copy(update={"quotas": policy.quotas.model_copy(update={"mode": mode})})


def soft(policy: Policy) -> Policy:
    """The policy with soft quotas (each shortfall reported and penalised by its weight)."""
    return with_mode(policy, QuotaMode.SOFT)


def with_rules(policy: Policy, *rules: QuotaRule) -> Policy:
    """The policy with exactly these quota rules (none: no quota at all)."""
    return policy.model_copy(update={"quotas": policy.quotas.model_copy(update={"rules": rules})})


def default_rule(rule_id: str) -> QuotaRule:
    """One quota rule of the default policy, by id."""
    return next(r for r in POLICY.quotas.rules if r.id == rule_id)


def binding_policy() -> Policy:
    """The default policy with floors raised so that they bind on small generated rounds."""
    raised = {
        "priority_floor_collectivite": 0.5,
        "priority_floor_action_logement": 0.5,
        "priority_floor_bailleur": 0.5,
        "mixity_outside_qpv": 0.4,
        "mixity_inside_qpv": 0.5,
    }
    rules = [default_rule(k).model_copy(update={"target": v}) for k, v in raised.items()]
    return with_rules(POLICY, *rules)


def with_shares(policy: Policy, **shares: float) -> Policy:
    """The policy with these flux shares; réservataires not named (but the landlord) get 0.

    With every share 0 the bands are all [0, 0] and each flux unit goes to the landlord; with one
    réservataire at 1.0 its band is [n, n] and each of the n flux units goes to it. Either way
    the orientation is forced, which isolates the family under test from the flux bands.
    """
    landlord = policy.flux.landlord
    reservataires = tuple(
        r if r.id == landlord else r.model_copy(update={"share": shares.get(r.id, 0.0)})
        for r in policy.reservataires
    )
    return policy.model_copy(update={"reservataires": reservataires})


NO_QUOTAS = with_rules(POLICY)
"""Default policy without quota rules (structural families in isolation)."""

ALL_TO_LANDLORD = with_shares(NO_QUOTAS)
"""No quota, every flux unit oriented to the landlord (bands all [0, 0])."""


def rule(
    rule_id: str,
    bound: str,
    measure: str,
    target: float,
    count: list[dict[str, Any]],
    base: list[dict[str, Any]] | None = None,
    scope: str | None = None,
) -> QuotaRule:
    """A generic quota rule written as in a policy file."""
    return QuotaRule(
        id=rule_id,
        label=rule_id.replace("_", " "),
        bound=Bound(bound),
        measure=Measure(measure),
        target=target,
        base=tuple(Condition(**c) for c in base or []),
        count=tuple(Condition(**c) for c in count),
        scope=scope,
    )


# ----------------------------------------------------------------------------------------------
# Solving, with the independent checker run again on every result
# ----------------------------------------------------------------------------------------------


def verify(
    result: Result,
    units: pd.DataFrame,
    demands: pd.DataFrame,
    policy: Policy,
    year: YearSoFar | None = None,
    on: dt.date = ROUND_DATE,
) -> None:
    """Audit a solver result with the independent checker and assert it is clean and consistent."""
    assert result.status in {"OPTIMAL", "FEASIBLE"}, result.status
    violations = checker.check(
        units, demands, policy, result.allocation, year, orientation=result.orientation, on=on
    )
    assert violations == [], checker.render_violations(violations)
    # Every stage the solver optimised is recomputed identically by the checker (A5); in hard
    # mode there is no shortfall stage.
    stages = checker.objective_values(
        units, derive_facts(demands, policy, on), policy, result.allocation, year
    )
    assert {k: int(stages[k]) for k in result.stage_values} == result.stage_values  # type: ignore[index]
    if policy.quotas.mode == QuotaMode.HARD:
        assert "shortfall" not in result.stage_values
    else:  # soft: the checker's weighted shortfall when the policy has the stage; each row's
        # shortfall whether or not (a soft policy may rank no shortfall and still report them)
        if Stage.SHORTFALL in policy.objective.stages:
            assert result.stage_values["shortfall"] == int(stages[Stage.SHORTFALL])
        expected = {
            row_name(policy, q.rule_id, q.scope): q.shortfall
            for q in checker.quota_outcomes(
                units, derive_facts(demands, policy, on), policy, result.allocation, year
            )
            if q.shortfall
        }
        assert {k: v for k, v in result.shortfalls.items() if v} == expected
    # Every unit once: allocated or with a reason; the counts add up.
    allocated = result.allocation["unit_id"].tolist()
    unallocated = result.unallocated_units["unit_id"].tolist()
    assert sorted(allocated + unallocated) == sorted(units["unit_id"].tolist())
    assert result.counts["units_allocated"] + result.counts["units_unallocated"] == len(units)
    assert len(set(result.allocation["demand_id"])) == len(result.allocation)
    # Every flux unit oriented exactly once, no excluded unit oriented.
    flux_ids = units.loc[units["flux_excluded"] == "", "unit_id"].tolist()
    assert sorted(result.orientation["unit_id"].tolist()) == sorted(flux_ids)


def row_name(policy: Policy, rule_id: str, group: str) -> str:
    """Key of a rule's scope group in Result.shortfalls: ``rule`` or ``rule[scope=group]``."""
    scope = next(r.scope for r in policy.quotas.rules if r.id == rule_id)
    return rule_id if not scope else f"{rule_id}[{scope}={group}]"


def solve_checked(
    units: pd.DataFrame,
    demands: pd.DataFrame,
    policy: Policy,
    params: SolveParams = FAST,
    year: YearSoFar | None = None,
    on: dt.date = ROUND_DATE,
) -> Result:
    """Solve a round through the public API and verify the result with the checker."""
    result = solve(units, demands, policy, params, year_so_far=year, on=on)
    verify(result, units, demands, policy, year, on)
    return result


def rows_of(result: Result) -> set[Row]:
    """The allocation as a set of (unit_id, demand_id, réservataire)."""
    a = result.allocation
    return set(zip(a["unit_id"], a["demand_id"], a["reservataire"], strict=True))


def oriented(result: Result) -> dict[str, str]:
    """The orientation as unit_id -> réservataire."""
    o = result.orientation
    return dict(zip(o["unit_id"], o["reservataire"], strict=True))


def orientation_counts(result: Result) -> dict[str, int]:
    """Number of flux units oriented to each réservataire (absent: 0)."""
    counts = result.orientation["reservataire"].value_counts()
    return {str(r): int(n) for r, n in counts.items()}


def allocation_table(rows: Iterable[Row]) -> pd.DataFrame:
    """An allocation table from rows."""
    return pd.DataFrame(list(rows), columns=["unit_id", "demand_id", "reservataire"])


def orientation_table(pairs: dict[str, str]) -> pd.DataFrame:
    """An orientation table from unit_id -> réservataire."""
    return pd.DataFrame(list(pairs.items()), columns=["unit_id", "reservataire"])


def violated_rules(
    units: pd.DataFrame,
    demands: pd.DataFrame,
    policy: Policy,
    rows: Iterable[Row],
    orientation: dict[str, str] | None = None,
    year: YearSoFar | None = None,
) -> set[str]:
    """Rule ids the independent checker reports for a hand-written allocation."""
    found = checker.check(
        units,
        demands,
        policy,
        allocation_table(rows),
        year,
        orientation=orientation_table(orientation) if orientation is not None else None,
        on=ROUND_DATE,
    )
    return {v.rule_id for v in found}


# ----------------------------------------------------------------------------------------------
# Build-level probes (the model of one round, with some variables fixed)
# ----------------------------------------------------------------------------------------------


class Probe:
    """The model of a round, rebuilt for each question, with lookups by ids.

    ``feasible(assign=[...], orient=[...])`` fixes the named assignment triples and orientation
    literals (to 1, or to the value given) and asks CP-SAT whether the model still has a solution.
    """

    def __init__(
        self,
        units: pd.DataFrame,
        demands: pd.DataFrame,
        policy: Policy,
        year: YearSoFar | None = None,
    ) -> None:
        self.inst: RoundInstance = prepare_round(
            units, demands, policy, on=ROUND_DATE, year_so_far=year
        ).instance
        self.triples: Triples = build_triples(self.inst)
        self.unit_pos = {u: i for i, u in enumerate(self.inst.units["unit_id"])}
        self.demand_pos = {d: i for i, d in enumerate(self.inst.demands["demand_id"])}
        self.res_pos = {r: i for i, r in enumerate(self.inst.reservataires)}

    def build(self, triples: Triples | None = None) -> BuiltModel:
        """A fresh model on all the round's triples (or on the given ones)."""
        return build_model(self.inst, self.triples if triples is None else triples)

    def triple(self, unit_id: str, demand_id: str, res: str = "") -> int:
        """Index of a triple (``res`` '' for a unit excluded from the flux)."""
        r = NONE if res == "" else self.res_pos[res]
        t = self.triples
        hit = np.flatnonzero(
            (t.unit == self.unit_pos[unit_id])
            & (t.demand == self.demand_pos[demand_id])
            & (t.res == r)
        )
        assert len(hit) == 1, f"no admissible triple ({unit_id}, {demand_id}, {res!r})"
        return int(hit[0])

    def status(
        self,
        assign: Iterable[Row | tuple[str, str, str, int]] = (),
        orient: Iterable[tuple[str, str] | tuple[str, str, int]] = (),
        built: BuiltModel | None = None,
    ) -> str:
        """CP-SAT status name of the model with these variables fixed (default value 1)."""
        built = built or self.build()
        for fixed in assign:
            u, d, r = str(fixed[0]), str(fixed[1]), str(fixed[2])
            value = int(fixed[3]) if len(fixed) == 4 else 1
            built.model.add(built.vars.x[self.triple(u, d, r)] == value)
        for item in orient:
            value = int(item[2]) if len(item) == 3 else 1
            key = (self.unit_pos[str(item[0])], self.res_pos[str(item[1])])
            built.model.add(built.vars.orient[key] == value)
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        solver.parameters.max_time_in_seconds = 10.0
        return str(solver.status_name(solver.solve(built.model)))

    def feasible(self, **fixed: Any) -> bool:
        """True when the model has a solution with these variables fixed (see `status`)."""
        status = self.status(**fixed)
        assert status in {"OPTIMAL", "FEASIBLE", "INFEASIBLE"}, status
        return status != "INFEASIBLE"
