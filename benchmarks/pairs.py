"""Benchmark of eligible-pair generation: time and peak memory on three round sizes.

Run from the repository root::

    python -m benchmarks.pairs            # every case, results in benchmarks/results/
    python -m benchmarks.pairs --case caen-month --repeat 5

Each case runs in its own subprocess so that its peak resident memory (``ru_maxrss``) is its own.
Inside, the territory is generated (not timed), facts and scores are derived (timed apart), then
`matching.eligibility.eligible_pairs` is timed (best of ``--repeat``) and run once more under
``tracemalloc`` for the peak memory it allocates. A naive baseline (every rule evaluated on the
full unit x demand cross product with `pair_failures`) is measured on the cases small enough for
it, and its pairs are checked equal to the fast table.

Data come from `matching.generate.generate_territory` (Caen la Mer, 2026, seed 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.report import dated_stem
from matching.eligibility import demand_pools, eligible_pairs, pair_failures
from matching.facts import derive_facts
from matching.generate import generate_territory
from matching.policy import load_policy
from matching.policy.scoring import score

ROUND_DATE = dt.date(2026, 3, 31)
RESULTS = Path(__file__).resolve().parent / "results"

CASES: dict[str, dict[str, Any]] = {
    # A monthly round of Caen la Mer: about 4,000 units released a year, 17,000 live demands.
    "caen-month": {"n_units": 350, "n_demands": 17_000, "naive": True, "goal_s": 1.0},
    # The whole year pooled into one round.
    "caen-year": {"n_units": 4_000, "n_demands": 17_000, "naive": False, "goal_s": 1.0},
    # A large round: 1,000 units and 250,000 demands (goal < 30 s and < 4 GB).
    "large": {"n_units": 1_000, "n_demands": 250_000, "naive": False, "goal_s": 30.0},
}


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def load_case(n_units: int, n_demands: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Units, demands and a description of their source (the project's generator)."""
    units, demands = generate_territory(
        territory="caen-la-mer", year=2026, seed=1, n_units=n_units, n_demands=n_demands
    )
    return units, demands, "matching.generate.generate_territory(caen-la-mer, 2026, seed 1)"


# ---------------------------------------------------------------------------------------------
# Measurement (in a subprocess per case)
# ---------------------------------------------------------------------------------------------


def naive_pairs(units: pd.DataFrame, demands: pd.DataFrame, policy: Any) -> np.ndarray:
    """Baseline: every rule on the full cross product, keeping pairs someone may allocate."""
    n_u, n_d = len(units), len(demands)
    u_idx = np.repeat(np.arange(n_u), n_d)
    d_idx = np.tile(np.arange(n_d), n_u)
    fails = pair_failures(units, demands, u_idx, d_idx, policy)
    ok = np.ones(len(u_idx), dtype=bool)
    for failed in fails.values():
        ok &= ~failed
    in_flux = (units["flux_excluded"].to_numpy(dtype=object) == "")[u_idx]
    ok &= ~in_flux | (demand_pools(demands, policy)[d_idx] != 0)
    return np.flatnonzero(ok)


