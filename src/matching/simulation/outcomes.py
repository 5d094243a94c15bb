"""The year's indicators (issue 6): flux delivered, priority, social mix, filling, waiting.

Computed from the ledgers of a simulated year, on accepted allocations only (a refused offer is
not an allocation): year-end flux shares against the targets, priority rate per réservataire,
Q1-or-ANRU rate outside QPV (against the policy's target, 25 % by default; French EPCIs reached
15.5 % on average in 2019, DOMAIN B4 [K]), non-Q1 rate inside QPV (against the policy's target,
50 % by default), units filled, vacancy days, mean score allocated, waiting time of the
households housed (median and 90th percentile), and the share of the households still waiting
that are past the abnormally long delay. `flat_kpis` turns them into the
``(kpi, value)`` rows of the comparison table.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from matching.facts import derive_facts, seniority_months
from matching.kpis import mixity_targets
from matching.policy.quotas import shortfall
from matching.simulation.offers import ALREADY_HOUSED

if TYPE_CHECKING:
    from matching.simulation.inputs import YearData
    from matching.simulation.state import SimulationState

Q1_REFERENCE_2019 = 0.155
"""Share of allocations outside QPV to Q1 households in French EPCIs, 2019 (Ancols, DOMAIN B4)."""

DAYS_PER_MONTH = 365.25 / 12


def _rate(counted: int, base: int) -> float | None:
    return round(counted / base, 4) if base else None


def _quantile(values: np.ndarray, q: float) -> float | None:
    return round(float(np.quantile(values, q)), 2) if len(values) else None


def vacancy_days(
    unit_ids: pd.Series,
    released_on: pd.Series,
    let: np.ndarray,
    offers: pd.DataFrame,
    end: dt.date,
    answer_delay_days: int,
) -> np.ndarray:
    """Days each unit stayed vacant: from its release to the offer its household accepted.

    A round makes its offers from its date, one candidate after another: each refusal costs the
    answer delay before the next offer; a unit refused in one round is offered again at the
    next round's date, or when its last answer comes if that is later (weekly rounds, 10-day
    answers). A unit still vacant counts until the last round's date (or its last answer).

    Why not "release to the letting round, plus the delay per refusal": a refusal of an earlier
    round was counted twice, in the weeks to the next round and again as its answer delay; the
    mean could then pass the days in the year (360 days with every offer refused).
    """
    delay = np.timedelta64(answer_delay_days, "D")
    free = dict(zip(unit_ids, released_on.to_numpy(dtype="datetime64[ns]"), strict=True))
    refused = (offers["outcome"] == "refused").to_numpy()
    per_round = (
        pd.DataFrame(
            {
                "unit_id": offers["unit_id"].astype(str),
                "round": offers["round"],
                "on": pd.to_datetime(offers["round_date"]),
                "refused": refused,
            }
        )
        .groupby(["round", "unit_id"], sort=True)
        .agg(on=("on", "first"), refused=("refused", "sum"))
    )
    for (_, unit), on, n in zip(
        per_round.index, per_round["on"].to_numpy(), per_round["refused"].to_numpy(), strict=True
    ):
        free[unit] = max(free[unit], on) + n * delay
    until = np.array([free[u] for u in unit_ids], dtype="datetime64[ns]")
    until = np.where(let, until, np.maximum(until, np.datetime64(end, "ns")))
    start = released_on.to_numpy(dtype="datetime64[ns]")
    return np.asarray((until - start).astype("timedelta64[D]").astype(np.int64))


def year_kpis(data: YearData, state: SimulationState, end: dt.date) -> dict[str, Any]:
    """Indicators of the year up to ``end`` (the last round's date); plain JSON-ready data."""
    policy, year, settings = data.policy, state.year, data.settings
    alloc = state.allocations
    units = data.units.set_index(data.units["unit_id"].astype(str))
    demands = data.demands.set_index(data.demands["demand_id"].astype(str))
    a_units = units.loc[alloc["unit_id"]]
    a_demands = demands.loc[alloc["demand_id"]].reset_index(drop=True)
    facts = derive_facts(a_demands, policy, end)
    qpv = a_units["qpv"].to_numpy(dtype=bool)
    q1 = facts["q1"].to_numpy(dtype=bool)
    q1a = facts["q1_or_anru"].to_numpy(dtype=bool)
    priority = facts["priority"].to_numpy(dtype=bool)
    res = alloc["reservataire"].to_numpy(dtype=object)

    # Units: filled, vacancy days (release to the accepted offer; a unit still vacant counts
    # until the last round's date, or its last refusal's answer when that is later).
    uled = state.units
    released = uled["status"] != "not_released"
    days = vacancy_days(
        data.units["unit_id"].astype(str),
        pd.to_datetime(data.units["released_on"]),
        (uled["status"] == "allocated").to_numpy(),
        state.offers,
        end,
        settings.answer_delay_days,
    )
    vac = days[released.to_numpy()]

    # Demands: waiting time of those housed, and who is past the abnormally long delay.
    filed = pd.to_datetime(a_demands["filed_on"]).to_numpy()
    housed_on = pd.to_datetime(alloc["round_date"]).to_numpy()
    waiting = (housed_on - filed).astype("timedelta64[D]").astype(np.int64) / DAYS_PER_MONTH
    dled = state.demands
    waiting_now = (dled["status"] == "carried").to_numpy()
    months_now = seniority_months(data.demands["filed_on"][waiting_now], end)
    stock = pd.to_datetime(data.demands["filed_on"]) <= pd.Timestamp(dt.date(data.year, 1, 1))

    shares = policy.shares()
    flux: dict[str, Any] = {"units": year.flux_units}
    for r in policy.reservataires:
        n = year.oriented.get(r.id, 0)
        flux[r.id] = {
            "target_share": round(shares[r.id], 4),
            "oriented": n,
            "share": _rate(n, year.flux_units),
        }
    prio: dict[str, Any] = {}
    for rid in policy.reservataire_ids():
        mine = res == rid
        prio[rid] = {
            "allocated": int(mine.sum()),
            "priority": int((mine & priority).sum()),
            "rate": _rate(int((mine & priority).sum()), int(mine.sum())),
        }
    quotas: dict[str, Any] = {}
    for rule in policy.quotas.rules:
        for group in sorted(year.tallies.get(rule.id, {})) or [""]:
            t = year.tally(rule.id, group)
            key = rule.id if group == "" else f"{rule.id}[{group}]"
            quotas[key] = {
                "base": t.base,
                "counted": t.counted,
                "rate": _rate(t.counted, t.base),
                "target": rule.target,
                "shortfall": shortfall(rule, t),
            }
    n_out, n_in = int((~qpv).sum()), int(qpv.sum())
    q1_target, non_q1_target = mixity_targets(policy)
    scores = alloc["score"].to_numpy(dtype=np.float64)
    return {
        "rounds": state.round,
        "end": end.isoformat(),
        "units": {
            "released": int(released.sum()),
            "allocated": int((uled["status"] == "allocated").sum()),
            "carried": int((uled["status"] == "carried").sum()),
            "returned_to_landlord": int((uled["returned_on"] != "").sum()),
            "fill_rate": _rate(int((uled["status"] == "allocated").sum()), int(released.sum())),
            "vacancy_days_mean": round(float(vac.mean()), 2) if len(vac) else None,
            "vacancy_days_total": int(vac.sum()),
        },
        "demands": {
            "stock_1_january": int(stock.sum()),
            "arrivals": int((~stock & (dled["status"] != "not_filed")).sum()),
            "allocated": int((dled["status"] == "allocated").sum()),
            "lapsed": int((dled["status"] == "lapsed").sum()),
            "carried": int(waiting_now.sum()),
            # offers made: a candidate passed over (already housed that round) got none
            "offers": int((state.offers["outcome"] != ALREADY_HOUSED).sum()),
            "passed_over": int((state.offers["outcome"] == ALREADY_HOUSED).sum()),
            "refusals": int((state.offers["outcome"] == "refused").sum()),
        },
        "flux": flux,
        "priority_rate": prio,
        "q1_rate_outside_qpv": {
            "allocations": n_out,
            "q1_or_anru": int((~qpv & q1a).sum()),
            "rate": _rate(int((~qpv & q1a).sum()), n_out),
            "target": q1_target,
            "reference_2019": Q1_REFERENCE_2019,
        },
        "non_q1_rate_inside_qpv": {
            "allocations": n_in,
            "non_q1": int((qpv & ~q1).sum()),
            "rate": _rate(int((qpv & ~q1).sum()), n_in),
            "target": non_q1_target,
        },
        "mean_score_allocated": round(float(scores.mean()), 2) if len(scores) else None,
        "waiting_months": {"median": _quantile(waiting, 0.5), "p90": _quantile(waiting, 0.9)},
        "past_abnormal_delay": {
            "months": settings.abnormally_long_months,
            "waiting": int(waiting_now.sum()),
            "share": _rate(
                int((months_now > settings.abnormally_long_months).sum()), int(waiting_now.sum())
            ),
        },
        "quotas": quotas,
    }


def flat_kpis(kpis: dict[str, Any]) -> list[tuple[str, float | None]]:
    """The comparison's indicators as ``(kpi, value)`` rows, in a fixed order."""
    rows: list[tuple[str, float | None]] = []
    for r, f in kpis["flux"].items():
        if isinstance(f, dict):
            rows.append((f"flux_share.{r}", f["share"]))
            rows.append((f"flux_target.{r}", f["target_share"]))
    for r, p in kpis["priority_rate"].items():
        rows.append((f"priority_rate.{r}", p["rate"]))
    u, d = kpis["units"], kpis["demands"]
    rows += [
        ("q1_rate_outside_qpv", kpis["q1_rate_outside_qpv"]["rate"]),
        ("non_q1_rate_inside_qpv", kpis["non_q1_rate_inside_qpv"]["rate"]),
        ("units_filled", u["allocated"]),
        ("fill_rate", u["fill_rate"]),
        ("vacancy_days_mean", u["vacancy_days_mean"]),
        ("mean_score_allocated", kpis["mean_score_allocated"]),
        ("waiting_months_median", kpis["waiting_months"]["median"]),
        ("waiting_months_p90", kpis["waiting_months"]["p90"]),
        ("past_abnormal_delay_share", kpis["past_abnormal_delay"]["share"]),
        ("refusals", d["refusals"]),
        ("lapsed", d["lapsed"]),
        ("quota_shortfall_total", sum(q["shortfall"] for q in kpis["quotas"].values())),
    ]
    return rows
