"""Demands that lapse because they are not renewed (DOMAIN B6).

A demand is valid one year from its filing or last renewal; failing renewal it is struck off
(R441-2-7, R441-2-8). Updates keep the first filing date, so the renewal dates are the
anniversaries of ``filed_on``. At each anniversary falling in a round's period the household
renews with probability ``renewal_rate`` (Ancols 2024: 49 % renewed; default 0.5), drawn from
`matching.simulation.draws` keyed by (seed, anniversary year, demand id): the same households
lapse under every allocation policy, as long as they are still waiting.
"""

from __future__ import annotations

import calendar

import numpy as np
import pandas as pd

from matching.simulation.draws import LAPSE, keyed_uniforms
from matching.simulation.periods import Period


def anniversary_in(filed_on: pd.Series, period: Period) -> np.ndarray:
    """Mask of the demands whose filing anniversary (a year or more later) falls in the period.

    A demand filed on 29 February renews on 28 February of common years.
    """
    year = period.end.year
    dates = pd.DatetimeIndex(pd.to_datetime(filed_on))
    month = dates.month.to_numpy()
    day = dates.day.to_numpy()
    month_days = np.array([calendar.monthrange(year, m)[1] for m in range(1, 13)])
    first_day = np.concatenate([[0], np.cumsum(month_days)[:-1]])
    doy = first_day[month - 1] + np.minimum(day, month_days[month - 1])  # 1-based day of year
    start = period.start.timetuple().tm_yday
    end = period.end.timetuple().tm_yday
    return (dates.year.to_numpy() < year) & (doy >= start) & (doy <= end)


def lapsing(
    demand_ids: pd.Series, filed_on: pd.Series, period: Period, renewal_rate: float, seed: int
) -> np.ndarray:
    """Mask of the demands that reach their anniversary in the period and are not renewed."""
    due = anniversary_in(filed_on, period)
    out = np.zeros(len(due), dtype=bool)
    rows = np.flatnonzero(due)
    if len(rows):
        ids = demand_ids.to_numpy(dtype=object)[rows].tolist()
        u = keyed_uniforms(seed, LAPSE, period.end.year, ids, 1)[:, 0]
        out[rows] = u >= renewal_rate
    return out
