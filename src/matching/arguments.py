"""The arguments of the library's round functions in their types, from what callers pass.

`matching.round` (solve, prepare_round) and `matching.checker` (audit, check) take a policy, a
round date and a year so far in the same forms; this module, which imports neither the solver
nor the checker, converts them for both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matching.exceptions import PolicyError
from matching.flux import YearSoFar
from matching.io import year_so_far_of
from matching.policy.loader import policy_of
from matching.policy.model import Policy


def round_arguments(
    policy: Policy | str | Path,
    on: dt.date | str | None,
    year: YearSoFar | Mapping[str, Any] | None,
) -> tuple[Policy, dt.date | None, YearSoFar | None]:
    """The round's arguments in their types, from the forms a caller naturally passes.

    Why: a policy name or path, an ISO date and a plain mapping for the year so far are what a
    service calling the library has at hand; each failed deep in the solver (or the checker)
    with an AttributeError. Anything else is a TypeError that names the argument. One function
    for `matching.round.prepare_round` and `matching.checker.audit`, so that both take the same
    forms.

    Raises
    ------
    TypeError
        An argument of another type, or ``on`` not an ISO date; naming the argument.
    DataError
        The year so far does not fit the policy (naming the key).
    PolicyError
        The policy file cannot be loaded, or ``on`` lies in another year than the policy's.
    """
    policy = policy_of(policy)
    if isinstance(on, str):
        try:
            on = dt.date.fromisoformat(on)
        except ValueError:
            raise TypeError(f"on: {on!r} is not a date YYYY-MM-DD") from None
    elif isinstance(on, dt.datetime):
        on = on.date()
    elif on is not None and not isinstance(on, dt.date):
        raise TypeError(f"on: a date or an ISO date string, not {type(on).__name__}")
    if on is not None:
        same_year(policy, on, "on")
    if year is not None and not isinstance(year, YearSoFar | Mapping):
        raise TypeError(f"year_so_far: a YearSoFar or a mapping, not {type(year).__name__}")
    # checked against the policy as `read_year_so_far` does: a renamed rule silently lost its
    # tallies, an unknown réservataire made the round infeasible
    year = year_so_far_of(year, "year_so_far", policy) if year is not None else None
    return policy, on, year


def same_year(policy: Policy, on: dt.date, what: str) -> None:
    """Refuse a round dated in another year than the policy's (`Policy.other_year`).

    Why here: the round functions and the checker alike; the checker judged a 2027 round under
    the 2026 Q1 threshold and ceilings without a word (`matching check` refused it on files).
    """
    other = policy.other_year(on.year, "the round")
    if other is not None:
        raise PolicyError(f"{what}: {on.isoformat()}: policy {other}")
