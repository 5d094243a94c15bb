"""Eligibility (DOMAIN A2, A3): each rule at its boundaries, pools, the pair table, diagnostics."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest
from tests.factories import ROUND_DATE, demand, demands_of, unit, units_of

from matching.domain import Demand, Unit
from matching.eligibility import (
    PAIR_COLUMNS,
    POOL,
    RULES,
    demand_pools,
    diagnostics,
    eligible_pairs,
    income_ceiling_eur,
    minimum_surface_m2,
    pair_failures,
    render_diagnostics,
    render_why_not,
    typology_rooms,
    why_not,
)
from matching.exceptions import DataError
from matching.facts import derive_facts
from matching.policy import load_policy
from matching.policy.model import Policy


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy("default-2026")


def failed(policy: Policy, u: Unit, d: Demand) -> list[str]:
    """Rule ids a single pair fails (pair_failures), checked against why_not and the table."""
    units, demands = units_of(u), derive_facts(demands_of(d), policy, ROUND_DATE)
    fails = pair_failures(units, demands, np.array([0]), np.array([0]), policy)
    ids = [rule for rule, f in fails.items() if f[0]]
    explained = [f.rule_id for f in why_not(units, demands, policy, u.unit_id, d.demand_id)]
    assert [r for r in explained if r != POOL] == ids
    in_table = len(eligible_pairs(units, demands, policy).pairs) == 1
    assert in_table == (not explained)
    return ids


def messages(policy: Policy, u: Unit, d: Demand) -> list[str]:
    units, demands = units_of(u), derive_facts(demands_of(d), policy, ROUND_DATE)
    return [str(f) for f in why_not(units, demands, policy, u.unit_id, d.demand_id)]


def without_rules(policy: Policy, *rules: str) -> Policy:
    kept = tuple(r for r in policy.eligibility.rules if r not in rules)
    return policy.model_copy(
        update={"eligibility": policy.eligibility.model_copy(update={"rules": kept})}
    )


# --- income_ceiling (A2.1) -------------------------------------------------------------------


def test_income_exactly_at_the_ceiling_is_eligible(policy: Policy) -> None:
    """PLUS, category 1: 23,403 is eligible, 23,404 is not."""
    assert failed(policy, unit(financing="PLUS"), demand(annual_income_eur=23403.0)) == []
    assert failed(policy, unit(financing="PLUS"), demand(annual_income_eur=23404.0)) == [
        "income_ceiling"
    ]


def test_income_ceiling_by_product(policy: Policy) -> None:
    """PLAI cat. 1 is 12,870 and PLS cat. 1 is 30,424 (130 % of PLUS)."""
    assert failed(policy, unit(financing="PLAI"), demand(annual_income_eur=12870.0)) == []
    assert failed(policy, unit(financing="PLAI"), demand(annual_income_eur=12871.0)) == [
        "income_ceiling"
    ]
    assert failed(policy, unit(financing="PLS"), demand(annual_income_eur=30424.0)) == []
    assert failed(policy, unit(financing="PLS"), demand(annual_income_eur=30425.0)) == [
        "income_ceiling"
    ]


def test_income_ceiling_message(policy: Policy) -> None:
    """The message quotes income, ceiling, product and category with thousands separators."""
    got = messages(policy, unit(financing="PLUS"), demand(annual_income_eur=31200.0))
    assert got == ["income_ceiling: 31,200 > 23,403 (PLUS, cat. 1)"]


def test_income_message_just_above_the_ceiling(policy: Policy) -> None:
    """An income a fraction above the ceiling is shown above it, never equal to it."""
    got = messages(policy, unit(financing="PLUS"), demand(annual_income_eur=23403.004))
    assert got == ["income_ceiling: 23,403.004 > 23,403 (PLUS, cat. 1)"]


def test_category_bump_young_couple(policy: Policy) -> None:
    """A young couple without dependant is category 3: PLUS ceiling 37,584, not 31,254."""
    couple = dict(household_size=2, adults=2, annual_income_eur=37584.0)
    t2 = unit(rooms=2)
    assert failed(policy, t2, demand(young_couple=True, **couple)) == []
    # The same couple, not young: category 2, ceiling 31,254 < 37,584.
    assert failed(policy, t2, demand(young_couple=False, **couple)) == ["income_ceiling"]


def test_category_bump_single_parent(policy: Policy) -> None:
    """One adult with one dependant child is category 3 (2 persons + 1): PLUS 37,584."""
    parent = dict(household_size=2, adults=1, children_under_14=1, dependants=1)
    assert failed(policy, unit(), demand(annual_income_eur=37584.0, **parent)) == []
    assert failed(policy, unit(), demand(annual_income_eur=37585.0, **parent)) == ["income_ceiling"]


def test_category_bump_single_parent_of_a_teenager(policy: Policy) -> None:
    """One person + 1 dependant is category 3 whatever the dependant's age (arrêté of 1987).

    A lone parent of a 16-year-old counts two persons aged 14 or more (``adults`` 2) and was
    category 2: refused on a PLUS ceiling of 31,254 that its category 3 (37,584) meets. A couple
    with the same dependant stays a three-person household, category 3, with no bump.
    """
    parent = dict(household_size=2, adults=2, children_under_14=0, dependants=1)
    assert failed(policy, unit(), demand(annual_income_eur=37584.0, **parent)) == []
    got = messages(policy, unit(), demand(annual_income_eur=37585.0, **parent))
    assert got == ["income_ceiling: 37,585 > 37,584 (PLUS, cat. 3)"]
    couple = dict(household_size=3, adults=3, children_under_14=0, dependants=1)
    assert failed(policy, unit(rooms=3), demand(annual_income_eur=37584.0, **couple)) == []
    got = messages(policy, unit(rooms=3), demand(annual_income_eur=37585.0, **couple))
    assert got == ["income_ceiling: 37,585 > 37,584 (PLUS, cat. 3)"]


def test_category_lines_are_not_added_to_the_household_size(policy: Policy) -> None:
    """The arrêté's lines give a category, they do not add to the size: the highest one met.

    A single adult with one dependant and a second child who is not one is three persons,
    category 3 (PLUS 37,584), not 4 (43,627): "one person + 1 dependant" describes a household
    of two. A young couple with a third person who is no dependant is three persons, category 3,
    not 4. Both were given category 4's ceilings, so 40,000 EUR passed a PLUS ceiling of
    37,584.
    """
    single = dict(household_size=3, adults=1, children_under_14=2, dependants=1)
    young = dict(household_size=3, adults=3, children_under_14=0, young_couple=True)
    for household in (single, young):
        got = messages(policy, unit(rooms=3), demand(annual_income_eur=40000.0, **household))
        assert got == ["income_ceiling: 40,000 > 37,584 (PLUS, cat. 3)"]
        assert failed(policy, unit(rooms=3), demand(annual_income_eur=37584.0, **household)) == []
    alone = dict(household_size=2, adults=2, young_couple=True)  # the couple alone: category 3
    assert failed(policy, unit(rooms=2), demand(annual_income_eur=37584.0, **alone)) == []


def test_category_bump_disability(policy: Policy) -> None:
    """A person alone with a disability is category 2: PLUS 31,254."""
    assert failed(policy, unit(), demand(disabled_member=True, annual_income_eur=31254.0)) == []
    got = messages(policy, unit(), demand(disabled_member=True, annual_income_eur=31255.0))
    assert got == ["income_ceiling: 31,255 > 31,254 (PLUS, cat. 2)"]


def test_income_ceiling_above_category_6(policy: Policy) -> None:
    """Category 8 gets the category-6 ceiling plus 2 extra persons."""
    cats = np.array([1, 6, 7, 8])
    # PLUS: 23,403; 60,156; 60,156 + 6,710 = 66,866; 60,156 + 2 x 6,710 = 73,576.
    assert income_ceiling_eur(cats, "PLUS", policy).tolist() == [23403, 60156, 66866, 73576]
    # PLAI cat. 8: 33,085 + 2 x 3,690 = 40,465; PLS cat. 7: 78,203 + 8,723 = 86,926.
    fin = np.array(["PLAI", "PLS"], dtype=object)
    assert income_ceiling_eur(np.array([8, 7]), fin, policy).tolist() == [40465, 86926]


# --- typology (A2.2) -------------------------------------------------------------------------


def test_typology_one_person(policy: Policy) -> None:
    """One person: T1 and T2 are admissible, T3 is refused."""
    assert failed(policy, unit(rooms=1, surface_m2=25.0), demand()) == []
    assert failed(policy, unit(rooms=2), demand()) == []
    assert failed(policy, unit(rooms=3, surface_m2=60.0), demand()) == ["typology"]
    assert messages(policy, unit(rooms=3, surface_m2=60.0), demand()) == [
        "typology: T3 outside T1-T2 for 1 person"
    ]


def test_typology_bands(policy: Policy) -> None:
    """Bands by household size: 2 -> T2-T3, 4 -> T3-T5, 6 and more (open band) -> T5-T6."""
    lo, hi = typology_rooms(np.array([1, 2, 3, 4, 5, 6, 9]), policy)
    assert lo.tolist() == [1, 2, 3, 3, 4, 5, 5]
    assert hi.tolist() == [2, 3, 4, 5, 6, 6, 6]
    nine = demand(household_size=9, adults=2, children_under_14=7, annual_income_eur=1000.0)
    assert failed(policy, unit(rooms=6, surface_m2=90.0), nine) == []
    assert failed(policy, unit(rooms=4, surface_m2=90.0), nine) == ["typology"]


# --- surface (A2.3) --------------------------------------------------------------------------


def test_minimum_surface_table(policy: Policy) -> None:
    """9 m2 for 1, 16 for 2, +9 per extra person, capped at 70 from 8 persons."""
    sizes = np.array([1, 2, 3, 4, 7, 8, 9, 12])
    # 9; 16; 25; 34; 16 + 5 x 9 = 61; 16 + 6 x 9 = 70; 79 -> 70; 106 -> 70.
    assert minimum_surface_m2(sizes, policy).tolist() == [9, 16, 25, 34, 61, 70, 70, 70]


def test_surface_boundaries(policy: Policy) -> None:
    """Exactly the minimum is eligible; 0.1 m2 less is not."""
    assert failed(policy, unit(rooms=1, surface_m2=9.0), demand()) == []
    assert failed(policy, unit(rooms=1, surface_m2=8.9), demand()) == ["surface"]
    four = dict(household_size=4, adults=2, children_under_14=2, dependants=2)
    assert failed(policy, unit(rooms=3, surface_m2=34.0), demand(**four)) == []
    assert messages(policy, unit(rooms=3, surface_m2=33.9), demand(**four)) == [
        "surface: 33.9 m2 < 34 m2 minimum for 4 persons"
    ]


def test_surface_cap_at_70_for_eight_persons(policy: Policy) -> None:
    """Eight persons need 70 m2 (16 + 6 x 9), nine persons still only 70 (the cap)."""
    eight = dict(household_size=8, adults=2, children_under_14=6, annual_income_eur=1000.0)
    nine = dict(household_size=9, adults=2, children_under_14=7, annual_income_eur=1000.0)
    assert failed(policy, unit(rooms=6, surface_m2=70.0), demand(**eight)) == []
    assert failed(policy, unit(rooms=6, surface_m2=69.9), demand(**eight)) == ["surface"]
    assert failed(policy, unit(rooms=6, surface_m2=70.0), demand(**nine)) == []


# --- rent_effort (A2.4) ----------------------------------------------------------------------


def test_rent_effort_exactly_33_percent(policy: Policy) -> None:
    """(495 - 0) / 1,500 = 33 % exactly is eligible; 495.01 is not."""
    assert failed(policy, unit(rent_eur=495.0), demand(monthly_resources_eur=1500.0)) == []
    assert failed(policy, unit(rent_eur=495.01), demand(monthly_resources_eur=1500.0)) == [
        "rent_effort"
    ]


def test_rent_effort_exactly_33_percent_despite_rounding(policy: Policy) -> None:
    """(542.70 - 212.70) / 1,000 is 33 % exactly, although 542.7 - 212.7 > 330.0 in floats."""
    assert 542.7 - 212.7 > 0.33 * 1000  # 330.00000000000006 > 330.0: why the tolerance exists
    d = demand(monthly_resources_eur=1000.0, housing_benefit_eur=212.7)
    assert failed(policy, unit(rent_eur=542.7), d) == []
    assert failed(policy, unit(rent_eur=542.71), d) == ["rent_effort"]


def test_rent_effort_with_benefit_and_message(policy: Policy) -> None:
    """The benefit is deducted: (600 - 105) / 1,500 = 33 % passes, (650 - 100) / 1,500 fails."""
    d = demand(monthly_resources_eur=1500.0, housing_benefit_eur=105.0)
    assert failed(policy, unit(rent_eur=600.0), d) == []
    d2 = demand(monthly_resources_eur=1500.0, housing_benefit_eur=100.0)
    # (650 - 100) / 1,500 = 36.7 %
    assert messages(policy, unit(rent_eur=650.0), d2) == [
        "rent_effort: (650 - 100) / 1,500 = 36.7% > 33%"
    ]


def test_rent_effort_message_shows_the_effort_above_the_limit(policy: Policy) -> None:
    """Just above 33 %, and a limit of 32.5 %: the message does not read '33.0% > 33%'."""
    d = demand(monthly_resources_eur=909.0, housing_benefit_eur=100.0)
    # (400 - 100) / 909 = 0.330033
    assert messages(policy, unit(rent_eur=400.0), d) == [
        "rent_effort: (400 - 100) / 909 = 33.003% > 33%"
    ]
    rent_effort = policy.eligibility.rent_effort.model_copy(update={"max_ratio": 0.325})
    eligibility = policy.eligibility.model_copy(update={"rent_effort": rent_effort})
    stricter = policy.model_copy(update={"eligibility": eligibility})
    d = demand(monthly_resources_eur=918.0, housing_benefit_eur=100.0)
    # (400 - 100) / 918 = 0.3268, above 32.5 % (it read '32.7% > 32%')
    assert messages(stricter, unit(rent_eur=400.0), d) == [
        "rent_effort: (400 - 100) / 918 = 32.7% > 32.5%"
    ]


def test_rent_effort_without_resources(policy: Policy) -> None:
    """No resources: eligible only when the benefit covers the whole rent."""
    covered = demand(monthly_resources_eur=0.0, housing_benefit_eur=400.0)
    assert failed(policy, unit(rent_eur=400.0), covered) == []
    short = demand(monthly_resources_eur=0.0, housing_benefit_eur=399.99)
    assert failed(policy, unit(rent_eur=400.0), short) == ["rent_effort"]
    assert messages(policy, unit(rent_eur=400.0), short) == [
        "rent_effort: no monthly resources and rent 400 > housing benefit 399.99"
    ]


# --- location, accessibility (A2.5, A2.6) ----------------------------------------------------


def test_location(policy: Policy) -> None:
    """No wished commune means any; otherwise the unit's commune must be wished."""
    caen = unit(commune_insee="14118")
    assert failed(policy, caen, demand(wished_communes=())) == []
    assert failed(policy, caen, demand(wished_communes=("14047", "14118"))) == []
    assert messages(policy, caen, demand(wished_communes=("14047", "14341"))) == [
        "location: 14118 not in wished communes (14047, 14341)"
    ]


