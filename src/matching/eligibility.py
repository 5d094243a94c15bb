"""Eligibility of (unit, demand) pairs (DOMAIN A2, A3): named rules, the pair table, diagnostics.

Each rule of DOMAIN A2 (plus ``flux_exclusion``, the A3 restriction of units excluded from the flux
to the households their exclusion is for) is one named, vectorised predicate
``rule_<id>(units, demands, u_idx, d_idx, policy)`` over arrays of pair positions. The independent
checker calls `pair_failures` on allocated pairs, so the predicates re-read the raw columns and
never depend on how `eligible_pairs` buckets the work.

`eligible_pairs` builds the table of admissible pairs the solver works on without a Python loop
over unit x demand pairs: units are grouped into classes of identical discrete attributes
(commune, financing, rooms, accessibility, flux exclusion), each class gets one boolean mask over
all demands, and only the per-unit continuous tests (surface, rent effort) run on that class's
candidates. Both paths evaluate the very same elementwise expressions (`_income_ok`,
`_rent_ok`, ...), so their results agree bit for bit, including at the boundaries; a hypothesis
test compares them with a pure-Python reference.

Pools: bit ``i`` of a demand's pool mask (uint16) says that réservataire ``i`` of
``policy.reservataires`` may propose the household (DOMAIN A3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from matching.exceptions import DataError, PolicyError, RowProblem
from matching.facts import household_category
from matching.policy.conditions import evaluate
from matching.policy.fields import FACTS_HOW, require_derived_facts
from matching.policy.model import ELIGIBILITY_RULES, Policy
from matching.policy.scoring import demand_position, score
from matching.types import DemandId, FluxExclusion, RuleId, UnitId

RULES: tuple[RuleId, ...] = ELIGIBILITY_RULES
"""Every eligibility rule id, in the order failures are reported."""

POOL: RuleId = "pool"
"""Pseudo rule id of `why_not`: the pair passes every rule but no réservataire may propose it."""

RENT_TOLERANCE_EUR = 1e-6
"""Slack on the rent-effort bound, EUR/month, so that exactly ``max_ratio`` (33 %) passes despite
binary floating point (0.33 x 1,500 is not exactly 495)."""

MAX_RESERVATAIRES = 16
"""Pool masks are uint16: at most 16 réservataires."""

PAIR_COLUMNS: tuple[str, ...] = (
    "unit", "demand", "pools", "score", "q1", "q1_or_anru", "priority", "qpv",
)  # fmt: skip
"""Columns of `PairTable.pairs`, in order."""


# ---------------------------------------------------------------------------------------------
# Parameters derived from the policy, vectorised over demands or units
# ---------------------------------------------------------------------------------------------


def income_ceiling_eur(
    category: np.ndarray | int, financing: np.ndarray | str, policy: Policy
) -> np.ndarray:
    """Income ceiling (EUR/year) for each household category and unit financing (DOMAIN A2.1).

    Categories above 6 get the category-6 ceiling plus ``extra_person`` per category above 6.
    Both arguments broadcast against each other; the result is int64.
    """
    cat = np.asarray(category, dtype=np.int64)
    fin = np.asarray(financing, dtype=object)
    cat, fin = np.broadcast_arrays(cat, fin)
    out = np.zeros(cat.shape, dtype=np.int64)
    found = np.zeros(cat.shape, dtype=bool)
    capped = np.clip(cat, 1, 6) - 1
    extra = np.maximum(cat - 6, 0)
    for product, row in policy.income_ceilings.products.items():
        sel = fin == product.value
        if sel.any():
            table = np.asarray(row.by_category, dtype=np.int64)
            out[sel] = table[capped[sel]] + extra[sel] * row.extra_person
            found |= sel
    if not found.all():
        bad = sorted({str(v) for v in fin[~found]})
        raise PolicyError(f"income_ceilings: no ceiling for financing {bad}")
    return out


def typology_rooms(household_size: np.ndarray, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """Fewest and most rooms admissible for each household size (DOMAIN A2.2), int64 arrays."""
    bands = sorted(policy.eligibility.typology, key=lambda b: b.min_size)
    starts = np.array([b.min_size for b in bands], dtype=np.int64)
    lo = np.array([b.min_rooms for b in bands], dtype=np.int64)
    hi = np.array([b.max_rooms for b in bands], dtype=np.int64)
    band = np.searchsorted(starts, np.asarray(household_size, dtype=np.int64), side="right") - 1
    band = np.maximum(band, 0)
    return lo[band], hi[band]


def minimum_surface_m2(household_size: np.ndarray, policy: Policy) -> np.ndarray:
    """Minimum surface for each household size (CCH R822-25, DOMAIN A2.3), float64 array.

    9 m2 for one person, 16 for two, 9 more per extra person, never above the cap (70 m2, reached
    at eight persons).
    """
    rule = policy.eligibility.surface
    size = np.asarray(household_size, dtype=np.int64)
    need = np.where(
        size <= 1,
        rule.one_person_m2,
        rule.two_persons_m2 + np.maximum(size - 2, 0) * rule.per_extra_person_m2,
    )
    return np.minimum(need.astype(float), rule.cap_m2)


def rent_limit_eur(monthly_resources: np.ndarray, policy: Policy) -> np.ndarray:
    """Largest rent net of housing benefit each household may pay: max_ratio x resources + slack."""
    ratio = policy.eligibility.rent_effort.max_ratio
    return ratio * np.asarray(monthly_resources, dtype=float) + RENT_TOLERANCE_EUR


# Elementwise tests shared by the pair predicates and the bucketed pair builder: one expression
# per rule, so that both paths agree exactly, including at the boundaries.


def _income_ok(income: np.ndarray, ceiling: np.ndarray) -> np.ndarray:
    return np.asarray(income <= ceiling)


def _typology_ok(rooms: np.ndarray | int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.asarray((lo <= rooms) & (rooms <= hi))


def _surface_ok(surface: np.ndarray | float, minimum: np.ndarray) -> np.ndarray:
    return np.asarray(surface >= minimum)


def _rent_ok(rent: np.ndarray | float, benefit: np.ndarray, limit: np.ndarray) -> np.ndarray:
    return np.asarray((rent - benefit) <= limit)


def _accessibility_ok(accessible: np.ndarray | bool, needs: np.ndarray) -> np.ndarray:
    return np.asarray(accessible | ~needs)


def _category(demands: pd.DataFrame) -> np.ndarray:
    """Household category: the derived fact when present, else derived here the same way."""
    if "category" in demands.columns:
        return demands["category"].to_numpy(dtype=np.int64)
    return household_category(demands)


def _col(frame: pd.DataFrame, name: str, idx: np.ndarray, dtype: object = None) -> np.ndarray:
    return frame[name].to_numpy(dtype=dtype)[idx]  # type: ignore[call-overload]


def _flux_reason(units: pd.DataFrame) -> np.ndarray:
    """Flux-exclusion reason of each unit as plain text ('' when in the flux, even if missing)."""
    values = units["flux_excluded"].fillna("").to_numpy(dtype=object)
    return np.array([str(v) if v else "" for v in values], dtype=object)


# ---------------------------------------------------------------------------------------------
# One named predicate per rule (True = the pair passes)
# ---------------------------------------------------------------------------------------------

PairPredicate = Callable[[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray, Policy], np.ndarray]


def rule_income_ceiling(
    units: pd.DataFrame, demands: pd.DataFrame, u_idx: np.ndarray, d_idx: np.ndarray, policy: Policy
) -> np.ndarray:
    """A2.1: annual income at most the ceiling of the unit's financing for the category."""
    ceiling = income_ceiling_eur(
        _category(demands)[d_idx], _col(units, "financing", u_idx, object), policy
    )
    return _income_ok(_col(demands, "annual_income_eur", d_idx, float), ceiling)


