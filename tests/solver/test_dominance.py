"""Dropping each class's households beyond the unit count (`matching.solver.dominance`).

The LP path solves the round on each class's ``n_units`` heaviest triples only; a solution
proven optimal there is reported OPTIMAL for the whole round. So on crowded rounds (a few
units, many households: the pruning drops most triples) the optimum must equal the full
CP-SAT model's, in hard and soft mode, with the checker passing on both; and the selection
itself must be exactly the first triples of each class, with nothing dropped when the triples'
order is not heaviest first. The same holds for the drop made on the pairs, before the
triples are built, by (unit, réservataire, household profile).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from matching.exceptions import InfeasibleError
from matching.params import SolveParams
from matching.policy.model import Policy
from matching.round import prepare_round
from matching.solver import dominance
from matching.solver.dominance import (
    FEW_PROFILES,
    MIN_DROPPED,
    _droppable_at_most,
    _first_of_each,
    undominated,
    undominated_pairs,
)
from matching.solver.instance import RoundInstance, Triples, build_triples
from matching.solver.rows import household_profiles, quota_rows, row_classes, rows_on
from tests.factories import demand, demands_of, unit, units_of
from tests.solver.support import (
    FULL,
    NO_QUOTAS,
    POLICY,
    PRUNED,
    filed,
    generated_round,
    soft,
    solve_checked,
)


def _outcome(
    units: pd.DataFrame, demands: pd.DataFrame, policy: Policy, params: SolveParams, on: object
) -> tuple[object, int]:
    """Stage values (or the rules in conflict) of a checked solve, and the triples dropped."""
    try:
        result = solve_checked(units, demands, policy, params, on=on)  # type: ignore[arg-type]
    except InfeasibleError as e:
        return ("infeasible", tuple(e.rule_ids)), -1
    return result.stage_values, int(result.stats.get("dominated", 0))


@pytest.mark.parametrize("seed", range(10))
def test_dropping_dominated_triples_keeps_the_optimum(seed: int) -> None:
    """Crowded rounds (3-5 units, 300-500 households): LP path with the drop = full model."""
    rng = np.random.default_rng(seed)
    n_units, n_demands = int(rng.integers(3, 6)), int(rng.integers(300, 501))
    for policy in (POLICY, soft(POLICY)):
        units, demands, on, _ = generated_round(seed, n_units, n_demands, policy)
        pruned, dropped = _outcome(units, demands, policy, PRUNED, on)
        full, _ = _outcome(units, demands, policy, FULL, on)
        assert pruned == full, (seed, policy.quotas.mode)
        if dropped >= 0:
            assert dropped > 0, seed  # the drop is exercised


def test_units_competing_for_the_same_households_are_all_housed() -> None:
    """Three units, twelve households eligible everywhere, no quota: the three best housed.

    Every class holds the same households in the same order, so this is where the unit count
    is needed: keeping fewer than ``n_units`` per class would leave units to worse households.
    """
    units = units_of(*(unit(f"U{k}") for k in range(3)))
    households = [demand(f"D{k:02d}", filed_on=filed(40 - k)) for k in range(12)]
    demands = demands_of(*households)
    pruned = solve_checked(units, demands, NO_QUOTAS, PRUNED)
    full = solve_checked(units, demands, NO_QUOTAS, FULL)
    assert pruned.stats.get("dominated", 0) > 0
    assert pruned.stage_values == full.stage_values
    assert sorted(pruned.allocation["demand_id"]) == ["D00", "D01", "D02"]


def _blocks(seed: int) -> tuple[Triples, np.ndarray, np.ndarray]:
    """Random triples sorted by (unit, réservataire), a few classes per block, weights falling."""
    rng = np.random.default_rng(seed)
    n = 400
    unit = np.sort(rng.integers(0, 4, n)).astype(np.int32)
    res = np.zeros(n, dtype=np.int16)
    for u in range(4):  # réservataires sorted within each unit
        at = np.flatnonzero(unit == u)
        res[at] = np.sort(rng.integers(0, 3, len(at)))
    block = unit.astype(np.int64) * 3 + res
    local = rng.integers(0, 3, n)
    _, classes = np.unique(block * 3 + local, return_inverse=True)
    # numbered by first appearance, as `row_classes` numbers them
    first = np.full(classes.max() + 1, n)
    np.minimum.at(first, classes, np.arange(n))
    relabel = np.empty_like(first)
    relabel[np.argsort(first, kind="stable")] = np.arange(len(first))
    classes = relabel[classes].astype(np.int32)
    weight = np.zeros(n)
    for b in np.unique(block):  # heaviest first along each block, with ties
        at = np.flatnonzero(block == b)
        weight[at] = np.sort(rng.integers(0, 5, len(at)))[::-1].astype(float)
    triples = Triples(unit, np.arange(n, dtype=np.int32), res, np.zeros(n, dtype=np.int32))
    return triples, classes, weight


@pytest.mark.parametrize("seed", range(5))
def test_kept_triples_are_the_first_of_each_class(seed: int) -> None:
    """Each class's first ``n_units`` triples in their order, every other dropped."""
    triples, classes, weight = _blocks(seed)
    n_units = 4
    kept = undominated(triples, classes, weight, n_units)
    assert kept is not None
    seen: dict[int, int] = {}
    expected = []
    for t, c in enumerate(classes.tolist()):
        if seen.get(c, 0) < n_units:
            expected.append(t)
        seen[c] = seen.get(c, 0) + 1
    assert kept.tolist() == expected
    assert len(kept) < len(classes)