def test_accessibility(policy: Policy) -> None:
    """A PMR household only gets an adapted unit; others may get either."""
    assert failed(policy, unit(accessible=False), demand(needs_accessible=True)) == [
        "accessibility"
    ]
    assert failed(policy, unit(accessible=True), demand(needs_accessible=True)) == []
    assert failed(policy, unit(accessible=True), demand(needs_accessible=False)) == []


# --- flux_exclusion (A3) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "for_them", "not_for_them"),
    [
        ("mutation", {"current_social_tenant": True}, {}),
        ("vente", {"current_social_tenant": True}, {"anru": True}),
        ("anru", {"anru": True}, {"current_social_tenant": True}),
        (
            "habitat_indigne",
            {"priority_categories": ("habitat_indigne",)},
            {"priority_categories": ("violences",)},
        ),
    ],
)
def test_flux_exclusion(
    policy: Policy, reason: str, for_them: dict[str, object], not_for_them: dict[str, object]
) -> None:
    """A unit excluded from the flux goes only to the households its reason is for."""
    excluded = unit(flux_excluded=reason)
    assert failed(policy, excluded, demand(**for_them)) == []
    assert failed(policy, excluded, demand(**not_for_them)) == ["flux_exclusion"]
    # A unit in the flux is open to both.
    assert failed(policy, unit(), demand(**not_for_them)) == []


