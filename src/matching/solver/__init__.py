"""The CP-SAT round solver: the only package that imports ortools."""

from __future__ import annotations

from matching.solver.instance import RoundInstance as RoundInstance
from matching.solver.solution import RoundSolution as RoundSolution
from matching.solver.solve import solve_round as solve_round
