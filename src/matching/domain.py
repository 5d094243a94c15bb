"""Domain records: units, demands, réservataires and territories, as validated immutable data.

These pydantic models are the data contract (docs/data-format.md). Tables of thousands of rows are
held as pandas DataFrames whose columns are exactly these fields; `matching.io` validates the
DataFrames column by column against these models (vectorised), and single records can be built
and validated directly. Imports `types` and pydantic only.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from matching.types import CommuneCode, DemandId, Financing, FluxExclusion, ReservataireId, UnitId

InseeCode = Annotated[str, Field(pattern=r"^\d[\dAB]\d{3}$", description="INSEE commune code")]

CATEGORY_PATTERN = r"^[a-z][a-z0-9_]*$"
"""Form of a priority category code (``sans_logement``), as the policy files write them."""

NO_CATEGORY_WORDS: frozenset[str] = frozenset(
    {"aucun", "aucune", "neant", "non", "no", "none", "false", "faux", "nul", "na", "rien", "sans"}
    # a missing value as pandas (str of NaN), SQL/JSON exports and forms write it, and
    # "non communiqué / renseigné / déterminé", "vide", "inconnu": each counted as a category
    | {"nan", "null", "nil", "vide", "nc", "nr", "nd", "inconnu"}
)
"""Words a spreadsheet uses for "no category". The categories are an open enumeration, so each
of them counted as one: the household became a priority household (score, État pool,
priority floors). They are refused; an empty cell is the empty list."""

YES_WORDS: frozenset[str] = frozenset({"oui", "yes", "true", "vrai"})
"""A yes where the categories are asked for (a priority flag column): it counted as a category
named 'oui', which no policy rule names; the household's categories must be named."""


def category_problem(entry: str) -> str:
    """Why ``entry`` is not a priority category code, or ``""`` when it is one."""
    if entry.lower() in NO_CATEGORY_WORDS or entry in {"-", "0", "n/a", "N/A"}:
        return f"'{entry}' is not a category: leave the cell empty for none"
    if entry.lower() in YES_WORDS:
        return f"'{entry}' is not a category: name the household's categories (e.g. sans_logement)"
    if not re.fullmatch(CATEGORY_PATTERN, entry):
        return "not a category code (lower-case letters, digits and '_', e.g. sans_logement)"
    return ""


