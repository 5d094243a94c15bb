"""Prove an incumbent optimal by branching on the round's aggregate counts, with LP bounds.

Why: with binding quotas the LP bound of a round stays a few points above the integer optimum,
and that gap lives in a handful of integer counts (`matching.solver.cuts`): priority households
per réservataire, units per réservataire, Q1 households outside QPV. Branching on those counts
(``C <= 16`` or ``C >= 17``) and re-deriving the staircase cuts at each node closes the gap in a
few LPs, where CP-SAT or a general MIP solver on the tens of thousands of candidate triples
does not close it in minutes (benchmarks/, docs/solver.md).

Every node bound is the safe LP bound of `matching.solver.lp.LPSession.solve`, valid for every
integer solution of the FULL round (all triples priced) that satisfies the node's ranges and has
at least the incumbent's allocations. The children of a node split one aggregate's range, so
they cover every such solution; a node is closed when its bound cannot beat the incumbent by
one (the objective is an integer). When every node is closed, the incumbent is optimal.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from matching.solver.cuts import Aggregate, ShareRow, aggregates, hull_cuts
from matching.solver.instance import RoundInstance, Triples, index_dtype
from matching.solver.lp import Certificate, LinearCut, LPSession, LPValues, bound_slack
from matching.solver.rows import QuotaRow

_logger = logging.getLogger(__name__)

MAX_IMPROVE = 3
"""Neighbourhood searches (RINS) at fractional nodes whose counts are integral (an integral
LP is always taken); the dive on triples then looks for an integral LP itself.

Why 3, not 1: such nodes sit one point above the incumbent, and the dive solves two LPs per
level. On 96 generated monthly rounds (`python -m benchmarks.months --seeds 1:9`), two
changed: seed 3 November, where the one search (node 2) found nothing and the dive took 21
nodes (2.46 s), now finds the optimum at node 3's search (3 nodes, 1.25 s); seed 6 February
11 -> 7 nodes (1.61 -> 1.48 s). The other 94, the pooled year, the Paris-sized round and the
simulated year search and branch as before (the simulated year runs one such search)."""

NODES_AT_ONCE = 2
"""Open nodes whose LPs are solved at the same time, one per core (the machines have 2).

Why: on a Paris-sized round the branching's two children each take 7-10 s of dual simplex;
side by side they take the time of the longer one. Each has its own session (`LPSession.twin`).
"""

Improve = Callable[[Certificate], int | None]
"""Look for a better solution near a node's LP solution; returns its value, or None."""


@dataclass
class BranchOutcome:
    """What the search proved: the best value found, and a bound on every better solution."""

    proven: bool  # every node closed: no solution beats the incumbent
    incumbent: int  # value of the best solution known (the caller holds the solution)
    bound: float  # valid upper bound on the objective (= incumbent when proven)
    nodes: int
    cuts: int  # staircase cuts added at the root
    open_bounds: list[float] = field(default_factory=list)
    work: float = 0.0  # estimated seconds of the node LPs (`matching.solver.lp.lp_work`)


@dataclass
class _Made:
    """The extra rows built at earlier nodes, by what defines them.

    A node that wants the same row gets the same object, so its coefficients and signature are
    computed once (the staircase cuts of the Caen la Mer month cover up to 950,000 triples).
    """

    bounds: dict[tuple[str, str, int], LinearCut] = field(default_factory=dict)
    hulls: dict[tuple[int, tuple[int, int], tuple[int, int]], list[LinearCut] | None] = field(
        default_factory=dict
    )


def _intersect(a: tuple[int, int], b: tuple[int, int] | None) -> tuple[int, int]:
    return a if b is None else (max(a[0], b[0]), min(a[1], b[1]))


