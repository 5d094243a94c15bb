"""Per constraint family (solver.constraints.CONSTRAINT_FAMILIES): the triad on tiny rounds.

For a solver the triad reads:

- *slack*: a round where the family does not bind; the optimum is the obvious one;
- *binding*: a round where it must bind; the solver's optimum differs from the optimum without
  the family, the checker agrees with the solver and flags the unconstrained optimum;
- *violated*: forcing a violating assignment into the model (build level) makes it infeasible,
  forcing a respecting one keeps it feasible; for quota rules, a round where the rule cannot
  hold raises `InfeasibleError` naming it in hard mode, and in soft mode reports the exact
  shortfall (hand-computed) with a shortfall stage of weight x shortfall.

Scores (default grid, round 2026-03-31): a plain household filed ``m`` months ago scores ``m``
(``m + 20`` beyond 30 months); DALO adds 50 and one L441-1 category 40. So below: N1 filed 120
months ago scores 120 + 20 = 140, N2 filed 100 months ago 120, P (category sans_logement, filed
this month) 0 + 40 = 40, a DALO household filed 12 months ago 12 + 50 = 62.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest
from ortools.sat.python import cp_model

from matching import checker
from matching.exceptions import InfeasibleError
from matching.flux import YearSoFar
from matching.params import SolveParams
from matching.policy.model import Policy
from matching.policy.quotas import Tally
from matching.result import Result
from matching.solver.constraints import CONSTRAINT_FAMILIES
from tests.factories import ROUND_DATE, demand, demands_of, unit, units_of
from tests.solver.support import (
    ALL_TO_LANDLORD,
    FULL,
    NO_QUOTAS,
    POLICY,
    PRUNED,
    Probe,
    default_rule,
    filed,
    orientation_counts,
    oriented,
    rows_of,
    rule,
    soft,
    solve_checked,
    violated_rules,
    with_rules,
    with_shares,
)


def test_registry_lists_every_family_once() -> None:
    """The registry holds the seven families this file tests, each once, hard ones first."""
    assert [name for name, _ in CONSTRAINT_FAMILIES] == [
        "one_household_per_unit",
        "one_unit_per_household",
        "one_reservataire_per_flux_unit",
        "allocation_through_orientation",
        "flux_exclusion",
        "flux_band",
        "quota",
    ]


# ----------------------------------------------------------------------------------------------
# one_household_per_unit
# ----------------------------------------------------------------------------------------------


def test_one_household_per_unit_slack() -> None:
    """One unit and one eligible household: it is allocated (1 allocation, score 24)."""
    units, demands = units_of(unit("U1")), demands_of(demand("D1", filed_on=filed(24)))
    result = solve_checked(units, demands, ALL_TO_LANDLORD)
    assert rows_of(result) == {("U1", "D1", "bailleur")}
    assert result.stage_values == {"allocations": 1, "score": 24}


def test_one_household_per_unit_binds() -> None:
    """One unit, two households: one allocation only, to the higher score (24 over 12)."""
    units = units_of(unit("U1"))
    demands = demands_of(demand("D1", filed_on=filed(24)), demand("D2", filed_on=filed(12)))
    result = solve_checked(units, demands, ALL_TO_LANDLORD)
    assert rows_of(result) == {("U1", "D1", "bailleur")}
    assert result.stage_values == {"allocations": 1, "score": 24}
    both = [("U1", "D1", "bailleur"), ("U1", "D2", "bailleur")]
    assert "one_household_per_unit" in violated_rules(units, demands, ALL_TO_LANDLORD, both)


def test_one_household_per_unit_in_the_model() -> None:
    """Two households forced into one unit make the model infeasible; either one alone does not."""
    probe = Probe(units_of(unit("U1")), demands_of(demand("D1"), demand("D2")), ALL_TO_LANDLORD)
    a, b = ("U1", "D1", "bailleur"), ("U1", "D2", "bailleur")
    assert not probe.feasible(assign=[a, b])
    assert probe.feasible(assign=[a])
    assert probe.feasible(assign=[b])
    # Also through two réservataires: the unit's single orientation already forbids it.
    assert not probe.feasible(assign=[a, ("U1", "D2", "collectivite")])


# ----------------------------------------------------------------------------------------------
# one_unit_per_household
# ----------------------------------------------------------------------------------------------


def test_one_unit_per_household_slack() -> None:
    """Two units, two households: both are allocated (2 allocations, score 24 + 12 = 36)."""
    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(demand("D1", filed_on=filed(24)), demand("D2", filed_on=filed(12)))
    result = solve_checked(units, demands, ALL_TO_LANDLORD)
    assert result.stage_values == {"allocations": 2, "score": 36}


def test_one_unit_per_household_binds() -> None:
    """Two units, one household: one allocation only (the other unit stays vacant)."""
    units, demands = units_of(unit("U1"), unit("U2")), demands_of(demand("D1"))
    result = solve_checked(units, demands, ALL_TO_LANDLORD)
    assert result.stage_values == {"allocations": 1, "score": 12}
    assert len(result.unallocated_units) == 1
    both = [("U1", "D1", "bailleur"), ("U2", "D1", "bailleur")]
    assert "one_unit_per_household" in violated_rules(units, demands, ALL_TO_LANDLORD, both)


def test_one_unit_per_household_in_the_model() -> None:
    """Forcing one household into two units makes the model infeasible; one unit does not."""
    probe = Probe(units_of(unit("U1"), unit("U2")), demands_of(demand("D1")), ALL_TO_LANDLORD)
    a, b = ("U1", "D1", "bailleur"), ("U2", "D1", "bailleur")
    assert not probe.feasible(assign=[a, b])
    assert probe.feasible(assign=[a])


# ----------------------------------------------------------------------------------------------
# one_reservataire_per_flux_unit
# ----------------------------------------------------------------------------------------------


def test_every_flux_unit_is_oriented_once() -> None:
    """Flux units get one orientation each, excluded units none, even when nothing is allocated."""
    units = units_of(unit("U1"), unit("U2", rooms=6), unit("U3", flux_excluded="mutation"))
    demands = demands_of(demand("D1"))  # U2 (T6) fits nobody, U3 only a social tenant
    result = solve_checked(units, demands, NO_QUOTAS)
    assert sorted(oriented(result)) == ["U1", "U2"]
    assert set(result.unallocated_units["unit_id"]) >= {"U2", "U3"}


def test_one_reservataire_per_flux_unit_in_the_model() -> None:
    """Two orientations of one unit, or none, are infeasible; exactly one is feasible."""
    probe = Probe(units_of(unit("U1")), demands_of(demand("D1")), NO_QUOTAS)
    # One flux unit: every band is [0, 1] (shares x 1 < 1), so any single orientation fits.
    assert not probe.feasible(orient=[("U1", "etat"), ("U1", "bailleur")])
    assert not probe.feasible(orient=[("U1", r, 0) for r in POLICY.reservataire_ids()])
    assert probe.feasible(orient=[("U1", "collectivite")])


# ----------------------------------------------------------------------------------------------
# allocation_through_orientation (pools, A3)
# ----------------------------------------------------------------------------------------------

AL_ONLY = ("action_logement",)


def _four_flux_units() -> pd.DataFrame:
    # 4 flux units, no earlier round: t = share x 4, so etat 1 -> [1, 1], etat_agents 0.2 ->
    # [0, 1], collectivite 0.8 -> [0, 1], action_logement 1 -> [1, 1]; the landlord the rest.
    return units_of(*(unit(f"U{i}") for i in range(1, 5)))


def test_allocation_through_orientation_slack() -> None:
    """A household of Action Logement's pool only is allocated through the unit oriented to it."""
    units = _four_flux_units()
    demands = demands_of(demand("D1", filed_on=filed(24), pools=AL_ONLY))
    result = solve_checked(units, demands, NO_QUOTAS)
    ((u, d, r),) = rows_of(result)
    assert (d, r) == ("D1", "action_logement")
    assert oriented(result)[u] == "action_logement"


