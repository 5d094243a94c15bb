"""Yearly flux accounting (gestion en flux, DOMAIN A4) and the year-so-far state of a round.

A round is one allocation meeting of a year. The flux shares and the ratio quotas count over the
whole year, so each round receives what earlier rounds did as constants: the flux units released,
the orientations per réservataire, and the quota tallies. `flux_bands` turns the shares into the
round's admissible orientation counts, computed in exact fractions.
"""

from __future__ import annotations

import math
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field

from matching.policy.model import Policy
from matching.policy.quotas import Tally


class YearSoFar(BaseModel):
    """What earlier rounds of the year did: constants for this round's flux bands and quotas."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    flux_units: int = Field(default=0, ge=0, description="Flux units released in earlier rounds")
    oriented: dict[str, int] = Field(
        default_factory=dict, description="Flux units oriented to each réservataire so far"
    )
    tallies: dict[str, dict[str, Tally]] = Field(
        default_factory=dict, description="Per quota rule id, per scope group: base and counted"
    )

    def tally(self, rule_id: str, scope: str) -> Tally:
        """Earlier allocations of one rule's scope group (zero when none)."""
        return self.tallies.get(rule_id, {}).get(scope, Tally())


class FluxBand(BaseModel):
    """Admissible number of this round's flux units oriented to one réservataire."""

    model_config = ConfigDict(frozen=True)

    reservataire: str
    target: Fraction = Field(description="share x (flux so far incl. this round) - oriented so far")
    low: int = Field(ge=0)
    high: int = Field(ge=0)


def flux_bands(policy: Policy, round_flux_units: int, year: YearSoFar) -> dict[str, FluxBand]:
    """Orientation bands of the réservataires that have a share (the landlord takes the rest).

    ``t_r = share_r x (flux so far this year) - units already oriented to r``; the round orients
    between ``floor(t_r)`` and ``ceil(t_r)`` units to r, clipped to ``[0, round_flux_units]``.
    """
    total_flux = year.flux_units + round_flux_units
    bands: dict[str, FluxBand] = {}
    for res in policy.reservataires:
        if res.id == policy.flux.landlord or res.share is None:
            continue
        target = Fraction(str(res.share)) * total_flux - year.oriented.get(res.id, 0)
        low = min(max(0, math.floor(target)), round_flux_units)
        high = min(max(0, math.ceil(target)), round_flux_units)
        bands[res.id] = FluxBand(reservataire=res.id, target=target, low=low, high=high)
    return bands
