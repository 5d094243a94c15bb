"""Bundled public data about real territories: communes, QPV, Q1 thresholds, income ceilings.

The generator and the scenarios need a few public figures at run time (the EPCI's member communes
and QPV neighbourhoods, the yearly first-quartile thresholds of the arrêté, the PLUS income
ceilings). They are copied into ``matching/data/`` (origin and licence in ``data/SOURCE.md``) and
read here through `importlib.resources`, so an installed wheel behaves exactly like the source
tree and nothing reads the repository's ``../shared`` folder. Imports `domain` and `exceptions`.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

from matching.domain import Commune, Territory
from matching.exceptions import PolicyError

_DATA = "data"


@dataclass(frozen=True)
class TerritoryEntry:
    """One row of ``data/territories.csv``: how a territory id maps to its bundled files.

    Attributes
    ----------
    id
        Stable identifier used on the command line and in scenarios, e.g. ``caen-la-mer``.
    name
        Official name of the EPCI.
    epci
        The EPCI's name as spelled in the Q1-threshold table (the join key of that table).
    ceiling_zone
        Income-ceiling zone of the arrêté of 29 July 1987 (``autres_regions`` outside
        Île-de-France).
    communes_file
        Name of the communes file in ``data/``.
    """

    id: str
    name: str
    epci: str
    ceiling_zone: str
    communes_file: str


@dataclass(frozen=True)
class CommuneProfile:
    """A member commune with the social-stock figures the generator draws units from.

    Attributes
    ----------
    insee
        INSEE commune code.
    name
        Official commune name.
    zone_abc
        A/B/C housing-market zone in force since 5 July 2024 (A, B1, B2 or C).
    qpv_names
        Names of the QPV neighbourhoods lying (at least partly) in the commune.
    stock_weight
        Share of the EPCI's social stock located in the commune, percent (a modelling assumption,
        see docs/territory.md: no per-commune RPLS file was available).
    qpv_stock_share
        Share of the commune's social stock located in its QPV, in [0, 1] (modelling assumption).
    """

    insee: str
    name: str
    zone_abc: str
    qpv_names: tuple[str, ...]
    stock_weight: float
    qpv_stock_share: float


@dataclass(frozen=True)
class IncomeQuartiles:
    """Quartile thresholds of the applicants' annual resources per consumption unit, EUR.

    Attributes
    ----------
    q1
        First-quartile threshold: below it a household is "Q1" (CCH L441-1 mixity targets).
    q2
        Median (the reference of the 50 % target inside QPV).
    q3
        Third quartile.
    """

    q1: float
    q2: float
    q3: float


def _rows(filename: str) -> list[dict[str, str]]:
    """Read one bundled CSV file as a list of rows (text values)."""
    text = resources.files("matching").joinpath(_DATA, filename).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@functools.cache
def _entries() -> dict[str, TerritoryEntry]:
    return {row["id"]: TerritoryEntry(**row) for row in _rows("territories.csv")}


def available_territories() -> tuple[str, ...]:
    """Return the identifiers of the bundled territories, sorted."""
    return tuple(sorted(_entries()))


def territory_entry(territory_id: str) -> TerritoryEntry:
    """Return the registry entry of a bundled territory (PolicyError naming an unknown id)."""
    entries = _entries()
    if territory_id not in entries:
        known = ", ".join(sorted(entries))
        raise PolicyError(f"unknown territory {territory_id!r} (bundled territories: {known})")
    return entries[territory_id]


@functools.cache
def commune_profiles(territory_id: str = "caen-la-mer") -> tuple[CommuneProfile, ...]:
    """Return the member communes of a bundled territory with their stock weights, in order."""
    entry = territory_entry(territory_id)
    return tuple(
        CommuneProfile(
            insee=row["insee"],
            name=row["name"],
            zone_abc=row["zone_abc"],
            qpv_names=tuple(n for n in row["qpv_names"].split(";") if n),
            stock_weight=float(row["stock_weight"]),
            qpv_stock_share=float(row["qpv_stock_share"]),
        )
        for row in _rows(entry.communes_file)
    )


@functools.cache
def load_territory(territory_id: str = "caen-la-mer") -> Territory:
    """Load a bundled territory as a validated `Territory` record.

    Parameters
    ----------
    territory_id
        Identifier of a bundled territory (see `available_territories`).

    Raises
    ------
    PolicyError
        When no territory of that id is bundled; the message names it and lists the known ones.
    """
    entry = territory_entry(territory_id)
    communes = tuple(
        Commune(insee=p.insee, name=p.name, qpv_names=p.qpv_names)
        for p in commune_profiles(territory_id)
    )
    return Territory(
        id=entry.id, name=entry.name, ceiling_zone=entry.ceiling_zone, communes=communes
    )


def _epci_name(territory: str) -> str:
    """Accept a territory id (``caen-la-mer``) or an EPCI name (``CU Caen la Mer``)."""
    entries = _entries()
    return entries[territory].epci if territory in entries else territory


@functools.cache
def income_quartiles(territory: str, year: int) -> IncomeQuartiles:
    """Return the EPCI's Q1, Q2, Q3 thresholds for the year (yearly ministerial arrêté).

    Parameters
    ----------
    territory
        A bundled territory id or an EPCI name as spelled in ``data/q1_thresholds.csv``.
    year
        Year of the arrêté (the thresholds apply to that year's allocations).

    Raises
    ------
    PolicyError
        When the EPCI or the year is not in the bundled table; the message lists what is.
    """
    epci = _epci_name(territory)
    rows = [r for r in _rows("q1_thresholds.csv") if r["epci"] == epci]
    if not rows:
        known = sorted({r["epci"] for r in _rows("q1_thresholds.csv")})
        raise PolicyError(
            f"no Q1 threshold for {territory!r}: bundled EPCI are {', '.join(known)} "
            f"(or a territory id: {', '.join(available_territories())})"
        )
    for row in rows:
        if int(row["year"]) == year:
            return IncomeQuartiles(float(row["q1"]), float(row["q2"]), float(row["q3"]))
    years = ", ".join(sorted({r["year"] for r in rows}))
    raise PolicyError(f"no Q1 threshold for {epci!r} in {year} (bundled years: {years})")


def q1_threshold(territory: str, year: int) -> float:
    """Return the EPCI's first-quartile threshold for the year, EUR of annual resources per CU.

    CU Caen la Mer: 10,656 EUR in 2026 (arrêté of 23 April 2026), 10,510 in 2025.
    """
    return income_quartiles(territory, year).q1


@functools.cache
def plus_ceilings(year: int, zone: str = "autres_regions") -> tuple[tuple[int, ...], int]:
    """Return the PLUS income ceilings in force on 1 January of ``year``, EUR/year.

    Returns
    -------
    tuple
        ``(by_category, extra_person)``: the ceilings of household categories 1 to 6, and the
        amount added per person beyond category 6 (arrêté of 29 July 1987, Annex I).

    Raises
    ------
    PolicyError
        When the zone or year is not bundled.
    """
    rows = [
        r
        for r in _rows("income_ceilings.csv")
        if r["product"] == "PLUS" and r["zone"] == zone and int(r["valid_from"][:4]) == year
    ]
    values = {r["menage_category"]: int(r["annual_ceiling_eur"]) for r in rows}
    keys = [str(c) for c in range(1, 7)]
    if any(k not in values for k in keys) or "par_personne_supplementaire" not in values:
        raise PolicyError(f"no bundled PLUS income ceilings for zone {zone!r} in {year}")
    return tuple(values[k] for k in keys), values["par_personne_supplementaire"]
