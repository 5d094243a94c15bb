"""``matching explain-demand`` and `matching.explain.explain_demand`: one household's outcome.

The explanation is derived from the tables with the eligibility predicates, the round's
``unallocated_demands.csv`` from the solver's arrays: the two must agree on every household.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.factories import ROUND_DATE, demand, demands_of, unit, units_of

import matching.cli.commands  # noqa: F401  (registers the commands on the group)
from matching.cli import cli
from matching.explain import (
    DemandExplanation,
    UnitChance,
    explain_demand,
    render_demand_explanation,
)
from matching.facts import derive_facts
from matching.io import read_demands, read_table, read_units
from matching.policy import load_policy
from matching.round import solve

TINY = Path(__file__).resolve().parents[2] / "scenarios" / "tiny.yaml"


def run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("explain") / "out"
    code, text = run("solve", TINY, "--out", out)
    assert code == 0, text
    return out


def test_every_household_is_explained_as_the_round_says(folder: Path) -> None:
    """Each of the 300 households is explained as the folder's tables say.

    The unit of allocations.csv, or the reason and the eligible-unit count of
    unallocated_demands.csv, recomputed from the tables.
    """
    policy = load_policy(folder / "policy.yaml")
    units = read_units(folder / "units.csv")
    on = ROUND_DATE.replace(month=1)
    demands = derive_facts(read_demands(folder / "demands.csv", ignore_derived=True), policy, on)
    allocation = read_table(folder / "allocations.csv")
    orientation = read_table(folder / "orientations.csv")
    left = read_table(folder / "unallocated_demands.csv").set_index("demand_id")
    housed = dict(zip(allocation["demand_id"], allocation["unit_id"], strict=True))
    for demand_id in demands["demand_id"]:
        got = explain_demand(units, demands, policy, allocation, orientation, demand_id)
        if demand_id in housed:
            assert (got.unit_id, got.reason) == (housed[demand_id], ""), demand_id
            assert any(c.taken_by == demand_id for c in got.chances), demand_id
        else:
            assert got.unit_id == "", demand_id
            assert got.reason == left.at[demand_id, "reason"], demand_id
            assert got.eligible == int(left.at[demand_id, "eligible_units"]), demand_id
            assert all(c.taken_by != demand_id for c in got.chances), demand_id
        assert got.eligible >= len(got.chances) + sum(got.oriented_elsewhere.values())


def test_the_evidence_of_a_two_unit_round() -> None:
    """Who took the units, which pool holds the other units, which rule blocks: as set up."""
    units = units_of(unit("F"), unit("G"))
    demands = demands_of(
        demand("A", pools=("bailleur",), dalo=True, annual_income_eur=9000.0),
        demand("B", pools=("bailleur",), filed_on=ROUND_DATE.replace(year=2024)),
        demand("C", pools=("bailleur",)),
        demand("P", pools=("action_logement",)),
        demand("N", pools=()),
        demand("R", annual_income_eur=90000.0),
    )
    result = solve(units, demands, "default-2026", on=ROUND_DATE)
    policy = result.prepared.instance.policy
    facts = result.prepared.instance.demands

    def explain(demand_id: str) -> DemandExplanation:
        return explain_demand(
            units, facts, policy, result.allocation, result.orientation, demand_id
        )

    taken = dict(zip(result.allocation["unit_id"], result.allocation["demand_id"], strict=True))
    c = explain("C")
    assert c.reason == "units_went_to_others" and c.eligible == 2
    assert [(x.unit_id, x.reservataire, x.taken_by) for x in c.chances] == [
        ("F", "bailleur", taken["F"]),
        ("G", "bailleur", taken["G"]),
    ]
    p = explain("P")
    assert (p.reason, p.chances, p.oriented_elsewhere) == (
        "no_unit_oriented_to_its_pools", (), {"bailleur": 2},
    )  # fmt: skip
    n = explain("N")
    assert (n.reason, n.eligible, n.pool_blocked) == ("no_unit_in_its_pools", 0, 2)
    r = explain("R")
    assert (r.reason, r.failing["income_ceiling"], r.eligible) == ("no_eligible_unit", 2, 0)
    a = explain("A")
    assert (a.reservataire, a.reason, taken[a.unit_id]) == ("bailleur", "", "A")
    text = render_demand_explanation(c)
    assert "Demand C (score " in text and "not housed (units_went_to_others:" in text
    assert f"    F (bailleur): went to {taken['F']} (score " in text
    assert isinstance(c.chances[0], UnitChance)


def test_the_command_on_a_solve_folder(folder: Path, tmp_path: Path) -> None:
    """Housed, not housed with the units taken by others; unknown id or folder: exit 2."""
    allocation = read_table(folder / "allocations.csv")
    left = read_table(folder / "unallocated_demands.csv")
    housed = allocation.iloc[0]
    code, text = run("explain-demand", folder, housed["demand_id"])
    assert code == 0, text
    said = f"Demand {housed['demand_id']} (score {housed['score']}): housed in {housed['unit_id']}"
    assert said in text
    other = left[left["reason"] == "units_went_to_others"].iloc[0]
    code, text = run("explain-demand", folder, other["demand_id"], "--max-units", 1)
    assert code == 0, text
    assert "not housed (units_went_to_others: each unit it could take went to" in text
    assert f"eligible for {other['eligible_units']} of the round's 21 units" in text
    assert "): went to " in text or "): stayed empty" in text
    code, text = run("explain-demand", folder, "D-NOT-THERE")
    assert code == 2 and "no demand D-NOT-THERE in" in text and "Traceback" not in text
    code, text = run("explain-demand", tmp_path, "D1")
    assert code == 2 and "missing: not a folder written by matching solve" in text


def test_a_household_whose_only_pool_the_law_bars_is_in_no_pool() -> None:
    """A non-priority household listing only `etat` is in no pool, as unallocated_demands says.

    The État takes priority households only, whatever an explicit pools list says: the
    solver, the checker and unallocated_demands.csv treat it as in no pool.
    """
    units = units_of(unit("F"), unit("G"))
    demands = demands_of(
        demand("A", pools=("bailleur",), dalo=True, annual_income_eur=9000.0),
        demand("E", pools=("etat",)),
        demand("M", pools=("etat", "bailleur")),
    )
    result = solve(units, demands, "default-2026", on=ROUND_DATE)
    policy = result.prepared.instance.policy
    facts = result.prepared.instance.demands
    left = result.unallocated_demands.set_index("demand_id")
    e = explain_demand(units, facts, policy, result.allocation, result.orientation, "E")
    assert left.at["E", "reason"] == "no_unit_in_its_pools"
    assert (e.reason, e.eligible, e.pool_blocked, e.chances) == ("no_unit_in_its_pools", 0, 2, ())
    for demand_id in left.index:
        got = explain_demand(units, facts, policy, result.allocation, result.orientation, demand_id)
        assert got.reason == left.at[demand_id, "reason"], demand_id
        assert got.eligible == int(left.at[demand_id, "eligible_units"]), demand_id


def test_a_hand_edited_allocation_read_two_ways_is_refused(folder: Path, tmp_path: Path) -> None:
    """A unit or household allocated twice, an unknown id, a réservataire typo: exit 2, named.

    Before, a unit given to two households was said to house the first and to have gone to the
    second in the same explanation; an unknown réservataire was counted as one the pools miss.
    """
    import shutil

    allocation = read_table(folder / "allocations.csv")
    first = allocation.iloc[0]
    cases = {
        "unit_twice": f"{first['unit_id']},D2026-0000001,{first['reservataire']},1\n",
        "unknown_unit": f"U-TYPO,D2026-0000001,{first['reservataire']},1\n",
    }
    for name, extra in cases.items():
        copy = tmp_path / name
        shutil.copytree(folder, copy)
        with (copy / "allocations.csv").open("a", encoding="utf-8") as f:
            f.write(extra)
        code, text = run("explain-demand", copy, first["demand_id"])
        assert code == 2 and "Traceback" not in text, text
        assert f"{copy / 'allocations.csv'}: row {len(allocation) + 1}, field 'unit_id'" in text
    copy = tmp_path / "typo"
    shutil.copytree(folder, copy)
    oriented = (copy / "orientations.csv").read_text(encoding="utf-8").splitlines()
    head, row = oriented[0], oriented[1].rsplit(",", 1)[0] + ",nobody"
    (copy / "orientations.csv").write_text("\n".join([head, row, *oriented[2:]]) + "\n")
    code, text = run("explain-demand", copy, first["demand_id"])
    assert code == 2 and "row 1, field 'reservataire', value 'nobody'" in text, text


def test_a_lower_score_in_a_search_stopped_unproven_is_not_blamed_on_the_rules() -> None:
    """A unit that went to a lower score in a round stopped by --gap: the search, not a quota."""
    chance = UnitChance(unit_id="U1", reservataire="bailleur", taken_by="D2", taken_score=21)
    e = DemandExplanation(
        demand_id="D1", score=59, unit_id="", reservataire="", reason="not_proven_in_time",
        units=1, failing={}, pool_blocked=0, eligible=1, oriented_elsewhere={}, chances=(chance,),
    )  # fmt: skip
    text = render_demand_explanation(e)
    assert "U1 (bailleur): went to D2 (score 21): a lower score, in a search stopped" in text
    assert "quota" not in text
    proven = render_demand_explanation(
        DemandExplanation(**{**e.__dict__, "reason": "units_went_to_others"})
    )
    assert "a lower score, placed by a quota, a band or the stages" in proven


def test_a_round_stopped_by_its_gap_is_read_from_result_json(tmp_path: Path) -> None:
    """timings.json (the one file that varies between runs) left out of a kept folder.

    A FEASIBLE round stopped by --gap: its households are not_proven_in_time in
    unallocated_demands.csv, and explain-demand says so without timings.json too (it said
    units_went_to_others).
    """
    out = tmp_path / "gap"
    code, text = run("solve", TINY, "--gap", 0.9, "--no-prune", "--workers", 1, "--out", out)
    assert code == 0, text
    left = read_table(out / "unallocated_demands.csv")
    stopped = left[left["reason"] == "not_proven_in_time"]
    assert len(stopped) > 0, "the round was proven: no gap left to stop at"
    (out / "timings.json").unlink()
    code, text = run("explain-demand", out, stopped["demand_id"].iloc[0])
    assert code == 0, text
    assert "not housed (not_proven_in_time:" in text


def test_library_callers_get_a_typed_error_for_plain_demands_and_may_name_the_policy() -> None:
    """explain_demand takes a policy name as solve does, and plain demands get a clear TypeError.

    A service explaining a household of the round it has just solved passed the demands it gave
    `solve` (a bare KeyError 'priority' from deep in the eligibility rules) and the policy's
    name (an AttributeError on 'str').
    """
    units = units_of(unit("F"), unit("G"))
    demands = demands_of(demand("A", dalo=True, annual_income_eur=9000.0), demand("B"))
    result = solve(units, demands, "default-2026", on=ROUND_DATE)
    facts = result.prepared.instance.demands
    args = (result.allocation, result.orientation, "B")
    by_name = explain_demand(units, facts, "default-2026", *args)
    assert by_name == explain_demand(units, facts, result.prepared.instance.policy, *args)
    with pytest.raises(TypeError, match=r"demands_with_facts: no derived column .*priority"):
        explain_demand(units, demands, "default-2026", *args)
