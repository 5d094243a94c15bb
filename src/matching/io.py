"""Read and write the units and demands tables (CSV or Parquet), validating every row.

This is the only module that turns files into the canonical tables of `matching.frames` and back.
Validation is vectorised, one pass per column, because a territory's demand file holds hundreds of
thousands of rows and building one pydantic object per row would take minutes. The constraints are
nevertheless read from the pydantic field metadata of `matching.domain` (type, ``ge``/``gt``/``le``
/``lt``, ``min_length``, ``pattern``, enumeration values, defaults), so the domain records stay the
single source of truth of the data contract (docs/data-format.md).

Every problem found is collected and raised as one `DataError` naming file, row, field, value and
reason: a user fixing a file wants the whole list at once, not one error per run. No row is ever
dropped or repaired silently. Row numbers are 1-based data rows (the header is row 0), for files
and DataFrames alike.

Writing is deterministic (same frame, same bytes): lists are joined with ``;``, booleans written
``true``/``false``, dates ISO, floats in their shortest round-trip form, and Parquet files carry a
fixed schema and no pandas index.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import json
import math
import re
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

import annotated_types as at
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel, ValidationError

from matching.domain import (
    DEMAND_COLUMNS,
    UNIT_COLUMNS,
    Demand,
    Reservataire,
    Unit,
    category_problem,
)
from matching.exceptions import DataError, PolicyError, Problems, RowProblem
from matching.flux import YearSoFar
from matching.frames import DEMAND_DTYPES, UNIT_DTYPES, is_canonical, rows_frame
from matching.policy.fields import DERIVED_DEMAND_FIELDS, require_derived_facts
from matching.policy.loader import DuplicateKey, UniqueKeyLoader, policy_of
from matching.policy.model import Policy

if TYPE_CHECKING:
    from matching.result import Result

PathLike = str | Path

LIST_SEPARATOR = ";"
"""Separator of list entries inside one cell (wished_communes, priority_categories, pools)."""

TRUE_WORDS: frozenset[str] = frozenset({"true", "1", "yes", "oui"})
"""Cell texts read as True (case-insensitive)."""

FALSE_WORDS: frozenset[str] = frozenset({"false", "0", "no", "non"})
"""Cell texts read as False (case-insensitive)."""

SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
"""File types read and written, chosen by the file suffix."""

DERIVED_COLUMNS: tuple[str, ...] = ("score", *DERIVED_DEMAND_FIELDS)
"""Columns that ``matching solve`` adds to the demands it writes (the cotation score and the
derived household facts of DOMAIN A1). With ``ignore_derived`` they are dropped on reading and
recomputed from the demand's own columns, so a solve folder can be re-checked from its files."""


def _metadata_pattern(model: type[BaseModel], name: str) -> str:
    for meta in model.model_fields[name].metadata:
        pattern = getattr(meta, "pattern", None)
        if isinstance(pattern, str):
            return pattern
    raise AssertionError(f"{model.__name__}.{name} declares no pattern")  # pragma: no cover


INSEE_PATTERN = _metadata_pattern(Unit, "commune_insee")
"""Form of an INSEE commune code (5 characters; Corsica has 2A/2B), read from `domain.Unit`."""

RESERVATAIRE_PATTERN = _metadata_pattern(Reservataire, "id")
"""Form of a réservataire id, read from `domain.Reservataire`."""

# Facts the domain annotations cannot carry (the list items are plain ``str`` aliases there), kept
# here in one place: which list entries must be commune codes or réservataire ids, and which
# commune fields must lie in the territory (a demand may come from outside it: resident commune).
_ENTRY_PATTERNS: dict[str, str] = {"wished_communes": INSEE_PATTERN, "pools": RESERVATAIRE_PATTERN}
_TERRITORY_FIELDS: frozenset[str] = frozenset({"commune_insee", "wished_communes"})

Kind = Literal["text", "choice", "bool", "int", "float", "date", "list", "pools"]


@dataclass(frozen=True)
class ColumnSpec:
    """What one column accepts, derived from the pydantic field of the same name.

    Attributes
    ----------
    name
        Column (= field) name.
    kind
        How cells are parsed: text, choice (an enumeration), bool, int, float, date, list
        (``;``-separated) or pools (a list where empty means "derive the pools").
    required
        True when the column must be present and no cell may be empty; an optional column may
        be absent or have empty cells, both meaning `default`.
    default
        Value of an absent column or empty cell of an optional column.
    ge, gt, le, lt
        Numeric bounds from the field metadata.
    min_length
        Minimum text length from the field metadata.
    pattern
        Regular expression a text cell (or each list entry) must match in full.
    choices
        Allowed values of a choice column, the empty string excluded.
    in_territory
        True when the value (or each entry) must be a commune of the territory, when one is given.
    """

    name: str
    kind: Kind
    required: bool
    default: Any = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_length: int | None = None
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    in_territory: bool = False


def _kind_of(annotation: Any) -> tuple[Kind, tuple[str, ...]]:
    if annotation is bool:
        return "bool", ()
    if annotation is int:
        return "int", ()
    if annotation is float:
        return "float", ()
    if annotation is dt.date:
        return "date", ()
    if annotation is str:
        return "text", ()
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "choice", tuple(str(m.value) for m in annotation if str(m.value))
    origin = get_origin(annotation)
    if origin is tuple:
        return "list", ()
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and get_origin(args[0]) is tuple:
            return "pools", ()
    raise TypeError(f"no file encoding for field type {annotation!r}")  # pragma: no cover


def column_specs(model: type[Unit] | type[Demand]) -> tuple[ColumnSpec, ...]:
    """Column rules of a table, read from the pydantic fields of its record, in field order."""
    specs = []
    for name, field in model.model_fields.items():
        kind, choices = _kind_of(field.annotation)
        bounds: dict[str, Any] = {}
        for meta in field.metadata:
            if isinstance(meta, at.Ge):
                bounds["ge"] = meta.ge
            elif isinstance(meta, at.Gt):
                bounds["gt"] = meta.gt
            elif isinstance(meta, at.Le):
                bounds["le"] = meta.le
            elif isinstance(meta, at.Lt):
                bounds["lt"] = meta.lt
            elif isinstance(meta, at.MinLen):
                bounds["min_length"] = meta.min_length
            elif isinstance(getattr(meta, "pattern", None), str):
                bounds["pattern"] = meta.pattern
        if name in _ENTRY_PATTERNS:
            bounds["pattern"] = _ENTRY_PATTERNS[name]
        default = None if field.is_required() else field.default
        if isinstance(default, Enum):
            default = str(default.value)
        specs.append(
            ColumnSpec(
                name=name,
                kind=kind,
                required=field.is_required(),
                default=default,
                choices=choices,
                in_territory=name in _TERRITORY_FIELDS,
                **bounds,
            )
        )
    return tuple(specs)


UNIT_SPECS: tuple[ColumnSpec, ...] = column_specs(Unit)
"""Column rules of the units table (docs/data-format.md)."""

DEMAND_SPECS: tuple[ColumnSpec, ...] = column_specs(Demand)
"""Column rules of the demands table (docs/data-format.md)."""

assert tuple(s.name for s in UNIT_SPECS) == UNIT_COLUMNS
assert tuple(s.name for s in DEMAND_SPECS) == DEMAND_COLUMNS


