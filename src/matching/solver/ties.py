"""The policy's tie-break among households of equal standing, applied to a solved round (A5).

Why: the stages (shortfall, allocations, score) leave many optima when several households of
one score could take a unit, and the search returns whichever it meets first. Which one that
was depended on the row order of the input tables: the same January round with its demand
table reversed housed a household filed in 2019 where the given order housed one of the same
score filed in 2021, against the policy's ``tie_break`` (``-score, filed_on, ...``).

So a solution is polished: a housed household gives way to an unhoused one that
- is eligible for the same unit, in the pool of the same réservataire (the unit's orientation
  is kept);
- stands equal on everything the optimum weighs: the same score (when the score is a stage)
  and the same reading by every quota rule on that unit and réservataire (in the rule's base
  or not, counted or not, in the same scope group), so that every quota count, every stage
  value and the proof stay exactly as they were;
- comes first in the policy's tie-break order (`RoundInstance.tie_rank`).

Swaps repeat until none applies, the units in order and each unit's best candidate first: each
swap lowers one housed rank, so it ends. The result guarantees that no housed household can be
replaced, alone, by one of equal standing that the tie-break puts first. It does not compare
households that quotas count differently (a Q1 household against a non-Q1 one of the same
score): swapping those changes a quota's count, which is the stages' business, not the
tie-break's.

Why on that unit, not the household's profile over every unit (`household_profiles`, until
the sixteenth session): the profile tells a priority household from another wherever a
priority floor exists, so on a unit of the État's staff share, which no priority floor reads,
a priority household filed 12 months ago kept the unit against one of the same score filed
32 months ago, against the tie-break (DOMAIN A5: the older filing first).
"""

from __future__ import annotations

import numpy as np

from matching.policy.conditions import Condition
from matching.solver.instance import RoundInstance, table_codes, table_holds
from matching.types import Stage


def prefer_tie_break(
    inst: RoundInstance, unit: np.ndarray, demand: np.ndarray, res: np.ndarray
) -> tuple[np.ndarray, int]:
    """The allocated households after the tie-break's swaps, and how many swaps were made.

    ``unit``, ``demand``, ``res`` are a solution's allocations (positions; ``res`` -1 for a
    unit outside the flux); the returned demand positions are in the same order.
    """
    n_units, n_demands = len(inst.units), len(inst.demands)
    if len(unit) == 0 or len(inst.pair_unit) == 0:
        return demand.copy(), 0
    holder = np.full(n_units, -1, dtype=np.int64)  # the household housed in each unit
    holder[unit] = demand
    res_of = np.full(n_units, -1, dtype=np.int64)
    res_of[unit] = res
    rank = inst.tie_rank
    # the candidates: pairs on an allocated unit whose household stands equal to its holder's
    # and comes first; read per unit (the holder's rank and score), the most selective test
    # first, so that a Paris-sized round's 27 million pairs are read twice, not gathered again
    pair_unit, pair_demand = inst.pair_unit, inst.pair_demand
    if Stage.SCORE in inst.policy.objective.stages:
        score_at = np.full(n_units, np.iinfo(np.int64).min, dtype=np.int64)
        score_at[unit] = inst.scores[demand]
        on = np.flatnonzero(inst.scores[pair_demand] == score_at[pair_unit])
    else:
        on = np.flatnonzero(holder[pair_unit] >= 0)
    rank_at = np.full(n_units, -1, dtype=np.int64)  # no household ranks before -1: none
    rank_at[unit] = rank[demand]
    on = on[rank[pair_demand[on]] < rank_at[pair_unit[on]]]
    pu, pd_ = pair_unit[on], pair_demand[on]
    d0 = holder[pu]
    keep = _read_alike(inst, pu, res_of[pu], pd_, d0)
    pu, pd_, pools = pu[keep], pd_[keep], inst.pair_pools[on[keep]]
    r0 = res_of[pu]
    in_pool = r0 < 0  # a unit outside the flux: any eligible household
    for i in range(len(inst.policy.reservataires)):
        mine = r0 == i
        if not mine.any():
            continue
        # the pair's pools keep the law (the État's share: priority households only)
        ok = ((pools[mine] >> i) & 1) == 1
        in_pool[np.flatnonzero(mine)[ok]] = True
    pu, pd_ = pu[in_pool], pd_[in_pool]
    if len(pu) == 0:
        return demand.copy(), 0
    order = np.lexsort((rank[pd_], pu))  # by unit, then the tie-break
    pu, pd_ = pu[order], pd_[order]
    starts = np.flatnonzero(np.r_[True, pu[1:] != pu[:-1]])
    ends = np.r_[starts[1:], len(pu)]
    housed = np.zeros(n_demands, dtype=bool)
    housed[demand] = True
    swaps = 0
    changed = True
    while changed:  # each swap lowers a housed rank: at most (candidates) swaps in all
        changed = False
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            u = int(pu[a])
            current = int(holder[u])
            for c in pd_[a:b].tolist():
                if rank[c] >= rank[current]:
                    break
                if not housed[c]:
                    housed[current], housed[c] = False, True
                    holder[u] = c
                    swaps += 1
                    changed = True
                    break
    return holder[unit], swaps


def _read_alike(
    inst: RoundInstance, unit: np.ndarray, res: np.ndarray, new: np.ndarray, old: np.ndarray
) -> np.ndarray:
    """Whether every quota rule reads household ``new`` as ``old`` on ``unit`` through ``res``.

    Per rule: both in its base or both out, both counted or both not, and in the same
    ``demand.*`` scope group when in the base (a ``unit.*`` or réservataire group is the
    unit's). Then giving the unit to ``new`` instead of ``old`` changes no quota row.
    ``res`` is -1 for a unit outside the flux (the réservataire table's last entry, none).
    """
    same = np.ones(len(unit), dtype=bool)
    for rule in inst.policy.quotas.rules:
        base_new, base_old = _holds(inst, rule.base, unit, res, new, old)
        count_new, count_old = _holds(inst, rule.count, unit, res, new, old)
        same &= base_new == base_old
        same &= (base_new & count_new) == (base_old & count_old)
        if rule.scope is not None and rule.scope.startswith("demand."):
            codes = table_codes(inst, rule.scope)[0]
            same &= ~base_new | (codes[new] == codes[old])
    return same


def _holds(
    inst: RoundInstance,
    conditions: tuple[Condition, ...],
    unit: np.ndarray,
    res: np.ndarray,
    new: np.ndarray,
    old: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Whether all ``conditions`` hold for the allocations (unit, res, new) and (unit, res, old)."""
    shared = np.ones(len(unit), dtype=bool)
    for_new, for_old = shared.copy(), shared.copy()
    for cond in conditions:
        holds = table_holds(inst, cond)
        if cond.field.startswith("demand."):
            for_new &= holds[new]
            for_old &= holds[old]
        elif cond.field.startswith("unit."):
            shared &= holds[unit]
        else:  # reservataire, in_flux: by réservataire, none last
            shared &= holds[res]
    return shared & for_new, shared & for_old
