"""The CALEOL's offers down each unit's shortlist (DOMAIN A6, B6).

Each allocated unit has a ranked shortlist (rank 1 = the household the round allocated it to).
Offers are made rank by rank across the round's units: first every rank-1 candidate, then, for
the units refused, their rank-2 candidates, and so on (Val Touraine Habitat: "1st refuses -> 2nd
-> 3rd"). A candidate who has already accepted another unit of the round is passed over
(``already_housed``, no draw used). A unit whose list runs out goes back to the next round.
Refusal draws come from `matching.simulation.refusals`; nothing here is random.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

ACCEPTED = "accepted"
REFUSED = "refused"
ALREADY_HOUSED = "already_housed"

OFFER_COLUMNS: tuple[str, ...] = ("unit_id", "rank", "demand_id", "score", "outcome")
"""Columns of the offers table, one row per candidate reached, in (unit, rank) order."""


@dataclass(frozen=True)
class OfferRound:
    """What the offers of one solve gave.

    Attributes
    ----------
    offers
        One row per candidate reached (`OFFER_COLUMNS`), sorted by unit id then rank.
    accepted
        ``unit_id, demand_id, rank, score`` of the accepted offers, sorted by unit id.
    exhausted
        Units whose shortlist ran out without an acceptance, sorted.
    """

    offers: pd.DataFrame
    accepted: pd.DataFrame
    exhausted: tuple[str, ...]


def make_offers(
    shortlist: pd.DataFrame,
    probability: Mapping[str, float],
    draws: Mapping[str, np.ndarray],
    housed: set[str],
) -> OfferRound:
    """Offer each shortlisted unit down its list until a household accepts.

    Parameters
    ----------
    shortlist
        ``unit_id, rank, demand_id, score`` (rows without a demand, e.g. a recorded reason for
        a short list, are ignored).
    probability
        Refusal probability of each unit.
    draws
        Uniforms of each unit, one per rank: the rank-k offer is refused when ``draws[k-1] < p``.
    housed
        Households that have already accepted a unit this round; updated in place.
    """
    rows = shortlist[shortlist["demand_id"].notna() & (shortlist["demand_id"].astype(str) != "")]
    rows = rows.sort_values(["unit_id", "rank"], kind="stable")
    lists: dict[str, list[tuple[int, str, int]]] = {}
    for u, r, d, s in zip(
        rows["unit_id"].astype(str), rows["rank"].astype(int), rows["demand_id"].astype(str),
        rows["score"].astype(int), strict=True,
    ):  # fmt: skip
        lists.setdefault(u, []).append((r, d, s))
    open_units = sorted(lists)
    offers: list[tuple[str, int, str, int, str]] = []
    accepted: list[tuple[str, str, int, int]] = []
    depth = max((len(v) for v in lists.values()), default=0)
    for step in range(depth):
        still_open = []
        for u in open_units:
            if step >= len(lists[u]):
                continue  # list exhausted
            rank, d, s = lists[u][step]
            if d in housed:
                offers.append((u, rank, d, s, ALREADY_HOUSED))
                still_open.append(u)
            elif draws[u][rank - 1] < probability[u]:
                offers.append((u, rank, d, s, REFUSED))
                still_open.append(u)
            else:
                offers.append((u, rank, d, s, ACCEPTED))
                accepted.append((u, d, rank, s))
                housed.add(d)
        open_units = still_open
    done = {a[0] for a in accepted}
    offers_frame = pd.DataFrame(offers, columns=list(OFFER_COLUMNS))
    offers_frame = offers_frame.astype({"rank": "int64", "score": "int64"})
    offers_frame = offers_frame.sort_values(["unit_id", "rank"], kind="stable")
    accepted_frame = pd.DataFrame(accepted, columns=["unit_id", "demand_id", "rank", "score"])
    accepted_frame = accepted_frame.astype({"rank": "int64", "score": "int64"})
    return OfferRound(
        offers=offers_frame.reset_index(drop=True),
        accepted=accepted_frame.sort_values("unit_id", kind="stable").reset_index(drop=True),
        exhausted=tuple(sorted(set(lists) - done)),
    )
