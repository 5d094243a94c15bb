"""Allocation policies behind one interface (issue 6): optimal, greedy_score, seniority, bands.

Every result is re-audited by the independent checker with `tests.solver.support.verify`: no
violation, stage values and (soft mode) every shortfall exactly as the checker counts them,
every unit once, every flux unit oriented once (so the flux bands hold). Greedy policies are
judged under the soft-mode copy of the policy, as they report it.

Dates: the round is 2026-03-31; `filed(m)` is exactly m months earlier, so a plain household
filed with `filed(m)` scores m points under the default grid (m + 20 beyond 30 months), a
priority category adds 40 and DALO 50.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from tests.factories import ROUND_DATE, demand, demands_of, unit, units_of
from tests.solver.support import (
    ALL_TO_LANDLORD,
    FAST,
    POLICY,
    default_rule,
    filed,
    rows_of,
    rule,
    soft,
    verify,
    with_rules,
    with_shares,
)

from matching.allocation import POLICY_NAMES, get_policy
from matching.allocation.greedy import release_order
from matching.allocation.optimal import SOFT_FALLBACK
from matching.exceptions import PolicyError
from matching.flux import YearSoFar
from matching.generate import generate_territory
from matching.params import SolveParams
from matching.policy.model import Policy
from matching.policy.quotas import Tally
from matching.result import Result
from matching.scenario import in_round, round_date

GREEDY = ("greedy_score", "seniority", "bands")

PRIORITY_HALF = rule(
    "priority_half", "floor", "share", 0.5,
    count=[{"field": "demand.priority", "op": "eq", "value": True}],
    base=[{"field": "reservataire", "op": "eq", "value": "bailleur"}],
)  # fmt: skip
"""At least half of the landlord's allocations to priority households (a floor that binds)."""

SCOPED = with_rules(
    POLICY,
    *POLICY.quotas.rules,
    rule(
        "q1_per_landlord", "floor", "share", 0.6,
        count=[{"field": "demand.q1_or_anru", "op": "eq", "value": True}],
        base=[{"field": "unit.qpv", "op": "eq", "value": False}], scope="unit.bailleur",
    ),
    rule(
        "priority_per_commune", "ceiling", "count", 0,
        count=[{"field": "demand.priority", "op": "eq", "value": True}],
        scope="demand.resident_commune_insee",
    ),
)  # fmt: skip
"""The default rules, a floor per landlord and a count ceiling per commune of residence."""


def allocate(
    name: str,
    units: pd.DataFrame,
    demands: pd.DataFrame,
    policy: Policy,
    year: YearSoFar | None = None,
    on: dt.date = ROUND_DATE,
) -> Result:
    """Allocate with the named policy and verify the result with the independent checker."""
    result = get_policy(name).allocate(units, demands, policy, FAST, year_so_far=year, on=on)
    judged = policy if name == "optimal" and result.stats["quota_mode"] == "hard" else soft(policy)
    verify(result, units, demands, judged, year, on)
    assert result.stats["allocation_policy"] == name
    return result


def given(result: Result) -> dict[str, str]:
    """The allocation as unit_id -> demand_id."""
    a = result.allocation
    return dict(zip(a["unit_id"], a["demand_id"], strict=True))


@pytest.fixture(scope="module")
def small_round() -> tuple[pd.DataFrame, pd.DataFrame, dt.date]:
    """A generated Caen la Mer January round: 8 units x 150 demands (optimal proves it fast)."""
    units, demands = generate_territory("caen-la-mer", 2026, seed=1, n_units=120, n_demands=150)
    on = round_date(2026, 1)
    round_units = units[in_round(units["released_on"], 2026, 1)].reset_index(drop=True)
    filed_by = pd.to_datetime(demands["filed_on"]) <= pd.Timestamp(on)
    return round_units, demands[filed_by].reset_index(drop=True), on


