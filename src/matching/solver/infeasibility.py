"""Name the rules that make a round infeasible, from guard literals and CP-SAT assumptions."""

from __future__ import annotations

from ortools.sat.python import cp_model

from matching.solver.build import BuiltModel


def conflicting_rules(built: BuiltModel, params_time_limit_s: float, workers: int) -> list[str]:
    """Rule names (quota ids, ``flux_band[r]``) whose joint enforcement is infeasible.

    Every guard literal is assumed true; CP-SAT then returns a subset of the assumptions that is
    sufficient for infeasibility. Returns an empty list when the model is feasible or when the
    search ran out of time.
    """
    assert built.guards is not None, "build the model with diagnose=True"
    literals = built.guards.literals
    built.model.add_assumptions(list(literals.values()))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = params_time_limit_s
    solver.parameters.num_workers = 1  # cores are only reported by a single-worker search
    status = solver.solve(built.model)
    if status != cp_model.INFEASIBLE:
        return []
    core = set(solver.sufficient_assumptions_for_infeasibility())
    return sorted(name for name, lit in literals.items() if lit.index in core)
