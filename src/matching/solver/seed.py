"""The unconstrained optimum of a round (quotas dropped): a seed for the LP's first columns.

Why: every triple of a household weighs the same on every unit (the allocation multiplier plus
its cotation score), so which households are housed is what the optimum is about, and the
unconstrained optimum (scipy's sparse assignment, milliseconds on a month) already houses nearly
the same households as the constrained one. Starting the column generation from its pairs (with
every réservataire they may go through) halves the LP's time on the January round and divides it
by four on July (docs/solver.md); the quotas then move only a few households.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import min_weight_full_bipartite_matching


def vacancy_graph(
    pair_unit: np.ndarray, pair_demand: np.ndarray, pair_score: np.ndarray, n_units: int
) -> tuple[sp.csr_matrix, np.ndarray, float]:
    """The units x (demands, vacancies) graph whose maximum full matching is that optimum.

    Each unit gets a private "vacancy" column of weight 0.5 so that a full matching always
    exists; real pairs weigh ``big + score`` with ``big`` above any total score, so cardinality
    comes first (the lexicographic stages of the policy). Demands no pair reaches are dropped:
    returns the graph, the demand position of each real column, and ``big``.
    """
    demands, col_of_pair = np.unique(pair_demand, return_inverse=True)
    n_dem = len(demands)
    big = float(max(float(pair_score.max(initial=0)), 1.0)) * n_units + 1.0
    rows = np.concatenate([pair_unit, np.arange(n_units)])
    cols = np.concatenate([col_of_pair.ravel(), n_dem + np.arange(n_units)])
    weights = np.concatenate([big + pair_score.astype(np.float64), np.full(n_units, 0.5)])
    graph = sp.csr_matrix((weights, (rows, cols)), shape=(n_units, n_dem + n_units))
    return graph, demands, big


def matched_pairs(col: np.ndarray, demands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (unit, demand) positions of a full matching of `vacancy_graph` (vacancies dropped)."""
    real = np.flatnonzero(col < len(demands))
    return real.astype(np.int64), demands[col[real]].astype(np.int64)


def unconstrained_matching(
    pair_unit: np.ndarray, pair_demand: np.ndarray, pair_score: np.ndarray, n_units: int
) -> tuple[np.ndarray, np.ndarray]:
    """Most allocations, then most score, quotas dropped; the matched (unit, demand) positions."""
    if len(pair_unit) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    score = np.maximum(pair_score.astype(np.float64), 0.0)
    graph, demands, _ = vacancy_graph(pair_unit, pair_demand, score, n_units)
    _, col = min_weight_full_bipartite_matching(graph, maximize=True)
    return matched_pairs(col, demands)
