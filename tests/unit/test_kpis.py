"""Round KPIs: every figure of a hand-made round computed in comments, JSON stability, text table.

The round (default-2026 policy, round date 2026-03-31); units are T2 PLUS in Caen, demands one
adult earning 15,000 EUR/year (not Q1: 15,000 >= 10,656) unless said otherwise:

    unit  landlord  QPV  flux      allocated to  through          demand facts
    U1    B1        no   in        D1            etat             DALO, income 8,000 (Q1)
    U2    B1        no   in        D2            action_logement  employee, category violences
    U3    B2        yes  in        D3            collectivite     category, filed 2023-03-31
    U4    B2        yes  in        D4            bailleur         DALO
    U5    B1        no   mutation  D5            (none)           social tenant, ANRU
    U6    B2        no   in        -             (oriented bailleur)
    D6 plain and D7 DALO stay unallocated.

Earlier rounds of the year: 15 flux units oriented etat 4, etat_agents 1, collectivite 3,
action_logement 4, bailleur 3; mixity tallies outside QPV 1 of 9, inside QPV 0 of 2.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pandas as pd
import pytest
from tests.factories import ROUND_DATE, demand, demands_of, unit, units_of

from matching.facts import derive_facts
from matching.flux import YearSoFar
from matching.kpis import RoundKpis, compute_kpis, render_kpis_text
from matching.policy import load_policy
from matching.policy.model import Policy
from matching.policy.quotas import Tally

UNITS: dict[str, dict[str, Any]] = {
    "U1": {"bailleur": "B1"},
    "U2": {"bailleur": "B1"},
    "U3": {"bailleur": "B2", "qpv": True},
    "U4": {"bailleur": "B2", "qpv": True},
    "U5": {"bailleur": "B1", "flux_excluded": "mutation"},
    "U6": {"bailleur": "B2"},
}
DEMANDS: dict[str, dict[str, Any]] = {
    "D1": {"dalo": True, "annual_income_eur": 8000.0},
    "D2": {"private_employee": True, "priority_categories": ("violences",)},
    "D3": {"priority_categories": ("sans_logement",), "filed_on": dt.date(2023, 3, 31)},
    "D4": {"dalo": True},
    "D5": {"current_social_tenant": True, "anru": True},
    "D6": {},
    "D7": {"dalo": True},
}
ALLOCATION = pd.DataFrame(
    [
        ("U1", "D1", "etat"),
        ("U2", "D2", "action_logement"),
        ("U3", "D3", "collectivite"),
        ("U4", "D4", "bailleur"),
        ("U5", "D5", ""),
    ],
    columns=["unit_id", "demand_id", "reservataire"],
)
ORIENTATION = pd.DataFrame(
    [("U1", "etat"), ("U2", "action_logement"), ("U3", "collectivite"), ("U4", "bailleur"),
     ("U6", "bailleur")],
    columns=["unit_id", "reservataire"],
)  # fmt: skip
YEAR = YearSoFar(
    flux_units=15,
    oriented={"etat": 4, "etat_agents": 1, "collectivite": 3, "action_logement": 4, "bailleur": 3},
    tallies={
        "mixity_outside_qpv": {"": Tally(base=9, counted=1)},
        "mixity_inside_qpv": {"": Tally(base=2, counted=0)},
    },
)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy("default-2026")


@pytest.fixture(scope="module")
def kpis(policy: Policy) -> RoundKpis:
    units = units_of(*(unit(k, **v) for k, v in UNITS.items()))
    demands = derive_facts(
        demands_of(*(demand(k, **v) for k, v in DEMANDS.items())), policy, ROUND_DATE
    )
    return compute_kpis(units, demands, policy, ALLOCATION, ORIENTATION, YEAR)


def test_units_and_demands(kpis: RoundKpis) -> None:
    """Units filled and demands housed, with their rates."""
    u = kpis.units
    # 6 units, 5 in the flux, 1 excluded; 5 filled (4 flux + U5), U6 vacant; 5/6 = 0.8333
    assert (u.total, u.flux, u.excluded, u.allocated, u.unallocated) == (6, 5, 1, 5, 1)
    assert (u.flux_allocated, u.excluded_allocated, u.fill_rate) == (4, 1, 0.8333)
    d = kpis.demands
    # 7 demands, 5 housed: 5/7 = 0.714285... -> 0.7143; priority D1, D2, D3, D4, D7 = 5, of
    # which 4 housed: 0.8
    assert (d.total, d.allocated, d.rate) == (7, 5, 0.7143)
    assert (d.priority_total, d.priority_allocated, d.priority_rate) == (5, 4, 0.8)


def test_reservataires(kpis: RoundKpis) -> None:
    """Per réservataire: share, band of this round, oriented (round, year), allocated, priority."""
    rows = {r.reservataire: r for r in kpis.reservataires}
    assert list(rows) == ["etat", "etat_agents", "collectivite", "action_logement", "bailleur"]
    # Flux so far 15 + 5 = 20. etat: 0.25 x 20 - 4 = 1 -> [1, 1]; etat_agents 0.05 x 20 - 1 = 0
    # -> [0, 0]; collectivite 0.2 x 20 - 3 = 1; action_logement 0.25 x 20 - 4 = 1.
    etat = rows["etat"]
    assert (etat.share, etat.band_target, etat.band_target_exact) == (0.25, 1.0, "1")
    assert (etat.band_low, etat.band_high) == (1, 1)
    # oriented U1 this round, 4 + 1 = 5 over the year; allocated 1, priority 1 (DALO): rate 1.0
    assert (etat.oriented, etat.oriented_year) == (1, 5)
    assert (etat.allocated, etat.priority_allocated, etat.priority_rate) == (1, 1, 1.0)
    agents = rows["etat_agents"]
    assert (agents.band_target, agents.band_low, agents.band_high) == (0.0, 0, 0)
    assert (agents.oriented, agents.oriented_year, agents.allocated) == (0, 1, 0)
    assert agents.priority_rate is None
    assert (rows["collectivite"].band_low, rows["collectivite"].oriented_year) == (1, 4)
    assert (rows["action_logement"].band_high, rows["action_logement"].oriented_year) == (1, 5)
    # The landlord: remainder 1 - 0.75 = 0.25, no band; oriented U4 and U6 (3 + 2 = 5 over the
    # year); allocated U4 to D4 (DALO).
    landlord = rows["bailleur"]
    assert (landlord.share, landlord.band_target, landlord.band_target_exact) == (0.25, None, "")
    assert (landlord.band_low, landlord.band_high) == (None, None)
    assert (landlord.oriented, landlord.oriented_year) == (2, 5)
    assert (landlord.allocated, landlord.priority_allocated, landlord.priority_rate) == (1, 1, 1.0)
    # U5 (excluded) went through no réservataire
    assert kpis.no_reservataire_allocated == 1


def test_mixity_round_and_year(kpis: RoundKpis) -> None:
    """Q1-or-ANRU rate outside QPV and non-Q1 rate inside QPV, round only and year to date."""
    out = kpis.q1_outside_qpv
    # Outside QPV: U1 (D1 Q1), U2 (D2 no), U5 (D5 ANRU) -> 2 of 3 = 0.6667;
    # year: 2 + 1 = 3 of 3 + 9 = 12 -> 0.25
    assert (out.base, out.counted, out.rate) == (3, 2, 0.6667)
    assert (out.base_year, out.counted_year, out.rate_year) == (12, 3, 0.25)
    assert (out.rule_id, out.target) == ("mixity_outside_qpv", 0.25)
    inside = kpis.non_q1_inside_qpv
    # Inside QPV: U3 (D3 not Q1), U4 (D4 not Q1) -> 2 of 2 = 1.0; year 2 of 4 = 0.5
    assert (inside.base, inside.counted, inside.rate) == (2, 2, 1.0)
    assert (inside.base_year, inside.counted_year, inside.rate_year) == (4, 2, 0.5)
    assert (inside.rule_id, inside.target) == ("mixity_inside_qpv", 0.5)


def test_mixity_year_to_date_under_a_rule_scoped_per_landlord(policy: Policy) -> None:
    """A mixity rule scoped per landlord: the EPCI's year to date sums its groups' tallies.

    The 'year' figures used to be the round's alone (3 of 3) when the policy's rule had a scope.
    """
    rules = tuple(
        r.model_copy(update={"scope": "unit.bailleur"}) if r.id == "mixity_outside_qpv" else r
        for r in policy.quotas.rules
    )
    scoped = policy.model_copy(update={"quotas": policy.quotas.model_copy(update={"rules": rules})})
    year = YearSoFar(
        flux_units=15,
        oriented=YEAR.oriented,
        tallies={
            "mixity_outside_qpv": {"B1": Tally(base=6, counted=1), "B2": Tally(base=3, counted=0)}
        },
    )
    units = units_of(*(unit(k, **v) for k, v in UNITS.items()))
    demands = derive_facts(
        demands_of(*(demand(k, **v) for k, v in DEMANDS.items())), scoped, ROUND_DATE
    )
    out = compute_kpis(units, demands, scoped, ALLOCATION, ORIENTATION, year).q1_outside_qpv
    # round 2 of 3 (as EPCI-wide); year 2 + 1 of 3 + 9, as with the unscoped rule
    assert (out.base, out.counted) == (3, 2)
    assert (out.base_year, out.counted_year, out.rate_year) == (12, 3, 0.25)
    # the rule's target holds per landlord, not over the EPCI
    assert (out.rule_id, out.target) == ("mixity_outside_qpv", None)


def test_scores(kpis: RoundKpis) -> None:
    """Mean, min, quartiles and max of the allocated households' scores."""
    # D1 12 + 50 = 62; D2 12 + 40 = 52; D3 36 + 20 + 40 = 96; D4 62; D5 12.
    # Sorted 12, 52, 62, 62, 96: mean 284 / 5 = 56.8; quartiles at positions 1, 2, 3 -> 52, 62, 62
    s = kpis.score
    assert (s.count, s.total, s.mean, s.min, s.max) == (5, 284, 56.8, 12, 96)
    assert (s.q1, s.median, s.q3) == (52.0, 62.0, 62.0)


