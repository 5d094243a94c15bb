"""LP relaxation of a round, and a certificate to prune triples without losing optimality.

Why: a large round has millions of admissible triples, but its LP relaxation is nearly integral
and almost every triple has a large reduced cost. For ANY dual vector (signs respected), weak
duality gives a bound valid for every integer solution ``x``:

    value(x) <= UB - sum_t max(0, rc_t) x_t      with UB = pi^T b + sum_j u_j max(0, -rc_j)

(maximisation, written here with min-form reduced costs ``rc``: positive = costly). So a triple
whose reduced cost exceeds ``UB - z`` cannot appear in any solution worth ``z`` or more. We never
trust the LP solver's optimality or tolerances for this: the bound is recomputed from whatever
duals HiGHS returns, clipped to the right signs, over ALL columns (the restricted LP is solved by
column generation, but the bound sums the positive parts over every triple).

Rows: excluded unit  sum x <= 1;  flux unit: sum_r o_ur = 1 and, per réservataire,
sum_{t in (u,r)} x_t - o_ur <= 0;  demand  sum x <= 1;  band  lo_r <= sum_u o_ur <= hi_r;
quota rows (matching.solver.rows) with their shortfall columns in soft mode.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from matching.flux import FluxBand
from matching.solver.instance import NONE, RoundInstance, Triples
from matching.solver.rows import QuotaRow

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Certificate:
    """A valid upper bound on the combined objective and every triple's reduced cost."""

    status: str  # "bound" (a valid bound), "infeasible" (LP infeasible: no integer solution)
    upper_bound: float
    reduced_cost: np.ndarray  # min-form reduced cost per triple (>= 0 means costly)
    lp_columns: int  # columns of the last restricted LP
    rounds: int  # column-generation rounds
    seconds: float
    primal: np.ndarray | None = None  # LP value of each triple in the last restricted LP


@dataclass(frozen=True)
class _Layout:
    """Row and column layout of the full LP (columns: x triples, then o, then s)."""

    a_ub: sp.csr_matrix
    b_ub: np.ndarray
    a_eq: sp.csr_matrix
    b_eq: np.ndarray
    n_x: int
    n_o: int
    n_s: int
    upper: np.ndarray  # column upper bounds


