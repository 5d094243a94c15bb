"""Semantic identifiers and enumerations shared by every layer.

Imports nothing but the standard library, so that signatures everywhere read as policy.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeAlias

UnitId: TypeAlias = str
"""Identifier of a released unit (logement), unique within a round."""

DemandId: TypeAlias = str
"""Identifier of a demand (demande, numéro unique), unique within a round."""

ReservataireId: TypeAlias = str
"""Identifier of a réservataire (holder of reservation rights), e.g. ``etat``."""

RuleId: TypeAlias = str
"""Stable identifier of a policy rule (eligibility rule, quota, cotation criterion)."""

CommuneCode: TypeAlias = str
"""Five-character INSEE commune code, e.g. ``14118`` for Caen."""


class Financing(StrEnum):
    """Financing product of a unit, which sets its income ceiling (DOMAIN A2.1)."""

    PLAI = "PLAI"
    PLUS = "PLUS"
    PLS = "PLS"


class FluxExclusion(StrEnum):
    """Why a unit is excluded from the flux (DOMAIN A3); empty string means not excluded."""

    NONE = ""
    MUTATION = "mutation"
    ANRU = "anru"
    HABITAT_INDIGNE = "habitat_indigne"
    VENTE = "vente"


class QuotaMode(StrEnum):
    """Whether quota rules are hard constraints or soft ones with a reported shortfall."""

    HARD = "hard"
    SOFT = "soft"


class Bound(StrEnum):
    """Direction of a quota rule."""

    FLOOR = "floor"
    CEILING = "ceiling"


class Measure(StrEnum):
    """Whether a quota target is a share of a base set of allocations or an absolute count."""

    SHARE = "share"
    COUNT = "count"


class Stage(StrEnum):
    """Objective stages, optimised lexicographically in the order the policy lists them (A5)."""

    SHORTFALL = "shortfall"
    ALLOCATIONS = "allocations"
    SCORE = "score"


ALLOCATION_POLICIES: tuple[str, ...] = ("optimal", "greedy_score", "seniority", "bands")
"""Names of the allocation policies (`matching.allocation.get_policy`), in the order reports list
them. Here, not in `matching.allocation`, so that a scenario's settings can check a name without
importing the policies."""
