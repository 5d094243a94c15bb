"""The Policy aggregate: every rule of DOMAIN Part A as validated, immutable data.

A policy file in ``models/`` is loaded into these models by `matching.policy.loader`. Nothing in
the solver, the checker or the cotation hard-codes a number that lives here.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from matching.policy.conditions import Condition, ValidatedCopy
from matching.policy.fields import ALLOCATION_FIELDS, DEMAND_FIELDS
from matching.policy.frozen import read_only
from matching.types import Bound, Financing, FluxExclusion, Measure, QuotaMode, Stage


class Frozen(ValidatedCopy):
    """Base of the policy models: immutable, unknown keys refused.

    Numbers and booleans are strict types (``StrictFloat``, ``StrictInt``, ``StrictBool``), as
    in scenario files: pydantic would read ``target: true`` as 1.0 (a 100 % floor),
    ``delay_days: 30.0`` as 30, ``'0.5'`` as 0.5 and ``anru_counts_as_q1: 1`` as true without a
    word. A whole number is still a real number (``target: 1``, as YAML writes it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_conditions(conds: tuple[Condition, ...], known: dict, where: str) -> None:
    for i, cond in enumerate(conds):
        problem = cond.check_field(known)
        if problem:
            raise ValueError(f"{where}[{i}]: {problem}")


class ConsumptionUnitScale(Frozen):
    """Consumption units (OECD-modified scale, DOMAIN A1)."""

    first_person: StrictFloat = Field(default=1.0, gt=0, description="Weight of the first person")
    other_14_plus: StrictFloat = Field(
        default=0.5, ge=0, description="Each other person aged 14 or more"
    )
    child_under_14: StrictFloat = Field(default=0.3, ge=0, description="Each child under 14")


class HouseholdRules(Frozen):
    """How household facts are derived from a demand (DOMAIN A1)."""

    q1_threshold_eur_per_cu: StrictFloat = Field(
        gt=0, description="First-quartile threshold of the EPCI, EUR of annual income per CU"
    )
    q1_threshold_source: str = Field(default="", description="Where the threshold comes from")
    consumption_units: ConsumptionUnitScale = ConsumptionUnitScale()
    anru_counts_as_q1: StrictBool = Field(
        default=True, description="ANRU households count with Q1 (A1)"
    )
    dalo_is_priority: StrictBool = Field(default=True, description="DALO households are priority")
    priority_categories: tuple[str, ...] = Field(
        default=(), description="Known L441-1 category codes (open: other codes still count)"
    )


Ceiling = Annotated[StrictInt, Field(ge=0)]
"""One income ceiling, EUR/year: a negative one (a sign typed by mistake) closed the product to
every household without a word."""


class CeilingRow(Frozen):
    """Income ceilings of one financing product, EUR/year, by household category."""

    by_category: tuple[Ceiling, Ceiling, Ceiling, Ceiling, Ceiling, Ceiling] = Field(
        description="Categories 1 to 6"
    )
    extra_person: StrictInt = Field(ge=0, description="Added per category above 6")

    @model_validator(mode="after")
    def _increasing(self) -> CeilingRow:
        if any(b < a for a, b in pairwise(self.by_category)):
            raise ValueError("ceilings must not decrease with the category")
        return self


class IncomeCeilings(Frozen):
    """Income ceilings by financing product (DOMAIN A2.1)."""

    zone: str = Field(description="Ceiling zone, e.g. autres_regions")
    source: str = Field(default="", description="Arrêté or data set the values come from")
    products: dict[Financing, CeilingRow] = Field(description="One row per financing product")

    _read_only = field_validator("products")(read_only)

    @model_validator(mode="after")
    def _all_products(self) -> IncomeCeilings:
        missing = set(Financing) - set(self.products)
        if missing:
            raise ValueError(f"missing products: {sorted(missing)}")
        return self


class TypologyBand(Frozen):
    """Admissible numbers of rooms for a range of household sizes (DOMAIN A2.2)."""

    min_size: StrictInt = Field(ge=1, description="Smallest household size of the band, persons")
    max_size: StrictInt | None = Field(
        ge=1, description="Largest household size (None: no upper bound)"
    )
    min_rooms: StrictInt = Field(ge=1, le=7, description="Fewest rooms admissible")
    max_rooms: StrictInt = Field(ge=1, le=7, description="Most rooms admissible")

    @model_validator(mode="after")
    def _ordered(self) -> TypologyBand:
        if self.max_size is not None and self.max_size < self.min_size:
            raise ValueError("max_size < min_size")
        if self.max_rooms < self.min_rooms:
            raise ValueError("max_rooms < min_rooms")
        return self


class SurfaceRule(Frozen):
    """Minimum surface by household size (CCH R822-25, DOMAIN A2.3)."""

    one_person_m2: StrictFloat = Field(default=9, ge=0)
    two_persons_m2: StrictFloat = Field(default=16, ge=0)
    per_extra_person_m2: StrictFloat = Field(default=9, ge=0)
    cap_m2: StrictFloat = Field(default=70, ge=0, description="The minimum never exceeds this")


class RentEffortRule(Frozen):
    """Maximum rent effort (DOMAIN A2.4)."""

    max_ratio: StrictFloat = Field(
        default=0.33, gt=0, le=1, description="(rent - benefit) / resources"
    )


ELIGIBILITY_RULES: tuple[str, ...] = (
    "income_ceiling",
    "typology",
    "surface",
    "rent_effort",
    "location",
    "accessibility",
    "flux_exclusion",
)
"""Rule ids of DOMAIN A2, plus excluded units going only to the households they are for (A3)."""


class EligibilityRules(Frozen):
    """Which pair rules apply and their parameters (DOMAIN A2)."""

    rules: tuple[str, ...] = Field(default=ELIGIBILITY_RULES, description="Enabled rule ids")
    typology: tuple[TypologyBand, ...] = Field(min_length=1)
    surface: SurfaceRule = SurfaceRule()
    rent_effort: RentEffortRule = RentEffortRule()

    @model_validator(mode="after")
    def _valid(self) -> EligibilityRules:
        unknown = set(self.rules) - set(ELIGIBILITY_RULES)
        if unknown:
            raise ValueError(
                f"unknown eligibility rules {sorted(unknown)}; known: {ELIGIBILITY_RULES}"
            )
        bands = sorted(self.typology, key=lambda b: b.min_size)
        if bands[0].min_size != 1:
            raise ValueError("typology: the first band must start at household size 1")
        for a, b in pairwise(bands):
            if a.max_size is None or b.min_size <= a.max_size:
                raise ValueError(
                    f"typology: bands starting at {a.min_size} and {b.min_size} overlap"
                )
            if b.min_size != a.max_size + 1:
                raise ValueError(f"typology: gap between sizes {a.max_size} and {b.min_size}")
        if bands[-1].max_size is not None:
            raise ValueError("typology: the last band must have no max_size (open-ended)")
        return self


class ReservataireRule(Frozen):
    """A réservataire, its flux share and its pool (DOMAIN A3, A4)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    share: StrictFloat | None = Field(
        ge=0, le=1, description="Share of the yearly flux; null for the landlord (the remainder)"
    )
    pool: tuple[Condition, ...] = Field(
        default=(), description="Who it may propose; empty = anyone"
    )

    @model_validator(mode="after")
    def _fields(self) -> ReservataireRule:
        _check_conditions(self.pool, DEMAND_FIELDS, f"reservataires.{self.id}.pool")
        return self


class FluxRules(Frozen):
    """Flux management (DOMAIN A3, A4)."""

    landlord: str = Field(default="bailleur", description="Réservataire id receiving the remainder")
    exclusions: dict[FluxExclusion, tuple[Condition, ...]] = Field(
        description="For each exclusion reason, the households an excluded unit may go to"
    )

    _read_only = field_validator("exclusions")(read_only)

    @model_validator(mode="after")
    def _fields(self) -> FluxRules:
        for reason, conds in self.exclusions.items():
            _check_conditions(conds, DEMAND_FIELDS, f"flux.exclusions.{reason.value}")
        missing = set(FluxExclusion) - {FluxExclusion.NONE} - set(self.exclusions)
        if missing:
            raise ValueError(f"flux.exclusions: missing {sorted(m.value for m in missing)}")
        return self


SHARE_DENOMINATOR = 10_000
"""Share targets are read as fractions of denominator at most this (integer coefficients)."""

SHARE_TOLERANCE = Fraction(1, 10**7)
"""How far a share target may lie from that fraction: 1/3 written 0.3333333 is 1/3, but
0.33333 (a 33.333 % ceiling, which 1 of 3 breaks) or 0.00005 (a floor read as 0) is refused."""


class QuotaRule(Frozen):
    """One generic quota: a floor or ceiling, on a share or count of selected allocations (A4).

    The base is the set of allocations selected by ``base`` (conditions on ``unit.*``,
    ``demand.*``, ``reservataire``, ``in_flux``); the counted set is the part of the base that also
    meets ``count``. With ``measure: share`` the rule reads counted >= target x base (floor) or
    counted <= target x base (ceiling); with ``measure: count``, counted >= target (or <=). The rule
    holds separately in every group of ``scope`` (None: the whole EPCI), over the year so far.
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$")
    label: str
    bound: Bound
    measure: Measure = Measure.SHARE
    target: StrictFloat = Field(ge=0)
    base: tuple[Condition, ...] = Field(default=(), description="Allocations the rule is about")
    count: tuple[Condition, ...] = Field(description="Which of them count toward the target")
    scope: str | None = Field(default=None, description="Group-by field, e.g. unit.bailleur")
    weight: StrictInt = Field(
        default=1000, ge=0, description="Penalty per unit of shortfall (soft mode)"
    )
    source: str = Field(default="", description="Legal or contractual clause")

    @model_validator(mode="after")
    def _valid(self) -> QuotaRule:
        if self.measure == Measure.SHARE and self.target > 1:
            raise ValueError(f"quotas.{self.id}.target: a share must lie in [0, 1]")
        if self.measure == Measure.COUNT and self.target != int(self.target):
            raise ValueError(f"quotas.{self.id}.target: a count must be a whole number")
        if self.measure == Measure.SHARE:
            read = self.target_fraction()
            if abs(Fraction(str(self.target)) - read) > SHARE_TOLERANCE:
                # read as the nearest fraction, 0.33333 let 1 in 3 through a 33.333 % ceiling
                # and 0.00005 became a floor of 0: the rule held, checked, and was not the one
                # written
                raise ValueError(
                    f"quotas.{self.id}.target: {self.target} is not a share the quotas can "
                    f"read exactly (a fraction of denominator at most {SHARE_DENOMINATOR:,}: "
                    f"at most 4 decimals, or e.g. 1/3 as 0.3333333); it would be read as "
                    f"{read}"
                )
        _check_conditions(self.base, ALLOCATION_FIELDS, f"quotas.{self.id}.base")
        _check_conditions(self.count, ALLOCATION_FIELDS, f"quotas.{self.id}.count")
        if self.scope is not None and self.scope not in ALLOCATION_FIELDS:
            raise ValueError(f"quotas.{self.id}.scope: unknown field '{self.scope}'")
        if self.scope is not None and ALLOCATION_FIELDS[self.scope] == "list":
            raise ValueError(
                f"quotas.{self.id}.scope: '{self.scope}' is a list, which cannot group allocations"
            )
        return self

    def target_fraction(self) -> Fraction:
        """The target as an exact fraction, so that share constraints have integer coefficients.

        The nearest fraction of denominator at most `SHARE_DENOMINATOR`: 0.3333333 is 1/3. A
        target farther than `SHARE_TOLERANCE` from it is refused when the policy is loaded.
        """
        return Fraction(str(self.target)).limit_denominator(SHARE_DENOMINATOR)


class QuotaRules(Frozen):
    """The quota rules and whether they are hard or soft."""

    mode: QuotaMode = QuotaMode.HARD
    rules: tuple[QuotaRule, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> QuotaRules:
        ids = [r.id for r in self.rules]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"quotas: duplicate rule ids {sorted(dup)}")
        return self


POINTS_LIMIT = 10_000
"""The most points a criterion may give (per unit of `per`), either way.

Why: published grids give tens of points; a mistyped 1e15 made the scores overflow CP-SAT's
objective (MODEL_INVALID), and the round came back "FEASIBLE" at a third of its optimum."""

RESERVED_CRITERION_IDS = frozenset({"demand_id", "score"})
"""Ids no criterion may take: the columns `matching score` writes before the criteria's."""


class Criterion(Frozen):
    """One cotation criterion: a condition on demand fields and its points (DOMAIN A7)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    when: tuple[Condition, ...] = Field(default=(), description="All must hold; empty = always")
    points: StrictInt = Field(
        ge=-POINTS_LIMIT,
        le=POINTS_LIMIT,
        description="Points, or points per unit of `per` (at most 10,000 either way)",
    )
    per: str | None = Field(default=None, description="Numeric field the points are multiplied by")
    cap: StrictInt | None = Field(
        default=None, ge=0, description="Most points this criterion can give"
    )
    source: str = ""

    @model_validator(mode="after")
    def _fields(self) -> Criterion:
        if self.id in RESERVED_CRITERION_IDS:
            # `matching score` writes demand_id, score, then one column per criterion id: a
            # criterion named `score` gave a table with two `score` columns (read back as
            # `score` and `score.1`, the criterion's points taken for the total or the reverse)
            raise ValueError(
                f"cotation.criteria.{self.id}: '{self.id}' is the name of a column of the "
                "score table (demand_id, score): give the criterion another id"
            )
        _check_conditions(self.when, DEMAND_FIELDS, f"cotation.criteria.{self.id}.when")
        if self.per is not None and DEMAND_FIELDS.get(self.per) != "number":
            raise ValueError(
                f"cotation.criteria.{self.id}.per: '{self.per}' is not a numeric field"
            )
        return self


class CotationGrid(Frozen):
    """A published scoring grid: a list of criteria (DOMAIN A7)."""

    id: str
    label: str
    criteria: tuple[Criterion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> CotationGrid:
        ids = [c.id for c in self.criteria]
        if len(set(ids)) != len(ids):
            raise ValueError("cotation.criteria: duplicate ids")
        return self


class ObjectiveRules(Frozen):
    """Lexicographic stages (DOMAIN A5) and the tie-break order of equal-score households."""

    stages: tuple[Stage, ...] = (Stage.SHORTFALL, Stage.ALLOCATIONS, Stage.SCORE)
    tie_break: tuple[str, ...] = Field(
        default=("-score", "filed_on", "income_per_cu", "demand_id"),
        description="Order among households (a leading '-' sorts descending)",
    )

    @field_validator("stages")
    @classmethod
    def _some_stages_once(cls, stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
        """At least one stage, each once.

        Why: with no stage every allocation is optimal, the empty one too (a round came back
        OPTIMAL with nothing let); a stage given twice says nothing more than once.
        """
        if not stages:
            raise ValueError("at least one stage among shortfall, allocations, score")
        twice = sorted({s.value for s in stages if stages.count(s) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} given more than once")
        return stages

    @field_validator("tie_break")
    @classmethod
    def _known_fields(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        """Demand fields, derived facts or ``score``, with an order (not a list).

        Why: an unknown field failed only when a round was solved, with a KeyError traceback.
        """
        for key in keys:
            name = key.removeprefix("-")
            kind = "number" if name == "score" else DEMAND_FIELDS.get(name)
            if kind is None:
                raise ValueError(
                    f"unknown field '{name}' (a demand field, a derived fact or score)"
                )
            if kind == "list":
                raise ValueError(f"'{name}' is a list, which has no order")
        return keys


class ReturnToLandlord(Frozen):
    """What happens to a flux unit its réservataire leaves unfilled (DOMAIN B2, [K]).

    The flux convention fixes the delay within which the réservataire proposes candidates and
    what becomes of the unit when none is proposed: common practice is about one month, after
    which the unit returns to the landlord, who allocates it on its own share, and the unit is
    normally counted as delivered to the réservataire's flux. Both are parameters because the
    current rule could not be re-read (DOMAIN "What could not be confirmed", item 3).
    """

    delay_days: StrictInt = Field(
        default=30,
        ge=0,
        description="Days after its orientation that an unfilled unit returns to the landlord",
    )
    counted_to: Literal["reservataire", "landlord"] = Field(
        default="reservataire",
        description=(
            "Whose flux a returned unit counts in: the réservataire it was oriented to "
            "(common practice) or the landlord's (the réservataire is owed it again)"
        ),
    )


class Policy(Frozen):
    """Every parameter of an allocation policy (DOMAIN Part A)."""

    id: str
    label: str
    version: StrictInt = 1
    year: StrictInt = Field(ge=2000, le=2100)
    household: HouseholdRules
    income_ceilings: IncomeCeilings
    eligibility: EligibilityRules
    reservataires: tuple[ReservataireRule, ...] = Field(min_length=1)
    flux: FluxRules
    quotas: QuotaRules
    objective: ObjectiveRules = ObjectiveRules()
    cotation: CotationGrid
    return_to_landlord: ReturnToLandlord = ReturnToLandlord()

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        ids = [r.id for r in self.reservataires]
        if len(set(ids)) != len(ids):
            raise ValueError("reservataires: duplicate ids")
        if self.flux.landlord not in ids:
            raise ValueError(f"flux.landlord: '{self.flux.landlord}' is not a reservataire")
        total = sum(r.share or 0.0 for r in self.reservataires)
        if total > 1 + 1e-9:
            raise ValueError(f"reservataires: shares sum to {total:.4f} > 1")
        for r in self.reservataires:
            if r.share is None and r.id != self.flux.landlord:
                raise ValueError(f"reservataires.{r.id}.share: only the landlord may have no share")
        for rule in self.quotas.rules:
            for cond in (*rule.base, *rule.count):
                if cond.field == "reservataire":
                    vals = cond.value if isinstance(cond.value, list) else [cond.value]
                    bad = [v for v in vals if v not in ids]
                    if bad:
                        raise ValueError(f"quotas.{rule.id}: unknown reservataire(s) {bad}")
        return self

    def warnings(self) -> tuple[str, ...]:
        """Settings that are valid but rarely meant, one ``dotted.key: why`` line each.

        Why warnings, not errors: each has a use (a quota-blind allocation whose shortfalls
        are only reported measures what the quotas change), but written by mistake each drops
        quotas from the allocation without a word: the round is solved, the shortfalls are
        reported, and nothing says that nothing tried to avoid them.
        """
        crossing = self._crossing_shares()
        if self.quotas.mode == QuotaMode.HARD and self.objective.stages == (Stage.SHORTFALL,):
            return (
                "objective.stages: hard quotas have no shortfall, so no stage applies: any "
                "allocation that keeps the rules is optimal, an empty one too",
                *crossing,
            )
        if self.quotas.mode != QuotaMode.SOFT or not self.quotas.rules:
            return crossing
        if Stage.SHORTFALL not in self.objective.stages:
            return (
                "objective.stages: the quotas are soft and no stage minimises their shortfall, "
                "so the allocation ignores them and only reports how short it is (DOMAIN A5 "
                "puts 'shortfall' first)",
                *crossing,
            )
        return (
            tuple(
                f"quotas.rules.{k}.weight: 0 with soft quotas, so the allocation ignores rule "
                f"'{rule.id}' and only reports how short it is"
                for k, rule in enumerate(self.quotas.rules)
                if rule.weight == 0
            )
            + crossing
        )

    def _crossing_shares(self) -> tuple[str, ...]:
        """A share floor above a share ceiling on the same base, count and scope.

        Why: both hold only where the base is empty, so hard quotas leave every unit of that
        base vacant, "optimally", with no conflict to name (a Q1 floor of 25 % and a Q1 ceiling
        of 10 % outside QPV: 15 of 21 units vacant, OPTIMAL, no word).
        """
        rules = list(enumerate(self.quotas.rules))
        out = []
        for k, floor in rules:
            if floor.bound != Bound.FLOOR or floor.measure != Measure.SHARE:
                continue
            for j, ceiling in rules:
                same = (
                    ceiling.bound == Bound.CEILING
                    and ceiling.measure == Measure.SHARE
                    and ceiling.scope == floor.scope
                    and set(ceiling.base) == set(floor.base)
                    and set(ceiling.count) == set(floor.count)
                )
                if same and floor.target > ceiling.target:
                    out.append(
                        f"quotas.rules.{k}.target: the floor {floor.target:g} of '{floor.id}' "
                        f"is above the ceiling {ceiling.target:g} of '{ceiling.id}' "
                        f"(quotas.rules.{j}) on the same base and count: only a group with "
                        "nothing allocated in that base meets both, so its units stay vacant"
                    )
        return tuple(out)

    def other_year(self, year: int, what: str) -> str | None:
        """Why ``what`` (a scenario, a round) of ``year`` cannot use this policy; None if it can.

        Why: the Q1 threshold and the income ceilings are the figures of one year, and the flux
        shares and year-so-far counts are yearly: a 2024 round under a 2026 policy was solved
        with 2026 thresholds and ceilings without a word.
        """
        if year == self.year:
            return None
        return (
            f"'{self.id}' is for {self.year}, {what} for {year} "
            "(Q1 threshold and ceilings are yearly figures)"
        )

    def reservataire_ids(self) -> tuple[str, ...]:
        """Réservataire ids in policy order."""
        return tuple(r.id for r in self.reservataires)

    def shares(self) -> dict[str, float]:
        """Flux share of each réservataire; the landlord's is the remainder."""
        explicit = {r.id: r.share for r in self.reservataires if r.share is not None}
        rest = max(0.0, 1.0 - sum(explicit.values()))
        return {r.id: explicit.get(r.id, rest) for r in self.reservataires}