def test_allocation_through_orientation_binds() -> None:
    """Two Action Logement-only households, one unit oriented to it: 1 allocation, not 2."""
    units = _four_flux_units()
    demands = demands_of(
        demand("D1", filed_on=filed(24), pools=AL_ONLY),
        demand("D2", filed_on=filed(12), pools=AL_ONLY),
    )
    result = solve_checked(units, demands, NO_QUOTAS)
    # action_logement's band is [1, 1]: one unit can carry one of them; D1 (24) beats D2 (12).
    assert result.stage_values == {"allocations": 1, "score": 24}
    assert orientation_counts(result)["action_logement"] == 1
    # Both through action_logement: two units oriented to it break its band; orienting the
    # second unit elsewhere breaks the orientation rule.
    both = [("U1", "D1", "action_logement"), ("U2", "D2", "action_logement")]
    rest = {"U3": "etat", "U4": "bailleur"}
    assert "flux_band" in violated_rules(
        units, demands, NO_QUOTAS, both, {"U1": "action_logement", "U2": "action_logement", **rest}
    )
    assert "orientation" in violated_rules(
        units, demands, NO_QUOTAS, both, {"U1": "action_logement", "U2": "collectivite", **rest}
    )


def test_state_pool_is_priority_only() -> None:
    """The unit oriented to the État stays vacant without a priority household (A3)."""
    units = _four_flux_units()
    plain = [demand(f"D{i}", filed_on=filed(5 * i)) for i in range(1, 5)]  # 5, 10, 15, 20
    # etat [1, 1] and action_logement [1, 1] each take one unit; no household is priority nor a
    # private employee, so both units stay vacant: 2 allocations (D4 20 + D3 15 = 35).
    result = solve_checked(units, demands_of(*plain), NO_QUOTAS)
    assert result.stage_values == {"allocations": 2, "score": 35}
    # A DALO household (filed 12 months ago: 62) fills the État's unit: 3 allocations.
    dalo = demand("P", dalo=True)
    result = solve_checked(units, demands_of(*plain, dalo), NO_QUOTAS)
    assert result.stage_values == {"allocations": 3, "score": 62 + 20 + 15}
    assert ("P", "etat") in {(d, r) for _, d, r in rows_of(result)}


