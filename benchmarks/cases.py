"""The ladder of round sizes, built from the territory generator, and their preparation.

Every case is a round of the generated Caen la Mer territory (`matching.generate`); it is the only
territory bundled in ``matching/data`` (``territory.load_territory``), so the Paris-sized round is
Caen la Mer *scaled*: 250,000 demands and the first 1,000 units released in a year of 13,334
releases (the January flow of a territory twelve times Caen's turnover), not Paris data.

A case picks its units from a generated year by release order (ids follow the release date), so
a smaller case is a prefix of the same flow, and the round date is the last release date of the
units kept. The demands are the whole generated stock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from matching.generate import BINDING_YEAR, DEFAULT_CALIBRATION, Calibration, generate_territory
from matching.policy import load_policy
from matching.policy.model import Policy
from matching.round import PreparedRound, prepare_round

TERRITORY = "caen-la-mer"
YEAR = 2026
SEED = 1


@dataclass(frozen=True)
class Case:
    """One rung of the ladder: how many units of which generated year, against how many demands."""

    name: str
    label: str
    year_units: int  # units generated for the year
    n_demands: int
    select: str  # "january": units released in January; "first:N": the first N released; "all"
    highs: bool  # build the HiGHS model (False where it would exceed the memory/time budget)
    why_no_highs: str = ""
    time_factor: float = 1.0  # the engine's budget is this times --time-limit (the case's goal)
    highs_time_limit: float | None = None  # HiGHS's own budget when it differs from the engine's
    calibration: Calibration = DEFAULT_CALIBRATION  # the generator's levers (matching.generate)

    def units(self, units: pd.DataFrame) -> pd.DataFrame:
        """The round's units taken from the generated year."""
        released = pd.to_datetime(units["released_on"])
        if self.select == "january":
            keep = units[released.dt.month == 1]
        elif self.select.startswith("first:"):
            keep = units.iloc[: int(self.select.split(":")[1])]
        else:
            keep = units
        return keep.reset_index(drop=True)


CASES: dict[str, Case] = {
    c.name: c
    for c in (
        Case(
            "small-round",
            "a small round, 100 units x 2,000 demands (the size of issue 5's binding example)",
            100,
            2_000,
            "all",
            highs=True,
            highs_time_limit=120.0,  # HiGHS proves it in about 60 s: the one rung where it can
        ),
        Case(
            "caleol",
            "CALEOL meeting (first 40 units of the Caen la Mer year)",
            4_000,
            17_000,
            "first:40",
            highs=True,
        ),
        Case(
            "caen-month",
            "Caen la Mer monthly round (units released in January)",
            4_000,
            17_000,
            "january",
            highs=True,
        ),
        Case(
            "caen-year",
            "Caen la Mer year pooled (all 4,000 units in one round)",
            4_000,
            17_000,
            "all",
            highs=False,
            why_no_highs="about 18 M triples: HiGHS's model alone would take GBs and its LP "
            "relaxation far more than the budget (the LP alone took 121 s at 775 k triples)",
            time_factor=4.0,  # the goal is 30 s; the budget shows how far from it the proof is
        ),
        Case(
            "caen-year-binding",
            "Caen la Mer year pooled, generated so that the quotas bind (`generate.BINDING_YEAR`)",
            4_000,
            17_000,
            "all",
            highs=False,
            why_no_highs="about 18 M triples, as caen-year",
            time_factor=4.0,
            calibration=BINDING_YEAR,
        ),
        Case(
            "paris",
            "Paris-sized round (Caen la Mer scaled: first 1,000 of 13,334 units, 250,000 demands)",
            13_334,
            250_000,
            "first:1000",
            highs=False,
            why_no_highs="about 27 M pairs / 70 M triples: beyond HiGHS's memory and time budget",
            time_factor=10.0,  # the goal is 60 s; the budget shows how far from it the proof is
        ),
    )
}

QUICK_CASES = ("small-round", "caleol", "caen-month")
"""The rungs run by ``--quick``."""


def load_units_demands(case: Case) -> tuple[pd.DataFrame, pd.DataFrame, dt.date]:
    """Generate the case's territory; return the round's units, all demands and the round date."""
    units, demands = generate_territory(
        territory=TERRITORY,
        year=YEAR,
        seed=SEED,
        n_units=case.year_units,
        n_demands=case.n_demands,
        calibration=case.calibration,
    )
    round_units = case.units(units)
    on = pd.Timestamp(round_units["released_on"].max()).date()
    return round_units, demands, on


def prepare(case: Case, policy: Policy | None = None) -> PreparedRound:
    """Facts, scores and eligible pairs of the case's round (the default policy unless given)."""
    units, demands, on = load_units_demands(case)
    return prepare_round(units, demands, policy or load_policy("default-2026"), on=on)
