"""Smoke tests of ``matching score | explain-score | eligibility | why-not`` on the tiny scenario.

The round is January 2026 of the tiny scenario (21 units, 300 demands, round date 2026-01-31),
loaded through `matching.scenario.load_round`; the expected figures are recomputed here from the
same round with the library, so the tests check the commands' wiring, not the numbers' meaning.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import matching.cli.commands  # noqa: F401  (registers the commands on the group)
from matching.cli import cli
from matching.eligibility import eligible_pairs
from matching.io import read_table
from matching.policy.scoring import score
from matching.scenario import RoundData, load_round, load_scenario

TINY = Path(__file__).resolve().parents[2] / "scenarios" / "tiny.yaml"


def run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def tiny() -> RoundData:
    return load_round(load_scenario(TINY))


def test_score_writes_every_demand(tiny: RoundData, tmp_path: Path) -> None:
    """`score` writes one row per demand with the library's total score."""
    out = tmp_path / "scores.csv"
    code, text = run("score", TINY, "--out", out)
    assert code == 0, text
    assert "300 demands scored with grid default-grid-2026 at 2026-01-31" in text
    table = read_table(out)
    expected = score(tiny.facts, tiny.policy.cotation).total
    assert list(table["demand_id"]) == list(tiny.demands["demand_id"])
    assert [int(s) for s in table["score"]] == [int(s) for s in expected]
    assert "seniority" in table.columns  # one column per criterion


def test_explain_score_lists_the_criteria(tiny: RoundData) -> None:
    """`explain-score` explains one demand criterion by criterion; an unknown id exits 2."""
    demand_id = str(tiny.demands["demand_id"].iloc[0])
    code, text = run("explain-score", TINY, demand_id)
    assert code == 0, text
    assert demand_id in text and "seniority" in text.lower()
    code, text = run("explain-score", TINY, "D-NOT-THERE")
    assert code == 2 and "D-NOT-THERE" in text and "Traceback" not in text


def test_eligibility_counts_pairs(tiny: RoundData, tmp_path: Path) -> None:
    """`eligibility` prints the round's pair count and writes the per-unit table."""
    pairs = eligible_pairs(tiny.units, tiny.facts, tiny.policy)
    out = tmp_path / "per_unit.csv"
    code, text = run("eligibility", TINY, "--max-units", "3", "--out", out)
    assert code == 0, text
    assert f"21 units, {len(pairs)} eligible pairs" in text
    table = read_table(out)
    assert len(table) == 21
    # the file's columns in the printed table's order: `any` first, then each réservataire
    ids = list(tiny.policy.reservataire_ids())
    assert list(table.columns) == ["unit_id", "flux_excluded", "any", *ids, "no_pool"]
    assert "(" + ", ".join(["any", *ids]) + ")" in text


@pytest.mark.parametrize("command", ["score", "eligibility"])
def test_out_of_another_type_than_csv_or_parquet_is_refused(command: str, tmp_path: Path) -> None:
    """``--out counts.xlsx`` got CSV text under a spreadsheet's name: refused, exit code 2."""
    out = tmp_path / "counts.xlsx"
    code, text = run(command, TINY, "--out", out)
    assert code == 2, text
    assert "unsupported file type (.xlsx); expected .csv or .parquet" in text
    assert not out.exists()


def test_out_in_upper_case_parquet_is_parquet(tmp_path: Path) -> None:
    """``--out COUNTS.PARQUET`` is a Parquet file, as ``.parquet`` is (it was CSV text)."""
    out = tmp_path / "COUNTS.PARQUET"
    code, text = run("eligibility", TINY, "--max-units", "0", "--out", out)
    assert code == 0, text
    assert len(pd.read_parquet(out)) == 21


def test_eligibility_with_no_unit_listed_prints_no_pandas_repr() -> None:
    """``--max-units 0``: the counts and "... 21 more units", not "Empty DataFrame"."""
    code, text = run("eligibility", TINY, "--max-units", "0")
    assert code == 0, text
    assert "Empty DataFrame" not in text and "Columns:" not in text
    assert "  ... 21 more units" in text


def test_eligibility_says_how_many_blocked_units_it_does_not_list() -> None:
    """The blocked units beyond ``--max-units`` are counted, as the per-unit table's are."""
    code, text = run("eligibility", TINY, "--max-units", "0")
    assert code == 0, text
    assert text.rstrip().endswith(
        "1 unit(s) with no eligible demand in any pool:\n  ... 1 more unit"
    ), text


def test_why_not_explains_a_pair(tiny: RoundData) -> None:
    """`why-not` says eligible for a pair of the table, and lists the failed rules of another."""
    pairs = eligible_pairs(tiny.units, tiny.facts, tiny.policy).pairs
    unit_ids = tiny.units["unit_id"].to_numpy()
    demand_ids = tiny.demands["demand_id"].to_numpy()
    first = pairs.iloc[0]
    ok_unit, ok_demand = unit_ids[int(first["unit"])], demand_ids[int(first["demand"])]
    code, text = run("why-not", TINY, ok_unit, ok_demand)
    assert code == 0, text
    assert f"Unit {ok_unit} / demand {ok_demand}: eligible" in text
    eligible = set(zip(pairs["unit"].tolist(), pairs["demand"].tolist(), strict=True))
    bad = next((0, d) for d in range(len(demand_ids)) if (0, d) not in eligible)
    code, text = run("why-not", TINY, unit_ids[bad[0]], demand_ids[bad[1]])
    assert code == 0, text
    assert f"Unit {unit_ids[bad[0]]} / demand {demand_ids[bad[1]]}: not allocatable" in text
    assert "\n  - " in text  # at least one failed rule, with its values


