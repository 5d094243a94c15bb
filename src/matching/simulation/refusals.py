"""Who refuses an offer: a probability per unit and seeded draws per (round, unit, rank).

DOMAIN B6 ([D]): simulate refusals with a probability; on refusal the unit passes to the next
candidate. The probability may depend on the unit (QPV, number of rooms; `RefusalSettings`),
never on the allocation policy, and the draws are keyed by (seed, round, unit id), one per
shortlist rank: every policy offering a unit in a round meets the same k-th answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from matching.simulation.config import RefusalSettings
from matching.simulation.draws import REFUSAL, keyed_uniforms


def refusal_probability(units: pd.DataFrame, settings: RefusalSettings) -> np.ndarray:
    """Probability that an offer of each unit is refused (QPV setting over rooms over base)."""
    p = np.full(len(units), settings.probability, dtype=np.float64)
    rooms = units["rooms"].to_numpy(dtype=np.int64)
    for n_rooms, value in settings.by_rooms.items():
        p[rooms == n_rooms] = value
    if settings.in_qpv is not None:
        p[units["qpv"].to_numpy(dtype=bool)] = settings.in_qpv
    return p


def refusal_draws(seed: int, round_index: int, unit_ids: pd.Series, size: int) -> np.ndarray:
    """Uniforms of shape ``(units, size)``: the offer at rank k is refused when ``u[k-1] < p``."""
    return keyed_uniforms(seed, REFUSAL, round_index, unit_ids.astype(str).tolist(), size)
