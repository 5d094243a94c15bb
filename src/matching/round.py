"""One allocation round end to end: prepare, solve exactly, check independently, report.

`solve` is the library entry point: tables (or records) in, a checked `Result` out. It derives
the household facts once, scores the demands, builds the eligible pairs, solves with
`matching.solver`, and then runs the independent checker on the allocation: any violation, or a
stage value that the checker does not recompute identically, raises `CheckFailedError`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matching import checker
from matching.arguments import round_arguments as _arguments  # shared with the checker
from matching.arguments import same_year
from matching.domain import Demand, Unit
from matching.eligibility import PairTable, eligible_pairs
from matching.exceptions import CheckFailedError, InfeasibleError
from matching.facts import derive_facts
from matching.flux import YearSoFar
from matching.frames import canonical_tables, in_id_order
from matching.io import round_table
from matching.kpis import compute_kpis
from matching.params import SolveParams, solve_params
from matching.policy.model import Policy
from matching.policy.scoring import score
from matching.result import Result
from matching.solver import RoundInstance, RoundSolution, solve_round
from matching.solver.rows import row_name
from matching.types import QuotaMode, Stage


@dataclass(frozen=True)
class PreparedRound:
    """A round ready to solve: facts, scores and pairs computed once and shared by every step."""

    instance: RoundInstance
    pairs: PairTable
    on: dt.date


def tie_rank(demands: pd.DataFrame, scores: np.ndarray, keys: tuple[str, ...]) -> np.ndarray:
    """Rank of each household by the policy's tie-break order (0 = first), DOMAIN A5."""
    columns = []
    for key in reversed(keys):
        name, descending = key.lstrip("-"), key.startswith("-")
        values = scores if name == "score" else demands[name].to_numpy()
        if values.dtype == object:
            values = pd.Series(values).rank(method="dense").to_numpy()
        values = (
            np.asarray(values, dtype=np.float64)
            if values.dtype.kind != "M"
            else values.astype(np.int64)
        )
        columns.append(-values if descending else values)
    order = np.lexsort(columns) if columns else np.arange(len(demands))
    rank = np.empty(len(demands), dtype=np.int64)
    rank[order] = np.arange(len(demands))
    return rank


def prepare_round(
    units: pd.DataFrame | Sequence[Unit] | Sequence[Mapping[str, Any]],
    demands: pd.DataFrame | Sequence[Demand] | Sequence[Mapping[str, Any]],
    policy: Policy | str | Path,
    *,
    on: dt.date | str | None = None,
    year_so_far: YearSoFar | Mapping[str, Any] | None = None,
) -> PreparedRound:
    """Validate the tables, derive facts, score, and build the eligible pairs of a round.

    The round's date ``on`` defaults to the latest release; a unit released or a demand filed
    after it is refused (`DataError`), given or not. A round dated in another year than the
    policy's is refused (`PolicyError`), as a scenario of another year is: the policy's Q1
    threshold and income ceilings are that year's figures.
    """
    policy, on, year_so_far = _arguments(policy, on, year_so_far)  # `on` in the policy's year
    units_df = round_table(units, "units", as_of=on)
    as_of = on
    if on is None:
        # no unit and no date: nothing to allocate, and no date to hold the demands to
        as_of = pd.Timestamp(units_df["released_on"].max()).date() if len(units_df) else None
        if as_of is not None:
            same_year(policy, as_of, "on (the latest released_on)")
        on = as_of or dt.date(policy.year, 1, 1)
    demands_df = in_id_order(round_table(demands, "demands", as_of=as_of), "demand_id")
    units_df = in_id_order(units_df, "unit_id")
    facts = derive_facts(demands_df, policy, on)
    scores = score(facts, policy.cotation).total.to_numpy(dtype=np.int64)
    facts["score"] = scores
    pairs = eligible_pairs(units_df, facts, policy, scores)
    p = pairs.pairs
    inst = RoundInstance(
        units=units_df,
        demands=facts,
        scores=scores,
        policy=policy,
        year_so_far=year_so_far or YearSoFar(),
        pair_unit=p["unit"].to_numpy(dtype=np.int32),
        pair_demand=p["demand"].to_numpy(dtype=np.int32),
        pair_pools=p["pools"].to_numpy(dtype=np.uint16),
        tie_rank=tie_rank(facts, scores, tuple(k for k in policy.objective.tie_break)),
    )
    return PreparedRound(inst, pairs, on)


