"""Checkpoints of a simulated year: the state after every round, written atomically.

The state is what the next round needs beyond the inputs (which are regenerated or re-read from
the scenario): the year so far, the ledgers of units and demands (status, orientation, refusals),
the allocations and offers accepted so far, the per-round summaries and wall times. It is written
to ``OUT/state/round-NNN/`` through a temporary folder renamed into place, then the pointer
``OUT/state/latest.json`` is replaced atomically (``os.replace``): a run killed at any moment
leaves either the previous checkpoint or the new one, never half of one. ``--resume`` reads the
pointer and continues with the next round; since every draw is keyed (`draws`) and every solve
deterministic, the resumed run writes the same files as an uninterrupted one, and no allocation
is lost or counted twice (the ledgers are saved with the round that made them).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matching.exceptions import MatchingError
from matching.flux import YearSoFar
from matching.io import json_text

UNIT_LEDGER: dict[str, str] = {
    "unit_id": "str", "status": "str", "oriented_to": "str", "oriented_on": "str",
    "returned_on": "str", "refused_offers": "int64", "round": "int64", "demand_id": "str",
    "rank": "int64", "reason": "str",
}  # fmt: skip
"""Per released unit: ``not_released`` / ``carried`` (vacant) / ``allocated``, and how."""

DEMAND_LEDGER: dict[str, str] = {
    "demand_id": "str", "status": "str", "round": "int64", "on": "str", "refusals": "int64",
    "unit_id": "str", "reason": "str",
}  # fmt: skip
"""Per demand: ``not_filed`` / ``carried`` (pending) / ``allocated`` / ``lapsed``, and when."""

ALLOCATION_LEDGER: dict[str, str] = {
    "round": "int64", "round_date": "str", "unit_id": "str", "demand_id": "str",
    "reservataire": "str", "score": "int64", "rank": "int64", "solve": "str",
}  # fmt: skip
"""Accepted allocations: round, unit, household, réservataire, score, shortlist rank, solve."""

OFFER_LEDGER: dict[str, str] = {
    "round": "int64", "round_date": "str", "unit_id": "str", "rank": "int64",
    "demand_id": "str", "score": "int64", "outcome": "str",
}  # fmt: skip
"""Offers made: one row per candidate reached."""

STATE_DIR = "state"
POINTER = "latest.json"
TIMINGS = "timings.json"
"""The checkpoint's wall times, kept apart from the byte-stable ``state.json``."""


class CheckpointError(MatchingError):
    """A checkpoint is missing, unreadable or belongs to another run."""


@dataclass
class SimulationState:
    """Everything a round changes, as of the end of round ``round`` (0: before the first)."""

    round: int
    fingerprint: str
    year: YearSoFar
    units: pd.DataFrame
    demands: pd.DataFrame
    allocations: pd.DataFrame
    offers: pd.DataFrame
    rounds: list[dict[str, Any]] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)


def empty(schema: dict[str, str]) -> pd.DataFrame:
    """An empty ledger with the schema's columns and dtypes."""
    return typed(pd.DataFrame({c: [] for c in schema}), schema)


def typed(frame: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    """The frame's schema columns, in order, with their dtypes (text as Python ``str``)."""
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for col, dtype in schema.items():
        values = frame[col].to_numpy()
        if dtype == "str":
            out[col] = pd.Series([str(v) for v in values], dtype=object)
        else:
            out[col] = np.asarray(values).astype(np.dtype(dtype))
    return out


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")


def _read_csv(path: Path, schema: dict[str, str]) -> pd.DataFrame:
    dtypes = {c: (str if t == "str" else t) for c, t in schema.items()}
    frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False)
    return typed(frame, schema)


def save_checkpoint(out: Path, state: SimulationState) -> Path:
    """Write the state after its round, atomically, and drop the older checkpoints."""
    root = out / STATE_DIR
    root.mkdir(parents=True, exist_ok=True)
    name = f"round-{state.round:03d}"
    tmp = root / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    meta = {
        "round": state.round,
        "fingerprint": state.fingerprint,
        "year_so_far": state.year.model_dump(mode="json"),
        "rounds": state.rounds,
    }
    (tmp / "state.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    # wall times apart: every other file of the checkpoint is byte-stable for the same inputs
    (tmp / TIMINGS).write_text(json_text({"rounds": state.timings}), encoding="utf-8")
    _write_csv(state.units, tmp / "units.csv")
    _write_csv(state.demands, tmp / "demands.csv")
    _write_csv(state.allocations, tmp / "allocations.csv")
    _write_csv(state.offers, tmp / "offers.csv")
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer_tmp = root / f".{POINTER}.tmp"
    pointer_tmp.write_text(json.dumps({"round": state.round, "folder": name}) + "\n")
    os.replace(pointer_tmp, root / POINTER)
    for old in root.glob("round-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(out: Path, fingerprint: str) -> SimulationState | None:
    """The latest checkpoint in ``out``, or None when there is none.

    Raises
    ------
    CheckpointError
        The checkpoint is unreadable, or was written by a run with other inputs or settings.
    """
    pointer = out / STATE_DIR / POINTER
    if not pointer.exists():
        return None
    try:
        folder = out / STATE_DIR / json.loads(pointer.read_text())["folder"]
        meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        state = SimulationState(
            round=int(meta["round"]),
            fingerprint=str(meta["fingerprint"]),
            year=YearSoFar.model_validate(meta["year_so_far"]),
            units=_read_csv(folder / "units.csv", UNIT_LEDGER),
            demands=_read_csv(folder / "demands.csv", DEMAND_LEDGER),
            allocations=_read_csv(folder / "allocations.csv", ALLOCATION_LEDGER),
            offers=_read_csv(folder / "offers.csv", OFFER_LEDGER),
            rounds=list(meta["rounds"]),
            timings=_read_timings(folder, meta),
        )
    except (OSError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{pointer}: cannot read the checkpoint ({exc})") from None
    if state.fingerprint != fingerprint:
        raise CheckpointError(
            f"{out}: the checkpoint was written by a run with other inputs or settings; "
            "use another --out folder, or run without --resume to start over"
        )
    return state


def _read_timings(folder: Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The wall times of the rounds so far (older checkpoints kept them in ``state.json``)."""
    if "timings" in meta:
        return list(meta["timings"])
    return list(json.loads((folder / TIMINGS).read_text(encoding="utf-8"))["rounds"])


def clear_checkpoints(out: Path) -> None:
    """Remove the checkpoints of an earlier run (a fresh start in the same folder)."""
    shutil.rmtree(out / STATE_DIR, ignore_errors=True)
