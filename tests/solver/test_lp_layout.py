"""The round's LP layout (`matching.solver.lp.RoundLayout`) is the LP it claims to be.

`RoundLayout` writes a flux unit's orientation implicitly (its triples plus an "oriented and
left empty" column) instead of the orientation columns and link rows ``x <= o`` of the CP-SAT
model. The LP path's bounds, reduced costs and prunings are only valid if that is the same
relaxation: checked here against an LP written independently in the explicit form, on random
rounds whose floors bind. Also: its implicit ``A^T y`` equals the transpose of its columns, and
a solution's auxiliary values satisfy its rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from matching.solver.instance import RoundInstance, Triples, build_triples
from matching.solver.lp import SAMPLE_ABOVE, Certificate, LPSession, RoundLayout, kth_smallest
from matching.solver.objective import combined_weights, stage_terms
from matching.solver.rows import QuotaRow, quota_rows
from tests.solver.support import binding_policy, generated_round


def _round(seed: int) -> tuple[RoundInstance, Triples, list[QuotaRow], np.ndarray]:
    """A 12 x 90 generated round under floors that bind, with its triples, rows and weights."""
    _, _, _, inst = generated_round(seed, 12, 90, binding_policy())
    triples = build_triples(inst)
    rows = quota_rows(inst, triples)
    terms = stage_terms(
        inst.policy.objective.stages, triples, rows, inst.policy.quotas.mode, len(inst.units)
    )
    weights, _, _ = combined_weights(terms)
    return inst, triples, rows, weights


def _explicit_lp_value(
    inst: RoundInstance, triples: Triples, rows: list[QuotaRow], weights: np.ndarray
) -> float:
    """The LP optimum with orientation columns o[u, r], link rows and bands over o (max form)."""
    n_x, n_res = len(triples), len(inst.reservataires)
    flux = np.flatnonzero(inst.flux_units)
    o_col = {(int(u), r): n_x + k * n_res + r for k, u in enumerate(flux) for r in range(n_res)}
    n_col = n_x + len(o_col)
    ub: list[tuple[dict[int, float], float]] = []
    eq: list[tuple[dict[int, float], float]] = []
    for u in range(len(inst.units)):
        mine = np.flatnonzero(triples.unit == u)
        if not inst.flux_units[u]:
            ub.append(({int(t): 1.0 for t in mine}, 1.0))
            continue
        eq.append(({o_col[(u, r)]: 1.0 for r in range(n_res)}, 1.0))
        for r in range(n_res):  # sum of the unit's triples of r <= o[u, r]
            link = {int(t): 1.0 for t in mine[triples.res[mine] == r]}
            link[o_col[(u, r)]] = -1.0
            ub.append((link, 0.0))
    for d in range(len(inst.demands)):
        ub.append(({int(t): 1.0 for t in np.flatnonzero(triples.demand == d)}, 1.0))
    for res, band in inst.bands().items():
        r = inst.reservataires.index(res)
        on_r = {o_col[(int(u), r)]: 1.0 for u in flux}
        ub.append((on_r, float(band.high)))
        ub.append(({c: -1.0 for c in on_r}, -float(band.low)))
    for row in rows:  # hard quota rows, written as <=
        sign = -1.0 if row.sense == ">=" else 1.0
        ub.append(({int(t): sign * float(c) for t, c in zip(row.idx, row.coef, strict=True)},
                   sign * row.rhs))  # fmt: skip

    def matrix(parts: list[tuple[dict[int, float], float]]) -> tuple[sp.csr_matrix, np.ndarray]:
        r = [k for k, (coef, _) in enumerate(parts) for _ in coef]
        c = [j for coef, _ in parts for j in coef]
        v = [x for coef, _ in parts for x in coef.values()]
        shape = (len(parts), n_col)
        return sp.csr_matrix((v, (r, c)), shape=shape), np.array([b for _, b in parts])

    a_ub, b_ub = matrix(ub)
    a_eq, b_eq = matrix(eq)
    cost = -np.concatenate([weights, np.zeros(len(o_col))])
    lp = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, 1), method="highs")
    assert lp.status == 0, lp.message
    return float(-lp.fun)


@pytest.mark.parametrize("seed", range(1, 7))
def test_layout_is_the_explicit_relaxation(seed: int) -> None:
    """Same LP optimum as the explicit form (orientation columns, link rows, bands over o)."""
    inst, triples, rows, weights = _round(seed)
    lay = RoundLayout(inst, triples, rows, inst.bands(), soft=False)
    n = lay.n_x + lay.n_o + lay.n_s
    matrix = lay.columns(np.arange(n)).tocsr()
    n_ub = len(lay.b_ub)
    cost = -np.concatenate([weights, np.zeros(lay.n_o)])
    lp = linprog(
        cost, A_ub=matrix[:n_ub], b_ub=lay.b_ub, A_eq=matrix[n_ub:], b_eq=lay.b_eq,
        bounds=list(zip(np.zeros(n), lay.upper[:n], strict=True)), method="highs",
    )  # fmt: skip
    assert lp.status == 0, lp.message
    explicit = _explicit_lp_value(inst, triples, rows, weights)
    assert -lp.fun == pytest.approx(explicit, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("seed", [1, 2])
def test_implicit_transpose_matches_the_columns(seed: int) -> None:
    """``rmatvec(y)`` is ``A^T y`` for the matrix `columns` writes (random duals)."""
    inst, triples, rows, _ = _round(seed)
    for soft in (False, True):
        lay = RoundLayout(inst, triples, rows, inst.bands(), soft=soft)
        n = lay.n_x + lay.n_o + lay.n_s
        matrix = lay.columns(np.arange(n))
        rng = np.random.default_rng(seed)
        y_ub, y_eq = rng.normal(size=len(lay.b_ub)), rng.normal(size=len(lay.b_eq))
        expected = matrix.T @ np.concatenate([y_ub, y_eq])
        np.testing.assert_allclose(lay.rmatvec(y_ub, y_eq), expected, atol=1e-9)


@pytest.mark.parametrize("seed", [1, 2])
def test_reduced_costs_by_household_are_cost_minus_the_transpose(seed: int) -> None:
    """Costs held per household give every column's ``cost - A^T y`` and cost.

    The same as a cost array over every column (random duals, a per-class extra term).
    """
    from matching.solver.lp import Costs, reduced_costs
    from matching.solver.seed import uniform_household_weights

    inst, triples, rows, weights = _round(seed)
    by_household = uniform_household_weights(triples.demand, weights, len(inst.demands))
    assert by_household is not None  # the default stages weigh a household's triples alike
    lay = RoundLayout(inst, triples, rows, inst.bands(), soft=True)
    rng = np.random.default_rng(seed)
    rest = rng.normal(size=lay.n_o + lay.n_s)
    full = np.concatenate([-weights, rest])
    held = Costs.by_household(-by_household, triples.demand, rest)
    n = lay.n_x + lay.n_o + lay.n_s
    matrix = lay.columns(np.arange(n))
    y_ub, y_eq = rng.normal(size=len(lay.b_ub)), rng.normal(size=len(lay.b_eq))
    extra = rng.normal(size=int(lay.classes.max()) + 1)
    expected = full - matrix.T @ np.concatenate([y_ub, y_eq])
    expected[: lay.n_x] -= extra[lay.classes]
    for costs in (held, Costs(lay.n_x, full=full)):
        rc = reduced_costs(lay, costs, y_ub, y_eq, extra)
        np.testing.assert_allclose(rc, expected, atol=1e-9)
        cols = rng.permutation(n)[: n // 2]
        assert np.array_equal(costs.of(cols), full[cols])
        assert costs.largest_triple_cost() == float(np.abs(weights).max())
    spread = weights + (triples.unit % 2)  # a household's triples weighing differently
    assert uniform_household_weights(triples.demand, spread, len(inst.demands)) is None


def test_auxiliary_values_of_a_solution_satisfy_the_rows() -> None:
    """A greedy allocation's x and auxiliary values meet the unit, band and demand rows."""
    inst, triples, rows, _ = _round(3)
    lay = RoundLayout(inst, triples, rows, inst.bands(), soft=False)
    # one triple per unit, distinct households, each unit to its first réservataire
    chosen, used = [], set()
    for u in range(len(inst.units)):
        for t in np.flatnonzero(triples.unit == u):
            if int(triples.demand[t]) not in used:
                chosen.append(int(t))
                used.add(int(triples.demand[t]))
                break
    chosen_arr = np.array(chosen[::2], dtype=np.int64)  # every other unit stays empty
    orientation = {
        int(triples.unit[t]): int(triples.res[t]) for t in chosen_arr if triples.res[t] >= 0
    }
    for flux_unit in np.flatnonzero(inst.flux_units).tolist():
        orientation.setdefault(flux_unit, 0)
    values = np.zeros(lay.n_x + lay.n_o)
    values[chosen_arr] = 1.0
    values[lay.n_x :] = lay.auxiliary_values(chosen_arr, orientation)
    matrix = lay.columns(np.arange(lay.n_x + lay.n_o)).tocsr()
    n_ub = len(lay.b_ub)
    lhs_eq = matrix[n_ub:] @ values
    n_flux = int(inst.flux_units.sum())
    np.testing.assert_allclose(lhs_eq[:n_flux], 1.0)  # every flux unit oriented once
    counts = np.bincount(list(orientation.values()), minlength=len(inst.reservataires))
    # each band row holds the réservataire's oriented units minus n_r = its low
    np.testing.assert_allclose(lhs_eq[n_flux:], lay.b_eq[n_flux:])
    assert np.array_equal(values[lay.n_x + lay.n_e :] + lay.b_eq[n_flux:], counts[lay.band_res])
    assert (matrix[lay.demand0 : lay.quota0] @ values <= 1 + 1e-9).all()
    assert lay.orientation(values) == dict(sorted(orientation.items()))


