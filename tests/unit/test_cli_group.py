"""The ``matching`` group: every command listed, each imported only when it runs.

Why it matters: importing every command's module (pandas, the solver with ortools, highspy and
scipy) made ``matching --help`` take 1.0-1.7 s; the command list now comes from
`matching.cli.COMMANDS`, and each command's module is imported on first use.
"""

from __future__ import annotations

import errno
import importlib
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from matching.cli import COMMANDS, cli

HEAVY = ("pandas", "ortools", "highspy", "scipy", "matching.solver")


def _modules_after(*args: str) -> dict[str, object]:
    """Run ``matching ARGS`` in a fresh interpreter; its exit code, output and heavy imports."""
    code = (
        "import json, sys\n"
        "from matching.cli import main\n"
        f"sys.argv = ['matching', *{list(args)!r}]\n"
        "import io, contextlib\n"
        "out = io.StringIO()\n"
        "try:\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        main()\n"
        "except SystemExit as exc:\n"
        "    status = exc.code\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('matching.cli.') or m in "
        f"{HEAVY!r})\n"
        "print(json.dumps({'status': status, 'out': out.getvalue(), 'loaded': loaded}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_help_lists_every_command_without_importing_any() -> None:
    ran = _modules_after("--help")
    assert ran["status"] == 0
    listed = str(ran["out"]).split("Commands:")[1]
    for name, where in COMMANDS.items():
        assert f"  {name} " in listed and where.short_help in listed
    assert ran["loaded"] == []  # no command module, no pandas, no solver


def test_a_command_imports_its_own_module_only() -> None:
    """``matching check`` reads tables (pandas) but never loads the solver or other commands."""
    ran = _modules_after("check", "--help")
    assert ran["status"] == 0 and "ALLOCATION" in str(ran["out"])
    assert ran["loaded"] == ["matching.cli.check", "pandas"]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_listed_command_is_the_module_command_with_that_help(name: str) -> None:
    where = COMMANDS[name]
    command = getattr(importlib.import_module(where.module), where.attribute)
    assert isinstance(command, click.Command)
    assert command.name == name
    assert command.short_help == where.short_help  # one text: the decorator reads COMMANDS
    assert cli.get_command(click.Context(cli), name) is command


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["solvee"])
    assert result.exit_code == 2
    assert "No such command 'solvee'" in result.output


@pytest.mark.parametrize("name", ["state.json", "round.json"])
def test_a_full_disk_mid_run_is_exit_code_2_naming_the_output_folder(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file the simulation cannot write (a full disk): a message and exit code 2.

    The year's checkpoint (``state.json``) and round summary (``round.json``) are written
    outside `matching.io`, whose writers name the file; the OSError went up as a traceback
    with exit code 1, which scripts read as "no solution in time".
    """
    import matching.cli.commands  # noqa: F401  (registers the commands)

    real = Path.write_text

    def full_disk(self: Path, *args: object, **kwargs: object) -> int:
        if self.name == name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", full_disk)
    out = tmp_path / "year"
    tiny = Path(__file__).resolve().parents[2] / "scenarios" / "tiny-year.yaml"
    got = CliRunner().invoke(cli, ["simulate", str(tiny), "--out", str(out), "--rounds", "1"])
    assert isinstance(got.exception, SystemExit), got.exception  # no traceback
    assert got.exit_code == 2
    assert f"error: cannot write a file in the output folder {out} (No space left on device)" in (
        got.output
    )


@pytest.mark.parametrize("command", [["--help"], ["solve", "tiny.yaml", "--out", "OUT"]])
def test_a_closed_output_pipe_exits_141_quietly(command: list[str], tmp_path: Path) -> None:
    """``matching solve … | head``: exit code 141 (SIGPIPE's), no traceback, the folder written.

    click's own handling exited with code 1, which scripts read as "no solution in time".
    The pipe is closed before the command prints anything, so its first line meets it.
    """
    scenarios = Path(__file__).resolve().parents[2] / "scenarios"
    out = tmp_path / "out"
    args = [str(scenarios / a) if a == "tiny.yaml" else str(out) if a == "OUT" else a
            for a in command]  # fmt: skip
    code = (
        "import sys\nfrom matching.cli import main\nsys.argv = ['matching', *sys.argv[1:]]\nmain()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away at once
    errors = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert errors == ""
    if "solve" in command:  # written before the summary is printed
        assert (out / "allocations.csv").is_file() and (out / "result.json").is_file()
