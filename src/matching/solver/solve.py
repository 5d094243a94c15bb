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

import dataclasses
import functools
import logging
import time
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from matching.exceptions import InfeasibleError
from matching.params import SolveParams
from matching.policy.model import QuotaRule
from matching.policy.quotas import Tally
from matching.solver.branch import branch_and_bound
from matching.solver.build import BuiltModel, build_model
from matching.solver.cpsat import LARGE_MODEL, Budget, cp_solver, run
from matching.solver.cuts import least_shortfalls, unreachable_conflicts
from matching.solver.dominance import MIN_DROPPED, undominated, undominated_pairs
from matching.solver.greedy import greedy_round
from matching.solver.infeasibility import conflicting_rules, fewest_bands, minimal_conflict
from matching.solver.instance import (
    RoundInstance,
    Triples,
    build_triples,
    group_ranks,
    unit_res_key,
)
from matching.solver.lp import Certificate, LPSession, LPValues, bound_slack, top_per_group
from matching.solver.mip import NODE_LIMIT, solve_small_mip
from matching.solver.objective import StageTerms, combined_weights, stage_terms
from matching.solver.rows import QuotaRow, quota_rows, row_classes, rows_on
from matching.solver.solution import RoundSolution
from matching.solver.ties import prefer_tie_break
from matching.types import QuotaMode, Stage

_logger = logging.getLogger(__name__)

FULL_MODEL_LIMIT = 500_000
"""Triples above which the full CP-SAT model is never built (a pooled year has 18.9 million)."""

NEIGHBOURHOOD_LIMIT = 20_000
"""Triples above which an LP-guided neighbourhood is thinned (January: 1,500; July: 4,700)."""

TRIM_LIMIT = 20_000
"""Triples (of the reduced round) above which the count ranges' bands are named untrimmed."""

NEIGHBOURHOOD_PER_GROUP = 40
"""Households kept per free (unit, réservataire) in a thinned neighbourhood, best ranks first."""

ROOT_SEARCH_NODES = 20
"""Branch-and-bound nodes of the first LP-guided search (`_lp_guided_hint` at the root).

Why: that search only gives the branching its incumbent; proving its neighbourhood's optimum
proves nothing about the round (the branching does). Its best solution comes at the root node
in the measured rounds; on one of 96 generated monthly rounds (seed 8, April) HiGHS then spent
202 nodes and 1.6 s proving a 17-point gap in the neighbourhood, whose optimum the first
branching node's search beat in 0.03 s. With 20 nodes: 2.61 -> 2.02 s on that round, the same
optimum and node counts on all 96 (`python -m benchmarks.months --seeds 1:9`)."""

MIN_BRANCH_WORK = 1.0
"""Estimated seconds of node LPs (`matching.solver.lp.lp_work`) the branching may always spend,
however small the budget; beyond it, what is left of the budget.

Why: the budget is a work count, and 64 node LPs took 10 s of a 2 s budget on January with a
Q1 floor against a Q1 ceiling per landlord (now 2-3 s, then the core search). But cutting a
cheap branching short costs more than it saves: a 40 x 800 round proves in 19 nodes (0.12 s
estimated, 0.13 s measured), and cut at a 0.05 s budget it went on to the core search (its MIP
alone has a 1 s floor) and came back FEASIBLE after 2.5 s."""

RINS_SECONDS = 10.0
"""Wall-clock safety limit of one LP-guided neighbourhood search (`matching.solver.mip`); its
node limit, not the clock, is what normally ends a long search (so runs reproduce)."""


