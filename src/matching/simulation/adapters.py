"""The two services a round needs, behind small protocols: allocate, then shortlist.

`matching.allocation.get_policy(name)` gives the allocation policies compared by issue 6
(optimal, greedy_score, seniority, bands) and `matching.shortlist.shortlists` the CALEOL's ranked
candidates (DOMAIN A6). The simulation depends only on these protocols, so tests can pass their
own (e.g. a recording allocator).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol

import numpy as np
import pandas as pd

from matching.allocation import AllocationPolicy, get_policy
from matching.allocation.greedy import GreedyPolicy, RankKey
from matching.flux import YearSoFar
from matching.policy.model import Policy
from matching.result import Result
from matching.shortlist import shortlists
from matching.solver.instance import RoundInstance

Allocator = AllocationPolicy
"""An allocation policy: one round's units and demands in, a checked `Result` out."""


class Shortlister(Protocol):
    """Ranked candidates per allocated unit (rank 1 = the allocated household)."""

    def __call__(
        self,
        units: pd.DataFrame,
        demands: pd.DataFrame,
        policy: Policy,
        result: Result,
        *,
        year_so_far: YearSoFar | None,
        on: dt.date,
        size: int = 3,
        ranking: Callable[[RoundInstance], np.ndarray] | None = None,
    ) -> pd.DataFrame:
        """Shortlists: ``unit_id, rank, demand_id, score, reason``.

        ``ranking``: the allocation policy's order of households, which the substitutes follow
        (`household_order`); it is passed only when the policy has one of its own.
        """
        ...


def resolve_allocator(name: str) -> Allocator:
    """The allocation policy of that name; `PolicyError` lists the known ones otherwise."""
    return get_policy(name)


def household_order(allocator: Allocator) -> RankKey | None:
    """The order the allocator ranks households by, when it is not the cotation's; else None.

    A greedy policy (`seniority`, `bands`, `greedy_score`) gives each unit to the first free
    household in its order: a refused unit goes down the list in the same order, so the
    policy compared is the policy played. `optimal` maximises the cotation: None.
    """
    return allocator.rank if isinstance(allocator, GreedyPolicy) else None


def resolve_shortlister() -> Shortlister:
    """`matching.shortlist.shortlists`."""
    return shortlists
