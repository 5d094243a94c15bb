"""The policy's tie-break among households of equal standing, and results free of row order.

A round has many optima when households of one score compete for a unit; which one the search
met first depended on the row order of the tables, and the policy's ``tie_break`` (``-score,
filed_on, income_per_cu, demand_id``) was not applied: a household filed in 2021 was housed
over one of the same score filed in 2019. Every result here is audited by the checker
(`verify`), and the tie-break is judged by the checker too: no swap it accepts with the same
stages and quota counts may put first a household the tie-break prefers.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from matching import checker
from matching.generate import generate_territory
from matching.io import validate_demands, validate_units
from matching.params import SolveParams
from matching.round import solve, tie_rank
from tests.factories import demand, demands_of, unit, units_of
from tests.solver.support import FAST, POLICY, PRUNED, solve_checked, verify

ROUND = SolveParams(num_workers=1, time_limit_s=30.0, seed=1)
PRIORITY_Q1 = {"dalo": True, "annual_income_eur": 9_000.0}
"""A DALO household of the first quartile: every quota of a one-unit round can take it."""


@pytest.mark.parametrize("params", [FAST, PRUNED], ids=["cp-sat", "lp-path"])
@pytest.mark.parametrize("reverse", [False, True], ids=["given-order", "reversed"])
def test_among_equal_households_the_tie_break_decides(params: SolveParams, reverse: bool) -> None:
    """Identical households but for the filing day (same month: same score): the first filed."""
    filed = {"D_late": dt.date(2024, 1, 20), "D_first": dt.date(2024, 1, 5),
             "D_mid": dt.date(2024, 1, 12)}  # fmt: skip
    units = units_of(unit("U1"))
    demands = demands_of(*(demand(k, filed_on=v, **PRIORITY_Q1) for k, v in filed.items()))
    if reverse:
        demands = demands.iloc[::-1].reset_index(drop=True)
    result = solve_checked(units, demands, POLICY, params)
    assert result.allocation["demand_id"].tolist() == ["D_first"]


def test_then_the_lower_income_per_consumption_unit() -> None:
    """Same score and filing date: the policy's next key, the lower income per CU, decides."""
    units = units_of(unit("U1"))
    demands = demands_of(
        demand("D_richer", **{**PRIORITY_Q1, "annual_income_eur": 10_000.0}),
        demand("D_poorer", **{**PRIORITY_Q1, "annual_income_eur": 9_000.0}),
    )
    result = solve_checked(units, demands, POLICY, FAST)
    assert result.allocation["demand_id"].tolist() == ["D_poorer"]


@pytest.mark.parametrize("params", [FAST, PRUNED], ids=["cp-sat", "lp-path"])
@pytest.mark.parametrize("late_id", ["A1", "B1"])
def test_the_first_filed_where_no_quota_tells_them_apart(params: SolveParams, late_id: str) -> None:
    """A priority household and another of the same score on the État's staff share.

    No quota rule reads either on that unit (no priority floor for ``etat_agents``; both are
    outside the first quartile, as the QPV mixity counts), so the tie-break decides: the one
    filed 32 months ago, not the priority household filed 12 months ago (40 points for its
    category against 20 for the long delay: 52 each). The priority one was housed, in both id
    orders: the priority floors of the other réservataires told them apart.
    """
    early_id = "B1" if late_id == "A1" else "A1"
    units = units_of(unit("U1", qpv=True))
    demands = demands_of(
        demand(late_id, filed_on=dt.date(2025, 3, 1), priority_categories=("violences",),
               pools=("etat_agents",)),
        demand(early_id, filed_on=dt.date(2023, 7, 1), pools=("etat_agents",)),
    )  # fmt: skip
    result = solve_checked(units, demands, POLICY, params)
    assert result.allocation["score"].tolist() == [52]
    assert result.allocation["demand_id"].tolist() == [early_id]


@pytest.fixture(scope="module")
def january() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The January units (93) of a generated 1,200-unit year, against 1,500 demands."""
    units, demands = generate_territory("caen-la-mer", 2026, seed=1, n_units=1200, n_demands=1500)
    return units[units["released_on"].dt.month == 1].reset_index(drop=True), demands


def _files(result: object) -> tuple[str, str, str, str]:
    return (
        result.to_json(),  # type: ignore[attr-defined]
        result.allocation.to_csv(index=False),  # type: ignore[attr-defined]
        result.orientation.to_csv(index=False),  # type: ignore[attr-defined]
        result.unallocated_units.to_csv(index=False),  # type: ignore[attr-defined]
    )


def test_the_rows_order_does_not_change_the_result(
    january: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """The same round with its units shuffled and its demands reversed: the same result."""
    units, demands = january
    given = solve(units, demands, POLICY, ROUND)
    verify(given, units, demands, POLICY, on=given.round_date)
    shuffled = solve(units.sample(frac=1.0, random_state=3), demands.iloc[::-1], POLICY, ROUND)
    assert given.status == shuffled.status == "OPTIMAL"
    assert _files(shuffled) == _files(given)


def test_no_housed_household_gives_way_to_an_equal_one_the_tie_break_prefers(
    january: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """No swap the checker accepts at equal stages and quota counts brings one put first.

    Judged by the checker alone, over the eligible, unhoused households of the same score: each
    one-for-one swap it accepts must bring a household the tie-break puts after the housed one.
    """
    units, demands = january
    result = solve(units, demands, POLICY, ROUND)
    on = result.round_date
    verify(result, units, demands, POLICY, on=on)
    u_table, d_table = validate_units(units, "units"), validate_demands(demands, "demands")
    audit = checker.audit(u_table, d_table, POLICY, result.allocation,
                          orientation=result.orientation, on=on)  # fmt: skip
    tallies = [(q.rule_id, q.scope, q.round) for q in audit.quotas]
    inst = result.prepared.instance  # the round's facts and its eligible pairs, no solver
    rank = dict(zip(inst.demands["demand_id"], tie_rank(
        inst.demands, inst.scores, POLICY.objective.tie_break), strict=True))  # fmt: skip
    score = dict(zip(inst.demands["demand_id"], inst.scores, strict=True))
    pairs = result.prepared.pairs.pairs
    unit_ids = inst.units["unit_id"].to_numpy()[pairs["unit"].to_numpy()]
    demand_ids = inst.demands["demand_id"].to_numpy()[pairs["demand"].to_numpy()]
    housed = set(result.allocation["demand_id"])
    judged = 0
    for row in result.allocation.itertuples(index=False):
        own = row.demand_id
        rivals = [
            d for d in demand_ids[unit_ids == row.unit_id]
            if d not in housed and score[d] == score[own] and rank[d] < rank[own]
        ]  # fmt: skip
        for rival in rivals:
            swapped = result.allocation.copy()
            swapped.loc[swapped["demand_id"] == own, "demand_id"] = rival
            other = checker.audit(u_table, d_table, POLICY, swapped,
                                  orientation=result.orientation, on=on)  # fmt: skip
            judged += 1
            same = [(q.rule_id, q.scope, q.round) for q in other.quotas] == tallies
            assert not (other.ok and same and other.stages == audit.stages), (
                f"{rival} could replace {own} on {row.unit_id} and comes first"
            )
    assert judged > 0  # the round has such rivals: households the quotas count otherwise
