"""External references of the benchmarks: OR-Library assign100 and the HDB ethnic caps.

Fast checks of the reference parsers and instance builders in ``benchmarks/`` and of the exact
engine's matching core (`matching.solver.matching.solve_matching`) on them: the published
assign100 optimum, and HDB caps respected when they bind, counted directly on the solution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchmarks import hdb, orlib


def test_orlib_parser_reads_assign100() -> None:
    """assign100 is a 100 x 100 matrix whose first row starts 52 89 40 and whose optimum is 305."""
    costs = orlib.read_costs(orlib.DATA / "assign100.txt")
    assert costs.shape == (100, 100)
    assert costs[0, :3].tolist() == [52, 89, 40]  # first costs of the file
    assert orlib.optima()["assign100"] == 305
    assert orlib.scipy_dense(costs)[0] == 305
    assert orlib.scipy_sparse(costs)[0] == 305


def test_orlib_parser_rejects_a_truncated_file(tmp_path: Path) -> None:
    """A file with fewer than n x n costs is refused rather than silently reshaped."""
    path = tmp_path / "bad.txt"
    path.write_text("3\n1 2 3 4 5 6 7 8\n", encoding="ascii")  # 8 costs, 9 needed
    with pytest.raises(ValueError, match="expected 9"):
        orlib.read_costs(path)


def test_assign100_engine_finds_305() -> None:
    """The engine, fed the plain cost matrix, returns a perfect matching of cost exactly 305."""
    from matching.solver.matching import solve_matching

    costs = orlib.read_costs(orlib.DATA / "assign100.txt")
    left, right, weight = orlib.all_pairs(costs)
    sol = solve_matching(left, right, weight, maximize=False, perfect=True)
    assert sol.value == 305
    assert int(costs[np.asarray(sol.left), np.asarray(sol.right)].sum()) == 305
    assert sorted(np.asarray(sol.left).tolist()) == list(range(100))
    assert sorted(np.asarray(sol.right).tolist()) == list(range(100))


def test_hdb_launch_123_is_sky_vista() -> None:
    """The 123-flat case is Sky Vista 114A (27 flats) and 114B (96) with the sheet's caps."""
    launch = hdb.load_launch(123)
    assert launch.flats.tolist() == [27, 96]
    # Sheet rows: 114A Malay 6, Chinese 23, Indian/Others 3; 114B 21, 81, 12 (GROUPS order C, M, I).
    assert launch.caps.tolist() == [[23, 6, 3], [81, 21, 12]]


def test_hdb_launch_1500_truncates_the_last_block() -> None:
    """1,500 flats: 172A keeps 75 of 174 flats, caps 147/39/21 scaled by 75/174 and rounded up."""
    launch = hdb.load_launch(1500)
    assert launch.n_flats == 1500
    assert launch.flats[-1] == 75
    # 147 x 75 / 174 = 63.4 -> 64; 39 x 75 / 174 = 16.8 -> 17; 21 x 75 / 174 = 9.05 -> 10
    assert launch.caps[-1].tolist() == [64, 17, 10]


def _tight_instance() -> hdb.HdbInstance:
    """Two blocks of 6 flats, caps 2 Chinese / 2 Malay / 2 Indian-Others each, 30 applicants."""
    launch = hdb.Launch(
        label=np.array(["A", "B"], dtype=object),
        flats=np.array([6, 6]),
        caps=np.array([[2, 2, 2], [2, 2, 2]]),
    )
    return hdb.instance(launch, n_applicants=30, seed=7)


def test_hdb_cap_rules_select_block_and_group_pairs() -> None:
    """Each cap rule selects exactly the pairs of its block's flats and its group's applicants."""
    inst = _tight_instance()
    frame = inst.pairs_frame()
    per_group = np.bincount(inst.ethnicity, minlength=3)
    from matching.policy.conditions import evaluate

    for rule in inst.rules:
        block = rule.count[0].value
        group = rule.count[1].value
        selected = int(evaluate(rule.count, frame).sum())
        assert selected == inst.launch.flats[block] * per_group[group]  # 6 flats x applicants


