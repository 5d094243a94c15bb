"""Key indicators of an allocation round: flux, priority, social mix, filling, scores, quotas.

The figures a CALEOL, a réservataire or the EPCI's annual bilan asks for (DOMAIN Part B 2 and 4):
per réservataire its flux target, orientations and allocations with the share to priority
households; the two mixity rates (Q1 or ANRU outside QPV, non-Q1 inside QPV), for the round and
for the year to date; units filled; the distribution of the allocated households' scores; the same
per landlord; and every quota rule's rate against its target. Quotas are counted by the
independent checker's own function, so the report and the audit cannot disagree.

The result is plain data (`RoundKpis`); `RoundKpis.to_dict` gives a JSON-ready mapping with a fixed
key order and rounded floats, so that the same round always writes the same bytes, and
`render_kpis_text` an aligned table for the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum
from numbers import Integral
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import numpy as np
import pandas as pd

from matching.checker import (
    ORIENTATION_COLUMNS,
    QuotaOutcome,
    fraction_text,
    group_label,
    normalise_table,
    quota_outcomes,
    resolve_allocation,
)
from matching.flux import YearSoFar, flux_bands
from matching.io import year_so_far_of
from matching.policy.conditions import Condition
from matching.policy.fields import FACTS_HOW, require_derived_facts
from matching.policy.loader import policy_of
from matching.policy.model import Policy, QuotaRule
from matching.policy.quotas import NO_RESERVATAIRE, Tally
from matching.policy.scoring import score

RATE_DIGITS = 4
"""Rates and shares are rounded to 4 decimals (0.01 percentage point) in the KPIs."""

SCORE_DIGITS = 2
"""Score statistics (mean, quartiles) are rounded to 2 decimals."""

_OUTSIDE_QPV = (Condition(field="unit.qpv", op="eq", value=False),)
_INSIDE_QPV = (Condition(field="unit.qpv", op="eq", value=True),)
_Q1_OR_ANRU = (Condition(field="demand.q1_or_anru", op="eq", value=True),)
_NOT_Q1 = (Condition(field="demand.q1", op="eq", value=False),)


def _rate(counted: int, base: int) -> float | None:
    return round(counted / base, RATE_DIGITS) if base else None


@dataclass(frozen=True)
class ReservataireKpis:
    """One réservataire's flux and allocations in the round.

    Attributes
    ----------
    reservataire, label
        Id and name.
    share
        Share of the yearly flux (the landlord's is the remainder).
    band_target
        This round's exact orientation target ``t_r`` (A4), rounded; None for the landlord.
    band_target_exact
        The same as an exact fraction ``p/q``; empty for the landlord.
    band_low, band_high
        Admissible orientation counts this round; None for the landlord (no band).
    oriented
        Flux units of the round oriented to it (None without an orientation table).
    oriented_year
        Oriented in earlier rounds plus this round (None without an orientation table).
    allocated
        Allocations through it this round.
    priority_allocated
        Of those, to priority households (DALO or an L441-1 category).
    priority_rate
        ``priority_allocated / allocated`` (None when nothing was allocated).
    """

    reservataire: str
    label: str
    share: float
    band_target: float | None
    band_target_exact: str
    band_low: int | None
    band_high: int | None
    oriented: int | None
    oriented_year: int | None
    allocated: int
    priority_allocated: int
    priority_rate: float | None


@dataclass(frozen=True)
class MixityKpis:
    """A social-mix rate (A4): counted allocations among a base, for the round and the year.

    Attributes
    ----------
    base, counted, rate
        This round: allocations in the base (e.g. units outside QPV), those counted (e.g. to Q1
        or ANRU households), and the rate.
    base_year, counted_year, rate_year
        Year to date: this round plus the earlier rounds' tallies of ``rule_id`` (of all its
        scope groups, for a scoped rule).
    rule_id
        The policy's quota rule with the same base and count (EPCI-wide first, else scoped),
        whose year-so-far tallies are added; None when the policy has none: the year to date
        then equals the round in the year's first round, and is unknown (None) after earlier
        rounds, whose mix only such a rule's tallies keep.
    target
        That rule's target (None without a rule, or for a scoped rule: it holds per group).
    """

    base: int
    counted: int
    rate: float | None
    base_year: int | None
    counted_year: int | None
    rate_year: float | None
    rule_id: str | None
    target: float | None


@dataclass(frozen=True)
class UnitKpis:
    """Units of the round and how many were filled.

    Attributes
    ----------
    total, flux, excluded
        Units released; in the flux; excluded from it (A3).
    allocated, unallocated
        Units filled and left vacant (distinct units).
    flux_allocated, excluded_allocated
        Filled units in and out of the flux.
    fill_rate
        ``allocated / total`` (None without units).
    """

    total: int
    flux: int
    excluded: int
    allocated: int
    unallocated: int
    flux_allocated: int
    excluded_allocated: int
    fill_rate: float | None


@dataclass(frozen=True)
class DemandKpis:
    """Demands of the round and how many were housed.

    Attributes
    ----------
    total, allocated, rate
        Demands, those allocated a unit (distinct), and the share.
    priority_total, priority_allocated, priority_rate
        The same for priority households.
    """

    total: int
    allocated: int
    rate: float | None
    priority_total: int
    priority_allocated: int
    priority_rate: float | None


@dataclass(frozen=True)
class ScoreKpis:
    """Distribution of the cotation scores of the allocated households (one per allocation).

    Quartiles use linear interpolation between order statistics (numpy's default); every figure
    is None when nothing was allocated.
    """

    count: int
    total: int
    mean: float | None
    min: int | None
    q1: float | None
    median: float | None
    q3: float | None
    max: int | None


@dataclass(frozen=True)
class LandlordKpis:
    """One landlord's (bailleur's) units, allocations and social-mix rates in the round.

    Attributes
    ----------
    bailleur
        The landlord.
    units, flux_units, allocated, fill_rate
        Its units, those in the flux, those filled, and the share filled.
    outside_qpv, q1_or_anru_outside_qpv, q1_rate_outside_qpv
        Its allocations outside QPV, those to Q1 or ANRU households, and the rate.
    inside_qpv, non_q1_inside_qpv, non_q1_rate_inside_qpv
        Its allocations inside QPV, those to households outside Q1, and the rate.
    """

    bailleur: str
    units: int
    flux_units: int
    allocated: int
    fill_rate: float | None
    outside_qpv: int
    q1_or_anru_outside_qpv: int
    q1_rate_outside_qpv: float | None
    inside_qpv: int
    non_q1_inside_qpv: int
    non_q1_rate_inside_qpv: float | None


@dataclass(frozen=True)
class QuotaKpis:
    """One quota rule in one scope group: rate against target, year so far included.

    Attributes
    ----------
    rule_id, label, scope, bound, measure, target
        The rule and its group (``''``: EPCI-wide, or, for a rule scoped by ``reservataire``,
        the units excluded from the flux).
    base, counted
        This round.
    prior_base, prior_counted
        Earlier rounds of the year.
    rate
        Counted share of the base over the year to date (None when the base is empty).
    limit
        Counted allocations the year's base needs (floor) or allows (ceiling).
    shortfall
        Allocations by which the rule is missed (0 when met).
    """

    rule_id: str
    label: str
    scope: str
    bound: str
    measure: str
    target: float
    base: int
    counted: int
    prior_base: int
    prior_counted: int
    rate: float | None
    limit: int
    shortfall: int


@dataclass(frozen=True)
class RoundKpis:
    """Every indicator of one allocation round (see the module docstring)."""

    quota_mode: str
    units: UnitKpis
    demands: DemandKpis
    reservataires: tuple[ReservataireKpis, ...]
    no_reservataire_allocated: int
    q1_outside_qpv: MixityKpis
    non_q1_inside_qpv: MixityKpis
    score: ScoreKpis
    landlords: tuple[LandlordKpis, ...]
    quotas: tuple[QuotaKpis, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping: keys in field order, floats already rounded, tuples as lists."""
        out = _plain(self)
        assert isinstance(out, dict)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoundKpis:
        """Rebuild the KPIs from `to_dict`'s mapping (``Result.kpis``, or a ``kpis.json``).

        So that a saved round can be rendered again with `render_kpis_text` without recomputing.
        """
        out = _from_plain(cls, data)
        assert isinstance(out, RoundKpis)
        return out


