"""Bundled territory data: communes, QPV, Q1 thresholds, income ceilings, read from the package."""

from __future__ import annotations

from importlib import resources

import pytest

from matching.exceptions import PolicyError
from matching.policy import load_policy
from matching.territory import (
    available_territories,
    commune_profiles,
    income_quartiles,
    load_territory,
    plus_ceilings,
    q1_threshold,
)
from matching.types import Financing


def test_caen_la_mer_communes() -> None:
    """Caen la Mer has its 48 member communes, Caen and Hérouville with their QPV names."""
    territory = load_territory("caen-la-mer")
    assert territory.name == "CU Caen la Mer"
    assert territory.ceiling_zone == "autres_regions"
    assert len(territory.communes) == 48
    by_code = {c.insee: c for c in territory.communes}
    assert by_code["14118"].name == "Caen"
    assert "Chemin Vert" in by_code["14118"].qpv_names
    assert "Grand Parc" in by_code["14327"].qpv_names
    assert by_code["14098"].name == "Thue et Mue"
    assert by_code["14437"].qpv_names == ()  # Mondeville: no QPV


def test_stock_weights() -> None:
    """Stock weights sum to 100 % and the QPV stock is about a quarter of the whole."""
    profiles = commune_profiles("caen-la-mer")
    assert sum(p.stock_weight for p in profiles) == pytest.approx(100.0)
    qpv = sum(p.stock_weight * p.qpv_stock_share for p in profiles)
    # 50 x 0.33 + 12 x 0.55 + 5.3 x 0.20 + 2.5 x 0.30 = 24.91
    assert qpv == pytest.approx(24.91)
    assert all(p.qpv_stock_share == 0 for p in profiles if not p.qpv_names)


def test_q1_thresholds() -> None:
    """Q1 thresholds of the arrêtés: 10,656 EUR/CU in 2026 and 10,510 in 2025 for Caen la Mer."""
    assert q1_threshold("caen-la-mer", 2026) == 10656
    assert q1_threshold("CU Caen la Mer", 2025) == 10510
    assert income_quartiles("caen-la-mer", 2026).q2 == 15000
    assert q1_threshold("CA Lisieux Normandie", 2026) == 10551


def test_default_policy_agrees_with_bundled_data() -> None:
    """The default policy's Q1 threshold and PLUS ceilings equal the bundled 2026 figures."""
    policy = load_policy("default-2026")
    assert policy.household.q1_threshold_eur_per_cu == q1_threshold("caen-la-mer", 2026)
    by_category, extra = plus_ceilings(2026)
    plus = policy.income_ceilings.products[Financing.PLUS]
    assert tuple(plus.by_category) == by_category
    assert plus.extra_person == extra == 6710


def test_unknown_names_are_policy_errors() -> None:
    """An unknown territory, EPCI or year raises a PolicyError that names it."""
    assert available_territories() == ("caen-la-mer",)
    with pytest.raises(PolicyError, match=r"'paris'.*caen-la-mer"):
        load_territory("paris")
    with pytest.raises(PolicyError, match="CU Nowhere"):
        q1_threshold("CU Nowhere", 2026)
    with pytest.raises(PolicyError, match=r"2031.*2024, 2025, 2026"):
        q1_threshold("caen-la-mer", 2031)
    with pytest.raises(PolicyError, match="2019"):
        plus_ceilings(2019)


def test_data_ships_inside_the_package() -> None:
    """The run-time data and its SOURCE.md are package resources (found in an installed wheel)."""
    data = resources.files("matching").joinpath("data")
    for name in (
        "SOURCE.md",
        "territories.csv",
        "caen_la_mer_communes.csv",
        "q1_thresholds.csv",
        "income_ceilings.csv",
    ):
        assert data.joinpath(name).is_file(), name
