"""The greedy policies: each unit in release order to the first household of a ranked list.

What a landlord without an optimiser does, and what `optimal` is compared against: each unit, in
release order (``released_on``, then ``unit_id``), is oriented and then given to the first
household of a ranked list. The policies differ only in the ranking of households (a
`RankKey`): by score (`greedy_score`), by first filing date (`seniority`), or by band then
banding date (`bands`). The skeleton does the rest, the same way for all of them:

1. **Orientation** (flux units): among the réservataires the flux bands still admit (band not
   full, and the units left can still reach every band's floor, so the bands hold exactly),
   prefer one with a free household for the unit (else the unit stays vacant), then the one
   whose best household hurts the quotas least, then the one furthest behind its share
   (target ``t_r`` of A4 minus units already oriented this round), then policy order. Units
   excluded from the flux are not oriented; the landlord allocates them (A3).
2. **Household**: the first free household of the réservataire's pool, in the policy's order,
   among those that hurt the quotas least. "Hurt" is the increase of the weighted projected
   shortfall: each quota line's deficit after taking the household, less the most that the
   units still to come could recover (each at best one counted allocation; for a line of one
   réservataire, such as its priority floor, only as many units as its flux band can still
   give it). So a household is skipped only when taking it would make a quota unreachable
   given the units left; when none keeps every quota reachable, the one that loses least is
   taken: the unit is filled and the shortfall reported, never left vacant to protect a quota.

The result is a soft-mode `Result` (status ``FEASIBLE``): shortfalls are reported per quota line,
exactly as `matching.policy.quotas.shortfall` and the independent checker compute them, and
`matching.round.build_result` runs that checker on it. The work is one pass over the units;
each step is vectorised over that unit's candidates (no loop over unit x demand pairs). The
skeleton's code is `matching.solver.greedy`, below the exact engine, which also uses it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from matching.flux import YearSoFar
from matching.params import SolveParams
from matching.policy.model import Policy
from matching.result import Result
from matching.round import build_result, prepare_round
from matching.solver.greedy import greedy_round
from matching.solver.greedy import release_order as release_order
from matching.solver.instance import RoundInstance
from matching.types import QuotaMode

RankKey = Callable[[RoundInstance], np.ndarray]
"""The order of households of a greedy policy: each demand position's rank (0 = first)."""


def soft_mode(policy: Policy) -> Policy:
    """The policy with soft quotas: a greedy policy reports its shortfalls instead of failing."""
    return policy.model_copy(
        update={"quotas": policy.quotas.model_copy(update={"mode": QuotaMode.SOFT})}
    )


class GreedyPolicy:
    """A greedy allocation policy: the skeleton of the module docstring with one ranking key.

    Parameters
    ----------
    name
        Policy name used by `matching.allocation.get_policy` and in results (``stats``).
    rank
        The ranking of households: each demand position's rank, 0 = offered first.
    """

    def __init__(self, name: str, rank: RankKey) -> None:
        self.name = name
        self.rank = rank

    def allocate(
        self,
        units: pd.DataFrame,
        demands: pd.DataFrame,
        policy: Policy,
        params: SolveParams,
        *,
        year_so_far: YearSoFar | None,
        on: dt.date,
    ) -> Result:
        """Allocate one round greedily; a checked soft-mode Result with exact shortfalls.

        Raises
        ------
        InfeasibleError
            The flux bands' floors need more flux units than the round has (earlier rounds
            oriented too many units to the landlord); no orientation can satisfy them.
        CheckFailedError
            The independent checker disagrees with the greedy result (a bug).
        """
        start = time.perf_counter()
        prepared = prepare_round(units, demands, soft_mode(policy), on=on, year_so_far=year_so_far)
        solution = greedy_round(prepared.instance, self.rank(prepared.instance), self.name)
        result = build_result(prepared, solution, params, time.perf_counter() - start)
        result.stats.update(allocation_policy=self.name, quota_mode=QuotaMode.SOFT.value)
        return result

    def __repr__(self) -> str:
        return f"GreedyPolicy({self.name!r})"


def by_score(inst: RoundInstance) -> np.ndarray:
    """Rank by the policy's tie-break order: highest score first, then filing date, ... (A5)."""
    return inst.tie_rank


GREEDY_SCORE = GreedyPolicy("greedy_score", by_score)
"""Each unit, in release order, to the highest-score eligible household of its pool."""
