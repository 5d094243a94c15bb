"""Aggregate counts of a round and the integer-rounding cuts they imply.

Why: the LP relaxation of a round with binding quotas sits a few points above the integer
optimum (on the Caen la Mer monthly round: 48,089.5 against 48,070), because a share floor
``4 C - B >= 0`` lets the LP give a quarter of a priority household. Every quota row compares
two integer counts over the allocation, the base ``B`` and the counted ``C``; so does every
flux band (units oriented to a réservataire). Knowing the range of ``B`` (from the bands, the
units that can only be allocated inside the base, and how many units may stay empty), the
integer points ``(B, C)`` that satisfy the row form a staircase, and the facets of its convex
hull are valid cuts that the LP does not satisfy by itself (``C >= 13`` where the LP takes
``C = 12.75``).

Each aggregate is also a branching variable for `matching.solver.branch`: narrowing its range
at a node narrows the staircase, and the cuts recomputed for the node get stronger.

Validity: the ranges assume at least ``min_allocations`` allocations (at most ``n_units -
min_allocations`` empty units). The solver only uses them to compare against an incumbent with
that many allocations: any solution with fewer allocations is worth less when allocations come
before score in the objective (DOMAIN A5), so it cannot beat the incumbent anyway. A policy
whose first stage is not the allocations passes 0 (`matching.solver.solve._prove_by_branching`).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from matching.flux import FluxBand
from matching.solver.instance import (
    RoundInstance,
    Triples,
    compact_int,
    index_dtype,
    unit_res_key,
)
from matching.solver.lp import LinearCut, LPValues
from matching.solver.rows import QuotaRow
from matching.types import Measure


@dataclass(frozen=True)
class Aggregate:
    """An integer count over the allocation: ``sum(x[idx])``, with its structural range."""

    key: str  # e.g. "B:priority_floor_bailleur", "N:etat"
    idx: np.ndarray  # triple indices
    low: int
    high: int

    def value(self, primal: LPValues) -> float:
        """The aggregate's value in an LP solution."""
        return primal.total(self.idx)


@dataclass(frozen=True)
class ShareRow:
    """A hard share quota row over two aggregates: ``q C - p B (>= or <=) rhs``."""

    row: QuotaRow
    base: Aggregate
    counted: Aggregate
    p: int
    q: int

    @functools.cached_property
    def in_counted(self) -> np.ndarray:
        """Which of the base's triples are counted (a mask over ``base.idx``), computed once.

        Through a mask over the triple indices, not `np.isin` (which sorts both sets: 2.8 s
        for a Paris-sized round's five share rows).
        """
        base = self.base.idx
        if len(base) == 0:
            return np.zeros(0, dtype=bool)
        dense = np.zeros(int(base.max()) + 1, dtype=bool)
        dense[self.counted.idx] = True  # the counted triples are base triples
        return dense[base]


def label_ranges(
    inst: RoundInstance, bands: dict[str, FluxBand] | None = None
) -> list[tuple[int, int]]:
    """Admissible number of this round's flux units oriented to each réservataire (A4).

    Réservataires with a share have their band; the landlord takes the rest, so its range is
    what the others leave; a réservataire with neither is free in ``[0, flux units]``.
    ``bands``: these instead of the round's (some left out, to name a conflict).
    """
    n_flux = int(inst.flux_units.sum())
    bands = inst.bands() if bands is None else bands
    landlord = inst.policy.flux.landlord
    ranges: list[tuple[int, int]] = []
    banded_low = sum(b.low for b in bands.values())
    banded_high = sum(b.high for b in bands.values())
    # the landlord's least is what the banded réservataires leave at most, unless some other
    # réservataire without a band could take units too
    others_free = any(r not in bands and r != landlord for r in inst.reservataires)
    for res in inst.reservataires:
        if res in bands:
            ranges.append((bands[res].low, bands[res].high))
        elif res == landlord:
            least = 0 if others_free else max(0, n_flux - banded_high)
            ranges.append((least, max(0, n_flux - banded_low)))
        else:
            ranges.append((0, n_flux))
    return ranges