def test_landlords(kpis: RoundKpis) -> None:
    """Per landlord: units, filled, and both mixity rates."""
    b1, b2 = kpis.landlords
    # B1: U1, U2, U5 (2 in the flux), all filled; outside QPV 3 allocations, Q1 or ANRU: D1, D5
    assert (b1.bailleur, b1.units, b1.flux_units, b1.allocated, b1.fill_rate) == (
        "B1",
        3,
        2,
        3,
        1.0,
    )
    assert (b1.outside_qpv, b1.q1_or_anru_outside_qpv, b1.q1_rate_outside_qpv) == (3, 2, 0.6667)
    assert (b1.inside_qpv, b1.non_q1_rate_inside_qpv) == (0, None)
    # B2: U3, U4, U6, 2 filled (2/3); the only outside-QPV unit (U6) is vacant; inside 2 of 2
    assert (b2.bailleur, b2.units, b2.allocated, b2.fill_rate) == ("B2", 3, 2, 0.6667)
    assert (b2.outside_qpv, b2.q1_rate_outside_qpv) == (0, None)
    assert (b2.inside_qpv, b2.non_q1_inside_qpv, b2.non_q1_rate_inside_qpv) == (2, 2, 1.0)


def test_quotas(kpis: RoundKpis) -> None:
    """Each quota rule's year-to-date rate, limit and shortfall."""
    rows = {q.rule_id: q for q in kpis.quotas}
    # priority floors: 1 of 1 each, limit ceil(1/4) = 1
    for rid in ("priority_floor_collectivite", "priority_floor_action_logement",
                "priority_floor_bailleur"):  # fmt: skip
        assert (rows[rid].base, rows[rid].counted, rows[rid].rate, rows[rid].limit) == (
            1,
            1,
            1.0,
            1,
        )
    out = rows["mixity_outside_qpv"]
    # 3 + 9 = 12 base, 2 + 1 = 3 counted; limit ceil(12/4) = 3; rate 0.25; no shortfall
    assert (out.base, out.counted, out.prior_base, out.prior_counted) == (3, 2, 9, 1)
    assert (out.rate, out.limit, out.shortfall) == (0.25, 3, 0)
    inside = rows["mixity_inside_qpv"]
    # 2 + 2 = 4 base, 2 counted; limit ceil(4/2) = 2
    assert (inside.rate, inside.limit, inside.shortfall) == (0.5, 2, 0)
    assert kpis.quota_mode == "hard"