def test_each_session_solve_gets_its_own_time_limit() -> None:
    """A session whose HiGHS already ran longer than a solve's limit still solves it.

    HiGHS counts its time limit on the instance's whole run time, so a limit of 1 s set after
    more than 1 s of earlier solves used to stop the next solve at once (status "failed").
    """
    from matching.solver.lp import LPSession

    inst, triples, rows, weights = _round(4)
    session = LPSession.for_round(
        inst, triples, rows, inst.bands(), weights, np.zeros(len(rows)), soft=False
    )
    assert session.solve(time_limit_s=1.0).status == "bound"
    while session.highs.getRunTime() < 1.2:  # earlier solves: cold again and again
        session.highs.clearSolver()
        session.highs.run()
    session.highs.clearSolver()
    assert session.solve(time_limit_s=1.0).status == "bound"


@pytest.mark.parametrize("seed", [1, 5])
def test_touched_rows_are_the_rows_with_a_coefficient(seed: int) -> None:
    """`touched_rows` marks exactly the rows `columns` writes to (and every quota row)."""
    inst, triples, rows, _ = _round(seed)
    lay = RoundLayout(inst, triples, rows, inst.bands(), soft=False)
    matrix = lay.columns(np.arange(lay.n_x + lay.n_o)).tocsr()
    written = np.diff(matrix.indptr) > 0
    written[lay.quota0 : len(lay.b_ub)] = True
    assert np.array_equal(lay.touched_rows(), written)
    assert not written.all()  # some household of the round has no triple: left out


