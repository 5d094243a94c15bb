"""The same year under several allocation policies and seeds: one tidy table and a summary.

For each seed the year's inputs are built once (`engine.year_data`: same releases, same stock,
same arrivals) and simulated under every policy; the renewal and refusal draws are keyed by
(seed, round, id) (`draws`), so the policies meet the same answers wherever they make the same
offers. Each run writes its own folder ``runs/<policy>/seed-<s>/``; the comparison writes
``kpis.csv`` (policy, seed, kpi, value; byte-stable), ``timings.csv`` (wall time per run) and
``summary.md`` (each indicator per policy: mean over the seeds, with the range).

The runs are independent, so ``jobs`` of them can run at once, each in its own process: the
files are the same as one at a time (each run's folder, and the tables in (seed, policy)
order), ``timings.csv`` aside (wall times measured side by side).
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from matching.exceptions import PolicyError
from matching.io import make_folder, write_table
from matching.kpis import mixity_targets
from matching.limits import MAX_SEEDS, check_seeds
from matching.scenario import Scenario
from matching.simulation.adapters import Allocator, Shortlister, resolve_allocator
from matching.simulation.config import SimulationSettings
from matching.simulation.engine import RUN_FOLDERS, Progress, simulate
from matching.simulation.inputs import YearData, year_data
from matching.simulation.outcomes import Q1_REFERENCE_2019, flat_kpis

KPI_COLUMNS: tuple[str, ...] = ("policy", "seed", "kpi", "value")

COMPARISON_FILES: tuple[str, ...] = ("kpis.csv", "timings.csv", "summary.md")
"""The files a comparison writes in its folder, once every run is done (``runs/`` beside)."""


@dataclass(frozen=True)
class Comparison:
    """What a comparison wrote: the tidy KPI table, the wall times and the files."""

    kpis: pd.DataFrame
    timings: pd.DataFrame
    files: list[Path]


@dataclass(frozen=True)
class _Run:
    """One (policy, seed) year: what a worker process needs, all picklable."""

    name: str
    seed: int
    data: YearData
    folder: Path
    allocator: Allocator | None
    shortlister: Shortlister | None
    progress: Callable[[str, int], Progress | None] | None


_Outcome = tuple[int, float, list[tuple[str, float | None]]]
"""Rounds run, wall time, and the flat indicators of one run."""


def _simulate_run(run: _Run) -> _Outcome:
    """Simulate one (policy, seed) year and flatten its indicators (in this or a worker process)."""
    allocator = run.allocator or resolve_allocator(run.name)
    settings = run.data.settings.model_copy(update={"allocation_policy": run.name})
    data = YearData(**{**run.data.__dict__, "settings": settings})
    start = time.perf_counter()
    result = simulate(
        data,
        run.folder,
        allocator=allocator,
        shortlister=run.shortlister,
        progress=run.progress(run.name, run.seed) if run.progress else None,
    )
    return result.state.round, time.perf_counter() - start, list(flat_kpis(result.kpis))


def _worker_start() -> None:
    """Initialise a worker process: Ctrl-C is the parent's to handle (`run_comparison`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _remove_other_runs(runs: Path, policies: Sequence[str], seeds: Sequence[int]) -> None:
    """Remove the run folders of an earlier comparison that this one does not make again.

    Why: a policy or seed not compared now kept its ``runs/<policy>/seed-<s>/`` beside a
    ``kpis.csv`` without it (as `simulate` clears an earlier run's rounds). Only folders of that
    form go (and a policy's folder left empty by it); anything else under ``runs/`` stays.
    Called once this comparison's folders are made: a refused comparison removes nothing.
    """
    kept = {(policy, f"seed-{seed}") for policy in policies for seed in seeds}
    for folder in sorted(p for p in runs.iterdir() if p.is_dir()):
        for run in sorted(r for r in folder.iterdir() if r.is_dir()):
            if re.fullmatch(r"seed-\d+", run.name) and (folder.name, run.name) not in kept:
                shutil.rmtree(run)
        if not any(folder.iterdir()):
            folder.rmdir()


