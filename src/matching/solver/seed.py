"""The unconstrained optimum of a round (quotas dropped): a seed for the LP's first columns.

Why: every triple of a household weighs the same on every unit (the allocation multiplier plus
its cotation score), so which households are housed is what the optimum is about, and the
unconstrained optimum (scipy's sparse assignment, milliseconds on a month) already houses nearly
the same households as the constrained one. Starting the column generation from its pairs (with
every réservataire they may go through) halves the LP's time on the January round and divides it
by four on July (docs/solver.md); the quotas then move only a few households.

Its dual (`unconstrained_optimum`: a price per unit and per household) is also a dual of the
round's LP with the quota and band rows priced at zero: a bound before any simplex iteration,
exact when the quotas cost nothing (the pooled year), which lets the column generation stop as
soon as its restricted LP reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import min_weight_full_bipartite_matching


def vacancy_graph(
    pair_unit: np.ndarray, pair_demand: np.ndarray, pair_score: np.ndarray, n_units: int
) -> tuple[sp.csr_matrix, np.ndarray, float]:
    """The units x (demands, vacancies) graph whose maximum full matching is that optimum.

    Each unit gets a private "vacancy" column of weight 0.5 (`assignment_graph`) so that a full
    matching always exists; real pairs weigh ``big + score`` with ``big`` above any total
    score, so cardinality comes first (the lexicographic stages of the policy). Demands no pair
    reaches are dropped: returns the graph, the demand position of each real column, and
    ``big``.
    """
    demands, col_of_pair = np.unique(pair_demand, return_inverse=True)
    big = float(max(float(pair_score.max(initial=0)), 1.0)) * n_units + 1.0
    weights = big + pair_score.astype(np.float64)
    graph = assignment_graph(pair_unit, col_of_pair.ravel(), weights, n_units, len(demands), 0.5)
    return graph, demands, big


def assignment_graph(
    pair_unit: np.ndarray,
    pair_col: np.ndarray,
    pair_weight: np.ndarray,
    n_units: int,
    n_cols: int,
    vacancy: float,
) -> sp.csr_matrix:
    """Units x (``n_cols`` columns, then a private vacancy per unit, weighing ``vacancy``).

    With its vacancy every unit can be matched, so a full matching always exists. The
    compressed rows are written directly, each unit's vacancy ending its row, with no sort
    when the pairs come sorted by unit and column (as the eligible pairs do): building it
    through a coordinate matrix sorted the pooled year's 7.3 million pairs (1.4 s).
    """
    unit, col = np.asarray(pair_unit), np.asarray(pair_col)
    weight = np.asarray(pair_weight, dtype=np.float64)
    if len(unit) and not bool((unit[1:] >= unit[:-1]).all()):
        by_unit = np.argsort(unit, kind="stable")
        unit, col, weight = unit[by_unit], col[by_unit], weight[by_unit]
    # int32 positions when they fit: scipy would copy int64 ones down (27 million on a
    # Paris-sized round), and pair k of unit u sits at k + u (a vacancy ends each earlier row)
    n_entries = len(unit) + n_units
    index = np.int32 if max(n_entries, n_cols + n_units) < 2**31 else np.int64
    indptr = np.zeros(n_units + 1, dtype=index)
    np.cumsum(np.diff(np.searchsorted(unit, np.arange(n_units + 1))) + 1, out=indptr[1:])
    last = indptr[1:] - 1
    at = np.arange(len(unit), dtype=index) + unit.astype(index, copy=False)
    indices = np.empty(n_entries, dtype=index)
    values = np.empty(n_entries)
    indices[at], values[at] = col, weight
    indices[last] = n_cols + np.arange(n_units, dtype=index)
    values[last] = float(vacancy)
    graph = sp.csr_matrix((values, indices, indptr), shape=(n_units, n_cols + n_units))
    graph.sort_indices()  # canonical (a no-op for pairs sorted by column within each unit)
    return graph


def matched_pairs(col: np.ndarray, demands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (unit, demand) positions of a full matching of `vacancy_graph` (vacancies dropped)."""
    real = np.flatnonzero(col < len(demands))
    return real.astype(np.int64), demands[col[real]].astype(np.int64)