def test_allocation_through_orientation_in_the_model() -> None:
    """An allocation through a réservataire the unit is not oriented to is infeasible."""
    probe = Probe(_four_flux_units(), demands_of(demand("D1", pools=AL_ONLY)), NO_QUOTAS)
    x = ("U1", "D1", "action_logement")
    assert not probe.feasible(assign=[x], orient=[("U1", "bailleur")])
    assert probe.feasible(assign=[x], orient=[("U1", "action_logement")])
    # Pools: D1 has no triple through any other réservataire.
    t = probe.triples
    assert set(t.res[t.demand == probe.demand_pos["D1"]].tolist()) == {
        probe.res_pos["action_logement"]
    }


# ----------------------------------------------------------------------------------------------
# flux_exclusion (A3)
# ----------------------------------------------------------------------------------------------


def test_flux_exclusion_slack() -> None:
    """A mutation unit goes to a social tenant, through no réservataire, and is not oriented."""
    units = units_of(unit("U1", flux_excluded="mutation"))
    demands = demands_of(demand("T", current_social_tenant=True))
    result = solve_checked(units, demands, NO_QUOTAS)
    assert rows_of(result) == {("U1", "T", "")}
    assert result.orientation.empty


def test_flux_exclusion_binds() -> None:
    """A mutation unit goes to the social tenant (12) rather than the higher score (24)."""
    units = units_of(unit("U1", flux_excluded="mutation"))
    demands = demands_of(demand("N", filed_on=filed(24)), demand("T", current_social_tenant=True))
    result = solve_checked(units, demands, NO_QUOTAS)
    assert rows_of(result) == {("U1", "T", "")}
    assert result.stage_values == {"allocations": 1, "score": 12}
    assert "flux_exclusion" in violated_rules(units, demands, NO_QUOTAS, [("U1", "N", "")])


@pytest.mark.parametrize("params", [FULL, PRUNED], ids=["full_model", "lp_path"])
def test_flux_exclusion_switched_off_lets_anyone_take_the_unit(params: SolveParams) -> None:
    """With ``flux_exclusion`` left out of ``eligibility.rules``, a mutation unit goes to anyone.

    docs/policy.md: leave a rule out to switch it off. The pair table and the checker then
    admit the non-tenant N (24) on the mutation unit; the full CP-SAT model, used for every
    round of up to 500 triples, restated the exclusion from the policy anyway and housed T
    (12), "OPTIMAL" at 12 where the LP path and the checker reach 24.
    """
    rules = tuple(r for r in POLICY.eligibility.rules if r != "flux_exclusion")
    policy = NO_QUOTAS.model_copy(
        update={"eligibility": POLICY.eligibility.model_copy(update={"rules": rules})}
    )
    units = units_of(unit("U1", flux_excluded="mutation"))
    demands = demands_of(demand("N", filed_on=filed(24)), demand("T", current_social_tenant=True))
    probe = Probe(units, demands, policy)
    assert probe.triple("U1", "N") >= 0  # the pair is admissible without the filter
    assert probe.feasible(assign=[("U1", "N", "")])
    result = solve_checked(units, demands, policy, params)
    assert rows_of(result) == {("U1", "N", "")}
    assert result.stage_values == {"allocations": 1, "score": 24}


@pytest.mark.parametrize(
    "units, demands",
    [
        (lambda: units_of(unit("U1", flux_excluded="mutation")),
         lambda: demands_of(demand("T", current_social_tenant=True))),
        (lambda: units_of(unit("U1", rooms=6)), lambda: demands_of(demand("D1"))),
    ],
    ids=["only_excluded_units", "no_eligible_pair"],
)  # fmt: skip
def test_round_without_flux_triples(
    units: Callable[[], pd.DataFrame], demands: Callable[[], pd.DataFrame]
) -> None:
    """A round whose only pairs are on excluded units, or with no pair at all, still solves.

    Regression: variables._groups once yielded one empty group for an empty key array, so the
    model builder crashed (IndexError) on any round without a flux triple.
    """
    u, d = units(), demands()
    result = solve_checked(u, d, NO_QUOTAS)
    excluded = u["flux_excluded"].to_numpy() != ""
    assert result.stage_values["allocations"] == int(excluded.sum())


