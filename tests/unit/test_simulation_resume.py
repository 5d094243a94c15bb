"""Tests of ``matching simulate --resume`` on checkpoints it must refuse.

A checkpoint that does not belong to the run, or that was changed or damaged since it was
written, is refused with exit code 2 and a message naming the file, never a traceback, never a
year of wrong numbers; the folder's files are left as they were. The tiny year (60 units, 120
demands, three monthly rounds) checkpointed after round 2 is shared by every test and copied.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from matching.cli import cli
from matching.cli import commands as _commands  # noqa: F401  (registers the commands)
from matching.scenario import load_scenario
from matching.simulation.config import SimulationSettings
from matching.simulation.engine import YearData, simulate, year_data
from matching.simulation.state import CheckpointError

TINY = Path(__file__).resolve().parents[2] / "scenarios" / "tiny-year.yaml"
CHECKPOINT = Path("state") / "round-002"


def run(*args: str) -> tuple[int, str]:
    """``matching simulate TINY ARGS``: exit code and output (stdout and stderr)."""
    got = CliRunner().invoke(cli, ["simulate", str(TINY), *args])
    if got.exception is not None and not isinstance(got.exception, SystemExit):
        raise AssertionError(f"traceback, exit {got.exit_code}: {got.exception!r}\n{got.output}")
    return got.exit_code, got.output


@pytest.fixture(scope="module")
def after_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of the tiny year stopped after two rounds (checkpoint ``round-002``)."""
    out = tmp_path_factory.mktemp("sim") / "after-two"
    code, output = run("--out", str(out), "--rounds", "2")
    assert code == 0, output
    return out


@pytest.fixture
def copy(after_two: Path, tmp_path: Path) -> Path:
    """A copy of the two-round folder, free to damage."""
    return Path(shutil.copytree(after_two, tmp_path / "out"))


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file of a run's folder, by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def refused(out: Path, *args: str) -> str:
    """Resume ``out`` and expect a refusal: exit 2, no file changed; the message."""
    before = files_of(out)
    code, output = run("--out", str(out), "--resume", *args)
    assert code == 2, output
    assert "Traceback" not in output and output.startswith("error: "), output
    assert files_of(out) == before, "a refused --resume changed the folder"
    return output


# --- The round limit --------------------------------------------------------------------------


def test_resume_with_fewer_rounds_than_the_checkpoint_is_refused(copy: Path) -> None:
    """A checkpoint after round 2 resumed with ``--rounds 1``: refused, not a 1-round year.

    It wrote "12 rounds to 2026-01-31" (the year end of round 1, the rounds of the checkpoint),
    and vacancy days counted to a date before the units were let.
    """
    output = refused(copy, "--rounds", "1")
    assert "round 2" in output and "--rounds" in output


def test_resume_at_the_round_limit_rewrites_the_same_year(copy: Path) -> None:
    """At round 2 with ``--rounds 2`` nothing is left to play: the same files again."""
    before = files_of(copy)
    code, output = run("--out", str(copy), "--resume", "--rounds", "2")
    assert code == 0, output
    after = files_of(copy)
    assert {k: v for k, v in after.items() if "timings" not in k} == {
        k: v for k, v in before.items() if "timings" not in k
    }


# --- The inputs ---------------------------------------------------------------------------------


def _edit(frame: pd.DataFrame, column: str, change: Callable[[object], object]) -> pd.DataFrame:
    """A copy of ``frame`` with the value of ``column`` on its third row changed."""
    out = frame.copy()
    out.loc[2, column] = change(out.loc[2, column])
    return out


@pytest.mark.parametrize(
    ("table", "column", "change"),
    [
        ("units", "rent_eur", lambda v: v + 1.0),
        ("units", "qpv", lambda v: not v),
        ("demands", "annual_income_eur", lambda v: v * 2),
        ("demands", "priority_categories", lambda v: ("dalo_prioritaire",)),
    ],
)
def test_resume_refuses_inputs_whose_contents_changed(
    tmp_path: Path, table: str, column: str, change: Callable[[object], object]
) -> None:
    """Same ids, one value changed in the units or demands: the checkpoint is not this run's.

    The fingerprint covered the ids only, so a rent or a QPV flag edited between a stopped run
    and its --resume gave a year made of both versions of the data.
    """
    scenario = load_scenario(TINY)
    data = year_data(scenario, settings=SimulationSettings(last_round=1))
    simulate(data, tmp_path)
    edited: YearData = dataclasses.replace(
        data, **{table: _edit(getattr(data, table), column, change)}
    )
    assert edited.fingerprint() != data.fingerprint()
    with pytest.raises(CheckpointError, match="other inputs or settings"):
        simulate(edited, tmp_path, resume=True)
    assert (
        data.fingerprint()
        == year_data(scenario, settings=SimulationSettings(last_round=1)).fingerprint()
    ), "the fingerprint must not depend on the process"


def test_resume_with_another_seed_or_policy_says_which(copy: Path) -> None:
    """The message "other inputs or settings" named nothing: the planner had to guess."""
    before = files_of(copy)
    code, output = run("--out", str(copy), "--resume", "--seed", "2")
    assert code == 2, output
    assert "(solver.seed 2 (the checkpoint's 1); the seed (--seed) 2 (the checkpoint's 1); " in (
        output
    )
    code, output = run("--out", str(copy), "--resume", "--policy", "bands")
    assert code == 2, output
    assert "settings (simulation.allocation_policy 'bands' (the checkpoint's 'optimal')); " in (
        output
    )
    assert files_of(copy) == before


