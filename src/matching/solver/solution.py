"""The raw outcome of a round's solve, in positions (the exact engine's and the greedy's)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from matching.types import Stage


@dataclass
class RoundSolution:
    """Raw outcome of a round's solve, in positions; `matching.round` turns it into a Result."""

    status: str  # OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN
    unit: np.ndarray  # allocated unit positions
    demand: np.ndarray  # allocated demand positions
    res: np.ndarray  # réservataire index, -1 for units excluded from the flux
    orientation: dict[int, int]  # flux unit position -> réservataire index
    stage_values: dict[Stage, int] = field(default_factory=dict)
    stage_bounds: dict[Stage, float] = field(default_factory=dict)
    shortfalls: dict[str, int] = field(default_factory=dict)  # soft mode: row name -> shortfall
    conflicts: list[str] = field(default_factory=list)
    stats: dict[str, float | int | str] = field(default_factory=dict)
