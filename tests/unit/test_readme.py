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
