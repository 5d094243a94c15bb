"""The fields a policy may reference, with their kind, so that policy files are validated on load.

A policy condition names a demand column (docs/data-format.md), a derived household fact (computed
once in `matching.facts`, DOMAIN A1) or, in quota rules, a unit column prefixed with ``unit.``, a
demand field prefixed with ``demand.``, or ``reservataire``.
"""

from __future__ import annotations

from typing import Literal

from matching.domain import Demand, Unit

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