def test_flux_exclusion_message(policy: Policy) -> None:
    """The message names the reason and the households the unit is for."""
    assert messages(policy, unit(flux_excluded="anru"), demand()) == [
        "flux_exclusion: unit excluded from the flux (anru) is only for households with anru = True"
    ]


def test_several_failures_are_all_reported_in_rule_order(policy: Policy) -> None:
    """Every failed rule is listed, in RULES order."""
    u = unit(rooms=3, surface_m2=8.0, rent_eur=900.0, accessible=False, flux_excluded="anru")
    d = demand(annual_income_eur=40000.0, wished_communes=("14047",), needs_accessible=True)
    assert failed(policy, u, d) == list(RULES)


def test_disabled_rule_is_not_applied(policy: Policy) -> None:
    """A rule left out of eligibility.rules neither fails nor filters."""
    lenient = without_rules(policy, "income_ceiling")
    units = units_of(unit())
    demands = derive_facts(demands_of(demand(annual_income_eur=99999.0)), policy, ROUND_DATE)
    fails = pair_failures(units, demands, np.array([0]), np.array([0]), lenient)
    assert "income_ceiling" not in fails
    assert len(eligible_pairs(units, demands, lenient).pairs) == 1
    assert len(eligible_pairs(units, demands, policy).pairs) == 0


