"""Derived household facts (DOMAIN A1), computed once per round and reused everywhere.

Eligibility, the cotation, the solver, the checker and the KPIs all read these columns from the
same function, so that a household's category, consumption units, Q1 status and priority can never
disagree between the model and the audit. Vectorised: one numpy expression per fact.
"""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import pandas as pd

from matching.policy.model import HouseholdRules, Policy


def household_category(demands: pd.DataFrame) -> np.ndarray:
    """Household category (arrêté of 29 July 1987), above 6 meaning 6 plus extra persons.

    The highest of the arrêté's lines that the household meets: ``n`` persons is category
    ``n``; one person + ``k`` dependants is ``k + 2``; a young couple without dependant is 3;
    then 1 more when a member is disabled (DOMAIN A1). As a formula: the household size, plus
    1 for a young couple alone (two persons, no dependant) or for one person whose every other
    member is a dependant (``household_size - dependants == 1``), plus 1 for a disability.

    "One person + 1 dependant" is category 3 whatever the dependant's age: ``adults`` counts
    every person aged 14 or more, so a lone parent of a 16-year-old was category 2 and refused
    on a ceiling its category 3 meets. The lines are not added to the size: a single adult
    with one dependant and one other member is three persons, category 3 (it was 4), and a
    young couple living with a third person who is not a dependant is category 3 too (it was
    4): both were given the next category's higher ceilings.
    """
    size = demands["household_size"].to_numpy(dtype=np.int64)
    dependants = demands["dependants"].to_numpy(dtype=np.int64)
    young_alone = demands["young_couple"].to_numpy(dtype=bool) & (dependants == 0) & (size == 2)
    one_person_and_dependants = (size - dependants == 1) & (dependants >= 1)
    bump = (young_alone | one_person_and_dependants).astype(np.int64)
    return size + bump + demands["disabled_member"].to_numpy(dtype=bool).astype(np.int64)


def consumption_units(demands: pd.DataFrame, rules: HouseholdRules) -> np.ndarray:
    """Consumption units (OECD-modified): 1 + 0.5 per other person aged 14+ + 0.3 per child."""
    scale = rules.consumption_units
    adults = demands["adults"].to_numpy(dtype=np.int64)
    children = demands["children_under_14"].to_numpy(dtype=np.int64)
    return (
        scale.first_person
        + scale.other_14_plus * np.maximum(adults - 1, 0)
        + scale.child_under_14 * children
    )


def seniority_months(filed_on: pd.Series, on: dt.date) -> np.ndarray:
    """Whole months elapsed from each first filing date to ``on`` (never negative).

    A month is complete on the same day number, or on the last day of a month that has no such
    day (the civil reckoning of a delay in months, code de procédure civile art. 641): filed on
    31 December, two months have passed on 28 February. Why: rounds fall on the last day of
    their month, and a household filed on the 31st lost a month at every round of a 30-day
    month or of February (its +20 beyond 30 months too), behind one filed a day earlier.
    """
    dates = pd.to_datetime(filed_on)
    months = (on.year - dates.dt.year) * 12 + (on.month - dates.dt.month)
    month_end = on.day == calendar.monthrange(on.year, on.month)[1]
    if not month_end:
        months -= (dates.dt.day > on.day).astype(np.int64)
    return np.maximum(months.to_numpy(dtype=np.int64), 0)


def derive_facts(demands: pd.DataFrame, policy: Policy, on: dt.date) -> pd.DataFrame:
    """Return ``demands`` with the derived fact columns added (see policy.fields).

    Parameters
    ----------
    demands
        Validated demands table (docs/data-format.md).
    policy
        The policy, for the CU scale, the Q1 threshold and the priority rule.
    on
        The round's reference date (for seniority); never the machine's clock.
    """
    rules = policy.household
    out = demands.copy()
    out["category"] = household_category(demands)
    out["consumption_units"] = consumption_units(demands, rules)
    income = demands["annual_income_eur"].to_numpy(dtype=float)
    out["income_per_cu"] = income / out["consumption_units"].to_numpy()
    out["q1"] = out["income_per_cu"].to_numpy() < rules.q1_threshold_eur_per_cu
    anru = demands["anru"].to_numpy(dtype=bool)
    out["q1_or_anru"] = out["q1"].to_numpy() | (anru if rules.anru_counts_as_q1 else False)
    n_cat = demands["priority_categories"].map(len).to_numpy(dtype=np.int64)
    out["n_priority_categories"] = n_cat
    dalo = demands["dalo"].to_numpy(dtype=bool)
    out["priority"] = (dalo & rules.dalo_is_priority) | (n_cat > 0)
    out["seniority_months"] = seniority_months(demands["filed_on"], on)
    return out