def household_weights(demand: np.ndarray, weight: np.ndarray, n_demands: int) -> np.ndarray:
    """Each household's greatest triple weight (``-inf`` for a household with no triple).

    Under the policy's stages every triple of a household weighs the same (the allocation
    multiplier plus its cotation score), so one scatter gives it (`uniform_household_weights`);
    other weights take a slower exact maximum.
    """
    out = uniform_household_weights(demand, weight, n_demands)
    return household_maximum(demand, weight, n_demands) if out is None else out


def household_maximum(demand: np.ndarray, weight: np.ndarray, n_demands: int) -> np.ndarray:
    """Each household's greatest triple weight by an exact maximum (``-inf``: no triple)."""
    out = np.full(n_demands, -np.inf)
    np.maximum.at(out, demand, weight)
    return out


def uniform_household_weights(
    demand: np.ndarray, weight: np.ndarray, n_demands: int
) -> np.ndarray | None:
    """Each household's triple weight when all of its triples weigh the same, else None.

    One scatter, checked against every triple a slice at a time; ``-inf`` for a household with
    no triple.
    """
    out = np.full(n_demands, -np.inf)
    out[demand] = weight
    step = 1 << 22
    for start in range(0, len(demand), step):
        part = slice(start, start + step)
        if not np.array_equal(out[demand[part]], weight[part]):
            return None
    return out


PRICE_PASSES = 200
"""Most Bellman-Ford passes for the unit prices (the Caen la Mer month and year settle in 3)."""


@dataclass(frozen=True)
class Assignment:
    """The unconstrained optimum for given household weights, with its dual when proven.

    ``unit_price`` u and ``demand_price`` v satisfy ``u_i + v_j >= w_j`` on every pair and
    ``u, v >= 0``: any allocation is worth at most ``sum(u) + sum(v)`` (weak duality), which
    equals ``value`` (complementary slackness: u = 0 on empty units, v = 0 on unhoused
    households, ``u_i + v_j = w_j`` on the matched pairs).
    """

    unit: np.ndarray  # matched unit positions
    demand: np.ndarray  # matched demand positions
    value: float  # sum of the matched weights
    unit_price: np.ndarray | None  # None when the dual could not be proven (see below)
    demand_price: np.ndarray | None


def unconstrained_optimum(
    pair_unit: np.ndarray, pair_demand: np.ndarray, weight: np.ndarray, n_units: int
) -> Assignment:
    """The most weight over the pairs, ``weight`` per demand position (quotas dropped).

    The matching is scipy's sparse assignment on `assignment_graph` (every entry shifted by 1,
    which adds the same ``n_units`` to every full matching). Its dual is computed from it:
    with v = 0 on unhoused households and ``v_j = w_j - u_i`` on a matched pair, the
    constraints ``u_i + v_j >= w_j`` read ``u_i >= w_j`` for an unhoused household j and
    ``u_i >= u_k + w_j - w_j`` for j housed at unit k: the least solution is a longest
    path from those lower bounds (Bellman-Ford over the units, as array passes). On integer
    weights below 2^53 everything is exact; if the result breaks ``v >= 0`` or ``u = 0`` on an
    empty unit (the matching was not optimal) or does not settle in `PRICE_PASSES` passes, no
    dual is returned.
    """
    weight = np.asarray(weight, dtype=np.float64)
    n_demands = len(weight)
    pair_weight = weight[pair_demand]
    useful = pair_weight > 0  # a pair of weight <= 0 never adds to the optimum
    p_unit, p_demand, p_weight = np.asarray(pair_unit), np.asarray(pair_demand), pair_weight
    if not useful.all():  # (a copy of 27 million pairs on a Paris-sized round otherwise)
        p_unit, p_demand, p_weight = p_unit[useful], p_demand[useful], p_weight[useful]
    empty = np.zeros(0, dtype=np.int64)
    if len(p_unit) == 0:
        return Assignment(empty, empty, 0.0, np.zeros(n_units), np.zeros(n_demands))
    top = heaviest_pairs(p_unit, p_weight, n_units)
    g_unit, g_demand, g_weight = p_unit, p_demand, p_weight
    if top is not None:
        g_unit, g_demand, g_weight = p_unit[top], p_demand[top], p_weight[top]
    graph = assignment_graph(g_unit, g_demand, g_weight + 1.0, n_units, n_demands, 1.0)
    _, col = min_weight_full_bipartite_matching(graph, maximize=True)
    unit, demand = matched_pairs(col, np.arange(n_demands))
    value = float(weight[demand].sum())
    prices = _assignment_prices(p_unit, p_demand, weight, unit, demand, n_units, n_demands)
    if prices is None:
        return Assignment(unit, demand, value, None, None)
    return Assignment(unit, demand, value, *prices)


