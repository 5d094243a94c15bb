"""Tests of the parts of the simulated year: periods, renewals, offers, arrivals, settings, CLI."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from matching.cli import cli
from matching.cli import commands as _commands  # noqa: F401  (registers the commands)
from matching.exceptions import PolicyError
from matching.generate import generate_demands, generate_territory
from matching.scenario import load_scenario
from matching.simulation.accounts import pinned_policy
from matching.simulation.config import SimulationSettings
from matching.simulation.lapse import anniversary_in, lapsing
from matching.simulation.offers import make_offers
from matching.simulation.periods import Period, year_periods

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_monthly_and_weekly_periods_cover_the_year() -> None:
    """12 monthly or 52 weekly rounds, contiguous, from 1 January to 31 December."""
    for cadence, n in (("monthly", 12), ("weekly", 52)):
        periods = year_periods(2026, cadence)  # type: ignore[arg-type]
        assert len(periods) == n
        assert periods[0].start == dt.date(2026, 1, 1) and periods[-1].end == dt.date(2026, 12, 31)
        for a, b in itertools.pairwise(periods):
            assert b.start == a.end + dt.timedelta(days=1)
    # 52 weeks of 7 days = 364 days: the last week also takes 31 December (8 days).
    last = year_periods(2026, "weekly")[-1]
    assert (last.end - last.start).days + 1 == 8


def test_anniversaries_and_renewal_draws() -> None:
    """A demand renews at its filing anniversary; renewal 1 keeps all, 0 lapses all due ones."""
    march = Period(3, dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    filed = pd.Series(pd.to_datetime(["2024-03-15", "2024-02-29", "2026-03-02", "2025-04-01"]))
    # 2024-03-15 -> 15 March; 2024-02-29 -> 28 February (not March); filed this March: no
    # anniversary yet; April: not in March.
    assert anniversary_in(filed, march).tolist() == [True, False, False, False]
    ids = pd.Series(["A", "B", "C", "D"], dtype=object)
    assert not lapsing(ids, filed, march, 1.0, seed=1).any()
    assert lapsing(ids, filed, march, 0.0, seed=1).tolist() == [True, False, False, False]


def test_offers_go_down_the_shortlist() -> None:
    """Rank 1 refuses, rank 2 accepts; a household already housed is passed over."""
    shortlist = pd.DataFrame(
        {
            "unit_id": ["U1", "U1", "U1", "U2", "U2", "U2"],
            "rank": [1, 2, 3, 1, 2, 3],
            "demand_id": ["A", "B", "C", "B", "D", ""],
            "score": [30, 20, 10, 20, 5, pd.NA],
            "reason": ["", "", "", "", "", "pool_exhausted"],
        }
    )
    # Rank-1 offers first: U1 -> A, draw 0.1 < 0.5: refused; U2 -> B, draw 0.9 >= 0.5: accepted.
    # Rank 2: U1 -> B, already housed (no draw used). Rank 3: U1 -> C, draw 0.7: accepted.
    draws = {"U1": np.array([0.1, 0.9, 0.7]), "U2": np.array([0.9, 0.0, 0.0])}
    housed: set[str] = set()
    got = make_offers(shortlist, {"U1": 0.5, "U2": 0.5}, draws, housed)
    assert got.offers["outcome"].tolist() == [
        "refused", "already_housed", "accepted", "accepted",
    ]  # fmt: skip
    assert got.accepted[["unit_id", "demand_id", "rank"]].values.tolist() == [
        ["U1", "C", 3], ["U2", "B", 1],
    ]  # fmt: skip
    assert housed == {"B", "C"} and got.exhausted == ()


def test_new_demands_are_recent_dated_in_the_year_and_reproducible() -> None:
    """generate_demands: N-ids by filing date within the year, no refusal, same seed same frame."""
    a = generate_demands("caen-la-mer", 2026, 3, 200)
    b = generate_demands("caen-la-mer", 2026, 3, 200)
    pd.testing.assert_frame_equal(a, b)
    assert a["demand_id"].iloc[0] == "N2026-0000001"
    assert a["filed_on"].is_monotonic_increasing
    assert a["filed_on"].min() >= pd.Timestamp("2026-01-02")
    assert a["filed_on"].max() <= pd.Timestamp("2026-12-31")
    assert (a["refusals"] == 0).all()
    # The stock and the units of the same seed do not move (independent child streams).
    _u1, d1 = generate_territory(n_units=30, n_demands=40, seed=3)
    generate_demands("caen-la-mer", 2026, 3, 10)
    _u2, d2 = generate_territory(n_units=30, n_demands=40, seed=3)
    pd.testing.assert_frame_equal(d1, d2)


def test_pinned_policy_gives_the_whole_flux_to_one_reservataire() -> None:
    """Pinned to etat: share 1 for it, 0 for the others with a share, the landlord unchanged."""
    from matching.policy.loader import load_policy

    shares = pinned_policy(load_policy("default-2026"), "etat").shares()
    assert shares == {
        "etat": 1.0, "etat_agents": 0.0, "collectivite": 0.0, "action_logement": 0.0,
        "bailleur": 0.0,
    }  # fmt: skip


def test_scenario_simulation_section_is_read() -> None:
    """The bundled year scenario has a monthly simulation section; a round scenario has none."""
    year = load_scenario(SCENARIOS / "caen-la-mer-2026-year.yaml")
    assert year.simulation is not None and year.simulation.cadence == "monthly"
    assert year.simulation.refusals.probability == 0.3
    assert load_scenario(SCENARIOS / "tiny.yaml").simulation is None
    with pytest.raises(ValueError, match="cadence"):
        SimulationSettings(cadence="daily")  # type: ignore[arg-type]


def test_unknown_allocation_policy_is_refused() -> None:
    """A policy name the registry does not know is a PolicyError naming it."""
    from matching.simulation.adapters import resolve_allocator

    with pytest.raises(PolicyError, match="no_such_policy"):
        resolve_allocator("no_such_policy")


def test_cli_simulate_one_round(tmp_path: Path) -> None:
    """The simulate command on the tiny year writes the year's files and a progress line."""
    runner = CliRunner()
    got = runner.invoke(
        cli,
        ["simulate", str(SCENARIOS / "tiny-year.yaml"), "--out", str(tmp_path), "--rounds", "1"],
    )
    assert got.exit_code == 0, got.output
    for name in ("allocations.csv", "offers.csv", "units.csv", "demands.csv", "kpis.json"):
        assert (tmp_path / name).is_file()
    assert (tmp_path / "rounds" / "01-2026-01-31" / "offers.csv").is_file()
    # the list that keeps a run from writing over its inputs names every file it writes
    from matching.simulation.outputs import YEAR_FILES

    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(YEAR_FILES)
    assert "round 1/1 2026-01-31" in got.output
    # counts agree with their nouns ("1 units carried", "1 rounds to" read as typos)
    assert "0 refusals, 1 unit carried, 121 demands pending" in got.output
    assert "\n1 round to 2026-01-31: 3 of 4 units let" in got.output


