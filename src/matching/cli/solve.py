"""``matching solve``: allocate one round exactly and write it, with its inputs, to a folder.

The round comes from a scenario file (``matching solve SCENARIO --out DIR``) or from files
(``--units --demands --policy``). The command loads and prepares it, writes its inputs
(`matching.io.write_round_inputs`), solves it with `matching.round.solve_prepared` (which runs
the independent checker on the result), writes `write_round_result` and, for a solved round,
the CALEOL shortlists (`matching.shortlist`, `write_shortlists`), then prints the summary and
the indicators. Ids and aggregates only: no household's data is printed.

Exit codes: 0 solved (OPTIMAL, or FEASIBLE when the time limit stopped the proof); 1 no solution
within the time limit; 2 bad input; 3 the hard quotas are infeasible (the folder is still
written, with the conflicting rules in ``result.json``); 4 the checker rejected the solver's
result (a bug).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import click

from matching.cli import short_help
from matching.exceptions import CheckFailedError, InfeasibleError
from matching.flux import YearSoFar
from matching.io import (
    INPUT_FILES,
    RESULT_FILES,
    SHORTLISTS_FILE,
    read_round_files,
    read_year_so_far,
    write_round_inputs,
    write_round_result,
    write_shortlists,
)
from matching.kpis import RoundKpis, render_kpis_text
from matching.limits import MAX_SEED
from matching.params import SolveParams
from matching.policy.loader import load_policy
from matching.scenario import (
    load_round,
    load_scenario,
    merge_params,
    refuse_outputs_over_inputs,
    refuse_overwriting,
)

OUTPUT_FILES = (*RESULT_FILES, SHORTLISTS_FILE, *INPUT_FILES)
"""Every file `solve` may write in its folder: none of them may be one of its inputs."""

FILE = click.Path(dir_okay=False, path_type=Path)


def _overrides(
    time_limit: float | None,
    workers: int | None,
    seed: int | None,
    gap: float | None,
    log: bool | None,
    no_prune: bool,
) -> dict[str, Any]:
    """The solver settings given on the command line, by `SolveParams` field name."""
    given = {
        "time_limit_s": time_limit,
        "num_workers": workers,
        "seed": seed,
        "relative_gap": gap,
        "log": log,
        "prune": False if no_prune else None,
    }
    return {k: v for k, v in given.items() if v is not None}


def _recheck_command(out: Path, on: dt.date, year: YearSoFar | None) -> str:
    parts = [
        "matching check",
        str(out / "units.csv"),
        str(out / "demands.csv"),
        str(out / "allocations.csv"),
        f"--policy {out / 'policy.yaml'}",
        f"--orientation {out / 'orientations.csv'}",
        f"--on {on.isoformat()}",
    ]
    if year is not None:
        parts.append(f"--year-so-far {out / 'year_so_far.json'}")
    return " ".join(parts)


@click.command(name="solve", short_help=short_help("solve"))
@click.argument("scenario", type=FILE, required=False)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder (created if missing); files of the same names are replaced.",
)
@click.option(
    "--units",
    type=FILE,
    default=None,
    help="Units file (.csv or .parquet) of the round, instead of a SCENARIO.",
)
@click.option(
    "--demands",
    type=FILE,
    default=None,
    help="Demands file (.csv or .parquet), instead of a SCENARIO; the score and fact columns "
    "that solve writes are ignored and recomputed.",
)
@click.option(
    "--policy",
    "policy_name",
    default=None,
    help="Policy file, or the name of a bundled model, with --units/--demands "
    "[default: default-2026].",
)
@click.option(
    "--year-so-far",
    "year_file",
    type=FILE,
    default=None,
    help="YAML or JSON of the earlier rounds of the year (flux_units, oriented, tallies); "
    "replaces the scenario's.",
)
@click.option(
    "--on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Round date YYYY-MM-DD, with --units/--demands "
    "[default: the latest released_on of the units].",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Budget of work, about seconds: CP-SAT's deterministic time and the branching's "
    "estimated LP work (wall time may be 2-3x; more under a few seconds, where the LP and "
    "the searches have floors, and with --no-prune on a large round) "
    "[default: the scenario's, else 60].",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="CP-SAT worker threads [default: the scenario's, else 2].",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=None,
    help="CP-SAT random seed [default: the scenario's seed, else 1].",
)
@click.option(
    "--gap",
    type=click.FloatRange(0, 1),
    default=None,
    help="Stop when the relative gap is at most this [default: the scenario's, else 0: "
    "prove optimality].",
)
@click.option(
    "--log/--no-log",
    default=None,
    help="Print CP-SAT's search log [default: the scenario's, else no].",
)
@click.option(
    "--no-prune",
    is_flag=True,
    default=False,
    help="Solve the full model instead of the LP-certified core (slower, same optimum).",
)
def solve_command(
    scenario: Path | None,
    out: Path,
    units: Path | None,
    demands: Path | None,
    policy_name: str | None,
    year_file: Path | None,
    on: dt.datetime | None,
    time_limit: float | None,
    workers: int | None,
    seed: int | None,
    gap: float | None,
    log: bool | None,
    no_prune: bool,
) -> None:
    """Allocate one round (optimal, or with a certified gap); write the result and inputs to --out.

    The round is a SCENARIO file (scenarios/*.yaml), or the files given with --units and
    --demands (and --policy). Written: allocations.csv, orientations.csv,
    unallocated_units.csv, unallocated_demands.csv (each with a reason), shortlists.csv (the
    CALEOL's ranked candidates per allocated unit, when the round has a solution), kpis.json,
    result.json, timings.json, and the inputs as used: units.csv, demands.csv (with the derived
    facts and scores), policy.yaml and, when the round has a year so far, year_so_far.json. An
    --out folder where one of them would overwrite an input file is refused (exit code 2).
    Same inputs and settings give the same files, timings.json aside.

    Exit codes: 0 solved; 1 no solution within the time limit; 2 bad input; 3 infeasible hard
    quotas (the folder is still written); 4 internal error (please report); 130 interrupted.
    """
    from matching.round import infeasibility_message, prepare_round, solve_prepared
    from matching.shortlist import shortlists

    files_given = [name for name, v in (("--units", units), ("--demands", demands)) if v]
    if scenario is not None:
        extra = [*files_given]
        extra += ["--policy"] if policy_name is not None else []
        extra += ["--on"] if on is not None else []
        if extra:
            raise click.UsageError(f"give a SCENARIO or {', '.join(extra)}, not both")
        resolved = load_scenario(scenario)
        refuse_outputs_over_inputs(resolved, out, "solve", OUTPUT_FILES, ())
        data = load_round(resolved)
        unit_table, demand_table, policy, round_on = data.units, data.demands, data.policy, data.on
        year = data.year_so_far
        base_params = data.scenario.params
    else:
        if units is None or demands is None:
            raise click.UsageError("give a SCENARIO file, or both --units and --demands")
        given = {"--units": units, "--demands": demands, "--year-so-far": year_file}
        if policy_name is not None and Path(policy_name).is_file():
            given["--policy"] = Path(policy_name)
        refuse_overwriting(
            {k: v for k, v in given.items() if v is not None}, out, "solve", OUTPUT_FILES
        )
        policy = load_policy(policy_name or "default-2026")
        unit_table, demand_table, round_on = read_round_files(
            units, demands, policy, on.date() if on else None
        )
        year = None
        base_params = SolveParams()
    if year_file is not None:
        year = read_year_so_far(year_file, policy)
    params = merge_params(base_params, _overrides(time_limit, workers, seed, gap, log, no_prune))

    # The inputs are written first: a failed solve still leaves what reproduces it.
    tick = time.perf_counter()
    prepared = prepare_round(unit_table, demand_table, policy, on=round_on, year_so_far=year)
    preparing = time.perf_counter() - tick
    inst = prepared.instance
    written = write_round_inputs(out, inst.units, inst.demands, policy, year)
    try:
        # the wall time counts the preparation and the solve, not the writing (as `solve` does)
        started = time.perf_counter() - preparing
        result = solve_prepared(prepared, params, raise_on_infeasible=False, started=started)
    except CheckFailedError as exc:
        raise CheckFailedError(f"{exc}\n(the round's inputs are in {out})") from exc
    written = write_round_result(out, result) + written
    if result.status in {"OPTIMAL", "FEASIBLE"}:
        table = shortlists(
            unit_table, demand_table, policy, result,
            year_so_far=year, on=round_on, prepared=prepared,
        )  # fmt: skip
        written.append(write_shortlists(out, table))

    click.echo(result.summary())
    if result.status in {"OPTIMAL", "FEASIBLE"}:
        click.echo("")
        click.echo(render_kpis_text(RoundKpis.from_dict(result.kpis), policy))
    click.echo("")
    click.echo(f"Wrote {len(written)} files to {out}")
    if result.status in {"OPTIMAL", "FEASIBLE"}:
        click.echo(f"Re-check independently with:\n  {_recheck_command(out, round_on, year)}")
    if (
        result.status == "FEASIBLE"
        and params.relative_gap > 0
        and result.gap <= params.relative_gap
    ):
        click.echo(
            f"note: the search stopped within the relative gap asked ({params.relative_gap:g}) "
            f"before optimality was proven; the certified gap is {100 * result.gap:.3g} % "
            "(--gap 0 proves the optimum)",
            err=True,
        )
    elif result.status == "FEASIBLE":
        click.echo(
            f"note: the time budget stopped the search before optimality was proven; the "
            f"certified gap is {100 * result.gap:.3g} % (a larger --time-limit narrows it)",
            err=True,
        )
    elif result.status == "INFEASIBLE":
        raise InfeasibleError(
            infeasibility_message(result), result.conflicts, result.soft_diagnosis
        )
    elif result.status == "UNKNOWN":
        click.echo(
            f"no solution found within the time limit ({params.time_limit_s:g} s): "
            "raise --time-limit",
            err=True,
        )
        raise click.exceptions.Exit(1)
