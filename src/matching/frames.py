"""Canonical in-memory tables: domain records <-> pandas DataFrames with fixed dtypes.

Every layer above `domain` exchanges units and demands as DataFrames whose columns are exactly the
fields of `matching.domain.Unit` / `Demand`, in that order, with these dtypes: text as Python
``str`` (object), booleans ``bool``, integers ``int64``, amounts ``float64``, dates
``datetime64[ns]`` at midnight, lists as tuples of ``str`` (object), ``pools`` as ``None`` or a
tuple. `matching.io` produces the same frames from files. Row order is kept; the index is a
RangeIndex, so positions double as compact integer ids in the pair table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd

from matching.domain import DEMAND_COLUMNS, UNIT_COLUMNS, Demand, Unit

UNIT_DTYPES: dict[str, str] = {
    "unit_id": "object", "bailleur": "object", "commune_insee": "object", "qpv": "bool",
    "rooms": "int64", "surface_m2": "float64", "financing": "object", "rent_eur": "float64",
    "accessible": "bool", "flux_excluded": "object", "released_on": "datetime64[ns]",
}  # fmt: skip

DEMAND_DTYPES: dict[str, str] = {
    "demand_id": "object", "filed_on": "datetime64[ns]", "household_size": "int64",
    "adults": "int64", "children_under_14": "int64", "dependants": "int64",
    "disabled_member": "bool", "young_couple": "bool", "annual_income_eur": "float64",
    "monthly_resources_eur": "float64", "housing_benefit_eur": "float64",
    "wished_communes": "object", "needs_accessible": "bool", "dalo": "bool",
    "priority_categories": "object", "anru": "bool", "state_agent": "bool",
    "private_employee": "bool", "resident_commune_insee": "object",
    "current_social_tenant": "bool", "eviction_threat": "bool", "single_parent": "bool",
    "overcrowded": "bool", "current_rent_effort": "float64", "hosted": "bool",
    "unsuitable_size": "bool", "refusals": "int64", "pools": "object",
}  # fmt: skip

assert tuple(UNIT_DTYPES) == UNIT_COLUMNS, "UNIT_DTYPES must follow domain.Unit"
assert tuple(DEMAND_DTYPES) == DEMAND_COLUMNS, "DEMAND_DTYPES must follow domain.Demand"


def _frame(rows: list[dict], columns: tuple[str, ...], dtypes: dict[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns))
    for col, dtype in dtypes.items():
        if dtype == "object":
            frame[col] = pd.Series(list(frame[col]), dtype=object)
        elif dtype.startswith("datetime"):
            frame[col] = pd.to_datetime(frame[col]).astype("datetime64[ns]")
        else:
            frame[col] = frame[col].astype(np.dtype(dtype))
    return frame.reset_index(drop=True)


def units_frame(units: Iterable[Unit]) -> pd.DataFrame:
    """Build the canonical units table from validated Unit records."""
    rows = [u.model_dump() for u in units]
    for row in rows:
        row["financing"] = str(row["financing"].value)
        row["flux_excluded"] = str(row["flux_excluded"].value)
    return _frame(rows, UNIT_COLUMNS, UNIT_DTYPES)


def demands_frame(demands: Iterable[Demand]) -> pd.DataFrame:
    """Build the canonical demands table from validated Demand records."""
    return _frame([d.model_dump() for d in demands], DEMAND_COLUMNS, DEMAND_DTYPES)


def frame_records(
    frame: pd.DataFrame, model: type[Unit] | type[Demand]
) -> list[Unit] | list[Demand]:
    """Turn a canonical table back into validated records (small tables: one object per row)."""
    out = []
    for row in frame.to_dict(orient="records"):
        for key, value in row.items():
            if isinstance(value, pd.Timestamp):
                row[key] = value.date()
            elif isinstance(value, np.generic):
                row[key] = value.item()
        out.append(model.model_validate(row))
    return out  # type: ignore[return-value]


def rows_frame(
    data: Sequence[Unit] | Sequence[Demand] | Sequence[Mapping[str, Any]],
    model: type[Unit] | type[Demand],
    name: str,
) -> pd.DataFrame:
    """A table from the rows a library caller passes instead of a DataFrame, to validate.

    Records give the canonical table; rows as mappings (``df.to_dict("records")``) a table of
    their cells, which the caller validates as any DataFrame, so that a bad cell names its row
    and field. Why: anything else (a mapping of columns, None, a record list with one dict in
    it) failed inside this module with an AttributeError on ``model_dump``.

    Raises
    ------
    TypeError
        Naming ``name``, the accepted forms and what was given (the first row of another form).
    """
    accepted = f"a DataFrame, or a list of {model.__name__} records or of rows as mappings"
    if isinstance(data, Mapping | str | bytes) or not isinstance(data, Iterable):
        hint = " (a mapping of columns: pass pd.DataFrame(it))" if isinstance(data, Mapping) else ""
        raise TypeError(f"{name}: {accepted}, not {type(data).__name__}{hint}")
    rows = list(data)
    form: type = model if not rows or isinstance(rows[0], model) else Mapping
    for i, row in enumerate(rows):
        if not isinstance(row, form):
            first = f" and row 1 a {type(rows[0]).__name__}" if i else ""
            raise TypeError(f"{name}: {accepted}; row {i + 1} is a {type(row).__name__}{first}")
    if form is Mapping:
        return pd.DataFrame(rows)
    return units_frame(rows) if model is Unit else demands_frame(rows)  # type: ignore[arg-type]


_CANONICAL: ContextVar[tuple[pd.DataFrame, ...]] = ContextVar("canonical_tables", default=())
"""The frames `canonical_tables` vouches for, held (not their ids, which a new frame may reuse)."""


@contextlib.contextmanager
def canonical_tables(*frames: pd.DataFrame) -> Iterator[None]:
    """Within the block, these very frames are taken as validated, for any date.

    By `matching.round.prepare_round` (and so `solve`) and by `matching.checker.audit` (and
    `check`), which otherwise validate the tables they are given. The caller vouches that each
    is canonical (as `matching.io.validate_units` or `validate_demands` return it, or a subset
    of its rows with a fresh RangeIndex; the demands may carry the derived facts and score of
    the prepared round) and holds no unit released nor demand filed after the round's date.
    Why: the simulation cuts every round's tables from the year's, validated once, and
    validating them again at each of its solves took 1.1 s of the Caen la Mer year's 16 s; a
    solve's self-check judges the tables it has just validated. Identity, not equality: any
    other frame, and these frames outside the block, are validated as always.
    """
    token = _CANONICAL.set((*_CANONICAL.get(), *frames))
    try:
        yield
    finally:
        _CANONICAL.reset(token)


def is_canonical(frame: object) -> bool:
    """True when a `canonical_tables` block around this call vouches for this very frame."""
    return any(frame is f for f in _CANONICAL.get())


def in_id_order(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The table with its rows in the order of their ids (as it is, when they already are).

    Why: the solver's search meets the optima of a round in the order of its rows, and a
    round has many of equal value; the same units and demands listed in another order (rows
    from a database without ORDER BY) housed other households. In the ids' order, the same
    round gives the same result, byte for byte, however its rows come.
    """
    ids = frame[column]
    if ids.is_monotonic_increasing:
        return frame
    return frame.iloc[np.argsort(ids.to_numpy(dtype=object), kind="stable")].reset_index(drop=True)
