"""``matching scenario show FILE``: print what a scenario resolves to, without solving.

The paths it reads (absolute), the territory, the round and its date, the policy's key figures
(flux shares, quota rules and targets, mode, objective stages), the data source with the round's
sizes, and the solver settings. Aggregates only: no household is shown.
"""

from __future__ import annotations

import calendar
from pathlib import Path

import click
import numpy as np

from matching.cli import short_help
from matching.exceptions import PolicyError
from matching.policy.conditions import Condition
from matching.policy.model import Policy
from matching.scenario import ResolvedScenario, RoundData, load_round, load_scenario, resolve
from matching.territory import income_quartiles

_LABEL_WIDTH = 14


def _line(label: str, text: str) -> str:
    return f"  {label:<{_LABEL_WIDTH}}{text}"


def _conditions(conds: tuple[Condition, ...]) -> str:
    return " and ".join(c.describe() for c in conds) if conds else "all"


def _month_name(month: int | None, year: int) -> str:
    return f"{calendar.month_name[month]} {year}" if month is not None else f"the whole of {year}"


def _scenario_lines(resolved: ResolvedScenario) -> list[str]:
    sc = resolved.scenario
    territory = resolved.territory
    with_qpv = sum(1 for c in territory.communes if c.qpv_names)
    lines = [
        f"Scenario {sc.id}: {sc.label}" if sc.label else f"Scenario {sc.id}",
        _line("file", str(sc.source) if sc.source is not None else "(built in code)"),
        _line(
            "territory",
            f"{territory.id}: {territory.name}, {len(territory.communes)} communes "
            f"({with_qpv} with a QPV), income-ceiling zone {territory.ceiling_zone}",
        ),
        _line("year, seed", f"{sc.year}, seed {sc.seed}"),
    ]
    if resolved.month is None:
        pooled = f"the whole year pooled; round date {resolved.on}"
        if sc.simulation is not None:  # `simulate` plays the year round by round instead
            pooled = f"{pooled} (matching solve; simulate plays the year round by round)"
        lines.append(_line("round", pooled))
    else:
        lines.append(
            _line(
                "round",
                f"month {resolved.month} ({_month_name(resolved.month, sc.year)}); "
                f"round date {resolved.on}",
            )
        )
    if resolved.generate is not None:
        g = resolved.generate
        lines.append(
            _line(
                "data",
                f"generated (seed {sc.seed}): {g.units:,} units released over {sc.year}, "
                f"{g.demands:,} demands pending on 1 January",
            )
        )
    else:
        lines.append(_line("units file", str(resolved.units_path)))
        lines.append(_line("demands file", str(resolved.demands_path)))
    year_file = resolved.year_so_far_path
    lines.append(
        _line("year so far", str(year_file) if year_file else "none (first round of the year)")
    )
    return lines


def _data_lines(data: RoundData) -> list[str]:
    units, facts = data.units, data.facts
    sc = data.scenario
    excluded = units["flux_excluded"].astype(str).to_numpy(dtype=object)
    reasons, counts = np.unique(excluded[excluded != ""], return_counts=True)
    by_reason = ", ".join(
        f"{r} {c}" for r, c in zip(reasons.tolist(), counts.tolist(), strict=True)
    )
    lines = [
        "Round data",
        _line(
            "units",
            f"{len(units):,} released in {_month_name(sc.month, sc.scenario.year)} "
            f"(of {data.units_in_data:,} in the data): {int(units['qpv'].sum()):,} in QPV, "
            f"{int((excluded == '').sum()):,} in the flux, "
            f"{int((excluded != '').sum()):,} excluded ({by_reason or 'none'})",
        ),
        _line(
            "demands",
            f"{len(facts):,} filed by {data.on} (of {data.demands_in_data:,} in the data): "
            f"{int(facts['priority'].sum()):,} priority, {int(facts['q1'].sum()):,} in Q1, "
            f"{int(facts['anru'].sum()):,} ANRU",
        ),
    ]
    if data.year_so_far is not None:
        y = data.year_so_far
        oriented = ", ".join(f"{k} {v}" for k, v in y.oriented.items()) or "none"
        lines.append(
            _line(
                "year so far",
                f"{y.flux_units:,} flux units released, oriented: {oriented}; "
                f"tallies of {len(y.tallies)} quota rule(s)",
            )
        )
    return lines


