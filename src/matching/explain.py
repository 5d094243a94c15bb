"""What became of one household in an allocated round: its unit, or why it has none.

A planner reads ``unallocated_demands.csv`` (a reason code per household not housed) and then
asks the next question: which rules keep it from the round's units, which units it could have
taken, and who took them. `explain_demand` answers from the round's tables and an allocation
(the solver's, or one made by people), without the solver: every pair is judged by the
eligibility predicates (`matching.eligibility.pair_failures`), the pools by `proposable_pools`, and
the units it could take are read from the orientation and the allocation. Its reason code is
the one ``unallocated_demands.csv`` gives (`matching.result.UNALLOCATED_DEMAND_REASONS`),
recomputed here from that evidence; the tests hold the two to agree.

Identifiers, rule names, counts and scores only: nothing of the household's own record beyond
its score is printed (`matching why-not` gives a pair's values).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from matching.checker import ALLOCATION_COLUMNS, ORIENTATION_COLUMNS, normalise_table
from matching.eligibility import pair_failures, proposable_pools, round_scores
from matching.exceptions import DataError, RowProblem
from matching.policy.fields import FACTS_HOW, require_derived_facts
from matching.policy.loader import policy_of
from matching.policy.model import Policy
from matching.policy.scoring import demand_position
from matching.result import UNALLOCATED_DEMAND_REASONS
from matching.types import DemandId, RuleId, UnitId

SOLVED = frozenset({"OPTIMAL", "FEASIBLE"})


@dataclass(frozen=True)
class UnitChance:
    """A unit the household could have taken: eligible, and in its pools as oriented.

    Attributes
    ----------
    unit_id
        The unit.
    reservataire
        The réservataire it was oriented to ('' for a unit excluded from the flux).
    taken_by, taken_score
        The household it went to and its score, or '' and None when it stayed empty.
    """

    unit_id: UnitId
    reservataire: str
    taken_by: DemandId
    taken_score: int | None


@dataclass(frozen=True)
class DemandExplanation:
    """One household's outcome in a round, with the evidence.

    Attributes
    ----------
    demand_id, score
        The household and its cotation score at the round date.
    unit_id, reservataire
        Where it is housed, or '' when it is not.
    reason
        '' when housed; otherwise a code of `matching.result.UNALLOCATED_DEMAND_REASONS`.
    units
        Units in the round.
    failing
        For each enabled eligibility rule, the units that fail it (a unit may fail several).
    pool_blocked
        Units that pass every rule but are in the flux while no réservataire's pool holds it.
    eligible
        Units it is eligible for (every rule, and a pool for a unit in the flux).
    oriented_elsewhere
        Eligible units oriented to a réservataire whose pool does not hold it, by réservataire.
    chances
        The units it could have taken, by unit id, with who took them.
    """

    demand_id: DemandId
    score: int
    unit_id: UnitId
    reservataire: str
    reason: str
    units: int
    failing: dict[RuleId, int]
    pool_blocked: int
    eligible: int
    oriented_elsewhere: dict[str, int]
    chances: tuple[UnitChance, ...]


def explain_demand(
    units: pd.DataFrame,
    demands_with_facts: pd.DataFrame,
    policy: Policy | str | Path,
    allocation: pd.DataFrame,
    orientation: pd.DataFrame,
    demand_id: DemandId,
    *,
    status: str = "OPTIMAL",
    time_limited: bool = False,
    sources: tuple[str, str] = ("allocation", "orientation"),
) -> DemandExplanation:
    """Explain what became of ``demand_id`` in this allocation of the round.

    Parameters
    ----------
    units, demands_with_facts
        The round's canonical tables, demands with the derived facts
        (`matching.facts.derive_facts` at the round's date; a solved `Result` holds them as
        ``result.prepared.instance.demands``).
    policy
        The policy the round was allocated under: a `Policy`, a bundled name or a path.
    allocation, orientation
        The round's ``allocations.csv`` (unit_id, demand_id, reservataire) and
        ``orientations.csv`` (unit_id, reservataire) tables.
    demand_id
        The household; a DataError names it when it is not in the round.
    status, time_limited
        The round's status and whether a FEASIBLE search was stopped by its time limit or
        its --gap (``result.json``: a FEASIBLE round of the exact solver, not a greedy
        policy's): with no solution, or a search cut short, the reason is the status's, as in
        ``unallocated_demands.csv``.
    sources
        The names of the allocation and orientation tables in error messages (their files).

    Raises
    ------
    TypeError
        ``demands_with_facts`` lacks the derived facts (naming them and how to get them).
    DataError
        When the allocation or the orientation cannot be read one way: a row naming a unit or a
        demand not in the round, a unit or a household allocated twice, a unit oriented twice
        or to an unknown réservataire (``matching check`` reports each as a violation).
    """
    policy = policy_of(policy)  # as `matching.round.solve` and `checker.audit` take it
    require_derived_facts(demands_with_facts.columns, FACTS_HOW)
    d = demand_position(demands_with_facts, demand_id)
    allocation = normalise_table(allocation, ALLOCATION_COLUMNS, sources[0])
    orientation = normalise_table(orientation, ORIENTATION_COLUMNS, sources[1])
    _refuse_ambiguous(units, demands_with_facts, policy, allocation, orientation, sources)
    n = len(units)
    fails = pair_failures(
        units, demands_with_facts, np.arange(n), np.full(n, d, dtype=np.int64), policy
    )
    passes = np.ones(n, dtype=bool)
    for failed in fails.values():
        passes &= ~failed
    in_flux = units["flux_excluded"].astype(str).to_numpy(dtype=object) == ""
    pools = int(proposable_pools(demands_with_facts.iloc[[d]], policy)[0])
    eligible = passes & (~in_flux | (pools != 0))
    res_ids = [r.id for r in policy.reservataires]
    unit_ids = units["unit_id"].astype(str).to_numpy(dtype=object)
    oriented_to = dict(
        zip(
            orientation["unit_id"].astype(str), orientation["reservataire"].astype(str), strict=True
        )
    )
    oriented = np.array([oriented_to.get(u, "") for u in unit_ids], dtype=object)
    in_pool = np.array(
        [r in res_ids and (pools >> res_ids.index(r)) & 1 == 1 for r in oriented], dtype=bool
    )
    solved = status in SOLVED
    chance = eligible & (~in_flux | in_pool) & solved  # without a solution, no orientation
    scores = round_scores(demands_with_facts, policy)
    score_of = dict(zip(demands_with_facts["demand_id"].astype(str), scores.tolist(), strict=True))
    taken = dict(
        zip(allocation["unit_id"].astype(str), allocation["demand_id"].astype(str), strict=True)
    )
    mine = allocation[allocation["demand_id"].astype(str) == demand_id]
    housed = len(mine) > 0
    chances = tuple(
        UnitChance(
            unit_id=str(unit_ids[u]),
            reservataire=str(oriented[u]),
            taken_by=taken.get(str(unit_ids[u]), ""),
            taken_score=(
                int(score_of[taken[str(unit_ids[u])]]) if str(unit_ids[u]) in taken else None
            ),
        )
        for u in np.flatnonzero(chance)
    )
    elsewhere = pd.Series(oriented[eligible & in_flux & ~in_pool & solved]).value_counts(sort=False)
    return DemandExplanation(
        demand_id=demand_id,
        score=int(scores[d]),
        unit_id=str(mine["unit_id"].iloc[0]) if housed else "",
        reservataire=str(mine["reservataire"].iloc[0]) if housed else "",
        reason="" if housed else _reason(eligible, passes, chance, status, time_limited),
        units=n,
        failing={rule: int(failed.sum()) for rule, failed in fails.items()},
        pool_blocked=int((passes & in_flux & (pools == 0)).sum()),
        eligible=int(eligible.sum()),
        oriented_elsewhere={str(r): int(c) for r, c in sorted(elsewhere.items())},
        chances=chances,
    )


def _refuse_ambiguous(
    units: pd.DataFrame,
    demands: pd.DataFrame,
    policy: Policy,
    allocation: pd.DataFrame,
    orientation: pd.DataFrame,
    sources: tuple[str, str],
) -> None:
    """Refuse tables an explanation would read two ways (a hand-edited allocations.csv).

    A unit allocated twice would be said to house one household and to have gone to another;
    a row naming an unknown id (a typo) leaves the household it meant to house "not housed".
    """
    problems: list[RowProblem] = []
    known = {
        "unit_id": set(units["unit_id"].astype(str)),
        "demand_id": set(demands["demand_id"].astype(str)),
    }
    for field, what in (("unit_id", "unit"), ("demand_id", "demand")):
        values = allocation[field]
        for i in np.flatnonzero(~values.isin(known[field]).to_numpy()):
            reason = f"not a {what} of the round"
            problems.append(RowProblem(sources[0], int(i) + 1, field, str(values[i]), reason))
        for i in np.flatnonzero(values.duplicated(keep="first").to_numpy()):
            reason = f"{what} allocated more than once (run matching check on the folder)"
            problems.append(RowProblem(sources[0], int(i) + 1, field, str(values[i]), reason))
    o_units, o_res = orientation["unit_id"], orientation["reservataire"]
    for i in np.flatnonzero(o_units.duplicated(keep="first").to_numpy()):
        reason = "unit oriented more than once (run matching check on the folder)"
        problems.append(RowProblem(sources[1], int(i) + 1, "unit_id", str(o_units[i]), reason))
    ids = policy.reservataire_ids()
    for i in np.flatnonzero(~o_res.isin(ids).to_numpy()):
        reason = f"unknown réservataire; known: {', '.join(ids)}"
        problems.append(RowProblem(sources[1], int(i) + 1, "reservataire", str(o_res[i]), reason))
    if problems:
        raise DataError(problems)


def _reason(
    eligible: np.ndarray, passes: np.ndarray, chance: np.ndarray, status: str, stopped: bool
) -> str:
    """The reason code of a household not housed, from the evidence (as the round gives it)."""
    if not eligible.any():
        return "no_unit_in_its_pools" if passes.any() else "no_eligible_unit"
    if status not in SOLVED:
        return "round_infeasible" if status == "INFEASIBLE" else "no_solution_in_time"
    if not chance.any():
        return "no_unit_oriented_to_its_pools"
    return "not_proven_in_time" if stopped else "units_went_to_others"


def render_demand_explanation(e: DemandExplanation, max_units: int = 20) -> str:
    """The explanation as text: outcome, the rules over the round's units, its possible units."""
    if e.unit_id:
        where = f"via {e.reservataire}" if e.reservataire else "outside the flux"
        head = f"Demand {e.demand_id} (score {e.score:,}): housed in {e.unit_id} ({where})"
    else:
        head = (
            f"Demand {e.demand_id} (score {e.score:,}): not housed ({e.reason}: "
            f"{UNALLOCATED_DEMAND_REASONS[e.reason]})"
        )
    lines = [head]
    failing = ", ".join(f"{rule} {count:,}" for rule, count in e.failing.items() if count)
    lines.append(
        f"  eligible for {e.eligible:,} of the round's {e.units:,} units"
        + (f"; units failing each rule: {failing}" if failing else "")
    )
    if e.pool_blocked:
        lines.append(
            f"  {e.pool_blocked:,} unit(s) in the flux pass every rule, but no réservataire's "
            "pool holds the household"
        )
    if e.oriented_elsewhere:
        listed = ", ".join(f"{r or '-'} {c:,}" for r, c in e.oriented_elsewhere.items())
        lines.append(
            f"  eligible units oriented to réservataires whose pool does not hold it: {listed}"
        )
    if e.chances:
        lines.append(f"  units it could take ({len(e.chances):,}):")
        for c in e.chances[:max_units]:
            via = c.reservataire or "outside the flux"
            if c.taken_by == e.demand_id:
                fate = "housed it"
            elif c.taken_by:
                fate = f"went to {c.taken_by} (score {c.taken_score:,})"
                if not e.unit_id and c.taken_score is not None and c.taken_score < e.score:
                    # a search stopped unproven says nothing of why (a --gap of 0.9 left
                    # households of score 59 behind ones of 21 with no rule asking it)
                    fate += (
                        ": a lower score, in a search stopped before its proof"
                        if e.reason == "not_proven_in_time"
                        else ": a lower score, placed by a quota, a band or the stages"
                    )
            else:
                fate = "stayed empty"
            lines.append(f"    {c.unit_id} ({via}): {fate}")
        if len(e.chances) > max_units:
            lines.append(f"    ... {len(e.chances) - max_units:,} more")
    return "\n".join(lines)
