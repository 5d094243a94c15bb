"""``matching solve`` and ``matching scenario show`` end to end, with click's CliRunner.

The tiny scenario (21 units x 300 demands) is solved once per module into a temporary folder and
the tests read that folder: files, counts that add up, inputs that re-check, determinism. Every
solve is checked by the independent checker inside `matching.round.solve`; one test also runs
`matching.checker.check` on the written files, and one runs ``matching check`` on the folder.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner

import matching.cli.commands  # noqa: F401  (registers the commands on the group)
from matching import checker
from matching.cli import EXIT_CODES, cli
from matching.exceptions import CheckFailedError, InfeasibleError
from matching.flux import YearSoFar
from matching.io import read_demands, read_table, read_units
from matching.kpis import RoundKpis, render_kpis_text
from matching.policy import load_policy
from matching.policy.fields import DERIVED_DEMAND_FIELDS
from matching.policy.loader import BUNDLED_MODELS
from matching.policy.model import Policy
from matching.types import Bound

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
TINY = SCENARIOS / "tiny.yaml"
OUTPUTS = ("allocations.csv", "orientations.csv", "unallocated_units.csv",
           "unallocated_demands.csv", "shortlists.csv", "kpis.json", "result.json",
           "timings.json")  # fmt: skip
INPUTS = ("units.csv", "demands.csv", "policy.yaml")


def run(*args: str) -> tuple[int, str]:
    """Invoke the CLI; return the exit code and everything printed (stdout and stderr)."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The tiny scenario solved once into a folder; (folder, printed output)."""
    out = tmp_path_factory.mktemp("tiny") / "out"
    code, text = run("solve", TINY, "--out", out)
    assert code == 0, text
    return out, text


def test_writes_every_file(solved: tuple[Path, str]) -> None:
    """The folder holds the eight outputs and three inputs, and no year_so_far.json (none given)."""
    out, text = solved
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS + INPUTS)
    assert "Round 2026-01-31 under policy default-2026" in text
    assert "Réservataires:" in text and "Quotas (hard mode, year to date):" in text
    assert f"Wrote 11 files to {out}" in text


def test_every_unit_once_and_counts_add_up(solved: tuple[Path, str]) -> None:
    """Each input unit is allocated or unallocated exactly once; result.json counts agree."""
    out, _ = solved
    units = read_table(out / "units.csv")
    allocations = read_table(out / "allocations.csv")
    unallocated = read_table(out / "unallocated_units.csv")
    orientations = read_table(out / "orientations.csv")
    demands = read_table(out / "demands.csv")
    counts = json.loads((out / "result.json").read_text())["counts"]
    assert list(allocations.columns) == ["unit_id", "demand_id", "reservataire", "score"]
    assert list(unallocated.columns) == ["unit_id", "reason"]
    listed = pd.concat([allocations["unit_id"], unallocated["unit_id"]])
    assert listed.is_unique
    assert sorted(listed) == sorted(units["unit_id"])
    assert len(allocations) + len(unallocated) == len(units) == counts["units"] == 21
    assert allocations["demand_id"].is_unique
    assert counts["units_allocated"] == counts["demands_allocated"] == len(allocations)
    assert counts["units_unallocated"] == len(unallocated)
    assert counts["demands"] == len(demands) == 300
    assert (
        counts["demands_allocated"]
        + counts["demands_eligible_not_allocated"]
        + counts["demands_not_eligible"]
        == counts["demands"]
    )
    # every flux unit is oriented exactly once
    flux = units.loc[units["flux_excluded"] == "", "unit_id"]
    assert sorted(orientations["unit_id"]) == sorted(flux)
    assert counts["units_flux"] == len(flux)


def test_sorted_rows_and_scores_match_inputs(solved: tuple[Path, str]) -> None:
    """Outputs are sorted by unit id; each allocation's score is its demand's in demands.csv."""
    out, _ = solved
    allocations = read_table(out / "allocations.csv")
    assert list(allocations["unit_id"]) == sorted(allocations["unit_id"])
    demands = read_table(out / "demands.csv")
    assert {"score", *DERIVED_DEMAND_FIELDS} <= set(demands.columns)
    score_of = dict(zip(demands["demand_id"], demands["score"], strict=True))
    assert [score_of[d] for d in allocations["demand_id"]] == list(allocations["score"])
    result = json.loads((out / "result.json").read_text())
    assert result["objective"]["score"] == sum(int(s) for s in allocations["score"])


