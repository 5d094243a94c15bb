"""AssignmentVars: the CP-SAT decision variables and every lookup over them (STYLE practice 4).

One Boolean per admissible triple (``assign[unit,demand,réservataire]``), one per (flux unit,
réservataire) orientation (``orient[unit,réservataire]``), and in soft mode one integer shortfall
per quota row (``quota_shortfall[rule,scope]``). Group lookups are computed once from the sorted
triple arrays; no other module indexes the variables directly.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from ortools.sat.python import cp_model

from matching.solver.instance import NONE, RoundInstance, Triples
from matching.solver.rows import QuotaRow


def _groups(keys: np.ndarray) -> Iterator[np.ndarray]:
    """Index arrays of the runs of equal keys, in key order (stable)."""
    if len(keys) == 0:  # np.split of an empty array would yield one empty group
        return
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    cuts = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    yield from np.split(order, cuts)


class AssignmentVars:
    """Variables of one round's CP-SAT model, indexed by the triple arrays."""

    def __init__(
        self,
        model: cp_model.CpModel,
        inst: RoundInstance,
        triples: Triples,
        rows: list[QuotaRow],
        soft: bool,
    ) -> None:
        self.inst = inst
        self.triples = triples
        unit_ids = inst.units["unit_id"].to_numpy(dtype=object)
        demand_ids = inst.demands["demand_id"].to_numpy(dtype=object)
        res_ids = np.array([*inst.reservataires, "-"], dtype=object)
        labels = pd.Index(
            [
                f"{u},{d},{r}"
                for u, d, r in zip(
                    unit_ids[triples.unit],
                    demand_ids[triples.demand],
                    res_ids[np.where(triples.res == NONE, len(res_ids) - 1, triples.res)],
                    strict=True,
                )
            ]
        )
        self.x: list[cp_model.IntVar] = list(model.new_bool_var_series("assign", labels))
        self.flux_units = np.flatnonzero(inst.flux_units)
        n_res = len(inst.reservataires)
        self.orient: dict[tuple[int, int], cp_model.IntVar] = {
            (int(u), r): model.new_bool_var(f"orient[{unit_ids[u]},{inst.reservataires[r]}]")
            for u in self.flux_units
            for r in range(n_res)
        }
        self.shortfall: list[cp_model.IntVar] = (
            [
                model.new_int_var(0, row.max_shortfall(), f"quota_shortfall[{row.name}]")
                for row in rows
            ]
            if soft
            else []
        )

    def by_unit(self) -> Iterator[tuple[int, list[cp_model.IntVar]]]:
        """For each unit with triples: its position and its assignment variables."""
        for idx in _groups(self.triples.unit):
            yield int(self.triples.unit[idx[0]]), [self.x[i] for i in idx]

    def by_demand(self) -> Iterator[tuple[int, list[cp_model.IntVar]]]:
        """For each demand with triples: its position and its assignment variables."""
        for idx in _groups(self.triples.demand):
            yield int(self.triples.demand[idx[0]]), [self.x[i] for i in idx]

    def by_unit_reservataire(self) -> Iterator[tuple[int, int, list[cp_model.IntVar]]]:
        """For each (flux unit, réservataire) with triples: the assignment variables."""
        flux = self.triples.res != NONE
        pos = np.flatnonzero(flux)
        key = self.triples.unit[pos].astype(np.int64) * 64 + self.triples.res[pos]
        for idx in _groups(key):
            first = pos[idx[0]]
            yield (
                int(self.triples.unit[first]),
                int(self.triples.res[first]),
                [self.x[i] for i in pos[idx]],
            )

    def orientation_of(self, unit: int) -> list[cp_model.IntVar]:
        """Orientation variables of one flux unit, in réservataire order."""
        return [self.orient[(unit, r)] for r in range(len(self.inst.reservataires))]

    def chosen(self, solver: cp_model.CpSolver) -> np.ndarray:
        """Indices of the triples set to 1 in the solver's current solution."""
        values = np.fromiter(
            (solver.boolean_value(v) for v in self.x), dtype=bool, count=len(self.x)
        )
        return np.flatnonzero(values)

    def orientation(self, solver: cp_model.CpSolver) -> dict[int, int]:
        """Réservataire index of each flux unit in the solver's current solution."""
        out: dict[int, int] = {}
        for (u, r), var in self.orient.items():
            if solver.boolean_value(var):
                out[u] = r
        return out
