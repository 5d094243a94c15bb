"""Settings of a simulated year: the optional ``simulation:`` section of a scenario.

A scenario describes one round; its ``simulation`` mapping turns it into a year of rounds
(issue 6): how often the CALEOL meets, which allocation policy runs each round, how many new
demands are filed, how many are renewed at their anniversary (DOMAIN B6), and how often an offer
is refused (DOMAIN B6, "Refusal by the candidate"). Every number is a parameter with the default
the brief and DOMAIN give. The policy-level rule for units a réservataire leaves unfilled (delay
and counting, DOMAIN B2) lives in the policy file (`matching.policy.model.ReturnToLandlord`),
not here, because it is part of a flux convention rather than of a simulation.

Imports pydantic (and `matching.types`, `matching.limits`) only, so that `matching.scenario`
can hold a `SimulationSettings`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from matching.limits import MAX_ROWS
from matching.types import ALLOCATION_POLICIES

ARRIVALS_PER_PENDING_DEMAND = 0.6
"""New demands filed per year per demand pending on 1 January, when the scenario gives no count.

Calibration (docs/simulation.md): 56 % of the Calvados pending stock is under a year old (F09),
so about 0.56 x stock of the year's filings are still pending at its end; the ones housed or
lapsed within their first year add a little: 0.6. Cross-check at steady state: Caen la Mer's
17,000 pending demands and 4,000 yearly allocations, with half of the demands reaching their
anniversary not renewed (DOMAIN B6), need about 4,000 + 6,000 = 10,000 filings a year; 0.6 x
17,000 = 10,200. [D]
"""


ROUNDS_PER_YEAR: dict[str, int] = {"monthly": 12, "weekly": 52}
"""Rounds of a year at each cadence (`matching.simulation.periods.year_periods`: 52 weeks, the
last one running to 31 December), the most ``last_round`` can be."""


class _Frozen(BaseModel):
    """Base of the settings: immutable, unknown keys refused, numbers of strict types.

    Why strict: ``renewal_rate: true`` was read as 1.0 and ``last_round: 2.0`` as 2 without a
    word; an integer is still a real number (``renewal_rate: 1``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


class RefusalSettings(_Frozen):
    """Probability that a household refuses the unit offered to it (DOMAIN B6, [D]).

    The base probability applies to every offer; a unit in a QPV, or of a given number of rooms,
    may have its own (the QPV one wins over the rooms one). Draws are seeded per (seed, round,
    unit), so every allocation policy meets the same refusals.
    """

    probability: StrictFloat = Field(
        default=0.3, ge=0, le=1, description="Probability that an offer is refused"
    )
    in_qpv: StrictFloat | None = Field(
        default=None, ge=0, le=1, description="Probability for units in a QPV (None: the base)"
    )
    by_rooms: dict[StrictInt, StrictFloat] = Field(
        default_factory=dict, description="Probability by number of rooms (T1 = 1), overriding"
    )

    @model_validator(mode="after")
    def _probabilities(self) -> RefusalSettings:
        for rooms, p in self.by_rooms.items():
            if not 1 <= rooms <= 7:  # a unit's rooms (T1 to T7): another key silently did nothing
                raise ValueError(f"by_rooms.{rooms}: a number of rooms lies in 1-7 (T1 = 1)")
            if not 0 <= p <= 1:
                raise ValueError(f"by_rooms.{rooms}: a probability must lie in [0, 1]")
        return self


class SimulationSettings(_Frozen):
    """A year of allocation rounds (issue 6)."""

    cadence: Literal["weekly", "monthly"] = Field(
        default="monthly", description="How often the CALEOL meets: one round per week or month"
    )
    allocation_policy: str = Field(
        default="optimal",
        description="Allocation policy of every round: optimal, greedy_score, seniority, bands",
    )
    arrivals_per_year: StrictInt | None = Field(
        default=None,
        ge=0,
        le=MAX_ROWS,
        description="New demands filed in the year, at most MAX_ROWS (a bigger one is a typo); "
        "None: 0.6 x the demands pending on 1 January",
    )
    renewal_rate: StrictFloat = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Share of demands renewed at their yearly anniversary (DOMAIN B6: 49 %)",
    )
    refusals: RefusalSettings = Field(default_factory=RefusalSettings)
    shortlist_size: StrictInt = Field(
        default=3, ge=1, le=10, description="Candidates per unit on the CALEOL's list (R441-3)"
    )
    answer_delay_days: StrictInt = Field(
        default=10,
        ge=0,
        le=365,
        description="Days a household has to answer an offer (R441-10: 10), at most a year (a "
        "bigger one is a typo, and overflowed the vacancy days): each refusal adds them to the "
        "unit's vacancy",
    )
    abnormally_long_months: StrictInt = Field(
        default=30,
        ge=1,
        le=120,
        description="The délai anormalement long, months (DOMAIN A7 default), at most ten years "
        "(a bigger one is a typo)",
    )
    last_round: StrictInt | None = Field(
        default=None,
        ge=1,
        description="Stop after this many rounds, at most the year's (for a quick look; None: "
        "the whole year)",
    )

    @field_validator("allocation_policy")
    @classmethod
    def _known_policy(cls, name: str) -> str:
        """Why here: an unknown name was refused only when the year started, naming no file."""
        if name not in ALLOCATION_POLICIES:
            raise ValueError(
                f"unknown allocation policy '{name}'; known: {', '.join(ALLOCATION_POLICIES)}"
            )
        return name

    @model_validator(mode="after")
    def _last_round_in_the_year(self) -> SimulationSettings:
        """Why: ``last_round: 99`` ran the whole year without a word; it is a planner's typo."""
        problem = last_round_problem(self.last_round, self.cadence)
        if problem:
            raise ValueError(f"last_round: {problem}")
        return self


def last_round_problem(rounds: int | None, cadence: str) -> str:
    """Why ``rounds`` cannot be the last round of a year at ``cadence``, or "" when it can."""
    most = ROUNDS_PER_YEAR[cadence]
    if rounds is not None and rounds > most:
        return f"{rounds}, but a {cadence} year has {most} rounds"
    return ""
