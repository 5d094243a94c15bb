"""``matching check`` on tiny files: verdict and exit codes 0 / 1 / 2, options, printed numbers.

Same round as tests/unit/test_checker.py (valid as written), saved as CSV in a temporary folder.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from tests.unit.test_checker import ALLOCATION, ORIENTATION, demands_with, units_with

import matching.cli.commands  # noqa: F401  (registers the commands on the group)
from matching.cli import cli
from matching.io import write_demands, write_table, write_units


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "units": tmp_path / "units.csv",
        "demands": tmp_path / "demands.csv",
        "allocation": tmp_path / "allocation.csv",
        "orientation": tmp_path / "orientation.csv",
    }
    write_units(units_with(), paths["units"])
    write_demands(demands_with(), paths["demands"])
    alloc = pd.DataFrame(ALLOCATION, columns=["unit_id", "demand_id", "reservataire"])
    alloc["score"] = 0  # ignored: the checker recomputes scores
    write_table(alloc, paths["allocation"])
    write_table(
        pd.DataFrame(ORIENTATION, columns=["unit_id", "reservataire"]), paths["orientation"]
    )
    return paths


def invoke(files: dict[str, Path], *extra: str) -> tuple[int, str]:
    args = ["check", str(files["units"]), str(files["demands"]), str(files["allocation"]), *extra]
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output


def test_valid_allocation_exits_0(files: dict[str, Path]) -> None:
    """A valid allocation prints OK and the recomputed stages, exit code 0."""
    code, out = invoke(
        files, "--policy", "default-2026", "--orientation", str(files["orientation"]),
        "--on", "2026-03-31",
    )  # fmt: skip
    assert code == 0, out
    # 5 allocations, scores 62 + 52 + 96 + 62 + 12 = 284 at 2026-03-31 (test_checker)
    assert "Objective: shortfall 0, allocations 5, score 284" in out
    assert out.rstrip().endswith("OK: no violation in 5 allocation(s)")


def test_default_round_date_is_latest_release(files: dict[str, Path]) -> None:
    """Without --on the round date is the latest released_on of the units (2026-03-01)."""
    code, out = invoke(files)
    assert code == 0, out
    assert "round date 2026-03-01" in out
    # At 2026-03-01 a demand filed 2025-03-31 has 11 months, D3 (2023-03-31) 35:
    # D1 11 + 50, D2 11 + 40, D3 35 + 20 + 40, D4 11 + 50, D5 11 -> 61 + 51 + 95 + 61 + 11 = 279
    assert "score 279" in out


def test_violations_exit_1_with_unit_demand_rule_numbers(files: dict[str, Path]) -> None:
    """Each violation is printed with its rule, unit, demand and numbers; exit code 1."""
    bad = pd.DataFrame(
        [*ALLOCATION[:3], ("U4", "D6", "bailleur"), ("U5", "D5", "bailleur")],
        columns=["unit_id", "demand_id", "reservataire"],
    )
    write_table(bad, files["allocation"])
    code, out = invoke(files, "--on", "2026-03-31")
    assert code == 1, out
    lines = out.splitlines()
    excluded = next(line for line in lines if "flux_exclusion_reservataire" in line)
    assert "unit U5" in excluded and "demand D5" in excluded and "reservataire=bailleur" in excluded
    # bailleur: U4 to D6 (not priority) and U5 (counted through bailleur): 0 of 2, ceil(2/4) = 1
    floor = next(line for line in lines if line.lstrip().startswith("priority_floor_bailleur"))
    assert "base=2, counted=0" in floor and "shortfall=1" in floor
    assert "FAIL: 2 violation(s) of 2 rule(s) in 5 allocation(s)" in out


def test_year_so_far_file_and_kpis(files: dict[str, Path], tmp_path: Path) -> None:
    """A JSON year-so-far file is read and changes the verdict; --kpis prints the indicators."""
    year = tmp_path / "year.json"
    year.write_text(
        json.dumps({"tallies": {"mixity_outside_qpv": {"": {"base": 9, "counted": 0}}}})
    )
    code, out = invoke(files, "--on", "2026-03-31", "--year-so-far", str(year), "--kpis")
    assert code == 1, out
    assert "mixity_outside_qpv" in out and "shortfall=2" in out
    assert "Réservataires:" in out and "Landlords:" in out


def test_soft_mode_policy_reports_shortfall_and_passes(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """With a soft-mode policy a quota shortfall is listed as a cost and the exit code is 0."""
    from matching.policy.loader import BUNDLED_MODELS

    text = (BUNDLED_MODELS / "default-2026.yaml").read_text(encoding="utf-8")
    policy = tmp_path / "soft.yaml"
    policy.write_text(text.replace("  mode: hard", "  mode: soft"), encoding="utf-8")
    year = tmp_path / "year.yaml"
    year.write_text('tallies:\n  mixity_outside_qpv:\n    "": {base: 9, counted: 0}\n')
    code, out = invoke(
        files, "--policy", str(policy), "--on", "2026-03-31", "--year-so-far", str(year)
    )
    assert code == 0, out
    assert "mixity_outside_qpv: 1 counted of 12, needs 3; shortfall 2 x weight 1,000" in out
    assert "Objective: shortfall 2,000" in out  # thousands separated, as `solve` prints


@pytest.mark.parametrize(
    "breakage",
    ["missing_column", "repeated_column", "missing_file", "bad_year", "filed_after",
     "released_after"],
)  # fmt: skip
def test_bad_input_exits_2(files: dict[str, Path], tmp_path: Path, breakage: str) -> None:
    """Unreadable input is an error message on stderr with exit code 2, not a traceback."""
    extra: list[str] = ["--on", "2026-03-31"]
    if breakage == "missing_column":
        write_table(
            pd.DataFrame(ALLOCATION, columns=["unit_id", "demand_id", "x"]), files["allocation"]
        )
    elif breakage == "repeated_column":  # a trailing space: the same name once stripped
        table = pd.DataFrame(ALLOCATION, columns=["unit_id", "demand_id", "reservataire"])
        table["reservataire "] = table["reservataire"]
        write_table(table, files["allocation"])
    elif breakage == "missing_file":
        files["allocation"].unlink()
    elif breakage == "filed_after":  # as strict as `solve`: not in the round, not housed
        write_demands(demands_with({"D2": {"filed_on": dt.date(2026, 4, 2)}}), files["demands"])
    elif breakage == "released_after":
        extra = ["--on", "2026-02-27"]  # the latest unit is released 2026-03-01
    else:
        year = tmp_path / "year.yaml"
        year.write_text("flux_units: -3\n")
        extra += ["--year-so-far", str(year)]
    code, out = invoke(files, *extra)
    assert code == 2, out
    assert "error:" in out and "Traceback" not in out
    if breakage == "missing_column":  # the file is named, not the table's role ("allocation")
        assert f"{files['allocation']}: file, field 'reservataire'" in out, out
    if breakage == "repeated_column":
        assert (
            f"{files['allocation']}: file, field 'reservataire', value '': "
            "column appears more than once"
        ) in out, out
    if breakage == "filed_after":
        assert f"{files['demands']}: row 2, field 'filed_on'" in out, out
        assert "date in the future (after the as-of date 2026-03-31)" in out, out
    if breakage == "released_after":
        assert f"{files['units']}: " in out and "field 'released_on'" in out, out


def test_a_blank_line_in_the_allocation_is_the_file_s_problem(files: dict[str, Path]) -> None:
    """A blank line is said as in the units and demands files: the line, its row, exit 2.

    It (a hand edit, a spreadsheet's save) was judged as allocating unit '' to demand '': two
    violations, exit code 1 and one allocation more counted.
    """
    text = files["allocation"].read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    files["allocation"].write_text("".join([*lines[:3], "\n", *lines[3:]]), encoding="utf-8")
    code, out = invoke(files, "--on", "2026-03-31")
    assert code == 2, out
    assert (
        f"{files['allocation']}: row 3, field '', value '': a blank line: every field is empty "
        "(remove it)"
    ) in out
    files["orientation"].write_text(
        files["orientation"].read_text(encoding="utf-8") + ",\n", encoding="utf-8"
    )
    files["allocation"].write_text(text, encoding="utf-8")
    code, out = invoke(files, "--on", "2026-03-31", "--orientation", str(files["orientation"]))
    assert code == 2, out
    assert "a blank line: every field is empty (remove it)" in out
    assert "Traceback" not in out


def test_a_soft_ceiling_says_what_it_allows_not_what_it_needs(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """A ceiling's shortfall line reads 'allows at most N' (it read 'needs N', a floor's words).

    The 5 allocations hold one Q1-or-ANRU household (the mixity test above: 1 counted of the
    3 allocations outside QPV); a count ceiling of 0 on them is over by 1.
    """
    import yaml

    from matching.policy.loader import BUNDLED_MODELS

    data = yaml.safe_load((BUNDLED_MODELS / "default-2026.yaml").read_text(encoding="utf-8"))
    data["quotas"]["mode"] = "soft"
    data["quotas"]["rules"].append(
        {
            "id": "no_q1", "label": "No Q1 household", "bound": "ceiling", "measure": "count",
            "target": 0, "count": [{"field": "demand.q1_or_anru", "op": "eq", "value": True}],
        }
    )  # fmt: skip
    policy = tmp_path / "soft.yaml"
    policy.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    code, out = invoke(files, "--policy", str(policy), "--on", "2026-03-31")
    assert code == 0, out
    assert "no_q1: 1 counted of 5, allows at most 0; shortfall 1 x weight 1,000" in out


def test_the_group_of_units_outside_the_flux_is_named_not_shown_as_the_epci(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """A rule scoped by réservataire names its group '' (the units outside the flux).

    Each réservataire's group, and the group of U5 (excluded from the flux, réservataire ''),
    holds 1 allocation; a count floor of 2 per group is short by 1 in each. The '' group
    printed as an EPCI-wide rule: 'two_each: 1 counted of 1' and '-' in the KPI table.
    """
    import yaml

    from matching.policy.loader import BUNDLED_MODELS

    data = yaml.safe_load((BUNDLED_MODELS / "default-2026.yaml").read_text(encoding="utf-8"))
    data["quotas"]["mode"] = "soft"
    data["quotas"]["rules"] = [
        {
            "id": "two_each", "label": "Two per réservataire", "bound": "floor",
            "measure": "count", "target": 2, "count": [], "scope": "reservataire",
        }
    ]  # fmt: skip
    policy = tmp_path / "soft.yaml"
    policy.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    code, out = invoke(
        files, "--policy", str(policy), "--on", "2026-03-31",
        "--orientation", str(files["orientation"]), "--kpis",
    )  # fmt: skip
    assert code == 0, out
    assert "two_each [(no réservataire)]: 1 counted of 1, needs 2; shortfall 1" in out
    assert "two_each [etat]: 1 counted of 1, needs 2; shortfall 1" in out
    kpi_row = next(line for line in out.splitlines() if line.lstrip().startswith("two_each "))
    assert kpi_row.split()[1:3] == ["(no", "réservataire)"], kpi_row
