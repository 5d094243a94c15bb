"""One round of the simulated year: stock, units, solves, offers and booking (issue 6).

`play_round` runs the steps of a round on the state (docs/simulation.md, "One round, step by
step"): new filings enter and unrenewed demands lapse; released units become vacant and overdue
oriented units return to the landlord; the new units are solved with the year so far, then the
carried units of each réservataire pinned to it, then the landlord's; each allocated unit is
offered down its shortlist; accepted allocations are re-checked and counted in the year so far,
and the ledgers record every outcome with its reason.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import numpy as np
import pandas as pd

from matching import checker
from matching.exceptions import CheckFailedError, InfeasibleError
from matching.facts import derive_facts
from matching.flux import YearSoFar
from matching.params import SolveParams
from matching.policy.model import Policy
from matching.result import Result
from matching.round import canonical_tables
from matching.simulation import accounts
from matching.simulation.adapters import (
    Allocator,
    Shortlister,
    household_order,
)
from matching.simulation.arrivals import filed_in
from matching.simulation.inputs import YearData
from matching.simulation.lapse import lapsing
from matching.simulation.offers import ACCEPTED, ALREADY_HOUSED, REFUSED, make_offers
from matching.simulation.periods import Period
from matching.simulation.refusals import refusal_draws, refusal_probability
from matching.simulation.state import (
    ALLOCATION_LEDGER,
    OFFER_LEDGER,
    SimulationState,
    empty,
    typed,
)
from matching.types import Bound

MAIN = "main"
"""Name of the solve of a round's new units (the others are ``carried:<réservataire>`` and
``landlord``: the landlord's own carried units and those returned to it)."""


def _allocate(
    allocator: Allocator,
    units: pd.DataFrame,
    demands: pd.DataFrame,
    policy: Policy,
    params: SolveParams,
    year: YearSoFar,
    on: dt.date,
) -> tuple[Result, Policy, bool]:
    """Solve one group; when the hard quotas are infeasible, take the soft-mode result."""
    try:
        result = allocator.allocate(units, demands, policy, params, year_so_far=year, on=on)
    except InfeasibleError as exc:
        if isinstance(exc.soft_result, Result):
            return exc.soft_result, accounts.soft(policy), True
        raise
    if result.status == "INFEASIBLE" and result.soft_diagnosis is not None:
        return result.soft_diagnosis, accounts.soft(policy), True
    # A policy of matching.allocation falls back to soft mode itself and says so in its stats.
    fell_back = result.stats.get("quota_mode") in {"soft", "soft_fallback"}
    return result, policy, fell_back


def _audit_accepted(
    units: pd.DataFrame,
    demands: pd.DataFrame,
    policy: Policy,
    accepted: pd.DataFrame,
    orientation: pd.DataFrame,
    year: YearSoFar,
    on: dt.date,
) -> None:
    """Re-judge the accepted allocations: any breach other than a quota shortfall is a bug.

    Refusals can leave a ratio quota short (a substitute or an empty unit changes the counts);
    that is reported in the year's KPIs, not an error. Eligibility, pools, orientation and
    bands must hold whatever the households answered.
    """
    with canonical_tables(units, demands):  # cut from the year's tables, validated once
        found = checker.check(
            units, demands, accounts.soft(policy), accepted, year, orientation=orientation, on=on
        )
    if found:
        raise CheckFailedError(
            "accepted allocations break the rules:\n" + checker.render_violations(found[:20])
        )


def _mapping(frame: pd.DataFrame, key: str, value: str) -> dict[str, str]:
    """A two-column lookup ``key -> value`` of a table."""
    return dict(zip(frame[key].astype(str), frame[value].astype(str), strict=True))


def _rates(policy: Policy, year: YearSoFar) -> dict[str, float | None]:
    """Each quota rule's rate over the year so far; a scoped rule's worst group's.

    A rule with a ``scope`` holds in each of its groups (a landlord, a commune): its rate is
    that of the group nearest to breaking it, the lowest for a floor and the highest for a
    ceiling. Why: its tallies have no "" group, so the rate read ``-`` in every round, as if
    no allocation counted (`kpis.json` gives every group's at the year's end).
    """
    out: dict[str, float | None] = {}
    for rule in policy.quotas.rules:
        groups = year.tallies.get(rule.id, {}) if rule.scope is not None else {}
        tallies = list(groups.values()) if groups else [year.tally(rule.id, "")]
        rates = [t.counted / t.base for t in tallies if t.base]
        worst = (
            max(rates, default=None) if rule.bound == Bound.CEILING else min(rates, default=None)
        )
        out[rule.id] = round(worst, 4) if worst is not None else None
    return out