# ----------------------------------------------------------------------------------------------
# flux_band (A4)
# ----------------------------------------------------------------------------------------------

LANDLORD_ONLY = ("bailleur",)


def test_flux_band_slack() -> None:
    """One flux unit: every band is [0, 1] and the unit goes to the landlord's household."""
    units = units_of(unit("U1"))
    demands = demands_of(demand("D1", pools=LANDLORD_ONLY))
    result = solve_checked(units, demands, NO_QUOTAS)
    assert rows_of(result) == {("U1", "D1", "bailleur")}


def test_flux_band_binds() -> None:
    """Four landlord-only households and four units: the bands leave the landlord two units."""
    units = _four_flux_units()
    demands = demands_of(
        *(demand(f"D{i}", filed_on=filed(5 * i), pools=LANDLORD_ONLY) for i in range(1, 5))
    )
    # Without bands (every share 0): 4 allocations, 5 + 10 + 15 + 20 = 50.
    free = solve_checked(units, demands, ALL_TO_LANDLORD)
    assert free.stage_values == {"allocations": 4, "score": 50}
    # With the default bands etat [1, 1] and action_logement [1, 1]: the landlord gets at most 2
    # units, so the two best households D4 (20) and D3 (15) are housed: 35.
    result = solve_checked(units, demands, NO_QUOTAS)
    assert result.stage_values == {"allocations": 2, "score": 35}
    counts = orientation_counts(result)
    assert counts["etat"] == 1
    assert counts["action_logement"] == 1
    assert counts.get("bailleur", 0) == 2
    assert "flux_band" in violated_rules(units, demands, NO_QUOTAS, rows_of(free), oriented(free))


# Two flux units this round after six earlier ones: flux so far 8. etat 0.25 x 8 - 0 = 2 ->
# [2, 2]; action_logement 0.25 x 8 - 0 = 2 -> [2, 2]; collectivite 0.2 x 8 - 2 = -0.4 -> [0, 0];
# etat_agents 0.05 x 8 - 1 = -0.6 -> [0, 0]. The low ends need 4 units, the round has 2.
BAND_CONFLICT = YearSoFar(flux_units=6, oriented={"collectivite": 2, "etat_agents": 1})


def test_floors_beyond_the_round_go_to_the_furthest_behind_not_infeasible() -> None:
    """Floors needing more units than the round has: clipped together, furthest behind first.

    8 flux units with these two: etat 0.25 x 8 = 2 and action_logement 2, each floor 2 of a
    round of 2. The round used to be infeasible in every mode (the bands are never soft),
    naming both bands; the floors are now clipped to what remains, etat first (equal targets:
    policy order): etat [2, 2], action_logement [0, 2]. D1 is no priority household, so the
    État's units stay empty.
    """
    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(demand("D1"))
    for policy in (POLICY, soft(POLICY)):
        result = solve_checked(units, demands, policy, year=BAND_CONFLICT)
        assert result.status == "OPTIMAL"
        assert orientation_counts(result) == {"etat": 2}
        assert result.allocation.empty


def test_flux_band_in_the_model() -> None:
    """Orientation counts outside a band are infeasible in the model; inside are feasible."""
    probe = Probe(_four_flux_units(), demands_of(demand("D1")), NO_QUOTAS)
    # etat's band is [1, 1]: two units to etat, or none, is infeasible.
    assert not probe.feasible(orient=[("U1", "etat"), ("U2", "etat")])
    assert not probe.feasible(orient=[(f"U{i}", "bailleur") for i in range(1, 5)])
    assert probe.feasible(
        orient=[("U1", "etat"), ("U2", "action_logement"), ("U3", "bailleur"), ("U4", "bailleur")]
    )


# ----------------------------------------------------------------------------------------------
# quota (the generic rule: the five default rules, a ceiling, a count, a scoped rule)
# ----------------------------------------------------------------------------------------------


def n1(**kw: Any) -> Any:
    """Plain household filed 120 months ago: 120 + 20 = 140 points."""
    return demand("N1", filed_on=filed(120), **kw)


def n2(**kw: Any) -> Any:
    """Plain household filed 100 months ago: 100 + 20 = 120 points."""
    return demand("N2", filed_on=filed(100), **kw)


def prio(**kw: Any) -> Any:
    """Priority household (category sans_logement) filed this month: 0 + 40 = 40 points."""
    return demand("P", filed_on=filed(0), priority_categories=("sans_logement",), **kw)


