"""``optimal``: the exact CP-SAT round (`matching.round.solve`) behind the allocation interface.

Quotas are hard when the policy says so. When they cannot all hold in a round (a year of
rounds meets this: a réservataire with too few priority households in its pool), a simulation
must go on, so the policy falls back to the soft-mode optimum that `matching.round.solve`
computes as its diagnosis: the least weighted shortfall first, then the usual stages. The
fallback is visible on the returned Result: ``conflicts`` names the hard rules in conflict,
``stats["quota_mode"]`` is ``"soft_fallback"`` (``"hard"`` or ``"soft"`` otherwise) and
``shortfalls`` gives each rule's exact shortfall.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from matching.flux import YearSoFar
from matching.params import SolveParams
from matching.policy.model import Policy
from matching.result import Result
from matching.round import solve

SOFT_FALLBACK = "soft_fallback"
"""``stats["quota_mode"]`` of a result solved in soft mode because the hard quotas conflict."""


class OptimalPolicy:
    """The exact round: lexicographic optimum of the policy's stages (DOMAIN A5)."""

    name = "optimal"

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
        """Solve the round exactly; in soft mode when the hard quotas cannot all hold.

        Raises
        ------
        CheckFailedError
            The independent checker disagrees with the solver (a bug).
        """
        result = solve(
            units, demands, policy, params,
            year_so_far=year_so_far, on=on, raise_on_infeasible=False,
        )  # fmt: skip
        soft = result.soft_diagnosis
        if result.status == "INFEASIBLE" and soft is not None:
            soft.conflicts = list(result.conflicts)
            soft.stats.update(allocation_policy=self.name, quota_mode=SOFT_FALLBACK)
            soft.wall_time_s += result.wall_time_s
            return soft
        result.stats.update(allocation_policy=self.name, quota_mode=policy.quotas.mode.value)
        return result

    def __repr__(self) -> str:
        return "OptimalPolicy()"


OPTIMAL = OptimalPolicy()
"""The one instance `matching.allocation.get_policy("optimal")` returns."""
