"""Independent checker (STYLE 7, DOMAIN A2-A5): every violation kind, quotas, year so far, stages.

The hand-made round (default-2026 policy, round date 2026-03-31), every unit a T2 PLUS of 45 m2
at 400 EUR in Caen, every demand one adult earning 15,000 EUR/year (1,500 EUR/month, not Q1)
unless said otherwise:

    unit  QPV  flux       allocated to  through          demand facts
    U1    no   in         D1            etat             DALO, income 8,000 (Q1)
    U2    no   in         D2            action_logement  private employee, category violences
    U3    yes  in         D3            collectivite     category sans_logement, filed 2023-03-31
    U4    yes  in         D4            bailleur         DALO
    U5    no   mutation   D5            (none)           current social tenant
    U6    no   in         -             (oriented bailleur)
    D6: plain household, D7: private employee, neither priority, both unallocated.

Flux bands with 5 flux units and no earlier round: etat 0.25 x 5 = 1.25 -> [1, 2];
etat_agents 0.25 -> [0, 1]; collectivite 1 -> [1, 1]; action_logement 1.25 -> [1, 2].
Quotas: each priority floor 1 of 1; outside QPV (U1, U2, U5) 1 Q1 of 3 >= ceil(3/4) = 1;
inside QPV (U3, U4) 2 non-Q1 of 2 >= ceil(2/2) = 1. So the round is valid.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.factories import ROUND_DATE, demand, demands_of, unit, units_of

from matching.checker import (
    Audit,
    Violation,
    audit,
    check,
    objective_values,
    quota_outcomes,
    render_violations,
)
from matching.exceptions import CheckFailedError, DataError, PolicyError
from matching.facts import derive_facts
from matching.flux import YearSoFar
from matching.frames import canonical_tables
from matching.io import cell_text
from matching.policy import load_policy
from matching.policy.conditions import Condition
from matching.policy.model import Policy, QuotaRule
from matching.policy.quotas import Tally
from matching.types import Bound, Measure, QuotaMode, Stage

Overrides = dict[str, dict[str, Any]]

UNITS: Overrides = {
    "U1": {},
    "U2": {},
    "U3": {"qpv": True},
    "U4": {"qpv": True},
    "U5": {"flux_excluded": "mutation"},
    "U6": {},
}
DEMANDS: Overrides = {
    "D1": {"dalo": True, "annual_income_eur": 8000.0},
    "D2": {"private_employee": True, "priority_categories": ("violences",)},
    "D3": {"priority_categories": ("sans_logement",), "filed_on": dt.date(2023, 3, 31)},
    "D4": {"dalo": True},
    "D5": {"current_social_tenant": True},
    "D6": {},
    "D7": {"private_employee": True},
}
ALLOCATION = [
    ("U1", "D1", "etat"),
    ("U2", "D2", "action_logement"),
    ("U3", "D3", "collectivite"),
    ("U4", "D4", "bailleur"),
    ("U5", "D5", ""),
]
ORIENTATION = [
    ("U1", "etat"),
    ("U2", "action_logement"),
    ("U3", "collectivite"),
    ("U4", "bailleur"),
    ("U6", "bailleur"),
]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy("default-2026")


def units_with(changes: Overrides | None = None) -> pd.DataFrame:
    changes = changes or {}
    return units_of(*(unit(uid, **{**base, **changes.get(uid, {})}) for uid, base in UNITS.items()))


def demands_with(changes: Overrides | None = None) -> pd.DataFrame:
    changes = changes or {}
    return demands_of(
        *(demand(did, **{**base, **changes.get(did, {})}) for did, base in DEMANDS.items())
    )


def allocation_of(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["unit_id", "demand_id", "reservataire"])


def orientation_of(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["unit_id", "reservataire"])


def replaced(rows: list[tuple[str, str, str]], **by_unit: tuple[str, str]) -> list:
    """Replace the (demand, réservataire) of some units in the allocation rows."""
    return [(u, *by_unit[u]) if u in by_unit else (u, d, r) for u, d, r in rows]


def run(
    policy: Policy,
    *,
    units: Overrides | None = None,
    demands: Overrides | None = None,
    allocation: list[tuple[str, str, str]] | None = None,
    orientation: list[tuple[str, str]] | None = ORIENTATION,
    year: YearSoFar | None = None,
) -> Audit:
    return audit(
        units_with(units),
        demands_with(demands),
        policy,
        allocation_of(ALLOCATION if allocation is None else allocation),
        year,
        orientation=orientation_of(orientation) if orientation is not None else None,
        on=ROUND_DATE,
    )


def rule_ids(result: Audit) -> set[str]:
    return {v.rule_id for v in result.violations}


def only(result: Audit, rule_id: str) -> Violation:
    found = [v for v in result.violations if v.rule_id == rule_id]
    assert len(found) == 1, render_violations(result.violations)
    return found[0]


def soft(policy: Policy) -> Policy:
    return policy.model_copy(
        update={"quotas": policy.quotas.model_copy(update={"mode": QuotaMode.SOFT})}
    )


# ----------------------------------------------------------------------------------------------
# A valid round
# ----------------------------------------------------------------------------------------------


def test_valid_round_has_no_violation(policy: Policy) -> None:
    """The hand-made allocation meets every rule, with and without the orientation table."""
    assert run(policy).violations == ()
    assert run(policy, orientation=None).violations == ()
    assert (
        check(
            units_with(),
            demands_with(),
            policy,
            allocation_of(ALLOCATION),
            orientation=orientation_of(ORIENTATION),
            on=ROUND_DATE,
        )
        == []
    )


def test_counts_of_the_audit(policy: Policy) -> None:
    """The audit counts units, flux units, demands, rows and what they allocate."""
    assert run(policy).counts == {
        "units": 6,
        "flux_units": 5,
        "excluded_units": 1,
        "demands": 7,
        "allocations": 5,
        "unknown_rows": 0,
        "units_allocated": 5,
        "demands_allocated": 5,
    }


def test_extra_columns_and_missing_cells_are_tolerated(policy: Policy) -> None:
    """A score column is ignored and a missing réservataire cell reads as '' (excluded unit)."""
    table = allocation_of(ALLOCATION)
    table["score"] = 999
    table.loc[4, "reservataire"] = None
    result = check(units_with(), demands_with(), policy, table, on=ROUND_DATE)
    assert result == []


def test_missing_column_is_a_data_error(policy: Policy) -> None:
    """An allocation table without a reservataire column is refused as bad input."""
    table = allocation_of(ALLOCATION).drop(columns=["reservataire"])
    with pytest.raises(DataError, match="reservataire"):
        check(units_with(), demands_with(), policy, table, on=ROUND_DATE)


# ----------------------------------------------------------------------------------------------
# Structure: unknown ids, one-to-one
# ----------------------------------------------------------------------------------------------


def test_unknown_unit_and_demand(policy: Policy) -> None:
    """Rows naming an id absent from the round are reported with their row number."""
    rows = [*ALLOCATION, ("U99", "D6", "bailleur"), ("U6", "D99", "bailleur")]
    result = run(policy, allocation=rows)
    assert rule_ids(result) == {"unknown_unit", "unknown_demand"}
    u = only(result, "unknown_unit")
    assert (u.unit_id, u.demand_id, u.numbers) == ("U99", "D6", {"row": 6})
    d = only(result, "unknown_demand")
    assert (d.unit_id, d.demand_id, d.numbers) == ("U6", "D99", {"row": 7})
    assert result.counts["unknown_rows"] == 2


def test_ids_resolve_as_text_to_their_first_row() -> None:
    """Allocation ids find their row whether the round's ids are text, numbers or repeated."""
    from matching.checker import _positions

    wanted = np.array(["U2", "7", "U9", "U1"], dtype=object)
    text = pd.Series(["U1", "U2", "7"], dtype=object)
    assert _positions(wanted, text).tolist() == [1, 2, -1, 0]
    numbers = pd.Series([7, 8], dtype=object)  # a hand-made table with numbers for ids
    assert _positions(wanted, numbers).tolist() == [-1, 0, -1, -1]
    mixed = pd.Series(["U1", 7], dtype=object)
    assert _positions(wanted, mixed).tolist() == [-1, 1, -1, 0]
    repeated = pd.Series(["U2", "U1", "U2", "7"], dtype=object)
    assert _positions(wanted, repeated).tolist() == [0, 3, -1, 1]
    arrow = pd.Series(["U1", "U2", "7"], dtype="string")
    assert _positions(wanted, arrow).tolist() == [1, 2, -1, 0]


