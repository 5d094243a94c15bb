"""One interface for every allocation policy of a round, and the registry that names them.

A simulation or a comparison (issue 6) runs the same year under several policies; each is an
object with a ``name`` and an ``allocate`` method that takes one round's tables and returns a
checked `matching.result.Result`, whatever the method behind it:

- ``optimal``: the exact CP-SAT round (`matching.allocation.optimal`);
- ``greedy_score``: each unit, in release order, to the highest-score household of its pool
  (`matching.allocation.greedy`);
- ``seniority``: the same with the oldest first filing first (`matching.allocation.seniority`);
- ``bands``: choice-based lettings, priority band then banding date
  (`matching.allocation.bands`).

The greedy ones never fail on quotas: they return a soft-mode result (status ``FEASIBLE``)
whose ``shortfalls`` are exact.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import pandas as pd

from matching.exceptions import PolicyError
from matching.flux import YearSoFar
from matching.params import SolveParams
from matching.policy.model import Policy
from matching.result import Result
from matching.types import ALLOCATION_POLICIES

POLICY_NAMES: tuple[str, ...] = ALLOCATION_POLICIES
"""Names `get_policy` knows, in the order reports list them."""


class AllocationPolicy(Protocol):
    """How a round's units are given to households; every policy returns a checked Result."""

    name: str

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
        """Allocate one round.

        Parameters
        ----------
        units, demands
            The round's canonical tables (`matching.frames` columns and dtypes).
        policy
            The allocation rules (eligibility, pools, flux shares, quotas, cotation).
        params
            Solver settings (used by ``optimal``; recorded in the Result by every policy).
        year_so_far
            What earlier rounds of the year did (flux units, orientations, quota tallies).
        on
            The round's date (seniority and cotation are computed at it).

        Returns
        -------
        Result
            The allocation, orientation and unallocated units, checked by `matching.checker`;
            ``stats["allocation_policy"]`` names the policy and ``stats["quota_mode"]`` says
            whether quotas were hard, soft, or soft because the hard ones conflict.
        """
        ...


def get_policy(name: str) -> AllocationPolicy:
    """The allocation policy called ``name`` (one of `POLICY_NAMES`).

    Raises
    ------
    PolicyError
        Unknown name; the message lists the known ones.
    """
    from matching.allocation.bands import BANDS
    from matching.allocation.greedy import GREEDY_SCORE
    from matching.allocation.optimal import OPTIMAL
    from matching.allocation.seniority import SENIORITY

    known: dict[str, AllocationPolicy] = {
        "optimal": OPTIMAL,
        "greedy_score": GREEDY_SCORE,
        "seniority": SENIORITY,
        "bands": BANDS,
    }
    if name not in known:
        hint = ""
        if name.endswith((".yaml", ".yml")):  # `solve --policy` takes a file, `simulate` does not
            hint = " (a policy file goes in the scenario's `policy:` key)"
        raise PolicyError(
            f"unknown allocation policy '{name}'; known: {', '.join(POLICY_NAMES)}{hint}"
        )
    return known[name]
