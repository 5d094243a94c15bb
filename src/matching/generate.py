"""Synthetic territories: one year of released units and the stock of pending demands.

No unit-level RPLS file and no SNE extract are public, so tests, benchmarks and scenarios run on
a generated territory calibrated on the public figures bundled in ``matching/data`` and listed,
with their sources, in docs/territory.md: the EPCI's real communes and QPV, the yearly Q1/Q2/Q3
thresholds of the arrêté (the generated income per CU has exactly those quartiles), and the
Calvados demand figures (seniority 56/19/25 %, 73 % single adult, 39 % current social tenants).
Everything else is a modelling assumption named next to its constant.

Vectorised numpy throughout (250,000 demands in a few seconds), seeded through
`numpy.random.SeedSequence`: the same seed gives the same frames, and the units and the demands
draw from independent child streams, so changing ``n_units`` leaves the demands unchanged.
Imports `domain`, `frames`, `territory` and `io` (whose validators check every generated frame
against the data contract before it is returned); writes no file (the CLI writes through `io`).
"""

from __future__ import annotations

import datetime as dt
import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matching.domain import DEMAND_COLUMNS, UNIT_COLUMNS
from matching.frames import DEMAND_DTYPES, UNIT_DTYPES
from matching.io import validate_demands, validate_units
from matching.limits import MAX_ROWS
from matching.territory import IncomeQuartiles, commune_profiles, income_quartiles, load_territory

DEFAULT_UNITS = 4000
"""Units released in a year in a Caen la Mer-sized EPCI (docs/territory.md, "Sizes")."""

DEFAULT_DEMANDS = 17000
"""Pending demands on 1 January in a Caen la Mer-sized EPCI (docs/territory.md, "Sizes")."""

# --- Units (modelling assumptions unless a source is named; docs/territory.md) ----------------

MONTH_WEIGHTS = np.array([7.5, 7.5, 8.0, 8.0, 8.0, 9.0, 10.0, 10.0, 9.0, 8.0, 7.5, 7.5]) / 100
"""Share of the year's releases by month: a summer peak of moves (assumption)."""

ROOMS = np.array([1, 2, 3, 4, 5, 6])
ROOM_SHARES = np.array([0.05, 0.17, 0.38, 0.32, 0.07, 0.01])
"""T1..T6 mix: 1-2 rooms 22 %, 5+ rooms 8 %, the Normandie stock (RPLS 2024, fact F17)."""