def test_written_inputs_recheck_with_the_checker(solved: tuple[Path, str]) -> None:
    """The folder's own files pass matching.checker.check and the `matching check` command."""
    out, _ = solved
    policy = load_policy(out / "policy.yaml")
    assert policy == load_policy("default-2026")
    units = read_units(out / "units.csv")
    demands = read_demands(out / "demands.csv", ignore_derived=True)
    violations = checker.check(
        units,
        demands,
        policy,
        read_table(out / "allocations.csv"),
        orientation=read_table(out / "orientations.csv"),
        on=pd.Timestamp("2026-01-31").date(),
    )
    assert violations == []
    code, text = run(
        "check", out / "units.csv", out / "demands.csv", out / "allocations.csv",
        "--policy", out / "policy.yaml", "--orientation", out / "orientations.csv",
        "--on", "2026-01-31",
    )  # fmt: skip
    assert code == 0, text
    assert "OK: no violation" in text


def test_kpis_json_renders_as_printed(solved: tuple[Path, str]) -> None:
    """kpis.json rebuilds into RoundKpis whose text table is the one the command printed."""
    out, text = solved
    kpis = RoundKpis.from_dict(json.loads((out / "kpis.json").read_text()))
    assert render_kpis_text(kpis) in text
    assert kpis.units.total == 21


def test_same_inputs_same_bytes(solved: tuple[Path, str], tmp_path: Path) -> None:
    """A second run writes byte-identical files, timings.json aside."""
    first, _ = solved
    code, text = run("solve", TINY, "--out", tmp_path)
    assert code == 0, text
    for name in OUTPUTS + INPUTS:
        if name != "timings.json":
            assert (tmp_path / name).read_bytes() == (first / name).read_bytes(), name


def test_solve_generated_files(tmp_path: Path) -> None:
    """`matching generate` output solves with --units/--demands/--policy, overrides applied."""
    code, text = run("generate", "--units", "12", "--demands", "150", "--seed", "2",
                     "--out", tmp_path / "gen")  # fmt: skip
    assert code == 0, text
    out = tmp_path / "out"
    code, text = run(
        "solve", "--units", tmp_path / "gen" / "units.csv",
        "--demands", tmp_path / "gen" / "demands.csv", "--policy", "default-2026",
        "--seed", "7", "--time-limit", "30", "--out", out,
    )  # fmt: skip
    assert code == 0, text
    result = json.loads((out / "result.json").read_text())
    assert result["params"]["seed"] == 7 and result["params"]["time_limit_s"] == 30
    units = read_table(tmp_path / "gen" / "units.csv")
    # without --on the round date is the latest release
    assert result["round_date"] == max(units["released_on"])
    assert result["counts"]["units"] == 12
    assert result["counts"]["units_allocated"] + result["counts"]["units_unallocated"] == 12


def test_a_search_stopped_at_the_gap_asked_says_so(tmp_path: Path) -> None:
    """--gap 0.5 stops short of the optimum: FEASIBLE, with a note naming the gap, not time."""
    code, text = run("generate", "--units", "300", "--demands", "60", "--seed", "13",
                     "--out", tmp_path / "gen")  # fmt: skip
    assert code == 0, text
    february = read_table(tmp_path / "gen" / "units.csv")
    february = february[february["released_on"].astype(str).str[5:7] == "02"]
    february.to_csv(tmp_path / "february.csv", index=False)
    out = tmp_path / "out"
    code, text = run(
        "solve", "--units", tmp_path / "february.csv",
        "--demands", tmp_path / "gen" / "demands.csv", "--on", "2026-02-28",
        "--gap", "0.5", "--no-prune", "--workers", "1", "--out", out,
    )  # fmt: skip
    assert code == 0, text
    result = json.loads((out / "result.json").read_text())
    assert result["objective"] != result["best_bound"]  # stopped short, as this test needs
    assert result["status"] == "FEASIBLE"
    assert "within the relative gap asked (0.5)" in text
    assert "time budget" not in text


def test_bad_units_file_exits_2(tmp_path: Path) -> None:
    """A bad cell gives exit code 2 and a message naming file, row and field, no traceback."""
    code, text = run("generate", "--units", "5", "--demands", "20", "--out", tmp_path)
    assert code == 0, text
    units = read_table(tmp_path / "units.csv")
    units.loc[1, "rooms"] = "eight"
    bad = tmp_path / "bad_units.csv"
    units.to_csv(bad, index=False)
    code, text = run(
        "solve", "--units", bad, "--demands", tmp_path / "demands.csv", "--out", tmp_path / "o"
    )
    assert code == 2, text
    assert f"{bad}: row 2, field 'rooms', value 'eight': not a whole number" in text
    assert "Traceback" not in text
    assert not (tmp_path / "o").exists()


