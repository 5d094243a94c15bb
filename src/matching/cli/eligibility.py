"""``matching score | explain-score | eligibility | why-not``: cotation and eligibility of a round.

Each command loads the scenario's round (`matching.scenario.load_round`: units, demands with
facts at the round's date, policy), calls one library function of `matching.policy.scoring` or
`matching.eligibility`, and prints or writes its result. Identifiers and counts only: no personal
data is printed beyond the explained demand's own criteria.
"""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from matching.cli import id_argument, short_help
from matching.eligibility import (
    diagnostics,
    eligible_pairs,
    render_diagnostics,
    render_why_not,
    why_not,
)
from matching.policy.scoring import explain_score, render_score_explanation, score
from matching.scenario import RoundData, load_round, load_scenario, refuse_outputs_over_inputs

SCENARIO = click.argument("scenario", type=click.Path(exists=True, path_type=Path))


def _round(scenario: Path, out: Path | None = None, command: str = "") -> RoundData:
    """Load the round of a scenario (units, demands with facts, policy, on, territory).

    With ``out``, the file the command writes is first checked not to be one of the scenario's
    inputs: ``score --out data/demands.csv`` replaced the planner's demands with the scores,
    without a word.
    """
    if out is not None and out.suffix.lower() not in (".csv", ".parquet"):
        # Why: any other name got CSV text (a counts.xlsx no spreadsheet opens), and
        # `.PARQUET` got CSV too
        raise click.BadParameter(
            f"{out}: unsupported file type ({out.suffix or 'no suffix'}); expected .csv or "
            ".parquet",
            param_hint="'--out'",
        )
    sc = load_scenario(scenario)
    if out is not None:
        refuse_outputs_over_inputs(sc, out.parent, command, (out.name,), ())
    return load_round(sc)


def _in_round(rd: RoundData, unit_id: str | None, demand_id: str) -> None:
    """Refuse (exit code 2) an id that is not in the round, saying why: its date, or no such id."""
    reasons = [
        ("UNIT_ID", None if unit_id is None else rd.outside_round("unit", unit_id)),
        ("DEMAND_ID", rd.outside_round("demand", demand_id)),
    ]
    for argument, reason in reasons:
        if reason is not None:
            raise click.BadParameter(reason, param_hint=f"'{argument}'")


def _write_table(frame: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False, lineterminator="\n")


@click.command(name="score", short_help=short_help("score"))
@SCENARIO
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write (.csv, or .parquet): demand_id, score, one column per criterion.",
)
def score_command(scenario: Path, out: Path) -> None:
    """Score every demand of the scenario's round with the policy's cotation grid."""
    rd = _round(scenario, out, "score")
    result = score(rd.facts, rd.policy.cotation)
    table = pd.concat(
        [
            pd.DataFrame({"demand_id": rd.facts["demand_id"].to_numpy(), "score": result.total}),
            result.breakdown,
        ],
        axis=1,
    )
    _write_table(table, out)
    click.echo(
        f"{len(table)} demands scored with grid {rd.policy.cotation.id} at {rd.on}: "
        f"mean {result.total.mean():.1f}, max {result.total.max() if len(table) else 0}; "
        f"written to {out}"
    )


@click.command(name="explain-score", short_help=short_help("explain-score"))
@SCENARIO
@id_argument("demand_id")
def explain_score_command(scenario: Path, demand_id: str) -> None:
    """Explain one demand's score, criterion by criterion."""
    rd = _round(scenario)
    _in_round(rd, None, demand_id)
    lines = explain_score(rd.facts, rd.policy.cotation, demand_id)
    click.echo(render_score_explanation(demand_id, lines))


@click.command(name="eligibility", short_help=short_help("eligibility"))
@SCENARIO
@click.option(
    "--max-units",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Units listed in the per-unit table and among the blocked units.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the per-unit counts (.csv or .parquet).",
)
def eligibility_command(scenario: Path, max_units: int, out: Path | None) -> None:
    """Count eligible demands per unit and pool; explain units nobody can take."""
    rd = _round(scenario, out, "eligibility")
    pairs = eligible_pairs(rd.units, rd.facts, rd.policy)
    diag = diagnostics(rd.units, rd.facts, rd.policy, pairs)
    click.echo(render_diagnostics(diag, rd.policy, max_units=max_units))
    if out is not None:
        _write_table(diag.per_unit, out)
        click.echo(f"per-unit counts written to {out}")


@click.command(name="why-not", short_help=short_help("why-not"))
@SCENARIO
@id_argument("unit_id")
@id_argument("demand_id")
def why_not_command(scenario: Path, unit_id: str, demand_id: str) -> None:
    """Explain why a unit cannot go to a household (every failed rule, with its values)."""
    rd = _round(scenario)
    _in_round(rd, unit_id, demand_id)
    failures = why_not(rd.units, rd.facts, rd.policy, unit_id, demand_id)
    click.echo(render_why_not(unit_id, demand_id, failures))