# ---------------------------------------------------------------------------------------------
# Cells as text
# ---------------------------------------------------------------------------------------------


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def cell_text(value: object) -> str:
    """Render one cell as it is written to a file (and shown in error messages).

    Missing values give ``""``, booleans ``true``/``false``, dates at midnight ``YYYY-MM-DD``,
    floats their shortest round-trip form (``repr``), sequences their entries joined with ``;``
    (sets their entries sorted).
    """
    if _is_missing(value):
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):  # includes pd.Timestamp
        ts = pd.Timestamp(value)
        return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return cell_text(pd.Timestamp(value))
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, tuple | list | np.ndarray):
        if all(type(v) is str for v in value):  # a typed frame's lists: their entries as they are
            return LIST_SEPARATOR.join(value)
        return LIST_SEPARATOR.join(cell_text(v) for v in value)
    if isinstance(value, set | frozenset):
        # a natural form for "communes the household accepts"; its repr was judged as one
        # code ("not an INSEE commune code"). Sorted: a set's order varies from run to run
        return LIST_SEPARATOR.join(sorted(cell_text(v) for v in value))
    return str(value)


def _object_texts(series: pd.Series) -> np.ndarray:
    """Return `cell_text` of every cell as an object array of ``str``, fast for common columns.

    Text columns are taken as they are; other object columns (tuples, dates, mixed values)
    repeat a lot, so each distinct value is rendered once.
    """
    if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        return series.fillna("").to_numpy(dtype=object)
    values = series.to_numpy(dtype=object)
    try:
        codes, distinct = pd.factorize(values, use_na_sentinel=False)
    except TypeError:  # unhashable cells (lists, arrays): render each one
        texts = np.empty(len(values), dtype=object)
        texts[:] = [cell_text(v) for v in values]
        return texts
    rendered = np.empty(len(distinct), dtype=object)
    rendered[:] = [cell_text(v) for v in distinct]
    return rendered[codes]


def _texts(series: pd.Series) -> pd.Series:
    """Return the cells of a column as stripped text, missing cells as ``""``."""
    if isinstance(series.dtype, pd.StringDtype):  # CSV input: stay in Arrow, no object copy
        return series.fillna("").str.strip()
    return pd.Series(_object_texts(series), dtype=str).str.strip()


# ---------------------------------------------------------------------------------------------
# Column parsers: each returns (values, ok) and records its problems
# ---------------------------------------------------------------------------------------------


Parsed = tuple[np.ndarray, np.ndarray]
"""A parsed column: canonical values, and the mask of rows whose value is valid."""


@dataclass
class _Context:
    """What every column parser needs: where to report and the optional reference sets."""

    source: str
    problems: Problems
    communes: frozenset[str] | None
    as_of: dt.date | None
    reservataires: frozenset[str] | None

    def report(self, mask: np.ndarray, field: str, shown: pd.Series, reason: str) -> None:
        """Record one problem per row where ``mask`` holds, showing the row's cell text."""
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return
        values = shown.iloc[rows].tolist()
        for row, value in zip(rows.tolist(), values, strict=True):
            self.problems.add(self.source, row + 1, field, value, reason)


class _Lazy:
    """Cell texts of a column for messages, computed on first use (typed columns rarely need it)."""

    def __init__(self, series: pd.Series, text: pd.Series | None = None) -> None:
        self._series = series
        self._text = text

    def get(self) -> pd.Series:
        """Return the texts, computing them once."""
        if self._text is None:
            self._text = _texts(self._series)
        return self._text


def _empty_and_required(
    spec: ColumnSpec, empty: np.ndarray, shown: _Lazy, ctx: _Context
) -> np.ndarray:
    """Report empty cells of a required column; return the mask of empty cells."""
    if spec.required and empty.any():
        ctx.report(empty, spec.name, shown.get(), "required value is missing (empty cell)")
    return empty


def _check_bounds(
    spec: ColumnSpec, numbers: np.ndarray, ok: np.ndarray, shown: _Lazy, ctx: _Context
) -> np.ndarray:
    """Report numbers outside the field's bounds; return ``ok`` without them."""
    checks: list[tuple[float | None, Callable[[np.ndarray, float], np.ndarray], str]] = [
        (spec.ge, np.less, "must be at least {}"),
        (spec.gt, np.less_equal, "must be greater than {}"),
        (spec.le, np.greater, "must be at most {}"),
        (spec.lt, np.greater_equal, "must be less than {}"),
    ]
    for bound, fails, reason in checks:
        if bound is None:
            continue
        out = ok & fails(numbers, bound)
        if out.any():
            ctx.report(out, spec.name, shown.get(), reason.format(_number_text(bound)))
            ok = ok & ~out
    return ok


