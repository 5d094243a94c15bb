"""Is the fast path exact beyond the test suite's rounds? The LP path against the full model.

The test suite checks, on 50 generated rounds of 8 units x 60 demands, that the LP-certified
path (dominance, LP bound, branching; ``prune=True, prune_above_triples=0``) reaches the same
optimum as plain CP-SAT on the full model (``prune=False``). This runs the same comparison on
larger generated rounds, where the full model may not finish: then the LP path must be proven
optimal, at least as good as the full model's solution and within its bound. Every result is
verified by the independent checker (`matching.round.solve` raises on any disagreement).

::

    python -m benchmarks.exactness --seeds 200:240                  # 40 rounds, hard and soft
    python -m benchmarks.exactness --seeds 0:10 --sizes 25x500 --time-limit 60

Writes ``results/exactness-<date>.md`` and ``.csv`` (`report.dated_stem`); the command fails
(exit code 1) when a round disagrees.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from typing import Any

import pandas as pd

from benchmarks.report import write_page
from matching.generate import generate_territory
from matching.params import SolveParams
from matching.policy import load_policy
from matching.policy.model import Policy
from matching.round import solve
from matching.types import QuotaMode

SIZES: tuple[tuple[int, int], ...] = ((25, 500), (40, 400), (30, 800), (50, 300))
"""Units x demands of the generated rounds, taken in turn by seed."""


def soft(policy: Policy) -> Policy:
    """The same policy with soft quotas (shortfalls minimised first)."""
    quotas = policy.quotas.model_copy(update={"mode": QuotaMode.SOFT})
    return policy.model_copy(update={"quotas": quotas})


def outcome(
    units: pd.DataFrame, demands: pd.DataFrame, policy: Policy, params: SolveParams
) -> dict[str, Any]:
    """Status, stage values and bounds of a checked solve (conflicts when infeasible)."""
    on = pd.Timestamp(units["released_on"].max()).date()
    start = time.perf_counter()
    result = solve(units, demands, policy, params, on=on, raise_on_infeasible=False)
    return {
        "status": result.status,
        "values": tuple(result.stage_values.values()),
        "bounds": tuple(result.stage_bounds.values()),
        "conflicts": tuple(result.conflicts),
        "seconds": round(time.perf_counter() - start, 2),
    }


def verdict(lp_path: dict[str, Any], full: dict[str, Any]) -> str:
    """How the LP path's result compares with the full model's.

    ``equal``; ``within`` (the full model unproven, the LP path proven, at least as good and
    inside its bound); or ``DIFFERENT``.
    """
    if full["status"] in {"OPTIMAL", "INFEASIBLE"}:
        same = all(lp_path[k] == full[k] for k in ("status", "values", "conflicts"))
        return "equal" if same else "DIFFERENT"
    inside = (
        lp_path["status"] == "OPTIMAL"
        and lp_path["values"] >= full["values"]
        and (not full["bounds"] or lp_path["values"] <= full["bounds"])
    )
    return "within" if inside else "DIFFERENT"


def run(seeds: range, sizes: tuple[tuple[int, int], ...], time_limit: float) -> list[dict]:
    """Compare both paths on each seed's round, hard and soft; one record per comparison."""
    policy = load_policy("default-2026")
    lp_params = SolveParams(
        num_workers=1, time_limit_s=time_limit, prune=True, prune_above_triples=0
    )
    full_params = SolveParams(num_workers=1, time_limit_s=time_limit, prune=False)
    records = []
    for seed in seeds:
        n_units, n_demands = sizes[seed % len(sizes)]
        units, demands = generate_territory(
            "caen-la-mer", 2026, seed=seed, n_units=n_units, n_demands=n_demands
        )
        for mode, pol in (("hard", policy), ("soft", soft(policy))):
            lp_path = outcome(units, demands, pol, lp_params)
            full = outcome(units, demands, pol, full_params)
            record = {
                "seed": seed, "units": n_units, "demands": n_demands, "mode": mode,
                "verdict": verdict(lp_path, full),
                **{f"lp_{k}": v for k, v in lp_path.items()},
                **{f"full_{k}": v for k, v in full.items()},
            }  # fmt: skip
            records.append(record)
            print(
                f"seed {seed} {n_units}x{n_demands} {mode}: {record['verdict']} "
                f"(LP path {lp_path['status']} {lp_path['values']} in {lp_path['seconds']} s, "
                f"full {full['status']} {full['values']} in {full['seconds']} s)",
                flush=True,
            )
    return records


def render(records: list[dict], command: str) -> str:
    """The Markdown page of a run: the counts, then the rounds that were not simply equal."""
    counts = pd.Series([r["verdict"] for r in records]).value_counts().to_dict()
    lp_s = sum(r["lp_seconds"] for r in records)
    full_s = sum(r["full_seconds"] for r in records)
    lines = [
        f"# Exactness of the LP path, {dt.date.today().isoformat()}",
        "",
        f"`{command}`: {len(records)} comparisons; "
        + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        + f". LP path {lp_s:.1f} s in all, full model {full_s:.1f} s.",
        "",
        "`equal`: the same status and stage values; `within`: the full model stopped at its "
        "time limit unproven, and the LP path is proven optimal, at least as good and within "
        "the full model's bound. Every result was checked by the independent checker.",
        "",
        "| seed | units x demands | mode | verdict | LP path | full model |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        if r["verdict"] != "equal":
            lines.append(
                f"| {r['seed']} | {r['units']} x {r['demands']} | {r['mode']} | {r['verdict']} "
                f"| {r['lp_status']} {r['lp_values']} | {r['full_status']} {r['full_values']} "
                f"(bound {r['full_bounds']}) |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Run the comparisons, write the dated page and CSV, exit 1 on any difference."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", default="200:240", help="A:B, the seeds A to B-1")
    parser.add_argument("--sizes", default=None, help="e.g. 25x500,40x400 (taken in turn)")
    parser.add_argument("--time-limit", type=float, default=30.0)
    args = parser.parse_args(argv)
    first, last = (int(x) for x in args.seeds.split(":"))
    sizes = SIZES
    if args.sizes:
        sizes = tuple((int(u), int(d)) for u, d in (s.split("x") for s in args.sizes.split(",")))
    records = run(range(first, last), sizes, args.time_limit)
    page = write_page("exactness", records, render, "benchmarks.exactness", argv)
    print(f"results written to {page}")
    if any(r["verdict"] == "DIFFERENT" for r in records):
        sys.exit(1)


if __name__ == "__main__":
    main()