SURFACE_MEAN_M2 = np.array([30.0, 47.0, 66.0, 80.0, 95.0, 108.0])
SURFACE_SD_M2 = np.array([4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
"""Habitable surface by number of rooms, T1..T6 (assumption, typical social-stock sizes)."""

NEW_BUILD_SHARE = 0.20
"""Share of released units that are new buildings; all outside QPV (France: ~80 % turnover)."""

FINANCINGS = np.array(["PLAI", "PLUS", "PLS"], dtype=object)
FINANCING_SHARES = {
    "qpv": np.array([0.05, 0.93, 0.02]),
    "new": np.array([0.30, 0.55, 0.15]),
    "old": np.array([0.23, 0.65, 0.12]),
}
"""PLAI/PLUS/PLS mix by stock segment; about 20/70/10 overall (assumption)."""

RENT_PER_M2 = np.array([5.0, 5.7, 8.0])
"""Rent excluding charges, EUR/m2/month, for PLAI, PLUS, PLS (assumption, RPLS orders of size)."""

RENT_FACTOR = {"qpv": 0.85, "new": 1.25, "old": 1.0}
"""Rent level of the segment: old QPV estates are cheaper, new buildings dearer (assumption)."""

CHARGES_PER_M2 = 1.5
"""Service charges, EUR/m2/month, added to the rent (``rent_eur`` includes charges)."""

ACCESSIBLE_SHARE = {"new": 0.15, "other": 0.05}
"""Share of units adapted to reduced mobility (PMR): about 7 % overall (assumption)."""

BAILLEURS = np.array(
    ["Inolya", "Caen la Mer Habitat", "Partélios Habitat", "Les Foyers Normands", "CDC Habitat"],
    dtype=object,
)
BAILLEUR_SHARES = np.array(
    [
        [0.25, 0.45, 0.12, 0.10, 0.08],  # the central commune (first row of the communes file)
        [0.50, 0.20, 0.15, 0.10, 0.05],  # other communes with a QPV
        [0.45, 0.12, 0.20, 0.15, 0.08],  # the rest of the EPCI
    ]
)
"""Landlords by commune class: real landlords of the area, shares assumed (docs/territory.md)."""

FLUX_EXCLUSIONS = np.array(["", "mutation", "habitat_indigne", "vente", "anru"], dtype=object)
FLUX_EXCLUSION_SHARES = np.array([0.875, 0.10, 0.015, 0.01])
"""Units excluded from the flux (DOMAIN A3), drawn first: mutation 10 %, unfit-housing
rehousing 1.5 %, sales 1 % (assumption)."""

ANRU_UNIT_SHARE = 0.02
"""Units reserved for ANRU rehousing, drawn in the communes that have a QPV only (rehousing near
the renewed estates) at the rate that gives 2 % overall; they override the draw above."""

# --- Demands ------------------------------------------------------------------------------------

SENIORITY_BAND_SHARES = np.array([0.56, 0.19, 0.25])
"""Pending demands under 1 year, 1-2 years, over 2 years old (Calvados 2021, fact F09-F11)."""

SENIORITY_TAIL_MEAN_DAYS = 1000.0
SENIORITY_CAP_DAYS = 15 * 365
"""Age beyond 2 years: truncated exponential, mean ~33 months more, capped at 15 years; gives a
mean seniority of about 21 months (Calvados: 20 months in 2021, 22 in 2023, fact F04/F11)."""

HOUSEHOLD_TYPES = ("single", "single_parent", "couple", "couple_children", "other_adults")
HOUSEHOLD_TYPE_SHARES = np.array([0.45, 0.28, 0.10, 0.14, 0.03])
"""Household types: 73 % have a single adult (Calvados 2021, fact F12); split assumed."""

SINGLE_PARENT_CHILDREN = np.array([0.50, 0.32, 0.13, 0.05])  # 1..4 children under 14
COUPLE_CHILDREN = np.array([0.30, 0.38, 0.20, 0.08, 0.04])  # 1..5 children under 14
TEENAGER_SHARE = 0.25
"""Couples with children who also have a child aged 14+ (a second dependant adult)."""

INCOME_TYPE_EFFECT = np.array([0.0, -0.5, 0.5, 0.2, 0.1])
"""Latent income shift by household type (single parents poorer, couples richer); only ranks
matter, since the marginal distribution of income per CU is fixed by the quartiles."""

INCOME_SENIORITY_EFFECT = np.array([-0.5, 0.0, 0.5])
"""Latent income shift by seniority band (< 1, 1-2, > 2 years): recent demands are more often
young households whose taxable income of year N-2 is low (students two years ago)."""

INCOME_KNOTS_U = np.array([0.0, 0.03, 0.05, 0.25, 0.50, 0.75, 0.90, 0.97, 1.0])
"""Quantile levels of the income-per-CU distribution; between knots income is linear in u."""

ZERO_INCOME_SHARE = 0.03
"""Households with no taxable income N-2 (students, newcomers, minimum benefits only)."""

RSA_SINGLE_EUR = 650.0
"""Minimum income (RSA-like) of one consumption unit, EUR/month, non-taxable (assumption)."""

MINIMUM_INCOME_TAKE_UP = 0.66
"""Share of low-income households that receive the minimum income they are entitled to."""

FAMILY_ALLOWANCE_EUR = np.array([0.0, 0.0, 150.0, 340.0, 530.0, 720.0])
"""Family allowances by number of children under 14 (0..5), EUR/month, non-taxable."""

CURRENT_SOCIAL_TENANT_SHARE = 0.39
"""Demands from households already in social housing (mutations): Calvados 2021, fact F07."""

HOSTED_SHARE = {"q1": 0.40, "other": 0.22}
"""Share of hosted households (by family or a third party) among non-tenants (assumption)."""

BENEFIT_STATED = np.array([0.90, 0.75, 0.0])
"""Share of files stating the expected housing benefit, for social tenants, private renters and
hosted households: a household that receives no benefit today states none, so its rent effort
is computed on the gross rent (the main way poor households lose eligibility to dearer units,
see docs/territory.md "Q1 and priority households")."""

WISH_COUNT_SHARES = np.array([0.15, 0.35, 0.30, 0.20])
"""Number of wished communes 0..3 (0 = any commune), assumption."""

NON_TENANT_WISH_FLATTENING = 0.7
"""Exponent on the stock weights for non-tenants outside Q1: they live and wish more evenly
across the EPCI than the social stock is spread."""

WISH_HOME_SHARE = 0.7
"""Share of households whose first wish is their current commune (when they state one)."""

PRIORITY_SCALE = 1.3
"""Scale of the L441-1 category probabilities (about 22 % of demands with a category)."""

PRIORITY_SENIORITY_FACTOR = np.array([1.7, 0.7, 0.25])
"""Relative frequency of priority categories by seniority band (< 1, 1-2, > 2 years)."""

DALO_RATE = {"category": 0.08, "other": 0.004}
"""DALO recognition rate among households with / without an L441-1 category (~2 % overall)."""

Q1_QPV_COMMUNE_BONUS = 1.4
"""Q1 households are this many times likelier to live in, and wish for, a commune with a QPV."""


@dataclass(frozen=True)
class Calibration:
    """The four levers that decide how far the unconstrained optimum is from the quotas.

    docs/territory.md ("Q1 and priority households") argues each one. The defaults are the
    module's constants, which give the bundled territory. A researcher can vary them, and the
    benchmark's binding pooled year uses stronger survivorship (`BINDING_YEAR`). Only the demands
    depend on them: the units are the same for every calibration of a seed.

    Raises
    ------
    TypeError
        A lever of the wrong kind, named: a string, a bool, a mapping or ``None`` where a number
        or a tuple of 3 numbers is expected (a list or a 1-D numpy array of 3 numbers is fine).
    ValueError
        A lever out of its range, named (not 3 finite numbers, a negative survivorship factor,
        a share outside [0, 1], a bonus not > 0).
    """

    income_seniority_effect: tuple[float, ...] = tuple(INCOME_SENIORITY_EFFECT.tolist())
    """Latent income shift by seniority band (< 1, 1-2, > 2 years): `INCOME_SENIORITY_EFFECT`."""
    priority_seniority_factor: tuple[float, ...] = tuple(PRIORITY_SENIORITY_FACTOR.tolist())
    """Relative frequency of priority categories by seniority band: `PRIORITY_SENIORITY_FACTOR`
    (normalised, so the overall priority share stays about 22 %)."""
    hosted_share_q1: float = HOSTED_SHARE["q1"]
    """Share of hosted households among Q1 non-tenants: `HOSTED_SHARE` (the others keep theirs)."""
    q1_qpv_commune_bonus: float = Q1_QPV_COMMUNE_BONUS
    """Weight on the communes with a QPV for Q1 residence and wishes: `Q1_QPV_COMMUNE_BONUS`."""

    def __post_init__(self) -> None:
        # Each lever is stored as float(s): a list or a 1-D numpy array given stays hashable and
        # frozen. A string, a bool or a mapping is refused by name rather than read as numbers
        # ("123" as (1, 2, 3), True as 1.0) or left to fail later inside numpy.
        for name in ("income_seniority_effect", "priority_seniority_factor"):
            values = getattr(self, name)
            if isinstance(values, np.ndarray) and values.ndim == 1:
                values = values.tolist()
            if not isinstance(values, (tuple, list)) or not all(map(_is_real, values)):
                raise TypeError(
                    f"Calibration.{name} needs a tuple of 3 numbers (one per seniority band), "
                    f"got {values!r}"
                )
            floats = tuple(float(v) for v in values)
            if len(floats) != 3 or not all(np.isfinite(floats)):
                raise ValueError(f"Calibration.{name} needs 3 finite numbers, got {values!r}")
            object.__setattr__(self, name, floats)
        for name in ("hosted_share_q1", "q1_qpv_commune_bonus"):
            value = getattr(self, name)
            if not _is_real(value):
                raise TypeError(f"Calibration.{name} must be a number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not all(v >= 0 for v in self.priority_seniority_factor) or not any(
            v > 0 for v in self.priority_seniority_factor
        ):
            raise ValueError(
                "Calibration.priority_seniority_factor needs numbers >= 0, not all 0, "
                f"got {self.priority_seniority_factor!r}"
            )
        if not 0.0 <= self.hosted_share_q1 <= 1.0:
            raise ValueError(
                f"Calibration.hosted_share_q1 must be in [0, 1], got {self.hosted_share_q1!r}"
            )
        if not (np.isfinite(self.q1_qpv_commune_bonus) and self.q1_qpv_commune_bonus > 0):
            raise ValueError(
                "Calibration.q1_qpv_commune_bonus must be a finite number > 0, "
                f"got {self.q1_qpv_commune_bonus!r}"
            )


def _is_real(value: object) -> bool:
    """A real number (Python or numpy), not a bool: what a calibration lever may hold."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


DEFAULT_CALIBRATION = Calibration()
"""The bundled territory's calibration (the module constants)."""

BINDING_YEAR = Calibration(priority_seniority_factor=(3.0, 0.4, 0.05))
"""Stronger survivorship of priority households: the pooled-year benchmark rung's calibration.

Why: a pooled year houses 4,000 of 17,000 households, so it reaches far down the integer
cotation, where hundreds of households share each score. With the default levers some optimum
without quotas already meets every quota (its priority share of flux units ranges 35.7-47.6 %
over the optima, against about 43.8 % needed), so the quotas cost nothing. With pending priority
households even more recent (factors 3.0 / 0.4 / 0.05, still about 21 % of the demands), the
highest share over the optima is 41.5 % and the priority floors bind (measured 2026-11-30,
seed 1; docs/territory.md)."""


@dataclass(frozen=True)
class _Communes:
    """Commune arrays of a territory, in file order (the first one is the central commune)."""

    codes: np.ndarray
    weight: np.ndarray
    qpv_share: np.ndarray
    has_qpv: np.ndarray

    @classmethod
    def of(cls, territory: str) -> _Communes:
        profiles = commune_profiles(territory)
        weight = np.array([p.stock_weight for p in profiles], dtype=float)
        return cls(
            codes=np.array([p.insee for p in profiles], dtype=object),
            weight=weight / weight.sum(),
            qpv_share=np.array([p.qpv_stock_share for p in profiles], dtype=float),
            has_qpv=np.array([bool(p.qpv_names) for p in profiles], dtype=bool),
        )


def generate_territory(
    territory: str = "caen-la-mer",
    year: int = 2026,
    seed: int = 1,
    n_units: int = DEFAULT_UNITS,
    n_demands: int = DEFAULT_DEMANDS,
    *,
    calibration: Calibration = DEFAULT_CALIBRATION,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate one year of released units and the pending demands of a bundled territory.

    Parameters
    ----------
    territory
        Id of a bundled territory (`matching.territory.available_territories`).
    year
        Year generated: units are released between 1 January and 31 December of it; demands are
        the stock pending on 1 January (every ``filed_on`` is on or before that date, and
        seniority is calibrated at that date). Must have a bundled Q1 threshold.
    seed
        Seed of the random streams: the same seed gives identical frames.
    n_units
        Units released over the year (4,000 for Caen la Mer; 40 for a tiny round).
    n_demands
        Pending demands (17,000 for Caen la Mer; 250,000 for a Paris-sized file).
    calibration
        The levers that decide how far the unconstrained optimum is from the quotas
        (`Calibration`); the default gives the bundled territory. The units do not depend on it.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(units, demands)``: canonical frames (`matching.frames` columns and dtypes), units
        sorted by release date, ids ``U2026-000001`` and ``D2026-0000001``.

    Raises
    ------
    PolicyError
        Unknown territory, or no bundled Q1 threshold for the year.
    DataError
        A generated frame breaks the data contract (a bug of the generator, never expected).
    ValueError
        A size below 1 or above `matching.limits.MAX_ROWS`, or a negative seed.
    TypeError
        A size, seed or year that is not a whole number (the message names it), or a calibration
        that is not a `Calibration`.
    """
    _require_ints(seed=seed, n_units=n_units, n_demands=n_demands, year=year)
    _require_calibration(calibration)
    if not (1 <= n_units <= MAX_ROWS and 1 <= n_demands <= MAX_ROWS) or seed < 0:
        raise ValueError(
            f"need 1 <= n_units, n_demands <= {MAX_ROWS:,} and seed >= 0 "
            f"(got {n_units}, {n_demands}, {seed})"
        )
    communes = _Communes.of(territory)
    quartiles = income_quartiles(territory, year)
    unit_stream, demand_stream = np.random.SeedSequence(seed).spawn(2)
    units = _generate_units(communes, year, np.random.default_rng(unit_stream), n_units)
    demands = _generate_demands(
        communes, quartiles, year, np.random.default_rng(demand_stream), n_demands, calibration
    )
    # Self-check against the data contract: a generator bug fails here, not in a later round.
    codes = load_territory(territory).commune_codes()
    source = f"<generated {territory} {year} seed {seed}"
    units = validate_units(units, f"{source} units>", communes=codes, as_of=dt.date(year, 12, 31))
    demands = validate_demands(
        demands, f"{source} demands>", communes=codes, as_of=dt.date(year, 1, 1)
    )
    return units, demands


# --- helpers --------------------------------------------------------------------------------------


def _require_ints(**arguments: object) -> None:
    """Refuse a size, seed or year that is not a whole number, naming the argument.

    numpy's own message for ``n_units=2.0`` or ``seed=1.5`` names neither the argument nor the
    function ("expected a sequence of integers or a single integer, got '2.0'").
    """
    for name, value in arguments.items():
        if not isinstance(value, int | np.integer):
            raise TypeError(f"{name} must be a whole number (got {value!r})")


def _require_calibration(calibration: object) -> None:
    if not isinstance(calibration, Calibration):
        raise TypeError(
            f"calibration must be a matching.generate.Calibration, got {type(calibration).__name__}"
        )


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    """Build ids: ``prefix`` + zero-padded 1-based row number, as an object array of str."""
    numbers = np.strings.zfill(np.arange(1, n + 1).astype(str), width)
    return np.strings.add(prefix, numbers).astype(object)


def _rows_choice(rng: np.random.Generator, probs: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Draw one category per row from the probability row ``probs[group[i]]`` (vectorised)."""
    cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(group))
    index = (u[:, None] >= cdf[group]).sum(axis=1)
    return np.minimum(index, probs.shape[1] - 1)


def _frame(
    columns: dict[str, object], order: tuple[str, ...], dtypes: dict[str, str]
) -> pd.DataFrame:
    """Assemble a canonical frame: exact column order and dtypes, RangeIndex."""
    frame = pd.DataFrame({name: columns[name] for name in order})
    for name, dtype in dtypes.items():
        if dtype == "object":
            frame[name] = pd.Series(np.asarray(columns[name], dtype=object), dtype=object)
        else:
            frame[name] = frame[name].astype(np.dtype(dtype))
    return frame


def _days_since(year: int, offsets: np.ndarray) -> np.ndarray:
    """Dates as ``datetime64[ns]``: 1 January of ``year`` plus ``offsets`` days (may be < 0)."""
    start = np.datetime64(f"{year}-01-01", "D")
    return (start + offsets.astype("timedelta64[D]")).astype("datetime64[ns]")


# --- units ----------------------------------------------------------------------------------------


def _generate_units(
    communes: _Communes, year: int, rng: np.random.Generator, n: int
) -> pd.DataFrame:
    """Draw the units released over ``year`` (the module constants give every share used)."""
    month = rng.choice(12, size=n, p=MONTH_WEIGHTS)
    month_start = np.array(
        [np.datetime64(f"{year}-{m:02d}-01", "D") for m in range(1, 13)]
        + [np.datetime64(f"{year + 1}-01-01", "D")]
    )
    month_days = np.diff(month_start).astype(np.int64)
    offset = (month_start[month] - month_start[0]).astype(np.int64)
    offset += np.floor(rng.random(n) * month_days[month]).astype(np.int64)
    order = np.argsort(offset, kind="stable")  # ids follow the release date

    commune = rng.choice(len(communes.codes), size=n, p=communes.weight)
    qpv = rng.random(n) < communes.qpv_share[commune]
    new_build = ~qpv & (rng.random(n) < NEW_BUILD_SHARE / (1 - 0.25))
    segment = np.where(qpv, 0, np.where(new_build, 1, 2))  # 0 qpv, 1 new, 2 old

    room_index = rng.choice(len(ROOMS), size=n, p=ROOM_SHARES)
    drawn = rng.normal(SURFACE_MEAN_M2[room_index], SURFACE_SD_M2[room_index])
    surface = np.round(np.maximum(drawn * np.where(new_build, 0.95, 1.0), 18.0), 1)

    financing_probs = np.stack([FINANCING_SHARES[s] for s in ("qpv", "new", "old")])
    financing = _rows_choice(rng, financing_probs, segment)
    factor = np.array([RENT_FACTOR[s] for s in ("qpv", "new", "old")])[segment]
    per_m2 = RENT_PER_M2[financing] * factor * rng.lognormal(0.0, 0.08, n)
    charges = CHARGES_PER_M2 * rng.lognormal(0.0, 0.15, n)
    rent = np.round(surface * (per_m2 + charges), 0)

    accessible = rng.random(n) < np.where(
        new_build, ACCESSIBLE_SHARE["new"], ACCESSIBLE_SHARE["other"]
    )
    commune_class = np.where(commune == 0, 0, np.where(communes.has_qpv[commune], 1, 2))
    bailleur = _rows_choice(rng, BAILLEUR_SHARES, commune_class)

    exclusion = rng.choice(len(FLUX_EXCLUSION_SHARES), size=n, p=FLUX_EXCLUSION_SHARES)
    qpv_commune_share = communes.weight[communes.has_qpv].sum()
    anru_rate = min(ANRU_UNIT_SHARE / max(qpv_commune_share, 1e-9), 1.0)
    anru = communes.has_qpv[commune] & (rng.random(n) < anru_rate)
    exclusion = np.where(anru, len(FLUX_EXCLUSIONS) - 1, exclusion)

    columns: dict[str, object] = {
        "unit_id": _ids(f"U{year}-", n, 6),
        "bailleur": BAILLEURS[bailleur][order],
        "commune_insee": communes.codes[commune][order],
        "qpv": qpv[order],
        "rooms": ROOMS[room_index][order],
        "surface_m2": surface[order],
        "financing": FINANCINGS[financing][order],
        "rent_eur": rent[order],
        "accessible": accessible[order],
        "flux_excluded": FLUX_EXCLUSIONS[exclusion][order],
        "released_on": _days_since(year, offset[order]),
    }
    return _frame(columns, UNIT_COLUMNS, UNIT_DTYPES)


# --- demands --------------------------------------------------------------------------------------


def _income_per_cu(quartiles: IncomeQuartiles, latent: np.ndarray) -> np.ndarray:
    """Map a latent score to income per CU whose sample quartiles are exactly q1, q2, q3.

    Ranks of the latent score are spread evenly on (0, 1) and passed through a piecewise-linear
    quantile function through the arrêté's quartiles, so that 25 % of the generated households are
    below q1 by construction (the definition of the first quartile), whatever the sample size.
    """
    n = len(latent)
    ranks = np.empty(n, dtype=np.int64)
    ranks[np.argsort(latent, kind="stable")] = np.arange(n)
    u = (ranks + 0.5) / max(n, 1)
    q2 = quartiles.q2
    values = np.array(
        [0.0, 0.0, 0.27 * q2, quartiles.q1, q2, quartiles.q3, 1.75 * q2, 2.3 * q2, 3.3 * q2]
    )
    income = np.interp(u, INCOME_KNOTS_U, values)
    return np.where(u < ZERO_INCOME_SHARE, 0.0, income)


def _tuples(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Build an object array whose row i is ``tuple(codes[i, :lengths[i]])``.

    Built once per distinct length with ``zip`` over columns: no Python loop over the rows.
    """
    out = np.empty(len(lengths), dtype=object)
    for k in range(codes.shape[1] + 1):
        rows = np.flatnonzero(lengths == k)
        if len(rows) == 0:
            continue
        if k == 0:
            out[rows] = [()] * len(rows)
            continue
        built = np.empty(len(rows), dtype=object)
        built[:] = list(zip(*(codes[rows, j] for j in range(k)), strict=True))
        out[rows] = built
    return out


def _category_tuples(flags: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Object array of tuples of the category names whose flag is set, per row.

    Rows are encoded as bit masks; one tuple is built per distinct mask and shared.
    """
    weights = 1 << np.arange(len(names), dtype=np.int64)
    masks = flags.astype(np.int64) @ weights
    unique, inverse = np.unique(masks, return_inverse=True)
    table = np.empty(len(unique), dtype=object)
    table[:] = [tuple(n for b, n in enumerate(names) if m >> b & 1) for m in unique.tolist()]
    return table[inverse]


PRIORITY_CATEGORY_NAMES = (
    "handicap",
    "defavorise",
    "hebergement_temporaire",
    "reprise_activite",
    "habitat_indigne",
    "violences",
    "suroccupation_mineur",
    "sans_logement",
    "menace_expulsion",
)
"""L441-1 category codes of the default policy, in its order."""


def _generate_demands(
    communes: _Communes,
    quartiles: IncomeQuartiles,
    year: int,
    rng: np.random.Generator,
    n: int,
    calibration: Calibration,
) -> pd.DataFrame:
    """Draw the demands pending on 1 January of ``year`` (constants and levers give the shares)."""
    # Seniority at 1 January: 56 % < 1 year, 19 % 1-2 years, 25 % > 2 years (F09-F11).
    band = rng.choice(3, size=n, p=SENIORITY_BAND_SHARES)
    tail_mass = 1.0 - np.exp(-(SENIORITY_CAP_DAYS - 730) / SENIORITY_TAIL_MEAN_DAYS)
    tail = -SENIORITY_TAIL_MEAN_DAYS * np.log1p(-rng.random(n) * tail_mass)
    age_days = np.floor(np.where(band == 2, 730 + tail, 365 * (band + rng.random(n))))
    age_days = age_days.astype(np.int64)

    # Household composition: 73 % single adult (F12).
    htype = rng.choice(len(HOUSEHOLD_TYPES), size=n, p=HOUSEHOLD_TYPE_SHARES)
    sp_kids = 1 + rng.choice(len(SINGLE_PARENT_CHILDREN), size=n, p=SINGLE_PARENT_CHILDREN)
    couple_kids = 1 + rng.choice(len(COUPLE_CHILDREN), size=n, p=COUPLE_CHILDREN)
    teenager = rng.random(n) < TEENAGER_SHARE
    other_adults = np.where(rng.random(n) < 0.8, 2, 3)
    other_kids = (rng.random(n) < 0.3).astype(np.int64)
    adults = np.select(
        [htype <= 1, htype == 2, htype == 3], [1, 2, 2 + teenager.astype(np.int64)], other_adults
    )
    children = np.select(
        [htype == 0, htype == 1, htype == 2, htype == 3], [0, sp_kids, 0, couple_kids], other_kids
    )
    dependants = children + np.where(htype == 3, adults - 2, 0)
    size = adults + children
    young_couple = np.isin(htype, (2, 3)) & (rng.random(n) < np.where(htype == 2, 0.30, 0.20))
    disabled = rng.random(n) < 0.06
    needs_accessible = (disabled & (rng.random(n) < 0.5)) | (rng.random(n) < 0.01)
    cu = 1.0 + 0.5 * (adults - 1) + 0.3 * children

    # Income per CU with the arrêté's exact quartiles; ranks shifted by household type.
    seniority_effect = np.asarray(calibration.income_seniority_effect)
    latent = rng.normal(size=n) + INCOME_TYPE_EFFECT[htype] + seniority_effect[band]
    income_per_cu = _income_per_cu(quartiles, latent)
    u_income = income_per_cu / quartiles.q2  # relative income, for the correlated flags below
    q1 = income_per_cu < quartiles.q1
    annual_income = np.round(income_per_cu * cu, 0)

    # Current monthly resources: income drift since N-2, minimum income, family allowances.
    earned = annual_income / 12 * rng.lognormal(0.03, 0.15, n)
    minimum = RSA_SINGLE_EUR * cu * (rng.random(n) < MINIMUM_INCOME_TAKE_UP)
    allowances = FAMILY_ALLOWANCE_EUR[np.minimum(children, 5)]
    resources = np.round(np.maximum(earned, minimum) + allowances, 0)

    # Status: 39 % current social tenants (F07); among the others, hosted households (reasons
    # "family/personal", F02) are more frequent in Q1; the rest rent privately.
    tenant = rng.random(n) < CURRENT_SOCIAL_TENANT_SHARE
    hosted_share = np.where(q1, calibration.hosted_share_q1, HOSTED_SHARE["other"])
    hosted = ~tenant & (rng.random(n) < hosted_share)
    status = np.where(tenant, 0, np.where(hosted, 2, 1))  # 0 tenant, 1 private renter, 2 hosted

    # Expected housing benefit: a simplified APL of zone 2 (rent ceiling + flat charges, minus a
    # personal contribution rising with resources), stated in the file by most tenants and
    # private renters (who receive it today) and by no hosted household.
    rent_ceiling = np.select(
        [size == 1, dependants == 0], [280.0, 340.0], 385.0 + 56.0 * np.maximum(dependants - 1, 0)
    )
    charges = 58.0 + 13.0 * dependants
    contribution = 38.0 + 0.30 * np.maximum(resources - 700.0 * cu, 0.0)
    benefit = np.maximum(rent_ceiling + charges - contribution, 0.0)
    benefit = np.where(benefit < 15.0, 0.0, benefit)
    stated = rng.random(n) < BENEFIT_STATED[status]
    benefit = np.round(benefit * stated, 0)

    # Situation (cotation criteria): overcrowding, mutation reasons (F03), eviction, rent effort.
    overcrowded = rng.random(n) < np.where(size >= 3, 0.15, 0.05)
    unsuitable = tenant & ((rng.random(n) < 0.33) | overcrowded)
    eviction = rng.random(n) < np.where(tenant, 0.01, np.where(q1, 0.06, 0.03))
    raw_effort = np.where(
        tenant,
        0.7 * rng.beta(2.0, 6.0, n),
        0.8 * rng.beta(2.0, 4.0, n),
    ) + 0.10 * np.clip(1.0 - u_income, 0.0, 1.0)
    effort = np.round(np.where(hosted, 0.0, np.minimum(raw_effort, 1.5)), 3)
    refusals = rng.choice(3, size=n, p=[0.90, 0.08, 0.02])

    # Where they live and wish to live: weighted by the social stock; Q1 households drawn to the
    # communes with a QPV, other non-tenants spread more evenly (flatter weights).
    log_w = np.log(communes.weight)
    group_log_w = np.stack(
        [
            log_w + np.log(calibration.q1_qpv_commune_bonus) * communes.has_qpv,  # Q1 households
            log_w,  # current social tenants outside Q1
            NON_TENANT_WISH_FLATTENING * log_w,  # the others
        ]
    )
    group = np.where(q1, 0, np.where(tenant, 1, 2))
    resident = _rows_choice(rng, np.exp(group_log_w), group)
    n_wishes = rng.choice(len(WISH_COUNT_SHARES), size=n, p=WISH_COUNT_SHARES)
    # Gumbel top-k: the k largest of log-weight + Gumbel noise are a weighted draw without repeats.
    uniform = np.maximum(rng.random((n, len(log_w)), dtype=np.float32), np.float32(1e-30))
    keys = group_log_w.astype(np.float32)[group] - np.log(-np.log(uniform))
    wants_home = rng.random(n) < WISH_HOME_SHARE
    keys[np.flatnonzero(wants_home), resident[wants_home]] = np.inf
    k = min(len(WISH_COUNT_SHARES) - 1, len(log_w))
    best = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(keys, best, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(best, order, axis=1)
    n_wishes = np.minimum(n_wishes, k)
    wished = _tuples(communes.codes[top], n_wishes)
    in_qpv_commune = communes.has_qpv[resident]

    # Priority (L441-1 categories, default-policy codes) and DALO. Pending priority households
    # are mostly recent: the older ones have been housed first (survivorship of the stock).
    factor = np.asarray(calibration.priority_seniority_factor, dtype=float)
    recent = factor[band] / (factor @ SENIORITY_BAND_SHARES)
    not_tenant = ~tenant
    base = np.stack(
        [
            np.where(disabled, 0.5, 0.0),  # handicap
            np.where(q1, 0.12, 0.03),  # defavorise
            np.where(not_tenant, 0.025, 0.0),  # hebergement_temporaire
            np.where(q1, 0.0, 0.01),  # reprise_activite
            np.where(not_tenant, 0.015, 0.0),  # habitat_indigne
            np.where(adults == 1, 0.03, 0.005),  # violences
            np.where(overcrowded & (children > 0), 0.5, 0.0),  # suroccupation_mineur
            np.where(not_tenant, np.where(q1, 0.05, 0.015), 0.0),  # sans_logement
            np.where(eviction, 0.8, 0.0),  # menace_expulsion
        ],
        axis=1,
    )
    flags = rng.random(base.shape) < np.minimum(base * PRIORITY_SCALE * recent[:, None], 1.0)
    categories = _category_tuples(flags, PRIORITY_CATEGORY_NAMES)
    has_category = flags.any(axis=1)
    dalo = rng.random(n) < np.where(has_category, DALO_RATE["category"], DALO_RATE["other"])
    anru = tenant & in_qpv_commune & (rng.random(n) < 0.06)
    state_agent = ~q1 & (rng.random(n) < 0.066)
    employee = rng.random(n) < np.clip(0.10 + 0.35 * u_income, 0.0, 0.85)

    columns: dict[str, object] = {
        "demand_id": _ids(f"D{year}-", n, 7),
        "filed_on": _days_since(year, -age_days),
        "household_size": size,
        "adults": adults,
        "children_under_14": children,
        "dependants": dependants,
        "disabled_member": disabled,
        "young_couple": young_couple,
        "annual_income_eur": annual_income,
        "monthly_resources_eur": resources,
        "housing_benefit_eur": benefit,
        "wished_communes": wished,
        "needs_accessible": needs_accessible,
        "dalo": dalo,
        "priority_categories": categories,
        "anru": anru,
        "state_agent": state_agent,
        "private_employee": employee,
        "resident_commune_insee": communes.codes[resident],
        "current_social_tenant": tenant,
        "eviction_threat": eviction,
        "single_parent": htype == 1,
        "overcrowded": overcrowded,
        "current_rent_effort": effort,
        "hosted": hosted,
        "unsuitable_size": unsuitable,
        "refusals": refusals,
        "pools": np.full(n, None, dtype=object),
    }
    return _frame(columns, DEMAND_COLUMNS, DEMAND_DTYPES)


# --- demands filed during the year (multi-round simulation, issue 6) ----------------------------

NEW_DEMAND_STREAM = 2
"""Index of the child stream of ``SeedSequence(seed)`` that new filings draw from: streams 0 and
1 are the units and the 1 January stock, so adding filings changes neither."""

RECENT_BAND_SHARE = SENIORITY_BAND_SHARES[0]
"""Share of a generated stock that is under a year old: new filings are drawn from that band."""


def generate_demands(
    territory: str = "caen-la-mer",
    year: int = 2026,
    seed: int = 1,
    n_demands: int = 1000,
    *,
    filed_from: dt.date | None = None,
    filed_to: dt.date | None = None,
    id_prefix: str = "N",
    calibration: Calibration = DEFAULT_CALIBRATION,
) -> pd.DataFrame:
    """Generate demands filed during ``year``, with the profile of the recent demands.

    New filings look like the stock's under-a-year band (DOMAIN B6 / docs/territory.md: poorer by
    the income-N-2 effect, more often priority), so they are drawn as that band of a generated
    stock (rejection on the band, same constants as `generate_territory`), then given filing
    dates spread evenly at random over ``[filed_from, filed_to]``, no refusal so far, and ids
    ``N2026-0000001``... (ordered by filing date) that cannot collide with the stock's ``D`` ids.

    Parameters
    ----------
    territory, year, seed
        As in `generate_territory`; the draws use a third child stream of the seed, so the units
        and the 1 January stock of the same seed are unchanged.
    n_demands
        Number of new demands (0 gives an empty canonical frame).
    filed_from, filed_to
        First and last filing date (default: 2 January and 31 December of ``year``).
    id_prefix
        Letter that starts the ids.
    calibration
        As in `generate_territory`: new filings follow the same levers as the stock.

    Returns
    -------
    pandas.DataFrame
        Canonical demands frame sorted by ``filed_on``, validated by `matching.io`.

    Raises
    ------
    ValueError
        ``n_demands`` below 0 or above `matching.limits.MAX_ROWS` (10**11 asked numpy for
        745 GiB), a negative seed, or ``filed_to`` before ``filed_from``.
    TypeError
        A size, seed or year that is not a whole number (the message names it), or a calibration
        that is not a `Calibration`.
    """
    _require_ints(seed=seed, n_demands=n_demands, year=year)
    _require_calibration(calibration)
    if not 0 <= n_demands <= MAX_ROWS or seed < 0:
        raise ValueError(
            f"need 0 <= n_demands <= {MAX_ROWS:,} and seed >= 0 (got {n_demands}, {seed})"
        )
    start = filed_from or dt.date(year, 1, 2)
    end = filed_to or dt.date(year, 12, 31)
    if end < start:
        raise ValueError(f"filed_to {end} is before filed_from {start}")
    communes = _Communes.of(territory)
    quartiles = income_quartiles(territory, year)
    stream = np.random.SeedSequence(seed).spawn(NEW_DEMAND_STREAM + 1)[NEW_DEMAND_STREAM]
    rng = np.random.default_rng(stream)
    draw = max(16, int(np.ceil(1.25 * n_demands / RECENT_BAND_SHARE)))
    while True:
        pool = _generate_demands(communes, quartiles, year, rng, draw, calibration)
        age = (np.datetime64(f"{year}-01-01", "ns") - pool["filed_on"].to_numpy()).astype(
            "timedelta64[D]"
        )
        recent = np.flatnonzero(age.astype(np.int64) < 365)
        if len(recent) >= n_demands:
            break
        draw *= 2
    frame = pool.iloc[recent[:n_demands]].reset_index(drop=True)
    days = (end - start).days + 1
    offsets = np.sort(np.floor(rng.random(n_demands) * days).astype(np.int64))
    base = np.datetime64(start.isoformat(), "D")
    frame["filed_on"] = (base + offsets.astype("timedelta64[D]")).astype("datetime64[ns]")
    ids = _ids(f"{id_prefix}{year}-", n_demands, 7) if n_demands else np.empty(0, dtype=object)
    frame["demand_id"] = pd.Series(ids, dtype=object)
    frame["refusals"] = np.zeros(n_demands, dtype=np.int64)
    codes = load_territory(territory).commune_codes()
    return validate_demands(
        frame, f"<generated {territory} {year} seed {seed} new demands>", communes=codes, as_of=end
    )
