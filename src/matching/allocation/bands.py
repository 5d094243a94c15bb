"""``bands``: choice-based lettings, priority band first, then the banding date.

Choice-based lettings (the English "banding" schemes) sort applicants into bands of need and,
within a band, by the date they entered it. Here the bands are the French priorities of
CCH L441-1 (DOMAIN A1): band 0 recognised DALO households, band 1 other priority households
(at least one L441-1 category), band 2 everyone else; the banding date is the first filing date
(the data has no date of entry into a band). Ties keep the policy's tie-break order. The
skeleton is `matching.allocation.greedy`.
"""

from __future__ import annotations

import numpy as np

from matching.allocation.greedy import GreedyPolicy
from matching.solver.instance import RoundInstance

BAND_DALO, BAND_PRIORITY, BAND_OTHER = 0, 1, 2
"""The bands, in the order they are served."""


def band_of(inst: RoundInstance) -> np.ndarray:
    """Each household's band: DALO, other priority, or other (int64)."""
    dalo = inst.demands["dalo"].to_numpy(dtype=bool)
    priority = inst.demands["priority"].to_numpy(dtype=bool)
    return np.where(dalo, BAND_DALO, np.where(priority, BAND_PRIORITY, BAND_OTHER)).astype(np.int64)


def by_band(inst: RoundInstance) -> np.ndarray:
    """Rank households by band, then banding date (first filing), then the tie-break order."""
    filed = inst.demands["filed_on"].to_numpy().astype("datetime64[D]").astype(np.int64)
    order = np.lexsort((inst.tie_rank, filed, band_of(inst)))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


BANDS = GreedyPolicy("bands", by_band)
"""Each unit, in release order, to the first household of its pool by band then banding date."""
