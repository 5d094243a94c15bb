"""Tests of ``matching simulate --resume`` on checkpoints it must refuse.

A checkpoint that does not belong to the run, or that was changed or damaged since it was
written, is refused with exit code 2 and a message naming the file, never a traceback, never a
year of wrong numbers; the folder's files are left as they were. The tiny year (60 units, 120
demands, three monthly rounds) checkpointed after round 2 is shared by every test and copied.
"""

from __future__ import annotations

import dataclasses
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
