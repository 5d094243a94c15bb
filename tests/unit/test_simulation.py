"""Tests of the simulated year (issue 6): flux carry-over, returns, resume, refusals, counts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.factories import demand, demands_of, unit, units_of

from matching import checker
from matching.eligibility import demand_pools
from matching.exceptions import DataError, InfeasibleError
from matching.facts import derive_facts
from matching.flux import YearSoFar
from matching.params import SolveParams
from matching.policy.loader import load_policy
from matching.policy.model import Policy
from matching.policy.scoring import score
from matching.result import Result
from matching.round import solve
from matching.simulation import accounts
from matching.simulation.config import RefusalSettings, SimulationSettings
from matching.simulation.engine import YearData, simulate

PARAMS = SolveParams(time_limit_s=5, num_workers=1)


def toy_policy(etat_share: float = 0.25, quotas: bool = False, **return_rule: Any) -> Policy:
    """The default policy cut down to two réservataires: etat (priority only) and the landlord."""
    data = load_policy("default-2026").model_dump()
    data["reservataires"] = [r for r in data["reservataires"] if r["id"] in ("etat", "bailleur")]
    data["reservataires"][0]["share"] = etat_share
    if not quotas:
        data["quotas"]["rules"] = []
    else:
        data["quotas"]["rules"] = [
            r for r in data["quotas"]["rules"] if "collectivite" not in r["id"]
            and "action_logement" not in r["id"]
        ]  # fmt: skip
    data["return_to_landlord"].update(return_rule)
    return Policy.model_validate(data)


def year(
    units: pd.DataFrame, demands: pd.DataFrame, policy: Policy, seed: int = 1, **settings: Any
) -> YearData:
    """A toy year: no arrivals, nobody lapses, nobody refuses unless the test says so."""
    base: dict[str, Any] = {
        "arrivals_per_year": 0, "renewal_rate": 1.0, "refusals": RefusalSettings(probability=0),
    }  # fmt: skip
    base.update(settings)
    return YearData(
        units=units,
        demands=demands,
        policy=policy,
        year=2026,
        seed=seed,
        params=PARAMS,
        settings=SimulationSettings(**base),
    )


def stub_shortlists(
    units: pd.DataFrame,
    demands: pd.DataFrame,
    policy: Policy,
    result: Result,
    *,
    year_so_far: YearSoFar | None,
    on: dt.date,
    size: int = 3,
) -> pd.DataFrame:
    """Stand-in for matching.shortlist: the allocated household, then the best-scored others.

    Others are taken from the unit's réservataire pool (toy units: everyone is eligible).
    """
    facts = derive_facts(demands, policy, on)
    scores = score(facts, policy.cotation).total.to_numpy()
    pools = demand_pools(facts, policy)
    ids = policy.reservataire_ids()
    free = ~demands["demand_id"].isin(result.allocation["demand_id"]).to_numpy()
    order = np.lexsort((demands["demand_id"].to_numpy(), -scores))
    rows = []
    for u, d, r, s in result.allocation[
        ["unit_id", "demand_id", "reservataire", "score"]
    ].itertuples(index=False):
        rows.append((u, 1, d, s, "allocated"))
        bit = ids.index(r) if r else None
        others = [i for i in order if free[i] and (bit is None or (pools[i] >> bit) & 1)]
        for rank, i in enumerate(others[: size - 1], start=2):
            rows.append((u, rank, demands["demand_id"].iloc[i], int(scores[i]), "substitute"))
    return pd.DataFrame(rows, columns=["unit_id", "rank", "demand_id", "score", "reason"])


class RoundSolve:
    """`optimal` as `matching.round.solve`: raises `InfeasibleError` (with the soft result)."""

    name = "optimal"

    def allocate(self, units, demands, policy, params, *, year_so_far, on):  # type: ignore[no-untyped-def]
        """Solve the round exactly."""
        return solve(units, demands, policy, params, year_so_far=year_so_far, on=on)


class RecordingSolve(RoundSolve):
    """`optimal` that keeps every round it solved, with the policy actually used (hard or soft)."""

    def __init__(self) -> None:
        self.calls: list[tuple[pd.DataFrame, pd.DataFrame, Policy, YearSoFar, dt.date, Result]] = []

    def allocate(self, units, demands, policy, params, *, year_so_far, on):  # type: ignore[no-untyped-def]
        try:
            result = super().allocate(
                units, demands, policy, params, year_so_far=year_so_far, on=on
            )
            used = policy
        except InfeasibleError as exc:
            result, used = exc.soft_result, accounts.soft(policy)
            self.calls.append((units, demands, used, year_so_far or YearSoFar(), on, result))
            raise
        self.calls.append((units, demands, used, year_so_far or YearSoFar(), on, result))
        return result


# --- The 3-round toy year -----------------------------------------------------------------------

TOY_UNITS = units_of(
    unit("U1", released_on=dt.date(2026, 1, 10)),
    unit("U2", released_on=dt.date(2026, 2, 10)),
    unit("U3", released_on=dt.date(2026, 3, 10)),
    unit("U4", released_on=dt.date(2026, 3, 12)),
)
TOY_DEMANDS = demands_of(
    # Four old, non-priority demands: at the Jan/Feb/Mar rounds about 108-110 months of seniority
    # + 20 (beyond 30 months) = 128-130 points.
    *[demand(f"D{i}", filed_on=dt.date(2017, i, 1)) for i in range(1, 5)],
    # One recent priority household: 1-3 months + 40 (L441-1 category) = 41-43 points.
    demand("P1", filed_on=dt.date(2025, 12, 1), priority_categories=("defavorise",)),
)


def test_flux_carry_over_changes_round_three(tmp_path: Path) -> None:
    """Three monthly rounds: the État's 25 % of the year's flux forces round 3 to orient to it."""
    # Round 1 (Jan): 1 flux unit; t_etat = 0.25 x 1 - 0 = 0.25 -> band [0, 1]. The best household
    #   (D1, 128 points) is in the landlord's pool only, so U1 is oriented to the bailleur.
    # Round 2 (Feb): 1 unit; flux so far 2: t_etat = 0.25 x 2 - 0 = 0.5 -> [0, 1] -> bailleur, D2.
    # Round 3 (Mar): 2 units; flux so far 4: t_etat = 0.25 x 4 - 0 = 1 -> band [1, 1]: one unit
    #   must go to the État, whose pool holds only P1 (43 points): U4 -> P1, U3 -> D3.
    result = simulate(
        year(TOY_UNITS, TOY_DEMANDS, toy_policy(), last_round=3), tmp_path,
        allocator=RoundSolve(), shortlister=stub_shortlists,
    )  # fmt: skip
    alloc = result.state.allocations
    got = list(alloc[["round", "demand_id", "reservataire"]].itertuples(index=False, name=None))
    assert got == [
        (1, "D1", "bailleur"), (2, "D2", "bailleur"), (3, "D3", "bailleur"), (3, "P1", "etat"),
    ]  # fmt: skip
    assert result.state.year.flux_units == 4
    assert result.state.year.oriented == {"bailleur": 3, "etat": 1}
    assert result.kpis["flux"]["etat"]["share"] == 0.25


def test_round_three_alone_orients_nothing_to_the_state() -> None:
    """Control: without the year so far, round 3's band is [0, 1] and P1 gets nothing."""
    # t_etat = 0.25 x 2 - 0 = 0.5 -> [0, 1]: the two best households (D1, D2) take both units.
    units = TOY_UNITS.iloc[2:].reset_index(drop=True)
    r = solve(units, TOY_DEMANDS, toy_policy(), PARAMS, on=dt.date(2026, 3, 31))
    assert set(r.allocation["reservataire"]) == {"bailleur"}
    assert "P1" not in set(r.allocation["demand_id"])


