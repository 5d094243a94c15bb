"""A small exact MIP of a round in HiGHS: the neighbourhood searches (RINS) of the LP path.

Why: the LP relaxation of a round is nearly integral, so fixing its ones leaves a neighbourhood
of a few thousand triples to complete. On those, HiGHS's branch-and-cut (with the round's rows
exactly as the LP writes them, `matching.solver.lp.RoundLayout`) proves the neighbourhood optimum
in 0.2-1.5 s, where CP-SAT took 1.5-4.8 s with both stages (measured on the January and July
rounds of the Caen la Mer year, docs/solver.md). It only looks for solutions: what proves the
round optimal is the LP bound, the cuts and the branching (`matching.solver.branch`).

Determinism: HiGHS runs on one thread with a fixed seed; the node limit ends a long search the
same way on every machine, the wall-clock limit is only a safety net.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import highspy
import numpy as np

from matching.flux import FluxBand
from matching.solver.instance import RoundInstance, Triples
from matching.solver.lp import RoundLayout, _quiet_highs
from matching.solver.objective import StageTerms, combined_weights, stage_terms
from matching.solver.rows import QuotaRow, quota_rows
from matching.types import QuotaMode, Stage

_logger = logging.getLogger(__name__)

NODE_LIMIT = 2000
"""Branch-and-bound nodes of one neighbourhood search (its usual proof takes 1 node)."""


@dataclass(frozen=True)
class MipOutcome:
    """A solution of the small MIP, in positions of the triples it was given."""

    status: str  # OPTIMAL (neighbourhood optimum), FEASIBLE, INFEASIBLE, UNKNOWN
    chosen: np.ndarray  # chosen triple positions
    orientation: dict[int, int]  # flux unit position -> réservataire index
    shortfall: list[int]  # per quota row of these triples (soft mode)
    terms: list[StageTerms]  # the stages on these triples, to value the solution
    out_of_time: bool = False  # stopped by its time limit (not by its node limit or a proof)


def solve_small_mip(
    inst: RoundInstance,
    triples: Triples,
    fixed: np.ndarray,
    *,
    hint: np.ndarray | None = None,
    hint_orientation: dict[int, int] | None = None,
    time_limit_s: float = 10.0,
    node_limit: int = NODE_LIMIT,
    better_than: dict[Stage, int] | None = None,
    rows: list[QuotaRow] | None = None,
    bands: dict[str, FluxBand] | None = None,
    feasibility: bool = False,
) -> MipOutcome:
    """Optimise the round's folded objective over ``triples`` with the ``fixed`` ones set to 1.

    ``hint`` (triple positions) and ``hint_orientation`` give a known solution to start from.
    The stages are folded with exact multipliers (`combined_weights`), so the optimum is the
    lexicographic optimum of the stages on these triples. ``better_than`` (stage values, e.g.
    an incumbent's): only a lexicographically better solution is wanted. The objective becomes
    a row, ``fold >= cutoff + 1`` (`_folded_cutoff`), so the LP prunes every node that cannot
    beat it, and the status is INFEASIBLE when none does (the two searches at the January
    round's first branching node, which find nothing better: 0.12 s each instead of
    0.18-0.22 s). ``rows`` and ``bands`` replace the round's quota rows and flux bands (some
    rules left out, to name a conflict: `matching.solver.infeasibility`); with
    ``feasibility`` any solution will do (no objective).
    """
    soft = inst.policy.quotas.mode == QuotaMode.SOFT
    rows = quota_rows(inst, triples) if rows is None else rows
    terms = stage_terms(
        inst.policy.objective.stages, triples, rows, inst.policy.quotas.mode, len(inst.units)
    )
    wx, ws, multipliers = combined_weights(terms)
    if not terms or feasibility:
        wx, ws = np.zeros(len(triples)), np.zeros(len(rows))
    lay = RoundLayout(inst, triples, rows, inst.bands() if bands is None else bands, soft)
    n = lay.n_x + lay.n_o + lay.n_s
    matrix = lay.columns(np.arange(n)).tocsr()
    n_ub = len(lay.b_ub)
    cost = -np.concatenate([wx, np.zeros(lay.n_o), np.asarray(ws, dtype=np.float64)[: lay.n_s]])
    lower = np.zeros(n)
    lower[np.flatnonzero(fixed)] = 1.0
    highs = _quiet_highs()
    # presolve on, also when looking only for a better solution: without it the Paris-sized
    # round's searches hit their 10 s limit (0.3-1 s each with it). But at the root only: the
    # sub-MIPs of HiGHS's own heuristics presolve again, and on two of the simulated year's
    # searches (1,462 and 2,879 triples) that took 6.7-8.7 s against 0.4-1.1 s at the root
    # only (docs/solver.md, "Ninth session")
    highs.setOptionValue("presolve", "on")
    highs.setOptionValue("mip_root_presolve_only", True)
    highs.setOptionValue("mip_rel_gap", 0.0)
    highs.setOptionValue("mip_abs_gap", 0.5)  # the folded objective is an integer
    highs.setOptionValue("mip_max_nodes", node_limit)
    highs.setOptionValue("time_limit", max(0.5, time_limit_s))
    highs.addVars(n, lower, lay.upper[:n])
    highs.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
    # a <= row without a column and with a non-negative right-hand side always holds: most of
    # a round's demand rows in a neighbourhood of a few thousand triples
    ub_rows = np.flatnonzero((np.diff(matrix.indptr[: n_ub + 1]) > 0) | (lay.b_ub < 0))
    for mat, low, up in (
        (matrix[ub_rows], np.full(len(ub_rows), -highspy.kHighsInf), lay.b_ub[ub_rows]),
        (matrix[n_ub:], lay.b_eq, lay.b_eq),
    ):
        mat.sort_indices()
        highs.addRows(
            mat.shape[0], low, up, mat.nnz, mat.indptr[:-1].astype(np.int32),
            mat.indices.astype(np.int32), mat.data.astype(np.float64),
        )  # fmt: skip
    if better_than is not None and terms and not feasibility:
        # the objective as a row: a better solution folds to at least the cutoff + 1 (integer)
        nonzero = np.flatnonzero(cost != 0.0)
        cutoff = _folded_cutoff(terms, multipliers, better_than)
        highs.addRow(
            -highspy.kHighsInf, -(cutoff + 1.0), len(nonzero), nonzero.astype(np.int32),
            cost[nonzero],
        )  # fmt: skip
    highs.changeColsIntegrality(
        n, np.arange(n, dtype=np.int32), np.full(n, highspy.HighsVarType.kInteger)
    )
    if hint is not None:
        start = np.zeros(n)
        start[hint] = 1.0
        aux = lay.auxiliary_values(hint, hint_orientation or {})
        start[lay.n_x : lay.n_x + lay.n_o] = aux
        if lay.n_s:  # shortfalls of the hint: what its rows need (0 when they hold)
            start[lay.n_x + lay.n_o :] = [r.least_shortfall(start[: lay.n_x]) for r in rows]
        given = highspy.HighsSolution()
        given.col_value = start.tolist()
        given.value_valid = True
        highs.setSolution(given)
    highs.run()
    status = highs.getModelStatus()
    info = highs.getInfo()
    out_of_time = status == highspy.HighsModelStatus.kTimeLimit
    if status == highspy.HighsModelStatus.kInfeasible:
        return MipOutcome("INFEASIBLE", np.zeros(0, np.int64), {}, [], terms)
    if info.primal_solution_status != 2:  # no feasible solution found
        return MipOutcome("UNKNOWN", np.zeros(0, np.int64), {}, [], terms, out_of_time)
    values = np.asarray(highs.getSolution().col_value)
    chosen = np.flatnonzero(values[: lay.n_x] > 0.5)
    orientation = lay.orientation(values)
    shortfall = [round(float(v)) for v in values[lay.n_x + lay.n_o :]] if soft else []
    proven = status == highspy.HighsModelStatus.kOptimal
    _logger.debug(
        "small MIP: %d triples, %d fixed, %s, %d nodes",
        len(triples), int(np.count_nonzero(fixed)), status, info.mip_node_count,
    )  # fmt: skip
    return MipOutcome(
        "OPTIMAL" if proven else "FEASIBLE", chosen, orientation, shortfall, terms, out_of_time
    )


def _folded_cutoff(
    terms: list[StageTerms], multipliers: list[int], values: dict[Stage, int]
) -> float:
    """The folded value (these stages' multipliers) that a better solution must exceed.

    The stages are folded with multipliers computed from these triples' ranges, in which the
    given values need not lie: a value above its stage's range is beaten only by a better
    earlier stage (so it and the later stages count at their highest), one below it by any
    solution equal so far (at their lowest, minus one).
    """
    total = 0.0
    clipped: str | None = None  # "high" or "low" once a stage is outside its range
    for mult, term in zip(multipliers, terms, strict=True):
        value = values.get(term.stage, 0)
        if clipped is None and value > term.high:
            clipped = "high"
        elif clipped is None and value < term.low:
            clipped = "low"
        if clipped == "high":
            value = term.high
        elif clipped == "low":
            value = term.low
        total += float(mult) * value
    return total - 1.0 if clipped == "low" else total