class Record(BaseModel):
    """Base of the immutable domain records."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Unit(Record):
    """A vacant social housing unit (logement) released in the period."""

    unit_id: UnitId = Field(min_length=1, description="Unique identifier of the unit")
    bailleur: str = Field(min_length=1, description="Landlord (bailleur social) owning the unit")
    commune_insee: InseeCode = Field(description="INSEE code of the commune where the unit is")
    qpv: bool = Field(description="True when the unit lies in a QPV (poor neighbourhood)")
    rooms: int = Field(ge=1, le=7, description="Number of main rooms (T1 = 1), kitchen excluded")
    surface_m2: float = Field(gt=0, description="Habitable surface, square metres")
    financing: Financing = Field(description="Financing product: PLAI, PLUS or PLS")
    rent_eur: float = Field(ge=0, description="Monthly rent, charges included, EUR")
    accessible: bool = Field(description="True when the unit is adapted to reduced mobility (PMR)")
    flux_excluded: FluxExclusion = Field(
        default=FluxExclusion.NONE,
        description=(
            "Empty, or why the unit is excluded from the flux: mutation|anru|habitat_indigne|vente"
        ),
    )
    released_on: dt.date = Field(description="Date the unit was released (became vacant)")


class Demand(Record):
    """A social housing demand (demande) of one household."""

    demand_id: DemandId = Field(min_length=1, description="Unique registration number")
    filed_on: dt.date = Field(
        description="Date of first filing (kept through renewals), for seniority"
    )
    household_size: int = Field(ge=1, le=20, description="Persons who will live in the unit")
    adults: int = Field(ge=1, le=20, description="Persons aged 14 or more in the household")
    children_under_14: int = Field(ge=0, le=20, description="Children under 14 in the household")
    dependants: int = Field(
        ge=0, le=20, description="Persons dependent on the household (à charge)"
    )
    disabled_member: bool = Field(
        description="A member holds a disability card (raises the category)"
    )
    young_couple: bool = Field(description="Couple whose ages sum to 55 or less (jeune ménage)")
    annual_income_eur: float = Field(
        ge=0, description="Household reference taxable income N-2, EUR/year"
    )
    monthly_resources_eur: float = Field(ge=0, description="Current monthly resources, EUR/month")
    housing_benefit_eur: float = Field(
        ge=0, description="Expected housing benefit (APL/AL), EUR/month"
    )
    wished_communes: tuple[CommuneCode, ...] = Field(
        default=(), description="Wished communes (INSEE codes); empty means any"
    )
    needs_accessible: bool = Field(
        description="The household needs a unit adapted to reduced mobility"
    )
    dalo: bool = Field(description="Recognised priority and urgent by the DALO commission")
    priority_categories: tuple[str, ...] = Field(
        default=(), description="L441-1 priority categories (open enumeration of codes)"
    )
    anru: bool = Field(description="Household to rehouse under an urban renewal (ANRU) operation")
    state_agent: bool = Field(description="A member is a civil or military State agent")
    private_employee: bool = Field(
        description="A member works for a private-sector employer (Action Logement)"
    )
    resident_commune_insee: InseeCode = Field(
        description="INSEE code of the current commune of residence"
    )
    current_social_tenant: bool = Field(
        description="Already a social tenant (the demand is a mutation)"
    )
    eviction_threat: bool = Field(
        default=False, description="Threatened with eviction without rehousing"
    )
    single_parent: bool = Field(default=False, description="Single parent with at least one child")
    overcrowded: bool = Field(default=False, description="Current housing is over-occupied")
    current_rent_effort: float = Field(
        default=0.0,
        ge=0,
        le=10,
        description="Current rent effort rate (rent net of benefit / resources)",
    )
    hosted: bool = Field(default=False, description="Hosted by a third party or family")
    unsuitable_size: bool = Field(
        default=False, description="Current social unit unsuitable in size (mutation reason)"
    )
    refusals: int = Field(default=0, ge=0, description="Suitable offers refused so far")
    pools: tuple[ReservataireId, ...] | None = Field(
        default=None,
        description="Explicit réservataire pools; overrides the derived pools when given",
    )

    @field_validator("priority_categories")
    @classmethod
    def _category_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            problem = category_problem(entry)
            if problem:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _composition_adds_up(self) -> Demand:
        if self.adults + self.children_under_14 != self.household_size:
            raise ValueError(
                f"adults ({self.adults}) + children_under_14 ({self.children_under_14}) "
                f"must equal household_size ({self.household_size})"
            )
        if self.dependants > self.household_size - 1:
            raise ValueError("dependants must be fewer than household_size")
        if self.young_couple and self.adults < 2:
            raise ValueError(f"a young couple needs at least 2 adults (adults is {self.adults})")
        if self.single_parent and self.household_size < 2:
            raise ValueError(
                "a single parent lives with a child: household_size must be at least 2"
            )
        return self


class Reservataire(Record):
    """A holder of reservation rights and the rule that defines its pool of households."""

    id: ReservataireId = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Stable identifier")
    label: str = Field(description="Name shown in reports")
    share: float | None = Field(
        ge=0,
        le=1,
        description="Share of the yearly flux; None for the landlord, who keeps the remainder",
    )


class Commune(Record):
    """A commune of the territory."""

    insee: InseeCode = Field(description="INSEE code")
    name: str = Field(description="Official name")
    qpv_names: tuple[str, ...] = Field(default=(), description="Names of its QPV neighbourhoods")


class Territory(Record):
    """An EPCI: its communes, zone for the income ceilings and first-quartile threshold."""

    id: str = Field(description="Stable identifier, e.g. caen-la-mer")
    name: str = Field(description="Official name, e.g. CU Caen la Mer")
    ceiling_zone: str = Field(description="Income-ceiling zone: autres_regions, ile_de_france, ...")
    communes: tuple[Commune, ...] = Field(min_length=1, description="Member communes")

    def commune_codes(self) -> frozenset[str]:
        """INSEE codes of the member communes."""
        return frozenset(c.insee for c in self.communes)


UNIT_COLUMNS: tuple[str, ...] = tuple(Unit.model_fields)
DEMAND_COLUMNS: tuple[str, ...] = tuple(Demand.model_fields)