def _layout(
    inst: RoundInstance,
    triples: Triples,
    rows: list[QuotaRow],
    bands: dict[str, FluxBand],
    soft: bool,
) -> _Layout:
    n_units = len(inst.units)
    n_res = len(inst.reservataires)
    flux = inst.flux_units
    flux_pos = np.cumsum(flux) - 1  # rank of each flux unit
    n_flux = int(flux.sum())
    n_x, n_o = len(triples), n_flux * n_res
    n_s = len(rows) if soft else 0
    t = np.arange(n_x)
    entries_r: list[np.ndarray] = []
    entries_c: list[np.ndarray] = []
    entries_v: list[np.ndarray] = []
    rhs: list[np.ndarray] = []
    row0 = 0

    def add(r: np.ndarray, c: np.ndarray, v: np.ndarray, b: np.ndarray) -> None:
        nonlocal row0
        entries_r.append(r + row0)
        entries_c.append(c)
        entries_v.append(v.astype(np.float64))
        rhs.append(b.astype(np.float64))
        row0 += len(b)

    # excluded units: sum x <= 1
    excl = triples.res == NONE
    add(triples.unit[excl], t[excl], np.ones(int(excl.sum())), np.ones(n_units))
    # link rows per (flux unit, réservataire): sum x - o <= 0
    fx = ~excl
    link_row = flux_pos[triples.unit[fx]] * n_res + triples.res[fx]
    o_cols = n_x + np.arange(n_o)
    add(
        np.concatenate([link_row, np.arange(n_o)]),
        np.concatenate([t[fx], o_cols]),
        np.concatenate([np.ones(int(fx.sum())), -np.ones(n_o)]),
        np.zeros(n_o),
    )
    # demand rows
    add(triples.demand, t, np.ones(n_x), np.ones(len(inst.demands)))
    # bands
    res_index = {r: i for i, r in enumerate(inst.reservataires)}
    for rid, band in bands.items():
        cols = n_x + np.arange(n_flux) * n_res + res_index[rid]
        add(np.zeros(n_flux, np.int64), cols, np.ones(n_flux), np.array([band.high]))
        add(np.zeros(n_flux, np.int64), cols, -np.ones(n_flux), np.array([-band.low]))
    # quota rows (>= rows negated)
    upper_s = []
    for k, row in enumerate(rows):
        sign = -1.0 if row.sense == ">=" else 1.0
        r = np.zeros(len(row.idx), np.int64)
        c, v = row.idx, sign * row.coef
        if soft:
            r = np.append(r, 0)
            c = np.append(c, n_x + n_o + k)
            v = np.append(v, sign * row.slack)
            upper_s.append(row.max_shortfall())
        add(r, c, v, np.array([sign * row.rhs]))
    n_cols = n_x + n_o + n_s
    a_ub = sp.csr_matrix(
        (np.concatenate(entries_v), (np.concatenate(entries_r), np.concatenate(entries_c))),
        shape=(row0, n_cols),
    )
    # orientation: sum_r o_ur = 1 per flux unit
    eq_r = np.repeat(np.arange(n_flux), n_res)
    a_eq = sp.csr_matrix((np.ones(n_o), (eq_r, o_cols)), shape=(n_flux, n_cols))
    upper = np.concatenate([np.ones(n_x + n_o), np.asarray(upper_s, dtype=np.float64)])
    return _Layout(a_ub, np.concatenate(rhs), a_eq, np.ones(n_flux), n_x, n_o, n_s, upper)


def top_per_group(triples: Triples, rows: list[QuotaRow], per_group: int) -> np.ndarray:
    """Top triples of each (unit, réservataire, quota signature) group, by the tie-break order.

    Triples are sorted by unit, réservataire then household rank, so the first ``per_group``
    of each group are its best households. The quota signature (for each rule: outside its base,
    in the base, or counted) keeps households of every kind a quota distinguishes (priority, Q1,
    ...), so that the first restricted LP can already meet the quotas.
    """
    rule_ids = sorted({r.rule.id for r in rows})
    codes = np.zeros((len(rule_ids), len(triples)), dtype=np.int64)
    for k, row in enumerate(rows):  # the code names the row (so the scope group) and the role
        codes[rule_ids.index(row.rule.id), row.idx] = 3 * (k + 1) + np.where(row.coef > 0, 2, 1)
    # one int64 key per triple: (unit, réservataire, code of each rule), mixed radix
    group = triples.unit.astype(np.int64) * (int(triples.res.max(initial=0)) + 2) + (
        triples.res.astype(np.int64) + 1
    )
    radix = 3 * (len(rows) + 2)
    if float(group.max(initial=0) + 1) * float(radix) ** len(rule_ids) < 2**62:
        for col in codes:
            group = group * radix + col
    else:  # too many rules to pack: fall back to a row-wise unique
        stacked = np.vstack([group, codes]).T
        group = np.unique(stacked, axis=0, return_inverse=True)[1].ravel()
    order = np.lexsort((np.arange(len(triples)), group))  # stable: keeps the rank order
    g_sorted = group[order]
    start = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    first = np.repeat(start, np.diff(np.r_[start, len(order)]))
    return np.sort(order[np.arange(len(order)) - first < per_group])