def test_unit_allocated_twice(policy: Policy) -> None:
    """A unit given to two households is one violation naming both demands."""
    # U3 also to D6 through collectivite: the floor reads 1 priority of 2 >= ceil(2/4) = 1, and
    # inside QPV 3 non-Q1 of 3, so nothing else breaks.
    result = run(policy, allocation=[*ALLOCATION, ("U3", "D6", "collectivite")])
    assert rule_ids(result) == {"one_household_per_unit"}
    v = only(result, "one_household_per_unit")
    assert v.unit_id == "U3" and v.demand_id is None
    assert v.numbers == {"allocations": 2, "demands": "D3, D6"}


def test_demand_allocated_twice(policy: Policy) -> None:
    """A household given two units is one violation naming both units."""
    # D3 also gets U6 through bailleur (oriented bailleur): bailleur floor 2 priority of 2;
    # outside QPV 1 Q1 of 4 >= ceil(4/4) = 1.
    result = run(policy, allocation=[*ALLOCATION, ("U6", "D3", "bailleur")])
    assert rule_ids(result) == {"one_unit_per_household"}
    v = only(result, "one_unit_per_household")
    assert v.demand_id == "D3" and v.unit_id is None
    assert v.numbers == {"allocations": 2, "units": "U3, U6"}