def rule_typology(
    units: pd.DataFrame, demands: pd.DataFrame, u_idx: np.ndarray, d_idx: np.ndarray, policy: Policy
) -> np.ndarray:
    """A2.2: the unit's number of rooms lies in the band of the household size."""
    lo, hi = typology_rooms(_col(demands, "household_size", d_idx, np.int64), policy)
    return _typology_ok(_col(units, "rooms", u_idx, np.int64), lo, hi)


def rule_surface(
    units: pd.DataFrame, demands: pd.DataFrame, u_idx: np.ndarray, d_idx: np.ndarray, policy: Policy
) -> np.ndarray:
    """A2.3: the unit's surface is at least the minimum for the household size."""
    minimum = minimum_surface_m2(_col(demands, "household_size", d_idx, np.int64), policy)
    return _surface_ok(_col(units, "surface_m2", u_idx, float), minimum)


def rule_rent_effort(
    units: pd.DataFrame, demands: pd.DataFrame, u_idx: np.ndarray, d_idx: np.ndarray, policy: Policy
) -> np.ndarray:
    """A2.4: rent net of housing benefit at most max_ratio of monthly resources (equal passes).

    With no resources the limit is the slack alone, so only a rent covered by the benefit passes.
    """
    limit = rent_limit_eur(_col(demands, "monthly_resources_eur", d_idx, float), policy)
    benefit = _col(demands, "housing_benefit_eur", d_idx, float)
    return _rent_ok(_col(units, "rent_eur", u_idx, float), benefit, limit)


def rule_location(
    units: pd.DataFrame, demands: pd.DataFrame, u_idx: np.ndarray, d_idx: np.ndarray, policy: Policy
) -> np.ndarray:
    """A2.5: the unit's commune is among the wished communes (none wished = any commune).

    Vectorised by joining integer keys (demand, commune) of the pairs with those of the exploded
    wishes of the demands involved.
    """
    d_idx = np.asarray(d_idx, dtype=np.int64)
    if len(d_idx) == 0:
        return np.zeros(0, dtype=bool)
    involved, inverse = np.unique(d_idx, return_inverse=True)
    wished = demands["wished_communes"].to_numpy(dtype=object)[involved]
    lengths = np.fromiter((len(w) for w in wished), dtype=np.int64, count=len(wished))
    exploded = pd.Series(list(wished), dtype=object).explode().dropna()
    owners = exploded.index.to_numpy(dtype=np.int64)
    communes = _col(units, "commune_insee", u_idx, object).astype(str)
    codes, _ = pd.factorize(
        np.concatenate([communes, exploded.to_numpy(dtype=object).astype(str)]), sort=False
    )
    n_codes = int(codes.max()) + 1 if len(codes) else 1
    pair_keys = inverse.astype(np.int64) * n_codes + codes[: len(communes)]
    wish_keys = owners * n_codes + codes[len(communes) :]
    return np.asarray((lengths[inverse] == 0) | np.isin(pair_keys, wish_keys))


