"""``matching simulate``: a year of allocation rounds from a scenario, checkpointed per round.

The scenario's ``simulation:`` section sets the cadence, the allocation policy, arrivals,
renewals and refusals (`matching.simulation.config`); the command builds the year
(`matching.simulation.engine.year_data`), runs it (`simulate`) and prints one progress line per
round on stderr: round, allocations so far, units carried and the running quota rates. Ids and
aggregates only. ``--resume`` continues a killed run from its last checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import click

from matching.cli import short_help
from matching.limits import MAX_SEED
from matching.scenario import load_scenario, refuse_outputs_over_inputs
from matching.simulation.config import SimulationSettings, last_round_problem
from matching.simulation.engine import RUN_FOLDERS, RoundSummary, simulate, year_data
from matching.simulation.outputs import YEAR_FILES


def progress_line(summary: RoundSummary, prefix: str = "") -> str:
    """One line per round: round, date, allocations so far, carried units, quota rates."""
    c = summary.counts
    rates = ", ".join(
        f"{rule} {'-' if rate is None else f'{100 * rate:.1f} %'}"
        for rule, rate in summary.rates.items()
    )
    return (
        f"{prefix}round {summary.round}/{summary.rounds} {summary.date.isoformat()}: "
        f"{c.get('allocated_year', 0):,} allocated so far (+{c.get('allocated', 0):,}), "
        f"{_count(c.get('refusals', 0), 'refusal')}, "
        f"{_count(c.get('carried', 0), 'unit')} carried, "
        f"{_count(c.get('pending', 0), 'demand')} pending; {rates} [{summary.wall_time_s:.1f} s]"
    )


def _count(n: int, noun: str) -> str:
    """``1 unit``, ``2 units``, ``1,200 units``: "1 units carried" read as a typo."""
    return f"{n:,} {noun}{'s' * (n != 1)}"


def _echo(summary: RoundSummary) -> None:
    click.echo(progress_line(summary), err=True)


@click.command(name="simulate", short_help=short_help("simulate"))
@click.argument("scenario", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder: rounds/, the year's tables and KPIs, and state/ (checkpoints).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue from the folder's last checkpoint (refused if the folder has none).",
)
@click.option(
    "--policy",
    "allocation_policy",
    default=None,
    help="Allocation policy (optimal, greedy_score, seniority, bands); default: the scenario's.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=None,
    help="Seed of the data, the draws and the solver (default: the scenario's).",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many rounds (a quick look).",
)
def simulate_command(
    scenario: Path,
    out: Path,
    resume: bool,
    allocation_policy: str | None,
    seed: int | None,
    rounds: int | None,
) -> None:
    """Simulate a year of allocation rounds (CALEOL shortlists, refusals, arrivals, lapses)."""
    sc = load_scenario(scenario)
    refuse_outputs_over_inputs(sc, out, "simulate", YEAR_FILES, RUN_FOLDERS)
    settings = sc.simulation or SimulationSettings()
    update: dict[str, object] = {}
    if allocation_policy is not None:
        update["allocation_policy"] = allocation_policy
    if rounds is not None:
        if problem := last_round_problem(rounds, settings.cadence):  # not the whole year silently
            raise click.BadParameter(problem, param_hint="'--rounds'")
        update["last_round"] = rounds
    settings = settings.model_copy(update=update)
    data = year_data(sc, seed=seed, settings=settings)
    result = simulate(data, out, resume=resume, progress=_echo)
    k = result.kpis
    q1, target = k["q1_rate_outside_qpv"]["rate"], k["q1_rate_outside_qpv"]["target"]
    # the policy's EPCI-wide rule (a rule scoped per landlord or commune holds per group)
    aim = "no EPCI-wide target" if target is None else f"target {100 * target:g} %"
    click.echo(
        f"{_count(k['rounds'], 'round')} to {k['end']}: "
        f"{k['units']['allocated']:,} of "
        f"{k['units']['released']:,} units let; Q1 or ANRU outside QPV "
        f"{'-' if q1 is None else f'{100 * q1:.1f} %'} "
        f"({aim}); wrote {out}"
    )
