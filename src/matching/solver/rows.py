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

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matching.policy.model import QuotaRule
from matching.policy.quotas import possible_groups
from matching.solver.instance import (
    RoundInstance,
    Triples,
    compact_int,
    index_dtype,
    triple_codes,
    triple_mask,
    unit_res_key,
)
from matching.types import Bound, Measure


@dataclass(frozen=True)
class QuotaRow:
    """One quota rule in one scope group, as a linear row over triple indices."""

    rule: QuotaRule
    scope: str
    idx: np.ndarray  # triple indices with a non-zero coefficient (int32)
    coef: np.ndarray  # integer coefficients, in the smallest dtype that holds them
    sense: str  # ">=" or "<="
    rhs: int
    slack: int  # coefficient of the shortfall variable (+ for >=, - for <=)
    base_idx: np.ndarray  # triples in the rule's base within this scope group (B)
    counted_idx: np.ndarray  # triples counted (a subset of the base) (C)

    @property
    def name(self) -> str:
        """Readable key, e.g. ``mixity_outside_qpv`` or ``priority_floor[bailleur=B1]``."""
        return row_name(self.rule, self.scope)

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
        present = labels[np.bincount(codes[base], minlength=len(labels)) > 0].tolist()
        code_of = {str(label): k for k, label in enumerate(labels.tolist())}
        for group in judged_groups(inst, rule, present):
            k = code_of.get(group)
            in_group = base & (codes == k) if k is not None else np.zeros(len(triples), bool)
            prior = inst.year_so_far.tally(rule.id, group)
            rows.append(_row(rule, group, in_group, counted & in_group, prior.base, prior.counted))
    return rows


def judged_groups(inst: RoundInstance, rule: QuotaRule, present: Iterable[str]) -> list[str]:
    """The scope groups of a rule judged in this round, sorted.

    Those where this round can allocate, those the year so far has tallies for, the single
    EPCI-wide group of an unscoped rule (always judged), and for a count floor every group that
    could take an allocation (`matching.policy.quotas.possible_groups`, as the checker does).
    """
    groups = set(present) | set(inst.year_so_far.tallies.get(rule.id, {}))
    if rule.scope is None:
        groups.add("")
    if rule.measure == Measure.COUNT and rule.bound == Bound.FLOOR:
        groups |= possible_groups(rule, inst.units, inst.demands, inst.reservataires)
    return sorted(groups)


def row_name(rule: QuotaRule, group: str) -> str:
    """A rule's row in one scope group, as shortfalls are reported: ``id`` or ``id[scope=g]``."""
    return rule.id if not rule.scope else f"{rule.id}[{rule.scope}={group}]"


def row_terms(rule: QuotaRule, b0: int, c0: int) -> tuple[int, int, int]:
    """``(p, q, rhs)`` of a rule's row given the year-so-far tallies ``B0, C0`` of its group.

    The row reads ``sum((q counted - p base) x) (>= or <=) rhs`` with ``rhs = p B0 - q C0`` for a
    share ``p/q``, and ``sum(counted x) (>= or <=) n - C0`` for a count ``n`` (p = 0, q = 1).
    """
    if rule.measure == Measure.SHARE:
        frac = rule.target_fraction()
        p, q = frac.numerator, frac.denominator
        return p, q, p * b0 - q * c0
    return 0, 1, int(rule.target) - c0


def _row(
    rule: QuotaRule, scope: str, base: np.ndarray, counted: np.ndarray, b0: int, c0: int
) -> QuotaRow:
    floor = rule.bound == Bound.FLOOR
    p, q, rhs = row_terms(rule, b0, c0)
    # int32 positions and compact coefficients: a fifth of the memory of int64 (the
    # Paris-sized round's five rows hold 131 million); positions fit below 2^31 triples
    base_idx = np.flatnonzero(base).astype(index_dtype(len(base)))
    in_counted = counted[base_idx]  # counted is a subset of base
    coef = compact_int(np.where(in_counted, q - p, -p))
    nonzero = coef != 0
    slack = q
    return QuotaRow(
        rule=rule,
        scope=scope,
        idx=base_idx[nonzero],
        coef=coef[nonzero],
        sense=">=" if floor else "<=",
        rhs=int(rhs),
        slack=slack if floor else -slack,
        base_idx=base_idx,
        counted_idx=base_idx[in_counted],
    )


def row_classes(triples: Triples, rows: list[QuotaRow], n_res: int) -> np.ndarray:
    """Each triple's class (int32 labels, numbered by first appearance).

    The triples of one class share their unit, their réservataire and their coefficient on
    every quota row.

    Why: every coefficient of a triple's LP column but its household's is then a function of its
    class, so ``A^T y`` over all triples is two gathers (`matching.solver.lp.RoundLayout`)
    instead of a scatter per quota row (45 ms per pricing round on the Caen la Mer month); and
    the best household of each class is a first column that every kind of household a quota
    distinguishes (priority, Q1, ...) reaches (`matching.solver.lp.top_per_class`).

    The key is mixed radix: (unit, réservataire), then per rule the row of its scope group and
    the coefficient there (the rows of one rule are disjoint: a triple is in one scope group).
    It is renumbered before a digit would overflow int64.
    """
    n = len(triples)
    key = unit_res_key(triples.unit, triples.res, n_res).astype(np.int64, copy=False)
    by_rule: dict[str, list[QuotaRow]] = {}
    for row in rows:
        by_rule.setdefault(row.rule.id, []).append(row)
    for rule_id in sorted(by_rule):
        code = np.zeros(n, dtype=np.int32)
        radix = 1  # digit 0: in no row of this rule
        for row in by_rule[rule_id]:
            coef = row.coef.astype(np.int64)
            low = int(coef.min(initial=0))
            if np.any(code[row.idx] != 0):  # pragma: no cover - quota_rows builds disjoint rows
                raise ValueError(f"rows of rule {rule_id} overlap")
            code[row.idx] = radix + (coef - low)
            radix += int(coef.max(initial=0)) - low + 1
        if float(key.max(initial=0) + 1) * radix >= 2.0**62:
            key = pd.factorize(key)[0].astype(np.int64)
        key *= radix  # in place: no temporary per triple (Paris-sized round: 560 MB each)
        key += code
    return pd.factorize(key)[0].astype(np.int32)


def class_representatives(classes: np.ndarray) -> np.ndarray:
    """One triple of each class (any: the members of a class are interchangeable)."""
    n_classes = int(classes.max(initial=-1)) + 1
    out = np.zeros(n_classes, dtype=np.int64)
    step = 1 << 22  # a slice at a time: no array of every position at once (Paris: 560 MB)
    for start in range(0, len(classes), step):
        part = classes[start : start + step]
        out[part] = np.arange(start, start + len(part))
    return out
