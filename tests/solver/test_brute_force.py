"""Property tests: on random tiny rounds the solver's stage values equal a brute-force optimum.

The brute force enumerates every orientation-compatible allocation of a round of at most 4 units
and 6 households: each unit takes nothing or one admissible (household, réservataire) triple, no
household twice. Which triples are admissible is decided by the independent checker (one audit
of a table holding every candidate triple: eligibility, pools, the État's priority-only pool,
flux exclusions). Each candidate allocation is then judged with plain integer arithmetic written
here from DOMAIN A4 (bands from the shares in exact fractions; quota floors and ceilings as
``q x counted >= p x base``, year so far included), and the stages are maximised in the policy's
order (A5). The winner is finally audited by the checker with an explicit orientation: no
violation, and stage values identical to the checker's recomputation.

Every solver result is verified by the checker as well (`tests.solver.support.solve_checked`),
and each round is solved twice, with the LP-certified core forced (``prune_above_triples=0``)
and with the full model (``prune=False``): both must reach the brute-force optimum.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, example, given, reject, settings
from hypothesis import strategies as st

from matching import checker
from matching.eligibility import RULES as ELIGIBILITY_RULES
from matching.exceptions import InfeasibleError
from matching.facts import derive_facts
from matching.flux import YearSoFar
from matching.params import SolveParams
from matching.policy.model import Policy
from matching.policy.quotas import Tally, allocation_frame, scope_keys, selection
from matching.policy.scoring import score
from matching.round import solve
from matching.types import Bound, Measure, QuotaMode
from tests.factories import ROUND_DATE, demand, demands_of, unit, units_of
from tests.solver.support import (
    POLICY,
    Row,
    allocation_table,
    orientation_table,
    rows_of,
    rule,
    soft,
    solve_checked,
    with_mode,
    with_rules,
)
from tests.strategies import earlier_orientations, tiny_rounds, years_so_far

PRUNED = SolveParams(num_workers=1, time_limit_s=20.0, prune=True, prune_above_triples=0)
FULL = SolveParams(num_workers=1, time_limit_s=20.0, prune=False)
MAX_CANDIDATES = 150_000
"""Largest product of per-unit choices enumerated (larger draws are rejected)."""

PAIR_RULES = {*ELIGIBILITY_RULES}
RESERVATAIRE_RULES = {"pool", "state_priority_only", "flux_exclusion_reservataire"}


class Unenumerable(Exception):
    """The round has too many combinations to enumerate: the draw is left out."""


@dataclass(frozen=True)
class Optimum:
    """The brute-force optimum: stage values (shortfall as the checker reports it) and a witness."""

    values: dict[str, int]
    rows: list[Row]
    orientation: dict[str, str]


def admissible_triples(
    units: pd.DataFrame, demands: pd.DataFrame, policy: Policy, year: YearSoFar
) -> list[Row]:
    """Every (unit, household, réservataire) the checker accepts as a single allocation."""
    flux = (units["flux_excluded"] == "").to_numpy()
    candidates = [
        (u, d, r)
        for u, in_flux in zip(units["unit_id"], flux, strict=True)
        for d in demands["demand_id"]
        for r in (policy.reservataire_ids() if in_flux else ("",))
    ]
    audit = checker.audit(units, demands, policy, allocation_table(candidates), year, on=ROUND_DATE)
    refused_pairs, refused_triples = set(), set()
    for v in audit.violations:
        if v.rule_id in PAIR_RULES:
            refused_pairs.add((v.unit_id, v.demand_id))
        elif v.rule_id in RESERVATAIRE_RULES:
            refused_triples.add((v.unit_id, v.demand_id, str(v.numbers["reservataire"])))
    return [t for t in candidates if t[:2] not in refused_pairs and t not in refused_triples]


def bands(policy: Policy, n_flux: int, year: YearSoFar) -> dict[str, tuple[int, int]]:
    """A4: [floor(t), ceil(t)] clipped to what remains, t = share x flux so far - oriented.

    Clipped to [0, n_flux] each, and the floors to the n_flux units that remain as they are
    handed out, one réservataire at a time, the largest t first (ties: policy order).
    """
    owed = []
    for k, res in enumerate(policy.reservataires):
        if res.id == policy.flux.landlord or res.share is None:
            continue
        t = Fraction(str(res.share)) * (year.flux_units + n_flux) - year.oriented.get(res.id, 0)
        owed.append((-t, k, res.id, t))
    out = {}
    remains = n_flux
    for _, _, rid, t in sorted(owed):
        low = min(max(0, math.floor(t)), n_flux, remains)
        remains -= low
        out[rid] = (low, min(max(0, math.ceil(t)), n_flux))
    return {rid: out[rid] for _, _, rid, _ in sorted(owed, key=lambda o: o[1])}


def brute_force(
    units: pd.DataFrame, demands: pd.DataFrame, policy: Policy, year: YearSoFar
) -> Optimum | None:
    """The lexicographic optimum over every allocation, or None when none is valid (hard mode)."""
    facts = derive_facts(demands, policy, ROUND_DATE)
    triples = admissible_triples(units, demands, policy, year)
    unit_ids = list(units["unit_id"])
    demand_ids = list(demands["demand_id"])
    flux = (units["flux_excluded"] == "").to_numpy()
    n_flux = int(flux.sum())
    n_t = len(triples)  # index n_t is "nothing" (the unit stays vacant)

    # Per-triple features (row n_t is all zeros).
    t_unit = np.array([unit_ids.index(u) for u, _, _ in triples], dtype=np.int64)
    t_demand = np.array([demand_ids.index(d) for _, d, _ in triples] + [-1], dtype=np.int64)
    scores = score(facts, policy.cotation).total.to_numpy(dtype=np.int64)
    t_score = np.append(scores[t_demand[:-1]], 0)
    t_alloc = np.append(np.ones(n_t, dtype=np.int64), 0)
    t_flux = np.append(flux[t_unit], False).astype(np.int64)
    band = bands(policy, n_flux, year)
    t_band = {
        r: np.array([int(res == r) for _, _, res in triples] + [0], dtype=np.int64) for r in band
    }
    frame = allocation_frame(
        units, facts, t_unit, t_demand[:-1], np.array([r for _, _, r in triples], dtype=object)
    )
    quota_terms = []  # (quota rule, prior tally, base indicator, counted indicator) per scope group
    for quota_rule in policy.quotas.rules:
        assert not (quota_rule.scope and quota_rule.measure == Measure.COUNT), "not enumerated here"
        base, counted = selection(quota_rule, frame)
        keys = scope_keys(quota_rule, frame)
        groups = set(keys[base].tolist()) | set(year.tallies.get(quota_rule.id, {}))
        if quota_rule.scope is None:
            groups.add("")
        for g in sorted(groups):
            in_g = base & (keys == g)
            quota_terms.append((
                quota_rule, year.tally(quota_rule.id, g),
                np.append(in_g, False).astype(np.int64),
                np.append(in_g & counted, False).astype(np.int64),
            ))  # fmt: skip

    # Every combination of one choice per unit.
    options = [np.append(np.flatnonzero(t_unit == i), n_t) for i in range(len(unit_ids))]
    if math.prod(len(o) for o in options) > MAX_CANDIDATES:
        raise Unenumerable("too many combinations")
    grid = np.stack(np.meshgrid(*options, indexing="ij"), axis=-1).reshape(-1, len(options))

    def total(feature: np.ndarray) -> np.ndarray:
        return feature[grid].sum(axis=1)

    dem = t_demand[grid]
    valid = np.ones(len(grid), dtype=bool)
    for i in range(grid.shape[1]):
        for j in range(i + 1, grid.shape[1]):
            valid &= (dem[:, i] != dem[:, j]) | (dem[:, i] < 0)
    # Bands: no réservataire above its high end; the vacant flux units can lift every
    # réservataire to its low end (the landlord takes whatever remains).
    free = n_flux - total(t_flux)
    missing = np.zeros(len(grid), dtype=np.int64)
    for r, (low, high) in band.items():
        n_r = total(t_band[r])
        valid &= n_r <= high
        missing += np.maximum(0, low - n_r)
    valid &= missing <= free
    # Quotas: exact shortfall of each rule in each scope group, year so far included.
    penalty = np.zeros(len(grid), dtype=np.int64)
    within = np.ones(len(grid), dtype=bool)
    for quota_rule, prior, base_ind, counted_ind in quota_terms:
        b = total(base_ind) + prior.base
        c = total(counted_ind) + prior.counted
        floor = quota_rule.bound == Bound.FLOOR
        if quota_rule.measure == Measure.COUNT:
            gap = int(quota_rule.target) - c if floor else c - int(quota_rule.target)
        else:
            frac = Fraction(str(quota_rule.target))
            p, q = frac.numerator, frac.denominator
            excess = p * b - q * c if floor else q * c - p * b
            gap = -(-excess // q)
        short = np.maximum(0, gap)
        penalty += quota_rule.weight * short
        within &= short == 0
    if policy.quotas.mode == QuotaMode.HARD:
        valid &= within
    if not valid.any():
        return None
    stage_keys = {
        "shortfall": -penalty, "allocations": total(t_alloc), "score": total(t_score),
    }  # fmt: skip
    best = valid.copy()
    for stage in policy.objective.stages:
        key = stage_keys[stage.value]
        best &= key == key[best].max()
    k = int(np.flatnonzero(best)[0])
    values = {
        "shortfall": int(penalty[k]),
        "allocations": int(total(t_alloc)[k]),
        "score": int(total(t_score)[k]),
    }
    rows = [triples[t] for t in grid[k] if t < n_t]
    return Optimum(values, rows, witness_orientation(units, policy, rows, band))


def witness_orientation(
    units: pd.DataFrame, policy: Policy, rows: list[Row], band: dict[str, tuple[int, int]]
) -> dict[str, str]:
    """An orientation for an allocation: allocated units as allocated, the others to low ends."""
    orientation = {u: r for u, _, r in rows if r}
    counts = {r: sum(1 for v in orientation.values() if v == r) for r in band}
    for u in units.loc[units["flux_excluded"] == "", "unit_id"]:
        if u in orientation:
            continue
        short = [r for r, (low, _) in band.items() if counts[r] < low]
        orientation[u] = short[0] if short else policy.flux.landlord
        if short:
            counts[short[0]] += 1
    return orientation


def assert_matches_brute_force(
    units: pd.DataFrame, demands: pd.DataFrame, policy: Policy, year: YearSoFar
) -> None:
    """Solve both ways; compare with the brute force, whose witness the checker must accept."""
    try:
        optimum = brute_force(units, demands, policy, year)
    except Unenumerable:
        reject()
    if optimum is not None:
        audit = checker.audit(
            units, demands, policy, allocation_table(optimum.rows), year,
            orientation=orientation_table(optimum.orientation), on=ROUND_DATE,
        )  # fmt: skip
        assert audit.violations == (), checker.render_violations(audit.violations)
        assert {str(k): v for k, v in audit.stages.items()} == {
            s.value: optimum.values[s.value] for s in policy.objective.stages
        }
    event(
        "infeasible" if optimum is None else f"optimum: {optimum.values['allocations']} allocated"
    )
    for params in (PRUNED, FULL):
        if optimum is None and policy.quotas.mode == QuotaMode.HARD:
            with pytest.raises(InfeasibleError) as caught:
                solve_checked(units, demands, policy, params, year=year)
            assert caught.value.rule_ids, "an infeasible round names its conflicting rules"
            continue
        if optimum is None:  # soft mode: only the bands can conflict, and they are not raised
            infeasible = solve(units, demands, policy, params, year_so_far=year, on=ROUND_DATE)
            assert infeasible.status == "INFEASIBLE"
            assert all(c.startswith("flux_band[") for c in infeasible.conflicts)
            assert infeasible.conflicts
            continue
        result = solve_checked(units, demands, policy, params, year=year)
        event(f"{'pruned' if params is PRUNED else 'full'}: method {result.stats['method']}")
        expected = {k: v for k, v in optimum.values.items() if k in result.stage_values}
        assert result.stage_values == expected, (params, rows_of(result), optimum.rows)
        if policy.quotas.mode == QuotaMode.SOFT:
            assert result.stage_values.get("shortfall", 0) == optimum.values["shortfall"]


RULE_IDS = tuple(r.id for r in POLICY.quotas.rules)

# A round whose hard quotas cannot hold: earlier rounds allocated 3 units outside QPV, none to a
# Q1 household, and the only household is not Q1 (shortfall 1 whatever happens).
_U = units_of(unit("U1"))
_D = demands_of(demand("D1"))
_Y = YearSoFar(tallies={"mixity_outside_qpv": {"": Tally(base=3, counted=0)}})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(round_=tiny_rounds(), year=earlier_orientations())
def test_hard_rounds_match_brute_force(
    round_: tuple[pd.DataFrame, pd.DataFrame], year: YearSoFar
) -> None:
    """Default policy, hard quotas, shifted bands: solver optimum (both ways) = brute force."""
    assert_matches_brute_force(*round_, POLICY, year)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(round_=tiny_rounds(), year=earlier_orientations())
def test_hard_rounds_match_brute_force_many(
    round_: tuple[pd.DataFrame, pd.DataFrame], year: YearSoFar
) -> None:
    """The same property on 150 random rounds (about two minutes)."""
    assert_matches_brute_force(*round_, POLICY, year)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(round_=(_U, _D), year=_Y)
@given(round_=tiny_rounds(max_units=3, max_demands=5), year=years_so_far(RULE_IDS))
def test_hard_rounds_with_quota_tallies_match_brute_force(
    round_: tuple[pd.DataFrame, pd.DataFrame], year: YearSoFar
) -> None:
    """With earlier quota tallies (often infeasible): InfeasibleError exactly when brute says so."""
    assert_matches_brute_force(*round_, POLICY, year)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(round_=(_U, _D), year=_Y)
@given(round_=tiny_rounds(max_units=3, max_demands=5), year=years_so_far(RULE_IDS))
def test_soft_rounds_match_brute_force(
    round_: tuple[pd.DataFrame, pd.DataFrame], year: YearSoFar
) -> None:
    """Soft quotas: the weighted shortfall, then allocations, then score equal the brute force."""
    assert_matches_brute_force(*round_, soft(POLICY), year)


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    round_=tiny_rounds(max_units=3, max_demands=5),
    year=years_so_far(RULE_IDS),
    mode=st.sampled_from((QuotaMode.HARD, QuotaMode.SOFT)),
)
def test_rounds_with_quota_tallies_match_brute_force_many(
    round_: tuple[pd.DataFrame, pd.DataFrame], year: YearSoFar, mode: QuotaMode
) -> None:
    """The two properties above on 80 more random rounds, hard or soft."""
    assert_matches_brute_force(*round_, with_mode(POLICY, mode), year)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(round_=tiny_rounds(), data=st.data())
def test_solver_output_passes_the_checker_under_researcher_rules(
    round_: tuple[pd.DataFrame, pd.DataFrame], data: st.DataObject
) -> None:
    """A ceiling and a scoped share floor added to the default rules: still the brute optimum."""
    extra = [
        rule("dalo_at_most_half", "ceiling", "share", 0.5, count=[{"field": "demand.dalo"}]),
        rule(
            "q1_quarter_per_landlord", "floor", "share", 0.25,
            count=[{"field": "demand.q1_or_anru"}], scope="unit.bailleur",
        ),
    ]  # fmt: skip
    chosen = data.draw(st.lists(st.sampled_from(extra), min_size=1, unique_by=lambda r: r.id))
    policy = with_rules(POLICY, *POLICY.quotas.rules, *chosen)
    assert_matches_brute_force(*round_, policy, YearSoFar())


def test_brute_force_finds_the_known_optimum() -> None:
    """The enumerator itself reproduces a hand-computed optimum (test_instances: 192)."""
    units = units_of(unit("U1"), unit("U2"))
    demands = demands_of(
        demand("P1", dalo=True, filed_on=dt.date(2021, 3, 1)),  # 60 months: 60 + 20 + 50 = 130
        demand("P2", dalo=True, filed_on=dt.date(2022, 3, 1)),  # 48 months: 48 + 20 + 50 = 118
        demand("PQ", dalo=True, annual_income_eur=9000.0),  # 12 + 50 = 62, Q1
    )
    optimum = brute_force(units, demands, POLICY, YearSoFar())
    assert optimum is not None
    assert optimum.values == {"shortfall": 0, "allocations": 2, "score": 192}
    assert {d for _, d, _ in optimum.rows} == {"P1", "PQ"}
    assert brute_force(_U, _D, POLICY, _Y) is None
