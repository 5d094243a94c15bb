"""The greedy skeleton shared by the rule-of-thumb policies: one unit at a time, in release order.

What a landlord without an optimiser does, and what `optimal` is compared against: each unit, in
release order (``released_on``, then ``unit_id``), is oriented and then given to the first
household of a ranked list. The policies differ only in the ranking of households (a
`RankKey`): by score (`greedy_score`), by first filing date (`seniority`), or by band then
banding date (`bands`). The skeleton does the rest, the same way for all of them:

1. **Orientation** (flux units): among the réservataires the flux bands still admit (band not
   full, and the units left can still reach every band's floor, so the bands hold exactly),
   prefer one with a free household for the unit (else the unit stays vacant), then the one
   whose best household hurts the quotas least, then the one furthest behind its share
   (target ``t_r`` of A4 minus units already oriented this round), then policy order. Units
   excluded from the flux are not oriented; the landlord allocates them (A3).
2. **Household**: the first free household of the réservataire's pool, in the policy's order,
   among those that hurt the quotas least. "Hurt" is the increase of the weighted projected
   shortfall: each quota line's deficit after taking the household, less the most that the
   units still to come could recover (each at best one counted allocation; for a line of one
   réservataire, such as its priority floor, only as many units as its flux band can still
   give it). So a household is skipped only when taking it would make a quota unreachable
   given the units left; when none keeps every quota reachable, the one that loses least is
   taken: the unit is filled and the shortfall reported, never left vacant to protect a quota.

The result is a soft-mode `Result` (status ``FEASIBLE``): shortfalls are reported per quota line,
exactly as `matching.policy.quotas.shortfall` and the independent checker compute them, and
`matching.round.build_result` runs that checker on it. The work is one pass over the units;
each step is vectorised over that unit's candidates (no loop over unit x demand pairs).

It lives in the solver package (it reads only a `RoundInstance` and writes a `RoundSolution`)
so that the exact engine can compare its best with it when a soft round is not proven
(`matching.solver.solve.solve_round`); the policies are `matching.allocation.greedy`.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

from matching.exceptions import InfeasibleError
from matching.solver.instance import RoundInstance, Triples, build_triples
from matching.solver.lines import QuotaLines, quota_lines
from matching.solver.solution import RoundSolution
from matching.types import Stage

FLUX_BAND_CONFLICT = "flux_band"
"""Conflict named when the flux bands' floors need more units than the round has."""


def release_order(units: pd.DataFrame) -> np.ndarray:
    """Unit positions in release order: ``released_on``, then ``unit_id`` (stable)."""
    frame = pd.DataFrame(
        {"released_on": units["released_on"].to_numpy(), "unit_id": units["unit_id"].to_numpy()}
    )
    return frame.sort_values(["released_on", "unit_id"], kind="stable").index.to_numpy()


class _Flux:
    """The round's orientation counts against the flux bands, and each réservataire's deficit."""

    def __init__(self, inst: RoundInstance) -> None:
        ids = inst.reservataires
        bands = inst.bands()
        n_flux = int(inst.flux_units.sum())
        self.left = n_flux
        self.low = np.array([bands[r].low if r in bands else 0 for r in ids], dtype=np.int64)
        self.high = np.array([bands[r].high if r in bands else n_flux for r in ids], dtype=np.int64)
        targets = {r: bands[r].target for r in ids if r in bands}
        rest = Fraction(n_flux) - sum(targets.values(), Fraction(0))
        self.target = np.array([float(targets.get(r, rest)) for r in ids], dtype=np.float64)
        self.assigned = np.zeros(len(ids), dtype=np.int64)
        if int(self.low.sum()) > n_flux:
            raise InfeasibleError(
                f"the flux bands need at least {int(self.low.sum())} oriented units but the "
                f"round has {n_flux} flux units",
                [FLUX_BAND_CONFLICT],
            )

    def next_unit(self) -> np.ndarray:
        """Réservataires the next flux unit may go to, with every band still reachable after.

        Called once per flux unit, in order: the unit is then no longer among those left.
        """
        self.left -= 1
        need = np.maximum(self.low - self.assigned, 0)
        after = int(need.sum()) - (need > 0)
        return np.flatnonzero((self.assigned < self.high) & (after <= self.left))

    def capacity(self, current_in_flux: bool) -> np.ndarray:
        """Most units each réservataire can receive after the current unit, per réservataire.

        When the current unit is in the flux, each réservataire's figure assumes the unit goes
        to it (the figure is used for that réservataire's own candidates).
        """
        this = 1 if current_in_flux else 0
        need = np.maximum(self.low - self.assigned, 0)
        others = int(need.sum()) - need
        return np.maximum(
            np.minimum(self.high - self.assigned - this, self.left - this - others), 0
        )

    def deficit(self, res: int) -> float:
        """How far réservataire ``res`` is behind its share of this round (target - assigned)."""
        return float(self.target[res] - self.assigned[res])


