"""Scenarios: one named, reproducible allocation round described in a small YAML file.

A scenario says which territory and year, which policy, where the data comes from (generated with
a seed, or two files), which round of the year is solved, the solver settings and, optionally,
what earlier rounds of the year did. ``scenarios/caen-la-mer-2026.yaml`` is the bundled example::

    id: caen-la-mer-2026
    label: "Caen la Mer, 2026: one monthly round (January) of the generated year"
    territory: caen-la-mer
    year: 2026
    seed: 1
    policy: default-2026          # a bundled model name, or a path relative to this file
    data:
      generate: {units: 4000, demands: 17000}   # or: units: a.csv, demands: b.parquet
    round:
      month: 1                    # absent: the whole year pooled in one round
    solver: {time_limit_s: 60, num_workers: 2}  # SolveParams; seed defaults to the scenario's
    year_so_far: earlier.yaml     # optional, relative to this file

Three steps, each usable alone: `load_scenario` validates the file (errors name the file and the
key), `resolve` turns names and relative paths into objects and absolute paths (policy, territory,
round date), and `load_round` reads or generates the data and keeps the round's part of it.
`run_scenario` then solves the round with `matching.round.solve`. This module orchestrates
`io`, `generate`, `territory`, `policy` and `round`; it touches files only through `io` and
`policy.loader`, and prints nothing.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from matching.domain import Territory
from matching.exceptions import PolicyError, Problems
from matching.facts import derive_facts
from matching.flux import YearSoFar
from matching.frames import in_id_order
from matching.generate import generate_territory
from matching.io import read_demands, read_units, read_year_so_far
from matching.limits import MAX_ROWS, MAX_SEED
from matching.params import SolveParams
from matching.policy.loader import BUNDLED_MODELS, format_validation_error, load_policy, read_yaml
from matching.policy.model import Policy
from matching.result import Result
from matching.simulation.config import SimulationSettings
from matching.territory import available_territories, load_territory

_FROM_FILE_ONLY = ("source",)
"""Scenario fields that are set from where the file lies, never written in it."""


def _valid_seed(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_SEED


class _Frozen(BaseModel):
    """Base of the scenario models: immutable, unknown keys refused (a typo is an error).

    Numbers are strict types (``StrictInt``): ``seed: true`` or ``seed: 1.0`` is refused, not
    turned into 1.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


class GeneratedData(_Frozen):
    """Sizes of a generated territory-year (`matching.generate.generate_territory`)."""

    units: StrictInt = Field(ge=1, le=MAX_ROWS, description="Units released over the whole year")
    demands: StrictInt = Field(ge=1, le=MAX_ROWS, description="Demands pending on 1 January")


class ScenarioData(_Frozen):
    """Where the round's units and demands come from: generated, or two files."""

    generate: GeneratedData | None = Field(
        default=None, description="Generate the year with the scenario's territory, year and seed"
    )
    units: Path | None = Field(
        default=None, description="Units file (.csv or .parquet), relative to the scenario file"
    )
    demands: Path | None = Field(
        default=None, description="Demands file (.csv or .parquet), relative to the scenario file"
    )

    @model_validator(mode="after")
    def _one_source(self) -> ScenarioData:
        files = (self.units is not None, self.demands is not None)
        if self.generate is not None and any(files):
            raise ValueError("give either 'generate' or the 'units' and 'demands' files, not both")
        if self.generate is None and not all(files):
            raise ValueError("give 'generate: {units, demands}', or both 'units' and 'demands'")
        return self


class RoundSpec(_Frozen):
    """Which round of the year is solved."""

    month: StrictInt | None = Field(
        default=None,
        ge=1,
        le=12,
        description="Month whose released units form the round; absent = the whole year pooled",
    )


