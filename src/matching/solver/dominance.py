"""Triples that some optimal solution does without: a class's households beyond the unit count.

A class (`matching.solver.rows.row_classes`) is a set of triples that share their unit, their
réservataire and their coefficient on every quota row. Take any solution that houses household
``j`` through a triple of class ``c`` that is not among the ``n_units`` heaviest of ``c``. Of
those heaviest, at most ``n_units - 1`` households are housed at the other units, so one of
them, ``j'``, is not housed at all: moving the unit from ``j`` to ``j'`` changes no quota row,
no flux band, no orientation and no unit's allocation, and loses no weight. Repeating this
(each move puts one more chosen triple among the kept ones) gives a solution as good that uses
kept triples only. So the round restricted to the kept triples has the same optimum, and a
solution proven optimal there is optimal for the whole round; the same moves map any solution
of any subset of the rules, so which rules conflict is unchanged too.

Why: a class of a large round holds many more households than there are units (a Paris-sized
round: 70 million triples in 13,490 classes for 1,000 units, of which 11.9 million are kept;
the Caen la Mer January round: 1.34 million in 4,123 classes for 310 units, 736,000 kept), and
every pass of the LP's pricing, every cut and every count over the triples is that much smaller.
The pooled year (4,000 units, no class of more than 4,045 triples) keeps nearly all.

"Heaviest" uses the triples' order: triples are sorted by unit, réservataire and household
rank, and the rule applies only when the weights never increase along that order within a
(unit, réservataire), as under the policy's stages with the score first in the tie-break
(`undominated` returns None otherwise, and nothing is dropped).

The same argument holds for any finer partition of the triples into sets that share their
unit, réservataire and coefficients: `undominated_pairs` uses (unit, réservataire, household
profile) (`matching.solver.rows.household_profiles`), known from the pairs, so that the
dominated triples of a large round are never built. Its kept triples are a superset of what
`undominated` keeps (its classes are finer), and `undominated` can then drop more of them: each
step keeps the optimum of the round it is given, so the two together keep the round's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from matching.solver.instance import (
    RoundInstance,
    Triples,
    group_ranks,
    pairs_by_rank,
    triple_selections,
)
from matching.solver.rows import first_of_each_class, household_profiles
from matching.types import Stage

MIN_DROPPED = 0.1
"""Drop nothing unless at least this fraction of the triples goes.

Why: the round's rows, stage terms and weights are then made again on the kept triples, about
a second on the pooled year, where 90 of its 18.9 million triples would go.
"""


def undominated(
    triples: Triples,
    classes: np.ndarray,
    weight: np.ndarray,
    n_units: int,
    min_dropped: float = MIN_DROPPED,
) -> np.ndarray | None:
    """The sorted positions of each class's ``n_units`` first triples; None to keep them all.

    None when nothing or fewer than ``min_dropped`` of them would go, and when the weights
    increase somewhere along a (unit, réservataire)'s triples: the first ones would then not
    be the heaviest.
    """
    sizes = np.bincount(classes)
    dropped = int(np.maximum(sizes - n_units, 0).sum())
    if dropped == 0 or dropped < min_dropped * len(classes):
        return None
    if not _heaviest_first(triples, weight):
        return None
    return first_of_each_class(classes, n_units)


def _heaviest_first(triples: Triples, weight: np.ndarray) -> bool:
    """Whether the weights never increase along each (unit, réservataire)'s triples."""
    rises = weight[1:] > weight[:-1]
    if not rises.any():
        return True
    at = np.flatnonzero(rises)
    same = (triples.unit[at + 1] == triples.unit[at]) & (triples.res[at + 1] == triples.res[at])
    return not bool(same.any())


