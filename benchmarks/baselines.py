"""Baselines measured on the same pairs as `matching`: the unconstrained optimum and HiGHS.

- `unconstrained`: the same lexicographic objective (most allocations, then most score) with
  every quota, pool and flux band dropped, solved exactly by scipy's sparse assignment
  (``min_weight_full_bipartite_matching``). It is the floor of any exact solver's time and the
  reference of the price of the quotas.
- `quota_check`: does that unconstrained optimum already meet the quota rules? The mixity rules
  do not depend on the orientation; the priority floors do (they count per réservataire), so the
  question is whether *some* orientation of its units, within the flux bands and pools, meets
  them: a small MIP over the chosen pairs only, solved by HiGHS.
- `highs_model`: the round's exact model (triples, orientation, flux bands, hard quota rows,
  stages folded lexicographically with `combined_weights`) as one HiGHS MIP, built column-wise
  from numpy arrays.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from matching.solver.instance import NONE, RoundInstance, Triples, build_triples
from matching.solver.objective import combined_weights, stage_terms
from matching.solver.rows import QuotaRow, quota_rows
from matching.solver.seed import matched_pairs, vacancy_graph
from matching.types import QuotaMode


@dataclass(frozen=True)
class Unconstrained:
    """The unconstrained optimum on the round's pairs."""

    unit: np.ndarray  # matched unit positions
    demand: np.ndarray  # matched demand positions
    allocations: int
    score: int
    seconds: float  # scipy's solve only (the sparse graph is built before the clock starts)


def unconstrained(
    pair_unit: np.ndarray, pair_demand: np.ndarray, pair_score: np.ndarray, n_units: int
) -> Unconstrained:
    """Most allocations, then most score, quotas dropped: scipy sparse assignment with vacancies.

    The graph is the solver's seed graph (`matching.solver.seed.vacancy_graph`); only scipy's
    solve is timed.
    """
    if len(pair_unit) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Unconstrained(empty, empty, 0, 0, 0.0)
    graph, demands, big = vacancy_graph(pair_unit, pair_demand, pair_score, n_units)
    start = time.perf_counter()
    _, col = min_weight_full_bipartite_matching(graph, maximize=True)
    seconds = time.perf_counter() - start
    unit, demand = matched_pairs(col, demands)
    picked = np.asarray(graph[unit, col[unit]]).ravel() - big
    return Unconstrained(unit, demand, len(unit), round(float(picked.sum())), seconds)


# ---------------------------------------------------------------------------------------------
# HiGHS
# ---------------------------------------------------------------------------------------------


@dataclass
class MipArrays:
    """A MIP in column-wise sparse form, maximised; columns x (triples) then orient (u, r)."""

    cost: np.ndarray
    col_upper: np.ndarray
    matrix: sp.csc_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    n_triples: int
    orient_units: np.ndarray  # flux unit positions, one block of n_res columns each