def test_cli_compare_two_policies_in_two_processes(tmp_path: Path) -> None:
    """``matching compare --jobs 2`` writes the comparison of both policies and prints it."""
    runner = CliRunner()
    got = runner.invoke(
        cli,
        ["compare", str(SCENARIOS / "tiny-year.yaml"), "--policies", "optimal,greedy_score",
         "--rounds", "1", "--jobs", "2", "--out", str(tmp_path)],
    )  # fmt: skip
    assert got.exit_code == 0, got.output
    kpis = pd.read_csv(tmp_path / "kpis.csv")
    assert list(dict.fromkeys(kpis["policy"])) == ["optimal", "greedy_score"]
    for name in ("optimal", "greedy_score"):
        assert (tmp_path / "runs" / name / "seed-1" / "allocations.csv").is_file()
    assert "| indicator | optimal | greedy_score |" in got.output


@pytest.mark.parametrize("seed", [-1, 2**31])
def test_year_data_refuses_a_seed_out_of_range(seed: int) -> None:
    """A seed given in code bypasses the scenario's validation: -1 failed in the generator."""
    from matching.simulation.inputs import year_data

    with pytest.raises(PolicyError, match=rf"seed: {seed} is negative|seed: seed {seed} is above"):
        year_data(load_scenario(SCENARIOS / "tiny-year.yaml"), seed=seed)