def test_get_policy_knows_the_four_names() -> None:
    """get_policy returns an object of each known name; an unknown name lists the known ones."""
    assert POLICY_NAMES == ("optimal", "greedy_score", "seniority", "bands")
    for name in POLICY_NAMES:
        assert get_policy(name).name == name
    with pytest.raises(PolicyError, match="optimal, greedy_score, seniority, bands"):
        get_policy("lottery")
    # `solve --policy` takes a policy file, `simulate --policy` an allocation policy: say where
    # the file goes
    with pytest.raises(PolicyError, match="a policy file goes in the scenario's `policy:` key"):
        get_policy("models/default-2026.yaml")


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_every_policy_passes_the_checker_on_a_generated_round(
    name: str, small_round: tuple[pd.DataFrame, pd.DataFrame, dt.date]
) -> None:
    """Under the default policy (5 réservataires, 5 quotas) each policy's round is clean."""
    units, demands, on = small_round
    result = allocate(name, units, demands, POLICY, on=on)
    assert result.counts["units_allocated"] > 0
    if name != "optimal":
        assert result.status == "FEASIBLE"
        assert result.stats["quota_mode"] == "soft"


@pytest.mark.parametrize("name", GREEDY)
def test_a_greedy_policys_empty_units_are_not_blamed_on_a_time_limit(name: str) -> None:
    """A greedy policy's empty units keep "candidates_taken_or_quota_bound".

    It is FEASIBLE by nature, not stopped by a limit; "not_proven_in_time" is a search's.
    """
    units, demands = generate_territory("caen-la-mer", 2026, seed=1, n_units=1000, n_demands=200)
    on = round_date(2026, 1)
    units = units[in_round(units["released_on"], 2026, 1)].reset_index(drop=True)
    demands = demands[pd.to_datetime(demands["filed_on"]) <= pd.Timestamp(on)]
    result = allocate(name, units, demands.reset_index(drop=True), POLICY, on=on)
    assert result.status == "FEASIBLE"
    reasons = set(result.unallocated_units["reason"])
    assert "candidates_taken_or_quota_bound" in reasons
    assert "not_proven_in_time" not in reasons


@pytest.mark.parametrize("name", GREEDY)
def test_greedy_shortfalls_are_exact_under_scoped_floors_and_ceilings(
    name: str, small_round: tuple[pd.DataFrame, pd.DataFrame, dt.date]
) -> None:
    """Per-group rules get exact shortfalls, group by group, as the checker counts them.

    A 60 % Q1 floor per landlord and "no priority household" per commune of residence (a count
    ceiling the État's priority-only pool must break) both fall short somewhere; `verify`
    compares every group's shortfall with the checker's.
    """
    units, demands, on = small_round
    result = allocate(name, units, demands, SCOPED, on=on)
    short = {k.split("[")[0] for k, v in result.shortfalls.items() if v}
    assert {"q1_per_landlord", "priority_per_commune"} <= short


def test_greedy_policies_on_a_medium_generated_round() -> None:
    """A larger round (Caen la Mer, 1,200 units a year: January) is clean under each greedy."""
    units, demands = generate_territory("caen-la-mer", 2026, seed=2, n_units=1200, n_demands=5000)
    on = round_date(2026, 1)
    round_units = units[in_round(units["released_on"], 2026, 1)].reset_index(drop=True)
    assert len(round_units) > 50
    for name in GREEDY:
        result = allocate(name, round_units, demands, POLICY, on=on)
        assert result.counts["units_allocated"] > 0.9 * len(round_units)


