"""Checkpoints of a simulated year: the state after every round, written atomically.

The state is what the next round needs beyond the inputs (which are regenerated or re-read from
the scenario): the year so far, the ledgers of units and demands (status, orientation, refusals),
the allocations and offers accepted so far, the per-round summaries and wall times. It is written
to ``OUT/state/round-NNN/`` through a temporary folder renamed into place, then the pointer
``OUT/state/latest.json`` is replaced atomically (``os.replace``): a run killed at any moment
leaves either the previous checkpoint or the new one, never half of one. ``manifest.json``
records the SHA-256 of each byte-stable file as written, and ``--resume`` checks it and the
shape of every file before using them: a checkpoint damaged or edited since is refused, naming
the file. ``--resume`` reads the pointer and continues with the next round; since every draw
is keyed (`draws`) and every solve deterministic, the resumed run writes the same files as an
uninterrupted one, and no allocation is lost or counted twice (the ledgers are saved with the
round that made them).
"""

from __future__ import annotations

import csv
import hashlib
import io
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
from matching.simulation.inputs import inputs_changed

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

_LEDGERS: dict[str, dict[str, str]] = {
    "units.csv": UNIT_LEDGER, "demands.csv": DEMAND_LEDGER,
    "allocations.csv": ALLOCATION_LEDGER, "offers.csv": OFFER_LEDGER,
}  # fmt: skip

STATE_DIR = "state"
POINTER = "latest.json"
TIMINGS = "timings.json"
"""The checkpoint's wall times, kept apart from the byte-stable ``state.json``."""
MANIFEST = "manifest.json"
"""The SHA-256 and line count of every byte-stable file of the checkpoint (not the timings)."""
CHECKED = ("state.json", "units.csv", "demands.csv", "allocations.csv", "offers.csv")
"""The files the manifest vouches for; ``timings.json`` (wall times) is checked by its shape."""
MANIFEST_FORMAT = 1


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
    inputs: dict[str, Any] = field(default_factory=dict)
    """The parts of the fingerprint (`YearData.fingerprint_parts`), so that ``--resume`` can
    say which input or setting differs; empty in a checkpoint written before they were kept."""


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


def _read_csv(path: Path, schema: dict[str, str], data: bytes | None = None) -> pd.DataFrame:
    """A ledger of the checkpoint; a `CheckpointError` names the file and, if it can, the row.

    ``data``: the file's bytes, when they were read already (`_verify`).
    """
    dtypes = {c: (str if t == "str" else t) for c, t in schema.items()}
    try:
        source = io.BytesIO(data) if data is not None else path
        frame = pd.read_csv(source, dtype=dtypes, keep_default_na=False)
    except FileNotFoundError:
        raise _damaged(path, "the file is missing") from None
    except (OSError, ValueError) as exc:  # a parser error, bad UTF-8, a row cut short
        try:
            problem = _csv_problem(data if data is not None else path.read_bytes(), schema)
        except OSError:
            problem = None
        raise _damaged(path, problem or f"unreadable ({exc})") from None
    if list(frame.columns) != list(schema):
        raise _damaged(path, f"columns {list(frame.columns)}, expected {list(schema)}")
    return typed(frame, schema)


def _csv_problem(data: bytes, schema: dict[str, str]) -> str | None:
    """The first row of a ledger's bytes that pandas could not read, in words.

    Row 1 is the first data row. pandas says "invalid literal for int()" with neither row nor
    column; this says which.
    """
    try:
        rows = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
        header = next(rows, [])
        for number, row in enumerate(rows, start=1):
            if len(row) != len(header):
                return f"row {number} has {len(row)} fields, the header {len(header)}"
            for name, value in zip(header, row, strict=True):
                if schema.get(name, "str") != "str" and not _is_int(value):
                    return f"row {number}, column '{name}': {value!r} is not a whole number"
    except (ValueError, csv.Error):  # bad UTF-8 is a ValueError
        return None
    return None


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _damaged(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: damaged checkpoint: {reason}; run without --resume to start the year over"
    )


def _read_json(path: Path, data: bytes | None = None) -> Any:
    try:
        return json.loads(data.decode("utf-8") if data is not None else path.read_text("utf-8"))
    except FileNotFoundError:
        raise _damaged(path, "the file is missing") from None
    except (OSError, ValueError) as exc:  # bad UTF-8 and bad JSON are ValueErrors
        raise _damaged(path, f"not readable JSON ({exc})") from None


