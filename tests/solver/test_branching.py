"""The proof by aggregate branching: staircase cuts are valid, and branching never cuts the optimum.

- `hull_cuts`: every integer point (B, C) that satisfies a share row satisfies every cut, and the
  cuts are tight (the LP point the row alone allows is cut off).
- Pruned (LP certificate, cuts, branching) and full (plain CP-SAT) solves reach the same stage
  values on 50 random small rounds whose floors bind (issue 5), every result checked
  independently; at least some of them are proven by branching, so the path is exercised.
- The engine on OR-Library assign100 finds the published optimum, 305.
- The count ranges' per-unit and per-réservataire counts, read from the sorted triples' runs,
  are those of a plain count over each aggregate's triples.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from matching.exceptions import InfeasibleError
from matching.generate import generate_territory
from matching.params import SolveParams
from matching.policy.model import Policy
from matching.solver.cuts import ShareRow, _Coverage, _lower_hull, aggregates, hull_cuts
from matching.solver.instance import build_triples
from matching.solver.matching import SideRow, solve_matching
from matching.solver.rows import quota_rows
from matching.types import QuotaMode, Stage
from tests.solver.support import (
    POLICY,
    binding_policy,
    default_rule,
    generated_round,
    rule,
    soft,
    solve_checked,
    with_rules,
)

PRUNED = SolveParams(num_workers=1, time_limit_s=20.0, prune=True, prune_above_triples=0)
FULL = SolveParams(num_workers=1, time_limit_s=20.0, prune=False)
ORLIB = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "orlib"


def test_lower_hull_of_a_quarter_floor_staircase() -> None:
    """B in 63..66, C >= ceil(B/4): facets C >= 16 and 2C - B >= -32 (via (64,16), (66,17))."""
    points = [(b, math.ceil(b / 4)) for b in range(63, 67)]
    facets = _lower_hull(points)
    assert [(float(s), float(a)) for s, a in facets] == [(0.0, 16.0), (0.5, -16.0)]


@pytest.mark.parametrize("p,q,rhs,lo,hi", [(1, 4, 0, 63, 66), (1, 2, -3, 10, 17), (1, 4, 5, 0, 9)])
def test_hull_cuts_keep_every_integer_point(p: int, q: int, rhs: int, lo: int, hi: int) -> None:
    """Every integer (B, C) with q C - p B >= rhs, 0 <= C <= B, B in range, meets every cut."""
    # Build a row over two kinds of triples: counted (coef q - p) and base only (coef -p);
    # one triple per unit of B, so a cut's value is den*C - num*B as the hull says.
    n = hi + 1
    base_idx = np.arange(2 * n)
    counted_idx = np.arange(n)  # triples 0..n-1 are counted, n..2n-1 base only

    class _Row:  # the fields of QuotaRow that hull_cuts reads
        name = "floor"
        sense = ">="

    _Row.rhs = rhs  # type: ignore[attr-defined]
    from matching.solver.cuts import Aggregate

    share = ShareRow(
        _Row(),  # type: ignore[arg-type]
        Aggregate("B", base_idx, lo, hi),
        Aggregate("C", counted_idx, 0, hi),
        p,
        q,
    )
    cuts = hull_cuts(share, (lo, hi), (0, hi))
    assert cuts
    for b in range(lo, hi + 1):
        for c in range(0, b + 1):
            x = np.zeros(2 * n)
            x[:c] = 1  # c counted triples
            x[n : n + b - c] = 1  # b - c base-only triples
            feasible = q * c - p * b >= rhs
            ok = all(float(np.dot(cut.coef, x[cut.idx])) >= cut.rhs - 1e-9 for cut in cuts)
            if feasible:
                assert ok, (b, c)
    # the fractional point the row alone allows at B = hi is cut off when it is not integral
    c_lp = (rhs + p * hi) / q
    if c_lp != math.ceil(c_lp) and 0 <= c_lp <= hi:
        x = np.zeros(2 * n)
        x[: math.floor(c_lp)] = 1
        x[math.floor(c_lp)] = c_lp - math.floor(c_lp)
        x[n : n + hi - math.ceil(c_lp)] = 1
        x[n + hi - math.ceil(c_lp)] = math.ceil(c_lp) - c_lp
        assert any(float(np.dot(cut.coef, x[cut.idx])) < cut.rhs - 1e-9 for cut in cuts)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counts_from_the_sorted_runs_are_plain_counts(seed: int) -> None:
    """Binary searches on the (unit, réservataire) runs count as a bincount of each index set."""
    _, _, _, inst = generated_round(seed, 14, 120, binding_policy())
    triples = build_triples(inst)
    rows = quota_rows(inst, triples)
    n_units, n_res = len(inst.units), len(inst.reservataires)
    coverage = _Coverage.of(n_units, n_res, triples)
    assert coverage.group_start is not None  # build_triples writes them sorted
    assert np.array_equal(coverage.per_unit, np.bincount(triples.unit, minlength=n_units))
    _, every = aggregates(inst, triples, rows, 0)
    rng = np.random.default_rng(seed)
    index_sets = [agg.idx for agg in every] + [
        np.flatnonzero(rng.random(len(triples)) < 0.3) for _ in range(5)
    ]
    shuffled = triples.subset(rng.permutation(len(triples)))
    fallback = _Coverage.of(n_units, n_res, shuffled)
    assert fallback.group_start is None  # falls back to counting
    per_res = np.bincount(triples.res.astype(np.int64) + 1, minlength=n_res + 1)
    for totals in (coverage, fallback):
        assert np.array_equal(totals.per_unit, np.bincount(triples.unit, minlength=n_units))
        assert np.array_equal(totals.per_res, per_res)
    for idx in index_sets:
        in_unit, in_res = coverage.counts(triples, idx)
        assert np.array_equal(in_unit, np.bincount(triples.unit[idx], minlength=n_units))
        plain = np.bincount(triples.res[idx].astype(np.int64) + 1, minlength=n_res + 1)
        assert np.array_equal(in_res, plain)


def _pruned_equals_full(seeds: Iterable[int], policy: Policy | None = None) -> list[str]:
    """Random 10 x 80 rounds with binding floors, solved pruned and full, both checked.

    Asserts the same optimum (or, infeasible both ways, the same conflicting rules); returns
    the pruned path's proof of each round compared. ``policy``: `binding_policy` by default.
    """
    policy = policy or binding_policy()
    methods: list[str] = []
    for seed in seeds:
        units, demands = generate_territory("caen-la-mer", 2026, seed=100 + seed, n_units=10,
                                            n_demands=80)  # fmt: skip
        on = pd.Timestamp(units["released_on"].max()).date()
        try:
            pruned = solve_checked(units, demands, policy, PRUNED, on=on)
        except InfeasibleError as e:  # infeasible must be infeasible both ways, same rules
            with pytest.raises(InfeasibleError) as full_error:
                solve_checked(units, demands, policy, FULL, on=on)
            assert set(full_error.value.rule_ids) == set(e.rule_ids), seed
            continue
        full = solve_checked(units, demands, policy, FULL, on=on)
        assert pruned.status == full.status == "OPTIMAL", seed
        assert pruned.stage_values == full.stage_values, seed
        methods.append(str(pruned.stats.get("proof", pruned.stats.get("method"))))
    return methods


def test_pruning_and_branching_never_change_the_optimum_on_50_rounds() -> None:
    """50 random 10 x 80 rounds with binding floors: pruned (LP + cuts + branching) = full."""
    methods = _pruned_equals_full(range(50))
    assert len(methods) >= 40
    assert "aggregate_branching" in methods, methods


@pytest.mark.parametrize(
    "mode,stages",
    [
        (QuotaMode.HARD, (Stage.SCORE, Stage.ALLOCATIONS)),
        (QuotaMode.HARD, (Stage.SCORE,)),
        (QuotaMode.SOFT, (Stage.SHORTFALL, Stage.SCORE, Stage.ALLOCATIONS)),
    ],
)
def test_a_score_first_objective_is_proven_without_the_allocation_floor(
    mode: QuotaMode, stages: tuple[Stage, ...]
) -> None:
    """With the score ranked before the allocations, branching still proves the true optimum.

    The branching's floor row and cuts assume at least the incumbent's allocations, which only
    an allocations-first objective (DOMAIN A5) guarantees. Under a score-first policy, rounds
    106, 119 and 128 have an optimum with one allocation fewer (705 against 683 points on 106):
    the pruned path "proved" the 9-allocation incumbent before it dropped the floor there.
    """
    base = binding_policy()
    policy = base.model_copy(
        update={
            "quotas": base.quotas.model_copy(update={"mode": mode}),
            "objective": base.objective.model_copy(update={"stages": stages}),
        }
    )
    methods = _pruned_equals_full([6, 19, 28, *range(8)], policy)
    assert len(methods) >= 9 and "aggregate_branching" in methods, methods


@pytest.mark.parametrize("mode", [QuotaMode.HARD, QuotaMode.SOFT])
def test_a_shortfall_only_objective_is_solved_not_raised(mode: QuotaMode) -> None:
    """A policy whose only stage is the shortfall is solved, not a numpy error.

    No stage applies in hard mode (nor in the hard re-solve of a soft round): any feasible
    allocation is optimal. The LP path had no weights to price and raised a shape error.
    """
    base = binding_policy()
    policy = base.model_copy(
        update={
            "quotas": base.quotas.model_copy(update={"mode": mode}),
            "objective": base.objective.model_copy(update={"stages": (Stage.SHORTFALL,)}),
        }
    )
    methods = _pruned_equals_full(range(6), policy)
    assert len(methods) >= 4


@pytest.mark.parametrize("params", [PRUNED, FULL], ids=["pruned", "full"])
def test_a_soft_policy_without_the_shortfall_stage_reports_its_true_shortfalls(
    params: SolveParams,
) -> None:
    """Soft quotas, stages [allocations, score]: quota-blind, and each row's shortfall is exact.

    Nothing minimises the shortfall variables then, and the full model reported them as it
    found them (round 103: 22 for the Q1 floor, which its allocation meets; 9 for Action
    Logement's priority floor, 1 short): the result
    now gives each row's least shortfall under the allocation, which `verify` compares row by
    row with the checker's, as `round.solve`'s own self-check now does.
    """
    base = soft(binding_policy())
    policy = base.model_copy(
        update={
            "objective": base.objective.model_copy(
                update={"stages": (Stage.ALLOCATIONS, Stage.SCORE)}
            )
        }
    )
    short = 0
    for seed in (103, 104, 105):
        units, demands = generate_territory("caen-la-mer", 2026, seed=seed, n_units=10,
                                            n_demands=80)  # fmt: skip
        on = pd.Timestamp(units["released_on"].max()).date()
        result = solve_checked(units, demands, policy, params, on=on)
        assert "shortfall" not in result.stage_values
        short += sum(result.shortfalls.values())
    assert short > 0  # the floors bind: a quota-blind allocation is short somewhere


def test_engine_finds_the_orlib_assign100_optimum() -> None:
    """OR-Library assign100 (Beasley 1990): minimum cost 305, proven."""
    values = np.array((ORLIB / "assign100.txt").read_text().split(), dtype=np.int64)
    n = int(values[0])
    cost = values[1 : 1 + n * n].reshape(n, n)
    left, right = np.divmod(np.arange(n * n), n)
    solution = solve_matching(left, right, cost.ravel(), maximize=False, perfect=True)
    assert solution.status == "OPTIMAL"
    assert solution.value == 305
    assert sorted(solution.left.tolist()) == list(range(n))
    assert sorted(solution.right.tolist()) == list(range(n))
    assert int(cost[solution.left, solution.right].sum()) == 305  # recomputed, not trusted


def test_the_optimum_never_depends_on_the_root_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the root search's incumbent, the pruned path still proves the full optimum.

    The first LP-guided search only supplies an incumbent; with its node budget cut to zero
    HiGHS returns no solution, and the core search must prove the optimum on its own.
    """
    from matching.solver import solve as solve_module

    monkeypatch.setattr(solve_module, "ROOT_SEARCH_NODES", 0)
    searched: list[str] = []
    original = solve_module.solve_small_mip

    def recorded(*args: object, **kwargs: object) -> object:
        out = original(*args, **kwargs)  # type: ignore[arg-type]
        if kwargs.get("node_limit") == 0:
            searched.append(out.status)
        return out

    monkeypatch.setattr(solve_module, "solve_small_mip", recorded)
    assert len(_pruned_equals_full(range(12))) >= 8
    assert searched.count("UNKNOWN") >= 4  # the path without a root incumbent was taken


def test_a_short_scope_group_of_units_outside_the_flux_keeps_its_name() -> None:
    """A per-réservataire floor is judged on the units excluded from the flux too (group '').

    Their row is named ``rule[reservataire=]``, in the result as in the checker's outcomes as
    `round.solve`'s self-check reads them: it first named the checker's ``rule`` and refused
    two correct rounds of the varied-policy sweep (seeds 94 and 145).
    """
    priority = rule(
        "priority_per_reservataire", "floor", "share", 0.9,
        count=[{"field": "demand.priority", "op": "eq", "value": True}],
        scope="reservataire",
    )  # fmt: skip
    base = soft(with_rules(POLICY, priority))
    stages = (Stage.ALLOCATIONS, Stage.SHORTFALL, Stage.SCORE)  # fill first: the floor falls short
    policy = base.model_copy(
        update={"objective": base.objective.model_copy(update={"stages": stages})}
    )
    names: set[str] = set()
    for seed in range(100, 106):
        units, demands = generate_territory("caen-la-mer", 2026, seed=seed, n_units=14,
                                            n_demands=120)  # fmt: skip
        on = pd.Timestamp(units["released_on"].max()).date()
        result = solve_checked(units, demands, policy, PRUNED, on=on)
        names |= {name for name, short in result.shortfalls.items() if short}
    assert "priority_per_reservataire[reservataire=]" in names, names


def _conflicting_round() -> tuple[pd.DataFrame, pd.DataFrame, dt.date, Policy]:
    """40 x 800 with a Q1 floor of 0.55 outside QPV against a Q1 ceiling of 0.2 per landlord.

    Its proof takes 19 branching nodes (about 0.12 s of node LPs): the floor and the ceilings
    leave a gap that only the branching on their counts closes.
    """
    rules = [r for r in POLICY.quotas.rules if r.id != "mixity_outside_qpv"]
    rules.append(default_rule("mixity_outside_qpv").model_copy(update={"target": 0.55}))
    q1 = [{"field": "demand.q1", "op": "eq", "value": True}]
    rules.append(
        rule("q1_ceiling_per_landlord", "ceiling", "share", 0.2, q1, scope="unit.bailleur")
    )
    policy = with_rules(POLICY, *rules)
    units, demands, on, _ = generated_round(2, 40, 800, policy)
    return units, demands, on, policy


def test_the_branching_stops_when_its_work_reaches_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A budget spent by the node LPs stops the branching, at the same node every run.

    Without the floor of `MIN_BRANCH_WORK`, a 0.05 s budget lets the branching solve a few
    node LPs (their estimated work is a count, not the clock), and the round comes back
    FEASIBLE from the core search with a valid bound, checked; with the floor (the default),
    the same budget proves it as a 20 s budget does.
    """
    from matching.solver import solve as solve_module

    units, demands, on, policy = _conflicting_round()
    params = SolveParams(num_workers=1, time_limit_s=0.05, prune_above_triples=0)
    proven = solve_checked(units, demands, policy, params, on=on)
    assert proven.status == "OPTIMAL", proven.stats
    assert proven.stats["proof"] == "aggregate_branching"
    full_nodes = proven.stats["branch_nodes"]
    assert proven.stats["branch_work"] < solve_module.MIN_BRANCH_WORK
    generous = solve_checked(
        units, demands, policy, params.model_copy(update={"time_limit_s": 20.0}), on=on
    )
    assert generous.stage_values == proven.stage_values

    monkeypatch.setattr(solve_module, "MIN_BRANCH_WORK", 0.0)
    cut = [solve_checked(units, demands, policy, params, on=on) for _ in range(2)]
    nodes = [r.stats["branch_nodes"] for r in cut]
    assert nodes[0] == nodes[1] and 1 <= nodes[0] < full_nodes, (nodes, full_nodes)
    assert cut[0].stats["branch_work"] == cut[1].stats["branch_work"] >= 0.05
    for result in cut:
        assert result.status in {"OPTIMAL", "FEASIBLE"}
        for stage, value in proven.stage_values.items():
            assert result.stage_values[stage] <= value  # never above the optimum
            assert result.stage_bounds[stage] >= value  # and its bound holds


def test_a_minimum_with_capacities_whose_best_is_no_arc() -> None:
    """Minimising non-negative costs with right capacities: the best matching is empty.

    Every arc costs 1 or more and nothing forces one, so the optimum is 0 with no arc (the
    LP's reduced costs leave no arc in the core); with ``right_capacity`` it raised IndexError.
    """
    left = np.array([0, 0, 1])
    right = np.array([0, 1, 1])
    solution = solve_matching(
        left, right, np.array([3, 1, 2]), maximize=False, right_capacity=np.array([1, 2])
    )
    assert solution.status == "OPTIMAL"
    assert solution.value == 0
    assert len(solution.arcs) == 0


def test_no_arc_and_a_side_row_asking_one_is_infeasible() -> None:
    """With no arc, a side row ``>= 1`` cannot hold: INFEASIBLE, not an empty OPTIMAL."""
    none = np.zeros(0, dtype=np.int64)
    need_one = SideRow(none, none, ">=", 1, "need_one")
    assert solve_matching(none, none, none, [need_one]).status == "INFEASIBLE"
    at_most_minus_one = SideRow(none, none, "<=", -1, "negative")
    assert solve_matching(none, none, none, [at_most_minus_one]).status == "INFEASIBLE"
    at_most_two = SideRow(none, none, "<=", 2, "loose")
    assert solve_matching(none, none, none, [at_most_two]).status == "OPTIMAL"