# --- pools (A3) ------------------------------------------------------------------------------


def test_demand_pools_from_conditions_and_override(policy: Policy) -> None:
    """Bits follow policy order: etat 1, etat_agents 2, collectivite 4, action_logement 8, ..."""
    frame = derive_facts(
        demands_of(
            demand("plain"),  # collectivite + bailleur = 4 + 16 = 20
            demand("dalo", dalo=True),  # + etat = 21
            demand("agent", state_agent=True, private_employee=True),  # 20 + 2 + 8 = 30
            demand("explicit", dalo=True, pools=("action_logement",)),  # override: 8
            demand("none", pools=()),  # override: no pool = 0
        ),
        policy,
        ROUND_DATE,
    )
    assert demand_pools(frame, policy).tolist() == [20, 21, 30, 8, 0]
    assert demand_pools(frame, policy).dtype == np.uint16


def test_unknown_explicit_pool_is_a_data_error(policy: Policy) -> None:
    """An explicit pool naming no réservataire of the policy is refused with the demand id."""
    frame = derive_facts(demands_of(demand("D9", pools=("mairie",))), policy, ROUND_DATE)
    with pytest.raises(DataError, match="D9"):
        demand_pools(frame, policy)


def test_demand_in_no_pool_is_dropped_for_flux_units_only(policy: Policy) -> None:
    """An eligible household in no pool is dropped for a flux unit, kept (pools 0) when excluded."""
    units = units_of(unit("F"), unit("X", flux_excluded="mutation"))
    demands = derive_facts(
        demands_of(demand("N", pools=(), current_social_tenant=True)), policy, ROUND_DATE
    )
    table = eligible_pairs(units, demands, policy)
    assert table.pairs[["unit", "demand", "pools"]].values.tolist() == [[1, 0, 0]]
    assert table.no_pool.tolist() == [1, 0]
    assert table.pool_blocked.tolist() == [True]  # it passes every rule on F: the pools block it
    got = why_not(units, demands, policy, "F", "N")
    assert [f.rule_id for f in got] == [POOL]
    assert why_not(units, demands, policy, "X", "N") == []


