"""Name the rules that make a round infeasible: a deletion filter in HiGHS, or CP-SAT's cores.

`minimal_conflict` first: each rule (quota rule, flux band) is left out in turn, and kept out
when HiGHS proves the round still infeasible without it; what remains is a conflict in which
every rule is needed. `fewest_bands` does the same with the bands of conflicts the count ranges
proved. `conflicting_rules` (CP-SAT with one assumption literal per rule) is the
fallback when a HiGHS proof does not come within its node limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from ortools.sat.python import cp_model

from matching.flux import FluxBand
from matching.params import SolveParams
from matching.solver.build import BuiltModel
from matching.solver.cpsat import Budget, run
from matching.solver.instance import RoundInstance, Triples
from matching.solver.mip import solve_small_mip
from matching.solver.rows import QuotaRow

CONFLICT_NODES = 2000
"""HiGHS nodes of one feasibility check of the deletion filter (a count, so that runs
reproduce); a check that ends there unproven keeps its rule in the conflict."""


def minimal_conflict(
    inst: RoundInstance,
    triples: Triples,
    rows: list[QuotaRow],
    deadline: float,
    node_limit: int = CONFLICT_NODES,
    known: frozenset[str] = frozenset(),
) -> list[str] | None:
    """Rules that cannot all hold in the round, each conflict irreducible; None if not proven.

    Names as `conflicting_rules` gives them: quota rule ids and ``flux_band[r]``. A deletion
    filter finds one irreducible conflict: the flux bands are left out first, then the rules,
    each in name order (so that a conflict either can explain names the quota rules, and the
    same round names the same rules), each staying out when the round is still infeasible
    without it. Then the same among the rules not named, while they still conflict: every
    conflict is named at once (two floors out of reach: both), as the count ranges do, and with
    every named rule left out the round can be solved (or that was not proven). A band left out
    lets the round orient 0 to all of its flux units to that réservataire.

    Why: CP-SAT's cores need CP-SAT to prove the round infeasible under its assumptions, and on
    small rounds whose quotas conflict only through integer rounding it did not within the
    budget: a 14-unit round (466 triples) named nothing after 30 s of deterministic time (16 s),
    where HiGHS proves each check in milliseconds. A deletion filter also names only rules that
    are needed: each named rule, left out of its conflict, lets the rest of it hold (or the
    check was not proven). ``triples`` may be a reduction of the round's that keeps its
    feasibility under any subset of the rules (the classes of `matching.solver.lp.top_per_group`
    and of the dominance pruning share every row's coefficient, so a dropped triple has a kept
    twin).

    Each check stops at ``node_limit`` nodes (a count: the same names on a loaded machine);
    ``deadline`` (`time.perf_counter` seconds, the solve's safety net) is only a wall-clock net.
    A check not proven keeps its rule, so the set named is always a proven conflict, if not an
    irreducible one. ``known``: the names of conflicts already proven (by the count ranges),
    left out from the start; only the conflicts among the other rules are looked for and
    named.
    """
    band_names = [f"flux_band[{r}]" for r in inst.bands()]
    order = [*sorted(band_names), *sorted({row.rule.id for row in rows})]  # bands left out first
    order = [name for name in order if name not in known]
    rest = set(order)
    named: set[str] = set()
    holds_not = _prover(inst, triples, rows, deadline, node_limit)
    while holds_not(rest):  # one more conflict among the rules not named yet
        kept = _deleted(rest, [name for name in order if name in rest], holds_not)
        if not kept:  # infeasible with no rule at all: not a conflict of rules
            break
        named |= kept
        rest -= kept
    return sorted(named) if named else None


def fewest_bands(
    inst: RoundInstance,
    triples: Triples,
    rows: list[QuotaRow],
    conflicts: list[tuple[str, list[str]]],
    deadline: float,
    node_limit: int = CONFLICT_NODES,
) -> list[str]:
    """The names of proven conflicts (rule, bands), each band left out if the rule fails without.

    Each band is left out in name order when HiGHS proves the rule still cannot hold without
    it. Why: the count ranges (`matching.solver.cuts.unreachable_conflicts`) name a rule with the
    bands their proof used, and a finer proof can need fewer: a floor the year left out of
    reach, named with the collectivité's band, which the full model named alone (exactness
    seed 94). Each rule's bands are tried with that rule alone, the other rules left out, so
    the bands another rule out of reach needs stay named with it. The rules are all kept:
    each is a conflict on its own. ``triples``, ``deadline`` and ``node_limit`` as in
    `minimal_conflict`; a check not proven keeps its band.
    """
    holds_not = _prover(inst, triples, rows, deadline, node_limit)
    names: set[str] = set()
    for rule, bands in conflicts:
        names |= _deleted({rule, *bands}, sorted(bands), holds_not)
    return sorted(names)


def _prover(
    inst: RoundInstance, triples: Triples, rows: list[QuotaRow], deadline: float, node_limit: int
) -> Callable[[set[str]], bool]:
    """`proven_conflict` on this round, as a function of the names that must all hold."""
    return lambda names: proven_conflict(inst, triples, rows, names, deadline, node_limit)


def _deleted(
    conflict: set[str], candidates: list[str], holds_not: Callable[[set[str]], bool]
) -> set[str]:
    """A deletion filter: each candidate, in order, left out of the conflict if it still holds.

    ``holds_not(names)``: whether those rules are proven unable to all hold.
    """
    kept = set(conflict)
    for name in candidates:
        if holds_not(kept - {name}):
            kept.discard(name)
    return kept


def proven_conflict(
    inst: RoundInstance,
    triples: Triples,
    rows: list[QuotaRow],
    names: set[str],
    deadline: float,
    node_limit: int = CONFLICT_NODES,
) -> bool:
    """Whether HiGHS proves, within ``node_limit`` nodes, that ``names`` cannot all hold.

    ``names``: quota rule ids and ``flux_band[r]``; every other rule is left out. A band left
    out lets the round orient 0 to all of its flux units to that réservataire. Past
    ``deadline`` (the solve's safety net) it runs no check and says not proven.
    """
    left = deadline - time.perf_counter()
    if left <= 0:  # past the solve's safety net: no check starts (the rules stay named; each
        # had a second of its own, and a deletion filter of 13 checks ran 3.9 s past the net)
        return False
    n_flux = int(inst.flux_units.sum())
    bands = {
        r: b if f"flux_band[{r}]" in names else FluxBand(
            reservataire=r, target=b.target, low=0, high=n_flux
        )
        for r, b in inst.bands().items()
    }  # fmt: skip
    found = solve_small_mip(
        inst, triples, np.zeros(len(triples), dtype=bool),
        rows=[row for row in rows if row.rule.id in names],
        bands=bands,
        feasibility=True,
        node_limit=node_limit,
        time_limit_s=max(1.0, left),
    )  # fmt: skip
    return found.status == "INFEASIBLE"


def conflicting_rules(built: BuiltModel, params: SolveParams, budget: Budget) -> list[str]:
    """Rule names (quota ids, ``flux_band[r]``) whose joint enforcement is infeasible.

    Every guard literal is assumed true; CP-SAT then returns a subset of the assumptions that is
    sufficient for infeasibility. Returns an empty list when the model is feasible or when the
    search ran out of its budget: what is left of ``budget``, at least 1 s, in CP-SAT's
    deterministic time (its wall-clock limit, three times that plus 5 s and at most the
    budget's own net, or 1 s past it, is only a safety net).
    Why not wall-clock seconds: whether the rules were found, and which, then depended on the
    machine's load (a search cut by the clock stops at a different point beside a busy
    process).
    """
    assert built.guards is not None, "build the model with diagnose=True"
    literals = built.guards.literals
    built.model.add_assumptions(list(literals.values()))
    seconds = max(1.0, budget.left)
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = seconds
    # the solve's safety net, at least 1 s (it had 3 x that + 5 s from its own start, also
    # after the deletion filter had reached the net)
    wall = max(1.0, budget.deadline - time.perf_counter())
    solver.parameters.max_time_in_seconds = min(3 * seconds + 5, wall)
    solver.parameters.num_workers = 1  # cores are only reported by a single-worker search
    solver.parameters.random_seed = params.seed
    status = run(solver, built.model, budget)
    if status != cp_model.INFEASIBLE:
        return []
    core = set(solver.sufficient_assumptions_for_infeasibility())
    return sorted(name for name, lit in literals.items() if lit.index in core)
