"""Territory generator: determinism, calibration on the public figures, valid and loadable output.

Calibration targets and their sources are in docs/territory.md; tolerances are stated per test.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import matching.cli.commands  # noqa: F401  (registers the commands on the group)
from matching.cli import cli
from matching.domain import DEMAND_COLUMNS, UNIT_COLUMNS
from matching.exceptions import PolicyError
from matching.facts import derive_facts
from matching.frames import DEMAND_DTYPES, UNIT_DTYPES
from matching.generate import (
    BINDING_YEAR,
    DEFAULT_CALIBRATION,
    Calibration,
    generate_demands,
    generate_territory,
)
from matching.io import (
    read_demands,
    read_units,
    validate_demands,
    validate_units,
    write_demands,
    write_units,
)
from matching.policy import load_policy
from matching.territory import load_territory

JAN_1 = dt.date(2026, 1, 1)
DEC_31 = dt.date(2026, 12, 31)


@pytest.fixture(scope="module")
def default_year() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seed 1, default sizes (4,000 units, 17,000 demands): the calibrated Caen la Mer year."""
    return generate_territory("caen-la-mer", 2026, seed=1)


@pytest.fixture(scope="module")
def facts(default_year: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    """Derive the facts of the default demands under the default policy, at 1 January 2026."""
    return derive_facts(default_year[1], load_policy("default-2026"), JAN_1)


def _write(units: pd.DataFrame, demands: pd.DataFrame, folder: Path, ext: str) -> bytes:
    folder.mkdir()
    write_units(units, folder / f"units.{ext}")
    write_demands(demands, folder / f"demands.{ext}")
    return (folder / f"units.{ext}").read_bytes() + (folder / f"demands.{ext}").read_bytes()


# --- determinism --------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_same_seed_same_bytes(tmp_path: Path, ext: str) -> None:
    """Two runs with the same seed write identical files; another seed writes different ones."""
    first = _write(*generate_territory(seed=7, n_units=300, n_demands=3000), tmp_path / "a", ext)
    again = _write(*generate_territory(seed=7, n_units=300, n_demands=3000), tmp_path / "b", ext)
    other = _write(*generate_territory(seed=8, n_units=300, n_demands=3000), tmp_path / "c", ext)
    assert first == again
    assert first != other


def test_unit_count_leaves_demands_unchanged() -> None:
    """Units and demands draw from separate streams: changing --units keeps the same demands."""
    _, few = generate_territory(seed=3, n_units=40, n_demands=600)
    _, many = generate_territory(seed=3, n_units=4000, n_demands=600)
    pd.testing.assert_frame_equal(few, many)


# --- canonical, valid frames ----------------------------------------------------------------------


def test_frames_are_canonical_and_valid(default_year: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Columns, dtypes and RangeIndex follow matching.frames, and io's validators accept them."""
    units, demands = default_year
    assert tuple(units.columns) == UNIT_COLUMNS
    assert tuple(demands.columns) == DEMAND_COLUMNS
    assert {c: str(t) for c, t in units.dtypes.items()} == {
        c: str(np.dtype(t)) for c, t in UNIT_DTYPES.items()
    }
    assert {c: str(t) for c, t in demands.dtypes.items()} == {
        c: str(np.dtype(t)) for c, t in DEMAND_DTYPES.items()
    }
    assert isinstance(units.index, pd.RangeIndex) and isinstance(demands.index, pd.RangeIndex)
    codes = load_territory("caen-la-mer").commune_codes()
    checked_units = validate_units(units, "<units>", communes=codes, as_of=DEC_31)
    checked_demands = validate_demands(demands, "<demands>", communes=codes, as_of=JAN_1)
    pd.testing.assert_frame_equal(checked_units, units)
    pd.testing.assert_frame_equal(checked_demands, demands)


def test_ids_dates_and_communes(default_year: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Ids are unique and formatted, dates lie in the year, every commune is a member commune."""
    units, demands = default_year
    assert units["unit_id"].iloc[0] == "U2026-000001"
    assert demands["demand_id"].iloc[-1] == "D2026-0017000"
    assert units["unit_id"].is_unique and demands["demand_id"].is_unique
    assert units["released_on"].is_monotonic_increasing  # ids follow the release date
    assert units["released_on"].min() >= pd.Timestamp(JAN_1)
    assert units["released_on"].max() <= pd.Timestamp(DEC_31)
    assert demands["filed_on"].max() <= pd.Timestamp(JAN_1)  # the stock pending on 1 January
    codes = load_territory("caen-la-mer").commune_codes()
    assert set(units["commune_insee"]) <= codes
    assert set(demands["resident_commune_insee"]) <= codes
    assert set(demands["wished_communes"].explode().dropna()) <= codes


# --- calibration (seed 1, default sizes; targets and sources in docs/territory.md) ---------------


def test_sizes(default_year: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Default sizes: 4,000 units a year, 17,000 pending demands; a January round of ~300 units."""
    units, demands = default_year
    assert len(units) == 4000
    assert len(demands) == 17000
    january = int((units["released_on"].dt.month == 1).sum())
    assert 250 <= january <= 370  # 7.5 % of 4,000 = 300 expected


def test_unit_calibration(default_year: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """QPV 25 % +- 3 pts, T1-T2 22 % +- 3, T5+ 8 % +- 2, financing and exclusions near targets."""
    units = default_year[0]
    assert units["qpv"].mean() == pytest.approx(0.25, abs=0.03)
    assert (units["rooms"] <= 2).mean() == pytest.approx(0.22, abs=0.03)
    assert (units["rooms"] >= 5).mean() == pytest.approx(0.08, abs=0.02)
    financing = units["financing"].value_counts(normalize=True)
    assert financing["PLAI"] == pytest.approx(0.20, abs=0.03)
    assert financing["PLUS"] == pytest.approx(0.70, abs=0.03)
    assert financing["PLS"] == pytest.approx(0.10, abs=0.03)
    assert (units["flux_excluded"] != "").mean() == pytest.approx(0.145, abs=0.03)
    assert units["accessible"].mean() == pytest.approx(0.07, abs=0.02)


def test_demand_calibration(
    default_year: tuple[pd.DataFrame, pd.DataFrame], facts: pd.DataFrame
) -> None:
    """Single adult 73 % +- 2, social tenants 39 % +- 2, seniority 56/19/25 % +- 3 at 1 January."""
    demands = default_year[1]
    assert (demands["adults"] == 1).mean() == pytest.approx(0.73, abs=0.02)
    assert demands["current_social_tenant"].mean() == pytest.approx(0.39, abs=0.02)
    months = facts["seniority_months"]
    assert (months < 12).mean() == pytest.approx(0.56, abs=0.03)
    assert ((months >= 12) & (months < 24)).mean() == pytest.approx(0.19, abs=0.03)
    assert (months >= 24).mean() == pytest.approx(0.25, abs=0.03)
    assert months.mean() == pytest.approx(21, abs=3)  # Calvados: 20 months (2021), 22 (2023)


def test_income_quartiles_match_the_arrete(facts: pd.DataFrame) -> None:
    """Q1 share 25 % +- 3 under the default policy; income per CU median 15,000 EUR +- 2 %."""
    assert facts["q1"].mean() == pytest.approx(0.25, abs=0.03)
    assert facts["income_per_cu"].median() == pytest.approx(15000, rel=0.02)  # Q2, arrêté 2026
    assert facts["income_per_cu"].quantile(0.75) == pytest.approx(20160, rel=0.02)  # Q3


def test_priority_households(
    default_year: tuple[pd.DataFrame, pd.DataFrame], facts: pd.DataFrame
) -> None:
    """DALO 2-4 %, L441-1 category 20-25 %, ANRU 1-2 %, State agents ~5 %, employees ~45 %."""
    demands = default_year[1]
    assert 0.015 <= demands["dalo"].mean() <= 0.04
    assert 0.20 <= (facts["n_priority_categories"] > 0).mean() <= 0.25
    assert 0.01 <= demands["anru"].mean() <= 0.02
    assert demands["state_agent"].mean() == pytest.approx(0.05, abs=0.01)
    assert demands["private_employee"].mean() == pytest.approx(0.45, abs=0.03)


def test_q1_households_fit_fewer_rents_outside_qpv(
    default_year: tuple[pd.DataFrame, pd.DataFrame], facts: pd.DataFrame
) -> None:
    """Rent effort (DOMAIN A2.4) excludes Q1 households from more units outside QPV than inside."""
    units, demands = default_year
    q1 = facts["q1"].to_numpy()
    resources = demands["monthly_resources_eur"].to_numpy()
    benefit = demands["housing_benefit_eur"].to_numpy()

    def fit_rate(rents: np.ndarray, who: np.ndarray) -> float:
        net = rents[:, None] - benefit[None, who]
        ok = np.where(resources[None, who] > 0, net <= 0.33 * resources[None, who], net <= 0)
        return float(ok.mean())

    sample = units.iloc[::10]  # 400 units x 17,000 demands
    outside = sample.loc[~sample["qpv"], "rent_eur"].to_numpy()
    inside = sample.loc[sample["qpv"], "rent_eur"].to_numpy()
    assert fit_rate(outside, q1) < fit_rate(inside, q1) - 0.05
    assert fit_rate(outside, q1) < fit_rate(outside, ~q1) - 0.15


# --- calibration levers --------------------------------------------------------------------------


def _priority_by_seniority(demands: pd.DataFrame) -> tuple[float, float, float]:
    """Share of demands with a priority category: overall, under a year old, over two years."""
    age = (pd.Timestamp(JAN_1) - demands["filed_on"]).dt.days.to_numpy()
    flagged = demands["priority_categories"].map(len).to_numpy() > 0
    return (
        float(flagged.mean()),
        float(flagged[age < 365].mean()),
        float(flagged[age >= 730].mean()),
    )


def test_calibration_levers_change_the_demands_only() -> None:
    """Stronger survivorship (the binding year's levers) moves priority households to recent ones.

    The units and the overall priority share stay; the shares by seniority move as the levers say
    (docs/territory.md, "Q1 and priority households").
    """
    units, base = generate_territory(seed=5, n_units=300, n_demands=6000)
    same_units, moved = generate_territory(
        seed=5, n_units=300, n_demands=6000, calibration=BINDING_YEAR
    )
    pd.testing.assert_frame_equal(units, same_units)
    overall, recent, old = _priority_by_seniority(base)
    overall_b, recent_b, old_b = _priority_by_seniority(moved)
    assert overall_b == pytest.approx(overall, abs=0.02)
    assert recent_b > recent + 0.02
    assert old_b < old / 2
    # the default calibration is the module's constants: passing it changes nothing
    _, explicit = generate_territory(seed=5, n_units=300, n_demands=6000, calibration=Calibration())
    pd.testing.assert_frame_equal(base, explicit)
    assert Calibration() == DEFAULT_CALIBRATION


def test_new_filings_follow_the_calibration() -> None:
    """New demands of a year use the same levers as the stock (here: more hosted Q1 households)."""
    base = generate_demands(seed=2, n_demands=3000)
    hosted = generate_demands(seed=2, n_demands=3000, calibration=Calibration(hosted_share_q1=0.9))
    assert hosted["hosted"].mean() > base["hosted"].mean() + 0.05


@pytest.mark.parametrize(
    ("levers", "named"),
    [
        ({"priority_seniority_factor": (1.0, 2.0)}, "priority_seniority_factor needs 3"),
        ({"income_seniority_effect": (0.0, float("nan"), 1.0)}, "income_seniority_effect"),
        ({"priority_seniority_factor": (0, 0, 0)}, "not all 0"),
        ({"hosted_share_q1": 1.5}, "hosted_share_q1 must be in"),
        ({"q1_qpv_commune_bonus": 0.0}, "q1_qpv_commune_bonus must be"),
    ],
)
def test_a_bad_lever_is_named(levers: dict[str, object], named: str) -> None:
    """A lever out of its range is a ValueError naming it, before anything is generated."""
    with pytest.raises(ValueError, match=named):
        Calibration(**levers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("levers", "named"),
    [
        ({"hosted_share_q1": "0.5"}, "hosted_share_q1 must be a number"),
        ({"hosted_share_q1": True}, "hosted_share_q1 must be a number"),
        ({"q1_qpv_commune_bonus": None}, "q1_qpv_commune_bonus must be a number"),
        ({"q1_qpv_commune_bonus": np.array([2.0])}, "q1_qpv_commune_bonus must be a number"),
        ({"income_seniority_effect": "123"}, "income_seniority_effect needs a tuple of 3"),
        ({"income_seniority_effect": (True, False, True)}, "income_seniority_effect needs a"),
        ({"priority_seniority_factor": {1: 0, 2: 0, 3: 1}}, "priority_seniority_factor needs a"),
    ],
)
def test_a_lever_of_the_wrong_kind_is_named(levers: dict[str, object], named: str) -> None:
    """A string, bool, mapping or None is a TypeError naming the lever, not a lever read wrong.

    Before: ``hosted_share_q1="0.5"`` was accepted and failed inside numpy when generating,
    ``"123"`` became (1.0, 2.0, 3.0), and True became 1.0.
    """
    with pytest.raises(TypeError, match=named):
        Calibration(**levers)  # type: ignore[arg-type]


def test_levers_are_stored_as_floats() -> None:
    """A list, a numpy array or numpy scalars give the same (equal, hashable) calibration."""
    given = Calibration(
        income_seniority_effect=np.array([-0.5, 0.0, 0.5]),  # type: ignore[arg-type]
        priority_seniority_factor=[1.7, 0.7, 0.25],  # type: ignore[arg-type]
        hosted_share_q1=np.float64(0.4),  # type: ignore[arg-type]
        q1_qpv_commune_bonus=np.float32(1.5),  # type: ignore[arg-type]
    )
    assert given == Calibration(q1_qpv_commune_bonus=float(np.float32(1.5)))
    assert hash(given) == hash(Calibration(q1_qpv_commune_bonus=float(np.float32(1.5))))
    assert type(given.hosted_share_q1) is float and type(given.q1_qpv_commune_bonus) is float


def test_a_calibration_that_is_not_one_is_refused() -> None:
    """A dict of levers is a TypeError naming the class to build, not an AttributeError."""
    with pytest.raises(TypeError, match=r"calibration must be a matching\.generate\.Calibration"):
        generate_territory(n_units=10, n_demands=10, calibration={"hosted_share_q1": 0.5})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="calibration must be"):
        generate_demands(n_demands=10, calibration=None)  # type: ignore[arg-type]


# --- sizes and the command line -----------------------------------------------------------------


def test_tiny_size() -> None:
    """A 40-unit, 600-demand territory (the tiny scenario) generates valid frames."""
    units, demands = generate_territory(n_units=40, n_demands=600)
    assert (len(units), len(demands)) == (40, 600)


@pytest.mark.slow
def test_paris_sized_demand_file() -> None:
    """250,000 demands generate in seconds (vectorised), with the same calibration."""
    start = time.perf_counter()
    _, demands = generate_territory(n_units=4000, n_demands=250_000)
    elapsed = time.perf_counter() - start
    assert len(demands) == 250_000
    assert demands["demand_id"].iloc[-1] == "D2026-0250000"
    assert (demands["adults"] == 1).mean() == pytest.approx(0.73, abs=0.01)
    assert elapsed < 30  # about 2-4 s on 2 shared cores


def test_bad_arguments() -> None:
    """An unknown territory or year is a PolicyError naming it; a zero size is refused."""
    with pytest.raises(PolicyError, match="'paris'"):
        generate_territory("paris")
    with pytest.raises(PolicyError, match="2030"):
        generate_territory(year=2030)
    with pytest.raises(ValueError, match="n_units"):
        generate_territory(n_units=0)


def test_cli_counts_one_unit_in_the_singular(tmp_path: Path) -> None:
    """One unit is "1 unit" ("1 units" read as a typo); thousands have their separator."""
    args = ("generate", "--units", "1", "--demands", "1200", "--out", str(tmp_path))
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"wrote {tmp_path / 'units.csv'} (1 unit)",
        f"wrote {tmp_path / 'demands.csv'} (1,200 demands)",
    ]


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_cli_writes_loadable_files(tmp_path: Path, ext: str) -> None:
    """`matching generate` writes both tables, one line each, and they read back unchanged."""
    result = CliRunner().invoke(
        cli,
        [
            *("generate", "--units", "40", "--demands", "600", "--seed", "2"),
            *("--out", str(tmp_path), "--format", ext),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"wrote {tmp_path / f'units.{ext}'} (40 units)",
        f"wrote {tmp_path / f'demands.{ext}'} (600 demands)",
    ]
    units, demands = generate_territory(seed=2, n_units=40, n_demands=600)
    codes = load_territory("caen-la-mer").commune_codes()
    pd.testing.assert_frame_equal(read_units(tmp_path / f"units.{ext}", communes=codes), units)
    pd.testing.assert_frame_equal(
        read_demands(tmp_path / f"demands.{ext}", communes=codes, as_of=JAN_1), demands
    )


def test_cli_default_sizes_under_ten_seconds(tmp_path: Path) -> None:
    """`matching generate` with default sizes runs in under 10 s and its CSV loads cleanly."""
    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path)])
    elapsed = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    assert elapsed < 10
    assert len(read_units(tmp_path / "units.csv", as_of=DEC_31)) == 4000
    assert len(read_demands(tmp_path / "demands.csv", as_of=JAN_1)) == 17000