@pytest.mark.parametrize(
    ("counted_to", "etat_after", "landlord_after"), [("reservataire", 1, 1), ("landlord", 0, 2)]
)
def test_unfilled_unit_returns_to_the_landlord(
    tmp_path: Path, counted_to: str, etat_after: int, landlord_after: int
) -> None:
    """A unit the État cannot fill stays its own 30 days, then the landlord lets it (B2)."""
    # Round 1 (Jan 31): 2 flux units, etat share 0.5: t = 0.5 x 2 = 1 -> band [1, 1]; no priority
    #   household exists, so the État's unit stays empty (oriented 2026-01-31).
    # Round 2 (Feb 28): 28 days < 30: still the État's, still no candidate.
    # Round 3 (Mar 31): 59 days >= 30: returned to the landlord, which lets it to D3.
    units = units_of(
        unit("U1", released_on=dt.date(2026, 1, 5)), unit("U2", released_on=dt.date(2026, 1, 6))
    )
    demands = demands_of(*[demand(f"D{i}", filed_on=dt.date(2017, i, 1)) for i in range(1, 5)])
    policy = toy_policy(etat_share=0.5, counted_to=counted_to)
    result = simulate(
        year(units, demands, policy, last_round=3), tmp_path,
        allocator=RoundSolve(), shortlister=stub_shortlists,
    )  # fmt: skip
    led = result.state.units.set_index("unit_id")
    empty_one = led[led["oriented_to"] == "etat"].iloc[0]
    assert empty_one["returned_on"] == "2026-03-31"
    assert empty_one["status"] == "allocated" and empty_one["round"] == 3
    last = result.state.allocations.iloc[-1]
    assert (last["round"], last["reservataire"], last["solve"]) == (3, "bailleur", "landlord")
    assert result.state.year.oriented.get("etat", 0) == etat_after
    # counted to the landlord, the returned unit counts in its flux: the year's orientations
    # add up to its flux units either way (it used to count in nobody's)
    assert result.state.year.oriented.get("bailleur", 0) == landlord_after
    assert sum(result.state.year.oriented.values()) == result.state.year.flux_units == 2


