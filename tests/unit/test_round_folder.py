"""The files around a solved round in `matching.io`: year so far, derived columns, folder writers.

No solver here: tiny tables from tests.factories, written and read back.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.factories import ROUND_DATE, demand, demands_of, unit, units_of

from matching.exceptions import DataError
from matching.facts import derive_facts
from matching.flux import YearSoFar
from matching.io import (
    INPUT_FILES,
    RESULT_FILES,
    json_text,
    policy_text,
    read_demands,
    read_year_so_far,
    write_round_folder,
    write_round_inputs,
    write_table,
)
from matching.kpis import RoundKpis, compute_kpis
from matching.policy import load_policy
from matching.policy.loader import policy_from_dict
from matching.policy.model import Policy
from matching.policy.quotas import Tally
from matching.round import prepare_round, solve


def test_read_year_so_far_yaml_and_json(tmp_path: Path) -> None:
    """YAML and JSON files give the same YearSoFar; an empty file is the first round."""
    yml = tmp_path / "y.yaml"
    yml.write_text('flux_units: 12\noriented: {etat: 3}\ntallies: {q: {"": {base: 4}}}\n')
    jsn = tmp_path / "y.json"
    jsn.write_text(
        '{"flux_units": 12, "oriented": {"etat": 3}, "tallies": {"q": {"": {"base": 4}}}}'
    )
    expected = YearSoFar(flux_units=12, oriented={"etat": 3}, tallies={"q": {"": Tally(base=4)}})
    assert read_year_so_far(yml) == read_year_so_far(jsn) == expected
    empty = tmp_path / "e.yaml"
    empty.write_text("")
    assert read_year_so_far(empty) == YearSoFar()


def test_read_year_so_far_errors_name_file_and_key(tmp_path: Path) -> None:
    """Each bad key is a DataError row naming the file and the dotted key; files too."""
    bad = tmp_path / "bad.yaml"
    bad.write_text('flux_units: -3\ntallies: {q: {"": {counted: x}}}\nextra: 1\n')
    with pytest.raises(DataError) as info:
        read_year_so_far(bad)
    fields = [p.field for p in info.value.problems]
    assert fields == ["flux_units", "tallies.q..counted", "extra"]
    assert all(p.file == str(bad) for p in info.value.problems)
    with pytest.raises(DataError, match="file not found"):
        read_year_so_far(tmp_path / "missing.yaml")
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- 1\n")
    with pytest.raises(DataError, match="expected a mapping"):
        read_year_so_far(not_mapping)
    # a key given twice: the last one won without a word, as in policy files before
    twice = tmp_path / "twice.yaml"
    twice.write_text("flux_units: 10\noriented: {etat: 2}\nflux_units: 12\n")
    with pytest.raises(DataError, match=r"flux_units: given twice \(lines 1 and 3\)"):
        read_year_so_far(twice)


@pytest.mark.parametrize(
    "text,field,reason",
    [
        ('tallies: {mixity_outside_qpv: {"": {base: 3, counted: 5}}}',
         "tallies.mixity_outside_qpv.", "counted 5 is more than its base 3"),
        ("flux_units: 10\noriented: {etat: 8, collectivite: 4}",
         "oriented", "12 units oriented in all, more than the 10 flux units released"),
        ("flux_units: 10\noriented: {etat: -1}", "oriented.etat", "fewer than none"),
        ("flux_units: 10\noriented: {nobody: 2}",
         "oriented.nobody", "not a réservataire of policy 'default-2026'"),
        ('tallies: {mixity_outside_qpv_old: {"": {base: 3, counted: 1}}}',
         "tallies.mixity_outside_qpv_old", "not a quota rule of policy 'default-2026'"),
        ("tallies: {mixity_outside_qpv: {B1: {base: 3, counted: 1}}}",
         "tallies.mixity_outside_qpv.B1", "has no scope: its one group is ''"),
    ],
)  # fmt: skip
def test_a_year_so_far_no_year_could_give_is_refused(
    tmp_path: Path, text: str, field: str, reason: str
) -> None:
    """Counts that cannot come from a year, or name what the policy does not have.

    They were taken as they were: a rule renamed in the policy lost its tallies without a
    word, an orientation to an unknown réservataire made the round infeasible with no rule to
    name, more orientations than flux units were clipped.
    """
    path = tmp_path / "year.yaml"
    path.write_text(text + "\n")
    with pytest.raises(DataError) as info:
        read_year_so_far(path, load_policy("default-2026"))
    (problem,) = info.value.problems
    assert (problem.file, problem.field) == (str(path), field)
    assert reason in problem.reason


def _scoped(scope: str) -> Policy:
    """default-2026 with its bailleur priority floor held per ``scope`` group."""
    policy = load_policy("default-2026")
    rules = [
        r.model_copy(update={"scope": scope}) if r.id == "priority_floor_bailleur" else r
        for r in policy.quotas.rules
    ]
    return policy.model_copy(update={"quotas": policy.quotas.model_copy(update={"rules": rules})})


@pytest.mark.parametrize(
    "scope,group,reason",
    [
        ("reservataire", "Bailleur", "not a group of scope 'reservataire': one of etat,"),
        ("unit.qpv", "true", "a yes/no field: 'True' or 'False'"),
        ("unit.financing", "PLAII", "'unit.financing' is one of PLAI, PLUS, PLS"),
        ("unit.commune_insee", "1411", "'1411' is not an INSEE commune code"),
    ],
)  # fmt: skip
def test_a_tally_of_a_scope_group_no_allocation_can_fall_in_is_refused(
    tmp_path: Path, scope: str, group: str, reason: str
) -> None:
    """A scoped rule's tally under a group its scope never gives is refused, naming the key.

    It was judged as a group of its own: the real group's earlier allocations were lost, and
    a share floor the phantom group left short failed every round (the checker reported it,
    the solver found the round infeasible).
    """
    path = tmp_path / "year.yaml"
    path.write_text(
        f'tallies: {{priority_floor_bailleur: {{"{group}": {{base: 8, counted: 0}}}}}}\n'
    )
    with pytest.raises(DataError) as info:
        read_year_so_far(path, _scoped(scope))
    (problem,) = info.value.problems
    assert problem.field == f"tallies.priority_floor_bailleur.{group}"
    assert reason in problem.reason
    # the groups the scope does give are taken
    good = {"reservataire": "bailleur", "unit.qpv": "True", "unit.financing": "PLAI"}
    good["unit.commune_insee"] = "14118"
    path.write_text(
        f'tallies: {{priority_floor_bailleur: {{"{good[scope]}": {{base: 8, counted: 2}}}}}}\n'
    )
    year = read_year_so_far(path, _scoped(scope))
    assert year.tally("priority_floor_bailleur", good[scope]).counted == 2


def test_a_year_so_far_object_is_checked_as_a_mapping_is() -> None:
    """A YearSoFar made by model_copy, or changed in place, gets the mapping's checks.

    pydantic's model_copy(update=...) does not validate, nor does changing one of its dicts:
    a year with 50 units oriented out of 5 released, or -3 flux units, was solved without a
    word, where the same counts as a mapping (or a file) are refused naming the key.
    """
    units = units_of(unit("U1"))
    demands = demands_of(demand("D1"))
    year = YearSoFar(flux_units=5, oriented={"etat": 1})
    over = year.model_copy(update={"oriented": {"etat": 50}})
    with pytest.raises(DataError, match=r"year_so_far: file, field 'oriented'.* 50 units"):
        prepare_round(units, demands, "default-2026", on=ROUND_DATE, year_so_far=over)
    negative = year.model_copy(update={"flux_units": -3})
    with pytest.raises(DataError, match=r"year_so_far: file, field 'flux_units', value '-3'"):
        prepare_round(units, demands, "default-2026", on=ROUND_DATE, year_so_far=negative)
    year.oriented["etat"] = 9  # the dict of a frozen model
    with pytest.raises(DataError, match=r"9 units oriented in all"):
        solve(units, demands, "default-2026", on=ROUND_DATE, year_so_far=year)
    fine = prepare_round(units, demands, "default-2026", on=ROUND_DATE, year_so_far=YearSoFar())
    assert fine.instance.year_so_far == YearSoFar()


def test_demands_with_derived_columns_read_back(tmp_path: Path) -> None:
    """A demands file with score and facts is refused, unless ignore_derived drops them."""
    policy = load_policy("default-2026")
    demands = demands_of(demand("D1"), demand("D2", dalo=True))
    facts = derive_facts(demands, policy, ROUND_DATE)
    facts["score"] = np.array([12, 62])
    path = tmp_path / "demands.csv"
    write_table(facts, path)
    with pytest.raises(DataError, match="unknown column"):
        read_demands(path)
    assert read_demands(path, ignore_derived=True).equals(demands)


def test_policy_text_reads_back_equal() -> None:
    """The dumped policy YAML validates back into an equal Policy, with a header comment."""
    policy = load_policy("default-2026")
    text = policy_text(policy)
    assert text.startswith("# Policy default-2026")
    assert policy_from_dict(yaml.safe_load(text)) == policy


def test_json_text_is_stable() -> None:
    """Key order is kept, numpy scalars and dates are converted, the text ends with a newline."""
    data = {"b": np.int64(2), "a": np.float64(0.5), "d": dt.date(2026, 1, 31)}
    assert json_text(data) == '{\n  "b": 2,\n  "a": 0.5,\n  "d": "2026-01-31"\n}\n'


def test_write_round_inputs_removes_stale_results(tmp_path: Path) -> None:
    """Writing the inputs removes an earlier run's results and year_so_far.json."""
    policy = load_policy("default-2026")
    for name in (*RESULT_FILES, "year_so_far.json"):
        (tmp_path / name).write_text("old")
    units = units_of(unit("U1"))
    facts = derive_facts(demands_of(demand("D1")), policy, ROUND_DATE)
    written = write_round_inputs(tmp_path, units, facts, policy)
    assert [p.name for p in written] == list(INPUT_FILES[:3])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(INPUT_FILES[:3])
    write_round_inputs(tmp_path, units, facts, policy, YearSoFar(flux_units=3))
    assert '"flux_units": 3' in (tmp_path / "year_so_far.json").read_text()


