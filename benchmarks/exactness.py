"""Is the fast path exact beyond the test suite's rounds? The LP path against the full model.

The test suite checks, on 50 generated rounds of 8 units x 60 demands, that the LP-certified
path (dominance, LP bound, branching; ``prune=True, prune_above_triples=0``) reaches the same
optimum as plain CP-SAT on the full model (``prune=False``). This runs the same comparison on
larger generated rounds, where the full model may not finish: then the LP path must be proven
optimal, at least as good as the full model's solution and within its bound. Every result is
verified by the independent checker (`matching.round.solve` raises on any disagreement).

With ``--vary-policy`` each seed draws its own policy instead (`varied_policy`): an order
of the objective's stages (any non-empty selection of shortfall, allocations and score), hard
or soft quotas, each floor's target between 0.1 and 0.6, up to two more rules (ceilings, a
count floor, rules per landlord or réservataire), for half the soft ones a shortfall weight
per rule (0, 1, 3 or 1,000) and, for half the seeds, a year so far; one comparison per seed.
The first such sweep found two bugs (a score-first objective "proven" at a worse score, and a
shortfall-only objective that raised), a later one a self-check that refused correct
shortfalls; each fixed with a test.

::

    python -m benchmarks.exactness --seeds 200:240                  # 40 rounds, hard and soft
    python -m benchmarks.exactness --seeds 0:10 --sizes 25x500 --time-limit 60
    python -m benchmarks.exactness --seeds 0:300 --sizes 8x60,10x80,14x120 --vary-policy

Writes ``results/exactness-<date>.md`` and ``.csv`` (`report.dated_stem`); the command fails
(exit code 1) when a round disagrees.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import random
import sys
import time
from typing import Any

import pandas as pd

from benchmarks.report import write_page
from matching.flux import YearSoFar
from matching.generate import generate_territory
from matching.params import SolveParams
from matching.policy import load_policy
from matching.policy.model import Policy, QuotaRule
from matching.policy.quotas import Tally
from matching.round import solve
from matching.types import QuotaMode, Stage

SIZES: tuple[tuple[int, int], ...] = ((25, 500), (40, 400), (30, 800), (50, 300))
"""Units x demands of the generated rounds, taken in turn by seed."""


def soft(policy: Policy) -> Policy:
    """The same policy with soft quotas (shortfalls minimised first)."""
    quotas = policy.quotas.model_copy(update={"mode": QuotaMode.SOFT})
    return policy.model_copy(update={"quotas": quotas})


def outcome(
    units: pd.DataFrame,
    demands: pd.DataFrame,
    policy: Policy,
    params: SolveParams,
    year: YearSoFar | None = None,
) -> dict[str, Any]:
    """Status, stage values and bounds of a checked solve (conflicts when infeasible)."""
    on = pd.Timestamp(units["released_on"].max()).date()
    start = time.perf_counter()
    result = solve(
        units, demands, policy, params, year_so_far=year, on=on, raise_on_infeasible=False
    )
    return {
        "status": result.status,
        "values": tuple(result.stage_values.values()),
        "bounds": tuple(result.stage_bounds.values()),
        "conflicts": tuple(result.conflicts),
        "seconds": round(time.perf_counter() - start, 2),
    }


FLOORS: tuple[str, ...] = (
    "priority_floor_collectivite",
    "priority_floor_action_logement",
    "priority_floor_bailleur",
    "mixity_outside_qpv",
    "mixity_inside_qpv",
)
"""The default policy's floor rules, whose targets `varied_policy` draws."""

STAGE_ORDERS: tuple[tuple[Stage, ...], ...] = tuple(
    order
    for size in (1, 2, 3)
    for order in itertools.permutations((Stage.SHORTFALL, Stage.ALLOCATIONS, Stage.SCORE), size)
)
"""Every non-empty ordered selection of the three stages (15)."""


EXTRA_RULES: tuple[dict[str, Any], ...] = (
    {"id": "q1_ceiling_per_landlord", "bound": "ceiling", "measure": "share", "base": [],
     "count": [{"field": "demand.q1", "op": "eq", "value": True}], "scope": "unit.bailleur"},
    {"id": "priority_count_in_flux", "bound": "floor", "measure": "count",
     "base": [{"field": "in_flux", "op": "eq", "value": True}],
     "count": [{"field": "demand.priority", "op": "eq", "value": True}]},
    {"id": "dalo_ceiling", "bound": "ceiling", "measure": "share", "base": [],
     "count": [{"field": "demand.dalo", "op": "eq", "value": True}]},
    {"id": "non_priority_outside_qpv_per_reservataire", "bound": "floor", "measure": "share",
     "base": [{"field": "unit.qpv", "op": "eq", "value": False}],
     "count": [{"field": "demand.priority", "op": "eq", "value": False}],
     "scope": "reservataire"},
)  # fmt: skip
"""Rules `varied_policy` may add: ceilings, a count floor, rules per landlord or réservataire."""

WEIGHTS: tuple[int, ...] = (0, 1, 3, 1000)
"""Shortfall weights `varied_policy` may give a soft policy's rules."""