def test_compare_refuses_a_seed_range_past_the_bound_before_running(tmp_path: Path) -> None:
    """The range 2**31 - 1, 2**31 is refused before the first year runs or a file is written."""
    from matching.simulation.compare import compare_scenario

    sc = load_scenario(SCENARIOS / "tiny-year.yaml").model_copy(update={"seed": 2**31 - 1})
    with pytest.raises(PolicyError, match="seeds: seed 2147483648 is above 2147483647"):
        compare_scenario(sc, ["optimal"], 2, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_generate_demands_refuses_more_than_the_bound() -> None:
    """arrivals_per_year: 10**11 asked numpy for 745 GiB: the generator refuses it first."""
    with pytest.raises(ValueError, match="999,999"):
        generate_demands("caen-la-mer", 2026, 1, 100_000_000_000)


def test_rounds_per_year_are_the_periods_of_any_year() -> None:
    """The bound on last_round is the number of periods, in leap and common years."""
    from matching.simulation.config import ROUNDS_PER_YEAR

    for year in (2024, 2025, 2026, 2028):
        for cadence, n in ROUNDS_PER_YEAR.items():
            assert len(year_periods(year, cadence)) == n  # type: ignore[arg-type]


def test_compare_refuses_more_seeds_than_it_can_hold_before_building_them(tmp_path: Path) -> None:
    """``--seeds 2147483647`` built two billion seeds and was killed for its memory."""
    from matching.simulation.compare import compare_scenario

    sc = load_scenario(SCENARIOS / "tiny-year.yaml")
    for n in (0, 2**31 - 1):
        with pytest.raises(PolicyError, match=f"seeds: {n} years asked for; from 1 to 1000"):
            compare_scenario(sc, ["optimal"], n, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _file_year(tmp_path: Path, arrivals: int) -> Path:
    """A simulated year on files whose demands hold two ids of the generated arrivals' form."""
    from matching.io import write_demands, write_units

    units, demands = generate_territory(n_units=20, n_demands=30, seed=4)
    demands.loc[[3, 7], "demand_id"] = ["N2026-0000001", "N2026-0000005"]
    write_units(units, tmp_path / "units.csv")
    write_demands(demands, tmp_path / "demands.csv")
    scenario = tmp_path / "year.yaml"
    scenario.write_text(
        "id: file-year\nterritory: caen-la-mer\nyear: 2026\nseed: 1\npolicy: default-2026\n"
        "data: {units: units.csv, demands: demands.csv}\n"
        f"simulation: {{arrivals_per_year: {arrivals}, last_round: 1}}\n",
        encoding="utf-8",
    )
    return scenario


def test_demand_ids_of_the_generated_arrivals_form_are_refused_naming_file_and_ids(
    tmp_path: Path,
) -> None:
    """The message named no file, no id and no way out; now all three, exit code 2."""
    scenario = _file_year(tmp_path, arrivals=10)
    got = CliRunner().invoke(cli, ["simulate", str(scenario), "--out", str(tmp_path / "out")])
    assert got.exit_code == 2, got.output
    assert (
        f"error: {tmp_path / 'demands.csv'}: demand_id 'N2026-0000001', 'N2026-0000005': also "
        "the id of a demand filed during the year: the simulation's generated arrivals have ids "
        "N2026-0000001 to N2026-0000010 (arrivals_per_year: 10); rename the data's demands, or "
        "set simulation.arrivals_per_year: 0 to generate none"
    ) in got.output
    assert "Traceback" not in got.output
    from matching.simulation.inputs import clash_message

    many = clash_message("d.csv", [f"N2026-000000{i}" for i in range(1, 6)], 2026, 10)
    assert many.startswith("d.csv: demand_id 'N2026-0000001', 'N2026-0000002', 'N2026-0000003' "
                           "and 2 more: also the id")  # fmt: skip


def test_no_generated_arrivals_no_clash(tmp_path: Path) -> None:
    """``arrivals_per_year: 0``, as the message says, keeps the data's ids as they are."""
    from matching.simulation.inputs import year_data

    data = year_data(load_scenario(_file_year(tmp_path, arrivals=0)))
    assert {"N2026-0000001", "N2026-0000005"} <= set(data.demands["demand_id"])
    assert len(data.demands) == 30


def test_a_unit_released_before_the_year_is_refused_naming_its_row(tmp_path: Path) -> None:
    """A unit of December 2025 in a 2026 year vanished: not in units.csv, not in any count."""
    from matching.io import write_units

    scenario = _file_year(tmp_path, arrivals=0)
    units, _ = generate_territory(n_units=20, n_demands=30, seed=4)
    units.loc[2, "released_on"] = pd.Timestamp("2025-12-20")
    write_units(units, tmp_path / "units.csv")
    got = CliRunner().invoke(cli, ["simulate", str(scenario), "--out", str(tmp_path / "out")])
    assert got.exit_code == 2, got.output
    assert (
        f"{tmp_path / 'units.csv'}: row 3, field 'released_on', value '2025-12-20': released "
        "before 2026, the scenario's year"
    ) in got.output
    assert "Traceback" not in got.output and not (tmp_path / "out" / "rounds").exists()


def test_a_semicolon_units_file_is_refused_with_a_plain_file_level_message(tmp_path: Path) -> None:
    """A problem of the whole file read "units.csv: file, field '', value '': the header ..."."""
    scenario = _file_year(tmp_path, arrivals=0)
    path = tmp_path / "units.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(",", ";"), encoding="utf-8")
    got = CliRunner().invoke(cli, ["simulate", str(scenario), "--out", str(tmp_path / "out")])
    assert got.exit_code == 2, got.output
    assert f"  - {path}: the header is one column of names separated by ';'" in got.output
    assert "field ''" not in got.output and "Traceback" not in got.output


def test_vacancy_days_count_a_refusal_of_an_earlier_round_once() -> None:
    """Refused twice in January, let at the February round: vacant 6 January -> 28 February.

    The two answers ran to 20 February, before the February round: the old count added 2 x 10
    days on top of the calendar (a refusal counted twice). Three answers in a round (30 days)
    do run past the next round's date, and then the next offer waits for the last answer.
    """
    from matching.simulation.outcomes import vacancy_days

    offers = pd.DataFrame(
        {
            "round": [1, 1, 2, 2, 1, 1, 1, 2],
            "round_date": ["2026-01-31"] * 2
            + ["2026-02-28"] * 2
            + ["2026-01-31"] * 3
            + ["2026-02-28"],
            "unit_id": ["U1"] * 4 + ["U2"] * 4,
            "rank": [1, 2, 1, 2, 1, 2, 3, 1],
            "demand_id": ["A", "B", "C", "D", "E", "F", "G", "H"],
            "score": [1] * 8,
            "outcome": ["refused"] * 3 + ["accepted"] + ["refused"] * 4,
        }
    )
    released = pd.Series(pd.to_datetime(["2026-01-06", "2026-01-02", "2026-03-01"]))
    days = vacancy_days(
        pd.Series(["U1", "U2", "U3"]),
        released,
        np.array([True, False, False]),
        offers,
        dt.date(2026, 2, 28),
        10,
    )
    # U1: 6 Jan -> 28 Feb (53 days) + the February refusal before the acceptance.
    # U2, still vacant: three January answers to 2 March, a fourth to 12 March (past the end).
    # U3, released after the last round: no day.
    assert days.tolist() == [53 + 10, 69, 0]


def _simulate_tiny_year(tmp_path: Path, old: str, new: str) -> tuple[Path, str]:
    """`matching simulate` on the tiny year with ``old`` replaced by ``new``: folder, output."""
    text = (SCENARIOS / "tiny-year.yaml").read_text(encoding="utf-8")
    assert old in text
    scenario = tmp_path / "year.yaml"
    scenario.write_text(text.replace(old, new), "utf-8")
    out = tmp_path / "out"
    got = CliRunner().invoke(cli, ["simulate", str(scenario), "--out", str(out)])
    assert got.exit_code == 0, got.output
    return out, got.output


def test_every_offer_refused_the_vacancy_stays_within_the_answers(tmp_path: Path) -> None:
    """Every offer refused: a unit is vacant from its release to its last answer, no more."""
    import json

    out, _ = _simulate_tiny_year(tmp_path, "{probability: 0.3}", "{probability: 1.0}")
    kpis = json.loads((out / "kpis.json").read_text(encoding="utf-8"))
    units = pd.read_csv(out / "units.csv", keep_default_na=False)
    offers = pd.read_csv(out / "offers.csv")
    assert kpis["units"]["allocated"] == 0 and kpis["demands"]["refusals"] > 0
    end = pd.Timestamp(kpis["end"])
    total = 0
    for unit_id, released_on in zip(units["unit_id"], units["released_on"], strict=True):
        if pd.Timestamp(released_on) > end:
            continue
        free = pd.Timestamp(released_on)
        for on, n in offers[offers["unit_id"] == unit_id].groupby("round_date").size().items():
            free = max(free, pd.Timestamp(on)) + n * pd.Timedelta(days=10)
        total += (max(free, end) - pd.Timestamp(released_on)).days
    assert kpis["units"]["vacancy_days_total"] == total
    assert total < kpis["units"]["released"] * (10 * 3 * 3 + 90)  # 3 rounds of 3 answers


def test_a_scoped_quota_has_a_running_rate_its_worst_groups(tmp_path: Path) -> None:
    """A rule held per landlord read '-' in every round: its tallies have no EPCI-wide group."""
    import json

    from matching.policy.loader import BUNDLED_MODELS

    policy = (BUNDLED_MODELS / "default-2026.yaml").read_text(encoding="utf-8")
    rule = "      count: [{field: demand.q1_or_anru, op: eq, value: true}]\n"
    assert rule in policy
    (tmp_path / "scoped.yaml").write_text(
        policy.replace(rule, rule + "      scope: unit.bailleur\n"), encoding="utf-8"
    )
    out, output = _simulate_tiny_year(tmp_path, "policy: default-2026", "policy: scoped.yaml")
    groups = {
        k: v["rate"]
        for k, v in json.loads((out / "kpis.json").read_text(encoding="utf-8"))["quotas"].items()
        if k.startswith("mixity_outside_qpv[") and v["rate"] is not None
    }
    assert len(groups) >= 2, groups
    rounds = pd.read_csv(out / "rounds.csv")
    assert rounds["rate.mixity_outside_qpv"].iloc[-1] == min(groups.values())
    assert "mixity_outside_qpv -" not in output.splitlines()[-2]


def test_a_stricter_q1_floor_is_the_target_the_year_reports(tmp_path: Path) -> None:
    """A policy asking 40 % Q1 outside QPV and 60 % non-Q1 inside read 'target 25 %' and 0.5."""
    import json

    from matching.policy.loader import BUNDLED_MODELS

    policy = (BUNDLED_MODELS / "default-2026.yaml").read_text(encoding="utf-8")
    outside = "      target: 0.25\n      base: [{field: unit.qpv, op: eq, value: false}]\n"
    inside = "      target: 0.50\n      base: [{field: unit.qpv, op: eq, value: true}]\n"
    assert outside in policy and inside in policy
    strict = policy.replace(outside, outside.replace("0.25", "0.40"))
    (tmp_path / "strict.yaml").write_text(
        strict.replace(inside, inside.replace("0.50", "0.60")), encoding="utf-8"
    )
    out, output = _simulate_tiny_year(tmp_path, "policy: default-2026", "policy: strict.yaml")
    kpis = json.loads((out / "kpis.json").read_text(encoding="utf-8"))
    assert kpis["q1_rate_outside_qpv"]["target"] == 0.40
    assert kpis["non_q1_rate_inside_qpv"]["target"] == 0.60
    assert output.splitlines()[-1].endswith(f"(target 40 %); wrote {out}")
    args = ["compare", str(tmp_path / "year.yaml"), "--policies", "optimal"]
    got = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "cmp")])
    assert got.exit_code == 0, got.output
    summary = (tmp_path / "cmp" / "summary.md").read_text(encoding="utf-8")
    assert "Target for `q1_rate_outside_qpv`: 0.4 (the policy's" in summary


