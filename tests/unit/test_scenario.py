"""Scenarios: loading with errors that name file and key, resolving, round selection, running.

The bundled scenarios are read from the repository's ``scenarios/`` folder; the file-based cases
write tiny tables (tests.factories) next to a scenario file in a temporary folder.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError
from tests.factories import demand, demands_of, unit, units_of

from matching.exceptions import DataError, PolicyError
from matching.generate import generate_territory
from matching.io import write_demands, write_units
from matching.params import SolveParams
from matching.policy.loader import BUNDLED_MODELS
from matching.scenario import (
    Scenario,
    load_round,
    load_scenario,
    merge_params,
    resolve,
    round_date,
    run_scenario,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
TINY = SCENARIOS / "tiny.yaml"
CAEN = SCENARIOS / "caen-la-mer-2026.yaml"

MINIMAL = """\
id: t
territory: caen-la-mer
year: 2026
seed: 4
policy: default-2026
data:
  generate: {units: 24, demands: 50}
"""


def write(folder: Path, text: str, name: str = "s.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- loading ------------------------------------------------------------------------------------


def test_bundled_scenarios_load() -> None:
    """Both bundled scenarios load; the solver's seed is the scenario's (no seed in 'solver')."""
    caen = load_scenario(CAEN)
    assert (caen.id, caen.territory, caen.year) == ("caen-la-mer-2026", "caen-la-mer", 2026)
    assert caen.seed == 1
    assert caen.data.generate is not None and caen.data.generate.units == 4000
    assert caen.round.month == 1
    assert caen.solver.seed == 1 and caen.solver.time_limit_s == 20
    tiny = load_scenario(TINY)
    assert tiny.source == TINY


def test_minimal_scenario_takes_defaults(tmp_path: Path) -> None:
    """Without 'round' the year is pooled; without 'solver' the defaults apply with the seed 4."""
    sc = load_scenario(write(tmp_path, MINIMAL))
    assert sc.round.month is None
    assert sc.solver == SolveParams(seed=4)
    assert sc.year_so_far is None


def test_explicit_solver_seed_is_kept(tmp_path: Path) -> None:
    """A seed written under 'solver' wins over the scenario's seed."""
    sc = load_scenario(write(tmp_path, MINIMAL + "solver: {seed: 9, num_workers: 1}\n"))
    assert (sc.seed, sc.solver.seed, sc.solver.num_workers) == (4, 9, 1)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("rounds: {month: 1}\n", "rounds"),  # a misspelt key is refused, not ignored
        ("round: {month: 13}\n", "round.month"),
        ("round: {month: 1, cadence: weekly}\n", "round.cadence"),
        ("solver: {time_limit: 5}\n", "solver.time_limit"),
        ("solver: {num_workers: 0}\n", "solver.num_workers"),
        # refused when the file is read, not when the year starts (which named no file)
        ("simulation: {allocation_policy: random}\n", "simulation.allocation_policy"),
    ],
)
def test_bad_key_names_file_and_key(tmp_path: Path, extra: str, key: str) -> None:
    """An unknown or invalid key raises PolicyError naming the file and the dotted key."""
    path = write(tmp_path, MINIMAL + extra)
    with pytest.raises(PolicyError) as info:
        load_scenario(path)
    assert f"{path}: {key}:" in str(info.value)


def test_missing_and_conflicting_keys(tmp_path: Path) -> None:
    """A missing seed, an unknown territory and a double data source each name their key."""
    no_seed = write(tmp_path, MINIMAL.replace("seed: 4\n", ""), "a.yaml")
    with pytest.raises(PolicyError, match=r"a\.yaml: seed: Field required"):
        load_scenario(no_seed)
    paris = write(tmp_path, MINIMAL.replace("caen-la-mer", "paris"), "b.yaml")
    with pytest.raises(PolicyError, match=r"b\.yaml: territory: unknown territory 'paris'"):
        load_scenario(paris)
    two_sources = "{units: 2, demands: 5}\n  units: u.csv"
    both = write(tmp_path, MINIMAL.replace("{units: 24, demands: 50}", two_sources), "c.yaml")
    with pytest.raises(PolicyError, match=r"c\.yaml: data: give either 'generate'"):
        load_scenario(both)
    units_only = MINIMAL.replace("generate: {units: 24, demands: 50}", "units: u.csv")
    half = write(tmp_path, units_only, "d.yaml")
    with pytest.raises(PolicyError, match=r"d\.yaml: data: give 'generate"):
        load_scenario(half)


