"""Solve one round exactly: LP certificate, proven core, staged CP-SAT, infeasibility diagnosis.

The algorithm (measured in benchmarks/, argued in docs/solver.md):

1. Expand the eligible pairs into triples and fold the objective stages into one exact weight
   (`matching.solver.objective.combined_weights`).
2. Solve the LP relaxation by column generation (`matching.solver.lp`) and compute a bound UB
   valid for every integer solution and each triple's reduced cost rc_t.
3. Solve the staged CP-SAT model on the core ``{t : rc_t <= delta}`` to optimality: value z.
   Any solution using a triple outside the core is worth at most ``UB - rc_t < UB - delta``; so
   when ``UB - z <= delta`` the core's optimum is the optimum of the full round. Otherwise set
   ``delta = UB - z`` and repeat (the core only grows; it ends at the full set at worst).
4. Hard quotas infeasible: rebuild with guard literals and let CP-SAT name the conflicting rules.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from matching.params import SolveParams
from matching.solver.build import BuiltModel, build_model
from matching.solver.infeasibility import conflicting_rules
from matching.solver.instance import RoundInstance, Triples, build_triples
from matching.solver.lp import lp_certificate, top_per_group
from matching.solver.objective import combined_weights, stage_terms
from matching.solver.rows import quota_rows
from matching.types import QuotaMode, Stage

_logger = logging.getLogger(__name__)

PRUNE_MIN_TRIPLES = 3000
"""Below this many triples the full model is small enough to solve directly."""


@dataclass
class RoundSolution:
    """Raw outcome of a round's solve, in positions; `matching.round` turns it into a Result."""

    status: str  # OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN
    unit: np.ndarray  # allocated unit positions
    demand: np.ndarray  # allocated demand positions
    res: np.ndarray  # réservataire index, -1 for units excluded from the flux
    orientation: dict[int, int]  # flux unit position -> réservataire index
    stage_values: dict[Stage, int] = field(default_factory=dict)
    stage_bounds: dict[Stage, float] = field(default_factory=dict)
    shortfalls: dict[str, int] = field(default_factory=dict)  # soft mode: row name -> shortfall
    conflicts: list[str] = field(default_factory=list)
    stats: dict[str, float | int | str] = field(default_factory=dict)


@dataclass
class _StagedOutcome:
    status: str
    chosen: np.ndarray
    orientation: dict[int, int]
    shortfall: list[int]
    values: dict[Stage, int]
    bounds: dict[Stage, float]


def _cp_solver(params: SolveParams, time_left: float) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.max_time_in_seconds = max(0.01, time_left)
    p.num_workers = params.num_workers
    p.random_seed = params.seed
    p.relative_gap_limit = params.relative_gap
    p.log_search_progress = params.log
    if params.deterministic and params.num_workers > 1:
        p.interleave_search = True
    return solver


def solve_stages(
    built: BuiltModel, params: SolveParams, deadline: float, hint: _StagedOutcome | None = None
) -> _StagedOutcome:
    """Optimise the stages in order, fixing each optimum before the next (DOMAIN A5)."""
    model, v = built.model, built.vars
    values: dict[Stage, int] = {}
    bounds: dict[Stage, float] = {}
    status = "OPTIMAL"
    chosen = hint.chosen if hint else np.zeros(0, dtype=np.int64)
    orientation = dict(hint.orientation) if hint else {}
    shortfall = list(hint.shortfall) if hint else []
    for term in built.stages or []:
        expr = built.stage_expr(term)
        model.maximize(expr)
        model.clear_hints()
        if hint is not None or values:
            _add_hint(built, chosen, orientation, shortfall)
        solver = _cp_solver(params, deadline - time.perf_counter())
        code = solver.solve(model)
        if code == cp_model.INFEASIBLE:
            return _StagedOutcome("INFEASIBLE", chosen, orientation, shortfall, values, bounds)
        if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return _StagedOutcome("UNKNOWN", chosen, orientation, shortfall, values, bounds)
        value = round(solver.objective_value)
        values[term.stage] = value
        bounds[term.stage] = float(solver.best_objective_bound)
        if code == cp_model.FEASIBLE and abs(solver.best_objective_bound - value) > 0.5:
            status = "FEASIBLE"
        chosen = v.chosen(solver)
        orientation = v.orientation(solver)
        shortfall = [int(solver.value(s)) for s in v.shortfall]
        model.add(expr >= value)
    if not built.stages:  # no objective: any feasible allocation (none is chosen)
        solver = _cp_solver(params, deadline - time.perf_counter())
        code = solver.solve(model)
        if code == cp_model.INFEASIBLE:
            return _StagedOutcome("INFEASIBLE", chosen, orientation, shortfall, values, bounds)
        chosen, orientation = v.chosen(solver), v.orientation(solver)
    return _StagedOutcome(status, chosen, orientation, shortfall, values, bounds)


def _add_hint(
    built: BuiltModel, chosen: np.ndarray, orientation: dict[int, int], short: list[int]
) -> None:
    model, v = built.model, built.vars
    on = np.zeros(len(v.x), dtype=bool)
    on[chosen] = True
    for var, val in zip(v.x, on.tolist(), strict=True):
        model.add_hint(var, val)
    for (u, r), var in v.orient.items():
        if u in orientation:
            model.add_hint(var, orientation[u] == r)
    for var, val in zip(v.shortfall, short, strict=False):
        model.add_hint(var, val)


def _combined_value(values: dict[Stage, int], stages: list[Stage], multipliers: list[int]) -> int:
    return sum(m * values.get(s, 0) for m, s in zip(multipliers, stages, strict=True))


