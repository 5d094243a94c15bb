"""Policy files: what loading one refuses (file, dotted key, reason), and docs/policy.md.

The errors are the planner's interface to a policy they wrote: each test writes the bundled
model with one change and reads the message the command line would print.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

import matching.cli.commands  # noqa: F401  (registers the commands on the group)
from matching.cli import cli
from matching.exceptions import PolicyError
from matching.policy import load_policy
from matching.policy.conditions import Op
from matching.policy.fields import DERIVED_DEMAND_FIELDS
from matching.policy.loader import BUNDLED_MODELS
from matching.policy.model import Policy

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "policy.md"
DEFAULT = (BUNDLED_MODELS / "default-2026.yaml").read_text(encoding="utf-8")
STAGES = "stages: [shortfall, allocations, score]"
TIES = 'tie_break: ["-score", filed_on, income_per_cu, demand_id]'
AL_POOL = "pool: [{field: private_employee, op: eq, value: true}]"
QPV_BASE = "base: [{field: unit.qpv, op: eq, value: true}]"


def variant(tmp_path: Path, old: str, new: str) -> Path:
    """The bundled policy with ``old`` replaced by ``new`` once, written to a file."""
    assert old in DEFAULT, old
    path = tmp_path / "my-policy.yaml"
    path.write_text(DEFAULT.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "old,new,message",
    [
        (STAGES, "stages: []",
         "objective.stages: at least one stage among shortfall, allocations, score"),
        (STAGES, "stages: [score, allocations, score]",
         "objective.stages: score given more than once"),
        (TIES, 'tie_break: ["-score", filed_onn]',
         "objective.tie_break: unknown field 'filed_onn' (a demand field, a derived fact or "
         "score)"),
        (TIES, "tie_break: [wished_communes]",
         "objective.tie_break: 'wished_communes' is a list, which has no order"),
        (AL_POOL, "pool: [{field: private_employee, op: eq, value: 'yes'}]",
         "reservataires.3: reservataires.action_logement.pool[0]: 'private_employee' is bool, "
         "'yes' is not"),
        (AL_POOL, "pool: [{field: wished_communes, op: eq, value: '14118'}]",
         "reservataires.3: reservataires.action_logement.pool[0]: 'wished_communes' is a list: "
         "use op contains, nonempty or empty"),
        (AL_POOL, "pool: [{field: wished_communes, op: contains, value: 14118}]",
         "reservataires.3: reservataires.action_logement.pool[0]: 'wished_communes' holds "
         "text: quote the value ('14118')"),
        (AL_POOL, "pool: [{field: filed_on, op: eq, value: 2020-01-01}]",
         "reservataires.3: reservataires.action_logement.pool[0]: 'filed_on' is a date, which "
         "conditions cannot compare yet"),
        (AL_POOL, "pool: [{field: household_size, op: gt, value: true}]",
         "reservataires.3.pool.0: op 'gt' needs a number"),
        (QPV_BASE, "base: [{field: unit.commune_insee, op: in, value: ['14118', 14341]}]",
         "quotas.rules.4: quotas.mixity_inside_qpv.base[0]: 'unit.commune_insee' is text, 14341 "
         "is not: quote it ('14341')"),
        (QPV_BASE, f"{QPV_BASE}\n      scope: demand.wished_communes",
         "quotas.rules.4: quotas.mixity_inside_qpv.scope: 'demand.wished_communes' is a list, "
         "which cannot group allocations"),
        ("target: 0.50", "target: 1.5",
         "quotas.rules.4: quotas.mixity_inside_qpv.target: a share must lie in [0, 1]"),
        # read as 1/3, a 33.333 % ceiling let 1 of 3 through; 0.00005 was a floor of 0
        ("target: 0.50", "target: 0.33333",
         "quotas.rules.4: quotas.mixity_inside_qpv.target: 0.33333 is not a share the quotas "
         "can read exactly (a fraction of denominator at most 10,000: at most 4 decimals, or "
         "e.g. 1/3 as 0.3333333); it would be read as 1/3"),
        ("target: 0.50", "target: 0.00005",
         "quotas.rules.4: quotas.mixity_inside_qpv.target: 5e-05 is not a share the quotas "
         "can read exactly (a fraction of denominator at most 10,000: at most 4 decimals, or "
         "e.g. 1/3 as 0.3333333); it would be read as 0"),
        ("pool: [{field: priority, op: eq, value: true}]",
         "pool: [{field: prioriti, op: eq, value: true}]",
         "reservataires.0: reservataires.etat.pool[0]: unknown field 'prioriti'"),
        ("share: 0.20", "share: 0.60", "reservataires: shares sum to 1.1500 > 1"),
        # 1e15 overflowed CP-SAT's objective: "FEASIBLE" at a third of the optimum
        ("      points: 50\n", "      points: 1000000000000000\n",
         "cotation.criteria.2.points: Input should be less than or equal to 10000 "
         "(got 1000000000000000)"),
        # `matching score` writes demand_id, score, then a column per criterion: a criterion
        # `score` gave a table with two `score` columns
        ("id: dalo\n", "id: score\n",
         "cotation.criteria.2: cotation.criteria.score: 'score' is the name of a column of the "
         "score table (demand_id, score): give the criterion another id"),
        ("mode: hard", "mode: hardd",
         "quotas.mode: Input should be 'hard' or 'soft' (got \"hardd\")"),
        ("zone: autres_regions", "zone: autres_regions\n  zones: x",
         "income_ceilings.zones: Extra inputs are not permitted (got \"x\")"),
        # a boolean, quoted text or a fraction was turned into a number, and a number into a
        # boolean, without a word: `target: true` was a 100 % floor
        ("target: 0.50", "target: true",
         "quotas.rules.4.target: Input should be a valid number (got true)"),
        ("target: 0.50", "target: '0.5'",
         "quotas.rules.4.target: Input should be a valid number (got \"0.5\")"),
        ("target: 0.50", "target: 0.50\n      weight: true",
         "quotas.rules.4.weight: Input should be a valid integer (got true)"),
        ("      points: 50\n", "      points: true\n",
         "cotation.criteria.2.points: Input should be a valid integer (got true)"),
        ("share: 0.20", "share: false",
         "reservataires.2.share: Input should be a valid number (got false)"),
        ("delay_days: 30 ", "delay_days: true ",
         "return_to_landlord.delay_days: Input should be a valid integer (got true)"),
        ("delay_days: 30 ", "delay_days: 30.0 ",
         "return_to_landlord.delay_days: Input should be a valid integer (got 30.0)"),
        ("{min_size: 1,", "{min_size: true,",
         "eligibility.typology.0.min_size: Input should be a valid integer (got true)"),
        ("year: 2026", "year: '2026'", "year: Input should be a valid integer (got \"2026\")"),
        ("anru_counts_as_q1: true", "anru_counts_as_q1: 'yes'",
         "household.anru_counts_as_q1: Input should be a valid boolean (got \"yes\")"),
        ("anru_counts_as_q1: true", "anru_counts_as_q1: 1",
         "household.anru_counts_as_q1: Input should be a valid boolean (got 1)"),
        # values no file may hold: the condition selected nothing, without a word
        ("base: [{field: unit.qpv, op: eq, value: false}]",
         "base: [{field: unit.financing, op: eq, value: PLAII}]",
         "quotas.rules.3: quotas.mixity_outside_qpv.base[0]: 'unit.financing' is one of PLAI, "
         "PLUS, PLS, not 'PLAII'"),
        ("contains, value: habitat_indigne}]", "contains, value: Habitat_Indigne}]",
         "flux: flux.exclusions.habitat_indigne[0]: 'Habitat_Indigne': not a category code "
         "(lower-case letters, digits and '_', e.g. sans_logement)"),
        ("when: [{field: dalo, op: eq, value: true}]",
         "when: [{field: resident_commune_insee, op: in, value: ['14118', '1411']}]",
         "cotation.criteria.2: cotation.criteria.dalo.when[0]: '1411' is not an INSEE commune "
         "code (5 characters, e.g. 14118 or 2A004)"),
        ("[12870, 18752,", "[-12870, 18752,",
         "income_ceilings.products.PLAI.by_category.0: Input should be greater than or equal "
         "to 0 (got -12870)"),
        ("extra_person: 3690", "extra_person: 3690.0",
         "income_ceilings.products.PLAI.extra_person: Input should be a valid integer "
         "(got 3690.0)"),
    ],
)  # fmt: skip
def test_a_bad_policy_is_refused_naming_file_and_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    """Each mistake is one line: the file, the dotted key and the reason.

    A value of the wrong type selected nothing without a word before (a pool emptied by
    ``value: 'yes'``, a commune code YAML read as a number), a list grouped by its tuples.
    """
    path = variant(tmp_path, old, new)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(info.value) == f"{path}: {message}"


def test_a_whole_number_is_still_a_real_number(tmp_path: Path) -> None:
    """YAML writes ``1`` for 1.0: a whole number where a real one is expected still loads."""
    path = variant(tmp_path, "target: 0.50", "target: 1")
    path.write_text(
        path.read_text(encoding="utf-8")
        .replace("max_ratio: 0.33", "max_ratio: 1")
        .replace("first_person: 1.0", "first_person: 1"),
        encoding="utf-8",
    )
    policy = load_policy(path)
    assert policy.quotas.rules[4].target == 1.0
    assert policy.eligibility.rent_effort.max_ratio == 1.0
    assert policy.household.consumption_units.first_person == 1.0


def test_a_boolean_target_exits_2_from_the_command_line(tmp_path: Path) -> None:
    """``target: true`` loaded as a 100 % floor; now the command refuses the file."""
    policy = variant(tmp_path, "target: 0.50", "target: true")
    scenario = tmp_path / "tiny.yaml"
    tiny = (ROOT / "scenarios" / "tiny.yaml").read_text(encoding="utf-8")
    scenario.write_text(tiny.replace("policy: default-2026", f"policy: {policy}"), "utf-8")
    result = CliRunner().invoke(cli, ["solve", str(scenario), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert (
        f"error: {policy}: quotas.rules.4.target: Input should be a valid number (got true)"
        in result.output
    )
    assert "Traceback" not in result.output


def test_a_bad_tie_break_exits_2_from_the_command_line(tmp_path: Path) -> None:
    """It used to load, and fail at the first solve with a KeyError traceback."""
    policy = variant(tmp_path, TIES, 'tie_break: ["-score", nonsense]')
    scenario = tmp_path / "tiny.yaml"
    tiny = (ROOT / "scenarios" / "tiny.yaml").read_text(encoding="utf-8")
    scenario.write_text(tiny.replace("policy: default-2026", f"policy: {policy}"), "utf-8")
    result = CliRunner().invoke(cli, ["solve", str(scenario), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "objective.tie_break: unknown field 'nonsense'" in result.output
    assert "Traceback" not in result.output


def test_a_hard_policy_with_only_the_shortfall_stage_is_warned_about(tmp_path: Path) -> None:
    """Hard quotas have no shortfall: no stage applies, and an empty allocation is optimal."""
    policy = load_policy(variant(tmp_path, STAGES, "stages: [shortfall]"))
    assert policy.warnings() == (
        "objective.stages: hard quotas have no shortfall, so no stage applies: any allocation "
        "that keeps the rules is optimal, an empty one too",
    )


def _keys(model: type[BaseModel]) -> set[str]:
    """Every key a policy file may hold, at any depth."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys.add(name)
        for arg in (field.annotation, *typing.get_args(field.annotation)):
            for inner in (arg, *typing.get_args(arg)):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    keys |= _keys(inner)
    return keys