def _policy_lines(policy: Policy, path: Path, territory: str, year: int) -> list[str]:
    household = policy.household
    try:
        arrete = (
            f" (the territory's arrêté for {year}: {income_quartiles(territory, year).q1:,.0f})"
        )
    except PolicyError:  # the bundled table may not cover the year: show the policy's alone
        arrete = ""
    objective = policy.objective
    lines = [
        f"Policy {policy.id} (version {policy.version}, year {policy.year}): {policy.label}",
        _line("file", str(path)),
        _line("Q1 threshold", f"{household.q1_threshold_eur_per_cu:,.0f} EUR per CU{arrete}"),
        _line("quota mode", policy.quotas.mode.value),
        _line(
            "stages",
            " > ".join(s.value for s in objective.stages)
            + f"; ties by {', '.join(objective.tie_break)}",
        ),
        _line("eligibility", ", ".join(policy.eligibility.rules)),
        _line(
            "cotation",
            f"{policy.cotation.id}: {len(policy.cotation.criteria)} criteria",
        ),
        "  flux shares and pools:",
    ]
    shares = policy.shares()
    width = max(len(r.id) for r in policy.reservataires)
    for r in policy.reservataires:
        remainder = " (remainder)" if r.id == policy.flux.landlord else ""
        lines.append(
            f"    {r.id:<{width}}  {100 * shares[r.id]:5.1f} %{remainder:<12}  "
            f"pool: {_conditions(r.pool)}"
        )
    lines.append(f"  quota rules ({len(policy.quotas.rules)}):")
    rule_w = max((len(q.id) for q in policy.quotas.rules), default=0)
    for q in policy.quotas.rules:
        bound = "at least" if q.bound.value == "floor" else "at most"
        target = f"{100 * q.target:g} %" if q.measure.value == "share" else f"{q.target:g}"
        scope = f", in each {q.scope}" if q.scope else ""
        lines.append(
            f"    {q.id:<{rule_w}}  {bound} {target} of the allocations [{_conditions(q.base)}] "
            f"with [{_conditions(q.count)}]{scope}"
        )
    return lines


@click.group(name="scenario", short_help=short_help("scenario"))
def scenario_group() -> None:
    """Inspect scenario files (scenarios/*.yaml)."""


@scenario_group.command(name="show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--no-data",
    is_flag=True,
    default=False,
    help="Do not generate or read the data: print only what the file resolves to.",
)
def show_command(file: Path, no_data: bool) -> None:
    """Print what the scenario FILE resolves to: paths, territory, round, policy, data, solver."""
    resolved = resolve(load_scenario(file))
    sc = resolved.scenario
    lines = _scenario_lines(resolved)
    if not no_data:
        lines += _data_lines(load_round(resolved))
    lines += _policy_lines(resolved.policy, resolved.policy_path, sc.territory, sc.year)
    params = resolved.params.model_dump()
    lines.append("Solver")
    lines.append("  " + ", ".join(f"{k} {v}" for k, v in params.items()))
    if sc.simulation is not None:  # what `simulate` and `compare` will play (it was not shown)
        lines.append("Simulation (matching simulate / compare)")
        lines.append("  " + ", ".join(_settings(sc.simulation.model_dump())))
    click.echo("\n".join(lines))


_UNSET = {
    "arrivals_per_year": "0.6 x the demands pending on 1 January",
    "last_round": "every round of the year",
    "refusals.in_qpv": "the base probability",
    "refusals.by_rooms": "the base probability",
}
"""What a setting left out means (``-`` read as "none": no arrivals, no round)."""


def _settings(values: dict[str, object], prefix: str = "") -> list[str]:
    """``key value`` items of nested settings, as ``refusals.probability 0.3``."""
    out: list[str] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key != "by_rooms":
            out += _settings(value, f"{name}.")
        elif value is None or value == {}:
            out.append(f"{name} {_UNSET.get(name, '-')}")
        elif isinstance(value, dict):  # by_rooms: T2 0.4, T3 0.5
            out.append(f"{name} " + " ".join(f"T{k} {v}" for k, v in sorted(value.items())))
        else:
            out.append(f"{name} {value}")
    return out
