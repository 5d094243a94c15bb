"""Exact maximum-weight bipartite matching with side constraints, without the housing domain.

The engine of a round, opened to other data: OR-Library assignment problems, the Singapore
HDB launch with ethnic ceilings per block (benchmarks/). Arcs join a left node to a right node
with an integer weight; side rows are linear constraints over the arcs. The same method as a
round (`matching.solver.solve`): the LP relaxation by column generation in HiGHS gives a bound
valid for every integer solution and each arc's reduced cost; CP-SAT solves the core of arcs
whose reduced cost does not exceed the gap between that bound and the best solution known,
which proves the optimum of the full problem (docs/solver.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from ortools.sat.python import cp_model

from matching.params import SolveParams
from matching.solver.cpsat import LARGE_MODEL, Budget, cp_solver, run
from matching.solver.instance import group_ranks
from matching.solver.lp import LPLayout, LPSession


@dataclass(frozen=True)
class SideRow:
    """A side constraint ``sum(coef * x[idx]) (sense) rhs`` over arc indices."""

    idx: np.ndarray
    coef: np.ndarray
    sense: str  # "<=" or ">="
    rhs: int
    name: str = ""


@dataclass(frozen=True)
class MatchingSolution:
    """The chosen arcs and what is proven about them."""

    status: str  # OPTIMAL, FEASIBLE (time limit), INFEASIBLE, UNKNOWN
    arcs: np.ndarray  # indices of the chosen arcs
    left: np.ndarray
    right: np.ndarray
    value: int  # total weight (in the caller's sense: a cost when maximize=False)
    bound: float  # proven bound on the optimum, same sense
    seconds: float
    stats: dict[str, float | int | str] = field(default_factory=dict)


def _layout(
    left: np.ndarray,
    right: np.ndarray,
    rows: Sequence[SideRow],
    perfect: bool,
    n_left: int,
    n_right: int,
    right_capacity: np.ndarray | None = None,
) -> LPLayout:
    n = len(left)
    arcs = np.arange(n)
    r_parts = [left, n_left + right]
    c_parts = [arcs, arcs]
    v_parts = [np.ones(n), np.ones(n)]
    capacity = np.ones(n_right) if right_capacity is None else right_capacity[:n_right]
    b = [np.ones(n_left), np.asarray(capacity, dtype=np.float64)]
    row0 = n_left + n_right
    for k, row in enumerate(rows):
        sign = -1.0 if row.sense == ">=" else 1.0
        r_parts.append(np.full(len(row.idx), row0 + k))
        c_parts.append(np.asarray(row.idx))
        v_parts.append(sign * np.asarray(row.coef, dtype=np.float64))
        b.append(np.array([sign * row.rhs]))
    n_ub = row0 + len(rows)
    a_ub = sp.csr_matrix(
        (np.concatenate(v_parts), (np.concatenate(r_parts), np.concatenate(c_parts))),
        shape=(n_ub, n),
    )
    b_ub = np.concatenate(b).astype(np.float64)
    if perfect:  # every left node matched: its row is an equality
        a_eq = sp.csr_matrix((np.ones(n), (left, arcs)), shape=(n_left, n))
        b_eq = np.ones(n_left)
        b_ub[:n_left] = n  # the <= 1 row becomes redundant
    else:
        a_eq, b_eq = sp.csr_matrix((0, n)), np.zeros(0)
    return LPLayout(a_ub, b_ub, a_eq, b_eq, n, 0, 0, np.ones(n))


def _best_per_node(node: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    order = np.lexsort((-weight, node))
    return np.sort(order[group_ranks(node[order]) < k])


def _core_model(
    left: np.ndarray,
    right: np.ndarray,
    weight: np.ndarray,
    rows: Sequence[SideRow],
    core: np.ndarray,
    perfect: bool,
    cap: int,
    right_capacity: np.ndarray | None = None,
) -> tuple[cp_model.CpModel, list[cp_model.IntVar]]:
    """CP-SAT model on the core arcs (global indices ``core``), objective capped at ``cap``."""
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"arc[{int(a)}]") for a in core]
    for nodes, exact, capacity in (
        (left[core], perfect, None),
        (right[core], False, right_capacity),
    ):
        order = np.argsort(nodes, kind="stable")
        cuts = np.flatnonzero(np.diff(nodes[order])) + 1
        for group in np.split(order, cuts) if len(order) else ():
            # an empty core (a minimum whose best is no arc) has no group: np.split gives one
            # empty piece, whose node the capacity lookup read past the end
            lits = [x[i] for i in group]
            room = 1 if capacity is None else int(capacity[nodes[group[0]]])
            if exact:
                model.add_exactly_one(lits)
            elif room == 1:
                model.add_at_most_one(lits)
            elif room < len(lits):
                model.add(cp_model.LinearExpr.sum(lits) <= room)
    position = np.full(len(left), -1, dtype=np.int64)
    position[core] = np.arange(len(core))
    for row in rows:
        where = position[np.asarray(row.idx)]
        keep = where >= 0
        expr = cp_model.LinearExpr.weighted_sum(
            [x[i] for i in where[keep]], np.asarray(row.coef)[keep].tolist()
        )
        if row.sense == ">=":
            model.add(expr >= row.rhs)
        else:
            model.add(expr <= row.rhs)
    objective = cp_model.LinearExpr.weighted_sum(x, weight[core].tolist())
    model.add(objective <= cap)
    model.maximize(objective)
    return model, x


def solve_matching(
    left: np.ndarray,
    right: np.ndarray,
    weight: np.ndarray,
    rows: Sequence[SideRow] = (),
    *,
    maximize: bool = True,
    perfect: bool = False,
    params: SolveParams | None = None,
    right_capacity: np.ndarray | None = None,
) -> MatchingSolution:
    """Best matching (each node at most once; each left node exactly once if ``perfect``).

    ``weight`` must be integers; with ``maximize=False`` it is a cost to minimise.
    ``right_capacity`` (per right node) lets a right node take that many arcs: identical
    right nodes (the flats of one HDB block) become one node with a capacity, which keeps the
    LP's tight set small (each arc still carries at most one).
    """
    start = time.perf_counter()
    params = params or SolveParams()
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    w = np.asarray(weight)
    if not np.issubdtype(w.dtype, np.integer) and not np.all(np.mod(w, 1) == 0):
        raise ValueError("solve_matching needs integer weights")
    w = w.astype(np.int64) * (1 if maximize else -1)
    sense = 1 if maximize else -1
    n_left = int(left.max(initial=-1)) + 1
    n_right = int(right.max(initial=-1)) + 1
    if len(left) == 0:
        empty = np.zeros(0, dtype=np.int64)
        # with no arc every side row reads 0: one asking more (>= 1, or <= -1) cannot hold
        unmet = any(
            (row.sense == ">=" and row.rhs > 0) or (row.sense == "<=" and row.rhs < 0)
            for row in rows
        )
        status = "INFEASIBLE" if (perfect and n_left) or unmet else "OPTIMAL"
        return MatchingSolution(status, empty, empty, empty, 0, 0.0, time.perf_counter() - start)
    budget = Budget(params.time_limit_s)
    if right_capacity is not None:
        right_capacity = np.asarray(right_capacity, dtype=np.int64)
        if len(right_capacity) < n_right or (right_capacity < 0).any():
            raise ValueError("right_capacity needs a non-negative capacity per right node")
    most = 1 if right_capacity is None else int(right_capacity.max(initial=1))
    session = LPSession(
        _layout(left, right, rows, perfect, n_left, n_right, right_capacity),
        -w.astype(np.float64),
        # the best arcs of every node on both sides: a first LP that is feasible in practice
        np.union1d(_best_per_node(left, w, 8), _best_per_node(right, w, 8 + most)),
    )
    cert = session.solve(time_limit_s=max(30.0, budget.deadline - time.perf_counter()))
    stats: dict[str, float | int | str] = {
        "arcs": len(left),
        "lp_bound": sense * cert.upper_bound,
        "lp_rounds": cert.rounds,
        "lp_columns": cert.lp_columns,
        "lp_seconds": round(cert.seconds, 3),
    }
    empty = np.zeros(0, dtype=np.int64)
    if cert.status == "infeasible":
        return MatchingSolution(
            "INFEASIBLE",
            empty,
            empty,
            empty,
            0,
            -sense * np.inf,
            time.perf_counter() - start,
            stats,
        )
    upper = cert.upper_bound
    cap = int(np.floor(upper + 1e-9 * max(1.0, abs(upper))))
    tol = 1e-7 * max(1.0, abs(upper)) + 1e-6
    delta = 0.5
    hint: np.ndarray | None = None
    lp = cert.primal
    if lp is not None and np.all(np.minimum(lp.values, 1 - lp.values) < 1e-6):
        hint = lp.cols[lp.values > 0.5]  # an integral LP vertex: likely optimal
        delta = max(delta, upper - float(w[hint].sum()))
    rc = cert.reduced_cost
    for iteration in range(1, 30):
        core = np.flatnonzero(rc <= delta + tol)
        model, x = _core_model(left, right, w, rows, core, perfect, cap, right_capacity)
        if hint is not None:
            chosen = np.zeros(len(left), dtype=bool)
            chosen[hint] = True
            for var, on in zip(x, chosen[core].tolist(), strict=True):
                model.add_hint(var, on)
        solver = cp_solver(params, budget, large=len(core) > LARGE_MODEL)
        code = run(solver, model, budget)
        stats.update(core_arcs=len(core), core_iterations=iteration)
        if code == cp_model.INFEASIBLE:
            if len(core) == len(left):
                return MatchingSolution(
                    "INFEASIBLE", empty, empty, empty, 0, -sense * np.inf,
                    time.perf_counter() - start, stats,
                )  # fmt: skip
            delta = 4 * delta + 1
            continue
        if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return MatchingSolution(
                "UNKNOWN", empty, empty, empty, 0, sense * upper, time.perf_counter() - start, stats
            )
        picked = core[[i for i, var in enumerate(x) if solver.boolean_value(var)]]
        value = int(w[picked].sum())
        proven = code == cp_model.OPTIMAL and (
            upper - value <= delta + tol or len(core) == len(left)
        )
        if proven or code != cp_model.OPTIMAL:
            status = "OPTIMAL" if proven else "FEASIBLE"
            return MatchingSolution(
                status, picked, left[picked], right[picked], sense * value,
                float(sense * (value if proven else upper)), time.perf_counter() - start, stats,
            )  # fmt: skip
        delta = upper - value
        hint = picked
    raise RuntimeError("core growth did not converge")  # pragma: no cover
