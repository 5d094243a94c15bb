"""The cotation: score every demand with a grid read from the policy file (DOMAIN A7).

A grid is data (`matching.policy.model.CotationGrid`): each criterion has a condition on demand
fields and points, fixed or per unit of a numeric field, with an optional cap. No criterion is
written here; this module only evaluates grids, one numpy expression per criterion, so that a
round of 250,000 demands is scored in a fraction of a second and a new grid is a new file.

Derived fields such as ``seniority_months`` come from `matching.facts.derive_facts`, computed at
the round's date (never the machine's clock), so that scores are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from matching.exceptions import DataError, RowProblem
from matching.limits import MAX_SCORE
from matching.policy.conditions import evaluate
from matching.policy.model import CotationGrid, Criterion
from matching.types import DemandId, RuleId


@dataclass(frozen=True)
class ScoreResult:
    """Scores of a set of demands.

    Attributes
    ----------
    total
        Score of each demand (int64), indexed like the demands frame.
    breakdown
        Points of each criterion (one int64 column per criterion id, in grid order), indexed like
        the demands frame; each row sums to ``total``.
    """

    total: pd.Series
    breakdown: pd.DataFrame


MAX_LISTED = 10
"""Demands named when scores go beyond the bound (then a count of the others)."""


class ScoreLine(NamedTuple):
    """One criterion of a demand's score, for explanations.

    Attributes
    ----------
    criterion_id
        Stable id of the criterion.
    label
        The criterion's label from the grid.
    points
        Points it gives this demand (0 when it does not apply).
    why
        The values that decided it, in words.
    """

    criterion_id: RuleId
    label: str
    points: int
    why: str


def criterion_points(demands: pd.DataFrame, criterion: Criterion) -> np.ndarray:
    """Points one criterion gives each demand (int64 array).

    The points are ``points`` when every ``when`` condition holds, multiplied by the value of
    ``per`` floored to an integer when ``per`` is set; ``cap`` bounds the absolute value, so that
    a negative criterion (refusals) is capped symmetrically. They are computed as floats and
    refused beyond `matching.limits.MAX_SCORE` before any integer is made (`DataError` naming
    the demands), since an integer product wraps around without a word.
    """
    applies = evaluate(criterion.when, demands)
    points = np.full(len(demands), float(criterion.points))
    if criterion.per is not None:
        points = points * np.floor(demands[criterion.per].to_numpy(dtype=float))
    if criterion.cap is not None:
        points = np.sign(points) * np.minimum(np.abs(points), float(criterion.cap))
    points = np.where(applies, points, 0.0)
    _check_bound(demands, points, f"criterion '{criterion.id}'", criterion.per or "score")
    return points.astype(np.int64)


def _check_bound(demands: pd.DataFrame, points: np.ndarray, what: str, field: str) -> None:
    """Refuse points beyond ±`MAX_SCORE` (or not a number), naming the first demands."""
    bad = np.flatnonzero(~(np.abs(points) <= MAX_SCORE))
    if len(bad) == 0:
        return
    ids = demands["demand_id"].to_numpy() if "demand_id" in demands else np.arange(len(points))
    values = demands[field].to_numpy() if field in demands else points
    problems = [
        RowProblem(
            "demands",
            None,
            field,
            str(values[i]),
            f"demand {ids[i]}: {what} gives {points[i]:.4g} points, beyond the "
            f"±{MAX_SCORE:,} a household's score may reach",
        )
        for i in bad[:MAX_LISTED].tolist()
    ]
    if len(bad) > MAX_LISTED:
        reason = f"and {len(bad) - MAX_LISTED:,} more demand(s) beyond ±{MAX_SCORE:,} points"
        problems.append(RowProblem("demands", None, field, "", reason))
    raise DataError(problems)


def score(demands_with_facts: pd.DataFrame, grid: CotationGrid) -> ScoreResult:
    """Score every demand with the grid, vectorised (one numpy expression per criterion).

    Parameters
    ----------
    demands_with_facts
        Demands table with the derived facts of `matching.facts.derive_facts` (computed at the
        round's date).
    grid
        The cotation grid of the policy.

    Returns
    -------
    ScoreResult
        Total and breakdown by criterion, integers, indexed like ``demands_with_facts``.
    """
    columns = {c.id: criterion_points(demands_with_facts, c) for c in grid.criteria}
    sums = np.zeros(len(demands_with_facts))
    for points in columns.values():
        sums += points  # as floats: each is within the bound, their sum may not be
    _check_bound(demands_with_facts, sums, "the grid", "score")
    breakdown = pd.DataFrame(columns, index=demands_with_facts.index, dtype=np.int64)
    total = pd.Series(
        breakdown.to_numpy().sum(axis=1, dtype=np.int64),
        index=demands_with_facts.index,
        dtype=np.int64,
        name="score",
    )
    return ScoreResult(total=total, breakdown=breakdown)


def demand_position(demands: pd.DataFrame, demand_id: DemandId) -> int:
    """Row position of a demand id, or a DataError naming the id when it is not in the round."""
    hits = np.flatnonzero(demands["demand_id"].to_numpy() == demand_id)
    if len(hits) == 0:
        raise DataError([RowProblem("demands", None, "demand_id", demand_id, "no such demand")])
    return int(hits[0])


def _value_text(value: object) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(map(str, value)) + ")" if value else "(none)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        return _value_text(value.item())
    return str(value)


def _why(row: pd.DataFrame, criterion: Criterion, points: int) -> str:
    """Say which values decided a criterion for one demand (a one-row frame)."""
    facts = [f"{c.field} = {_value_text(row[c.field].iloc[0])}" for c in criterion.when]
    held = [bool(evaluate((c,), row)[0]) for c in criterion.when]
    if not all(held):
        failed = [f for f, ok in zip(facts, held, strict=True) if not ok]
        wanted = [c.describe() for c, ok in zip(criterion.when, held, strict=True) if not ok]
        return f"not met: {', '.join(failed)} (needs {', '.join(wanted)})"
    parts = [", ".join(facts)] if facts else []
    if criterion.per is not None:
        # the words say what `criterion_points` did: the value floored (1.3 consumption units
        # read "1.3 x 10 point(s)" for 10 points), and "capped" only when the cap bit (it was
        # said of 40 points under a cap of 80)
        value = row[criterion.per].iloc[0]
        whole = int(np.floor(float(value)))
        floored = "" if whole == float(value) else f", floored to {whole},"
        raw = whole * criterion.points
        parts.append(
            f"{criterion.per} = {_value_text(value)}{floored} x {criterion.points} point(s)"
            + (
                f", capped at {criterion.cap}"
                if criterion.cap is not None and abs(raw) > criterion.cap
                else ""
            )
        )
    elif criterion.cap is not None and abs(criterion.points) > criterion.cap:
        parts.append(f"capped at {criterion.cap}")
    return "; ".join(parts) if parts else "always applies"


def explain_score(
    demands_with_facts: pd.DataFrame, grid: CotationGrid, demand_id: DemandId
) -> list[ScoreLine]:
    """Explain one demand's score criterion by criterion, as data (one line per criterion).

    The points are computed by the same function as `score`, so the explanation always adds up to
    the score used by the solver.
    """
    pos = demand_position(demands_with_facts, demand_id)
    row = demands_with_facts.iloc[[pos]]
    lines = []
    for criterion in grid.criteria:
        points = int(criterion_points(row, criterion)[0])
        lines.append(ScoreLine(criterion.id, criterion.label, points, _why(row, criterion, points)))
    return lines


def render_score_explanation(demand_id: DemandId, lines: list[ScoreLine]) -> str:
    """Render an explanation as aligned text: criteria that give points, then those that do not."""
    total = sum(line.points for line in lines)
    width = max((len(line.criterion_id) for line in lines), default=0)
    out = [f"Demand {demand_id}: score {total}"]
    given = [line for line in lines if line.points != 0]
    for line in given:
        out.append(f"  {line.points:+5d}  {line.criterion_id:<{width}}  {line.label} ({line.why})")
    others = [line for line in lines if line.points == 0]
    if others:
        out.append("  no points from:")
        for line in others:
            out.append(f"         {line.criterion_id:<{width}}  {line.why}")
    return "\n".join(out)