def lp_certificate(
    inst: RoundInstance,
    triples: Triples,
    rows: list[QuotaRow],
    bands: dict[str, FluxBand],
    weight_x: np.ndarray,
    weight_s: np.ndarray,
    soft: bool,
    *,
    per_group: int = 4,
    max_rounds: int = 12,
    time_limit_s: float = 60.0,
) -> Certificate:
    """Solve the LP relaxation by column generation and return a safe bound with reduced costs."""
    start = time.perf_counter()
    lay = _layout(inst, triples, rows, bands, soft)
    cost = -np.concatenate([weight_x, np.zeros(lay.n_o), weight_s[: lay.n_s]])  # min form
    a_ub_csc = lay.a_ub.tocsc()
    a_eq_csc = lay.a_eq.tocsc()
    fixed_cols = np.arange(lay.n_x, lay.n_x + lay.n_o + lay.n_s)
    active = top_per_group(triples, rows, per_group)
    rounds = 0
    rc = np.zeros(lay.n_x)
    best_ub, best_rc = np.inf, rc
    best_primal: np.ndarray | None = None
    while True:
        rounds += 1
        cols = np.concatenate([active, fixed_cols])
        sub_ub = a_ub_csc[:, cols].tocsr()
        sub_eq = a_eq_csc[:, cols].tocsr()
        keep_rows = np.flatnonzero(np.diff(sub_ub.indptr) > 0)
        remaining = max(1.0, time_limit_s - (time.perf_counter() - start))
        res = linprog(
            cost[cols],
            A_ub=sub_ub[keep_rows],
            b_ub=lay.b_ub[keep_rows],
            A_eq=sub_eq if sub_eq.shape[0] else None,
            b_eq=lay.b_eq if sub_eq.shape[0] else None,
            bounds=np.stack([np.zeros(len(cols)), lay.upper[cols]], axis=1),
            method="highs-ds",
            options={"time_limit": remaining, "presolve": True},
        )
        if res.status == 2:  # infeasible restricted LP: widen, or conclude on the full LP
            if len(active) == lay.n_x:
                return Certificate("infeasible", -np.inf, rc, len(cols), rounds, _since(start))
            active = np.arange(lay.n_x)
            continue
        if res.status != 0 or res.ineqlin is None:
            _logger.warning("LP relaxation ended with status %s: %s", res.status, res.message)
            if np.isfinite(best_ub):  # an earlier round's duals still give a valid bound
                return Certificate(
                    "bound", best_ub, best_rc, len(cols), rounds, _since(start), best_primal
                )
            return Certificate("failed", np.inf, rc, len(cols), rounds, _since(start))
        y_ub = np.zeros(len(lay.b_ub))
        y_ub[keep_rows] = np.minimum(res.ineqlin.marginals, 0.0)  # valid signs for <= rows
        y_eq = res.eqlin.marginals if sub_eq.shape[0] else np.zeros(0)
        full_rc = cost - a_ub_csc.T @ y_ub - (a_eq_csc.T @ y_eq if len(y_eq) else 0.0)
        bound_min = y_ub @ lay.b_ub + (y_eq @ lay.b_eq if len(y_eq) else 0.0)
        bound_min += float(np.sum(lay.upper * np.minimum(full_rc, 0.0)))
        rc = full_rc[: lay.n_x]
        primal = np.zeros(lay.n_x)
        primal[active] = res.x[: len(active)]
        if -bound_min < best_ub:  # keep the bound and the reduced costs that go with it
            best_ub, best_rc, best_primal = -bound_min, rc, primal
        scale = max(1.0, float(np.abs(cost).max(initial=1.0)))
        improving = np.flatnonzero(rc < -1e-9 * scale)
        improving = np.setdiff1d(improving, active, assume_unique=True)
        _logger.debug(
            "LP round %d: %d columns, bound %.3f, %d improving",
            rounds,
            len(cols),
            -bound_min,
            len(improving),
        )
        if len(improving) == 0 or rounds >= max_rounds:
            return Certificate(
                "bound", best_ub, best_rc, len(cols), rounds, _since(start), best_primal
            )
        # add the most improving columns (at most as many again as are active)
        take = improving[np.argsort(rc[improving], kind="stable")[: max(len(active), 1000)]]
        active = np.union1d(active, take)


def _since(start: float) -> float:
    return time.perf_counter() - start
