"""The unconstrained optimum and its prices (`matching.solver.seed.unconstrained_optimum`).

The prices bound the round's LP before any simplex iteration, and the column generation stops
as soon as its restricted LP reaches them: they must be a dual of the assignment (every pair
covered, non-negative) whose sum is the optimum, checked here against scipy's dense assignment
on random graphs with ties, unreachable households and weights that are not worth matching.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from matching.solver.seed import heaviest_pairs, household_weights, unconstrained_optimum


def _random_graph(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(seed)
    n_units, n_demands = int(rng.integers(3, 15)), int(rng.integers(3, 40))
    dense = rng.random((n_units, n_demands)) < rng.uniform(0.1, 0.6)
    unit, demand = np.nonzero(dense)
    # few distinct weights (ties, as cotation scores have), some not worth matching (<= 0)
    weight = rng.integers(-2, 6, size=n_demands).astype(np.float64) * 1000 + 7
    weight[rng.random(n_demands) < 0.2] = 0.0
    return unit.astype(np.int32), demand.astype(np.int32), weight, n_units


def _dense_optimum(unit: np.ndarray, demand: np.ndarray, weight: np.ndarray, n_units: int) -> float:
    """The most weight of a matching, by scipy's dense assignment with a vacancy per unit."""
    n_demands = len(weight)
    value = np.zeros((n_units, n_demands + n_units))
    value[unit, demand] = np.maximum(weight[demand], 0.0)
    rows, cols = linear_sum_assignment(value, maximize=True)
    return float(value[rows, cols].sum())


@pytest.mark.parametrize("seed", range(40))
def test_prices_are_an_optimal_dual(seed: int) -> None:
    """Optimum as scipy's dense assignment; prices cover every pair and sum to it."""
    unit, demand, weight, n_units = _random_graph(seed)
    found = unconstrained_optimum(unit, demand, weight, n_units)
    assert found.value == pytest.approx(_dense_optimum(unit, demand, weight, n_units), abs=1e-9)
    assert len(set(found.unit.tolist())) == len(found.unit)  # a matching
    assert len(set(found.demand.tolist())) == len(found.demand)
    pairs = set(zip(unit.tolist(), demand.tolist(), strict=True))
    assert set(zip(found.unit.tolist(), found.demand.tolist(), strict=True)) <= pairs
    u, v = found.unit_price, found.demand_price
    assert u is not None and v is not None
    assert (u >= 0).all() and (v >= 0).all()
    assert (u[unit] + v[demand] >= weight[demand] - 1e-9).all()  # every pair covered
    assert u.sum() + v.sum() == pytest.approx(found.value, abs=1e-9)  # tight: the optimum


@pytest.mark.parametrize("seed", range(20))
def test_crowded_units_keep_an_optimal_matching(seed: int) -> None:
    """Each unit's ``n_units`` heaviest pairs hold an optimum, whatever the other pairs.

    Units with many more households than there are units (a Paris-sized round's have about
    27,000 each for 1,000 units) are pruned before scipy's assignment: the optimum over every
    pair must be unchanged, with ties at the cut and, in the first case, the same heaviest
    households at every unit (one unit fewer kept would leave a unit empty there).
    """
    rng = np.random.default_rng(seed)
    n_units = int(rng.integers(2, 6))
    n_demands = int(rng.integers(3 * n_units, 12 * n_units))
    if seed == 0:  # every unit: the same households, the n_units heaviest first
        unit, demand = np.nonzero(np.ones((n_units, n_demands), dtype=bool))
        weight = np.r_[np.arange(n_units, 0, -1) * 100.0 + 50, np.full(n_demands - n_units, 1.0)]
    else:
        unit, demand = np.nonzero(rng.random((n_units, n_demands)) < 0.8)
        weight = rng.integers(0, 4, size=n_demands).astype(np.float64) * 10 + 1
    unit, demand = unit.astype(np.int32), demand.astype(np.int32)
    top = heaviest_pairs(unit, weight[demand], n_units)
    assert top is not None  # the pruning is exercised
    per_unit = np.bincount(unit[top], minlength=n_units)
    assert (per_unit == np.minimum(np.bincount(unit, minlength=n_units), n_units)).all()
    assert len(top) < len(unit)
    kept = _dense_optimum(unit[top], demand[top], weight, n_units)
    assert kept == pytest.approx(_dense_optimum(unit, demand, weight, n_units), abs=1e-9)
    found = unconstrained_optimum(unit, demand, weight, n_units)
    assert found.value == pytest.approx(kept, abs=1e-9)
    assert found.unit_price is not None  # priced over every pair, not only the kept ones


def test_household_weights_take_the_best_triple() -> None:
    """Equal weights per household by one scatter; unequal ones by their maximum."""
    demand = np.array([0, 2, 0, 2, 3])
    assert household_weights(demand, np.array([5.0, 7.0, 5.0, 7.0, 1.0]), 5).tolist() == [
        5.0, -np.inf, 7.0, 1.0, -np.inf,
    ]  # fmt: skip
    mixed = household_weights(demand, np.array([5.0, 7.0, 9.0, 6.0, 1.0]), 4)
    assert mixed.tolist() == [9.0, -np.inf, 7.0, 1.0]
