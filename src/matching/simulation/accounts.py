"""Year-so-far accounting across rounds, and the policies that pin carried units (DOMAIN A4, B2).

The flux shares and ratio quotas count over the year (`matching.flux.YearSoFar`). A flux unit is
counted in the flux, and in its réservataire's orientations, once: in the round it is first
oriented. Quota tallies count the offers *accepted*, not the allocations proposed, since only a
signed lease is an allocation in the law's counts (DOMAIN B4: "allocations followed by a signed
lease").

A unit left unfilled keeps its orientation: the next round solves it apart, with a copy of the
policy whose shares give its réservataire the whole (share 1, the others 0) and with no flux
count, so that every allocation policy orients it back to the same réservataire and judges the
ratio quotas on the real year so far. After the policy's delay the unit returns to the landlord
(`ReturnToLandlord`): it is solved with every share at 0, so it goes to the landlord's own
share, and it stays counted in the réservataire's flux, or is taken off it, as the policy says.
"""

from __future__ import annotations

import pandas as pd

from matching.flux import YearSoFar
from matching.policy.model import Policy
from matching.policy.quotas import Tally, allocation_frame, tally
from matching.types import QuotaMode


def pinned_policy(policy: Policy, reservataire: str) -> Policy:
    """The policy with every flux unit of a solve oriented to ``reservataire`` (see module)."""
    rules = tuple(
        r
        if r.share is None
        else r.model_copy(update={"share": 1.0 if r.id == reservataire else 0.0})
        for r in policy.reservataires
    )
    return policy.model_copy(update={"reservataires": rules})


def soft(policy: Policy) -> Policy:
    """The policy with its quotas soft (a shortfall is reported, never infeasible)."""
    return policy.model_copy(
        update={"quotas": policy.quotas.model_copy(update={"mode": QuotaMode.SOFT})}
    )


def pinned_year(year: YearSoFar) -> YearSoFar:
    """The year so far for a pinned solve: the real tallies, no flux count (already counted)."""
    return YearSoFar(tallies=year.tallies)


def add_orientations(year: YearSoFar, orientation: pd.DataFrame) -> YearSoFar:
    """Count a round's first orientations (``unit_id, reservataire``) in the flux."""
    oriented = dict(year.oriented)
    for res, n in orientation["reservataire"].astype(str).value_counts().sort_index().items():
        oriented[str(res)] = oriented.get(str(res), 0) + int(n)
    return year.model_copy(
        update={"flux_units": year.flux_units + len(orientation), "oriented": oriented}
    )


def uncount(year: YearSoFar, reservataire: str, n: int, landlord: str) -> YearSoFar:
    """Move ``n`` returned units from a réservataire's orientations to the landlord's.

    ``counted_to: landlord``: the réservataire is owed them again, and they count in the
    landlord's flux (they used to count in nobody's: the year's orientations then summed to
    less than its flux units, and the landlord's share read 0.125 against 0.25).
    """
    oriented = dict(year.oriented)
    moved = min(n, oriented.get(reservataire, 0))
    oriented[reservataire] = oriented.get(reservataire, 0) - moved
    oriented[landlord] = oriented.get(landlord, 0) + moved
    return year.model_copy(update={"oriented": oriented})


def add_allocations(
    year: YearSoFar,
    policy: Policy,
    units: pd.DataFrame,
    demands_with_facts: pd.DataFrame,
    accepted: pd.DataFrame,
) -> YearSoFar:
    """Add accepted allocations (``unit_id, demand_id, reservataire``) to the quota tallies."""
    if not len(accepted):
        return year
    unit_pos = pd.Index(units["unit_id"]).get_indexer(accepted["unit_id"])
    demand_pos = pd.Index(demands_with_facts["demand_id"]).get_indexer(accepted["demand_id"])
    frame = allocation_frame(
        units, demands_with_facts, unit_pos, demand_pos, accepted["reservataire"].to_numpy()
    )
    tallies = {rule: dict(groups) for rule, groups in year.tallies.items()}
    for rule in policy.quotas.rules:
        for group, t in tally(rule, frame).items():
            groups = tallies.setdefault(rule.id, {})
            groups[group] = groups.get(group, Tally()) + t
    return year.model_copy(update={"tallies": tallies})