def _whole(value: Any) -> bool:
    """A JSON whole number (``true`` is not one, though Python's bool is an int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _file_record(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "lines": data.count(b"\n")}


def save_checkpoint(out: Path, state: SimulationState) -> Path:
    """Write the state after its round, atomically, and drop the older checkpoints.

    ``manifest.json`` records the SHA-256 of every byte-stable file as written, so that
    ``--resume`` refuses a checkpoint whose tables lost, gained or changed rows since (they
    would otherwise resume quietly, or misaligned with the inputs).
    """
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
    if state.inputs:
        meta["inputs"] = state.inputs
    (tmp / "state.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    # wall times apart: every other file of the checkpoint is byte-stable for the same inputs
    (tmp / TIMINGS).write_text(json_text({"rounds": state.timings}), encoding="utf-8")
    _write_csv(state.units, tmp / "units.csv")
    _write_csv(state.demands, tmp / "demands.csv")
    _write_csv(state.allocations, tmp / "allocations.csv")
    _write_csv(state.offers, tmp / "offers.csv")
    manifest = {
        "format": MANIFEST_FORMAT,
        "round": state.round,
        "files": {n: _file_record((tmp / n).read_bytes()) for n in CHECKED},
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
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


def load_checkpoint(
    out: Path, fingerprint: str, inputs: dict[str, Any] | None = None
) -> SimulationState | None:
    """The latest checkpoint in ``out``, or None when there is none.

    Every file is checked before it is used, so that a damaged checkpoint is refused with the
    file's name (and the row where it can) rather than a traceback or a year of wrong counts.

    Raises
    ------
    CheckpointError
        The checkpoint is damaged or unreadable (the message names the file), or was written by
        a run with other inputs or settings.
    """
    pointer = out / STATE_DIR / POINTER
    if not pointer.exists():
        return None
    number, folder = _read_pointer(pointer)
    files = _verify(folder, number)  # read once: checked, then parsed
    meta_path = folder / "state.json"
    meta = _read_meta(meta_path, number, pointer, files["state.json"])
    if meta["fingerprint"] != fingerprint:
        before = meta.get("inputs")
        changed = (
            inputs_changed(before, inputs)
            if isinstance(before, dict) and inputs is not None
            else []
        )
        what = f" ({'; '.join(changed)})" if changed else ""
        raise CheckpointError(
            f"{out}: the checkpoint was written by a run with other inputs or settings{what}; "
            "use another --out folder, or run without --resume to start over"
        )
    try:
        year = YearSoFar.model_validate(meta["year_so_far"])
    except ValueError as exc:  # pydantic's ValidationError
        raise _damaged(meta_path, f"'year_so_far' is not a year so far ({exc})") from None
    return SimulationState(
        round=number,
        fingerprint=meta["fingerprint"],
        year=year,
        units=_read_csv(folder / "units.csv", UNIT_LEDGER, files["units.csv"]),
        demands=_read_csv(folder / "demands.csv", DEMAND_LEDGER, files["demands.csv"]),
        allocations=_read_csv(
            folder / "allocations.csv", ALLOCATION_LEDGER, files["allocations.csv"]
        ),
        offers=_read_csv(folder / "offers.csv", OFFER_LEDGER, files["offers.csv"]),
        rounds=meta["rounds"],
        timings=_read_timings(folder / TIMINGS, number),
        inputs=meta["inputs"] if isinstance(meta.get("inputs"), dict) else {},
    )


UNIT_STATUSES = ("not_released", "carried", "allocated")
DEMAND_STATUSES = ("not_filed", "carried", "allocated", "lapsed")


def check_ledgers(
    out: Path, state: SimulationState, unit_ids: pd.Series, demand_ids: pd.Series
) -> None:
    """The checkpoint's ledgers list the year's units and demands, in order, with known statuses.

    The manifest and the fingerprint already vouch for it; this guards the rounds against a
    checkpoint whose manifest was rewritten by hand after an edit (a short ledger was a
    traceback, an unknown status counted nowhere).
    """
    folder = out / STATE_DIR / f"round-{state.round:03d}"
    for name, ledger, ids, key, statuses in (
        ("units.csv", state.units, unit_ids, "unit_id", UNIT_STATUSES),
        ("demands.csv", state.demands, demand_ids, "demand_id", DEMAND_STATUSES),
    ):
        if list(ledger[key]) != [str(i) for i in ids]:
            raise _damaged(folder / name, f"its {key}s are not the year's, in their order")
        unknown = sorted(set(ledger["status"]) - set(statuses))
        if unknown:
            raise _damaged(folder / name, f"unknown status {unknown[0]!r}")


def _read_pointer(pointer: Path) -> tuple[int, Path]:
    """The round and folder ``latest.json`` names, as `save_checkpoint` writes them.

    The folder must be the round's own (``round-NNN``): nothing outside ``state/`` is read.
    """
    raw = _read_json(pointer)
    if not isinstance(raw, dict) or "round" not in raw or "folder" not in raw:
        raise _damaged(pointer, f'expected {{"round": N, "folder": "round-NNN"}}, found {raw!r}')
    number = raw["round"]
    if not _whole(number) or number < 1:
        raise _damaged(pointer, f"'round' must be a whole number from 1, found {number!r}")
    name = f"round-{number:03d}"
    if raw["folder"] != name:
        raise _damaged(
            pointer, f"'folder' must be {name!r} for round {number}, found {raw['folder']!r}"
        )
    folder = pointer.parent / name
    if not folder.is_dir():
        raise _damaged(folder, f"the folder {pointer} names is missing")
    return number, folder


def _verify(folder: Path, number: int) -> dict[str, bytes]:
    """Every file the manifest lists is as it was written (same SHA-256), or its name is said.

    The line count and, for a table, the first row that cannot be read say how it changed.
    Returns the files' bytes, so that they are parsed from what was checked, not read again.
    """
    path = folder / MANIFEST
    if not path.exists():
        raise _damaged(
            path, "the file is missing (a checkpoint of an earlier version of matching has none)"
        )
    manifest = _read_json(path)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or manifest.get("round") != number
        or not isinstance(files, dict)
        or set(files) != set(CHECKED)
        or not all(
            isinstance(r, dict) and isinstance(r.get("sha256"), str) and _whole(r.get("lines"))
            for r in files.values()
        )
    ):
        raise _damaged(
            path,
            f"expected format {MANIFEST_FORMAT}, round {number} and the SHA-256 of "
            f"{', '.join(CHECKED)}",
        )
    checked: dict[str, bytes] = {}
    for name in CHECKED:
        file = folder / name
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise _damaged(file, "the file is missing") from None
        except OSError as exc:
            raise _damaged(file, f"unreadable ({exc})") from None
        if _file_record(data) != files[name]:
            how = _how_changed(file, data, files[name]["lines"])
            raise _damaged(file, f"changed since the checkpoint was written ({how})")
        checked[name] = data
    return checked


def _how_changed(file: Path, data: bytes, lines: int) -> str:
    """How a file differs from the one written, as far as can be said without the original."""
    if not data:
        return "the file is empty"
    schema = _LEDGERS.get(file.name)
    problem = _csv_problem(data, schema) if schema is not None else None
    if problem is not None:
        return problem
    now = data.count(b"\n")
    if now != lines:  # a table's header is its first line
        unit, drop = ("rows", 1) if schema is not None else ("lines", 0)
        return f"{now - drop} {unit}, {lines - drop} written"
    return f"its SHA-256 differs from the one in {MANIFEST}"


_SUMMARY_KEYS: dict[str, type] = {"round": int, "date": str, "counts": dict, "rates": dict}
"""What a round's summary in ``state.json`` holds, at least (`play_round`, ``rounds.csv``)."""


