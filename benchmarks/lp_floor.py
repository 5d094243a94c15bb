"""How fast could a round be with HiGHS as its LP engine? The floor under issue 5's 10x goal.

The monthly round's goal is at most 10 times scipy's unconstrained matching on the same pairs
(about 0.5 s for January, whose matching takes about 0.05 s). This measures, in one run, what
the exact engine spends before its first LP, in its root LP (column generation) and after it
(first solution, cuts, branching); then the root LP's final columns and rows solved again from
scratch by HiGHS's dual simplex, primal simplex and interior point (the best of ``--repeats``):
the root LP of a pricing oracle that knew those columns from the start. When the preparation
plus that LP already take the goal, before any first solution or proof, faster pricing alone
cannot meet it: the LP engine, the preparation or the proof has to change.

::

    python -m benchmarks.lp_floor                      # caen-month, 3 repeats
    python -m benchmarks.lp_floor --case small-round --repeats 5

Writes ``results/lp-floor-<date>.md`` and ``.csv`` (`report.dated_stem`). The root LP is taken
by wrapping `LPSession.solve` in this process only (its first call is the root's column
generation); the engine itself is unchanged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.baselines import unconstrained
from benchmarks.cases import CASES, prepare
from benchmarks.report import write_page
from matching.params import SolveParams
from matching.solver import lp as lp_module
from matching.solver import solve_round

STRATEGIES: tuple[tuple[str, str, str], ...] = (
    ("dual simplex", "simplex", "off"),
    ("dual simplex", "simplex", "on"),
    ("primal simplex", "primal", "off"),
    ("interior point", "ipm", "on"),
)
"""(name, solver, presolve) of each cold re-solve of the root LP."""


@dataclass
class RootCapture:
    """The first LP solve of a `solve_round` call: when it started, how long, and its model."""

    started: float | None = None
    seconds: float = 0.0
    model: Any = None
    calls: list[float] = field(default_factory=list)


def _capture_root(capture: RootCapture) -> Any:
    """Wrap `LPSession.solve`: time each call, copy the first call's final LP.

    Returns the original method, for the caller to put back.
    """
    original = lp_module.LPSession.solve

    def solve(self: lp_module.LPSession, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = original(self, *args, **kwargs)
        capture.calls.append(time.perf_counter() - start)
        if capture.model is None:
            capture.started, capture.seconds = start, capture.calls[-1]
            capture.model = self.highs.getLp()
        return out

    lp_module.LPSession.solve = solve  # type: ignore[method-assign]
    return original


def cold_solve(model: Any, solver: str, presolve: str) -> tuple[float, int, float]:
    """Solve ``model`` from scratch; (seconds, simplex iterations, objective)."""
    highs = lp_module._quiet_highs()  # silent from its construction on
    highs.setOptionValue("threads", 1)
    highs.passModel(model)
    if solver == "primal":
        highs.setOptionValue("simplex_strategy", 4)
    else:
        highs.setOptionValue("solver", solver)
    highs.setOptionValue("presolve", presolve)
    start = time.perf_counter()
    highs.run()
    seconds = time.perf_counter() - start
    info = highs.getInfo()
    return seconds, int(info.simplex_iteration_count), float(info.objective_function_value)


def measure(case_name: str, repeats: int) -> dict[str, Any]:
    """One case: the engine's phases, scipy's matching and the root LP re-solved cold."""
    prepared = prepare(CASES[case_name])
    inst = prepared.instance
    matching = unconstrained(
        inst.pair_unit, inst.pair_demand, inst.scores[inst.pair_demand], len(inst.units)
    )
    capture = RootCapture()
    original = _capture_root(capture)
    try:
        start = time.perf_counter()
        solution = solve_round(inst, SolveParams(time_limit_s=60, seed=1))
        total = time.perf_counter() - start
    finally:
        lp_module.LPSession.solve = original  # type: ignore[method-assign]
    if capture.model is None or capture.started is None:
        raise RuntimeError(f"{case_name}: the engine solved no LP (nothing to measure)")
    before = capture.started - start
    record: dict[str, Any] = {
        "case": case_name,
        "status": solution.status,
        "proof": solution.stats.get("proof", ""),
        "solve_s": round(total, 3),
        "before_lp_s": round(before, 3),
        "root_lp_s": round(capture.seconds, 3),
        "after_root_s": round(total - before - capture.seconds, 3),
        "lp_calls": len(capture.calls),
        "scipy_s": round(matching.seconds, 4),
        "goal_s": round(10 * matching.seconds, 3),
        "lp_bound": solution.stats.get("lp_bound"),  # the root LP's value (folded stages)
        "lp_columns": int(capture.model.num_col_),
        "lp_rows": int(capture.model.num_row_),
    }
    for _, solver, presolve in STRATEGIES:
        runs = [cold_solve(capture.model, solver, presolve) for _ in range(repeats)]
        best = min(runs)
        key = f"{solver}_presolve_{presolve}"
        record[f"{key}_s"] = round(best[0], 3)
        record[f"{key}_iterations"] = best[1]
        record[f"{key}_objective"] = best[2]
    floor = min(record[f"{s}_presolve_{p}_s"] for _, s, p in STRATEGIES)
    record["oracle_lp_s"] = floor
    record["before_lp_plus_oracle_lp_s"] = round(before + floor, 3)
    return record


def render(records: list[dict[str, Any]], command: str) -> str:
    """The Markdown page of a run."""
    machine = (
        f"Machine: {platform.platform()}, {os.cpu_count()} CPU(s), Python "
        f"{platform.python_version()}, HiGHS {lp_module._quiet_highs().version()}; load "
        f"average at the end {os.getloadavg()[0]:.1f} (a shared machine: timings are upper "
        "bounds)."
    )
    lines = [
        f"# The LP floor of a round, {dt.date.today().isoformat()}",
        "",
        f"`{command}`. {machine}",
        "",
        "`before LP` is `solve_round` up to its first LP (triples, dominance, rows, seed), `root "
        "LP` its column generation, `after` the rest (first solution, cuts, branching). The "
        "oracle LP is the root LP's final columns and rows solved again from scratch (best of "
        "the repeats): the root LP of a pricing that knew those columns from the start. `goal` "
        "is 10x scipy.",
        "",
        "| case | status | solve s | before LP s | root LP s | after s | scipy s | goal s "
        "| LP cols x rows | oracle LP s (dual / dual+presolve / primal / IPM) "
        "| before LP + oracle LP s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        oracle = " / ".join(str(r[f"{s}_presolve_{p}_s"]) for _, s, p in STRATEGIES)
        lines.append(
            f"| {r['case']} | {r['status']} ({r['proof']}) | {r['solve_s']} | "
            f"{r['before_lp_s']} | {r['root_lp_s']} | {r['after_root_s']} | {r['scipy_s']} | "
            f"{r['goal_s']} | {r['lp_columns']:,} x {r['lp_rows']:,} | {oracle} | "
            f"{r['before_lp_plus_oracle_lp_s']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Measure the cases and write the dated page and CSV."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    cases = args.case or ["caen-month"]
    records = [measure(name, args.repeats) for name in cases]
    page = write_page("lp-floor", records, render, "benchmarks.lp_floor", argv)
    for r in records:
        print(r)
    print(f"results written to {page}")


if __name__ == "__main__":
    main()
