"""Hand-made rounds under the full default policy, with the optimum worked out in comments.

Round date 2026-03-31, default grid (DOMAIN A7): seniority 1 point per month since the first
filing, +20 beyond 30 months, DALO +50, one L441-1 category +40, eviction threat +20, single
parent +5, over-occupied +15, disabled member +15. Units are T2 PLUS, 45 m2, 400 EUR in Caen and
households one adult earning 15,000 EUR a year (15,000 per CU: not Q1, the threshold being
10,656) unless said otherwise.

Flux bands (A4) with n flux units and no earlier round: t_r = share_r x n, band
[floor(t_r), ceil(t_r)]; shares etat 0.25, etat_agents 0.05, collectivite 0.20,
action_logement 0.25, the landlord the rest.
"""

from __future__ import annotations

import pytest

from matching.exceptions import InfeasibleError
from matching.flux import YearSoFar
from matching.policy.quotas import Tally
from tests.factories import demand, demands_of, unit, units_of
from tests.solver.support import (
    POLICY,
    default_rule,
    filed,
    orientation_counts,
    oriented,
    rows_of,
    rule,
    solve_checked,
    violated_rules,
    with_rules,
    with_shares,
)


def test_mixity_changes_the_optimal_allocation() -> None:
    """Outside QPV one Q1 household in two is required: P1 + PQ (192) instead of P1 + P2 (248)."""
    # Two flux units outside QPV: bands etat 0.5 -> [0, 1], etat_agents 0.1 -> [0, 1],
    # collectivite 0.4 -> [0, 1], action_logement 0.5 -> [0, 1]; the landlord takes the rest.
    # Every household is DALO (priority), so the priority floors hold whatever the réservataire.
    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(
        demand("P1", dalo=True, filed_on=filed(60)),  # 60 + 20 + 50 = 130
        demand("P2", dalo=True, filed_on=filed(48)),  # 48 + 20 + 50 = 118
        demand("PQ", dalo=True, annual_income_eur=9000.0),  # 12 + 50 = 62, Q1 (9,000 < 10,656)
    )
    # Without mixity_outside_qpv: P1 + P2 = 248.
    free_policy = with_rules(
        POLICY, *(r for r in POLICY.quotas.rules if r.id != "mixity_outside_qpv")
    )
    free = solve_checked(units, demands, free_policy)
    assert free.stage_values == {"allocations": 2, "score": 248}
    assert {d for _, d, _ in rows_of(free)} == {"P1", "P2"}
    # With it: 2 allocations outside QPV need ceil(0.25 x 2) = 1 Q1: P1 + PQ = 130 + 62 = 192
    # (P2 + PQ = 180 is worse; one allocation alone is fewer allocations).
    result = solve_checked(units, demands, POLICY)
    assert result.stage_values == {"allocations": 2, "score": 192}
    assert {d for _, d, _ in rows_of(result)} == {"P1", "PQ"}
    assert violated_rules(units, demands, POLICY, rows_of(free), oriented(free)) == {
        "mixity_outside_qpv"
    }


def test_flux_bands_force_the_orientation() -> None:
    """Four flux units: one must go to the État and one to Action Logement, both left vacant."""
    # Bands: etat 1 -> [1, 1], etat_agents 0.2 -> [0, 1], collectivite 0.8 -> [0, 1],
    # action_logement 1 -> [1, 1]. Households: P (DALO, Q1 at 8,000: 12 + 50 = 62), A (filed 120
    # months: 140), B (filed 100 months: 120); nobody is a private employee or a State agent.
    units = units_of(*(unit(f"U{i}") for i in range(1, 5)))
    demands = demands_of(
        demand("P", dalo=True, annual_income_eur=8000.0),
        demand("A", filed_on=filed(120)),
        demand("B", filed_on=filed(100)),
    )
    # Without bands (every share 0, all four units to the landlord): P, A, B through the
    # landlord; priority 1 of 3 >= ceil(0.75) = 1 and Q1 1 of 3 >= ceil(0.75) = 1: 322.
    free = solve_checked(units, demands, with_shares(POLICY))
    assert free.stage_values == {"allocations": 3, "score": 322}
    # With the bands: the units oriented to etat and action_logement can hold only P (etat) and
    # nobody (action_logement). A or B alone through collectivite or the landlord breaks that
    # réservataire's priority floor (0 of 1 < ceil(0.25) = 1). The landlord has at most
    # 4 - 1 - 1 = 2 units: P + A through the landlord (1 priority of 2 >= 1; 1 Q1 of 2 >= 1) is
    # the only way to 2 allocations, and A (140) beats B (120): 62 + 140 = 202. P through etat
    # would leave A and B without a priority household beside them: 1 allocation.
    result = solve_checked(units, demands, POLICY)
    assert result.stage_values == {"allocations": 2, "score": 202}
    assert {(d, r) for _, d, r in rows_of(result)} == {("P", "bailleur"), ("A", "bailleur")}
    counts = orientation_counts(result)
    assert (counts.get("etat", 0), counts.get("action_logement", 0)) == (1, 1)
    assert (counts.get("bailleur", 0), counts.get("collectivite", 0)) == (2, 0)
    assert counts.get("etat_agents", 0) == 0


