"""Command line of ``matching``: the only package that imports click.

Each command parses its options, calls one library function and prints or writes the result.
Expected errors are printed as a message on stderr, never as a traceback, with an exit code that
says what went wrong (`EXIT_CODES`, also in the README). Commands live in the submodules and are
registered here.
"""

from __future__ import annotations

import sys

import click

from matching import __version__
from matching.exceptions import CheckFailedError, InfeasibleError, MatchingError

EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "matching check: the allocation has violations; matching solve: no solution was found "
    "within the time limit",
    2: "bad input: unreadable or invalid data, policy or scenario file, or bad command-line usage",
    3: "infeasible: the hard quotas cannot all hold in this round (the conflicting rules and the "
    "soft-mode diagnosis are printed)",
    4: "internal error: the independent checker rejected the solver's result (a bug: please "
    "report it)",
}
"""Exit codes of every command."""


class MatchingGroup(click.Group):
    """A click group that turns every MatchingError into a clear message and its exit code."""

    def invoke(self, ctx: click.Context) -> object:
        """Run the command, mapping expected errors to exit codes 2, 3 and 4 (`EXIT_CODES`)."""
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


@click.group(
    cls=MatchingGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 success; 1 check found violations, or solve found no solution in "
    "time; 2 bad input or usage; 3 infeasible hard quotas; 4 internal error (please report).",
)
@click.version_option(__version__, prog_name="matching")
def cli() -> None:
    """Allocate French social housing units to scored demands under the legal quotas."""


def _register() -> None:
    """Attach the commands of the submodules (imported here to keep import order explicit)."""
    from matching.cli import commands  # noqa: F401  (registers on import)


def main() -> None:
    """Console-script entry point."""
    _register()
    cli(prog_name="matching")