def measure(case: str, repeat: int) -> dict[str, Any]:
    """Measure one case in this process; returns a JSON-able record."""
    spec = CASES[case]
    policy = load_policy("default-2026")
    units, demands, source = load_case(spec["n_units"], spec["n_demands"])
    t0 = time.perf_counter()
    facts = derive_facts(demands, policy, ROUND_DATE)
    scores = score(facts, policy.cotation).total.to_numpy()
    facts_s = time.perf_counter() - t0

    times = []
    table = None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        table = eligible_pairs(units, facts, policy, scores)
        times.append(time.perf_counter() - t0)
    assert table is not None
    n_pairs = len(table.pairs)
    del table
    gc.collect()
    tracemalloc.start()
    table = eligible_pairs(units, facts, policy, scores)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    record: dict[str, Any] = {
        "case": case,
        "n_units": len(units),
        "n_demands": len(demands),
        "source": source,
        "n_pairs": n_pairs,
        "no_pool": int(table.no_pool.sum()),
        "facts_and_score_s": round(facts_s, 3),
        "pairs_s": round(min(times), 3),
        "pairs_s_runs": [round(t, 3) for t in times],
        "pairs_peak_traced_mb": round(traced_peak / 2**20, 1),
        "goal_s": spec["goal_s"],
    }
    if spec["naive"]:
        fast = table.pairs["unit"].to_numpy(np.int64) * len(demands) + table.pairs["demand"]
        del table
        gc.collect()
        t0 = time.perf_counter()
        naive = naive_pairs(units, facts, policy)
        record["naive_s"] = round(time.perf_counter() - t0, 3)
        record["naive_equal"] = bool(np.array_equal(naive, fast.to_numpy()))
        record["speedup"] = round(record["naive_s"] / max(record["pairs_s"], 1e-9), 1)
    # ru_maxrss is in KiB on Linux: the whole process (inputs, facts and pair table included).
    record["process_peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    return record


def run_case_subprocess(case: str, repeat: int) -> dict[str, Any]:
    """Run one case in a fresh interpreter and parse its JSON record."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.pairs",
            "--case",
            case,
            "--repeat",
            str(repeat),
            "--json",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    record: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return record


def write_results(records: list[dict[str, Any]]) -> Path:
    """Write the records as Markdown and CSV under benchmarks/results/ (`report.dated_stem`)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = dated_stem(RESULTS, "pairs")
    frame = pd.DataFrame(records)
    frame.drop(columns=["pairs_s_runs"]).to_csv(stem.with_suffix(".csv"), index=False)
    machine = (
        f"Machine: {platform.platform()}, {os.cpu_count()} CPU(s), "
        f"Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}; "
        f"load average at the end {os.getloadavg()[0]:.1f} (the machine may be shared with other "
        "jobs: timings are upper bounds)."
    )
    source = records[0]["source"] if records else "-"
    lines = [
        f"# Eligible-pair generation, {dt.date.today().isoformat()}",
        "",
        machine,
        f"Data: {source}. Policy: default-2026. Round date {ROUND_DATE}.",
        "",
        "`pairs s` is the best of the timed runs of `eligible_pairs` (facts and scores given);",
        "`traced MB` the peak Python/numpy allocation during one call (tracemalloc); `RSS MB` the",
        "peak resident memory of the whole benchmark process (data, facts, table, baseline). The",
        "naive baseline evaluates `pair_failures` on the full unit x demand cross product.",
        "",
        "| case | units | demands | pairs | no pool | facts+score s | pairs s | goal s | traced MB "
        "| RSS MB | naive s | speed-up | naive equal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['case']} | {r['n_units']:,} | {r['n_demands']:,} | {r['n_pairs']:,} | "
            f"{r['no_pool']:,} | {r['facts_and_score_s']} | {r['pairs_s']} | {r['goal_s']:g} | "
            f"{r['pairs_peak_traced_mb']} | {r['process_peak_rss_mb']} | {r.get('naive_s', '-')} | "
            f"{r.get('speedup', '-')} | {r.get('naive_equal', '-')} |"
        )
    path = stem.with_suffix(".md")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), action="append", help="case(s) to run")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case (best kept)")
    parser.add_argument("--json", action="store_true", help="measure in this process, print JSON")
    args = parser.parse_args(argv)
    cases = args.case or list(CASES)
    if args.json:
        for case in cases:
            print(json.dumps(measure(case, args.repeat)))
        return
    records = []
    for case in cases:
        repeat = 1 if case == "large" else args.repeat
        record = run_case_subprocess(case, repeat)
        print(json.dumps(record))
        records.append(record)
    print(f"results written to {write_results(records)}")


if __name__ == "__main__":
    main()