def test_not_yaml_or_source_key(tmp_path: Path) -> None:
    """Unparsable YAML, a non-mapping and a 'source' key are refused, naming the file."""
    with pytest.raises(PolicyError, match=r"bad\.yaml: not valid YAML"):
        load_scenario(write(tmp_path, "id: [unclosed\n", "bad.yaml"))
    with pytest.raises(PolicyError, match=r"list\.yaml: expected a mapping"):
        load_scenario(write(tmp_path, "- 1\n- 2\n", "list.yaml"))
    with pytest.raises(PolicyError, match=r"src\.yaml: source: not a scenario key"):
        load_scenario(write(tmp_path, MINIMAL + "source: x.yaml\n", "src.yaml"))


# --- resolving ----------------------------------------------------------------------------------


def test_round_dates() -> None:
    """The round date is the month's last day (29 February in a leap year), or 31 December."""
    assert round_date(2026, 1) == dt.date(2026, 1, 31)
    assert round_date(2024, 2) == dt.date(2024, 2, 29)
    assert round_date(2026, 2) == dt.date(2026, 2, 28)
    assert round_date(2026, None) == dt.date(2026, 12, 31)


def test_resolve_bundled_policy_and_territory() -> None:
    """The tiny scenario resolves to the bundled policy file, Caen la Mer and 31 January 2026."""
    res = resolve(load_scenario(TINY))
    assert res.policy.id == "default-2026"
    assert res.policy_path == (BUNDLED_MODELS / "default-2026.yaml").resolve()
    assert res.territory.id == "caen-la-mer" and len(res.territory.communes) == 48
    assert res.on == dt.date(2026, 1, 31) and res.month == 1
    assert res.units_path is None and res.generate is not None
    assert res.params.seed == 1 and res.params.time_limit_s == 10


def test_resolve_relative_policy_and_files(tmp_path: Path) -> None:
    """A policy path and data paths are read relative to the scenario file, made absolute."""
    (tmp_path / "sub").mkdir()
    shutil.copy(BUNDLED_MODELS / "default-2026.yaml", tmp_path / "sub" / "mine.yaml")
    text = MINIMAL.replace("policy: default-2026", "policy: sub/mine.yaml").replace(
        "generate: {units: 24, demands: 50}", "units: u.csv\n  demands: ../d.parquet"
    )
    res = resolve(load_scenario(write(tmp_path, text + "year_so_far: y.json\n")))
    assert res.policy_path == (tmp_path / "sub" / "mine.yaml").resolve()
    assert res.units_path == (tmp_path / "u.csv").resolve()
    assert res.demands_path == (tmp_path.parent / "d.parquet").resolve()
    assert res.year_so_far_path == (tmp_path / "y.json").resolve()
    assert res.on == dt.date(2026, 12, 31) and res.month is None


def test_resolve_errors_name_the_policy_key(tmp_path: Path) -> None:
    """A policy that is neither a file nor a bundled model, or of another year, is refused."""
    missing = load_scenario(write(tmp_path, MINIMAL.replace("default-2026", "nope"), "m.yaml"))
    with pytest.raises(PolicyError, match=r"m\.yaml: policy: 'nope' is neither a file"):
        resolve(missing)
    other_year = load_scenario(write(tmp_path, MINIMAL.replace("year: 2026", "year: 2025")))
    message = r"policy: 'default-2026' is for 2026, the scenario for 2025"
    with pytest.raises(PolicyError, match=message):
        resolve(other_year)


# --- the round's data ---------------------------------------------------------------------------