# --- Refusals, resume, checker, counts ----------------------------------------------------------


def busy_year(seed: int = 1, probability: float = 0.5, **settings: Any) -> YearData:
    """Four months of two T2 units, 24 households (a third Q1, half priority), refusals, lapses.

    Half the offers are refused, and a demand reaching its anniversary lapses with probability 0.5.
    """
    units = units_of(*[
        unit(f"U{m}{k}", released_on=dt.date(2026, m, 3 + k), qpv=(k == 1))
        for m in range(1, 5) for k in range(2)
    ])  # fmt: skip
    demands = demands_of(*[
        demand(
            f"D{i:02d}", filed_on=dt.date(2015 + i % 10, 1 + i % 12, 1 + i),
            annual_income_eur=8000.0 if i % 3 == 0 else 15000.0,
            priority_categories=("defavorise",) if i % 4 < 2 else (),
            household_size=1 + i % 2, adults=1 + i % 2,
        )
        for i in range(24)
    ])  # fmt: skip
    base: dict[str, Any] = {
        "refusals": RefusalSettings(probability=probability), "renewal_rate": 0.5,
        "last_round": 4,
    }  # fmt: skip
    base.update(settings)
    return year(units, demands, toy_policy(quotas=True), seed=seed, **base)


def _outputs(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "timings.json"  # the checkpoint too: byte-stable
    }


def test_a_year_whose_rows_come_in_another_order_writes_the_same_files(tmp_path: Path) -> None:
    """The same units and demands listed in another order: the same bytes, checkpoint included.

    The year's ``units.csv`` and ``demands.csv`` (and the checkpoint's) followed the rows of
    the input, so a units file exported without ORDER BY gave other files, and a checkpoint
    refused to resume from the same data sorted.
    """
    data = busy_year()
    rng = np.random.default_rng(7)
    shuffled = dataclasses.replace(
        data,
        units=data.units.iloc[rng.permutation(len(data.units))].reset_index(drop=True),
        demands=data.demands.iloc[rng.permutation(len(data.demands))].reset_index(drop=True),
    )
    simulate(data, tmp_path / "sorted", allocator=RoundSolve(), shortlister=stub_shortlists)
    simulate(shuffled, tmp_path / "shuffled", allocator=RoundSolve(), shortlister=stub_shortlists)
    assert _outputs(tmp_path / "shuffled") == _outputs(tmp_path / "sorted")


class Killed(Exception):
    """Stands for the process being killed."""


def test_resume_after_a_kill_gives_identical_outputs(tmp_path: Path) -> None:
    """Killed after round 2 and resumed, the run writes the same bytes as an uninterrupted one."""
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    simulate(busy_year(), whole, allocator=RoundSolve(), shortlister=stub_shortlists)

    def kill_after_two(summary: Any) -> None:
        if summary.round == 2:
            raise Killed

    with pytest.raises(Killed):
        simulate(
            busy_year(), cut, allocator=RoundSolve(), shortlister=stub_shortlists,
            progress=kill_after_two,
        )  # fmt: skip
    assert not (cut / "kpis.json").exists()
    resumed = simulate(
        busy_year(), cut, resume=True, allocator=RoundSolve(), shortlister=stub_shortlists
    )
    assert [t["round"] for t in resumed.state.timings] == [1, 2, 3, 4]
    assert _outputs(cut) == _outputs(whole)
    alloc = resumed.state.allocations
    assert not alloc["unit_id"].duplicated().any() and not alloc["demand_id"].duplicated().any()