def _number_text(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _parse_bool(spec: ColumnSpec, series: pd.Series, ctx: _Context) -> Parsed:
    if pd.api.types.is_bool_dtype(series.dtype) and not series.hasnans:
        values = series.to_numpy(dtype=bool)
        return values, np.ones(len(values), dtype=bool)
    if pd.api.types.is_float_dtype(series.dtype):
        # Why: pandas reads a 1/0 column with a blank cell as floats (`pd.read_csv`), and
        # every 1.0 and 0.0 was refused as "not a boolean (... 1/0 ...)"; they are 1 and 0
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        whole = (numbers == 0) | (numbers == 1)
        series = pd.Series(
            np.where(whole, np.where(numbers == 1, "1", "0"), series.to_numpy(dtype=object)),
            dtype=object,
        )
    text = _texts(series)
    shown = _Lazy(series, text)
    lower = text.str.lower()
    is_true = lower.isin(sorted(TRUE_WORDS)).to_numpy()
    is_false = lower.isin(sorted(FALSE_WORDS)).to_numpy()
    empty = _empty_and_required(spec, (text == "").to_numpy(), shown, ctx)
    bad = ~(is_true | is_false | empty)
    if bad.any():
        ctx.report(bad, spec.name, text, "not a boolean (true/false, 1/0, yes/no, oui/non)")
    values = np.where(empty, bool(spec.default), is_true)
    return values, ~bad & (~empty | ~spec.required)


INT_LIMIT = 2**31 - 1
"""The largest whole number a table may hold, in absolute value (every bound of the format is
far below it; above 2^63 the values wrapped round to negative numbers)."""


def _parse_number(spec: ColumnSpec, series: pd.Series, ctx: _Context) -> Parsed:
    dtype = series.dtype
    typed = (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not pd.api.types.is_object_dtype(dtype)
    )
    if typed:
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        shown = _Lazy(series)
        empty = np.isnan(numbers)
    else:
        text = _texts(series)
        shown = _Lazy(series, text)
        numbers = _to_float(text)
        empty = (text == "").to_numpy()
    _empty_and_required(spec, empty, shown, ctx)
    if spec.kind == "int":
        with np.errstate(invalid="ignore"):
            bad = ~empty & ~(np.isfinite(numbers) & (numbers == np.round(numbers)))
        reason = "not a whole number"
    else:
        bad = ~empty & ~np.isfinite(numbers)
        reason = "not a number (decimal point '.', no thousands separator)"
    if bad.any():
        ctx.report(bad, spec.name, shown.get(), reason)
    if spec.kind == "int":
        # beyond int64 the cast below wrapped 1e20 round to -9223372036854775808, which then
        # passed as a number of refusals; no whole number of the format comes near 2^31
        huge = ~empty & ~bad & (np.abs(np.where(bad, 0.0, numbers)) > INT_LIMIT)
        if huge.any():
            ctx.report(
                huge, spec.name, shown.get(), f"too large a whole number (beyond ±{INT_LIMIT:,})"
            )
            bad = bad | huge
    ok = _check_bounds(spec, numbers, ~bad & ~empty, shown, ctx)
    default = 0 if spec.default is None else spec.default
    numbers = np.where(empty | bad, default, numbers)
    if spec.kind == "int":
        return numbers.astype(np.int64), ok | (empty & ~spec.required)
    return numbers, ok | (empty & ~spec.required)


def _to_float(text: pd.Series) -> np.ndarray:
    """Parse text as float64, NaN where empty or not a number.

    Arrow's parser is some 20 times faster than `pandas.to_numeric` but fails the whole column on
    one bad cell; the two accept the same notations (decimal point, exponent, inf, nan), so the
    slow one only runs on columns that hold a bad cell anyway.
    """
    try:
        arrow = pa.array(text)
        arrow = pc.if_else(pc.equal(arrow, ""), pa.scalar(None, arrow.type), arrow)
        return pc.cast(arrow, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


_NS_MIN = pd.Timestamp("1678-01-01")
_NS_MAX = pd.Timestamp("2261-12-31")
_ISO_DATE = r"\d{4}-\d{2}-\d{2}"


def _zoned(dtype: object) -> bool:
    """True for a time-zone-aware datetime dtype, numpy-backed or Arrow."""
    if isinstance(dtype, pd.ArrowDtype):
        return pa.types.is_timestamp(dtype.pyarrow_dtype) and dtype.pyarrow_dtype.tz is not None
    return getattr(dtype, "tz", None) is not None


def _wall_time(value: object) -> object:
    """A zoned datetime as its wall time in its own zone (naive); any other cell as it is."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value


def _parse_date(spec: ColumnSpec, series: pd.Series, ctx: _Context) -> Parsed:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        stamps = series
        if isinstance(series.dtype, pd.ArrowDtype) and pa.types.is_date(series.dtype.pyarrow_dtype):
            # a Parquet date column read with dtype_backend="pyarrow" (date32): pandas compares
            # it with no Timestamp (a TypeError); seconds hold any date, ns stop at 2262
            stamps = stamps.astype("datetime64[s]")
        if _zoned(stamps.dtype):
            stamps = stamps.dt.tz_localize(None)
        empty = stamps.isna().to_numpy()
        shown = _Lazy(series)
        bad = np.zeros(len(series), dtype=bool)
    elif pd.api.types.infer_dtype(series, skipna=True) in ("date", "datetime", "datetime64"):
        # each cell's date in its own time zone, as for a zoned column: zoned cells made a
        # zoned column (a TypeError against the as-of date), in several zones a NaT for some
        cells = [_wall_time(v) for v in series.to_numpy(dtype=object)]
        stamps = pd.to_datetime(pd.Series(cells, dtype=object), errors="coerce")
        empty = series.isna().to_numpy()
        shown = _Lazy(series)
        bad = stamps.isna().to_numpy() & ~empty
    else:
        text = _texts(series)
        shown = _Lazy(series, text)
        empty = (text == "").to_numpy()
        iso = text.str.fullmatch(_ISO_DATE).to_numpy(dtype=bool, na_value=False)
        stamps = pd.to_datetime(text.where(iso, ""), format="%Y-%m-%d", errors="coerce")
        bad = ~empty & stamps.isna().to_numpy()
    _empty_and_required(spec, empty, shown, ctx)
    if bad.any():
        ctx.report(bad, spec.name, shown.get(), "not a date (YYYY-MM-DD)")
    ok = ~bad & ~empty
    with np.errstate(invalid="ignore"):
        timed = ok & (stamps != stamps.dt.normalize()).to_numpy()
    if timed.any():
        ctx.report(timed, spec.name, shown.get(), "not a date: has a time of day")
    ok &= ~timed
    far = ok & ((stamps < _NS_MIN) | (stamps > _NS_MAX)).to_numpy()
    if far.any():
        ctx.report(far, spec.name, shown.get(), "date out of range (years 1678 to 2261)")
    ok &= ~far
    if ctx.as_of is not None:
        future = ok & (stamps > pd.Timestamp(ctx.as_of)).to_numpy()
        if future.any():
            reason = f"date in the future (after the as-of date {ctx.as_of.isoformat()})"
            ctx.report(future, spec.name, shown.get(), reason)
        ok &= ~future
    values = stamps.where(ok, pd.Timestamp("1970-01-01")).to_numpy(dtype="datetime64[ns]")
    return values, ok


CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"
"""Characters no text cell may hold: line breaks, tabs, NUL and the other C0 controls."""


def _parse_text(spec: ColumnSpec, series: pd.Series, ctx: _Context) -> Parsed:
    text = _texts(series)
    shown = _Lazy(series, text)
    empty = _empty_and_required(spec, (text == "").to_numpy(), shown, ctx)
    ok = ~empty
    # a line break in a quoted cell (a spreadsheet's Alt+Enter) or a control character: the
    # value was taken as it was, a landlord 'Inolya\nSud' apart from 'Inolya', and every
    # table printing it broken across lines
    control = ok & text.str.contains(CONTROL_CHARACTERS, regex=True).to_numpy(dtype=bool)
    if control.any():
        ctx.report(control, spec.name, text, "holds a line break or a control character")
        ok &= ~control
    if spec.kind == "choice":
        bad = ok & ~text.isin(spec.choices).to_numpy()
        if bad.any():
            allowed = ", ".join(spec.choices) + ("" if spec.required else ", or empty")
            ctx.report(bad, spec.name, text, f"unknown value (expected {allowed})")
        ok &= ~bad
    if spec.min_length is not None and spec.min_length > 1:
        short = ok & (text.str.len() < spec.min_length).to_numpy()
        if short.any():
            ctx.report(short, spec.name, text, f"shorter than {spec.min_length} characters")
        ok &= ~short
    if spec.pattern is not None:
        bad = ok & ~text.str.fullmatch(spec.pattern).to_numpy(dtype=bool, na_value=False)
        if bad.any():
            ctx.report(bad, spec.name, text, _pattern_reason(spec.pattern))
        ok &= ~bad
    if spec.in_territory and ctx.communes is not None:
        outside = ok & ~text.isin(sorted(ctx.communes)).to_numpy()
        if outside.any():
            ctx.report(outside, spec.name, text, "commune not in the territory")
        ok &= ~outside
    values = text.to_numpy(dtype=object)
    if not spec.required:
        values[empty] = spec.default
    return values, ok | (empty & ~spec.required)


def _pattern_reason(pattern: str) -> str:
    if pattern == INSEE_PATTERN:
        return "not an INSEE commune code (5 characters, e.g. 14118 or 2A004)"
    if pattern == RESERVATAIRE_PATTERN:
        return "not a réservataire id (lower-case letters, digits and '_')"
    return f"does not match the pattern {pattern}"  # pragma: no cover


def _split(cell: str) -> tuple[str, ...]:
    return tuple(p for p in (e.strip() for e in cell.split(LIST_SEPARATOR)) if p)


def _entries(cell: object) -> tuple[str, ...]:
    """A list cell's entries, exactly `_split` of its `cell_text`.

    A typed frame's tuple whose entries are already clean (``str``, stripped, not empty, no
    separator) is its own split: validating 17,000 typed demands, the round trip through text
    was a third of the time.
    """
    if isinstance(cell, tuple) and all(
        type(e) is str and e and e == e.strip() and LIST_SEPARATOR not in e for e in cell
    ):
        return cell
    return _split(cell_text(cell))


def _parse_list(spec: ColumnSpec, series: pd.Series, ctx: _Context) -> Parsed:
    # Lists repeat a lot (the same few wished communes): parse each distinct cell once. Cells may
    # be text (files) or tuples (typed frames); lists and arrays are unhashable, so go via text.
    try:
        codes, distinct = pd.factorize(series.to_numpy(dtype=object), use_na_sentinel=False)
    except TypeError:  # unhashable cells (lists, arrays)
        codes, distinct = pd.factorize(_object_texts(series))
    parsed = np.empty(len(distinct), dtype=object)
    bad_entries: dict[int, list[tuple[str, str]]] = {}
    pattern = re.compile(spec.pattern) if spec.pattern else None
    known = ctx.reservataires if spec.kind == "pools" else None
    communes = ctx.communes if spec.in_territory else None
    judged: dict[str, str] = {}  # entry -> reason ("" when valid): a few communes, many cells

    def judge(entry: str) -> str:
        if spec.name == "priority_categories":
            return category_problem(entry)
        if pattern is not None and not pattern.fullmatch(entry):
            return _pattern_reason(spec.pattern or "")
        if communes is not None and entry not in communes:
            return "commune not in the territory"
        if known is not None and entry not in known:
            return f"unknown réservataire (expected one of {', '.join(sorted(known))})"
        return ""

    for i, cell in enumerate(distinct):
        entries = _entries(cell)
        parsed[i] = entries
        for entry in entries:
            reason = judged.get(entry)
            if reason is None:
                reason = judged[entry] = judge(entry)
            if reason:
                bad_entries.setdefault(i, []).append((entry, reason))
        if spec.name == "priority_categories":
            # `n_priority_categories` counted `handicap;handicap` as two categories: a grid
            # giving points per category gave them twice
            for entry in sorted({e for e in entries if entries.count(e) > 1}):
                reason = "category given twice in the cell (each counts once): list it once"
                bad_entries.setdefault(i, []).append((entry, reason))
    values = parsed[codes] if len(codes) else np.empty(0, dtype=object)
    ok = np.ones(len(codes), dtype=bool)
    if bad_entries:
        bad = np.isin(codes, np.fromiter(bad_entries, dtype=np.int64))
        for row in np.flatnonzero(bad).tolist():
            for entry, reason in bad_entries[int(codes[row])]:
                ctx.problems.add(ctx.source, row + 1, spec.name, entry, reason)
        ok &= ~bad
    if spec.kind == "pools":
        values = values.copy()
        # an empty cell (text) means "derive the pools"; an explicit empty tuple handed in by a
        # library caller means "no réservataire may propose this household" and is kept
        typed_empty = np.array(
            [isinstance(cell, tuple | list) and len(cell) == 0 for cell in distinct], dtype=bool
        )
        empty = np.array([not entries for entries in parsed], dtype=bool) & ~typed_empty
        values[empty[codes]] = None
    return values, ok


_PARSERS: dict[Kind, Callable[[ColumnSpec, pd.Series, _Context], Parsed]] = {
    "text": _parse_text,
    "choice": _parse_text,
    "bool": _parse_bool,
    "int": _parse_number,
    "float": _parse_number,
    "date": _parse_date,
    "list": _parse_list,
    "pools": _parse_list,
}


# ---------------------------------------------------------------------------------------------
# Table validation
# ---------------------------------------------------------------------------------------------


def _default_column(spec: ColumnSpec, n: int) -> np.ndarray:
    if spec.kind in ("list", "pools", "text", "choice"):
        values = np.empty(n, dtype=object)
        values.fill(spec.default)
        return values
    return np.full(n, spec.default)


def _column_names(frame: pd.DataFrame) -> list[str]:
    """The frame's column names as text, without surrounding spaces.

    Why: files are read so (docs/data-format.md: spaces around a column name are ignored), and
    the same table handed in as a DataFrame (``pd.read_csv``) was refused: "unknown column
    ' dalo '".
    """
    return [str(c).strip() for c in frame.columns]


def _check_columns(frame: pd.DataFrame, specs: tuple[ColumnSpec, ...], ctx: _Context) -> None:
    """Report missing required columns, unknown columns (with a close match) and duplicates."""
    names = _column_names(frame)
    known = [s.name for s in specs]
    seen: dict[str, str] = {}  # name -> the name as given
    if "" in names:  # trailing empty header cells of a spreadsheet export: said once, as such
        ctx.problems.add(ctx.source, None, "", "", "a column has no name (an empty header cell)")
    for name, given in zip(names, (str(c) for c in frame.columns), strict=True):
        if name == "":
            continue
        if name in seen:
            reason = "column appears more than once"
            if seen[name] != given:  # 'dalo' and ' dalo ': which one is the table's?
                reason += f" ({seen[name]!r} and {given!r}: spaces around a name are ignored)"
            ctx.problems.add(ctx.source, None, name, "", reason)
        seen.setdefault(name, given)
        if name in known:
            continue
        mangled = re.fullmatch(r"(.+)\.(\d+)", name)
        if mangled and mangled.group(1) in names:
            reason = f"column '{mangled.group(1)}' appears more than once"
        elif name in DERIVED_COLUMNS and "demand_id" in known:
            # a solve folder's demands.csv: 'did you mean annual_income_eur?' sent the reader
            # after a misspelling when the column is one the library writes itself
            reason = (
                "unknown column: a derived fact or the score, as `matching solve` writes them "
                "in its demands.csv; never read, always recomputed: drop it, or read with "
                "ignore_derived=True"
            )
        else:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            reason = f"unknown column{hint}"
        ctx.problems.add(ctx.source, None, name, "", reason)
    for spec in specs:
        if spec.required and spec.name not in seen:
            ctx.problems.add(ctx.source, None, spec.name, "", "required column is missing")


def _check_unique(id_field: str, values: np.ndarray, ok: np.ndarray, ctx: _Context) -> None:
    """Report every repeated id, naming the row it first appeared on."""
    if len(values) == 0:
        return
    codes, _ = pd.factorize(values)
    codes = np.where(ok, codes, -1)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
    first = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    repeated = ~starts & (sorted_codes >= 0)
    for pos in np.flatnonzero(repeated).tolist():
        row = int(order[pos])
        reason = f"duplicate id (first seen on row {int(first[pos]) + 1})"
        ctx.problems.add(ctx.source, row + 1, id_field, values[row], reason)


def _check_household(columns: Mapping[str, Parsed], ctx: _Context) -> None:
    """Cross-field rules of `domain.Demand`: composition, dependants, the two household flags."""
    needed = ("household_size", "adults", "children_under_14", "dependants")
    if not all(name in columns for name in needed):
        return
    size, size_ok = columns["household_size"]
    adults, adults_ok = columns["adults"]
    children, children_ok = columns["children_under_14"]
    dependants, dependants_ok = columns["dependants"]
    mismatch = size_ok & adults_ok & children_ok & (adults + children != size)
    for row in np.flatnonzero(mismatch).tolist():
        reason = (
            f"adults ({adults[row]}) + children_under_14 ({children[row]}) "
            f"must equal household_size ({size[row]})"
        )
        ctx.problems.add(ctx.source, row + 1, "household_size", size[row], reason)
    too_many = size_ok & dependants_ok & (dependants > size - 1)
    for row in np.flatnonzero(too_many).tolist():
        reason = f"dependants must be fewer than household_size ({size[row]})"
        ctx.problems.add(ctx.source, row + 1, "dependants", dependants[row], reason)
    if "young_couple" in columns:
        # Why: the flag raises the household category (DOMAIN A1), so on a one-adult household
        # it lifted a single person's income ceilings to those of a couple's, without a word
        young, young_ok = columns["young_couple"]
        alone = young_ok & adults_ok & young.astype(bool) & (adults < 2)
        for row in np.flatnonzero(alone).tolist():
            reason = f"a young couple needs at least 2 adults (adults is {adults[row]})"
            ctx.problems.add(ctx.source, row + 1, "young_couple", "true", reason)
    if "single_parent" in columns:
        # the cotation's +5 for a single parent went to a person living alone
        single_parent, single_parent_ok = columns["single_parent"]
        alone = size_ok & single_parent_ok & single_parent.astype(bool) & (size < 2)
        for row in np.flatnonzero(alone).tolist():
            reason = "a single parent lives with a child: household_size must be at least 2"
            ctx.problems.add(ctx.source, row + 1, "single_parent", "true", reason)


def _validate(
    frame: pd.DataFrame,
    specs: tuple[ColumnSpec, ...],
    dtypes: Mapping[str, str],
    ctx: _Context,
) -> pd.DataFrame:
    _check_columns(frame, specs, ctx)
    names = _column_names(frame)
    n = len(frame)
    parsed: dict[str, Parsed] = {}
    for spec in specs:
        if names.count(spec.name) != 1:
            if not spec.required and spec.name not in names:
                parsed[spec.name] = (_default_column(spec, n), np.ones(n, dtype=bool))
            continue
        series = frame.iloc[:, names.index(spec.name)].reset_index(drop=True)
        parsed[spec.name] = _PARSERS[spec.kind](spec, series, ctx)
    id_field = specs[0].name
    if id_field in parsed:
        _check_unique(id_field, *parsed[id_field], ctx)
    _check_household(parsed, ctx)
    _blank_lines_once(frame, ctx)
    order = {spec.name: i for i, spec in enumerate(specs)}
    ctx.problems.items.sort(
        key=lambda p: (p.row is not None, p.row or 0, order.get(p.field, len(order)))
    )
    ctx.problems.raise_if_any()
    out = {}
    for name, dtype in dtypes.items():
        values = parsed[name][0]
        out[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(out, columns=list(dtypes))


def _blank_lines_once(frame: pd.DataFrame, ctx: _Context) -> None:
    """One problem per blank line (or repeated header) of a table, not one per required field.

    Why: two blank lines at the end of a CSV (an editor's or a spreadsheet's) gave 20
    "required value is missing (empty cell)" problems, burying any other one; the line is
    the problem, not its fields. A table of one column is left alone: there an empty cell is
    a value's absence, which its own field reports. Only rows already reported are looked at
    (a blank line always is: its id is missing), so a valid table costs nothing.
    """
    reported = sorted({p.row for p in ctx.problems.items if p.row is not None})
    if frame.shape[1] < 2 or not reported:
        return
    cells = frame.iloc[[row - 1 for row in reported]].astype(object)
    texts = cells.apply(lambda column: column.astype(str).str.strip()).where(cells.notna(), "")
    names = pd.Series([str(c).strip() for c in frame.columns], index=frame.columns)
    # the header line again (two exports joined one after the other): one problem, not one per
    # field each saying that 'qpv' is not a boolean
    kinds = {
        "a blank line: every field is empty (remove it)": (texts == "").all(axis=1),
        "the header line again (two files joined?): remove it": texts.eq(names).all(axis=1),
    }
    found = {
        row: reason
        for reason, mask in kinds.items()
        for row, hit in zip(reported, mask, strict=True)
        if hit
    }
    if not found:
        return
    ctx.problems.items[:] = [p for p in ctx.problems.items if p.row not in found]
    for row in sorted(found):
        ctx.problems.add(ctx.source, row, "", "", found[row])


def validate_units(
    frame: pd.DataFrame,
    source: str,
    *,
    communes: frozenset[str] | None = None,
    as_of: dt.date | None = None,
) -> pd.DataFrame:
    """Validate a units table and return it in canonical form (`matching.frames` dtypes).

    Parameters
    ----------
    frame
        One row per unit; cells as text (as read from CSV) or already typed.
    source
        Name shown in error messages (the file path, or e.g. ``"<units frame>"``).
    communes
        INSEE codes of the territory; when given, ``commune_insee`` must be one of them.
    as_of
        Date of the round; when given, ``released_on`` may not be later.

    Returns
    -------
    pandas.DataFrame
        Columns of `domain.Unit` in order, canonical dtypes, RangeIndex, optional columns filled.

    Raises
    ------
    DataError
        Listing every problem (file, row, field, value, reason); nothing is dropped silently.
    """
    ctx = _Context(source, Problems(), communes, as_of, None)
    return _validate(frame, UNIT_SPECS, UNIT_DTYPES, ctx)


def validate_demands(
    frame: pd.DataFrame,
    source: str,
    *,
    communes: frozenset[str] | None = None,
    as_of: dt.date | None = None,
    reservataires: frozenset[str] | None = None,
    ignore_derived: bool = False,
) -> pd.DataFrame:
    """Validate a demands table and return it in canonical form (`matching.frames` dtypes).

    Parameters
    ----------
    frame
        One row per demand; cells as text (as read from CSV) or already typed.
    source
        Name shown in error messages (the file path, or e.g. ``"<demands frame>"``).
    communes
        INSEE codes of the territory; when given, every wished commune must be one of them
        (``resident_commune_insee`` only needs the INSEE form: households may come from elsewhere).
    as_of
        Date of the round; when given, ``filed_on`` may not be later.
    reservataires
        Known réservataire ids; when given, every ``pools`` entry must be one of them.
    ignore_derived
        Drop the `DERIVED_COLUMNS` (score and household facts, as ``matching solve`` writes
        them) instead of refusing them as unknown columns. They are never trusted: every
        consumer recomputes them from the demand's own columns.

    Returns
    -------
    pandas.DataFrame
        Columns of `domain.Demand` in order, canonical dtypes, RangeIndex, optional columns filled.

    Raises
    ------
    DataError
        Listing every problem (file, row, field, value, reason); nothing is dropped silently.
    """
    if ignore_derived:
        derived = [str(c).strip() in DERIVED_COLUMNS for c in frame.columns]
        frame = frame.loc[:, [not d for d in derived]]
    ctx = _Context(source, Problems(), communes, as_of, reservataires)
    return _validate(frame, DEMAND_SPECS, DEMAND_DTYPES, ctx)


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


OUTPUT = "with the output"
"""How a `DataError` about a file or folder being written starts (not "in the input data")."""


def _file_error(path: PathLike, reason: str, where: str = "in the input data") -> DataError:
    problems = Problems()
    problems.add(str(path), None, "", "", reason)
    return DataError(problems.items, where=where)


NOT_UTF8 = "not UTF-8 text: save it as 'CSV UTF-8 (délimité par des virgules)'"
"""Why a CSV file in another encoding (a spreadsheet's Latin-1 or UTF-16 export) is refused."""


def _suffix(path: PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        shown = suffix or "no suffix"
        raise _file_error(path, f"unsupported file type ({shown}); expected .csv or .parquet")
    return suffix


def _read_csv(path: PathLike) -> pd.DataFrame:
    """Read a CSV file with every cell as text; malformed rows are reported, never skipped."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        lines = csv.reader(handle)
        header = next(lines, None)
        after = next(lines, None) if header == [] else None
    if header == [] and after is not None:  # the file has more than a blank line
        raise _file_error(path, "the first line is blank: the header must be the first line")
    if not header:
        raise _file_error(path, "empty file (no header row)")
    for separator, name in ((";", "';'"), ("\t", "tabs")):
        if len(header) == 1 and separator in header[0]:
            # a French spreadsheet's "CSV (point-virgule)" or a tab-separated export: every
            # name in one column, then one "required column is missing" per column said
            # nothing about why
            raise _file_error(
                path,
                f"the header is one column of names separated by {name}: save the file as "
                "comma-separated CSV (UTF-8), e.g. 'CSV UTF-8 (délimité par des virgules)'",
            )
    malformed: list[tuple[int | None, int, int, str]] = []

    def on_malformed(row: Any) -> str:
        malformed.append((row.number, row.expected_columns, row.actual_columns, row.text))
        return "skip"

    table = pcsv.read_csv(
        path,
        # One thread: the parser then knows the line number of a malformed row.
        read_options=pcsv.ReadOptions(use_threads=False),
        parse_options=pcsv.ParseOptions(ignore_empty_lines=False, invalid_row_handler=on_malformed),
        convert_options=pcsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    if malformed:
        # Rows after a skipped one would be misnumbered: report the file's structure only.
        # Never the row's text: it is a household's data, free text included (a comment
        # with an unquoted comma printed a name and a situation)
        if len(header) == 1 and all(expected == 1 for _, expected, _, _ in malformed):
            raise _file_error(
                path,
                "the first line has one column but the rows have more: the header must be "
                "the first line (is there a title line above it?)",
            )
        problems = Problems()
        for line, expected, actual, _text in malformed:
            row = None if line is None else line - 1
            reason = f"expected {expected} fields, found {actual}"
            problems.add(str(path), row, "", "", reason)
        problems.raise_if_any()
    frame = table.to_pandas()
    frame.columns = pd.Index([str(c).strip() for c in frame.columns], dtype=object)
    return frame


def read_table(path: PathLike) -> pd.DataFrame:
    """Read a CSV or Parquet file as it is, for validation.

    CSV is read as UTF-8 (a byte-order mark is accepted), comma-separated, with every cell as
    text and empty cells as ``""``; blank lines are kept as rows, so row numbers match the file's
    data rows and nothing is skipped. Surrounding spaces in header names are ignored. Parquet
    keeps its column types.

    Raises
    ------
    DataError
        A file-level problem when the file is missing, unreadable, not of its type, or has an
        unsupported suffix; a row problem for each CSV row with the wrong number of fields.
    """
    suffix = _suffix(path)
    try:
        if suffix == ".csv":
            return _read_csv(path)
        table = pq.read_table(path).to_pandas(date_as_object=False, ignore_metadata=True)
    except FileNotFoundError:
        raise _file_error(path, "file not found") from None
    except IsADirectoryError:
        raise _file_error(path, "is a directory, not a file") from None
    except OSError as exc:
        raise _file_error(path, f"cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise _file_error(path, NOT_UTF8) from None
    except pa.ArrowInvalid as exc:
        what = "CSV" if suffix == ".csv" else "Parquet"
        detail = NOT_UTF8 if "UTF8" in str(exc) else str(exc)
        raise _file_error(path, f"not a readable {what} file: {detail}") from None
    except pa.ArrowException as exc:
        raise _file_error(path, f"cannot read: {exc}") from None
    pandas_index = [c for c in table.columns if re.fullmatch(r"__index_level_\d+__", str(c))]
    table = table.drop(columns=pandas_index)
    # surrounding spaces in names ignored, as in CSV ("rooms " was missing and unknown)
    table.columns = pd.Index([str(c).strip() for c in table.columns], dtype=object)
    return table


def read_units(
    path: PathLike,
    *,
    communes: frozenset[str] | None = None,
    as_of: dt.date | None = None,
) -> pd.DataFrame:
    """Read and validate a units file (``.csv`` or ``.parquet``) into the canonical table.

    See `validate_units` for the parameters and docs/data-format.md for the columns.
    """
    return validate_units(read_table(path), str(path), communes=communes, as_of=as_of)


def read_demands(
    path: PathLike,
    *,
    communes: frozenset[str] | None = None,
    as_of: dt.date | None = None,
    reservataires: frozenset[str] | None = None,
    ignore_derived: bool = False,
) -> pd.DataFrame:
    """Read and validate a demands file (``.csv`` or ``.parquet``) into the canonical table.

    See `validate_demands` for the parameters and docs/data-format.md for the columns.
    """
    return validate_demands(
        read_table(path),
        str(path),
        communes=communes,
        as_of=as_of,
        reservataires=reservataires,
        ignore_derived=ignore_derived,
    )


def _dates_only(series: pd.Series) -> bool:
    stamps = series.dropna()
    return bool((stamps == stamps.dt.normalize()).all())


def _datetimes(series: pd.Series) -> np.ndarray:
    """Naive datetime64[ns] values of a datetime column (a time zone is dropped)."""
    if getattr(series.dtype, "tz", None) is not None:
        series = series.dt.tz_localize(None)
    return series.to_numpy(dtype="datetime64[ns]")


def _rendered(values: np.ndarray, render: Callable[[np.ndarray], list[str]]) -> np.ndarray:
    """Render each distinct value once (columns repeat a lot) and spread the texts."""
    codes, distinct = pd.factorize(values)
    texts = np.empty(len(distinct) + 1, dtype=object)
    texts[:-1] = render(np.asarray(distinct))
    texts[-1] = ""  # code -1: missing
    return texts[codes]


def _csv_texts(series: pd.Series) -> np.ndarray:
    """Render a column's cells as CSV text, as documented in `write_table`."""
    dtype = series.dtype
    missing = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(dtype) and not missing.any():
        words = np.array(["false", "true"], dtype=object)
        return words[series.to_numpy(dtype=bool).astype(np.intp)]
    if pd.api.types.is_datetime64_any_dtype(dtype):
        unit = "D" if _dates_only(series) else "us"
        values = _datetimes(series).astype(f"datetime64[{unit}]")
        return _rendered(values, lambda v: np.datetime_as_string(v).tolist())
    if pd.api.types.is_integer_dtype(dtype) and not missing.any():
        return _rendered(series.to_numpy(dtype=np.int64), lambda v: [str(x) for x in v.tolist()])
    if pd.api.types.is_float_dtype(dtype):
        # repr is the shortest text that reads back as the same float (Python >= 3.1); not
        # factorized, which would merge -0.0 with 0.0.
        texts = np.empty(len(series), dtype=object)
        texts[:] = [repr(v) for v in series.to_numpy(dtype=np.float64).tolist()]
        texts[missing] = ""
        return texts
    return _object_texts(series)


def _quoted(texts: pa.Array, lone: bool) -> pa.Array:
    """Quote the cells that need it, as `csv.QUOTE_MINIMAL` does (RFC 4180).

    A cell holding a comma, a quote or a line break is enclosed in quotes, its quotes doubled;
    ``lone`` also quotes empty cells, which a one-column table needs to tell them from blank lines.
    """
    needs = pc.match_substring_regex(texts, r'[,"\r\n]')
    if lone:
        needs = pc.or_(needs, pc.equal(texts, ""))
    if not pc.any(needs).as_py():
        return texts
    escaped = pc.replace_substring(texts, '"', '""')
    return pc.if_else(needs, pc.binary_join_element_wise('"', escaped, '"', ""), texts)


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    """Write the table as CSV: comma, minimal quoting, LF line ends, UTF-8 (no BOM).

    Cells are rendered and joined in Arrow, column by column: the `csv` module takes seconds on
    a 250,000-row demand table, one Python call per cell.
    """
    lone = frame.shape[1] == 1
    header = _quoted(pa.array([str(c) for c in frame.columns], type=pa.string()), lone)
    lines = [",".join(header.to_pylist())]
    if frame.shape[1] and len(frame):
        columns = []
        for i in range(frame.shape[1]):
            series = frame.iloc[:, i]
            texts = pa.array(_csv_texts(series), type=pa.string())
            plain = pd.api.types.is_numeric_dtype(
                series.dtype
            ) or pd.api.types.is_datetime64_any_dtype(
                series.dtype
            )  # numbers, booleans and dates never hold a comma, quote or line break
            columns.append(texts if plain and not lone else _quoted(texts, lone))
        rows = columns[0] if lone else pc.binary_join_element_wise(*columns, ",")
        lines.extend(rows.to_pylist())
    return ("\n".join(lines) + "\n").encode("utf-8")


def _arrow_column(series: pd.Series, dtype: str | None) -> pa.Array:
    """Convert a column to a typed Arrow array, following the canonical dtype when given."""
    kind = pd.api.types.pandas_dtype(dtype) if dtype is not None else series.dtype
    missing = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(kind):
        if not missing.any():
            return pa.array(series.to_numpy(dtype=bool), type=pa.bool_())
        return pa.array(series.to_numpy(dtype=object), type=pa.bool_(), from_pandas=True)
    if pd.api.types.is_datetime64_any_dtype(kind):
        values = _datetimes(series)
        if dtype is not None or _dates_only(series):
            return pa.array(values.astype("datetime64[D]"), type=pa.date32(), from_pandas=True)
        return pa.array(values.astype("datetime64[us]"), type=pa.timestamp("us"), from_pandas=True)
    if pd.api.types.is_integer_dtype(kind):
        return pa.array(series, type=pa.int64(), from_pandas=True)
    if pd.api.types.is_float_dtype(kind):
        return pa.array(series.to_numpy(dtype=np.float64), type=pa.float64())
    return pa.array(_object_texts(series), type=pa.string())


def _write(frame: pd.DataFrame, path: PathLike, dtypes: Mapping[str, str] | None) -> None:
    suffix = _suffix(path)
    frame = frame.reset_index(drop=True)
    try:
        if suffix == ".csv":
            Path(path).write_bytes(_csv_bytes(frame))
            return
        names = [str(c) for c in frame.columns]
        arrays = [
            _arrow_column(frame.iloc[:, i], dtypes.get(names[i]) if dtypes else None)
            for i in range(frame.shape[1])
        ]
        schema = pa.schema([pa.field(n, a.type) for n, a in zip(names, arrays, strict=True)])
        table = pa.Table.from_arrays(arrays, schema=schema)
        pq.write_table(table, path, compression="snappy")
    except OSError as exc:
        raise _file_error(path, f"cannot write ({exc.strerror or exc})", OUTPUT) from None


def _write_canonical(
    frame: pd.DataFrame, path: PathLike, dtypes: Mapping[str, str], what: str
) -> None:
    missing = [c for c in dtypes if c not in frame.columns]
    if missing:
        problems = Problems()
        for name in missing:
            problems.add(str(path), None, name, "", f"column missing from the {what} table")
        problems.raise_if_any()
    _write(frame[list(dtypes)], path, dtypes)


def write_table(frame: pd.DataFrame, path: PathLike) -> None:
    """Write any table (e.g. allocations) to ``.csv`` or ``.parquet``, deterministically.

    Lists are joined with ``;``, booleans written ``true``/``false``, dates at midnight as
    ``YYYY-MM-DD``, floats in their shortest round-trip form, missing values as empty cells; the
    index is not written.
    """
    _write(frame, path, None)


def write_units(frame: pd.DataFrame, path: PathLike) -> None:
    """Write a canonical units table so that `read_units` gives it back unchanged."""
    _write_canonical(frame, path, UNIT_DTYPES, "units")


def write_demands(frame: pd.DataFrame, path: PathLike) -> None:
    """Write a canonical demands table so that `read_demands` gives it back unchanged."""
    _write_canonical(frame, path, DEMAND_DTYPES, "demands")


def round_table(
    data: pd.DataFrame | Sequence[Unit] | Sequence[Demand] | Sequence[Mapping[str, Any]],
    kind: Literal["units", "demands"],
    *,
    as_of: dt.date | None,
    ignore_derived: bool = False,
) -> pd.DataFrame:
    """A round's units or demands in any form the library takes, as the canonical table.

    A frame vouched for by `matching.frames.canonical_tables` is taken as it is (a shallow
    copy: the caller's stays its own); records and rows as mappings become a table, and the
    table is validated as a file is, so that a bad cell names its row and field and a unit
    released or a demand filed after ``as_of`` is refused. One function for
    `matching.round.prepare_round` and `matching.checker.audit`, so that both judge the same
    tables alike. ``ignore_derived``: the score and derived facts a solve folder writes are
    dropped (demands).
    """
    if isinstance(data, pd.DataFrame) and is_canonical(data):
        return data.copy(deep=False)
    if not isinstance(data, pd.DataFrame):
        # each record is valid alone; the table is checked too, for what only the whole
        # knows: a repeated id (it was housed twice, and only the checker caught it)
        data = rows_frame(data, Unit if kind == "units" else Demand, kind)
    if kind == "units":
        return validate_units(data, "units", as_of=as_of)
    return validate_demands(data, "demands", as_of=as_of, ignore_derived=ignore_derived)


def read_round_files(
    units: PathLike, demands: PathLike, policy: Policy, on: dt.date | None
) -> tuple[pd.DataFrame, pd.DataFrame, dt.date]:
    """A round's units and demands files, and its date (by default the latest release).

    Why one function: ``matching solve`` and ``matching check`` must read a round alike. A
    unit released or a demand filed after the round's date is refused (without a date the
    default is known before the demands are read: one filed after it was housed). A demands
    file written by ``matching solve`` carries the score and derived facts: they are dropped
    and recomputed, so nothing the solver wrote is trusted.

    The round must lie in the policy's year, as a scenario's must: its Q1 threshold and
    income ceilings are that year's figures (a 2024 file under ``default-2026`` was solved
    with the 2026 figures without a word).

    Raises
    ------
    DataError
        A file cannot be read or holds bad values; no unit and no date.
    PolicyError
        The round's date (``on``, or by default the latest release) is in another year than
        the policy's: the message names ``--on`` or the units file, and both years.
    """
    if on is not None and (other := policy.other_year(on.year, "the round")) is not None:
        raise PolicyError(
            f"--on {on.isoformat()}: policy {other}: pass a policy for {on.year} with "
            f"--policy, or a date in {policy.year}"
        )
    unit_table = read_units(units, as_of=on)
    if on is None:
        if not len(unit_table):
            raise DataError([RowProblem(str(units), None, "released_on", "", "no unit: pass --on")])
        on = pd.Timestamp(unit_table["released_on"].max()).date()
        if (other := policy.other_year(on.year, "the round")) is not None:
            raise PolicyError(
                f"{units}: the round date {on.isoformat()} (the latest released_on; --on sets "
                f"it): policy {other}: pass a policy for {on.year} with --policy"
            )
    demand_table = read_demands(
        demands,
        as_of=on,
        reservataires=frozenset(policy.reservataire_ids()),
        ignore_derived=True,
    )
    return unit_table, demand_table, on


def read_year_so_far(path: PathLike, policy: Policy | None = None) -> YearSoFar:
    """Read what earlier rounds of the year did (`matching.flux.YearSoFar`) from YAML or JSON.

    JSON is read as YAML (every JSON document is one), so either suffix works. The file holds
    ``flux_units``, ``oriented`` (per réservataire) and ``tallies`` (per quota rule id, per
    scope group: ``base`` and ``counted``); missing keys mean zero. With ``policy``, a
    réservataire or rule it does not have is a problem too (`YearSoFar.problems_with`).

    Raises
    ------
    DataError
        A file-level problem when the file cannot be read or parsed or is not a mapping; one
        problem per bad key otherwise, the field named as its dotted path
        (``tallies.mixity_outside_qpv..base``: rule, scope group ``''``, count).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _file_error(path, "file not found") from None
    except IsADirectoryError:
        raise _file_error(path, "is a directory, not a file") from None
    except UnicodeDecodeError:
        raise _file_error(path, "not UTF-8 text") from None
    except OSError as exc:
        raise _file_error(path, f"cannot read ({exc.strerror or exc})") from None
    try:
        # a key given twice is refused, as in policy and scenario files (the last one won)
        data = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader
    except DuplicateKey as exc:
        raise _file_error(path, str(exc)) from None
    except yaml.YAMLError as exc:
        raise _file_error(path, f"not valid YAML or JSON: {exc}") from None
    if data is None:
        data = {}  # an empty file: the first round of the year
    if not isinstance(data, dict):
        raise _file_error(path, "expected a mapping (flux_units, oriented, tallies) at the top")
    return year_so_far_of(data, str(path), policy)


def year_so_far_of(
    data: YearSoFar | Mapping[str, Any], source: str, policy: Policy | None = None
) -> YearSoFar:
    """A year so far from a mapping (or as given), checked against ``policy`` when given.

    What `read_year_so_far` does once the file is read, for the library's callers too
    (`matching.round.prepare_round`): each problem names ``source`` and the dotted key.

    Raises
    ------
    DataError
        One problem per bad key, and per réservataire or rule the policy does not have.
    """
    problems = Problems()
    # a YearSoFar is validated again, as a mapping is: pydantic's model_copy(update=...) does
    # not validate and its dicts can be changed in place, and one with more units oriented
    # than released (or a negative count) was solved without a word
    mapping = data.model_dump() if isinstance(data, YearSoFar) else dict(data)
    try:
        year = YearSoFar.model_validate(mapping)
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            value = cell_text(err.get("input", ""))
            if not key:  # a check of the whole mapping names its key first, and numbers
                (key, _, msg), value = msg.partition(": "), ""
            problems.add(source, None, key, value, msg)
        raise DataError(problems.items) from None
    for key, value, reason in year.problems_with(policy) if policy is not None else []:
        problems.add(source, None, key, value, reason)
    problems.raise_if_any()
    return year


# ---------------------------------------------------------------------------------------------
# The folder of a solved round
# ---------------------------------------------------------------------------------------------


def _json_value(value: object) -> object:
    """Make numpy scalars, dates and fractions JSON-ready (``json.dumps`` ``default``)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)  # Fraction, Path, enum members


def json_text(data: object) -> str:
    """Deterministic JSON text: 2-space indent, keys in the mapping's order, UTF-8, final newline.

    Key order is fixed by the code that builds the mapping (never by a set or by timing), and
    floats are written by ``repr`` (shortest round-trip form), so the same data gives the same
    bytes.
    """
    return json.dumps(data, indent=2, ensure_ascii=False, default=_json_value) + "\n"


def policy_text(policy: Policy) -> str:
    """The policy as YAML, keys in the model's field order; `load_policy` reads it back equal."""
    dumped = yaml.safe_dump(
        policy.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=100
    )
    return f"# Policy {policy.id} as resolved and used for this round\n{dumped}"


RESULT_FILES: tuple[str, ...] = (
    "allocations.csv",
    "orientations.csv",
    "unallocated_units.csv",
    "unallocated_demands.csv",
    "kpis.json",
    "result.json",
    "timings.json",
)
"""Files of a solved round's folder that hold the result (docs/data-format.md)."""

SHORTLISTS_FILE = "shortlists.csv"
"""The CALEOL shortlists of a solved round (`matching.shortlist.shortlists`), when written."""

INPUT_FILES: tuple[str, ...] = ("units.csv", "demands.csv", "policy.yaml", "year_so_far.json")
"""Files of a solved round's folder that hold its inputs (``year_so_far.json`` only when given)."""


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8", newline="\n")
    except OSError as exc:
        raise _file_error(path, f"cannot write ({exc.strerror or exc})", OUTPUT) from None


def make_folder(out_dir: PathLike) -> Path:
    """Create an output folder (and its parents) if missing, or refuse it naming the path.

    Every command that writes a folder goes through here, so an output that cannot be made
    (under a file, in ``/proc``, a file of that name in the way) is a `DataError` and exit
    code 2, never an OSError traceback.

    Raises
    ------
    DataError
        The folder cannot be created, or a file of that name is in the way.
    """
    folder = Path(out_dir)

    def refused(reason: str) -> DataError:  # said of the output, not of "the input data"
        return DataError([RowProblem(str(folder), None, "", "", reason)], where=OUTPUT)

    if folder.exists() and not folder.is_dir():
        raise refused("cannot create the folder: a file of that name is in the way")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise refused(f"cannot create the folder ({exc.strerror or exc})") from None
    return folder


def write_round_inputs(
    out_dir: PathLike,
    units: pd.DataFrame,
    demands_with_facts: pd.DataFrame,
    policy: Policy | PathLike,
    year_so_far: YearSoFar | Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write a round's exact inputs, before solving, and remove the results of an earlier run.

    Written first so that a failed solve still leaves what is needed to reproduce it, and a
    folder never mixes the inputs of one run with the results of another.

    Parameters
    ----------
    out_dir
        Folder, created when missing.
    units
        Canonical units table of the round (``units.csv``).
    demands_with_facts
        The round's demands, canonical columns then the derived facts and ``score``
        (``prepare_round(...).instance.demands``), written as ``demands.csv``.
    policy
        The policy used (``policy.yaml``, which `load_policy` reads back equal): a `Policy`, a
        bundled name or a path, as `matching.round.solve` takes it.
    year_so_far
        Earlier rounds of the year (``year_so_far.json``), a `YearSoFar` or a mapping as
        `matching.round.solve` takes it, checked against the policy; or None: a stale file is
        removed.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    TypeError
        ``demands_with_facts`` lacks the derived facts, or ``policy`` is of another type;
        before anything is written.
    DataError
        The folder or a file cannot be written, or ``year_so_far`` is not a valid year so far
        for the policy.
    """
    # Checked before the folder is touched: a policy name wrote units.csv and demands.csv and
    # then failed on policy.yaml with an AttributeError (a half-written folder), and plain
    # demands wrote a demands.csv without the facts the folder's documentation promises
    policy = policy_of(policy)
    require_derived_facts(
        demands_with_facts.columns,
        "the round's demands with their facts and scores (a solved Result's "
        "result.prepared.instance.demands, or matching.round.prepare_round(...).instance"
        ".demands)",
    )
    if year_so_far is not None:
        # a mapping, as solve takes it, failed with an AttributeError after units.csv,
        # demands.csv and policy.yaml were written (a folder that re-checks without its year)
        year_so_far = year_so_far_of(year_so_far, "year_so_far", policy)
    folder = make_folder(out_dir)
    for name in (*RESULT_FILES, SHORTLISTS_FILE, "year_so_far.json"):
        (folder / name).unlink(missing_ok=True)
    write_units(units, folder / "units.csv")
    write_table(demands_with_facts, folder / "demands.csv")
    _write_text(folder / "policy.yaml", policy_text(policy))
    written = [folder / "units.csv", folder / "demands.csv", folder / "policy.yaml"]
    if year_so_far is not None:
        _write_text(folder / "year_so_far.json", json_text(year_so_far.model_dump(mode="json")))
        written.append(folder / "year_so_far.json")
    return written


def write_round_result(out_dir: PathLike, result: Result) -> list[Path]:
    """Write a round's result: the four tables, ``kpis.json``, ``result.json``, ``timings.json``.

    The tables are sorted by unit id (`Result`), the JSON files have a fixed key order; only
    ``timings.json`` differs between two runs of the same inputs and settings.

    Returns
    -------
    list of pathlib.Path
        The files written, in `RESULT_FILES` order.

    Raises
    ------
    DataError
        The folder or a file cannot be written.
    """
    folder = make_folder(out_dir)
    for stem, frame in result.to_frames().items():
        write_table(frame, folder / f"{stem}.csv")
    _write_text(folder / "kpis.json", json_text(result.kpis))
    _write_text(folder / "result.json", result.to_json())
    _write_text(folder / "timings.json", json_text(result.timings()))
    return [folder / name for name in RESULT_FILES]


def write_shortlists(out_dir: PathLike, shortlists: pd.DataFrame) -> Path:
    """Write a round's CALEOL shortlists as ``shortlists.csv`` (docs/data-format.md).

    Parameters
    ----------
    out_dir
        The round's folder, created when missing.
    shortlists
        The table of `matching.shortlist.shortlists` (unit_id, rank, demand_id, score, reason),
        written as given (it is sorted by unit_id then rank); a missing score is an empty cell.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    DataError
        The folder or the file cannot be written.
    """
    path = make_folder(out_dir) / SHORTLISTS_FILE
    write_table(shortlists, path)
    return path


def write_round_folder(
    out_dir: PathLike,
    result: Result,
    units: pd.DataFrame,
    demands_with_facts: pd.DataFrame,
    policy: Policy | PathLike,
    year_so_far: YearSoFar | Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write a solved round and its exact inputs to a folder, so that it can be re-checked alone.

    `write_round_inputs` then `write_round_result`; see them for the files and parameters.
    """
    inputs = write_round_inputs(out_dir, units, demands_with_facts, policy, year_so_far)
    return write_round_result(out_dir, result) + inputs