class Scenario(_Frozen):
    """A reproducible allocation round: territory, year, seed, policy, data, round and solver.

    Relative paths (policy file, data files, year so far) are read from the folder of
    ``source``, the scenario file, or from the current folder when the scenario was built in
    code without one.
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", description="Stable identifier")
    label: str = Field(default="", description="One line saying what the scenario is")
    territory: str = Field(description="Bundled territory id, e.g. caen-la-mer")
    year: StrictInt = Field(ge=2000, le=2100, description="Year of the allocations")
    seed: StrictInt = Field(
        ge=0,
        le=MAX_SEED,
        description="Seed of the generator and draws, and default seed of the solver (an int32)",
    )
    policy: str = Field(
        description="Bundled policy name (e.g. default-2026) or a path relative to the file"
    )
    data: ScenarioData
    round: RoundSpec = Field(default_factory=RoundSpec)
    solver: SolveParams = Field(
        default_factory=SolveParams, description="Solver settings; seed defaults to the seed above"
    )
    year_so_far: Path | None = Field(
        default=None, description="YAML/JSON of what earlier rounds of the year did"
    )
    simulation: SimulationSettings | None = Field(
        default=None, description="A year of rounds (matching simulate); absent: one round"
    )
    source: Path | None = Field(
        default=None, exclude=True, description="The scenario file (set by load_scenario)"
    )

    @model_validator(mode="before")
    @classmethod
    def _solver_seed(cls, data: Any) -> Any:
        """Default the solver's seed to the scenario's: one seed makes the whole run repeatable.

        A seed out of range is not copied: it is reported once, under ``seed``, not again under
        ``solver.seed``.
        """
        if isinstance(data, Mapping) and _valid_seed(data.get("seed")):
            solver = data.get("solver")
            solver = {} if solver is None else solver
            if isinstance(solver, Mapping) and "seed" not in solver:
                return {**data, "solver": {**solver, "seed": data["seed"]}}
        return data

    @field_validator("territory")
    @classmethod
    def _known_territory(cls, value: str) -> str:
        known = available_territories()
        if value not in known:
            raise ValueError(f"unknown territory '{value}' (bundled: {', '.join(known)})")
        return value

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths are read from."""
        return self.source.parent if self.source is not None else Path.cwd()


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Raises
    ------
    PolicyError
        The file cannot be read or is not YAML (naming the file), or a key is unknown, missing
        or invalid (naming the file and the dotted key, e.g. ``tiny.yaml: round.month: ...``).
    """
    path = Path(path)
    data = read_yaml(path)
    for key in _FROM_FILE_ONLY:
        if key in data:
            raise PolicyError(f"{path}: {key}: not a scenario key (set from the file's location)")
    try:
        return Scenario.model_validate({**data, "source": path.absolute()})
    except ValidationError as exc:
        raise PolicyError(format_validation_error(str(path), exc)) from None


@dataclass(frozen=True)
class ResolvedScenario:
    """A scenario with every name and relative path turned into an object or absolute path.

    Attributes
    ----------
    scenario
        The scenario as written.
    policy, policy_path
        The validated policy and the file it was read from.
    territory
        The bundled territory (communes, QPV, ceiling zone).
    on
        The round date: last day of the round's month, or 31 December when the year is pooled.
        Seniority and scores are computed at this date.
    month
        The round's month, or None for the whole year pooled.
    generate
        Sizes of the generated data, or None when the data comes from files.
    units_path, demands_path
        The data files, or None when the data is generated.
    year_so_far_path
        The year-so-far file, or None (the first round of the year).
    params
        Solver settings (the scenario's seed when the solver mapping gives none).
    """

    scenario: Scenario
    policy: Policy
    policy_path: Path
    territory: Territory
    on: dt.date
    month: int | None
    generate: GeneratedData | None
    units_path: Path | None
    demands_path: Path | None
    year_so_far_path: Path | None
    params: SolveParams


def round_date(year: int, month: int | None) -> dt.date:
    """Date of a round: the last day of its month, or 31 December when the year is pooled."""
    if month is None:
        return dt.date(year, 12, 31)
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _policy_path(scenario: Scenario) -> Path:
    """A path relative to the scenario file when such a file exists, else a bundled model name."""
    where = f"{scenario.source or '<scenario>'}: policy"
    candidate = scenario.base_dir / scenario.policy
    if candidate.is_file():
        return candidate.resolve()
    bundled = BUNDLED_MODELS / f"{scenario.policy}.yaml"
    if "/" not in scenario.policy and "\\" not in scenario.policy and bundled.is_file():
        return bundled.resolve()
    names = ", ".join(sorted(p.stem for p in BUNDLED_MODELS.glob("*.yaml")))
    raise PolicyError(
        f"{where}: '{scenario.policy}' is neither a file (looked in {scenario.base_dir}) "
        f"nor a bundled model ({names})"
    )


def _absolute(scenario: Scenario, path: Path | None) -> Path | None:
    return None if path is None else (scenario.base_dir / path).resolve()


def resolve(scenario: Scenario) -> ResolvedScenario:
    """Load the scenario's policy and territory and make its paths absolute.

    Raises
    ------
    PolicyError
        The policy is neither a file nor a bundled model, is invalid, or is for another year
        than the scenario (its Q1 threshold and income ceilings are yearly figures).
    """
    policy_path = _policy_path(scenario)
    policy = load_policy(policy_path)
    other = policy.other_year(scenario.year, "the scenario")
    if other is not None:
        raise PolicyError(f"{scenario.source or '<scenario>'}: policy: {other}")
    month = scenario.round.month
    return ResolvedScenario(
        scenario=scenario,
        policy=policy,
        policy_path=policy_path,
        territory=load_territory(scenario.territory),
        on=round_date(scenario.year, month),
        month=month,
        generate=scenario.data.generate,
        units_path=_absolute(scenario, scenario.data.units),
        demands_path=_absolute(scenario, scenario.data.demands),
        year_so_far_path=_absolute(scenario, scenario.year_so_far),
        params=scenario.solver,
    )


def input_files(scenario: Scenario) -> dict[str, Path]:
    """The files a scenario reads, absolute, by the key that names them (``data.units``, ...).

    The policy only when it is a file next to the scenario, not a bundled model.
    """
    files: dict[str, Path] = {}
    if scenario.source is not None:
        files["the scenario file"] = Path(scenario.source).resolve()
    candidate = scenario.base_dir / scenario.policy
    if candidate.is_file():
        files["policy"] = candidate.resolve()
    for key, path in (
        ("data.units", scenario.data.units),
        ("data.demands", scenario.data.demands),
        ("year_so_far", scenario.year_so_far),
    ):
        if (absolute := _absolute(scenario, path)) is not None:
            files[key] = absolute
    return files


def refuse_outputs_over_inputs(
    scenario: Scenario, out: Path, command: str, files: tuple[str, ...], folders: tuple[str, ...]
) -> None:
    """Refuse an output folder where the command would overwrite or remove an input file.

    ``files`` are the names the command writes in ``out``; ``folders`` those it empties or
    replaces (shell patterns relative to ``out``, e.g. ``runs/*/seed-*``). Why: ``--out`` set
    to the data's own folder replaced the units and demands files with the run's tables,
    without a word, and the planner's data was gone.

    Raises
    ------
    PolicyError
        Naming the input file, its key in the scenario and the folder.
    """
    refuse_overwriting(input_files(scenario), out, command, files, folders)


def refuse_overwriting(
    inputs: Mapping[str, Path],
    out: Path,
    command: str,
    files: tuple[str, ...],
    folders: tuple[str, ...] = (),
) -> None:
    """Refuse an output folder where the command would overwrite or remove one of ``inputs``.

    ``inputs`` maps what names each input (a scenario key, an option) to its path; ``files``
    and ``folders`` are as in `refuse_outputs_over_inputs`.

    Raises
    ------
    PolicyError
        Naming the input file, what names it and the folder.
    """
    where = out.resolve()
    written = {where / name for name in files}
    for key, given in inputs.items():
        path = Path(given).resolve()
        rel = path.relative_to(where).as_posix() if path.is_relative_to(where) else None
        inside = rel is not None and any(fnmatch(rel, f"{folder}/*") for folder in folders)
        if path in written or inside:
            raise PolicyError(
                f"{out}: {command} would overwrite {path} ({key}) with its own files; "
                "choose another --out folder"
            )


@dataclass(frozen=True, eq=False)
class RoundData:
    """The data of one round, validated and ready to solve.

    Attributes
    ----------
    scenario
        The resolved scenario the round comes from.
    units
        Canonical units table of the round: the units released in the round's month (or in
        the scenario's year when pooled), in id order (`frames.in_id_order`), whatever the
        order of the data's rows.
    demands
        Canonical demands table: the demands filed on or before the round date.
    facts
        ``demands`` with the derived household facts at the round date (`derive_facts`), for
        the cotation and eligibility commands.
    policy, on, territory
        The policy, the round date and the territory (the same as in ``scenario``).
    year_so_far
        What earlier rounds of the year did, or None.
    units_in_data, demands_in_data
        Rows of the data before the round was selected (the generated year, or the files).
    units_outside, demands_outside
        The release date of each unit of the data outside the round, and the filing date of
        each demand filed after the round date, by id: what `outside_round` explains.
    """

    scenario: ResolvedScenario
    units: pd.DataFrame
    demands: pd.DataFrame
    facts: pd.DataFrame
    policy: Policy
    on: dt.date
    territory: Territory
    year_so_far: YearSoFar | None
    units_in_data: int
    demands_in_data: int
    units_outside: pd.Series
    demands_outside: pd.Series

    def outside_round(self, kind: Literal["unit", "demand"], item_id: str) -> str | None:
        """Why an id asked about is not in the round, or None when it is.

        A planner asks ``why-not`` about a unit they see in the data; when it is released in
        another month, or the demand filed after the round date, "no such unit" would send them
        looking for a typo. The reason names the date that leaves it out and the round's span.
        """
        table = self.units if kind == "unit" else self.demands
        if (table[f"{kind}_id"] == item_id).any():
            return None
        outside = self.units_outside if kind == "unit" else self.demands_outside
        sc = self.scenario
        if item_id in outside.index:
            when = pd.Timestamp(outside[item_id]).date().isoformat()
            if kind == "demand":
                return (
                    f"demand {item_id} was filed on {when}, after the round date "
                    f"{self.on.isoformat()}: it is not in this round"
                )
            span = (
                f"month {sc.month} of {sc.scenario.year}"
                if sc.month is not None
                else f"the year {sc.scenario.year}"
            )
            return (
                f"unit {item_id} is released on {when}, outside this round ({span}): "
                "pick its month with the scenario's `round: month:`"
            )
        count = self.units_in_data if kind == "unit" else self.demands_in_data
        return f"no {kind} {item_id} in the scenario's data ({count:,} {kind}{'s' * (count != 1)})"


def in_round(released_on: pd.Series, year: int, month: int | None) -> pd.Series:
    """Mask of the units released in the round: in ``month`` of ``year``, or in ``year``."""
    dates = pd.to_datetime(released_on)
    mask = dates.dt.year == year
    if month is not None:
        mask &= dates.dt.month == month
    return mask


def refuse_units_before_year(units: pd.DataFrame, source: str, year: int) -> None:
    """Refuse the units of a table released before the year that a whole-year round takes.

    Why: a year (``matching simulate``, or a round without ``month``) takes the units released
    in it; a unit released in December of the year before was dropped without a word, so the
    year's ``units.csv`` and counts left it out while the file held it (docs/data-format.md: no
    row is dropped silently). A round of one month still leaves other months' units out.
    """
    before = pd.to_datetime(units["released_on"]) < pd.Timestamp(dt.date(year, 1, 1))
    problems = Problems()
    for row in before.to_numpy().nonzero()[0]:
        value = units["released_on"].iloc[row]
        problems.add(
            source,
            int(row) + 1,
            "released_on",
            pd.Timestamp(value).date().isoformat(),
            f"released before {year}, the scenario's year: a year's rounds take the units "
            f"released in it (a unit still vacant on 1 January: released_on {year}-01-01)",
        )
    problems.raise_if_any()


def load_round(scenario: Scenario | ResolvedScenario) -> RoundData:
    """Generate or read the scenario's data, validate it, and keep the round's part.

    Files are validated against the territory's communes, the policy's réservataires and the
    end of the scenario's year: a unit released after the round (later that year) is outside
    the round, not an error; a date after the year is. A demand filed after the round date did
    not exist at the round and is left out too. Columns that ``matching solve`` adds to the
    demands it writes (score, derived facts) are dropped and recomputed.

    Raises
    ------
    DataError
        Listing every bad row of the files (file, row, field, value, reason).
    PolicyError
        From `resolve`.
    """
    resolved = scenario if isinstance(scenario, ResolvedScenario) else resolve(scenario)
    sc, policy = resolved.scenario, resolved.policy
    if resolved.generate is not None:
        units, demands = generate_territory(
            territory=sc.territory,
            year=sc.year,
            seed=sc.seed,
            n_units=resolved.generate.units,
            n_demands=resolved.generate.demands,
        )
    else:
        assert resolved.units_path is not None and resolved.demands_path is not None
        codes = resolved.territory.commune_codes()
        year_end = dt.date(sc.year, 12, 31)
        units = read_units(resolved.units_path, communes=codes, as_of=year_end)
        demands = read_demands(
            resolved.demands_path,
            communes=codes,
            as_of=year_end,
            reservataires=frozenset(policy.reservataire_ids()),
            ignore_derived=True,
        )
    if resolved.month is None and resolved.units_path is not None:
        refuse_units_before_year(units, str(resolved.units_path), sc.year)
    kept = in_round(units["released_on"], sc.year, resolved.month)
    round_units = units[kept]
    filed = pd.to_datetime(demands["filed_on"]) <= pd.Timestamp(resolved.on)
    round_demands = demands[filed]
    # In the order of their ids, as a solve takes them: what `score`, `eligibility` and
    # `scenario show` write or list does not depend on the order of the data's rows.
    round_units = in_id_order(round_units.reset_index(drop=True), "unit_id")
    round_demands = in_id_order(round_demands.reset_index(drop=True), "demand_id")
    year_so_far = (
        read_year_so_far(resolved.year_so_far_path, resolved.policy)
        if resolved.year_so_far_path is not None
        else None
    )
    return RoundData(
        scenario=resolved,
        units=round_units,
        demands=round_demands,
        facts=derive_facts(round_demands, policy, resolved.on),
        policy=policy,
        on=resolved.on,
        territory=resolved.territory,
        year_so_far=year_so_far,
        units_in_data=len(units),
        demands_in_data=len(demands),
        units_outside=pd.Series(
            units["released_on"].to_numpy()[~kept.to_numpy()],
            index=units["unit_id"].to_numpy()[~kept.to_numpy()],
        ),
        demands_outside=pd.Series(
            demands["filed_on"].to_numpy()[~filed.to_numpy()],
            index=demands["demand_id"].to_numpy()[~filed.to_numpy()],
        ),
    )


def merge_params(
    params: SolveParams, override: SolveParams | Mapping[str, Any] | None
) -> SolveParams:
    """Apply overrides to solver settings: a full `SolveParams`, or a mapping of some fields.

    Raises
    ------
    PolicyError
        An override names an unknown setting or an invalid value (naming the key).
    """
    if override is None:
        return params
    if isinstance(override, SolveParams):
        return override
    try:
        return SolveParams.model_validate({**params.model_dump(), **override})
    except ValidationError as exc:
        raise PolicyError(format_validation_error("solver settings", exc)) from None


def run_scenario(
    scenario: Scenario | ResolvedScenario,
    params_override: SolveParams | Mapping[str, Any] | None = None,
    *,
    raise_on_infeasible: bool = True,
) -> tuple[RoundData, Result]:
    """Load the scenario's round and solve it (`matching.round.solve`, checked independently).

    Parameters
    ----------
    scenario
        A scenario (resolved here) or an already resolved one.
    params_override
        Solver settings replacing the scenario's: a `SolveParams`, or a mapping of the fields
        to change (e.g. ``{"time_limit_s": 10}``).
    raise_on_infeasible
        Raise `InfeasibleError` when the hard quotas cannot all hold (default); otherwise
        return the INFEASIBLE result, with its conflicts and soft-mode diagnosis.

    Returns
    -------
    tuple
        ``(round_data, result)``.
    """
    from matching.round import solve  # the solver stack is imported only when solving

    data = load_round(scenario)
    params = merge_params(data.scenario.params, params_override)
    result = solve(
        data.units,
        data.demands,
        data.policy,
        params,
        year_so_far=data.year_so_far,
        on=data.on,
        raise_on_infeasible=raise_on_infeasible,
    )
    return data, result