@dataclass(frozen=True)
class QuotaCase:
    """One quota rule alone (orientation forced by the shares), and its three rounds.

    ``binding`` rows are the optimum with the rule, ``free`` the optimum without it; the
    ``infeasible`` round (with ``year``) cannot meet the rule, and in soft mode misses it by
    ``shortfall`` (in scope group ``scope``) with the stage values ``soft_values``.
    """

    rule_id: str
    policy: Policy
    slack: Callable[[], tuple[pd.DataFrame, pd.DataFrame]]
    slack_values: dict[str, int]
    binding: Callable[[], tuple[pd.DataFrame, pd.DataFrame]]
    binding_values: dict[str, int]
    free_values: dict[str, int]
    infeasible: Callable[[], tuple[pd.DataFrame, pd.DataFrame]]
    shortfall: int
    soft_values: dict[str, int]
    year: YearSoFar = field(default_factory=YearSoFar)
    scope: str = ""

    @property
    def free_policy(self) -> Policy:
        """The same policy without the rule."""
        return with_rules(self.policy)

    @property
    def row_name(self) -> str:
        """Key of the rule's scope group in Result.shortfalls."""
        rule_ = self.policy.quotas.rules[0]
        return rule_.id if not self.scope else f"{rule_.id}[{rule_.scope}={self.scope}]"


def _priority_floor(res: str) -> QuotaCase:
    # The réservataire receives every flux unit (its share 1.0, the others 0; for the landlord
    # every share 0), so its floor "25 % of its allocations to priority households" is the only
    # constraint besides the structure.
    rule_id = f"priority_floor_{res}"
    policy = with_shares(with_rules(POLICY, default_rule(rule_id)), **(
        {res: 1.0} if res != "bailleur" else {}
    ))  # fmt: skip
    extra = {"private_employee": True} if res == "action_logement" else {}  # its pool (A3)
    return QuotaCase(
        rule_id=rule_id,
        policy=policy,
        # P alone: 1 priority of 1 >= ceil(0.25 x 1) = 1.
        slack=lambda: (units_of(unit("U1")), demands_of(prio(**extra))),
        slack_values={"allocations": 1, "score": 40},
        # Two units; without the rule N1 + N2 = 260; with it 2 allocations need
        # ceil(0.25 x 2) = 1 priority, so N1 + P = 140 + 40 = 180.
        binding=lambda: (
            units_of(unit("U1"), unit("U2")),
            demands_of(n1(**extra), n2(**extra), prio(**extra)),
        ),
        binding_values={"allocations": 2, "score": 180},
        free_values={"allocations": 2, "score": 260},
        # Earlier rounds: 3 allocations, none priority. With k more (non-priority) allocations
        # the floor needs 4 x 0 >= 1 x (3 + k): never. Soft: shortfall ceil((3 + k) / 4) = 1 for
        # k = 0 or 1, so N1 is still housed: shortfall 1 (1,000), 1 allocation, 140.
        infeasible=lambda: (units_of(unit("U1")), demands_of(n1(**extra))),
        year=YearSoFar(tallies={rule_id: {"": Tally(base=3, counted=0)}}),
        shortfall=1,
        soft_values={"shortfall": 1000, "allocations": 1, "score": 140},
    )


def _mixity_outside_qpv() -> QuotaCase:
    policy = with_shares(with_rules(POLICY, default_rule("mixity_outside_qpv")))
    return QuotaCase(
        rule_id="mixity_outside_qpv",
        policy=policy,
        # Q1 at 8,000 EUR per CU < 10,656: 1 of 1 >= ceil(0.25) = 1.
        slack=lambda: (
            units_of(unit("U1")),
            demands_of(demand("Q", annual_income_eur=8000.0)),
        ),
        slack_values={"allocations": 1, "score": 12},
        # On the threshold: 10,655 EUR/CU is Q1, 10,656 is not (strictly below, A1). Without the
        # rule N1 + N2 = 260; with it 1 Q1 of 2 is needed: N1 + Q = 140 + 24 = 164.
        binding=lambda: (
            units_of(unit("U1"), unit("U2")),
            demands_of(
                n1(),
                n2(annual_income_eur=10656.0),
                demand("Q", filed_on=filed(24), annual_income_eur=10655.0),
            ),
        ),
        binding_values={"allocations": 2, "score": 164},
        free_values={"allocations": 2, "score": 260},
        # 3 earlier allocations outside QPV, no Q1: 4 x 0 >= 3 + k never; soft shortfall
        # ceil((3 + k) / 4) = 1, N1 housed.
        infeasible=lambda: (units_of(unit("U1")), demands_of(n1())),
        year=YearSoFar(tallies={"mixity_outside_qpv": {"": Tally(base=3, counted=0)}}),
        shortfall=1,
        soft_values={"shortfall": 1000, "allocations": 1, "score": 140},
    )


