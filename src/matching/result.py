"""Result of one allocation round: the allocation, its status and bounds, and its provenance.

Files written from a Result are byte-stable: everything in ``result.json`` depends only on the
inputs, the policy and the parameters (timings go to ``timings.json``, which is expected to vary).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from matching import __version__
from matching.params import SolveParams


def versions() -> dict[str, str]:
    """Versions of the package and of the libraries that can change a result."""
    from importlib.metadata import version

    import numpy
    import scipy

    return {
        "matching": __version__,
        "ortools": version("ortools"),
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "highspy": version("highspy"),
        "python": platform.python_version(),
    }


UNALLOCATED_REASONS = {
    "no_eligible_demand": "no household passes the eligibility rules for this unit",
    "no_demand_in_any_pool": "eligible households exist but none is in any réservataire's pool",
    "no_candidate_in_oriented_pool": (
        "no eligible household in the pool of the réservataire it is oriented to"
    ),
    "candidates_taken_or_quota_bound": (
        "its candidates went to other units, or taking one would break a quota"
    ),
    "round_infeasible": "the hard quotas cannot all hold in this round: nothing was allocated",
    "no_solution_in_time": "no allocation was found within the time limit",
    "not_proven_in_time": (
        "the search stopped at its time limit (or within the --gap asked) before proving "
        "whether this unit could be let"
    ),
}

UNALLOCATED_DEMAND_REASONS = {
    "no_eligible_unit": (
        "no unit of the round passes the eligibility rules for this household "
        "(matching why-not names the rules)"
    ),
    "no_unit_in_its_pools": (
        "it passes the rules only on units in the flux, and no réservataire's pool holds it"
    ),
    "no_unit_oriented_to_its_pools": (
        "each unit it is eligible for was oriented to a réservataire whose pool does not hold it"
    ),
    "units_went_to_others": (
        "each unit it could take went to another household, or stayed empty under a quota"
    ),
    "round_infeasible": UNALLOCATED_REASONS["round_infeasible"],
    "no_solution_in_time": UNALLOCATED_REASONS["no_solution_in_time"],
    "not_proven_in_time": (
        "the search stopped at its time limit (or within the --gap asked) before proving "
        "whether this household could be housed"
    ),
}
"""Reason codes of ``unallocated_demands.csv``: every demand not housed has one."""


@dataclass
class Result:
    """Outcome and provenance of one round (STYLE practice 9)."""

    status: str  # OPTIMAL, FEASIBLE (time limit or relative gap), INFEASIBLE, UNKNOWN
    policy_id: str
    round_date: dt.date
    params: SolveParams
    allocation: pd.DataFrame  # unit_id, demand_id, reservataire, score (sorted by unit_id)
    orientation: pd.DataFrame  # unit_id, reservataire for every flux unit (sorted)
    unallocated_units: pd.DataFrame  # unit_id, reason
    unallocated_demands: pd.DataFrame  # demand_id, reason, eligible_units (sorted by demand_id)
    stage_values: dict[str, int] = field(default_factory=dict)
    stage_bounds: dict[str, float] = field(default_factory=dict)
    shortfalls: dict[str, int] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    # RoundKpis.to_dict(); INFEASIBLE or UNKNOWN: the round's with nothing allocated
    kpis: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = 0.0
    versions: dict[str, str] = field(default_factory=versions)
    soft_diagnosis: Result | None = None
    prepared: Any = field(default=None, repr=False, compare=False)
    """The `matching.round.PreparedRound` the result was built from (memory only, never
    written): lets the shortlists reuse the round's facts, scores and pairs."""

    def __post_init__(self) -> None:
        if self.status not in {"OPTIMAL", "FEASIBLE", "INFEASIBLE", "UNKNOWN"}:
            raise ValueError(f"unknown status {self.status}")

    @property
    def gap(self) -> float:
        """Relative gap of the last stage (0 when proven optimal, 1 with no solution at all)."""
        if self.status == "UNKNOWN":
            return 1.0
        if not self.stage_values:
            return 0.0
        stage = list(self.stage_values)[-1]
        value, bound = (
            self.stage_values[stage],
            self.stage_bounds.get(stage, self.stage_values[stage]),
        )
        return abs(bound - value) / max(1.0, abs(bound))

    @property
    def seed(self) -> int:
        """CP-SAT seed used."""
        return self.params.seed

    def to_dict(self) -> dict[str, Any]:
        """Deterministic JSON-ready summary (no timing; see ``timings()``)."""
        return {
            "status": self.status,
            "policy": self.policy_id,
            "round_date": self.round_date.isoformat(),
            "objective": {k: int(v) for k, v in self.stage_values.items()},
            "best_bound": {k: float(v) for k, v in self.stage_bounds.items()},
            "gap": round(self.gap, 9),
            "shortfalls": dict(sorted(self.shortfalls.items())),
            "conflicts": list(self.conflicts),
            "counts": dict(self.counts),
            "params": self.params.model_dump(),
            "versions": self.versions,
            "proof": {k: v for k, v in sorted(self.stats.items()) if k in _DETERMINISTIC_STATS},
        }

    def timings(self) -> dict[str, Any]:
        """Wall times and solver statistics (vary from run to run)."""
        return {"wall_time_s": round(self.wall_time_s, 3), **dict(sorted(self.stats.items()))}

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """The output tables by file stem: allocations, orientations, unallocated units, demands."""
        return {
            "allocations": self.allocation,
            "orientations": self.orientation,
            "unallocated_units": self.unallocated_units,
            "unallocated_demands": self.unallocated_demands,
        }

    def to_json(self) -> str:
        """``result.json`` text: sorted keys are not imposed, key order is fixed by construction."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def summary(self) -> str:
        """A short human summary: status, stages, counts, proof."""
        lines = [
            f"Round {self.round_date.isoformat()} under policy {self.policy_id}: {self.status}",
        ]
        for stage, value in self.stage_values.items():
            bound = self.stage_bounds.get(stage, value)
            lines.append(f"  {stage:<12} {value:>12,}   (bound {bound:,.0f})")
        c = self.counts
        if c:
            lines.append(
                f"  units {c.get('units', 0):,}: allocated {c.get('units_allocated', 0):,}, "
                f"unallocated {c.get('units_unallocated', 0):,}"
            )
            lines.append(
                f"  demands {c.get('demands', 0):,}: allocated {c.get('demands_allocated', 0):,}, "
                f"eligible but not allocated {c.get('demands_eligible_not_allocated', 0):,}, "
                f"eligible for no unit {c.get('demands_not_eligible', 0):,}"
            )
        if self.shortfalls:
            short = ", ".join(f"{k} {v}" for k, v in sorted(self.shortfalls.items()) if v)
            lines.append(f"  quota shortfalls: {short or 'none'}")
        if self.conflicts:
            lines.append(f"  conflicting rules: {', '.join(self.conflicts)}")
        proof = self.stats.get("proof")
        if proof == "aggregate_branching":
            lines.append(
                f"  proof: LP bound over all {self.stats.get('triples', 0):,} triples, "
                f"{self.stats.get('branch_cuts', 0)} staircase cuts, "
                f"{self.stats.get('branch_nodes', 0)} branch-and-bound nodes"
            )
        elif proof == "lp_bound":
            lines.append(
                f"  proof: the LP bound over all {self.stats.get('triples', 0):,} triples "
                "meets the solution"
            )
        elif proof is not None:
            lines.append(
                f"  proof: optimal on a core of {self.stats.get('core_triples', 0):,} of "
                f"{self.stats.get('triples', 0):,} triples, certified by the LP bound"
            )
        if self.stats.get("stopped_by_clock"):
            lines.append(
                "  a search stopped at its wall-clock limit, not at its budget of work: the same "
                "inputs may give another result on a machine more or less loaded"
            )
        lines.append(f"  wall time {self.wall_time_s:.2f} s")
        return "\n".join(lines)


_DETERMINISTIC_STATS = {"triples", "method", "proof", "branch_nodes", "branch_cuts"}