@dataclass(frozen=True)
class _Coverage:
    """How many triples each unit and each réservataire has in the round, and where.

    Why: an index set covers a unit (or a réservataire) when it holds all of its triples;
    comparing its counts by unit with these totals needs one pass over the set, not two over
    every triple (30 ranges on the Caen la Mer month: 0.46 s before, docs/solver.md). When the
    triples come sorted by (unit, réservataire), as `build_triples` writes them, each
    (unit, réservataire) group is a run starting at ``group_start``, and a sorted index set's
    count in every group is a binary search per group boundary: no pass over the set at all
    (the 30 ranges of the January round: 0.10 s before; a bincount over up to 70 million
    indices each on a Paris-sized round).
    """

    per_unit: np.ndarray  # triples of each unit
    per_res: np.ndarray  # triples of each réservataire, at index res + 1 (0: NONE)
    group_start: np.ndarray | None  # first triple of each (unit, réservataire) run, then n
    group_unit: np.ndarray  # unit of each run
    group_res: np.ndarray  # réservataire of each run, + 1 (0: NONE)

    @classmethod
    def of(cls, n_units: int, n_res: int, triples: Triples) -> _Coverage:
        """The totals of a round's triples, and their runs if they are sorted.

        The runs are read off where the unit or réservataire changes (two comparisons per
        triple, no key and no count over them: 1.4 s a call on a Paris-sized round before).
        """
        unit, res, n = triples.unit, triples.res, len(triples)
        start = np.zeros(1, dtype=np.int64)
        if n:
            change = (unit[1:] != unit[:-1]) | (res[1:] != res[:-1])
            start = np.concatenate([[0], np.flatnonzero(change) + 1, [n]])
        run_unit = unit[start[:-1]].astype(np.int64)
        run_res = res[start[:-1]].astype(np.int64) + 1
        key = run_unit * (n_res + 1) + run_res
        if not bool((key[1:] > key[:-1]).all()):  # unsorted: count every triple's group
            full = unit_res_key(unit, res, n_res)
            counts = np.bincount(full, minlength=n_units * (n_res + 1))
            present = np.flatnonzero(counts)
            run_unit, run_res = np.divmod(present, n_res + 1)
            in_run = counts[present]
            group_start = None
        else:
            in_run = np.diff(start)
            group_start = start
        return cls(
            np.bincount(run_unit, weights=in_run, minlength=n_units).astype(np.int64),
            np.bincount(run_res, weights=in_run, minlength=n_res + 1).astype(np.int64),
            group_start,
            run_unit,
            run_res,
        )

    def counts(self, triples: Triples, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The triples of ``idx`` (sorted, unique) in each unit and each réservataire (+ 1)."""
        if self.group_start is None:
            return (
                np.bincount(triples.unit[idx], minlength=len(self.per_unit)),
                np.bincount(triples.res[idx].astype(np.int64) + 1, minlength=len(self.per_res)),
            )
        in_group = np.diff(np.searchsorted(idx, self.group_start))
        return (
            np.bincount(self.group_unit, weights=in_group, minlength=len(self.per_unit)),
            np.bincount(self.group_res, weights=in_group, minlength=len(self.per_res)),
        )


def _units_range(
    triples: Triples,
    coverage: _Coverage,
    idx: np.ndarray,
    empty_units: int,
    ranges: list[tuple[int, int]],
) -> tuple[int, int]:
    """Range of the number of allocated units whose triple lies in ``idx`` (sorted, unique).

    At most one triple per unit is chosen. A unit all of whose triples are in ``idx`` counts
    whenever it is allocated; at most ``empty_units`` units are not. If every triple of
    réservataires R is in ``idx``, the flux units oriented to R (at least the sum of their
    band lows) count once allocated; if ``idx`` only holds triples of R (no unit excluded from
    the flux), at most the sum of their band highs count.
    """
    in_unit, in_res = coverage.counts(triples, idx)
    has_in = in_unit > 0
    low = int((has_in & (in_unit == coverage.per_unit)).sum()) - empty_units
    high = int(has_in.sum())
    full = [r for r in range(len(ranges)) if 0 < in_res[r + 1] == coverage.per_res[r + 1]]
    if full:
        low = max(low, sum(ranges[r][0] for r in full) - empty_units)
    if len(idx) and in_res[0] == 0:  # no unit excluded from the flux
        present = np.flatnonzero(in_res[1:])
        high = min(high, sum(ranges[int(r)][1] for r in present))
    return max(0, low), max(0, high)


def aggregates(
    inst: RoundInstance, triples: Triples, rows: list[QuotaRow], min_allocations: int
) -> tuple[list[ShareRow], list[Aggregate]]:
    """The hard share rows as aggregate pairs, and every branching aggregate of the round.

    Branching aggregates: B and C of each quota row, and the allocations through each
    réservataire (``N:<id>``), which the flux bands make integer-critical.
    """
    empty = max(0, len(inst.units) - min_allocations)
    ranges = label_ranges(inst)
    coverage = _Coverage.of(len(inst.units), len(inst.reservataires), triples)
    shares, every = _row_aggregates(triples, rows, coverage, empty, ranges)
    for r, res in enumerate(inst.reservataires):
        idx = np.flatnonzero(triples.res == r).astype(index_dtype(len(triples)))
        lo, hi = _units_range(triples, coverage, idx, empty, ranges)
        every.append(Aggregate(f"N:{res}", idx, lo, hi))
    return shares, every


def share_rows(inst: RoundInstance, triples: Triples, rows: list[QuotaRow]) -> list[ShareRow]:
    """The hard share rows as aggregate pairs with their ranges in every solution.

    `aggregates` without a floor on the allocations and without the réservataires' aggregates
    (five passes over the triples that `unreachable_conflicts` and `least_shortfalls` never read).
    """
    ranges = label_ranges(inst)
    coverage = _Coverage.of(len(inst.units), len(inst.reservataires), triples)
    return _row_aggregates(triples, rows, coverage, len(inst.units), ranges)[0]


def _row_aggregates(
    triples: Triples,
    rows: list[QuotaRow],
    coverage: _Coverage,
    empty: int,
    ranges: list[tuple[int, int]],
) -> tuple[list[ShareRow], list[Aggregate]]:
    """The share rows, and the B and C aggregates of every quota row."""
    shares: list[ShareRow] = []
    every: list[Aggregate] = []
    for row in rows:
        (b_lo, b_hi), (_, c_hi) = _count_ranges(
            triples, coverage, row.base_idx, row.counted_idx, empty, ranges
        )
        base = Aggregate(f"B:{row.name}", row.base_idx, b_lo, b_hi)
        counted = Aggregate(f"C:{row.name}", row.counted_idx, 0, c_hi)
        every += [base, counted]
        if row.rule.measure == Measure.SHARE:
            frac = row.rule.target_fraction()
            shares.append(ShareRow(row, base, counted, frac.numerator, frac.denominator))
    return shares, every


def _count_ranges(
    triples: Triples,
    coverage: _Coverage,
    base_idx: np.ndarray,
    counted_idx: np.ndarray,
    empty: int,
    ranges: list[tuple[int, int]],
) -> tuple[tuple[int, int], tuple[int, int]]:
    """The ranges of a row's base and counted aggregates (the counted ones are base triples)."""
    b_lo, b_hi = _units_range(triples, coverage, base_idx, empty, ranges)
    c_hi = min(b_hi, _units_range(triples, coverage, counted_idx, empty, ranges)[1])
    return (b_lo, b_hi), (0, c_hi)


def _lower_hull(points: list[tuple[int, int]]) -> list[tuple[Fraction, Fraction]]:
    """Facets ``C >= a + s B`` (as (s, a)) of the lower convex hull of integer points."""
    hull: list[tuple[int, int]] = []
    for pt in sorted(points):
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (y2 - y1) * (pt[0] - x1) >= (pt[1] - y1) * (x2 - x1):
                hull.pop()  # hull[-1] is on or above the segment hull[-2] -> pt
            else:
                break
        hull.append(pt)
    if len(hull) == 1:
        return [(Fraction(0), Fraction(hull[0][1]))]
    facets = []
    for (x1, y1), (x2, y2) in itertools.pairwise(hull):
        s = Fraction(y2 - y1, x2 - x1)
        facets.append((s, y1 - s * x1))
    return facets


def _staircase(
    rhs: int, floor: bool, p: int, q: int, b_range: tuple[int, int], c_range: tuple[int, int]
) -> list[tuple[int, int]]:
    """The extreme integer points ``(B, C)`` of ``q C - p B (>= or <=) rhs`` in the ranges.

    Floor: for each admissible integer B the least C, ``ceil((rhs + p B) / q)``. Ceiling: the
    most C, ``floor((rhs + p B) / q)``, negated (so that both are lower hulls).
    """
    points: list[tuple[int, int]] = []
    for b in range(b_range[0], b_range[1] + 1):
        if floor:
            c = max(c_range[0], -((-(rhs + p * b)) // q))
            if c <= min(c_range[1], b):
                points.append((b, c))
        else:
            c = min(c_range[1], b, (rhs + p * b) // q)
            if c >= c_range[0]:
                points.append((b, -c))
    return points


def hull_cuts(
    share: ShareRow, b_range: tuple[int, int], c_range: tuple[int, int]
) -> list[LinearCut] | None:
    """Facets of the integer hull of one share row's staircase; None if it has no point.

    Floor ``q C - p B >= rhs``: the lower hull of the staircase's points bounds C from below.
    A ceiling bounds C from above by the upper hull of its points (the lower hull of the
    negated points, `_staircase`).
    """
    row, p, q = share.row, share.p, share.q
    floor = row.sense == ">="
    points = _staircase(row.rhs, floor, p, q, b_range, c_range)
    if not points:
        return None
    cuts = []
    in_counted = share.in_counted
    for s, a in _lower_hull(points):
        # floor: C >= a + s B  ->  den C - num B >= den a ; ceiling: -C >= a + s B
        den = math.lcm(s.denominator, a.denominator)
        num_b, rhs = int(s * den), int(a * den)
        coef_c = den if floor else -den
        outside, inside = -num_b, coef_c - num_b  # a base triple's, counted or not
        if outside == 0 and inside == 0:
            continue
        # written in their compact dtype at once (mostly int8): a Paris-sized round's root
        # cuts span tens of millions of triples each
        dtype = compact_int(np.array([outside, inside])).dtype
        coef = np.where(in_counted, dtype.type(inside), dtype.type(outside))
        idx = share.base.idx
        if outside == 0 or inside == 0:
            keep = coef != 0
            idx, coef = idx[keep], coef[keep]
            if len(idx) == 0:
                continue
        cuts.append(LinearCut(idx, coef, ">=", rhs, f"hull:{row.name}"))
    return cuts


def unreachable_conflicts(
    inst: RoundInstance, triples: Triples, rows: list[QuotaRow]
) -> list[tuple[str, list[str]]]:
    """The rules out of reach in this round, read off the share rows' count ranges.

    Each as (rule id, the names ``flux_band[r]`` of the bands its proof needs), by rule id.

    Why: when the year so far has left a share quota short (a floor that needs more counted
    allocations than this round can give), the LP relaxation restricted to its first columns is
    infeasible and proving it over a million triples takes long. The ranges of a row's base and
    counted aggregates (`aggregates`, valid for every solution) already show it when the
    staircase `hull_cuts` has no integer point in them. Each such rule is named with the flux
    bands its proof needs: every band of the round, then each left out (in name order) while
    the ranges without it still put the rule out of reach, so that the rule and the bands
    named are enough for infeasibility, as a CP-SAT core would say, and no named band can be
    left out of that proof. Before, the bands of the base's réservataires were named whether
    the proof needed them or not (a floor that needs 14 priority households of a 12-unit
    round was named with the collectivité's band; the full model names the floor alone).
    Every rule out of reach is named, not the first: a planner then sees them all at once (a
    round with two floors out of reach named one, and the other only after the first was
    fixed).
    """
    coverage = _Coverage.of(len(inst.units), len(inst.reservataires), triples)
    empty = len(inst.units)  # as in `share_rows`: no floor on the allocations
    shares, _ = _row_aggregates(triples, rows, coverage, empty, label_ranges(inst))
    bands = inst.bands()
    conflicts: dict[str, set[str]] = {}
    for share in (s for s in shares if not _reachable(s, 0)):
        needed = dict(bands)
        row = share.row
        for band in sorted(bands):
            without = {k: v for k, v in needed.items() if k != band}
            b, c = _count_ranges(
                triples, coverage, share.base.idx, share.counted.idx, empty,
                label_ranges(inst, without),
            )  # fmt: skip
            if not _staircase(row.rhs, row.sense == ">=", share.p, share.q, b, c):
                needed = without
        named = conflicts.setdefault(row.rule.id, set())  # a rule's rows: one conflict
        named |= {f"flux_band[{k}]" for k in needed}
    return [(rule, sorted(conflicts[rule])) for rule in sorted(conflicts)]


def least_shortfalls(inst: RoundInstance, triples: Triples, rows: list[QuotaRow]) -> dict[str, int]:
    """The least shortfall each share floor must have in every solution, by row name (if > 0).

    A floor row's shortfall ``s`` shifts it to ``q C - p B >= rhs - q s``; the least ``s`` for
    which that staircase has an integer point in the row's count ranges (`aggregates`, valid
    for every solution) is a lower bound on the row's shortfall in every solution. Floors only:
    they are what a year so far leaves out of reach.
    """
    shares = share_rows(inst, triples, rows)
    least: dict[str, int] = {}
    for share in shares:
        if share.row.sense != ">=":
            continue
        if _reachable(share, 0):
            continue
        low, high = 0, max(1, share.row.max_shortfall())
        if not _reachable(share, high):
            continue  # out of reach whatever the shortfall: leave it to the soft path
        while high - low > 1:  # reachable at high, not at low
            mid = (low + high) // 2
            low, high = (low, mid) if _reachable(share, mid) else (mid, high)
        least[share.row.name] = high
    return least


def _reachable(share: ShareRow, shortfall: int) -> bool:
    """Whether the row, shifted by ``shortfall``, has an integer point in its count ranges."""
    row = share.row
    b = (share.base.low, share.base.high)
    c = (share.counted.low, share.counted.high)
    rhs = row.rhs - row.slack * shortfall
    return bool(_staircase(rhs, row.sense == ">=", share.p, share.q, b, c))
