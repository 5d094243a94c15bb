"""The simulated year: round after round, releases, arrivals, lapses, solves, offers (issue 6).

Each round covers one period (`periods`). In order:

1. the demands filed in the period join the stock (`arrivals`); those reaching their yearly
   anniversary and not renewed lapse (`lapse`);
2. the units released in the period become vacant; a unit its réservataire has left unfilled
   for the policy's delay returns to the landlord (`accounts`, DOMAIN B2);
3. the round is solved by the scenario's allocation policy (`adapters`): first the new units
   (and any unit never oriented) with the real year so far, so that the flux bands and ratio
   quotas count the earlier rounds (DOMAIN A4); then the carried units of each réservataire,
   pinned to it; then the units returned to the landlord. A solve the hard quotas make
   infeasible is replaced by the soft-mode one, with its shortfall recorded;
4. each allocated unit is offered down its shortlist (`offers`, `refusals`); a refusal adds one
   to the household's ``refusals`` (the cotation grid says what it costs); accepted households
   leave the stock, and a unit whose list runs out waits for the next round;
5. the accepted allocations are counted in the year so far, and the state is checkpointed
   (`state`).

Every unit and demand ends the year with a status and a reason: units ``allocated`` or
``carried`` (still vacant, with the last reason), demands ``allocated``, ``lapsed`` or
``carried`` (still waiting). Outputs (`write_outputs`) are byte-stable for the same inputs and
seed; only ``timings.json`` varies.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matching.flux import YearSoFar
from matching.io import make_folder
from matching.simulation.adapters import (
    Allocator,
    Shortlister,
    resolve_allocator,
    resolve_shortlister,
)
from matching.simulation.inputs import YearData, canonical, year_data
from matching.simulation.outcomes import year_kpis
from matching.simulation.outputs import YEAR_FILES, write_outputs, write_round
from matching.simulation.periods import year_periods
from matching.simulation.play import play_round
from matching.simulation.state import (
    ALLOCATION_LEDGER,
    DEMAND_LEDGER,
    OFFER_LEDGER,
    POINTER,
    STATE_DIR,
    UNIT_LEDGER,
    CheckpointError,
    SimulationState,
    check_ledgers,
    clear_checkpoints,
    empty,
    load_checkpoint,
    save_checkpoint,
    typed,
)

__all__ = ["RoundSummary", "SimulationResult", "YearData", "simulate", "year_data"]


RUN_FOLDERS: tuple[str, ...] = ("rounds", STATE_DIR)
"""Folders of a year's output folder: per-round tables, and the checkpoints."""


@dataclass(frozen=True)
class RoundSummary:
    """What one round did, for the progress line and ``rounds.csv``.

    Attributes
    ----------
    round, rounds, date
        Round number, number of rounds of the run, round date.
    counts
        Units released, vacant in the round, demands arrived, lapsed, pending, offers made,
        candidates passed over (already housed that round: no offer), refusals, allocated in
        the round and so far, units carried, returned, soft solves.
    rates
        Year-so-far rate of each quota rule (EPCI-wide group; None when its base is empty).
    wall_time_s
        Wall time of the round.
    """

    round: int
    rounds: int
    date: dt.date
    counts: dict[str, int]
    rates: dict[str, float | None]
    wall_time_s: float


@dataclass(frozen=True)
class SimulationResult:
    """A finished (or stopped) year: the final state and the output files."""

    state: SimulationState
    files: list[Path]
    kpis: dict[str, Any]


Progress = Callable[[RoundSummary], None]


def _initial_state(data: YearData) -> SimulationState:
    n_u, n_d = len(data.units), len(data.demands)
    units = typed(
        pd.DataFrame(
            {
                "unit_id": data.units["unit_id"].to_numpy(dtype=object),
                "status": ["not_released"] * n_u, "oriented_to": [""] * n_u,
                "oriented_on": [""] * n_u, "returned_on": [""] * n_u,
                "refused_offers": np.zeros(n_u, dtype=np.int64),
                "round": np.zeros(n_u, dtype=np.int64), "demand_id": [""] * n_u,
                "rank": np.zeros(n_u, dtype=np.int64), "reason": [""] * n_u,
            }
        ),
        UNIT_LEDGER,
    )  # fmt: skip
    demands = typed(
        pd.DataFrame(
            {
                "demand_id": data.demands["demand_id"].to_numpy(dtype=object),
                "status": ["not_filed"] * n_d,
                "round": np.zeros(n_d, dtype=np.int64), "on": [""] * n_d,
                "refusals": data.demands["refusals"].to_numpy(dtype=np.int64),
                "unit_id": [""] * n_d, "reason": [""] * n_d,
            }
        ),
        DEMAND_LEDGER,
    )  # fmt: skip
    return SimulationState(
        round=0,
        fingerprint=data.fingerprint(),
        inputs=data.fingerprint_parts(),
        year=YearSoFar(),
        units=units,
        demands=demands,
        allocations=empty(ALLOCATION_LEDGER),
        offers=empty(OFFER_LEDGER),
    )


