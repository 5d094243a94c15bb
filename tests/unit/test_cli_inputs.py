"""Bad command-line values and unusable output folders: a message and exit code 2, no traceback.

Every case is refused before anything is solved or written, so these tests are fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import matching.cli.commands  # noqa: F401  (registers the commands on the group)
from matching.cli import cli

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
TINY = SCENARIOS / "tiny.yaml"
TINY_YEAR = SCENARIOS / "tiny-year.yaml"


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def refused(got: Result, *words: str) -> None:
    """Exit code 2, each word in the message, and no traceback (an uncaught error exits 1)."""
    assert got.exit_code == 2, (got.exit_code, got.output, got.exception)
    assert "Traceback" not in got.output
    for word in words:
        assert word in got.output, got.output


def year_scenario(folder: Path, seed: int) -> Path:
    """The tiny year with another seed."""
    path = folder / "year.yaml"
    path.write_text(TINY_YEAR.read_text().replace("seed: 1\n", f"seed: {seed}\n"))
    return path


# --- seeds: 0 to 2**31 - 1, what CP-SAT's int32 random_seed takes --------------------------------


@pytest.mark.parametrize("seed", ["-1", "2147483648"])
@pytest.mark.parametrize("command", ["simulate", "solve", "generate"])
def test_seed_out_of_range_is_a_usage_error(tmp_path: Path, command: str, seed: str) -> None:
    """Was: simulate --seed=-1 a ValueError; 2**31 a CP-SAT crash (simulate) or accepted (solve)."""
    out = tmp_path / "out"
    args = {
        "simulate": ["simulate", TINY_YEAR, "--rounds", "1"],
        "solve": ["solve", TINY],
        "generate": ["generate", "--units", "5", "--demands", "5"],
    }[command]
    got = run(*args, "--out", out, f"--seed={seed}")
    refused(got, "--seed", "0<=x<=2147483647")
    assert not out.exists()


def test_compare_refuses_seeds_past_the_bound_before_running(tmp_path: Path) -> None:
    """Seeds 2**31 - 1 and 2**31: the second crashed CP-SAT after the first year had run."""
    out = tmp_path / "out"
    got = run("compare", year_scenario(tmp_path, 2**31 - 1), "--policies", "optimal",
              "--seeds", "2", "--jobs", "2", "--rounds", "1", "--out", out)  # fmt: skip
    refused(got, "--seeds", "2147483648")
    assert not out.exists()


@pytest.mark.parametrize("year", ["-5", "99999"])
def test_generate_year_is_a_range_like_a_scenarios(tmp_path: Path, year: str) -> None:
    """The option --year of generate takes the years a scenario takes (2000-2100)."""
    got = run("generate", "--units", "5", "--demands", "5", "--out", tmp_path / "o", "--year", year)
    refused(got, "--year", "2000<=x<=2100")


# --- output folders that cannot be made: refused like solve's, before any round runs -------------


def _blocked_outs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Output folders that cannot be created, and the path the message must name."""
    afile = tmp_path / "afile"
    afile.write_text("")
    outs = {"under-a-file": (afile / "sub", str(afile / "sub"))}
    for name in ("rounds", "state", "runs"):  # a file where the command makes a folder
        out = tmp_path / f"with-{name}"
        out.mkdir()
        (out / name).write_text("")
        outs[f"file-{name}"] = (out, str(out / name))
    if Path("/proc/self").is_dir():  # Linux: no folder can be made in /proc, even by root
        outs["proc"] = (Path("/proc/nope"), "/proc/nope")
    return outs


def _blocked_out(tmp_path: Path, case: str) -> tuple[Path, str]:
    """One of `_blocked_outs`: the ``--out`` folder and the path the refusal names (or skip)."""
    outs = _blocked_outs(tmp_path)
    if case not in outs:
        pytest.skip("no /proc")
    return outs[case]


@pytest.mark.parametrize("case", ["under-a-file", "file-rounds", "file-state", "proc"])
def test_simulate_out_that_cannot_be_made(tmp_path: Path, case: str) -> None:
    """Was a FileNotFoundError or NotADirectoryError traceback (exit 1), after the year's data."""
    out, named = _blocked_out(tmp_path, case)
    refused(run("simulate", TINY_YEAR, "--rounds", "1", "--out", out), named, "cannot create",
            "problem(s) with the output:")  # fmt: skip
    assert not (out / "allocations.csv").exists()


@pytest.mark.parametrize("case", ["under-a-file", "file-runs", "file-rounds", "proc"])
def test_compare_out_that_cannot_be_made(tmp_path: Path, case: str) -> None:
    """Refused before any year runs: no run folder is left, whichever folder is in the way."""
    out, named = _blocked_out(tmp_path, case)
    if case == "file-rounds":  # the first run's rounds folder is a file
        out = tmp_path / "cmp"
        first = out / "runs" / "seniority" / "seed-1"
        first.mkdir(parents=True)
        (first / "rounds").write_text("")
        named = str(first / "rounds")
    got = run("compare", TINY_YEAR, "--policies", "seniority,bands", "--rounds", "1", "--out", out)
    refused(got, named, "cannot create")
    assert not (out / "kpis.csv").exists()
    assert not list(out.glob("runs/*/*/rounds/*"))  # no round of any year was played


@pytest.mark.parametrize("option", ["--units", "--demands"])
def test_generate_sizes_have_an_upper_bound(tmp_path: Path, option: str) -> None:
    """Was a numpy MemoryError traceback (745 GiB asked for 10**11 units)."""
    args = {"--units": "5", "--demands": "5"} | {option: "100000000000"}
    got = run("generate", *[x for kv in args.items() for x in kv], "--out", tmp_path / "o")
    refused(got, option, "1<=x<=999999")


# --- --rounds: at most the rounds of the year ----------------------------------------------------


@pytest.mark.parametrize("command", ["simulate", "compare"])
def test_rounds_past_the_year_is_a_usage_error(tmp_path: Path, command: str) -> None:
    """--rounds 99 on a monthly year was silently 12 rounds."""
    out = tmp_path / "out"
    got = run(command, TINY_YEAR, "--rounds", "13", "--out", out)
    refused(got, "--rounds", "13", "a monthly year has 12 rounds")
    assert not out.exists()


def test_compare_refuses_a_count_of_seeds_past_its_bound(tmp_path: Path) -> None:
    """The count of seeds is bounded as an option too (two billion was killed for memory)."""
    out = tmp_path / "out"
    got = run("compare", TINY_YEAR, "--policies", "optimal", "--seeds", "2147483647",
              "--rounds", "1", "--out", out)  # fmt: skip
    refused(got, "--seeds", "1000")
    assert not out.exists()
