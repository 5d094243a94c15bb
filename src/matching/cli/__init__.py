"""Command line of ``matching``: the only package that imports click.

Each command parses its options, calls one library function and prints or writes the result.
Expected errors are printed as a message on stderr, never as a traceback, with an exit code that
says what went wrong (`EXIT_CODES`, also in the README). Commands live in the submodules and are
listed here (`COMMANDS`); a command's module is imported only when that command runs.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import click

from matching import __version__
from matching.exceptions import CheckFailedError, InfeasibleError, MatchingError

EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "matching check: the allocation has violations; matching solve: no solution was found "
    "within the time limit",
    2: "bad input: unreadable or invalid data, policy or scenario file, an output folder that "
    "cannot be created or a file that cannot be written (a full disk), or bad command-line "
    "usage",
    3: "infeasible: the hard quotas cannot all hold in this round (the conflicting rules and the "
    "soft-mode diagnosis are printed)",
    4: "internal error: the independent checker rejected the solver's result (a bug: please "
    "report it)",
    130: "interrupted (Ctrl-C, SIGINT: 128 + 2); `simulate --resume` continues a year from "
    "its last checkpoint",
    141: "the reader of the output went away (``| head``): the command stopped at its next "
    "line, as one stopped by SIGPIPE (128 + 13); `solve` prints after writing its folder",
}
"""Exit codes of every command."""

READER_GONE = 128 + signal.SIGPIPE
"""The exit code of a command whose output pipe was closed: the shells' code for SIGPIPE."""

INTERRUPTED = 128 + signal.SIGINT
"""The exit code of a command stopped by Ctrl-C: the shells' code for SIGINT (click's 1 read as
"no solution in time")."""


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives, and its one-line help (the command declares the same text)."""

    module: str
    attribute: str
    short_help: str


COMMANDS: dict[str, LazyCommand] = {
    "check": LazyCommand(
        "matching.cli.check", "check_command", "Audit an allocation against every rule."
    ),
    "compare": LazyCommand(
        "matching.cli.compare", "compare_command", "Compare allocation policies over a year."
    ),
    "eligibility": LazyCommand(
        "matching.cli.eligibility", "eligibility_command", "Count eligible demands per unit."
    ),
    "explain-demand": LazyCommand(
        "matching.cli.explain",
        "explain_demand_command",
        "Explain what became of one household in a solved round.",
    ),
    "explain-score": LazyCommand(
        "matching.cli.eligibility", "explain_score_command", "Explain one demand's score."
    ),
    "generate": LazyCommand(
        "matching.cli.generate", "generate_command", "Generate a territory's units and demands."
    ),
    "scenario": LazyCommand(
        "matching.cli.scenario", "scenario_group", "Inspect scenario files (scenarios/*.yaml)."
    ),
    "score": LazyCommand(
        "matching.cli.eligibility", "score_command", "Score every demand of a round."
    ),
    "simulate": LazyCommand(
        "matching.cli.simulate", "simulate_command", "Simulate a year of rounds and offers."
    ),
    "solve": LazyCommand(
        "matching.cli.solve", "solve_command", "Allocate one round and write its folder."
    ),
    "why-not": LazyCommand(
        "matching.cli.eligibility",
        "why_not_command",
        "Explain why a unit cannot go to a household.",
    ),
}
"""Every command of the ``matching`` group.

Why lazy: importing every command's module (pandas, the solver with ortools, highspy and scipy)
took 1.0-1.7 s before ``matching --help`` could print; ``--help`` now imports none of them, and
a command imports only what it uses (``check`` never loads the solver).
"""


def short_help(name: str) -> str:
    """The one-line help of command ``name``, for its decorator (one text for both places)."""
    return COMMANDS[name].short_help


def id_argument(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A unit or demand id argument, spaces around it ignored as they are in the data's cells.

    Why: a pasted ``" U2026-000001 "`` was "no unit U2026-000001" where the files hold it.
    """
    return click.argument(name, callback=lambda _ctx, _param, value: value.strip())