def test_a_new_run_killed_mid_year_leaves_no_year_files_of_the_earlier_run(tmp_path: Path) -> None:
    """Rerun in the same folder and killed, it kept the old kpis.json beside its new rounds."""
    simulate(busy_year(seed=1), tmp_path, allocator=RoundSolve(), shortlister=stub_shortlists)
    assert (tmp_path / "kpis.json").exists() and (tmp_path / "allocations.csv").exists()

    def kill_after_one(summary: Any) -> None:
        if summary.round == 1:
            raise Killed

    with pytest.raises(Killed):
        simulate(
            busy_year(seed=2), tmp_path, allocator=RoundSolve(), shortlister=stub_shortlists,
            progress=kill_after_one,
        )  # fmt: skip
    from matching.simulation.outputs import YEAR_FILES

    assert [name for name in YEAR_FILES if (tmp_path / name).exists()] == []
    assert sorted(p.name for p in (tmp_path / "rounds").iterdir()) == ["01-2026-01-31"]


def test_offers_count_only_the_candidates_offered_a_unit(tmp_path: Path) -> None:
    """A candidate passed over (housed earlier in the round) is no offer: it was counted as one.

    With every answer drawn at probability 0.8, refusals / offers read under 0.8, as if the
    households refused less often than the scenario says.
    """
    import json

    done = simulate(
        busy_year(probability=0.8), tmp_path, allocator=RoundSolve(), shortlister=stub_shortlists
    )
    outcome = done.state.offers["outcome"]
    passed = int((outcome == "already_housed").sum())
    assert passed > 0  # the stub lists the same best-scored substitutes on every unit
    kpis = json.loads((tmp_path / "kpis.json").read_text(encoding="utf-8"))["demands"]
    made = int(outcome.isin(["accepted", "refused"]).sum())
    assert (kpis["offers"], kpis["passed_over"]) == (made, passed)
    rounds = pd.read_csv(tmp_path / "rounds.csv")
    assert rounds["offers"].sum() == made and rounds["passed_over"].sum() == passed
    assert kpis["refusals"] + kpis["allocated"] == kpis["offers"]


def test_refusals_with_a_fixed_seed_are_reproducible(tmp_path: Path) -> None:
    """Same seed, same offers and answers; the refusal draw of a unit ignores the other units."""
    a = simulate(busy_year(), tmp_path / "a", allocator=RoundSolve(), shortlister=stub_shortlists)
    b = simulate(busy_year(), tmp_path / "b", allocator=RoundSolve(), shortlister=stub_shortlists)
    assert (a.state.offers["outcome"] == "refused").sum() > 0
    pd.testing.assert_frame_equal(a.state.offers, b.state.offers)
    from matching.simulation.refusals import refusal_draws

    both = refusal_draws(7, 3, pd.Series(["U1", "U2"]), 3)
    alone = refusal_draws(7, 3, pd.Series(["U2"]), 3)
    np.testing.assert_array_equal(both[1], alone[0])
    assert not np.array_equal(refusal_draws(8, 3, pd.Series(["U2"]), 3), alone)


def test_every_round_passes_the_checker(tmp_path: Path) -> None:
    """Each solve of the year, with its year so far, passes matching.checker.check."""
    recorder = RecordingSolve()
    simulate(busy_year(), tmp_path, allocator=recorder, shortlister=stub_shortlists)
    assert len(recorder.calls) >= 4
    for units, demands, policy, year_so_far, on, result in recorder.calls:
        found = checker.check(
            units, demands, policy, result.allocation, year_so_far,
            orientation=result.orientation, on=on,
        )  # fmt: skip
        assert found == [], checker.render_violations(found)


def test_every_unit_and_demand_ends_with_a_status_and_reason(tmp_path: Path) -> None:
    """Released units = allocated + carried; demands = allocated + lapsed + carried."""
    data = busy_year()
    result = simulate(data, tmp_path, allocator=RoundSolve(), shortlister=stub_shortlists)
    units = pd.read_csv(tmp_path / "units.csv", keep_default_na=False)
    demands = pd.read_csv(tmp_path / "demands.csv", keep_default_na=False)
    assert len(units) == len(data.units) and len(demands) == len(data.demands)
    assert set(units["status"]) <= {"allocated", "carried"}
    assert set(demands["status"]) <= {"allocated", "lapsed", "carried"}
    assert (units["reason"] != "").all() and (demands["reason"] != "").all()
    k = result.kpis
    assert k["units"]["allocated"] + k["units"]["carried"] == k["units"]["released"] == 8
    d = k["demands"]
    assert d["allocated"] + d["lapsed"] + d["carried"] == d["stock_1_january"] + d["arrivals"]
    assert d["lapsed"] > 0
    assert d["allocated"] == len(result.state.allocations) == k["units"]["allocated"]
    allocated = units[units["status"] == "allocated"].set_index("unit_id")["demand_id"]
    housed = demands[demands["status"] == "allocated"].set_index("demand_id")["unit_id"]
    assert dict(allocated) == {u: d for d, u in housed.items()}