def varied_policy(policy: Policy, seed: int) -> tuple[Policy, YearSoFar | None, str]:
    """The policy, and a year so far, drawn from ``seed``.

    The policy gets a stage order, a quota mode, each floor's target in 0.1-0.6 and 0 to 2 of
    `EXTRA_RULES` (a share's target in 0.1-0.7, a count's in 0-4); half the soft ones, a
    weight per rule among `WEIGHTS`. Half the seeds also get a year so far: earlier tallies of
    some whole-EPCI rules. Returns them with a short description (mode, stages, floor targets
    in %, extra rules, weights, "+ year") for the report.
    """
    rng = random.Random(seed)
    stages = rng.choice(STAGE_ORDERS)
    mode = rng.choice((QuotaMode.HARD, QuotaMode.SOFT))
    targets = {rule: round(rng.uniform(0.1, 0.6), 2) for rule in FLOORS}
    rules = [
        r.model_copy(update={"target": targets[r.id]}) if r.id in targets else r
        for r in policy.quotas.rules
    ]
    for extra in rng.sample(EXTRA_RULES, rng.randint(0, 2)):
        share = extra["measure"] == "share"
        target = round(rng.uniform(0.1, 0.7), 2) if share else rng.randint(0, 4)
        rules.append(QuotaRule.model_validate({**extra, "label": extra["id"], "target": target}))
    year = None
    if rng.random() < 0.5:
        tallies: dict[str, dict[str, Tally]] = {}
        for rule in rules:
            if rule.scope is None and rng.random() < 0.6:
                base = rng.randint(0, 40)
                tallies[rule.id] = {"": Tally(base=base, counted=rng.randint(0, base))}
        year = YearSoFar(tallies=tallies)
    weights = ""
    # soft mode: half the seeds weigh each rule 0, 1, 3 or 1,000 (a weight of 0 reports a rule
    # without minimising it; unequal weights trade one rule's shortfall for another's); drawn
    # from a stream of their own, so that every other draw stays what the seed gave before
    weigh = random.Random(f"weights-{seed}")
    if mode == QuotaMode.SOFT and weigh.random() < 0.5:
        rules = [r.model_copy(update={"weight": weigh.choice(WEIGHTS)}) for r in rules]
        weights = " weights " + "/".join(f"{r.weight}" for r in rules)
    quotas = policy.quotas.model_copy(update={"mode": mode, "rules": tuple(rules)})
    objective = policy.objective.model_copy(update={"stages": stages})
    varied = policy.model_copy(update={"quotas": quotas, "objective": objective})
    floors = "/".join(f"{round(100 * targets[r])}" for r in FLOORS)
    added = "".join(f" + {r.id}" for r in rules[len(policy.quotas.rules) :])
    described = (
        f"{mode.value} [{', '.join(s.value for s in stages)}] floors {floors} %{added}{weights}"
    )
    return varied, year, described + (" + year" if year is not None else "")


def verdict(lp_path: dict[str, Any], full: dict[str, Any]) -> str:
    """How the LP path's result compares with the full model's.

    ``equal``; ``within`` (the full model unproven, the LP path proven, at least as good and
    inside its bound); ``other conflict`` (both infeasible, naming different rules); or
    ``DIFFERENT``. When both are infeasible, `run` then checks with `is_conflict` that each
    path's rules alone cannot hold (``DIFFERENT`` otherwise).
    """
    if full["status"] == lp_path["status"] == "INFEASIBLE" and set(full["conflicts"]) != set(
        lp_path["conflicts"]
    ):
        # both infeasible, each naming a set of rules that cannot all hold: when several are
        # out of reach at once the count ranges and CP-SAT's core may name different ones
        return "other conflict"
    if full["status"] in {"OPTIMAL", "INFEASIBLE"}:
        same = all(lp_path[k] == full[k] for k in ("status", "values", "conflicts"))
        return "equal" if same else "DIFFERENT"
    inside = (
        lp_path["status"] == "OPTIMAL"
        and lp_path["values"] >= full["values"]
        and (not full["bounds"] or lp_path["values"] <= full["bounds"])
    )
    return "within" if inside else "DIFFERENT"


def is_conflict(
    units: pd.DataFrame,
    demands: pd.DataFrame,
    policy: Policy,
    params: SolveParams,
    year: YearSoFar | None,
    named: tuple[str, ...],
) -> bool:
    """Whether the named quota rules alone (hard, with the flux bands) cannot all hold.

    The full model decides, on the policy with only those rules: what makes ``other
    conflict`` a checked verdict rather than a pass. ``flux_band[...]`` names are the bands,
    always in the model.
    """
    rules = tuple(r for r in policy.quotas.rules if r.id in set(named))
    quotas = policy.quotas.model_copy(update={"mode": QuotaMode.HARD, "rules": rules})
    alone = policy.model_copy(update={"quotas": quotas})
    if year is not None:  # the tallies of those rules only (a year naming others is refused)
        kept = {rule_id: t for rule_id, t in year.tallies.items() if rule_id in set(named)}
        year = year.model_copy(update={"tallies": kept})
    return bool(outcome(units, demands, alone, params, year)["status"] == "INFEASIBLE")