# --- the pair table --------------------------------------------------------------------------


def test_pair_table_columns_dtypes_order(policy: Policy) -> None:
    """Columns, dtypes and (unit, demand) order of the pair table, with the facts gathered."""
    units = units_of(
        unit("U1", qpv=True),
        unit("U2", rooms=3, surface_m2=60.0, flux_excluded="anru"),
        unit("U3", rooms=1, surface_m2=20.0),
    )
    demands = derive_facts(
        demands_of(
            demand("A", annual_income_eur=5000.0, dalo=True),  # q1 (5,000 < 10,656), priority
            demand(
                "B",
                household_size=3,
                adults=2,
                children_under_14=1,
                anru=True,
                annual_income_eur=20000.0,
            ),  # 20,000 / 1.8 CU = 11,111 >= 10,656: not Q1
            demand("C"),
        ),
        policy,
        ROUND_DATE,
    )
    scores = np.array([7, 8, 9])
    table = eligible_pairs(units, demands, policy, scores).pairs
    assert tuple(table.columns) == PAIR_COLUMNS
    dtypes = [str(t) for t in table.dtypes]
    assert dtypes == ["int32", "int32", "uint16", "int64", "bool", "bool", "bool", "bool"]
    # U1 (T2, 1-2 persons): A and C; U2 (T3, ANRU only): B; U3 (T1): A and C.
    assert table[["unit", "demand"]].values.tolist() == [[0, 0], [0, 2], [1, 1], [2, 0], [2, 2]]
    assert table["pools"].tolist() == [21, 20, 0, 21, 20]
    assert table["score"].tolist() == [7, 9, 8, 7, 9]
    assert table["q1"].tolist() == [True, False, False, True, False]
    assert table["q1_or_anru"].tolist() == [True, False, True, True, False]
    assert table["priority"].tolist() == [True, False, False, True, False]
    assert table["qpv"].tolist() == [True, True, False, False, False]