def undominated_pairs(inst: RoundInstance, above: int) -> tuple[RoundInstance, int] | None:
    """The round with its dominated triples removed from its pairs, and its count of triples.

    A pair keeps the réservataires (pool bits) for which its triple is among the ``n_units``
    first of its (unit, réservataire, household profile) in rank order; a pair of a unit
    outside the flux is kept when its one triple is. The pairs come back in (unit, rank)
    order. None when the round has at most ``above`` triples, when fewer than `MIN_DROPPED` of
    them would go, or when the weights could rise along a unit's pairs: a stage other than
    allocations, score and shortfall, or a score that rises somewhere in the tie-break's order
    of the households (the policy's tie-break does not put the score first).
    """
    stages = set(inst.policy.objective.stages)
    if not stages <= {Stage.ALLOCATIONS, Stage.SCORE, Stage.SHORTFALL}:
        return None  # pragma: no cover - the stages there are
    if _droppable_at_most(inst, above) is None:
        return None
    by_rank = pairs_by_rank(inst)
    pair_unit, pair_demand = inst.pair_unit[by_rank], inst.pair_demand[by_rank]
    pair_pools = inst.pair_pools[by_rank]
    del by_rank
    selections = triple_selections(inst, pair_unit, pair_demand, pair_pools)
    total = sum(len(sel) for sel in selections)
    if total <= above:
        return None
    if Stage.SCORE in stages:  # the weight of a triple is its household's score, folded
        # read on the households in tie-break order (a unit's pairs are in that order): a
        # check on the 250,000 households, not the 27 million pairs, of a Paris-sized round
        score = inst.scores[np.argsort(inst.tie_rank, kind="stable")]
        if bool((score[1:] > score[:-1]).any()):
            return None
    profile = household_profiles(inst)
    narrow = np.uint8 if profile.max(initial=0) < 2**8 else np.int32
    pair_profile = profile.astype(narrow)[pair_demand]
    keep = np.zeros(len(pair_unit), dtype=bool)
    bits = np.zeros(len(pair_unit), dtype=pair_pools.dtype)
    kept = 0
    for column, sel in enumerate(selections):
        first = sel[_first_of_each(pair_unit[sel], pair_profile[sel], len(inst.units))]
        kept += len(first)
        keep[first] = True
        if column > 0:  # réservataire column - 1 (`triple_selections`)
            bits[first] |= pair_pools.dtype.type(1 << (column - 1))
    if total - kept < MIN_DROPPED * total:
        return None
    # flux units keep only the réservataires of their kept triples; the others their pools
    pools = np.where(inst.flux_units[pair_unit], bits, pair_pools)
    smaller = dataclasses.replace(
        inst, pair_unit=pair_unit[keep], pair_demand=pair_demand[keep], pair_pools=pools[keep]
    )
    return smaller, total


def _droppable_at_most(inst: RoundInstance, above: int) -> int | None:
    """A bound on the triples the drop could remove, from counts of pairs; None if not worth it.

    A (unit, réservataire) of ``t`` triples drops at most ``t - n_units`` of them, however its
    households split into profiles. None when the round has at most ``above`` triples or the
    bound is under `MIN_DROPPED` of them (the pooled year: at most 577,710 of its 18.9 million
    triples; the check takes 0.06 s where sorting its pairs took 1.9 s).
    """
    n_units, n_res = len(inst.units), len(inst.policy.reservataires)
    flux = inst.flux_units
    counts = np.zeros((n_units, n_res + 1), dtype=np.int64)
    if n_res <= FEW_RESERVATAIRES:
        # pairs per (unit, pool mask), in one pass: the masks take at most 2^n_res values
        by_mask = np.bincount(
            inst.pair_unit.astype(np.int64) << n_res | inst.pair_pools,
            minlength=n_units << n_res,
        ).reshape(n_units, 1 << n_res)
        bit = (np.arange(1 << n_res)[:, None] >> np.arange(n_res)[None, :]) & 1
        counts[~flux, 0] = by_mask[~flux].sum(axis=1)  # outside the flux: one triple per pair
        counts[flux, 1:] = by_mask[flux] @ bit  # in it: one per réservataire of the pools
    else:  # a table of 2^n_res masks per unit would be too large: a pass per réservataire
        counts[:, 0] = np.bincount(inst.pair_unit, minlength=n_units)
        counts[flux, 0] = 0
        for i in range(n_res):
            has = ((inst.pair_pools >> i) & 1) == 1
            counts[:, i + 1] = np.bincount(inst.pair_unit[has], minlength=n_units)
        counts[~flux, 1:] = 0
    most = int(counts.sum())  # the priority law may remove a few
    bound = int(np.maximum(counts - n_units, 0).sum())
    if most <= above or bound < MIN_DROPPED * most:
        return None
    return bound


def _first_of_each(unit: np.ndarray, profile: np.ndarray, count: int) -> np.ndarray:
    """The positions of the first ``count`` of each (unit, profile), sorted.

    ``unit`` is sorted and the order is the rank order, so each profile's entries are too: one
    pass per profile when they are few (a round has a handful: 6 on the Paris-sized round),
    else a stable sort by profile.
    """
    mask = np.zeros(len(unit), dtype=bool)
    n_profiles = int(profile.max()) + 1 if len(profile) else 0
    if n_profiles <= FEW_PROFILES:
        for p in range(n_profiles):
            at = np.flatnonzero(profile == p)
            mask[at[group_ranks(unit[at]) < count]] = True
    else:
        order = np.argsort(profile, kind="stable")
        key = profile[order].astype(np.int64) * (int(unit.max()) + 1) + unit[order]
        mask[order[group_ranks(key) < count]] = True
    return np.flatnonzero(mask)


FEW_RESERVATAIRES = 8
"""Up to this many réservataires, `_droppable_at_most` counts pairs per (unit, pool mask)."""

FEW_PROFILES = 32
"""Up to this many household profiles, `_first_of_each` takes one pass per profile."""