def mip_arrays(
    inst: RoundInstance,
    triples: Triples,
    rows: list[QuotaRow],
    weights: np.ndarray,
    force_units: np.ndarray | None = None,
) -> MipArrays:
    """The round's model as sparse arrays (same constraint families as `matching.solver`).

    One household per unit is implied for flux units by ``sum_r orient = 1`` and
    ``sum_d x[u,d,r] <= orient[u,r]``, so its row is written only for units excluded from the
    flux; the model is otherwise row for row the engine's. ``force_units``, if given, are units
    that must be allocated (used by `quota_check`).
    """
    n_t = len(triples)
    n_res = len(inst.reservataires)
    flux_units = np.flatnonzero(inst.flux_units)
    n_o = len(flux_units) * n_res
    orient_col = np.full(len(inst.units), -1, dtype=np.int64)
    orient_col[flux_units] = n_t + np.arange(len(flux_units)) * n_res
    r_rows: list[np.ndarray] = []
    r_cols: list[np.ndarray] = []
    r_vals: list[np.ndarray] = []
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    next_row = 0

    def add(
        row_ids: np.ndarray, cols: np.ndarray, vals: np.ndarray, lo: np.ndarray, hi: np.ndarray
    ) -> None:
        nonlocal next_row
        r_rows.append(next_row + row_ids)
        r_cols.append(cols)
        r_vals.append(vals.astype(np.float64))
        lower.append(lo.astype(np.float64))
        upper.append(hi.astype(np.float64))
        next_row += len(lo)

    tix = np.arange(n_t, dtype=np.int64)
    # one unit per household
    dem, dem_row = np.unique(triples.demand, return_inverse=True)
    add(dem_row, tix, np.ones(n_t), np.full(len(dem), -np.inf), np.ones(len(dem)))
    # one household per unit excluded from the flux
    excl = np.flatnonzero(triples.res == NONE)
    eu, eu_row = np.unique(triples.unit[excl], return_inverse=True)
    add(eu_row, excl, np.ones(len(excl)), np.full(len(eu), -np.inf), np.ones(len(eu)))
    # exactly one réservataire per flux unit
    if len(flux_units):
        fu_row = np.repeat(np.arange(len(flux_units)), n_res)
        add(
            fu_row,
            n_t + np.arange(n_o),
            np.ones(n_o),
            np.ones(len(flux_units)),
            np.ones(len(flux_units)),
        )
    # allocation through orientation: sum_d x[u,d,r] - orient[u,r] <= 0
    fl = np.flatnonzero(triples.res != NONE)
    key = triples.unit[fl].astype(np.int64) * n_res + triples.res[fl]
    keys, key_row = np.unique(key, return_inverse=True)
    o_cols = orient_col[keys // n_res] + keys % n_res
    n_k = len(keys)
    add(
        np.concatenate([key_row, np.arange(n_k)]),
        np.concatenate([fl, o_cols]),
        np.concatenate([np.ones(len(fl)), -np.ones(n_k)]),
        np.full(n_k, -np.inf),
        np.zeros(n_k),
    )
    # flux bands
    index = {r: i for i, r in enumerate(inst.reservataires)}
    for rid, band in inst.bands().items():
        cols = n_t + np.arange(len(flux_units)) * n_res + index[rid]
        add(
            np.zeros(len(cols), dtype=np.int64),
            cols,
            np.ones(len(cols)),
            np.array([band.low]),
            np.array([band.high]),
        )
    # hard quota rows
    for row in rows:
        lo, hi = (row.rhs, np.inf) if row.sense == ">=" else (-np.inf, row.rhs)
        add(
            np.zeros(len(row.idx), dtype=np.int64),
            row.idx.astype(np.int64),
            row.coef,
            np.array([lo]),
            np.array([hi]),
        )
    # forced allocations (quota_check only)
    if force_units is not None and len(force_units):
        pos = np.searchsorted(force_units, triples.unit)
        pos = np.minimum(pos, len(force_units) - 1)
        hit = np.flatnonzero(force_units[pos] == triples.unit)
        add(pos[hit], hit, np.ones(len(hit)), np.ones(len(force_units)), np.ones(len(force_units)))
    matrix = sp.csc_matrix(
        (np.concatenate(r_vals), (np.concatenate(r_rows), np.concatenate(r_cols))),
        shape=(next_row, n_t + n_o),
    )
    cost = np.concatenate([weights.astype(np.float64), np.zeros(n_o)])
    return MipArrays(
        cost,
        np.ones(n_t + n_o),
        matrix,
        np.concatenate(lower),
        np.concatenate(upper),
        n_t,
        flux_units,
    )


def solve_milp(arrays: MipArrays, time_limit: float) -> str:
    """Solve a small MIP with scipy's HiGHS (``scipy.optimize.milp``); returns its status word.

    The full HiGHS baseline runs in its own process (`benchmarks.highs_worker`), so that its
    time and memory caps apply to it alone.
    """
    res = milp(
        -arrays.cost,
        constraints=LinearConstraint(arrays.matrix, arrays.row_lower, arrays.row_upper),
        integrality=np.ones(len(arrays.cost)),
        bounds=Bounds(0, arrays.col_upper),
        options={"time_limit": time_limit, "disp": False},
    )
    return {0: "Optimal", 1: "Limit", 2: "Infeasible"}.get(res.status, f"status {res.status}")


def round_model(inst: RoundInstance) -> tuple[Triples, list[QuotaRow], np.ndarray, list[int]]:
    """Triples, hard quota rows and the lexicographic weights of the engine's model."""
    triples = build_triples(inst)
    rows = quota_rows(inst, triples)
    terms = stage_terms(
        inst.policy.objective.stages, triples, rows, QuotaMode.HARD, len(inst.units)
    )
    weights, _, multipliers = combined_weights(terms)
    return triples, rows, weights, multipliers


def quota_check(
    inst: RoundInstance, unit: np.ndarray, demand: np.ndarray, time_limit: float = 30.0
) -> dict[str, Any]:
    """How far an allocation (unit, demand), such as the unconstrained optimum, is from the quotas.

    - ``q1_outside_qpv_pct`` (target >= 25) and ``non_q1_inside_qpv_pct`` (target >= 50): the
      mixity rules do not depend on the orientation, they are read off the allocation.
    - ``priority_flux_pct`` against ``priority_needed_pct``: the priority floors count per
      réservataire, but whatever the orientation, the allocated flux units must give the État's
      band (priority only) plus a quarter of the rest to priority households; fewer priority
      households than that means some floor is missed.
    - ``feasible_orientation`` / ``meets_all_quotas``: exact answers by a small MIP over the
      allocation's own triples (scipy's HiGHS): can its units be oriented within the flux bands
      and pools, and can they be so that every quota rule holds too.
    """
    n_d = len(inst.demands)
    pair_key = unit.astype(np.int64) * n_d + demand
    keep = np.isin(inst.pair_unit.astype(np.int64) * n_d + inst.pair_demand, pair_key)
    inst = dataclasses.replace(
        inst,
        pair_unit=inst.pair_unit[keep],
        pair_demand=inst.pair_demand[keep],
        pair_pools=inst.pair_pools[keep],
    )  # only the chosen pairs: their triples are the allocation's possible orientations
    sub = build_triples(inst)
    rows = quota_rows(inst, sub)
    force = np.unique(unit.astype(np.int64))
    facts = inst.demands
    qpv = inst.units["qpv"].to_numpy(dtype=bool)[unit]
    flux = inst.flux_units[unit]
    q1_or_anru = facts["q1_or_anru"].to_numpy(dtype=bool)[demand]
    q1 = facts["q1"].to_numpy(dtype=bool)[demand]
    prio = facts["priority"].to_numpy(dtype=bool)[demand]
    etat = inst.bands().get("etat")
    etat_low = etat.low if etat is not None else 0
    n_flux = int(flux.sum())
    needed = etat_low + -(-(n_flux - etat_low) // 4)

    def pct(mask: np.ndarray, of: np.ndarray) -> float | None:
        return round(100 * float(mask[of].mean()), 1) if of.any() else None

    zero = np.zeros(len(sub))
    feasible = solve_milp(mip_arrays(inst, sub, [], zero, force), time_limit)
    every = solve_milp(mip_arrays(inst, sub, rows, zero, force), time_limit)
    return {
        "q1_outside_qpv_pct": pct(q1_or_anru, ~qpv),
        "non_q1_inside_qpv_pct": pct(~q1, qpv),
        "priority_flux_pct": pct(prio, flux),
        "priority_needed_pct": round(100 * needed / n_flux, 1) if n_flux else None,
        "feasible_orientation": feasible == "Optimal",
        "meets_all_quotas": every == "Optimal",
    }