def _node_rows(
    shares: list[ShareRow],
    aggs: list[Aggregate],
    ranges: dict[str, tuple[int, int]],
    floor_rows: list[LinearCut],
    made: _Made,
) -> list[LinearCut] | None:
    """Extra LP rows of a node: the allocation floor, branching bounds, staircase cuts."""

    def bound_row(idx: np.ndarray, key: str, sense: str, rhs: int) -> LinearCut:
        made_key = (key, sense, rhs)
        if made_key not in made.bounds:
            ones = np.ones(len(idx), dtype=np.int8)
            made.bounds[made_key] = LinearCut(idx, ones, sense, rhs, f"branch:{key}")
        return made.bounds[made_key]

    rows = list(floor_rows)
    for agg in aggs:
        lo, hi = _intersect((agg.low, agg.high), ranges.get(agg.key))
        if lo > hi:
            return None
        if agg.key in ranges and lo > agg.low:
            rows.append(bound_row(agg.idx, agg.key, ">=", lo))
        if agg.key in ranges and hi < agg.high:
            rows.append(bound_row(agg.idx, agg.key, "<=", hi))
    for key, (lo, _hi) in ranges.items():  # branches on single triples: "x:<index>"
        if key.startswith("x:"):
            one = np.array([int(key[2:])], dtype=np.int64)
            sense, rhs = (">=", 1) if lo == 1 else ("<=", 0)
            rows.append(bound_row(one, key, sense, rhs))
    for k, share in enumerate(shares):
        b = _intersect((share.base.low, share.base.high), ranges.get(share.base.key))
        c = _intersect((share.counted.low, share.counted.high), ranges.get(share.counted.key))
        if (k, b, c) not in made.hulls:
            made.hulls[k, b, c] = hull_cuts(share, b, c)
        cuts = made.hulls[k, b, c]
        if cuts is None:
            return None
        rows += cuts
    return rows


def _most_fractional(aggs: list[Aggregate], primal: LPValues) -> tuple[Aggregate, float] | None:
    best: tuple[float, int] | None = None
    for i, agg in enumerate(aggs):
        v = agg.value(primal)
        frac = abs(v - round(v))
        if frac > 1e-6 and (best is None or frac > best[0] + 1e-9):
            best = (frac, i)
    if best is None:
        return None
    agg = aggs[best[1]]
    return agg, agg.value(primal)


def _solve_nodes(sessions: list[LPSession], extras: list[list[LinearCut]]) -> list[Certificate]:
    """Each node's LP certificate, the k-th node on the k-th session, at the same time.

    Deterministic: each session's history (which nodes it solved, in which order) depends only
    on the search, never on which thread finishes first.
    """

    def solve(k: int) -> Certificate:
        tick = time.perf_counter()
        cert = sessions[k].solve(extras[k])
        seconds = time.perf_counter() - tick
        _logger.debug("node LP (session %d): %.2f s, %d rounds", k, seconds, cert.rounds)
        return cert

    if len(extras) <= 1:
        return [solve(k) for k in range(len(extras))]
    with ThreadPoolExecutor(max_workers=len(extras)) as pool:
        return list(pool.map(solve, range(len(extras))))


