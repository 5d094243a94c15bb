"""External reference: OR-Library linear assignment (assign100/500/600/700, J. E. Beasley).

The exact engine's matching core (`matching.solver.matching.solve_matching`) is fed the plain
n x n cost matrix (every pair, no side rows, minimise, perfect matching) and must find exactly the
published optimum; its time is reported against scipy's dense Hungarian-type solver
(`linear_sum_assignment`) and sparse one (`min_weight_full_bipartite_matching`) on the same
matrix. The files are copies in ``benchmarks/data/orlib`` (origin in ``data/SOURCE.md``).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

DATA = Path(__file__).resolve().parent / "data" / "orlib"
INSTANCES = ("assign100", "assign500", "assign600", "assign700")


def optima() -> dict[str, int]:
    """Published optimal costs by instance name (``data/orlib/optima.csv``)."""
    with (DATA / "optima.csv").open(encoding="utf-8") as f:
        return {row["instance"]: int(row["optimal_min_cost"]) for row in csv.DictReader(f)}


def read_costs(path: Path) -> np.ndarray:
    """The n x n int64 cost matrix of an OR-Library assignment file (n first, then the rows)."""
    values = np.array(path.read_text(encoding="ascii").split(), dtype=np.int64)
    n = int(values[0])
    if len(values) != 1 + n * n:
        raise ValueError(
            f"{path.name}: expected {n * n} costs after n={n}, found {len(values) - 1}"
        )
    return values[1:].reshape(n, n)


def all_pairs(costs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (row, column) pair of a square matrix as flat arrays, with its cost."""
    n = costs.shape[0]
    return np.repeat(np.arange(n), n), np.tile(np.arange(n), n), costs.ravel().copy()


def scipy_dense(costs: np.ndarray) -> tuple[int, float]:
    """Optimal cost and seconds of ``linear_sum_assignment`` (dense)."""
    start = time.perf_counter()
    rows, cols = linear_sum_assignment(costs)
    return int(costs[rows, cols].sum()), time.perf_counter() - start


def scipy_sparse(costs: np.ndarray) -> tuple[int, float]:
    """Optimal cost and seconds of ``min_weight_full_bipartite_matching`` (sparse; graph prebuilt).

    Every cost of these instances is positive, so no explicit zero is lost by the sparse format.
    """
    graph = sp.csr_matrix(costs.astype(np.float64))
    start = time.perf_counter()
    rows, cols = min_weight_full_bipartite_matching(graph)
    seconds = time.perf_counter() - start
    return int(costs[rows, cols].sum()), seconds


def engine(costs: np.ndarray, time_limit: float) -> dict[str, Any]:
    """The engine on the plain matrix: status, value, seconds (its own clock and ours)."""
    from matching.params import SolveParams
    from matching.solver.matching import solve_matching

    left, right, weight = all_pairs(costs)
    start = time.perf_counter()
    sol = solve_matching(
        left,
        right,
        weight,
        maximize=False,
        perfect=True,
        params=SolveParams(time_limit_s=time_limit),
    )
    seconds = time.perf_counter() - start
    chosen = int(costs[np.asarray(sol.left), np.asarray(sol.right)].sum())
    return {
        "status": sol.status,
        "value": int(sol.value),
        "recomputed": chosen,
        "perfect": len(sol.left) == costs.shape[0]
        and len(np.unique(sol.left)) == len(np.unique(sol.right)) == costs.shape[0],
        "seconds": round(seconds, 4),
    }


def measure(name: str, time_limit: float) -> dict[str, Any]:
    """One instance: expected optimum, scipy's two solvers, and the engine; asserts reported."""
    costs = read_costs(DATA / f"{name}.txt")
    expected = optima()[name]
    dense_value, dense_s = scipy_dense(costs)
    sparse_value, sparse_s = scipy_sparse(costs)
    record: dict[str, Any] = {
        "reference": "orlib",
        "instance": name,
        "n": costs.shape[0],
        "expected": expected,
        "scipy_lsa_value": dense_value,
        "scipy_lsa_s": round(dense_s, 4),
        "scipy_sparse_value": sparse_value,
        "scipy_sparse_s": round(sparse_s, 4),
    }
    try:
        eng = engine(costs, time_limit)
    except ImportError as exc:
        record.update(engine_status="missing", note=f"solve_matching not importable ({exc})")
        eng = None
    except Exception as exc:  # reported in the table, never stops the run
        record.update(engine_status="error", note=f"{type(exc).__name__}: {str(exc)[:200]}")
        eng = None
    checks = [dense_value == expected, sparse_value == expected]
    if eng is not None:
        record.update(
            engine_status=eng["status"],
            engine_value=eng["value"],
            engine_s=eng["seconds"],
            engine_vs_lsa=round(eng["seconds"] / max(dense_s, 1e-6), 1),
        )
        checks += [eng["value"] == expected, eng["recomputed"] == expected, eng["perfect"]]
        if eng["recomputed"] != eng["value"]:
            record["note"] = (
                f"reported value {eng['value']} but chosen pairs cost {eng['recomputed']}"
            )
    record["ok"] = all(checks) and eng is not None
    return record
