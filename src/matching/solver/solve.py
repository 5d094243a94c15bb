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


class Budget:
    """The solve's time budget, spent in CP-SAT's deterministic time so that runs reproduce.

    CP-SAT reports a deterministic time (a work count, close to seconds on this kind of
    machine) that does not depend on the machine's load; limiting the search by it, with the
    interleaved parallel search, makes a cut-off run give the same solution every time. The
    wall-clock deadline (three times the budget) is only a safety net.
    """

    def __init__(self, seconds: float) -> None:
        self.left = seconds
        self.deadline = time.perf_counter() + 3 * seconds + 5

    def share(self, fraction: float) -> Budget:
        """A sub-budget of ``fraction`` of what is left (spent from this one as it is used)."""
        sub = Budget(self.left * fraction)
        sub.deadline = self.deadline
        sub.parent = self  # type: ignore[attr-defined]
        return sub

    def spend(self, dtime: float) -> None:
        """Record deterministic time used by a CP-SAT call."""
        self.left = max(0.0, self.left - dtime)
        parent = getattr(self, "parent", None)
        if parent is not None:
            parent.spend(dtime)


def _run(solver: cp_model.CpSolver, model: cp_model.CpModel, budget: Budget) -> int:
    code = int(solver.solve(model))
    budget.spend(solver.response_proto.deterministic_time)
    return code


def _cp_solver(params: SolveParams, budget: Budget, large: bool = False) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.max_deterministic_time = max(0.01, budget.left)
    p.max_time_in_seconds = max(0.01, budget.deadline - time.perf_counter())
    if large:
        # measured on the Caen la Mer monthly core (benchmarks/): probing and symmetry
        # detection cost most of the time on these assignment models and buy nothing
        p.cp_model_probing_level = 0
        p.symmetry_level = 0
    p.num_workers = params.num_workers
    p.random_seed = params.seed
    p.relative_gap_limit = params.relative_gap
    p.log_search_progress = params.log
    if params.deterministic and params.num_workers > 1:
        if large:
            p.interleave_search = True
        else:
            # small models: one worker is deterministic by itself, and measured 3-5x faster
            # than the interleaved portfolio, which waits on its slowest LP worker
            p.num_workers = 1
    return solver


@dataclass(frozen=True)
class StageCaps:
    """Upper bounds on each stage implied by a bound on the folded objective (the LP certificate).

    With ``sum_j M_j stage_j <= upper`` and every later stage at least its least value, stage k
    is at most ``(upper - sum_{j<k} M_j v_j - sum_{j>k} M_j low_j) / M_k`` once the earlier
    stages are fixed at v_j. Added as a constraint, it lets CP-SAT stop as soon as it reaches it.
    """

    upper: float
    multipliers: list[int]
    lows: list[int]

    def cap(self, k: int, fixed: list[int]) -> int:
        """The cap of stage k given the values of stages 0..k-1."""
        m = self.multipliers
        rest = self.upper - sum(mj * vj for mj, vj in zip(m[:k], fixed, strict=True))
        rest -= sum(mj * lj for mj, lj in zip(m[k + 1 :], self.lows[k + 1 :], strict=True))
        return int(np.floor(rest / m[k] + 1e-9 * max(1.0, abs(rest) / m[k])))