def simulate(
    data: YearData,
    out: Path,
    *,
    resume: bool = False,
    allocator: Allocator | None = None,
    shortlister: Shortlister | None = None,
    progress: Progress | None = None,
) -> SimulationResult:
    """Simulate the year round by round, checkpointing after each, and write the outputs.

    Parameters
    ----------
    data
        The year's inputs (`year_data`).
    out
        Output folder: ``rounds/NN-DATE/`` per round, the year's tables and KPIs, ``state/``.
    resume
        Continue from the folder's latest checkpoint (same inputs and settings only; a folder
        without one is refused); without it, an earlier run's checkpoints, rounds and year
        files (`YEAR_FILES`) in the folder are removed and the year starts over.
    allocator, shortlister
        The round's services; default: the settings' allocation policy and
        `matching.shortlist.shortlists` (`adapters`).
    progress
        Called after every round (after its checkpoint) with a `RoundSummary`.

    Raises
    ------
    CheckpointError
        ``resume`` and the folder has no checkpoint, or one that is damaged, belongs to
        another run, or is past the rounds asked for (``settings.last_round``).
    DataError
        ``out``, or its ``rounds/`` or ``state/`` folder, cannot be created (`make_folder`):
        refused before the first round, not after it (and after the checks of ``resume``, so
        that a refused resume creates nothing).
    CheckFailedError
        An accepted allocation breaks a rule other than a quota (a bug).
    """
    data = canonical(data)  # validated once; the rounds' solves take it as validated
    allocator = allocator or resolve_allocator(data.settings.allocation_policy)
    shortlister = shortlister or resolve_shortlister()
    periods = year_periods(data.year, data.settings.cadence)[: data.settings.last_round]
    state = load_checkpoint(out, data.fingerprint(), data.fingerprint_parts()) if resume else None
    if resume and state is None:
        # Starting over would hide a typo in the folder's name, and clear an unrelated folder's
        # rounds/; a run killed before its first checkpoint is simply run again without it.
        raise CheckpointError(
            f"{out}: no checkpoint to resume ({STATE_DIR}/{POINTER} is missing); check the "
            "--out folder, or run without --resume to start the year"
        )
    if state is not None:
        check_ledgers(out, state, data.units["unit_id"], data.demands["demand_id"])
    if state is not None and state.round > len(periods):
        # The year end, the round count and the vacancy days are taken from the rounds asked
        # for: written from a checkpoint past them, they would be wrong (January's end date
        # for a year of two rounds, negative vacancy days).
        raise CheckpointError(
            f"{out}: the checkpoint is at round {state.round}, past the {len(periods)} "
            "round(s) asked for (--rounds, or the scenario's last_round); resume with "
            f"--rounds {state.round} or more, or run without --resume to start over"
        )
    make_folder(out)
    if state is None:
        clear_checkpoints(out)
        shutil.rmtree(out / "rounds", ignore_errors=True)  # an earlier run's rounds
        for name in YEAR_FILES:
            # and its year: a new run killed mid-year left the old kpis.json, allocations.csv,
            # ... of another seed or policy beside its own rounds, read as this run's year
            if (out / name).is_file():
                (out / name).unlink()
        state = _initial_state(data)
    for folder in RUN_FOLDERS:  # a file of that name failed after the first round
        make_folder(out / folder)
    for period in periods[state.round :]:
        start = time.perf_counter()
        summary, tables, spent = play_round(data, state, period, allocator, shortlister)
        write_round(out, period, summary, tables)
        seconds = time.perf_counter() - start
        state.round = period.index
        state.rounds.append(summary)
        state.timings.append(
            {"round": period.index, "wall_time_s": round(seconds, 3)}
            | {f"{k}_s": round(v, 3) for k, v in spent.items()}
        )
        save_checkpoint(out, state)
        if progress is not None:
            progress(
                RoundSummary(
                    round=period.index,
                    rounds=len(periods),
                    date=period.end,
                    counts=summary["counts"],
                    rates=summary["rates"],
                    wall_time_s=seconds,
                )
            )
    end = periods[-1].end if periods else dt.date(data.year, 1, 1)
    kpis = year_kpis(data, state, end)
    files = write_outputs(out, data, state, kpis)
    return SimulationResult(state=state, files=files, kpis=kpis)
