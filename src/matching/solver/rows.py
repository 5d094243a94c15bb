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
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from matching.policy.model import QuotaRule
from matching.policy.quotas import possible_groups
from matching.solver.instance import (
    RoundInstance,
    Triples,
    compact_int,
    index_dtype,
    table_codes,
    table_holds,
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

    def least_shortfall(self, x: np.ndarray) -> int:
        """The least shortfall this row needs when the triples take the 0/1 values ``x``.

        Why not the model's shortfall variable: nothing bounds it from above when no stage
        minimises it (a soft policy without the ``shortfall`` stage, or a rule of weight 0),
        so on a 10-unit round the full CP-SAT model reported a Q1 shortfall of 22 for a floor
        its allocation meets.
        """
        value = int(np.dot(self.coef.astype(np.int64), np.rint(x[self.idx]).astype(np.int64)))
        missing = self.rhs - value if self.sense == ">=" else value - self.rhs
        return max(0, -(-missing // abs(self.slack)))


def quota_rows(inst: RoundInstance, triples: Triples) -> list[QuotaRow]:
    """Rows of every quota rule and scope group present in the triples or the year so far.

    Each rule's base is found once over all triples; its counted condition and scope are read
    on the base's triples only.
    """
    rows: list[QuotaRow] = []
    for rule in inst.policy.quotas.rules:
        base_idx = np.flatnonzero(triple_mask(inst, triples, rule.base))
        base_idx = base_idx.astype(index_dtype(len(triples)))
        in_counted = triple_mask(inst, triples, rule.count, at=base_idx)
        if rule.scope:
            codes, labels = triple_codes(inst, triples, rule.scope, at=base_idx)
        else:
            codes, labels = np.zeros(len(base_idx), dtype=np.int64), np.array([""], dtype=object)
        present = labels[np.bincount(codes, minlength=len(labels)) > 0].tolist()
        code_of = {str(label): k for k, label in enumerate(labels.tolist())}
        for group in judged_groups(inst, rule, present):
            k = code_of.get(group)
            if k is None:
                sel: np.ndarray | slice = np.zeros(len(base_idx), dtype=bool)
            else:
                sel = codes == k if len(labels) > 1 else slice(None)  # one group: all of them
            prior = inst.year_so_far.tally(rule.id, group)
            rows.append(
                _row(rule, group, base_idx[sel], in_counted[sel], prior.base, prior.counted)
            )
    return rows


def rows_on(rows: list[QuotaRow], keep: np.ndarray, n_triples: int) -> list[QuotaRow]:
    """The same rows over a sorted subset ``keep`` of the ``n_triples`` triples, renumbered.

    Right-hand sides and shortfall coefficients stay as they are (a row shifted by its least
    shortfall stays shifted), so this is not `quota_rows` on the subset.
    """
    position = np.full(n_triples, -1, dtype=index_dtype(len(keep)))
    position[keep] = np.arange(len(keep), dtype=position.dtype)

    def moved(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        new = position[idx]
        kept = new >= 0
        return new[kept], kept

    out = []
    for row in rows:
        base_idx, in_base = moved(row.base_idx)
        # a row's triples are its base's unless some coefficients are 0 (`_row`)
        idx, kept = (base_idx, in_base) if row.idx is row.base_idx else moved(row.idx)
        counted_idx, _ = moved(row.counted_idx)
        out.append(
            replace(row, idx=idx, coef=row.coef[kept], base_idx=base_idx, counted_idx=counted_idx)
        )
    return out


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
    rule: QuotaRule,
    scope: str,
    base_idx: np.ndarray,
    in_counted: np.ndarray,
    b0: int,
    c0: int,
) -> QuotaRow:
    """The row of a rule in one scope group: its base's triples and which of them count."""
    floor = rule.bound == Bound.FLOOR
    p, q, rhs = row_terms(rule, b0, c0)
    # int32 positions and compact coefficients: a fifth of the memory of int64 (the
    # Paris-sized round's five rows hold 131 million); positions fit below 2^31 triples
    dtype = compact_int(np.array([q - p, -p])).dtype
    coef = np.where(in_counted, dtype.type(q - p), dtype.type(-p))
    counted_idx = base_idx[in_counted]
    idx = base_idx
    if q - p == 0 or p == 0:  # a zero coefficient on some triples: they are not in the row
        nonzero = coef != 0
        idx, coef = base_idx[nonzero], coef[nonzero]
    slack = q
    return QuotaRow(
        rule=rule,
        scope=scope,
        idx=idx,
        coef=coef,
        sense=">=" if floor else "<=",
        rhs=int(rhs),
        slack=slack if floor else -slack,
        base_idx=base_idx,
        counted_idx=counted_idx,
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
    by_rule: dict[str, list[QuotaRow]] = {}
    for row in rows:
        by_rule.setdefault(row.rule.id, []).append(row)
    # the quota digits first, in a small code (int32 while the radices allow), added only on
    # each row's own triples: a full-length code and two int64 passes per rule took 0.7 s of
    # the pooled year's 1.4 s
    code = np.zeros(n, dtype=np.int32)
    scale = 1  # product of the radices of the rules so far
    key: np.ndarray | None = None
    for rule_id in sorted(by_rule):
        digits: list[tuple[QuotaRow, int]] = []
        radix = 1  # digit 0: in no row of this rule
        for row in by_rule[rule_id]:
            low = int(row.coef.min(initial=0))
            digits.append((row, radix - low))
            radix += int(row.coef.max(initial=0)) - low + 1
        if len(digits) > 1:
            _check_disjoint(rule_id, [r.idx for r, _ in digits], n)
        if scale * radix >= 2**31:  # the small code is full: fold it into the key
            key = _fold(key, code, scale, triples, n_res)
            code[:] = 0
            scale = 1
        for row, offset in digits:
            code[row.idx] += scale * (row.coef.astype(np.int32) + offset)
        scale *= radix
    return pd.factorize(_fold(key, code, scale, triples, n_res))[0].astype(np.int32)


def household_profiles(inst: RoundInstance) -> np.ndarray:
    """Each household's profile (int32 labels): what every quota rule reads of it.

    A rule's base, counted condition and scope read ``unit.*``, ``reservataire``, ``in_flux``
    and ``demand.*`` fields (`triple_mask`, `triple_codes`). Two households that meet the same
    ``demand.*`` conditions and fall in the same ``demand.*`` scope groups therefore give, with
    the same unit and réservataire, triples in the same rows with the same coefficients: one
    class of `row_classes` (or two classes that happen to have equal coefficients).

    Why: the classes are then known before the triples exist, so a Paris-sized round's 58
    million dominated triples (`matching.solver.dominance.undominated_pairs`) need never be
    built.
    """
    columns: list[np.ndarray] = []
    for rule in inst.policy.quotas.rules:  # the same readings as `quota_rows`, per household
        for cond in (*rule.base, *rule.count):
            if cond.field.startswith("demand."):
                columns.append(table_holds(inst, cond))
        if rule.scope is not None and rule.scope.startswith("demand."):
            columns.append(table_codes(inst, rule.scope)[0])
    code = np.zeros(len(inst.demands), dtype=np.int64)
    for column in columns:  # mixed radix, renumbered densely before it could overflow
        digit = np.asarray(column, dtype=np.int64)
        radix = int(digit.max(initial=0)) + 1
        if float(code.max(initial=0) + 1) * radix >= 2.0**62:
            code = pd.factorize(code)[0].astype(np.int64)
        code = code * radix + digit
    return pd.factorize(code)[0].astype(np.int32)


def _check_disjoint(rule_id: str, parts: list[np.ndarray], n: int) -> None:
    """Raise if two rows of one rule share a triple (`quota_rows` builds them disjoint)."""
    seen = np.zeros(n, dtype=bool)
    for idx in parts:
        if seen[idx].any():  # pragma: no cover - quota_rows builds disjoint rows
            raise ValueError(f"rows of rule {rule_id} overlap")
        seen[idx] = True


def _fold(
    key: np.ndarray | None, code: np.ndarray, scale: int, triples: Triples, n_res: int
) -> np.ndarray:
    """``key * scale + code`` in int64, the key starting as the (unit, réservataire) key.

    The key is renumbered (densely, by `pd.factorize`) before it would overflow.
    """
    if key is None:
        key = unit_res_key(triples.unit, triples.res, n_res).astype(np.int64)
    if float(key.max(initial=0) + 1) * scale >= 2.0**62:
        key = pd.factorize(key)[0].astype(np.int64)
    key *= scale  # in place: no temporary per triple (Paris-sized round: 560 MB each)
    key += code
    return key


def class_representatives(classes: np.ndarray) -> np.ndarray:
    """The first triple of each class (the members of a class are otherwise interchangeable).

    Triples are sorted by unit, réservataire then household rank, so this is the class's best
    household.
    """
    n = len(classes)
    out = np.full(int(classes.max(initial=-1)) + 1, n, dtype=np.int64)
    step = 1 << 22  # a slice at a time: no array of every position at once (Paris: 560 MB)
    for start in range(0, n, step):
        part = classes[start : start + step]
        np.minimum.at(out, part, np.arange(start, start + len(part)))
    return out


def first_of_each_class(classes: np.ndarray, count: int) -> np.ndarray:
    """The sorted positions of the first ``count`` triples of each class.

    Each class's ``count + 1``-th triple is read off the stable order by class; a triple is
    kept when it comes before its class's. With classes numbered by first appearance, as
    `row_classes` numbers them, ``count = 1`` is `class_representatives`, sorted.
    """
    sizes = np.bincount(classes)
    order = np.argsort(classes, kind="stable")  # stable: each class's triples in their order
    starts = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    crowded = np.flatnonzero(sizes > count)
    cut = np.full(len(sizes), len(classes), dtype=order.dtype)
    cut[crowded] = order[starts[crowded] + count]
    del order
    return np.flatnonzero(np.arange(len(classes), dtype=cut.dtype) < cut[classes])