def test_a_run_stopped_early_gives_every_unit_and_demand_a_reason(tmp_path: Path) -> None:
    """Stopped after two rounds: the units released later say so, as the demands filed later do.

    A ``not_released`` unit had an empty reason in ``units.csv`` while a ``not_filed`` demand
    said ``filed_after_the_last_round``.
    """
    simulate(busy_year(last_round=2), tmp_path, allocator=RoundSolve(), shortlister=stub_shortlists)
    units = pd.read_csv(tmp_path / "units.csv", keep_default_na=False)
    later = units[units["status"] == "not_released"]
    assert len(later) == 4
    assert set(later["reason"]) == {"released_after_the_last_round"}
    assert (units["reason"] != "").all()


class Recording:
    """Wraps an allocation policy and keeps every round it solved."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name = inner, inner.name
        self.calls: list[tuple[pd.DataFrame, pd.DataFrame, Policy, YearSoFar, dt.date, Result]] = []

    def allocate(self, units, demands, policy, params, *, year_so_far, on):  # type: ignore[no-untyped-def]
        result = self.inner.allocate(units, demands, policy, params, year_so_far=year_so_far, on=on)
        soft = result.stats.get("quota_mode") in ("soft", "soft_fallback")
        used = accounts.soft(policy) if soft else policy
        self.calls.append((units, demands, used, year_so_far or YearSoFar(), on, result))
        return result


@pytest.mark.parametrize("name", ["optimal", "greedy_score", "seniority", "bands"])
def test_the_four_policies_pass_the_checker_on_every_round(tmp_path: Path, name: str) -> None:
    """Every policy of matching.allocation, with the real shortlists, passes the checker."""
    allocation = pytest.importorskip("matching.allocation")
    shortlist = pytest.importorskip("matching.shortlist")
    recorder = Recording(allocation.get_policy(name))
    result = simulate(busy_year(), tmp_path, allocator=recorder, shortlister=shortlist.shortlists)
    assert result.kpis["units"]["allocated"] > 0
    for units, demands, policy, year_so_far, on, r in recorder.calls:
        found = checker.check(
            units, demands, policy, r.allocation, year_so_far, orientation=r.orientation, on=on
        )
        assert found == [], checker.render_violations(found)


def test_compare_writes_one_tidy_table(tmp_path: Path) -> None:
    """Two policies x two seeds: one (policy, seed, kpi, value) row per indicator, and a summary."""
    from matching.simulation.compare import run_comparison

    comparison = run_comparison(
        lambda seed: busy_year(seed=seed, last_round=2),
        ["a", "b"],
        [1, 2],
        tmp_path,
        allocators={"a": RoundSolve(), "b": RoundSolve()},
        shortlister=stub_shortlists,
    )
    kpis = pd.read_csv(tmp_path / "kpis.csv")
    assert list(kpis.columns) == ["policy", "seed", "kpi", "value"]
    assert set(kpis["policy"]) == {"a", "b"} and set(kpis["seed"]) == {1, 2}
    assert {"q1_rate_outside_qpv", "waiting_months_p90", "vacancy_days_mean"} <= set(kpis["kpi"])
    # The same allocator on the same seed meets the same year: identical indicators.
    a = kpis[kpis["policy"] == "a"].drop(columns="policy").reset_index(drop=True)
    b = kpis[kpis["policy"] == "b"].drop(columns="policy").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    summary = (tmp_path / "summary.md").read_text()
    assert "| q1_rate_outside_qpv |" in summary and "0.155" in summary
    assert len(comparison.timings) == 4


def test_compare_again_in_the_same_folder_keeps_only_its_own_runs(tmp_path: Path) -> None:
    """A comparison's folder holds only its own runs.

    Policies a and b on seeds 1 and 2, then a on seed 1: ``runs/b`` and ``runs/a/seed-2`` went
    on lying beside a table without them.
    """
    from matching.simulation.compare import run_comparison

    def compare(policies: list[str], seeds: list[int]) -> None:
        run_comparison(
            lambda seed: busy_year(seed=seed, last_round=1),
            policies,
            seeds,
            tmp_path,
            allocators={"a": RoundSolve(), "b": RoundSolve()},
            shortlister=stub_shortlists,
        )

    runs = tmp_path / "runs"
    compare(["a", "b"], [1, 2])
    assert sorted(p.name for p in runs.iterdir()) == ["a", "b"]
    notes = runs / "my-analysis" / "notes.txt"  # not a run: never removed
    notes.parent.mkdir()
    notes.write_text("keep")
    # a comparison refused (a file in the way of one of its folders) removes nothing
    shutil.rmtree(runs / "a" / "seed-1" / "rounds")
    (runs / "a" / "seed-1" / "rounds").write_text("")
    with pytest.raises(DataError, match="a file of that name is in the way"):
        compare(["a"], [1])
    assert sorted(p.name for p in runs.iterdir()) == ["a", "b", "my-analysis"]
    assert sorted(p.name for p in (runs / "b").iterdir()) == ["seed-1", "seed-2"]
    (runs / "a" / "seed-1" / "rounds").unlink()
    compare(["a"], [1])
    assert sorted(p.name for p in runs.iterdir()) == ["a", "my-analysis"]
    assert sorted(p.name for p in (runs / "a").iterdir()) == ["seed-1"]
    assert notes.read_text() == "keep"
    assert set(pd.read_csv(tmp_path / "kpis.csv")["policy"]) == {"a"}


def test_a_comparison_stopped_midway_leaves_no_table_of_the_earlier_one(tmp_path: Path) -> None:
    """Policies a and b, then a alone killed midway: kpis.csv and summary.md still showed b."""
    from matching.simulation.compare import run_comparison

    def compare(policies: list[str], progress: Any = None) -> None:
        run_comparison(
            lambda seed: busy_year(seed=seed, last_round=2),
            policies,
            [1],
            tmp_path,
            allocators={"a": RoundSolve(), "b": RoundSolve()},
            shortlister=stub_shortlists,
            progress=progress,
        )

    compare(["a", "b"])
    assert set(pd.read_csv(tmp_path / "kpis.csv")["policy"]) == {"a", "b"}

    def kill(policy: str, seed: int) -> Any:
        def after_one(summary: Any) -> None:
            raise Killed

        return after_one

    with pytest.raises(Killed):
        compare(["a"], progress=kill)
    assert not (tmp_path / "runs" / "b").exists()
    left = [n for n in ("kpis.csv", "timings.csv", "summary.md") if (tmp_path / n).exists()]
    assert left == []


def test_compare_refuses_an_unknown_policy_before_running_any(tmp_path: Path) -> None:
    """A misspelt, missing or repeated policy is a PolicyError at once, before any year."""
    from matching.exceptions import PolicyError
    from matching.simulation.compare import run_comparison

    with pytest.raises(PolicyError, match="nosuch"):
        run_comparison(
            lambda seed: busy_year(seed=seed, last_round=1), ["optimal", "nosuch"], [1],
            tmp_path / "out", shortlister=stub_shortlists,
        )  # fmt: skip
    assert not (tmp_path / "out").exists()
    # none, or one twice: an empty table, or the same years simulated again under one name
    for names, reason in (([], "no allocation policy"), (["optimal"] * 2, "given twice")):
        with pytest.raises(PolicyError, match=reason):
            run_comparison(lambda seed: busy_year(seed=seed), names, [1], tmp_path / "out")
        assert not (tmp_path / "out").exists()


def _note_pid(folder: Path, policy: str, seed: int) -> None:
    """A comparison's progress factory that notes which process ran each (policy, seed)."""
    (folder / f"{policy}-{seed}-{os.getpid()}").touch()