def rule_accessibility(
    units: pd.DataFrame, demands: pd.DataFrame, u_idx: np.ndarray, d_idx: np.ndarray, policy: Policy
) -> np.ndarray:
    """A2.6: a household that needs an adapted (PMR) unit only gets an adapted unit."""
    return _accessibility_ok(
        _col(units, "accessible", u_idx, bool), _col(demands, "needs_accessible", d_idx, bool)
    )


def rule_flux_exclusion(
    units: pd.DataFrame, demands: pd.DataFrame, u_idx: np.ndarray, d_idx: np.ndarray, policy: Policy
) -> np.ndarray:
    """A3: a unit excluded from the flux only goes to the households its exclusion is for.

    The households are those meeting ``policy.flux.exclusions[reason]``; units in the flux (empty
    reason) pass for every household.
    """
    d_idx = np.asarray(d_idx, dtype=np.int64)
    reason = _flux_reason(units)[u_idx]
    ok = reason == ""
    for excl, conditions in policy.flux.exclusions.items():
        sel = reason == excl.value
        if excl is FluxExclusion.NONE or not sel.any():
            continue
        involved, inverse = np.unique(d_idx[sel], return_inverse=True)
        ok[sel] = evaluate(conditions, demands.iloc[involved])[inverse]
    return np.asarray(ok, dtype=bool)


PREDICATES: dict[RuleId, PairPredicate] = {
    "income_ceiling": rule_income_ceiling,
    "typology": rule_typology,
    "surface": rule_surface,
    "rent_effort": rule_rent_effort,
    "location": rule_location,
    "accessibility": rule_accessibility,
    "flux_exclusion": rule_flux_exclusion,
}
"""The predicate of each rule id (True = the pair passes)."""

assert tuple(PREDICATES) == RULES, "one predicate per rule of ELIGIBILITY_RULES, in order"


def enabled_rules(policy: Policy) -> tuple[RuleId, ...]:
    """Rule ids the policy enables, in `RULES` order."""
    on = set(policy.eligibility.rules)
    return tuple(r for r in RULES if r in on)


def pair_failures(
    units: pd.DataFrame,
    demands: pd.DataFrame,
    u_idx: np.ndarray,
    d_idx: np.ndarray,
    policy: Policy,
) -> dict[RuleId, np.ndarray]:
    """Which enabled rules each pair fails (True = fails), pair by pair from the raw columns.

    Parameters
    ----------
    units, demands
        Canonical tables (demands preferably with derived facts; the category is derived here
        otherwise).
    u_idx, d_idx
        Row positions of the pairs' units and demands, same length.
    policy
        The policy (enabled rules and their parameters).

    Returns
    -------
    dict
        Rule id -> boolean array over the pairs, for every enabled rule, in `RULES` order.
    """
    u = np.asarray(u_idx, dtype=np.int64)
    d = np.asarray(d_idx, dtype=np.int64)
    if u.shape != d.shape:
        raise ValueError("u_idx and d_idx must have the same length")
    return {rule: ~PREDICATES[rule](units, demands, u, d, policy) for rule in enabled_rules(policy)}


# ---------------------------------------------------------------------------------------------
# Pools (DOMAIN A3)
# ---------------------------------------------------------------------------------------------