def solve(
    units: pd.DataFrame | Sequence[Unit] | Sequence[Mapping[str, Any]],
    demands: pd.DataFrame | Sequence[Demand] | Sequence[Mapping[str, Any]],
    policy: Policy | str | Path,
    params: SolveParams | Mapping[str, Any] | None = None,
    *,
    year_so_far: YearSoFar | Mapping[str, Any] | None = None,
    on: dt.date | str | None = None,
    raise_on_infeasible: bool = True,
) -> Result:
    """Allocate one round exactly and return a checked Result.

    Raises
    ------
    InfeasibleError
        Hard quotas cannot all hold (with ``raise_on_infeasible``); carries the conflicting rule
        ids and, as ``soft_result``, how far the soft mode gets.
    CheckFailedError
        The independent checker disagrees with the solver (a bug: please report it).
    """
    start = time.perf_counter()
    params = solve_params(params)  # before the round is prepared: a bad one fails at once
    prepared = prepare_round(units, demands, policy, on=on, year_so_far=year_so_far)
    return solve_prepared(prepared, params, raise_on_infeasible=raise_on_infeasible, started=start)


def solve_prepared(
    prepared: PreparedRound,
    params: SolveParams | Mapping[str, Any] | None = None,
    *,
    raise_on_infeasible: bool = True,
    started: float | None = None,
) -> Result:
    """`solve` on a round already prepared by `prepare_round` (the same checked Result).

    Why: a caller that needs the prepared round too (``matching solve`` writes its inputs,
    with the derived facts and scores, before solving) prepares it once: 0.12-0.17 s of the
    January round's command. ``started``: the `time.perf_counter` value the result's wall time
    counts from (by default now; `solve` passes the time before its preparation).
    """
    start = time.perf_counter() if started is None else started
    params = solve_params(params)
    policy = prepared.instance.policy
    result = _solved(prepared, params, start)
    if result.status == "INFEASIBLE" and policy.quotas.mode == QuotaMode.HARD:
        # the diagnosis is the least weighted shortfall first, then the policy's other stages:
        # a hard policy need not rank the shortfall (it has none), and without that stage the
        # soft round ignored every quota (stages [score, allocations]: 8 rules reported short
        # where 1 had to be)
        others = [s for s in policy.objective.stages if s != Stage.SHORTFALL]
        stages = (Stage.SHORTFALL, *others)
        soft_policy = policy.model_copy(
            update={
                "quotas": policy.quotas.model_copy(update={"mode": QuotaMode.SOFT}),
                "objective": policy.objective.model_copy(update={"stages": stages}),
            }
        )
        # the facts, scores and pairs do not depend on the quotas' mode: the same prepared
        # round, re-solved (it was prepared again: 0.13-0.15 s on the January round)
        instance = dataclasses.replace(prepared.instance, policy=soft_policy)
        soft = _solved(dataclasses.replace(prepared, instance=instance), params)
        result.soft_diagnosis = soft
        if raise_on_infeasible:
            raise InfeasibleError(infeasibility_message(result), result.conflicts, soft)
    return result


def _solved(prepared: PreparedRound, params: SolveParams, start: float | None = None) -> Result:
    """Solve a prepared round and build its checked Result (timed from ``start``)."""
    start = time.perf_counter() if start is None else start
    solution = solve_round(prepared.instance, params)
    return build_result(prepared, solution, params, time.perf_counter() - start)


def infeasibility_message(result: Result) -> str:
    """The conflict in words, and what the soft mode reaches."""
    names = ", ".join(result.conflicts) if result.conflicts else "(no smaller conflict found)"
    text = f"the hard rules cannot all hold in this round; conflicting rules: {names}."
    soft = result.soft_diagnosis
    if soft is not None and soft.status in {"OPTIMAL", "FEASIBLE"}:
        short = ", ".join(f"{k} short by {v}" for k, v in sorted(soft.shortfalls.items()) if v)
        text += (
            f" In soft mode: {soft.counts.get('units_allocated', 0)} allocations"
            f" with {short or 'no shortfall'}."
        )
    return text


def _in_oriented_pool(inst: RoundInstance, solution: RoundSolution) -> np.ndarray:
    """Per pair: the unit is outside the flux, or oriented to a pool that holds the household.

    Both tables of what was left out read it: one pass over the pairs, not two.
    """
    res_of_unit = np.full(len(inst.units), -1, dtype=np.int64)
    for u, r in solution.orientation.items():
        res_of_unit[u] = r
    oriented = res_of_unit[inst.pair_unit]
    pools = inst.pair_pools.astype(np.int64)
    held = (oriented >= 0) & (((pools >> np.maximum(oriented, 0)) & 1) == 1)
    return ~inst.flux_units[inst.pair_unit] | held