@dataclass
class _StagedOutcome:
    status: str
    chosen: np.ndarray
    orientation: dict[int, int]
    shortfall: list[int]
    values: dict[Stage, int]
    bounds: dict[Stage, float]
    core: np.ndarray | None = None  # the triple indices ``chosen`` refers to, when not implied


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
    highs: list[int]  # each stage's range: no bound reported above it

    def reported(self, k: int, cap: int) -> float:
        """Stage k's cap as a reported bound: at most the top of the stage's range.

        Why: once an earlier stage falls short of its own cap, the fold leaves a later stage
        room far beyond anything it can reach (a 40-unit round's score "bound 20,798,613",
        a gap of 99.98 %, where no 40 households score more than a few thousand).
        """
        return float(min(cap, self.highs[k]))

    def cap(self, k: int, fixed: list[int]) -> int:
        """The cap of stage k given the values of stages 0..k-1."""
        m = self.multipliers
        rest = self.upper - sum(mj * vj for mj, vj in zip(m[:k], fixed, strict=True))
        rest -= sum(mj * lj for mj, lj in zip(m[k + 1 :], self.lows[k + 1 :], strict=True))
        return int(np.floor(rest / m[k] + 1e-9 * max(1.0, abs(rest) / m[k])))

    def bounds(self, stages: list[Stage], values: dict[Stage, int]) -> dict[Stage, float]:
        """Each stage's cap given a solution's values of the stages before it."""
        out: dict[Stage, float] = {}
        for k, stage in enumerate(stages):
            out[stage] = self.reported(k, self.cap(k, [values[s] for s in stages[:k]]))
        return out


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
        # the cap as a bound on this stage for the whole round (None: no LP certificate)
        capped = caps.reported(k, cap) if caps is not None and cap is not None else None
        if cap is not None:
            model.add(expr <= cap)
        model.maximize(expr)
        model.clear_hints()
        if hint is not None or values:
            _add_hint(built, chosen, orientation, shortfall)
        solver = cp_solver(params, budget, large=len(v.x) > LARGE_MODEL)
        code = run(solver, model, budget)
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
                    # what is known of each stage not proven: at most its cap or its range
                    # (no bound at all read as "bound = value", a gap of 0 without a proof)
                    bounds[later.stage] = float(later.high)
                if capped is not None:
                    bounds[term.stage] = capped
                return _StagedOutcome("FEASIBLE", chosen, orientation, shortfall, values, bounds)
            # Never return nothing when a solution exists: the first stage found none within the
            # budget, so look for any feasible allocation (no objective), on a small extra budget.
            model.clear_objective()
            rescue = cp_solver(params, Budget(max(1.0, 0.1 * params.time_limit_s)))
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
                bounds[later.stage] = float(later.high) if capped is None else capped
            return _StagedOutcome("FEASIBLE", chosen, orientation, shortfall, values, bounds)
        value = round(solver.objective_value)
        values[term.stage] = value
        # CP-SAT's own bound may be looser than the stage's range (a search stopped before its
        # LP spoke reports the sum of the domains: an allocations bound of 158 for 85 units was
        # seen once); no stage exceeds its range, and a value at the top of it is proven
        own = min(float(solver.best_objective_bound), float(term.high))
        # with a cap from the LP certificate, the cap is the global bound (CP-SAT's own bound
        # only speaks of the core model it was given)
        bounds[term.stage] = own if capped is None else capped
        # CP-SAT says OPTIMAL too when it stops at `relative_gap` (--gap): a bound above the
        # value is no proof whatever the code (a --gap 0.5 round said OPTIMAL at 21 of 24)
        if abs(own - value) > 0.5:
            status = "FEASIBLE"
        hinted = _stage_value(term, chosen, shortfall) if len(chosen) or shortfall else None
        if hinted is None or hinted < value:
            # the hint (or the previous stage's solution) falls short of this stage's optimum:
            # carry CP-SAT's solution; otherwise keep hinting the hint, often better later on
            chosen = v.chosen(solver)
            orientation = v.orientation(solver)
            shortfall = [int(solver.value(s)) for s in v.shortfall]
        model.add(expr >= value)
        fixed.append(value)
    if not built.stages:  # no objective: any feasible allocation (none is chosen)
        solver = cp_solver(params, budget)
        code = run(solver, model, budget)
        if code == cp_model.INFEASIBLE:
            return _StagedOutcome("INFEASIBLE", chosen, orientation, shortfall, values, bounds)
        chosen, orientation = v.chosen(solver), v.orientation(solver)
    return _StagedOutcome(status, chosen, orientation, shortfall, values, bounds)


def _stage_value(term: StageTerms, chosen: np.ndarray, shortfall: list[int]) -> int:
    """A stage's value for a solution given by its chosen triples and shortfalls."""
    return int(term.x[chosen].sum()) + int(np.dot(term.s[: len(shortfall)], shortfall))


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
    """Solve one round to proven optimality (or the best found within the time limit).

    In soft mode, when the policy's first stage is the shortfall and every rule's weight is
    positive, the round is first solved with hard quotas (when it is large enough for the LP
    path), each share floor shifted by the least shortfall it has in every solution
    (`matching.solver.cuts.least_shortfalls`, from the quota counts' ranges; 0 for a floor in
    reach). If that is proven optimal, it is the soft optimum: every solution's weighted
    shortfall is at least the sum of those least shortfalls, which the shifted round reaches,
    and with positive weights only solutions with exactly those shortfalls reach it, the
    solutions of the shifted hard round; among them the later stages are that round's. The
    hard path has the staircase cuts and branching that prove binding quotas in seconds; the
    soft path does not (the January round with soft quotas: FEASIBLE after 61 s before).
    """
    policy = inst.policy
    shortfall_first = (
        policy.quotas.mode == QuotaMode.SOFT
        and policy.objective.stages[:1] == (Stage.SHORTFALL,)
        and all(rule.weight > 0 for rule in policy.quotas.rules)
    )  # otherwise a shortfall may pay, and the hard optimum need not be the soft one
    budget = Budget(params.time_limit_s)
    if shortfall_first and params.prune and len(inst.pair_unit) > params.prune_above_triples:
        # one budget and one safety net for both attempts: the soft path gets what the hard
        # attempt left (it had the whole budget again, and a net of its own from its start:
        # a 30 x 800 round with a 1 s budget ran 8.3 s, its CP-SAT calls 1.5 s of work)
        triples = build_triples(inst)  # the same for both modes: built once
        rows = quota_rows(inst, triples)
        hard, hard_rows, shifts = _hard_with_least_shortfalls(inst, triples, rows)
        attempt = _solve_round(
            hard,
            params.model_copy(update={"time_limit_s": 0.5 * params.time_limit_s}),
            diagnose=False,
            triples=triples,
            rows=hard_rows,
            budget=budget.part(0.5 * params.time_limit_s),
        )
        if attempt.status == "OPTIMAL":
            weighted = sum(rule.weight * s for rule, s in shifts.values())
            attempt.stage_values = {Stage.SHORTFALL: weighted, **attempt.stage_values}
            attempt.stage_bounds = {Stage.SHORTFALL: float(weighted), **attempt.stage_bounds}
            attempt.shortfalls = {name: s for name, (_rule, s) in shifts.items()}
            attempt.stats["soft_solved_as_hard"] = 1
            return _finished(inst, attempt, budget)
        solution = _solve_round(inst, params, triples=triples, rows=rows, budget=budget)
        return _finished(inst, _no_worse_than_greedy(inst, solution), budget)
    solution = _solve_round(inst, params, budget=budget)
    return _finished(inst, _no_worse_than_greedy(inst, solution), budget)