def test_a_demand_filed_after_the_round_is_refused_with_or_without_on(tmp_path: Path) -> None:
    """Without --on, a household that files after the round is refused as with --on.

    The round date is then the latest release; such a household is not in the round (it used
    to be housed, with a seniority of 0).
    """
    code, text = run("generate", "--units", "6", "--demands", "40", "--out", tmp_path)
    assert code == 0, text
    units = read_table(tmp_path / "units.csv")
    latest = max(units["released_on"])
    demands = read_table(tmp_path / "demands.csv")
    demands.loc[2, "filed_on"] = "2027-06-01"
    late = tmp_path / "late_demands.csv"
    demands.to_csv(late, index=False)
    for on in ([], ["--on", latest]):
        out = tmp_path / f"o{len(on)}"
        code, text = run("solve", "--units", tmp_path / "units.csv", "--demands", late,
                         *on, "--out", out)  # fmt: skip
        assert code == 2, text
        assert (
            f"{late}: row 3, field 'filed_on', value '2027-06-01': date in the future "
            f"(after the as-of date {latest})"
        ) in text
        assert "Traceback" not in text and not out.exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    """A scenario with --units, or neither, is a usage error (exit code 2)."""
    code, text = run("solve", TINY, "--units", TINY, "--out", tmp_path)
    assert code == 2 and "not both" in text
    code, text = run("solve", "--out", tmp_path)
    assert code == 2 and "give a SCENARIO file" in text


def test_group_maps_errors_to_exit_codes() -> None:
    """InfeasibleError exits 3 and CheckFailedError 4 with 'please report', for any command."""

    @cli.command("_raise_for_test")
    @click.argument("kind")
    def raiser(kind: str) -> None:
        if kind == "infeasible":
            raise InfeasibleError("quotas conflict", ["mixity_outside_qpv"])
        raise CheckFailedError("stage score differs")

    try:
        code, text = run("_raise_for_test", "infeasible")
        assert code == 3 and "infeasible: quotas conflict" in text
        code, text = run("_raise_for_test", "check")
        assert code == 4 and "please report" in text and "stage score differs" in text
    finally:
        cli.commands.pop("_raise_for_test")
    assert set(EXIT_CODES) == {0, 1, 2, 3, 4, 130, 141}


def test_infeasible_round_exits_3_and_writes_the_folder(tmp_path: Path) -> None:
    """Earlier rounds that no round can repair: exit 3, conflicting rule named, folder written."""
    year = tmp_path / "year.yaml"
    # 1,000 earlier allocations outside QPV, none to Q1: the 25 % floor needs >= 250 more,
    # and the round has 21 units.
    year.write_text('tallies:\n  mixity_outside_qpv:\n    "": {base: 1000, counted: 0}\n')
    out = tmp_path / "out"
    code, text = run("solve", TINY, "--year-so-far", year, "--out", out)
    assert code == 3, text
    assert "infeasible:" in text and "mixity_outside_qpv" in text
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "INFEASIBLE" and "mixity_outside_qpv" in result["conflicts"]
    assert (out / "year_so_far.json").exists()
    # every unit is unallocated because of the round, not of a pool it was never oriented to
    unallocated = read_table(out / "unallocated_units.csv")
    assert len(unallocated) == result["counts"]["units"] == 21
    assert set(unallocated["reason"]) <= {"round_infeasible", "no_eligible_demand",
                                          "no_demand_in_any_pool"}  # fmt: skip
    assert "round_infeasible" in set(unallocated["reason"])
    # the indicators of the round as it stands (nothing allocated), not {}: the year-to-date
    # rate that makes it infeasible, and no orientation (none was made)
    kpis = RoundKpis.from_dict(json.loads((out / "kpis.json").read_text()))
    assert (kpis.units.total, kpis.units.allocated, kpis.demands.allocated) == (21, 0, 0)
    mixity = next(q for q in kpis.quotas if q.rule_id == "mixity_outside_qpv")
    assert (mixity.prior_base, mixity.prior_counted, mixity.base, mixity.rate) == (1000, 0, 0, 0)
    assert mixity.shortfall == 250  # the 25 % floor on the year's 1,000 allocations
    assert all(r.oriented is None for r in kpis.reservataires)
    assert "Réservataire" not in text  # the KPI tables are printed for a solution only