def branch_and_bound(
    inst: RoundInstance,
    triples: Triples,
    rows: list[QuotaRow],
    session: LPSession,
    *,
    incumbent: int,
    min_allocations: int,
    improve: Improve,
    max_nodes: int = 64,
    work_limit: float = math.inf,
    deadline: float = math.inf,
) -> BranchOutcome:
    """Best-first search over aggregate ranges until no node can beat the incumbent.

    ``incumbent`` is the folded objective value of the best known solution (which has
    ``min_allocations`` allocations); ``improve`` is called on nodes whose aggregates are all
    integral but whose bound still beats the incumbent, to look for a better solution there.
    The search stops at ``max_nodes`` LPs, or once its node LPs' estimated seconds reach
    ``work_limit`` (both counts, so that runs reproduce), or at the wall-clock ``deadline``;
    the open nodes' bounds then bound the optimum.

    Why a work limit besides the nodes: a node LP takes 0.01 s on a small round and 0.1-0.8 s
    on January's with conflicting quotas, so 64 nodes took 10 s of a 2 s budget there; a
    node count scaled by the budget instead lost a small round's proof (docs/solver.md).
    """
    shares, aggs = aggregates(inst, triples, rows, min_allocations)
    floor_rows = [
        LinearCut(  # int32 and int8: 350 MB instead of 1.1 GB on a Paris-sized round
            np.arange(len(triples), dtype=index_dtype(len(triples))),
            np.ones(len(triples), dtype=np.int8),
            ">=",
            min_allocations,
            "allocations",
        )
    ]
    z = incumbent
    counter = 0
    # best bound first; among equal bounds the deepest node (a dive towards an integral LP)
    heap: list[tuple[float, int, int, dict[str, tuple[int, int]]]] = [(-math.inf, 0, counter, {})]
    open_bounds: list[float] = []
    improve_calls = 0
    made = _Made()
    nodes = 0
    root_cuts = 0
    work = 0.0

    def closed(bound: float) -> bool:
        return bound < z + 1 - bound_slack(bound)

    twin: list[LPSession] = []  # a second session, made the first time two nodes are open

    while heap:
        # up to `NODES_AT_ONCE` open nodes, best first; the root alone (its cuts and search
        # come before any child)
        batch: list[tuple[float, int, dict[str, tuple[int, int]], list[LinearCut], int]] = []
        exhausted = False
        while heap and len(batch) < (1 if nodes == 0 else NODES_AT_ONCE):
            neg_parent, neg_depth, _, ranges = heapq.heappop(heap)
            parent = -neg_parent
            if closed(parent):
                continue
            if nodes >= max_nodes or work >= work_limit or time.perf_counter() > deadline:
                # out of nodes, work or time: the open nodes' bounds bound the optimum
                open_bounds.append(parent)
                exhausted = True
                break
            nodes += 1
            extra = _node_rows(shares, aggs, ranges, floor_rows, made)
            if extra is None:  # the node's ranges admit no integer point
                continue
            if nodes == 1:
                root_cuts = sum(1 for r in extra if r.name.startswith("hull:"))
            batch.append((parent, neg_depth, ranges, extra, nodes))
        if len(batch) > 1 and not twin:
            twin.append(session.twin())
        certs: list[Certificate] = []  # the previous nodes' reduced costs and LP values go first
        sessions = [session, *twin]
        before = sum(s.work for s in sessions)
        certs = _solve_nodes(sessions, [item[3] for item in batch])
        work += sum(s.work for s in sessions) - before  # the work of both cores
        for (parent, neg_depth, ranges, _, node), cert in zip(batch, certs, strict=True):
            if cert.status == "infeasible":
                continue
            if cert.status != "bound" or cert.primal is None:
                open_bounds.append(parent)
                continue
            bound = min(cert.upper_bound, parent)
            _logger.debug("node %d %s: bound %.3f (incumbent %d)", node, ranges, bound, z)
            if closed(bound):
                continue
            split = _most_fractional(aggs, cert.primal)
            if node == 1 and split is not None:  # the cuts moved the LP: look near it once
                found = improve(cert)
                if found is not None and found > z:
                    z = found
                    if closed(bound):
                        continue
            if split is None:
                support = cert.primal.cols
                off = np.minimum(cert.primal.values, 1 - cert.primal.values)  # 0 off the support
                fractional = np.flatnonzero(off > 1e-6)
                if len(fractional) == 0 or improve_calls < MAX_IMPROVE:
                    improve_calls += 1
                    tick = time.perf_counter()
                    found = improve(cert)  # an integral LP is taken as it is (every one fixed)
                    _logger.debug(
                        "node %d search: %s in %.2f s", node, found, time.perf_counter() - tick
                    )
                    if found is not None and found > z:
                        z = found
                    if closed(bound):
                        continue
                if len(fractional) == 0:
                    open_bounds.append(bound)  # integral yet above the incumbent: not expected
                    continue
                # counts all integral: dive on the most fractional triple, "taken" side first
                t = int(support[fractional[np.argmax(off[fractional])]])
                children: list[tuple[str, tuple[int, int]]] = [
                    (f"x:{t}", (1, 1)), (f"x:{t}", (0, 0)),
                ]  # fmt: skip
            else:
                agg, value = split
                lo, hi = _intersect((agg.low, agg.high), ranges.get(agg.key))
                children = [(agg.key, (lo, math.floor(value))), (agg.key, (math.ceil(value), hi))]
            for key, child in children:
                if child[0] <= child[1]:
                    counter += 1
                    heapq.heappush(heap, (-bound, neg_depth - 1, counter, {**ranges, key: child}))
        if exhausted:
            open_bounds += [-h[0] for h in heap if not closed(-h[0])]
            break
    still_open = [b for b in open_bounds if not closed(b)]
    bound = max([float(z), *still_open])
    return BranchOutcome(not still_open, z, bound, nodes, root_cuts, still_open, work)