def _no_worse_than_greedy(inst: RoundInstance, solution: RoundSolution) -> RoundSolution:
    """An unproven soft solution (or none), or the greedy one when it is lexicographically better.

    Why: a soft round far behind its year's tallies (1,000 allocations outside QPV so far, none
    to Q1 households) defeated the LP path: its LP did not finish, and the search kept 99
    allocations of 310 with a weighted shortfall of 246,000, where `greedy_score` allocates all
    310 with 93,000 in a second. The greedy skeleton (`matching.solver.greedy`) reads the same
    instance and its values are counted as the checker counts them; the solution's bounds
    still hold (they are the round's). A soft search that found nothing in time (UNKNOWN, an
    LP unfinished on a huge round) gets the greedy's allocation with loose bounds
    (`_trivial_bounds`), not an empty one. A proven solution, or a hard round (the greedy may
    break a hard quota), is returned as it is.
    """
    if inst.policy.quotas.mode != QuotaMode.SOFT or solution.status not in {"FEASIBLE", "UNKNOWN"}:
        return solution
    try:
        greedy = greedy_round(inst, inst.tie_rank, "greedy_score")
    except InfeasibleError:  # the bands' floors need more flux units than the round has
        return solution
    if solution.status == "FEASIBLE" and _lexicographic(inst, greedy) <= _lexicographic(
        inst, solution
    ):
        return solution
    greedy.stage_bounds = solution.stage_bounds or _trivial_bounds(inst)
    greedy.stats = {**solution.stats, "primal": "greedy_score"}
    return greedy


def _greedy_triples(inst: RoundInstance, triples: Triples, built: bool = False) -> np.ndarray:
    """Positions in ``triples`` of the greedy's allocation (`greedy_round`), those it holds.

    The LP's rescue columns (`matching.solver.lp.RESCUE_AFTER_ROUNDS`): an allocation of every
    unit it can fill that keeps the quotas reachable, where the unconstrained optimum's pairs may
    not. Triples the round dropped as dominated are left out; none at all if the bands' floors
    cannot be met (the LP then proves the round infeasible by itself). ``built``: ``triples`` is
    ``build_triples(inst)`` itself, which the greedy then reads instead of building it again.
    """
    try:
        greedy = greedy_round(
            inst, inst.tie_rank, "greedy_score", triples=triples if built else None
        )
    except InfeasibleError:
        return np.zeros(0, dtype=np.int64)
    # each housed household's unit and réservataire, read off per triple (one pass, no sort of
    # the round's triples: sorting the pooled year's 18.9 million keys took about 2 s); int32,
    # as the triples' own positions, so that a Paris-sized round's gathers stay small
    unit_of = np.full(len(inst.demands), -1, dtype=np.int32)
    res_of = np.full(len(inst.demands), -2, dtype=np.int32)
    unit_of[greedy.demand] = greedy.unit
    res_of[greedy.demand] = greedy.res
    return np.flatnonzero(
        (unit_of[triples.demand] == triples.unit) & (res_of[triples.demand] == triples.res)
    )


def _trivial_bounds(inst: RoundInstance) -> dict[Stage, float]:
    """Bounds every allocation of the round keeps, for a search that found nothing to bound.

    No shortfall below 0, no more allocations than units with an eligible pair, no more score
    than each unit's best pair (or 0, left empty). Loose, so the gap says the result is
    unproven: without them a greedy answer read "bound = value", a gap of 0.
    """
    best = np.zeros(len(inst.units))
    np.maximum.at(best, inst.pair_unit, inst.scores[inst.pair_demand].astype(np.float64))
    values = {
        Stage.SHORTFALL: 0.0,
        Stage.ALLOCATIONS: float(len(np.unique(inst.pair_unit))),
        Stage.SCORE: float(best.sum()),
    }
    return {stage: values[stage] for stage in inst.policy.objective.stages}


def _lexicographic(inst: RoundInstance, solution: RoundSolution) -> tuple[int, ...]:
    """A solution's stages as a tuple that compares as the policy ranks them.

    Counted from the allocation itself (a search cut short may not have valued every stage);
    the weighted shortfall is the solution's own (0 for a round with no quota row), negated.
    """
    values = {
        Stage.SHORTFALL: -int(solution.stage_values.get(Stage.SHORTFALL, 0)),
        Stage.ALLOCATIONS: len(solution.demand),
        Stage.SCORE: int(inst.scores[solution.demand].sum()),
    }
    return tuple(values[stage] for stage in inst.policy.objective.stages)


def _finished(inst: RoundInstance, solution: RoundSolution, budget: Budget) -> RoundSolution:
    """The solution as `solve_round` returns it: tie-broken, and said to be cut short if so.

    The policy's tie-break among households of equal standing (`ties`): the swaps keep every
    stage value, quota count and orientation, so the status and the bounds stand as the
    search proved them. A FEASIBLE solution is flagged ``time_limited``, which the result's
    reasons read (`not_proven_in_time`). ``stopped_by_clock``: a search of the solve stopped
    at a wall-clock limit rather than at its count of work (`Budget.net_reached`), so the same
    inputs may give another result on a machine more or less loaded.
    """
    if budget.net_reached:
        solution.stats["stopped_by_clock"] = 1
    if solution.status not in {"OPTIMAL", "FEASIBLE"}:
        return solution
    policy = inst.policy
    if (
        policy.quotas.mode == QuotaMode.SOFT
        and Stage.SHORTFALL in policy.objective.stages
        and Stage.SHORTFALL not in solution.stage_values
    ):
        # a soft round with no quota row (no rule, or no scope group a rule can reach) has no
        # shortfall stage to optimise; its value is 0 all the same, reported in the policy's
        # order as the checker computes it (result.json's objective lacked the key)
        stages = policy.objective.stages
        values = {**solution.stage_values, Stage.SHORTFALL: 0}
        bounds = {**solution.stage_bounds, Stage.SHORTFALL: 0.0}
        solution.stage_values = {stage: values[stage] for stage in stages if stage in values}
        solution.stage_bounds = {stage: bounds[stage] for stage in stages if stage in bounds}
    solution.demand, swaps = prefer_tie_break(inst, solution.unit, solution.demand, solution.res)
    solution.stats["tie_break_swaps"] = swaps
    if solution.status == "FEASIBLE":  # the search stopped before its proof (the greedy
        # policies' FEASIBLE is their nature, not a limit: they never come here)
        solution.stats["time_limited"] = 1
    return solution


