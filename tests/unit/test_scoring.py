"""Cotation (DOMAIN A7): each criterion of the default grid, per/cap arithmetic, explanations."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from tests.factories import ROUND_DATE, demand, demands_of

from matching.exceptions import DataError
from matching.facts import derive_facts
from matching.policy import load_policy
from matching.policy.model import CotationGrid, Policy
from matching.policy.scoring import (
    ScoreResult,
    criterion_points,
    explain_score,
    render_score_explanation,
    score,
)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy("default-2026")


def scored(policy: Policy, *demands: object, on: dt.date = ROUND_DATE) -> ScoreResult:
    frame = derive_facts(demands_of(*demands), policy, on)  # type: ignore[arg-type]
    return score(frame, policy.cotation)


def breakdown_of(policy: Policy, **overrides: object) -> dict[str, int]:
    result = scored(policy, demand("D1", **overrides))
    return {k: int(v) for k, v in result.breakdown.iloc[0].items()}


def test_default_demand_gets_only_seniority(policy: Policy) -> None:
    """The factory demand (filed 12 months before the round) scores 12, all from seniority."""
    points = breakdown_of(policy)
    # Filed 2025-03-31, round 2026-03-31: 12 whole months x 1 point.
    assert points["seniority"] == 12
    assert sum(points.values()) == 12


def test_seniority_counts_whole_months(policy: Policy) -> None:
    """Seniority is one point per whole month, a month being complete on the same day number."""
    # 2025-04-01 -> 2026-03-31: 11 months and 30 days -> 11 whole months.
    assert breakdown_of(policy, filed_on=dt.date(2025, 4, 1))["seniority"] == 11
    # 2024-03-31 -> 2026-03-31: exactly 24 months.
    assert breakdown_of(policy, filed_on=dt.date(2024, 3, 31))["seniority"] == 24
    # Filed on the round's date: 0 months.
    assert breakdown_of(policy, filed_on=ROUND_DATE)["seniority"] == 0


def test_month_end_round_completes_the_month_of_a_later_day_number(policy: Policy) -> None:
    """A month-end round completes the month of a household filed on a later day number.

    Filed 31 December, 2 months on 28 February, as for one filed the 28th (rounds fall on the
    last day of their month).
    """
    feb = dt.date(2026, 2, 28)
    on_31st, on_28th = (
        int(scored(policy, demand("D1", filed_on=d), on=feb).breakdown["seniority"].iloc[0])
        for d in (dt.date(2025, 12, 31), dt.date(2025, 12, 28))
    )
    assert (on_31st, on_28th) == (2, 2)
    # 2023-10-31 -> 2026-04-30: 30 months, not 29; 2023-09-30 -> 2026-02-28: 29 months.
    apr, months = dt.date(2026, 4, 30), {}
    for filed, on in ((dt.date(2023, 10, 31), apr), (dt.date(2023, 9, 30), feb)):
        months[filed] = int(
            scored(policy, demand("D1", filed_on=filed), on=on).breakdown["seniority"].iloc[0]
        )
    assert months == {dt.date(2023, 10, 31): 30, dt.date(2023, 9, 30): 29}
    # The +20 beyond 30 months: filed 2023-07-31, on 2026-02-28 it is 31 months.
    beyond = scored(policy, demand("D1", filed_on=dt.date(2023, 7, 31)), on=feb).breakdown
    assert (int(beyond["seniority"].iloc[0]), int(beyond["abnormally_long_delay"].iloc[0])) == (
        31,
        20,
    )
    # Not at a month's end, the same day number is still needed: 31 Jan -> 30 Mar is 1 month.
    mid = scored(policy, demand("D1", filed_on=dt.date(2026, 1, 31)), on=dt.date(2026, 3, 30))
    assert int(mid.breakdown["seniority"].iloc[0]) == 1


def test_abnormally_long_delay_starts_beyond_30_months(policy: Policy) -> None:
    """+20 only strictly beyond 30 months of seniority."""
    # 2023-09-30 -> 2026-03-31: 30 months exactly: not beyond.
    at = breakdown_of(policy, filed_on=dt.date(2023, 9, 30))
    assert (at["seniority"], at["abnormally_long_delay"]) == (30, 0)
    # 2023-08-31 -> 2026-03-31: 31 months: +20, total 31 + 20 = 51.
    beyond = breakdown_of(policy, filed_on=dt.date(2023, 8, 31))
    assert (beyond["seniority"], beyond["abnormally_long_delay"]) == (31, 20)
    assert sum(beyond.values()) == 51


def test_reference_date_is_a_parameter(policy: Policy) -> None:
    """The same demand scores more at a later round date (never the machine's clock)."""
    d = demand("D1")  # filed 2025-03-31
    early = scored(policy, d, on=dt.date(2026, 3, 31)).total.iloc[0]  # 12 months
    late = scored(policy, d, on=dt.date(2026, 9, 29)).total.iloc[0]  # 17 months (day 29 < 31)
    last = scored(policy, d, on=dt.date(2026, 9, 30)).total.iloc[0]  # 18: September's last day
    assert (early, late, last) == (12, 17, 18)


def test_dalo_gives_50(policy: Policy) -> None:
    """Recognised DALO: +50."""
    assert breakdown_of(policy, dalo=True)["dalo"] == 50
    assert breakdown_of(policy, dalo=False)["dalo"] == 0


def test_priority_category_is_not_cumulative(policy: Policy) -> None:
    """One L441-1 category gives 40, two categories still give 40."""
    assert breakdown_of(policy, priority_categories=())["priority_category"] == 0
    assert breakdown_of(policy, priority_categories=("violences",))["priority_category"] == 40
    two = ("violences", "sans_logement")
    assert breakdown_of(policy, priority_categories=two)["priority_category"] == 40


def test_eviction_single_parent_overcrowding_disability(policy: Policy) -> None:
    """Fixed points: eviction 20, single parent 5, over-occupation 15, disabled member 15."""
    assert breakdown_of(policy, eviction_threat=True)["eviction_threat"] == 20
    parent = dict(household_size=2, adults=1, children_under_14=1, dependants=1)
    assert breakdown_of(policy, single_parent=True, **parent)["single_parent"] == 5
    assert breakdown_of(policy, overcrowded=True)["overcrowded"] == 15
    assert breakdown_of(policy, disabled_member=True)["disability"] == 15


def test_high_rent_effort_strictly_above_30_percent(policy: Policy) -> None:
    """Current rent effort above 0.30 gives 10; exactly 0.30 gives nothing."""
    assert breakdown_of(policy, current_rent_effort=0.30)["high_rent_effort"] == 0
    assert breakdown_of(policy, current_rent_effort=0.3001)["high_rent_effort"] == 10


def test_mutation_for_unsuitable_size_needs_both_conditions(policy: Policy) -> None:
    """+10 only for a current social tenant whose unit is unsuitable in size."""
    both = breakdown_of(policy, current_social_tenant=True, unsuitable_size=True)
    assert both["mutation_unsuitable_size"] == 10
    assert breakdown_of(policy, current_social_tenant=True)["mutation_unsuitable_size"] == 0
    assert breakdown_of(policy, unsuitable_size=True)["mutation_unsuitable_size"] == 0


def test_refusals_give_zero_points_by_default(policy: Policy) -> None:
    """The default grid gives 0 points per refusal (a PPGD may set a penalty)."""
    assert breakdown_of(policy, refusals=3)["refusals"] == 0


def test_everything_adds_up(policy: Policy) -> None:
    """A household meeting many criteria sums them all."""
    points = breakdown_of(
        policy,
        filed_on=dt.date(2022, 3, 31),  # 48 months -> 48 + 20
        dalo=True,  # 50
        priority_categories=("sans_logement",),  # 40
        eviction_threat=True,  # 20
        overcrowded=True,  # 15
        disabled_member=True,  # 15
    )
    # 48 + 20 + 50 + 40 + 20 + 15 + 15 = 208
    assert sum(points.values()) == 208


def grid(criteria: list[dict[str, object]]) -> CotationGrid:
    return CotationGrid.model_validate({"id": "g", "label": "test grid", "criteria": criteria})


def test_per_points_are_floored_and_capped_in_absolute_value(policy: Policy) -> None:
    """Points per unit use the floor of the quantity, and the cap bounds the absolute value."""
    frame = derive_facts(
        demands_of(
            demand("D1", refusals=1),
            demand("D2", refusals=3),
            # 1 adult + 1 adult + 1 child: CU = 1 + 0.5 + 0.3 = 1.8, floored to 1.
            demand("D3", household_size=3, adults=2, children_under_14=1, dependants=1),
        ),
        policy,
        ROUND_DATE,
    )
    g = grid(
        [
            {"id": "refusal_penalty", "label": "-10 per refusal", "per": "refusals",
             "points": -10, "cap": 25},
            {"id": "per_cu", "label": "3 per CU", "per": "consumption_units", "points": 3},
            {"id": "long_wait", "label": "30 at 12 months", "points": 30, "cap": 20,
             "when": [{"field": "seniority_months", "op": "ge", "value": 12}]},
        ]
    )  # fmt: skip
    result = score(frame, g)
    # refusals: 1 -> -10; 3 -> -30 capped to -25; 0 -> 0.
    assert result.breakdown["refusal_penalty"].tolist() == [-10, -25, 0]
    # CU 1, 1, 1.8 -> floors 1, 1, 1 -> 3 points each.
    assert result.breakdown["per_cu"].tolist() == [3, 3, 3]
    # 12 months >= 12: 30 capped to 20.
    assert result.breakdown["long_wait"].tolist() == [20, 20, 20]
    assert result.total.tolist() == [13, -2, 23]


def test_a_score_beyond_the_bound_is_refused_naming_the_demand(policy: Policy) -> None:
    """Points beyond ±10**9 are refused, naming the demand and criterion, never wrapped.

    10,000 points per euro of 1e15 EUR of monthly resources scored -8.4e18 (the int64 product
    wrapped around); two criteria each within the bound can sum beyond it. At the bound itself
    the score is exact.
    """
    frame = derive_facts(
        demands_of(
            demand("D1", monthly_resources_eur=1e15),
            demand("D2", monthly_resources_eur=100_000.0),
            demand("D3", monthly_resources_eur=1_500.0),
        ),
        policy,
        ROUND_DATE,
    )
    per_euro = {"id": "per_euro", "label": "per euro", "per": "monthly_resources_eur"}
    with pytest.raises(DataError) as caught:
        score(frame, grid([{**per_euro, "points": 10_000}]))
    text = str(caught.value)
    assert "demand D1: criterion 'per_euro' gives 1e+19 points" in text
    assert "demand D2" not in text and "-8" not in text
    both = [{**per_euro, "points": 6_000}, {**per_euro, "id": "again", "points": 6_000}]
    with pytest.raises(DataError, match=r"demand D2: the grid gives 1\.2e\+09 points"):
        score(frame.iloc[1:], grid(both))
    at_bound = score(frame.iloc[1:], grid([{**per_euro, "points": 10_000}]))
    assert at_bound.total.tolist() == [10**9, 15_000_000]
    missing = frame.iloc[1:].copy()
    missing.loc[missing.index[1], "monthly_resources_eur"] = np.nan  # was -9.2e18 points
    with pytest.raises(DataError, match=r"demand D3: criterion 'per_euro' gives nan points"):
        score(missing, grid([{**per_euro, "points": 1}]))


def test_score_result_shape_and_dtypes(policy: Policy) -> None:
    """Total and breakdown are int64, keep the frame's index, and columns follow the grid."""
    frame = derive_facts(demands_of(demand("A"), demand("B", dalo=True)), policy, ROUND_DATE)
    frame.index = pd.Index([10, 20])
    result = score(frame, policy.cotation)
    assert result.total.dtype == np.int64
    assert list(result.total.index) == [10, 20]
    assert list(result.breakdown.columns) == [c.id for c in policy.cotation.criteria]
    assert all(result.breakdown.dtypes == np.int64)
    assert result.total.tolist() == [12, 62]  # 12 ; 12 + 50
    assert (result.breakdown.sum(axis=1) == result.total).all()


def test_criterion_points_matches_score(policy: Policy) -> None:
    """criterion_points of one criterion equals its breakdown column."""
    frame = derive_facts(demands_of(demand("A", dalo=True), demand("B")), policy, ROUND_DATE)
    dalo = next(c for c in policy.cotation.criteria if c.id == "dalo")
    assert criterion_points(frame, dalo).tolist() == [50, 0]


def test_explain_score_adds_up_and_names_values(policy: Policy) -> None:
    """The explanation lists every criterion, sums to the score and quotes the deciding values."""
    frame = derive_facts(
        demands_of(demand("A"), demand("B", dalo=True, filed_on=dt.date(2023, 8, 31))),
        policy,
        ROUND_DATE,
    )
    lines = explain_score(frame, policy.cotation, "B")
    assert [line.criterion_id for line in lines] == [c.id for c in policy.cotation.criteria]
    # 31 + 20 + 50 = 101
    assert sum(line.points for line in lines) == 101 == score(frame, policy.cotation).total.iloc[1]
    by_id = {line.criterion_id: line for line in lines}
    assert "seniority_months = 31" in by_id["seniority"].why
    assert by_id["dalo"].why == "dalo = True"
    assert by_id["eviction_threat"].points == 0
    assert "not met" in by_id["eviction_threat"].why
    text = render_score_explanation("B", lines)
    assert text.splitlines()[0] == "Demand B: score 101"
    assert "+50" in text


def test_explain_score_unknown_demand(policy: Policy) -> None:
    """An unknown demand id is a DataError naming it."""
    frame = derive_facts(demands_of(demand("A")), policy, ROUND_DATE)
    with pytest.raises(DataError, match="ZZZ"):
        explain_score(frame, policy.cotation, "ZZZ")


def test_explain_score_says_the_floored_value_and_a_cap_only_when_it_bites(
    policy: Policy,
) -> None:
    """A `per` criterion's words give the points it gave.

    1.3 consumption units are floored to 1 (they read "1.3 x 10 point(s)" for 10 points), and a
    cap of 80 that 40 points do not reach is not said to have capped them.
    """
    g = grid(
        [
            {"id": "per_cu", "label": "cu", "points": 10, "per": "consumption_units"},
            {"id": "cats", "label": "cats", "points": 40, "per": "n_priority_categories",
             "cap": 80},
            {"id": "months", "label": "months", "points": 3, "per": "seniority_months",
             "cap": 20},
        ]
    )  # fmt: skip
    # one adult and one child under 14: 1.3 consumption units; one category; 12 months
    household = demand(
        "A", household_size=2, children_under_14=1, dependants=1,
        priority_categories=("sans_logement",),
    )  # fmt: skip
    frame = derive_facts(demands_of(household), policy, ROUND_DATE)
    why = {line.criterion_id: (line.points, line.why) for line in explain_score(frame, g, "A")}
    assert why["per_cu"] == (10, "consumption_units = 1.3, floored to 1, x 10 point(s)")
    assert why["cats"] == (40, "n_priority_categories = 1 x 40 point(s)")
    assert why["months"] == (20, "seniority_months = 12 x 3 point(s), capped at 20")
