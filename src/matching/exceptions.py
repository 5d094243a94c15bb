"""Typed errors raised by the package.

Every error a user can cause carries enough context to be fixed without a traceback: the file,
the row, the field and the reason for data errors; the key for policy errors; the conflicting
rules for infeasibility.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class MatchingError(Exception):
    """Base class of every error raised on purpose by ``matching``."""


@dataclass(frozen=True)
class RowProblem:
    """One bad value in an input file.

    Attributes
    ----------
    file
        Path (or name) of the file.
    row
        1-based data row number (the header is row 0), or ``None`` for a file-level problem.
    field
        Column name.
    value
        The offending value, as text.
    reason
        Why it is refused, in words.
    """

    file: str
    row: int | None
    field: str
    value: str
    reason: str

    def __str__(self) -> str:
        if self.row is None and not self.field and not self.value:
            return f"{self.file}: {self.reason}"  # the file as a whole: no "field '', value ''"
        where = f"row {self.row}" if self.row is not None else "file"
        return f"{self.file}: {where}, field '{self.field}', value {self.value!r}: {self.reason}"


class DataError(MatchingError):
    """Input data refused; lists every problem found, not only the first."""

    def __init__(
        self, problems: list[RowProblem], max_shown: int = 50, where: str = "in the input data"
    ) -> None:
        self.problems = problems
        self.max_shown = max_shown
        self.where = where  # "with the output folder" for a folder that cannot be made
        shown = "\n".join(f"  - {p}" for p in problems[:max_shown])
        more = len(problems) - max_shown
        tail = f"\n  ... and {more} more problem(s)" if more > 0 else ""
        super().__init__(f"{len(problems)} problem(s) {where}:\n{shown}{tail}")

    def __reduce__(self) -> tuple[type[DataError], tuple[list[RowProblem], int, str]]:
        """Rebuild it from its problems when pickled.

        A worker process of `matching compare` may raise it; the default would rebuild it from
        its message, as if the text were the list of problems.
        """
        return (DataError, (self.problems, self.max_shown, self.where))


class PolicyError(MatchingError):
    """A policy or scenario file is invalid; the message names the file and key."""


class InfeasibleError(MatchingError):
    """Hard quotas cannot all be met; carries the conflicting rule ids and a soft-mode diagnosis."""

    def __init__(
        self, message: str, rule_ids: list[str] | None = None, soft_result: object = None
    ) -> None:
        self.rule_ids = list(rule_ids or [])
        self.soft_result = soft_result
        super().__init__(message)


class CheckFailedError(MatchingError):
    """The independent checker found violations in a solver result (a bug, never a user error)."""


@dataclass
class Problems:
    """Accumulator used by validators to collect every problem before raising one DataError."""

    items: list[RowProblem] = field(default_factory=list)

    def add(self, file: str, row: int | None, field_: str, value: object, reason: str) -> None:
        """Record one problem."""
        self.items.append(RowProblem(file, row, field_, str(value), reason))

    def raise_if_any(self) -> None:
        """Raise a DataError listing every problem, if there is one."""
        if self.items:
            raise DataError(self.items)