def _mixity_inside_qpv() -> QuotaCase:
    policy = with_shares(with_rules(POLICY, default_rule("mixity_inside_qpv")))
    q1 = {"annual_income_eur": 8000.0}
    return QuotaCase(
        rule_id="mixity_inside_qpv",
        policy=policy,
        slack=lambda: (units_of(unit("U1", qpv=True)), demands_of(demand("N"))),
        slack_values={"allocations": 1, "score": 12},
        # Two QPV units; Q1 households N1, N2 (140, 120) and a non-Q1 one (filed 24 months: 24).
        # The rule needs ceil(0.5 x 2) = 1 non-Q1: 140 + 24 = 164 instead of 260.
        binding=lambda: (
            units_of(unit("U1", qpv=True), unit("U2", qpv=True)),
            demands_of(n1(**q1), n2(**q1), demand("N", filed_on=filed(24))),
        ),
        binding_values={"allocations": 2, "score": 164},
        free_values={"allocations": 2, "score": 260},
        # 3 earlier QPV allocations, none non-Q1; the floor 2 x C >= 3 + k fails with C = 0.
        # Soft (p/q = 1/2): shortfall ceil((3 + k) / 2) = 2 for k = 0 or 1; N1 (Q1) housed.
        infeasible=lambda: (units_of(unit("U1", qpv=True)), demands_of(n1(**q1))),
        year=YearSoFar(tallies={"mixity_inside_qpv": {"": Tally(base=3, counted=0)}}),
        shortfall=2,
        soft_values={"shortfall": 2000, "allocations": 1, "score": 140},
    )


def _dalo_ceiling() -> QuotaCase:
    # A researcher's rule: at most 50 % of the allocations to DALO households (share ceiling).
    ceiling = rule("dalo_at_most_half", "ceiling", "share", 0.5, count=[{"field": "demand.dalo"}])
    policy = with_shares(with_rules(POLICY, ceiling))
    da = {"dalo": True, "filed_on": filed(13)}  # 13 + 50 = 63
    db = {"dalo": True, "filed_on": filed(12)}  # 12 + 50 = 62
    return QuotaCase(
        rule_id="dalo_at_most_half",
        policy=policy,
        # 1 DALO of 2 <= floor(0.5 x 2) = 1: 63 + 24 = 87.
        slack=lambda: (
            units_of(unit("U1"), unit("U2")),
            demands_of(demand("DA", **da), demand("N", filed_on=filed(24))),
        ),
        slack_values={"allocations": 2, "score": 87},
        # Without the rule DA + DB = 125; with it one DALO of two: DA + N = 87.
        binding=lambda: (
            units_of(unit("U1"), unit("U2")),
            demands_of(demand("DA", **da), demand("DB", **db), demand("N", filed_on=filed(24))),
        ),
        binding_values={"allocations": 2, "score": 87},
        free_values={"allocations": 2, "score": 125},
        # Earlier: 2 allocations, both DALO: 2 x 2 - 1 x 2 = 2 > 0 already over. Housing DA makes
        # it 2 x 3 - 3 = 3. Soft shortfall ceil(2 / 2) = 1 empty, ceil(3 / 2) = 2 with DA, so the
        # soft optimum leaves the unit vacant: shortfall 1, 0 allocations.
        infeasible=lambda: (units_of(unit("U1")), demands_of(demand("DA", **da))),
        year=YearSoFar(tallies={"dalo_at_most_half": {"": Tally(base=2, counted=2)}}),
        shortfall=1,
        soft_values={"shortfall": 1000, "allocations": 0, "score": 0},
    )


def _dalo_count_floor() -> QuotaCase:
    # At least one allocation to a DALO household this year (count floor, EPCI-wide).
    floor = rule("dalo_at_least_one", "floor", "count", 1, count=[{"field": "demand.dalo"}])
    policy = with_shares(with_rules(POLICY, floor))
    d = {"dalo": True, "filed_on": filed(12)}  # 62
    return QuotaCase(
        rule_id="dalo_at_least_one",
        policy=policy,
        slack=lambda: (units_of(unit("U1")), demands_of(demand("D", **d))),
        slack_values={"allocations": 1, "score": 62},
        # One unit: without the rule N1 (140); with it the DALO household (62).
        binding=lambda: (units_of(unit("U1")), demands_of(n1(), demand("D", **d))),
        binding_values={"allocations": 1, "score": 62},
        free_values={"allocations": 1, "score": 140},
        # No DALO household at all: short by 1 whatever happens; N1 is still housed.
        infeasible=lambda: (units_of(unit("U1")), demands_of(n1())),
        shortfall=1,
        soft_values={"shortfall": 1000, "allocations": 1, "score": 140},
    )


