"""A year of allocation rounds: releases, arrivals, lapses, CALEOL offers and refusals (issue 6).

Modules, one job each:

- `config`: the scenario's ``simulation:`` settings;
- `periods`: the rounds of the year (weekly or monthly);
- `draws`: seeded random numbers keyed by what they are about;
- `arrivals`, `lapse`, `refusals`: demands filed during the year, demands not renewed, offers
  refused;
- `adapters`: the allocation policy and shortlist services a round uses;
- `accounts`: year-so-far accounting and the policies that pin carried units;
- `offers`: the offers down each shortlist;
- `inputs`: the year's data (`YearData`, `year_data`);
- `play`: one round; `engine`: the loop (`simulate`); `state`: checkpoints;
- `outcomes`: the year's indicators; `outputs`: the files; `compare`: policies x seeds.

Nothing is imported here, so that `matching.scenario` can import `config` without a cycle.
"""
