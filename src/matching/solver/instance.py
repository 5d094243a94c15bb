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
import scipy.sparse as sp

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
    """Expand pairs by pool bits into triples, each placed straight at its sorted position.

    Sorting cost matters at scale (18.9 million triples for a pooled year, 70 million for a
    Paris-sized round). The pairs are put in (unit, tie rank) order once (`pairs_by_rank`); a
    réservataire's selected pairs are then in order too, and those of unit u go to the
    (u, réservataire) run, a contiguous block: the unit and réservataire columns are runs
    (`np.repeat`), and only the households are moved, with no sort or regrouping of the
    triples (the concatenation and counting sort of the triples took 1.2 s on the pooled year).
    """
    by_rank = pairs_by_rank(inst)
    pair_unit, pair_demand = inst.pair_unit[by_rank], inst.pair_demand[by_rank]
    pair_pools = inst.pair_pools[by_rank]
    del by_rank
    n_units, n_res = len(inst.units), len(inst.policy.reservataires)
    # the pairs of unit u are [unit_start[u], unit_start[u + 1])
    unit_start = np.searchsorted(pair_unit, np.arange(n_units + 1))
    selections = triple_selections(inst, pair_unit, pair_demand, pair_pools)
    del pair_unit, pair_pools
    # a selection's pairs on unit u: a binary search per unit boundary (the pairs are sorted)
    counts = np.stack([np.diff(np.searchsorted(idx, unit_start)) for idx in selections], axis=1)
    runs = counts.ravel()  # unit-major, then réservataire: the triples' order
    run_start = np.zeros(len(runs), dtype=np.int64)
    np.cumsum(runs[:-1], out=run_start[1:])
    n = int(runs.sum())
    dtype = index_dtype(n)
    unit = np.repeat(np.arange(n_units, dtype=np.int32), counts.sum(axis=1))
    res = np.repeat(np.tile(np.arange(-1, n_res, dtype=np.int16), n_units), runs)
    demand = np.empty(n, dtype=np.int32)
    start_of = run_start.reshape(counts.shape)  # the run of (unit, column c)
    for c, idx in enumerate(selections):
        # the k-th selected pair goes to its unit's run start plus its rank on that unit
        first = np.zeros(n_units, dtype=np.int64)  # selected pairs on the units before u
        np.cumsum(counts[:-1, c], out=first[1:])
        dest = np.repeat((start_of[:, c] - first).astype(dtype), counts[:, c])
        dest += np.arange(len(idx), dtype=dtype)
        demand[dest] = pair_demand[idx]
    scores = inst.scores
    if len(scores) and np.abs(scores).max() < 2**31:  # int32: 280 MB less on a Paris-sized round
        scores = scores.astype(np.int32)
    return Triples(unit, demand, res, scores[demand])


def triple_selections(
    inst: RoundInstance, pair_unit: np.ndarray, pair_demand: np.ndarray, pair_pools: np.ndarray
) -> list[np.ndarray]:
    """The pairs (positions, sorted) that give a triple with each réservataire column.

    Column 0 is NONE (the pairs of units outside the flux), column ``i + 1`` réservataire ``i``
    (the pairs of flux units whose pools hold it), as in `unit_res_key`. The pools already
    keep the law (a pool condition on `priority`, which an explicit `pools` list cannot lift:
    `matching.eligibility.proposable_pools`), so they are read as they are.
    """
    flux = inst.flux_units[pair_unit]
    selections: list[np.ndarray] = [np.flatnonzero(~flux)]
    for i in range(len(inst.policy.reservataires)):
        selections.append(np.flatnonzero(flux & (((pair_pools >> i) & 1) == 1)))
    return selections


def pairs_by_rank(inst: RoundInstance) -> np.ndarray:
    """The order of the pairs by (unit, tie rank), the rank being unique within a unit.

    The eligible pairs come grouped by unit (`matching.eligibility`): then each unit's pairs
    are ordered by a transposition through a sparse matrix, O(pairs) (0.27 s on the pooled
    year's 7.3 million pairs, against 0.35-0.45 s for an argsort of a composite key, which is
    kept for pairs in any other order; 1.6 s against 2.3 s on a Paris-sized round's 27
    million), with int32 indices (int64 ones are copied by scipy).
    """
    pair_unit = inst.pair_unit
    n_units, n_demands = len(inst.units), max(1, len(inst.demands))
    narrow = index_dtype(max(len(pair_unit), n_demands))
    rank = inst.tie_rank.astype(narrow)[inst.pair_demand]
    if len(pair_unit) and bool((pair_unit[1:] >= pair_unit[:-1]).all()):
        indptr = np.searchsorted(pair_unit, np.arange(n_units + 1)).astype(narrow)
        index = np.arange(len(pair_unit), dtype=narrow)
        by_unit = sp.csr_matrix((index, rank, indptr), shape=(n_units, n_demands))
        return by_unit.tocsc().tocsr().data  # CSR conversions emit sorted indices
    return np.argsort(pair_unit.astype(np.int64) * n_demands + rank)


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