def solve_stages(
    built: BuiltModel,
    params: SolveParams,
    budget: Budget,
    hint: _StagedOutcome | None = None,
    caps: StageCaps | None = None,
) -> _StagedOutcome:
    """Optimise the stages in order, fixing each optimum before the next (DOMAIN A5)."""
    model, v = built.model, built.vars
    values: dict[Stage, int] = {}
    bounds: dict[Stage, float] = {}
    status = "OPTIMAL"
    chosen = hint.chosen if hint else np.zeros(0, dtype=np.int64)
    orientation = dict(hint.orientation) if hint else {}
    shortfall = list(hint.shortfall) if hint else []
    fixed: list[int] = []
    for k, term in enumerate(built.stages or []):
        expr = built.stage_expr(term)
        cap = caps.cap(k, fixed) if caps is not None else None
        if cap is not None:
            model.add(expr <= cap)
        model.maximize(expr)
        model.clear_hints()
        if hint is not None or values:
            _add_hint(built, chosen, orientation, shortfall)
        solver = _cp_solver(params, budget, large=len(v.x) > params.prune_above_triples)
        code = _run(solver, model, budget)
        if code == cp_model.INFEASIBLE:
            return _StagedOutcome("INFEASIBLE", chosen, orientation, shortfall, values, bounds)
        if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            if values or hint is not None:
                # out of time in a later stage: the previous stage's solution (or the hint)
                # still satisfies every constraint; keep it and say it is not proven
                for later in built.stages[k:]:
                    values[later.stage] = int(later.x[chosen].sum()) + int(
                        np.dot(later.s[: len(shortfall)], shortfall)
                    )
                if cap is not None:
                    bounds[term.stage] = float(cap)
                return _StagedOutcome("FEASIBLE", chosen, orientation, shortfall, values, bounds)
            # Never return nothing when a solution exists: the first stage found none within the
            # budget, so look for any feasible allocation (no objective), on a small extra budget.
            model.clear_objective()
            rescue = _cp_solver(params, Budget(max(1.0, 0.1 * params.time_limit_s)))
            code = int(rescue.solve(model))
            if code == cp_model.INFEASIBLE:
                return _StagedOutcome("INFEASIBLE", chosen, orientation, shortfall, values, bounds)
            if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                return _StagedOutcome("UNKNOWN", chosen, orientation, shortfall, values, bounds)
            chosen, orientation = v.chosen(rescue), v.orientation(rescue)
            shortfall = [int(rescue.value(s)) for s in v.shortfall]
            for later in built.stages[k:]:
                values[later.stage] = int(later.x[chosen].sum()) + int(
                    np.dot(later.s[: len(shortfall)], shortfall)
                )
                bounds[later.stage] = float(later.high) if cap is None else float(cap)
            return _StagedOutcome("FEASIBLE", chosen, orientation, shortfall, values, bounds)
        value = round(solver.objective_value)
        values[term.stage] = value
        # with a cap from the LP certificate, the cap is the global bound (CP-SAT's own bound
        # only speaks of the core model it was given)
        bounds[term.stage] = float(cap) if cap is not None else float(solver.best_objective_bound)
        if code == cp_model.FEASIBLE and abs(solver.best_objective_bound - value) > 0.5:
            status = "FEASIBLE"
        chosen = v.chosen(solver)
        orientation = v.orientation(solver)
        shortfall = [int(solver.value(s)) for s in v.shortfall]
        model.add(expr >= value)
        fixed.append(value)
    if not built.stages:  # no objective: any feasible allocation (none is chosen)
        solver = _cp_solver(params, budget)
        code = _run(solver, model, budget)
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
    budget = Budget(params.time_limit_s)
    triples = build_triples(inst)
    soft = inst.policy.quotas.mode == QuotaMode.SOFT
    rows = quota_rows(inst, triples)
    terms = stage_terms(
        inst.policy.objective.stages, triples, rows, inst.policy.quotas.mode, len(inst.units)
    )
    wx, ws, multipliers = combined_weights(terms)
    stats: dict[str, float | int | str] = {"triples": len(triples), "method": "full"}
    magnitude = float(np.abs(wx).max(initial=0.0)) * max(1, len(inst.units))
    prunable = params.prune and len(triples) > params.prune_above_triples and magnitude < 1e13
    outcome: _StagedOutcome | None = None
    core_index = np.arange(len(triples))
    if prunable:
        cert = lp_certificate(
            inst, triples, rows, inst.bands(), wx, ws, soft,
            time_limit_s=max(30.0, params.time_limit_s),
        )  # fmt: skip
        stats.update(lp_bound=cert.upper_bound, lp_rounds=cert.rounds, lp_columns=cert.lp_columns,
                     lp_seconds=round(cert.seconds, 3))  # fmt: skip
        if cert.status == "infeasible":
            return _infeasible(inst, triples, params, budget, stats)
        if cert.status == "bound":
            stats["method"] = "lp_core"
            outcome, core_index = _solve_with_core(
                inst, triples, cert.upper_bound, cert.reduced_cost, params, budget, terms,
                multipliers, stats, cert.primal,
            )  # fmt: skip
    if outcome is None:
        core_index = np.arange(len(triples))
        outcome = solve_stages(build_model(inst, triples), params, budget)
        stats["core_triples"] = len(triples)
    if outcome.status == "INFEASIBLE":
        return _infeasible(inst, triples, params, budget, stats)
    stats["seconds"] = round(time.perf_counter() - start, 3)
    picked = core_index[outcome.chosen]
    core_rows = quota_rows(inst, triples.subset(core_index)) if soft else []
    return RoundSolution(
        status=outcome.status,
        unit=triples.unit[picked],
        demand=triples.demand[picked],
        res=triples.res[picked].astype(np.int64),
        orientation=outcome.orientation,
        # stages are maximised internally; the shortfall stage is reported as the (positive)
        # weighted shortfall it minimises, as the checker computes it
        stage_values={k: (-v if k == Stage.SHORTFALL else v) for k, v in outcome.values.items()},
        stage_bounds={k: (-b if k == Stage.SHORTFALL else b) for k, b in outcome.bounds.items()},
        shortfalls={row.name: s for row, s in zip(core_rows, outcome.shortfall, strict=False)},
        stats=stats,
    )