def test_ids_pasted_with_spaces_around_them_are_the_files_ids(tiny: RoundData) -> None:
    """Spaces around an id are ignored, as they are in the data's cells: " U1 " is unit U1."""
    pairs = eligible_pairs(tiny.units, tiny.facts, tiny.policy).pairs
    first = pairs.iloc[0]
    unit_id = str(tiny.units["unit_id"].iloc[int(first["unit"])])
    demand_id = str(tiny.demands["demand_id"].iloc[int(first["demand"])])
    code, text = run("why-not", TINY, f" {unit_id} ", f"{demand_id}\t")
    assert code == 0, text
    assert f"Unit {unit_id} / demand {demand_id}: eligible" in text
    code, text = run("explain-score", TINY, f"  {demand_id} ")
    assert code == 0, text
    assert run("explain-score", TINY, demand_id)[1] == text


def _files_scenario(folder: Path, units: pd.DataFrame, demands: pd.DataFrame, month: int) -> Path:
    """Write the tables and a scenario of that month's round reading them; the scenario's path."""
    from matching.io import write_demands, write_units

    write_units(units, folder / "units.csv")
    write_demands(demands, folder / "demands.csv")
    scenario = folder / "round.yaml"
    scenario.write_text(
        "id: files\nterritory: caen-la-mer\nyear: 2026\nseed: 1\npolicy: default-2026\n"
        f"data: {{units: units.csv, demands: demands.csv}}\nround: {{month: {month}}}\n",
        encoding="utf-8",
    )
    return scenario


def test_why_not_says_why_an_id_is_not_in_the_round(tmp_path: Path) -> None:
    """A unit released in March, a demand filed after the round: their dates, not "no such".

    The planner copies an id from the data file; "no such unit" sent them looking for a typo.
    An id in no file is still refused, with the data's size. Exit code 2 each time.
    """
    from matching.generate import generate_territory

    units, demands = generate_territory(n_units=300, n_demands=300, seed=1)
    march = units.index[pd.to_datetime(units["released_on"]).dt.month == 3][0]
    january = units.index[pd.to_datetime(units["released_on"]).dt.month == 1][0]
    demands.loc[5, "filed_on"] = pd.Timestamp("2026-02-14")
    scenario = _files_scenario(tmp_path, units, demands, month=1)
    in_round, late = units.at[january, "unit_id"], demands.at[5, "demand_id"]
    code, text = run("why-not", scenario, units.at[march, "unit_id"], demands.at[0, "demand_id"])
    assert code == 2 and "Traceback" not in text
    released = pd.Timestamp(units.at[march, "released_on"]).date().isoformat()
    assert (
        f"Invalid value for 'UNIT_ID': unit {units.at[march, 'unit_id']} is released on "
        f"{released}, outside this round (month 1 of 2026)"
    ) in text
    code, text = run("why-not", scenario, in_round, late)
    assert code == 2
    assert (
        f"Invalid value for 'DEMAND_ID': demand {late} was filed on 2026-02-14, after the round "
        "date 2026-01-31: it is not in this round"
    ) in text
    code, text = run("explain-score", scenario, late)
    assert code == 2 and "was filed on 2026-02-14" in text
    code, text = run("why-not", scenario, "U-TYPO", late)
    assert code == 2
    assert "Invalid value for 'UNIT_ID': no unit U-TYPO in the scenario's data (300 units)" in text
    code, text = run("why-not", scenario, in_round, demands.at[0, "demand_id"])
    assert code == 0, text


@pytest.mark.parametrize(("command", "target"), [("score", "demands"), ("eligibility", "units")])
def test_out_over_an_input_file_is_refused(tmp_path: Path, command: str, target: str) -> None:
    """``score --out data/demands.csv`` replaced the planner's demands with the scores."""
    data = tmp_path / "data"
    code, text = run("generate", "--units", "30", "--demands", "20", "--out", data)
    assert code == 0, text
    scenario = tmp_path / "files.yaml"
    scenario.write_text(
        TINY.read_text(encoding="utf-8").replace(
            "data:\n  generate: {units: 300, demands: 300}",
            "data: {units: data/units.csv, demands: data/demands.csv}",
        ),
        encoding="utf-8",
    )
    before = (data / f"{target}.csv").read_bytes()
    code, text = run(command, scenario, "--out", data / f"{target}.csv")
    assert code == 2, text
    assert f"would overwrite {data / f'{target}.csv'} (data.{target})" in text
    assert (data / f"{target}.csv").read_bytes() == before


def test_score_and_eligibility_files_do_not_depend_on_the_order_of_the_rows(
    tmp_path: Path,
) -> None:
    """The same units and demands listed in another order: the same `score` and `eligibility` files.

    They followed the rows of the data files (a database export without ORDER BY), and the
    units `eligibility --max-units N` printed were the first N rows, not the first N ids.
    """
    from matching.generate import generate_territory

    units, demands = generate_territory(n_units=300, n_demands=300, seed=1)
    outputs = []
    for name, order in (("sorted", None), ("shuffled", 5)):
        folder = tmp_path / name
        folder.mkdir()
        u, d = units, demands
        if order is not None:
            u = units.sample(frac=1, random_state=order).reset_index(drop=True)
            d = demands.sample(frac=1, random_state=order).reset_index(drop=True)
        scenario = _files_scenario(folder, u, d, month=2)
        code, text = run("score", scenario, "--out", folder / "scores.csv")
        assert code == 0, text
        code, listed = run("eligibility", scenario, "--max-units", "5", "--out", folder / "e.csv")
        assert code == 0, listed
        files = [(folder / f).read_bytes() for f in ("scores.csv", "e.csv")]
        outputs.append((files, listed.replace(str(folder), "FOLDER")))
    assert outputs[1] == outputs[0]