class _Round:
    """One round's work on the state (a helper object, so that the steps stay small)."""

    def __init__(
        self,
        data: YearData,
        state: SimulationState,
        period: Period,
        allocator: Allocator,
        shortlister: Shortlister,
    ) -> None:
        self.data, self.state, self.period = data, state, period
        self.allocator, self.shortlister = allocator, shortlister
        self.on = period.end
        self.housed: set[str] = set()
        self.allocations: list[pd.DataFrame] = []
        self.offers: list[pd.DataFrame] = []
        self.shortlists: list[pd.DataFrame] = []
        self.solves: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}
        self.seconds: dict[str, float] = {"allocate": 0.0, "shortlist": 0.0, "audit": 0.0}

    # -- stock ------------------------------------------------------------------------------

    def enter_and_lapse(self) -> None:
        """New filings join the stock; demands reaching an unrenewed anniversary lapse."""
        d, led = self.data.demands, self.state.demands
        on = np.datetime64(self.on.isoformat(), "ns")
        filed = pd.to_datetime(d["filed_on"]).to_numpy() <= on
        newly = filed & (led["status"].to_numpy() == "not_filed")
        led.loc[newly, "status"] = "carried"
        pending = led["status"].to_numpy() == "carried"
        s = self.data.settings
        lapse = pending & lapsing(
            d["demand_id"], d["filed_on"], self.period, s.renewal_rate, self.data.seed
        )
        led.loc[lapse, ["status", "on", "reason"]] = ["lapsed", self.on.isoformat(), "not_renewed"]
        led.loc[lapse, "round"] = self.period.index
        # Arrivals: filed after 1 January (the stock of 1 January enters the first round too).
        after_stock = pd.to_datetime(d["filed_on"]).to_numpy() > np.datetime64(
            f"{self.data.year}-01-01", "ns"
        )
        self.counts["arrivals"] = int(
            (filed_in(d["filed_on"], self.period) & newly & after_stock).sum()
        )
        self.counts["lapsed"] = int(lapse.sum())
        self.counts["pending"] = int((pending & ~lapse).sum())

    def demands_now(self) -> pd.DataFrame:
        """The pending demands not housed this round, canonical, with their refusals so far."""
        led = self.state.demands
        keep = (led["status"].to_numpy() == "carried") & ~led["demand_id"].isin(self.housed)
        frame = self.data.demands[keep].copy()
        frame["refusals"] = led.loc[keep, "refusals"].to_numpy(dtype=np.int64)
        return frame.reset_index(drop=True)

    # -- units ------------------------------------------------------------------------------

    def release_and_return(self) -> None:
        """Units released in the period become vacant; overdue oriented units go back."""
        u, led = self.data.units, self.state.units
        released = pd.to_datetime(u["released_on"]).to_numpy()
        start = np.datetime64(self.period.start.isoformat(), "ns")
        end = np.datetime64(self.on.isoformat(), "ns")
        new = (released >= start) & (released <= end) & (led["status"] == "not_released")
        led.loc[new, "status"] = "carried"
        self.counts["released"] = int(new.sum())
        rule = self.data.policy.return_to_landlord
        landlord = self.data.policy.flux.landlord
        oriented_on = pd.to_datetime(led["oriented_on"].replace("", None)).to_numpy()
        due_on = np.datetime64(self.on.isoformat(), "ns") - np.timedelta64(rule.delay_days, "D")
        overdue = (
            (led["status"] == "carried").to_numpy()
            & (led["oriented_to"] != "").to_numpy()
            & (led["oriented_to"] != landlord).to_numpy()
            & (led["returned_on"] == "").to_numpy()
            & (oriented_on <= due_on)
        )
        led.loc[overdue, "returned_on"] = self.on.isoformat()
        self.counts["returned"] = int(overdue.sum())
        if rule.counted_to == "landlord":
            for res, n in led.loc[overdue, "oriented_to"].value_counts().sort_index().items():
                self.state.year = accounts.uncount(self.state.year, str(res), int(n), landlord)

    def groups(self) -> list[tuple[str, np.ndarray, Policy, bool]]:
        """The round's solves: (name, unit mask, policy, counts in the flux), in order."""
        led, policy = self.state.units, self.data.policy
        vacant = (led["status"] == "carried").to_numpy()
        oriented = led["oriented_to"].to_numpy(dtype=object)
        returned = (led["returned_on"] != "").to_numpy()
        landlord = policy.flux.landlord
        out: list[tuple[str, np.ndarray, Policy, bool]] = [
            (MAIN, vacant & (oriented == ""), policy, True)
        ]
        for r in policy.reservataire_ids():
            if r != landlord:
                mask = vacant & (oriented == r) & ~returned
                out.append((f"carried:{r}", mask, accounts.pinned_policy(policy, r), False))
        back = vacant & (oriented != "") & ((oriented == landlord) | returned)
        out.append(("landlord", back, accounts.pinned_policy(policy, landlord), False))
        self.counts["vacant"] = int(vacant.sum())
        return [g for g in out if g[1].any()]

    # -- one solve --------------------------------------------------------------------------

    def solve(self, name: str, mask: np.ndarray, policy: Policy, counts_flux: bool) -> None:
        """Allocate one group, offer down the shortlists, and book what was accepted."""
        data, st = self.data, self.state
        units = data.units[mask].reset_index(drop=True)
        demands = self.demands_now()
        year = st.year if counts_flux else accounts.pinned_year(st.year)
        clock = time.perf_counter()
        # both tables are cut from the year's, validated once (`simulation.inputs.canonical`)
        with canonical_tables(units, demands):
            result, used, softened = _allocate(
                self.allocator, units, demands, policy, data.params, year, self.on
            )
        record: dict[str, Any] = {
            "solve": name, "status": result.status, "soft": softened,
            "quota_mode": str(result.stats.get("quota_mode", policy.quotas.mode.value)),
            "units": len(units),
            "proposed": len(result.allocation),
            "shortfalls": {k: int(v) for k, v in sorted(result.shortfalls.items()) if v},
        }  # fmt: skip
        if result.stats.get("stopped_by_clock"):
            # a search stopped at a wall-clock limit: the year may differ on another run
            record["stopped_by_clock"] = True
        self.solves.append(record)
        if result.status not in {"OPTIMAL", "FEASIBLE"}:
            st.units.loc[mask, "reason"] = "no_solution"
            record["accepted"] = 0
            return
        ids = st.units["unit_id"]
        if counts_flux and len(result.orientation):
            where = ids.isin(result.orientation["unit_id"])
            res_of = _mapping(result.orientation, "unit_id", "reservataire")
            st.units.loc[where, "oriented_to"] = st.units.loc[where, "unit_id"].map(res_of)
            st.units.loc[where, "oriented_on"] = self.on.isoformat()
            st.year = accounts.add_orientations(st.year, result.orientation)
        size = data.settings.shortlist_size
        self.seconds["allocate"] += time.perf_counter() - clock
        clock = time.perf_counter()
        with canonical_tables(units, demands):
            order = household_order(self.allocator)
            ranked = {} if order is None else {"ranking": order}  # a custom shortlister may not
            shortlist = self.shortlister(
                units, demands, used, result, year_so_far=year, on=self.on, size=size, **ranked
            )
        p = refusal_probability(units, data.settings.refusals)
        draws = refusal_draws(data.seed, self.period.index, units["unit_id"], size)
        unit_ids = units["unit_id"].astype(str).tolist()
        self.seconds["shortlist"] += time.perf_counter() - clock
        offer_round = make_offers(
            shortlist,
            dict(zip(unit_ids, p.tolist(), strict=True)),
            dict(zip(unit_ids, draws, strict=True)),
            self.housed,
        )
        res_of_unit = _mapping(result.allocation, "unit_id", "reservataire")
        accepted = offer_round.accepted.assign(
            reservataire=offer_round.accepted["unit_id"].map(res_of_unit).fillna("").astype(str)
        )
        clock = time.perf_counter()
        _audit_accepted(units, demands, used, accepted, result.orientation, year, self.on)
        self.seconds["audit"] += time.perf_counter() - clock
        facts = derive_facts(
            demands[demands["demand_id"].isin(accepted["demand_id"])].reset_index(drop=True),
            data.policy,
            self.on,
        )
        st.year = accounts.add_allocations(st.year, data.policy, units, facts, accepted)
        self._book(name, result, shortlist, offer_round.offers, accepted)
        record["accepted"] = len(accepted)

    def _book(
        self,
        name: str,
        result: Result,
        shortlist: pd.DataFrame,
        offers: pd.DataFrame,
        accepted: pd.DataFrame,
    ) -> None:
        """Write the solve's outcome into the ledgers."""
        st, k, on = self.state, self.period.index, self.on.isoformat()
        uled, dled = st.units, st.demands
        upos = pd.Index(uled["unit_id"])
        dpos = pd.Index(dled["demand_id"])
        # Units: allocated, or the reason they wait for the next round.
        waiting = result.unallocated_units
        uled.loc[upos.get_indexer(waiting["unit_id"]), "reason"] = waiting["reason"].to_numpy()
        exhausted = sorted(set(result.allocation["unit_id"]) - set(accepted["unit_id"]))
        uled.loc[upos.get_indexer(exhausted), "reason"] = "shortlist_exhausted"
        refused = offers[offers["outcome"] == REFUSED]
        if len(refused):
            per_unit = refused["unit_id"].value_counts()
            rows = upos.get_indexer(per_unit.index)
            uled.loc[rows, "refused_offers"] += per_unit.to_numpy()
            per_demand = refused["demand_id"].value_counts()
            rows = dpos.get_indexer(per_demand.index)
            dled.loc[rows, "refusals"] += per_demand.to_numpy()
        if len(accepted):
            rows = upos.get_indexer(accepted["unit_id"])
            uled.loc[rows, "status"] = "allocated"
            uled.loc[rows, "round"] = k
            uled.loc[rows, "demand_id"] = accepted["demand_id"].to_numpy()
            uled.loc[rows, "rank"] = accepted["rank"].to_numpy()
            uled.loc[rows, "reason"] = "accepted"
            rows = dpos.get_indexer(accepted["demand_id"])
            dled.loc[rows, "status"] = "allocated"
            dled.loc[rows, "round"] = k
            dled.loc[rows, "on"] = on
            dled.loc[rows, "unit_id"] = accepted["unit_id"].to_numpy()
            dled.loc[rows, "reason"] = "accepted_offer"
        n = len(accepted)
        self.allocations.append(
            typed(
                pd.DataFrame(
                    {
                        "round": [k] * n, "round_date": [on] * n,
                        "unit_id": accepted["unit_id"], "demand_id": accepted["demand_id"],
                        "reservataire": accepted["reservataire"], "score": accepted["score"],
                        "rank": accepted["rank"], "solve": [name] * n,
                    }
                ),
                ALLOCATION_LEDGER,
            )
        )  # fmt: skip
        m = len(offers)
        self.offers.append(typed(offers.assign(round=[k] * m, round_date=[on] * m), OFFER_LEDGER))
        self.shortlists.append(shortlist.assign(solve=name))

    # -- the round --------------------------------------------------------------------------

    def run(self) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
        """Play the round; return its summary and its tables (allocations, offers, lists)."""
        self.enter_and_lapse()
        self.release_and_return()
        for name, mask, policy, counts_flux in self.groups():
            self.solve(name, mask, policy, counts_flux)
        st = self.state
        allocations = pd.concat([empty(ALLOCATION_LEDGER), *self.allocations], ignore_index=True)
        offers = pd.concat([empty(OFFER_LEDGER), *self.offers], ignore_index=True)
        st.allocations = typed(
            pd.concat([st.allocations, allocations], ignore_index=True), ALLOCATION_LEDGER
        )
        st.offers = typed(pd.concat([st.offers, offers], ignore_index=True), OFFER_LEDGER)
        # a candidate passed over (already housed this round) was made no offer and drew no
        # answer: counted apart, so that refusals / offers is the refusal rate (it read 25 %
        # for a probability of 0.3 on the Caen la Mer year, 1,023 of its 6,650 "offers")
        passed_over = int((offers["outcome"] == ALREADY_HOUSED).sum())
        self.counts["offers"] = len(offers) - passed_over
        self.counts["passed_over"] = passed_over
        self.counts["refusals"] = int((offers["outcome"] == REFUSED).sum())
        self.counts["allocated"] = int((offers["outcome"] == ACCEPTED).sum())
        self.counts["allocated_year"] = len(st.allocations)
        self.counts["carried"] = int((st.units["status"] == "carried").sum())
        self.counts["soft_solves"] = sum(1 for s in self.solves if s["soft"])
        summary = {
            "round": self.period.index,
            "date": self.on.isoformat(),
            "counts": dict(sorted(self.counts.items())),
            "rates": _rates(self.data.policy, st.year),
            "solves": self.solves,
        }
        lists = (
            pd.concat(self.shortlists, ignore_index=True)
            if self.shortlists
            else pd.DataFrame(columns=["unit_id", "rank", "demand_id", "score", "reason", "solve"])
        )
        return summary, {"allocations": allocations, "offers": offers, "shortlists": lists}


def play_round(
    data: YearData,
    state: SimulationState,
    period: Period,
    allocator: Allocator,
    shortlister: Shortlister,
) -> tuple[dict[str, Any], dict[str, pd.DataFrame], dict[str, float]]:
    """Play one round on ``state`` (changed in place).

    Returns
    -------
    tuple
        The round's summary (``round.json``), its tables (allocations, offers, shortlists) and
        the seconds spent allocating, shortlisting and auditing.
    """
    work = _Round(data, state, period, allocator, shortlister)
    summary, tables = work.run()
    return summary, tables, work.seconds