def test_scores_default_to_the_policy_grid(policy: Policy) -> None:
    """Without scores, the pair table carries the policy's cotation (12 + 50 for a DALO)."""
    units = units_of(unit())
    demands = derive_facts(demands_of(demand(dalo=True)), policy, ROUND_DATE)
    assert eligible_pairs(units, demands, policy).pairs["score"].tolist() == [62]


def test_empty_inputs(policy: Policy) -> None:
    """No unit or no demand gives an empty table with the right columns."""
    demands = derive_facts(demands_of(demand()), policy, ROUND_DATE)
    table = eligible_pairs(units_of(), demands, policy)
    assert len(table.pairs) == 0
    assert tuple(table.pairs.columns) == PAIR_COLUMNS


def test_table_equals_pair_failures_on_the_cross_product(policy: Policy) -> None:
    """The bucketed table equals the per-pair predicates on every unit x demand pair."""
    units = units_of(
        unit("U1"),
        unit("U2", commune_insee="14047", rooms=4, surface_m2=34.0, financing="PLAI"),
        unit("U3", rent_eur=542.7, accessible=True, flux_excluded="vente"),
    )
    demands = derive_facts(
        demands_of(
            demand("A", wished_communes=("14047",), household_size=4, adults=2,
                   children_under_14=2, annual_income_eur=25091.0),
            demand("B", monthly_resources_eur=1000.0, housing_benefit_eur=212.7,
                   current_social_tenant=True, needs_accessible=True),
            demand("C", pools=()),
            demand("D"),
        ),
        policy,
        ROUND_DATE,
    )  # fmt: skip
    u_idx, d_idx = np.repeat(np.arange(3), 4), np.tile(np.arange(4), 3)
    fails = pair_failures(units, demands, u_idx, d_idx, policy)
    ok = ~np.logical_or.reduce(list(fails.values()))
    in_flux = np.array([True, True, False])[u_idx]
    ok &= ~in_flux | (demand_pools(demands, policy)[d_idx] != 0)
    expected = list(zip(u_idx[ok].tolist(), d_idx[ok].tolist(), strict=True))
    table = eligible_pairs(units, demands, policy).pairs
    assert list(zip(table["unit"].tolist(), table["demand"].tolist(), strict=True)) == expected
    # U1: B (PMR but unit not adapted: no), D, A (wishes 14047: no); U2: A; U3: B.
    assert expected == [(0, 3), (1, 0), (2, 1)]


# --- why_not and diagnostics -----------------------------------------------------------------


def test_why_not_eligible_and_unknown_ids(policy: Policy) -> None:
    """An eligible pair explains as an empty list; unknown ids are DataErrors."""
    units = units_of(unit("U1"))
    demands = derive_facts(demands_of(demand("D1")), policy, ROUND_DATE)
    assert why_not(units, demands, policy, "U1", "D1") == []
    text = render_why_not("U1", "D1", [])
    assert text.startswith("Unit U1 / demand D1: eligible\n")
    # "eligible" is before any orientation: the solved round's answer is explain-demand's
    assert "matching explain-demand FOLDER D1" in text
    with pytest.raises(DataError, match="U9"):
        why_not(units, demands, policy, "U9", "D1")
    with pytest.raises(DataError, match="D9"):
        why_not(units, demands, policy, "U1", "D9")


def test_explicit_state_pool_without_priority_is_no_pool(policy: Policy) -> None:
    """A non-priority household listing only 'etat' can be proposed by nobody.

    No pair, and why-not says so (it said 'eligible', and the pair counted among the État's
    candidates).
    """
    units = units_of(unit("U1"))
    demands = derive_facts(
        demands_of(demand("D1", pools=("etat",)), demand("D2", dalo=True, pools=("etat",))),
        policy,
        ROUND_DATE,
    )
    table = eligible_pairs(units, demands, policy)
    assert table.pairs["demand"].tolist() == [1]  # only the DALO household
    assert table.no_pool.tolist() == [1]
    failures = why_not(units, demands, policy, "U1", "D1")
    assert [f.rule_id for f in failures] == [POOL]
    assert "priority" in failures[0].message
    assert why_not(units, demands, policy, "U1", "D2") == []
    diag = diagnostics(units, demands, policy, table)
    assert diag.per_unit["etat"].tolist() == [1]