def test_year_so_far_forces_the_landlord_and_a_priority_household() -> None:
    """After 5 landlord allocations with 1 priority, the one unit goes to P through the landlord."""
    # One flux unit in a QPV: every band [0, 1]. N1 (State agent, filed 120 months: 140), P
    # (category sans_logement, filed this month: 40); both above Q1, so QPV mixity (non-Q1 >=
    # 50 %) always holds.
    units = units_of(unit("U1", qpv=True))
    demands = demands_of(
        demand("N1", filed_on=filed(120), state_agent=True),
        demand("P", filed_on=filed(0), priority_categories=("sans_logement",)),
    )
    # No earlier round: N1 through etat_agents (no priority floor on that pool): 140.
    result = solve_checked(units, demands, POLICY)
    assert rows_of(result) == {("U1", "N1", "etat_agents")}
    # Earlier rounds: 20 flux units, 5 to the landlord, who allocated them with 1 to a priority
    # household: 4 x 1 < 5 already. Through the landlord with k allocations, c priority,
    # 4 x (1 + c) >= 5 + k needs c = k = 1 (8 >= 6): P through the landlord (N1 would give
    # 4 >= 6, nothing 4 >= 5). Bands with 21 flux units so far: etat 5.25 - 5, etat_agents
    # 1.05 - 1, collectivite 4.2 - 4, action_logement 5.25 - 5: all [0, 1], nothing forced.
    year = YearSoFar(
        flux_units=20,
        oriented={"etat": 5, "etat_agents": 1, "collectivite": 4, "action_logement": 5,
                  "bailleur": 5},
        tallies={"priority_floor_bailleur": {"": Tally(base=5, counted=1)}},
    )  # fmt: skip
    result = solve_checked(units, demands, POLICY, year=year)
    assert rows_of(result) == {("U1", "P", "bailleur")}
    assert result.stage_values == {"allocations": 1, "score": 40}


def test_excluded_units_and_the_grid_arithmetic() -> None:
    """An ANRU unit goes to the ANRU household, a flux unit to the best priority household."""
    # U1 excluded from the flux (ANRU rehousing) and U2 in the flux, both in a QPV (non-Q1 >= 50 %
    # of the QPV allocations; excluded units count there, but in no priority floor).
    units = units_of(unit("U1", qpv=True, flux_excluded="anru"), unit("U2", qpv=True))
    demands = demands_of(
        # R: ANRU, single parent with one child (2 persons, T2-T3), filed 40 months ago,
        # threatened with eviction: 40 + 20 + 20 + 5 = 85. Income 15,000 / (1 + 0.3) = 11,538
        # per CU: not Q1.
        demand(
            "R",
            anru=True,
            household_size=2,
            adults=1,
            children_under_14=1,
            dependants=1,
            single_parent=True,
            eviction_threat=True,
            filed_on=filed(40),
        ),
        # D: DALO, over-occupied, filed 24 months ago: 24 + 50 + 15 = 89.
        demand("D", dalo=True, overcrowded=True, filed_on=filed(24)),
        # N: plain, filed 100 months ago: 120; not priority, so U2 cannot go to N (one flux
        # unit: every band [0, 1], and each réservataire but etat_agents has a priority floor
        # of ceil(0.25 x 1) = 1, etat's pool being priority households only).
        demand("N", filed_on=filed(100)),
    )
    # U1 only to R (A3); U2 to D: 2 allocations, 85 + 89 = 174. QPV: 2 non-Q1 of 2 >= 1.
    result = solve_checked(units, demands, POLICY)
    assert result.stage_values == {"allocations": 2, "score": 174}
    rows = rows_of(result)
    assert ("U1", "R", "") in rows
    assert {d for u, d, _ in rows if u == "U2"} == {"D"}
    assert "U1" not in oriented(result)


def test_bands_whose_floors_exceed_the_round_are_clipped_not_in_conflict() -> None:
    """Two floors needing four units of a two-unit round: the État, first, takes both.

    Earlier this year: 6 flux units, 2 oriented to collectivite and 1 to etat_agents. With 2
    more, flux so far 8: etat 0.25 x 8 - 0 = 2, action_logement 2, collectivite 1.6 - 2 < 0,
    etat_agents 0.4 - 1 < 0: the floors (2 and 2) sum to 4 > 2. The round used to be
    infeasible, naming both bands; clipped to what remains, furthest behind first (equal
    targets: policy order), the bands are etat [2, 2] and action_logement [0, 2].
    """
    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(demand("P", dalo=True, annual_income_eur=8000.0))  # Q1: mixity holds
    year = YearSoFar(flux_units=6, oriented={"collectivite": 2, "etat_agents": 1})
    result = solve_checked(units, demands, POLICY, year=year)
    assert result.status == "OPTIMAL"
    assert orientation_counts(result) == {"etat": 2}
    assert {(d, r) for _, d, r in rows_of(result)} == {("P", "etat")}


