"""Every command of the `matching` group, imported now (the group imports each on first use).

For callers that want them all at once: tests that reach into ``cli.commands``, and tools that
list every command's options. ``import matching.cli.commands`` is enough.
"""

from __future__ import annotations

from matching.cli import COMMANDS, MatchingGroup, cli

assert isinstance(cli, MatchingGroup)
for _name in COMMANDS:
    cli.load(_name)