def test_scenario_show(tmp_path: Path) -> None:
    """`scenario show` prints the resolved paths, round, data sizes, policy figures and solver."""
    code, text = run("scenario", "show", TINY)
    assert code == 0, text
    assert f"file          {TINY}" in text
    assert "round         month 1 (January 2026); round date 2026-01-31" in text
    assert "21 released in January 2026 (of 300 in the data)" in text
    assert "300 filed by 2026-01-31" in text
    assert "Policy default-2026" in text and "quota mode    hard" in text
    assert "etat              25.0 %" in text and "(remainder)" in text
    assert "mixity_outside_qpv" in text and "at least 25 % of the allocations" in text
    assert "time_limit_s 10.0" in text and "seed 1" in text
    code, text = run("scenario", "show", "--no-data", TINY)
    assert code == 0 and "Round data" not in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("month: 1 ", "month: 0 "))
    code, text = run("scenario", "show", bad)
    assert code == 2 and f"{bad}: round.month:" in text
    assert "Simulation" not in run("scenario", "show", "--no-data", TINY)[1]


def test_scenario_show_prints_what_simulate_will_play() -> None:
    """A year scenario's `simulation:` settings are shown (cadence, policy, refusals...)."""
    code, text = run("scenario", "show", "--no-data", SCENARIOS / "caen-la-mer-2026-year.yaml")
    assert code == 0, text
    lines = text.splitlines()
    assert (
        "  round         the whole year pooled; round date 2026-12-31 (matching solve; simulate "
        "plays the year round by round)"
    ) in lines
    settings = lines[lines.index("Simulation (matching simulate / compare)") + 1]
    assert settings.startswith(
        "  cadence monthly, allocation_policy optimal, "
        "arrivals_per_year 0.6 x the demands pending on 1 January, "
    )  # not "-", read as "no arrivals"
    assert "last_round every round of the year" in settings
    assert "refusals.by_rooms the base probability" in settings
    assert "refusals.probability 0.3" in settings and "shortlist_size 3" in settings


def test_solving_a_prepared_round_is_solve() -> None:
    """`solve_prepared` (what the command calls, so that it prepares once) is `solve`.

    Same allocation, orientation, stages and counts on a generated round, checked by the
    independent checker; the wall time counts from ``started``; an infeasible round raises the
    same error with the soft-mode result.
    """
    import time

    from tests.solver.support import verify

    from matching.flux import YearSoFar
    from matching.generate import generate_territory
    from matching.params import SolveParams
    from matching.policy.quotas import Tally
    from matching.round import prepare_round, solve, solve_prepared

    units, demands = generate_territory("caen-la-mer", 2026, seed=5, n_units=20, n_demands=250)
    policy = load_policy("default-2026")
    on = pd.Timestamp(units["released_on"].max()).date()
    params = SolveParams(num_workers=1, time_limit_s=20.0)
    direct = solve(units, demands, policy, params, on=on)
    started = time.perf_counter() - 100.0
    prepared = prepare_round(units, demands, policy, on=on)
    result = solve_prepared(prepared, params, started=started)
    verify(result, units, demands, policy, on=on)
    assert result.status == direct.status == "OPTIMAL"
    assert result.allocation.equals(direct.allocation)
    assert result.orientation.equals(direct.orientation)
    assert result.stage_values == direct.stage_values and result.counts == direct.counts
    assert result.wall_time_s >= 100.0 > direct.wall_time_s

    blocked = YearSoFar(tallies={"mixity_outside_qpv": {"": Tally(base=1000, counted=0)}})
    with pytest.raises(InfeasibleError) as raised:
        solve_prepared(prepare_round(units, demands, policy, on=on, year_so_far=blocked), params)
    assert "mixity_outside_qpv" in raised.value.rule_ids
    assert isinstance(raised.value.soft_result, type(direct))