def test_bound_sums_are_exact_and_the_slack_below_one_point() -> None:
    """The bound's sums do not lose small terms; its slack stays far below 1 at 1e9-1e10.

    A pooled year's folded objective is about 1.7e9: a slack proportional to 1e-9 of it
    exceeded 1, so an LP bound equal to the incumbent could never prove it.
    """
    from matching.solver.lp import _exact_dot, bound_slack

    a = np.array([1e16, 1.0, -1e16, 1.0])
    assert _exact_dot(a, np.ones(4)) == 2.0  # np.dot gives 0.0 or 2.0 depending on order
    for magnitude in (1.5e7, 1.7e9, 2e10):
        assert 0 < bound_slack(magnitude) < 0.25
        assert bound_slack(-magnitude) == bound_slack(magnitude)


@pytest.mark.parametrize("seed", range(1, 7))
def test_session_bound_is_the_lp_optimum_and_its_solution_reaches_it(seed: int) -> None:
    """The column generation's bound is the explicit LP's optimum, and so is its LP solution.

    It starts from the unconstrained optimum's prices (a bound before any simplex iteration)
    and stops when its restricted LP reaches the best bound so far: stopping early must not
    leave the bound above the LP optimum, nor return a solution below it.
    """
    from matching.solver.lp import LPSession, bound_slack

    inst, triples, rows, weights = _round(seed)
    session = LPSession.for_round(
        inst, triples, rows, inst.bands(), weights, np.zeros(len(rows)), soft=False
    )
    assert session.first_duals is not None  # the prices were proven
    cert = session.solve()
    explicit = _explicit_lp_value(inst, triples, rows, weights)
    assert cert.status == "bound"
    assert explicit - 1e-6 <= cert.upper_bound <= explicit + bound_slack(explicit)
    assert cert.primal is not None
    assert float(weights @ cert.primal.dense(len(weights))) == pytest.approx(
        explicit, rel=1e-9, abs=1e-6
    )