def test_nothing_is_dropped_when_the_order_is_not_heaviest_first() -> None:
    """A weight rising inside a (unit, réservataire): the first are not the heaviest."""
    triples, classes, weight = _blocks(0)
    assert undominated(triples, classes, weight, 4) is not None
    rising = weight.copy()
    inside = np.flatnonzero(
        (triples.unit[1:] == triples.unit[:-1]) & (triples.res[1:] == triples.res[:-1])
    )[5]
    rising[inside + 1] = rising[inside] + 1
    assert undominated(triples, classes, rising, 4) is None
    # a rise between two blocks is allowed: each block is ordered on its own
    across = np.flatnonzero(triples.unit[1:] != triples.unit[:-1])[0]
    between = weight.copy()
    between[across + 1 :] += 100 * (triples.unit[across + 1 :] == triples.unit[across + 1])
    assert undominated(triples, classes, between, 4) is not None


def test_nothing_is_dropped_below_the_least_fraction() -> None:
    """Fewer than `MIN_DROPPED` of the triples to drop: the round is left whole."""
    triples, classes, weight = _blocks(1)
    largest = int(np.bincount(classes).max())
    assert undominated(triples, classes, weight, largest) is None  # nothing beyond the count
    sizes = np.bincount(classes)
    n_units = next(
        k
        for k in range(1, largest)
        if 0 < np.maximum(sizes - k, 0).sum() < MIN_DROPPED * len(classes)
    )
    assert undominated(triples, classes, weight, n_units) is None


@pytest.mark.parametrize("seed", range(3))
def test_rows_on_kept_triples_are_the_rows_of_those_triples(seed: int) -> None:
    """`rows_on` renumbers each row as `quota_rows` on the kept triples would write it."""
    units, demands, on, _ = generated_round(seed, 4, 100, POLICY)
    inst = prepare_round(units, demands, POLICY, on=on).instance
    triples = build_triples(inst)
    rows = quota_rows(inst, triples)
    keep = np.flatnonzero(np.random.default_rng(seed).random(len(triples)) < 0.5)
    moved = rows_on(rows, keep, len(triples))
    fresh = quota_rows(inst, triples.subset(keep))
    assert [r.name for r in moved] == [r.name for r in fresh]
    for a, b in zip(moved, fresh, strict=True):
        assert a.idx.tolist() == b.idx.tolist(), a.name
        assert a.coef.tolist() == b.coef.tolist(), a.name
        assert a.base_idx.tolist() == b.base_idx.tolist(), a.name
        assert a.counted_idx.tolist() == b.counted_idx.tolist(), a.name
        assert (a.rhs, a.sense, a.slack) == (b.rhs, b.sense, b.slack), a.name


def _crowded_instance(seed: int) -> RoundInstance:
    units, demands, on, _ = generated_round(seed, 4, 300, POLICY)
    return prepare_round(units, demands, POLICY, on=on).instance


def _dropped_from_pairs(seed: int) -> tuple[RoundInstance, RoundInstance, int]:
    """A crowded round, the same round after the drop on its pairs, and its triple count."""
    inst = _crowded_instance(seed)
    dropped = undominated_pairs(inst, 0)
    assert dropped is not None
    return inst, *dropped


def _triple_set(triples: Triples) -> set[tuple[int, int, int]]:
    cols = (triples.unit.tolist(), triples.demand.tolist(), triples.res.tolist())
    return set(zip(*cols, strict=True))


