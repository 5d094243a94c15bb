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
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from matching.flux import FluxBand
from matching.solver.instance import NONE, RoundInstance, Triples
from matching.solver.rows import QuotaRow

_logger = logging.getLogger(__name__)

COLUMNS_PER_ROUND = 3000
"""Most improving triples added per pricing round (measured best on the Caen monthly round)."""

VIOLATION_COST = 1000.0
"""Price of violating an extra row by one unit, in multiples of the largest triple weight."""


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
    violation: float = 0.0  # total violation of the extra rows in that LP (0: all hold)
    active: np.ndarray | None = None  # triples of the last restricted LP (to warm a child LP)


@dataclass(frozen=True)
class LinearCut:
    """A linear inequality over the triples, ``sum(coef * x[idx]) (sense) rhs``.

    Used for the cuts and branching bounds of `matching.solver.branch`: each one is valid for
    every integer solution worth considering (see there), never for the LP alone.
    """

    idx: np.ndarray  # triple indices
    coef: np.ndarray  # coefficients (int64)
    sense: str  # "<=" or ">="
    rhs: int
    name: str

    @property
    def sign(self) -> float:
        """-1 for a ``>=`` row, +1 for a ``<=`` row: the factor that writes it as ``<=``."""
        return -1.0 if self.sense == ">=" else 1.0


@dataclass(frozen=True)
class LPLayout:
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
) -> LPLayout:
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
    return LPLayout(a_ub, np.concatenate(rhs), a_eq, np.ones(n_flux), n_x, n_o, n_s, upper)


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


def _quiet_highs() -> highspy.Highs:
    """A silent HiGHS instance (its first construction prints a banner on the C stdout)."""
    global _BANNER_SHOWN
    if not _BANNER_SHOWN:
        sys.stdout.flush()
        saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        try:
            highs = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _BANNER_SHOWN = True
    else:
        highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("presolve", "off")  # keep the basis between solves (warm starts)
    highs.setOptionValue("threads", 1)
    highs.setOptionValue("random_seed", 0)
    return highs


_BANNER_SHOWN = False


