"""The fields a policy may reference, with their kind, so that policy files are validated on load.

A policy condition names a demand column (docs/data-format.md), a derived household fact (computed
once in `matching.facts`, DOMAIN A1) or, in quota rules, a unit column prefixed with ``unit.``, a
demand field prefixed with ``demand.``, or ``reservataire``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from matching.domain import Demand, Unit, category_problem
from matching.types import Financing, FluxExclusion

FieldKind = Literal["bool", "number", "text", "list", "date"]


def _kind(annotation: object) -> FieldKind:
    text = str(annotation)
    if "tuple" in text:
        return "list"
    if "bool" in text:
        return "bool"
    if "int" in text or "float" in text:
        return "number"
    if "date" in text:
        return "date"
    return "text"


DERIVED_DEMAND_FIELDS: dict[str, FieldKind] = {
    "category": "number",  # household category 1-6, + extra persons above 6 (A1)
    "consumption_units": "number",  # OECD-modified scale (A1)
    "income_per_cu": "number",  # annual_income_eur / consumption_units
    "q1": "bool",  # income per CU below the EPCI's first-quartile threshold
    "q1_or_anru": "bool",  # counts for the outside-QPV mixity target
    "priority": "bool",  # DALO or at least one L441-1 category
    "seniority_months": "number",  # whole months since first filing, at the round's date
    "n_priority_categories": "number",
}

DEMAND_FIELDS: dict[str, FieldKind] = {
    **{name: _kind(f.annotation) for name, f in Demand.model_fields.items()},
    **DERIVED_DEMAND_FIELDS,
}


FACTS_HOW = (
    "matching.facts.derive_facts(demands, policy, on) at the round's date, or a solved "
    "Result's result.prepared.instance.demands"
)
"""Where a caller of the round's explanations and indicators gets demands with their facts."""


def require_derived_facts(columns: Iterable[str], how: str) -> None:
    """Raise a `TypeError` naming the derived facts missing from a demands table's ``columns``.

    Why: library callers hand in the plain demands (as read, or as `solve` was given them), and
    those failed deep in the eligibility rules with a bare ``KeyError: 'priority'``. ``how``
    says where the caller gets the demands with their facts.
    """
    present = set(columns)
    missing = [name for name in DERIVED_DEMAND_FIELDS if name not in present]
    if missing:
        raise TypeError(f"demands_with_facts: no derived column {', '.join(missing)}: pass {how}")


UNIT_FIELDS: dict[str, FieldKind] = {
    name: _kind(f.annotation) for name, f in Unit.model_fields.items()
}

ALLOCATION_FIELDS: dict[str, FieldKind] = {
    **{f"unit.{k}": v for k, v in UNIT_FIELDS.items()},
    **{f"demand.{k}": v for k, v in DEMAND_FIELDS.items()},
    "reservataire": "text",
    "in_flux": "bool",
}
"""Fields a quota rule may select on: one row per allocation (unit, demand, réservataire)."""


_INSEE = r"\d[\dAB]\d{3}"
_RESERVATAIRE_ID = r"[a-z][a-z0-9_]*"


def value_problem(field: str, value: str) -> str | None:
    """Why no row can hold the text ``value`` in ``field``, or None when one can.

    Why: the files refuse any other value of these fields (docs/data-format.md), so a condition
    on one (``unit.financing`` = ``PLAII``, ``priority_categories`` contains ``Habitat_Indigne``,
    a commune code ``1411``) selected nothing, without a word: a quota that never bound, a
    criterion that gave no points, an exclusion that matched no household.
    """
    name = field.removeprefix("unit.").removeprefix("demand.")
    if name == "financing" and value not in {f.value for f in Financing}:
        return f"'{field}' is one of {', '.join(f.value for f in Financing)}, not '{value}'"
    if name == "flux_excluded" and value not in {f.value for f in FluxExclusion}:
        allowed = ", ".join(f"'{f.value}'" for f in FluxExclusion)
        return f"'{field}' is one of {allowed}, not '{value}'"
    if name in {"commune_insee", "resident_commune_insee", "wished_communes"} and not re.fullmatch(
        _INSEE, value
    ):
        return f"'{value}' is not an INSEE commune code (5 characters, e.g. 14118 or 2A004)"
    if name == "priority_categories" and (problem := category_problem(value)):
        return f"'{value}': {problem}"
    if name == "pools" and not re.fullmatch(_RESERVATAIRE_ID, value):
        return f"'{value}' is not a réservataire id (lower-case letters, digits and '_')"
    return None