def test_hdb_caps_respected_when_they_bind() -> None:
    """With binding caps the engine keeps every block/group count under its cap (counted here).

    30 applicants are about 23 Chinese for 12 flats: without caps the best welfare gives more
    than 2 flats of a block to Chinese households, so the caps must cost welfare; the capped
    optimum must equal an independent MIP's.
    """
    from matching.solver.matching import solve_matching

    inst = _tight_instance()
    free = solve_matching(inst.left, inst.right, inst.weight, maximize=True)
    capped = solve_matching(inst.left, inst.right, inst.weight, hdb.side_rows(inst), maximize=True)
    a, f = np.asarray(capped.left), np.asarray(capped.right)
    assert hdb.valid_matching(a, f)
    counts = np.zeros((2, 3), dtype=np.int64)
    np.add.at(counts, (inst.flat_block[f], inst.ethnicity[a]), 1)
    assert (counts <= inst.launch.caps).all()
    assert hdb.cap_violations(inst, np.asarray(free.left), np.asarray(free.right)) > 0
    assert capped.value < free.value
    assert capped.value == hdb.milp_welfare(inst, caps=True)[0]
    assert free.value == hdb.scipy_welfare(inst)[0]


def test_hdb_blocks_with_capacities_give_the_flat_level_optimum() -> None:
    """Blocks as nodes with capacities (hdb.engine): the flat-level optima, caps counted on flats.

    The engine sees 2 blocks of capacity 6 instead of 12 flats; spread back over the flats, its
    matching must give each flat at most one applicant, keep every cap, and reach the welfare of
    scipy's assignment without caps and of the independent flat-level MIP with caps.
    """
    inst = _tight_instance()
    free = hdb.engine(inst, caps=False, time_limit=20.0)
    capped = hdb.engine(inst, caps=True, time_limit=20.0)
    assert free["status"] == capped["status"] == "OPTIMAL"
    assert free["valid"] and capped["valid"]
    assert capped["violations"] == 0
    assert free["welfare"] == free["value"] == hdb.scipy_welfare(inst)[0]
    assert capped["welfare"] == capped["value"] == hdb.milp_welfare(inst, caps=True)[0]
    assert capped["welfare"] < free["welfare"]  # the caps bind here


def test_right_capacity_lets_a_node_take_several_arcs() -> None:
    """Two left nodes, one right node of capacity 2: both matched (capacity 1: only the best)."""
    from matching.solver.matching import solve_matching

    left, right, weight = np.array([0, 1]), np.array([0, 0]), np.array([5, 3])
    one = solve_matching(left, right, weight, maximize=True)
    two = solve_matching(left, right, weight, maximize=True, right_capacity=np.array([2]))
    assert (one.status, one.value) == ("OPTIMAL", 5)
    assert (two.status, two.value) == ("OPTIMAL", 8)


def test_a_second_run_on_the_same_day_gets_its_own_results_file(tmp_path: Path) -> None:
    """Dated result files never overwrite an earlier run of the same day (.md or .csv)."""
    import datetime as dt

    from benchmarks.report import dated_stem

    day = dt.date(2026, 11, 29)
    first = dated_stem(tmp_path, "ladder", day)
    assert first.name == "ladder-2026-11-29"
    first.with_suffix(".md").write_text("first run", encoding="utf-8")
    second = dated_stem(tmp_path, "ladder", day)
    assert second.name == "ladder-2026-11-29-2"
    second.with_suffix(".csv").write_text("a\n", encoding="utf-8")  # a run that wrote its CSV
    assert dated_stem(tmp_path, "ladder", day).name == "ladder-2026-11-29-3"
    assert dated_stem(tmp_path, "pairs", day).name == "pairs-2026-11-29"
    assert first.with_suffix(".md").read_text(encoding="utf-8") == "first run"


