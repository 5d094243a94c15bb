"""``matching generate``: write the units and demands of a synthetic territory for one year.

Parses the options, calls `matching.generate.generate_territory` and writes ``units.<format>``
and ``demands.<format>`` in the output folder through `matching.io`, so that the files read
back unchanged with ``matching.io.read_units`` / ``read_demands``. Same options, same bytes.
"""

from __future__ import annotations

from pathlib import Path

import click

from matching.cli import short_help
from matching.generate import DEFAULT_DEMANDS, DEFAULT_UNITS, generate_territory
from matching.io import make_folder, write_demands, write_units
from matching.limits import MAX_ROWS, MAX_SEED


@click.command(name="generate", short_help=short_help("generate"))
@click.option(
    "--territory",
    default="caen-la-mer",
    show_default=True,
    help="Bundled territory whose communes, QPV and Q1 thresholds calibrate the data.",
)
@click.option(
    "--year",
    type=click.IntRange(2000, 2100),  # as a scenario's year
    default=2026,
    show_default=True,
    help="Year generated: units released in it, demands pending on its 1 January; a year "
    "whose Q1 threshold is bundled for the territory (Caen la Mer: 2024-2026).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=1,
    show_default=True,
    help="Seed of the random streams; the same seed writes the same bytes.",
)
@click.option(
    "--units",
    "n_units",
    type=click.IntRange(1, MAX_ROWS),
    default=DEFAULT_UNITS,
    show_default=True,
    help="Number of units released over the year.",
)
@click.option(
    "--demands",
    "n_demands",
    type=click.IntRange(1, MAX_ROWS),
    default=DEFAULT_DEMANDS,
    show_default=True,
    help="Number of pending demands.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder (created if missing); existing units/demands files are replaced.",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "parquet"]),
    default="csv",
    show_default=True,
    help="File format of the two tables.",
)
def generate_command(
    territory: str,
    year: int,
    seed: int,
    n_units: int,
    n_demands: int,
    out_dir: Path,
    file_format: str,
) -> None:
    """Generate one year of units and demands of a territory calibrated on public data."""
    units, demands = generate_territory(
        territory=territory, year=year, seed=seed, n_units=n_units, n_demands=n_demands
    )
    make_folder(out_dir)  # refused as a problem with the output, exit code 2
    units_path = out_dir / f"units.{file_format}"
    demands_path = out_dir / f"demands.{file_format}"
    write_units(units, units_path)
    click.echo(f"wrote {units_path} ({len(units):,} unit{'s' * (len(units) != 1)})")
    write_demands(demands, demands_path)
    click.echo(f"wrote {demands_path} ({len(demands):,} demand{'s' * (len(demands) != 1)})")