class LPSession:
    """The LP relaxation of a round, kept warm in HiGHS across column generation and nodes.

    The rows are all in the model from the start; the columns are the orientation and
    shortfall columns plus a restricted set of triples, grown by pricing. Extra rows (cuts,
    branching bounds) can be replaced between solves (`solve`); HiGHS restarts each solve from
    the previous basis, so a child node or a pricing round costs a few simplex iterations.
    """

    def __init__(
        self,
        lay: LPLayout,
        cost: np.ndarray,
        initial: np.ndarray,
        rows: list[QuotaRow] | None = None,
    ) -> None:
        self.rows = rows or []
        self.lay = lay
        self.a_ub = lay.a_ub.tocsc()
        self.a_eq = lay.a_eq.tocsc()
        self.cost = cost
        self.scale = max(1.0, float(np.abs(self.cost[: lay.n_x]).max(initial=1.0)))
        self.violation_cost = VIOLATION_COST * self.scale
        self.n_base = lay.n_x + lay.n_o + lay.n_s  # global columns (x, o, s)
        self.highs = _quiet_highs()
        n_ub, n_eq = len(lay.b_ub), len(lay.b_eq)
        lower = np.concatenate([np.full(n_ub, -highspy.kHighsInf), lay.b_eq])
        upper = np.concatenate([lay.b_ub, lay.b_eq])
        self.highs.addRows(
            n_ub + n_eq, lower, upper, 0, np.zeros(n_ub + n_eq, np.int32),
            np.zeros(0, np.int32), np.zeros(0),
        )  # fmt: skip
        self.n_rows = n_ub + n_eq
        self.col_global = np.zeros(0, dtype=np.int64)  # HiGHS column -> global column (-1: e)
        self.in_lp = np.zeros(lay.n_x, dtype=bool)
        self.extra: list[LinearCut] = []  # every extra row ever added, in HiGHS order
        self.extra_keys: list[tuple[object, ...]] = []
        self.extra_active = np.zeros(0, dtype=bool)
        self.e_upper = np.zeros(0)
        self._add_columns(np.arange(lay.n_x, self.n_base))
        self.add_triples(initial)

    @classmethod
    def for_round(
        cls,
        inst: RoundInstance,
        triples: Triples,
        rows: list[QuotaRow],
        bands: dict[str, FluxBand],
        weight_x: np.ndarray,
        weight_s: np.ndarray,
        soft: bool,
        *,
        per_group: int = 4,
    ) -> LPSession:
        """The session of a round: its layout, min-form costs, best triples of each group."""
        lay = _layout(inst, triples, rows, bands, soft)
        cost = -np.concatenate([weight_x, np.zeros(lay.n_o), weight_s[: lay.n_s]])
        return cls(lay, cost, top_per_group(triples, rows, per_group), rows)

    def _add_columns(self, cols: np.ndarray) -> None:
        """Add global columns (x, o or s) to HiGHS with their base-row coefficients."""
        if len(cols) == 0:
            return
        sub_ub = self.a_ub[:, cols]
        sub_eq = self.a_eq[:, cols]
        both = sp.vstack([sub_ub, sub_eq]).tocsc()
        n_extra = len(self.extra)
        if n_extra:  # coefficients of the current extra rows on these columns
            ext = self._extra_matrix(cols)
            both = sp.vstack([both, ext]).tocsc()
        both.sort_indices()
        self.highs.addCols(
            len(cols), self.cost[cols], np.zeros(len(cols)), self.lay.upper[cols],
            both.nnz, both.indptr[:-1].astype(np.int32), both.indices.astype(np.int32),
            both.data.astype(np.float64),
        )  # fmt: skip
        self.col_global = np.concatenate([self.col_global, cols.astype(np.int64)])
        x_cols = cols[cols < self.lay.n_x]
        self.in_lp[x_cols] = True

    def add_triples(self, idx: np.ndarray) -> None:
        """Add triples (global x indices) not yet in the LP."""
        idx = np.asarray(idx, dtype=np.int64)
        self._add_columns(np.sort(idx[~self.in_lp[idx]]))

    def _extra_matrix(
        self, cols: np.ndarray, cuts: Sequence[LinearCut] | None = None
    ) -> sp.csr_matrix:
        """Extra rows (in <= form; all of them by default) on the global columns ``cols``."""
        cuts = self.extra if cuts is None else cuts
        n_x = self.lay.n_x
        pos = np.full(n_x, -1, dtype=np.int64)
        x_mask = cols < n_x
        pos[cols[x_mask]] = np.flatnonzero(x_mask)
        r_parts, c_parts, v_parts = [], [], []
        for k, cut in enumerate(cuts):
            sign = cut.sign
            where = pos[cut.idx]
            ok = where >= 0
            r_parts.append(np.full(int(ok.sum()), k))
            c_parts.append(where[ok])
            v_parts.append(sign * cut.coef[ok].astype(np.float64))
        return sp.csr_matrix(
            (np.concatenate(v_parts), (np.concatenate(r_parts), np.concatenate(c_parts))),
            shape=(len(cuts), len(cols)),
        )

    def set_extra(self, extra: Sequence[LinearCut]) -> None:
        """Make exactly these extra rows active, each with its violation column ``e_k``.

        ``e_k`` is priced at `VIOLATION_COST` per unit: the LP stays feasible (so column
        generation can always price), and its value still bounds every solution that
        satisfies the extra rows (for those, e = 0). Rows are never deleted: a row no longer
        wanted is freed (bounds -inf, +inf) and revived when a later node wants it again, so
        the basis stays valid and each node's solve starts warm.
        """
        wanted = {_signature(c): c for c in extra}
        known = {key: k for k, key in enumerate(self.extra_keys)}
        new = [c for key, c in wanted.items() if key not in known]
        if new:
            start = len(self.extra)
            self.extra += new
            self.extra_keys += [_signature(c) for c in new]
            self.extra_active = np.concatenate([self.extra_active, np.ones(len(new), bool)])
            self.e_upper = np.concatenate(
                [self.e_upper, [float(np.abs(c.coef).sum()) + abs(c.rhs) for c in new]]
            )
            mat = self._extra_matrix(self.col_global, new).tocsr()
            mat.sort_indices()
            rhs = np.array([c.sign * c.rhs for c in new])
            n = len(new)
            self.highs.addRows(
                n, np.full(n, -highspy.kHighsInf), rhs, mat.nnz,
                mat.indptr[:-1].astype(np.int32), mat.indices.astype(np.int32),
                mat.data.astype(np.float64),
            )  # fmt: skip
            rows = np.arange(self.n_rows + start, self.n_rows + start + n, dtype=np.int32)
            self.highs.addCols(
                n, np.full(n, self.violation_cost), np.zeros(n), self.e_upper[start:], n,
                np.arange(n, dtype=np.int32), rows, -np.ones(n),
            )  # fmt: skip
            self.col_global = np.concatenate([self.col_global, np.full(n, -1, dtype=np.int64)])
        active = np.array([key in wanted for key in self.extra_keys], dtype=bool)
        changed = np.flatnonzero(active != self.extra_active)
        if len(changed):
            upper = np.array(
                [
                    self.extra[k].sign * self.extra[k].rhs if active[k] else highspy.kHighsInf
                    for k in changed
                ]
            )
            self.highs.changeRowsBounds(  # type: ignore[attr-defined]
                len(changed), (self.n_rows + changed).astype(np.int32),
                np.full(len(changed), -highspy.kHighsInf), upper,
            )  # fmt: skip
        self.extra_active = active

    def _extra_duals_matvec(self, y_extra: np.ndarray) -> np.ndarray:
        """``A_extra^T y`` over every triple (the extra rows' share of reduced costs)."""
        out = np.zeros(self.lay.n_x)
        for k, cut in enumerate(self.extra):
            if y_extra[k] != 0.0:
                out[cut.idx] += cut.sign * cut.coef * y_extra[k]  # idx has no repeats
        return out

    def solve(
        self,
        extra: Sequence[LinearCut] | None = None,
        *,
        max_rounds: int = 20,
        time_limit_s: float = 60.0,
    ) -> Certificate:
        """Column generation to the LP optimum; a safe bound and reduced costs over ALL triples."""
        start = time.perf_counter()
        if extra is not None:
            self.set_extra(extra)
        lay = self.lay
        n_ub = len(lay.b_ub)
        best: Certificate | None = None
        for rounds in range(1, max_rounds + 1):
            remaining = max(1.0, time_limit_s - (time.perf_counter() - start))
            self.highs.setOptionValue("time_limit", remaining)
            self.highs.run()
            status = self.highs.getModelStatus()
            if status == highspy.HighsModelStatus.kInfeasible:
                if not self.in_lp.all():  # the restricted LP proves nothing: price everything
                    self.add_triples(np.arange(lay.n_x))
                    continue
                empty = np.zeros(lay.n_x)
                return Certificate("infeasible", -np.inf, empty, 0, rounds, _since(start))
            if status != highspy.HighsModelStatus.kOptimal:
                _logger.warning("LP relaxation ended with status %s", status)
                if best is not None:
                    return best
                return Certificate("failed", np.inf, np.zeros(lay.n_x), 0, rounds, _since(start))
            sol = self.highs.getSolution()
            duals = np.asarray(sol.row_dual)
            values = np.asarray(sol.col_value)
            y_ub = np.minimum(duals[:n_ub], 0.0)  # valid signs for <= rows
            y_eq = duals[n_ub : self.n_rows]
            y_ex = np.where(self.extra_active, np.minimum(duals[self.n_rows :], 0.0), 0.0)
            rc_all = self.cost - self.a_ub.T @ y_ub - self.a_eq.T @ y_eq
            rc_all[: lay.n_x] -= self._extra_duals_matvec(y_ex)
            bound_min = float(y_ub @ lay.b_ub + y_eq @ lay.b_eq)
            if self.extra:
                rhs = np.array([c.sign * c.rhs for c in self.extra])
                bound_min += float(y_ex[self.extra_active] @ rhs[self.extra_active])
                rc_e = self.violation_cost + y_ex  # column -1 in its row
                bound_min += float(np.sum(self.e_upper * np.minimum(rc_e, 0.0)))
            bound_min += float(np.sum(lay.upper * np.minimum(rc_all, 0.0)))
            rc = rc_all[: lay.n_x]
            primal = np.zeros(lay.n_x)
            x_pos = np.flatnonzero((self.col_global >= 0) & (self.col_global < lay.n_x))
            primal[self.col_global[x_pos]] = values[x_pos]
            e_values = values[self.col_global < 0]
            violation = float(e_values[self.extra_active].sum()) if len(e_values) else 0.0
            cert = Certificate(
                "bound", -bound_min, rc, len(self.col_global), rounds, _since(start), primal,
                violation, np.flatnonzero(self.in_lp),
            )  # fmt: skip
            if best is None or cert.upper_bound < best.upper_bound:
                best = cert
            improving = np.flatnonzero((rc < -1e-9 * self.scale) & ~self.in_lp)
            _logger.debug(
                "LP round %d: %d columns, bound %.3f, %d improving",
                rounds, len(self.col_global), -bound_min, len(improving),
            )  # fmt: skip
            if len(improving) == 0:
                break
            take = improving[np.argsort(rc[improving], kind="stable")[:COLUMNS_PER_ROUND]]
            self.add_triples(take)
        assert best is not None
        return Certificate(
            best.status, best.upper_bound, best.reduced_cost, best.lp_columns, rounds,
            _since(start), best.primal, best.violation, best.active,
        )  # fmt: skip


def _signature(cut: LinearCut) -> tuple[object, ...]:
    """Identity of an extra row, to recognise it again at another node."""
    return (
        cut.name, cut.sense, int(cut.rhs), hash(np.asarray(cut.idx).tobytes()),
        hash(np.asarray(cut.coef).tobytes()),
    )  # fmt: skip


def _since(start: float) -> float:
    return time.perf_counter() - start
