"""CP-SAT settings and the deterministic time budget shared by every CP-SAT call."""

from __future__ import annotations

import time

from ortools.sat.python import cp_model

from matching.exceptions import MatchingError
from matching.params import SolveParams

LARGE_MODEL = 20_000
"""Triples above which a CP-SAT model counts as large (no probing, interleaved search).

Measured (2026-11-29, varied-policy rounds of `benchmarks.exactness`, 40 x 400 and 30 x 800, models
of 3,400-10,800 triples): at 3,000, probing off cost a conflicting soft round a factor of 7-9 (seed
103: FEASIBLE in 30 s against OPTIMAL in 25 s, same values); over 80 rounds at 20 s budgets, 20,000
gave two better values and one more proof, none worse, in the same total time (under load: the
seven hardest stopped at the wall-clock net either way); at 5 s budgets over 60 rounds, one better
value for 7 % more time. No monthly round reaches CP-SAT (the LP path proves them), so they do not
change.
"""


class Budget:
    """The solve's time budget, spent in CP-SAT's deterministic time so that runs reproduce.

    CP-SAT reports a deterministic time (a work count, close to seconds on this kind of
    machine) that does not depend on the machine's load; limiting the search by it, with the
    interleaved parallel search, makes a cut-off run give the same solution every time. The
    branching's node LPs are charged an estimate of their seconds from their simplex
    iterations (`matching.solver.lp.lp_work`), a count too. The wall-clock deadline (three
    times the budget plus 5 s) is only a safety net. ``end`` is when the budget's seconds have
    passed on the wall clock: what stops the one search that counts no work (the LP path's
    core MIP, `matching.solver.solve._solve_core`).
    """

    def __init__(self, seconds: float) -> None:
        self.left = seconds
        now = time.perf_counter()
        self.end = now + seconds
        self.deadline = now + 3 * seconds + 5
        self.net_reached = False  # a search was cut by the wall-clock net, not by its work
        self.parent: Budget | None = None  # the budget this one is spent from, if any

    def reach_net(self) -> None:
        """Record that a search stopped at the wall-clock safety net (and in the parent's)."""
        self.net_reached = True
        if self.parent is not None:
            self.parent.reach_net()

    def share(self, fraction: float) -> Budget:
        """A sub-budget of ``fraction`` of what is left (spent from this one as it is used)."""
        sub = Budget(self.left * fraction)
        sub.end, sub.deadline = self.end, self.deadline
        sub.parent = self
        return sub

    def part(self, seconds: float) -> Budget:
        """A budget of ``seconds`` with its own end and safety net, spent from this one.

        For a first attempt inside a solve (`matching.solver.solve.solve_round`'s hard proof
        of a soft round): it stops as a budget of ``seconds`` would, never past this one's
        net, and what it spends is no longer this one's, so the attempt and what follows it
        share one budget and one safety net.
        """
        sub = Budget(seconds)
        sub.end, sub.deadline = min(sub.end, self.end), min(sub.deadline, self.deadline)
        sub.parent = self
        return sub

    def spend(self, dtime: float) -> None:
        """Record deterministic time used by a CP-SAT call."""
        self.left = max(0.0, self.left - dtime)
        if self.parent is not None:
            self.parent.spend(dtime)


def run(solver: cp_model.CpSolver, model: cp_model.CpModel, budget: Budget) -> int:
    """Solve and charge the deterministic time used to the budget; the CP-SAT status code.

    CP-SAT's own Ctrl-C handling is turned off (``catch_sigint_signal``): with it, a Ctrl-C
    during a search only cut that search short (a round of a simulated year went on with the
    cut result), and when the solve returned it left SIGINT to the system's default, so the
    next Ctrl-C killed the process on the spot, with no message (exit 130). Without it, Python
    keeps the signal and raises ``KeyboardInterrupt`` once the search returns.
    """
    solver.parameters.catch_sigint_signal = False
    code = int(solver.solve(model))
    work = solver.response_proto.deterministic_time
    budget.spend(work)
    if (
        code in (cp_model.FEASIBLE, cp_model.UNKNOWN)
        and work < solver.parameters.max_deterministic_time
    ):
        # stopped by the wall clock before its work ran out: on a loaded machine, where the
        # work limit would have stopped it at the same point every run
        budget.reach_net()
    if code == cp_model.MODEL_INVALID:  # a bug or numbers beyond CP-SAT's: never "no time"
        raise MatchingError(f"CP-SAT refused the model: {model.validate()}")
    return code


def cp_solver(params: SolveParams, budget: Budget, large: bool = False) -> cp_model.CpSolver:
    """A CP-SAT solver configured from the parameters, limited by what is left of the budget."""
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.max_deterministic_time = max(0.01, budget.left)
    p.max_time_in_seconds = max(0.01, budget.deadline - time.perf_counter())
    if large:
        # measured on the Caen la Mer monthly core (benchmarks/): probing and symmetry
        # detection cost most of the time on these assignment models and buy nothing
        p.cp_model_probing_level = 0
        p.symmetry_level = 0
    # measured on the Caen la Mer monthly round (benchmarks/): with every constraint in its LP
    # (level 2), CP-SAT proves a 1,300-triple neighbourhood in 1 s instead of stalling 20 s
    # at a 0.05 % gap with the default linearization
    p.linearization_level = 2
    p.num_workers = params.num_workers
    p.random_seed = params.seed
    p.relative_gap_limit = params.relative_gap
    p.log_search_progress = params.log
    if params.deterministic and params.num_workers > 1:
        if large:
            p.interleave_search = True
        else:
            # small models: one worker is deterministic by itself, and measured 3-5x faster
            # than the interleaved portfolio, which waits on its slowest LP worker
            p.num_workers = 1
    return solver