# ----------------------------------------------------------------------------------------------
# Eligibility of the allocated pairs (DOMAIN A2, A3)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("units", "demands", "expected"),
    [
        pytest.param(
            {},
            {"D4": {"annual_income_eur": 30000.0}},
            # category 1, PLUS ceiling 23,403 < 30,000
            {"income_ceiling": {"annual_income_eur": 30000.0, "ceiling_eur": 23403, "category": 1}},
            id="income",
        ),
        pytest.param(
            {"U4": {"surface_m2": 20.0}},
            {"D4": {"household_size": 3, "adults": 2, "children_under_14": 1}},
            # 3 persons: T3-T4 and at least 16 + 9 = 25 m2; the unit is a T2 of 20 m2
            {
                "typology": {"rooms": 2, "min_rooms": 3, "max_rooms": 4, "household_size": 3},
                "surface": {"surface_m2": 20.0, "minimum_m2": 25.0},
            },
            id="typology-and-surface",
        ),
        pytest.param(
            {},
            {"D4": {"monthly_resources_eur": 1000.0}},
            # (400 - 0) / 1,000 = 0.4 > 0.33
            {"rent_effort": {"effort": 0.4, "max_ratio": 0.33, "monthly_resources_eur": 1000.0}},
            id="rent-effort",
        ),
        pytest.param(
            {},
            {"D4": {"wished_communes": ("14341", "14366")}},
            {"location": {"commune_insee": "14118", "wished_communes": "14341, 14366"}},
            id="location",
        ),
        pytest.param(
            {},
            {"D4": {"needs_accessible": True, "annual_income_eur": 24000.0}},
            # two rules at once: not adapted, and 24,000 > 23,403
            {
                "accessibility": {"needs_accessible": "true", "accessible": "false"},
                "income_ceiling": {"ceiling_eur": 23403},
            },
            id="accessibility-and-income",
        ),
        pytest.param(
            {},
            {"D5": {"current_social_tenant": False}},
            # a mutation unit may only go to a current social tenant
            {"flux_exclusion": {"flux_excluded": "mutation"}},
            id="flux-exclusion",
        ),
    ],
)
def test_ineligible_pair(
    policy: Policy, units: Overrides, demands: Overrides, expected: dict[str, dict[str, Any]]
) -> None:
    """Each failed eligibility rule of an allocated pair is reported under its id, with values."""
    result = run(policy, units=units, demands=demands)
    assert rule_ids(result) == set(expected)
    for rule_id, numbers in expected.items():
        v = only(result, rule_id)
        pair = ("U5", "D5") if rule_id == "flux_exclusion" else ("U4", "D4")
        assert (v.unit_id, v.demand_id) == pair
        assert {k: v.numbers[k] for k in numbers} == numbers


def test_rent_effort_just_above_the_limit_is_shown_above_it(policy: Policy) -> None:
    """400 / 1,212.1 = 0.330006 is shown 0.33001 above 0.33, not '0.3300 above 0.33'."""
    v = only(run(policy, demands={"D4": {"monthly_resources_eur": 1212.1}}), "rent_effort")
    assert "rent effort 0.33001 above 0.33" in v.message, v.message
    assert v.numbers["effort"] > v.numbers["max_ratio"]


def test_income_just_above_the_ceiling_is_shown_above_it(policy: Policy) -> None:
    """23,403.40 > 23,403: the report shows the cents, not 'income 23,403 above ... 23,403'."""
    v = only(run(policy, demands={"D4": {"annual_income_eur": 23403.4}}), "income_ceiling")
    assert "income 23,403.40 EUR/year above the PLUS ceiling 23,403 EUR" in v.message, v.message


def test_income_message_shows_income_and_ceiling(policy: Policy) -> None:
    """The income message compares the income with the ceiling in words."""
    v = only(run(policy, demands={"D4": {"annual_income_eur": 30000.0}}), "income_ceiling")
    assert "30,000" in v.message and "23,403" in v.message and "PLUS" in v.message


# ----------------------------------------------------------------------------------------------
# Pools, réservataires of excluded units
# ----------------------------------------------------------------------------------------------


def test_household_outside_the_pool(policy: Policy) -> None:
    """A non-employee allocated through Action Logement is outside its pool."""
    result = run(policy, demands={"D2": {"private_employee": False}})
    assert rule_ids(result) == {"pool"}
    v = only(result, "pool")
    assert (v.unit_id, v.demand_id) == ("U2", "D2")
    # D2 is priority (category violences): pools etat, collectivite, bailleur
    assert v.numbers == {
        "reservataire": "action_logement",
        "demand_pools": "etat, collectivite, bailleur",
    }


def test_unknown_reservataire(policy: Policy) -> None:
    """A flux unit allocated through a réservataire the policy does not know is a pool breach."""
    # Without orientation: action_logement needs 1 more flux unit, and U6 is still free.
    rows = replaced(ALLOCATION, U2=("D2", "ville"))
    result = run(policy, allocation=rows, orientation=None)
    assert rule_ids(result) == {"pool"}
    assert only(result, "pool").numbers == {"reservataire": "ville"}


