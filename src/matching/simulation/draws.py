"""Seeded random numbers keyed by what they are about, not by the order they are asked for.

A refusal draw for unit U in round 3 must be the same whichever allocation policy runs, and
whatever other units exist: so each draw comes from ``numpy.random.default_rng`` seeded with
``(seed, purpose, round, key)``, where ``key`` is a stable 32-bit hash (CRC-32) of the id. Two
policies offering the same unit in the same round to their own rank-k candidates see the same
k-th number.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

REFUSAL = 1
"""Purpose code of the refusal draws."""

LAPSE = 2
"""Purpose code of the renewal draws."""


def id_key(identifier: str) -> int:
    """Stable 32-bit key of an id (CRC-32 of its UTF-8 bytes)."""
    return zlib.crc32(identifier.encode("utf-8"))


def keyed_uniforms(seed: int, purpose: int, step: int, ids: Sequence[str], size: int) -> np.ndarray:
    """Uniforms in [0, 1), shape ``(len(ids), size)``: row i depends only on its key.

    Parameters
    ----------
    seed
        The simulation seed.
    purpose
        `REFUSAL` or `LAPSE`.
    step
        The round number (refusals) or the anniversary year (renewals).
    ids
        Unit or demand ids.
    size
        Numbers per id (one per shortlist rank for refusals).
    """
    out = np.empty((len(ids), size), dtype=np.float64)
    for i, identifier in enumerate(ids):
        out[i] = np.random.default_rng([seed, purpose, step, id_key(identifier)]).random(size)
    return out
