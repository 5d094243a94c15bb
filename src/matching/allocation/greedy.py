"""The greedy policies: each unit in release order to the first household of a ranked list.

What a landlord without an optimiser does, and what `optimal` is compared against. The policies
differ only in the ranking of households (a `RankKey`): by score (`greedy_score`), by first
filing date (`seniority`), or by band then banding date (`bands`). The skeleton that orients
each unit and picks its household, the same way for all of them, is
`matching.solver.greedy` (below the exact engine, which also compares its unproven soft
solutions with it). The result is a soft-mode `Result` (status ``FEASIBLE``) whose shortfalls
are counted as the independent checker counts them; `matching.round.build_result` runs that
checker on it.
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