def test_state_contingent_takes_priority_households_only(policy: Policy) -> None:
    """A non-priority household through etat breaks its pool and the priority-only rule."""
    result = run(policy, demands={"D1": {"dalo": False}})
    assert rule_ids(result) == {"pool", "state_priority_only"}
    assert only(result, "state_priority_only").numbers == {
        "reservataire": "etat",
        "priority": "false",
    }


def test_explicit_pools_do_not_lift_the_state_priority_rule(policy: Policy) -> None:
    """An explicit pools list naming etat passes the pool, but not the priority-only rule."""
    result = run(policy, demands={"D1": {"dalo": False, "pools": ("etat",)}})
    assert rule_ids(result) == {"state_priority_only"}


def test_explicit_pools_do_not_lift_another_priority_condition(policy: Policy) -> None:
    """A réservataire for non-priority households only: an explicit list naming it is not enough.

    The solver keeps every pool condition on ``priority`` whatever the pools list
    (`matching.eligibility.proposable_pools`, which the pair table reads); the checker kept
    only the État's, so this allocation, which the solver can never make, passed.
    """
    reservataires = tuple(
        r.model_copy(update={"pool": (Condition(field="priority", op="eq", value=False),)})
        if r.id == "collectivite"
        else r
        for r in policy.reservataires
    )
    non_priority_share = policy.model_copy(update={"reservataires": reservataires})
    result = run(non_priority_share, demands={"D3": {"dalo": True, "pools": ("collectivite",)}})
    assert rule_ids(result) == {"pool"}
    assert (only(result, "pool").unit_id, only(result, "pool").demand_id) == ("U3", "D3")


def test_excluded_unit_through_a_reservataire(policy: Policy) -> None:
    """An excluded unit allocated through a réservataire is reported (it belongs to none)."""
    # bailleur floor: D4 priority, D5 not: 1 of 2 >= ceil(2/4) = 1, still met.
    result = run(policy, allocation=replaced(ALLOCATION, U5=("D5", "bailleur")))
    assert rule_ids(result) == {"flux_exclusion_reservataire"}
    v = only(result, "flux_exclusion_reservataire")
    assert (v.unit_id, v.numbers) == (
        "U5",
        {"reservataire": "bailleur", "flux_excluded": "mutation"},
    )


def test_flux_unit_without_reservataire(policy: Policy) -> None:
    """A flux unit allocated with no réservataire is reported."""
    result = run(policy, allocation=replaced(ALLOCATION, U3=("D3", "")))
    assert rule_ids(result) == {"flux_exclusion_reservataire"}
    assert only(result, "flux_exclusion_reservataire").unit_id == "U3"


# ----------------------------------------------------------------------------------------------
# Orientation and flux bands (DOMAIN A4)
# ----------------------------------------------------------------------------------------------


def test_allocation_through_another_reservataire_than_the_orientation(policy: Policy) -> None:
    """Swapping the orientations of U3 and U4 makes both allocations disagree with them."""
    orientation = [*ORIENTATION[:2], ("U3", "bailleur"), ("U4", "collectivite"), ORIENTATION[4]]
    result = run(policy, orientation=orientation)
    assert rule_ids(result) == {"orientation"}
    found = {(v.unit_id, v.numbers["oriented_to"]) for v in result.violations}
    assert found == {("U3", "bailleur"), ("U4", "collectivite")}


def test_orientation_table_itself(policy: Policy) -> None:
    """Unknown unit, excluded unit oriented, unit oriented twice, flux unit not oriented."""
    orientation = [*ORIENTATION[:4], ("U1", "etat"), ("U5", "bailleur"), ("U99", "etat")]
    result = run(policy, orientation=orientation)
    assert rule_ids(result) == {"orientation"}
    found = {(v.unit_id, v.message.split(" (")[0]) for v in result.violations}
    assert ("U99", "orientation row 7 names unit 'U99', not a unit of the round") in found
    assert ("U5", "unit excluded from the flux") in found
    assert ("U1", "flux unit oriented 2 times") in found
    assert ("U6", "flux unit not oriented") in found
    assert len(result.violations) == 4


def test_orientation_listing_excluded_units_with_an_empty_reservataire(policy: Policy) -> None:
    """An excluded unit listed with an empty réservataire is not oriented: no violation.

    An orientation table of every unit, '' for the excluded one (as in the allocation), is
    valid; a flux unit with '' is reported once as not oriented, not as oriented to ''.
    """
    assert run(policy, orientation=[*ORIENTATION, ("U5", "")]).ok
    result = run(policy, orientation=[*ORIENTATION[:4], ("U6", ""), ("U5", "")])
    assert rule_ids(result) == {"orientation"}
    violation = only(result, "orientation")
    assert violation.unit_id == "U6"
    assert violation.message == "flux unit not oriented: orientation row 5 names no réservataire"
    # U1's allocation through etat is judged against its orientation, never against ''
    result = run(policy, orientation=[("U1", ""), *ORIENTATION[1:]])
    assert only(result, "orientation").message.startswith("flux unit not oriented")
    assert rule_ids(result) == {"orientation", "flux_band"}  # etat: 0 units, band [1, 2]