def field_table(inst: RoundInstance, name: str) -> pd.Series:
    """The values of field ``name`` on its own table: units, demands or réservataires.

    Evaluating a condition on the few hundred units (or 5 réservataires) and broadcasting is
    much cheaper than materialising a column per triple (1.3 million on a monthly round). The
    réservataire table ends with NONE (""), not in the flux.
    """
    if name == "reservataire":
        return pd.Series([*inst.reservataires, ""], dtype=object)
    if name == "in_flux":
        return pd.Series([True] * len(inst.reservataires) + [False])
    if name.startswith("unit."):
        return inst.units[name[5:]].reset_index(drop=True)
    if name.startswith("demand."):
        return inst.demands[name[7:]].reset_index(drop=True)
    raise KeyError(name)


def table_holds(inst: RoundInstance, cond: Condition) -> np.ndarray:
    """Whether ``cond`` holds, by row of its field's own table (`field_table`)."""
    return evaluate((cond,), pd.DataFrame({cond.field: field_table(inst, cond.field)}))


def table_codes(inst: RoundInstance, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Each row's code for field ``name`` as text on its own table, and the text of each code."""
    text = field_table(inst, name).astype(str).to_numpy(dtype=object)
    labels, codes = np.unique(text, return_inverse=True)
    return codes.ravel(), labels


def _table_row(triples: Triples, name: str, at: np.ndarray | None = None) -> np.ndarray:
    """Each triple's row in the table of field ``name`` (NONE, -1, reads the last entry)."""
    if name in ("reservataire", "in_flux"):
        return _at(triples.res, at)
    if name.startswith("unit."):
        return _at(triples.unit, at)
    if name.startswith("demand."):
        return _at(triples.demand, at)
    raise KeyError(name)


def _at(values: np.ndarray, at: np.ndarray | None) -> np.ndarray:
    return values if at is None else values[at]


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
    inst: RoundInstance,
    triples: Triples,
    conditions: tuple[Condition, ...],
    at: np.ndarray | None = None,
) -> np.ndarray:
    """Where every condition holds, by triple (the same as `evaluate` on `triple_fields`).

    With ``at``, only for the triples at those positions (a rule's counted condition is only
    read on its base: on the pooled year, a fifth of the cost of reading it everywhere).
    """
    mask = np.ones(len(triples) if at is None else len(at), dtype=bool)
    for cond in conditions:
        holds, index = table_holds(inst, cond), _table_row(triples, cond.field, at)
        if len(holds) <= SMALL_TABLE:
            _and_small(mask, holds, index)
        else:
            mask &= holds[index]
    return mask


SMALL_TABLE = 8
"""Up to this many values (the réservataires), a condition is read by comparisons, not a gather.

A gather of 18.9 million triples through their int16 réservataire index takes 50 ms (numpy
converts the index to int64); a comparison 5 ms.
"""


def _and_small(mask: np.ndarray, holds: np.ndarray, index: np.ndarray) -> None:
    """``mask &= holds[index]`` for a small table, by one comparison per value that differs.

    ``index`` may count from the end (NONE, -1, is the last value), as numpy indexing does.
    """
    n = len(holds)
    if holds.all():
        return
    if holds.sum() * 2 <= n:  # few values hold: the OR of theirs
        hit = np.zeros(len(mask), dtype=bool)
        for p in np.flatnonzero(holds).tolist():
            hit |= index == p
            hit |= index == p - n
        mask &= hit
    else:  # few fail: the AND of theirs excluded
        for p in np.flatnonzero(~holds).tolist():
            mask &= index != p
            mask &= index != p - n


def triple_codes(
    inst: RoundInstance, triples: Triples, name: str, at: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each triple's code for field ``name`` as text, and the text of each code.

    With ``at``, only for the triples at those positions, as in `triple_mask`.
    """
    codes, labels = table_codes(inst, name)
    return codes[_table_row(triples, name, at)], labels
