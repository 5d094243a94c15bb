"""The inputs of a simulated year: the scenario's whole year and the demands filed during it.

`year_data` loads (or generates) every unit released in the scenario's year and the demands
pending on 1 January, then draws the demands filed during the year (`arrivals`), into one
`YearData` that every allocation policy of a comparison shares.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from matching.exceptions import PolicyError
from matching.frames import in_id_order
from matching.io import validate_demands, validate_units
from matching.limits import check_seeds
from matching.params import SolveParams
from matching.policy.model import Policy
from matching.scenario import RoundSpec, Scenario, load_round, refuse_units_before_year
from matching.simulation.arrivals import arrivals_count, year_arrivals
from matching.simulation.config import SimulationSettings


@dataclass(frozen=True)
class YearData:
    """The inputs of a simulated year.

    Attributes
    ----------
    units
        Every unit released in the year (canonical table, `matching.frames`).
    demands
        The demands pending on 1 January and those filed later (generated arrivals included),
        canonical table; each enters the round of its filing date.
    policy
        The allocation rules (DOMAIN Part A), including `ReturnToLandlord`.
    year, seed
        The simulated year, and the seed of the data and of every draw.
    params
        Solver settings of every round.
    settings
        The simulation settings (cadence, allocation policy, arrivals, renewals, refusals).
    """

    units: pd.DataFrame
    demands: pd.DataFrame
    policy: Policy
    year: int
    seed: int
    params: SolveParams
    settings: SimulationSettings

    def fingerprint_parts(self) -> dict[str, Any]:
        """What the fingerprint digests, part by part, for ``--resume`` to say what differs.

        The settings, year and seed as they are (small, and worth naming in a message: "seed 2,
        the checkpoint's 1"); the policy and each table by a digest.
        """
        settings = self.settings.model_dump(mode="json", exclude={"last_round"})
        parts = {
            "simulation": settings,
            "year": self.year,
            "seed": self.seed,
            "solver": self.params.model_dump(mode="json"),
            "policy": _short(self.policy.model_dump_json().encode("utf-8")),
            "units": table_digest(self.units).hex()[:16],
            "demands": table_digest(self.demands).hex()[:16],
        }
        return dict(json.loads(json.dumps(parts)))  # as read back from state.json (text keys)

    def fingerprint(self) -> str:
        """Digest of the inputs and settings, so that ``--resume`` refuses another run's state.

        The tables count by their contents, not only their ids: a rent or a QPV flag edited in
        the units file between a stopped run and its ``--resume`` would otherwise give a year
        made of both versions of the data. ``last_round`` is left out: a run stopped after a few
        rounds may be resumed to the end.
        """
        digest = hashlib.sha256()
        for part in (
            self.settings.model_dump_json(exclude={"last_round"}),
            self.params.model_dump_json(),
            self.policy.model_dump_json(),
            str(self.year),
            str(self.seed),
        ):
            digest.update(part.encode("utf-8") + b"\n")
        digest.update(table_digest(self.units))
        digest.update(table_digest(self.demands))
        return digest.hexdigest()[:16]


def _short(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


INPUT_NAMES = {
    "year": "the year",
    "seed": "the seed (--seed)",
    "policy": "the policy",
    "units": "the units (the file's values, or those generated from the seed)",
    "demands": "the demands (the file's values, or the arrivals drawn from the seed)",
}
"""How a message names each part of `YearData.fingerprint_parts`."""


def inputs_changed(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two runs' `YearData.fingerprint_parts`, in words.

    A simulation setting by its key and both values; the year and seed by both values; the
    solver settings, policy and tables by their names only (their digests say nothing).
    """
    said: list[str] = []
    for part in ("simulation", "solver"):
        old, new = before.get(part), now.get(part)
        if isinstance(old, dict) and isinstance(new, dict):
            for key in sorted(set(old) | set(new)):
                if old.get(key) != new.get(key):
                    said.append(
                        f"{part}.{key} {new.get(key)!r} (the checkpoint's {old.get(key)!r})"
                    )
        elif old != new:
            said.append(f"the {part} settings")
    for key, name in INPUT_NAMES.items():
        if before.get(key) == now.get(key):
            continue
        if key in ("year", "seed"):
            said.append(f"{name} {now.get(key)} (the checkpoint's {before.get(key)})")
        else:
            said.append(name)
    return said


def canonical(data: YearData) -> YearData:
    """The year with its tables validated once (`matching.io`), in canonical form.

    Why: every round's tables are cut from these, and its solves take them as validated
    (`matching.round.canonical_tables`) instead of validating them again (1.1 s of the Caen la
    Mer year's 16 s); a bad row of a year built by a library caller is refused before the
    first round, naming its row, not at the round it enters. A unit released outside the year
    or a demand filed after it is refused too: it would be in no round (listed
    ``not_released`` or ``not_filed`` at the year's end, counted nowhere); a unit released or a
    demand filed after a round's date is simply not in that round's tables. The rows are put
    in the order of their ids (`matching.frames.in_id_order`), as a round's are: the year's
    ledgers (``units.csv``, ``demands.csv``, the checkpoint) and the fingerprint follow them,
    so the same data listed in another order gives the same files and resumes the same run.
    """
    year_end = dt.date(data.year, 12, 31)  # a date after the year would be in no round
    units = validate_units(data.units, "units", as_of=year_end)
    refuse_units_before_year(units, "units", data.year)
    demands = validate_demands(data.demands, "demands", as_of=year_end)
    return dataclasses.replace(
        data, units=in_id_order(units, "unit_id"), demands=in_id_order(demands, "demand_id")
    )


def table_digest(frame: pd.DataFrame) -> bytes:
    """SHA-256 of a canonical table (`matching.frames`): its names, dtypes and every value.

    Numbers, booleans and dates by their bytes, anything else (text, tuples of text, None) by
    its ``repr``, the same in every process: about 20 ms for the 27,200 demands of the Caen la
    Mer year, and independent of pandas' own hashing.
    """
    digest = hashlib.sha256(f"{len(frame)} rows\n".encode())
    for name in frame.columns:
        column = frame[name]
        digest.update(f"{name}:{column.dtype}\n".encode())
        if column.dtype.kind in "biufmM":
            digest.update(np.ascontiguousarray(column.to_numpy()).tobytes())
        else:
            digest.update("\x1e".join(map(repr, column.tolist())).encode("utf-8"))
        digest.update(b"\n")
    return digest.digest()


CLASHES_SHOWN = 3
"""How many clashing demand ids `clash_message` names (then how many more)."""


def clash_message(where: str, clash: list[str], year: int, n_new: int) -> str:
    """Why the data's demands and the year's generated arrivals cannot be told apart.

    Why a message of its own: "the demands filed during the year reuse ids of the data's
    demands" named no file, no id and no way out, and the arrivals' ids (``N<year>-NNNNNNN``,
    `year_arrivals`) are the simulation's, not in any file the planner wrote.
    """
    shown = ", ".join(f"'{i}'" for i in clash[:CLASHES_SHOWN])
    more = len(clash) - CLASHES_SHOWN
    rest = f" and {more} more" if more > 0 else ""
    return (
        f"{where}: demand_id {shown}{rest}: also the id of a demand filed during the year: the "
        f"simulation's generated arrivals have ids N{year}-0000001 to N{year}-{n_new:07d} "
        f"(arrivals_per_year: {n_new}); rename the data's demands, or set "
        "simulation.arrivals_per_year: 0 to generate none"
    )


def year_data(
    scenario: Scenario,
    *,
    seed: int | None = None,
    settings: SimulationSettings | None = None,
) -> YearData:
    """Load (or generate) a scenario's whole year and draw the demands filed during it.

    The scenario's ``round`` and ``year_so_far`` are ignored: the year starts on 1 January
    with nothing done. ``seed`` replaces the scenario's (data, draws and solver), for the
    seeds of a comparison; ``settings`` replaces its ``simulation:`` section.

    Raises
    ------
    PolicyError
        ``seed`` is outside ``[0, MAX_SEED]`` (`matching.limits`), or the data cannot be read.
    """
    sc = scenario
    if seed is not None:
        check_seeds(seed)  # the copy below is not validated: -1 failed in the generator
        sc = sc.model_copy(
            update={"seed": seed, "solver": sc.solver.model_copy(update={"seed": seed})}
        )
    settings = settings or sc.simulation or SimulationSettings()
    data = load_round(sc.model_copy(update={"round": RoundSpec(), "year_so_far": None}))
    stock = pd.to_datetime(data.demands["filed_on"]) <= pd.Timestamp(dt.date(sc.year, 1, 1))
    n_new = arrivals_count(settings, int(stock.sum()))
    demands = data.demands
    if n_new:
        new = year_arrivals(sc.territory, sc.year, sc.seed, n_new)
        clash = demands["demand_id"][demands["demand_id"].isin(new["demand_id"])].tolist()
        if clash:
            where = data.scenario.demands_path or sc.source or "demands"
            raise PolicyError(clash_message(str(where), clash, sc.year, n_new))
        demands = pd.concat([demands, new], ignore_index=True)
    return YearData(
        units=data.units,
        demands=demands,
        policy=data.policy,
        year=sc.year,
        seed=sc.seed,
        params=sc.solver,
        settings=settings,
    )