def test_orientation_to_unknown_reservataire(policy: Policy) -> None:
    """A flux unit oriented to a réservataire the policy does not know is reported."""
    result = run(policy, orientation=[*ORIENTATION[:4], ("U6", "ville")])
    assert rule_ids(result) == {"orientation"}
    assert only(result, "orientation").numbers == {"reservataire": "ville"}


def test_band_exceeded(policy: Policy) -> None:
    """Orienting U6 to collectivite gives it 2 units, above its band [1, 1]."""
    result = run(policy, orientation=[*ORIENTATION[:4], ("U6", "collectivite")])
    assert rule_ids(result) == {"flux_band"}
    assert only(result, "flux_band").numbers == {
        "reservataire": "collectivite", "oriented": 2, "low": 1, "high": 1,
        "target": 1.0, "target_exact": "1",
    }  # fmt: skip


def test_band_not_reached(policy: Policy) -> None:
    """Giving U1 to the landlord leaves etat 0 units, below its band [1, 2] (target 5/4)."""
    # D1 is priority: the bailleur floor reads 2 of 2.
    result = run(
        policy,
        allocation=replaced(ALLOCATION, U1=("D1", "bailleur")),
        orientation=[("U1", "bailleur"), *ORIENTATION[1:]],
    )
    assert rule_ids(result) == {"flux_band"}
    assert only(result, "flux_band").numbers == {
        "reservataire": "etat", "oriented": 0, "low": 1, "high": 2,
        "target": 1.25, "target_exact": "5/4",
    }  # fmt: skip


def test_bands_without_orientation(policy: Policy) -> None:
    """Without orientation, allocations above a band's top, or too few free units, are caught."""
    # U6 to D6 through collectivite: 2 collectivite allocations > high 1.
    above = run(policy, allocation=[*ALLOCATION, ("U6", "D6", "collectivite")], orientation=None)
    assert rule_ids(above) == {"flux_band"}
    assert only(above, "flux_band").numbers["allocated"] == 2
    # Every flux unit through bailleur: etat, collectivite and action_logement each miss 1 (low
    # ends 1, 1, 1) but no flux unit is left to orient to them: 3 needed > 0 free.
    rows = [
        ("U1", "D1", "bailleur"), ("U2", "D2", "bailleur"), ("U3", "D3", "bailleur"),
        ("U4", "D4", "bailleur"), ("U5", "D5", ""), ("U6", "D6", "bailleur"),
    ]  # fmt: skip
    short = run(policy, allocation=rows, orientation=None)
    assert rule_ids(short) == {"flux_band"}
    assert only(short, "flux_band").numbers == {"needed": 3, "unallocated_flux_units": 0}


# ----------------------------------------------------------------------------------------------
# Quotas (DOMAIN A4)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule_id", "demands", "by_unit", "numbers"),
    [
        # collectivite: U3 to D6 (not priority): 0 of 1; target 1/4: ceil((1 x 1 - 4 x 0) / 4) = 1
        ("priority_floor_collectivite", {}, {"U3": ("D6", "collectivite")},
         {"base": 1, "counted": 0, "limit": 1, "shortfall": 1}),
        # action_logement: U2 to D7 (employee, not priority): 0 of 1 -> shortfall 1
        ("priority_floor_action_logement", {}, {"U2": ("D7", "action_logement")},
         {"base": 1, "counted": 0, "limit": 1, "shortfall": 1}),
        # bailleur: U4 to D6: 0 of 1 -> shortfall 1 (U5 has no réservataire, so not in the base)
        ("priority_floor_bailleur", {}, {"U4": ("D6", "bailleur")},
         {"base": 1, "counted": 0, "limit": 1, "shortfall": 1}),
        # outside QPV: D1 earns 15,000 (not Q1): 0 of 3 (U1, U2, U5); ceil(3/4) = 1 -> 1
        ("mixity_outside_qpv", {"D1": {"annual_income_eur": 15000.0}}, {},
         {"base": 3, "counted": 0, "limit": 1, "shortfall": 1}),
        # inside QPV: D3 and D4 earn 8,000 (Q1): non-Q1 0 of 2; target 1/2: ceil(2/2) = 1 -> 1
        ("mixity_inside_qpv",
         {"D3": {"annual_income_eur": 8000.0}, "D4": {"annual_income_eur": 8000.0}}, {},
         {"base": 2, "counted": 0, "limit": 1, "shortfall": 1}),
    ],
)  # fmt: skip
def test_each_default_quota_breached(
    policy: Policy,
    rule_id: str,
    demands: Overrides,
    by_unit: dict[str, tuple[str, str]],
    numbers: dict[str, int],
) -> None:
    """Each default quota rule, breached alone, is one violation with the exact shortfall."""
    result = run(policy, demands=demands, allocation=replaced(ALLOCATION, **by_unit))
    assert rule_ids(result) == {rule_id}
    v = only(result, rule_id)
    assert {k: v.numbers[k] for k in numbers} == numbers
    assert v.numbers["prior_base"] == 0 and v.numbers["scope"] == ""
    assert f"short by {numbers['shortfall']}" in v.message


