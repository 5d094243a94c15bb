"""The README's repository layout and command table match the package."""

from __future__ import annotations

import re
from pathlib import Path

import click

from matching.cli import cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else None]


def test_layout_lists_every_module_and_package() -> None:
    layout = _section("Repository layout")
    package = ROOT / "src" / "matching"
    names = {p.name for p in package.glob("*.py") if p.name != "__init__.py"}
    names |= {f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").is_file()}
    missing = sorted(n for n in names if not re.search(rf"(?<![\w/]){re.escape(n)}", layout))
    assert not missing, f"README layout misses {missing}"
    for scenario in (ROOT / "scenarios").glob("*.yaml"):
        assert scenario.name in layout, scenario.name


def test_command_table_lists_every_command() -> None:
    table = _section("Command line")
    for name in cli.list_commands(click.Context(cli)):
        assert f"`matching {name} " in table, name


# French terms of art, acronyms and words of the law that the docs use: each one the docs use
# must have its row in the README's glossary (STYLE: keep the glossary in the README).
FRENCH_TERMS = (
    "logement", "demande", "cotation", "réservataire", "gestion en flux", "QPV", "Q1",
    "DALO", "publics prioritaires", "CALEOL", "CIA", "ANRU", "mutation", "bailleur", "EPCI",
    "PLAI", "taux d'effort", "CCH", "arrêté", "PPGD", "SNE", "Ancols",
    "délai anormalement long", "revenu fiscal de référence", "APL", "PMR", "T1",
    "jeune ménage", "à charge", "habitat indigne", "vente", "HLM", "CU", "zone", "zone tendue",
    "INSEE", "RPLS", "DREAL", "SDES",
)  # fmt: skip


def test_glossary_defines_every_french_term_the_docs_use() -> None:
    glossary = _section("Glossary")
    terms = {line.split("|")[1] for line in glossary.splitlines() if line.startswith("| **")}
    docs = README + "".join(
        p.read_text(encoding="utf-8")
        for p in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
    )
    used = [t for t in FRENCH_TERMS if re.search(rf"(?<!\w){re.escape(t)}(?!\w)", docs, re.I)]
    missing = [t for t in used if not any(t.lower() in term.lower() for term in terms)]
    assert not missing, f"the README's glossary misses {missing}"