def demand_pools(demands_with_facts: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Bitmask (uint16) of the réservataires that may propose each household (DOMAIN A3).

    Bit ``i`` stands for ``policy.reservataires[i]``. It comes from each réservataire's pool
    conditions, except for demands whose ``pools`` column lists réservataires explicitly (not
    None), where that list replaces the derived mask (an empty tuple means no pool).
    """
    ids = policy.reservataire_ids()
    if len(ids) > MAX_RESERVATAIRES:
        raise PolicyError(
            f"reservataires: at most {MAX_RESERVATAIRES} are supported, got {len(ids)}"
        )
    n = len(demands_with_facts)
    mask = np.zeros(n, dtype=np.uint16)
    for i, res in enumerate(policy.reservataires):
        mask |= evaluate(res.pool, demands_with_facts).astype(np.uint16) << np.uint16(i)
    if "pools" not in demands_with_facts.columns or n == 0:
        return mask
    explicit = demands_with_facts["pools"].to_numpy(dtype=object)
    given = np.fromiter((p is not None for p in explicit), dtype=bool, count=n)
    if not given.any():
        return mask
    rows = np.flatnonzero(given)
    exploded = pd.Series(list(explicit[rows]), index=rows, dtype=object).explode().dropna()
    bit = {rid: np.uint16(1 << i) for i, rid in enumerate(ids)}
    values = exploded.to_numpy(dtype=object)
    known = np.fromiter((v in bit for v in values), dtype=bool, count=len(values))
    if not known.all():
        demand_ids = demands_with_facts["demand_id"].to_numpy(dtype=object)
        bad_rows = exploded.index.to_numpy()[~known]
        raise DataError(
            [
                RowProblem(
                    "demands", int(r) + 1, "pools", v,
                    f"demand {demand_ids[r]}: unknown réservataire; known: {', '.join(ids)}",
                )
                for r, v in zip(bad_rows, values[~known], strict=True)
            ]
        )  # fmt: skip
    mask[rows] = 0
    bits = np.fromiter((bit[v] for v in values), dtype=np.uint16, count=len(values))
    np.bitwise_or.at(mask, exploded.index.to_numpy(dtype=np.int64), bits)
    return mask


def proposable_pools(demands_with_facts: pd.DataFrame, policy: Policy) -> np.ndarray:
    """`demand_pools` less the réservataires the law keeps from proposing the household.

    A pool condition on ``priority`` is the law (the État's share goes to priority households
    only): an explicit ``pools`` list cannot lift it, as the solver's triples and the checker's
    ``state_priority_only`` rule have it. The pair table, the reasons of unallocated units and
    `why_not` use these pools, so that a non-priority household whose only explicit pool is
    ``etat`` is said to be in no pool, not eligible.
    """
    mask = demand_pools(demands_with_facts, policy)
    for i, res in enumerate(policy.reservataires):
        legal = tuple(c for c in res.pool if c.field == "priority")
        if legal:
            barred = ~evaluate(legal, demands_with_facts).astype(bool)
            mask[barred] &= np.uint16(~(1 << i) & 0xFFFF)
    return mask


# ---------------------------------------------------------------------------------------------
# The pair table
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairTable:
    """The admissible (unit, demand) pairs of a round, with what the model needs about them.

    Attributes
    ----------
    pairs
        One row per pair that passes every enabled rule and that someone may allocate, sorted by
        (unit, demand). Columns: ``unit`` (int32 row position in units), ``demand`` (int32 row
        position in demands), ``pools`` (uint16 réservataires that may take the pair: the
        demand's pools for a unit in the flux, 0 for a unit excluded from the flux, which the
        landlord allocates outside any réservataire), ``score`` (int64), ``q1``, ``q1_or_anru``,
        ``priority`` (demand facts) and ``qpv`` (unit), booleans.
    no_pool
        For each unit (int64, by row position), the pairs that pass every rule but were dropped
        because the demand is in no réservataire pool (only for units in the flux).
    pool_blocked
        For each demand (bool, by row position): it passes every rule on some unit in the flux
        but is in no réservataire's pool, so one of its pairs was dropped. Why a household with
        no pair has none: the pools, not the rules (``unallocated_demands.csv``).
    """

    pairs: pd.DataFrame
    no_pool: np.ndarray
    pool_blocked: np.ndarray

    def __len__(self) -> int:
        return len(self.pairs)


@dataclass(frozen=True)
class _DemandSide:
    """Per-demand arrays computed once per round for the bucketed builder."""

    income: np.ndarray
    category: np.ndarray
    rooms_lo: np.ndarray
    rooms_hi: np.ndarray
    min_surface: np.ndarray
    benefit: np.ndarray
    rent_limit: np.ndarray
    needs_accessible: np.ndarray
    wish_any: np.ndarray
    wish_order: np.ndarray  # demand positions of the exploded wishes, sorted by commune
    wish_communes: np.ndarray  # commune of each entry of wish_order (sorted)


def _demand_side(demands: pd.DataFrame, policy: Policy) -> _DemandSide:
    size = demands["household_size"].to_numpy(dtype=np.int64)
    lo, hi = typology_rooms(size, policy)
    wished = demands["wished_communes"].to_numpy(dtype=object)
    lengths = np.fromiter((len(w) for w in wished), dtype=np.int64, count=len(wished))
    exploded = pd.Series(list(wished), dtype=object).explode().dropna()
    owners = exploded.index.to_numpy(dtype=np.int64)
    communes = exploded.to_numpy(dtype=object).astype(str)
    order = np.argsort(communes, kind="stable")
    return _DemandSide(
        income=demands["annual_income_eur"].to_numpy(dtype=float),
        category=_category(demands),
        rooms_lo=lo,
        rooms_hi=hi,
        min_surface=minimum_surface_m2(size, policy),
        benefit=demands["housing_benefit_eur"].to_numpy(dtype=float),
        rent_limit=rent_limit_eur(demands["monthly_resources_eur"].to_numpy(dtype=float), policy),
        needs_accessible=demands["needs_accessible"].to_numpy(dtype=bool),
        wish_any=lengths == 0,
        wish_order=owners[order],
        wish_communes=communes[order],
    )


def _class_mask(
    side: _DemandSide,
    key: tuple[str, str, int, bool, str],
    rules: tuple[RuleId, ...],
    income_ok: dict[str, np.ndarray],
    flux_ok: dict[str, np.ndarray],
) -> np.ndarray:
    """Demands passing the rules that depend only on a unit class's discrete attributes."""
    commune, financing, rooms, accessible, reason = key
    mask = np.ones(len(side.income), dtype=bool)
    if "location" in rules:
        loc = side.wish_any.copy()
        start = int(np.searchsorted(side.wish_communes, commune, side="left"))
        stop = int(np.searchsorted(side.wish_communes, commune, side="right"))
        loc[side.wish_order[start:stop]] = True
        mask &= loc
    if "income_ceiling" in rules:
        mask &= income_ok[financing]
    if "typology" in rules:
        mask &= _typology_ok(rooms, side.rooms_lo, side.rooms_hi)
    if "accessibility" in rules:
        mask &= _accessibility_ok(accessible, side.needs_accessible)
    if "flux_exclusion" in rules and reason:
        mask &= flux_ok[reason]
    return mask


def round_scores(demands_with_facts: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Cotation score of each demand with the policy's grid (int64), for `eligible_pairs`."""
    return score(demands_with_facts, policy.cotation).total.to_numpy(dtype=np.int64)


def eligible_pairs(
    units: pd.DataFrame,
    demands_with_facts: pd.DataFrame,
    policy: Policy,
    scores: np.ndarray | None = None,
) -> PairTable:
    """Build the table of admissible (unit, demand) pairs, vectorised.

    Parameters
    ----------
    units
        Canonical units table of the round.
    demands_with_facts
        Demands with the derived facts of `matching.facts.derive_facts`.
    policy
        The policy: enabled rules, their parameters, réservataire pools and flux exclusions.
    scores
        Cotation score of each demand, by row position. When None, computed from
        ``policy.cotation`` (`round_scores`); callers that already scored the round pass their
        scores so that the pair table and their reports use the very same numbers.

    Returns
    -------
    PairTable
        The pairs, sorted by (unit, demand), and per unit the pairs dropped for lack of a pool.

    Raises
    ------
    TypeError
        ``demands_with_facts`` lacks the derived facts (naming them and how to get them).

    Notes
    -----
    Units are grouped into classes of equal (commune, financing, rooms, accessible,
    flux_excluded); each class costs a handful of boolean operations over all demands, then each
    unit of the class tests surface and rent effort on the class's candidates only. The cost is
    O(classes x demands + pairs), memory O(demands + pairs).
    """
    require_derived_facts(demands_with_facts.columns, FACTS_HOW)
    n_units, n_demands = len(units), len(demands_with_facts)
    if scores is None:
        scores = round_scores(demands_with_facts, policy)
    scores = np.asarray(scores, dtype=np.int64)
    if scores.shape != (n_demands,):
        raise ValueError(f"scores: expected {n_demands} values, got {scores.shape}")
    rules = enabled_rules(policy)
    pools = proposable_pools(demands_with_facts, policy)
    no_pool = np.zeros(n_units, dtype=np.int64)
    pool_blocked = np.zeros(n_demands, dtype=bool)
    if n_units == 0 or n_demands == 0:
        frame = _pair_frame(units, demands_with_facts, [], scores, pools)
        return PairTable(frame, no_pool, pool_blocked)

    side = _demand_side(demands_with_facts, policy)
    reasons = _flux_reason(units)
    financing = units["financing"].to_numpy(dtype=object).astype(str)
    income_ok = {
        f: _income_ok(side.income, income_ceiling_eur(side.category, f, policy))
        for f in np.unique(financing)
    }
    flux_ok = {
        excl.value: evaluate(conds, demands_with_facts)
        for excl, conds in policy.flux.exclusions.items()
        if excl.value in set(reasons)
    }
    surface = units["surface_m2"].to_numpy(dtype=float)
    rent = units["rent_eur"].to_numpy(dtype=float)
    keys = pd.DataFrame(
        {
            "commune": units["commune_insee"].to_numpy(dtype=object).astype(str),
            "financing": financing,
            "rooms": units["rooms"].to_numpy(dtype=np.int64),
            "accessible": units["accessible"].to_numpy(dtype=bool),
            "reason": reasons.astype(str),
        }
    )
    per_unit: list[np.ndarray] = [np.zeros(0, dtype=np.int32)] * n_units
    for group, members in keys.groupby(list(keys.columns), sort=True, dropna=False).indices.items():
        key = cast(tuple[str, str, int, bool, str], group)
        cand = np.flatnonzero(_class_mask(side, key, rules, income_ok, flux_ok)).astype(np.int32)
        min_surface, benefit, limit = (
            side.min_surface[cand],
            side.benefit[cand],
            side.rent_limit[cand],
        )
        in_flux = not key[4]
        unpooled = pools[cand] == 0 if in_flux else np.zeros(len(cand), dtype=bool)
        for u in members:
            ok = np.ones(len(cand), dtype=bool)
            if "surface" in rules:
                ok &= _surface_ok(surface[u], min_surface)
            if "rent_effort" in rules:
                ok &= _rent_ok(rent[u], benefit, limit)
            if in_flux:
                dropped = ok & unpooled
                no_pool[u] = int(np.count_nonzero(dropped))
                pool_blocked[cand[dropped]] = True
                ok &= ~unpooled
            per_unit[u] = cand[ok]
    frame = _pair_frame(units, demands_with_facts, per_unit, scores, pools)
    return PairTable(frame, no_pool, pool_blocked)


def _pair_frame(
    units: pd.DataFrame,
    demands: pd.DataFrame,
    per_unit: Sequence[np.ndarray],
    scores: np.ndarray,
    pools: np.ndarray,
) -> pd.DataFrame:
    """Assemble the pair table from each unit's sorted demand positions (columns gathered once)."""
    for name in ("q1", "q1_or_anru", "priority"):
        if name not in demands.columns:
            raise ValueError(f"demands: column '{name}' missing; call matching.facts.derive_facts")
    lengths = np.fromiter((len(a) for a in per_unit), dtype=np.int64, count=len(per_unit))
    unit = np.repeat(np.arange(len(per_unit), dtype=np.int32), lengths)
    demand = np.concatenate(per_unit) if len(per_unit) else np.zeros(0, dtype=np.int32)
    demand = demand.astype(np.int32, copy=False)
    excluded = (_flux_reason(units) != "") if len(units) else np.zeros(0, dtype=bool)
    at = demand.astype(np.intp)  # one conversion, instead of one per gathered column
    pair_pools = pools[at]
    pair_pools[excluded[unit]] = 0
    columns = {
        "unit": unit,
        "demand": demand,
        "pools": pair_pools.astype(np.uint16, copy=False),
        "score": scores[at].astype(np.int64, copy=False),
        "q1": demands["q1"].to_numpy(dtype=bool)[at],
        "q1_or_anru": demands["q1_or_anru"].to_numpy(dtype=bool)[at],
        "priority": demands["priority"].to_numpy(dtype=bool)[at],
        "qpv": units["qpv"].to_numpy(dtype=bool)[unit.astype(np.intp)],
    }
    del at
    # copy=False: the arrays are fresh, and it keeps pandas from consolidating the four boolean
    # columns into one block (a full copy of the table, a second at 30 million pairs).
    return pd.DataFrame(columns, copy=False)


# ---------------------------------------------------------------------------------------------
# Explanations
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """Why a pair cannot be allocated: a failed rule (or ``pool``) and the values that failed.

    Attributes
    ----------
    rule_id
        The failed eligibility rule, or `POOL` when no réservataire may propose the household.
    message
        The values compared, e.g. ``31,200 > 23,403 (PLUS, cat. 1)``.
    """

    rule_id: RuleId
    message: str

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.message}"


def _eur(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.2f}"


def eur_above(value: float, limit: float) -> str:
    """An amount above a limit, with the decimals that show it above (23,403.40, not 23,403).

    Whole euros when the amount is whole; else 2 decimals, more when 2 would round it down to
    the limit (23,403.004 is '23,403.004', not '23,403.00 > 23,403').
    """
    if float(value).is_integer():
        return f"{value:,.0f}"
    for digits in range(2, 10):
        shown = f"{value:,.{digits}f}"
        if float(shown.replace(",", "")) > limit:
            return shown
    return shown


def _m2(x: float) -> str:
    return f"{x:g}"


def _pct_above(value: float, limit: float) -> tuple[str, str]:
    """A ratio above a limit and the limit, as percentages that show the ratio is above.

    The limit in full (32.5 %, not 32 %), the ratio with as many decimals as that takes (a
    33.003 % effort was shown '33.0% > 33%').
    """
    limit_pct = limit * 100
    for digits in range(1, 7):
        shown = f"{value * 100:.{digits}f}"
        if float(shown) > limit_pct:
            break
    return f"{shown}%", f"{limit_pct:g}%"


def unit_position(units: pd.DataFrame, unit_id: UnitId) -> int:
    """Row position of a unit id, or a DataError naming the id when it is not in the round."""
    hits = np.flatnonzero(units["unit_id"].to_numpy() == unit_id)
    if len(hits) == 0:
        raise DataError([RowProblem("units", None, "unit_id", unit_id, "no such unit")])
    return int(hits[0])


def _failure_message(
    rule: RuleId, unit: pd.Series, demand: pd.Series, category: int, policy: Policy
) -> str:
    size = int(demand["household_size"])
    persons = f"{size} person{'s' if size > 1 else ''}"
    if rule == "income_ceiling":
        ceiling = int(income_ceiling_eur(category, str(unit["financing"]), policy))
        income = float(demand["annual_income_eur"])
        return (
            f"{eur_above(income, ceiling)} > {_eur(ceiling)} ({unit['financing']}, cat. {category})"
        )
    if rule == "typology":
        lo, hi = typology_rooms(np.array([size]), policy)
        return f"T{int(unit['rooms'])} outside T{int(lo[0])}-T{int(hi[0])} for {persons}"
    if rule == "surface":
        need = float(minimum_surface_m2(np.array([size]), policy)[0])
        return f"{_m2(float(unit['surface_m2']))} m2 < {_m2(need)} m2 minimum for {persons}"
    if rule == "rent_effort":
        rent, benefit = float(unit["rent_eur"]), float(demand["housing_benefit_eur"])
        resources = float(demand["monthly_resources_eur"])
        ratio = policy.eligibility.rent_effort.max_ratio
        if resources <= 0:
            return f"no monthly resources and rent {_eur(rent)} > housing benefit {_eur(benefit)}"
        effort = (rent - benefit) / resources
        shown, limit = _pct_above(effort, ratio)
        return f"({_eur(rent)} - {_eur(benefit)}) / {_eur(resources)} = {shown} > {limit}"
    if rule == "location":
        wished = ", ".join(demand["wished_communes"])
        return f"{unit['commune_insee']} not in wished communes ({wished})"
    if rule == "accessibility":
        return "the household needs an adapted (PMR) unit; this unit is not adapted"
    if rule == "flux_exclusion":
        reason = str(unit["flux_excluded"])
        conds = policy.flux.exclusions[FluxExclusion(reason)]
        wanted = " and ".join(c.describe() for c in conds) or "anyone"
        return f"unit excluded from the flux ({reason}) is only for households with {wanted}"
    raise ValueError(f"unknown rule {rule}")


def why_not(
    units: pd.DataFrame,
    demands_with_facts: pd.DataFrame,
    policy: Policy,
    unit_id: UnitId,
    demand_id: DemandId,
) -> list[Failure]:
    """Explain why a pair cannot be allocated; an empty list means it can.

    Returns the failed rules in `RULES` order, each with the values that failed, then a
    `POOL` failure when the unit is in the flux and no réservataire may propose the household
    (not an eligibility rule, but it keeps the pair out of the table all the same). Plain
    demands, without the derived facts, are a `TypeError` naming them.
    """
    require_derived_facts(demands_with_facts.columns, FACTS_HOW)
    u = unit_position(units, unit_id)
    d = demand_position(demands_with_facts, demand_id)
    fails = pair_failures(units, demands_with_facts, np.array([u]), np.array([d]), policy)
    unit_row, demand_row = units.iloc[u], demands_with_facts.iloc[d]
    category = int(_category(demands_with_facts.iloc[[d]])[0])
    out = [
        Failure(rule, _failure_message(rule, unit_row, demand_row, category, policy))
        for rule, failed in fails.items()
        if failed[0]
    ]
    in_flux = _flux_reason(units.iloc[[u]])[0] == ""
    if in_flux and proposable_pools(demands_with_facts.iloc[[d]], policy)[0] == 0:
        explicit = demand_row.get("pools")
        if explicit is not None:
            detail = (
                f"its explicit pools ({', '.join(explicit)}) name only réservataires "
                "that propose priority households, and it is not one"
            )
        else:
            detail = "it meets no réservataire's pool conditions"
        out.append(Failure(POOL, f"no réservataire may propose the household: {detail}"))
    return out


def render_why_not(unit_id: UnitId, demand_id: DemandId, failures: list[Failure]) -> str:
    """Render `why_not` as text, one failure per line."""
    if not failures:
        # Why the second line: "eligible" is read off the rules and the pools alone, before any
        # orientation; a tester read it as "could have had the unit" for a household whose
        # pools do not hold the réservataire the solved round oriented the unit to
        return (
            f"Unit {unit_id} / demand {demand_id}: eligible\n"
            "  by the rules and the pools, before the round orients the unit to a réservataire;\n"
            f"  after a solve, matching explain-demand FOLDER {demand_id} says what became of it"
        )
    lines = [f"Unit {unit_id} / demand {demand_id}: not allocatable"]
    lines += [f"  - {f}" for f in failures]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EligibilityDiagnostics:
    """Aggregate eligibility figures of a round.

    Attributes
    ----------
    per_unit
        One row per unit: ``unit_id``, ``flux_excluded``, one column per réservataire id (eligible
        demands in its pool; always 0 for units excluded from the flux), ``any`` (eligible demands
        someone may allocate: rows of the pair table) and ``no_pool`` (eligible demands dropped
        because they are in no pool).
    blocked
        One row per unit with ``any == 0``: ``unit_id``, ``binding`` and two counts per enabled
        rule: ``<rule>`` = demands the rule excludes (it fails for them, whatever the other rules
        say) and ``only_<rule>`` = demands that fail this rule and no other (lifting it alone
        would make them eligible). ``binding`` is the rule with the largest ``only_`` count, ties
        and all-zero cases going to the largest ``<rule>`` count, then to `RULES` order;
        ``pool`` when every rule passes for some demands but none is in a pool; empty when the
        round has no demand.
    n_pairs
        Rows of the pair table.
    n_no_pool
        Eligible pairs dropped because the demand is in no pool.
    n_demands_with_pair
        Demands that appear in at least one pair.
    """

    per_unit: pd.DataFrame
    blocked: pd.DataFrame
    n_pairs: int
    n_no_pool: int
    n_demands_with_pair: int


_BLOCKED_CHUNK_PAIRS = 2_000_000


def diagnostics(
    units: pd.DataFrame,
    demands_with_facts: pd.DataFrame,
    policy: Policy,
    pairs: PairTable,
) -> EligibilityDiagnostics:
    """Per-unit counts of eligible demands by pool, and the binding rules of blocked units.

    The binding rules of a blocked unit are found by evaluating every rule on the unit against
    all demands (`pair_failures`), in chunks, so the cost is O(blocked units x demands).
    """
    n_units, n_demands = len(units), len(demands_with_facts)
    table = pairs.pairs
    unit = table["unit"].to_numpy(dtype=np.int64)
    pool_bits = table["pools"].to_numpy(dtype=np.uint16)
    per_unit = pd.DataFrame(
        {
            "unit_id": units["unit_id"].to_numpy(dtype=object),
            "flux_excluded": _flux_reason(units),
        }
    )
    # `any` before the réservataires, as the printed table has it (the file had it after)
    per_unit["any"] = np.bincount(unit, minlength=n_units).astype(np.int64)
    for i, rid in enumerate(policy.reservataire_ids()):
        has = (pool_bits & np.uint16(1 << i)) != 0
        per_unit[rid] = np.bincount(unit[has], minlength=n_units).astype(np.int64)
    per_unit["no_pool"] = np.asarray(pairs.no_pool, dtype=np.int64)

    rules = enabled_rules(policy)
    blocked_pos = np.flatnonzero(per_unit["any"].to_numpy() == 0)
    rows = []
    step = max(1, _BLOCKED_CHUNK_PAIRS // max(n_demands, 1))
    for start in range(0, len(blocked_pos), step):
        chunk = blocked_pos[start : start + step]
        u_idx = np.repeat(chunk, n_demands)
        d_idx = np.tile(np.arange(n_demands), len(chunk))
        fails = pair_failures(units, demands_with_facts, u_idx, d_idx, policy)
        n_failed = sum((f.astype(np.int64) for f in fails.values()), np.zeros(len(u_idx), np.int64))
        for k, u in enumerate(chunk):
            part = slice(k * n_demands, (k + 1) * n_demands)
            row: dict[str, object] = {"unit_id": units["unit_id"].iloc[u]}
            only_one = n_failed[part] == 1
            for rule in rules:
                row[rule] = int(np.count_nonzero(fails[rule][part]))
                row[f"only_{rule}"] = int(np.count_nonzero(fails[rule][part] & only_one))
            row["binding"] = _binding(row, rules, int(per_unit["no_pool"].iloc[u]), n_demands)
            rows.append(row)
    columns = ["unit_id", "binding", *(c for r in rules for c in (r, f"only_{r}"))]
    blocked = pd.DataFrame(rows, columns=columns)
    for col in columns[2:]:
        blocked[col] = blocked[col].astype(np.int64)
    return EligibilityDiagnostics(
        per_unit=per_unit,
        blocked=blocked,
        n_pairs=len(table),
        n_no_pool=int(np.asarray(pairs.no_pool).sum()),
        n_demands_with_pair=int(
            np.count_nonzero(np.bincount(table["demand"].to_numpy(), minlength=n_demands))
        ),
    )


def _binding(row: dict[str, object], rules: tuple[RuleId, ...], no_pool: int, n: int) -> str:
    if n == 0:
        return ""
    if no_pool > 0 or not rules:
        return POOL
    return max(rules, key=lambda r: (row[f"only_{r}"], row[r], -rules.index(r)))


def render_diagnostics(diag: EligibilityDiagnostics, policy: Policy, max_units: int = 50) -> str:
    """Render the diagnostics as text: totals, the per-pool table and the blocked units."""
    per_unit = diag.per_unit
    ids = list(policy.reservataire_ids())
    lines = [
        f"{len(per_unit):,} units, {diag.n_pairs:,} eligible pairs, "
        f"{diag.n_demands_with_pair:,} demands in at least one pair, "
        # "and ... more": the pairs in no pool are not among the eligible pairs counted before
        # (those someone may propose, result.json's eligible_pairs); "724 eligible pairs, ...,
        # 7 eligible pairs in no pool" read as 7 of the 724
        f"and {diag.n_no_pool:,} more eligible pair(s) in no pool (no réservataire may propose "
        "them)",
        "",
        "Eligible demands per unit and pool (" + ", ".join(["any", *ids]) + "):",
    ]
    any_col = per_unit["any"].to_numpy()
    if len(per_unit):
        lines.append(
            f"  min {any_col.min():,}, median {np.median(any_col):,g}, max {any_col.max():,} "
            "per unit"
        )
    table = per_unit[["unit_id", "flux_excluded", "any", *ids, "no_pool"]]
    counts = [c for c in table.columns if c not in ("unit_id", "flux_excluded")]
    if max_units > 0 and len(table):  # no rows: pandas prints "Empty DataFrame", its repr
        shown = table.head(max_units).to_string(
            index=False, formatters={c: "{:,}".format for c in counts}
        )
        lines += ["  " + line for line in shown.splitlines()]
    if len(table) > max_units:
        lines.append(f"  ... {len(table) - max_units:,} more units")
    lines.append("")
    if diag.blocked.empty:
        lines.append("Every unit has at least one eligible demand in a pool.")
    else:
        lines.append(f"{len(diag.blocked):,} unit(s) with no eligible demand in any pool:")
        rules = [c for c in diag.blocked.columns[2:] if not c.startswith("only_")]
        for data in diag.blocked.head(max_units).to_dict(orient="records"):
            excluded = ", ".join(f"{r} {data[r]:,} (only {data['only_' + r]:,})" for r in rules)
            lines.append(
                f"  {data['unit_id']}: binding {data['binding'] or '-'}; excluded by {excluded}"
            )
        # Why: blocked units beyond --max-units were left out without a word ("3 unit(s) ...:"
        # then one line), as the per-unit table says how many it does not show
        if len(diag.blocked) > max_units:
            hidden = len(diag.blocked) - max_units
            lines.append(f"  ... {hidden:,} more unit{'s' if hidden > 1 else ''}")
    return "\n".join(lines)
