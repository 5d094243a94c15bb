"""Command line of ``matching``: the only package that imports click.

Each command parses its options, calls one library function and prints or writes the result. Any
`MatchingError` (bad data, bad policy, infeasible quotas) is printed as a message on stderr with exit
code 2, never as a traceback. Commands live in the submodules and are registered here.
"""

from __future__ import annotations

import sys

import click

from matching import __version__
from matching.exceptions import MatchingError


class MatchingGroup(click.Group):
    """A click group that turns every MatchingError into a clear message and exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        """Run the command, mapping expected errors to exit code 2."""
        try:
            return super().invoke(ctx)
        except MatchingError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=MatchingGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
