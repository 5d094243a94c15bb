"""CALEOL shortlists (DOMAIN A6): ranked substitutes that keep every quota, and why fewer.

The central property is checked with the independent checker, not with the shortlist's own
arithmetic: each listed candidate is substituted into the allocation (everything else unchanged)
and `matching.checker.check` must find no violation; a household left out for a quota must, once
substituted, make the checker report that quota.

Dates: the round is 2026-03-31; `filed(m)` is exactly m months earlier, so a plain household
filed with `filed(m)` scores m points under the default grid (m + 20 beyond 30 months), a
priority category adds 40.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from tests.factories import ROUND_DATE, demand, demands_of, unit, units_of
from tests.solver.support import (
    ALL_TO_LANDLORD,
    FAST,
    POLICY,
    default_rule,
    filed,
    soft,
    solve_checked,
    with_rules,
    with_shares,
)
from tests.unit.test_allocation_policies import SCOPED

import matching.cli.commands  # noqa: F401  (registers the commands on the group)
from matching import checker
from matching.allocation import get_policy
from matching.cli import cli
from matching.exceptions import DataError
from matching.flux import YearSoFar
from matching.generate import generate_territory
from matching.io import read_table, write_demands, write_shortlists, write_units
from matching.policy.model import Policy
from matching.policy.quotas import Tally
from matching.result import Result
from matching.round import prepare_round
from matching.scenario import in_round, round_date
from matching.shortlist import (
    NO_OTHER_ELIGIBLE,
    POOL_EXHAUSTED,
    QUOTA_WOULD_BREAK,
    SHORTLIST_COLUMNS,
    SHORTLIST_REASONS,
    shortlists,
)

LANDLORD_FLOOR = with_rules(with_shares(POLICY), default_rule("priority_floor_bailleur"))
"""Every flux unit to the landlord, whose allocations must be at least 25 % priority."""


def substituted(result: Result, unit_id: str, demand_id: str) -> pd.DataFrame:
    """The result's allocation with ``unit_id`` given to ``demand_id`` instead."""
    allocation = result.allocation.copy()
    allocation.loc[allocation["unit_id"] == unit_id, "demand_id"] = demand_id
    return allocation