class _State:
    """The running greedy allocation: households taken, quota line values, what is left."""

    def __init__(self, inst: RoundInstance, triples: Triples, lines: QuotaLines) -> None:
        self.triples = triples
        self.lines = lines
        self.taken = np.zeros(len(inst.demands), dtype=bool)
        self.values = np.zeros(len(lines), dtype=np.int64)
        self.picked: list[int] = []
        self.class_hurt = np.zeros(lines.n_classes, dtype=np.int64)

    def project(self, headroom: np.ndarray) -> None:
        """Weighted increase of the projected shortfall if a triple of each class were taken.

        ``headroom`` is, per line, what the units after the current one could at best recover.
        """
        lines = self.lines
        self.class_hurt = np.zeros(lines.n_classes, dtype=np.int64)
        for j in range(lines.n_rules):
            rows = lines.line[j]
            inside = rows >= 0
            r = rows[inside]
            v = self.values[r]
            before = lines.shortfall(r, v, headroom[r])
            after = lines.shortfall(r, v + lines.coef[j, inside], headroom[r])
            self.class_hurt[inside] += lines.weight[r] * (after - before)

    def best(self, start: int, end: int) -> tuple[int, int] | None:
        """The first free candidate of a slice among those that hurt least: (triple, hurt)."""
        free = np.flatnonzero(~self.taken[self.triples.demand[start:end]])
        if not len(free):
            return None
        hurt = self.class_hurt[self.lines.cls[start + free]]
        k = int(np.argmin(hurt))
        return start + int(free[k]), int(hurt[k])

    def take(self, t: int) -> None:
        """Allocate triple ``t``: its household is taken, the quota lines move."""
        self.taken[self.triples.demand[t]] = True
        self.picked.append(t)
        c = self.lines.cls[t]
        for j in range(self.lines.n_rules):
            row = self.lines.line[j, c]
            if row >= 0:
                self.values[row] += self.lines.coef[j, c]


def greedy_round(
    inst: RoundInstance, rank: np.ndarray, name: str, triples: Triples | None = None
) -> RoundSolution:
    """Run the greedy skeleton on a prepared round with the households ranked by ``rank``.

    ``triples``: ``build_triples(inst)`` itself when the caller has it (not a subset of it), so
    that it is not built twice (18.9 million triples on a pooled year, 1.2 s).
    """
    # sorted by unit, réservataire, then the policy's tie-break
    triples = build_triples(inst) if triples is None else triples
    n_units, n_res = len(inst.units), len(inst.reservataires)
    # slot (unit, réservataire) -> contiguous triples; slot res + 1 so that NONE (-1) is slot 0
    slot = triples.unit.astype(np.int64) * (n_res + 1) + (triples.res.astype(np.int64) + 1)
    if not np.array_equal(rank, inst.tie_rank):
        resort = np.argsort(slot * len(inst.demands) + rank[triples.demand], kind="stable")
        triples, slot = triples.subset(resort), slot[resort]
    lines = quota_lines(inst, triples)
    bounds = np.searchsorted(slot, np.arange(n_units * (n_res + 1) + 1))
    order = release_order(inst.units)
    # headroom after the i-th unit: what every later unit could at best recover, per line
    gain = lines.best_gain(triples.unit, n_units)[:, order]
    after = np.zeros((len(lines), n_units + 1), dtype=np.int64)
    after[:, :-1] = np.cumsum(gain[:, ::-1], axis=1)[:, ::-1]
    flux = _Flux(inst)
    in_flux = inst.flux_units
    state = _State(inst, triples, lines)
    orientation: dict[int, int] = {}
    best_per_unit = gain.max(axis=1, initial=0)
    capped = lines.line_res >= 0
    for i, u in enumerate(order.tolist()):
        # a per-réservataire line recovers at most through the units its réservataire can
        # still receive (flux bands), not through every later unit
        headroom = after[:, i + 1].copy()
        room = flux.capacity(bool(in_flux[u]))[lines.line_res[capped]]
        headroom[capped] = np.minimum(headroom[capped], best_per_unit[capped] * room)
        state.project(headroom)
        base = u * (n_res + 1)
        if not in_flux[u]:
            found = state.best(bounds[base], bounds[base + 1])
            if found is not None:
                state.take(found[0])
            continue
        choices = []
        for r in flux.next_unit().tolist():
            s = base + r + 1
            found = state.best(bounds[s], bounds[s + 1])
            key = (0, found[1]) if found is not None else (1, 0)
            choices.append(((*key, -flux.deficit(r), r), r, found))
        _, res, found = min(choices, key=lambda c: c[0])
        orientation[u] = res
        flux.assigned[res] += 1
        if found is not None:
            state.take(found[0])
    picked = np.asarray(state.picked, dtype=np.int64)
    final = lines.shortfall(np.arange(len(lines)), state.values)
    return RoundSolution(
        status="FEASIBLE",
        unit=triples.unit[picked].astype(np.int64),
        demand=triples.demand[picked].astype(np.int64),
        res=triples.res[picked].astype(np.int64),
        orientation=orientation,
        stage_values=_stage_values(inst, lines, state, triples.demand[picked]),
        shortfalls=dict(zip(lines.names, final.tolist(), strict=True)),
        stats={"method": name, "triples": len(triples)},
    )


def _stage_values(
    inst: RoundInstance, lines: QuotaLines, state: _State, demands: np.ndarray
) -> dict[Stage, int]:
    """The objective stages of the policy for the greedy allocation (as the checker counts)."""
    short = lines.shortfall(np.arange(len(lines)), state.values)
    values = {
        Stage.SHORTFALL: int((lines.weight * short).sum()),
        Stage.ALLOCATIONS: len(demands),
        Stage.SCORE: int(inst.scores[demands].sum()),
    }
    return {stage: values[stage] for stage in inst.policy.objective.stages}