def _solve_with_core(
    inst: RoundInstance,
    triples: Triples,
    upper: float,
    rc: np.ndarray,
    params: SolveParams,
    budget: Budget,
    terms: list,
    multipliers: list[int],
    stats: dict[str, float | int | str],
    primal: np.ndarray | None = None,
) -> tuple[_StagedOutcome | None, np.ndarray]:
    """Step 3 of the module docstring: grow the core until the LP bound proves its optimum."""
    stages = [t.stage for t in terms]
    tol = 1e-7 * max(1.0, abs(upper)) + 1e-6
    delta = 0.5 * (multipliers[-1] if multipliers else 1.0)
    previous: tuple[_StagedOutcome, np.ndarray] | None = None
    caps = StageCaps(upper, multipliers, [t.low for t in terms])
    for iteration in range(1, 30):
        core_index = np.flatnonzero(rc <= delta + tol)
        hint = None
        if previous is None and primal is not None:
            hint = _lp_guided_hint(inst, triples, core_index, primal, params, budget, caps)
            stats["hint"] = "lp_rounding" if hint is not None else "none"
        if previous is not None:
            old_outcome, old_index = previous
            position = {int(t): i for i, t in enumerate(core_index)}
            moved = [position[int(old_index[c])] for c in old_outcome.chosen]
            hint = _StagedOutcome(
                "HINT", np.array(moved, dtype=np.int64),
                old_outcome.orientation, old_outcome.shortfall, {}, {},
            )  # fmt: skip
        built = build_model(inst, triples.subset(core_index))
        outcome = solve_stages(built, params, budget, hint, caps)
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


def _lp_guided_hint(
    inst: RoundInstance,
    triples: Triples,
    core_index: np.ndarray,
    primal: np.ndarray,
    params: SolveParams,
    budget: Budget,
    caps: StageCaps,
) -> _StagedOutcome | None:
    """A first solution: keep the LP's integral assignments, let CP-SAT complete the rest (RINS).

    The LP relaxation is nearly integral: fixing its ones leaves a small problem over the
    remaining units that CP-SAT solves quickly; the result hints the full core solve.
    """
    ones = primal[core_index] > 1 - 1e-6
    if not ones.any():
        return None
    built = build_model(inst, triples.subset(core_index))
    for i in np.flatnonzero(ones):
        built.model.add(built.vars.x[i] == 1)
    outcome = solve_stages(built, params, budget.share(0.25), None, caps)
    return outcome if outcome.status in {"OPTIMAL", "FEASIBLE"} else None


def _infeasible(
    inst: RoundInstance,
    triples: Triples,
    params: SolveParams,
    budget: Budget,
    stats: dict[str, float | int | str],
) -> RoundSolution:
    """Name the conflicting rules on a feasibility-preserving reduction of the round."""
    rows = quota_rows(inst, triples)
    n_keep = int(inst.flux_units.sum()) + len(inst.units) + 1
    keep = (
        top_per_group(triples, rows, n_keep)
        if len(triples) > params.prune_above_triples
        else np.arange(len(triples))
    )
    built = build_model(inst, triples.subset(keep), diagnose=True)
    conflicts = conflicting_rules(built, max(1.0, budget.left), params.num_workers)
    empty = np.zeros(0, dtype=np.int64)
    return RoundSolution("INFEASIBLE", empty, empty, empty, {}, conflicts=conflicts, stats=stats)