def test_generated_round_keeps_the_month() -> None:
    """The tiny round holds exactly the generated units released in January, all demands."""
    data = load_round(load_scenario(TINY))
    units, demands = generate_territory("caen-la-mer", 2026, 1, 300, 300)
    january = units[units["released_on"].dt.month == 1]
    assert list(data.units["unit_id"]) == list(january["unit_id"])
    assert len(data.units) == 21  # the scenario's label says so
    assert (data.units["released_on"].dt.month == 1).all()
    assert data.units.index.equals(pd.RangeIndex(len(data.units)))
    assert (data.units_in_data, data.demands_in_data) == (300, 300)
    assert len(data.demands) == len(demands) == 300  # generated demands are filed by 1 January
    assert {"q1", "priority", "seniority_months"} <= set(data.facts.columns)
    assert data.on == dt.date(2026, 1, 31) and data.year_so_far is None


def test_pooled_round_keeps_the_year(tmp_path: Path) -> None:
    """Without a month every generated unit of the year is in the round, dated 31 December."""
    data = load_round(load_scenario(write(tmp_path, MINIMAL)))
    assert len(data.units) == 24 and data.on == dt.date(2026, 12, 31)


@pytest.fixture
def file_scenario(tmp_path: Path) -> Path:
    """A March round on files: 2 units in March, 1 in April, 1 of 2025; a demand filed in May."""
    units = units_of(
        unit("U1", released_on=dt.date(2026, 3, 2)),
        unit("U2", released_on=dt.date(2026, 3, 31)),
        unit("U3", released_on=dt.date(2026, 4, 1)),  # later this year: outside the round
        unit("U4", released_on=dt.date(2025, 3, 10)),  # last year: outside the round
    )
    demands = demands_of(
        demand("D1"),
        demand("D2", filed_on=dt.date(2026, 3, 31)),
        demand("D3", filed_on=dt.date(2026, 5, 2)),  # filed after the round date: left out
    )
    (tmp_path / "data").mkdir()
    write_units(units, tmp_path / "data" / "units.csv")
    write_demands(demands, tmp_path / "data" / "demands.parquet")
    (tmp_path / "year.yaml").write_text("flux_units: 7\noriented: {etat: 2}\n")
    text = MINIMAL.replace(
        "generate: {units: 24, demands: 50}",
        "units: data/units.csv\n  demands: data/demands.parquet",
    )
    return write(tmp_path, text + "round: {month: 3}\nyear_so_far: year.yaml\n")


def test_file_round_selects_month_and_filing_date(file_scenario: Path) -> None:
    """Units outside March and demands filed after 31 March are outside the round, not errors."""
    data = load_round(load_scenario(file_scenario))
    assert list(data.units["unit_id"]) == ["U1", "U2"]
    assert list(data.demands["demand_id"]) == ["D1", "D2"]
    assert (data.units_in_data, data.demands_in_data) == (4, 3)
    assert data.on == dt.date(2026, 3, 31)
    assert data.year_so_far is not None
    assert data.year_so_far.flux_units == 7 and data.year_so_far.oriented == {"etat": 2}
    # seniority at 31 March 2026 of a demand filed 31 March 2025: 12 months
    assert data.facts["seniority_months"].tolist() == [12, 0]


def test_file_round_rejects_bad_rows(file_scenario: Path) -> None:
    """A date after the scenario's year and a commune outside the territory are DataErrors."""
    path = file_scenario.parent / "data" / "units.csv"
    units = units_of(
        unit("U1", released_on=dt.date(2027, 1, 5)),
        unit("U2", commune_insee="75056"),  # Paris: not in Caen la Mer
    )
    write_units(units, path)
    with pytest.raises(DataError) as info:
        load_round(load_scenario(file_scenario))
    text = str(info.value)
    assert f"{path}: row 1, field 'released_on'" in text and "future" in text
    assert f"{path}: row 2, field 'commune_insee'" in text


# --- solving ------------------------------------------------------------------------------------


def test_merge_params() -> None:
    """Overrides replace only the fields they name; an unknown field names its key."""
    base = SolveParams(seed=5, time_limit_s=30)
    merged = merge_params(base, {"num_workers": 1})
    assert (merged.seed, merged.time_limit_s, merged.num_workers) == (5, 30, 1)
    assert merge_params(base, None) is base
    assert merge_params(base, SolveParams()) == SolveParams()
    with pytest.raises(PolicyError, match="solver settings: workers: Extra inputs"):
        merge_params(base, {"workers": 1})