def run_comparison(
    make_data: Callable[[int], YearData],
    policies: Sequence[str],
    seeds: Sequence[int],
    out: Path,
    *,
    allocators: Mapping[str, Allocator] | None = None,
    shortlister: Shortlister | None = None,
    progress: Callable[[str, int], Progress | None] | None = None,
    jobs: int = 1,
) -> Comparison:
    """Simulate the year for every (seed, policy) and write the comparison.

    Parameters
    ----------
    make_data
        Builds a seed's year (called once per seed, shared by the policies).
    policies
        Allocation policy names (`matching.allocation.get_policy`).
    seeds
        Seeds of the data and of every draw.
    out
        Output folder.
    allocators
        Policies by name, instead of the registry (tests).
    shortlister
        Shortlists, instead of `matching.shortlist.shortlists`.
    progress
        ``progress(policy, seed)`` gives the per-round callback of that run, or None.
    jobs
        Runs at once, each in its own process (started afresh: ``spawn``). With more than
        one, ``make_data``'s years, the allocators, the shortlister and ``progress`` are sent
        to the workers, so they must pickle (module-level functions and plain objects do).

    Raises
    ------
    PolicyError
        No policy, a policy given twice, or an unknown one.
    DataError
        ``out`` or a run's folder cannot be created (`matching.io.make_folder`): refused
        before any year runs.
    """
    if not policies:  # it wrote an empty table and summary
        raise PolicyError("no allocation policy to compare")
    twice = sorted(name for name, n in Counter(policies).items() if n > 1)
    if twice:  # it simulated the same years again, into the same folders, under one name
        raise PolicyError(f"allocation policies given twice: {', '.join(twice)}")
    for name in policies:  # an unknown name fails now, not after the years before it
        if name not in (allocators or {}):
            resolve_allocator(name)
    make_folder(out)
    for seed in seeds:  # every run's folders now, not when its turn comes after other years
        for name in policies:
            for folder in RUN_FOLDERS:
                make_folder(out / "runs" / name / f"seed-{seed}" / folder)
    _remove_other_runs(out / "runs", policies, seeds)
    for name in COMPARISON_FILES:
        # an earlier comparison's table and summary, until this one writes its own: stopped
        # midway, it left them (of policies whose runs were just removed) beside its runs
        if (out / name).is_file():
            (out / name).unlink()
    runs = [
        _Run(name, seed, base, out / "runs" / name / f"seed-{seed}",
             (allocators or {}).get(name), shortlister, progress)
        for seed in seeds
        for base in (make_data(seed),)
        for name in policies
    ]  # fmt: skip
    if jobs <= 1 or len(runs) <= 1:
        outcomes = [_simulate_run(run) for run in runs]
    else:
        spawn = multiprocessing.get_context("spawn")  # no fork of a process with solver threads
        with ProcessPoolExecutor(
            max_workers=min(jobs, len(runs)), mp_context=spawn, initializer=_worker_start
        ) as pool:
            # The terminal's Ctrl-C reaches every process of the group: a worker waiting for
            # its next run, or still importing matching, printed a KeyboardInterrupt traceback
            # above the command's `interrupted`. Workers ignore it (from `submit`, which starts
            # them: the child inherits the disposition; then `_worker_start`), and the parent,
            # interrupted, cancels the runs not started and ends the workers.
            main = threading.current_thread() is threading.main_thread()
            previous = signal.getsignal(signal.SIGINT) if main else None
            if previous is not None:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                futures: list[Future[_Outcome]] = [pool.submit(_simulate_run, r) for r in runs]
            finally:
                if previous is not None:
                    signal.signal(signal.SIGINT, previous)
            try:
                outcomes = [f.result() for f in futures]  # in (seed, policy) order
            except KeyboardInterrupt:
                for future in futures:
                    future.cancel()
                for process in list(pool._processes.values()):  # no public way to end them
                    process.terminate()
                raise
    rows: list[tuple[str, int, str, float | None]] = []
    times: list[tuple[str, int, int, float]] = []
    for run, (rounds, seconds, flat) in zip(runs, outcomes, strict=True):
        times.append((run.name, run.seed, rounds, seconds))
        rows += [(run.name, run.seed, kpi, value) for kpi, value in flat]
    kpis = pd.DataFrame(rows, columns=list(KPI_COLUMNS))
    timings = pd.DataFrame(times, columns=["policy", "seed", "rounds", "wall_time_s"])
    timings["wall_time_s"] = timings["wall_time_s"].round(2)
    write_table(kpis, out / "kpis.csv")
    write_table(timings, out / "timings.csv")
    q1_target = mixity_targets(runs[0].data.policy)[0] if runs else 0.25
    (out / "summary.md").write_text(
        summary_markdown(kpis, timings, q1_target=q1_target), encoding="utf-8"
    )
    return Comparison(kpis, timings, [out / "kpis.csv", out / "timings.csv", out / "summary.md"])