def _plain(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_plain(kind: Any, value: Any) -> Any:
    """Inverse of `_plain` for the KPI dataclasses: nested mappings and lists back to records."""
    if isinstance(kind, type) and is_dataclass(kind):
        hints = get_type_hints(kind)
        return kind(**{f.name: _from_plain(hints[f.name], value[f.name]) for f in fields(kind)})
    if get_origin(kind) is tuple:
        item = get_args(kind)[0]
        return tuple(_from_plain(item, v) for v in value)
    return value


# ----------------------------------------------------------------------------------------------
# Computation
# ----------------------------------------------------------------------------------------------


def _matching_rule(
    policy: Policy, base: tuple[Condition, ...], count: tuple[Condition, ...]
) -> QuotaRule | None:
    """Find the policy's quota rule with exactly this base and count, EPCI-wide first, if any."""
    same = [r for r in policy.quotas.rules if r.base == base and r.count == count]
    return next((r for r in same if r.scope is None), same[0] if same else None)


def mixity_targets(policy: Policy) -> tuple[float | None, float | None]:
    """The policy's targets for the Q1-or-ANRU rate outside QPV and the non-Q1 rate inside QPV.

    Each is the target of the EPCI-wide quota rule with that base and count (`_matching_rule`),
    None when the policy has none (or only a scoped one: its target holds per group). Why: the
    simulated year's indicators said "target 25 %" and "50 %" whatever the policy, so a planner
    trying a 40 % Q1 floor read a rate of 40.5 % against a 25 % target.
    """
    out: list[float | None] = []
    for base, count in ((_OUTSIDE_QPV, _Q1_OR_ANRU), (_INSIDE_QPV, _NOT_Q1)):
        rule = _matching_rule(policy, base, count)
        out.append(rule.target if rule is not None and rule.scope is None else None)
    return out[0], out[1]


def _prior(year: YearSoFar, rule: QuotaRule | None) -> Tally:
    """The earlier rounds' tally of a rule over the EPCI: its scope groups summed.

    The groups of a scoped rule split its base, so their sum is the EPCI-wide count (a rule
    scoped per landlord used to add nothing, and the 'year' figures were the round's).
    """
    if rule is None:
        return Tally()
    if rule.scope is None:
        return year.tally(rule.id, "")
    groups = year.tallies.get(rule.id, {}).values()
    return Tally(base=sum(t.base for t in groups), counted=sum(t.counted for t in groups))


def _mixity(
    policy: Policy,
    year: YearSoFar,
    base_conds: tuple[Condition, ...],
    count_conds: tuple[Condition, ...],
    base: np.ndarray,
    counted: np.ndarray,
) -> MixityKpis:
    n_base, n_counted = int(base.sum()), int((base & counted).sum())
    rule = _matching_rule(policy, base_conds, count_conds)
    prior = _prior(year, rule)
    # earlier rounds' mix lives only in a rule's tallies: without such a rule, after earlier
    # rounds, the year to date is unknown (it showed the round's figures, labelled 'year')
    base_year: int | None = None
    counted_year: int | None = None
    rate_year: float | None = None
    if rule is not None or year == YearSoFar():
        base_year, counted_year = n_base + prior.base, n_counted + prior.counted
        rate_year = _rate(counted_year, base_year)
    return MixityKpis(
        base=n_base,
        counted=n_counted,
        rate=_rate(n_counted, n_base),
        base_year=base_year,
        counted_year=counted_year,
        rate_year=rate_year,
        rule_id=rule.id if rule is not None else None,
        # a scoped rule's target holds in each group, not over the EPCI
        target=rule.target if rule is not None and rule.scope is None else None,
    )


def _score_kpis(scores: np.ndarray) -> ScoreKpis:
    if len(scores) == 0:
        return ScoreKpis(0, 0, None, None, None, None, None, None)
    q1, median, q3 = np.percentile(scores.astype(float), [25, 50, 75])
    return ScoreKpis(
        count=len(scores),
        total=int(scores.sum()),
        mean=round(float(scores.mean()), SCORE_DIGITS),
        min=int(scores.min()),
        q1=round(float(q1), SCORE_DIGITS),
        median=round(float(median), SCORE_DIGITS),
        q3=round(float(q3), SCORE_DIGITS),
        max=int(scores.max()),
    )


def _quota_kpis(outcome: QuotaOutcome) -> QuotaKpis:
    return QuotaKpis(
        rule_id=outcome.rule_id,
        label=outcome.label,
        scope=outcome.scope,
        bound=str(outcome.bound.value),
        measure=str(outcome.measure.value),
        target=outcome.target,
        base=outcome.round.base,
        counted=outcome.round.counted,
        prior_base=outcome.prior.base,
        prior_counted=outcome.prior.counted,
        rate=_rate(outcome.total.counted, outcome.total.base),
        limit=outcome.limit,
        shortfall=outcome.shortfall,
    )


def compute_kpis(
    units: pd.DataFrame,
    demands_with_facts: pd.DataFrame,
    policy: Policy | str | Path,
    allocation: pd.DataFrame,
    orientation: pd.DataFrame | None,
    year_so_far: YearSoFar | Mapping[str, Any] | None = None,
) -> RoundKpis:
    """Compute the indicators of one allocation round.

    Parameters
    ----------
    units, demands_with_facts
        The round's tables, demands with the derived facts of `matching.facts.derive_facts`
        (a solved `Result` holds them as ``result.prepared.instance.demands``).
    policy
        The policy (réservataires, shares, quota rules, cotation grid): a `Policy`, a bundled
        name or a path, as `matching.round.solve` takes it.
    allocation
        Columns ``unit_id``, ``demand_id``, ``reservataire``; rows naming an unknown unit or
        demand are left out (the checker reports them).
    orientation
        Columns ``unit_id``, ``reservataire``, one row per flux unit; None when unknown (the
        oriented counts are then None).
    year_so_far
        Earlier rounds of the year: flux units, orientations, quota tallies (a `YearSoFar` or
        a mapping).

    Returns
    -------
    RoundKpis
        Plain data; ``.to_dict()`` for JSON, `render_kpis_text` for the console.

    Raises
    ------
    TypeError
        ``demands_with_facts`` lacks the derived facts (naming them), or an argument is of
        another type.
    """
    # the forms `solve` takes: a policy name failed with an AttributeError on 'str'. The year
    # is not held to the policy's rules here: the indicators of a policy without a rule are
    # asked with the tallies the year kept for it (its mix is then unknown, not refused)
    policy = policy_of(policy)
    if year_so_far is not None and not isinstance(year_so_far, YearSoFar):
        year_so_far = year_so_far_of(year_so_far, "year_so_far")
    require_derived_facts(demands_with_facts.columns, FACTS_HOW)
    year = year_so_far or YearSoFar()
    rows = resolve_allocation(units, demands_with_facts, allocation)
    rows = rows.only(rows.known)
    u_pos, d_pos, res = rows.unit_pos, rows.demand_pos, rows.reservataire

    flux_units = units["flux_excluded"].astype(str).to_numpy(dtype=object) == ""
    qpv_units = units["qpv"].to_numpy(dtype=bool)
    priority = demands_with_facts["priority"].to_numpy(dtype=bool)
    q1 = demands_with_facts["q1"].to_numpy(dtype=bool)
    q1_or_anru = demands_with_facts["q1_or_anru"].to_numpy(dtype=bool)
    a_qpv = qpv_units[u_pos]
    a_priority, a_q1, a_q1a = priority[d_pos], q1[d_pos], q1_or_anru[d_pos]

    # Units and demands.
    filled = np.zeros(len(units), dtype=bool)
    filled[u_pos] = True
    housed = np.zeros(len(demands_with_facts), dtype=bool)
    housed[d_pos] = True
    unit_kpis = UnitKpis(
        total=len(units),
        flux=int(flux_units.sum()),
        excluded=int((~flux_units).sum()),
        allocated=int(filled.sum()),
        unallocated=int((~filled).sum()),
        flux_allocated=int((filled & flux_units).sum()),
        excluded_allocated=int((filled & ~flux_units).sum()),
        fill_rate=_rate(int(filled.sum()), len(units)),
    )
    demand_kpis = DemandKpis(
        total=len(demands_with_facts),
        allocated=int(housed.sum()),
        rate=_rate(int(housed.sum()), len(demands_with_facts)),
        priority_total=int(priority.sum()),
        priority_allocated=int((housed & priority).sum()),
        priority_rate=_rate(int((housed & priority).sum()), int(priority.sum())),
    )

    # Réservataires: band, orientation, allocations, priority share.
    bands = flux_bands(policy, int(flux_units.sum()), year)
    oriented: pd.Series | None = None
    if orientation is not None:
        table = normalise_table(orientation, ORIENTATION_COLUMNS, "orientation")
        oriented = table["reservataire"].value_counts()
    shares = policy.shares()
    res_kpis = []
    for r in policy.reservataires:
        band = bands.get(r.id)
        mine = res == r.id
        n_alloc, n_prio = int(mine.sum()), int((mine & a_priority).sum())
        n_oriented = int(oriented.get(r.id, 0)) if oriented is not None else None
        res_kpis.append(
            ReservataireKpis(
                reservataire=r.id,
                label=r.label,
                share=round(shares[r.id], RATE_DIGITS),
                band_target=round(float(band.target), RATE_DIGITS) if band else None,
                band_target_exact=fraction_text(band.target) if band else "",
                band_low=band.low if band else None,
                band_high=band.high if band else None,
                oriented=n_oriented,
                oriented_year=(
                    n_oriented + year.oriented.get(r.id, 0) if n_oriented is not None else None
                ),
                allocated=n_alloc,
                priority_allocated=n_prio,
                priority_rate=_rate(n_prio, n_alloc),
            )
        )

    # Scores of the allocated households (one per allocation, as the objective counts them).
    allocated_demands = demands_with_facts.iloc[d_pos]
    scores = (
        score(allocated_demands, policy.cotation).total.to_numpy(dtype=np.int64)
        if len(d_pos)
        else np.zeros(0, dtype=np.int64)
    )

    # Landlords, in sorted order.
    bailleur = units["bailleur"].astype(str).to_numpy(dtype=object)
    a_bailleur = bailleur[u_pos]
    landlords = []
    for b in sorted(set(bailleur.tolist())):
        own = bailleur == b
        mine = a_bailleur == b
        n_units, n_filled = int(own.sum()), int((own & filled).sum())
        out_q, in_q = mine & ~a_qpv, mine & a_qpv
        landlords.append(
            LandlordKpis(
                bailleur=b,
                units=n_units,
                flux_units=int((own & flux_units).sum()),
                allocated=n_filled,
                fill_rate=_rate(n_filled, n_units),
                outside_qpv=int(out_q.sum()),
                q1_or_anru_outside_qpv=int((out_q & a_q1a).sum()),
                q1_rate_outside_qpv=_rate(int((out_q & a_q1a).sum()), int(out_q.sum())),
                inside_qpv=int(in_q.sum()),
                non_q1_inside_qpv=int((in_q & ~a_q1).sum()),
                non_q1_rate_inside_qpv=_rate(int((in_q & ~a_q1).sum()), int(in_q.sum())),
            )
        )

    outcomes = quota_outcomes(units, demands_with_facts, policy, allocation, year)
    return RoundKpis(
        quota_mode=str(policy.quotas.mode.value),
        units=unit_kpis,
        demands=demand_kpis,
        reservataires=tuple(res_kpis),
        no_reservataire_allocated=int((res == NO_RESERVATAIRE).sum()),
        q1_outside_qpv=_mixity(policy, year, _OUTSIDE_QPV, _Q1_OR_ANRU, ~a_qpv, a_q1a),
        non_q1_inside_qpv=_mixity(policy, year, _INSIDE_QPV, _NOT_Q1, a_qpv, ~a_q1),
        score=_score_kpis(scores),
        landlords=tuple(landlords),
        quotas=tuple(_quota_kpis(o) for o in outcomes),
    )


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1 or value == 0 else f"{value:.4f}"
    if isinstance(value, Integral) and not isinstance(value, bool):
        return f"{value:,}"  # 17,000 as the solve summary writes it, not 17000
    return str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _table(headers: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Align columns: the first left-aligned, the others right-aligned."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return indent + "  ".join([first, *rest]).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def render_kpis_text(kpis: RoundKpis, policy: Policy | None = None) -> str:
    """Render the KPIs as aligned text tables for the command line.

    With the ``policy``, the group ``''`` of a scoped quota rule is named (`group_label`:
    ``(no réservataire)`` under a ``reservataire`` scope), not printed '-' as an EPCI-wide
    rule is.
    """
    scopes = {r.id: r.scope for r in policy.quotas.rules} if policy is not None else {}
    u, d, s = kpis.units, kpis.demands, kpis.score
    out = [
        f"Units: {u.total:,} ({u.flux:,} in the flux, {u.excluded:,} excluded); "
        f"filled {u.allocated:,} ({_pct(u.fill_rate)}), vacant {u.unallocated:,}",
        f"Demands: {d.total:,}; housed {d.allocated:,} ({_pct(d.rate)}); priority housed "
        f"{d.priority_allocated:,} of {d.priority_total:,} ({_pct(d.priority_rate)})",
        "",
        "Réservataires:",
    ]
    rows = [
        [
            r.reservataire,
            _pct(r.share),
            r.band_target_exact or "-",
            f"[{r.band_low}, {r.band_high}]" if r.band_low is not None else "-",
            _cell(r.oriented),
            _cell(r.oriented_year),
            _cell(r.allocated),
            _cell(r.priority_allocated),
            _pct(r.priority_rate),
        ]
        for r in kpis.reservataires
    ]
    excluded = _cell(kpis.no_reservataire_allocated)
    rows.append(["(excluded units)", "-", "-", "-", "-", "-", excluded, "-", "-"])
    out += _table(
        ["réservataire", "share", "target", "band", "oriented", "year", "allocated", "priority",
         "priority %"],
        rows,
    )  # fmt: skip
    out.append("")
    out.append("Social mix:")
    mix_rows = []
    for name, m in (("Q1 or ANRU outside QPV", kpis.q1_outside_qpv),
                    ("non-Q1 inside QPV", kpis.non_q1_inside_qpv)):  # fmt: skip
        mix_rows.append(
            [
                name,
                f"{_cell(m.counted)}/{_cell(m.base)}",
                _pct(m.rate),
                f"{_cell(m.counted_year)}/{_cell(m.base_year)}",
                _pct(m.rate_year),
                _pct(m.target),
            ]
        )
    out += _table(["indicator", "round", "rate", "year", "rate", "target"], mix_rows)
    out.append("")
    if s.count:
        out.append(
            f"Scores over the {s.count:,} allocation{'' if s.count == 1 else 's'}: "
            f"mean {_cell(s.mean)}, "
            f"min {_cell(s.min)}, quartiles {_cell(s.q1)} / {_cell(s.median)} / {_cell(s.q3)}, "
            f"max {_cell(s.max)}, total {_cell(s.total)}"
        )
    else:
        out.append("Scores: no allocation")
    out.append("")
    out.append("Landlords:")
    out += _table(
        ["bailleur", "units", "flux", "filled", "fill %", "Q1 out QPV", "rate", "non-Q1 in QPV",
         "rate"],
        [
            [
                b.bailleur, _cell(b.units), _cell(b.flux_units), _cell(b.allocated),
                _pct(b.fill_rate), f"{_cell(b.q1_or_anru_outside_qpv)}/{_cell(b.outside_qpv)}",
                _pct(b.q1_rate_outside_qpv), f"{_cell(b.non_q1_inside_qpv)}/{_cell(b.inside_qpv)}",
                _pct(b.non_q1_rate_inside_qpv),
            ]
            for b in kpis.landlords
        ],
    )  # fmt: skip
    out.append("")
    out.append(f"Quotas ({kpis.quota_mode} mode, year to date):")
    out += _table(
        ["rule", "scope", "counted/base", "rate", "target", "limit", "shortfall"],
        [
            [
                q.rule_id, group_label(q.scope, scopes.get(q.rule_id)) or "-",
                f"{_cell(q.counted + q.prior_counted)}/{_cell(q.base + q.prior_base)}",
                _pct(q.rate), _pct(q.target) if q.measure == "share" else _cell(int(q.target)),
                f"{'>=' if q.bound == 'floor' else '<='} {_cell(q.limit)}", _cell(q.shortfall),
            ]
            for q in kpis.quotas
        ],
    )  # fmt: skip
    return "\n".join(out)