def test_compare_in_two_processes_writes_the_same_files(tmp_path: Path) -> None:
    """Two worker processes write the same files as one run at a time.

    Each run's folder and the indicator table are byte-identical; every wall time is measured.
    """
    from matching.simulation.compare import run_comparison

    folders = {jobs: tmp_path / f"jobs-{jobs}" for jobs in (1, 2)}
    for jobs, folder in folders.items():
        pids = tmp_path / f"pids-{jobs}"
        pids.mkdir()
        comparison = run_comparison(
            lambda seed: busy_year(seed=seed, last_round=2),
            ["a", "b"],
            [1, 2],
            folder,
            allocators={"a": RoundSolve(), "b": RoundSolve()},
            shortlister=stub_shortlists,
            progress=functools.partial(_note_pid, pids),
            jobs=jobs,
        )
        assert list(comparison.timings["seed"]) == [1, 1, 2, 2]
        assert (comparison.timings["wall_time_s"] > 0).all()
        ran_in = {int(p.name.split("-")[-1]) for p in pids.iterdir()}
        assert len(list(pids.iterdir())) == 4
        if jobs == 1:
            assert ran_in == {os.getpid()}
        else:  # in worker processes, two at most
            assert os.getpid() not in ran_in and 1 <= len(ran_in) <= 2
    one, two = (_outputs(f) for f in folders.values())
    del one["timings.csv"], two["timings.csv"], one["summary.md"], two["summary.md"]
    assert sorted(one) == sorted(two) and len(one) > 4
    assert one == two