def _cell(values: pd.Series) -> str:
    v = pd.to_numeric(values, errors="coerce").dropna()
    if not len(v):
        return "-"
    # a rate of no allocation in some seeds: the mean is of the others, and says so
    some = f" [{len(v)} of {len(values)} seeds]" if len(v) < len(values) else ""
    if len(v) == 1 or v.min() == v.max():
        return f"{v.mean():.4g}{some}"
    return f"{v.mean():.4g} ({v.min():.4g}-{v.max():.4g}){some}"


def summary_markdown(
    kpis: pd.DataFrame, timings: pd.DataFrame, *, q1_target: float | None = 0.25
) -> str:
    """The comparison as Markdown: one row per indicator, one column per policy.

    ``q1_target`` is the policy's target for ``q1_rate_outside_qpv`` (`matching.kpis.
    mixity_targets`; None: the policy sets none), 0.25 by default as in the default policy.
    """
    policies = list(dict.fromkeys(kpis["policy"]))
    seeds = sorted(set(kpis["seed"]))
    lines = [
        "# Allocation policies over a simulated year",
        "",
        f"Seeds: {', '.join(str(s) for s in seeds)}. Each cell: mean over the seeds "
        "(range in brackets when the seeds differ). Rates are shares in [0, 1].",
        "",
        "| indicator | " + " | ".join(policies) + " |",
        "|---|" + "---|" * len(policies),
    ]
    for kpi in dict.fromkeys(kpis["kpi"]):
        mine = kpis[kpis["kpi"] == kpi]
        cells = [_cell(mine[mine["policy"] == p]["value"]) for p in policies]
        lines.append(f"| {kpi} | " + " | ".join(cells) + " |")
    lines += [
        "",
        (
            "No EPCI-wide target for `q1_rate_outside_qpv` in the policy"
            if q1_target is None
            else f"Target for `q1_rate_outside_qpv`: {q1_target:g} (the policy's; CCH L441-1)"
        )
        + f"; French EPCIs reached {Q1_REFERENCE_2019} on average in 2019 (Ancols, DOMAIN B4).",
        "",
        "| policy | wall time per year, s (mean) | rounds |",
        "|---|---|---|",
    ]
    for p in policies:
        t = timings[timings["policy"] == p]
        lines.append(f"| {p} | {t['wall_time_s'].mean():.1f} | {int(t['rounds'].max())} |")
    return "\n".join(lines) + "\n"


def compare_scenario(
    scenario: Scenario,
    policies: Sequence[str],
    n_seeds: int,
    out: Path,
    *,
    settings: SimulationSettings | None = None,
    progress: Callable[[str, int], Progress | None] | None = None,
    jobs: int = 1,
) -> Comparison:
    """Compare policies on a scenario's year, over the seeds ``seed`` to ``seed + n_seeds - 1``.

    Raises
    ------
    PolicyError
        A seed of the range is above `matching.limits.MAX_SEED`: refused before any year runs
        (the year of the last seed crashed CP-SAT after the others had run).
    """
    if not 1 <= n_seeds <= MAX_SEEDS:  # two billion seeds were built, then killed for memory
        raise PolicyError(f"seeds: {n_seeds} years asked for; from 1 to {MAX_SEEDS}")
    check_seeds(scenario.seed, n_seeds, "seeds")
    seeds = [scenario.seed + i for i in range(n_seeds)]
    return run_comparison(
        lambda s: year_data(scenario, seed=s, settings=settings),
        policies,
        seeds,
        out,
        progress=progress,
        jobs=jobs,
    )