def solve_round(inst: RoundInstance, params: SolveParams) -> RoundSolution:
    """Solve one round to proven optimality (or the best found within the time limit)."""
    start = time.perf_counter()
    deadline = start + params.time_limit_s
    triples = build_triples(inst)
    soft = inst.policy.quotas.mode == QuotaMode.SOFT
    rows = quota_rows(inst, triples)
    terms = stage_terms(
        inst.policy.objective.stages, triples, rows, inst.policy.quotas.mode, len(inst.units)
    )
    wx, ws, multipliers = combined_weights(terms)
    stats: dict[str, float | int | str] = {"triples": len(triples), "method": "full"}
    magnitude = float(np.abs(wx).max(initial=0.0)) * max(1, len(inst.units))
    prunable = params.prune and len(triples) > PRUNE_MIN_TRIPLES and magnitude < 1e13
    outcome: _StagedOutcome | None = None
    core_index = np.arange(len(triples))
    if prunable:
        cert = lp_certificate(
            inst, triples, rows, inst.bands(), wx, ws, soft,
            time_limit_s=max(1.0, 0.5 * params.time_limit_s),
        )  # fmt: skip
        stats.update(lp_bound=cert.upper_bound, lp_rounds=cert.rounds, lp_columns=cert.lp_columns,
                     lp_seconds=round(cert.seconds, 3))  # fmt: skip
        if cert.status == "infeasible":
            return _infeasible(inst, triples, params, deadline, stats)
        if cert.status == "bound":
            stats["method"] = "lp_core"
            outcome, core_index = _solve_with_core(
                inst, triples, cert.upper_bound, cert.reduced_cost, params, deadline, terms,
                multipliers, stats,
            )  # fmt: skip
    if outcome is None:
        core_index = np.arange(len(triples))
        outcome = solve_stages(build_model(inst, triples), params, deadline)
        stats["core_triples"] = len(triples)
    if outcome.status == "INFEASIBLE":
        return _infeasible(inst, triples, params, deadline, stats)
    stats["seconds"] = round(time.perf_counter() - start, 3)
    picked = core_index[outcome.chosen]
    core_rows = quota_rows(inst, triples.subset(core_index)) if soft else []
    return RoundSolution(
        status=outcome.status,
        unit=triples.unit[picked],
        demand=triples.demand[picked],
        res=triples.res[picked].astype(np.int64),
        orientation=outcome.orientation,
        stage_values=outcome.values,
        stage_bounds=outcome.bounds,
        shortfalls={row.name: s for row, s in zip(core_rows, outcome.shortfall, strict=False)},
        stats=stats,
    )


def _solve_with_core(
    inst: RoundInstance,
    triples: Triples,
    upper: float,
    rc: np.ndarray,
    params: SolveParams,
    deadline: float,
    terms: list,
    multipliers: list[int],
    stats: dict[str, float | int | str],
) -> tuple[_StagedOutcome | None, np.ndarray]:
    """Steps 3 of the module docstring: grow the core until the LP bound proves its optimum."""
    stages = [t.stage for t in terms]
    tol = 1e-7 * max(1.0, abs(upper)) + 1e-6
    delta = 0.5 * (multipliers[-1] if multipliers else 1.0)
    previous: tuple[_StagedOutcome, np.ndarray] | None = None
    for iteration in range(1, 30):
        core_index = np.flatnonzero(rc <= delta + tol)
        hint = None
        if previous is not None:
            old_outcome, old_index = previous
            position = {int(t): i for i, t in enumerate(core_index)}
            hint = _StagedOutcome(
                "HINT", np.array([position[int(old_index[c])] for c in old_outcome.chosen], dtype=np.int64),
                old_outcome.orientation, old_outcome.shortfall, {}, {},
            )  # fmt: skip
        built = build_model(inst, triples.subset(core_index))
        outcome = solve_stages(built, params, deadline, hint)
        stats.update(core_triples=len(core_index), core_iterations=iteration)
        if outcome.status == "INFEASIBLE":
            if len(core_index) == len(triples):
                return outcome, core_index
            delta = 4 * delta + (multipliers[0] if multipliers else 1.0)
            continue
        if outcome.status != "OPTIMAL":
            return outcome, core_index  # out of time: best found, with its bound
        z = _combined_value(outcome.values, stages, multipliers)
        needed = upper - z
        stats["certificate_gap"] = float(needed)
        if needed <= delta + tol or len(core_index) == len(triples):
            stats["proof"] = "lp_reduced_cost"
            return outcome, core_index
        delta = needed
        previous = (outcome, core_index)
    return None, np.arange(len(triples))


def _infeasible(
    inst: RoundInstance,
    triples: Triples,
    params: SolveParams,
    deadline: float,
    stats: dict[str, float | int | str],
) -> RoundSolution:
    """Name the conflicting rules on a feasibility-preserving reduction of the round."""
    rows = quota_rows(inst, triples)
    n_keep = int(inst.flux_units.sum()) + len(inst.units) + 1
    keep = (
        top_per_group(triples, rows, n_keep)
        if len(triples) > PRUNE_MIN_TRIPLES
        else np.arange(len(triples))
    )
    built = build_model(inst, triples.subset(keep), diagnose=True)
    conflicts = conflicting_rules(
        built, max(1.0, deadline - time.perf_counter()), params.num_workers
    )
    empty = np.zeros(0, dtype=np.int64)
    return RoundSolution("INFEASIBLE", empty, empty, empty, {}, conflicts=conflicts, stats=stats)
