"""External reference: Singapore HDB 2017 launch with ethnic caps per block (Benabbou et al.).

Singapore's Ethnic Integration Policy caps, in every block, the flats that may go to each ethnic
group. Benabbou, Chakraborty, Ho Xuan, Sliwinski and Zick ("Diversity Constraints in Public
Housing Allocation", 2017; "The Price of Diversity in Assignment Problems", 2018) measured the
welfare lost to the caps (the *price of diversity*) on the 2017 launches and found it tiny; their
PuLP model of 3,000 applicants x 1,500 flats took over 12 hours just to write.

Rebuilt here from the copied data (``benchmarks/data/hdb``, origin in ``data/SOURCE.md``):

- **Flats and caps**: the 2017-Q3 rows of ``bto_2017q3_ethnic_quota_by_block.csv`` (one row per
  project, flat type and block, with the slots open to Chinese, Malay and Indian/Others), in file
  order, until the wanted number of flats. The 123-flat case is Sky Vista's two 2-room Flexi
  blocks (27 + 96 flats). For 1,500 flats the last block used (Rivervale Shores 172A) keeps 75 of
  its 174 flats and its caps are scaled by 75/174, rounded up.
- **Applicants**: as many as the launch's ratio (1,289 applicants for 627 2-room Flexi flats at
  Bukit Batok, 253 for 123 flats) or a given number, with ethnic groups drawn in the 2013 shares
  of HDB households (Chinese 77.3 %, Malay 12.5 %, Indian and Others 10.2 %).
- **Price of diversity**: the optimum without caps (scipy's assignment, exact) over the
  engine's optimum with them; on the 123-flat case the engine without caps is checked too.
- **Utilities**: random integers 1-100 per applicant and block (flats of a block are alike),
  seeded; welfare is the sum of the matched applicants' utilities.
- **Caps**: one generic quota rule per (block, group) (`matching.policy.model.QuotaRule`, a count
  ceiling whose ``count`` selects ``unit.block`` and ``demand.ethnicity``), evaluated with
  `matching.policy.conditions.evaluate` on the arcs and passed to the engine as side rows.
- **The engine's model**: one arc per (applicant, block), the block a right node whose capacity
  is its number of flats (`solve_matching`'s ``right_capacity``; `block_arcs`). Flat by flat,
  the identical flats of a block made the LP's tight set huge and the 1,500-flat case did not
  finish in 150 s; by block it is proven in about 1 s. The matching is then spread over the
  block's flats (`to_flats`) and every check below is made flat by flat.
  The HDB fields are not part of the French data contract, so the rules are built with
  ``model_construct`` (the field-registry check is the only validation skipped).

Every result is checked directly on the chosen pairs (count per block and group <= cap), not by
the engine; without caps the engine must equal scipy's assignment optimum, and with caps on the
123-flat case it must equal an independent HiGHS MIP (``scipy.optimize.milp``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from matching.policy.conditions import Condition, evaluate
from matching.policy.model import QuotaRule
from matching.solver.instance import group_ranks
from matching.types import Bound, Measure

DATA = Path(__file__).resolve().parent / "data" / "hdb"
GROUPS = ("Chinese", "Malay", "Indian/Others")
"""The cap groups of the Ethnic Integration Policy (Indian and Others share one cap)."""

EXTRA_SEEDS = 4
"""Further seeds of the 123-flat case whose price of diversity is reported (seeds 2-5)."""


@dataclass(frozen=True)
class Launch:
    """Blocks of a launch: a label, a number of flats and the caps per group (in GROUPS order)."""

    label: np.ndarray  # object, "project block (flat type)"
    flats: np.ndarray  # int64 per block
    caps: np.ndarray  # int64 (blocks, 3)

    @property
    def n_flats(self) -> int:
        """Flats in the launch."""
        return int(self.flats.sum())

    @property
    def first_flat(self) -> np.ndarray:
        """Position of each block's first flat (flats are numbered block by block)."""
        return np.concatenate([[0], np.cumsum(self.flats)[:-1]])