def test_write_round_folder_takes_a_policy_name_and_refuses_plain_demands_before_writing(
    tmp_path: Path,
) -> None:
    """A policy name is loaded as solve loads it; demands without facts write nothing.

    A library caller passing the policy's name got units.csv and demands.csv, then an
    AttributeError on policy.yaml: a half-written folder. The plain demands it gave solve
    wrote a demands.csv without the facts and score the folder's documentation promises.
    """
    units = units_of(unit("U1"))
    demands = demands_of(demand("D1"))
    result = solve(units, demands, "default-2026", on=ROUND_DATE)
    facts = result.prepared.instance.demands
    written = write_round_folder(tmp_path / "by-name", result, units, facts, "default-2026")
    assert {p.name for p in written} >= {"policy.yaml", "demands.csv", "result.json"}
    assert load_policy(tmp_path / "by-name" / "policy.yaml") == load_policy("default-2026")
    with pytest.raises(TypeError, match=r"demands_with_facts: no derived column category"):
        write_round_folder(tmp_path / "plain", result, units, demands, "default-2026")
    with pytest.raises(TypeError, match=r"policy: a Policy, a bundled name or a path, not int"):
        write_round_folder(tmp_path / "int", result, units, facts, 2026)  # type: ignore[arg-type]
    assert not (tmp_path / "plain").exists() and not (tmp_path / "int").exists()


