"""Benchmark one allocation round: the bundled Caen la Mer monthly round, solved by `matching`.

Measures, in one run on this machine: preparing the round (facts, scores, pairs), the solve
(LP certificate + CP-SAT), its status, the certified gap, and, as the baseline, scipy's
``min_weight_full_bipartite_matching`` on the same pairs with every quota, pool and flux band
dropped (the unconstrained optimum, also the price of the quotas). Results are appended to
``benchmarks/results/round-<date>.md`` and ``.csv``. Run: ``python -m benchmarks.round``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import baselines
from benchmarks.months import month_units
from matching.generate import generate_territory
from matching.params import SolveParams
from matching.policy import load_policy
from matching.round import build_result, prepare_round
from matching.solver import solve_round

RESULTS = Path(__file__).resolve().parent / "results"


def unconstrained(
    unit: np.ndarray, demand: np.ndarray, score: np.ndarray, n_units: int
) -> tuple[int, int, float]:
    """Max allocations, then max score, quotas dropped (`benchmarks.baselines.unconstrained`)."""
    u = baselines.unconstrained(unit, demand, score, n_units)
    return u.allocations, u.score, u.seconds


def run(month: int, time_limit: float, seed: int) -> dict[str, object]:
    units, demands = generate_territory("caen-la-mer", 2026, seed, 4000, 17000)
    round_units, on = month_units(units, month)
    policy = load_policy("default-2026")
    t0 = time.perf_counter()
    prepared = prepare_round(round_units, demands, policy, on=on)
    t_prepare = time.perf_counter() - t0
    params = SolveParams(time_limit_s=time_limit, seed=seed)
    t1 = time.perf_counter()
    solution = solve_round(prepared.instance, params)
    t_solve = time.perf_counter() - t1
    result = build_result(prepared, solution, params, t_prepare + t_solve)  # runs the checker
    inst = prepared.instance
    n_alloc, u_score, t_scipy = unconstrained(
        inst.pair_unit, inst.pair_demand, inst.scores[inst.pair_demand], len(inst.units)
    )
    score = result.stage_values.get("score", 0)
    bound = result.stage_bounds.get("score", score)
    return {
        "date": dt.date.today().isoformat(),
        "case": f"caen-la-mer 2026 month {month} seed {seed}",
        "units": len(inst.units),
        "demands": len(inst.demands),
        "pairs": len(prepared.pairs),
        "triples": solution.stats.get("triples"),
        "core_triples": solution.stats.get("core_triples"),
        "prepare_s": round(t_prepare, 2),
        "lp_s": solution.stats.get("lp_seconds"),
        "solve_s": round(t_solve, 2),
        "status": result.status,
        "allocations": result.stage_values.get("allocations"),
        "score": score,
        "score_bound": bound,
        "certified_gap_pct": round(100 * (bound - score) / max(1, bound), 3),
        "unconstrained_allocations": n_alloc,
        "unconstrained_score": u_score,
        "price_of_quotas_pct": round(100 * (u_score - score) / max(1, u_score), 2),
        "scipy_s": round(t_scipy, 3),
        "ratio_solve_vs_scipy": round(t_solve / max(t_scipy, 1e-6), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--month", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    row = run(args.month, args.time_limit, args.seed)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"round-{row['date']}"
    frame = pd.DataFrame([row])
    csv = stem.with_suffix(".csv")
    frame.to_csv(csv, mode="a", header=not csv.exists(), index=False)
    with stem.with_suffix(".md").open("a", encoding="utf-8") as md:
        md.write("\n| " + " | ".join(row) + " |\n|" + "---|" * len(row) + "\n")
        md.write("| " + " | ".join(str(v) for v in row.values()) + " |\n")
    for k, v in row.items():
        print(f"{k:>28}: {v}")


if __name__ == "__main__":
    main()