def _scoped_floor() -> QuotaCase:
    # At least 50 % of each landlord's allocations to priority households (scope unit.bailleur).
    scoped = rule(
        "priority_half_per_bailleur", "floor", "share", 0.5,
        count=[{"field": "demand.priority"}], scope="unit.bailleur",
    )  # fmt: skip
    policy = with_shares(with_rules(POLICY, scoped))
    return QuotaCase(
        rule_id="priority_half_per_bailleur",
        policy=policy,
        slack=lambda: (units_of(unit("U1")), demands_of(prio())),
        slack_values={"allocations": 1, "score": 40},
        # U1 (B1), U2 (B2). Each landlord's single allocation must be priority, and there is
        # one priority household: 1 allocation (P, 40). Without the rule N1 + N2 = 260 (and the
        # same rule EPCI-wide would give N1 + P = 180: see test_scope_changes_the_optimum).
        binding=lambda: (
            units_of(unit("U1"), unit("U2", bailleur="B2")),
            demands_of(n1(), n2(), prio()),
        ),
        binding_values={"allocations": 1, "score": 40},
        free_values={"allocations": 2, "score": 260},
        # B1 had 1 earlier allocation, not priority: 2 x 0 >= 1 + k never; soft shortfall
        # ceil((1 + k) / 2) = 1 for k = 0 or 1, N1 housed. B2 is not concerned.
        infeasible=lambda: (units_of(unit("U1")), demands_of(n1())),
        year=YearSoFar(tallies={"priority_half_per_bailleur": {"B1": Tally(base=1, counted=0)}}),
        shortfall=1,
        soft_values={"shortfall": 1000, "allocations": 1, "score": 140},
        scope="B1",
    )


QUOTA_CASES = [
    _priority_floor("collectivite"),
    _priority_floor("action_logement"),
    _priority_floor("bailleur"),
    _mixity_outside_qpv(),
    _mixity_inside_qpv(),
    _dalo_ceiling(),
    _dalo_count_floor(),
    _scoped_floor(),
]
CASE_IDS = [c.rule_id for c in QUOTA_CASES]


def test_quota_cases_cover_the_default_rules() -> None:
    """Every quota rule of the default policy has its triad below."""
    assert {r.id for r in POLICY.quotas.rules} <= set(CASE_IDS)


_SOLVED: dict[tuple[str, str, bool], tuple[pd.DataFrame, pd.DataFrame, Result]] = {}


def solved(
    case: QuotaCase, which: str, with_rule: bool
) -> tuple[pd.DataFrame, pd.DataFrame, Result]:
    """The checked solve of one round of a case (memoised: several tests read the same optimum)."""
    key = (case.rule_id, which, with_rule)
    if key not in _SOLVED:
        units, demands = getattr(case, which)()
        policy = case.policy if with_rule else case.free_policy
        _SOLVED[key] = (units, demands, solve_checked(units, demands, policy))
    return _SOLVED[key]


@pytest.mark.parametrize("case", QUOTA_CASES, ids=CASE_IDS)
def test_quota_slack(case: QuotaCase) -> None:
    """When the rule holds at the unconstrained optimum, the optimum is the same with the rule."""
    _, _, with_rule = solved(case, "slack", True)
    _, _, without = solved(case, "slack", False)
    assert with_rule.stage_values == case.slack_values == without.stage_values


@pytest.mark.parametrize("case", QUOTA_CASES, ids=CASE_IDS)
def test_quota_binds(case: QuotaCase) -> None:
    """The rule changes the optimum; the checker flags the unconstrained optimum under the rule."""
    units, demands, with_rule = solved(case, "binding", True)
    _, _, without = solved(case, "binding", False)
    assert with_rule.stage_values == case.binding_values
    assert without.stage_values == case.free_values
    flagged = violated_rules(units, demands, case.policy, rows_of(without), oriented(without))
    assert flagged == {case.rule_id}


@pytest.mark.parametrize("case", QUOTA_CASES, ids=CASE_IDS)
def test_quota_in_the_model(case: QuotaCase) -> None:
    """Forcing the unconstrained optimum into the rule's model is infeasible; its optimum is not."""
    units, demands, with_rule = solved(case, "binding", True)
    _, _, without = solved(case, "binding", False)
    probe = Probe(units, demands, case.policy)
    assert not probe.feasible(assign=sorted(rows_of(without)), orient=oriented(without).items())
    assert probe.feasible(assign=sorted(rows_of(with_rule)), orient=oriented(with_rule).items())