def load_launch(n_flats: int) -> Launch:
    """The first ``n_flats`` flats of the 2017-Q3 blocks with caps, in file order (see module)."""
    frame = pd.read_csv(DATA / "bto_2017q3_ethnic_quota_by_block.csv")
    frame = frame[(frame["Quarterly"] == "2017-Q3") & frame[list(GROUPS)].notna().all(axis=1)]
    flats = frame["No. of Units"].to_numpy(dtype=np.int64)
    caps = frame[list(GROUPS)].to_numpy(dtype=np.int64)
    label = (
        frame["Contract"] + " " + frame["Blocks"].astype(str) + " (" + frame["Flat Type"] + ")"
    ).to_numpy(dtype=object)
    before = np.concatenate([[0], np.cumsum(flats)[:-1]])
    keep = before < n_flats
    flats, caps, label, before = flats[keep], caps[keep], label[keep], before[keep]
    if before[-1] + flats[-1] > n_flats:
        taken = n_flats - before[-1]
        caps[-1] = -(-caps[-1] * taken // flats[-1])  # scaled, rounded up
        flats[-1] = taken
    if flats.sum() != n_flats:
        raise ValueError(f"the 2017-Q3 launch has only {flats.sum()} flats with caps")
    return Launch(label, flats, caps)


def ethnic_shares_2013() -> np.ndarray:
    """Shares of HDB households by cap group in 2013 (Chinese, Malay, Indian + Others)."""
    frame = pd.read_csv(DATA / "hdb_households_by_ethnicity_2008_2013.csv")
    n = frame[frame["shs_year"] == 2013].set_index("ethnic_group")["no_of_households"]
    counts = np.array([n["Chinese"], n["Malay"], n["Indian"] + n["Others"]], dtype=np.float64)
    return counts / counts.sum()


def applicants_per_flat() -> float:
    """Applicants per flat of the Bukit Batok 2-room Flexi launch (first count in the sheet)."""
    frame = pd.read_csv(DATA / "bto_2017q3_applicants_raw.csv")
    row = frame[frame["No. of Applicants"].notna()].iloc[0]
    return float(row["No. of Applicants"]) / float(row["No. of Units"])


@dataclass(frozen=True)
class HdbInstance:
    """Applicants x flats, every pair admissible, with a utility per pair and the cap rules."""

    launch: Launch
    flat_block: np.ndarray  # block index per flat
    ethnicity: np.ndarray  # group index per applicant
    left: np.ndarray  # applicant per pair
    right: np.ndarray  # flat per pair
    weight: np.ndarray  # int64 utility per pair
    rules: list[QuotaRule]

    def pairs_frame(self) -> pd.DataFrame:
        """One row per pair with the fields the cap rules select on (integer codes)."""
        return pd.DataFrame(
            {
                "unit.block": self.flat_block[self.right],
                "demand.ethnicity": self.ethnicity[self.left],
            }
        )


def cap_rules(launch: Launch) -> list[QuotaRule]:
    """One count ceiling per (block, group): the generic quota rule with HDB selectors."""
    rules = []
    for b, label in enumerate(launch.label):
        for g, group in enumerate(GROUPS):
            rules.append(
                QuotaRule.model_construct(
                    id=f"eip-{b}-{g}",
                    label=f"At most {launch.caps[b, g]} flats of {label} to {group} households",
                    bound=Bound.CEILING,
                    measure=Measure.COUNT,
                    target=float(launch.caps[b, g]),
                    base=(),
                    count=(
                        Condition(field="unit.block", op="eq", value=b),
                        Condition(field="demand.ethnicity", op="eq", value=g),
                    ),
                    scope=None,
                    weight=1000,
                    source="HDB Ethnic Integration Policy, block quota (2017-Q3 launch)",
                )
            )
    return rules


def build(n_flats: int, n_applicants: int | None = None, seed: int = 1) -> HdbInstance:
    """The launch's first ``n_flats`` flats and seeded applicants (see the module docstring)."""
    launch = load_launch(n_flats)
    return instance(launch, n_applicants or round(n_flats * applicants_per_flat()), seed)


def instance(launch: Launch, n_applicants: int, seed: int = 1) -> HdbInstance:
    """Seeded applicants (2013 ethnic shares, random utilities per block) for a launch."""
    rng = np.random.default_rng(seed)
    ethnicity = rng.choice(len(GROUPS), size=n_applicants, p=ethnic_shares_2013())
    utility = rng.integers(1, 101, size=(n_applicants, len(launch.flats)), dtype=np.int64)
    flat_block = np.repeat(np.arange(len(launch.flats)), launch.flats)
    left = np.repeat(np.arange(n_applicants), launch.n_flats)
    right = np.tile(np.arange(launch.n_flats), n_applicants)
    weight = utility[left, flat_block[right]]
    return HdbInstance(launch, flat_block, ethnicity, left, right, weight, cap_rules(launch))


def side_rows(inst: HdbInstance) -> list[Any]:
    """The cap rules as the engine's side rows over the flat-level pairs."""
    return cap_rows(inst.rules, inst.pairs_frame())


def cap_rows(rules: list[QuotaRule], frame: pd.DataFrame) -> list[Any]:
    """Each cap rule as a side row over the rows of ``frame`` (pairs or block arcs)."""
    from matching.solver.matching import SideRow

    rows = []
    for rule in rules:
        idx = np.flatnonzero(evaluate(rule.base, frame) & evaluate(rule.count, frame))
        rows.append(
            SideRow(idx, np.ones(len(idx), dtype=np.int64), "<=", int(rule.target), rule.id)
        )
    return rows


def cap_violations(inst: HdbInstance, applicant: np.ndarray, flat: np.ndarray) -> int:
    """How many (block, group) counts of an allocation exceed their cap, counted directly."""
    counts = np.zeros_like(inst.launch.caps)
    np.add.at(counts, (inst.flat_block[flat], inst.ethnicity[applicant]), 1)
    return int((counts > inst.launch.caps).sum())


def valid_matching(applicant: np.ndarray, flat: np.ndarray) -> bool:
    """At most one flat per applicant and one applicant per flat."""
    return len(np.unique(applicant)) == len(applicant) == len(np.unique(flat))


def scipy_welfare(inst: HdbInstance) -> tuple[int, float]:
    """Welfare without caps by scipy's sparse assignment (flats x applicants), and its seconds."""
    graph = sp.csr_matrix(
        (inst.weight.astype(np.float64), (inst.right, inst.left)),
        shape=(inst.launch.n_flats, len(inst.ethnicity)),
    )
    start = time.perf_counter()
    rows, cols = min_weight_full_bipartite_matching(graph, maximize=True)
    seconds = time.perf_counter() - start
    return int(np.asarray(graph[rows, cols]).sum()), seconds


def milp_welfare(inst: HdbInstance, caps: bool, time_limit: float = 60.0) -> tuple[int, float]:
    """Welfare by an independent MIP (scipy's HiGHS) on the same pairs; for small cases only."""
    n_p = len(inst.left)
    n_app, n_flats = len(inst.ethnicity), inst.launch.n_flats
    cols = np.arange(n_p)
    blocks = [
        sp.csr_matrix((np.ones(n_p), (inst.left, cols)), shape=(n_app, n_p)),
        sp.csr_matrix((np.ones(n_p), (inst.right, cols)), shape=(n_flats, n_p)),
    ]
    upper = [np.ones(n_app), np.ones(n_flats)]
    if caps:
        n_b = len(inst.launch.flats)
        key = inst.flat_block[inst.right] * len(GROUPS) + inst.ethnicity[inst.left]
        blocks.append(sp.csr_matrix((np.ones(n_p), (key, cols)), shape=(n_b * len(GROUPS), n_p)))
        upper.append(inst.launch.caps.ravel().astype(np.float64))
    matrix = sp.vstack(blocks).tocsr()
    start = time.perf_counter()
    res = milp(
        -inst.weight.astype(np.float64),
        constraints=LinearConstraint(matrix, -np.inf, np.concatenate(upper)),
        integrality=np.ones(n_p),
        bounds=Bounds(0, 1),
        options={"time_limit": time_limit},
    )
    seconds = time.perf_counter() - start
    if res.status != 0:
        raise RuntimeError(f"milp status {res.status}: {res.message}")
    return round(-res.fun), seconds


def block_arcs(inst: HdbInstance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs folded by block: (applicant, block, utility), one arc per applicant and block.

    The flats of a block are alike (one utility per applicant and block), so the engine sees
    each block once, with its number of flats as capacity (`solve_matching`'s
    ``right_capacity``): 3,000 applicants x 1,500 flats are 4.5 million pairs but only
    3,000 x the number of blocks arcs, and the LP's tight set stops counting every flat.
    """
    n_flats = inst.launch.n_flats
    first_flat = inst.launch.first_flat
    n_app, n_blocks = len(inst.ethnicity), len(inst.launch.flats)
    applicant = np.repeat(np.arange(n_app), n_blocks)
    block = np.tile(np.arange(n_blocks), n_app)
    weight = inst.weight[applicant * n_flats + first_flat[block]]  # pairs are applicant-major
    return applicant, block, weight


def block_rows(inst: HdbInstance, applicant: np.ndarray, block: np.ndarray) -> list[Any]:
    """The cap rules as side rows over the block arcs (the same rules, evaluated on them)."""
    frame = pd.DataFrame({"unit.block": block, "demand.ethnicity": inst.ethnicity[applicant]})
    return cap_rows(inst.rules, frame)


def to_flats(inst: HdbInstance, applicant: np.ndarray, block: np.ndarray) -> np.ndarray:
    """A flat for each matched (applicant, block): the block's flats in order, by applicant id."""
    order = np.lexsort((applicant, block))
    flat = np.empty(len(order), dtype=np.int64)
    flat[order] = inst.launch.first_flat[block[order]] + group_ranks(block[order])
    return flat


def engine(inst: HdbInstance, caps: bool, time_limit: float) -> dict[str, Any]:
    """The engine with or without the cap rows; welfare, status, seconds and the direct check.

    The engine solves the block arcs with the blocks' capacities (`block_arcs`); its matching
    is then spread over the flats (`to_flats`) and checked there, pair by pair, as before.
    """
    from matching.params import SolveParams
    from matching.solver.matching import solve_matching

    t0 = time.perf_counter()
    arc_applicant, arc_block, arc_weight = block_arcs(inst)
    rows = block_rows(inst, arc_applicant, arc_block) if caps else []
    rows_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sol = solve_matching(
        arc_applicant,
        arc_block,
        arc_weight,
        rows,
        maximize=True,
        perfect=False,
        params=SolveParams(time_limit_s=time_limit),
        right_capacity=inst.launch.flats,
    )
    seconds = time.perf_counter() - t0
    applicant = np.asarray(sol.left, dtype=np.int64)
    flat = to_flats(inst, applicant, np.asarray(sol.right, dtype=np.int64))
    key = applicant * inst.launch.n_flats + flat
    pos = np.searchsorted(inst.left.astype(np.int64) * inst.launch.n_flats + inst.right, key)
    welfare = int(inst.weight[pos].sum())
    return {
        "status": sol.status,
        "value": int(sol.value),
        "welfare": welfare,
        "matched": len(applicant),
        "violations": cap_violations(inst, applicant, flat),
        "valid": valid_matching(applicant, flat),
        "rows_s": round(rows_s, 3),
        "seconds": round(seconds, 3),
    }


def measure(case: str, time_limit: float, part: str = "both") -> dict[str, Any]:
    """One HDB case: ``small`` (123 flats, price of diversity) or ``large`` (1,500 x 3,000).

    ``part`` is ``free`` (without caps, against scipy), ``caps`` (with the caps, counted on the
    solution) or ``both`` (and the price of diversity); the run measures the large case in two
    processes so that one overrun keeps the other half.
    """
    inst = build(123, seed=1) if case == "small" else build(1_500, 3_000, seed=1)
    record: dict[str, Any] = {
        "reference": "hdb",
        "instance": f"hdb-{case}",
        "flats": inst.launch.n_flats,
        "applicants": len(inst.ethnicity),
        "blocks": len(inst.launch.flats),
        "pairs": len(inst.left),
        "cap_rows": len(inst.rules),
    }
    floor, floor_s = scipy_welfare(inst)
    record.update(scipy_welfare=floor, scipy_s=round(floor_s, 4))
    checks: list[bool] = []
    if case == "small" and part != "free":
        ref_caps, ref_s = milp_welfare(inst, caps=True)
        record.update(milp_welfare_caps=ref_caps, milp_caps_s=round(ref_s, 3))
    free = capped = None
    try:
        if part in {"both", "free"}:
            free = engine(inst, caps=False, time_limit=time_limit)
        if part in {"both", "caps"}:
            capped = engine(inst, caps=True, time_limit=time_limit)
    except ImportError as exc:
        record.update(engine_status="missing", note=f"solve_matching not importable ({exc})")
        record["ok"] = False
        return record
    except Exception as exc:  # reported in the table, never stops the run
        record.update(engine_status="error", note=f"{type(exc).__name__}: {str(exc)[:200]}")
        record["ok"] = False
        return record
    if free is not None:
        record.update(
            engine_status_no_caps=free["status"],
            welfare_no_caps=free["welfare"],
            engine_no_caps_s=free["seconds"],
        )
        checks += [free["welfare"] == floor, free["value"] == free["welfare"], free["valid"]]
    if capped is not None:
        record.update(
            engine_status_caps=capped["status"],
            welfare_caps=capped["welfare"],
            engine_caps_s=capped["seconds"],
            cap_rows_s=capped["rows_s"],
            cap_violations=capped["violations"],
            matched_caps=capped["matched"],
        )
        checks += [
            capped["value"] == capped["welfare"],
            capped["violations"] == 0,
            capped["valid"],
            capped["welfare"] <= floor,
        ]
        if "milp_welfare_caps" in record:
            checks.append(capped["welfare"] == record["milp_welfare_caps"])
    if capped is not None:  # scipy's welfare is the exact optimum without caps
        record.update(price_of_diversity(floor, capped["welfare"]))
    if case == "small" and part == "both":
        pods = [record["price_of_diversity"]]
        for seed in range(2, 2 + EXTRA_SEEDS):
            other = build(123, seed=seed)
            a = engine(other, caps=False, time_limit=time_limit)
            b = engine(other, caps=True, time_limit=time_limit)
            checks.append(b["violations"] == 0 and b["welfare"] <= a["welfare"])
            pods.append(price_of_diversity(a["welfare"], b["welfare"])["price_of_diversity"])
        record["price_of_diversity_seeds"] = pods
        known = [p for p in pods if p is not None]
        record["price_of_diversity_max"] = max(known) if known else None
    record["ok"] = all(checks)
    return record


def price_of_diversity(free: int, capped: int) -> dict[str, float | None]:
    """Welfare without caps over welfare with caps (>= 1), and the loss in percent."""
    if capped <= 0:  # no solution with caps: no ratio
        return {"price_of_diversity": None, "price_of_diversity_pct": None}
    return {
        "price_of_diversity": round(free / max(1, capped), 5),
        "price_of_diversity_pct": round(100 * (free - capped) / max(1, free), 3),
    }