def _policy_variant(tmp_path: Path, old: str, new: str, name: str = "variant.yaml") -> Path:
    """The default policy file with one line changed, written to ``tmp_path / name``."""
    text = (BUNDLED_MODELS / "default-2026.yaml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_a_policy_valid_but_rarely_meant_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Soft quotas that no stage minimises, or a rule of weight 0 in soft mode: a warning each.

    Both are valid (a quota-blind allocation with its shortfalls reported measures what the
    quotas change), but a policy written that way by mistake would drop its quotas silently.
    """
    assert load_policy("default-2026").warnings() == ()
    soft = _policy_variant(tmp_path, "mode: hard", "mode: soft")
    assert load_policy(soft).warnings() == ()
    blind_text = soft.read_text(encoding="utf-8").replace(
        "stages: [shortfall, allocations, score]", "stages: [allocations, score]"
    )
    blind = tmp_path / "blind.yaml"
    blind.write_text(blind_text, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="matching"):
        policy = load_policy(blind)
    assert [r.getMessage() for r in caplog.records] == [f"{blind}: {w}" for w in policy.warnings()]
    assert len(policy.warnings()) == 1 and "objective.stages: the quotas are soft" in caplog.text
    # hard quotas: the stages need no shortfall, nothing to say
    hard_blind = _policy_variant(tmp_path, "stages: [shortfall, ", "stages: [", "hard.yaml")
    assert load_policy(hard_blind).warnings() == ()
    soft_policy = load_policy(soft)
    first, second = soft_policy.quotas.rules[:2]
    quotas = soft_policy.quotas.model_copy(
        update={"rules": (first, second.model_copy(update={"weight": 0}))}
    )
    assert soft_policy.model_copy(update={"quotas": quotas}).warnings() == (
        f"quotas.rules.1.weight: 0 with soft quotas, so the allocation ignores rule "
        f"'{second.id}' and only reports how short it is",
    )


def test_a_share_floor_above_a_ceiling_on_the_same_base_is_warned_about() -> None:
    """A Q1 floor of 25 % and a Q1 ceiling of 10 % outside QPV: only an empty base meets both.

    Hard quotas then left 15 of 21 units vacant, OPTIMAL, with no conflict named and no word.
    A ceiling at or above the floor, or on another base, says nothing.
    """
    policy = load_policy("default-2026")
    floor = next(r for r in policy.quotas.rules if r.id == "mixity_outside_qpv")
    k = policy.quotas.rules.index(floor)

    def with_ceiling(target: float, **changes: object) -> Policy:
        ceiling = floor.model_copy(
            update={"id": "q1_ceiling", "bound": Bound.CEILING, "target": target, **changes}
        )
        rules = (*policy.quotas.rules, ceiling)
        return policy.model_copy(
            update={"quotas": policy.quotas.model_copy(update={"rules": rules})}
        )

    n = len(policy.quotas.rules)
    assert with_ceiling(0.10).warnings() == (
        f"quotas.rules.{k}.target: the floor 0.25 of 'mixity_outside_qpv' is above the ceiling "
        f"0.1 of 'q1_ceiling' (quotas.rules.{n}) on the same base and count: only a group with "
        "nothing allocated in that base meets both, so its units stay vacant",
    )
    assert with_ceiling(0.25).warnings() == ()
    assert with_ceiling(0.10, base=()).warnings() == ()  # the ceiling counts every allocation


def test_the_cli_prints_the_policys_warnings_and_still_solves(tmp_path: Path) -> None:
    """`matching solve` on a scenario whose policy ignores its soft quotas: exit 0, warned."""
    policy = _policy_variant(tmp_path, "mode: hard", "mode: soft")
    text = policy.read_text(encoding="utf-8").replace(
        "stages: [shortfall, allocations, score]", "stages: [allocations, score]"
    )
    policy.write_text(text, encoding="utf-8")
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(
        TINY.read_text(encoding="utf-8").replace("policy: default-2026", f"policy: {policy}"),
        encoding="utf-8",
    )
    code, output = run("solve", scenario, "--out", tmp_path / "out")
    assert code == 0, output
    assert f"warning: {policy}: objective.stages: the quotas are soft" in output
    assert output.count("warning:") == 1


def test_prepare_round_refuses_what_is_after_the_round() -> None:
    """The library refuses a demand filed, or a unit released, after the round's date.

    Whether the date is given or defaults to the latest release; tables and records alike.
    """
    import datetime as dt

    from matching.domain import Demand
    from matching.exceptions import DataError
    from matching.frames import frame_records
    from matching.generate import generate_territory
    from matching.round import prepare_round

    units, demands = generate_territory("caen-la-mer", 2026, seed=5, n_units=8, n_demands=40)
    policy = load_policy("default-2026")
    latest = pd.Timestamp(units["released_on"].max()).date()
    late = demands.copy()
    late.loc[3, "filed_on"] = pd.Timestamp("2027-06-01")
    for on in (None, latest):
        with pytest.raises(DataError, match=r"row 4, field 'filed_on'.*date in the future"):
            prepare_round(units, late, policy, on=on)
    records = frame_records(late, Demand)
    with pytest.raises(DataError, match=r"field 'filed_on'.*date in the future"):
        prepare_round(units, records, policy, on=latest)
    early = latest - dt.timedelta(days=1)  # the latest unit is released after it
    with pytest.raises(DataError, match=r"field 'released_on'.*date in the future"):
        prepare_round(units, demands, policy, on=early)
    assert len(prepare_round(units, demands, policy).instance.units) == 8
    # no unit and no date: nothing to allocate and no date to hold the demands to
    assert len(prepare_round(units.iloc[0:0], late, policy).instance.demands) == 40


def test_records_with_a_repeated_id_and_a_year_for_another_policy_are_refused() -> None:
    """Records get the table's checks, and a year so far must fit the policy.

    A repeated unit among records was allocated twice (only the checker caught it); a year so
    far naming what the policy lacks is refused, as `read_year_so_far` does for files (a
    misspelt rule lost its tallies without a word).
    """
    from matching.domain import Demand, Unit
    from matching.exceptions import DataError
    from matching.flux import YearSoFar
    from matching.frames import frame_records
    from matching.generate import generate_territory
    from matching.policy.quotas import Tally
    from matching.round import prepare_round

    units, demands = generate_territory("caen-la-mer", 2026, seed=5, n_units=6, n_demands=30)
    policy = load_policy("default-2026")
    unit_records = frame_records(units, Unit)
    demand_records = frame_records(demands, Demand)
    with pytest.raises(DataError, match=r"row 7, field 'unit_id'.*duplicate"):
        prepare_round([*unit_records, unit_records[0]], demand_records, policy)
    with pytest.raises(DataError, match=r"row 31, field 'demand_id'.*duplicate"):
        prepare_round(unit_records, [*demand_records, demand_records[2]], policy)
    misspelt = YearSoFar(tallies={"mixity_outsid_qpv": {"": Tally(base=4, counted=0)}})
    with pytest.raises(DataError, match=r"year_so_far: file, field 'tallies.mixity_outsid_qpv"):
        prepare_round(units, demands, policy, year_so_far=misspelt)
    nobody = YearSoFar(flux_units=3, oriented={"nobody": 3})
    with pytest.raises(DataError, match=r"field 'oriented.nobody'"):
        prepare_round(units, demands, policy, year_so_far=nobody)
    assert len(prepare_round(unit_records, demand_records, policy).instance.units) == 6


def test_the_library_takes_a_policy_name_an_iso_date_and_a_mapping() -> None:
    """What a calling service has at hand works; anything else names the argument.

    Each of these failed deep in the solver with an AttributeError.
    """
    from matching.exceptions import DataError
    from matching.generate import generate_territory
    from matching.round import prepare_round

    units, demands = generate_territory("caen-la-mer", 2026, seed=5, n_units=6, n_demands=30)
    on = str(pd.Timestamp(units["released_on"].max()).date())
    typed = prepare_round(units, demands, load_policy("default-2026"), on=dt.date.fromisoformat(on),
                          year_so_far=YearSoFar(flux_units=3, oriented={"etat": 1}))  # fmt: skip
    plain = prepare_round(units, demands, "default-2026", on=on,
                          year_so_far={"flux_units": 3, "oriented": {"etat": 1}})  # fmt: skip
    assert plain.on == typed.on and plain.instance.year_so_far == typed.instance.year_so_far
    assert plain.instance.policy == typed.instance.policy
    assert (plain.instance.pair_unit == typed.instance.pair_unit).all()
    with pytest.raises(TypeError, match="policy: a Policy, a bundled name or a path, not dict"):
        prepare_round(units, demands, {"id": "x"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on: '31/01/2026' is not a date YYYY-MM-DD"):
        prepare_round(units, demands, "default-2026", on="31/01/2026")
    with pytest.raises(DataError, match="year_so_far: file, field 'flux_units'"):
        prepare_round(units, demands, "default-2026", year_so_far={"flux_units": -1})


def test_a_round_in_another_year_than_the_policys_is_refused(tmp_path: Path) -> None:
    """Files of 2025, or ``--on`` in 2027, under ``default-2026``: exit 2, no folder.

    A scenario of another year than its policy was refused, the same round on files was
    solved with the 2026 Q1 threshold and ceilings without a word.
    """
    code, text = run("generate", "--year", "2025", "--units", "6", "--demands", "40",
                     "--out", tmp_path / "g25")  # fmt: skip
    assert code == 0, text
    units, demands = tmp_path / "g25" / "units.csv", tmp_path / "g25" / "demands.csv"
    latest = max(read_table(units)["released_on"])
    out = tmp_path / "out"
    code, text = run("solve", "--units", units, "--demands", demands, "--out", out)
    assert code == 2, text
    assert (
        f"error: {units}: the round date {latest} (the latest released_on; --on sets it): "
        "policy 'default-2026' is for 2026, the round for 2025"
    ) in text
    code, text = run("generate", "--units", "6", "--demands", "40", "--out", tmp_path / "g26")
    assert code == 0, text
    units, demands = tmp_path / "g26" / "units.csv", tmp_path / "g26" / "demands.csv"
    for command in (
        ["solve", "--units", units, "--demands", demands, "--on", "2027-03-31", "--out", out],
        ["check", units, demands, units, "--on", "2027-03-31"],
    ):
        code, text = run(*command)
        assert code == 2, text
        assert (
            "error: --on 2027-03-31: policy 'default-2026' is for 2026, the round for 2027"
        ) in text
        assert "Traceback" not in text
    assert not out.exists()


def test_the_library_refuses_a_round_in_another_year_than_the_policys() -> None:
    """`prepare_round` and `solve` refuse it too, the date given or the latest release's."""
    from matching.exceptions import PolicyError
    from matching.generate import generate_territory
    from matching.round import prepare_round, solve

    units, demands = generate_territory("caen-la-mer", 2025, seed=5, n_units=6, n_demands=30)
    latest = pd.Timestamp(units["released_on"].max()).date()
    with pytest.raises(
        PolicyError,
        match=rf"^on \(the latest released_on\): {latest}: policy 'default-2026' is for 2026, "
        r"the round for 2025 \(Q1 threshold and ceilings are yearly figures\)$",
    ):
        prepare_round(units, demands, "default-2026")
    units, demands = generate_territory("caen-la-mer", 2026, seed=5, n_units=6, n_demands=30)
    with pytest.raises(PolicyError, match=r"^on: 2027-03-31: policy 'default-2026' is for 2026"):
        solve(units, demands, "default-2026", on="2027-03-31")
    assert prepare_round(units, demands, "default-2026", on="2026-12-31").on.year == 2026


def test_solve_takes_its_settings_as_a_mapping_and_names_a_bad_one_before_preparing() -> None:
    """``params`` may be a mapping of settings, as `run_scenario`'s overrides are.

    A mapping failed deep in the solver with an AttributeError after the round was prepared;
    now it is validated (an unknown or bad setting names its key), and anything else is a
    TypeError naming ``params``, before the tables are even read.
    """
    from matching.exceptions import PolicyError
    from matching.generate import generate_territory
    from matching.params import SolveParams
    from matching.round import prepare_round, solve, solve_prepared

    units, demands = generate_territory("caen-la-mer", 2026, seed=5, n_units=6, n_demands=30)
    typed = solve(units, demands, "default-2026", SolveParams(time_limit_s=10.0, seed=3))
    plain = solve(units, demands, "default-2026", {"time_limit_s": 10.0, "seed": 3})
    assert plain.params == typed.params and plain.params.num_workers == 2  # the default
    pd.testing.assert_frame_equal(plain.allocation, typed.allocation)
    again = solve_prepared(prepare_round(units, demands, "default-2026"), {"seed": 3})
    assert again.params == SolveParams(seed=3)
    broken = units.assign(rooms=99)  # refused if the tables were read first
    with pytest.raises(PolicyError, match="params: time_limt_s: Extra inputs are not permitted"):
        solve(broken, demands, "default-2026", {"time_limt_s": 10.0})
    with pytest.raises(PolicyError, match="params: seed: Input should be a valid integer"):
        solve(broken, demands, "default-2026", {"seed": True})
    with pytest.raises(TypeError, match="params: a SolveParams or a mapping of its settings"):
        solve(broken, demands, "default-2026", 30)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="params: a SolveParams or a mapping of its settings"):
        solve_prepared(prepare_round(units, demands, "default-2026"), 30)  # type: ignore[arg-type]