def heaviest_pairs(
    pair_unit: np.ndarray, pair_weight: np.ndarray, n_units: int
) -> np.ndarray | None:
    """The positions of each unit's ``n_units`` heaviest pairs; None when that is every pair.

    Why: some maximum-weight matching uses only these. In any matching, a unit matched to a
    household outside its ``n_units`` heaviest has, among those, one that no other unit holds
    (the ``n_units - 1`` others hold at most that many); swapping to it loses no weight. So
    scipy's assignment on these pairs is optimal on all of them, and the prices are then
    computed (and checked) over every pair. A Paris-sized round's units have about 27,000
    pairs each; 1,000 of them are kept. Pairs come sorted by unit (as the eligible pairs do);
    ties at a unit's cut are broken by `np.argpartition` on the pairs in their order, so the
    choice is deterministic.
    """
    unit = np.asarray(pair_unit)
    counts = np.bincount(unit, minlength=n_units)
    crowded = np.flatnonzero(counts > n_units)
    if len(crowded) == 0 or not bool((unit[1:] >= unit[:-1]).all()):
        return None
    starts = np.zeros(n_units + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    keep = np.ones(len(unit), dtype=bool)
    for u in crowded.tolist():
        lo, hi = int(starts[u]), int(starts[u + 1])
        lightest = np.argpartition(-pair_weight[lo:hi], n_units - 1)[n_units:]
        keep[lo + lightest] = False
    return np.flatnonzero(keep)


def _assignment_prices(
    p_unit: np.ndarray,
    p_demand: np.ndarray,
    weight: np.ndarray,
    unit: np.ndarray,
    demand: np.ndarray,
    n_units: int,
    n_demands: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The least unit prices u and the household prices v of an optimal matching, or None."""
    housed_at = np.full(n_demands, -1, dtype=np.int64)
    housed_at[demand] = unit
    matched_weight = np.zeros(n_units)
    matched_weight[unit] = weight[demand]
    at = housed_at[p_demand]
    u = np.zeros(n_units)  # from the lower bounds u_i >= w_j for an unhoused household j of i
    free = at < 0
    np.maximum.at(u, p_unit[free], weight[p_demand[free]])
    # u_i >= u_k + (w_j - w_j at k) for a pair (i, j) with j housed at another unit k
    link = ~free & (at != p_unit)
    order = np.argsort(p_unit[link], kind="stable")  # (pairs come sorted by unit: a no-op)
    dst = p_unit[link][order]
    src = at[link][order]
    length = weight[p_demand[link]][order] - matched_weight[src]
    if len(dst):
        starts = np.flatnonzero(np.r_[True, dst[1:] != dst[:-1]])
        target = dst[starts]
        for _ in range(min(n_units + 1, PRICE_PASSES)):
            reach = np.maximum.reduceat(u[src] + length, starts)
            grown = reach > u[target]
            if not grown.any():
                break
            u[target[grown]] = reach[grown]  # reach was read from the previous pass
        else:  # not settled: a positive cycle (the matching was not optimal) or a long chain
            return None
    v = np.zeros(n_demands)
    v[demand] = matched_weight[unit] - u[unit]
    empty_unit = np.ones(n_units, dtype=bool)
    empty_unit[unit] = False
    if (v < 0).any() or (u[empty_unit] != 0).any():
        return None
    return u, v