@pytest.mark.parametrize(
    ("update", "field"),
    [({"seed": -1}, "seed"), ({"num_workers": "2"}, "num_workers"),
     ({"time_limit_s": 0}, "time_limit_s"), ({"workers": 1}, "workers")],
)  # fmt: skip
def test_a_copy_of_the_settings_is_validated(update: dict, field: str) -> None:
    """``SolveParams.model_copy`` refuses what the constructor refuses (pydantic's does not)."""
    base = SolveParams(seed=5)
    with pytest.raises(ValidationError, match=field):
        base.model_copy(update=update)
    copy = base.model_copy(update={"time_limit_s": 2.5})
    assert (copy.seed, copy.time_limit_s) == (5, 2.5) and base.time_limit_s == 60.0


def test_run_scenario_solves_the_round() -> None:
    """The tiny round solves (checked by matching.round.solve) with the overridden seed."""
    data, result = run_scenario(load_scenario(TINY), {"seed": 3})
    assert result.status in {"OPTIMAL", "FEASIBLE"}
    assert result.params.seed == 3 and result.params.time_limit_s == 10
    assert result.round_date == dt.date(2026, 1, 31)
    assert result.counts["units"] == len(data.units) == 21
    assert len(result.allocation) + len(result.unallocated_units) == 21


def test_scenario_built_in_code_reads_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Scenario made in code, without a file, resolves relative paths from the current folder."""
    shutil.copy(BUNDLED_MODELS / "default-2026.yaml", tmp_path / "p.yaml")
    monkeypatch.chdir(tmp_path)
    sc = Scenario.model_validate(
        {"id": "c", "territory": "caen-la-mer", "year": 2026, "seed": 2, "policy": "p.yaml",
         "data": {"generate": {"units": 5, "demands": 5}}}
    )  # fmt: skip
    assert sc.source is None and sc.solver.seed == 2
    assert resolve(sc).policy_path == (tmp_path / "p.yaml").resolve()


# --- bounds and types of the settings -----------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        # CP-SAT's random_seed is an int32: a larger seed crashed the optimal policy's solve
        ("seed: 4\n", "seed: 2147483648\n", "seed"),
        ("seed: 4\n", "seed: 99999999999999999999\n", "seed"),
        ("data:", "solver: {seed: 2147483648}\ndata:", "solver.seed"),
    ],
)
def test_seed_above_int32_is_refused(tmp_path: Path, old: str, new: str, key: str) -> None:
    """A seed above 2**31 - 1 names the file and the key (CP-SAT cannot take it)."""
    path = write(tmp_path, MINIMAL.replace(old, new))
    with pytest.raises(PolicyError) as info:
        load_scenario(path)
    assert f"{path}: {key}: Input should be less than or equal to 2147483647" in str(info.value)
    assert str(info.value).count("\n") == 0  # one problem: the solver's copy of it is not listed


def test_largest_seed_is_accepted(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, MINIMAL.replace("seed: 4", "seed: 2147483647")))
    assert sc.seed == sc.solver.seed == 2**31 - 1
    with pytest.raises(ValueError, match="less than or equal to 2147483647"):
        SolveParams(seed=2**31)


@pytest.mark.parametrize(
    ("extra", "key", "bound"),
    [
        # numpy asked for 745 GiB and died with a MemoryError traceback
        ("simulation: {arrivals_per_year: 100000000000}\n", "simulation.arrivals_per_year", 999999),
        ("simulation: {answer_delay_days: 100000000000000000000}\n",  # OverflowError in numpy
         "simulation.answer_delay_days", 365),
        ("simulation: {abnormally_long_months: 100000000000}\n",
         "simulation.abnormally_long_months", 120),
    ],
)  # fmt: skip
def test_counts_have_an_upper_bound(tmp_path: Path, extra: str, key: str, bound: int) -> None:
    """A count far past any territory's is a typo: refused naming file, key and bound."""
    path = write(tmp_path, MINIMAL + extra)
    with pytest.raises(PolicyError) as info:
        load_scenario(path)
    assert f"{path}: {key}: Input should be less than or equal to {bound}" in str(info.value)