def test_year_so_far_breaks_a_valid_round(policy: Policy) -> None:
    """Earlier rounds' tallies are added: 1 Q1 of 3 this round + 0 of 9 before misses by 2."""
    year = YearSoFar(tallies={"mixity_outside_qpv": {"": Tally(base=9, counted=0)}})
    result = run(policy, year=year)
    assert rule_ids(result) == {"mixity_outside_qpv"}
    # base 3 + 9 = 12, counted 1 + 0 = 1; needs ceil(12 / 4) = 3; shortfall 3 - 1 = 2
    assert only(result, "mixity_outside_qpv").numbers == {
        "scope": "", "base": 3, "counted": 1, "prior_base": 9, "prior_counted": 0,
        "target": 0.25, "limit": 3, "shortfall": 2,
    }  # fmt: skip


def test_quota_message_gives_a_share_with_decimals_in_full(policy: Policy) -> None:
    """A 12.5 % floor is said '12.5%' in the violation, not rounded to '12%'."""
    rules = tuple(
        r.model_copy(update={"target": 0.125}) if r.id == "mixity_outside_qpv" else r
        for r in policy.quotas.rules
    )
    eighth = policy.model_copy(update={"quotas": policy.quotas.model_copy(update={"rules": rules})})
    result = run(eighth, demands={"D1": {"annual_income_eur": 15000.0}})
    assert (
        "needs at least 12.5% of 3, i.e. at least 1" in only(result, "mixity_outside_qpv").message
    )


def test_year_so_far_repairs_a_short_round(policy: Policy) -> None:
    """A round with no Q1 outside QPV is fine when earlier rounds made up for it."""
    demands = {"D1": {"annual_income_eur": 15000.0}}
    assert rule_ids(run(policy, demands=demands)) == {"mixity_outside_qpv"}
    # 0 of 3 this round + 1 of 1 before = 1 of 4 >= ceil(4/4) = 1
    year = YearSoFar(tallies={"mixity_outside_qpv": {"": Tally(base=1, counted=1)}})
    assert run(policy, demands=demands, year=year).violations == ()


def test_year_so_far_moves_the_flux_bands(policy: Policy) -> None:
    """With etat already at its yearly share, orienting one more unit to it breaks its band."""
    # 15 earlier flux units + 5 = 20; etat target 0.25 x 20 - 5 = 0 -> band [0, 0]; the others
    # get collectivite 4 - 3 = 1 -> [1, 1] and action_logement 5 - 4 = 1 -> [1, 1].
    year = YearSoFar(
        flux_units=15,
        oriented={"etat": 5, "collectivite": 3, "action_logement": 4, "etat_agents": 1},
    )
    result = run(policy, year=year)
    assert rule_ids(result) == {"flux_band"}
    v = only(result, "flux_band")
    assert (v.numbers["reservataire"], v.numbers["oriented"], v.numbers["high"]) == ("etat", 1, 0)


def test_audit_takes_a_policy_name_an_iso_date_and_a_mapping_as_solve_does(
    policy: Policy,
) -> None:
    """The checker takes the forms `solve` takes; anything else is a TypeError naming it.

    An ISO date, a policy name and a year-so-far mapping each failed deep in the facts or the
    flux with an AttributeError (``'str' object has no attribute 'year'``).
    """
    units, demands = units_with(), demands_with()
    allocation, orientation = allocation_of(ALLOCATION), orientation_of(ORIENTATION)
    year = {"flux_units": 15, "oriented": {"etat": 5, "collectivite": 3}}
    typed = audit(units, demands, policy, allocation, YearSoFar.model_validate(year),
                  orientation=orientation, on=ROUND_DATE)  # fmt: skip
    plain = audit(units, demands, "default-2026", allocation, year,
                  orientation=orientation, on=ROUND_DATE.isoformat())  # fmt: skip
    assert rule_ids(plain) == rule_ids(typed) == {"flux_band"}
    assert plain == typed
    assert check(units, demands, "default-2026", allocation, on="2026-03-31") == []
    for kwargs, said in (
        ({"on": "31/03/2026"}, "on: '31/03/2026' is not a date YYYY-MM-DD"),
        ({"on": None}, "on: the round's date, a date or an ISO date string, not None"),
        ({"on": 20260331}, "on: a date or an ISO date string, not int"),
        ({"policy": 3}, "policy: a Policy, a bundled name or a path, not int"),
        ({"year_so_far": [1]}, "year_so_far: a YearSoFar or a mapping, not list"),
    ):
        arguments: dict[str, Any] = {"policy": policy, "on": ROUND_DATE, **kwargs}
        with pytest.raises(TypeError, match=re.escape(said)):
            audit(units, demands, arguments.pop("policy"), allocation, **arguments)
    with pytest.raises(DataError, match=r"year_so_far: file, field 'oriented\.nobody'"):
        nobody = {"flux_units": 1, "oriented": {"nobody": 1}}
        audit(units, demands, policy, allocation, nobody, on=ROUND_DATE)