def _hard_with_least_shortfalls(
    inst: RoundInstance, triples: Triples, rows: list[QuotaRow]
) -> tuple[RoundInstance, list[QuotaRow], dict[str, tuple[QuotaRule, int]]]:
    """The round with hard quotas, each share floor's tally moved by its least shortfall.

    Counting ``s`` more households in a floor's year-so-far tally lowers its right-hand side
    by ``q s`` (its slack times ``s``), exactly the shortfall ``s`` would; returns the hard
    round, its quota rows (``rows`` with those right-hand sides) and the shifts by row name.
    """
    least = least_shortfalls(inst, triples, rows)
    tallies = {rule: dict(groups) for rule, groups in inst.year_so_far.tallies.items()}
    shifts: dict[str, tuple[QuotaRule, int]] = {}
    hard_rows: list[QuotaRow] = []
    for row in rows:
        s = least.get(row.name, 0)
        hard_rows.append(dataclasses.replace(row, rhs=row.rhs - row.slack * s) if s else row)
        if s > 0:
            old = inst.year_so_far.tally(row.rule.id, row.scope)
            tallies.setdefault(row.rule.id, {})[row.scope] = Tally(
                base=old.base, counted=old.counted + s
            )
            shifts[row.name] = (row.rule, s)
    quotas = inst.policy.quotas.model_copy(update={"mode": QuotaMode.HARD})
    hard = dataclasses.replace(
        inst,
        policy=inst.policy.model_copy(update={"quotas": quotas}),
        # model_copy, not a new YearSoFar: a shifted tally may count more than its base, which
        # no year gives (its validator refuses that) but the shift needs
        year_so_far=inst.year_so_far.model_copy(update={"tallies": tallies}),
    )
    return hard, hard_rows, shifts


