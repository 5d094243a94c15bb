"""Quota rules of the policy as integer linear rows over the triples (DOMAIN A4, generic rule).

A rule and one of its scope groups give one row ``sum(coef_t x_t) + slack x s  (>= or <=)  rhs``:

- floor share p/q:    sum((q counted_t - p base_t) x_t) + q s >= p B0 - q C0
- ceiling share p/q:  sum((q counted_t - p base_t) x_t) - q s <= p B0 - q C0
- floor count n:      sum(counted_t x_t) + s >= n - C0
- ceiling count n:    sum(counted_t x_t) - s <= n - C0

where B0, C0 are the year-so-far tallies of that group and s >= 0 is the shortfall (soft mode
only; fixed to 0 in hard mode). The least feasible s equals `matching.policy.quotas.shortfall`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matching.policy.model import QuotaRule
from matching.policy.quotas import possible_groups
from matching.solver.instance import RoundInstance, Triples, triple_codes, triple_mask
from matching.types import Bound, Measure


@dataclass(frozen=True)
class QuotaRow:
    """One quota rule in one scope group, as a linear row over triple indices."""

    rule: QuotaRule
    scope: str
    idx: np.ndarray  # triple indices with a non-zero coefficient
    coef: np.ndarray  # int64 coefficients
    sense: str  # ">=" or "<="
    rhs: int
    slack: int  # coefficient of the shortfall variable (+ for >=, - for <=)
    base_idx: np.ndarray  # triples in the rule's base within this scope group (B)
    counted_idx: np.ndarray  # triples counted (a subset of the base) (C)

    @property
    def name(self) -> str:
        """Readable key, e.g. ``mixity_outside_qpv`` or ``priority_floor[bailleur=B1]``."""
        return self.rule.id if not self.scope else f"{self.rule.id}[{self.rule.scope}={self.scope}]"

    def max_shortfall(self) -> int:
        """An upper bound on the shortfall this row can need (all counted at worst)."""
        if self.sense == ">=":  # every negative term chosen, no positive one
            worst = self.rhs - int(self.coef[self.coef < 0].sum())
        else:  # every positive term chosen
            worst = int(self.coef[self.coef > 0].sum()) - self.rhs
        return max(0, int(-(-worst // abs(self.slack))))


def quota_rows(inst: RoundInstance, triples: Triples) -> list[QuotaRow]:
    """Rows of every quota rule and scope group present in the triples or the year so far."""
    rows: list[QuotaRow] = []
    for rule in inst.policy.quotas.rules:
        base = triple_mask(inst, triples, rule.base)
        counted = base & triple_mask(inst, triples, rule.count)
        if rule.scope:
            codes, labels = triple_codes(inst, triples, rule.scope)
        else:
            codes, labels = np.zeros(len(triples), dtype=np.int64), np.array([""], dtype=object)
        present = labels[np.unique(codes[base])].tolist()
        groups = set(present) | set(inst.year_so_far.tallies.get(rule.id, {}))
        if rule.scope is None:
            groups.add("")  # an EPCI-wide rule is always judged
        if rule.measure == Measure.COUNT and rule.bound == Bound.FLOOR:
            groups |= possible_groups(rule, inst.units, inst.demands, inst.reservataires)
        code_of = {str(label): k for k, label in enumerate(labels.tolist())}
        for group in sorted(groups):
            k = code_of.get(group)
            in_group = base & (codes == k) if k is not None else np.zeros(len(triples), bool)
            prior = inst.year_so_far.tally(rule.id, group)
            rows.append(_row(rule, group, in_group, counted & in_group, prior.base, prior.counted))
    return rows


def _row(
    rule: QuotaRule, scope: str, base: np.ndarray, counted: np.ndarray, b0: int, c0: int
) -> QuotaRow:
    floor = rule.bound == Bound.FLOOR
    if rule.measure == Measure.SHARE:
        frac = rule.target_fraction()
        p, q = frac.numerator, frac.denominator
        coef_full = q * counted.astype(np.int64) - p * base.astype(np.int64)
        rhs = p * b0 - q * c0
        slack = q
    else:
        coef_full = counted.astype(np.int64)
        rhs = int(rule.target) - c0
        slack = 1
    idx = np.flatnonzero(coef_full)
    return QuotaRow(
        rule=rule,
        scope=scope,
        idx=idx,
        coef=coef_full[idx],
        sense=">=" if floor else "<=",
        rhs=int(rhs),
        slack=slack if floor else -slack,
        base_idx=np.flatnonzero(base),
        counted_idx=np.flatnonzero(counted),
    )
