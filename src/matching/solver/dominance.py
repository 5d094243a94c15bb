"""Triples that some optimal solution does without: a class's households beyond the unit count.

A class (`matching.solver.rows.row_classes`) is a set of triples that share their unit, their
réservataire and their coefficient on every quota row. Take any solution that houses household
``j`` through a triple of class ``c`` that is not among the ``n_units`` heaviest of ``c``. Of
those heaviest, at most ``n_units - 1`` households are housed at the other units, so one of
them, ``j'``, is not housed at all: moving the unit from ``j`` to ``j'`` changes no quota row,
no flux band, no orientation and no unit's allocation, and loses no weight. Repeating this
(each move puts one more chosen triple among the kept ones) gives a solution as good that uses
kept triples only. So the round restricted to the kept triples has the same optimum, and a
solution proven optimal there is optimal for the whole round; the same moves map any solution
of any subset of the rules, so which rules conflict is unchanged too.

Why: a class of a large round holds many more households than there are units (a Paris-sized
round: 70 million triples in 13,490 classes for 1,000 units, of which 11.9 million are kept;
the Caen la Mer January round: 1.34 million in 4,123 classes for 310 units, 736,000 kept), and
every pass of the LP's pricing, every cut and every count over the triples is that much smaller.
The pooled year (4,000 units, no class of more than 4,045 triples) keeps nearly all.

"Heaviest" uses the triples' order: triples are sorted by unit, réservataire and household
rank, and the rule applies only when the weights never increase along that order within a
(unit, réservataire), as under the policy's stages with the score first in the tie-break
(`undominated` returns None otherwise, and nothing is dropped).
"""

from __future__ import annotations

import numpy as np

from matching.solver.instance import Triples
from matching.solver.rows import first_of_each_class

MIN_DROPPED = 0.1
"""Drop nothing unless at least this fraction of the triples goes.

Why: the round's rows, stage terms and weights are then made again on the kept triples, about
a second on the pooled year, where 90 of its 18.9 million triples would go.
"""


def undominated(
    triples: Triples, classes: np.ndarray, weight: np.ndarray, n_units: int
) -> np.ndarray | None:
    """The sorted positions of each class's ``n_units`` first triples; None to keep them all.

    None when fewer than `MIN_DROPPED` of them would go, and when the weights increase
    somewhere along a (unit, réservataire)'s triples: the first ones would then not be the
    heaviest.
    """
    sizes = np.bincount(classes)
    dropped = int(np.maximum(sizes - n_units, 0).sum())
    if dropped < MIN_DROPPED * len(classes):
        return None
    if not _heaviest_first(triples, weight):
        return None
    return first_of_each_class(classes, n_units)


def _heaviest_first(triples: Triples, weight: np.ndarray) -> bool:
    """Whether the weights never increase along each (unit, réservataire)'s triples."""
    rises = weight[1:] > weight[:-1]
    if not rises.any():
        return True
    at = np.flatnonzero(rises)
    same = (triples.unit[at + 1] == triples.unit[at]) & (triples.res[at + 1] == triples.res[at])
    return not bool(same.any())
