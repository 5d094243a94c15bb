"""Tests of `matching.io`: file loading, validation errors, canonical frames and round trips."""

from __future__ import annotations

import csv
import datetime as dt
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.factories import ROUND_DATE, demand, demands_of, unit, units_of

from matching import io
from matching.domain import Demand, Unit
from matching.exceptions import DataError, RowProblem
from matching.frames import DEMAND_DTYPES, UNIT_DTYPES, demands_frame, frame_records, units_frame

TERRITORY = frozenset({"14118", "14027", "2A004"})
RESERVATAIRES = frozenset({"etat", "etat_agents", "collectivite", "action_logement", "bailleur"})

UNIT_ROW: dict[str, str] = {
    "unit_id": "U1", "bailleur": "B1", "commune_insee": "14118", "qpv": "false", "rooms": "2",
    "surface_m2": "45.0", "financing": "PLUS", "rent_eur": "400.0", "accessible": "false",
    "flux_excluded": "", "released_on": "2026-03-01",
}  # fmt: skip

DEMAND_ROW: dict[str, str] = {
    "demand_id": "D1", "filed_on": "2025-03-31", "household_size": "1", "adults": "1",
    "children_under_14": "0", "dependants": "0", "disabled_member": "false",
    "young_couple": "false", "annual_income_eur": "15000", "monthly_resources_eur": "1500",
    "housing_benefit_eur": "0", "wished_communes": "", "needs_accessible": "false",
    "dalo": "false", "priority_categories": "", "anru": "false", "state_agent": "false",
    "private_employee": "false", "resident_commune_insee": "14118",
    "current_social_tenant": "false",
}  # fmt: skip


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write rows of text cells as a CSV file; columns are all keys, empty where a row lacks one."""
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def unit_rows(*overrides: dict[str, str]) -> list[dict[str, str]]:
    """One valid unit row per override mapping, ids U1, U2, ... unless overridden."""
    return [{**UNIT_ROW, "unit_id": f"U{i + 1}", **o} for i, o in enumerate(overrides)]


def demand_rows(*overrides: dict[str, str]) -> list[dict[str, str]]:
    """One valid demand row per override mapping, ids D1, D2, ... unless overridden."""
    return [{**DEMAND_ROW, "demand_id": f"D{i + 1}", **o} for i, o in enumerate(overrides)]


def problems_of(call: Callable[[], object]) -> list[RowProblem]:
    """Return the problems of the DataError the call raises (fail if it does not raise)."""
    with pytest.raises(DataError) as info:
        call()
    return info.value.problems


# ---------------------------------------------------------------------------------------------
# Valid input
# ---------------------------------------------------------------------------------------------


def test_valid_units_csv_loads_into_canonical_dtypes(tmp_path: Path) -> None:
    """A valid units CSV gives the canonical frame: domain column order, frames.py dtypes."""
    rows = unit_rows({}, {"qpv": "OUI", "rooms": "3", "flux_excluded": "anru", "accessible": "1"})
    path = write_rows(tmp_path / "units.csv", rows)
    frame = io.read_units(path, communes=TERRITORY, as_of=ROUND_DATE)
    assert list(frame.columns) == list(UNIT_DTYPES)
    assert {c: str(t) for c, t in frame.dtypes.items()} == UNIT_DTYPES
    assert isinstance(frame.index, pd.RangeIndex)
    assert frame["qpv"].tolist() == [False, True]  # "OUI" is a true word
    assert frame["accessible"].tolist() == [False, True]  # "1" is a true word
    assert frame["rooms"].tolist() == [2, 3]
    assert frame["flux_excluded"].tolist() == ["", "anru"]
    assert frame["released_on"].tolist() == [pd.Timestamp("2026-03-01")] * 2
    assert isinstance(frame["unit_id"].iloc[0], str)


def test_optional_columns_absent_take_the_model_defaults(tmp_path: Path) -> None:
    """Without the optional columns, demands get eviction_threat False, refusals 0, pools None..."""
    path = write_rows(tmp_path / "demands.csv", demand_rows({}))
    frame = io.read_demands(path)
    assert {c: str(t) for c, t in frame.dtypes.items()} == DEMAND_DTYPES
    row = frame.iloc[0]
    flags = ["eviction_threat", "single_parent", "overcrowded", "hosted", "unsuitable_size"]
    assert not row[flags].any()
    assert row["current_rent_effort"] == 0.0
    assert row["refusals"] == 0
    assert row["wished_communes"] == ()
    assert row["priority_categories"] == ()
    assert row["pools"] is None
    # The same frame as the record built by the factory with its defaults.
    pd.testing.assert_frame_equal(frame, demands_of(demand("D1")))


def test_units_without_flux_excluded_column_default_to_empty(tmp_path: Path) -> None:
    """flux_excluded is optional: absent, every unit is in the flux ("")."""
    rows = [{k: v for k, v in UNIT_ROW.items() if k != "flux_excluded"}]
    frame = io.read_units(write_rows(tmp_path / "units.csv", rows))
    assert frame["flux_excluded"].tolist() == [""]


def test_lists_booleans_and_spaces_are_parsed(tmp_path: Path) -> None:
    """Lists split on ';' (spaces and empty entries ignored); booleans in any case and language."""
    rows = demand_rows(
        {
            "wished_communes": " 14118 ; 14027;",
            "priority_categories": "sans_logement;handicap",
            "pools": "etat;bailleur",
            "dalo": "Yes",
            "anru": "NON",
            "eviction_threat": "oui",
            "refusals": "2",
        },
        {"pools": "", "eviction_threat": "", "refusals": ""},  # empty optional cells = defaults
    )
    frame = io.read_demands(
        write_rows(tmp_path / "d.csv", rows), communes=TERRITORY, reservataires=RESERVATAIRES
    )
    assert frame["wished_communes"].tolist() == [("14118", "14027"), ()]
    assert frame["priority_categories"].tolist() == [("sans_logement", "handicap"), ()]
    assert frame["pools"].tolist() == [("etat", "bailleur"), None]
    assert frame["dalo"].tolist() == [True, False]
    assert frame["anru"].tolist() == [False, False]
    assert frame["eviction_threat"].tolist() == [True, False]
    assert frame["refusals"].tolist() == [2, 0]


def test_resident_commune_outside_the_territory_is_accepted(tmp_path: Path) -> None:
    """A household may live outside the EPCI: resident_commune_insee only needs the INSEE form."""
    path = write_rows(tmp_path / "d.csv", demand_rows({"resident_commune_insee": "75056"}))
    frame = io.read_demands(path, communes=TERRITORY)
    assert frame["resident_commune_insee"].tolist() == ["75056"]


def test_validate_accepts_typed_and_text_frames_alike() -> None:
    """validate_demands gives the same canonical frame from typed values or from their text."""
    canonical = demands_of(
        demand("D1"), demand("D2", wished_communes=("14118",), pools=("etat",), refusals=3)
    )
    from_typed = io.validate_demands(canonical.copy(), "<typed>", reservataires=RESERVATAIRES)
    pd.testing.assert_frame_equal(from_typed, canonical)
    as_text = canonical.map(io.cell_text).astype(object)
    pd.testing.assert_frame_equal(io.validate_demands(as_text, "<text>"), canonical)


def test_a_one_zero_column_read_by_pandas_with_a_blank_cell_is_boolean(tmp_path: Path) -> None:
    """A 1/0 column with a blank cell, which `pd.read_csv` gives as 1.0/0.0/NaN, is read as 1/0.

    The file itself loads; the same file through pandas had every cell refused, shown as '1.0'
    under "not a boolean (true/false, 1/0, ...)". Other numbers stay refused.
    """
    rows = demand_rows({"eviction_threat": "1"}, {"eviction_threat": "0"}, {"eviction_threat": ""})
    path = write_rows(tmp_path / "d.csv", rows)
    frame = pd.read_csv(path, dtype={"resident_commune_insee": str})
    assert frame["eviction_threat"].dtype == np.float64
    from_pandas = io.validate_demands(frame, str(path))
    pd.testing.assert_frame_equal(from_pandas, io.read_demands(path))
    assert from_pandas["eviction_threat"].tolist() == [True, False, False]
    frame.loc[1, "eviction_threat"] = 0.5
    (problem,) = problems_of(lambda: io.validate_demands(frame, "<demands>"))
    assert (problem.row, problem.field, problem.value) == (2, "eviction_threat", "0.5")


def test_typed_list_cells_split_as_their_text_would() -> None:
    """A tuple cell gives the entries its text gives: stripped, split on ';', empties dropped.

    Clean tuples are taken as they are; the others (spaces, a ';' inside an entry, an empty
    entry, a non-text entry) are split from their text, and bad entries are still reported.
    """
    tuples = [("14118", "14027"), (" 14118", "14027 "), ("14118;14027",), ("14118", ""), ()]
    for cells in (
        tuples,  # hashable: each distinct tuple split once
        [*tuples, (np.str_("14118"),), "14118 ; 14027"],
        [*tuples, ["14118", "14027"]],  # a list cell: every cell goes through its text
    ):
        frame = demands_of(*(demand(f"D{i}") for i in range(len(cells))))
        frame["wished_communes"] = pd.Series(cells, dtype=object)
        valid = io.validate_demands(frame, "<typed>", communes=TERRITORY)
        got = valid["wished_communes"].tolist()
        assert got == [io._split(io.cell_text(c)) for c in cells]
        assert got[:5] == [("14118", "14027")] * 3 + [("14118",), ()]
    frame = demands_of(demand("D1"), demand("D2"), demand("D3"))
    frame["wished_communes"] = pd.Series([("14118", "99999"), ("1411",), ()], dtype=object)
    problems = problems_of(lambda: io.validate_demands(frame, "<typed>", communes=TERRITORY))
    assert [(p.row, p.value, p.reason) for p in problems] == [
        (1, "99999", "commune not in the territory"),
        (2, "1411", "not an INSEE commune code (5 characters, e.g. 14118 or 2A004)"),
    ]


def test_validate_numbers_rows_by_position_whatever_the_index() -> None:
    """Rows of a DataFrame are numbered by position (first row = 1), not by its index labels."""
    frame = pd.DataFrame(unit_rows({}, {"rooms": "9"}), index=[10, 20])
    (problem,) = problems_of(lambda: io.validate_units(frame, "<units>"))
    assert (problem.file, problem.row, problem.field) == ("<units>", 2, "rooms")


# ---------------------------------------------------------------------------------------------
# One problem kind at a time: the error names file, row, field, value and reason
# ---------------------------------------------------------------------------------------------

UNIT_CASES: list[tuple[str, str, str, str, dict[str, Any]]] = [
    # field, bad cell, value shown, reason fragment, keyword arguments of read_units
    ("rooms", "x", "x", "not a whole number", {}),
    # a quoted cell with a line break (a spreadsheet's Alt+Enter) was a landlord of its own
    ("bailleur", "Inolya\nSud", "Inolya\nSud", "holds a line break or a control character", {}),
    ("unit_id", "U\x002", "U\x002", "holds a line break or a control character", {}),
    ("rooms", "2.5", "2.5", "not a whole number", {}),
    ("rooms", "8", "8", "must be at most 7", {}),  # Unit.rooms le=7
    ("rooms", "0", "0", "must be at least 1", {}),  # Unit.rooms ge=1
    ("surface_m2", "0", "0", "must be greater than 0", {}),  # Unit.surface_m2 gt=0
    ("surface_m2", "45,5", "45,5", "not a number", {}),  # decimal comma
    ("rent_eur", "-1", "-1", "must be at least 0", {}),
    ("rent_eur", "inf", "inf", "not a number", {}),
    ("qpv", "maybe", "maybe", "not a boolean", {}),
    ("financing", "PLI", "PLI", "unknown value (expected PLAI, PLUS, PLS)", {}),
    ("flux_excluded", "demolition", "demolition", "unknown value", {}),
    ("commune_insee", "1411", "1411", "not an INSEE commune code", {}),
    ("commune_insee", "14A18", "14A18", "not an INSEE commune code", {}),
    ("commune_insee", "75056", "75056", "commune not in the territory", {"communes": TERRITORY}),
    ("released_on", "01/03/2026", "01/03/2026", "not a date (YYYY-MM-DD)", {}),
    ("released_on", "2026-02-30", "2026-02-30", "not a date", {}),
    ("released_on", "2026-04-01", "2026-04-01", "date in the future", {"as_of": ROUND_DATE}),
    ("bailleur", "", "", "required value is missing", {}),
    ("unit_id", " ", "", "required value is missing", {}),
]


@pytest.mark.parametrize(("field", "cell", "shown", "reason", "kwargs"), UNIT_CASES)
def test_each_bad_unit_value_is_reported_with_file_row_field_value_reason(
    tmp_path: Path, field: str, cell: str, shown: str, reason: str, kwargs: dict[str, Any]
) -> None:
    """A bad cell on the second data row gives exactly one problem naming all five facts."""
    path = write_rows(tmp_path / "units.csv", unit_rows({}, {field: cell}))
    problems = problems_of(lambda: io.read_units(path, **kwargs))
    assert len(problems) == 1, problems
    (problem,) = problems
    assert (problem.file, problem.row, problem.field, problem.value) == (str(path), 2, field, shown)
    assert reason in problem.reason


DEMAND_CASES: list[tuple[dict[str, str], str, str, str, dict[str, Any]]] = [
    # bad cells of row 2, field reported, value shown, reason fragment, read_demands kwargs
    ({"annual_income_eur": "-5"}, "annual_income_eur", "-5", "must be at least 0", {}),
    ({"monthly_resources_eur": "abc"}, "monthly_resources_eur", "abc", "not a number", {}),
    ({"household_size": "0"}, "household_size", "0", "must be at least 1", {}),
    ({"adults": "0"}, "adults", "0", "must be at least 1", {}),
    ({"current_rent_effort": "11"}, "current_rent_effort", "11", "must be at most 10", {}),
    ({"refusals": "-1"}, "refusals", "-1", "must be at least 0", {}),
    # "none" in a spreadsheet's words: it counted as a category, making a priority household
    ({"priority_categories": "aucune"}, "priority_categories", "aucune", "not a category", {}),
    ({"priority_categories": "N/A"}, "priority_categories", "N/A", "not a category", {}),
    # a missing value as pandas (str of NaN) and SQL/JSON exports write it, "non communiqué",
    # and a yes from a priority flag column: each counted as a category (priority household)
    ({"priority_categories": "nan"}, "priority_categories", "nan", "not a category", {}),
    ({"priority_categories": "null"}, "priority_categories", "null", "not a category", {}),
    ({"priority_categories": "nc"}, "priority_categories", "nc", "not a category", {}),
    ({"priority_categories": "oui"}, "priority_categories", "oui", "name the household's", {}),
    (
        {"priority_categories": "handicap;Habitat_Indigne"},
        "priority_categories",
        "Habitat_Indigne",
        "not a category code",
        {},
    ),
    # counted as two categories by n_priority_categories (a grid's points per category)
    (
        {"priority_categories": "handicap;violences;handicap"},
        "priority_categories",
        "handicap",
        "category given twice in the cell",
        {},
    ),
    # it wrapped round to -9223372036854775808 and passed as a number of refusals
    ({"refusals": "1e20"}, "refusals", "1e20", "too large a whole number", {}),
    ({"household_size": "-3e19"}, "household_size", "-3e19", "too large a whole number", {}),
    ({"dalo": "peut-être"}, "dalo", "peut-être", "not a boolean", {}),
    ({"demand_id": ""}, "demand_id", "", "required value is missing", {}),
    ({"filed_on": "2026-04-01"}, "filed_on", "2026-04-01", "in the future", {"as_of": ROUND_DATE}),
    ({"filed_on": "2026-4-1"}, "filed_on", "2026-4-1", "not a date (YYYY-MM-DD)", {}),
    ({"resident_commune_insee": "ABCDE"}, "resident_commune_insee", "ABCDE", "INSEE", {}),
    ({"wished_communes": "14118;1411"}, "wished_communes", "1411", "not an INSEE", {}),
    (
        {"wished_communes": "14118;75056"},
        "wished_communes",
        "75056",
        "commune not in the territory",
        {"communes": TERRITORY},
    ),
    (
        {"pools": "etat;mairie"},
        "pools",
        "mairie",
        "unknown réservataire",
        {"reservataires": RESERVATAIRES},
    ),
    ({"pools": "Etat"}, "pools", "Etat", "not a réservataire id", {}),
    # Cross-field rules of domain.Demand: 2 + 0 != 1, and 1 dependant in a 1-person household.
    (
        {"adults": "2"},
        "household_size",
        "1",
        "adults (2) + children_under_14 (0) must equal household_size (1)",
        {},
    ),
    ({"dependants": "1"}, "dependants", "1", "dependants must be fewer than household_size", {}),
    # A young couple raises the category (higher ceilings): one adult cannot be one.
    (
        {"young_couple": "true"},
        "young_couple",
        "true",
        "a young couple needs at least 2 adults (adults is 1)",
        {},
    ),
    # the cotation's +5 for a single parent went to a person living alone
    (
        {"single_parent": "true"},
        "single_parent",
        "true",
        "a single parent lives with a child: household_size must be at least 2",
        {},
    ),
]


@pytest.mark.parametrize(("cells", "field", "shown", "reason", "kwargs"), DEMAND_CASES)
def test_each_bad_demand_value_is_reported_with_file_row_field_value_reason(
    tmp_path: Path,
    cells: dict[str, str],
    field: str,
    shown: str,
    reason: str,
    kwargs: dict[str, Any],
) -> None:
    """A bad demand cell on the second data row gives exactly one problem naming all five facts."""
    path = write_rows(tmp_path / "demands.csv", demand_rows({}, cells))
    problems = problems_of(lambda: io.read_demands(path, **kwargs))
    assert len(problems) == 1, problems
    (problem,) = problems
    assert (problem.file, problem.row, problem.field, problem.value) == (str(path), 2, field, shown)
    assert reason in problem.reason


def test_missing_required_column_is_a_file_level_problem(tmp_path: Path) -> None:
    """A missing required column is reported once, with no row number."""
    rows = [{k: v for k, v in UNIT_ROW.items() if k != "rooms"}]
    path = write_rows(tmp_path / "units.csv", rows)
    (problem,) = problems_of(lambda: io.read_units(path))
    assert problem == RowProblem(str(path), None, "rooms", "", "required column is missing")


def test_unknown_extra_column_is_refused_and_named(tmp_path: Path) -> None:
    """A typo in a column name is refused, named, with the closest known column suggested."""
    rows = [{**DEMAND_ROW, "houshold_size": "1"}]
    path = write_rows(tmp_path / "demands.csv", rows)
    (problem,) = problems_of(lambda: io.read_demands(path))
    assert (problem.row, problem.field) == (None, "houshold_size")
    assert problem.reason == "unknown column; did you mean 'household_size'?"


def test_a_solve_folders_derived_columns_are_named_as_such_not_as_typos(tmp_path: Path) -> None:
    """Reading a solve folder's demands.csv without ignore_derived names the way out.

    `income_per_cu` was reported as "did you mean 'annual_income_eur'?", a typo hunt for a
    column the library writes itself.
    """
    rows = [{**DEMAND_ROW, "income_per_cu": "15000.0", "score": "12"}]
    path = write_rows(tmp_path / "demands.csv", rows)
    problems = problems_of(lambda: io.read_demands(path))
    assert {p.field for p in problems} == {"income_per_cu", "score"}
    for problem in problems:
        assert "did you mean" not in problem.reason
        assert "ignore_derived=True" in problem.reason
    assert len(io.read_demands(path, ignore_derived=True)) == 1


def test_duplicate_ids_are_all_reported_naming_the_first_row(tmp_path: Path) -> None:
    """Ids U1, U2, U1, U1: rows 3 and 4 are duplicates of row 1, and both are reported."""
    rows = unit_rows({}, {}, {"unit_id": "U1"}, {"unit_id": "U1"})
    path = write_rows(tmp_path / "units.csv", rows)
    problems = problems_of(lambda: io.read_units(path))
    assert [(p.row, p.field, p.value) for p in problems] == [
        (3, "unit_id", "U1"),
        (4, "unit_id", "U1"),
    ]
    assert all(p.reason == "duplicate id (first seen on row 1)" for p in problems)


def test_several_bad_rows_are_all_reported_at_once(tmp_path: Path) -> None:
    """Every problem of every row comes in one error, sorted by row then column order."""
    rows = demand_rows(
        {"annual_income_eur": "-1"},
        {},
        {"household_size": "x", "dalo": "?"},
        {"filed_on": "2030-01-01", "wished_communes": "99"},
    )
    path = write_rows(tmp_path / "demands.csv", rows)
    problems = problems_of(lambda: io.read_demands(path, as_of=ROUND_DATE))
    assert [(p.row, p.field) for p in problems] == [
        (1, "annual_income_eur"),
        (3, "household_size"),
        (3, "dalo"),
        (4, "filed_on"),
        (4, "wished_communes"),
    ]
    message = str(DataError(problems))
    assert message.startswith("5 problem(s) in the input data:")
    assert f"{path}: row 3, field 'dalo', value '?': not a boolean" in message
    # raised in a worker process (matching compare --jobs), it arrives pickled: the same error
    shipped = pickle.loads(pickle.dumps(DataError(problems, max_shown=2)))
    assert shipped.problems == problems and shipped.max_shown == 2
    assert str(shipped) == str(DataError(problems, max_shown=2))


def test_blank_line_is_a_row_not_skipped(tmp_path: Path) -> None:
    """A blank line inside a CSV is a data row: reported once as a blank line, never dropped.

    Two blank lines at the end gave 20 "empty cell" problems, one per required field; a row
    holding only its id still has one problem per missing field.
    """
    path = tmp_path / "units.csv"
    write_rows(path, unit_rows({}, {}))
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0], lines[1], "", lines[2]]) + "\n", encoding="utf-8")
    problems = problems_of(lambda: io.read_units(path))
    assert [(p.row, p.field, p.reason) for p in problems] == [
        (2, "", "a blank line: every field is empty (remove it)")
    ]
    id_only = "U9" + "," * (len(lines[0].split(",")) - 1)
    path.write_text("\n".join([*lines, id_only, "", ""]) + "\n", encoding="utf-8")
    problems = problems_of(lambda: io.read_units(path))
    assert {p.row for p in problems} == {3, 4, 5}
    assert [p.field for p in problems if p.row in (4, 5)] == ["", ""]
    assert {"bailleur", "rooms"} <= {p.field for p in problems if p.row == 3}


def test_a_repeated_header_line_is_one_problem(tmp_path: Path) -> None:
    """Two exports joined one after the other: the second header is said once, as such.

    It gave one problem per column, each saying that 'qpv' is not a boolean, 'rooms' not a
    whole number, ...
    """
    path = tmp_path / "units.csv"
    write_rows(path, unit_rows({}, {}))
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0], lines[1], lines[0], lines[2]]) + "\n", encoding="utf-8")
    problems = problems_of(lambda: io.read_units(path))
    assert [(p.row, p.field, p.reason) for p in problems] == [
        (2, "", "the header line again (two files joined?): remove it")
    ]


def test_row_with_wrong_number_of_fields_is_reported(tmp_path: Path) -> None:
    """A CSV row with too many fields is a problem on that row (data row 2 = file line 3)."""
    path = tmp_path / "units.csv"
    write_rows(path, unit_rows({}, {}))
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([*lines, lines[2] + ",extra"]) + "\n", encoding="utf-8")
    (problem,) = problems_of(lambda: io.read_units(path))
    assert problem.row == 3
    assert problem.reason == "expected 11 fields, found 12"
    # the row's text is a household's data (free text included): never shown
    assert problem.value == "" and "U1" not in str(problem) and "extra" not in str(problem)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.csv", None, "file not found"),
        ("units.xlsx", b"", "unsupported file type (.xlsx)"),
        ("empty.csv", b"", "empty file"),
        ("latin1.csv", "unit_id\nLogement é\n".encode("latin-1"), "not UTF-8 text: save it as"),
        ("fake.parquet", b"not parquet", "not a readable Parquet file"),
        # a French spreadsheet's export: one problem that says why, not one per column
        ("semicolons.csv", b"unit_id;bailleur;qpv\nU1;B;oui\n", "separated by ';'"),
        ("tabs.csv", b"unit_id\tbailleur\tqpv\nU1\tB\toui\n", "separated by tabs"),
        # two columns (an orientation table for `check`): two names missing, no word of why
        ("two.csv", b"unit_id;reservataire\nU1;etat\n", "separated by ';'"),
        ("two_tabs.csv", b"unit_id\treservataire\nU1\tetat\n", "separated by tabs"),
        # it said "empty file" of a file holding a header and rows after a blank first line
        ("blank_first.csv", b"\nunit_id,bailleur\nU1,B\n", "the first line is blank"),
        ("blank_only.csv", b"\n", "empty file"),
        # a title above the header: one problem, not every row's text
        ("title.csv", b"Logements janvier\nunit_id,bailleur\nU1,B\n", "a title line above"),
    ],
)
def test_unreadable_files_give_a_file_level_data_error(
    tmp_path: Path, name: str, content: bytes | None, reason: str
) -> None:
    """Missing, unreadable or unsupported files raise DataError (file-level), not OSError."""
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    (problem,) = problems_of(lambda: io.read_units(path))
    assert (problem.file, problem.row) == (str(path), None)
    assert reason in problem.reason


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    """A directory named like a data file is a DataError, not an IsADirectoryError."""
    path = tmp_path / "units.csv"
    path.mkdir()
    (problem,) = problems_of(lambda: io.read_table(path))
    assert problem.row is None


# ---------------------------------------------------------------------------------------------
# Writing and round trips
# ---------------------------------------------------------------------------------------------


def round_trip_units() -> list[Unit]:
    """Units exercising every column: quotes and commas in text, Corsican code, floats, dates."""
    return [
        unit("U1"),
        unit(
            "U2",
            bailleur='Caen "Habitat", SA',
            commune_insee="2A004",
            qpv=True,
            rooms=7,
            surface_m2=1234.56,
            financing="PLAI",
            rent_eur=0.1,
            accessible=True,
            flux_excluded="habitat_indigne",
            released_on=dt.date(2026, 1, 31),
        ),
    ]


def round_trip_demands() -> list[Demand]:
    """Demands exercising lists, pools (None and given), floats like 0.1 and 1/3, old dates."""
    return [
        demand("D1"),
        demand(
            "D2",
            filed_on=dt.date(2019, 12, 31),
            household_size=4,
            adults=2,
            children_under_14=2,
            dependants=2,
            disabled_member=True,
            annual_income_eur=1234.56,
            monthly_resources_eur=0.1,
            housing_benefit_eur=1 / 3,
            wished_communes=("14118", "14027"),
            priority_categories=("sans_logement", "handicap"),
            pools=("etat", "bailleur"),
            eviction_threat=True,
            current_rent_effort=0.35,
            refusals=1,
        ),
        demand("D3", pools=("collectivite",), resident_commune_insee="2B033"),
    ]


def test_units_round_trip_csv_models_parquet_models_loses_nothing(tmp_path: Path) -> None:
    """Units: frame -> CSV -> records -> frame -> Parquet -> frame equals the original exactly."""
    records = round_trip_units()
    original = units_of(*records)
    io.write_units(original, tmp_path / "u.csv")
    from_csv = frame_records(io.read_units(tmp_path / "u.csv"), Unit)
    assert from_csv == records
    io.write_units(units_frame(from_csv), tmp_path / "u.parquet")  # type: ignore[arg-type]
    from_parquet = io.read_units(tmp_path / "u.parquet")
    pd.testing.assert_frame_equal(from_parquet, original)
    assert frame_records(from_parquet, Unit) == records


def test_demands_round_trip_csv_models_parquet_models_loses_nothing(tmp_path: Path) -> None:
    """Demands: frame -> CSV -> records -> frame -> Parquet -> frame equals the original exactly."""
    records = round_trip_demands()
    original = demands_of(*records)
    io.write_demands(original, tmp_path / "d.csv")
    from_csv = frame_records(io.read_demands(tmp_path / "d.csv"), Demand)
    assert from_csv == records
    io.write_demands(demands_frame(from_csv), tmp_path / "d.parquet")  # type: ignore[arg-type]
    from_parquet = io.read_demands(tmp_path / "d.parquet", reservataires=RESERVATAIRES)
    pd.testing.assert_frame_equal(from_parquet, original)
    assert frame_records(from_parquet, Demand) == records


@given(
    st.lists(
        st.floats(allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=5,
    )
)
def test_any_float_round_trips_exactly_through_csv_text(values: list[float]) -> None:
    """Floats are written in their shortest exact form, and the reader parses that form back equal.

    Checks the two primitives the writer and reader use (a full file per example would take
    a tenth of a second each); the file-level round trips are the tests above.
    """
    texts = io._csv_texts(pd.Series(values, dtype="float64"))
    back = io._to_float(pd.Series(texts, dtype=str))
    assert back.tolist() == values


def test_written_csv_has_the_documented_format(tmp_path: Path) -> None:
    """CSV output: header, true/false, ISO dates, ';' lists, empty pools, quotes only if needed."""
    frame = demands_of(
        demand("D1", dalo=True, wished_communes=("14118", "14027"), annual_income_eur=0.1)
    )
    io.write_demands(frame, tmp_path / "d.csv")
    header, row = (tmp_path / "d.csv").read_text(encoding="utf-8").splitlines()
    assert header == ",".join(DEMAND_DTYPES)
    assert row == (
        "D1,2025-03-31,1,1,0,0,false,false,0.1,1500.0,0.0,14118;14027,false,true,,false,false,"
        "false,14118,false,false,false,false,0.0,false,false,0,"
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_writing_twice_gives_identical_bytes(tmp_path: Path, suffix: str) -> None:
    """Same frame, same bytes: CSV and Parquet output are deterministic."""
    frame = demands_of(*round_trip_demands())
    io.write_demands(frame, tmp_path / f"a{suffix}")
    io.write_demands(frame.copy(), tmp_path / f"b{suffix}")
    assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()


def test_parquet_has_a_fixed_schema_and_no_index(tmp_path: Path) -> None:
    """Parquet columns are typed from frames.py (bool, int64, double, date32, string), no index."""
    import pyarrow.parquet as pq

    frame = units_of(*round_trip_units())
    frame.index = pd.Index([5, 7])  # not written
    io.write_units(frame, tmp_path / "u.parquet")
    schema = pq.read_schema(tmp_path / "u.parquet")
    assert schema.names == list(UNIT_DTYPES)
    types = {name: str(schema.field(name).type) for name in schema.names}
    assert types["qpv"] == "bool"
    assert types["rooms"] == "int64"
    assert types["rent_eur"] == "double"
    assert types["released_on"] == "date32[day]"
    assert types["unit_id"] == "string"
    assert schema.metadata is None or b"pandas" not in schema.metadata


def test_write_table_writes_any_frame(tmp_path: Path) -> None:
    """write_table writes an allocations-like frame; read_table gives the text back."""
    allocations = pd.DataFrame(
        {"unit_id": ["U1", "U2"], "demand_id": ["D1", "D2"], "reservataire": ["etat", None]}
    )
    allocations["score"] = [12.5, 0.1]
    io.write_table(allocations, tmp_path / "allocations.csv")
    text = (tmp_path / "allocations.csv").read_text(encoding="utf-8")
    assert text == "unit_id,demand_id,reservataire,score\nU1,D1,etat,12.5\nU2,D2,,0.1\n"
    back = io.read_table(tmp_path / "allocations.csv")
    assert back["reservataire"].tolist() == ["etat", ""]


def test_writing_a_non_canonical_frame_is_refused(tmp_path: Path) -> None:
    """write_units needs every unit column; a missing one is a DataError naming it."""
    frame = units_of(unit("U1")).drop(columns=["rooms"])
    (problem,) = problems_of(lambda: io.write_units(frame, tmp_path / "u.csv"))
    assert (problem.field, problem.row) == ("rooms", None)


def test_column_rules_come_from_the_pydantic_fields() -> None:
    """Bounds, patterns, defaults and choices are read from domain.Unit / domain.Demand."""
    units = {s.name: s for s in io.UNIT_SPECS}
    assert (units["rooms"].ge, units["rooms"].le) == (1, 7)
    assert units["surface_m2"].gt == 0
    assert units["financing"].choices == ("PLAI", "PLUS", "PLS")
    assert units["commune_insee"].pattern == r"^\d[\dAB]\d{3}$"
    demands = {s.name: s for s in io.DEMAND_SPECS}
    assert demands["current_rent_effort"].le == 10
    assert demands["refusals"].required is False
    assert demands["refusals"].default == 0
    assert demands["pools"].kind == "pools"


def test_200k_demands_validate(tmp_path: Path) -> None:
    """A 200,000-row demands table of text cells validates into the canonical frame (sanity)."""
    n = 200_000
    base = pd.DataFrame(
        demand_rows({}, {"wished_communes": "14118;14027", "pools": "etat"}, {"dalo": "true"})
    )
    frame = base.iloc[np.arange(n) % 3].reset_index(drop=True)
    frame["demand_id"] = [f"D{i}" for i in range(n)]
    out = io.validate_demands(frame, "<big>", communes=TERRITORY, as_of=ROUND_DATE)
    assert len(out) == n
    assert {c: str(t) for c, t in out.dtypes.items()} == DEMAND_DTYPES
    assert out["pools"].iloc[1] == ("etat",)
    assert int(out["dalo"].sum()) == 66_666  # positions 2, 5, ..., 199_997: (199_997 - 2) / 3 + 1


def test_list_cells_render_as_their_entries_joined() -> None:
    """A list cell is its entries as text, joined by ';', whatever their type."""
    assert io.cell_text(("14118", "14327")) == "14118;14327"
    assert io.cell_text(["etat", "bailleur"]) == "etat;bailleur"
    assert io.cell_text((np.str_("14118"), "14327")) == "14118;14327"
    assert io.cell_text(("a", 1.5, dt.date(2026, 3, 1), None, True)) == "a;1.5;2026-03-01;;true"
    assert io.cell_text(()) == ""


def test_a_huge_whole_number_in_parquet_is_refused_not_wrapped(tmp_path: Path) -> None:
    """A Parquet column of unsigned 64-bit integers holds values int64 cannot: refused as such."""
    frame = pd.DataFrame(demand_rows({"refusals": "0"}, {"refusals": "1"}))
    frame = frame.astype({"refusals": np.uint64})
    frame.loc[1, "refusals"] = np.uint64(2**64 - 1)
    path = tmp_path / "demands.parquet"
    frame.to_parquet(path)
    (problem,) = problems_of(lambda: io.read_demands(path))
    assert (problem.row, problem.field) == (2, "refusals")
    assert problem.reason.startswith("too large a whole number"), problem


def test_a_no_category_word_is_refused_in_records_too() -> None:
    """A `Demand` record refuses "aucune" as a priority category, as a table does."""
    with pytest.raises(ValueError, match="'aucune' is not a category"):
        demand("D1", priority_categories=("aucune",))
    assert demand("D1", priority_categories=("sans_logement",)).priority_categories == (
        "sans_logement",
    )


def test_empty_header_cells_are_said_once_and_parquet_names_are_stripped(tmp_path: Path) -> None:
    """Trailing empty header cells are one problem that says so; Parquet names lose spaces."""
    path = tmp_path / "units.csv"
    write_rows(path, unit_rows({}))
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text(f"{lines[0]},,\n{lines[1]},,\n", encoding="utf-8")
    (problem,) = problems_of(lambda: io.read_units(path))
    assert (problem.field, problem.reason) == ("", "a column has no name (an empty header cell)")
    frame = pd.DataFrame(unit_rows({})).rename(columns={"rooms": "rooms "})
    frame.to_parquet(tmp_path / "units.parquet")
    assert io.read_units(tmp_path / "units.parquet")["rooms"].tolist() == [2]


def test_arrow_dates_and_zoned_date_cells_read_as_the_dates_they_show() -> None:
    """Dates as `pd.read_parquet(..., dtype_backend="pyarrow")` gives them, and zoned cells.

    A date32 column raised a bare TypeError from pandas (no comparison with a Timestamp), and
    so did an object column of timestamps in UTC and Europe/Paris. Each cell is the date it
    shows in its own zone, as for a zoned column; bad ones are refused naming row and field.
    """
    days = [dt.date(2026, 3, 1), dt.date(2026, 2, 14)]
    canonical = units_of(*(unit(f"U{i}", released_on=day) for i, day in enumerate(days)))
    zoned = pd.Series(
        [pd.Timestamp(days[0], tz="UTC"), pd.Timestamp(days[1], tz="Europe/Paris")], dtype=object
    )
    for column in (
        canonical["released_on"].astype("date32[pyarrow]"),
        canonical["released_on"].astype("date64[pyarrow]"),
        canonical["released_on"]
        .dt.tz_localize("Europe/Paris")
        .astype("timestamp[s, tz=Europe/Paris][pyarrow]"),
        zoned,
    ):
        frame = canonical.assign(released_on=column)
        got = io.validate_units(frame, "<units>", as_of=ROUND_DATE)
        pd.testing.assert_frame_equal(got, canonical)
    bad = [dt.date(2026, 3, 1), None, dt.date(3000, 1, 1), dt.date(2026, 4, 1)]
    frame = units_of(*(unit(f"U{i}") for i in range(4)))
    frame["released_on"] = pd.Series(bad).astype("date32[pyarrow]")
    problems = problems_of(lambda: io.validate_units(frame, "<units>", as_of=ROUND_DATE))
    assert [(p.row, p.field, p.reason) for p in problems] == [
        (2, "released_on", "required value is missing (empty cell)"),
        (3, "released_on", "date out of range (years 1678 to 2261)"),
        (4, "released_on", "date in the future (after the as-of date 2026-03-31)"),
    ]
    frame["released_on"] = pd.Series(
        [pd.Timestamp("2026-03-01", tz="UTC"), pd.Timestamp("2026-03-01 00:30", tz="Europe/Paris"),
         pd.Timestamp("2026-03-01", tz="Europe/Paris"), None], dtype=object,
    )  # fmt: skip
    problems = problems_of(lambda: io.validate_units(frame, "<units>", as_of=ROUND_DATE))
    assert [(p.row, p.field, p.reason) for p in problems] == [
        (2, "released_on", "not a date: has a time of day"),
        (4, "released_on", "required value is missing (empty cell)"),
    ]


def test_column_names_with_spaces_around_them_are_read_in_frames_as_in_files() -> None:
    """A DataFrame's column names lose their surrounding spaces, as a file's header does.

    The same table was read from a CSV file (" dalo " in the header) and refused as a
    DataFrame (`pd.read_csv` keeps the spaces): "unknown column ' dalo '". A name that two
    columns then share is refused, naming both as given.
    """
    canonical = demands_of(demand("D1"), demand("D2", dalo=True))
    spaced = canonical.rename(columns={"dalo": " dalo ", "filed_on": "filed_on\t"})
    pd.testing.assert_frame_equal(io.validate_demands(spaced, "<demands>"), canonical)
    derived = spaced.assign(**{" score ": [3, 4]})
    got = io.validate_demands(derived, "<demands>", ignore_derived=True)
    pd.testing.assert_frame_equal(got, canonical)
    twice = units_of(unit("U1")).assign(**{" rooms": [3]})
    (problem,) = problems_of(lambda: io.validate_units(twice, "<units>"))
    assert (problem.row, problem.field, problem.reason) == (
        None,
        "rooms",
        "column appears more than once ('rooms' and ' rooms': spaces around a name are ignored)",
    )


def test_list_cells_given_as_sets_are_their_entries_sorted() -> None:
    """A set or frozenset in a list column is a list of its entries, in sorted order.

    Its repr was judged as one entry: "not an INSEE commune code" for
    ``frozenset({'14327', '14118'})``. Sorted, so that the table (and the round) is the same
    whatever order the set iterates in; its bad entries are reported one by one.
    """
    frame = demands_of(*(demand(f"D{i}") for i in range(4)))
    frame["wished_communes"] = pd.Series(
        [frozenset({"14118", "2A004"}), {"14027", "14118"}, set(), ("14027",)], dtype=object
    )
    frame["pools"] = pd.Series([None, frozenset({"etat", "bailleur"}), None, None], dtype=object)
    got = io.validate_demands(frame, "<demands>", communes=TERRITORY, reservataires=RESERVATAIRES)
    assert got["wished_communes"].tolist() == [
        ("14118", "2A004"), ("14027", "14118"), (), ("14027",),
    ]  # fmt: skip
    assert got["pools"].tolist() == [None, ("bailleur", "etat"), None, None]
    frame["wished_communes"] = pd.Series([frozenset({"14118", "1411"})] * 4, dtype=object)
    problems = problems_of(lambda: io.validate_demands(frame, "<demands>"))
    assert {(p.field, p.value, p.reason) for p in problems} == {
        ("wished_communes", "1411", "not an INSEE commune code (5 characters, e.g. 14118 or 2A004)")
    }
