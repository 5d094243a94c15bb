"""The solver's view of a round: admissible triples (unit, demand, réservataire) as arrays.

Built once from the eligible-pair table: each pair of a flux unit is expanded into one triple per
réservataire whose pool holds the household (the unit's orientation decides which one may be
used); a pair of a unit excluded from the flux gives one triple with no réservataire (-1).
Everything downstream (LP certificate, CP-SAT model, extraction) indexes these arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from matching.flux import FluxBand, YearSoFar, flux_bands
from matching.policy.conditions import Condition, evaluate
from matching.policy.model import Policy

NONE = -1
"""Réservataire index of a triple on a unit excluded from the flux."""


@dataclass(frozen=True)
class RoundInstance:
    """One allocation round, fully prepared: tables, scores, pairs, policy and year so far."""

    units: pd.DataFrame
    demands: pd.DataFrame  # with the derived facts (matching.facts)
    scores: np.ndarray  # int64 cotation score per demand position
    policy: Policy
    year_so_far: YearSoFar
    pair_unit: np.ndarray  # int32 positions
    pair_demand: np.ndarray  # int32 positions
    pair_pools: np.ndarray  # uint16 bitmask over policy.reservataires (0 for excluded units)
    tie_rank: np.ndarray = field(repr=False)  # int64: 0 = best household by the tie-break order

    @property
    def reservataires(self) -> tuple[str, ...]:
        """Réservataire ids, in policy order (bit i of a pool mask is réservataire i)."""
        return self.policy.reservataire_ids()

    @property
    def flux_units(self) -> np.ndarray:
        """Boolean mask of the units that are in the flux (oriented to a réservataire)."""
        return self.units["flux_excluded"].to_numpy() == ""

    def bands(self) -> dict[str, FluxBand]:
        """The round's orientation band per réservataire with a share (A4)."""
        return flux_bands(self.policy, int(self.flux_units.sum()), self.year_so_far)


@dataclass(frozen=True)
class Triples:
    """Admissible (unit, demand, réservataire) triples, sorted by unit, réservataire, rank."""

    unit: np.ndarray  # int32
    demand: np.ndarray  # int32
    res: np.ndarray  # int16, NONE for units excluded from the flux
    score: np.ndarray  # int32 (int64 if a score does not fit)

    def __len__(self) -> int:
        return len(self.unit)

    def subset(self, keep: np.ndarray) -> Triples:
        """The triples selected by a boolean mask or an index array."""
        return Triples(self.unit[keep], self.demand[keep], self.res[keep], self.score[keep])