def test_greedy_score_takes_the_highest_score_in_release_order() -> None:
    """Without binding quotas, the unit released first gets the highest score, the next the next.

    Scores: D_top filed 60 months ago 60 + 20 = 80, D_mid 40 + 20 = 60, D_low 10.
    U_late is released on 10 March, U_early on 1 March: U_early is served first.
    """
    units = units_of(
        unit("U_late", released_on=dt.date(2026, 3, 10)),
        unit("U_early", released_on=dt.date(2026, 3, 1)),
    )
    demands = demands_of(
        demand("D_low", filed_on=filed(10)),
        demand("D_top", filed_on=filed(60)),
        demand("D_mid", filed_on=filed(40)),
    )
    result = allocate("greedy_score", units, demands, ALL_TO_LANDLORD)
    assert given(result) == {"U_early": "D_top", "U_late": "D_mid"}
    assert result.stage_values == {"shortfall": 0, "allocations": 2, "score": 140}  # 80 + 60


def test_release_order_is_date_then_id() -> None:
    """Units are served by release date, then unit id."""
    units = units_of(
        unit("U3", released_on=dt.date(2026, 3, 2)),
        unit("U2", released_on=dt.date(2026, 3, 1)),
        unit("U1", released_on=dt.date(2026, 3, 2)),
    )
    assert units["unit_id"].to_numpy()[release_order(units)].tolist() == ["U2", "U1", "U3"]


def test_seniority_takes_the_oldest_filing() -> None:
    """The seniority policy gives the unit to the oldest filing even when another scores more.

    D_old filed 30 months ago scores 30; D_dalo filed 10 months ago scores 10 + 50 = 60.
    """
    units = units_of(unit("U1"))
    demands = demands_of(
        demand("D_dalo", filed_on=filed(10), dalo=True), demand("D_old", filed_on=filed(30))
    )
    assert given(allocate("seniority", units, demands, ALL_TO_LANDLORD)) == {"U1": "D_old"}
    assert given(allocate("greedy_score", units, demands, ALL_TO_LANDLORD)) == {"U1": "D_dalo"}


def test_bands_serve_dalo_then_priority_then_the_rest() -> None:
    """bands: DALO band first, then other priority, then others, whatever the scores.

    Scores: D_senior 60 + 20 = 80 (no priority), D_prio 2 + 40 = 42, D_dalo 1 + 50 = 51.
    Three units released on 1, 2 and 3 March.
    """
    units = units_of(*(unit(f"U{i}", released_on=dt.date(2026, 3, i)) for i in (1, 2, 3)))
    demands = demands_of(
        demand("D_senior", filed_on=filed(60)),
        demand("D_prio", filed_on=filed(2), priority_categories=("sans_logement",)),
        demand("D_dalo", filed_on=filed(1), dalo=True),
    )
    result = allocate("bands", units, demands, ALL_TO_LANDLORD)
    assert given(result) == {"U1": "D_dalo", "U2": "D_prio", "U3": "D_senior"}
    by_score = allocate("greedy_score", units, demands, ALL_TO_LANDLORD)
    assert given(by_score) == {"U1": "D_senior", "U2": "D_dalo", "U3": "D_prio"}


def test_bands_within_a_band_oldest_first() -> None:
    """Two priority households: the one that filed first is served first (banding date)."""
    units = units_of(unit("U1"))
    demands = demands_of(
        demand("D_new", filed_on=filed(3), priority_categories=("violences",), dalo=True),
        demand("D_old", filed_on=filed(20), dalo=True),
    )
    assert given(allocate("bands", units, demands, ALL_TO_LANDLORD)) == {"U1": "D_old"}