def _rescued_session(
    seed: int,
    after_rounds: int,
    monkeypatch: pytest.MonkeyPatch,
    rescue: Callable[[RoundInstance, Triples], np.ndarray] | None = None,
) -> tuple[LPSession, np.ndarray, float]:
    """A round's LP session whose rescue is due after ``after_rounds`` rounds (always lagging).

    No early stop at the assignment prices, so the rounds run; the rescue is the greedy's
    triples unless ``rescue`` (a callable of the round's instance and triples) replaces it.
    Returns the session, the triples' weights and the explicit LP's optimum.
    """
    from matching.solver import lp
    from matching.solver.solve import _greedy_triples

    monkeypatch.setattr(lp, "RESCUE_AFTER_ROUNDS", after_rounds)
    monkeypatch.setattr(lp, "RESCUE_GAP", -1.0)
    inst, triples, rows, weights = _round(seed)
    session = lp.LPSession.for_round(
        inst, triples, rows, inst.bands(), weights, np.zeros(len(rows)), soft=False
    )
    session.first_duals = None
    make = rescue or _greedy_triples
    session.rescue = lambda: make(inst, triples)
    return session, weights, _explicit_lp_value(inst, triples, rows, weights)


def _assert_explicit_lp(cert: Certificate, weights: np.ndarray, explicit: float) -> None:
    """The certificate's bound and its LP solution are the explicit LP's optimum."""
    from matching.solver.lp import bound_slack

    assert explicit - 1e-6 <= cert.upper_bound <= explicit + bound_slack(explicit)
    assert cert.primal is not None
    assert float(weights @ cert.primal.dense(len(weights))) == pytest.approx(
        explicit, rel=1e-9, abs=1e-6
    )


