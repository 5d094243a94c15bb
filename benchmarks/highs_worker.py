"""Solve one saved MIP with highspy, in a process of its own.

With highspy 1.15 and OR-Tools in one process the second import failed (both ship a
``libhighs.so.1``); highspy >= 1.16 (the pinned minimum, which the solver itself now imports next
to OR-Tools) does not have that problem, but the separate process still gives HiGHS its own time
and memory caps. The round's model is built as arrays in the case's process
(`benchmarks.baselines.mip_arrays`), saved with `save`, and solved here::

    python -m benchmarks.highs_worker MODEL.npz TIME_LIMIT

The last line printed is a JSON record: HiGHS's status, objective, dual bound, gap, node count,
seconds, and the allocations and score of its solution (columns ``x`` weighted by the saved
``score``), plus this process's peak resident memory.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

PRESOLVE = "off"
"""HiGHS 1.15.1's presolve did not return within 350 s on the 40-unit round (167 k binaries) and
does not check the time limit meanwhile; with it off, the time limit holds (measured 2026-11-28)."""


def save(path: Path, arrays: Any, score: np.ndarray) -> None:
    """Write a `benchmarks.baselines.MipArrays` and the score per triple to ``path`` (npz)."""
    m = arrays.matrix
    np.savez(
        path,
        cost=arrays.cost,
        col_upper=arrays.col_upper,
        indptr=m.indptr.astype(np.int32),
        indices=m.indices.astype(np.int32),
        data=m.data,
        shape=np.array(m.shape, dtype=np.int64),
        row_lower=arrays.row_lower,
        row_upper=arrays.row_upper,
        n_triples=np.array([arrays.n_triples]),
        score=score.astype(np.int64),
    )


def solve(path: Path, time_limit: float, threads: int = 2) -> dict[str, Any]:
    """Load the model, solve it with HiGHS (maximise) under ``time_limit`` seconds."""
    import highspy  # the `benchmarks` extra

    start = time.perf_counter()
    z = np.load(path)
    n_row, n_col = (int(v) for v in z["shape"])
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("random_seed", 1)
    h.setOptionValue("presolve", PRESOLVE)
    lp = highspy.HighsLp()
    lp.num_col_ = n_col
    lp.num_row_ = n_row
    lp.col_cost_ = z["cost"]
    lp.col_lower_ = np.zeros(n_col)
    lp.col_upper_ = z["col_upper"]
    inf = highspy.kHighsInf
    lp.row_lower_ = np.where(np.isinf(z["row_lower"]), -inf, z["row_lower"])
    lp.row_upper_ = np.where(np.isinf(z["row_upper"]), inf, z["row_upper"])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = z["indptr"]
    lp.a_matrix_.index_ = z["indices"]
    lp.a_matrix_.value_ = z["data"]
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n_col
    h.passModel(lp)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - start
    info = h.getInfo()
    has_solution = int(info.primal_solution_status) == 2  # kSolutionStatusFeasible
    record: dict[str, Any] = {
        "status": h.modelStatusToString(h.getModelStatus()),
        "load_s": round(load_s, 3),
        "seconds": round(seconds, 3),
        "objective": float(info.objective_function_value) if has_solution else None,
        "bound": float(info.mip_dual_bound),
        "gap_pct": round(100 * float(info.mip_gap), 4) if has_solution else None,
        "nodes": int(info.mip_node_count),
        "presolve": PRESOLVE,
    }
    if has_solution:
        n_t = int(z["n_triples"][0])
        x = np.asarray(h.getSolution().col_value)[:n_t] > 0.5
        record["allocations"] = int(x.sum())
        record["score"] = int(z["score"][x].sum())
    record["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return record


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    print(json.dumps(solve(Path(args[0]), float(args[1]))))


if __name__ == "__main__":
    main()
