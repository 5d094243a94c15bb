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

Rows and columns: `RoundLayout` (a unit's orientation is its triples' sum plus an "oriented
and left empty" column; the bands count both), quota rows (matching.solver.rows) with their
shortfall columns in soft mode.
"""

from __future__ import annotations

import concurrent.futures
import copy
import functools
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from matching.flux import FluxBand
from matching.solver.instance import (
    RoundInstance,
    Triples,
    group_ranks,
    index_dtype,
    unit_res_key,
)
from matching.solver.rows import (
    QuotaRow,
    class_representatives,
    first_of_each_class,
    row_classes,
)
from matching.solver.seed import (
    household_maximum,
    unconstrained_optimum,
    uniform_household_weights,
)

_logger = logging.getLogger(__name__)

COLUMNS_PER_ROUND = 3000
"""Most improving triples added per pricing round (measured best on the Caen monthly round)."""

COLUMNS_PER_GROUP = 3
"""At most this many of them per (unit, réservataire) group (`LPSession._pick`)."""

PICK_SHORTLIST = 20
"""`LPSession._pick` groups only this many times its cap of the most improving triples."""

DUAL_AFTER_COLUMNS = 0.2
"""Dual simplex after new columns when they number more than this fraction of the LP's columns.

Why: after new columns the basis stays primal feasible, and primal simplex takes a few
iterations per column that enters; but after many (the first pricing rounds, whose restricted
LP is far from the bound) HiGHS's dual simplex, faster per iteration and making a new column
dual feasible by flipping it to its upper bound (triples are boxed in [0, 1]), wins by far.
Measured (sixth session): the January round's root rounds after 3,000 and 1,900 new columns
(on 6,000 and 9,000) took 0.08-0.11 s with dual (about 1,000 iterations each) against
0.20-0.27 s with primal (1,700-2,150); the pooled year's LP (32,000 a round on 82,000-146,000)
20.9 s against 29.9 s; the Paris-sized round's (8,000 a round on 20,000-44,000) 31.8 s against
55.3 s. After a few columns dual is slower: 5,000-6,000 iterations after 200 new columns on
the Paris-sized round (66.1 s with dual after every round), about 900 after 100 on January
where primal took 113. A tenth of the rows as the threshold instead: the same on January and
the year, primal on Paris.
"""

PRIMAL_NEAR_BOUND = 1e-3
"""Primal simplex after new columns, however many, once the restricted LP is this close to the
best bound, in units of the largest triple cost (`LPSession.scale`).

Why: the restricted LP then needs only a few improving pivots from its primal feasible basis,
while dual simplex after many new columns re-optimises almost from scratch. Measured on the
pooled year: its fourth round (32,000 new columns on 146,000, the restricted LP 3.5 below a
bound of 1.7e9, a triple worth up to 421,000) took 1,816 primal iterations in 2.1-2.4 s
against 9,918 dual in 4.9-6.3 s. The January round (500 below its bound, a triple worth up to
50,000) and the Paris-sized round (249 below, about 196,000) never come that close before
their LP ends, so they take the same path as before.
"""

RESCUE_AFTER_ROUNDS = 3
"""Pricing rounds after which a root column generation still far from its bound gets the columns
of a known allocation that meets the quotas (`LPSession.rescue`): far meaning that the restricted
LP's duals bound above the best bound by more than `RESCUE_GAP` triples' worth.

Why: a restricted LP that cannot house every household the quotas allow has duals of the
allocation stage's size, and prices millions of triples as improving. On a pooled year whose
priority floors bind (`matching.generate.BINDING_YEAR`) its rounds grew slower and slower: 8
rounds and more than 8 minutes without an end. Given the greedy's allocation (3,996 triples,
no shortfall) after its third round, its LP ended in 80 s and the round was proven in 104 s
(2026-11-30; after the second round: 64 s and 95 s). The default pooled year's LP lags as far
at its second round but not at its third, and ends at its fourth: rescued after the second,
it took 21 s instead of 14.7 s, so the rescue waits for the third. A month's restricted LP is
near its bound by its second round (January: 1.4 triples' worth), so it never pays for the
greedy."""

RESCUE_GAP = 100_000.0
"""How far above the best bound, in units of the largest triple cost, the restricted LP's duals
may still bound after `RESCUE_AFTER_ROUNDS` rounds before the rescue columns are added. After
the third round: the binding pooled year 3.1 million, the default one 1,800, January 0.15."""

PURGE_ABOVE = 1e-9
"""When the rescue comes, the restricted LP's triples at zero whose reduced cost is above this,
in units of the largest triple cost (so: every one that does not improve), leave HiGHS
(`LPSession._purge`).

Why: the triples priced while the restricted LP lagged were priced at duals of the allocation
stage's size, and slowed every later simplex. On the binding pooled year (2026-11-30) the
purge dropped 81,067 of 146,000 columns: LP 50 s instead of 80 s, the round proven in 71 s
instead of 104 s. Dropping only those above a thousandth of a triple's worth (16,232): 68 s
and 91 s. Dropping again at every later round: LP 45 s, but the branching's node LPs priced
more and the round took 72 s."""

PREFETCH_RESCUE = True
"""Start the rescue's greedy on another thread one pricing round early, when the restricted LP
already lags then (`RESCUE_AFTER_ROUNDS`, `RESCUE_GAP`), so that it runs on the second core
while HiGHS (which releases the GIL) solves the next restricted LP.

Why: the greedy takes 2.8 s on a pooled year, and the binding one waited for it after its
third round. A round that lags at its second round but not at its third (the default pooled
year) computes the greedy for nothing, on the core the root LP leaves idle; the solve waits
for it before returning, so no thread outlives it. A month is near its bound by its second
round and never starts it. Measured A/B (2026-11-30, one process per run, alternating): the
binding pooled year 34.0 and 32.1 s against 36.4 and 34.9 s; the default pooled year 13.5, 13.8
and 13.7 s against 13.3, 13.0 and 13.6 s, its peak memory 2.4 GB instead of 1.9 GB (the greedy's
arrays beside the LP's); the Paris-sized round starts it too: 21.1 s against 21.5 s, 3.0 GB
either way."""

SIFT_AFTER_RESCUE = True
"""After the rescue's first restricted LP, every later pricing round first drops from HiGHS all
the triples nonbasic at zero (`LPSession._sift`), whatever their reduced cost; when the root LP
ends, those of them tight under its final dual come back (`LPSession._restore`).

Why: on the binding pooled year (2026-11-30) the rescued LP then still took 7 pricing rounds of
4-9 s each: HiGHS's primal simplex on 130,000-236,000 columns, of which all but about 10,000
end nonbasic at zero (the LP is massively dual degenerate; on its final 10,475 basic or
at-one columns alone, HiGHS takes 0.36 s from scratch, on all 236,540 columns 24.8 s). Sifted,
the restricted LP stays at 26,000 columns plus each round's picks, and the same rounds take
0.01-0.8 s: the root LP 22 s instead of 48-50 s. Without the tight columns back, the branching's
first child lacked them and took 20.7 s and 11 pricing rounds instead of 3 s. Sifting while the
restricted LP still lags (from the rescue round itself) cycled: 20 rounds without an end; and
on the default pooled year, which needs no rescue, sifting from its second or third round made
the round slower (19.7 s and 14.8 s against 13.9 s): so only after a rescue, and only in the
root's column generation (the node LPs sifted as well cycled: 20 rounds each, FEASIBLE after
204 s)."""

VIOLATION_COST = 1000.0
"""Price of violating an extra row by one unit, in multiples of the largest triple weight."""

ITERATION_WORK = 3e-9
"""Estimated seconds of one simplex iteration per row and column of the LP (`LPSession.work`)."""

PRICING_WORK = 4e-8
"""Estimated seconds of pricing one triple in a column-generation round (`LPSession.work`)."""

ROUND_WORK = 0.005
"""Estimated seconds of a column-generation round besides its iterations and pricing."""


def lp_work(iterations: int, rows: int, columns: int, triples: int) -> float:
    """A deterministic estimate of one column-generation round's seconds (a work count).

    Why: the branching's node LPs must stop when the solve's budget is spent, and the budget is
    a work count (CP-SAT's deterministic time), so that a run cut by it reproduces whatever the
    machine's load; HiGHS counts its simplex iterations, not its work. The three constants were
    fitted on the node LPs of the ladder's rounds (100 x 2,000 to the Paris-sized round) and of
    January with conflicting quotas: the estimate is 0.3-2.0 times each LP's measured seconds on
    this kind of machine.
    """
    return ITERATION_WORK * iterations * (rows + columns) + PRICING_WORK * triples + ROUND_WORK


@dataclass(frozen=True)
class LPValues:
    """A restricted LP's solution on the triples, sparse: the triples it gives a value.

    Why sparse: a Paris-sized round's LP solution has about 65,000 values among 70 million
    triples. A dense array was 560 MB per certificate (the root's and a node's are alive
    together during the branching), and a branching aggregate's value a sum over up to 70
    million entries (1.8 s over a Paris-sized round's branching).
    """

    cols: np.ndarray  # sorted, unique triple indices (int64)
    values: np.ndarray  # their values (non-zero)

    @classmethod
    def of(cls, cols: np.ndarray, values: np.ndarray) -> LPValues:
        """From LP columns in any order (zero values dropped)."""
        keep = values != 0.0
        cols, values = np.asarray(cols, dtype=np.int64)[keep], values[keep]
        order = np.argsort(cols)
        return cls(cols[order], values[order])

    def at(self, idx: np.ndarray) -> np.ndarray:
        """The values at triple indices ``idx`` (0 where the LP gives none)."""
        idx = np.asarray(idx, dtype=np.int64)
        if len(self.cols) == 0:
            return np.zeros(len(idx))
        pos = np.minimum(np.searchsorted(self.cols, idx), len(self.cols) - 1)
        return np.where(self.cols[pos] == idx, self.values[pos], 0.0)

    def total(self, idx: np.ndarray) -> float:
        """The sum of the values at sorted, unique triple indices ``idx``."""
        if len(idx) == 0 or len(self.cols) == 0:
            return 0.0
        pos = np.minimum(np.searchsorted(idx, self.cols), len(idx) - 1)
        return float(self.values[idx[pos] == self.cols].sum())

    def dense(self, n_x: int) -> np.ndarray:
        """The values of all ``n_x`` triples."""
        out = np.zeros(n_x)
        out[self.cols] = self.values
        return out


@dataclass(frozen=True)
class Certificate:
    """A valid upper bound on the combined objective and every triple's reduced cost."""

    status: str  # "bound" (a valid bound), "infeasible" (LP infeasible: no integer solution)
    upper_bound: float
    reduced_cost: np.ndarray  # min-form reduced cost per triple (>= 0 means costly)
    lp_columns: int  # columns of the last restricted LP
    rounds: int  # column-generation rounds
    seconds: float
    primal: LPValues | None = None  # the triples' values in the last restricted LP
    violation: float = 0.0  # total violation of the extra rows in that LP (0: all hold)
    active: np.ndarray | None = None  # triples of the last restricted LP (to warm a child LP)


@dataclass(frozen=True)
class _Bound:
    """The best bound of a column generation so far and its reduced costs."""

    upper_bound: float
    reduced_cost: np.ndarray


@dataclass(frozen=True)
class _Primal:
    """The last restricted LP's solution, kept sparse until returned.

    Sparse: one dense array per triple less while the next round computes its reduced costs
    (560 MB on a Paris-sized round); the certificate keeps it sparse (`LPValues`).
    """

    value: float  # its objective (maximised), violation costs included
    lp_columns: int
    cols: np.ndarray  # triples in the restricted LP with a value
    values: np.ndarray  # their LP values
    violation: float
    active: np.ndarray

    def certificate(self, best: _Bound, rounds: int, seconds: float) -> Certificate:
        """The certificate of a bound, with this LP solution on the triples."""
        return Certificate(
            "bound", best.upper_bound, best.reduced_cost, self.lp_columns, rounds, seconds,
            LPValues.of(self.cols, self.values), self.violation, self.active,
        )  # fmt: skip


@dataclass(frozen=True)
class LinearCut:
    """A linear inequality over the triples, ``sum(coef * x[idx]) (sense) rhs``.

    Used for the cuts and branching bounds of `matching.solver.branch`: each one is valid for
    every integer solution worth considering (see there), never for the LP alone.
    """

    idx: np.ndarray  # triple indices
    coef: np.ndarray  # integer coefficients (the smallest dtype that holds them)
    sense: str  # "<=" or ">="
    rhs: int
    name: str

    @property
    def sign(self) -> float:
        """-1 for a ``>=`` row, +1 for a ``<=`` row: the factor that writes it as ``<=``."""
        return -1.0 if self.sense == ">=" else 1.0

    @functools.cached_property
    def signature(self) -> tuple[object, ...]:
        """Identity of the row, to recognise it again at another node (hashed once)."""
        return (
            self.name, self.sense, int(self.rhs), hash(np.asarray(self.idx).tobytes()),
            hash(np.asarray(self.coef).tobytes()),
        )  # fmt: skip


@dataclass(frozen=True)
class Costs:
    """Min-form cost of every global column: the triples', then the auxiliary and shortfall ones.

    Either one array over every column (``full``), or a triple's cost given by its household
    (``household[demand[t]]``) and the other columns' in ``rest``. Under the policy's stages
    every triple of a household costs the same (the allocation multiplier plus its cotation
    score), so `LPSession.for_round` holds them by household: no array per triple (560 MB on a
    Paris-sized round), and `RoundLayout.household_reduced_costs` reads them in its household
    gather instead of a pass of their own over the triples.
    """

    n_x: int  # triple columns
    full: np.ndarray | None = None  # every column's cost
    household: np.ndarray | None = None  # each household's triple cost (0 if it has none)
    demand: np.ndarray | None = None  # each triple's household (with ``household``)
    rest: np.ndarray | None = None  # the auxiliary and shortfall columns' (with ``household``)

    @classmethod
    def by_household(cls, household: np.ndarray, demand: np.ndarray, rest: np.ndarray) -> Costs:
        """Triple costs by household (a household with no triple: any finite value, 0 here)."""
        household = np.where(np.isfinite(household), household, 0.0)
        return cls(len(demand), household=household, demand=demand, rest=rest)

    def of(self, cols: np.ndarray) -> np.ndarray:
        """The costs of the global columns ``cols``."""
        if self.full is not None:
            return self.full[cols]
        assert self.household is not None and self.demand is not None and self.rest is not None
        cols = np.asarray(cols, dtype=np.int64)
        out = np.empty(len(cols))
        x = cols < self.n_x
        out[x] = self.household[self.demand[cols[x]]]
        out[~x] = self.rest[cols[~x] - self.n_x]
        return out

    def largest_triple_cost(self) -> float:
        """The largest absolute cost of a triple (0 without triples)."""
        costs = self.full[: self.n_x] if self.full is not None else self.household
        assert costs is not None
        return float(np.abs(costs).max(initial=0.0))


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

    def columns(self, cols: np.ndarray) -> sp.csc_matrix:
        """Coefficients of the global columns ``cols`` on the rows (<= rows, then = rows)."""
        return sp.vstack([self.a_ub[:, cols], self.a_eq[:, cols]]).tocsc()

    def rmatvec(
        self,
        y_ub: np.ndarray,
        y_eq: np.ndarray,
        per_class_extra: np.ndarray | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """``A_ub^T y_ub + A_eq^T y_eq`` over every column (no classes: no per-class term).

        ``out`` is not used: the sparse product makes its own array (these LPs are small).
        """
        assert per_class_extra is None
        return np.asarray(self.a_ub.T @ y_ub + self.a_eq.T @ y_eq)

    def class_form(self, cut: LinearCut) -> None:
        """An explicit layout has no classes of triples: every extra row is scattered."""

    def touched_rows(self) -> np.ndarray:
        """Mask of the rows (<= rows, then = rows) with a coefficient on some column."""
        return np.concatenate(
            [np.diff(self.a_ub.tocsr().indptr) > 0, np.diff(self.a_eq.tocsr().indptr) > 0]
        )


class RoundLayout:
    """The rows of a round's LP, computed from the triple arrays instead of a stored matrix.

    Why: the explicit sparse matrix of a pooled year (18.9 million triples, 73 million
    non-zeros) took 14 s and 6.7 GB to build. Every coefficient is a function of a triple's
    unit, réservataire, household and quota rows, so a column's coefficients and ``A^T y`` over
    all triples are computed from the triple arrays when needed.

    Rows (<=): one per unit excluded from the flux; one per demand; the quota rows. Rows (=):
    one per flux unit, ``sum x + sum_r e_ur = 1``; one per flux band of réservataire ``r``,
    ``sum_{t of r} x_t + sum_u e_ur - n_r = lo_r``. Columns: the triples; the auxiliary columns
    (``n_o`` of them): ``e[flux unit, réservataire]`` (the unit oriented to ``r`` and left
    empty), then ``n_r`` in ``[0, hi_r - lo_r]`` per band; then the shortfalls (soft mode).

    Why this form: a unit's orientation ``o_ur`` is ``sum_{t of (u, r)} x_t + e_ur``, so the
    LP is the projection of the one with explicit orientation columns and link rows
    ``x <= o`` (the same relaxation, the same bound); it has about 5 times fewer non-empty rows
    on the Caen la Mer month (998 against 2,277), and HiGHS's cold start takes 2,500 dual
    simplex iterations instead of 7,600 (docs/solver.md).
    """

    def __init__(
        self,
        inst: RoundInstance,
        triples: Triples,
        rows: list[QuotaRow],
        bands: dict[str, FluxBand],
        soft: bool,
        classes: np.ndarray | None = None,
    ) -> None:
        """``classes``: the triples' `row_classes` when the caller has them already."""
        self.triples = triples
        self.rows = rows
        self.n_units = len(inst.units)
        self.n_res = len(inst.reservataires)
        flux = np.asarray(inst.flux_units, dtype=bool)
        self.is_flux = flux
        self.flux_units = np.flatnonzero(flux)
        self.flux_pos = np.cumsum(flux) - 1
        self.excluded_pos = np.cumsum(~flux) - 1
        self.n_flux = len(self.flux_units)
        n_excluded = self.n_units - self.n_flux
        res_index = {r: i for i, r in enumerate(inst.reservataires)}
        self.band_res = np.array([res_index[r] for r in bands], dtype=np.int64)
        self.n_bands = len(self.band_res)
        # band of each réservataire (index res; NONE = -1 reads the last entry): -1 if none
        self.band_of_res = np.full(self.n_res + 1, -1, dtype=np.int64)
        self.band_of_res[self.band_res] = np.arange(self.n_bands)
        self.n_e = self.n_flux * self.n_res
        self.n_x, self.n_o = len(triples), self.n_e + self.n_bands
        self.n_s = len(rows) if soft else 0
        self.demand0 = n_excluded
        self.quota0 = n_excluded + len(inst.demands)
        self.quota_sign = np.array([-1.0 if r.sense == ">=" else 1.0 for r in rows])
        low = np.array([b.low for b in bands.values()], dtype=np.float64)
        high = np.array([b.high for b in bands.values()], dtype=np.float64)
        self.b_ub = np.concatenate(
            [
                np.ones(n_excluded), np.ones(len(inst.demands)),
                self.quota_sign * np.array([r.rhs for r in rows], np.float64),
            ]
        )  # fmt: skip
        self.b_eq = np.concatenate([np.ones(self.n_flux), low])
        upper_s = [float(r.max_shortfall()) for r in rows] if soft else []
        self.upper = np.concatenate(
            [np.ones(self.n_x + self.n_e), np.maximum(high - low, 0.0), np.asarray(upper_s)]
        )
        # every coefficient of a triple's column but its household's is its class's
        self.classes = row_classes(triples, rows, self.n_res) if classes is None else classes
        rep = class_representatives(self.classes)
        self.class_rep = rep
        self.class_first = self._first_row(rep)
        self.class_band = self.band_of_res[triples.res[rep]]
        self.class_quota = _class_quota(rows, rep)  # classes x quota rows

    def _first_row(self, t: np.ndarray) -> np.ndarray:
        """Each triple's unit row (<= rows, then = rows): excluded unit's, or flux unit's."""
        unit = self.triples.unit[t].astype(np.int64)
        res = self.triples.res[t].astype(np.int64)
        return np.where(res < 0, self.excluded_pos[unit], len(self.b_ub) + self.flux_pos[unit])

    def columns(self, cols: np.ndarray) -> sp.csc_matrix:
        """Coefficients of the global columns ``cols`` on the rows (<= rows, then = rows)."""
        cols = np.asarray(cols, dtype=np.int64)
        n_ub = len(self.b_ub)
        band0 = n_ub + self.n_flux
        r_parts, c_parts, v_parts = [], [], []
        x_pos = np.flatnonzero(cols < self.n_x)
        if len(x_pos):
            t = cols[x_pos]
            c = self.classes[t]  # the unit, band and quota rows of a triple are its class's
            r_parts += [self.class_first[c], self.demand0 + self.triples.demand[t].astype(np.int64)]
            c_parts += [x_pos, x_pos]
            v_parts += [np.ones(len(t)), np.ones(len(t))]
            band = self.class_band[c]
            on = band >= 0
            r_parts.append(band0 + band[on])
            c_parts.append(x_pos[on])
            v_parts.append(np.ones(int(on.sum())))
            quota = self.class_quota[c].tocoo()  # (position in t, quota row k): coefficient
            r_parts.append(self.quota0 + quota.col)
            c_parts.append(x_pos[quota.row])
            v_parts.append(self.quota_sign[quota.col] * quota.data)
        e_pos = np.flatnonzero((cols >= self.n_x) & (cols < self.n_x + self.n_e))
        if len(e_pos):
            j = cols[e_pos] - self.n_x
            band = self.band_of_res[j % self.n_res]
            on = band >= 0
            r_parts += [n_ub + j // self.n_res, band0 + band[on]]
            c_parts += [e_pos, e_pos[on]]
            v_parts += [np.ones(len(j)), np.ones(int(on.sum()))]
        n_pos = np.flatnonzero((cols >= self.n_x + self.n_e) & (cols < self.n_x + self.n_o))
        if len(n_pos):
            r_parts.append(band0 + cols[n_pos] - self.n_x - self.n_e)
            c_parts.append(n_pos)
            v_parts.append(-np.ones(len(n_pos)))
        s_pos = np.flatnonzero(cols >= self.n_x + self.n_o)
        if len(s_pos):
            row_k = cols[s_pos] - self.n_x - self.n_o
            slack = np.array([float(r.slack) for r in self.rows])
            r_parts.append(self.quota0 + row_k)
            c_parts.append(s_pos)
            v_parts.append(self.quota_sign[row_k] * slack[row_k])
        shape = (n_ub + len(self.b_eq), len(cols))
        if not r_parts:
            return sp.csc_matrix(shape)
        return sp.csc_matrix(
            (np.concatenate(v_parts), (np.concatenate(r_parts), np.concatenate(c_parts))),
            shape=shape,
        )

    def rmatvec(
        self,
        y_ub: np.ndarray,
        y_eq: np.ndarray,
        per_class_extra: np.ndarray | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """``A_ub^T y_ub + A_eq^T y_eq`` over every column, from the triple arrays.

        ``per_class_extra``: a further term of each triple's, given per class (the extra rows
        whose coefficients are a function of the class: `class_form`). ``out``: an array of
        every column to write into (see `reduced_costs`).
        """
        per_class, y_demand = self._class_and_household_terms(y_ub, y_eq, per_class_extra)
        out = self._buffer(out)
        self._per_triple(out, y_demand, per_class, np.add)
        out[self.n_x :] = self._auxiliary_products(y_ub, y_eq)
        return out

    def household_reduced_costs(
        self,
        costs: Costs,
        y_ub: np.ndarray,
        y_eq: np.ndarray,
        per_class_extra: np.ndarray | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """``cost - A^T y`` over every column, the triples' costs held by household.

        A triple's is ``(cost_d - y_d) - (A^T y)_class``: the two gathers of `rmatvec`, with no
        pass over a cost per triple.
        """
        assert costs.household is not None and costs.rest is not None
        per_class, y_demand = self._class_and_household_terms(y_ub, y_eq, per_class_extra)
        out = self._buffer(out)
        self._per_triple(out, costs.household - y_demand, per_class, np.subtract)
        out[self.n_x :] = costs.rest - self._auxiliary_products(y_ub, y_eq)
        return out

    def _per_triple(
        self, out: np.ndarray, per_household: np.ndarray, per_class: np.ndarray, op: np.ufunc
    ) -> None:
        """``out[t] = op(per_household[demand_t], per_class[class_t])`` over the triples.

        In place, in steps of `_GATHER_CHUNK`: one array per triple, not three (560 MB each on
        a Paris-sized round); and by indexing, not np.take, which first copies int32 indices
        to int64 (January's pricing: 13 ms a round instead of 25).
        """
        demand = self.triples.demand
        for a in range(0, self.n_x, _GATHER_CHUNK):
            b = min(a + _GATHER_CHUNK, self.n_x)
            out[a:b] = per_household[demand[a:b]]
            op(out[a:b], per_class[self.classes[a:b]], out=out[a:b])

    def _buffer(self, out: np.ndarray | None) -> np.ndarray:
        """``out`` if it is an array of every column, else a new one."""
        n = self.n_x + self.n_o + self.n_s
        if out is None or out.shape != (n,) or out.dtype != np.float64:
            return np.empty(n)
        return out

    def _class_and_household_terms(
        self, y_ub: np.ndarray, y_eq: np.ndarray, per_class_extra: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``A^T y`` of a triple split into its class's term and its household row's dual."""
        y_all = np.concatenate([y_ub, y_eq])
        y_band = np.concatenate([y_eq[self.n_flux :], [0.0]])  # index -1: no band
        y_q = y_ub[self.quota0 :]
        per_class = y_all[self.class_first] + y_band[self.class_band]
        per_class += self.class_quota @ (self.quota_sign * y_q)
        if per_class_extra is not None:
            per_class += per_class_extra
        return per_class, y_ub[self.demand0 : self.quota0]

    def _auxiliary_products(self, y_ub: np.ndarray, y_eq: np.ndarray) -> np.ndarray:
        """``A^T y`` over the auxiliary and shortfall columns."""
        out = np.empty(self.n_o + self.n_s)
        y_band = np.concatenate([y_eq[self.n_flux :], [0.0]])
        e = np.repeat(y_eq[: self.n_flux], self.n_res)
        e += np.tile(y_band[self.band_of_res[: self.n_res]], self.n_flux)
        out[: self.n_e] = e
        out[self.n_e : self.n_o] = -y_eq[self.n_flux :]
        if self.n_s:
            slack = np.array([float(r.slack) for r in self.rows])
            out[self.n_o :] = self.quota_sign * slack * y_ub[self.quota0 :]
        return out

    def class_form(self, cut: LinearCut) -> np.ndarray | None:
        """The cut's coefficient per class of triples, if it is a function of the class.

        Why: the allocation floor and the staircase cuts of the branching cover tens of millions
        of triples on a Paris-sized round; scattering each at every pricing round of every node
        cost seconds, a gather per class costs nothing (`rmatvec`'s ``per_class_extra``).
        Checked over every triple (a cut on a count rule's base, whose members outside the count
        have no coefficient on its row, is not a function of the class): otherwise None.
        """
        dense = np.zeros(self.n_x, dtype=cut.coef.dtype)
        dense[cut.idx] = cut.coef
        per_class = dense[self.class_rep]
        if not np.array_equal(per_class[self.classes], dense):
            return None
        return per_class.astype(np.float64)

    def price_duals(
        self, unit_price: np.ndarray, demand_price: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The LP duals (<= rows, = rows; min form) of a price per unit and per household.

        Band and quota rows get 0. With prices of the unconstrained assignment
        (`matching.solver.seed.Assignment`) this is a feasible dual: ``u_i + v_j >= w_t`` makes
        every triple's reduced cost non-negative, and ``u >= 0`` the ``e`` columns'.
        """
        y_ub = np.zeros(len(self.b_ub))
        y_ub[: self.demand0] = -unit_price[~self.is_flux]
        y_ub[self.demand0 : self.quota0] = -demand_price
        y_eq = np.zeros(len(self.b_eq))
        y_eq[: self.n_flux] = -unit_price[self.flux_units]
        return y_ub, y_eq

    def touched_rows(self) -> np.ndarray:
        """Mask of the rows (<= rows, then = rows) with a coefficient on some column.

        Every = row has its auxiliary column; a <= row is touched when a triple of its
        excluded unit or household exists, and every quota row counts as touched.
        """
        out = np.zeros(len(self.b_ub) + len(self.b_eq), dtype=bool)
        excluded = self.triples.res < 0
        out[self.excluded_pos[self.triples.unit[excluded]]] = True
        out[self.demand0 + self.triples.demand] = True  # a scatter: no sort of the triples
        out[self.quota0 :] = True
        return out

    def orientation(self, values: np.ndarray) -> dict[int, int]:
        """Each flux unit's réservataire in an integral solution (column values by layout).

        An allocated unit goes to its triple's réservataire; an empty one to the ``e`` column
        set to 1.
        """
        x = values[: self.n_x]
        chosen = np.flatnonzero(x > 0.5)
        out = {
            int(u): int(r)
            for u, r in zip(self.triples.unit[chosen], self.triples.res[chosen], strict=True)
            if r >= 0
        }
        e = values[self.n_x : self.n_x + self.n_e].reshape(-1, max(1, self.n_res))
        for i in np.flatnonzero(e.max(axis=1, initial=0.0) > 0.5):
            out.setdefault(int(self.flux_units[i]), int(np.argmax(e[i])))
        return dict(sorted(out.items()))

    def auxiliary_values(self, chosen: np.ndarray, orientation: dict[int, int]) -> np.ndarray:
        """The ``e`` and ``n_r`` values of a solution: its chosen triples and orientation."""
        values = np.zeros(self.n_o)
        allocated = np.zeros(self.n_units, dtype=bool)
        allocated[self.triples.unit[chosen]] = True
        oriented = np.zeros(self.n_res, dtype=np.int64)
        for u, r in orientation.items():
            oriented[r] += 1
            if self.is_flux[u] and not allocated[u]:
                values[int(self.flux_pos[u]) * self.n_res + r] = 1.0
        low = self.b_eq[self.n_flux :]
        values[self.n_e :] = oriented[self.band_res] - low
        return values


def top_per_group(triples: Triples, rows: list[QuotaRow], per_group: int) -> np.ndarray:
    """Top triples of each class (`matching.solver.rows.row_classes`), by the tie-break order."""
    n_res = int(triples.res.max(initial=0)) + 1
    return top_per_class(row_classes(triples, rows, n_res), per_group)


def top_per_class(classes: np.ndarray, per_group: int) -> np.ndarray:
    """The first ``per_group`` triples of each class, sorted.

    Triples are sorted by unit, réservataire then household rank, so these are the class's
    best households; a class is a (unit, réservataire, quota signature), and the signature
    (each quota row a triple is in, with its coefficient) keeps households of every kind a
    quota distinguishes (priority, Q1, ...), so that the first restricted LP can already meet
    the quotas.
    """
    if per_group == 1:  # the first of each class, in O(n): the stable sort took 0.7 s on the year
        return np.sort(class_representatives(classes))
    return first_of_each_class(classes, per_group)


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

    The columns are the auxiliary and shortfall columns plus a restricted set of triples, grown
    by pricing. The cold start gets the rows of its first columns (and those an empty LP could
    violate); every row a triple touches comes in once a later column needs one. Extra rows
    (cuts, branching bounds) can be replaced between solves (`solve`); HiGHS restarts each
    solve from the previous basis, so a child node or a pricing round costs a few simplex
    iterations.
    """

    def __init__(
        self,
        lay: LPLayout | RoundLayout,
        cost: np.ndarray | Costs,
        initial: np.ndarray,
        rows: list[QuotaRow] | None = None,
    ) -> None:
        self.rows = rows or []
        self.lay = lay
        self.costs = cost if isinstance(cost, Costs) else Costs(lay.n_x, full=cost)
        self.scale = max(1.0, self.costs.largest_triple_cost())
        self.violation_cost = VIOLATION_COST * self.scale
        self.n_base = lay.n_x + lay.n_o + lay.n_s  # global columns (x, auxiliary, s)
        self.highs = _quiet_highs()
        n_ub = len(lay.b_ub)
        self.row_lower = np.concatenate([np.full(n_ub, -highspy.kHighsInf), lay.b_eq])
        self.row_upper = np.concatenate([lay.b_ub, lay.b_eq])
        self.n_rows = len(self.row_upper)  # rows of the layout
        self.row_of = np.full(self.n_rows, -1, dtype=np.int64)  # its HiGHS row, -1: not yet
        self.extra_row = np.zeros(0, dtype=np.int64)  # HiGHS row of each extra row
        # a <= row with a non-negative right-hand side holds while it has no column: the cold
        # start only gets the rows of its first columns (a month's: 998 of 17,319). The first
        # time a later column needs another, every row some triple touches is added at once
        # (`_add_columns`): adding rows at every pricing round slowed HiGHS's primal simplex on
        # the pooled year 5-10 times per iteration (one round: 200 s for 937 iterations)
        self.touched = lay.touched_rows()
        self.solved = False  # whether HiGHS has solved the LP once (rows then come all at once)
        self._add_rows(np.flatnonzero((self.row_lower > -highspy.kHighsInf) | (self.row_upper < 0)))
        self.col_global = np.zeros(0, dtype=np.int64)  # HiGHS column -> global column (-1: e)
        self.in_lp = np.zeros(lay.n_x, dtype=bool)
        self.extra: list[LinearCut] = []  # every extra row ever added, in HiGHS order
        self.extra_class: list[np.ndarray | None] = []  # its coefficient per class, if it has one
        self.extra_keys: list[tuple[object, ...]] = []
        self.extra_active = np.zeros(0, dtype=bool)
        self.e_upper = np.zeros(0)
        self.columns_per_round = COLUMNS_PER_ROUND
        # the triples of an allocation that meets the quotas, computed on demand: added after
        # `RESCUE_AFTER_ROUNDS` rounds of the next solve if it has not reached its bound by then
        self.rescue: Callable[[], np.ndarray] | None = None
        self._early: concurrent.futures.Future[np.ndarray] | None = None  # `PREFETCH_RESCUE`
        self.rows_changed = True  # the next solve starts from a primal-infeasible basis
        self.cols_at_solve = 0  # HiGHS's columns at the last solve
        self.work = 0.0  # estimated seconds of every solve so far (`lp_work`): a work count
        # duals (<= rows, = rows) to bound the first solve with before any simplex iteration
        self.first_duals: tuple[np.ndarray, np.ndarray] | None = None
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
        per_group: int = 1,
        classes: np.ndarray | None = None,
    ) -> LPSession:
        """The session of a round: its layout, min-form costs, best triples of each group."""
        lay = RoundLayout(inst, triples, rows, bands, soft, classes)
        rest = -np.concatenate([np.zeros(lay.n_o), weight_s[: lay.n_s]])
        by_household = uniform_household_weights(triples.demand, weight_x, len(inst.demands))
        if by_household is not None:
            cost = Costs.by_household(-by_household, triples.demand, rest)
        else:  # a stage weighing triples of one household differently: a cost per triple
            cost = Costs(lay.n_x, full=np.concatenate([-weight_x, rest]))
            by_household = household_maximum(triples.demand, weight_x, len(inst.demands))
        # the first columns: the best household of each group (every kind a quota counts) and
        # the unconstrained optimum's pairs (`matching.solver.seed`). One per group, not four:
        # the pooled year's LP took 53 s instead of 92 s (its cold start 2 s instead of 23 s,
        # with 64,000 first columns instead of 241,700); the month's is the same either way
        # (1.1-1.2 s); without the groups (the pairs only) the year took 43 s, but a floor the
        # pairs leave short would start from an infeasible restricted LP
        optimum = unconstrained_optimum(
            inst.pair_unit, inst.pair_demand, by_household, len(inst.units)
        )
        partner = np.full(len(inst.units), -1, dtype=np.int64)
        partner[optimum.unit] = optimum.demand
        seeded = np.flatnonzero(partner[triples.unit] == triples.demand)
        initial = np.union1d(top_per_class(lay.classes, per_group), seeded)
        out = cls(lay, cost, initial, rows)
        if optimum.unit_price is not None and optimum.demand_price is not None:
            out.first_duals = lay.price_duals(optimum.unit_price, optimum.demand_price)
        # a pooled year (4,000 units) needs more columns per round than a month (310)
        out.columns_per_round = max(COLUMNS_PER_ROUND, 8 * len(inst.units))
        return out

    def twin(self) -> LPSession:
        """A copy with a HiGHS instance of its own, warm with the same LP and basis.

        Why: the branching solves two nodes at once, one per core (HiGHS releases the GIL while
        it runs); each copy then grows its own columns and extra rows. The layout, costs and
        cuts are shared: nothing changes them after they are made.
        """
        other = copy.copy(self)
        other.highs = _quiet_highs()
        other.highs.passModel(self.highs.getLp())
        if self.solved:
            other.highs.setBasis(self.highs.getBasis())
        for name in ("row_of", "extra_row", "col_global", "in_lp", "extra_active", "e_upper"):
            setattr(other, name, getattr(self, name).copy())
        other.extra, other.extra_class = list(self.extra), list(self.extra_class)
        other.extra_keys = list(self.extra_keys)
        return other

    def _add_rows(self, rows: np.ndarray) -> None:
        """Give HiGHS these layout rows (empty: their coefficients come with the columns)."""
        n = len(rows)
        if n == 0:
            return
        self.highs.addRows(
            n, self.row_lower[rows], self.row_upper[rows], 0, np.zeros(n, np.int32),
            np.zeros(0, np.int32), np.zeros(0),
        )  # fmt: skip
        self.row_of[rows] = self.highs.getNumRow() - n + np.arange(n)

    def _add_columns(self, cols: np.ndarray) -> None:
        """Add global columns (x, auxiliary or s) to HiGHS with their rows' coefficients."""
        if len(cols) == 0:
            return
        base = self.lay.columns(cols).tocoo()
        touched = np.unique(base.row)
        missing = touched[self.row_of[touched] < 0]
        if len(missing) and self.solved:  # once after the cold start: every touched row
            need = self.touched.copy()
            need[missing] = True
            missing = np.flatnonzero(need & (self.row_of < 0))
        self._add_rows(missing)
        r_parts, c_parts, v_parts = [self.row_of[base.row]], [base.col], [base.data]
        if self.extra:  # coefficients of the current extra rows on these columns
            ext = self._extra_matrix(cols).tocoo()
            r_parts.append(self.extra_row[ext.row])
            c_parts.append(ext.col)
            v_parts.append(ext.data)
        both = sp.csc_matrix(
            (np.concatenate(v_parts), (np.concatenate(r_parts), np.concatenate(c_parts))),
            shape=(self.highs.getNumRow(), len(cols)),
        )
        both.sort_indices()
        self.highs.addCols(
            len(cols), self.costs.of(cols), np.zeros(len(cols)), self.lay.upper[cols],
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
        self,
        cols: np.ndarray,
        cuts: Sequence[LinearCut] | None = None,
        forms: Sequence[np.ndarray | None] | None = None,
    ) -> sp.csr_matrix:
        """Extra rows (in <= form; all of them by default) on the global columns ``cols``.

        ``forms``: each cut's coefficient per class when it has one (`RoundLayout.class_form`),
        read per column instead of through the cut's triples: the allocation floor and the
        staircase cuts of a Paris-sized round cover up to 70 million triples, and locating
        the few thousand new columns among them took 7.5 s over a branching.
        """
        if cuts is None:
            cuts, forms = self.extra, self.extra_class
        forms = [None] * len(cuts) if forms is None else forms
        n_x = self.lay.n_x
        x_mask = (cols >= 0) & (cols < n_x)  # -1: a violation column
        x_pos = np.flatnonzero(x_mask)
        x_cols = cols[x_mask]
        pos: np.ndarray | None = None  # global triple -> position in cols, built if needed
        r_parts, c_parts, v_parts = [], [], []
        for k, (cut, form) in enumerate(zip(cuts, forms, strict=True)):
            if form is not None:
                assert isinstance(self.lay, RoundLayout)
                coef = form[self.lay.classes[x_cols]]
                nonzero = np.flatnonzero(coef)
                where, values = x_pos[nonzero], coef[nonzero]
            else:
                if pos is None:
                    pos = np.full(n_x, -1, dtype=index_dtype(n_x))
                    pos[x_cols] = x_pos
                where = pos[cut.idx]
                ok = where >= 0
                where, values = where[ok], cut.coef[ok].astype(np.float64)
            r_parts.append(np.full(len(where), k))
            c_parts.append(where)
            v_parts.append(cut.sign * values)
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
        wanted = {c.signature: c for c in extra}
        known = {key: k for k, key in enumerate(self.extra_keys)}
        new = [c for key, c in wanted.items() if key not in known]
        if new:
            start = len(self.extra)
            self.extra += new
            self.extra_class += [self.lay.class_form(c) for c in new]
            self.extra_keys += [c.signature for c in new]
            self.extra_active = np.concatenate([self.extra_active, np.ones(len(new), bool)])
            self.e_upper = np.concatenate(
                [self.e_upper, [float(np.abs(c.coef).sum()) + abs(c.rhs) for c in new]]
            )
            mat = self._extra_matrix(self.col_global, new, self.extra_class[start:]).tocsr()
            mat.sort_indices()
            rhs = np.array([c.sign * c.rhs for c in new])
            n = len(new)
            self.highs.addRows(
                n, np.full(n, -highspy.kHighsInf), rhs, mat.nnz,
                mat.indptr[:-1].astype(np.int32), mat.indices.astype(np.int32),
                mat.data.astype(np.float64),
            )  # fmt: skip
            rows = np.arange(self.highs.getNumRow() - n, self.highs.getNumRow(), dtype=np.int32)
            self.extra_row = np.concatenate([self.extra_row, rows.astype(np.int64)])
            self.highs.addCols(
                n, np.full(n, self.violation_cost), np.zeros(n), self.e_upper[start:], n,
                np.arange(n, dtype=np.int32), rows, -np.ones(n),
            )  # fmt: skip
            self.col_global = np.concatenate([self.col_global, np.full(n, -1, dtype=np.int64)])
            self.rows_changed = True
        active = np.array([key in wanted for key in self.extra_keys], dtype=bool)
        changed = np.flatnonzero(active != self.extra_active)
        if len(changed):
            upper = np.array(
                [
                    self.extra[k].sign * self.extra[k].rhs if active[k] else highspy.kHighsInf
                    for k in changed
                ]
            )
            self.rows_changed = True
            self.highs.changeRowsBounds(  # type: ignore[attr-defined]
                len(changed), self.extra_row[changed].astype(np.int32),
                np.full(len(changed), -highspy.kHighsInf), upper,
            )  # fmt: skip
        self.extra_active = active

    def _by_layout_row(self, values: np.ndarray) -> np.ndarray:
        """A vector over HiGHS's rows (duals, a ray) by layout row; 0 where HiGHS has none."""
        out = np.zeros(self.n_rows)
        present = np.flatnonzero(self.row_of >= 0)
        out[present] = values[self.row_of[present]]
        return out

    def _extra_duals_matvec(
        self, y_extra: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``A_extra^T y``, the extra rows' share of reduced costs.

        Returns it per class for the rows with a class form, and over every triple for the
        others; None for a part with no row.
        """
        per_class: np.ndarray | None = None
        out: np.ndarray | None = None
        for k, cut in enumerate(self.extra):
            if y_extra[k] == 0.0:
                continue
            form = self.extra_class[k]
            if form is not None:
                term = cut.sign * y_extra[k] * form
                per_class = term if per_class is None else per_class + term
            else:
                out = np.zeros(self.lay.n_x) if out is None else out
                _scatter_add(out, cut.idx, cut.coef, cut.sign * y_extra[k])
        return per_class, out

    def solve(
        self,
        extra: Sequence[LinearCut] | None = None,
        *,
        max_rounds: int = 20,
        time_limit_s: float = 60.0,
    ) -> Certificate:
        """Column generation to the LP optimum; a safe bound and reduced costs over ALL triples."""
        try:
            return self._generate(extra, max_rounds, time_limit_s)
        finally:  # a rescue started early and never used still ends before the solve does
            if self._early is not None:
                concurrent.futures.wait([self._early])
                self._early = None

    def _generate(
        self, extra: Sequence[LinearCut] | None, max_rounds: int, time_limit_s: float
    ) -> Certificate:
        """`solve`'s column generation."""
        start = time.perf_counter()
        if extra is not None:
            self.set_extra(extra)
        lay = self.lay
        n_ub = len(lay.b_ub)
        best: _Bound | None = None
        last: _Primal | None = None
        # reduced costs of an earlier round of this call that nothing holds any more: the next
        # round writes into them (only the best bound's leave the call, in its certificate)
        spare: np.ndarray | None = None
        if self.first_duals is not None and not self.extra:
            # round 0: the unconstrained optimum's prices (`matching.solver.seed`), a bound
            # before any simplex iteration; the pooled year's LP equals it
            best = _Bound(*self._evaluate(*self.first_duals, np.zeros(0)))
            _logger.debug("LP round 0: bound %.3f from the assignment prices", best.upper_bound)
        self.first_duals = None
        rescue, self.rescue = self.rescue, None  # the next solve's only (the root's)
        # the triples the sift dropped from HiGHS; sifting from the round after the rescue's
        # first LP (`SIFT_AFTER_RESCUE`)
        sifted: np.ndarray | None = None

        def outcome(rounds: int) -> Certificate:
            if best is None or last is None:
                status = "failed" if best is None else "bound"
                bound = np.inf if best is None else best.upper_bound
                rc = np.zeros(lay.n_x) if best is None else best.reduced_cost
                return Certificate(status, bound, rc, 0, rounds, _since(start))
            return last.certificate(best, rounds, _since(start))

        for rounds in range(1, max_rounds + 1):
            remaining = max(1.0, time_limit_s - (time.perf_counter() - start))
            # HiGHS's time limit counts the instance's whole run time, every earlier solve of
            # the session included (a pooled year's node LPs stopped at once after 60 s of them)
            self.highs.setOptionValue("time_limit", self.highs.getRunTime() + remaining)
            # after new or changed rows (cold start, cuts, branching) the basis is primal
            # infeasible and dual simplex wins; after new columns too, when they are many
            # (`DUAL_AFTER_COLUMNS`) unless the restricted LP is already near the best bound
            # (`PRIMAL_NEAR_BOUND`); after a few, primal simplex takes a few iterations
            added = self.highs.getNumCol() - self.cols_at_solve
            many = added > DUAL_AFTER_COLUMNS * self.cols_at_solve
            near = (
                best is not None
                and last is not None
                and best.upper_bound - last.value <= PRIMAL_NEAR_BOUND * self.scale
            )
            dual = self.rows_changed or (many and not near)
            self.highs.setOptionValue("simplex_strategy", 1 if dual else 4)
            self.rows_changed = False
            self.cols_at_solve = self.highs.getNumCol()
            self.highs.run()
            self.work += lp_work(
                self.highs.getInfo().simplex_iteration_count,
                self.highs.getNumRow(), self.highs.getNumCol(), lay.n_x,
            )  # fmt: skip
            self.solved = True
            status = self.highs.getModelStatus()
            if status == highspy.HighsModelStatus.kInfeasible:
                if not self.in_lp.all():
                    breaking = self._farkas_pricing()
                    if breaking is None:  # the restricted LP's ray holds over every column
                        empty = np.zeros(lay.n_x)
                        return Certificate("infeasible", -np.inf, empty, 0, rounds, _since(start))
                    self.add_triples(breaking)
                    self.rows_changed = True  # no primal feasible basis to start from
                    continue
                empty = np.zeros(lay.n_x)
                return Certificate("infeasible", -np.inf, empty, 0, rounds, _since(start))
            if status != highspy.HighsModelStatus.kOptimal:
                _logger.warning("LP relaxation ended with status %s", status)
                return outcome(rounds)
            sol = self.highs.getSolution()
            duals = np.asarray(sol.row_dual)
            values = np.asarray(sol.col_value)
            x_pos = np.flatnonzero((self.col_global >= 0) & (self.col_global < lay.n_x))
            e_values = values[self.col_global < 0]
            violation = float(e_values[self.extra_active].sum()) if len(e_values) else 0.0
            last = _Primal(
                -self.highs.getInfo().objective_function_value, len(self.col_global),
                self.col_global[x_pos], values[x_pos], violation, np.flatnonzero(self.in_lp),
            )  # fmt: skip
            if best is not None and violation == 0 and _reaches(last.value, best.upper_bound):
                # the restricted LP's solution (a solution of the full LP) reaches a valid
                # bound: the LP is solved, no pricing needed (the pooled year: 9 rounds less)
                _logger.debug("LP round %d: reaches the bound %.3f", rounds, best.upper_bound)
                break
            y = self._by_layout_row(duals)  # 0 on the rows HiGHS does not have (valid signs)
            y_ub = np.minimum(y[:n_ub], 0.0)  # valid signs for <= rows
            y_ex = np.where(self.extra_active, np.minimum(duals[self.extra_row], 0.0), 0.0)
            beat = best.upper_bound if best is not None else None
            upper, rc = self._evaluate(y_ub, y[n_ub:], y_ex, beat, spare)
            retired: np.ndarray | None = rc
            if best is None or upper < best.upper_bound:
                retired = best.reduced_cost if best is not None else None
                best = _Bound(upper, rc)
            spare = None
            improving = np.flatnonzero((rc < -1e-9 * self.scale) & ~self.in_lp)
            _logger.debug(
                "LP round %d: %d columns, bound %.3f, %d improving",
                rounds, len(self.col_global), upper, len(improving),
            )  # fmt: skip
            if len(improving) == 0:
                break
            if best.reduced_cost is not rc:  # an earlier dual bounds better than this one
                improving = self._near(improving, best.reduced_cost)
            if sifted is not None:
                self._sift(sifted)
            lagging = upper - best.upper_bound > RESCUE_GAP * self.scale
            if (
                PREFETCH_RESCUE
                and rescue is not None
                and lagging
                and rounds == RESCUE_AFTER_ROUNDS - 1
                and self._early is None
            ):
                pool = concurrent.futures.ThreadPoolExecutor(1, "matching-rescue")
                self._early = pool.submit(rescue)
                pool.shutdown(wait=False)  # its one thread ends with the call
                _logger.debug("LP round %d: rescue started early", rounds)
            if rescue is not None and rounds >= RESCUE_AFTER_ROUNDS and lagging:
                purged = self._purge(np.asarray(sol.col_dual))
                early, self._early = self._early, None
                self.add_triples(early.result() if early is not None else rescue())
                rescue = None
                if SIFT_AFTER_RESCUE:
                    sifted = np.zeros(lay.n_x, dtype=bool)
                _logger.debug("LP round %d: rescue columns added, %d purged", rounds, purged)
            self.add_triples(self._pick(improving, rc))
            if retired is not None:
                spare = retired if retired.base is None else retired.base
        if sifted is not None and best is not None:
            self._restore(sifted, best.reduced_cost)
        return outcome(rounds)

    def _sift(self, sifted: np.ndarray) -> None:
        """Drop from HiGHS every triple nonbasic at zero, marking it in ``sifted``.

        See `SIFT_AFTER_RESCUE` for why and when; pricing, over every triple, adds any of them
        back whenever it improves again.
        """
        drop = self._triples_at_zero()
        sifted[self.col_global[drop]] = True
        self._drop_columns(drop)
        _logger.debug("LP sift: %d columns dropped, %d left", len(drop), len(self.col_global))

    def _restore(self, sifted: np.ndarray, reduced_cost: np.ndarray) -> None:
        """Give back to HiGHS the sifted triples tight under the best dual (nonbasic at zero).

        Why: the branching's nodes re-optimise from the root's basis, and a degenerate LP's
        alternative optima are made of exactly these columns (`SIFT_AFTER_RESCUE`). When the
        LP has ended, the restricted LP's value is already the full LP's, so its basis stays
        optimal (a test re-solves it in 0 iterations); otherwise they are only more columns.
        """
        back = np.flatnonzero(sifted & ~self.in_lp & (reduced_cost <= PURGE_ABOVE * self.scale))
        self.add_triples(back)
        self.cols_at_solve = self.highs.getNumCol()
        _logger.debug("LP restore: %d sifted columns back", len(back))

    def _purge(self, col_dual: np.ndarray) -> int:
        """Drop from HiGHS the triples at zero whose reduced cost there is positive; how many.

        Why: the columns priced while the restricted LP lagged were priced at duals of the
        allocation stage's size; most are worth nothing at the duals that follow, and they
        slowed every later simplex. A nonbasic column at its lower bound leaves the basis and
        the solution unchanged when dropped, and pricing adds it back if it improves again.
        """
        at_zero = self._triples_at_zero()
        drop = at_zero[col_dual[at_zero] > PURGE_ABOVE * self.scale]
        self._drop_columns(drop)
        return len(drop)

    def _triples_at_zero(self) -> np.ndarray:
        """HiGHS positions of the triple columns nonbasic at their lower bound (zero).

        (A nonbasic column at its upper bound has a reduced cost of at most 0 at the optimum,
        so the purge's positive ones are all among these.)
        """
        statuses = self.highs.getBasis().col_status
        lower = highspy.HighsBasisStatus.kLower
        at_zero = np.fromiter((st == lower for st in statuses), dtype=bool, count=len(statuses))
        is_x = (self.col_global >= 0) & (self.col_global < self.lay.n_x)
        return np.flatnonzero(is_x & at_zero)

    def _drop_columns(self, drop: np.ndarray) -> None:
        """Delete these HiGHS columns (nonbasic: the basis and the solution stay)."""
        if len(drop) == 0:
            return
        self.highs.deleteCols(len(drop), drop.astype(np.int32))
        self.in_lp[self.col_global[drop]] = False
        keep = np.ones(len(self.col_global), dtype=bool)
        keep[drop] = False
        self.col_global = self.col_global[keep]
        self.cols_at_solve = self.highs.getNumCol()

    def _near(self, improving: np.ndarray, best_rc: np.ndarray) -> np.ndarray:
        """The improving triples of least reduced cost under the best dual so far.

        Why: the restricted LP's duals price badly while it lacks columns (the first round of
        the January round bounds at 1,100 times the optimum); a column with a small reduced
        cost under the dual of the best bound is one an optimal LP solution can use (an LP
        solution worth ``z`` puts at most ``UB - z`` of reduced cost on its columns). Keeps
        `PICK_SHORTLIST` times the cap of them, with every tie of the last; the pooled
        year's LP (whose best dual is the assignment prices) took 28-30 s instead of 44 s.
        """
        return _least(improving, best_rc, PICK_SHORTLIST * self.columns_per_round)

    def _evaluate(
        self,
        y_ub: np.ndarray,
        y_eq: np.ndarray,
        y_ex: np.ndarray,
        beat: float | None = None,
        out: np.ndarray | None = None,
    ) -> tuple[float, np.ndarray]:
        """The bound (maximised) of these duals over every column, and the triples' reduced costs.

        ``y_ub <= 0`` and ``y_ex <= 0`` (the extra rows') must have valid signs; any such dual
        bounds every solution (see the module docstring). When a float sum of the negative
        reduced costs already puts the bound above ``beat`` by more than its rounding error,
        that estimate is returned instead of the exact sum: it cannot be the best bound, and
        the first pricing rounds of a Paris-sized round have 18-27 million negative terms
        (their exact sum took seconds).
        """
        lay = self.lay
        per_class, scattered = self._extra_duals_matvec(y_ex) if self.extra else (None, None)
        rc_all = reduced_costs(lay, self.costs, y_ub, y_eq, per_class, out)
        if scattered is not None:
            rc_all[: lay.n_x] -= scattered
        # summed exactly (math.fsum): only the products and the reduced costs round, so the
        # bound's error stays far below `bound_slack`
        bound_min = _exact_dot(y_ub, lay.b_ub) + _exact_dot(y_eq, lay.b_eq)
        if self.extra:
            rhs = np.array([c.sign * c.rhs for c in self.extra])
            bound_min += _exact_dot(y_ex[self.extra_active], rhs[self.extra_active])
            rc_e = self.violation_cost + y_ex  # column -1 in its row
            bound_min += _exact_dot(self.e_upper, np.minimum(rc_e, 0.0))
        negative = np.flatnonzero(rc_all < 0.0)
        terms = lay.upper[negative] * rc_all[negative]
        if beat is not None:
            # |float sum - exact sum| <= n eps sum|terms| (any order of summation), and one
            # more rounding for the addition
            eps = float(np.finfo(np.float64).eps)
            estimate = bound_min + float(terms.sum())
            error = (len(terms) + 1) * eps * (float(-terms.sum()) + abs(estimate))
            if -estimate - error > beat:
                return -estimate - error, rc_all[: lay.n_x]
        bound_min += math.fsum(terms.tolist())
        return -bound_min, rc_all[: lay.n_x]

    def _farkas_pricing(self) -> np.ndarray | None:
        """None if the restricted LP's dual ray proves the full LP infeasible, else what to add.

        Why: pricing every triple into the LP at once (1.3 million on a month) did not finish
        in 30 s. HiGHS's ray ``r`` (its dual signs: <= 0 on <= rows) combines the rows into
        ``(A^T r) x >= r^T b``; over the box ``0 <= x <= u`` the left side is at most
        ``sum_j max(0, (A^T r)_j) u_j``. When that is below ``r^T b`` no column, in the LP or
        not, can satisfy the rows: the sum is recomputed here over every column, like the
        bound, so no tolerance of HiGHS enters the proof. Otherwise the columns outside the LP
        with the largest ``(A^T r)_j > 0`` are the ones that break it: they are added (measured
        on a February round with a floor out of reach, the count-range check switched off:
        infeasible proven in 34 rounds, 1.6 s).
        """
        lay = self.lay
        n_ub = len(lay.b_ub)
        _, has_ray, ray = self.highs.getDualRay()  # type: ignore[attr-defined]
        if not has_ray or self.extra:  # (nodes carry violation columns: never infeasible)
            return np.arange(lay.n_x)
        ray = np.asarray(ray)
        by_row = self._by_layout_row(ray)
        r_ub = np.minimum(by_row[:n_ub], 0.0)
        r_eq = by_row[n_ub:]
        g = lay.rmatvec(r_ub, r_eq)
        reach = float(np.sum(np.maximum(g, 0.0) * lay.upper))
        need = float(r_ub @ lay.b_ub + r_eq @ lay.b_eq)
        if reach < need - 1e-6 * max(1.0, abs(need)):
            return None
        g_x = g[: lay.n_x]
        breaking = np.flatnonzero((g_x > 1e-9) & ~self.in_lp)
        if len(breaking) == 0:  # inconclusive (tolerances): price everything
            return np.arange(lay.n_x)
        order = np.argsort(-g_x[breaking], kind="stable")
        return breaking[order[: self.columns_per_round]]

    def _pick(self, improving: np.ndarray, rc: np.ndarray) -> np.ndarray:
        """The columns to add: the best `COLUMNS_PER_GROUP` of each group, best first, capped.

        Taking the globally most improving columns piles them on a few units; a few per
        (unit, réservataire) spreads them (measured: January 2.6 s instead of 3.7 s, July 3.0 s
        instead of 3.3 s, docs/solver.md). On a large round only the `PICK_SHORTLIST` times
        the cap most improving triples are grouped (with every tie of the last, so the choice
        is deterministic): sorting the 27 million improving triples of a Paris-sized round's
        first rounds by group took seconds. If that leaves fewer than the cap, all are grouped.
        """
        cap = self.columns_per_round
        if not isinstance(self.lay, RoundLayout) or len(improving) == 0:
            return improving[np.argsort(rc[improving], kind="stable")[:cap]]
        every = improving
        improving = _least(improving, rc, PICK_SHORTLIST * cap)
        picked = self._best_per_group(improving, rc)
        if len(picked) < cap and len(improving) < len(every):
            picked = self._best_per_group(every, rc)
        return picked[np.argsort(rc[picked], kind="stable")[:cap]]

    def _best_per_group(self, improving: np.ndarray, rc: np.ndarray) -> np.ndarray:
        """The best `COLUMNS_PER_GROUP` triples of each (unit, réservataire) among these."""
        assert isinstance(self.lay, RoundLayout)
        # pricing group of these triples only: an array over every triple would be 560 MB on a
        # Paris-sized round
        triples = self.lay.triples
        key = unit_res_key(triples.unit[improving], triples.res[improving], self.lay.n_res)
        order = np.lexsort((rc[improving], key))
        return improving[order[group_ranks(key[order]) < COLUMNS_PER_GROUP]]


def reduced_costs(
    lay: LPLayout | RoundLayout,
    costs: Costs,
    y_ub: np.ndarray,
    y_eq: np.ndarray,
    per_class_extra: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``cost - A^T y`` over every column of a layout.

    ``out``: an array of every column to write into, that an earlier pricing round no longer
    needs: a fresh one of a Paris-sized round (560 MB) is mapped page by page, which made the
    later rounds' passes take 1.3-1.5 s instead of 0.6 s.
    """
    if costs.household is not None:
        assert isinstance(lay, RoundLayout)
        return lay.household_reduced_costs(costs, y_ub, y_eq, per_class_extra, out)
    assert costs.full is not None
    products = lay.rmatvec(y_ub, y_eq, per_class_extra, out)
    return np.subtract(costs.full, products, out=products)  # in place: 560 MB less on Paris


def _least(indices: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` indices of least ``values``, with every tie of the last (deterministic)."""
    if len(indices) <= count:
        return indices
    mine = values[indices]
    return indices[mine <= kth_smallest(mine, count)]


SAMPLE_ABOVE = 1_000_000
"""Arrays longer than this have their order statistic found through a sample (`kth_smallest`)."""


def kth_smallest(values: np.ndarray, k: int) -> float:
    """``np.partition(values, k)[k]`` (the value of rank k, from 0), without partitioning it whole.

    Why: the pricing of a pooled year or a Paris-sized round selects its few hundred thousand
    least reduced costs among 2-27 million improving triples. Partitioning them whole took
    0.1-0.6 s a call, and 0.38 s on 2.3 million values with only 54 distinct ones (numpy's
    introselect is slow on heavy ties; sorting them took 0.02 s).

    A regular sample (every ``n // 50,000``-th value: deterministic) gives a threshold ``t`` a
    little above the k-th value's expected place. Then, exactly: when more than k values are
    ``< t``, the k-th value is the k-th of those (go on with them alone); when at most k are
    ``< t`` but more than k are ``<= t``, it is ``t`` (the case of heavy ties); otherwise it is
    the ``(k - #(<= t))``-th of the values ``> t``.
    """
    while len(values) > SAMPLE_ABOVE and 2 * (k + 1) < len(values):
        n = len(values)
        sample = values[:: n // 50_000]
        q = min(len(sample) - 1, int(1.25 * (k + 1) * len(sample) / n) + 64)
        threshold = np.partition(sample, q)[q]
        less = values < threshold
        n_less = int(np.count_nonzero(less))
        if n_less > k:
            values = values[less]
            continue
        n_at_most = n_less + int(np.count_nonzero(values == threshold))
        if n_at_most > k:
            return float(threshold)
        values, k = values[values > threshold], k - n_at_most
    return float(np.partition(values, k)[k])


def _class_quota(rows: list[QuotaRow], rep: np.ndarray) -> sp.csr_matrix:
    """The quota rows' coefficients of each class (its representative triple ``rep``)."""
    r_parts, c_parts, v_parts = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    for k, row in enumerate(rows):
        hit, coef = _row_coefficients(row, rep)
        r_parts.append(hit)
        c_parts.append(np.full(len(hit), k))
        v_parts.append(coef)
    return sp.csr_matrix(
        (np.concatenate(v_parts), (np.concatenate(r_parts), np.concatenate(c_parts))),
        shape=(len(rep), len(rows)),
    )


def _row_coefficients(row: QuotaRow, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions in ``t`` (sorted or not) of the triples in the row, and their coefficients."""
    where = np.searchsorted(row.idx, t)
    hit = where < len(row.idx)
    hit[hit] = row.idx[where[hit]] == t[hit]
    return np.flatnonzero(hit), row.coef[where[hit]].astype(np.float64)


_CHUNK = 1 << 22
"""Entries per step of `_scatter_add` (temporaries of 32 MB, whatever the number of triples)."""

_GATHER_CHUNK = 1 << 16
"""Entries per step of the gathers of `RoundLayout.rmatvec` and `household_reduced_costs`.

Numpy converts an int32 index to int64 before gathering: in steps this small the converted
index and the step's output stay in the cache. Measured on a Paris-sized round's 70 million
triples: 0.54 s per reduced-cost pass against 0.77 s in steps of 4 million.
"""


def _scatter_add(out: np.ndarray, idx: np.ndarray, coef: np.ndarray, factor: float) -> None:
    """``out[idx] += factor * coef`` (``idx`` without repeats), a slice at a time.

    Why: in one step the temporaries are two float arrays as long as the row; the allocation
    floor of a Paris-sized round's branching covers 70 million triples (1.1 GB).
    """
    for start in range(0, len(idx), _CHUNK):
        part = idx[start : start + _CHUNK]
        out[part] += factor * coef[start : start + _CHUNK]


def _exact_dot(a: np.ndarray, b: np.ndarray) -> float:
    """``a . b`` with the products rounded and their sum exact (`math.fsum`)."""
    return math.fsum((np.asarray(a, dtype=np.float64) * b).tolist())


def _reaches(value: float, bound: float) -> bool:
    """Whether an LP solution's value meets a bound (up to `bound_slack`)."""
    return value >= bound - bound_slack(bound)


def bound_slack(bound: float) -> float:
    """How far a bound of `LPSession.solve` may sit above the exact bound of its duals.

    The bound sums exactly (`_exact_dot`); what rounds is each product and each reduced cost
    ``c_j - a_j . y`` (relative error about 1e-16 of terms below 1e7 on every measured round).
    A node or a round is closed when its bound is below ``incumbent + 1 - bound_slack``: the
    objective is an integer. Before, the slack was ``1e-9 |bound|``, which exceeds 1 on the
    pooled year (folded objective 1.7e9), so an LP bound equal to the incumbent never closed.
    """
    return 1e-6 + 1e-11 * abs(bound)


def _since(start: float) -> float:
    return time.perf_counter() - start