class MatchingGroup(click.Group):
    """A click group that turns every MatchingError into a clear message and its exit code.

    Its commands are imported on first use (`COMMANDS`); commands added with ``add_command``
    (tests) work as in any click group.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, sorted, without importing any of them."""
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command of that name, its module imported now if it was not yet."""
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.load(cmd_name)
        return self.commands.get(cmd_name)

    def load(self, name: str) -> click.Command:
        """Import command ``name`` of `COMMANDS` and add it to the group."""
        where = COMMANDS[name]
        command: click.Command = getattr(importlib.import_module(where.module), where.attribute)
        self.add_command(command, name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, from `COMMANDS`: no command module is imported."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is not None and command.hidden:
                continue
            text = command.get_short_help_str(80) if command is not None else short_help(name)
            rows.append((name, text))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        """Run the command, mapping expected errors to exit codes 2, 3 and 4 (`EXIT_CODES`).

        The library's warnings (logger ``matching``: a policy valid but rarely meant, an LP
        unfinished in time) are printed on stderr as ``warning: ...`` while it runs.
        """
        # the command line, read before click hands it to the command (for `_os_problem`);
        # `_protected_args` since click 8.2, `protected_args` before
        protected = getattr(ctx, "_protected_args", None)
        args = [*(ctx.protected_args if protected is None else protected), *ctx.args]
        echo = _EchoWarnings(logging.WARNING)
        library = logging.getLogger("matching")
        library.addHandler(echo)
        try:
            return super().invoke(ctx)
        except CheckFailedError as exc:
            click.echo(
                f"internal error: {exc}\n"
                "This is a bug in matching, not in your data: please report it, with the "
                "command and its input files.",
                err=True,
            )
            sys.exit(4)
        except InfeasibleError as exc:
            click.echo(f"infeasible: {exc}", err=True)
            sys.exit(3)
        except MatchingError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except BrokenPipeError:
            _reader_gone()  # not a problem with the files (``| head``)
        except KeyboardInterrupt:
            # click's own handling prints "Aborted!" and exits 1, which scripts read as "no
            # solution in time" (`EXIT_CODES`)
            hint = ""
            if args[:1] == ["simulate"]:
                hint = "; run the same command with --resume to continue from the last round done"
            click.echo(f"interrupted{hint}", err=True)
            sys.exit(INTERRUPTED)
        except OSError as exc:
            # a file that cannot be written or read mid-run (a full disk, a quota, a folder
            # removed meanwhile): the readers and `io` writers name the file themselves; the
            # simulation's checkpoints and summaries reach here, with the folder of `--out`
            click.echo(f"error: {_os_problem(exc, args)}", err=True)
            sys.exit(2)
        finally:
            library.removeHandler(echo)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: object,
    ) -> click.Context:
        """The group's context; ``matching --help | head`` exits as a closed pipe (141) too."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError:
            _reader_gone()


def _reader_gone() -> NoReturn:
    """Exit with `READER_GONE`, silently: the output's reader went away (``| head``).

    click's own handling exits with code 1, which reads as "no solution in time" (`EXIT_CODES`).
    What is left in stdout's buffer goes to /dev/null, so that Python's flush at exit does not
    print a second BrokenPipeError.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(READER_GONE)


def _os_problem(exc: OSError, args: list[str]) -> str:
    """What an OSError says, with the file it names or else the command's ``--out`` folder."""
    reason = exc.strerror or str(exc)
    if exc.filename:
        return f"cannot read or write {exc.filename} ({reason})"
    out = next(
        (
            nxt if arg == "--out" else arg.removeprefix("--out=")
            for arg, nxt in zip(args, [*args[1:], ""], strict=True)
            if arg == "--out" or arg.startswith("--out=")
        ),
        None,
    )
    where = f" in the output folder {out}" if out else ""
    return f"cannot write a file{where} ({reason})"


class _EchoWarnings(logging.Handler):
    """Prints each record on stderr as ``warning: <message>`` (no logger name, no level)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"warning: {record.getMessage()}", err=True)


@click.group(
    cls=MatchingGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 success; 1 check found violations, or solve found no solution in "
    "time; 2 bad input or usage; 3 infeasible hard quotas; 4 internal error (please report); "
    "130 interrupted (Ctrl-C); 141 the output's reader went away (| head).",
)
@click.version_option(__version__, prog_name="matching")
def cli() -> None:
    """Allocate French social housing units to scored demands under the legal quotas."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="matching")