def _solve_round(
    inst: RoundInstance,
    params: SolveParams,
    *,
    diagnose: bool = True,
    triples: Triples | None = None,
    rows: list[QuotaRow] | None = None,
    budget: Budget | None = None,
) -> RoundSolution:
    """`solve_round` in the policy's own mode; without ``diagnose``, infeasible is just said.

    ``triples`` and ``rows`` are the round's (`build_triples`, `quota_rows`) when the caller
    has them already; ``budget``, what is left of the caller's (by default the parameters'
    ``time_limit_s``, from now).
    """
    start = time.perf_counter()
    budget = Budget(params.time_limit_s) if budget is None else budget
    n_triples: int | None = None  # the round's, when its dominated triples are never built
    if triples is None and params.prune:
        smaller = undominated_pairs(inst, params.prune_above_triples)
        if smaller is not None:  # the same optimum (`matching.solver.dominance`)
            inst, n_triples = smaller
    built = triples is None  # the triples are `build_triples(inst)` itself until a drop
    triples = build_triples(inst) if triples is None else triples
    soft = inst.policy.quotas.mode == QuotaMode.SOFT
    rows = quota_rows(inst, triples) if rows is None else rows
    terms = stage_terms(
        inst.policy.objective.stages, triples, rows, inst.policy.quotas.mode, len(inst.units)
    )
    wx, ws, multipliers = combined_weights(terms)
    n_triples = len(triples) if n_triples is None else n_triples
    stats: dict[str, float | int | str] = {"triples": n_triples, "method": "full"}
    if n_triples > len(triples):
        stats["dominated"] = n_triples - len(triples)
    magnitude = float(np.abs(wx).max(initial=0.0)) * max(1, len(inst.units))
    # no stage applies (a soft policy whose only stage is the shortfall, solved as hard; or a
    # hard one whose only stage is the shortfall): no objective to bound, any feasible
    # allocation will do, and the LP path has no weights to price (it raised on them)
    prunable = (
        params.prune and bool(terms) and n_triples > params.prune_above_triples and magnitude < 1e13
    )
    outcome: _StagedOutcome | None = None
    core_index = np.arange(len(triples))
    if prunable:
        classes = row_classes(triples, rows, len(inst.reservataires))
        # after the drop on the pairs, whatever the coarser classes add (the rows and terms are
        # made again, but on the fewer triples; small-round: LP 1,293 -> 1,026 iterations)
        least = 0.0 if n_triples > len(triples) else MIN_DROPPED
        kept = undominated(triples, classes, wx, len(inst.units), least)
        if kept is not None:  # the round on these triples has the same optimum (see there)
            stats["dominated"] = n_triples - len(kept)
            triples, rows = triples.subset(kept), rows_on(rows, kept, len(triples))
            built = False
            classes = classes[kept]  # numbered by first appearance still: each keeps its first
            terms = stage_terms(
                inst.policy.objective.stages, triples, rows, inst.policy.quotas.mode,
                len(inst.units),
            )  # fmt: skip
            wx, ws, multipliers = combined_weights(terms)
            core_index = np.arange(len(triples))
    if prunable and not soft:  # on the kept triples: infeasible there iff in the whole round
        unreachable = unreachable_conflicts(inst, triples, rows)
        if unreachable:  # proven from the quota counts' ranges, no LP needed
            stats["method"] = "count_ranges"
            if not diagnose:
                return _unsolved("INFEASIBLE", stats)
            named = _named(inst, triples, rows, unreachable, params, budget, stats)
            return _unsolved("INFEASIBLE", stats, named)
    if prunable:
        session = LPSession.for_round(
            inst, triples, rows, inst.bands(), wx, ws, soft, classes=classes
        )
        del classes
        del wx  # the session holds its own costs (560 MB each on a Paris-sized round)
        if not soft:  # a hard round's LP may need an allocation that meets the quotas
            session.rescue = functools.partial(_greedy_triples, inst, triples, built)
        cert = session.solve(time_limit_s=max(30.0, budget.deadline - time.perf_counter()))
        stats.update(lp_bound=cert.upper_bound, lp_rounds=cert.rounds, lp_columns=cert.lp_columns,
                     lp_seconds=round(cert.seconds, 3))  # fmt: skip
        if cert.status == "infeasible":
            if not diagnose:
                return _unsolved("INFEASIBLE", stats)
            return _infeasible(inst, triples, params, budget, stats)
        if cert.status == "bound":
            stats["method"] = "lp_core"
            outcome, core_index = _solve_with_core(
                inst, triples, cert.upper_bound, cert.reduced_cost, params, budget, terms,
                multipliers, stats, cert.primal, session,
            )  # fmt: skip
    if outcome is None and prunable and len(triples) > FULL_MODEL_LIMIT:
        # the LP did not finish in time: the full CP-SAT model of a round this large would not
        # even build within the budget (about 6 microseconds and hundreds of bytes per variable)
        _logger.warning("LP of %d triples unfinished within the time limit", len(triples))
        stats.update(method="lp_unfinished", seconds=round(time.perf_counter() - start, 3))
        return _unsolved("UNKNOWN", stats)
    if outcome is None:
        core_index = np.arange(len(triples))
        outcome = solve_stages(build_model(inst, triples), params, budget)
        stats["core_triples"] = len(triples)
    if outcome.status == "INFEASIBLE":
        if not diagnose:
            return _unsolved("INFEASIBLE", stats)
        return _infeasible(inst, triples, params, budget, stats)
    if outcome.status == "UNKNOWN":  # no solution: no stage value, no shortfall to report
        # (an empty allocation's shortfalls read "every quota met, zero gap")
        stats["seconds"] = round(time.perf_counter() - start, 3)
        return _unsolved("UNKNOWN", stats)
    stats["seconds"] = round(time.perf_counter() - start, 3)
    picked = core_index[outcome.chosen]
    shortfalls: dict[str, int] = {}
    if soft:  # each row's least shortfall under the allocation, not the model's variable
        x = np.zeros(len(triples))
        x[picked] = 1.0
        row_least = [row.least_shortfall(x) for row in rows]
        shortfalls = {row.name: s for row, s in zip(rows, row_least, strict=True)}
        # the stages too: a solution found with no objective on the shortfall (the rescue of
        # a first stage out of time) leaves its variables loose, and the result said 444,000
        # where the checker counts 0
        outcome.values = {
            term.stage: _stage_value(term, picked, row_least)
            for term in terms
            if term.stage in outcome.values
        }
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
        shortfalls=shortfalls,
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
    primal: LPValues | None = None,
    session: LPSession | None = None,
) -> tuple[_StagedOutcome | None, np.ndarray]:
    """Step 3 of the module docstring: an LP-guided incumbent, then its proof.

    The proof is the LP bound itself, or branching on the aggregate counts
    (`matching.solver.branch`); failing both within the budget, the core grows until the LP
    bound proves its CP-SAT optimum.
    """
    stages = [t.stage for t in terms]
    tol = bound_slack(upper)
    delta = 0.5 * (multipliers[-1] if multipliers else 1.0)
    previous: tuple[_StagedOutcome, np.ndarray] | None = None
    caps = StageCaps(upper, multipliers, [t.low for t in terms], [t.high for t in terms])
    core_index = np.flatnonzero(rc <= delta + tol)
    if primal is not None:
        hint = _lp_guided_hint(
            inst, triples, core_index, primal, params, budget, caps, node_limit=ROOT_SEARCH_NODES
        )
        stats["hint"] = "lp_rounding" if hint is not None else "none"
        if hint is not None:
            previous = (hint, hint.core if hint.core is not None else core_index)
            if session is not None and inst.policy.quotas.mode == QuotaMode.HARD:
                proven, previous = _prove_by_branching(
                    inst, triples, upper, previous, params, budget, terms, multipliers,
                    stats, session, caps,
                )  # fmt: skip
                if proven:
                    return previous

    for iteration in range(1, 30):
        core_index = np.flatnonzero(rc <= delta + tol)
        if previous is not None:  # the best solution so far stays in the model (as the hint)
            core_index = np.union1d(core_index, previous[1][previous[0].chosen])
        if len(core_index) > FULL_MODEL_LIMIT:  # too large to solve exactly: keep what we have
            _logger.warning("core of %d triples too large; best solution kept", len(core_index))
            if previous is None:
                return None, np.arange(len(triples))
            kept, kept_index = previous
            return _feasible(kept, {k: float(v) for k, v in kept.bounds.items()}), kept_index
        hint = None
        if previous is not None:
            old_outcome, old_index = previous
            position = {int(t): i for i, t in enumerate(core_index)}
            moved = [position.get(int(old_index[c]), -1) for c in old_outcome.chosen]
            if min(moved, default=0) >= 0:
                hint = _StagedOutcome(
                    "HINT", np.array(moved, dtype=np.int64),
                    old_outcome.orientation, old_outcome.shortfall, {}, {},
                )  # fmt: skip
        outcome = _solve_core(inst, triples, core_index, params, budget, hint, caps, stats)
        stats.update(core_triples=len(core_index), core_iterations=iteration)
        if outcome.status == "INFEASIBLE":
            if len(core_index) == len(triples):
                return outcome, core_index
            delta = 4 * delta + (multipliers[0] if multipliers else 1.0)
            continue
        if outcome.status != "OPTIMAL":  # out of time: the best found, with its bound
            if previous is not None:
                old_outcome, old_index = previous
                if outcome.status != "FEASIBLE":
                    # nothing found in what was left of the budget: the solution in hand, not
                    # "no solution" (it is feasible for the round; the LP's caps bound it)
                    caps_now = caps.bounds(stages, old_outcome.values)
                    return _feasible(old_outcome, caps_now), old_index
                if _combined_value(old_outcome.values, stages, multipliers) > _combined_value(
                    outcome.values, stages, multipliers
                ):
                    return _feasible(old_outcome, outcome.bounds), old_index
            return outcome, core_index
        z = _combined_value(outcome.values, stages, multipliers)
        needed = upper - z
        stats["certificate_gap"] = float(needed)
        if needed <= delta + tol or len(core_index) == len(triples):
            # optimal for the round, not only for the core: each stage's bound is its value
            # (the caps from the LP bound said OPTIMAL with a gap of up to 86 % beside it)
            stats["proof"] = "lp_reduced_cost"
            return _proven(outcome), core_index
        delta = needed
        previous = (outcome, core_index)
    return None, np.arange(len(triples))


