"""Demands filed during the simulated year (issue 6: "new demands arrive").

The year's filings are drawn once, before the first round, with
`matching.generate.generate_demands` (the recent-demand profile of the calibrated generator), so
that every allocation policy of a comparison meets the same households on the same days. A round
lets in the ones filed in its period. The yearly count defaults to
`matching.simulation.config.ARRIVALS_PER_PENDING_DEMAND` times the stock pending on 1 January.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from matching.generate import generate_demands
from matching.simulation.config import ARRIVALS_PER_PENDING_DEMAND, SimulationSettings
from matching.simulation.periods import Period


def arrivals_count(settings: SimulationSettings, pending_on_1_january: int) -> int:
    """New demands of the year: the scenario's count, or 0.6 per demand pending on 1 January."""
    if settings.arrivals_per_year is not None:
        return settings.arrivals_per_year
    return round(ARRIVALS_PER_PENDING_DEMAND * pending_on_1_january)


def year_arrivals(territory: str, year: int, seed: int, n: int) -> pd.DataFrame:
    """The demands filed between 2 January and 31 December, ids ``N<year>-...``, by filing date."""
    return generate_demands(
        territory, year, seed, n, filed_from=dt.date(year, 1, 2), filed_to=dt.date(year, 12, 31)
    )


def filed_in(filed_on: pd.Series, period: Period) -> np.ndarray:
    """Mask of the demands filed during the period (they arrive in its round)."""
    dates = pd.to_datetime(filed_on).to_numpy()
    start = np.datetime64(period.start.isoformat(), "ns")
    end = np.datetime64(period.end.isoformat(), "ns")
    return (dates >= start) & (dates <= end)
