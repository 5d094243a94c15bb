"""The two services a round needs, behind small protocols: allocate, then shortlist.

`matching.allocation.get_policy(name)` gives the allocation policies compared by issue 6
(optimal, greedy_score, seniority, bands) and `matching.shortlist.shortlists` the CALEOL's ranked
candidates (DOMAIN A6). The simulation depends only on these protocols, so tests can pass their
own (e.g. a recording allocator).
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import pandas as pd

from matching.allocation import AllocationPolicy, get_policy
from matching.flux import YearSoFar
from matching.policy.model import Policy
from matching.result import Result
from matching.shortlist import shortlists

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
    ) -> pd.DataFrame:
        """Shortlists: ``unit_id, rank, demand_id, score, reason``."""
        ...


def resolve_allocator(name: str) -> Allocator:
    """The allocation policy of that name; `PolicyError` lists the known ones otherwise."""
    return get_policy(name)


def resolve_shortlister() -> Shortlister:
    """`matching.shortlist.shortlists`."""
    return shortlists
