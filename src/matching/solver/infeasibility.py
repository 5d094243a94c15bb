"""Name the rules that make a round infeasible, from guard literals and CP-SAT assumptions."""

from __future__ import annotations

from ortools.sat.python import cp_model

from matching.params import SolveParams
from matching.solver.build import BuiltModel
from matching.solver.cpsat import Budget, run


def conflicting_rules(built: BuiltModel, params: SolveParams, budget: Budget) -> list[str]:
    """Rule names (quota ids, ``flux_band[r]``) whose joint enforcement is infeasible.

    Every guard literal is assumed true; CP-SAT then returns a subset of the assumptions that is
    sufficient for infeasibility. Returns an empty list when the model is feasible or when the
    search ran out of its budget: what is left of ``budget``, at least 1 s, in CP-SAT's
    deterministic time (its wall-clock limit, three times that plus 5 s, is only a safety net).
    Why not wall-clock seconds: the names found, or found at all, then depended on the machine's
    load, and the same round named different rules beside a busy process.
    """
    assert built.guards is not None, "build the model with diagnose=True"
    literals = built.guards.literals
    built.model.add_assumptions(list(literals.values()))
    seconds = max(1.0, budget.left)
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = seconds
    solver.parameters.max_time_in_seconds = 3 * seconds + 5
    solver.parameters.num_workers = 1  # cores are only reported by a single-worker search
    solver.parameters.random_seed = params.seed
    status = run(solver, built.model, budget)
    if status != cp_model.INFEASIBLE:
        return []
    core = set(solver.sufficient_assumptions_for_infeasibility())
    return sorted(name for name, lit in literals.items() if lit.index in core)