def test_allocation_and_orientation_as_rows_are_tables_and_other_forms_name_them(
    policy: Policy,
) -> None:
    """Rows as mappings judge as the DataFrame does; None or a string is a TypeError naming it.

    Both failed with an AttributeError on ``.columns``, where the units and demands are taken
    as lists of rows.
    """
    units, demands = units_with(), demands_with()
    allocation, orientation = allocation_of(ALLOCATION), orientation_of(ORIENTATION)
    framed = audit(units, demands, policy, allocation, orientation=orientation, on=ROUND_DATE)
    rows = audit(units, demands, policy, allocation.to_dict("records"),
                 orientation=orientation.to_dict("records"), on=ROUND_DATE)  # fmt: skip
    assert rows == framed
    empty = audit(units, demands, policy, [], on=ROUND_DATE)
    assert empty.counts["allocations"] == 0
    said = "a DataFrame or a list of rows as mappings, not"
    for bad in (None, "U1,D1,etat"):
        with pytest.raises(TypeError, match=re.escape(f"allocation: {said}")):
            audit(units, demands, policy, bad, on=ROUND_DATE)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=re.escape(f"orientation: {said} list")):
        audit(units, demands, policy, allocation, orientation=[1], on=ROUND_DATE)  # type: ignore[list-item]


def test_audit_refuses_a_round_in_another_year_than_the_policys(policy: Policy) -> None:
    """A 2027 round judged under the 2026 policy: refused, as `solve` and `matching check` do.

    The checker judged it with the 2026 Q1 threshold and ceilings without a word.
    """
    units, demands = units_with(), demands_with()
    allocation = allocation_of(ALLOCATION)
    said = "on: 2027-03-31: policy 'default-2026' is for 2026, the round for 2027"
    with pytest.raises(PolicyError, match=re.escape(said)):
        audit(units, demands, policy, allocation, on=dt.date(2027, 3, 31))
    with pytest.raises(PolicyError, match=re.escape(said)):
        check(units, demands, policy, allocation, on="2027-03-31")


def test_tables_solve_accepts_get_the_same_verdict_in_any_form(policy: Policy) -> None:
    """Tables that `solve` validates are validated here too, so any form judges alike.

    Lists as ``;``-joined text were read character by character (a false ``location``
    violation: "not among the wished communes (1, 4, 1, 1, 8, ;, ...)") and booleans as text
    ("non", "false") counted as true (wrong quotas and scores), without a word.
    """
    wishes = {"D2": {"wished_communes": ("14118", "14027")}}
    units, demands = units_with(), demands_with(wishes)
    allocation, orientation = allocation_of(ALLOCATION), orientation_of(ORIENTATION)

    def judged(u: Any, d: Any) -> Audit:
        return audit(u, d, policy, allocation, orientation=orientation, on=ROUND_DATE)

    expected = judged(units, demands)
    assert expected.violations == ()
    as_text = demands.map(cell_text).assign(dalo=demands["dalo"].map({True: "oui", False: "non"}))
    assert as_text.loc[1, "wished_communes"] == "14118;14027"
    facts = derive_facts(demands, policy, ROUND_DATE).assign(score=1)  # a solve folder's
    for u, d in (
        (units.map(cell_text), as_text),
        (units.to_dict("records"), demands.to_dict("records")),
        (units, facts),
    ):
        assert judged(u, d) == expected
    with pytest.raises(DataError, match=r"demands: row 3, field 'dalo', value 'peut-être'"):
        judged(units, as_text.assign(dalo=["oui", "non", "peut-être", "oui", "non", "non", "non"]))
    late = units.assign(released_on=pd.Timestamp("2026-04-01"))
    with pytest.raises(DataError, match=r"units: row 1, field 'released_on'.*in the future"):
        judged(late, demands)
    with canonical_tables(units, demands):  # vouched for: taken as they are, for speed
        assert judged(units, demands) == expected