def test_rows_as_mappings_are_a_table_and_other_forms_name_the_argument() -> None:
    """``df.to_dict("records")`` solves as the DataFrame does; other forms get a TypeError.

    Each of these failed inside `matching.frames` with an AttributeError (``'dict' object has
    no attribute 'model_dump'``) or "'NoneType' object is not iterable".
    """
    from matching.domain import Demand, Unit
    from matching.exceptions import DataError
    from matching.frames import frame_records
    from matching.generate import generate_territory
    from matching.round import prepare_round, solve

    units, demands = generate_territory("caen-la-mer", 2026, seed=5, n_units=6, n_demands=30)
    table = solve(units, demands, "default-2026")
    rows = solve(units.to_dict("records"), demands.to_dict("records"), "default-2026")
    pd.testing.assert_frame_equal(rows.allocation, table.allocation)
    assert rows.to_json() == table.to_json()
    bad = units.to_dict("records")
    bad[2]["rooms"] = 9
    with pytest.raises(DataError, match=r"units: row 3, field 'rooms', value '9': must be at most"):
        prepare_round(bad, demands, "default-2026")
    accepted = "a DataFrame, or a list of Unit records or of rows as mappings"
    for given, said in (
        (None, "not NoneType"),
        (units.to_dict("list"), "not dict (a mapping of columns: pass pd.DataFrame(it))"),
        ([*frame_records(units, Unit)[:-1], bad[-1]], "row 6 is a dict and row 1 a Unit"),
    ):
        with pytest.raises(
            TypeError, match=re.escape(f"units: {accepted}") + ".*" + re.escape(said)
        ):
            prepare_round(given, demands, "default-2026")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"mappings; row 1 is a str$"):
        prepare_round(["U1", "U2"], demands, "default-2026")  # type: ignore[list-item]
    with pytest.raises(TypeError, match="demands: a DataFrame, or a list of Demand records"):
        prepare_round(units, [*frame_records(demands, Demand), "D9"], "default-2026")  # type: ignore[list-item]


