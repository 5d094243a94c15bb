"""Bounds of the numbers a user gives: seeds and the sizes of generated data.

One place for the limits shared by the scenario models, `SolveParams`, the simulation settings,
the generator and the command line, so that a value accepted by one of them is accepted by
every other that it reaches. Imports only `matching.exceptions`: any layer can import it.
"""

from __future__ import annotations

from matching.exceptions import PolicyError

MAX_SEED = 2**31 - 1
"""Largest seed: CP-SAT's ``random_seed`` is an int32.

A scenario's seed seeds the generator, the simulation's draws and, by default, the solver; the
generator and numpy take any non-negative integer, CP-SAT only an int32, so a larger seed was
accepted when read and crashed the first optimal round with a TypeError.
"""


MAX_ROWS = 999_999
"""Most units, demands or yearly arrivals that can be generated.

Why: a typo such as ``arrivals_per_year: 100000000000`` asked numpy for 745 GiB and died with a
MemoryError. The bound keeps the generated unit ids (``U2026-000001``, six digits) in order and
is four times the 250,000-demand Paris-sized file of docs/territory.md, 60 times the Caen la Mer
stock. Measured: 999,999 units and demands, and as many arrivals, take about 35 s and 4 GB.
"""


MAX_SEEDS = 1_000
"""Most seeds (simulated years per policy) a comparison runs.

Why: ``--seeds 2147483647`` built the list of two billion seeds and their folders before the
first year, and the kernel killed the process for its memory. A Caen la Mer year takes about
17 s: 1,000 seeds of four policies are already most of a day on 2 cores.
"""


def check_seeds(first: int, count: int = 1, what: str = "seed") -> None:
    """Refuse seeds ``first`` to ``first + count - 1`` unless all lie in ``[0, MAX_SEED]``.

    For the seeds given in code (`matching.simulation.inputs.year_data`, a comparison's seed
    range), which bypass the models' validation.

    Raises
    ------
    PolicyError
        Naming ``what`` and the first seed out of range.
    """
    last = first + count - 1
    if first < 0:
        raise PolicyError(f"{what}: {first} is negative; seeds lie in [0, {MAX_SEED}]")
    if last > MAX_SEED:
        raise PolicyError(
            f"{what}: seed {last} is above {MAX_SEED}, the largest seed (CP-SAT's random seed "
            "is a 32-bit integer)"
        )


MAX_SCORE = 10**9
"""Largest absolute score (cotation) of one household, and of one criterion's points.

Why: a criterion with points per euro of an income that has no upper bound (10,000 points per
euro of 1e15 EUR of monthly resources) wrapped around the 64-bit integers without a word: the
household scored -8.4e18. Within this bound a round's total score, summed over up to a million
units, stays an exact float (below 2**53) and CP-SAT's objective below its 64-bit limit. The
published grids give a few hundred points; the engine is measured on scores up to about 10**4
(docs/solver.md), and slows down well below this bound.
"""