def _status_reason(solution: RoundSolution) -> str | None:
    """The reason of all left out of a round with no solution, or None when it has one.

    Without a solution there is no orientation, so no pool to blame.
    """
    if solution.status == "INFEASIBLE":
        return "round_infeasible"
    return "no_solution_in_time" if solution.status == "UNKNOWN" else None


def _unallocated(
    prepared: PreparedRound, solution: RoundSolution, in_pool: np.ndarray
) -> pd.DataFrame:
    """Every unit not let, with its reason; ``in_pool`` is `_in_oriented_pool`."""
    inst = prepared.instance
    n = len(inst.units)
    allocated = np.zeros(n, dtype=bool)
    allocated[solution.unit] = True
    has_pair = np.zeros(n, dtype=bool)
    has_pair[inst.pair_unit] = True
    in_oriented_pool = np.zeros(n, dtype=bool)
    in_oriented_pool[inst.pair_unit[in_pool]] = True
    no_pool = prepared.pairs.no_pool > 0
    # a search stopped by its time limit does not show that a unit's candidates went elsewhere
    # or that a quota bound (0 of 21 units let at a 0.01 s budget, each said
    # "candidates_taken_or_quota_bound"); a greedy policy's FEASIBLE is no such stop
    stopped = bool(solution.stats.get("time_limited"))
    taken = "not_proven_in_time" if stopped else "candidates_taken_or_quota_bound"
    with_pair = np.where(in_oriented_pool, taken, "no_candidate_in_oriented_pool")
    if (status_reason := _status_reason(solution)) is not None:
        with_pair = np.full(n, status_reason, dtype=object)
    reasons = np.where(
        has_pair, with_pair, np.where(no_pool, "no_demand_in_any_pool", "no_eligible_demand")
    )
    frame = pd.DataFrame(
        {"unit_id": inst.units["unit_id"].to_numpy(dtype=object), "reason": reasons}
    )
    return frame[~allocated].sort_values("unit_id", kind="stable").reset_index(drop=True)


def _unallocated_demands(
    prepared: PreparedRound, solution: RoundSolution, in_pool: np.ndarray
) -> pd.DataFrame:
    """Every demand not housed, with its reason and the number of units it is eligible for.

    So that nothing is lost on the demand side either: allocations plus these rows are the
    round's demands, and the reasons of those with no eligible unit add up to the count
    ``demands_not_eligible`` of ``result.json``. ``in_pool`` is `_in_oriented_pool`.
    """
    inst = prepared.instance
    n = len(inst.demands)
    housed = np.zeros(n, dtype=bool)
    housed[solution.demand] = True
    eligible_units = np.bincount(inst.pair_demand, minlength=n)  # (unit, demand) pairs unique
    candidate = np.zeros(n, dtype=bool)
    candidate[inst.pair_demand[in_pool]] = True
    stopped = bool(solution.stats.get("time_limited"))
    with_unit = np.where(
        candidate,
        "not_proven_in_time" if stopped else "units_went_to_others",
        "no_unit_oriented_to_its_pools",
    )
    if (status_reason := _status_reason(solution)) is not None:
        with_unit = np.full(n, status_reason, dtype=object)
    no_unit = np.where(prepared.pairs.pool_blocked, "no_unit_in_its_pools", "no_eligible_unit")
    reasons = np.where(eligible_units > 0, with_unit, no_unit)
    frame = pd.DataFrame(
        {
            "demand_id": inst.demands["demand_id"].to_numpy(dtype=object),
            "reason": reasons,
            "eligible_units": eligible_units.astype(np.int64),
        }
    )
    return frame[~housed].sort_values("demand_id", kind="stable").reset_index(drop=True)