def test_without_orientation_oriented_counts_are_unknown(policy: Policy) -> None:
    """Without an orientation table the oriented counts are None, the rest unchanged."""
    units = units_of(*(unit(k, **v) for k, v in UNITS.items()))
    demands = derive_facts(
        demands_of(*(demand(k, **v) for k, v in DEMANDS.items())), policy, ROUND_DATE
    )
    k = compute_kpis(units, demands, policy, ALLOCATION, None)
    assert all(r.oriented is None and r.oriented_year is None for r in k.reservataires)
    # no year so far: outside QPV year to date = round
    assert (k.q1_outside_qpv.base_year, k.q1_outside_qpv.counted_year) == (3, 2)
    # bands from this round alone: etat 0.25 x 5 = 5/4 -> [1, 2]
    etat = k.reservataires[0]
    assert (etat.band_target, etat.band_target_exact, etat.band_low, etat.band_high) == (
        1.25, "5/4", 1, 2,
    )  # fmt: skip


def test_empty_allocation(policy: Policy) -> None:
    """With no allocation every rate and score statistic is None, counts are zero."""
    units = units_of(*(unit(k, **v) for k, v in UNITS.items()))
    demands = derive_facts(
        demands_of(*(demand(k, **v) for k, v in DEMANDS.items())), policy, ROUND_DATE
    )
    empty = ALLOCATION.iloc[0:0]
    k = compute_kpis(units, demands, policy, empty, ORIENTATION)
    assert (k.units.allocated, k.units.fill_rate, k.demands.allocated) == (0, 0.0, 0)
    assert (k.score.count, k.score.mean, k.score.q1) == (0, None, None)
    assert k.q1_outside_qpv.rate is None
    json.dumps(k.to_dict())
    assert "Scores: no allocation" in render_kpis_text(k)