@pytest.mark.parametrize("seed", range(4))
def test_households_of_one_profile_are_alike_to_every_quota_row(seed: int) -> None:
    """With the same unit and réservataire, one household profile gives one row class.

    This is what makes the drop from the pairs exact: a (unit, réservataire, profile) is a set
    of triples with equal coefficients on every row, as a class of `row_classes` is.
    """
    inst = _crowded_instance(seed)
    triples = build_triples(inst)
    rows = quota_rows(inst, triples)
    classes = row_classes(triples, rows, len(inst.reservataires))
    profile = household_profiles(inst)
    assert len(np.unique(profile)) > 1  # the policy's rules tell households apart
    key = (triples.unit.astype(np.int64) * 16 + triples.res + 1) * 4096 + profile[triples.demand]
    frame = pd.DataFrame({"key": key, "cls": classes})
    assert frame.groupby("key")["cls"].nunique().max() == 1


@pytest.mark.parametrize("seed", range(4))
def test_pairs_keep_the_first_triples_of_each_profile(seed: int) -> None:
    """The kept pairs give each (unit, réservataire, profile)'s ``n_units`` first triples."""
    inst, smaller, total = _dropped_from_pairs(seed)
    full = build_triples(inst)
    assert total == len(full)
    profile = household_profiles(inst)
    seen: dict[tuple[int, int, int], int] = {}
    expected = set()
    for u, d, r in zip(full.unit.tolist(), full.demand.tolist(), full.res.tolist(), strict=True):
        key = (u, r, int(profile[d]))
        if seen.get(key, 0) < len(inst.units):
            expected.add((u, d, r))
        seen[key] = seen.get(key, 0) + 1
    kept = build_triples(smaller)
    assert _triple_set(kept) == expected
    assert len(kept) == len(expected) < total
    assert (np.diff(smaller.pair_unit) >= 0).all()


def test_no_pair_is_dropped_when_the_tie_break_does_not_put_the_score_first() -> None:
    """Households ranked against their scores: the first of a class are not the heaviest."""
    inst = _crowded_instance(0)
    assert undominated_pairs(inst, 0) is not None
    by_score = np.argsort(inst.scores, kind="stable")  # the worst first
    rank = np.empty(len(by_score), dtype=np.int64)
    rank[by_score] = np.arange(len(by_score))
    assert undominated_pairs(dataclasses.replace(inst, tie_rank=rank), 0) is None


def test_no_pair_is_dropped_in_a_round_at_most_the_threshold() -> None:
    """A round of at most ``above`` triples is left whole (the full model solves it)."""
    inst = _crowded_instance(1)
    total = len(build_triples(inst))
    assert undominated_pairs(inst, total) is None
    assert undominated_pairs(inst, total - 1) is not None


@pytest.mark.parametrize("seed", range(3))
def test_the_bound_from_the_pair_counts_holds(seed: int) -> None:
    """The quick bound on what could go is at least what goes."""
    inst, smaller, total = _dropped_from_pairs(seed)
    bound = _droppable_at_most(inst, 0)
    assert bound is not None
    assert bound >= total - len(build_triples(smaller)) > 0


def test_no_pair_is_dropped_when_no_unit_has_more_households_than_units() -> None:
    """More units than households: no class is crowded, the pairs are not even sorted."""
    units, demands, on, _ = generated_round(0, 30, 25, POLICY)
    inst = prepare_round(units, demands, POLICY, on=on).instance
    assert len(build_triples(inst)) > 0
    assert _droppable_at_most(inst, 0) is None
    assert undominated_pairs(inst, 0) is None


@pytest.mark.parametrize("n_profiles", [3, FEW_PROFILES + 8])
def test_first_of_each_unit_and_profile_in_order(n_profiles: int) -> None:
    """The first ``count`` of every (unit, profile), by a pass per profile or by a sort."""
    rng = np.random.default_rng(n_profiles)
    unit = np.sort(rng.integers(0, 6, 3000)).astype(np.int32)
    profile = rng.integers(0, n_profiles, 3000).astype(np.int32)
    seen: dict[tuple[int, int], int] = {}
    expected = []
    for i, key in enumerate(zip(unit.tolist(), profile.tolist(), strict=True)):
        if seen.get(key, 0) < 7:
            expected.append(i)
        seen[key] = seen.get(key, 0) + 1
    assert _first_of_each(unit, profile, 7).tolist() == expected
    assert len(expected) < len(unit)


@pytest.mark.parametrize("seed", range(2))
def test_the_bound_is_the_same_counted_either_way(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pairs counted per (unit, pool mask) or per réservataire (many réservataires): one bound."""
    inst = _crowded_instance(seed)
    by_mask = _droppable_at_most(inst, 0)
    monkeypatch.setattr(dominance, "FEW_RESERVATAIRES", 0)
    assert by_mask is not None
    assert _droppable_at_most(inst, 0) == by_mask
