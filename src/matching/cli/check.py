"""``matching check``: audit any allocation file against a policy, without the solver.

The allocation may come from ``matching run`` or be made by people: the command re-judges it with
`matching.checker.audit` and prints each violation with its rule, unit, demand and numbers, the
quota shortfalls (violations in hard mode, reported costs in soft mode), the recomputed objective
stages and a one-line verdict. Exit code 0 when the allocation is valid, 1 when it has violations,
2 when an input cannot be read (handled by the group).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from matching.checker import (
    ALLOCATION_COLUMNS,
    ORIENTATION_COLUMNS,
    Audit,
    Violation,
    audit,
    normalise_table,
)
from matching.cli import short_help
from matching.facts import derive_facts
from matching.frames import canonical_tables
from matching.io import read_round_files, read_table, read_year_so_far
from matching.kpis import compute_kpis, render_kpis_text
from matching.policy.loader import load_policy
from matching.types import Bound, QuotaMode

FILE = click.Path(dir_okay=False, path_type=Path)


def _violation_lines(violations: tuple[Violation, ...]) -> list[str]:
    rule_w = max(len(v.rule_id) for v in violations)
    unit_w = max(len(v.unit_id or "-") for v in violations)
    demand_w = max(len(v.demand_id or "-") for v in violations)
    lines = []
    for v in violations:
        nums = ", ".join(f"{k}={val}" for k, val in v.numbers.items())
        tail = f"  [{nums}]" if nums else ""
        lines.append(
            f"  {v.rule_id:<{rule_w}}  unit {v.unit_id or '-':<{unit_w}}  "
            f"demand {v.demand_id or '-':<{demand_w}}  {v.message}{tail}"
        )
    return lines


def _report(result: Audit) -> list[str]:
    lines = []
    if result.violations:
        lines.append(f"Violations ({len(result.violations)}):")
        lines += _violation_lines(result.violations)
    soft = result.shortfalls() if result.mode == QuotaMode.SOFT else ()
    if soft:
        lines.append("Quota shortfalls (soft mode: costs, not violations):")
        for q in soft:
            group = f" [{q.group_label}]" if q.group_label else ""
            # a ceiling's limit is what it allows: 'needs 3' read as a floor's 'at least 3'
            limit = "needs" if q.bound == Bound.FLOOR else "allows at most"
            lines.append(
                f"  {q.rule_id}{group}: {q.total.counted:,} counted of {q.total.base:,}, "
                f"{limit} {q.limit:,}; shortfall {q.shortfall:,} x weight {q.weight:,}"
            )
    stages = ", ".join(f"{stage.value} {value:,}" for stage, value in result.stages.items())
    lines.append(f"Objective: {stages}")
    n_rows = result.counts["allocations"]
    if result.ok:
        lines.append(f"OK: no violation in {n_rows:,} allocation(s)")
    else:
        kinds = len({v.rule_id for v in result.violations})
        lines.append(
            f"FAIL: {len(result.violations):,} violation(s) of {kinds} rule(s) "
            f"in {n_rows:,} allocation(s)"
        )
    return lines


@click.command("check", short_help=short_help("check"))
@click.argument("units", type=FILE)
@click.argument("demands", type=FILE)
@click.argument("allocation", type=FILE)
@click.option(
    "--policy",
    "policy_name",
    default="default-2026",
    show_default=True,
    help="Policy file, or the name of a bundled model.",
)
@click.option(
    "--orientation",
    type=FILE,
    default=None,
    help="Orientation table (unit_id, reservataire), one row per flux unit; "
    "without it the flux bands are checked only as far as the allocation decides them.",
)
@click.option(
    "--year-so-far",
    "year_file",
    type=FILE,
    default=None,
    help="YAML or JSON of the earlier rounds of the year (flux_units, oriented, tallies).",
)
@click.option(
    "--on",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Round date YYYY-MM-DD, for seniority and scores "
    "[default: latest released_on of the units].",
)
@click.option("--kpis", is_flag=True, default=False, help="Also print the round's indicators.")
def check_command(
    units: Path,
    demands: Path,
    allocation: Path,
    policy_name: str,
    orientation: Path | None,
    year_file: Path | None,
    on: dt.datetime | None,
    kpis: bool,
) -> None:
    """Audit the ALLOCATION of UNITS to DEMANDS against a policy, independently of the solver.

    ALLOCATION has columns unit_id, demand_id, reservataire ('' for a unit excluded from the
    flux); other columns are ignored. Exit code 0: valid; 1: violations; 2: unreadable input.
    """
    # as strict as `solve`: the same files, dates and recomputed facts
    policy = load_policy(policy_name)
    unit_table, demand_table, round_date = read_round_files(
        units, demands, policy, on.date() if on is not None else None
    )
    # the columns checked here too, so that a missing one names the file, not the table's role
    allocation_table = normalise_table(read_table(allocation), ALLOCATION_COLUMNS, str(allocation))
    orientation_table = (
        normalise_table(read_table(orientation), ORIENTATION_COLUMNS, str(orientation))
        if orientation is not None
        else None
    )
    year = read_year_so_far(year_file, policy) if year_file is not None else None

    with canonical_tables(unit_table, demand_table):  # validated as they were read
        result = audit(
            unit_table,
            demand_table,
            policy,
            allocation_table,
            year,
            orientation=orientation_table,
            on=round_date,
        )
    counts = result.counts
    click.echo(
        f"Checking {counts['allocations']:,} allocation(s) of {counts['units']:,} unit(s) "
        f"({counts['flux_units']:,} in the flux) to {counts['demands']:,} demand(s); "
        f"policy {policy.id} ({policy.quotas.mode.value} quotas), round date {round_date}"
    )
    if kpis:
        facts = derive_facts(demand_table, policy, round_date)
        round_kpis = compute_kpis(
            unit_table, facts, policy, allocation_table, orientation_table, year
        )
        click.echo(render_kpis_text(round_kpis, policy))
    for line in _report(result):
        click.echo(line)
    if not result.ok:
        raise click.exceptions.Exit(1)
