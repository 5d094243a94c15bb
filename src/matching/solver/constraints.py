"""One function per constraint family, and the registry that lists them (STYLE practice 5).

Every function has the signature ``add_<family>(model, vars, inst, rows, guards)`` and returns
nothing; soft terms (quota shortfalls) live in `AssignmentVars.shortfall` and enter the objective
stages. Families that can conflict (flux bands, quota rules) are guarded: when ``guards`` is a
`Guards`, each instance is enforced by a named literal so that an infeasible round can name the
rules in conflict (matching.solver.infeasibility).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import numpy as np
from ortools.sat.python import cp_model

from matching.policy.conditions import evaluate
from matching.solver.instance import NONE, RoundInstance
from matching.solver.rows import QuotaRow
from matching.solver.variables import AssignmentVars
from matching.types import QuotaMode


class Guards:
    """Named enforcement literals, one per guarded rule instance (used to explain infeasibility)."""

    def __init__(self, model: cp_model.CpModel) -> None:
        self.model = model
        self.literals: dict[str, cp_model.IntVar] = {}

    def literal(self, name: str) -> cp_model.IntVar:
        """The literal guarding rule ``name`` (created on first use)."""
        if name not in self.literals:
            self.literals[name] = self.model.new_bool_var(f"guard[{name}]")
        return self.literals[name]


def _enforce(ct: cp_model.Constraint, guards: Guards | None, name: str) -> None:
    if guards is not None:
        ct.only_enforce_if(guards.literal(name))


# --- Hard, structural -------------------------------------------------------------------------


def add_one_household_per_unit(
    model: cp_model.CpModel, v: AssignmentVars, inst: RoundInstance, rows: list[QuotaRow],
    guards: Guards | None,
) -> None:  # fmt: skip
    """Hard. At most one household per unit (DOMAIN A2/A6: a unit is let once per round)."""
    for _, xs in v.by_unit():
        if len(xs) > 1:
            model.add_at_most_one(xs)


def add_one_unit_per_household(
    model: cp_model.CpModel, v: AssignmentVars, inst: RoundInstance, rows: list[QuotaRow],
    guards: Guards | None,
) -> None:  # fmt: skip
    """Hard. At most one unit per household (a demand is satisfied by one lease)."""
    for _, xs in v.by_demand():
        if len(xs) > 1:
            model.add_at_most_one(xs)


def add_one_reservataire_per_flux_unit(
    model: cp_model.CpModel, v: AssignmentVars, inst: RoundInstance, rows: list[QuotaRow],
    guards: Guards | None,
) -> None:  # fmt: skip
    """Hard. Each flux unit is oriented to exactly one réservataire (DOMAIN A3, gestion en flux)."""
    for u in v.flux_units:
        model.add_exactly_one(v.orientation_of(int(u)))


def add_allocation_through_orientation(
    model: cp_model.CpModel, v: AssignmentVars, inst: RoundInstance, rows: list[QuotaRow],
    guards: Guards | None,
) -> None:  # fmt: skip
    """Hard. A flux unit goes only to a household of the pool of the réservataire it is oriented to.

    Written as ``sum_d x[u,d,r] <= orient[u,r]``: tighter than one implication per triple and
    it carries the at-most-one of the unit. Triples exist only inside pools (A3), so this is
    also where pools bind.
    """
    for u, r, xs in v.by_unit_reservataire():
        model.add(sum(xs) <= v.orient[(u, r)])


def add_flux_exclusion(
    model: cp_model.CpModel, v: AssignmentVars, inst: RoundInstance, rows: list[QuotaRow],
    guards: Guards | None,
) -> None:  # fmt: skip
    """Hard. A unit excluded from the flux goes only to the households its exclusion is for (A3).

    The eligible-pair table already applies this rule; it is restated here from the policy so
    that the model never depends on a filter applied elsewhere. A policy that switches the rule
    off (``flux_exclusion`` not in ``eligibility.rules``) lets anyone eligible take such a
    unit: the pair table and the checker have it so, and so does the model.
    """
    if "flux_exclusion" not in inst.policy.eligibility.rules:
        return
    t = v.triples
    excl = np.flatnonzero(t.res == NONE)
    if len(excl) == 0:
        return
    reasons = inst.units["flux_excluded"].to_numpy(dtype=object)[t.unit[excl]]
    for reason, conds in inst.policy.flux.exclusions.items():
        sel = excl[reasons == reason.value]
        if len(sel) == 0:
            continue
        ok = evaluate(conds, inst.demands.iloc[t.demand[sel]].reset_index(drop=True))
        for i in sel[~ok]:
            model.add(v.x[i] == 0)


def add_flux_bands(
    model: cp_model.CpModel, v: AssignmentVars, inst: RoundInstance, rows: list[QuotaRow],
    guards: Guards | None,
) -> None:  # fmt: skip
    """Hard. Each réservataire with a share receives floor(t_r)..ceil(t_r) of the round's flux (A4).

    ``t_r = share_r x flux so far this year - units already oriented to r``; the landlord takes
    the remainder. Guarded as ``flux_band[r]``.
    """
    index = {r: i for i, r in enumerate(inst.reservataires)}
    for rid, band in inst.bands().items():
        oriented = sum(v.orient[(int(u), index[rid])] for u in v.flux_units)
        ct = model.add_linear_constraint(oriented, band.low, band.high)
        _enforce(ct, guards, f"flux_band[{rid}]")


def add_quota_rules(
    model: cp_model.CpModel, v: AssignmentVars, inst: RoundInstance, rows: list[QuotaRow],
    guards: Guards | None,
) -> None:  # fmt: skip
    """Hard or soft. Every quota rule of the policy, in every scope group (A4, generic rule).

    Priority floors and both mixity rules are instances of the same rule read from the policy
    (see matching.solver.rows for the exact integer rows; the State's priority-only share is its
    pool: no triple gives its units to another household). In soft
    mode each row gets its shortfall variable, minimised by the ``shortfall`` stage; in hard mode
    the row holds with no shortfall and is guarded by the rule id.
    """
    soft = inst.policy.quotas.mode == QuotaMode.SOFT
    for k, row in enumerate(rows):
        expr = cp_model.LinearExpr.weighted_sum([v.x[i] for i in row.idx], row.coef.tolist())
        if soft:
            expr = expr + row.slack * v.shortfall[k]
        ct = model.add(expr >= row.rhs) if row.sense == ">=" else model.add(expr <= row.rhs)
        if not soft:
            _enforce(ct, guards, row.rule.id)


Family: TypeAlias = Callable[
    [cp_model.CpModel, AssignmentVars, RoundInstance, list[QuotaRow], Guards | None], None
]

CONSTRAINT_FAMILIES: tuple[tuple[str, Family], ...] = (
    # Hard
    ("one_household_per_unit", add_one_household_per_unit),
    ("one_unit_per_household", add_one_unit_per_household),
    ("one_reservataire_per_flux_unit", add_one_reservataire_per_flux_unit),
    ("allocation_through_orientation", add_allocation_through_orientation),
    ("flux_exclusion", add_flux_exclusion),
    ("flux_band", add_flux_bands),
    # Hard (default) or soft, per the policy's quota mode
    ("quota", add_quota_rules),
)
"""Every constraint family of the round model, in the order they are added."""
