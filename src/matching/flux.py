"""Yearly flux accounting (gestion en flux, DOMAIN A4) and the year-so-far state of a round.

A round is one allocation meeting of a year. The flux shares and the ratio quotas count over the
whole year, so each round receives what earlier rounds did as constants: the flux units released,
the orientations per réservataire, and the quota tallies. `flux_bands` turns the shares into the
round's admissible orientation counts, computed in exact fractions.
"""

from __future__ import annotations

import math
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field, model_validator

from matching.policy.fields import ALLOCATION_FIELDS, value_problem
from matching.policy.model import Policy
from matching.policy.quotas import Count, Tally


class YearSoFar(BaseModel):
    """What earlier rounds of the year did: constants for this round's flux bands and quotas."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    flux_units: Count = Field(default=0, ge=0, description="Flux units released in earlier rounds")
    oriented: dict[str, Count] = Field(
        default_factory=dict, description="Flux units oriented to each réservataire so far"
    )
    tallies: dict[str, dict[str, Tally]] = Field(
        default_factory=dict, description="Per quota rule id, per scope group: base and counted"
    )

    @model_validator(mode="after")
    def _consistent(self) -> YearSoFar:
        """Counts that cannot come from a year: refused rather than clipped without a word."""
        for res, n in self.oriented.items():
            if n < 0:
                raise ValueError(f"oriented.{res}: {n} units oriented, fewer than none")
        if sum(self.oriented.values()) > self.flux_units:
            raise ValueError(
                f"oriented: {sum(self.oriented.values())} units oriented in all, more than the "
                f"{self.flux_units} flux units released (flux_units)"
            )
        for rule, groups in self.tallies.items():
            for group, t in groups.items():
                if t.counted > t.base:
                    raise ValueError(
                        f"tallies.{rule}.{group}: counted {t.counted} is more than its base "
                        f"{t.base} (the counted allocations are some of the base's)"
                    )
        return self

    def problems_with(self, policy: Policy) -> list[tuple[str, str, str]]:
        """What names no réservataire or quota rule of ``policy``: (key, value, reason) each.

        Why: such counts were ignored without a word (a rule renamed in the policy lost the
        year's tallies), and an orientation to an unknown réservataire made a round infeasible
        with no conflict to name.
        """
        found: list[tuple[str, str, str]] = []
        known = policy.reservataire_ids()
        for res in self.oriented:
            if res not in known:
                reason = f"not a réservataire of policy '{policy.id}' ({', '.join(known)})"
                found.append((f"oriented.{res}", res, reason))
        rules = {rule.id: rule for rule in policy.quotas.rules}
        for rule_id, groups in self.tallies.items():
            rule = rules.get(rule_id)
            if rule is None:
                found.append(
                    (f"tallies.{rule_id}", rule_id, f"not a quota rule of policy '{policy.id}'")
                )
            elif rule.scope is None and set(groups) - {""}:
                group = sorted(set(groups) - {""})[0]
                reason = f"rule '{rule_id}' has no scope: its one group is ''"
                found.append((f"tallies.{rule_id}.{group}", group, reason))
            elif rule.scope is not None:
                for group in groups:
                    problem = _group_problem(rule.scope, group, policy)
                    if problem is not None:
                        found.append((f"tallies.{rule_id}.{group}", group, problem))
        return found

    def tally(self, rule_id: str, scope: str) -> Tally:
        """Earlier allocations of one rule's scope group (zero when none)."""
        return self.tallies.get(rule_id, {}).get(scope, Tally())


def _group_problem(scope: str, group: str, policy: Policy) -> str | None:
    """Why no allocation can fall in scope group ``group``, or None when one can.

    Groups are the scope field's values as text (`matching.policy.quotas.scope_keys`): a
    réservataire id or ``''``, ``True``/``False`` for a yes/no field. Why: a group no allocation
    can reach (``Collectivite``, ``true``) was judged as a group of its own, its earlier
    allocations missing from the real group's count, and a share floor it left short failed
    every round (the checker reported it, the round was infeasible).
    """
    if scope == "reservataire":
        known = policy.reservataire_ids()
        if group == "" or group in known:
            return None
        return (
            f"not a group of scope 'reservataire': one of {', '.join(known)}, "
            "or '' for the units excluded from the flux"
        )
    if ALLOCATION_FIELDS.get(scope) == "bool":
        if group in ("True", "False"):
            return None
        return f"not a group of scope '{scope}', a yes/no field: 'True' or 'False'"
    if ALLOCATION_FIELDS.get(scope) == "text" and group:
        problem = value_problem(scope, group)
        return f"not a group of scope '{scope}': {problem}" if problem else None
    return None


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
    between ``floor(t_r)`` and ``ceil(t_r)`` units to r, clipped to what remains (A4): to
    ``[0, round_flux_units]``, and the floors together to the round's flux units, the
    réservataires furthest behind (largest ``t_r``, then policy order) first.

    Why the floors together: when earlier rounds oriented more than its share to the landlord
    (rounds of one or two units, where every ``t_r`` is below 1 and so every floor 0; or units
    returned to it), several réservataires can each be owed a unit more than the round has.
    Each floor alone fits, all of them do not: a weekly simulated year had twelve such rounds,
    each infeasible in every mode (the bands are never soft), its units left vacant for weeks.
    """
    total_flux = year.flux_units + round_flux_units
    targets: dict[str, Fraction] = {}
    for res in policy.reservataires:
        if res.id == policy.flux.landlord or res.share is None:
            continue
        targets[res.id] = Fraction(str(res.share)) * total_flux - year.oriented.get(res.id, 0)
    lows = {r: min(max(0, math.floor(t)), round_flux_units) for r, t in targets.items()}
    remaining = round_flux_units
    order = {r: k for k, r in enumerate(targets)}
    for r in sorted(targets, key=lambda r: (-targets[r], order[r])):
        lows[r] = min(lows[r], remaining)
        remaining -= lows[r]
    return {
        r: FluxBand(
            reservataire=r,
            target=t,
            low=lows[r],
            high=min(max(0, math.ceil(t)), round_flux_units),
        )
        for r, t in targets.items()
    }