@pytest.mark.parametrize("seed", range(1, 7))
def test_rescue_and_purge_keep_the_lp_optimum(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rescue columns and a purge after the first round: the bound is still the LP optimum.

    The purge drops the columns that do not improve at the restricted LP's duals; pricing must
    bring back any that the optimum needs, so the bound and the solution are the explicit LP's.
    """
    from matching.solver import lp

    session, weights, explicit = _rescued_session(seed, 1, monkeypatch)
    purged: list[int] = []
    real = lp.LPSession._purge

    def spy(self: lp.LPSession, col_dual: np.ndarray) -> int:
        purged.append(real(self, col_dual))
        return purged[-1]

    monkeypatch.setattr(lp.LPSession, "_purge", spy)
    cert = session.solve()
    # the rescue came after the first round (and purged what did not improve), unless the first
    # round's restricted LP was already optimal (seed 4)
    assert purged or cert.rounds == 1
    assert cert.status == "bound"
    _assert_explicit_lp(cert, weights, explicit)
    n_x = session.lay.n_x
    assert session.in_lp.sum() == len(session.col_global[session.col_global < n_x])


@pytest.mark.parametrize("seed", [1, 3, 5, 8])
def test_sift_after_the_rescue_keeps_the_lp_optimum(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sifting after the rescue: the bound and solution are still the explicit LP's optimum.

    Every triple nonbasic at zero leaves HiGHS at each round after the rescue's first LP, so
    pricing must bring back what the optimum needs; at the end the sifted triples tight under
    the final dual are back in the LP, and its basis is still optimal (the branching starts
    from it).
    """
    from matching.solver import lp

    session, weights, explicit = _rescued_session(seed, 1, monkeypatch)
    pools: list[np.ndarray] = []
    real = lp.LPSession._sift

    def spy(self: lp.LPSession, sifted: np.ndarray) -> None:
        real(self, sifted)
        pools.append(sifted.copy())

    monkeypatch.setattr(lp.LPSession, "_sift", spy)
    cert = session.solve()
    assert pools and pools[-1].any()  # these seeds price after the rescue's first LP
    assert cert.status == "bound"
    _assert_explicit_lp(cert, weights, explicit)
    tight = pools[-1] & (cert.reduced_cost <= lp.PURGE_ABOVE * session.scale)
    assert session.in_lp[tight].all()
    n_x = session.lay.n_x
    assert session.in_lp.sum() == len(session.col_global[session.col_global < n_x])
    session.highs.run()  # the restored columns left the basis optimal
    assert session.highs.getInfo().simplex_iteration_count == 0
    assert -session.highs.getInfo().objective_function_value == pytest.approx(
        explicit, rel=1e-9, abs=1e-6
    )


@pytest.mark.parametrize("seed", [1, 2, 7])
def test_rescue_started_early_runs_aside_and_changes_nothing(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rescue started one round early runs on its own thread, and the LP is the same.

    Seeds 1 and 7 use it at their second round; seed 2's LP ends at its second round, before
    the rescue, and the solve still waits for the greedy: no thread outlives it. With or
    without the early start, the same rounds, columns, bound and solution (the explicit LP's).
    """
    import threading

    from matching.solver import lp
    from matching.solver.solve import _greedy_triples

    outcomes = []
    for early in (True, False):
        monkeypatch.setattr(lp, "PREFETCH_RESCUE", early)
        ran_on: list[str] = []

        def rescue(inst: RoundInstance, triples: Triples, ran_on: list[str] = ran_on) -> np.ndarray:
            ran_on.append(threading.current_thread().name)
            return _greedy_triples(inst, triples)

        session, weights, explicit = _rescued_session(seed, 2, monkeypatch, rescue)
        cert = session.solve()
        assert not any(t.name.startswith("matching-rescue") for t in threading.enumerate())
        assert session._early is None
        if early:
            assert len(ran_on) == 1 and ran_on[0].startswith("matching-rescue")
        else:
            assert all(name == threading.current_thread().name for name in ran_on)
        _assert_explicit_lp(cert, weights, explicit)
        outcomes.append((cert.rounds, cert.lp_columns, cert.upper_bound, len(ran_on)))
    (rounds, columns, bound, _), (rounds_off, columns_off, bound_off, used_off) = outcomes
    assert (rounds, columns, bound) == (rounds_off, columns_off, bound_off)
    assert used_off == (1 if seed in (1, 7) else 0)  # the rescue was due (or the LP ended)


@pytest.mark.parametrize("scoped", [False, True])
def test_row_classes_share_every_coefficient(scoped: bool) -> None:
    """Triples of one class have one unit, one réservataire and one coefficient per row.

    Also with a rule scoped by household category: its rows (one per category) share one
    digit, and the triples of one unit and réservataire in different rows are apart.
    """
    from matching.solver.rows import row_classes
    from tests.solver.support import rule, with_rules

    if scoped:
        per_category = rule(
            "priority_half_per_category", "floor", "share", 0.5,
            count=[{"field": "demand.priority"}], scope="demand.category",
        )  # fmt: skip
        policy = binding_policy()
        policy = with_rules(policy, *policy.quotas.rules, per_category)
        _, _, _, inst = generated_round(2, 12, 90, policy)
        triples = build_triples(inst)
        rows = quota_rows(inst, triples)
        assert sum(r.rule.id == "priority_half_per_category" for r in rows) > 1
    else:
        inst, triples, rows, _ = _round(2)
    classes = row_classes(triples, rows, len(inst.reservataires))
    assert classes.dtype == np.int32 and len(classes) == len(triples)
    n_classes = int(classes.max()) + 1
    assert 1 < n_classes < len(triples)
    first = np.zeros(n_classes, dtype=np.int64)
    first[classes[::-1]] = np.arange(len(triples))[::-1]
    same = [triples.unit, triples.res]
    for row in rows:
        coef = np.zeros(len(triples), dtype=np.int64)
        coef[row.idx] = row.coef
        same.append(coef)
    for values in same:
        assert np.array_equal(values, values[first[classes]])
    # and no finer: one class per signature, numbered by first appearance
    signature = np.unique(np.stack(same, axis=1), axis=0, return_inverse=True)[1].ravel()
    assert n_classes == int(signature.max()) + 1
    assert np.array_equal(np.unique(classes, return_index=True)[1], np.sort(first))
    assert np.array_equal(first, np.sort(first))


@pytest.mark.parametrize("per_group", [1, 2, 3])
def test_top_per_class_is_the_first_triples_of_each_class(per_group: int) -> None:
    """The first ``per_group`` positions of every class, however the classes are numbered."""
    from matching.solver.lp import top_per_class
    from matching.solver.rows import class_representatives

    rng = np.random.default_rng(per_group)
    for _ in range(20):
        classes = rng.integers(0, 12, size=int(rng.integers(1, 80))).astype(np.int32)
        classes = np.unique(classes, return_inverse=True)[1].ravel().astype(np.int32)
        expected = sorted(
            t for k in range(int(classes.max()) + 1)
            for t in np.flatnonzero(classes == k)[:per_group]
        )  # fmt: skip
        assert top_per_class(classes, per_group).tolist() == expected
        firsts = [int(np.flatnonzero(classes == k)[0]) for k in range(int(classes.max()) + 1)]
        assert class_representatives(classes).tolist() == firsts


def test_extra_rows_by_class_price_as_scattered() -> None:
    """Extra rows priced per class give the bound and reduced costs of scattering them.

    The branching's cuts are functions of the triples' classes, so their share of the reduced
    costs is added per class (`RoundLayout.class_form`); a row that is not (random coefficients
    here) is scattered. Both must give what scattering every row gives.
    """
    from matching.solver.lp import LinearCut, LPSession

    inst, triples, rows, weights = _round(1)
    row = rows[0]
    by_class = LinearCut(row.idx, row.coef, ">=", int(row.rhs) + 1, "by-class")
    rng = np.random.default_rng(3)
    pick = np.sort(rng.choice(len(triples), size=len(triples) // 3, replace=False))
    scattered = LinearCut(pick, rng.integers(1, 4, size=len(pick)).astype(np.int8), "<=", 2, "r")
    certs = []
    for allow in (True, False):
        session = LPSession.for_round(
            inst, triples, rows, inst.bands(), weights, np.zeros(len(rows)), soft=False
        )
        if not allow:
            session.lay.class_form = lambda cut: None  # type: ignore[method-assign]
        session.solve()
        certs.append(session.solve([by_class, scattered]))
        if allow:
            assert session.extra_class[0] is not None and session.extra_class[1] is None
    assert certs[0].upper_bound == pytest.approx(certs[1].upper_bound, rel=1e-12)
    np.testing.assert_allclose(certs[0].reduced_cost, certs[1].reduced_cost, atol=1e-6)


def test_a_twin_session_bounds_a_node_as_its_original_and_leaves_it_alone() -> None:
    """Two nodes at once: the twin and the original, each warm, give each node's bound.

    The branching solves its two best open nodes side by side, the second on a twin
    (`LPSession.twin`). Each node's bound must be the one a session of its own gives, and
    neither session may see the other's rows or columns.
    """
    from matching.solver.branch import _solve_nodes
    from matching.solver.lp import LinearCut, LPSession

    inst, triples, rows, weights = _round(1)
    row = rows[0]
    left = [LinearCut(row.idx, row.coef, ">=", int(row.rhs) + 1, "left")]
    right = [LinearCut(row.idx, row.coef, "<=", int(row.rhs), "right")]

    def fresh() -> LPSession:
        session = LPSession.for_round(
            inst, triples, rows, inst.bands(), weights, np.zeros(len(rows)), soft=False
        )
        session.solve()
        return session

    alone = [fresh().solve(left), fresh().solve(right)]
    session = fresh()
    columns = len(session.col_global)
    twin = session.twin()
    assert twin.highs is not session.highs and twin.in_lp is not session.in_lp
    both = _solve_nodes([session, twin], [left, right])
    for got, expected in zip(both, alone, strict=True):
        assert got.status == expected.status == "bound"
        assert got.upper_bound == pytest.approx(expected.upper_bound, rel=1e-9)
    assert [c.name for c in session.extra] == ["left"]
    assert [c.name for c in twin.extra] == ["right"]
    assert session.highs.getNumCol() == len(session.col_global) >= columns
    assert twin.highs.getNumCol() == len(twin.col_global)


def test_extra_rows_on_columns_are_their_coefficients_and_skip_violation_columns() -> None:
    """The extra rows written on LP columns are each triple's coefficient, by class or not.

    ``-1`` stands for a violation column in the session's columns: it has no coefficient, even
    where the cuts cover the last triple (which ``-1`` would index).
    """
    from matching.solver.lp import LinearCut, LPSession

    inst, triples, rows, weights = _round(2)
    n = len(triples)
    row = rows[0]
    last = np.arange(n - n // 4, n)  # covers the last triple
    cuts = [
        LinearCut(row.idx, row.coef, ">=", int(row.rhs) + 1, "by-class"),
        LinearCut(last, np.full(len(last), 3, dtype=np.int8), "<=", 2, "tail"),
        LinearCut(np.arange(n), np.ones(n, dtype=np.int8), ">=", 1, "floor"),
    ]
    session = LPSession.for_round(
        inst, triples, rows, inst.bands(), weights, np.zeros(len(rows)), soft=False
    )
    forms = [session.lay.class_form(c) for c in cuts]
    assert forms[0] is not None and forms[2] is not None
    rng = np.random.default_rng(5)
    cols = np.concatenate([[-1], rng.choice(n - 1, size=40, replace=False), [n - 1, -1]])
    for given in (forms, None):
        matrix = session._extra_matrix(cols, cuts, given).toarray()
        for k, cut in enumerate(cuts):
            dense = np.zeros(n)
            dense[cut.idx] = cut.sign * cut.coef.astype(np.float64)
            expected = np.where(cols >= 0, dense[np.maximum(cols, 0)], 0.0)
            assert np.array_equal(matrix[k], expected), (cut.name, given is None)


@pytest.mark.parametrize("shuffled", [False, True])
def test_triples_are_each_pool_expansion_in_unit_reservataire_rank_order(shuffled: bool) -> None:
    """`build_triples` is the plain expansion of every pair by its pools, in sorted order.

    Sorted by (unit, réservataire, tie rank), whether the pairs come grouped by unit or not.
    """
    import dataclasses

    from matching.policy.conditions import evaluate

    _, _, _, inst = generated_round(5, 30, 400, binding_policy())
    if shuffled:
        perm = np.random.default_rng(2).permutation(len(inst.pair_unit))
        inst = dataclasses.replace(
            inst, pair_unit=inst.pair_unit[perm], pair_demand=inst.pair_demand[perm],
            pair_pools=inst.pair_pools[perm],
        )  # fmt: skip
    rows = []
    flux = inst.flux_units
    for u, d, pools in zip(inst.pair_unit, inst.pair_demand, inst.pair_pools, strict=True):
        if not flux[u]:
            rows.append((u, -1, inst.tie_rank[d], d))
            continue
        for i, rule in enumerate(inst.policy.reservataires):
            legal = tuple(c for c in rule.pool if c.field == "priority")
            if (pools >> i) & 1 and (not legal or evaluate(legal, inst.demands.iloc[[d]])[0]):
                rows.append((u, i, inst.tie_rank[d], d))
    expected = np.array(sorted(rows))
    triples = build_triples(inst)
    assert (expected[:, 1] == -1).any() and (expected[:, 1] >= 0).any()
    assert np.array_equal(triples.unit, expected[:, 0])
    assert np.array_equal(triples.res, expected[:, 1])
    assert np.array_equal(triples.demand, expected[:, 3])
    assert np.array_equal(triples.score, inst.scores[expected[:, 3]])


def test_unit_res_key_orders_by_unit_then_reservataire_in_the_narrowest_width() -> None:
    """The group key is unit-major with NONE first, int32 while it fits and int64 beyond."""
    from matching.solver.instance import unit_res_key

    rng = np.random.default_rng(3)
    for n_units, width in [(300, np.int32), (2**29, np.int64)]:
        unit = rng.integers(0, n_units, size=500).astype(np.int32)
        res = rng.integers(-1, 5, size=500).astype(np.int16)
        key = unit_res_key(unit, res, 5)
        assert key.dtype == width
        expected = unit.astype(np.int64) * 6 + res.astype(np.int64) + 1
        assert np.array_equal(key, expected)


def test_a_bound_that_cannot_beat_the_best_is_never_below_its_exact_value() -> None:
    """`_evaluate` may skip the exact sum only for a bound it shows is worse than ``beat``."""
    from matching.solver.lp import LPSession

    inst, triples, rows, weights = _round(2)
    session = LPSession.for_round(
        inst, triples, rows, inst.bands(), weights, np.zeros(len(rows)), soft=False
    )
    lay = session.lay
    rng = np.random.default_rng(2)
    for _ in range(10):
        y_ub = -rng.random(len(lay.b_ub)) * 50
        y_eq = rng.normal(size=len(lay.b_eq)) * 50
        exact, rc = session._evaluate(y_ub, y_eq, np.zeros(0))
        for beat in (exact - 1.0, exact + 1.0, -np.inf):
            value, rc_beat = session._evaluate(y_ub, y_eq, np.zeros(0), beat)
            assert value <= exact + 1e-9  # never an overstatement of a bound that might win
            if value != exact:
                assert value > beat  # skipped only when it cannot be the best
            np.testing.assert_array_equal(rc, rc_beat)


def test_triple_mask_is_evaluate_on_the_triple_fields() -> None:
    """`triple_mask` holds exactly where `evaluate` on each triple's own fields does.

    Through the source tables and by comparisons on the réservataire, on all triples or a subset.
    """
    from matching.policy.conditions import Condition, evaluate
    from matching.solver.instance import triple_fields, triple_mask

    inst, triples, _, _ = _round(3)
    res = list(inst.reservataires)
    cases = [
        (Condition(field="reservataire", value=res[1]),),
        (Condition(field="reservataire", op="in", value=[res[0], "", res[2]]),),
        (Condition(field="reservataire", op="ne", value=res[0]),),
        (Condition(field="reservataire", op="not_in", value=res[:4]),),
        (Condition(field="in_flux"),),
        (Condition(field="in_flux", value=False),),
        (Condition(field="unit.qpv"), Condition(field="demand.priority")),
        (Condition(field="reservataire", op="in", value=res[1:3]), Condition(field="in_flux")),
    ]
    fields = triple_fields(
        inst, triples, {"reservataire", "in_flux", "unit.qpv", "demand.priority"}
    )
    assert (triples.res < 0).any()
    at = np.flatnonzero(np.random.default_rng(0).random(len(triples)) < 0.3).astype(np.int32)
    for conditions in cases:
        expected = evaluate(conditions, fields)
        assert 0 < expected.sum() < len(triples), conditions
        assert np.array_equal(triple_mask(inst, triples, conditions), expected), conditions
        assert np.array_equal(triple_mask(inst, triples, conditions, at=at), expected[at])


def test_sparse_lp_values_read_as_the_dense_solution() -> None:
    """`LPValues` from LP columns in any order (zeros among them) reads as the dense vector."""
    from matching.solver.lp import LPValues

    rng = np.random.default_rng(4)
    n = 500
    for _ in range(20):
        cols = rng.permutation(n)[: int(rng.integers(0, 40))]
        values = np.where(rng.random(len(cols)) < 0.2, 0.0, rng.random(len(cols)))
        lp = LPValues.of(cols, values)
        dense = np.zeros(n)
        dense[cols] = values
        assert np.array_equal(lp.dense(n), dense)
        assert np.all(np.diff(lp.cols) > 0) and np.all(lp.values != 0)
        idx = np.sort(rng.permutation(n)[: int(rng.integers(0, 200))])
        assert np.array_equal(lp.at(idx), dense[idx])
        assert lp.total(idx) == pytest.approx(float(dense[idx].sum()), abs=1e-12)


def _kth_cases() -> list[tuple[str, np.ndarray, int]]:
    rng = np.random.default_rng(7)
    n = 1_200_000  # above SAMPLE_ABOVE: the sampled path
    short = np.arange(n, dtype=np.float64) + 1.0
    short[:: n // 50_000] = 0.0  # the regular sample sees only zeros: it falls short of rank k
    edge = short.copy()
    edge[1 :: n // 50_000] = -1.0  # k = #(<= 0): the k-th value is just above the sampled ties
    ties = np.r_[np.zeros(n), -rng.random(n // 5)]  # the k-th value is a tie of a million
    return [
        ("random", rng.standard_normal(n), 60_000),
        ("rounded", np.round(rng.standard_normal(n), 2), 200_000),
        ("ties at k", rng.permutation(ties), 400_000),
        ("all equal", np.full(n, 3.5), 10_000),
        ("ascending", np.arange(n, dtype=np.float64), 5_000),
        ("descending", np.arange(n, dtype=np.float64)[::-1].copy(), 5_000),
        ("sample falls short", short, 100_000),
        ("k at the first tie", rng.permutation(ties), n // 5),
        ("k just above the ties", edge, int(np.count_nonzero(edge <= 0.0))),
        ("k near the middle", rng.standard_normal(n), n // 2 - 2),
        ("below the threshold", rng.standard_normal(900_000), 1_000),
    ]


@pytest.mark.parametrize("name", [c[0] for c in _kth_cases()])
def test_kth_smallest_is_the_partition_value(name: str) -> None:
    """The sampled order statistic of the pricing is exactly numpy's partition value."""
    values, k = next((v, k) for n, v, k in _kth_cases() if n == name)
    assert len(values) > SAMPLE_ABOVE or name == "below the threshold"
    assert kth_smallest(values, k) == np.partition(values, k)[k]