def test_diagnostics_counts_per_pool_and_binding_rule(policy: Policy) -> None:
    """Per-unit counts by pool, and a blocked unit's binding rule with its counts."""
    units = units_of(
        unit("OK"),
        unit("BIG", rooms=6, surface_m2=100.0),  # T6: nobody here has 5+ persons
        unit("POOR", financing="PLAI"),
    )
    demands = derive_facts(
        demands_of(
            demand("dalo", dalo=True, annual_income_eur=12000.0),  # pools 21
            demand("emp", private_employee=True),  # pools 28, income 15,000 > PLAI 12,870
            demand("rich", annual_income_eur=30000.0, filed_on=dt.date(2020, 1, 1)),
        ),
        policy,
        ROUND_DATE,
    )
    table = eligible_pairs(units, demands, policy)
    diag = diagnostics(units, demands, policy, table)
    per = diag.per_unit.set_index("unit_id")
    # OK: dalo and emp (rich fails income); etat only dalo, action_logement only emp.
    columns = ["any", "etat", "collectivite", "action_logement", "bailleur"]
    assert per.loc["OK", columns].tolist() == [2, 1, 2, 1, 2]
    # POOR (PLAI): only dalo (12,000 <= 12,870).
    assert per.loc["POOR", "any"] == 1
    assert diag.n_pairs == 3 and diag.n_demands_with_pair == 2 and diag.n_no_pool == 0
    blocked = diag.blocked.set_index("unit_id")
    assert list(blocked.index) == ["BIG"]
    # BIG: typology fails for all 3 (1 person: T1-T2); rich also fails income (30,000 > 23,403).
    assert blocked.loc["BIG", "typology"] == 3
    assert blocked.loc["BIG", "only_typology"] == 2
    assert blocked.loc["BIG", "income_ceiling"] == 1
    assert blocked.loc["BIG", "only_income_ceiling"] == 0
    assert blocked.loc["BIG", "binding"] == "typology"
    text = render_diagnostics(diag, policy)
    assert "BIG: binding typology" in text


def test_diagnostics_pool_binding(policy: Policy) -> None:
    """A flux unit whose only eligible households are in no pool is blocked by `pool`."""
    units = units_of(unit("U1"))
    demands = derive_facts(demands_of(demand("D1", pools=())), policy, ROUND_DATE)
    diag = diagnostics(units, demands, policy, eligible_pairs(units, demands, policy))
    assert diag.per_unit["no_pool"].tolist() == [1]
    assert diag.blocked["binding"].tolist() == [POOL]
    # the pair in no pool is not one of the eligible pairs counted (result.json's), but more
    assert render_diagnostics(diag, policy).startswith(
        "1 units, 0 eligible pairs, 0 demands in at least one pair, and 1 more eligible pair(s) "
        "in no pool (no réservataire may propose them)"
    )


def test_diagnostics_text_separates_thousands(policy: Policy) -> None:
    """Large counts read as the solve summary writes them: 528,359 eligible pairs."""
    units = units_of(unit("U1"))
    demands = derive_facts(demands_of(demand("D1")), policy, ROUND_DATE)
    diag = diagnostics(units, demands, policy, eligible_pairs(units, demands, policy))
    per_unit = diag.per_unit.assign(any=1_311)
    big = dataclasses.replace(diag, n_pairs=528_359, n_demands_with_pair=13_958, per_unit=per_unit)
    text = render_diagnostics(big, policy)
    assert text.startswith("1 units, 528,359 eligible pairs, 13,958 demands in at least one pair")
    assert "min 1,311, median 1,311, max 1,311 per unit" in text
    assert "528359" not in text and " 1311" not in text


def test_plain_demands_are_a_type_error_naming_the_facts(policy: Policy) -> None:
    """`why_not` and `eligible_pairs` on the demands as read say which facts they need."""
    units, demands = units_of(unit()), demands_of(demand())
    with pytest.raises(TypeError, match=r"no derived column category.*derive_facts"):
        why_not(units, demands, policy, "U1", "D1")
    with pytest.raises(TypeError, match=r"no derived column category.*derive_facts"):
        eligible_pairs(units, demands, policy)