def _read_meta(path: Path, number: int, pointer: Path, data: bytes) -> dict[str, Any]:
    """``state.json`` (its bytes ``data``): of round ``number``, one summary per round so far."""
    meta = _read_json(path, data)
    if not isinstance(meta, dict):
        raise _damaged(path, f"expected an object, found {type(meta).__name__}")
    for key, kind in (("round", int), ("fingerprint", str), ("year_so_far", dict)):
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise _damaged(path, f"{key!r} must be a {kind.__name__}, found {meta.get(key)!r}")
    if meta["round"] != number:
        raise _damaged(path, f"'round' is {meta['round']}, but {pointer} says {number}")
    rounds = meta.get("rounds")
    if not isinstance(rounds, list) or len(rounds) != number:
        raise _damaged(path, f"'rounds' must list the summaries of rounds 1 to {number}")
    for index, summary in enumerate(rounds, start=1):
        ok = isinstance(summary, dict) and all(
            isinstance(summary.get(k), kind) for k, kind in _SUMMARY_KEYS.items()
        )
        if not ok or summary["round"] != index:
            raise _damaged(path, f"'rounds' item {index} is not the summary of round {index}")
    return meta


def _read_timings(path: Path, number: int) -> list[dict[str, Any]]:
    """The wall times of rounds 1 to ``number`` (``timings.json`` of the checkpoint)."""
    raw = _read_json(path)
    rounds = raw.get("rounds") if isinstance(raw, dict) else None
    if not isinstance(rounds, list) or [
        t.get("round") if isinstance(t, dict) else None for t in rounds
    ] != list(range(1, number + 1)):
        raise _damaged(path, f"'rounds' must list the wall times of rounds 1 to {number}")
    return rounds


def clear_checkpoints(out: Path) -> None:
    """Remove the checkpoints of an earlier run (a fresh start in the same folder)."""
    shutil.rmtree(out / STATE_DIR, ignore_errors=True)
