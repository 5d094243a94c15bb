"""``seniority``: each unit, in release order, to the eligible household that filed first.

The oldest-first rule of thumb (first come, first served on the first filing date, which a
demand keeps through its renewals, CCH R441-2-7). Households filed the same day keep the
policy's tie-break order (score, then ...). The skeleton is `matching.allocation.greedy`.
"""

from __future__ import annotations

import numpy as np

from matching.allocation.greedy import GreedyPolicy
from matching.solver.instance import RoundInstance


def by_seniority(inst: RoundInstance) -> np.ndarray:
    """Rank households by first filing date (oldest first), then the policy's tie-break order."""
    filed = inst.demands["filed_on"].to_numpy().astype("datetime64[D]").astype(np.int64)
    order = np.lexsort((inst.tie_rank, filed))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


SENIORITY = GreedyPolicy("seniority", by_seniority)
"""Each unit, in release order, to the eligible household of its pool that filed first."""
