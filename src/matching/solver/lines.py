"""Quota rules as integer lines over the admissible triples, for greedy policies and shortlists.

A quota rule in one scope group is one *line*: each allocation (a triple unit, demand,
réservataire) adds an integer coefficient to the line's value, and the rule holds when the value
is at least (floor) or at most (ceiling) the line's right-hand side, year so far included:

- share p/q: coefficient ``q x counted - p x in_base``, rhs ``p x B0 - q x C0``;
- count n:   coefficient ``counted``,                rhs ``n - C0``;

where B0, C0 are the earlier rounds' tallies of the group. The shortfall of a line is then
``ceil(max(0, deficit) / step)`` with ``deficit = rhs - value`` (floor) or ``value - rhs``
(ceiling) and ``step = q`` (share) or 1 (count): exactly `matching.policy.quotas.shortfall` of the
totals, so a greedy policy can report it and a shortlist can test a substitution in integers
without counting again. The selection itself (which allocations are in a rule's base, which are
counted, and their scope group) is read from the policy with `matching.policy.quotas`, the very
functions the independent checker uses.

Each triple lies in at most one group of a rule, so the lines are stored per rule as two arrays
over the triples: the line index (-1 outside the rule's base) and the coefficient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from matching.policy.model import QuotaRule
from matching.policy.quotas import scope_keys, selection
from matching.solver.instance import RoundInstance, Triples, triple_fields
from matching.solver.rows import judged_groups, row_name, row_terms
from matching.types import Bound


@dataclass(frozen=True)
class QuotaLines:
    """Every quota rule of a round, per scope group, as integer lines over the triples.

    Triples that agree on every field the rules read (réservataire, ``unit.qpv``,
    ``demand.priority``, ...) agree on every line; they form one *class*, and the lines are
    stored per class (a few dozen) rather than per triple (a million in a Caen la Mer round).

    Attributes
    ----------
    names
        Line names as the solver reports shortfalls: ``rule_id``, or ``rule_id[scope=group]``.
    weight
        Penalty per unit of shortfall of each line (the rule's soft-mode weight), int64.
    sign
        +1 for a floor (value >= rhs), -1 for a ceiling (value <= rhs), int64 per line.
    rhs
        Right-hand side of each line, year so far included, int64.
    step
        q for a share rule (its target p/q), 1 for a count rule: the value one allocation of
        shortfall is worth, int64 per line.
    cls
        int64 class of each triple.
    line_res
        int64 per line: the réservataire index when every allocation in the line goes through
        that one réservataire (a per-réservataire floor), -1 otherwise (e.g. a mixity rule).
        How many units a réservataire can still receive then bounds what the line can recover.
    line
        int64 array (rules, classes): the line of each class for each rule, -1 when the class
        is outside the rule's base.
    coef
        int64 array (rules, classes): what an allocation of the class adds to that line.
    """

    names: tuple[str, ...]
    weight: np.ndarray
    sign: np.ndarray
    rhs: np.ndarray
    step: np.ndarray
    cls: np.ndarray
    line_res: np.ndarray
    line: np.ndarray
    coef: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    @property
    def n_rules(self) -> int:
        """Number of quota rules (first axis of ``line`` and ``coef``)."""
        return int(self.line.shape[0])

    @property
    def n_classes(self) -> int:
        """Number of classes of triples (second axis of ``line`` and ``coef``)."""
        return int(self.line.shape[1])

    def shortfall(
        self, lines: np.ndarray, values: np.ndarray, headroom: np.ndarray | int = 0
    ) -> np.ndarray:
        """Shortfall of ``lines`` at ``values``, less what ``headroom`` could still recover.

        ``headroom`` (same unit as the values) is how far later allocations could move each line
        toward its bound; with 0 this is the exact shortfall of the line at that value.
        """
        deficit = self.sign[lines] * (self.rhs[lines] - values) - headroom
        return np.asarray(-(-np.maximum(deficit, 0) // self.step[lines]), dtype=np.int64)

    def values_of(self, picked: np.ndarray) -> np.ndarray:
        """Value of every line when exactly the triples ``picked`` are allocated (int64)."""
        values = np.zeros(len(self), dtype=np.int64)
        cls = self.cls[picked]
        for j in range(self.n_rules):
            rows = self.line[j, cls]
            inside = rows >= 0
            np.add.at(values, rows[inside], self.coef[j, cls[inside]])
        return values

    def best_gain(self, unit: np.ndarray, n_units: int) -> np.ndarray:
        """Most each unit can move each line toward its bound with one allocation, (lines, units).

        ``unit`` is the unit position of each triple. Used as an optimistic bound on what the
        units still to allocate can recover: a unit with a counted household in a floor's base
        can raise it by ``q - p``, and so on.
        """
        k = self.n_classes
        pairs = np.unique(unit.astype(np.int64) * k + self.cls)
        u, c = pairs // k, pairs % k
        gain = np.zeros((len(self), n_units), dtype=np.int64)
        for j in range(self.n_rules):
            rows = self.line[j, c]
            inside = rows >= 0
            toward = self.sign[rows[inside]] * self.coef[j, c[inside]]
            good = toward > 0
            np.maximum.at(gain, (rows[inside][good], u[inside][good]), toward[good])
        return gain


def _fields_of(rule: QuotaRule) -> set[str]:
    names = {c.field for c in (*rule.base, *rule.count)}
    if rule.scope:
        names.add(rule.scope)
    return names


def _row_codes(table: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, int]:
    """A code per row of ``table`` equal for rows that agree on ``columns``, and how many."""
    code = np.zeros(len(table), dtype=np.int64)
    for name in columns:
        values = table[name].to_numpy(dtype=object)
        part, uniques = pd.factorize(values, use_na_sentinel=False)
        code = pd.factorize(code * (len(uniques) + 1) + part)[0].astype(np.int64)
    return code, int(code.max(initial=-1)) + 1


def triple_classes(inst: RoundInstance, triples: Triples, fields: set[str]) -> np.ndarray:
    """Class of each triple: equal for triples that agree on every field in ``fields`` (int64)."""
    ucode, _ = _row_codes(inst.units, sorted(f[5:] for f in fields if f.startswith("unit.")))
    dcode, nd = _row_codes(inst.demands, sorted(f[7:] for f in fields if f.startswith("demand.")))
    res = triples.res.astype(np.int64) + 1 if {"reservataire", "in_flux"} & fields else 0
    n_res = len(inst.reservataires) + 1
    code = (ucode[triples.unit] * max(nd, 1) + dcode[triples.demand]) * n_res + res
    return pd.factorize(code)[0].astype(np.int64)


def quota_lines(inst: RoundInstance, triples: Triples) -> QuotaLines:
    """Build the lines of every quota rule and scope group over ``triples`` (vectorised)."""
    rules = inst.policy.quotas.rules
    fields: set[str] = set().union(*(_fields_of(r) for r in rules)) if rules else set()
    cls = triple_classes(inst, triples, fields)
    k = int(cls.max(initial=-1)) + 1
    first_of = np.full(k, len(cls), dtype=np.int64)
    np.minimum.at(first_of, cls, np.arange(len(cls)))
    frame = triple_fields(inst, triples.subset(first_of), fields)  # one row per class
    class_res = triples.res[first_of].astype(np.int64)
    line = np.full((len(rules), k), -1, dtype=np.int64)
    coef = np.zeros((len(rules), k), dtype=np.int64)
    names: list[str] = []
    weight: list[int] = []
    sign: list[int] = []
    rhs: list[int] = []
    step: list[int] = []
    for j, rule in enumerate(rules):
        base, counted = selection(rule, frame)
        keys = scope_keys(rule, frame)
        groups = judged_groups(inst, rule, keys[base].tolist())
        first = len(names)
        line[j, base] = first + pd.Index(groups).get_indexer(pd.Index(keys[base]))
        p, q, _ = row_terms(rule, 0, 0)
        coef[j] = q * counted.astype(np.int64) - p * base.astype(np.int64)
        for group in groups:
            prior = inst.year_so_far.tally(rule.id, group)
            names.append(row_name(rule, group))
            weight.append(rule.weight)
            sign.append(1 if rule.bound == Bound.FLOOR else -1)
            rhs.append(row_terms(rule, prior.base, prior.counted)[2])
            step.append(q)
    line_res = np.full(len(names), -1, dtype=np.int64)
    for j in range(len(rules)):
        inside = line[j] >= 0
        frame_lines = pd.DataFrame({"line": line[j, inside], "res": class_res[inside]})
        spread = frame_lines.groupby("line")["res"].agg(["min", "max"])
        single = spread.index[(spread["min"] == spread["max"]) & (spread["min"] >= 0)]
        line_res[single.to_numpy()] = spread.loc[single, "min"].to_numpy()
    return QuotaLines(
        names=tuple(names),
        weight=np.asarray(weight, dtype=np.int64),
        sign=np.asarray(sign, dtype=np.int64),
        rhs=np.asarray(rhs, dtype=np.int64),
        step=np.asarray(step, dtype=np.int64),
        cls=cls,
        line_res=line_res,
        line=line,
        coef=coef,
    )