def _solve_core(
    inst: RoundInstance,
    triples: Triples,
    core_index: np.ndarray,
    params: SolveParams,
    budget: Budget,
    hint: _StagedOutcome | None,
    caps: StageCaps,
    stats: dict[str, float | int | str],
) -> _StagedOutcome:
    """The optimum of the round restricted to the core triples (step 3 of the module docstring).

    HiGHS's MIP (`matching.solver.mip`) first: measured on the soft-mode re-solves of the
    simulated year (5 to 11 carried units, 16,000-37,000 core triples), where staged CP-SAT took
    1.9-3.8 s each. If it does not prove the core optimum within its node limit or its time,
    staged CP-SAT takes over from its solution (or the hint), with the whole budget.
    ``stats["core_search"]`` says which ended it: ``highs``, ``cp_sat``, or
    ``highs_time_limit+cp_sat`` when the MIP stopped at its time limit.

    Its time limit is half of what is left of the budget's seconds since the solve began (at
    least 1 s; the steps before it count no seconds of the budget). It had the budget's
    seconds from its own start, and CP-SAT the whole budget again after it: a 20 s budget ran
    46 s (January with a Q1 floor against a Q1 ceiling per landlord, soft; now 34 s), and on
    120 varied 30-unit rounds with 4 s budgets the four whose MIP stops at its limit ran up to
    9.6 s (now 7.5 s).
    Stopping at the MIP's solution instead kept to the budget but lost a shortfall stage on two
    of them (2,000 where CP-SAT finds 0), and giving CP-SAT only the seconds left lost score:
    CP-SAT is what solves the soft stages in order when HiGHS's folded objective, scaled up to
    1e10, stalls (docs/solver.md).
    """
    now = time.perf_counter()
    # no start solution for HiGHS: with one (the previous core's optimum) and its presolve on,
    # HiGHS 1.16 returned that start as "optimal" on a 31-triple soft round whose optimum was
    # one shortfall lower, and this search is the round's proof. The hint still starts the
    # CP-SAT search below when HiGHS does not prove the core
    found = solve_small_mip(
        inst, triples.subset(core_index), np.zeros(len(core_index), dtype=bool),
        # seconds, not only nodes: HiGHS counts no other work, and its root node alone can
        # take seconds (a 4,218-triple soft core: 3.9 s, 3.3 s of them in 49 nested sub-MIP
        # heuristics). Nodes per second of the budget with the budget's safety net (3x + 5 s)
        # as the only clock made a 1 s budget run 4 s, and 2 of 40 varied rounds changed
        # beside three busy processes (none with this limit): docs/solver.md, "Determinism"
        time_limit_s=max(
            1.0, 0.5 * min(budget.left, budget.end - now, budget.deadline - now)
        ),
    )  # fmt: skip
    stats["core_search"] = "highs"
    if found.out_of_time:  # its seconds, not a count (docs/solver.md, "Determinism")
        budget.reach_net()
    if found.status == "INFEASIBLE":
        return _StagedOutcome("INFEASIBLE", found.chosen, {}, [], {}, {})
    values, bounds = _valued(found.terms, found.chosen, found.shortfall, caps)
    if found.status == "OPTIMAL":
        return _StagedOutcome(
            "OPTIMAL", found.chosen, found.orientation, found.shortfall, values, bounds
        )
    stats["core_search"] = "highs_time_limit+cp_sat" if found.out_of_time else "cp_sat"
    if found.status == "FEASIBLE":
        hint = _StagedOutcome("HINT", found.chosen, found.orientation, found.shortfall, {}, {})
    built = build_model(inst, triples.subset(core_index))
    return solve_stages(built, params, budget, hint, caps)


