"""Issue 5's first lead, measured: the Lagrangian relaxation of the quota rows.

The issue suggests dualising the quota rows (and the flux bands): what is left is an assignment
problem, "that scipy solves in milliseconds", and the best multipliers give a bound. This runs
that lead on a ladder case, beside the exact engine, in the same process:

- the engine (`solve_round`): its optimum, its root LP bound and its time;
- scipy's unconstrained matching on the round's pairs (the 10x goal's yardstick);
- a subgradient method on the Lagrangian dual of the engine's own model (every quota row and
  band dualised; the triples, one household per unit and one unit per household kept), each
  step an assignment problem solved by scipy's ``min_weight_full_bipartite_matching``. Its step
  is Polyak's with the *true optimum* as target, the most favourable setting a subgradient can
  get (a real run would only know an incumbent), halved after ``--patience`` steps without a
  better bound.

The Lagrangian dual of a matching with side rows is the LP bound at best (the assignment
polytope is integral): the lead can only replace the root LP, not the cuts and the branching
that close the LP's gap. So the page reports how many subproblems, and how many seconds, the
subgradient needs to close half, 90 % and 99 % of the distance from its first bound (the
unconstrained optimum) to the root LP bound, against the engine's whole solve and the goal (10
times scipy's one matching).

::

    python -m benchmarks.lagrange                       # caen-month, 500 steps
    python -m benchmarks.lagrange --case small-round --steps 500

Writes ``results/lagrange-<date>.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from benchmarks.baselines import round_model, unconstrained
from benchmarks.cases import CASES, prepare
from benchmarks.report import write_page
from matching.params import SolveParams
from matching.solver import solve_round
from matching.solver.instance import NONE, RoundInstance, Triples
from matching.solver.rows import QuotaRow
from matching.solver.seed import assignment_graph

CLOSED: tuple[float, ...] = (0.5, 0.9, 0.99)
"""Fractions of the distance from the first bound (the unconstrained optimum, every multiplier
at 0) to the root LP bound that the page reports the subgradient's steps and seconds for."""


