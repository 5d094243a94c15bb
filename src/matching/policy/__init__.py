"""Policy: the cotation grid, eligibility parameters, pools, flux shares and quota rules as data."""

from __future__ import annotations

from matching.policy.conditions import Condition as Condition
from matching.policy.loader import load_policy as load_policy
from matching.policy.loader import policy_from_dict as policy_from_dict
from matching.policy.model import Policy as Policy
from matching.policy.model import QuotaRule as QuotaRule