def test_to_dict_is_stable_json(kpis: RoundKpis) -> None:
    """to_dict gives JSON with a fixed key order and rounded floats, byte-identical each time."""
    data = kpis.to_dict()
    assert list(data) == [
        "quota_mode", "units", "demands", "reservataires", "no_reservataire_allocated",
        "q1_outside_qpv", "non_q1_inside_qpv", "score", "landlords", "quotas",
    ]  # fmt: skip
    text = json.dumps(data, ensure_ascii=False)
    assert text == json.dumps(kpis.to_dict(), ensure_ascii=False)
    assert json.loads(text) == data
    assert data["reservataires"][0]["reservataire"] == "etat"
    assert data["quotas"][0]["bound"] == "floor"
    assert '"rate": 0.6667' in text


def test_render_text_table(kpis: RoundKpis) -> None:
    """The text rendering shows each section with aligned columns."""
    text = render_kpis_text(kpis)
    assert "Units: 6 (5 in the flux, 1 excluded); filled 5 (83.3 %), vacant 1" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.strip().startswith("réservataire"))
    etat = next(line for line in lines if line.strip().startswith("etat "))
    # right-aligned columns: the rows end where the header ends
    assert len(etat) == len(header)
    assert "mixity_outside_qpv" in text and "3/12" in text and "25.0 %" in text
    assert "mean 56.8, min 12, quartiles 52 / 62 / 62, max 96, total 284" in text


def test_render_text_counts_scores_per_allocation_when_a_household_is_doubled(
    policy: Policy,
) -> None:
    """An audited allocation giving D1 two units: 4 households housed, 5 allocations scored.

    The score line counts allocations (as the objective does), so it must not call them
    households: "housed 4" beside "Scores of the 5 allocated household(s)" read as a miscount.
    """
    units = units_of(*(unit(k, **v) for k, v in UNITS.items()))
    demands = derive_facts(
        demands_of(*(demand(k, **v) for k, v in DEMANDS.items())), policy, ROUND_DATE
    )
    doubled = ALLOCATION.copy()
    doubled.loc[1, "demand_id"] = "D1"
    text = render_kpis_text(compute_kpis(units, demands, policy, doubled, ORIENTATION, YEAR))
    assert "housed 4 (" in text
    assert "Scores over the 5 allocations: mean" in text