@pytest.mark.parametrize("field", ["units", "demands"])
def test_generated_sizes_have_an_upper_bound(tmp_path: Path, field: str) -> None:
    sizes = {"units": 24, "demands": 50} | {field: 100_000_000_000}
    text = MINIMAL.replace("{units: 24, demands: 50}", f"{{units: {sizes['units']}, "
                           f"demands: {sizes['demands']}}}")  # fmt: skip
    path = write(tmp_path, text)
    with pytest.raises(
        PolicyError, match=rf"data\.generate\.{field}: .* less than or equal to 999999"
    ):
        load_scenario(path)
    with pytest.raises(ValueError, match="999,999"):  # the generator itself, for library callers
        generate_territory(n_units=sizes["units"], n_demands=sizes["demands"])


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        # a boolean is not a number, a float not an integer, a string not a number: each was
        # coerced (true -> 1, 1.0 -> 1, '0.5' -> 0.5) and the run went on with exit 0
        ("seed: 4\n", "seed: true\n", "seed"),
        ("seed: 4\n", "seed: 1.0\n", "seed"),
        ("year: 2026\n", "year: 2026.0\n", "year"),
        ("{units: 24, demands: 50}", "{units: true, demands: 50}", "data.generate.units"),
        ("", "round: {month: true}\n", "round.month"),
        ("", "solver: {num_workers: 2.0}\n", "solver.num_workers"),
        ("", "solver: {time_limit_s: true}\n", "solver.time_limit_s"),
        ("", "solver: {seed: false}\n", "solver.seed"),
        ("", "solver: {log: 1}\n", "solver.log"),
        ("", "simulation: {renewal_rate: true}\n", "simulation.renewal_rate"),
        ("", "simulation: {renewal_rate: '0.5'}\n", "simulation.renewal_rate"),
        ("", "simulation: {refusals: {probability: false}}\n", "simulation.refusals.probability"),
        ("", "simulation: {refusals: {in_qpv: true}}\n", "simulation.refusals.in_qpv"),
        ("", "simulation: {refusals: {by_rooms: {2: true}}}\n", "simulation.refusals.by_rooms.2"),
        ("", "simulation: {arrivals_per_year: true}\n", "simulation.arrivals_per_year"),
        ("", "simulation: {last_round: true}\n", "simulation.last_round"),
        ("", "simulation: {shortlist_size: 3.0}\n", "simulation.shortlist_size"),
    ],
)
def test_wrong_types_are_refused_not_coerced(tmp_path: Path, old: str, new: str, key: str) -> None:
    """Booleans are not numbers and floats are not integers: refused naming file and key."""
    text = MINIMAL.replace(old, new) if old else MINIMAL + new
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as info:
        load_scenario(path)
    assert f"{path}: {key}: Input should be a valid" in str(info.value)


@pytest.mark.parametrize(
    ("new", "message"),
    [
        ("seed: true\n", "seed: Input should be a valid integer (got true)"),
        ("seed: 1.0\n", "seed: Input should be a valid integer (got 1.0)"),
        ("simulation: {renewal_rate: '0.5'}\n",
         'simulation.renewal_rate: Input should be a valid number (got "0.5")'),
    ],
)  # fmt: skip
def test_a_refused_value_is_repeated_as_the_file_gave_it(
    tmp_path: Path, new: str, message: str
) -> None:
    """The value is repeated: "should be a valid number" alone left the reader to guess which."""
    old = "seed: 4\n" if new.startswith("seed") else ""
    path = write(tmp_path, MINIMAL.replace(old, new) if old else MINIMAL + new)
    with pytest.raises(PolicyError) as info:
        load_scenario(path)
    assert f"{path}: {message}" in str(info.value).splitlines()