def test_ctrl_c_after_a_round_still_interrupts_python(tmp_path: Path) -> None:
    """After a round's CP-SAT search, SIGINT was left to the system: Ctrl-C killed the run.

    It died on the spot with no message (exit 130), and a Ctrl-C during a search only cut that
    search short. Run in a fresh interpreter: the signal would otherwise reach pytest itself.
    """
    import subprocess
    import sys

    code = (
        "import os, signal, sys\n"
        "from matching.cli import main\n"
        "sys.argv = ['matching', 'simulate', sys.argv[1], '--out', sys.argv[2], '--rounds', '1']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    print('not interrupted')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    args = [str(SCENARIOS / "tiny-year.yaml"), str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
    assert done.stdout.splitlines()[-1] == "interrupted"


def test_ctrl_c_in_simulate_exits_130_and_says_how_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in round 2 printed click's 'Aborted!' and exited 1, the code of 'no solution'."""
    from matching.simulation import engine

    real = engine.play_round

    def ctrl_c_in_round_two(data, state, period, *rest):  # type: ignore[no-untyped-def]
        if period.index == 2:
            raise KeyboardInterrupt
        return real(data, state, period, *rest)

    monkeypatch.setattr(engine, "play_round", ctrl_c_in_round_two)
    out = tmp_path / "out"
    args = ["simulate", str(SCENARIOS / "tiny-year.yaml"), "--out", str(out)]
    got = CliRunner().invoke(cli, args)
    assert got.exit_code == 130, got.output
    assert got.output.splitlines()[-1] == (
        "interrupted; run the same command with --resume to continue from the last round done"
    )
    assert (out / "state" / "latest.json").is_file()
    monkeypatch.setattr(engine, "play_round", real)
    resumed = CliRunner().invoke(cli, [*args, "--resume"])
    assert resumed.exit_code == 0 and resumed.output.startswith("round 2/3"), resumed.output


def test_out_on_the_data_folder_is_refused_before_it_overwrites_the_data(tmp_path: Path) -> None:
    """``--out`` on the data's folder replaced units.csv and demands.csv with the run's tables."""
    scenario = _file_year(tmp_path, arrivals=0)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    got = CliRunner().invoke(cli, ["simulate", str(scenario), "--out", str(tmp_path)])
    assert got.exit_code == 2, got.output
    assert (
        f"error: {tmp_path}: simulate would overwrite {tmp_path / 'units.csv'} (data.units) with "
        "its own files; choose another --out folder"
    ) in got.output
    # compare writes its years under runs/<policy>/seed-<n>/: data kept there is refused too
    seed_folder = tmp_path / "cmp" / "runs" / "optimal" / "seed-1"
    seed_folder.mkdir(parents=True)
    (seed_folder / "demands.csv").write_bytes(before["demands.csv"])
    scenario.write_text(
        scenario.read_text(encoding="utf-8").replace(
            "demands: demands.csv", "demands: cmp/runs/optimal/seed-1/demands.csv"
        ),
        encoding="utf-8",
    )
    args = ["compare", str(scenario), "--policies", "optimal", "--out", str(tmp_path / "cmp")]
    got = CliRunner().invoke(cli, args)
    assert got.exit_code == 2, got.output
    assert f"compare would overwrite {seed_folder / 'demands.csv'} (data.demands)" in got.output
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after == {**before, "year.yaml": scenario.read_bytes()}
    assert not (tmp_path / "rounds").exists() and not (tmp_path / "cmp" / "kpis.csv").exists()


def test_a_summary_cell_of_some_seeds_says_how_many() -> None:
    """A rate with no allocation in one seed was the mean of the others, shown as all seeds'."""
    from matching.simulation.compare import summary_markdown

    kpis = pd.DataFrame(
        {
            "policy": ["optimal"] * 6,
            "seed": [1, 2, 3] * 2,
            "kpi": ["priority_rate.etat_agents"] * 3 + ["fill_rate"] * 3,
            "value": [0.5, None, 1.0, 0.9, 0.8, 1.0],
        }
    )
    timings = pd.DataFrame(
        {"policy": ["optimal"] * 3, "seed": [1, 2, 3], "rounds": [12] * 3, "wall_time_s": [1.0] * 3}
    )
    text = summary_markdown(kpis, timings)
    assert "| priority_rate.etat_agents | 0.75 (0.5-1) [2 of 3 seeds] |" in text
    assert "| fill_rate | 0.9 (0.8-1) |" in text