def test_out_on_the_data_folder_is_refused_before_it_overwrites_the_data(tmp_path: Path) -> None:
    """`solve --out` on the folder of its own input files replaced them with the round's.

    The year's 30 units became January's, without a word. Now exit code 2 naming the file and
    what named it, on both routes (files, scenario), and the data is untouched.
    """
    data = tmp_path / "data"
    code, text = run("generate", "--units", "30", "--demands", "100", "--out", data)
    assert code == 0, text
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    units, demands = data / "units.csv", data / "demands.csv"
    code, text = run("solve", "--units", units, "--demands", demands, "--out", data)
    assert code == 2, text
    assert (
        f"error: {data}: solve would overwrite {units.resolve()} (--units) with its own files; "
        "choose another --out folder"
    ) in text
    scenario = tmp_path / "round.yaml"
    scenario.write_text(
        "id: files\nterritory: caen-la-mer\nyear: 2026\nseed: 1\npolicy: default-2026\n"
        "data: {units: data/units.csv, demands: data/demands.csv}\nround: {month: 1}\n",
        encoding="utf-8",
    )
    code, text = run("solve", scenario, "--out", data)
    assert code == 2 and "(data.units)" in text and "Traceback" not in text
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before
    code, text = run("solve", "--units", units, "--demands", demands, "--out", data / "out")
    assert code == 0, text  # a folder of its own is fine


