"""Allocation policies of a round behind one interface: optimal, greedy_score, seniority, bands."""

from __future__ import annotations

from matching.allocation.base import POLICY_NAMES as POLICY_NAMES
from matching.allocation.base import AllocationPolicy as AllocationPolicy
from matching.allocation.base import get_policy as get_policy