def _as_text(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The frame with these columns in pandas' text dtype (``astype(str)``)."""
    return frame.assign(**{c: frame[c].astype(str) for c in columns})


def build_result(
    prepared: PreparedRound, solution: RoundSolution, params: SolveParams, seconds: float
) -> Result:
    """Turn a raw solution into a Result, and verify it with the independent checker."""
    inst = prepared.instance
    res_ids = np.array([*inst.reservataires, ""], dtype=object)
    unit_ids = inst.units["unit_id"].to_numpy(dtype=object)
    demand_ids = inst.demands["demand_id"].to_numpy(dtype=object)
    allocation = (
        pd.DataFrame(
            {
                "unit_id": unit_ids[solution.unit],
                "demand_id": demand_ids[solution.demand],
                "reservataire": res_ids[np.where(solution.res < 0, len(res_ids) - 1, solution.res)],
                "score": inst.scores[solution.demand].astype(np.int64),
            }
        )
        .sort_values("unit_id", kind="stable")
        .reset_index(drop=True)
    )
    orientation = (
        pd.DataFrame(
            {
                "unit_id": [unit_ids[u] for u in sorted(solution.orientation)],
                "reservataire": [
                    res_ids[solution.orientation[u]] for u in sorted(solution.orientation)
                ],
            },
            dtype=object,
        )
        .sort_values("unit_id", kind="stable")
        .reset_index(drop=True)
    )
    in_pool = _in_oriented_pool(inst, solution)
    unallocated = _unallocated(prepared, solution, in_pool)
    unallocated_demands = _as_text(
        _unallocated_demands(prepared, solution, in_pool), ("demand_id", "reason")
    )
    # one dtype for every id and text column, whatever the round's status (an OPTIMAL round's
    # allocation had pandas text columns and its orientation object ones; an INFEASIBLE
    # round's allocation object ones)
    allocation, orientation, unallocated = (
        _as_text(allocation, ("unit_id", "demand_id", "reservataire")),
        _as_text(orientation, ("unit_id", "reservataire")),
        _as_text(unallocated, ("unit_id", "reason")),
    )
    demand_eligible = np.zeros(len(inst.demands), dtype=bool)
    demand_eligible[inst.pair_demand] = True
    counts = {
        "units": len(inst.units),
        "units_flux": int(inst.flux_units.sum()),
        "units_excluded_from_flux": int((~inst.flux_units).sum()),
        "units_allocated": len(allocation),
        "units_unallocated": len(unallocated),
        "demands": len(inst.demands),
        "demands_allocated": len(allocation),
        "demands_eligible_not_allocated": int(demand_eligible.sum()) - len(allocation),
        "demands_not_eligible": int((~demand_eligible).sum()),
        "eligible_pairs": len(prepared.pairs),
    }
    result = Result(
        status=solution.status,
        policy_id=inst.policy.id,
        round_date=prepared.on,
        params=params,
        allocation=allocation,
        orientation=orientation if solution.status != "INFEASIBLE" else orientation.iloc[0:0],
        unallocated_units=unallocated,
        unallocated_demands=unallocated_demands,
        stage_values={s.value: int(v) for s, v in solution.stage_values.items()},
        # + 0.0: a bound of -0.0 (a stage maximised as its negation) is written as 0.0
        stage_bounds={s.value: float(b) + 0.0 for s, b in solution.stage_bounds.items()},
        shortfalls=solution.shortfalls,
        conflicts=solution.conflicts,
        counts=counts,
        stats=dict(solution.stats),
        wall_time_s=seconds,
        prepared=prepared,
    )
    solved = solution.status in {"OPTIMAL", "FEASIBLE"}
    if solved:
        _self_check(prepared, result)
    # without a solution the indicators are the round's as it stands, nothing allocated: the
    # targets, bands and year-to-date quota rates that explain an infeasible round (the
    # oriented counts are unknown: None)
    result.kpis = compute_kpis(
        inst.units, inst.demands, inst.policy, allocation,
        orientation if solved else None, inst.year_so_far,
    ).to_dict()  # fmt: skip
    return result


def _self_check(prepared: PreparedRound, result: Result) -> None:
    """Run the independent checker on the solver's own output; fail loudly on any disagreement.

    One `checker.audit` gives the violations, the stage values and the quota outcomes (the
    check, the stages and the shortfalls each resolved the allocation and counted the quotas
    again before).
    """
    inst = prepared.instance
    with canonical_tables(inst.units, inst.demands):  # validated when prepared: not again
        judged = checker.audit(
            inst.units, inst.demands, inst.policy, result.allocation, inst.year_so_far,
            orientation=result.orientation, on=prepared.on,
        )  # fmt: skip
    violations = judged.violations
    if violations:
        listed = "\n".join(f"  - {v}" for v in violations[:20])
        raise CheckFailedError(
            f"the checker found {len(violations)} violation(s) in the solver's result:\n{listed}"
        )
    for name, value in result.stage_values.items():
        again = int(judged.stages[Stage(name)])
        if again != value:
            raise CheckFailedError(
                f"objective stage {name}: solver says {value}, checker recomputes {again}"
            )
    if inst.policy.quotas.mode == QuotaMode.SOFT:  # the shortfalls a planner reads, per row
        rules = {rule.id: rule for rule in inst.policy.quotas.rules}
        expected = {
            row_name(rules[q.rule_id], q.scope): q.shortfall for q in judged.quotas if q.shortfall
        }
        reported = {k: v for k, v in result.shortfalls.items() if v}
        if reported != expected:
            raise CheckFailedError(
                f"quota shortfalls: solver says {reported}, checker recomputes {expected}"
            )