def test_soft_mode_reports_shortfall_without_violation(policy: Policy) -> None:
    """In soft mode a missed quota is no violation; its shortfall and weighted cost are reported."""
    demands = {"D3": {"annual_income_eur": 8000.0}, "D4": {"annual_income_eur": 8000.0}}
    result = run(soft(policy), demands=demands)
    assert result.violations == ()
    (missed,) = result.shortfalls()
    assert (missed.rule_id, missed.shortfall, missed.total, missed.limit) == (
        "mixity_inside_qpv", 1, Tally(base=2, counted=0), 1,
    )  # fmt: skip
    # stage shortfall = weight 1000 x 1
    assert result.stages[Stage.SHORTFALL] == 1000
    hard = run(policy, demands=demands)
    assert hard.stages[Stage.SHORTFALL] == 0
    assert rule_ids(hard) == {"mixity_inside_qpv"}


def test_count_floor_judges_groups_without_allocations(policy: Policy) -> None:
    """A count floor scoped by landlord misses its whole target in a landlord with no allocation."""
    rule = QuotaRule(
        id="two_priority_per_landlord", label="At least 2 priority allocations per landlord",
        bound=Bound.FLOOR, measure=Measure.COUNT, target=2,
        count=(Condition(field="demand.priority", op="eq", value=True),), scope="unit.bailleur",
    )  # fmt: skip
    custom = policy.model_copy(
        update={"quotas": policy.quotas.model_copy(update={"rules": (rule,)})}
    )
    # U6 (vacant) belongs to landlord B9: 0 priority allocations there, 2 needed.
    result = run(custom, units={"U6": {"bailleur": "B9"}})
    assert rule_ids(result) == {"two_priority_per_landlord"}
    v = only(result, "two_priority_per_landlord")
    assert (v.numbers["scope"], v.numbers["shortfall"]) == ("B9", 2)
    # B1 has D1, D2, D3, D4 priority: 4 >= 2.
    outcomes = {o.scope: o.shortfall for o in result.quotas}
    assert outcomes == {"B1": 0, "B9": 2}


def test_quota_outcomes_per_rule_and_group(policy: Policy) -> None:
    """quota_outcomes lists every rule with its round and total tallies and its limit."""
    facts = derive_facts(demands_with(), policy, ROUND_DATE)
    outcomes = quota_outcomes(units_with(), facts, policy, allocation_of(ALLOCATION))
    table = {o.rule_id: (o.round.base, o.round.counted, o.limit, o.shortfall) for o in outcomes}
    assert table == {
        "priority_floor_collectivite": (1, 1, 1, 0),
        "priority_floor_action_logement": (1, 1, 1, 0),
        "priority_floor_bailleur": (1, 1, 1, 0),
        "mixity_outside_qpv": (3, 1, 1, 0),  # ceil(3/4) = 1
        "mixity_inside_qpv": (2, 2, 1, 0),  # ceil(2/2) = 1
    }


# ----------------------------------------------------------------------------------------------
# Objective stages (DOMAIN A5)
# ----------------------------------------------------------------------------------------------


def test_objective_values_by_hand(policy: Policy) -> None:
    """Stages: no shortfall cost in hard mode, 5 allocations, scores summed by hand."""
    facts = derive_facts(demands_with(), policy, ROUND_DATE)
    values = objective_values(units_with(), facts, policy, allocation_of(ALLOCATION))
    # Scores at 2026-03-31: seniority 12 months each, except D3 (36 months, +20 beyond 30).
    # D1 12 + DALO 50 = 62; D2 12 + category 40 = 52; D3 36 + 20 + 40 = 96; D4 12 + 50 = 62;
    # D5 12. Total 62 + 52 + 96 + 62 + 12 = 284.
    assert values == {Stage.SHORTFALL: 0, Stage.ALLOCATIONS: 5, Stage.SCORE: 284}
    assert list(values) == list(policy.objective.stages)
    assert run(policy).stages == values


def test_objective_follows_the_policy_stage_order(policy: Policy) -> None:
    """Only the stages the policy lists are returned, in its order."""
    custom = policy.model_copy(
        update={
            "objective": policy.objective.model_copy(
                update={"stages": (Stage.SCORE, Stage.ALLOCATIONS)}
            )
        }
    )
    facts = derive_facts(demands_with(), custom, ROUND_DATE)
    values = objective_values(units_with(), facts, custom, allocation_of(ALLOCATION))
    assert list(values.items()) == [(Stage.SCORE, 284), (Stage.ALLOCATIONS, 5)]


def test_raise_if_violations(policy: Policy) -> None:
    """The solver's self-check raises CheckFailedError listing every violation."""
    run(policy).raise_if_violations()
    bad = run(policy, demands={"D4": {"annual_income_eur": 30000.0}})
    with pytest.raises(CheckFailedError, match=r"income_ceiling.*unit U4, demand D4"):
        bad.raise_if_violations("solver result")


# ----------------------------------------------------------------------------------------------
# Independence
# ----------------------------------------------------------------------------------------------


def test_checker_never_imports_the_solver() -> None:
    """Importing the checker and the KPIs loads neither ortools nor matching.solver."""
    code = (
        "import sys, matching.checker, matching.kpis; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'ortools' "
        "or m == 'matching.solver' or m.startswith('matching.solver.')]; "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