def test_render_text_writes_large_counts_with_thousands_separators(kpis: RoundKpis) -> None:
    """17,000 demands and a score total of 48,070 read as the solve summary writes them."""
    data = kpis.to_dict()
    data["demands"]["total"] = 17_000
    data["demands"]["priority_total"] = 3_744
    data["score"]["total"] = 48_070
    data["landlords"][0]["units"] = 1_020
    text = render_kpis_text(RoundKpis.from_dict(data))
    assert "Demands: 17,000; housed" in text and "of 3,744 (" in text
    assert "total 48,070" in text
    landlord = next(line for line in text.splitlines() if "1,020" in line)
    assert landlord.strip().startswith(data["landlords"][0]["bailleur"])
    assert "17000" not in text and "48070" not in text


def test_mixity_year_to_date_without_a_rule_is_unknown_after_earlier_rounds(
    policy: Policy,
) -> None:
    """A policy with no mixity rule keeps no tally of earlier rounds' mix.

    The 'year' figures were the round's (2 of 3) after 15 earlier flux units, labelled year to
    date. Now unknown then; in the year's first round they are the round's, which is the year.
    """
    rules = tuple(r for r in policy.quotas.rules if not r.id.startswith("mixity"))
    bare = policy.model_copy(update={"quotas": policy.quotas.model_copy(update={"rules": rules})})
    units = units_of(*(unit(k, **v) for k, v in UNITS.items()))
    demands = derive_facts(
        demands_of(*(demand(k, **v) for k, v in DEMANDS.items())), bare, ROUND_DATE
    )
    later = compute_kpis(units, demands, bare, ALLOCATION, ORIENTATION, YEAR).q1_outside_qpv
    assert (later.base, later.counted, later.rule_id) == (3, 2, None)
    assert (later.base_year, later.counted_year, later.rate_year) == (None, None, None)
    first = compute_kpis(units, demands, bare, ALLOCATION, ORIENTATION, None).q1_outside_qpv
    assert (first.base_year, first.counted_year, first.rate_year) == (3, 2, 0.6667)
    text = render_kpis_text(compute_kpis(units, demands, bare, ALLOCATION, ORIENTATION, YEAR))
    row = next(line for line in text.splitlines() if "Q1 or ANRU outside QPV" in line)
    assert row.split() == [
        "Q1",
        "or",
        "ANRU",
        "outside",
        "QPV",
        "2/3",
        "66.7",
        "%",
        "-/-",
        "-",
        "-",
    ]


def test_compute_kpis_takes_what_solve_takes_and_names_missing_facts() -> None:
    """A policy name and a year-so-far mapping give the typed arguments' indicators.

    Plain demands are a TypeError naming the missing facts. A service computing the
    indicators of another allocation of its round got an AttributeError on 'str' for the
    policy's name, and a bare KeyError 'priority' for the demands it gave solve.
    """
    policy = load_policy("default-2026")
    units = units_of(unit("U1"), unit("U2", qpv=True))
    demands = demands_of(demand("D1"), demand("D2", dalo=True))
    facts = derive_facts(demands, policy, ROUND_DATE)
    allocation = pd.DataFrame(
        {"unit_id": ["U1", "U2"], "demand_id": ["D1", "D2"], "reservataire": ["bailleur"] * 2}
    )
    year = {"flux_units": 4, "tallies": {"mixity_outside_qpv": {"": {"base": 4, "counted": 1}}}}
    typed = compute_kpis(units, facts, policy, allocation, None, YearSoFar.model_validate(year))
    assert compute_kpis(units, facts, "default-2026", allocation, None, year) == typed
    with pytest.raises(TypeError, match=r"demands_with_facts: no derived column .*priority"):
        compute_kpis(units, demands, policy, allocation, None)
