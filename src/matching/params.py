"""Solver settings with defaults, a file form (the scenario's ``solver`` mapping) and determinism.

Determinism: CP-SAT's parallel portfolio is not reproducible run to run by default, so with
``deterministic`` (the default) small models run on one worker and large ones interleave their
workers in fixed batches (``interleave_search``); the budget ``time_limit_s`` is spent in
CP-SAT's deterministic time (a work count, not seconds), so a search cut by the budget stops at
the same point whatever the machine's load. With the fixed seed, stable input order and stable
output sorting, the same inputs give the same files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
)

from matching.exceptions import PolicyError
from matching.limits import MAX_SEED
from matching.policy.loader import format_validation_error


class SolveParams(BaseModel):
    """Parameters of one allocation round's solve.

    Strict types: a boolean is not a number and a float not an integer (pydantic would turn
    ``seed: true`` into 1 and ``num_workers: 2.0`` into 2 without a word); an integer is
    still a real number (``time_limit_s: 5``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    time_limit_s: StrictFloat = Field(
        default=60.0,
        gt=0,
        description="Budget of work in about seconds (CP-SAT's deterministic time, the "
        "branching's estimated LP work); wall time may be 2-3x",
    )
    num_workers: StrictInt = Field(default=2, ge=1, le=64, description="CP-SAT worker threads")
    seed: StrictInt = Field(
        default=1, ge=0, le=MAX_SEED, description="Random seed of CP-SAT (an int32)"
    )
    relative_gap: StrictFloat = Field(
        default=0.0, ge=0, le=1, description="Stop when within this gap"
    )
    log: StrictBool = Field(default=False, description="Print CP-SAT's search log")
    deterministic: StrictBool = Field(default=True, description="Reproducible parallel search")
    prune: StrictBool = Field(
        default=True,
        description="Solve a core with an LP optimality certificate (exact); off = full model",
    )
    prune_above_triples: StrictInt = Field(
        default=500,
        ge=0,
        description="Use the LP-certified core only above this many triples (measured: a "
        "25 x 300 round, 1,915 triples, is proven in 4.6 s this way, unproven after 56 s without)",
    )

    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> SolveParams:
        """A copy with ``update`` applied, validated as the constructor validates.

        Why: pydantic's ``model_copy`` does not validate, so ``model_copy(update={"seed": -1})``
        or ``{"num_workers": "2"}`` made settings the constructor refuses, which failed deep in
        CP-SAT (or not at all). An unknown name is refused too.
        """
        if not update:
            return super().model_copy(deep=deep)
        return type(self).model_validate({**self.model_dump(), **update})


def solve_params(
    params: SolveParams | Mapping[str, Any] | None, source: str = "params"
) -> SolveParams:
    """The solver settings as a `SolveParams`, from the forms a library caller passes.

    Why: `matching.scenario.run_scenario` takes its overrides as a mapping, and `solve` given
    one failed deep in the solver (``'dict' object has no attribute 'time_limit_s'``), after
    the whole round was prepared. None gives the defaults; a mapping is validated as the
    constructor validates, every setting it leaves out taking its default.

    Raises
    ------
    PolicyError
        The mapping names an unknown setting or holds an invalid value (naming the key, as
        `run_scenario` does for its overrides).
    TypeError
        Neither a `SolveParams`, a mapping nor None (naming ``source``).
    """
    if params is None:
        return SolveParams()
    if isinstance(params, SolveParams):
        return params
    if not isinstance(params, Mapping):
        raise TypeError(
            f"{source}: a SolveParams or a mapping of its settings, not {type(params).__name__}"
        )
    try:
        return SolveParams.model_validate(dict(params))
    except ValidationError as exc:
        raise PolicyError(format_validation_error(source, exc)) from None
