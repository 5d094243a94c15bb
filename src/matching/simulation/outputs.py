"""The files of a simulated year: per-round tables, the year's tables, KPIs and wall times.

Ids and aggregates only (the demands file lists each demand's status and round, not the
household's data). Everything but ``timings.json`` is byte-stable for the same inputs and seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from matching.io import json_text, make_folder, write_table
from matching.simulation.inputs import YearData
from matching.simulation.periods import Period
from matching.simulation.state import (
    SimulationState,
)

YEAR_FILES: tuple[str, ...] = (
    "allocations.csv", "offers.csv", "units.csv", "demands.csv", "rounds.csv",
    "kpis.json", "year_so_far.json", "timings.json",
)  # fmt: skip
"""The files `write_outputs` writes in a run's folder (``rounds/`` and ``state/`` beside)."""


def write_round(
    out: Path, period: Period, summary: dict[str, Any], tables: dict[str, pd.DataFrame]
) -> None:
    """Write one round's tables and ``round.json`` to ``out/rounds/NN-DATE/``."""
    folder = make_folder(out / "rounds" / period.label)
    for name, frame in tables.items():
        write_table(frame.reset_index(drop=True), folder / f"{name}.csv")
    (folder / "round.json").write_text(json_text(summary), encoding="utf-8")


def _final_units(data: YearData, state: SimulationState) -> pd.DataFrame:
    led = state.units.copy()
    led.insert(1, "released_on", pd.to_datetime(data.units["released_on"]).dt.date.astype(str))
    vacant = led["status"] == "carried"
    led.loc[vacant & (led["reason"] == ""), "reason"] = "not_yet_offered"
    # As a demand filed after the last round says so: no unit without a reason.
    led.loc[led["status"] == "not_released", "reason"] = "released_after_the_last_round"
    return led


def _final_demands(state: SimulationState) -> pd.DataFrame:
    led = state.demands.copy()
    led.loc[led["status"] == "carried", "reason"] = "waiting_at_year_end"
    led.loc[led["status"] == "not_filed", "reason"] = "filed_after_the_last_round"
    return led


def write_outputs(
    out: Path, data: YearData, state: SimulationState, kpis: dict[str, Any]
) -> list[Path]:
    """The year's files: allocations, offers, units, demands, rounds, KPIs, year so far, timings.

    Ids and aggregates only: the demands file lists each demand's status and round, not the
    household's data.
    """
    files = {
        "allocations.csv": state.allocations,
        "offers.csv": state.offers,
        "units.csv": _final_units(data, state),
        "demands.csv": _final_demands(state),
        "rounds.csv": _rounds_table(state.rounds),
    }
    written = []
    for name, frame in files.items():
        write_table(frame, out / name)
        written.append(out / name)
    texts = {
        "kpis.json": json_text(kpis),
        "year_so_far.json": json_text(state.year.model_dump(mode="json")),
        "timings.json": json_text({"rounds": state.timings}),
    }
    for name, text in texts.items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written


def _rounds_table(rounds: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in rounds:
        row: dict[str, Any] = {"round": r["round"], "date": r["date"]}
        row.update(r["counts"])
        row.update({f"rate.{k}": ("" if v is None else v) for k, v in r["rates"].items()})
        row["soft_solves"] = r["counts"].get("soft_solves", 0)
        rows.append(row)
    return pd.DataFrame(rows)
