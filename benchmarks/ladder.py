"""The ladder: each round size solved by `matching`, scipy (no quotas), HiGHS and the greedy policy.

Each (case, method) is measured by `measure` in its own process (see `benchmarks.__main__`), so
that its peak resident memory is its own and a crash or a timeout loses that cell only. The round
is generated and prepared again in each process; only the method's own steps are timed.

Methods
-------
matching
    `matching.round.prepare_round` (facts, scores, eligible pairs: ``prepare_s``), then the
    exact engine `matching.solver.solve_round` (``solve_s``: triples, certificate, CP-SAT), then
    `matching.round.build_result`, which runs the independent checker (``check_s``); this is
    what `matching.round.solve` does, timed step by step.
scipy
    The unconstrained optimum on the same pairs (`benchmarks.baselines.unconstrained`): the floor
    of an exact solver's time and the reference of the price of the quotas. Also reports how far
    that optimum is from each quota (`benchmarks.baselines.quota_check`): do the quotas bind?
highs
    The same MIP given to HiGHS (highspy) with the same time budget, in a separate process
    (`benchmarks.highs_worker`). Skipped on the cases whose model is too large to build.
greedy
    The greedy policy `matching.allocation.get_policy("greedy_score")`, when it exists.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.cases import CASES, Case, load_units_demands, prepare

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("matching", "scipy", "highs", "greedy")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (``ru_maxrss`` is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure(case_name: str, method: str, time_limit: float) -> dict[str, Any]:
    """Run one method on one case in this process; a JSON-able record."""
    case = CASES[case_name]
    record: dict[str, Any] = {"case": case.name, "method": method}
    if method == "matching":
        record.update(_matching(case, time_limit * case.time_factor))
    elif method == "scipy":
        record.update(_scipy(case))
    elif method == "highs":
        record.update(_highs(case, case.highs_time_limit or time_limit))
    elif method == "greedy":
        record.update(_greedy(case))
    else:
        raise ValueError(f"unknown method {method!r}; known: {METHODS}")
    record["peak_rss_mb"] = max(peak_rss_mb(), record.get("peak_rss_mb", 0.0))
    return record


def _sizes(prepared: Any) -> dict[str, Any]:
    inst = prepared.instance
    return {"units": len(inst.units), "demands": len(inst.demands), "pairs": len(inst.pair_unit)}


def _matching(case: Case, time_limit: float) -> dict[str, Any]:
    from matching.params import SolveParams
    from matching.policy import load_policy
    from matching.round import build_result, prepare_round
    from matching.solver import solve_round

    units, demands, on = load_units_demands(case)
    policy = load_policy("default-2026")
    t0 = time.perf_counter()
    prepared = prepare_round(units, demands, policy, on=on)
    prepare_s = time.perf_counter() - t0
    rss_before = peak_rss_mb()
    params = SolveParams(time_limit_s=time_limit, seed=1)
    t0 = time.perf_counter()
    solution = solve_round(prepared.instance, params)
    solve_s = time.perf_counter() - t0
    out: dict[str, Any] = {**_sizes(prepared), "prepare_s": round(prepare_s, 3)}
    out["solve_s"] = round(solve_s, 3)
    out["time_limit_s"] = time_limit
    out["rss_before_solve_mb"] = rss_before
    out["status"] = solution.status
    stats = dict(solution.stats)
    for key in ("triples", "core_triples", "method", "proof", "lp_seconds"):
        if key in stats:
            out["engine_" + key if key == "method" else key] = stats[key]
    values = {getattr(k, "value", k): v for k, v in solution.stage_values.items()}
    bounds = {getattr(k, "value", k): v for k, v in solution.stage_bounds.items()}
    out["allocations"] = values.get("allocations")
    out["score"] = values.get("score")
    out["score_bound"] = bounds.get("score")
    if out["score"] is not None and out["score_bound"] is not None:
        gap = max(0.0, float(out["score_bound"]) - out["score"]) / max(1.0, abs(out["score_bound"]))
        out["gap_pct"] = round(100 * gap, 4)
    t0 = time.perf_counter()
    try:
        build_result(prepared, solution, params, prepare_s + solve_s)  # the independent checker
        out["checked"] = solution.status in {"OPTIMAL", "FEASIBLE"}
    except Exception as exc:  # the report must show a failed check, not stop the run
        out["checked"] = False
        out["check_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    out["check_s"] = round(time.perf_counter() - t0, 3)
    return out


def _scipy(case: Case) -> dict[str, Any]:
    from benchmarks.baselines import quota_check, unconstrained

    prepared = prepare(case)
    inst = prepared.instance
    t0 = time.perf_counter()
    u = unconstrained(
        inst.pair_unit, inst.pair_demand, inst.scores[inst.pair_demand], len(inst.units)
    )
    total_s = time.perf_counter() - t0
    out: dict[str, Any] = {**_sizes(prepared), "status": "OPTIMAL (no quotas)"}
    out.update(solve_s=round(u.seconds, 4), graph_and_solve_s=round(total_s, 3))
    out.update(allocations=u.allocations, score=u.score)
    t0 = time.perf_counter()
    out.update(quota_check(inst, u.unit, u.demand))
    out["quota_check_s"] = round(time.perf_counter() - t0, 2)
    return out


def _highs(case: Case, time_limit: float) -> dict[str, Any]:
    from benchmarks.baselines import mip_arrays, round_model
    from benchmarks.highs_worker import save

    if not case.highs:
        return {"status": "skipped", "note": case.why_no_highs}
    prepared = prepare(case)
    inst = prepared.instance
    t0 = time.perf_counter()
    triples, rows, weights, multipliers = round_model(inst)
    arrays = mip_arrays(inst, triples, rows, weights)
    build_s = time.perf_counter() - t0
    out: dict[str, Any] = {**_sizes(prepared), "triples": len(triples), "quota_rows": len(rows)}
    out["columns"], out["rows"] = arrays.matrix.shape[1], arrays.matrix.shape[0]
    out["nonzeros"] = int(arrays.matrix.nnz)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.npz"
        save(path, arrays, triples.score)
        del arrays
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.highs_worker", str(path), str(time_limit)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=time_limit * 2 + 300,
            check=False,
        )
    if proc.returncode != 0:
        return {**out, "status": "error", "note": proc.stderr.strip().splitlines()[-1:]}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    out["time_limit_s"] = time_limit
    out["build_s"] = round(build_s + res.pop("load_s"), 3)
    out["solve_s"] = res.pop("seconds")
    out.update(res)
    m_alloc = multipliers[0] if len(multipliers) > 1 else None  # stages: allocations, score
    if m_alloc and res.get("allocations") is not None:
        alloc_ub = int(np.floor(res["bound"] / m_alloc + 1e-9))
        if alloc_ub == res["allocations"]:
            out["score_bound"] = round(res["bound"] - alloc_ub * m_alloc, 2)
    return out


def _greedy(case: Case) -> dict[str, Any]:
    from matching.params import SolveParams
    from matching.policy import load_policy

    try:
        from matching.allocation import get_policy
    except ImportError as exc:
        return {"status": "missing", "note": f"matching.allocation not importable ({exc})"}
    try:
        greedy = get_policy("greedy_score")
    except Exception as exc:
        return {"status": "missing", "note": f"get_policy('greedy_score'): {exc}"}
    units, demands, on = load_units_demands(case)
    policy = load_policy("default-2026")
    t0 = time.perf_counter()
    result = greedy.allocate(units, demands, policy, SolveParams(), year_so_far=None, on=on)
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"units": len(units), "demands": len(demands)}
    out["status"] = f"{result.status} (soft)"
    out["solve_s"] = round(seconds, 3)  # prepare + greedy + independent check, as allocate does
    out["allocations"] = result.stage_values.get("allocations")
    out["score"] = result.stage_values.get("score")
    out["shortfall_total"] = int(sum(result.shortfalls.values()))
    out["rules_short"] = sorted(k for k, v in result.shortfalls.items() if v)
    return out
