"""Every demand not housed has a row in ``unallocated_demands.csv``, with a reason that holds.

The reasons are judged here from the eligibility predicates pair by pair
(`matching.eligibility.pair_failures`, not the class-based pair builder the solver uses), the
pools of each household (`demand_pools`) and the folder's own ``orientations.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner
from tests.factories import ROUND_DATE, demand, demands_of, unit, units_of

import matching.cli.commands  # noqa: F401  (registers the commands on the group)
from matching.cli import cli
from matching.eligibility import demand_pools, pair_failures
from matching.facts import derive_facts
from matching.io import read_demands, read_table, read_units
from matching.policy import load_policy
from matching.result import UNALLOCATED_DEMAND_REASONS
from matching.round import solve

TINY = Path(__file__).resolve().parents[2] / "scenarios" / "tiny.yaml"


def test_each_household_left_out_says_why() -> None:
    """Each household left out of a two-unit round gets its own reason.

    Both units go to the landlord: the household of another pool, the one in no pool, the one
    above every ceiling and the one that comes after two others each say so.
    """
    units = units_of(unit("F"), unit("G"))
    demands = demands_of(
        demand("A", pools=("bailleur",), dalo=True, annual_income_eur=9000.0),  # priority, Q1
        demand("B", pools=("bailleur",), filed_on=ROUND_DATE.replace(year=2024)),
        demand("C", pools=("bailleur",)),  # filed later than B, same score: B goes first
        demand("P", pools=("action_logement",)),
        demand("N", pools=()),
        demand("R", annual_income_eur=90000.0),  # above the PLUS ceiling of a single person
    )
    result = solve(units, demands, "default-2026", on=ROUND_DATE)
    assert result.status == "OPTIMAL"
    assert sorted(result.allocation["demand_id"]) == ["A", "B"]
    assert set(result.orientation["reservataire"]) == {"bailleur"}
    table = result.unallocated_demands
    assert table.to_dict("records") == [
        {"demand_id": "C", "reason": "units_went_to_others", "eligible_units": 2},
        {"demand_id": "N", "reason": "no_unit_in_its_pools", "eligible_units": 0},
        {"demand_id": "P", "reason": "no_unit_oriented_to_its_pools", "eligible_units": 2},
        {"demand_id": "R", "reason": "no_eligible_unit", "eligible_units": 0},
    ]
    assert set(table["reason"]) <= set(UNALLOCATED_DEMAND_REASONS)
    assert result.counts["demands_not_eligible"] == 2  # N and R


def test_the_folder_accounts_for_every_demand_with_true_reasons(tmp_path: Path) -> None:
    """The tiny round's folder: housed plus left out is every demand, once; each reason holds."""
    out = tmp_path / "out"
    got = CliRunner().invoke(cli, ["solve", str(TINY), "--out", str(out)])
    assert got.exit_code == 0, got.output
    units = read_units(out / "units.csv")
    policy = load_policy(out / "policy.yaml")
    on = ROUND_DATE.replace(month=1)  # 2026-01-31
    demands = derive_facts(read_demands(out / "demands.csv", ignore_derived=True), policy, on)
    allocations = read_table(out / "allocations.csv")
    left = read_table(out / "unallocated_demands.csv")
    orientation = read_table(out / "orientations.csv")
    ids = demands["demand_id"].astype(str)
    assert sorted([*allocations["demand_id"], *left["demand_id"]]) == sorted(ids)
    assert list(left["demand_id"]) == sorted(left["demand_id"])

    # every pair judged by the predicates; eligible = passes every rule, and for a flux unit
    # the household is in some pool
    n_u, n_d = len(units), len(demands)
    u_idx, d_idx = np.tile(np.arange(n_u), n_d), np.repeat(np.arange(n_d), n_u)
    fails = pair_failures(units, demands, u_idx, d_idx, policy)
    passes = ~np.any(np.vstack(list(fails.values())), axis=0).reshape(n_d, n_u)
    pools = demand_pools(demands, policy).astype(np.int64)
    in_flux = units["flux_excluded"].astype(str).eq("").to_numpy()
    eligible = passes & (~in_flux[None, :] | (pools[:, None] != 0))
    res_ids = [r.id for r in policy.reservataires]
    oriented_to = dict(zip(orientation["unit_id"], orientation["reservataire"], strict=True))
    bit = np.array(
        [-1 if u not in oriented_to else res_ids.index(oriented_to[u]) for u in units["unit_id"]]
    )
    in_oriented_pool = ~in_flux[None, :] | ((bit >= 0) & ((pools[:, None] >> bit) & 1 == 1))
    position = {d: i for i, d in enumerate(ids)}
    taken_by = dict(zip(allocations["unit_id"], allocations["demand_id"], strict=True))
    seen = set()
    for row in left.itertuples():
        d = position[row.demand_id]
        seen.add(row.reason)
        assert int(row.eligible_units) == int(eligible[d].sum()), row
        if row.reason == "no_eligible_unit":
            assert not passes[d].any(), row
        elif row.reason == "no_unit_in_its_pools":
            assert pools[d] == 0 and passes[d].any() and not passes[d][~in_flux].any(), row
        elif row.reason == "no_unit_oriented_to_its_pools":
            assert eligible[d].any() and not (eligible[d] & in_oriented_pool[d]).any(), row
        else:
            assert row.reason == "units_went_to_others", row
            open_units = np.flatnonzero(eligible[d] & in_oriented_pool[d])
            assert len(open_units) > 0, row
            assert all(taken_by.get(units["unit_id"][u]) != row.demand_id for u in open_units)
    assert seen == {"no_eligible_unit", "units_went_to_others", "no_unit_oriented_to_its_pools"}
    counts = pd.read_json(out / "result.json", typ="series")["counts"]
    reasons = left["reason"].value_counts()
    assert reasons["no_eligible_unit"] == counts["demands_not_eligible"]
    assert len(left) == counts["demands"] - counts["demands_allocated"]