def test_write_round_folder_takes_the_year_so_far_as_a_mapping_and_checks_it_first(
    tmp_path: Path,
) -> None:
    """The year so far solve took as a mapping is written as solve's own folder writes it.

    A library caller passing the mapping it gave solve got units.csv, demands.csv and
    policy.yaml, then an AttributeError ('dict' has no 'model_dump'): a folder that re-checks
    without its year. A year the policy cannot have is refused before anything is written.
    """
    units = units_of(unit("U1"))
    demands = demands_of(demand("D1"))
    year = {"flux_units": 12, "oriented": {"etat": 3}}
    result = solve(units, demands, "default-2026", year_so_far=year, on=ROUND_DATE)
    facts = result.prepared.instance.demands
    write_round_folder(tmp_path / "mapping", result, units, facts, "default-2026", year)
    assert read_year_so_far(tmp_path / "mapping" / "year_so_far.json") == YearSoFar(
        flux_units=12, oriented={"etat": 3}
    )
    unknown = {"flux_units": 1, "oriented": {"nobody": 1}}
    with pytest.raises(DataError, match=r"year_so_far: file, field 'oriented.nobody'"):
        write_round_folder(tmp_path / "bad", result, units, facts, "default-2026", unknown)
    assert not (tmp_path / "bad").exists()


def test_round_kpis_from_dict_round_trip() -> None:
    """RoundKpis.from_dict rebuilds the records that to_dict flattened."""
    policy = load_policy("default-2026")
    units = units_of(unit("U1"), unit("U2", qpv=True))
    facts = derive_facts(demands_of(demand("D1"), demand("D2", dalo=True)), policy, ROUND_DATE)
    allocation = pd.DataFrame(
        {"unit_id": ["U1", "U2"], "demand_id": ["D1", "D2"], "reservataire": ["bailleur"] * 2}
    )
    kpis = compute_kpis(units, facts, policy, allocation, None)
    assert RoundKpis.from_dict(kpis.to_dict()) == kpis