def _floor_instance() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four units in four communes, where serving the top score first misses a 50 % floor."""
    communes = ("14118", "14327", "14341", "14488")
    units = units_of(
        *(unit(f"U{i + 1}", commune_insee=c, released_on=dt.date(2026, 3, i + 1))
          for i, c in enumerate(communes))
    )  # fmt: skip
    demands = demands_of(
        *(demand(f"N{i + 1}", filed_on=filed(60), wished_communes=(c,))
          for i, c in enumerate(communes)),
        demand("P1", filed_on=filed(1), wished_communes=(communes[0], communes[2]),
               priority_categories=("sans_logement",)),
        demand("P2", filed_on=filed(2), wished_communes=(communes[2],),
               priority_categories=("sans_logement",)),
    )  # fmt: skip
    return units, demands


def test_greedy_reports_the_exact_shortfall_of_a_floor_it_cannot_meet() -> None:
    """greedy_score misses 'half of the landlord's allocations to priority' by exactly one.

    Scores: N1..N4 80 (60 months), P1 41, P2 42. Eligible: U1 {N1, P1}, U2 {N2},
    U3 {N3, P1, P2}, U4 {N4}. Floor line (p/q = 1/2): value = 2 x counted - base >= 0.
    - U1: N1 leaves value -1, and U3 can still add +1 (its priority households): reachable,
      so U1 goes to the top score N1.
    - U2: N2 only: value -2. U3: projected shortfall after N3 would be ceil(3/2) = 2, after P2
      ceil(1/2) = 1; P2 (42) before P1 (41): value -1. U4: N4 only: value -2.
    Year end: 4 allocations, 1 priority: needs ceil(4 / 2) = 2, short by 1, weight 1000.
    The optimum gives U1 to P1 and U3 to P2: no shortfall.
    """
    units, demands = _floor_instance()
    policy = with_rules(with_shares(POLICY), PRIORITY_HALF)
    result = allocate("greedy_score", units, demands, policy)
    assert given(result) == {"U1": "N1", "U2": "N2", "U3": "P2", "U4": "N4"}
    assert result.shortfalls == {"priority_half": 1}
    assert result.stage_values["shortfall"] == 1000
    best = allocate("optimal", units, demands, policy)
    assert best.status == "OPTIMAL" and best.stats["quota_mode"] == "hard"
    assert given(best)["U1"] == "P1"


def test_greedy_skips_a_household_when_the_year_so_far_binds_the_floor() -> None:
    """With 3 earlier non-priority allocations, the unit goes to the priority household.

    Earlier rounds gave the landlord 3 allocations, none priority; another household scores
    more. 25 % floor (p/q = 1/4): rhs = 1 x 3 - 4 x 0 = 3. Taking D_top: value -1, shortfall
    ceil(4 / 4) = 1; taking D_prio: value 3, shortfall 0. Total 4 allocations, 1 priority: met.
    """
    units = units_of(unit("U1"))
    demands = demands_of(
        demand("D_top", filed_on=filed(60)),
        demand("D_prio", filed_on=filed(1), priority_categories=("sans_logement",)),
    )
    policy = with_rules(with_shares(POLICY), default_rule("priority_floor_bailleur"))
    year = YearSoFar(tallies={"priority_floor_bailleur": {"": Tally(base=3, counted=0)}})
    result = allocate("greedy_score", units, demands, policy, year=year)
    assert given(result) == {"U1": "D_prio"}
    assert result.shortfalls == {"priority_floor_bailleur": 0}


def test_greedy_orients_within_the_flux_bands() -> None:
    """With État 25 % and the landlord the rest, 4 flux units: exactly one goes to the État.

    Band of the État: t = 0.25 x 4 = 1, so [1, 1]. The État's pool is priority-only: its unit
    goes to the priority household; the other three to the landlord's best scores.
    """
    units = units_of(*(unit(f"U{i}", released_on=dt.date(2026, 3, i)) for i in (1, 2, 3, 4)))
    demands = demands_of(
        *(demand(f"N{i}", filed_on=filed(50 + i)) for i in (1, 2, 3, 4)),
        demand("P", filed_on=filed(1), dalo=True),
    )
    policy = with_shares(with_rules(POLICY), etat=0.25)
    result = allocate("greedy_score", units, demands, policy)
    etat = result.allocation[result.allocation["reservataire"] == "etat"]
    assert etat["demand_id"].tolist() == ["P"]
    assert (result.orientation["reservataire"] == "etat").sum() == 1


def test_optimal_falls_back_to_soft_mode_when_hard_quotas_conflict() -> None:
    """When the hard quotas conflict, optimal returns the soft optimum and says so.

    Earlier rounds gave the landlord 2 allocations, none priority, and no household of this
    round is priority: the 50 % floor cannot hold. Floor line (p/q = 1/2): rhs = 1 x 2 - 2 x 0
    = 2, and every allocation adds -1. Soft stages: the least shortfall first, so no
    allocation: shortfall ceil(2 / 2) = 1 (allocating both units would make it ceil(4 / 2) = 2).
    """
    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(demand("D1"), demand("D2"))
    policy = with_rules(with_shares(POLICY), PRIORITY_HALF)
    year = YearSoFar(tallies={"priority_half": {"": Tally(base=2, counted=0)}})
    result = allocate("optimal", units, demands, policy, year=year)
    assert result.stats["quota_mode"] == SOFT_FALLBACK
    assert result.conflicts == ["priority_half"]
    assert result.shortfalls == {"priority_half": 1}
    assert result.counts["units_allocated"] == 0
    greedy = allocate("greedy_score", units, demands, policy, year=year)
    assert greedy.shortfalls == {"priority_half": 2}  # fills both units: ceil(4 / 2)


@pytest.mark.parametrize("name", GREEDY)
def test_greedy_is_deterministic(
    name: str, small_round: tuple[pd.DataFrame, pd.DataFrame, dt.date]
) -> None:
    """The same round twice gives the same allocation and orientation."""
    units, demands, on = small_round
    policy = get_policy(name)
    params = SolveParams()
    first = policy.allocate(units, demands, POLICY, params, year_so_far=None, on=on)
    second = policy.allocate(units, demands, POLICY, params, year_so_far=None, on=on)
    assert rows_of(first) == rows_of(second)
    assert first.orientation.equals(second.orientation)


def test_excluded_units_go_to_the_households_they_are_for() -> None:
    """A mutation unit (excluded from the flux) goes, unoriented, to a social tenant only."""
    units = units_of(unit("U1", flux_excluded="mutation"))
    demands = demands_of(
        demand("D_top", filed_on=filed(60)),
        demand("D_tenant", filed_on=filed(5), current_social_tenant=True),
    )
    result = allocate("greedy_score", units, demands, ALL_TO_LANDLORD)
    assert rows_of(result) == {("U1", "D_tenant", "")}
    assert result.orientation.empty


def test_the_soft_fallback_minimises_the_shortfall_whatever_the_stages() -> None:
    """A hard policy that ranks no shortfall stage still falls back to the least shortfall.

    Same conflict as above (earlier rounds: the landlord's 2 allocations, none priority), under
    a policy whose stages are [allocations, score]: hard quotas have no shortfall to rank. The
    fallback minimises the weighted shortfall first: no allocation, shortfall ceil(2 / 2) = 1.
    It kept the policy's stages, ignored the quotas and let both units: shortfall 2.
    """
    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(demand("D1"), demand("D2"))
    base = with_rules(with_shares(POLICY), PRIORITY_HALF)
    policy = base.model_copy(
        update={"objective": base.objective.model_copy(update={"stages": ("allocations", "score")})}
    )
    year = YearSoFar(tallies={"priority_half": {"": Tally(base=2, counted=0)}})
    result = get_policy("optimal").allocate(
        units, demands, policy, FAST, year_so_far=year, on=ROUND_DATE
    )
    diagnosis = soft(policy)
    diagnosis = diagnosis.model_copy(
        update={
            "objective": diagnosis.objective.model_copy(
                update={"stages": ("shortfall", "allocations", "score")}
            )
        }
    )
    assert result.stats["quota_mode"] == SOFT_FALLBACK
    assert result.conflicts == ["priority_half"]
    assert result.shortfalls == {"priority_half": 1}
    assert result.counts["units_allocated"] == 0
    assert result.stage_values == {"shortfall": 1000, "allocations": 0, "score": 0}
    verify(result, units, demands, diagnosis, year, ROUND_DATE)