@pytest.mark.parametrize("case", QUOTA_CASES, ids=CASE_IDS)
def test_quota_infeasible_in_hard_mode(case: QuotaCase) -> None:
    """A round that cannot meet the rule raises InfeasibleError naming exactly that rule."""
    units, demands = case.infeasible()
    with pytest.raises(InfeasibleError) as caught:
        solve_checked(units, demands, case.policy, year=case.year)
    assert caught.value.rule_ids == [case.rule_id]
    assert case.rule_id in str(caught.value)


@pytest.mark.parametrize("case", QUOTA_CASES, ids=CASE_IDS)
def test_quota_exact_shortfall_in_soft_mode(case: QuotaCase) -> None:
    """Soft mode reports the hand-computed shortfall; the shortfall stage is weight x shortfall."""
    units, demands = case.infeasible()
    result = solve_checked(units, demands, soft(case.policy), year=case.year)
    assert {k: v for k, v in result.shortfalls.items() if v} == {case.row_name: case.shortfall}
    assert result.stage_values == case.soft_values
    audit = checker.audit(
        units, demands, soft(case.policy), result.allocation, case.year,
        orientation=result.orientation, on=ROUND_DATE,
    )  # fmt: skip
    assert [(q.rule_id, q.scope, q.shortfall) for q in audit.shortfalls()] == [
        (case.rule_id, case.scope, case.shortfall)
    ]


def test_quota_soft_model_minimum_shortfall() -> None:
    """In the soft model, the forced unconstrained optimum costs exactly its checker shortfall."""
    case = _mixity_inside_qpv()
    units, demands = case.binding()
    policy = soft(case.policy)
    probe = Probe(units, demands, policy)
    # Q1 households in both QPV units: 0 non-Q1 of 2, needs ceil(0.5 x 2) = 1: shortfall 1.
    forced = [("U1", "N1", "bailleur"), ("U2", "N2", "bailleur")]
    built = probe.build()
    for item in forced:
        built.model.add(built.vars.x[probe.triple(*item)] == 1)
    built.model.minimize(sum(built.vars.shortfall))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.solve(built.model) == cp_model.OPTIMAL
    assert solver.objective_value == 1
    audit = checker.audit(
        units, demands, policy,
        pd.DataFrame(forced, columns=["unit_id", "demand_id", "reservataire"]), on=ROUND_DATE,
    )  # fmt: skip
    assert [(q.rule_id, q.shortfall) for q in audit.shortfalls()] == [("mixity_inside_qpv", 1)]


def test_scope_changes_the_optimum() -> None:
    """The same floor EPCI-wide gives N1 + P (180); per landlord only P is housed (40)."""
    case = _scoped_floor()
    units, demands = case.binding()
    unscoped_rule = case.policy.quotas.rules[0].model_copy(update={"scope": None})
    unscoped = with_rules(case.policy, unscoped_rule)
    # EPCI-wide: 2 allocations need ceil(0.5 x 2) = 1 priority: N1 + P = 140 + 40.
    assert solve_checked(units, demands, unscoped).stage_values == {
        "allocations": 2, "score": 180,
    }  # fmt: skip
    result = solve_checked(units, demands, case.policy)
    assert {d for _, d, _ in rows_of(result)} == {"P"}


def test_anru_household_counts_for_outside_qpv_mixity() -> None:
    """An ANRU household above Q1 meets the outside-QPV floor (A1: ANRU counts with Q1)."""
    case = _mixity_outside_qpv()
    units = units_of(unit("U1"), unit("U2"))
    # A (ANRU, 15,000 EUR: not Q1, filed 24 months: 24) counts; so N1 + A = 164 meets the floor.
    demands = demands_of(n1(), n2(), demand("A", anru=True, filed_on=filed(24)))
    result = solve_checked(units, demands, case.policy)
    assert {d for _, d, _ in rows_of(result)} == {"N1", "A"}
    assert result.stage_values == {"allocations": 2, "score": 164}


@pytest.mark.parametrize("params", [FULL, PRUNED], ids=["full_model", "lp_path"])
def test_soft_round_without_quota_rows_reports_a_zero_shortfall(params: SolveParams) -> None:
    """Soft quotas and no rule that reaches the round: the shortfall stage is there, at 0.

    The policy's stages are ``[shortfall, allocations, score]``; with no quota row the solver
    had no shortfall stage to optimise and left it out of the result, so ``result.json``'s
    objective lacked the key that every other soft round has (and the checker computes, 0).
    """
    units = units_of(unit("U1"))
    demands = demands_of(demand("N", filed_on=filed(12)))
    result = solve_checked(units, demands, soft(NO_QUOTAS), params)
    assert result.stage_values == {"shortfall": 0, "allocations": 1, "score": 12}
    assert list(result.to_dict()["objective"]) == ["shortfall", "allocations", "score"]
    assert result.stage_bounds["shortfall"] == 0.0
