"""The rounds of a simulated year: one period per CALEOL meeting, weekly or monthly.

A round covers the period ``(start, end]``: the units released and the demands filed in it
enter, and the round is solved at ``end`` (its date, for seniority and scores). Weekly rounds are
7-day periods from 1 January; the last one runs to 31 December (8 days in a 365-day year), so
that the year has exactly 52 weekly rounds and no 1-day meeting.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Period:
    """One round of the year.

    Attributes
    ----------
    index
        Round number, from 1.
    start
        First day of the period (units released on or after it enter).
    end
        Last day of the period: the round date.
    """

    index: int
    start: dt.date
    end: dt.date

    @property
    def label(self) -> str:
        """Folder name of the round's outputs, e.g. ``01-2026-01-31`` (sorts in round order)."""
        return f"{self.index:02d}-{self.end.isoformat()}"


def year_periods(year: int, cadence: Literal["weekly", "monthly"]) -> tuple[Period, ...]:
    """Every round of ``year`` at the given cadence, in order, covering 1 January to 31 December."""
    if cadence == "monthly":
        return tuple(
            Period(m, dt.date(year, m, 1), dt.date(year, m, calendar.monthrange(year, m)[1]))
            for m in range(1, 13)
        )
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    periods = []
    start, index = first, 1
    while start <= last:
        end = start + dt.timedelta(days=6)
        if (last - end).days < 7:  # the remainder joins the last week
            end = last
        periods.append(Period(index, start, end))
        start, index = end + dt.timedelta(days=1), index + 1
    return tuple(periods)
