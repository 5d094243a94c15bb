"""``matching explain-demand``: what became of one household in a solved round's folder.

Reads the folder ``matching solve`` wrote (its units, demands, policy, allocation, orientation,
status), as ``matching check`` does: nothing the solver computed is trusted beyond the
allocation and the orientation being explained. Identifiers, rule names, counts and scores only.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from matching.checker import ALLOCATION_COLUMNS, ORIENTATION_COLUMNS, normalise_table
from matching.cli import id_argument, short_help
from matching.exceptions import DataError, RowProblem
from matching.explain import explain_demand, render_demand_explanation
from matching.facts import derive_facts
from matching.io import read_round_files, read_table
from matching.policy.loader import load_policy
from matching.types import ALLOCATION_POLICIES

NEEDED = ("units.csv", "demands.csv", "policy.yaml", "allocations.csv", "orientations.csv")


def _status(folder: Path) -> tuple[str, dt.date, bool]:
    """The round's status, date and whether its search stopped before its proof.

    All three from ``result.json``: a FEASIBLE round of the exact solver was stopped by its time
    limit or its --gap (`matching.solver.solve`), a greedy policy's FEASIBLE (its ``proof``
    ``method``) is its nature. ``timings.json``, the one file that varies from run to run, may
    be left out of a kept folder: without it, a stopped round's households were said
    ``units_went_to_others`` where ``unallocated_demands.csv`` says ``not_proven_in_time``.
    """
    path = folder / "result.json"
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        status, on = str(result["status"]), dt.date.fromisoformat(result["round_date"])
        proof = result.get("proof") or {}
        method = str(proof.get("method", "")) if isinstance(proof, dict) else ""
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = "missing" if isinstance(exc, OSError) else f"unreadable ({exc})"
        raise DataError([RowProblem(str(path), None, "status", "", reason)]) from None
    greedy = method in ALLOCATION_POLICIES and method != "optimal"
    return status, on, status == "FEASIBLE" and not greedy


@click.command(name="explain-demand", short_help=short_help("explain-demand"))
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@id_argument("demand_id")
@click.option(
    "--max-units",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Units listed among those the household could take.",
)
def explain_demand_command(folder: Path, demand_id: str, max_units: int) -> None:
    """Explain what became of DEMAND_ID in the round solved into FOLDER (by `matching solve`).

    Its unit, or its reason code of unallocated_demands.csv with the evidence: the round's units
    failing each eligibility rule, the eligible units oriented to other réservataires, and each
    unit it could take with the household that got it and its score.
    """
    missing = [name for name in NEEDED if not (folder / name).is_file()]
    if missing:
        reason = "missing: not a folder written by matching solve"
        raise DataError([RowProblem(str(folder), None, "files", ", ".join(missing), reason)])
    status, on, stopped = _status(folder)
    policy = load_policy(folder / "policy.yaml")
    units, demands, _ = read_round_files(folder / "units.csv", folder / "demands.csv", policy, on)
    if not (demands["demand_id"].astype(str) == demand_id).any():
        raise click.BadParameter(
            f"no demand {demand_id} in {folder / 'demands.csv'} ({len(demands):,} demands)",
            param_hint="'DEMAND_ID'",
        )
    allocation = normalise_table(
        read_table(folder / "allocations.csv"), ALLOCATION_COLUMNS, str(folder / "allocations.csv")
    )
    orientation = normalise_table(
        read_table(folder / "orientations.csv"),
        ORIENTATION_COLUMNS,
        str(folder / "orientations.csv"),
    )
    facts = derive_facts(demands, policy, on)
    explanation = explain_demand(
        units,
        facts,
        policy,
        allocation,
        orientation,
        demand_id,
        status=status,
        time_limited=stopped,
        sources=(str(folder / "allocations.csv"), str(folder / "orientations.csv")),
    )
    click.echo(f"Round {on.isoformat()} ({status}), policy {policy.id}")
    click.echo(render_demand_explanation(explanation, max_units=max_units))