def candidates(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of ranks 2 and more that name a household."""
    return table[(table["rank"] >= 2) & (table["demand_id"] != "")]


def violations_after(
    result: Result,
    unit_id: str,
    demand_id: str,
    units: pd.DataFrame,
    demands: pd.DataFrame,
    policy: Policy,
    year: YearSoFar | None = None,
    on: dt.date = ROUND_DATE,
) -> list[checker.Violation]:
    """What the independent checker finds once the substitution is made."""
    return checker.check(
        units, demands, policy, substituted(result, unit_id, demand_id), year,
        orientation=result.orientation, on=on,
    )  # fmt: skip


def test_candidates_substituted_pass_the_checker_on_a_generated_round() -> None:
    """On a generated round under the default policy, every listed substitute is clean.

    Each candidate replaces the allocated household of its unit, the rest unchanged, and the
    checker (hard quotas, flux bands, pools, eligibility) finds nothing.
    """
    units, demands = generate_territory("caen-la-mer", 2026, seed=3, n_units=120, n_demands=150)
    on = round_date(2026, 1)
    units = units[in_round(units["released_on"], 2026, 1)].reset_index(drop=True)
    demands = demands[pd.to_datetime(demands["filed_on"]) <= pd.Timestamp(on)]
    demands = demands.reset_index(drop=True)
    result = solve_checked(units, demands, POLICY, FAST, on=on)
    table = shortlists(units, demands, POLICY, result, year_so_far=None, on=on)
    rows = candidates(table)
    assert len(rows) > 0
    for unit_id, demand_id in zip(rows["unit_id"], rows["demand_id"], strict=True):
        found = violations_after(result, unit_id, demand_id, units, demands, POLICY, on=on)
        assert found == [], checker.render_violations(found)


def test_table_shape_and_rank_one_is_the_allocation() -> None:
    """Columns in order; rank 1 is the allocated household; ranks 2.. follow score order.

    Scores: D1 70 + 20 = 90, D2 50 + 20 = 70, D3 40 + 20 = 60, D4 10. One unit, no quota: the
    unit goes to D1 and the shortlist lists D2 then D3 (size 3).
    """
    units = units_of(unit("U1"))
    demands = demands_of(
        demand("D4", filed_on=filed(10)), demand("D2", filed_on=filed(50)),
        demand("D1", filed_on=filed(70)), demand("D3", filed_on=filed(40)),
    )  # fmt: skip
    result = solve_checked(units, demands, ALL_TO_LANDLORD)
    table = shortlists(units, demands, ALL_TO_LANDLORD, result, year_so_far=None, on=ROUND_DATE)
    assert tuple(table.columns) == SHORTLIST_COLUMNS
    assert table["demand_id"].tolist() == ["D1", "D2", "D3"]
    assert table["rank"].tolist() == [1, 2, 3]
    assert table["score"].tolist() == [90, 70, 60]
    assert table["reason"].tolist() == ["", "", ""]
    wider = shortlists(
        units, demands, ALL_TO_LANDLORD, result, year_so_far=None, on=ROUND_DATE, size=5
    )
    # only 4 households: ranks 1-4, then one row saying the pool has no one else
    assert wider["demand_id"].tolist() == ["D1", "D2", "D3", "D4", ""]
    assert wider["reason"].iloc[-1] == POOL_EXHAUSTED and wider["rank"].iloc[-1] == 5


def test_substitutes_follow_the_allocation_policys_order_when_given() -> None:
    """Given the allocation policy's order, the substitutes follow it, not the cotation.

    A year played under ``seniority`` gave a refused unit to the next best score, so the policy
    compared was part cotation. Scores: D1 70 + 20 = 90 (allocated either way), D2 5 + 40 = 45
    (a priority category, filed 5 months ago), D3 30, D4 20. By score: D2 then D3; by filing
    date: D3 (30 months) then D4 (20 months). Each is still a valid substitute.
    """
    units = units_of(unit("U1"))
    demands = demands_of(
        demand("D1", filed_on=filed(70)), demand("D4", filed_on=filed(20)),
        demand("D2", filed_on=filed(5), priority_categories=("sans_logement",)),
        demand("D3", filed_on=filed(30)),
    )  # fmt: skip
    result = solve_checked(units, demands, ALL_TO_LANDLORD)
    by_score = shortlists(units, demands, ALL_TO_LANDLORD, result, year_so_far=None, on=ROUND_DATE)
    assert by_score["demand_id"].tolist() == ["D1", "D2", "D3"]
    seniority = get_policy("seniority")
    by_date = shortlists(
        units, demands, ALL_TO_LANDLORD, result, year_so_far=None, on=ROUND_DATE,
        ranking=seniority.rank,
    )  # fmt: skip
    assert by_date["demand_id"].tolist() == ["D1", "D3", "D4"]
    assert by_date["score"].tolist() == [90, 30, 20]
    for demand_id in ("D3", "D4"):
        assert violations_after(result, "U1", demand_id, units, demands, ALL_TO_LANDLORD) == []


def test_a_unit_with_one_eligible_household_gets_a_reason_row() -> None:
    """Only D1 fits the T1 unit (D2 and D3 are 3 persons, needing T3-T4): one reason row."""
    units = units_of(unit("U1", rooms=1, surface_m2=25.0))
    family = {"household_size": 3, "adults": 2, "children_under_14": 1}
    demands = demands_of(demand("D1"), demand("D2", **family), demand("D3", **family))
    result = solve_checked(units, demands, ALL_TO_LANDLORD)
    table = shortlists(units, demands, ALL_TO_LANDLORD, result, year_so_far=None, on=ROUND_DATE)
    assert table.drop(columns="score").to_dict("list") == {
        "unit_id": ["U1", "U1"], "rank": [1, 2], "demand_id": ["D1", ""],
        "reason": ["", NO_OTHER_ELIGIBLE],
    }  # fmt: skip
    assert table["score"].iloc[0] == 12 and pd.isna(table["score"].iloc[1])  # 12 months filed


def test_households_allocated_elsewhere_exhaust_the_pool() -> None:
    """Each unit's other household went to the other unit: pool_exhausted for both.

    Two units, two households fit for both: no one else is free.
    """
    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(demand("D1", filed_on=filed(20)), demand("D2", filed_on=filed(10)))
    result = solve_checked(units, demands, ALL_TO_LANDLORD)
    table = shortlists(units, demands, ALL_TO_LANDLORD, result, year_so_far=None, on=ROUND_DATE)
    reasons = table[table["reason"] != ""]
    assert reasons["unit_id"].tolist() == ["U1", "U2"]
    assert reasons["reason"].tolist() == [POOL_EXHAUSTED, POOL_EXHAUSTED]


def test_a_substitute_that_would_break_the_floor_is_left_out() -> None:
    """25 % of the landlord's allocations to priority: with 2 allocations one must be priority.

    Scores: N1 80, N2 70, N3 60 (non-priority), P 41 (priority). Units U1, U2. The optimum
    gives one unit to N1 and the other to P (ceil(2 / 4) = 1 priority needed). P's unit cannot
    go to N2 or N3 (0 priority of 2: short by 1): quota_would_break. N1's unit can go to N2
    or N3 (P still counts): candidates N2, N3.
    """
    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(
        demand("N1", filed_on=filed(60)), demand("N2", filed_on=filed(50)),
        demand("N3", filed_on=filed(40)),
        demand("P", filed_on=filed(1), priority_categories=("sans_logement",)),
    )  # fmt: skip
    policy = LANDLORD_FLOOR
    result = solve_checked(units, demands, policy)
    table = shortlists(units, demands, policy, result, year_so_far=None, on=ROUND_DATE)
    alloc = dict(zip(result.allocation["demand_id"], result.allocation["unit_id"], strict=True))
    p_unit, n_unit = alloc["P"], alloc["N1"]
    p_rows = table[table["unit_id"] == p_unit]
    assert p_rows["demand_id"].tolist() == ["P", ""]
    assert p_rows["reason"].tolist() == ["", QUOTA_WOULD_BREAK]
    assert table[table["unit_id"] == n_unit]["demand_id"].tolist() == ["N1", "N2", "N3"]
    # the checker confirms: N2 in P's place breaks the floor, N2 in N1's place does not
    broken = violations_after(result, p_unit, "N2", units, demands, policy)
    assert [v.rule_id for v in broken] == ["priority_floor_bailleur"]
    assert violations_after(result, n_unit, "N2", units, demands, policy) == []


def test_year_so_far_counts_in_the_substitution() -> None:
    """The year so far counts: substitutes valid with it, as the checker confirms.

    Earlier rounds: 3 landlord allocations, 1 priority. The round's one allocation may be
    non-priority (4 allocations need ceil(4 / 4) = 1 priority): both other non-priority
    households are valid substitutes.
    """
    units = units_of(unit("U1"))
    demands = demands_of(
        demand("N1", filed_on=filed(60)), demand("N2", filed_on=filed(50)),
        demand("N3", filed_on=filed(40)),
    )  # fmt: skip
    year = YearSoFar(tallies={"priority_floor_bailleur": {"": Tally(base=3, counted=1)}})
    result = solve_checked(units, demands, LANDLORD_FLOOR, year=year)
    table = shortlists(units, demands, LANDLORD_FLOOR, result, year_so_far=year, on=ROUND_DATE)
    assert table["demand_id"].tolist() == ["N1", "N2", "N3"]
    for demand_id in ("N2", "N3"):
        assert violations_after(result, "U1", demand_id, units, demands, LANDLORD_FLOOR, year) == []


def test_after_a_greedy_shortfall_substitutes_do_not_deepen_it() -> None:
    """A greedy round short of a floor: listed substitutes keep each shortfall as it is.

    50 % floor, 2 units, no priority household (scores 80, 70, 60): greedy fills U1 with N1 and
    U2 with N2, short by ceil(2 / 2) = 1. Each unit's substitute is N3, which leaves the
    shortfall at 1 (any non-priority household does); the checker's soft audit agrees.
    """
    half = with_rules(
        with_shares(POLICY),
        default_rule("priority_floor_bailleur").model_copy(update={"target": 0.5}),
    )
    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(
        demand("N1", filed_on=filed(60)), demand("N2", filed_on=filed(50)),
        demand("N3", filed_on=filed(40)),
    )  # fmt: skip
    result = get_policy("greedy_score").allocate(
        units, demands, half, FAST, year_so_far=None, on=ROUND_DATE
    )
    assert result.shortfalls == {"priority_floor_bailleur": 1}
    table = shortlists(units, demands, half, result, year_so_far=None, on=ROUND_DATE)
    rows = candidates(table)
    assert sorted(rows["demand_id"]) == ["N3", "N3"]
    before = checker.audit(
        units, demands, soft(half), result.allocation, orientation=result.orientation,
        on=ROUND_DATE,
    )  # fmt: skip
    for unit_id, demand_id in zip(rows["unit_id"], rows["demand_id"], strict=True):
        after = checker.audit(
            units, demands, soft(half), substituted(result, unit_id, demand_id),
            orientation=result.orientation, on=ROUND_DATE,
        )  # fmt: skip
        assert after.violations == ()
        assert [q.shortfall for q in after.quotas] == [q.shortfall for q in before.quotas]


def test_substitutes_under_scoped_rules_keep_every_group() -> None:
    """Under rules per landlord and per commune of residence, no substitute deepens any group.

    A substitute may move an allocation from one commune group to another: both groups are
    judged. After a greedy round with shortfalls, each listed substitute leaves every group's
    shortfall (the checker's soft audit) no larger.
    """
    units, demands = generate_territory("caen-la-mer", 2026, seed=1, n_units=120, n_demands=150)
    on = round_date(2026, 1)
    units = units[in_round(units["released_on"], 2026, 1)].reset_index(drop=True)
    demands = demands[pd.to_datetime(demands["filed_on"]) <= pd.Timestamp(on)]
    demands = demands.reset_index(drop=True)
    result = get_policy("greedy_score").allocate(
        units, demands, SCOPED, FAST, year_so_far=None, on=on
    )
    table = shortlists(units, demands, SCOPED, result, year_so_far=None, on=on)
    rows = candidates(table)
    assert len(rows) > 0 and (table["reason"] == QUOTA_WOULD_BREAK).any()

    def shortfalls(allocation: pd.DataFrame) -> dict[tuple[str, str], int]:
        audit = checker.audit(
            units, demands, soft(SCOPED), allocation, orientation=result.orientation, on=on
        )
        assert audit.violations == ()
        return {(q.rule_id, q.scope): q.shortfall for q in audit.quotas}

    before = shortfalls(result.allocation)
    for unit_id, demand_id in zip(rows["unit_id"], rows["demand_id"], strict=True):
        after = shortfalls(substituted(result, unit_id, demand_id))
        assert all(v <= before.get(k, 0) for k, v in after.items()), (unit_id, demand_id)


def test_reason_codes_are_documented() -> None:
    """Every reason code has a description, and the documentation names each one."""
    assert set(SHORTLIST_REASONS) == {QUOTA_WOULD_BREAK, POOL_EXHAUSTED, NO_OTHER_ELIGIBLE}
    doc = (Path(__file__).resolve().parents[2] / "docs" / "data-format.md").read_text()
    for code in SHORTLIST_REASONS:
        assert f"`{code}`" in doc


def test_a_result_from_another_round_is_refused() -> None:
    """An allocation naming a household that cannot take the unit is a DataError."""
    units = units_of(unit("U1"))
    demands = demands_of(demand("D1"))
    result = solve_checked(units, demands, ALL_TO_LANDLORD)
    result.allocation.loc[0, "demand_id"] = "D_unknown"
    with pytest.raises(DataError, match="D_unknown"):
        shortlists(units, demands, ALL_TO_LANDLORD, result, year_so_far=None, on=ROUND_DATE)


def test_write_shortlists_reads_back(tmp_path: Path) -> None:
    """shortlists.csv: the columns in order, a missing score as an empty cell."""
    table = pd.DataFrame(
        {"unit_id": ["U1", "U1"], "rank": [1, 2], "demand_id": ["D1", ""],
         "score": pd.array([12, None], dtype="Int64"), "reason": ["", NO_OTHER_ELIGIBLE]}
    )  # fmt: skip
    path = write_shortlists(tmp_path, table)
    assert path.read_text().splitlines() == [
        "unit_id,rank,demand_id,score,reason", "U1,1,D1,12,", "U1,2,,,no_other_eligible",
    ]  # fmt: skip
    assert read_table(path)["unit_id"].tolist() == ["U1", "U1"]


def test_solve_writes_shortlists(tmp_path: Path) -> None:
    """``matching solve`` writes shortlists.csv whose rank-1 rows are the allocations."""
    runner = CliRunner()
    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(*(demand(f"D{i}", filed_on=filed(10 * i)) for i in range(1, 6)))
    write_units(units, tmp_path / "u.csv")
    write_demands(demands, tmp_path / "d.csv")
    out = tmp_path / "out"
    done = runner.invoke(
        cli, ["solve", "--units", str(tmp_path / "u.csv"), "--demands", str(tmp_path / "d.csv"),
              "--on", ROUND_DATE.isoformat(), "--out", str(out)],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    table = pd.read_csv(out / "shortlists.csv", dtype=str, keep_default_na=False)
    allocations = pd.read_csv(out / "allocations.csv", dtype=str, keep_default_na=False)
    assert list(table.columns) == list(SHORTLIST_COLUMNS)
    first = table[table["rank"] == "1"]
    assert first[["unit_id", "demand_id"]].values.tolist() == (
        allocations[["unit_id", "demand_id"]].values.tolist()
    )
    assert (table.groupby("unit_id").size() == 3).all()


def test_an_allocation_through_a_reservataire_the_unit_cannot_take_is_refused() -> None:
    """Known unit and household, but no such triple in the round: a DataError naming both."""
    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(demand("D1"), demand("D2"))
    result = solve_checked(units, demands, ALL_TO_LANDLORD)
    assert len(result.allocation) == 2
    original = result.allocation.loc[1, "reservataire"]
    other = next(r for r in ALL_TO_LANDLORD.reservataire_ids() if r != original)
    result.allocation.loc[1, "reservataire"] = other
    unit_id, demand_id = result.allocation.loc[1, ["unit_id", "demand_id"]]
    with pytest.raises(DataError, match=f"unit {unit_id} cannot go to demand {demand_id}"):
        shortlists(units, demands, ALL_TO_LANDLORD, result, year_so_far=None, on=ROUND_DATE)
    result.allocation.loc[1, "reservataire"] = original
    assert len(shortlists(units, demands, ALL_TO_LANDLORD, result, year_so_far=None, on=ROUND_DATE))


def test_only_the_allocated_blocks_are_built_and_they_are_whole() -> None:
    """The shortlist builds exactly the round's triples of the allocated (unit, réservataire)s.

    Each allocated unit through its réservataire (a unit excluded from the flux: all of its
    triples), in the same order as the whole round's triples.
    """
    from matching.shortlist import _allocated_blocks, _positions
    from matching.solver.instance import build_triples

    units, demands = generate_territory("caen-la-mer", 2026, seed=5, n_units=160, n_demands=400)
    on = round_date(2026, 2)
    units = units[in_round(units["released_on"], 2026, 2)].reset_index(drop=True)
    units.loc[units.index % 7 == 0, "flux_excluded"] = "mutation"  # some units outside the flux
    result = solve_checked(units, demands, POLICY, FAST, on=on)
    inst = prepare_round(units, demands, POLICY, on=on).instance
    full = build_triples(inst)
    where = _positions(inst, result)
    assert (where.unit >= 0).all() and len(where.unit) > 10
    assert (where.res == -1).any() and (where.res >= 0).any()
    res_of = {int(u): int(r) for u, r in zip(where.unit, where.res, strict=True)}
    wanted = np.array(
        [res_of.get(int(u), -9) == int(r) for u, r in zip(full.unit, full.res, strict=True)]
    )
    kept = build_triples(_allocated_blocks(inst, where))
    assert len(kept) < len(full)
    for name in ("unit", "demand", "res", "score"):
        assert np.array_equal(getattr(kept, name), getattr(full, name)[wanted]), name


def _soft_round() -> tuple[pd.DataFrame, pd.DataFrame, Result]:
    """Two landlord units, two ordinary households and a priority one, solved in soft mode."""
    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(
        demand("N1", filed_on=filed(60)), demand("N2", filed_on=filed(50)),
        demand("P", filed_on=filed(1), priority_categories=("sans_logement",)),
    )  # fmt: skip
    return units, demands, solve_checked(units, demands, soft(LANDLORD_FLOOR))


def test_a_soft_copy_of_the_policy_reuses_the_results_preparation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An equal policy object (a soft copy made by the caller) does not prepare the round again."""
    import matching.shortlist as module

    units, demands, result = _soft_round()
    assert result.prepared is not None and len(result.allocation) == 2
    expected = shortlists(
        units, demands, soft(LANDLORD_FLOOR), result, year_so_far=None, on=ROUND_DATE
    )

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("prepared again")

    monkeypatch.setattr(module, "prepare_round", refuse)
    copy = soft(LANDLORD_FLOOR)
    assert copy is not result.prepared.instance.policy
    table = shortlists(units, demands, copy, result, year_so_far=None, on=ROUND_DATE)
    pd.testing.assert_frame_equal(table, expected)
    assert set(table["demand_id"]) >= {"N1", "P"}


def test_a_soft_fallback_is_shortlisted_with_the_hard_policy_without_preparing_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A round solved in soft mode is shortlisted with the hard policy from its own preparation.

    That is what the simulation does when a round's hard quotas conflict (the allocation
    policy falls back to soft mode and the shortlist keeps the hard policy): the mode changes
    neither the preparation nor the shortlist, so the list is the one a fresh preparation with
    the hard policy gives. A policy that differs otherwise is prepared again.
    """
    import matching.shortlist as module

    units, demands, result = _soft_round()
    assert result.prepared is not None
    fresh = prepare_round(units, demands, LANDLORD_FLOOR, on=ROUND_DATE)
    expected = shortlists(
        units, demands, LANDLORD_FLOOR, result, year_so_far=None, on=ROUND_DATE, prepared=fresh
    )
    calls: list[Policy] = []
    original = module.prepare_round

    def counted(units: pd.DataFrame, demands: pd.DataFrame, policy: Policy, **kw: Any) -> Any:
        calls.append(policy)
        return original(units, demands, policy, **kw)

    monkeypatch.setattr(module, "prepare_round", counted)
    table = shortlists(units, demands, LANDLORD_FLOOR, result, year_so_far=None, on=ROUND_DATE)
    pd.testing.assert_frame_equal(table, expected)
    assert calls == []
    other = with_rules(LANDLORD_FLOOR)  # no quota at all: another round
    shortlists(units, demands, other, result, year_so_far=None, on=ROUND_DATE)
    assert calls == [other]


def test_shortlists_take_the_policy_date_and_year_in_the_forms_solve_takes() -> None:
    """A policy name, an ISO date and a mapping give the shortlists of the typed arguments.

    A service shortlisting the round it solved by the policy's name got an AttributeError
    ('str' object has no attribute 'quotas').
    """
    from matching.policy import load_policy
    from matching.round import solve

    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(*(
        demand(f"D{i}", filed_on=filed(10 * i), dalo=True, annual_income_eur=9000.0)
        for i in range(1, 6)
    ))  # fmt: skip
    year = {"tallies": {"priority_floor_bailleur": {"": {"base": 3, "counted": 1}}}}
    result = solve(units, demands, "default-2026", on=ROUND_DATE, year_so_far=year)
    typed = shortlists(units, demands, load_policy("default-2026"), result,
                       year_so_far=YearSoFar.model_validate(year), on=ROUND_DATE)  # fmt: skip
    plain = shortlists(units, demands, "default-2026", result,
                       year_so_far=year, on=ROUND_DATE.isoformat())  # fmt: skip
    pd.testing.assert_frame_equal(plain, typed)
    assert typed["rank"].max() >= 2