def test_a_misspelt_tally_count_in_the_year_so_far_is_refused(tmp_path: Path) -> None:
    """``countd: 40`` was dropped without a word: counted read as 0, the round infeasible.

    The earlier rounds' 40 of 50 allocations outside QPV to Q1 households became 0 of 50, and
    the round was declared infeasible (exit 3) blaming mixity_outside_qpv.
    """
    year = tmp_path / "year.yaml"
    year.write_text('tallies:\n  mixity_outside_qpv:\n    "": {base: 50, countd: 40}\n')
    code, text = run("solve", TINY, "--year-so-far", year, "--out", tmp_path / "out")
    assert code == 2, text
    assert (
        f"{year}: file, field 'tallies.mixity_outside_qpv..countd', value '40': "
        "Extra inputs are not permitted"
    ) in text


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [("flux_units: true\n", "flux_units", "not a boolean"),
     ("flux_units: 3\noriented: {etat: '2'}\n", "oriented.etat", "not text")],
)  # fmt: skip
def test_a_count_of_the_year_so_far_is_a_number_not_a_boolean_or_text(
    tmp_path: Path, text: str, field: str, reason: str
) -> None:
    """``flux_units: true`` was read as 1 and ``'2'`` as 2; policy files refuse both."""
    year = tmp_path / "year.yaml"
    year.write_text(text)
    code, out = run("solve", TINY, "--year-so-far", year, "--out", tmp_path / "out")
    assert code == 2, out
    assert f"{year}: file, field '{field}'" in out and f"a count is a whole number, {reason}" in out