def test_cli_unknown_territory(tmp_path: Path) -> None:
    """An unknown territory exits with code 2 and a message naming it, without a traceback."""
    result = CliRunner().invoke(cli, ["generate", "--territory", "paris", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown territory 'paris'" in result.output


def test_cli_output_folder_that_cannot_be_made(tmp_path: Path) -> None:
    """An --out under a file exits with code 2, naming the folder, as every other command does."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    out = blocker / "sub"
    args = ["generate", "--units", "3", "--demands", "3", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "problem(s) with the output" in result.output
    assert str(out) in result.output
    assert "Traceback" not in result.output


def test_cli_output_file_that_cannot_be_written(tmp_path: Path) -> None:
    """A units.csv that cannot be written is a problem with the output, not with the input data."""
    (tmp_path / "units.csv").mkdir()  # a folder where the file should go
    args = ["generate", "--units", "3", "--demands", "3", "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "1 problem(s) with the output" in result.output
    assert "input data" not in result.output
    assert "units.csv: cannot write" in result.output


@pytest.mark.parametrize(
    ("arguments", "named"),
    [({"n_units": 2.0}, "n_units"), ({"seed": 1.5}, "seed"), ({"n_demands": "300"}, "n_demands")],
)
def test_a_size_or_seed_that_is_not_a_whole_number_is_named(
    arguments: dict[str, object], named: str
) -> None:
    """A library caller's 2.0 or '300' gets a TypeError naming the argument, not numpy's words."""
    with pytest.raises(TypeError, match=rf"^{named} must be a whole number"):
        generate_territory(**arguments)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^n_demands must be a whole number"):
        generate_demands(n_demands=2.0)  # type: ignore[arg-type]
