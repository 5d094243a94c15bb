"""A small declarative condition language, evaluated vectorised on DataFrames.

Cotation criteria, réservataire pools, flux exclusions and quota rules all select rows with the same
conditions, written in policy files as ``{field: dalo, op: eq, value: true}``. A list of conditions
means all of them (AND). Evaluation is one numpy operation per condition, never a loop over rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from matching.policy.fields import FieldKind, value_problem
from matching.policy.frozen import read_only

Op = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "contains", "nonempty", "empty"]

_NUMERIC_OPS = {"lt", "le", "gt", "ge"}
_LIST_OPS = {"contains", "nonempty", "empty"}


class ValidatedCopy(BaseModel):
    """A pydantic model whose ``model_copy(update=...)`` validates, as its constructor does.

    Why: pydantic's ``model_copy`` does not validate, and `SolveParams` is not the only model a
    library caller varies so (STYLE: variants by ``model_copy(update=...)``): a quota rule
    copied with ``target=1.5``, a réservataire's share raised until the shares passed 1, or an
    objective without stages were solved, "OPTIMAL", without a word. Base of every policy model.
    """

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied, validated (raising `pydantic.ValidationError`)."""
        if not update:
            return super().model_copy(deep=deep)
        return type(self).model_validate({**dict(self), **update})


class Condition(ValidatedCopy):
    """One comparison of a field with a value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str = Field(description="Field name (see matching.policy.fields)")
    op: Op = Field(default="eq", description="Comparison operator")
    value: Any = Field(default=True, description="Value compared with (a list for in/not_in)")

    _read_only = field_validator("value")(read_only)

    @model_validator(mode="after")
    def _value_matches_op(self) -> Condition:
        if self.op in {"in", "not_in"} and not isinstance(self.value, list):
            raise ValueError(f"op '{self.op}' needs a list value")
        if self.op in _NUMERIC_OPS and (
            not isinstance(self.value, int | float) or isinstance(self.value, bool)
        ):
            raise ValueError(f"op '{self.op}' needs a number")
        return self

    def check_field(self, known: dict[str, FieldKind]) -> str | None:
        """Return why this condition cannot apply to the known fields, or None when it can.

        Why the value's type is checked too: a value of the wrong type selects nothing, without
        a word (``{field: private_employee, op: eq, value: 'yes'}`` emptied Action Logement's
        pool; an unquoted commune code is read by YAML as a number, never equal to its text).
        """
        kind = known.get(self.field)
        if kind is None:
            return f"unknown field '{self.field}'"
        if self.op in _LIST_OPS and kind != "list":
            return f"op '{self.op}' needs a list field, '{self.field}' is {kind}"
        if self.op in _NUMERIC_OPS and kind != "number":
            return f"op '{self.op}' needs a number field, '{self.field}' is {kind}"
        if kind == "date":
            return f"'{self.field}' is a date, which conditions cannot compare yet"
        if kind == "list":
            if self.op not in _LIST_OPS:
                return f"'{self.field}' is a list: use op contains, nonempty or empty"
            if self.op == "contains" and not isinstance(self.value, str):
                return f"'{self.field}' holds text: quote the value ('{self.value}')"
            if self.op == "contains":
                return value_problem(self.field, self.value)
            return None
        values = self.value if self.op in {"in", "not_in"} else [self.value]
        wrong = [v for v in values if not _of_kind(v, kind)]
        if wrong:
            hint = f": quote it ('{wrong[0]}')" if kind == "text" else ""
            return f"'{self.field}' is {kind}, {wrong[0]!r} is not{hint}"
        if kind == "text":
            for v in values:
                problem = value_problem(self.field, v)
                if problem:
                    return problem
        return None

    def describe(self) -> str:
        """The condition in words, for explanations."""
        words = {
            "eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=",
            "in": "in", "not_in": "not in", "contains": "contains",
        }  # fmt: skip
        if self.op == "nonempty":
            return f"{self.field} not empty"
        if self.op == "empty":
            return f"{self.field} empty"
        return f"{self.field} {words[self.op]} {self.value}"


def _of_kind(value: object, kind: FieldKind) -> bool:
    """Whether ``value`` can equal a value of a field of that kind (True is no number here)."""
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def evaluate(
    conditions: tuple[Condition, ...] | list[Condition], frame: pd.DataFrame
) -> np.ndarray:
    """Return a boolean array, True where every condition holds on that row of ``frame``."""
    mask = np.ones(len(frame), dtype=bool)
    for cond in conditions:
        mask &= _evaluate_one(cond, frame[cond.field])
    return mask


def _evaluate_one(cond: Condition, column: pd.Series) -> np.ndarray:
    op, value = cond.op, cond.value
    if op in _LIST_OPS:
        lengths = column.map(len).to_numpy()
        if op == "nonempty":
            return lengths > 0
        if op == "empty":
            return lengths == 0
        return column.map(lambda items: value in items).to_numpy(dtype=bool)
    arr = column.to_numpy()
    if op == "eq":
        return np.asarray(arr == value, dtype=bool)
    if op == "ne":
        return np.asarray(arr != value, dtype=bool)
    if op == "in":
        return column.isin(value).to_numpy()
    if op == "not_in":
        return ~column.isin(value).to_numpy()
    num = arr.astype(float)
    if op == "lt":
        return num < value
    if op == "le":
        return num <= value
    if op == "gt":
        return num > value
    return num >= value