# --- The checkpoint's files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"round": 2, "folder": 5}',
        "[1]",
        "null",
        '{"round": 2}',
        '{"round": "2", "folder": "round-002"}',
        '{"round": 2, "folder": "../../.."}',
        '{"round": 3, "folder": "round-003"}',
        '{"round": 2, "fol',
    ],
)
def test_resume_refuses_a_malformed_pointer(copy: Path, text: str) -> None:
    """``state/latest.json`` not the pointer ``save_checkpoint`` writes: refused, naming it.

    ``{"round": 2, "folder": 5}``, ``[1]`` and ``null`` were tracebacks (exit 1).
    """
    (copy / "state" / "latest.json").write_text(text)
    assert str(copy / "state" / "latest.json") in refused(copy)


def _edit_json(key: str, value: object) -> Callable[[object], object]:
    def edit(meta: object) -> object:
        assert isinstance(meta, dict)
        return {**meta, key: value}

    return edit


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        ("state.json", _edit_json("rounds", 5)),
        ("state.json", _edit_json("round", 99)),
        ("state.json", _edit_json("round", -2)),
        ("state.json", _edit_json("year_so_far", "none")),
        ("state.json", lambda meta: [meta]),
        ("timings.json", _edit_json("rounds", 5)),
        ("timings.json", lambda meta: []),
    ],
)
def test_resume_refuses_a_malformed_state(
    copy: Path, name: str, edit: Callable[[object], object]
) -> None:
    """``state.json`` or ``timings.json`` of another shape, or another round: refused, naming it.

    ``"rounds": 5`` was a traceback; ``"round": 99`` or ``-2`` wrote a year of wrong counts.
    """
    path = copy / CHECKPOINT / name
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    assert str(path) in refused(copy)


def _cut_mid_row(text: str) -> str:
    """The file cut in the middle of its last row (a disk full, a copy interrupted)."""
    return text[: len(text) - len(text.splitlines()[-1]) // 2 - 1]


@pytest.mark.parametrize("name", ["units.csv", "demands.csv", "allocations.csv", "offers.csv"])
def test_resume_names_the_table_cut_mid_row(copy: Path, name: str) -> None:
    """A row cut short: the message names that table (it named ``latest.json``) and the row."""
    path = copy / CHECKPOINT / name
    text = path.read_text()
    path.write_text(_cut_mid_row(text))
    output = refused(copy)
    assert str(path) in output and str(copy / "state" / "latest.json") not in output
    assert f"row {len(text.splitlines()) - 1}" in output


def _first_rows(text: str) -> str:
    """``head -3``: the header and two rows, the others lost."""
    return "".join(text.splitlines(keepends=True)[:3])


def _rows_reversed(text: str) -> str:
    lines = text.splitlines(keepends=True)
    return lines[0] + "".join(reversed(lines[1:]))


def _replace(old: str, new: str) -> Callable[[str], str]:
    return lambda text: text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("allocations.csv", _first_rows),
        ("offers.csv", _first_rows),
        ("units.csv", _first_rows),
        ("demands.csv", _first_rows),
        ("units.csv", _rows_reversed),
        ("units.csv", _replace(",allocated,", ",carried,")),
        ("demands.csv", _replace(",allocated,", ",lapsed,")),
        ("state.json", _replace('"allocated": ', '"allocated": 1')),
    ],
)
def test_resume_refuses_a_file_changed_since_the_checkpoint(
    copy: Path, name: str, damage: Callable[[str], str]
) -> None:
    """Rows lost, shuffled or edited in a checkpoint file: refused, naming the file.

    Allocations or offers cut to two rows resumed with exit 0 and dropped the others from the
    year's files; a shuffled or edited units table resumed with counts that did not add up; a
    units or demands table cut short was a traceback.
    """
    path = copy / CHECKPOINT / name
    text = path.read_text()
    assert damage(text) != text
    path.write_text(damage(text))
    assert str(path) in refused(copy)


@pytest.mark.parametrize("text", [None, "[]", '{"format": 1, "round": 2, "files": {}}'])
def test_resume_refuses_a_checkpoint_without_its_manifest(copy: Path, text: str | None) -> None:
    """No ``manifest.json`` (an earlier version's checkpoint), or one of another shape."""
    path = copy / CHECKPOINT / "manifest.json"
    if text is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(text)
    assert str(path) in refused(copy)


# --- No checkpoint ------------------------------------------------------------------------------


def test_resume_without_a_checkpoint_is_refused(tmp_path: Path) -> None:
    """``--resume`` on a folder with no checkpoint (a typo in --out): refused, nothing written.

    It started a new year there, quietly, and removed the folder's ``rounds/``.
    """
    missing = tmp_path / "typo"
    code, output = run("--out", str(missing), "--resume")
    assert code == 2 and "no checkpoint" in output and str(missing) in output, output
    assert not missing.exists()
    other = tmp_path / "other"
    (other / "rounds").mkdir(parents=True)
    (other / "rounds" / "notes.txt").write_text("kept")
    assert "no checkpoint" in refused(other)


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("units.csv", _first_rows),
        ("demands.csv", _first_rows),
        ("units.csv", _rows_reversed),
        ("units.csv", _replace(",allocated,", ",let,")),
    ],
)
def test_resume_refuses_ledgers_edited_with_their_manifest(
    copy: Path, name: str, damage: Callable[[str], str]
) -> None:
    """A ledger edited and the manifest rewritten to match: still refused, naming the ledger.

    A units or demands table cut short was a traceback (exit 1) once past the manifest.
    """
    path = copy / CHECKPOINT / name
    data = damage(path.read_text()).encode()
    path.write_bytes(data)
    manifest_path = copy / CHECKPOINT / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][name] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "lines": data.count(b"\n"),
    }
    manifest_path.write_text(json.dumps(manifest))
    assert str(path) in refused(copy)