def run(
    seeds: range, sizes: tuple[tuple[int, int], ...], time_limit: float, vary: bool = False
) -> list[dict]:
    """Compare both paths on each seed's round; one record per comparison.

    The default policy hard and soft, or with ``vary`` the seed's `varied_policy`. A path that
    raises is recorded as the verdict ``ERROR`` with the exception (never a crash of the run).
    """
    policy = load_policy("default-2026")
    lp_params = SolveParams(
        num_workers=1, time_limit_s=time_limit, prune=True, prune_above_triples=0
    )
    full_params = SolveParams(num_workers=1, time_limit_s=time_limit, prune=False)
    records = []
    for seed in seeds:
        n_units, n_demands = sizes[seed % len(sizes)]
        units, demands = generate_territory(
            "caen-la-mer", 2026, seed=seed, n_units=n_units, n_demands=n_demands
        )
        policies = [varied_policy(policy, seed)] if vary else [
            (policy, None, "hard"), (soft(policy), None, "soft"),
        ]  # fmt: skip
        for pol, year, mode in policies:
            error = ""
            try:
                lp_path = outcome(units, demands, pol, lp_params, year)
                full = outcome(units, demands, pol, full_params, year)
                judged = verdict(lp_path, full)
                if lp_path["status"] == full["status"] == "INFEASIBLE":
                    # each path's rules, alone, cannot all hold (the full model decides)
                    for named in dict.fromkeys((lp_path["conflicts"], full["conflicts"])):
                        if named and not is_conflict(units, demands, pol, full_params, year, named):
                            judged = "DIFFERENT"  # a path named rules that can all hold
            except Exception as exc:  # a crash is a finding: reported as such
                failed = {"status": "ERROR", "values": (), "bounds": (), "conflicts": (),
                          "seconds": 0.0}  # fmt: skip
                lp_path, full, judged = failed, failed, "ERROR"
                error = f"{type(exc).__name__}: {exc}"
            record = {
                "seed": seed, "units": n_units, "demands": n_demands, "mode": mode,
                "verdict": judged, "error": error,
                **{f"lp_{k}": v for k, v in lp_path.items()},
                **{f"full_{k}": v for k, v in full.items()},
            }  # fmt: skip
            records.append(record)
            print(
                f"seed {seed} {n_units}x{n_demands} {mode}: {record['verdict']} {error}"
                f"(LP path {lp_path['status']} {lp_path['values']} in {lp_path['seconds']} s, "
                f"full {full['status']} {full['values']} in {full['seconds']} s)",
                flush=True,
            )
    return records


def render(records: list[dict], command: str) -> str:
    """The Markdown page of a run: the counts, then the rounds that were not simply equal."""
    counts = pd.Series([r["verdict"] for r in records]).value_counts().to_dict()
    lp_s = sum(r["lp_seconds"] for r in records)
    full_s = sum(r["full_seconds"] for r in records)
    lines = [
        f"# Exactness of the LP path, {dt.date.today().isoformat()}",
        "",
        f"`{command}`: {len(records)} comparisons; "
        + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        + f". LP path {lp_s:.1f} s in all, full model {full_s:.1f} s.",
        "",
        "`equal`: the same status and stage values; `within`: the full model stopped at its "
        "time limit unproven, and the LP path is proven optimal, at least as good and within "
        "the full model's bound; `other conflict`: both infeasible, naming different rules "
        "(several conflicts at once); when both are infeasible, the full model confirms each "
        "path's rules alone cannot all hold (`DIFFERENT` otherwise); `ERROR`: a path raised. "
        "Every "
        "result was checked by the independent checker. `mode`: hard or soft, or the seed's "
        "drawn policy.",
        "",
        "| seed | units x demands | mode | verdict | LP path | full model |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        if r["verdict"] != "equal":
            lines.append(
                f"| {r['seed']} | {r['units']} x {r['demands']} | {r['mode']} | {r['verdict']} "
                f"| {r['lp_status']} {r['lp_values']} | {r['full_status']} {r['full_values']} "
                f"(bound {r['full_bounds']}){' ' + r['error'] if r.get('error') else ''} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Run the comparisons, write the dated page and CSV, exit 1 on any difference."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", default="200:240", help="A:B, the seeds A to B-1")
    parser.add_argument("--sizes", default=None, help="e.g. 25x500,40x400 (taken in turn)")
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument(
        "--vary-policy", action="store_true",
        help="each seed draws a stage order, a quota mode, floor targets, extra rules and weights",
    )  # fmt: skip
    args = parser.parse_args(argv)
    first, last = (int(x) for x in args.seeds.split(":"))
    sizes = SIZES
    if args.sizes:
        sizes = tuple((int(u), int(d)) for u, d in (s.split("x") for s in args.sizes.split(",")))
    records = run(range(first, last), sizes, args.time_limit, vary=args.vary_policy)
    page = write_page("exactness", records, render, "benchmarks.exactness", argv)
    print(f"results written to {page}")
    if any(r["verdict"] not in {"equal", "within", "other conflict"} for r in records):
        sys.exit(1)


if __name__ == "__main__":
    main()
