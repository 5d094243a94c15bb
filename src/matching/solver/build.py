"""Assemble variables, constraint families and objective stages into one CP-SAT model."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ortools.sat.python import cp_model

from matching.solver.constraints import CONSTRAINT_FAMILIES, Guards
from matching.solver.instance import RoundInstance, Triples
from matching.solver.objective import StageTerms, stage_terms
from matching.solver.rows import QuotaRow, quota_rows
from matching.solver.variables import AssignmentVars
from matching.types import QuotaMode

_logger = logging.getLogger(__name__)


@dataclass
class BuiltModel:
    """A CP-SAT model of a round with its variables, quota rows, stages and guards."""

    model: cp_model.CpModel
    vars: AssignmentVars
    rows: list[QuotaRow]
    stages: list[StageTerms]
    guards: Guards | None

    def stage_expr(self, term: StageTerms) -> cp_model.LinearExprT:
        """The linear expression of one stage over this model's variables."""
        expr = cp_model.LinearExpr.weighted_sum(self.vars.x, term.x.tolist())
        if len(self.vars.shortfall):
            expr = expr + cp_model.LinearExpr.weighted_sum(self.vars.shortfall, term.s.tolist())
        return expr


def build_model(inst: RoundInstance, triples: Triples, *, diagnose: bool = False) -> BuiltModel:
    """Build the round's model on the given triples (all of them, or a proven core).

    With ``diagnose`` every guarded family instance is enforced by a literal, so that the solver
    can report which rules conflict when the round is infeasible.
    """
    model = cp_model.CpModel()
    rows = quota_rows(inst, triples)
    soft = inst.policy.quotas.mode == QuotaMode.SOFT
    variables = AssignmentVars(model, inst, triples, rows, soft)
    guards = Guards(model) if diagnose else None
    for name, add in CONSTRAINT_FAMILIES:
        add(model, variables, inst, rows, guards)
        _logger.debug("added family %s", name)
    terms = stage_terms(
        inst.policy.objective.stages, triples, rows, inst.policy.quotas.mode, len(inst.units)
    )
    return BuiltModel(model, variables, rows, terms, guards)
