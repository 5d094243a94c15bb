"""Registration of every command module on the `matching` group (one import per module)."""

from __future__ import annotations

from matching.cli import cli
from matching.cli.check import check_command
from matching.cli.compare import compare_command
from matching.cli.eligibility import (
    eligibility_command,
    explain_score_command,
    score_command,
    why_not_command,
)
from matching.cli.generate import generate_command
from matching.cli.scenario import scenario_group
from matching.cli.simulate import simulate_command
from matching.cli.solve import solve_command

cli.add_command(check_command)
cli.add_command(generate_command)
cli.add_command(score_command)
cli.add_command(explain_score_command)
cli.add_command(eligibility_command)
cli.add_command(why_not_command)
cli.add_command(scenario_group)
cli.add_command(solve_command)
cli.add_command(simulate_command)
cli.add_command(compare_command)