def _valued(
    terms: list[StageTerms], chosen: np.ndarray, shortfall: list[int], caps: StageCaps
) -> tuple[dict[Stage, int], dict[Stage, float]]:
    """Each stage's value for a solution, and its global cap from the LP bound."""
    values = {term.stage: _stage_value(term, chosen, shortfall) for term in terms}
    return values, caps.bounds([term.stage for term in terms], values)


def _prove_by_branching(
    inst: RoundInstance,
    triples: Triples,
    upper: float,
    incumbent: tuple[_StagedOutcome, np.ndarray],
    params: SolveParams,
    budget: Budget,
    terms: list,
    multipliers: list[int],
    stats: dict[str, float | int | str],
    session: LPSession,
    caps: StageCaps,
) -> tuple[bool, tuple[_StagedOutcome, np.ndarray]]:
    """Prove the incumbent optimal (or improve it) by `matching.solver.branch`.

    Returns whether it is proven, and the best solution with its core index (marked optimal
    when proven; otherwise the core search starts from it).
    """
    stages = [t.stage for t in terms]
    best = incumbent
    z = _combined_value(best[0].values, stages, multipliers)
    if upper < z + 1 - bound_slack(upper):  # the LP bound already proves it
        stats["proof"] = "lp_bound"
        return True, (_proven(best[0]), best[1])
    # The floor row and the cuts assume that a better solution has at least the incumbent's
    # allocations: true when the allocations are the first stage that applies (DOMAIN A5's
    # order). A policy ranking the score first may trade an allocation for score (3 of 50
    # binding 10 x 80 rounds were "proven" at a worse score when it got the floor anyway), so
    # it gets none: 0 allocations, always valid, with weaker cuts.
    allocations = len(best[0].chosen) if terms and terms[0].stage == Stage.ALLOCATIONS else 0

    def improve(cert: Certificate) -> int | None:
        nonlocal best
        if cert.primal is None:
            return None
        # the node LP's tight triples (reduced cost 0), with its support: a neighbourhood
        # small enough to build and search in seconds (the gap-wide core can be 100 times larger)
        small = 0.5 * (multipliers[-1] if multipliers else 1.0)
        # a mask, not a union of index arrays: on a pooled year whose LP is degenerate the
        # tight set is 4.8 million triples, and sorting their union took 4.2 s
        tight = cert.reduced_cost <= small + 1e-6 * small
        tight[cert.primal.cols[cert.primal.values > 1e-6]] = True
        core = np.flatnonzero(tight)
        # the node LP's ones fixed, and only a better solution than the incumbent looked for
        # (HiGHS prunes the rest). A second, larger neighbourhood (only the ones the LP shares
        # with the incumbent fixed, hinted by it) found nothing in its 4 runs in three simulated
        # years and the Paris-sized round, at 0.3-3.2 s each: dropped (docs/solver.md)
        found = _lp_guided_hint(
            inst, triples, core, cert.primal, params, budget, caps, better_than=best[0].values
        )
        if found is None:
            return None
        value = _combined_value(found.values, stages, multipliers)
        if value > _combined_value(best[0].values, stages, multipliers):
            best = (found, found.core if found.core is not None else core)
        return value

    start = time.perf_counter()
    outcome = branch_and_bound(
        inst, triples, session.rows, session,
        incumbent=z, min_allocations=allocations, improve=improve,
        work_limit=max(MIN_BRANCH_WORK, budget.left), deadline=budget.deadline,
    )  # fmt: skip
    budget.spend(outcome.work)  # what is left goes to the core search
    stats.update(
        branch_nodes=outcome.nodes,
        branch_work=round(outcome.work, 3),
        branch_cuts=outcome.cuts,
        branch_seconds=round(time.perf_counter() - start, 3),
        branch_bound=float(outcome.bound),
    )
    if outcome.proven:
        stats["proof"] = "aggregate_branching"
        stats["certificate_gap"] = 0.0
        return True, (_proven(best[0]), best[1])
    return False, best


def _feasible(outcome: _StagedOutcome, bounds: dict[Stage, float]) -> _StagedOutcome:
    """The same solution, feasible, with these bounds (kept when a later search fell short)."""
    return _StagedOutcome(
        "FEASIBLE", outcome.chosen, outcome.orientation, outcome.shortfall, outcome.values, bounds
    )


def _proven(outcome: _StagedOutcome) -> _StagedOutcome:
    """The same solution, marked optimal: each stage's bound is its value."""
    values = dict(outcome.values)
    return _StagedOutcome(
        "OPTIMAL", outcome.chosen, outcome.orientation, outcome.shortfall, values, dict(values)
    )


