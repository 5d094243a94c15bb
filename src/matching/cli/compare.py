"""``matching compare``: the same simulated year under several allocation policies and seeds.

Writes ``kpis.csv`` (policy, seed, kpi, value), ``timings.csv`` and ``summary.md`` to the output
folder, and each run's folder under ``runs/`` (`matching.simulation.compare`).
"""

from __future__ import annotations

from pathlib import Path

import click

from matching.cli import short_help
from matching.cli.simulate import progress_line
from matching.exceptions import PolicyError
from matching.limits import MAX_SEEDS, check_seeds
from matching.scenario import load_scenario, refuse_outputs_over_inputs
from matching.simulation.compare import COMPARISON_FILES, compare_scenario
from matching.simulation.config import SimulationSettings, last_round_problem
from matching.simulation.engine import Progress, RoundSummary


def _progress(policy: str, seed: int) -> Progress:
    def echo(summary: RoundSummary) -> None:
        click.echo(progress_line(summary, prefix=f"[{policy} seed {seed}] "), err=True)

    return echo


@click.command(name="compare", short_help=short_help("compare"))
@click.argument("scenario", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--policies",
    default="optimal,greedy_score,seniority,bands",
    show_default=True,
    help="Comma-separated allocation policies.",
)
@click.option("--seeds", type=click.IntRange(1, MAX_SEEDS), default=1, show_default=True,
              help="Number of seeds: the scenario's seed and the next ones.")  # fmt: skip
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
    help="Output folder.",
)  # fmt: skip
@click.option("--rounds", type=click.IntRange(min=1), default=None,
              help="Stop each year after this many rounds.")  # fmt: skip
@click.option(
    "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
    help="Years simulated at once, one process each (the same files; wall times side by side).",
)  # fmt: skip
def compare_command(
    scenario: Path, policies: str, seeds: int, out: Path, rounds: int | None, jobs: int
) -> None:
    """Compare allocation policies over the scenario's simulated year."""
    sc = load_scenario(scenario)
    try:  # refused now, as an option: the year of that seed crashed after the others had run
        check_seeds(sc.seed, seeds, f"seeds {sc.seed} (the scenario's) to {sc.seed + seeds - 1}")
    except PolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="'--seeds'") from None
    refuse_outputs_over_inputs(sc, out, "compare", COMPARISON_FILES, ("runs/*/seed-*",))
    settings = sc.simulation or SimulationSettings()
    if rounds is not None:
        if problem := last_round_problem(rounds, settings.cadence):  # not the whole year silently
            raise click.BadParameter(problem, param_hint="'--rounds'")
        settings = settings.model_copy(update={"last_round": rounds})
    names = [p.strip() for p in policies.split(",") if p.strip()]
    result = compare_scenario(
        sc, names, seeds, out, settings=settings, progress=_progress, jobs=jobs
    )
    click.echo((out / "summary.md").read_text(encoding="utf-8"))
    click.echo(f"wrote {', '.join(str(f) for f in result.files)}")