def group_ranks(keys: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal ``keys`` (``keys`` grouped, e.g. sorted).

    ``[4, 4, 7, 7, 7, 9] -> [0, 1, 0, 1, 2, 0]``: with the elements in rank order inside each
    group, ``group_ranks(keys) < k`` keeps the best ``k`` of every group.
    """
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return np.arange(len(keys)) - np.repeat(start, np.diff(np.r_[start, len(keys)]))


def index_dtype(n: int) -> type[np.signedinteger]:
    """int32 for positions below ``n`` when they fit (half the memory of int64), else int64."""
    return np.int32 if n < 2**31 else np.int64


def unit_res_key(unit: np.ndarray, res: np.ndarray, n_res: int) -> np.ndarray:
    """One key per (unit, réservataire), unit-major: sorted triples come grouped by it.

    ``n_res`` bounds the réservataire indices (NONE, -1, is the first of each unit). The key is
    int32 when it fits (`index_dtype`) and computed in place: with int64 copies of both fields
    and their temporaries, its four calls on the pooled year took 1.1 s.
    """
    width = n_res + 1
    key = unit.astype(index_dtype((int(unit.max(initial=0)) + 1) * width))
    key *= width
    key += res
    key += 1
    return key


def build_triples(inst: RoundInstance) -> Triples:
    """Expand pairs by pool bits into triples (vectorised; one pass per réservataire).

    Sorting cost matters at scale (18.9 million triples for a pooled year): the pairs are sorted
    once by (unit, tie rank) with one integer key, so each réservataire's part is already in
    order and a stable sort on the (unit, réservataire) group only merges a few sorted runs.
    """
    n_demands = max(1, len(inst.demands))
    pair_key = inst.pair_unit.astype(np.int64) * n_demands + inst.tie_rank[inst.pair_demand]
    by_rank = np.argsort(pair_key)  # keys are unique: tie_rank is a permutation
    pair_unit, pair_demand = inst.pair_unit[by_rank], inst.pair_demand[by_rank]
    pair_pools = inst.pair_pools[by_rank]
    flux = inst.flux_units[pair_unit]
    parts_u, parts_d, parts_r = [], [], []
    for i, rule in enumerate(inst.policy.reservataires):
        sel = flux & (((pair_pools >> i) & 1) == 1)
        # A pool condition on `priority` is the law (the État's share goes to priority households
        # only): an explicit `pools` list in the demand file cannot override it.
        legal = tuple(c for c in rule.pool if c.field == "priority")
        if legal:
            sel &= evaluate(legal, inst.demands)[pair_demand]
        parts_u.append(pair_unit[sel])
        parts_d.append(pair_demand[sel])
        parts_r.append(np.full(int(sel.sum()), i, dtype=np.int16))
    excl = ~flux
    parts_u.append(pair_unit[excl])
    parts_d.append(pair_demand[excl])
    parts_r.append(np.full(int(excl.sum()), NONE, dtype=np.int16))
    unit = np.concatenate(parts_u).astype(np.int32)
    demand = np.concatenate(parts_d).astype(np.int32)
    res = np.concatenate(parts_r).astype(np.int16)
    order = _grouped_order(unit_res_key(unit, res, len(inst.policy.reservataires)))
    demand = demand[order]
    score = inst.scores[demand]
    if len(score) and np.abs(score).max() < 2**31:  # int32: 280 MB less on a Paris-sized round
        score = score.astype(np.int32)
    return Triples(unit[order], demand, res[order], score)


def _grouped_order(group: np.ndarray) -> np.ndarray:
    """The stable sort order of ``group``, given that each key's elements are contiguous.

    Each key's elements are placed at its offset in key order (a counting sort), in O(n): the
    stable argsort of the pooled year's 18.9 million keys took 1.3 s.
    """
    n = len(group)
    counts = np.bincount(group, minlength=int(group.max(initial=-1)) + 1)
    start = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=start[1:])
    dest = group_ranks(group)  # position within its (contiguous) run
    dest += start[group]
    order = np.empty(n, dtype=np.int64)
    order[dest] = np.arange(n)
    return order


def triple_fields(inst: RoundInstance, triples: Triples, names: set[str]) -> pd.DataFrame:
    """The columns ``names`` (``unit.*``, ``demand.*``, ``reservataire``, ``in_flux``) by triple."""
    cols: dict[str, np.ndarray] = {}
    ids = np.array([*inst.reservataires, ""], dtype=object)
    for name in sorted(names):
        if name == "reservataire":
            cols[name] = ids[np.where(triples.res >= 0, triples.res, len(ids) - 1)]
        elif name == "in_flux":
            cols[name] = triples.res >= 0
        elif name.startswith("unit."):
            cols[name] = inst.units[name[5:]].to_numpy()[triples.unit]
        elif name.startswith("demand."):
            cols[name] = inst.demands[name[7:]].to_numpy()[triples.demand]
    return pd.DataFrame(cols, index=pd.RangeIndex(len(triples)))


def _source(inst: RoundInstance, triples: Triples, name: str) -> tuple[pd.Series, np.ndarray]:
    """The values of field ``name`` on its own table, and each triple's row in that table.

    Evaluating a condition on the few hundred units (or 5 réservataires) and broadcasting is
    much cheaper than materialising a column per triple (1.3 million on a monthly round).
    """
    if name == "reservataire":
        values = pd.Series([*inst.reservataires, ""], dtype=object)
        return values, np.where(triples.res >= 0, triples.res, len(inst.reservataires))
    if name == "in_flux":
        return pd.Series([True, False]), (triples.res < 0).astype(np.int64)
    if name.startswith("unit."):
        return inst.units[name[5:]].reset_index(drop=True), triples.unit
    if name.startswith("demand."):
        return inst.demands[name[7:]].reset_index(drop=True), triples.demand
    raise KeyError(name)


def compact_int(values: np.ndarray) -> np.ndarray:
    """Integer coefficients in the smallest of int8, int16, int32, int64 that holds them.

    Why: a quota row or a cut of a Paris-sized round has tens of millions of coefficients,
    almost all of them -1, 1 or 3; int8 is an eighth of int64. The bounds keep ``-x`` in range
    (``abs`` of the least int8 would overflow).
    """
    largest = int(np.abs(values.astype(np.int64, copy=False)).max(initial=0))
    for dtype in (np.int8, np.int16, np.int32):
        if largest <= np.iinfo(dtype).max:
            return values.astype(dtype, copy=False)
    return values.astype(np.int64, copy=False)


def triple_mask(
    inst: RoundInstance, triples: Triples, conditions: tuple[Condition, ...]
) -> np.ndarray:
    """Where every condition holds, by triple (the same as `evaluate` on `triple_fields`)."""
    mask = np.ones(len(triples), dtype=bool)
    for cond in conditions:
        values, index = _source(inst, triples, cond.field)
        mask &= evaluate((cond,), pd.DataFrame({cond.field: values}))[index]
    return mask


def triple_codes(inst: RoundInstance, triples: Triples, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Each triple's code for field ``name`` as text, and the text of each code."""
    values, index = _source(inst, triples, name)
    labels, codes = np.unique(values.astype(str).to_numpy(dtype=object), return_inverse=True)
    return codes.ravel()[index], labels
