"""The vectorised pair table equals a slow, obviously correct reference on random small territories.

The reference below reads DOMAIN A1-A3 literally, one pair at a time in plain Python, with exact
decimal arithmetic for the rent effort and its own condition evaluator; it shares nothing with
`matching.eligibility` or `matching.facts` but the policy object. Values are drawn from small sets
that sit on the boundaries (incomes at a ceiling and one euro above, rents at exactly 33 %,
surfaces at the minimum and 0.1 m2 below), so that equality is tested where it is fragile.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import Any

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from matching.domain import Demand, Unit
from matching.eligibility import eligible_pairs
from matching.facts import derive_facts
from matching.policy import load_policy
from matching.policy.conditions import Condition
from matching.policy.model import Policy
from tests.factories import ROUND_DATE, demand, demands_of, unit, units_of

POLICY = load_policy("default-2026")
COMMUNES = ("14118", "14047", "14341")
INCOMES = (0.0, 5000.0, 12870.0, 12871.0, 15000.0, 18752.0, 23403.0, 23404.0, 31254.0,
           31255.0, 37584.0, 37585.0, 40630.0, 60156.0, 66866.0, 66867.0)  # fmt: skip
RESOURCES = (0.0, 1000.0, 1200.0, 1500.0, 1234.56)
BENEFITS = (0.0, 100.0, 212.7)
# 33 % exactly: 330 + 0 and 542.7 - 212.7 of 1,000; 396 and 608.7 of 1,200; 495 and 707.7 of
# 1,500 (in floats 542.7 - 212.7 > 0.33 x 1,000: the tolerance matters there).
RENTS = (0.0, 212.7, 330.0, 396.0, 495.0, 495.01, 542.7, 542.71, 608.7, 707.7, 900.0)
EXCLUSIONS = ("", "", "", "mutation", "anru", "habitat_indigne", "vente")
CATEGORIES = ("habitat_indigne", "violences")
SURFACES = (8.9, 9.0, 15.9, 16.0, 25.0, 33.9, 34.0, 52.0, 61.0, 69.9, 70.0, 120.0)


# --- the reference -------------------------------------------------------------------------


def ref_category(d: Demand) -> int:
    """The arrêté's list (DOMAIN's table of household categories): the highest line met.

    ``n`` persons is category ``n``; one person + ``k`` dependants (the household is that
    person and its dependants, whatever their ages: a lone parent of a teenager counts two
    persons aged 14 or more) is ``k + 2``; a young couple without dependant (the two of them)
    is 3; a disabled member moves the household up one category.
    """
    lines = [d.household_size]
    if d.young_couple and d.dependants == 0 and d.household_size == 2:
        lines.append(3)
    if d.dependants >= 1 and d.household_size == 1 + d.dependants:
        lines.append(d.dependants + 2)
    return max(lines) + int(d.disabled_member)


def ref_facts(d: Demand, policy: Policy) -> dict[str, Any]:
    """Return the demand as a dict with the derived facts the policy conditions may read."""
    cu = 1 + 0.5 * (d.adults - 1) + 0.3 * d.children_under_14
    q1 = d.annual_income_eur / cu < policy.household.q1_threshold_eur_per_cu
    return {
        **d.model_dump(),
        "q1": q1,
        "q1_or_anru": q1 or d.anru,
        "priority": d.dalo or len(d.priority_categories) > 0,
    }


def ref_holds(cond: Condition, row: dict[str, Any]) -> bool:
    value, x = cond.value, row[cond.field]
    checks = {
        "eq": lambda: x == value, "ne": lambda: x != value, "lt": lambda: x < value,
        "le": lambda: x <= value, "gt": lambda: x > value, "ge": lambda: x >= value,
        "in": lambda: x in value, "not_in": lambda: x not in value,
        "contains": lambda: value in x, "nonempty": lambda: len(x) > 0,
        "empty": lambda: len(x) == 0,
    }  # fmt: skip
    return bool(checks[cond.op]())


def ref_ceiling(category: int, financing: str, policy: Policy) -> int:
    row = next(r for p, r in policy.income_ceilings.products.items() if p.value == financing)
    if category <= 6:
        return row.by_category[category - 1]
    return row.by_category[5] + (category - 6) * row.extra_person


def ref_rooms(size: int, policy: Policy) -> tuple[int, int]:
    for band in policy.eligibility.typology:
        if band.min_size <= size and (band.max_size is None or size <= band.max_size):
            return band.min_rooms, band.max_rooms
    raise AssertionError("no band")


def ref_min_surface(size: int) -> float:
    need = 9 if size == 1 else 16 + 9 * (size - 2)
    return min(need, 70)


def ref_eligible(u: Unit, d: Demand, row: dict[str, Any], policy: Policy) -> bool:
    if d.annual_income_eur > ref_ceiling(ref_category(d), u.financing.value, policy):
        return False
    lo, hi = ref_rooms(d.household_size, policy)
    if not lo <= u.rooms <= hi:
        return False
    if u.surface_m2 < ref_min_surface(d.household_size):
        return False
    # (rent - benefit) <= 33 % of resources, exactly, with the documented 1e-6 EUR slack.
    net = Fraction(str(u.rent_eur)) - Fraction(str(d.housing_benefit_eur))
    limit = Fraction("0.33") * Fraction(str(d.monthly_resources_eur)) + Fraction(1, 10**6)
    if net > limit:
        return False
    if d.wished_communes and u.commune_insee not in d.wished_communes:
        return False
    if d.needs_accessible and not u.accessible:
        return False
    if u.flux_excluded.value:
        conds = policy.flux.exclusions[u.flux_excluded]
        if not all(ref_holds(c, row) for c in conds):
            return False
    return True


def ref_pools(row: dict[str, Any], policy: Policy) -> int:
    ids = [r.id for r in policy.reservataires]
    if row["pools"] is not None:
        # an explicit list cannot lift a pool condition on priority (the État's, by law)
        barred = {
            r.id
            for r in policy.reservataires
            if not all(ref_holds(c, row) for c in r.pool if c.field == "priority")
        }
        return sum(1 << ids.index(r) for r in set(row["pools"]) - barred)
    mask = 0
    for i, res in enumerate(policy.reservataires):
        if all(ref_holds(c, row) for c in res.pool):
            mask |= 1 << i
    return mask


def reference_pairs(
    units: list[Unit], demands: list[Demand], scores: list[int], policy: Policy
) -> list[tuple[Any, ...]]:
    rows = [ref_facts(d, policy) for d in demands]
    out = []
    for i, u in enumerate(units):
        for j, d in enumerate(demands):
            if not ref_eligible(u, d, rows[j], policy):
                continue
            in_flux = u.flux_excluded.value == ""
            pools = ref_pools(rows[j], policy) if in_flux else 0
            if in_flux and pools == 0:
                continue
            r = rows[j]
            out.append((i, j, pools, scores[j], r["q1"], r["q1_or_anru"], r["priority"], u.qpv))
    return out


# --- random territories --------------------------------------------------------------------


@st.composite
def units_st(draw: st.DrawFn, i: int) -> Unit:
    return unit(
        f"U{i}",
        commune_insee=draw(st.sampled_from(COMMUNES)),
        qpv=draw(st.booleans()),
        rooms=draw(st.integers(1, 7)),
        surface_m2=draw(st.sampled_from(SURFACES)),
        financing=draw(st.sampled_from(("PLAI", "PLUS", "PLS"))),
        rent_eur=draw(st.sampled_from(RENTS)),
        accessible=draw(st.booleans()),
        flux_excluded=draw(
            st.sampled_from(("", "", "", "mutation", "anru", "habitat_indigne", "vente"))
        ),
    )


@st.composite
def demands_st(draw: st.DrawFn, i: int) -> Demand:
    size = draw(st.integers(1, 9))
    adults = draw(st.integers(1, min(size, 3)))
    res_ids = [r.id for r in POLICY.reservataires]
    return demand(
        f"D{i}",
        filed_on=dt.date(2020, 1, 1) + dt.timedelta(days=draw(st.integers(0, 2000))),
        household_size=size,
        adults=adults,
        children_under_14=size - adults,
        dependants=draw(st.integers(0, size - 1)),
        disabled_member=draw(st.booleans()),
        young_couple=adults >= 2 and draw(st.booleans()),  # a couple: two adults
        annual_income_eur=draw(st.sampled_from(INCOMES)),
        monthly_resources_eur=draw(st.sampled_from(RESOURCES)),
        housing_benefit_eur=draw(st.sampled_from(BENEFITS)),
        wished_communes=tuple(draw(st.lists(st.sampled_from(COMMUNES), max_size=2, unique=True))),
        needs_accessible=draw(st.booleans()),
        dalo=draw(st.booleans()),
        priority_categories=tuple(
            draw(
                st.lists(st.sampled_from(("habitat_indigne", "violences")), max_size=2, unique=True)
            )
        ),
        anru=draw(st.booleans()),
        state_agent=draw(st.booleans()),
        private_employee=draw(st.booleans()),
        current_social_tenant=draw(st.booleans()),
        # Explicit pools a quarter of the time, an empty list included.
        pools=draw(
            st.one_of(*[st.none()] * 3, st.lists(st.sampled_from(res_ids), max_size=2).map(tuple))
        ),
    )


@st.composite
def territories(draw: st.DrawFn) -> tuple[list[Unit], list[Demand], list[int]]:
    n_units = draw(st.integers(0, 8))
    n_demands = draw(st.integers(0, 30))
    units = [draw(units_st(i)) for i in range(n_units)]
    demands = [draw(demands_st(i)) for i in range(n_demands)]
    scores = draw(st.lists(st.integers(-50, 500), min_size=n_demands, max_size=n_demands))
    return units, demands, scores


@given(territories())
@example(
    (
        [unit("U0")],
        [demand("D0", pools=("etat", "bailleur")), demand("D1", pools=("etat",))],
        [0, 0],
    )
)
@example(
    (
        [unit("U0", rent_eur=542.7)],
        [demand("D0", housing_benefit_eur=212.7, monthly_resources_eur=1000.0)],
        [0],
    )
)
def test_vectorised_pairs_equal_the_reference(
    territory: tuple[list[Unit], list[Demand], list[int]],
) -> None:
    """eligible_pairs equals the pure-Python reference pair by pair, pools and facts included."""
    units, demands, scores = territory
    frame = derive_facts(demands_of(*demands), POLICY, ROUND_DATE)
    table = eligible_pairs(units_of(*units), frame, POLICY, np.array(scores, dtype=np.int64))
    got = [
        (int(r.unit), int(r.demand), int(r.pools), int(r.score), bool(r.q1),
         bool(r.q1_or_anru), bool(r.priority), bool(r.qpv))
        for r in table.pairs.itertuples(index=False)
    ]  # fmt: skip
    assert got == reference_pairs(units, demands, scores, POLICY)