def test_a_run_stopped_after_two_rounds_resumes_to_the_end(tmp_path: Path) -> None:
    """--rounds 2 then --resume gives the same year as one uninterrupted run."""
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    simulate(busy_year(), whole, allocator=RoundSolve(), shortlister=stub_shortlists)
    simulate(busy_year(last_round=2), cut, allocator=RoundSolve(), shortlister=stub_shortlists)
    simulate(busy_year(), cut, resume=True, allocator=RoundSolve(), shortlister=stub_shortlists)
    assert _outputs(cut) == _outputs(whole)


def test_the_years_tables_are_validated_once_and_a_bad_row_is_refused_before_any_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The year's tables are validated before the first round; its solves do not again.

    The rounds' tables are cut from the validated year's (`simulation.inputs.canonical`), and
    `matching.round.canonical_tables` lets their solves and shortlists take them as they are:
    demands validated once for a year of four rounds, where every solve validated them again.
    So do the checks of each solve and of the accepted allocations, which validate any other
    tables. A bad row of a year built by a caller is refused up front, naming its row, with no
    round written.
    """
    import matching.io as io
    import matching.simulation.inputs as inputs

    calls: list[str] = []
    original = io.validate_demands

    def counted(frame: pd.DataFrame, source: str, **kw: Any) -> pd.DataFrame:
        calls.append(source)
        return original(frame, source, **kw)

    monkeypatch.setattr(inputs, "validate_demands", counted)
    # the round's tables and the checker's are validated by one function, `io.round_table`
    monkeypatch.setattr(io, "validate_demands", counted)
    data = busy_year()
    done = simulate(data, tmp_path / "ok", shortlister=stub_shortlists)
    assert done.state.round == 4 and calls == ["demands"]

    bad = data.demands.copy()
    bad.loc[5, "household_size"] = 0
    with pytest.raises(DataError) as refused:
        simulate(dataclasses.replace(data, demands=bad), tmp_path / "bad")
    assert "demands: row 6, field 'household_size'" in str(refused.value)
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    ("table", "column", "date", "said"),
    [
        ("units", "released_on", "2025-12-20", "released before 2026, the scenario's year"),
        (
            "units",
            "released_on",
            "2027-02-01",
            "date in the future (after the as-of date 2026-12-31)",
        ),
        (
            "demands",
            "filed_on",
            "2027-03-01",
            "date in the future (after the as-of date 2026-12-31)",
        ),
    ],
)
def test_a_library_year_with_a_date_outside_it_is_refused(
    tmp_path: Path, table: str, column: str, date: str, said: str
) -> None:
    """A unit or demand of a library's year dated outside it was in no round, counted nowhere.

    It stayed ``not_released`` / ``not_filed`` in the year-end tables of a whole year.
    """
    data = busy_year()
    frame = getattr(data, table).copy()
    frame.loc[1, column] = pd.Timestamp(date)
    with pytest.raises(DataError) as refused:
        simulate(dataclasses.replace(data, **{table: frame}), tmp_path / "out")
    assert f"{table}: row 2, field '{column}', value '{date}': {said}" in str(refused.value)
    assert not (tmp_path / "out").exists()


def test_canonical_tables_skip_validation_only_for_those_frames_inside_the_block() -> None:
    """Inside the block the vouched frames are taken as they are; outside, validated again."""
    from matching.round import canonical_tables, prepare_round

    data = busy_year()
    units, demands = data.units.iloc[:2].reset_index(drop=True), data.demands
    on = dt.date(2026, 1, 31)
    policy = data.policy
    validated = prepare_round(units, demands, policy, on=on)
    with canonical_tables(units, demands):
        trusted = prepare_round(units, demands, policy, on=on)
        other = demands.copy()  # another frame (an edited copy): validated
        other.loc[0, "adults"] = 9
        with pytest.raises(DataError):
            prepare_round(units, other, policy, on=on)
    pd.testing.assert_frame_equal(trusted.instance.demands, validated.instance.demands)
    pd.testing.assert_frame_equal(trusted.instance.units, validated.instance.units)
    assert np.array_equal(trusted.instance.pair_demand, validated.instance.pair_demand)
    assert trusted.instance.units is not units  # the caller's frame stays its own
    late = units.assign(released_on=pd.Timestamp("2026-03-01"))
    with pytest.raises(DataError, match="released_on"):  # outside the block: the date again
        prepare_round(late, demands, policy, on=on)


class ClockStoppedSolve(RoundSolve):
    """`optimal` whose search of the January round stopped at a wall-clock limit."""

    def allocate(self, units, demands, policy, params, *, year_so_far, on):  # type: ignore[no-untyped-def]
        result = super().allocate(units, demands, policy, params, year_so_far=year_so_far, on=on)
        if on.month == 1:
            result.stats["stopped_by_clock"] = 1
        return result


def test_round_json_says_which_solve_stopped_at_the_clock(tmp_path: Path) -> None:
    """round.json names a solve whose search the wall clock stopped, and no other.

    `solve` prints it (`stats.stopped_by_clock`); a year with such a round may differ on
    another run, which its files did not say.
    """
    simulate(busy_year(), tmp_path, allocator=ClockStoppedSolve(), shortlister=stub_shortlists)
    rounds = sorted((tmp_path / "rounds").glob("*/round.json"))
    solves = [json.loads(r.read_text())["solves"] for r in rounds]
    assert [s.get("stopped_by_clock") for s in solves[0]] == [True] * len(solves[0])
    assert all("stopped_by_clock" not in s for later in solves[1:] for s in later)


_INTERRUPTED_COMPARISON = """
import sys, time
from pathlib import Path