# A researcher's rule: at least one allocation this year through Action Logement.
AL_AT_LEAST_ONE = rule(
    "action_logement_at_least_one", "floor", "count", 1,
    count=[{"field": "reservataire", "value": "action_logement"}],
)  # fmt: skip


def test_quota_and_band_in_conflict_are_named() -> None:
    """A count floor on Action Logement against its exhausted band: both are named."""
    # Earlier: 6 flux units, etat 2, action_logement 2, collectivite 1 oriented. Flux so far 8:
    # etat 2 - 2 = 0 -> [0, 0], action_logement 2 - 2 = 0 -> [0, 0], collectivite 1.6 - 1 = 0.6
    # -> [0, 1], etat_agents 0.4 -> [0, 1]. The count floor needs one unit through action_logement
    # (E is a priority private employee, so its priority floor would hold): infeasible.
    policy = with_rules(POLICY, *POLICY.quotas.rules, AL_AT_LEAST_ONE)
    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(
        demand("E", private_employee=True, dalo=True, annual_income_eur=8000.0)  # 62, Q1
    )
    year = YearSoFar(flux_units=6, oriented={"etat": 2, "action_logement": 2, "collectivite": 1})
    with pytest.raises(InfeasibleError) as caught:
        solve_checked(units, demands, policy, year=year)
    assert set(caught.value.rule_ids) == {
        "flux_band[action_logement]", "action_logement_at_least_one",
    }  # fmt: skip
    # Soft mode gets E housed (through the landlord or collectivite) and misses the count by 1.
    soft_result = caught.value.soft_result
    short = {k: v for k, v in soft_result.shortfalls.items() if v}  # type: ignore[attr-defined]
    assert short == {"action_logement_at_least_one": 1}
    assert soft_result.stage_values == {  # type: ignore[attr-defined]
        "shortfall": 1000, "allocations": 1, "score": 62,
    }  # fmt: skip


def test_landlord_floor_replaces_the_weakest_household() -> None:
    """A landlord-only round under the landlord's floor houses 1 priority in 4 (ceil(0.25 x 4))."""
    # Every share 0: the four units go to the landlord. Households: four plain ones filed 100 to
    # 130 months ago (120, 130, 140, 150 points) and one priority P (40). Without the floor the
    # four plain ones: 540. With it, 4 allocations need ceil(0.25 x 4) = 1 priority: P replaces
    # the weakest (120): 130 + 140 + 150 + 40 = 460.
    policy = with_shares(with_rules(POLICY, default_rule("priority_floor_bailleur")))
    units = units_of(*(unit(f"U{i}") for i in range(1, 5)))
    plain = [demand(f"N{m}", filed_on=filed(m)) for m in (100, 110, 120, 130)]
    prio = demand("P", filed_on=filed(0), priority_categories=("violences",))
    free = solve_checked(units, demands_of(*plain, prio), with_shares(with_rules(POLICY)))
    assert free.stage_values == {"allocations": 4, "score": 540}
    result = solve_checked(units, demands_of(*plain, prio), policy)
    assert result.stage_values == {"allocations": 4, "score": 460}
    assert {d for _, d, _ in rows_of(result)} == {"N110", "N120", "N130", "P"}


def test_floors_that_together_exceed_the_round_go_to_the_furthest_behind() -> None:
    """Two réservataires each owed a unit, one unit: the État (first in policy order) gets it.

    20 flux units with this one: etat 0.25 x 20 - 4 = 1, action_logement 0.25 x 20 - 4 = 1,
    etat_agents 1 - 1 = 0, collectivite 4 - 4 = 0 (the landlord had 6, above its share). Each
    floor of 1 fits the round alone, not both: the round was infeasible in every mode, as were
    twelve rounds of a weekly simulated year. Now the floors together are clipped to the
    round's one unit, the réservataires furthest behind first (a tie: policy order).
    """
    year = YearSoFar(
        flux_units=19,
        oriented={"etat": 4, "action_logement": 4, "etat_agents": 1, "collectivite": 4},
    )
    units = units_of(unit("U1"))
    demands = demands_of(demand("P", dalo=True, annual_income_eur=8000.0), demand("A"))
    result = solve_checked(units, demands, POLICY, year=year)
    assert result.status == "OPTIMAL"
    assert {(d, r) for _, d, r in rows_of(result)} == {("P", "etat")}
    # one unit further behind than the État (action_logement owed 2): it goes there
    behind = year.model_copy(update={"oriented": {**year.oriented, "action_logement": 3}})
    result = solve_checked(units, demands, POLICY, year=behind)
    assert orientation_counts(result) == {"action_logement": 1}