@dataclass
class Dual:
    """The Lagrangian dual of a round: the engine's model with its side rows dualised."""

    triples: Triples
    weight: np.ndarray  # folded weight of each triple (the engine's objective)
    rows: sp.csr_matrix  # quota rows x triples, each row signed so that it reads ``a x >= rhs``
    rhs: np.ndarray
    band_res: np.ndarray  # réservataire index of each band
    band_low: np.ndarray
    band_high: np.ndarray
    n_res: int
    flux: np.ndarray  # bool per unit
    pair_of: np.ndarray  # pair index of each triple
    by_pair: np.ndarray  # triple indices grouped by pair
    starts: np.ndarray  # first position of each pair in ``by_pair``
    pair_unit: np.ndarray
    pair_col: np.ndarray  # compact household column of each pair
    n_cols: int

    @classmethod
    def of(cls, inst: RoundInstance) -> Dual:
        """The dual's data from the instance (the engine's triples, rows and folded weights)."""
        triples, quota, weight, _ = round_model(inst)
        rows, rhs = _signed_rows(quota, len(triples))
        index = {r: i for i, r in enumerate(inst.reservataires)}
        bands = inst.bands()
        n_d = len(inst.demands)
        key = triples.unit.astype(np.int64) * n_d + triples.demand
        pairs, pair_of = np.unique(key, return_inverse=True)
        by_pair = np.argsort(pair_of, kind="stable")
        starts = np.searchsorted(pair_of[by_pair], np.arange(len(pairs)))
        cols, pair_col = np.unique(pairs % n_d, return_inverse=True)
        return cls(
            triples=triples,
            weight=weight.astype(np.float64),
            rows=rows,
            rhs=rhs,
            band_res=np.array([index[r] for r in bands], dtype=np.int64),
            band_low=np.array([b.low for b in bands.values()], dtype=np.float64),
            band_high=np.array([b.high for b in bands.values()], dtype=np.float64),
            n_res=len(inst.reservataires),
            flux=np.asarray(inst.flux_units, dtype=bool),
            pair_of=pair_of,
            by_pair=by_pair,
            starts=starts,
            pair_unit=(pairs // n_d).astype(np.int64),
            pair_col=pair_col.astype(np.int64),
            n_cols=len(cols),
        )

    def evaluate(self, pi: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[float, np.ndarray]:
        """The Lagrangian bound at multipliers (all >= 0) and a subgradient (same layout).

        ``pi`` prices the quota rows, ``lo`` / ``hi`` each band's floor and ceiling. Every flux
        unit is oriented: to the réservataire of its triple, or, left empty, to the one whose
        band pays most.
        """
        t = self.triples
        nu = np.zeros(self.n_res)
        np.add.at(nu, self.band_res, lo - hi)
        reduced = self.weight + self.rows.T @ pi
        flux_t = t.res != NONE
        reduced[flux_t] += nu[t.res[flux_t]]
        # a flux unit left empty is still oriented: to the réservataire whose band pays most
        empty_res = int(np.argmax(nu)) if self.n_res else 0
        empty = np.where(self.flux, float(nu.max()) if self.n_res else 0.0, 0.0)
        best = np.maximum.reduceat(reduced[self.by_pair], self.starts)
        gain = best - empty[self.pair_unit]
        keep = np.flatnonzero(gain > 0)
        n_units = len(self.flux)
        chosen_pairs = np.zeros(0, dtype=np.int64)
        value = float(empty.sum())
        if len(keep):
            graph = assignment_graph(
                self.pair_unit[keep], self.pair_col[keep], gain[keep] + 1.0, n_units,
                self.n_cols, 1.0,
            )  # fmt: skip
            _, col = min_weight_full_bipartite_matching(graph, maximize=True)
            real = np.flatnonzero(col < self.n_cols)
            # the chosen pair of each matched unit: its (unit, column) among the kept pairs
            key = self.pair_unit[keep] * (self.n_cols + 1) + self.pair_col[keep]
            want = real.astype(np.int64) * (self.n_cols + 1) + col[real]
            chosen_pairs = keep[np.searchsorted(key, want)]
            value += float(gain[chosen_pairs].sum())
        # each chosen pair's best triple
        x = np.zeros(len(t), dtype=np.float64)
        for p in chosen_pairs:
            members = self.by_pair[self.starts[p] : self._end(p)]
            x[members[np.argmax(reduced[members])]] = 1.0
        value += float(-(pi @ self.rhs) - (lo @ self.band_low) + (hi @ self.band_high))
        # band counts: allocated triples plus the empty flux units (oriented to the best band)
        count = np.zeros(self.n_res)
        on = np.flatnonzero(x)
        np.add.at(count, t.res[on][t.res[on] != NONE], 1.0)
        housed = np.zeros(n_units, dtype=bool)
        housed[t.unit[on]] = True
        if self.n_res:
            count[empty_res] += float((self.flux & ~housed).sum())
        band_count = count[self.band_res]
        grad = np.concatenate(
            [self.rows @ x - self.rhs, band_count - self.band_low, self.band_high - band_count]
        )
        return value, grad

    def _end(self, p: int) -> int:
        return int(self.starts[p + 1]) if p + 1 < len(self.starts) else len(self.by_pair)


def _signed_rows(rows: list[QuotaRow], n_triples: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """The quota rows as one sparse matrix, each read ``a x >= rhs`` (a ceiling negated)."""
    r_idx, c_idx, vals, rhs = [], [], [], []
    for i, row in enumerate(rows):
        sign = 1.0 if row.sense == ">=" else -1.0
        r_idx.append(np.full(len(row.idx), i, dtype=np.int64))
        c_idx.append(row.idx.astype(np.int64))
        vals.append(sign * row.coef.astype(np.float64))
        rhs.append(sign * row.rhs)
    if not rows:
        return sp.csr_matrix((0, n_triples)), np.zeros(0)
    matrix = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(r_idx), np.concatenate(c_idx))),
        shape=(len(rows), n_triples),
    )
    return matrix, np.asarray(rhs, dtype=np.float64)


def subgradient(
    dual: Dual, target: float, steps: int, patience: int
) -> tuple[list[tuple[int, float, float]], float]:
    """Polyak steps towards ``target``; [(step, seconds so far, best bound)], seconds per step."""
    n_rows, n_bands = dual.rows.shape[0], len(dual.band_res)
    mult = np.zeros(n_rows + 2 * n_bands)
    theta, best, since = 2.0, np.inf, 0
    trace: list[tuple[int, float, float]] = []
    start = time.perf_counter()
    for step in range(1, steps + 1):
        value, grad = dual.evaluate(
            mult[:n_rows], mult[n_rows : n_rows + n_bands], mult[n_rows + n_bands :]
        )
        if value < best - 1e-9:
            best, since = value, 0
        else:
            since += 1
            if since >= patience:
                theta, since = theta / 2, 0
        trace.append((step, time.perf_counter() - start, best))
        # minimise the bound: a row met with room to spare lowers its price
        norm = float(grad @ grad)
        if norm == 0 or value - target <= 1e-9:
            break
        mult = np.maximum(0.0, mult - theta * (value - target) / norm * grad)
    seconds = time.perf_counter() - start
    return trace, seconds / max(len(trace), 1)


def _optimum_weight(dual: Dual, unit: np.ndarray, demand: np.ndarray, res: np.ndarray) -> float:
    """The folded objective of the engine's allocation, summed over its triples."""
    t = dual.triples
    n_d = int(max(t.demand.max(initial=0), demand.max(initial=0))) + 1
    r = t.res.astype(np.int64)
    key = (t.unit.astype(np.int64) * n_d + t.demand) * (dual.n_res + 2) + (r + 1)
    want = (unit.astype(np.int64) * n_d + demand) * (dual.n_res + 2) + (res.astype(np.int64) + 1)
    order = np.argsort(key)
    at = order[np.searchsorted(key[order], want)]
    if not np.array_equal(key[at], want):
        raise RuntimeError("an allocated triple is not among the model's triples")
    return float(dual.weight[at].sum())