@pytest.mark.parametrize(
    "argv,name,refreshes",
    [
        ([], "ladder", True),
        (["--time-limit", "10"], "ladder", True),
        (["--quick"], "ladder-quick", False),
        (["--only", "caen-month"], "ladder-partial", False),
        (["--quick", "--only", "orlib"], "ladder-quick", False),
        (["--quick", "--name", "mine"], "mine", False),
    ],
)
def test_only_the_full_ladder_refreshes_the_readme_table(
    argv: list[str], name: str, refreshes: bool
) -> None:
    """benchmarks/README.md says partial runs leave its table alone; ``--quick`` replaced it."""
    from benchmarks.__main__ import parse, run_name, updates_readme

    args = parse(argv)
    assert (run_name(args), updates_readme(args)) == (name, refreshes)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--only", "caen-year-bindng"], "--only caen-year-bindng: selects nothing (known: "),
        (["--only", "caen-year-binding", "--only", "hgihs"], "--only hgihs: selects nothing"),
        (["--quick", "--only", "caen-year-binding"], "selects nothing in a --quick run"),
        (["--time-limit", "0", "--only", "assign100"], "--time-limit 0.0: a number > 0"),
        (["--time-limit", "nan"], "--time-limit nan: a number > 0"),
        (["--budget-min", "-1"], "--budget-min -1.0: a number > 0"),
        (["--memory-gb", "0"], "--memory-gb 0.0: a number > 0"),
    ],
)
def test_an_option_that_selects_or_allows_nothing_is_a_usage_error(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typo in ``--only`` is exit 2 naming it; it wrote an empty results page, exit 0.

    So is a time limit, budget or memory cap that is not > 0 (every measurement failed, and the
    page of errors was written with exit 0). Names that do select something (a case, a method,
    an instance, case:method) still pass.
    """
    import benchmarks.__main__ as bench
    from benchmarks import report

    def measuring(*args: object) -> None:
        raise AssertionError("the arguments were accepted: a measurement or a page would come")

    monkeypatch.setattr(bench, "run_child", measuring)
    monkeypatch.setattr(report, "write", measuring)
    with pytest.raises(SystemExit) as stopped:
        bench.main(argv)
    assert stopped.value.code == 2
    assert said in capsys.readouterr().err
    for fine in (["caen-year-binding:scipy"], ["caen-year-binding"], ["highs"], ["assign100"]):
        assert bench.plan(bench.parse([arg for name in fine for arg in ("--only", name)]))


def test_a_quick_run_writes_its_page_and_leaves_the_readme_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m benchmarks --quick`` (its measurements left out): a ladder-quick page only."""
    import datetime as dt

    import benchmarks.__main__ as bench
    from benchmarks import report

    readme = tmp_path / "README.md"
    latest = "Latest run: `results/ladder-2026-11-29-5.md`."
    table = f"{report.LATEST_START}\n{latest}\n{report.LATEST_END}\n"
    readme.write_text(table, encoding="utf-8")
    monkeypatch.setattr(report, "README", readme)
    monkeypatch.setattr(report, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(bench, "plan", lambda args: [])
    bench.main(["--quick"])
    assert readme.read_text(encoding="utf-8") == table
    today = dt.date.today().isoformat()
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [
        f"ladder-quick-{today}.csv",
        f"ladder-quick-{today}.md",
    ]
    bench.main([])  # the full ladder (here empty) does refresh it
    assert f"Latest run: `results/ladder-{today}.md`." in readme.read_text(encoding="utf-8")


def test_the_lp_floor_resolves_the_engines_own_root_lp() -> None:
    """The LP taken from the engine, solved again from scratch, has the engine's root LP value.

    HiGHS minimises the negated folded objective, so each strategy's objective is -lp_bound; the
    phases add up to the solve; the engine is left as it was (no wrapper after the run).
    """
    from benchmarks import lp_floor

    from matching.solver import lp as lp_module

    original = lp_module.LPSession.solve
    record = lp_floor.measure("small-round", repeats=1)
    assert lp_module.LPSession.solve is original
    assert record["status"] == "OPTIMAL" and record["lp_calls"] >= 1
    for _, solver, presolve in lp_floor.STRATEGIES:
        value = -record[f"{solver}_presolve_{presolve}_objective"]
        assert abs(value - record["lp_bound"]) <= 1e-6 * abs(record["lp_bound"]), solver
    phases = record["before_lp_s"] + record["root_lp_s"] + record["after_root_s"]
    assert abs(phases - record["solve_s"]) <= 0.01
    assert record["oracle_lp_s"] == min(
        record[f"{s}_presolve_{p}_s"] for _, s, p in lp_floor.STRATEGIES
    )


def test_the_lagrangian_lead_bounds_the_round_from_above_and_never_below_the_lp() -> None:
    """Every multiplier gives a bound at or above the optimum, and the best never beats the LP.

    The Lagrangian dual of the engine's model is the LP bound at best (the assignment polytope
    is integral), so a bound below the engine's root LP value, or below its optimum at any
    multipliers, would be a wrong subproblem; the subgradient must also make progress.
    """
    from benchmarks import lagrange
    from benchmarks.cases import CASES, prepare

    record = lagrange.measure("small-round", steps=60, patience=30)
    assert record["status"] == "OPTIMAL"
    assert record["optimum"] <= record["lp_bound"] + 1e-6
    assert record["lp_bound"] - 1e-6 <= record["best_bound"] < record["first_bound"]
    dual = lagrange.Dual.of(prepare(CASES["small-round"]).instance)
    n_rows, n_bands = dual.rows.shape[0], len(dual.band_res)
    rng = np.random.default_rng(5)
    draws = [rng.exponential(scale, n_rows + 2 * n_bands) for scale in (1.0, 100.0, 10_000.0)]
    for b in range(n_bands):  # a band paying more than any household: units left empty
        mult = np.zeros(n_rows + 2 * n_bands)
        mult[n_rows + b] = 1e6
        draws.append(mult)
    seen = []
    for scale, mult in enumerate(draws):
        value, grad = dual.evaluate(
            mult[:n_rows], mult[n_rows : n_rows + n_bands], mult[n_rows + n_bands :]
        )
        assert value >= record["optimum"] - 1e-6, scale
        assert grad.shape == mult.shape
        assert value == pytest.approx(_lagrangian_by_lp(dual, mult), rel=1e-9), scale
        seen.append((mult, value, grad))
    for m1, v1, g1 in seen:  # a subgradient: L(m2) >= L(m1) + g1 . (m2 - m1) everywhere
        for m2, v2, _ in seen:
            assert v2 >= v1 + g1 @ (m2 - m1) - 1e-6 * abs(v1)


def _lagrangian_by_lp(dual: Any, mult: np.ndarray) -> float:
    """The same Lagrangian subproblem as an LP (integral: an assignment), solved by HiGHS.

    Columns: the triples, then each flux unit's "empty, oriented to r"; each unit takes exactly
    one of its columns if in the flux (at most one otherwise), each household at most one.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    from matching.solver.instance import NONE

    t = dual.triples
    n_rows, n_bands = dual.rows.shape[0], len(dual.band_res)
    pi, lo, hi = mult[:n_rows], mult[n_rows : n_rows + n_bands], mult[n_rows + n_bands :]
    nu = np.zeros(dual.n_res)
    for b, r in enumerate(dual.band_res):
        nu[r] += lo[b] - hi[b]
    gain = dual.weight + dual.rows.T @ pi
    gain[t.res != NONE] += nu[t.res[t.res != NONE]]
    flux_units = np.flatnonzero(dual.flux)
    n_units, n_t = len(dual.flux), len(t)
    e_unit = np.repeat(flux_units, dual.n_res)
    e_res = np.tile(np.arange(dual.n_res), len(flux_units))
    cost = -np.concatenate([gain, nu[e_res]])
    cols = np.arange(n_t + len(e_unit))
    units = coo_matrix(
        (np.ones(len(cols)), (np.concatenate([t.unit, e_unit]), cols)),
        shape=(n_units, len(cols)),
    ).tocsr()
    demands, d_row = np.unique(t.demand, return_inverse=True)
    households = coo_matrix(
        (np.ones(n_t), (d_row, np.arange(n_t))), shape=(len(demands), len(cols))
    ).tocsr()
    from scipy.sparse import vstack

    upper = np.ones(n_units)
    fixed = dual.flux.astype(float)  # flux units: exactly one column (a household or empty)
    res = linprog(
        cost,
        A_ub=vstack([units[~dual.flux], households]),
        b_ub=np.concatenate([upper[~dual.flux], np.ones(len(demands))]),
        A_eq=units[dual.flux],
        b_eq=fixed[dual.flux],
        bounds=(0, 1),
        method="highs",
    )
    assert res.status == 0
    constant = -(pi @ dual.rhs) - (lo @ dual.band_low) + (hi @ dual.band_high)
    return float(-res.fun + constant)


def test_the_exactness_sweep_compares_both_paths_and_flags_a_difference() -> None:
    """Equal, within (full model unproven) and different verdicts; a real round is equal."""
    from benchmarks import exactness

    proven = {"status": "OPTIMAL", "values": (10, 900), "bounds": (10, 900), "conflicts": ()}
    assert exactness.verdict(proven, dict(proven)) == "equal"
    assert exactness.verdict(proven, {**proven, "values": (10, 899)}) == "DIFFERENT"
    unproven = {"status": "FEASIBLE", "values": (10, 880), "bounds": (10, 950), "conflicts": ()}
    assert exactness.verdict(proven, unproven) == "within"
    assert exactness.verdict(proven, {**unproven, "bounds": (10, 890)}) == "DIFFERENT"
    assert exactness.verdict({**proven, "status": "FEASIBLE"}, unproven) == "DIFFERENT"
    infeasible = {"status": "INFEASIBLE", "values": (), "bounds": (), "conflicts": ("a",)}
    # other named rules: only a verdict once the full model confirms them (`is_conflict`)
    assert exactness.verdict(infeasible, {**infeasible, "conflicts": ("b",)}) == "other conflict"
    assert exactness.verdict(infeasible, {**infeasible, "status": "OPTIMAL"}) == "DIFFERENT"
    records = exactness.run(range(1), ((8, 60),), time_limit=20.0)
    assert [r["verdict"] for r in records] == ["equal", "equal"]
    assert [r["mode"] for r in records] == ["hard", "soft"]
    page = exactness.render(records, "python -m benchmarks.exactness --seeds 0:1")
    assert "2 comparisons; equal: 2" in page


def test_the_varied_policies_are_drawn_from_the_seed_and_compared() -> None:
    """Each seed draws a stage order, a mode, floor targets, extra rules and weights; compared.

    The same seed draws the same policy (and year so far); a shortfall-only policy (which
    raised before) compares equal; both infeasible with other named rules is its own verdict.
    """
    from benchmarks import exactness

    from matching.policy import load_policy
    from matching.types import QuotaMode, Stage

    policy = load_policy("default-2026")
    drawn = [exactness.varied_policy(policy, seed) for seed in range(40)]
    assert drawn[7][2] == exactness.varied_policy(policy, 7)[2]
    assert {p.quotas.mode for p, _, _ in drawn} == {QuotaMode.HARD, QuotaMode.SOFT}
    assert len({p.objective.stages for p, _, _ in drawn}) >= 10
    assert any(p.objective.stages[0] == Stage.SCORE for p, _, _ in drawn)
    extra = {e["id"] for e in exactness.EXTRA_RULES}
    added = [{r.id for r in p.quotas.rules} & extra for p, _, _ in drawn]
    assert any(added) and all(len(a) <= 2 for a in added)
    assert 10 <= sum(year is not None for _, year, _ in drawn) <= 30
    weighed = [p for p, _, d in drawn if " weights " in d]
    assert weighed and all(p.quotas.mode == QuotaMode.SOFT for p in weighed)
    assert {r.weight for p in weighed for r in p.quotas.rules} == set(exactness.WEIGHTS)
    for varied, year, described in drawn:
        targets = {r.id: r.target for r in varied.quotas.rules}
        assert all(0.1 <= targets[rule] <= 0.6 for rule in exactness.FLOORS)
        assert described.endswith(" + year") == (year is not None)
    only = next(s for s in range(40) if drawn[s][0].objective.stages == (Stage.SHORTFALL,))
    records = exactness.run(range(only, only + 1), ((10, 80),), 20.0, vary=True)
    assert [r["verdict"] for r in records] == ["equal"] and records[0]["error"] == ""
    assert " [shortfall] " in records[0]["mode"]


def test_another_named_conflict_is_confirmed_by_the_full_model() -> None:
    """``other conflict`` needs the LP path's rules to be infeasible on their own."""
    from benchmarks import exactness

    from matching.flux import YearSoFar
    from matching.generate import generate_territory
    from matching.params import SolveParams
    from matching.policy import load_policy
    from matching.policy.quotas import Tally

    units, demands = generate_territory("caen-la-mer", 2026, seed=4, n_units=10, n_demands=80)
    policy = load_policy("default-2026")
    # 1,000 earlier allocations outside QPV, none Q1: that floor is out of reach this round
    year = YearSoFar(tallies={"mixity_outside_qpv": {"": Tally(base=1000, counted=0)}})
    params = SolveParams(num_workers=1, time_limit_s=20.0, prune=False)
    full = exactness.outcome(units, demands, policy, params, year)
    assert full["status"] == "INFEASIBLE" and "mixity_outside_qpv" in full["conflicts"]
    assert exactness.is_conflict(units, demands, policy, params, year, ("mixity_outside_qpv",))
    assert not exactness.is_conflict(units, demands, policy, params, year, ("mixity_inside_qpv",))


def test_the_month_sweep_solves_each_months_units_and_counts_the_goals() -> None:
    """Each record is its month's round, solved, checked and scored against issue 5's goals."""
    import pandas as pd
    from benchmarks import months
    from tests.solver.support import verify

    from matching.generate import generate_territory
    from matching.params import SolveParams
    from matching.policy import load_policy

    units, demands = generate_territory(
        territory="caen-la-mer", year=2026, seed=3, n_units=600, n_demands=2_500
    )
    policy = load_policy("default-2026")
    round_units, on = months.month_units(units, 2)
    released = pd.to_datetime(round_units["released_on"])
    assert len(round_units) > 0 and (released.dt.month == 2).all()
    assert on.isoformat() == "2026-02-28"
    record, result = months.measure_round(
        round_units, demands, policy, on, SolveParams(time_limit_s=30, seed=1)
    )
    verify(result, round_units, demands, policy, on=on)  # the independent checker
    assert record["status"] == "OPTIMAL" and record["units"] == len(round_units)
    assert record["allocations"] == len(result.allocation)
    assert record["under_2s"] == (record["solve_s"] < 2.0)
    assert record["within_10x"] == (record["solve_per_scipy"] <= 10.0)
    assert 0.0 <= record["price_of_quotas_pct"] < 100.0

    record = {"seed": 3, "month": 2, **record}
    rows = [
        {**record, "status": "OPTIMAL", "solve_s": 1.0, "solve_per_scipy": 8.0,
         "under_2s": True, "within_10x": True},
        {**record, "status": "OPTIMAL", "solve_s": 3.0, "solve_per_scipy": 30.0,
         "under_2s": False, "within_10x": False},
        {**record, "status": "FEASIBLE", "solve_s": 5.0, "solve_per_scipy": 50.0,
         "under_2s": False, "within_10x": False},
    ]  # fmt: skip
    s = months.summary(rows)
    assert (s["rounds"], s["optimal"], s["under_2s"], s["within_10x"]) == (3, 2, 1, 1)
    assert s["solve_s"] == pytest.approx({"min": 1.0, "median": 3.0, "p90": 4.6, "max": 5.0})
    page = months.render(rows, "python -m benchmarks.months")
    assert "3 rounds: 2 proven optimal; **1 in under 2 s**; **1 within 10x scipy**" in page


def test_the_binding_table_says_the_quotas_cost_nothing_on_the_default_pooled_year() -> None:
    """Whether the quotas bind is the price of the proven quota optimum.

    Not whether the one unconstrained optimum scipy returned meets them: on the 2026-11-29
    ladder the pooled year's scipy optimum misses them, yet `matching` proves 4,000 allocations
    and the same score, 408,543, under every quota.
    """
    from benchmarks import report

    def row(case: str, method: str, status: str, allocations: int, score: int) -> dict[str, object]:
        return {
            "case": case,
            "method": method,
            "status": status,
            "allocations": allocations,
            "score": score,
            "q1_outside_qpv_pct": 24.7,
            "meets_all_quotas": False,
        }

    records = [
        row("caen-year", "scipy", "OPTIMAL (no quotas)", 4000, 408543),
        row("caen-year", "matching", "OPTIMAL", 4000, 408543),
        row("caen-year-binding", "scipy", "OPTIMAL (no quotas)", 4000, 398797),
        row("caen-year-binding", "matching", "OPTIMAL", 4000, 398666),
        row("caen-month", "scipy", "OPTIMAL (no quotas)", 310, 48352),
        row("caen-month", "matching", "OPTIMAL", 310, 48070),
        row("caleol", "scipy", "OPTIMAL (no quotas)", 40, 7509),
        row("caleol", "matching", "TIME_LIMIT", 39, 7000),
    ]
    lines = {line.split(" | ")[0]: line for line in report.binding_table(records)}
    assert lines["| caen-year"].endswith("| no (same allocations and score) |")
    assert lines["| caen-year-binding"].endswith("| yes (score -131) |")
    for r in records:
        r["solve_s"] = {"caen-year": 14.5, "caen-year-binding": 177.5}.get(r["case"], 0.5)
    goal = [g for g in report.goals_table(records) if "year pooled" in g]
    assert goal == [
        "| Caen year pooled (caen-year) proven optimal in < 30 s | OPTIMAL, 14.5 s | yes, on "
        "quotas that do not bind (price 0) |",
        "| Caen year pooled, generated to bind (caen-year-binding) proven optimal in < 30 s | "
        "OPTIMAL, 177.5 s | no |",
    ]
    assert lines["| caen-month"].endswith("| yes (score -282) |")
    assert lines["| caleol"].endswith("| - |")  # not proven: nothing can be said


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--seeds", "3:3"], "--seeds 3:3 selects nothing"),
        (["--months", "7:7"], "--months 7:7 selects nothing"),
        (["--months", "0,13"], "months are 1 to 12"),
        (["--seeds", "abc"], "--seeds 'abc' is not 'A:B'"),
        (["--seeds", "1:2:3"], "--seeds '1:2:3' is not 'A:B'"),
        (["--months", "1.5"], "--months '1.5' is not 'A:B'"),
        (["--seeds", "-1"], "seeds are >= 0"),
        (["--months", "7,7"], "--months 7,7 names a value twice"),
        (["--time-limit", "0"], "--time-limit 0.0: a number of seconds > 0"),
        (["--time-limit", "nan"], "--time-limit nan: a number of seconds > 0"),
    ],
)
def test_months_refuses_a_selection_of_nothing(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--seeds 3:3` (half-open: no seed) is a usage error naming it, not a numpy traceback.

    So are a selection that is not one (a traceback from int()), a negative seed (the
    generator's traceback), a month or seed named twice (solved and counted twice) and a time
    limit that is not > 0 (SolveParams's traceback after the first year was generated).
    """
    from benchmarks import months

    def solving(*args: object) -> None:
        raise AssertionError("the arguments were accepted: the rounds would be solved")

    monkeypatch.setattr(months, "measure", solving)
    with pytest.raises(SystemExit) as stopped:
        months.main(argv)
    assert stopped.value.code == 2
    assert said in capsys.readouterr().err


def test_the_page_says_how_the_binding_year_was_generated() -> None:
    """The page's "Data:" line names the binding year's calibration, not only seed 1.

    Its demands are not the default year's (another calibration), which the page did not say.
    """
    from benchmarks.report import render

    page = render([], "python -m benchmarks", 0.0)
    assert "caen-year-binding is the same pooled year with `calibration=generate.BINDING_YEAR`" in (
        page
    )
