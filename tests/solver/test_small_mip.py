"""The neighbourhood MIP (`matching.solver.mip.solve_small_mip`) is an exact solver of its triples.

The LP path trusts it only for solutions (the proofs come from the LP bound and branching), so
what must hold is: every solution it returns satisfies every rule (checked here by the
independent checker), and over all the triples of a round it finds the same lexicographic
optimum as the full CP-SAT model (20 random 10 x 80 rounds whose floors bind). Fixed triples
stay in its solution.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matching import checker
from matching.exceptions import InfeasibleError
from matching.params import SolveParams
from matching.solver.instance import RoundInstance, build_triples
from matching.solver.mip import MipOutcome, solve_small_mip
from matching.types import Stage
from tests.solver.support import POLICY, binding_policy, generated_round, solve_checked

FULL = SolveParams(num_workers=1, time_limit_s=20.0, prune=False)


def _tables(inst: RoundInstance, found: MipOutcome, idx: np.ndarray) -> tuple[pd.DataFrame, ...]:
    """The MIP's solution as the checker's allocation and orientation tables."""
    triples = build_triples(inst).subset(idx)
    names = np.array([*inst.reservataires, ""], dtype=object)
    chosen = found.chosen
    allocation = pd.DataFrame(
        {
            "unit_id": inst.units["unit_id"].to_numpy()[triples.unit[chosen]],
            "demand_id": inst.demands["demand_id"].to_numpy()[triples.demand[chosen]],
            "reservataire": names[triples.res[chosen]],
        }
    )
    orientation = pd.DataFrame(
        {
            "unit_id": [inst.units["unit_id"].iloc[u] for u in sorted(found.orientation)],
            "reservataire": [
                inst.reservataires[found.orientation[u]] for u in sorted(found.orientation)
            ],
        }
    )
    return allocation, orientation


def test_small_mip_matches_the_full_model_on_20_rounds() -> None:
    """Over all triples, the MIP's stage values equal full CP-SAT's; the checker finds no fault."""
    policy = binding_policy()
    compared = 0
    for seed in range(20):
        units, demands, on, inst = generated_round(300 + seed, 10, 80, policy)
        triples = build_triples(inst)
        everything = np.arange(len(triples))
        found = solve_small_mip(inst, triples, np.zeros(len(everything), bool))
        try:
            full = solve_checked(units, demands, policy, FULL, on=on)
        except InfeasibleError:
            assert found.status == "INFEASIBLE", seed
            continue
        assert found.status == "OPTIMAL", seed
        values = {t.stage: int(t.x[found.chosen].sum()) for t in found.terms}
        assert values == dict(full.stage_values), seed
        allocation, orientation = _tables(inst, found, everything)
        faults = checker.check(
            units, demands, policy, allocation, None, orientation=orientation, on=on
        )
        assert faults == [], (seed, faults)
        compared += 1
    assert compared >= 12


def test_fixed_triples_stay_in_the_solution() -> None:
    """Fixing a feasible solution's triples keeps them; the rest is completed optimally."""
    units, demands, on, inst = generated_round(7, 10, 80, POLICY)
    triples = build_triples(inst)
    free = solve_small_mip(inst, triples, np.zeros(len(triples), bool))
    assert free.status == "OPTIMAL"
    fixed = np.zeros(len(triples), bool)
    fixed[free.chosen[:3]] = True  # three triples of an optimal solution
    again = solve_small_mip(inst, triples, fixed)
    assert again.status == "OPTIMAL"
    assert set(free.chosen[:3].tolist()) <= set(again.chosen.tolist())
    score = {t.stage: int(t.x[again.chosen].sum()) for t in again.terms}
    assert score[Stage.SCORE] == int(free.terms[-1].x[free.chosen].sum())
    allocation, orientation = _tables(inst, again, np.arange(len(triples)))
    faults = checker.check(units, demands, POLICY, allocation, None, orientation=orientation, on=on)
    assert faults == []


@pytest.mark.parametrize("seed", [11])
def test_a_given_start_is_used_and_never_lost(seed: int) -> None:
    """With an optimal solution as the start, the MIP returns a solution at least as good."""
    _, _, _, inst = generated_round(seed, 10, 80, POLICY)
    triples = build_triples(inst)
    first = solve_small_mip(inst, triples, np.zeros(len(triples), bool))
    assert first.status == "OPTIMAL"
    again = solve_small_mip(
        inst, triples, np.zeros(len(triples), bool), hint=first.chosen,
        hint_orientation=first.orientation, node_limit=0,
    )  # fmt: skip
    assert again.status in {"OPTIMAL", "FEASIBLE"}
    value = [int(t.x[again.chosen].sum()) for t in again.terms]
    assert value >= [int(t.x[first.chosen].sum()) for t in first.terms]


@pytest.mark.parametrize("seed", range(300, 306))
def test_better_than_finds_only_lexicographically_better_solutions(seed: int) -> None:
    """Asked to beat its own optimum: none; to beat a worse point: the optimum itself.

    Stage values outside the triples' ranges (more allocations than there are units, a score
    below any reachable one) must still cut exactly the solutions that are not better.
    """
    _, _, _, inst = generated_round(seed, 10, 80, binding_policy())
    triples = build_triples(inst)
    none = np.zeros(len(triples), bool)
    best = solve_small_mip(inst, triples, none)
    if best.status == "INFEASIBLE":
        pytest.skip("no allocation meets the hard quotas")
    assert best.status == "OPTIMAL"
    values = {t.stage: int(t.x[best.chosen].sum()) for t in best.terms}
    allocations, score = values[Stage.ALLOCATIONS], values[Stage.SCORE]
    assert solve_small_mip(inst, triples, none, better_than=values).status == "INFEASIBLE"
    for worse in (
        {Stage.ALLOCATIONS: allocations, Stage.SCORE: score - 1},
        {Stage.ALLOCATIONS: allocations - 1, Stage.SCORE: 10**9},  # score above any reach
        {Stage.ALLOCATIONS: allocations, Stage.SCORE: -(10**9)},  # score below any reach
    ):
        found = solve_small_mip(inst, triples, none, better_than=worse)
        assert found.status == "OPTIMAL"
        assert {t.stage: int(t.x[found.chosen].sum()) for t in found.terms} == values
    beyond = {Stage.ALLOCATIONS: allocations + 1, Stage.SCORE: -(10**9)}  # more than it can
    assert solve_small_mip(inst, triples, none, better_than=beyond).status == "INFEASIBLE"