def _lp_guided_hint(
    inst: RoundInstance,
    triples: Triples,
    core_index: np.ndarray,
    primal: LPValues,
    params: SolveParams,
    budget: Budget,
    caps: StageCaps,
    better_than: dict[Stage, int] | None = None,
    node_limit: int = NODE_LIMIT,
) -> _StagedOutcome | None:
    """A solution near an LP solution: keep its integral assignments, let HiGHS complete (RINS).

    The LP relaxation is nearly integral: fixing its ones leaves a small problem over the
    remaining units and households (the core triples of the free units to free households),
    which the small MIP solves quickly. With ``better_than`` (stage values), only a better
    solution is looked for (None when there is none). ``node_limit``: HiGHS's nodes (a count,
    so that runs reproduce). The returned ``chosen`` indexes the returned outcome's own core.
    """
    at_core = primal.at(core_index)
    ones = at_core > 1 - 1e-6
    if not ones.any():
        return None
    fixed = core_index[ones]
    taken_u = np.zeros(len(inst.units), dtype=bool)
    taken_u[triples.unit[fixed]] = True
    taken_d = np.zeros(len(inst.demands), dtype=bool)
    taken_d[triples.demand[fixed]] = True
    free = ~taken_u[triples.unit[core_index]] & ~taken_d[triples.demand[core_index]]
    keep = np.flatnonzero(ones | free)
    if len(keep) > NEIGHBOURHOOD_LIMIT:
        # a huge tight set (soft mode with many ties): keep the LP's support and the best
        # households of each free (unit, réservataire); a good solution is the goal here
        support = at_core > 1e-6
        free_pos = np.flatnonzero(free & ~support)
        t = core_index[free_pos]  # sorted by unit, réservataire, rank (as the triples are)
        key = unit_res_key(triples.unit[t], triples.res[t], len(inst.reservataires))
        best = np.zeros(len(core_index), dtype=bool)
        best[free_pos[group_ranks(key) < NEIGHBOURHOOD_PER_GROUP]] = True
        keep = np.flatnonzero(ones | (free & support) | best)
        if len(keep) > NEIGHBOURHOOD_LIMIT:
            return None
    local = core_index[keep]
    found = solve_small_mip(
        inst, triples.subset(local), ones[keep],
        time_limit_s=max(0.5, min(RINS_SECONDS, budget.deadline - time.perf_counter())),
        better_than=better_than,
        node_limit=node_limit,
    )  # fmt: skip
    if found.out_of_time:  # its wall-clock net, not its node limit
        budget.reach_net()
    if found.status not in {"OPTIMAL", "FEASIBLE"}:
        return None
    values, bounds = _valued(found.terms, found.chosen, found.shortfall, caps)
    return _StagedOutcome(
        "FEASIBLE", keep[found.chosen], found.orientation, found.shortfall, values, bounds,
        core_index,
    )  # fmt: skip


def _unsolved(
    status: str, stats: dict[str, float | int | str], conflicts: list[str] | None = None
) -> RoundSolution:
    """A solution with nothing allocated: UNKNOWN, or INFEASIBLE (with its conflict if known)."""
    empty = np.zeros(0, dtype=np.int64)
    return RoundSolution(status, empty, empty, empty, {}, conflicts=conflicts or [], stats=stats)


def _named(
    inst: RoundInstance,
    triples: Triples,
    rows: list[QuotaRow],
    conflicts: list[tuple[str, list[str]]],
    params: SolveParams,
    budget: Budget,
    stats: dict[str, float | int | str],
) -> list[str]:
    """The names of the conflicts the count ranges proved, and of the others, in HiGHS.

    On a reduction of the round of at most `TRIM_LIMIT` triples, the count ranges' bands are
    trimmed (`fewest_bands`) and the conflicts among the rules not named are named too
    (`minimal_conflict` with the names ``known``), as the full model names every disjoint
    conflict; on a larger one, the count ranges' names as they are (January's reduction keeps
    754,000 triples, and the band checks took 47-67 s). A round above `FULL_MODEL_LIMIT`
    triples is not even reduced. ``stats["conflict"]`` says which.
    """
    names = sorted({name for rule, bands in conflicts for name in (rule, *bands)})
    stats["conflict"] = "count_ranges"
    if len(triples) > FULL_MODEL_LIMIT:  # reducing it would cost seconds (70 M triples)
        return names
    reduced = _reduced(inst, triples, params, rows)
    if len(reduced) > TRIM_LIMIT:
        return names
    stats["conflict"] = "count_ranges_and_deletion_filter"
    rows = rows if reduced is triples else quota_rows(inst, reduced)
    names = fewest_bands(inst, reduced, rows, conflicts, budget.deadline)
    more = minimal_conflict(inst, reduced, rows, budget.deadline, known=frozenset(names))
    return sorted({*names, *(more or [])})


def _reduced(
    inst: RoundInstance,
    triples: Triples,
    params: SolveParams,
    rows: list[QuotaRow] | None = None,
) -> Triples:
    """A reduction of the round that keeps its feasibility under any subset of its rules.

    The best ``flux units + units + 1`` triples of each class (`top_per_group`): a dropped
    triple has a kept twin with the same coefficient in every row. ``rows``: the quota rows of
    ``triples``, when the caller has them.
    """
    if len(triples) <= params.prune_above_triples:
        return triples
    rows = quota_rows(inst, triples) if rows is None else rows
    n_keep = int(inst.flux_units.sum()) + len(inst.units) + 1
    return triples.subset(top_per_group(triples, rows, n_keep))


def _infeasible(
    inst: RoundInstance,
    triples: Triples,
    params: SolveParams,
    budget: Budget,
    stats: dict[str, float | int | str],
) -> RoundSolution:
    """Name the conflicting rules on a feasibility-preserving reduction of the round."""
    reduced = _reduced(inst, triples, params)
    if len(reduced) > FULL_MODEL_LIMIT:  # the guarded CP-SAT model would not even build in time
        _logger.warning(
            "infeasible round too large (%d triples) to name its conflict", len(reduced)
        )
        return _unsolved("INFEASIBLE", stats)
    named = minimal_conflict(inst, reduced, quota_rows(inst, reduced), budget.deadline)
    if named is not None:
        stats["conflict"] = "deletion_filter"
        return _unsolved("INFEASIBLE", stats, named)
    built = build_model(inst, reduced, diagnose=True)
    conflicts = conflicting_rules(built, params, budget)
    stats["conflict"] = "cp_sat_core"
    return _unsolved("INFEASIBLE", stats, conflicts)