def measure(case_name: str, steps: int, patience: int) -> dict[str, Any]:
    """One case: the engine, scipy's matching and the subgradient, in this process."""
    inst = prepare(CASES[case_name]).instance
    matching = unconstrained(
        inst.pair_unit, inst.pair_demand, inst.scores[inst.pair_demand], len(inst.units)
    )
    start = time.perf_counter()
    solution = solve_round(inst, SolveParams(time_limit_s=60, seed=1))
    engine_s = time.perf_counter() - start
    built = time.perf_counter()
    dual = Dual.of(inst)
    build_s = time.perf_counter() - built
    optimum = _optimum_weight(dual, solution.unit, solution.demand, solution.res)
    lp_bound = float(solution.stats.get("lp_bound", np.nan))
    trace, per_step = subgradient(dual, optimum, steps, patience)
    record: dict[str, Any] = {
        "case": case_name,
        "status": solution.status,
        "engine_s": round(engine_s, 3),
        "scipy_s": round(matching.seconds, 4),
        "goal_s": round(10 * matching.seconds, 3),
        "optimum": round(optimum, 1),
        "lp_bound": round(lp_bound, 1),
        "dual_build_s": round(build_s, 3),
        "steps": len(trace),
        "step_s": round(per_step, 4),
        "first_bound": round(trace[0][2], 1),
        "best_bound": round(trace[-1][2], 1),
    }
    first = trace[0][2]
    record["closed_pct"] = round(100 * (first - trace[-1][2]) / (first - lp_bound), 1)
    for part in CLOSED:
        hit = next((s for s in trace if s[2] <= first - part * (first - lp_bound)), None)
        record[f"steps_{part:g}"] = hit[0] if hit else None
        record[f"seconds_{part:g}"] = round(hit[1], 3) if hit else None
    # however fast the rest of a step, each is one assignment problem at least
    steps_90 = record["steps_0.9"]
    record["ideal_s_0.9"] = round(steps_90 * matching.seconds, 3) if steps_90 else None
    return record


def _cell(value: Any, unit: str = "") -> str:
    return "not reached" if value is None else f"{value}{unit}"


def render(records: list[dict[str, Any]], command: str) -> str:
    """The Markdown page of a run."""
    lines = [
        f"# The Lagrangian lead, {dt.date.today().isoformat()}",
        "",
        f"`{command}`. Machine: {platform.platform()}, {os.cpu_count()} CPU(s), Python "
        f"{platform.python_version()}; load average at the end {os.getloadavg()[0]:.1f} (a "
        "shared machine: timings are upper bounds).",
        "",
        "Every quota row and flux band of the engine's model dualised; each step one assignment "
        "problem (scipy), Polyak's step towards the true optimum (the most favourable target). "
        "Bounds are in points of the engine's folded objective (allocations, then score); the "
        "root LP bound is the engine's own; the gap closed is the share of the distance from the "
        "first bound (every multiplier at 0: the unconstrained optimum) to the root LP bound. "
        "`goal` is 10 times scipy's unconstrained matching; the last column is the steps to "
        "close 90 % times scipy's time for one matching, what an implementation whose steps "
        "cost nothing but their assignment problem would take.",
        "",
        "| case | engine s | scipy s | goal s | optimum | root LP bound | first bound | best "
        "bound | steps | s per step | gap closed % | steps (s) to close 50 % | 90 % | 99 % "
        "| 90 % at one scipy matching per step s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        reach = [
            "not reached"
            if r[f"steps_{p:g}"] is None
            else f"{r[f'steps_{p:g}']} ({r[f'seconds_{p:g}']} s)"
            for p in CLOSED
        ]
        lines.append(
            f"| {r['case']} | {r['engine_s']} ({r['status']}) | {r['scipy_s']} | {r['goal_s']} "
            f"| {r['optimum']:,} | {r['lp_bound']:,} | {r['first_bound']:,} | "
            f"{r['best_bound']:,} | {r['steps']} | {r['step_s']} | {r['closed_pct']} | "
            + " | ".join(reach)
            + f" | {_cell(r['ideal_s_0.9'])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Measure the cases and write the dated page and CSV."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--patience", type=int, default=30)
    args = parser.parse_args(argv)
    records = [measure(name, args.steps, args.patience) for name in args.case or ["caen-month"]]
    page = write_page("lagrange", records, render, "benchmarks.lagrange", argv)
    for r in records:
        print(r)
    print(f"results written to {page}")


if __name__ == "__main__":
    main()