def test_numbers_in_exponent_form_are_numbers(tmp_path: Path) -> None:
    """``1e3`` and ``2.5e-1`` are floats, as YAML 1.2 reads them (PyYAML's 1.1 read text).

    The strict settings then refused them as "not a number"; quoted, they stay text.
    """
    path = write(
        tmp_path, MINIMAL + "solver: {time_limit_s: 1e3}\nsimulation: {renewal_rate: 2.5e-1}\n"
    )
    scenario = load_scenario(path)
    assert scenario.solver.time_limit_s == 1000.0
    assert scenario.simulation.renewal_rate == 0.25
    quoted = write(tmp_path, MINIMAL + "solver: {time_limit_s: '1e3'}\n")
    with pytest.raises(PolicyError, match=r"solver.time_limit_s: Input should be a valid number"):
        load_scenario(quoted)


def test_integers_are_still_numbers(tmp_path: Path) -> None:
    """An integer where a real number is expected is fine (1 is a rate, 5 seconds a budget)."""
    extra = "solver: {time_limit_s: 5, relative_gap: 0}\nsimulation: {renewal_rate: 1, " \
            "refusals: {probability: 0, by_rooms: {2: 1}}}\n"  # fmt: skip
    sc = load_scenario(write(tmp_path, MINIMAL + extra))
    assert sc.solver.time_limit_s == 5.0 and sc.simulation is not None
    assert sc.simulation.renewal_rate == 1.0 and sc.simulation.refusals.by_rooms == {2: 1.0}


@pytest.mark.parametrize(
    ("extra", "key", "where"),
    [
        ("seed: 5\n", "seed", "lines 4 and 8"),  # the second one silently won
        ("simulation:\n  renewal_rate: 0.5\n  renewal_rate: 0.9\n", "renewal_rate",
         "lines 9 and 10"),
        # one line: it said "lines 8 and 8"
        ("simulation: {refusals: {by_rooms: {2: 0.1, 2: 0.2}}}\n", "2",
         "line 8, columns 36 and 44"),
    ],
)  # fmt: skip
def test_a_key_given_twice_is_refused(tmp_path: Path, extra: str, key: str, where: str) -> None:
    path = write(tmp_path, MINIMAL + extra)
    with pytest.raises(PolicyError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}: {key}: given twice ({where})"


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    """A key that overrides one merged in with ``<<`` is YAML's way to override, not a typo."""
    extra = "x_solver: &base {time_limit_s: 5, num_workers: 1}\n"
    text = extra + MINIMAL + "solver:\n  <<: *base\n  num_workers: 2\n"
    with pytest.raises(PolicyError, match="x_solver: Extra inputs"):  # only the anchor's key
        load_scenario(write(tmp_path, text))


@pytest.mark.parametrize(("cadence", "rounds"), [("monthly", 13), ("weekly", 53)])
def test_last_round_past_the_year_is_refused(tmp_path: Path, cadence: str, rounds: int) -> None:
    """last_round: 99 was silently the whole year: a planner's typo, refused naming the key."""
    extra = f"simulation: {{cadence: {cadence}, last_round: {rounds}}}\n"
    path = write(tmp_path, MINIMAL + extra)
    with pytest.raises(PolicyError) as info:
        load_scenario(path)
    assert f"{path}: simulation: last_round: {rounds}" in str(info.value)
    assert f"a {cadence} year has {rounds - 1} rounds" in str(info.value)
    ok = MINIMAL + f"simulation: {{cadence: {cadence}, last_round: {rounds - 1}}}\n"
    assert load_scenario(write(tmp_path, ok, "ok.yaml")).simulation.last_round == rounds - 1  # type: ignore[union-attr]


@pytest.mark.parametrize("rooms", [0, -3, 8])
def test_refusals_by_rooms_names_a_real_number_of_rooms(tmp_path: Path, rooms: int) -> None:
    """A unit has 1 to 7 rooms: ``by_rooms: {0: 0.5}`` silently applied to no unit at all."""
    path = write(tmp_path, MINIMAL + f"simulation: {{refusals: {{by_rooms: {{{rooms}: 0.5}}}}}}\n")
    with pytest.raises(PolicyError) as info:
        load_scenario(path)
    assert f"by_rooms.{rooms}: a number of rooms lies in 1-7 (T1 = 1)" in str(info.value)
