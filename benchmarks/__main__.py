"""Run the benchmarks of issue 5: the ladder of round sizes and the external references.

::

    python -m benchmarks                      # everything, under 20 min on 2 cores
    python -m benchmarks --quick              # 3 smaller rounds, assign100/500, HDB 123
    python -m benchmarks --only caen-month --only orlib
    python -m benchmarks --time-limit 30      # the engine's and HiGHS's budget per case (s)

Every measurement runs in its own process (``--worker``, not for direct use) with a timeout, so
one case that crashes, runs out of memory or overruns loses its own cell only; the run as a whole
stops starting new cases once ``--budget-min`` is spent. Results go to
``benchmarks/results/<name>-<date>.md`` and ``.csv`` (`run_name`); a run of the full ladder
(neither ``--quick`` nor ``--only``) also refreshes the table in ``benchmarks/README.md``
(`updates_readme`). Benchmarks are never run as timed tests.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.cases import CASES, QUICK_CASES
from benchmarks.ladder import METHODS

ROOT = Path(__file__).resolve().parent.parent
ORLIB = ("assign100", "assign500", "assign600", "assign700")
QUICK_ORLIB = ("assign100", "assign500")


def worker(kind: str, name: str, method: str, time_limit: float) -> dict[str, Any]:
    """Measure one thing in this process (called in the child)."""
    if kind == "ladder":
        from benchmarks.ladder import measure

        return measure(name, method, time_limit)
    if kind == "orlib":
        from benchmarks.orlib import measure as orlib_measure

        return orlib_measure(name, time_limit)
    if kind == "hdb":
        from benchmarks.hdb import measure as hdb_measure

        record = hdb_measure(name, time_limit, "both" if method == "-" else method)
        return {**record, **record_key(kind, name, method)}
    raise ValueError(f"unknown kind {kind!r}")


def record_key(kind: str, name: str, method: str) -> dict[str, Any]:
    """The fields that say what a record is about, as the worker itself would write them."""
    if kind == "ladder":
        return {"case": name, "method": method}
    key: dict[str, Any] = {"reference": kind, "instance": f"hdb-{name}" if kind == "hdb" else name}
    if method != "-":
        key["part"] = method
    return key


def memory_cap(gb: float) -> Callable[[], None]:
    """A pre-exec hook capping the child's address space (and its children's) at ``gb`` GB.

    The Paris-sized round once grew to 23 GB and the kernel's OOM killer stopped it, on a machine
    shared with other jobs; with the cap the child fails alone with a MemoryError instead.
    """

    def cap() -> None:
        limit = int(gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return cap


def run_child(
    kind: str, name: str, method: str, time_limit: float, timeout: float, memory_gb: float = 12.0
) -> dict[str, Any]:
    """Run `worker` in a fresh interpreter; a record even when it times out or crashes."""
    args = [
        sys.executable,
        "-m",
        "benchmarks",
        "--worker",
        kind,
        name,
        method,
        "--time-limit",
        str(time_limit),
    ]
    base = record_key(kind, name, method)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    start = time.perf_counter()
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
        preexec_fn=memory_cap(memory_gb),
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child and anything it started (HiGHS)
        proc.communicate()
        return {**base, "status": "timeout", "note": f"killed after {timeout:.0f} s"}
    wall = round(time.perf_counter() - start, 1)
    if proc.returncode != 0:
        last = (err.strip().splitlines() or ["no output"])[-1]
        return {
            **base,
            "status": "crashed",
            "note": f"exit {proc.returncode}: {last[:200]}",
            "wall_s": wall,
        }
    record: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    record["wall_s"] = wall
    return record


def plan(args: argparse.Namespace) -> list[tuple[str, str, str, float]]:
    """(kind, name, method, timeout s) in run order: references, then the ladder by size."""
    t = args.time_limit
    cases = QUICK_CASES if args.quick else tuple(CASES)
    orlib = QUICK_ORLIB if args.quick else ORLIB
    todo: list[tuple[str, str, str, float]] = []
    todo += [("orlib", n, "-", 2 * t + 60) for n in orlib]
    todo += [("hdb", "small", "-", 4 * t + 90)]
    for name in cases:
        case = CASES[name]
        todo.append(("ladder", name, "scipy", 600))
        todo.append(("ladder", name, "matching", 2 * t * case.time_factor + 90))
        todo.append(("ladder", name, "highs", 2 * (case.highs_time_limit or t) + 120))
    if not args.quick:  # with the caps only: scipy gives the exact welfare without them
        todo.append(("hdb", "large", "caps", 2 * t + 90))
    todo += [("ladder", name, "greedy", 600) for name in cases]  # last: the least at stake
    if args.only:
        wanted = set(args.only)
        todo = [
            item for item in todo if {item[0], item[1], item[2], f"{item[1]}:{item[2]}"} & wanted
        ]
    return todo


def run_name(args: argparse.Namespace) -> str:
    """The results file stem: ``--name``, else ``ladder``, ``ladder-quick``, ``ladder-partial``."""
    if args.name:
        return str(args.name)
    return "ladder-quick" if args.quick else "ladder-partial" if args.only else "ladder"


def updates_readme(args: argparse.Namespace) -> bool:
    """Whether the run refreshes the "Latest table" of benchmarks/README.md: the full ladder only.

    Why: that table is the project's reference figures; a ``--quick`` run (smaller rounds, no
    Paris-sized or pooled year) or an ``--only`` subset replaced it with a partial table, which
    the README then presented as the latest run.
    """
    return not args.quick and not args.only


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's options (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small cases only (a few minutes)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"a case ({', '.join(CASES)}), a method ({', '.join(METHODS)}), orlib, hdb, an "
        "instance (assign100, small, large) or case:method; repeatable",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=30.0,
        help="budget of the engine and of HiGHS per case, s (default 30; pooled year: 4 times, "
        "Paris-sized: 10 times)",
    )
    parser.add_argument(
        "--budget-min",
        type=float,
        default=19.0,
        help="stop starting new measurements after this many minutes",
    )
    parser.add_argument(
        "--memory-gb",
        type=float,
        default=12.0,
        help="address-space cap of each measurement's process, GB (default 12; goal: 8)",
    )
    parser.add_argument("--name", default=None, help="results file stem (default by run kind)")
    parser.add_argument(
        "--worker", nargs=3, metavar=("KIND", "NAME", "METHOD"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    for option in ("time_limit", "budget_min", "memory_gb"):
        value = getattr(args, option)
        if not (math.isfinite(value) and value > 0):  # every measurement failed, exit 0
            parser.error(f"--{option.replace('_', '-')} {value}: a number > 0")
    if args.only and not args.worker:
        # a name that selects nothing ("caen-year-bindng", or a case a --quick run does not
        # have) was dropped without a word: a typo alone wrote an empty results page, exit 0
        everything = plan(argparse.Namespace(**{**vars(args), "only": None}))
        parts = {part for item in everything for part in item[:3]} - {"-"}
        known = parts | {f"{name}:{method}" for _, name, method, _ in everything}
        unknown = [name for name in args.only if name not in known]
        if unknown:
            parser.error(
                f"--only {', '.join(unknown)}: selects nothing"
                f"{' in a --quick run' if args.quick else ''} (known: {', '.join(sorted(parts))}, "
                "or case:method)"
            )
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the planned measurements, each in its own process, and write the results."""
    args = parse(argv)
    if args.worker:
        kind, name, method = args.worker
        print(json.dumps(worker(kind, name, method, args.time_limit), default=str))
        return

    from benchmarks.report import write

    start = time.perf_counter()
    deadline = start + args.budget_min * 60
    records: list[dict[str, Any]] = []
    for kind, name, method, timeout in plan(args):
        left = deadline - time.perf_counter()
        label = f"{kind} {name} {method}".rstrip(" -")
        if left < 10:
            base = record_key(kind, name, method)
            records.append({**base, "status": "skipped", "note": "run budget spent"})
            print(f"{label}: skipped (budget)", flush=True)
            continue
        record = run_child(kind, name, method, args.time_limit, min(timeout, left), args.memory_gb)
        records.append(record)
        brief = {
            k: record.get(k)
            for k in ("status", "engine_status", "solve_s", "score", "ok")
            if k in record
        }
        print(f"{label}: {brief}", flush=True)
    command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
    path = write(
        records,
        run_name(args),
        command.strip(),
        time.perf_counter() - start,
        update_readme=updates_readme(args),
    )
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
