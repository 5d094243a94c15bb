"""The CALEOL shortlist of each allocated unit: the allocated household and ranked substitutes.

The commission examines at least three demands per unit, except when there are not enough
candidates (CCH R441-3, DOMAIN A6, B6), and ranks them: if the first refuses the offer, the unit
goes to the second, then the third. For each allocated unit, `shortlists` lists:

- rank 1: the household the round allocated the unit to;
- ranks 2..size: the best-ranked households (score, then the policy's tie-break order, as the
  solver breaks ties: `matching.round.tie_rank`; or the allocation policy's own order when one
  is given, as the `seniority` and `bands` policies rank by filing date or band) that are
  eligible for the unit, in the pool of
  the réservataire the unit is oriented to (the landlord's households for a unit excluded from
  the flux), not allocated in this round, and such that giving the unit to that household
  instead, everything else unchanged, keeps every quota satisfied.

The quota condition is proven exactly, not by re-solving: each quota rule in each scope group is
an integer line (`matching.solver.lines`) whose value is evaluated once for the allocation;
substituting household d for the allocated d0 on unit u changes a line only by the difference
of the two triples' coefficients (each in at most one group of a rule, so at most two lines per
rule move). A candidate is kept when no line's shortfall grows: with hard quotas met, every
quota stays met; after a soft-mode round with a reported shortfall, the substitution does not
make it worse. Orientation, flux bands, pools and eligibility are unchanged by construction, so
the substituted allocation passes the independent checker exactly when the original does.

When fewer than ``size`` households can be listed, one more row for the unit says why (its
``demand_id`` is empty and ``score`` missing), with the first code that applies:

- ``quota_would_break``: some eligible households of the pool are free, but substituting them
  would break a quota (or deepen a reported shortfall);
- ``no_other_eligible``: the allocated household is the only one of the pool eligible for the
  unit;
- ``pool_exhausted``: otherwise: every other eligible household of the pool is listed or
  allocated to another unit in this round.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matching import checker
from matching.arguments import round_arguments
from matching.exceptions import DataError, RowProblem
from matching.flux import YearSoFar
from matching.policy.model import Policy
from matching.result import Result
from matching.round import PreparedRound, prepare_round
from matching.solver.instance import RoundInstance, Triples, build_triples
from matching.solver.lines import QuotaLines, quota_lines

SHORTLIST_COLUMNS: tuple[str, ...] = ("unit_id", "rank", "demand_id", "score", "reason")
"""Columns of a shortlist table, in order."""

QUOTA_WOULD_BREAK = "quota_would_break"
POOL_EXHAUSTED = "pool_exhausted"
NO_OTHER_ELIGIBLE = "no_other_eligible"

SHORTLIST_REASONS: dict[str, str] = {
    QUOTA_WOULD_BREAK: "eligible households of the pool are free, but giving one of them the "
    "unit instead would break a quota",
    NO_OTHER_ELIGIBLE: "the allocated household is the only one of the pool eligible for the unit",
    POOL_EXHAUSTED: "every other eligible household of the pool is listed or allocated to "
    "another unit",
}
"""Why a unit has fewer candidates than asked, by code (the ``reason`` column)."""


def shortlists(
    units: pd.DataFrame,
    demands: pd.DataFrame,
    policy: Policy | str | Path,
    result: Result,
    *,
    year_so_far: YearSoFar | Mapping[str, Any] | None,
    on: dt.date | str,
    size: int = 3,
    prepared: PreparedRound | None = None,
    ranking: Callable[[RoundInstance], np.ndarray] | None = None,
) -> pd.DataFrame:
    """Ranked candidates of each allocated unit, each one a valid substitute (module docstring).

    Parameters
    ----------
    units, demands
        The round's canonical tables.
    policy
        The policy whose quotas a substitution must keep (its hard rules, whatever the mode):
        a `Policy`, a bundled name or a path, as `matching.round.solve` takes it.
    result
        The round's result: its ``allocation`` (unit_id, demand_id, reservataire).
    year_so_far
        Earlier rounds of the year, counted in the quotas as the round counted them (a
        `YearSoFar` or a mapping, as `solve` takes it).
    on
        The round's date (a date or ``"YYYY-MM-DD"``).
    size
        Candidates wanted per unit, the allocated household included (3 in a CALEOL).
    prepared
        The round already prepared with this policy (`matching.round.prepare_round`), to save
        preparing it again; None prepares it.
    ranking
        The order in which the allocation policy ranks households (each demand position's
        rank, 0 first: a greedy policy's ``rank``, `matching.allocation.greedy.RankKey`);
        substitutes follow it. None: the cotation's order (score, then the tie-break). Why: a
        year played under ``seniority`` gave a refused unit to the best score, not to the
        household that filed first, so the policy a researcher compared was part cotation.

    Returns
    -------
    pandas.DataFrame
        Columns `SHORTLIST_COLUMNS`, sorted by unit_id then rank: ``rank`` 1..size, ``score``
        nullable Int64, ``reason`` empty for a candidate or a code of `SHORTLIST_REASONS` on
        the one extra row of a unit with fewer than ``size`` candidates.

    Raises
    ------
    DataError
        An allocation row names a unit, household or réservataire that the round cannot
        allocate that way (the result is not of this round).
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    # the forms `solve` takes (a policy name failed with an AttributeError on 'str')
    policy, on_date, year_so_far = round_arguments(policy, on, year_so_far)
    if on_date is None:
        raise TypeError("on: the round's date is required (a date or 'YYYY-MM-DD')")
    on = on_date
    if prepared is None and _same_round(result.prepared, units, demands, policy, on, year_so_far):
        prepared = result.prepared
    if prepared is None:
        prepared = prepare_round(units, demands, policy, on=on, year_so_far=year_so_far)
    inst = prepared.instance
    where = _positions(inst, result)
    # only the allocated units' blocks can hold a candidate: the triples of the round through
    # the réservataire each unit went to (a monthly round: 0.55 of its 1.34 million triples)
    triples = build_triples(_allocated_blocks(inst, where))  # by unit, réservataire, rank
    lines = quota_lines(inst, triples)
    chosen = _allocated_triples(inst.reservataires, triples, result, where)
    n_units = len(inst.units)
    # the allocated triple of each unit (-1 when the unit is not allocated)
    of_unit = np.full(n_units, -1, dtype=np.int64)
    of_unit[triples.unit[chosen]] = chosen
    taken = np.zeros(len(inst.demands), dtype=bool)
    taken[triples.demand[chosen]] = True
    mine = of_unit[triples.unit]
    alternative = (mine >= 0) & (triples.res == triples.res[np.maximum(mine, 0)])
    alternative &= triples.demand != triples.demand[np.maximum(mine, 0)]
    others = np.flatnonzero(alternative)  # same unit, same réservataire, another household
    free = others[~taken[triples.demand[others]]]
    keep = free[_keeps_quotas(lines, chosen, free, of_unit[triples.unit[free]])]
    if ranking is not None:  # by unit (stays sorted), then the allocation policy's order
        order = np.asarray(ranking(inst))[triples.demand[keep]]
        keep = keep[np.lexsort((order, triples.unit[keep]))]
    # keep is sorted by unit then the ranking: the first size - 1 of each unit are listed
    unit_of = triples.unit[keep]
    start = np.searchsorted(unit_of, unit_of, side="left")
    rank = np.arange(len(keep)) - start + 2
    listed = keep[rank <= size]
    listed_rank = rank[rank <= size]
    return _table(inst, triples, chosen, listed, listed_rank, others, free, keep, size)


@dataclass(frozen=True)
class _Where:
    """Each allocation row's unit, demand and réservataire position in the round.

    -1 when unknown; the réservataire is -1 for a unit excluded from the flux, -2 when unknown.
    """

    unit: np.ndarray
    demand: np.ndarray
    res: np.ndarray


def _positions(inst: RoundInstance, result: Result) -> _Where:
    """Resolve the result's allocation rows against the round's tables, as the checker does."""
    resolved = checker.resolve_allocation(inst.units, inst.demands, result.allocation)
    res = pd.Index(["", *inst.reservataires]).get_indexer(pd.Index(resolved.reservataire)) - 1
    return _Where(resolved.unit_pos, resolved.demand_pos, res.astype(np.int64))


def _allocated_blocks(inst: RoundInstance, where: _Where) -> RoundInstance:
    """The round with only the pairs of allocated units, through the réservataires they went to.

    A candidate shares its unit and réservataire with the allocated triple, and the quota lines
    only move by the allocated and candidate triples' coefficients, so every triple outside
    these (unit, réservataire) blocks is irrelevant. A pair of a flux unit keeps only the pool
    bits of its unit's allocation rows; the pairs of an allocated unit excluded from the flux
    are kept as they are. An allocation row the round cannot make still finds no triple.
    """
    n_units = len(inst.units)
    ok = where.unit >= 0
    allocated = np.zeros(n_units, dtype=bool)
    allocated[where.unit[ok]] = True
    bits = np.zeros(n_units, dtype=np.uint16)
    through = ok & (where.res >= 0)
    np.bitwise_or.at(bits, where.unit[through], (1 << where.res[through]).astype(np.uint16))
    flux = inst.flux_units[inst.pair_unit]
    pools = np.where(flux, inst.pair_pools & bits[inst.pair_unit], inst.pair_pools)
    keep = allocated[inst.pair_unit] & (~flux | (pools != 0))
    return dataclasses.replace(
        inst,
        pair_unit=inst.pair_unit[keep],
        pair_demand=inst.pair_demand[keep],
        pair_pools=pools[keep].astype(inst.pair_pools.dtype),
    )


def _allocated_triples(
    reservataires: tuple[str, ...], triples: Triples, result: Result, where: _Where
) -> np.ndarray:
    """Index in ``triples`` of each allocation row of the result."""
    alloc = result.allocation
    unit_pos, demand_pos, res_pos = where.unit, where.demand, where.res
    # the triples come in (unit, réservataire) blocks (`build_triples`): search each allocation
    # in its block only (a hash of every triple's key took 80 ms a round on a monthly round)
    n_res = len(reservataires) + 1
    block = triples.unit.astype(np.int64) * n_res + triples.res + 1
    wanted = unit_pos.astype(np.int64) * n_res + res_pos + 1
    starts = np.searchsorted(block, wanted, side="left")
    ends = np.searchsorted(block, wanted, side="right")
    found = np.full(len(wanted), -1, dtype=np.int64)
    spans = zip(starts.tolist(), ends.tolist(), demand_pos.tolist(), strict=True)
    for i, (lo, hi, d) in enumerate(spans):
        at = np.flatnonzero(triples.demand[lo:hi] == d)
        if len(at):
            found[i] = lo + int(at[0])
    bad = (found < 0) | (unit_pos < 0) | (demand_pos < 0) | (res_pos < -1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(
            [
                RowProblem(
                    "allocation", int(i) + 1, "unit_id", str(alloc["unit_id"].iloc[i]),
                    f"unit {alloc['unit_id'].iloc[i]} cannot go to demand "
                    f"{alloc['demand_id'].iloc[i]} through '{alloc['reservataire'].iloc[i]}' "
                    "in this round",
                )
                for i in rows
            ]
        )  # fmt: skip
    return found.astype(np.int64)


def _keeps_quotas(
    lines: QuotaLines, chosen: np.ndarray, cand: np.ndarray, replaced: np.ndarray
) -> np.ndarray:
    """Whether substituting each candidate triple for the one it replaces grows no shortfall.

    Each rule moves at most two lines: the replaced triple leaves its line, the candidate
    enters its own (the same one unless the rule's scope depends on the household).
    """
    values = lines.values_of(chosen)
    short = lines.shortfall(np.arange(len(lines)), values)
    ok = np.ones(len(cand), dtype=bool)
    new_cls, old_cls = lines.cls[cand], lines.cls[replaced]
    for j in range(lines.n_rules):
        old_line, new_line = lines.line[j, old_cls], lines.line[j, new_cls]
        old_coef, new_coef = lines.coef[j, old_cls], lines.coef[j, new_cls]
        same = old_line == new_line
        # the replaced triple's line loses its coefficient (and gains the candidate's if same)
        moved = old_line >= 0
        rows = old_line[moved]
        delta = np.where(same[moved], new_coef[moved], 0) - old_coef[moved]
        ok[moved] &= lines.shortfall(rows, values[rows] + delta) <= short[rows]
        # the candidate's own line, when it differs, gains the candidate's coefficient
        enters = (new_line >= 0) & ~same
        rows = new_line[enters]
        ok[enters] &= lines.shortfall(rows, values[rows] + new_coef[enters]) <= short[rows]
    return ok


def _table(
    inst: RoundInstance,
    triples: Triples,
    chosen: np.ndarray,
    listed: np.ndarray,
    listed_rank: np.ndarray,
    others: np.ndarray,
    free: np.ndarray,
    keep: np.ndarray,
    size: int,
) -> pd.DataFrame:
    """Assemble the table: allocated rows, candidate rows, and one reason row where short."""
    units, scores = inst.units, inst.scores
    unit_ids = units["unit_id"].to_numpy(dtype=object)
    demand_ids = inst.demands["demand_id"].to_numpy(dtype=object)
    rows_t = np.concatenate([chosen, listed])
    ranks = np.concatenate([np.ones(len(chosen), dtype=np.int64), listed_rank])
    n_units = len(units)
    counts = np.bincount(triples.unit[listed], minlength=n_units) + np.bincount(
        triples.unit[chosen], minlength=n_units
    )
    allocated = np.zeros(n_units, dtype=bool)
    allocated[triples.unit[chosen]] = True
    short = np.flatnonzero(allocated & (counts < size))
    n_others = np.bincount(triples.unit[others], minlength=n_units)
    n_free = np.bincount(triples.unit[free], minlength=n_units)
    n_keep = np.bincount(triples.unit[keep], minlength=n_units)
    reason = np.where(
        n_free[short] > n_keep[short],
        QUOTA_WOULD_BREAK,
        np.where(n_others[short] == 0, NO_OTHER_ELIGIBLE, POOL_EXHAUSTED),
    )
    candidates = pd.DataFrame(
        {
            "unit_id": unit_ids[triples.unit[rows_t]],
            "rank": ranks,
            "demand_id": demand_ids[triples.demand[rows_t]],
            "score": pd.array(scores[triples.demand[rows_t]], dtype="Int64"),
            "reason": np.full(len(rows_t), "", dtype=object),
        }
    )
    missing = pd.DataFrame(
        {
            "unit_id": unit_ids[short],
            "rank": counts[short].astype(np.int64) + 1,
            "demand_id": np.full(len(short), "", dtype=object),
            "score": pd.array([None] * len(short), dtype="Int64"),
            "reason": reason.astype(object),
        }
    )
    table = pd.concat([candidates, missing], ignore_index=True)
    table["unit_id"] = table["unit_id"].astype(object)
    table["demand_id"] = table["demand_id"].astype(object)
    table["reason"] = table["reason"].astype(object)
    return table.sort_values(["unit_id", "rank"], kind="stable").reset_index(drop=True)[
        list(SHORTLIST_COLUMNS)
    ]


def _same_round(
    prepared: PreparedRound | None,
    units: pd.DataFrame,
    demands: pd.DataFrame,
    policy: Policy,
    on: dt.date,
    year_so_far: YearSoFar | None,
) -> bool:
    """Whether the result's own prepared round is this round (same tables, policy, date, year).

    The quotas' mode may differ: a round solved in soft mode because its hard quotas conflict
    (`matching.allocation.optimal`) is shortlisted with the hard policy, and neither the
    preparation nor a shortlist reads the mode (a substitution never grows a line's shortfall,
    whatever the mode). It was prepared again: 5 times in the simulated Caen la Mer year.
    """
    if prepared is None:
        return False
    inst = prepared.instance
    return (
        _same_but_mode(inst.policy, policy)
        and prepared.on == on
        and inst.year_so_far == (year_so_far or YearSoFar())
        and len(inst.units) == len(units)
        and len(inst.demands) == len(demands)
        and inst.units["unit_id"].equals(pd.Series(units["unit_id"]).reset_index(drop=True))
        and inst.demands["demand_id"].equals(pd.Series(demands["demand_id"]).reset_index(drop=True))
    )


def _same_but_mode(a: Policy, b: Policy) -> bool:
    """The same policy, or the same but for its quotas' mode."""
    if a is b or a == b:
        return True
    if a.quotas.mode == b.quotas.mode:
        return False
    same_mode = a.quotas.model_copy(update={"mode": b.quotas.mode})
    return a.model_copy(update={"quotas": same_mode}) == b
