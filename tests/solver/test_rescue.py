"""The LP's rescue columns: the greedy's allocation, added when the column generation lags.

A hard round whose restricted LP cannot house every household the quotas allow prices millions
of triples as improving (a pooled year whose priority floors bind did not end in 8 minutes).
After `RESCUE_AFTER_ROUNDS` rounds of its root solve the session adds the triples of the
greedy's allocation (`matching.solver.solve._greedy_triples`). Columns only widen the
restricted LP, so the bound and the optimum must not move: checked here against the same rounds
solved without them, each result audited by the independent checker.
"""

from __future__ import annotations

import numpy as np
import pytest

from matching.round import solve
from matching.solver import lp as lp_module
from matching.solver import solve as solve_module
from matching.solver.greedy import greedy_round
from matching.solver.instance import build_triples
from matching.types import QuotaMode
from tests.solver.support import PRUNED, binding_policy, generated_round, verify, with_mode


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rescue_columns_are_the_greedys_allocation(seed: int) -> None:
    """Each rescue triple is one of the greedy's allocations, and every allocation is there."""
    _, _, _, inst = generated_round(seed, 60, 1200, binding_policy())
    triples = build_triples(inst)
    picked = solve_module._greedy_triples(inst, triples)
    greedy = greedy_round(inst, inst.tie_rank, "greedy_score")
    assert len(greedy.unit) > 0
    got = sorted(
        zip(
            triples.unit[picked].tolist(),
            triples.demand[picked].tolist(),
            triples.res[picked].astype(np.int64).tolist(),
            strict=True,
        )
    )
    want = sorted(
        zip(greedy.unit.tolist(), greedy.demand.tolist(), greedy.res.tolist(), strict=True)
    )
    assert got == want
    # the round's own triples given to the greedy (not built again): the same allocation
    assert np.array_equal(solve_module._greedy_triples(inst, triples, built=True), picked)


@pytest.mark.parametrize(("seed", "mode"), [(4, "hard"), (5, "hard"), (6, "hard"), (7, "soft")])
def test_rescue_keeps_the_optimum(seed: int, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rescue columns after the first round: the same proven optimum as without them.

    A soft round goes through the same LP: it is first solved as a hard round whose floors are
    shifted by their least shortfalls (`solve_round`).
    """
    policy = with_mode(binding_policy(), QuotaMode(mode))
    units, demands, on, _ = generated_round(seed, 60, 1200, policy)
    plain = solve(units, demands, policy, PRUNED, on=on)
    verify(plain, units, demands, policy, on=on)

    calls: list[int] = []
    real = solve_module._greedy_triples

    def spy(*args: object) -> np.ndarray:
        out = real(*args)  # type: ignore[arg-type]
        calls.append(len(out))
        return out

    monkeypatch.setattr(solve_module, "_greedy_triples", spy)
    monkeypatch.setattr(lp_module, "RESCUE_AFTER_ROUNDS", 1)
    monkeypatch.setattr(lp_module, "RESCUE_GAP", -1.0)
    rescued = solve(units, demands, policy, PRUNED, on=on)
    verify(rescued, units, demands, policy, on=on)
    assert calls and calls[0] > 0  # the rescue ran, with columns
    assert rescued.status == plain.status == "OPTIMAL"
    assert rescued.stage_values == plain.stage_values