def test_docs_policy_names_every_key_op_and_derived_field() -> None:
    """docs/policy.md stays the reference: a key added to the model must be documented."""
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z_0-9]+)`", text))
    assert _keys(Policy) - documented == set()
    assert set(typing.get_args(Op)) - documented == set()
    assert set(DERIVED_DEMAND_FIELDS) - documented == set()


def test_the_rules_docs_policy_shows_load_and_are_new(tmp_path: Path) -> None:
    """The example quota rules of docs/policy.md are valid, added to the bundled model."""
    example = re.search(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert example is not None
    path = variant(tmp_path, "\nobjective:", example.group(1) + "\nobjective:")
    rules = [r.id for r in load_policy(path).quotas.rules]
    assert rules[-2:] == ["q1_ceiling_per_landlord", "dalo_in_the_flux"]
    assert len(rules) == len(load_policy("default-2026").quotas.rules) + 2


def test_a_policy_key_given_twice_is_refused(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys: the first one was silently dropped."""
    path = variant(tmp_path, "year: 2026\n", "year: 2026\nyear: 2027\n")
    with pytest.raises(PolicyError, match=r"my-policy\.yaml: year: given twice \(lines 6 and 7\)"):
        load_policy(path)


@pytest.mark.parametrize(
    ("written", "read"),
    [("0.3333333", "1/3"), ("0.3333333333333333", "1/3"), ("0.6666667", "2/3"),
     ("0.2525", "101/400"), ("0.0001", "1/10000")],
)  # fmt: skip
def test_a_share_target_is_read_as_the_fraction_it_writes(
    tmp_path: Path, written: str, read: str
) -> None:
    """A third written with 7 digits or more is a third; four decimals are exact."""
    policy = load_policy(variant(tmp_path, "target: 0.50", f"target: {written}"))
    rule = next(r for r in policy.quotas.rules if r.id == "mixity_inside_qpv")
    assert str(rule.target_fraction()) == read


def test_a_policy_variant_made_by_model_copy_is_validated_as_a_file_is() -> None:
    """model_copy(update=...) on a policy or any of its parts refuses what the file would.

    pydantic's model_copy does not validate: a quota rule copied with target 1.5, shares raised
    past 1, or an objective without stages were solved "OPTIMAL" without a word. Valid variants
    still work, and equal the policy they were made from when nothing changes.
    """
    from pydantic import ValidationError

    policy = load_policy("default-2026")
    rule = policy.quotas.rules[0]
    with pytest.raises(ValidationError, match=r"a share must lie in \[0, 1\]"):
        rule.model_copy(update={"target": 1.5})
    with pytest.raises(ValidationError, match="valid number"):
        rule.model_copy(update={"target": "0.3"})
    raised = policy.reservataires[0].model_copy(update={"share": 0.9})  # alone, a valid share
    with pytest.raises(ValidationError, match="shares sum to"):
        policy.model_copy(update={"reservataires": (raised, *policy.reservataires[1:])})
    with pytest.raises(ValidationError, match="at least one stage"):
        policy.objective.model_copy(update={"stages": ()})
    with pytest.raises(ValidationError, match="yeer"):
        policy.model_copy(update={"yeer": 2027})
    with pytest.raises(ValidationError, match="needs a number"):
        rule.base[0].model_copy(update={"op": "gt"})
    soft = policy.model_copy(update={"quotas": policy.quotas.model_copy(update={"mode": "soft"})})
    assert soft.quotas.mode == "soft" and soft.quotas.rules == policy.quotas.rules
    assert policy.model_copy(update={"year": policy.year}) == policy


def test_a_policy_cannot_be_changed_in_place_through_its_containers() -> None:
    """The dicts and lists a policy holds refuse changes, as its fields do; variants still work.

    ``products.pop(PLS)`` left a validated policy without PLS ceilings, and a condition's
    ``value.append(...)`` widened a rule, without any validator seeing it. A pickled or
    deep-copied policy (``compare --jobs`` sends policies to worker processes) stays equal and
    read-only.
    """
    import copy
    import pickle

    from pydantic import ValidationError

    from matching.policy.conditions import Condition
    from matching.types import Financing, FluxExclusion

    policy = load_policy("default-2026")
    how = "cannot be changed in place: make a variant with model_copy"
    products = policy.income_ceilings.products
    changes = [
        lambda: products.pop(Financing.PLS),
        lambda: products.__setitem__(Financing.PLS, products[Financing.PLAI]),
        lambda: products.update({}),
        lambda: policy.flux.exclusions.clear(),
        lambda: policy.flux.exclusions.__delitem__(FluxExclusion.VENTE),
    ]
    for change in changes:
        with pytest.raises(TypeError, match=how):
            change()
    assert set(products) == set(Financing) and len(policy.flux.exclusions) == 4
    cond = Condition(field="commune", op="in", value=["14118", "14327"])
    for change in [lambda: cond.value.append("14027"), lambda: cond.value.__setitem__(0, "x")]:
        with pytest.raises(TypeError, match=how):
            change()
    assert cond.value == ["14118", "14327"]
    for again in [pickle.loads(pickle.dumps(policy)), copy.deepcopy(policy)]:
        assert again == policy
        with pytest.raises(TypeError, match=how):
            again.income_ceilings.products.pop(Financing.PLS)
    assert pickle.loads(pickle.dumps(cond)) == cond
    wider = cond.model_copy(update={"value": [*cond.value, "14027"]})
    assert wider.value == ["14118", "14327", "14027"]
    fewer = {k: v for k, v in products.items() if k != Financing.PLS}
    with pytest.raises(ValidationError, match="missing products"):
        policy.income_ceilings.model_copy(update={"products": fewer})


def test_a_policy_saved_in_latin1_is_refused_naming_the_file(tmp_path: Path) -> None:
    """An editor's Windows-1252 save (accents in labels) was a traceback and exit code 1."""
    path = tmp_path / "my-policy.yaml"
    path.write_bytes((ROOT / "models" / "default-2026.yaml").read_text("utf-8").encode("latin-1"))
    with pytest.raises(PolicyError, match=r"my-policy\.yaml: not UTF-8 text"):
        load_policy(path)
    scenario = tmp_path / "tiny.yaml"
    tiny = (ROOT / "scenarios" / "tiny.yaml").read_text(encoding="utf-8")
    scenario.write_text(tiny.replace("policy: default-2026", f"policy: {path}"), "utf-8")
    result = CliRunner().invoke(cli, ["solve", str(scenario), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"error: {path}: not UTF-8 text" in result.output


def test_a_grid_of_one_bad_criterion_is_one_error_not_two(tmp_path: Path) -> None:
    """A one-criterion grid with a fractional `points` is refused for that, and only that.

    Pydantic also said the list had "at least 1 item after validation, not 0", a second line
    about a grid that had its one item.
    """
    start = DEFAULT.index("  criteria:\n")
    grid = "  criteria:\n    - {id: dalo, label: DALO, points: 1.5}\n"
    path = tmp_path / "my-policy.yaml"
    path.write_text(DEFAULT[:start] + grid, encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(info.value) == (
        f"{path}: cotation.criteria.0.points: Input should be a valid integer (got 1.5)"
    )