from matching.simulation.compare import run_comparison
from tests.unit.test_simulation import RoundSolve, busy_year, stub_shortlists


class Paused(RoundSolve):
    def __init__(self, name, pause):
        self.name, self.pause = name, pause

    def allocate(self, units, demands, policy, params, *, year_so_far, on):
        (Path(sys.argv[1]) / f"{self.name}-started").touch()
        time.sleep(self.pause)
        return super().allocate(units, demands, policy, params, year_so_far=year_so_far, on=on)


def year(seed):
    return busy_year(seed=seed, last_round=1)


if __name__ == "__main__":
    try:
        run_comparison(
            year, ["fast", "slow"], [1], Path(sys.argv[1]) / "out",
            allocators={"fast": Paused("fast", 0), "slow": Paused("slow", 120)},
            shortlister=stub_shortlists, jobs=2,
        )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
"""


def test_a_ctrl_c_stops_a_comparison_in_two_processes_without_a_traceback(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) on `--jobs 2`.

    The worker that had finished its run and waited for another printed a KeyboardInterrupt
    traceback from `concurrent.futures` above the command's `interrupted`. Now the workers
    leave Ctrl-C to the parent, which cancels the runs not started and ends the workers at once
    (the slow run does not go on for its two minutes).
    """
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "compare_and_interrupt.py"
    script.write_text(_INTERRUPTED_COMPARISON, encoding="utf-8")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "src")])}
    process = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)], cwd=root, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    fast_done = tmp_path / "out" / "runs" / "fast" / "seed-1" / "kpis.json"
    deadline = time.monotonic() + 120
    while not ((tmp_path / "slow-started").exists() and fast_done.exists()):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    time.sleep(0.5)  # the fast run's worker now waits for a run that will not come
    os.killpg(process.pid, signal.SIGINT)
    try:
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.strip().endswith("interrupted"), err


def test_a_year_under_seniority_lists_its_substitutes_by_filing_date(tmp_path: Path) -> None:
    """A refused unit goes to the next household in the allocation policy's own order.

    Under ``seniority`` the substitutes were ranked by score, so a refused unit went to the best
    score: the policy played was part cotation. Every round's lists now follow the filing
    date (then the tie-break) under ``seniority``, and stay by score under ``optimal``.
    """
    from matching.allocation import get_policy

    year = busy_year()
    filed = dict(zip(year.demands["demand_id"], year.demands["filed_on"], strict=True))
    seen = 0
    for name in ("seniority", "optimal"):
        simulate(year, tmp_path / name, allocator=get_policy(name))
        for path in sorted((tmp_path / name / "rounds").glob("*/shortlists.csv")):
            table = pd.read_csv(path, dtype={"demand_id": str}, keep_default_na=False)
            listed = table[(table["rank"] >= 2) & (table["demand_id"] != "")]
            for _, rows in listed.groupby(["solve", "unit_id"]):
                ids = rows.sort_values("rank")["demand_id"].tolist()
                key = [filed[d] for d in ids] if name == "seniority" else None
                scores = rows.sort_values("rank")["score"].astype(int).tolist()
                if name == "seniority":
                    assert key == sorted(key), (path, ids)
                    seen += len(ids) > 1 and sorted(scores, reverse=True) != scores
                else:
                    assert scores == sorted(scores, reverse=True), (path, ids)
    assert seen > 0  # some list's filing order is not its score order: the test can tell
