"""Read policy files (YAML) from ``models/`` and validate them into a `Policy`.

Errors name the file and the dotted key that is wrong, e.g.
``models/x.yaml: quotas.rules.2.target: a share must lie in [0, 1]``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from matching.exceptions import PolicyError
from matching.policy.model import Policy

_logger = logging.getLogger(__name__)

BUNDLED_MODELS = Path(__file__).resolve().parent.parent / "models"
"""Policy files shipped inside the package (a copy of the repository's ``models/``)."""


class DuplicateKey(yaml.YAMLError):
    """A mapping of the file gives the same key twice."""

    def __init__(self, key: object, first: tuple[int, int], second: tuple[int, int]) -> None:
        (self.first_line, first_column), (self.line, column) = first, second
        self.key = key
        # both in one flow mapping ({2: 0.1, 2: 0.2}): "lines 8 and 8" named no place
        where = (
            f"line {self.line}, columns {first_column} and {column}"
            if self.line == self.first_line
            else f"lines {self.first_line} and {self.line}"
        )
        super().__init__(f"{key}: given twice ({where})")


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping.

    Why: PyYAML keeps the last of two equal keys, so ``renewal_rate: 0.5`` followed later by
    ``renewal_rate: 0.9`` silently ran with 0.9. A key after a ``<<`` merge still overrides the
    merged one, as YAML means it to.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """The mapping of ``node``, refusing a key given twice (`DuplicateKey`)."""
        seen: dict[Any, tuple[int, int]] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            mark = key_node.start_mark
            place = (mark.line + 1, mark.column + 1)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader refuses it itself
                continue
            if first is not None:
                raise DuplicateKey(key, first, place)
            seen[key] = place
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 (PyYAML) reads a number in exponent form as a float only with a dot and a signed
# exponent (``1.0e+3``): ``1e3``, ``2.5e-1`` and ``1E6`` were text, which the strict settings
# refused as "not a number". YAML 1.2 reads them as floats, as a planner writing them means.
UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with an error naming the file when it cannot be read or parsed.

    A key given twice in a mapping is refused (`UniqueKeyLoader`), naming it and its lines.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read ({exc.strerror})") from exc
    except UnicodeDecodeError:
        # an editor's Latin-1 / Windows-1252 save of a file with accents (a label, a source)
        # was a traceback and exit code 1
        raise PolicyError(f"{path}: not UTF-8 text: save it as UTF-8") from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader
    except DuplicateKey as exc:
        raise PolicyError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: expected a mapping at the top level")
    return data


def format_validation_error(source: str, exc: ValidationError) -> str:
    """Render a pydantic error as one line per problem, each naming the dotted key.

    A check of the whole policy (shares, the landlord, rules naming réservataires) names its
    key in its message already, so nothing is put before it. A wrong value is repeated as the
    file gave it (``(got true)``, ``(got "0.5")``): "Input should be a valid number" alone
    left the reader to find which of its forms was refused. Policy and scenario files hold no
    household data.
    """
    lines = []
    errors = exc.errors()
    for err in errors:
        if err["type"] == "too_short" and _has_item_errors(err["loc"], errors):
            # a list whose every item was refused is not also "too short": a grid of one bad
            # criterion said "at least 1 item after validation, not 0" under the real error
            continue
        key = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ") + _given(err.get("input"))
        lines.append(f"{source}: {key}: {msg}" if key else f"{source}: {msg}")
    return "\n".join(lines)


def _has_item_errors(loc: tuple[int | str, ...], errors: list[Any]) -> bool:
    """Whether another error lies inside the list at ``loc`` (one of its items was refused)."""
    return any(len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == loc for e in errors)


def _given(value: object) -> str:
    """`` (got <value>)`` for a scalar as YAML or JSON writes it, if short; else nothing."""
    if value is None or not isinstance(value, str | int | float | bool):
        return ""  # a mapping or list (a missing key, a whole section): the key says enough
    text = json.dumps(value, ensure_ascii=False)
    return f" (got {text})" if len(text) <= 40 else ""


def policy_from_dict(data: dict[str, Any], source: str = "<policy>") -> Policy:
    """Validate a mapping into a Policy, raising PolicyError naming each bad key."""
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(format_validation_error(source, exc)) from None


def resolve_policy_path(name: str | Path) -> Path:
    """Find a policy file: a path as given, else a bundled model by name (``default-2026``)."""
    path = Path(name)
    if path.exists():
        return path
    bundled = BUNDLED_MODELS / f"{Path(name).stem}.yaml"
    if bundled.exists():
        return bundled
    raise PolicyError(f"{name}: no such policy file, and no bundled model of that name")


def policy_of(policy: Policy | str | Path) -> Policy:
    """The policy a library caller passes: a `Policy`, a bundled model's name or a path.

    Why one function: the round functions, the checker, the indicators, the explanations and
    the folder writer all take these forms; each spelt the test out (and one gave a bare
    AttributeError on 'str'). Anything else is a TypeError naming the argument.
    """
    if isinstance(policy, str | Path):
        return load_policy(policy)
    if not isinstance(policy, Policy):
        raise TypeError(f"policy: a Policy, a bundled name or a path, not {type(policy).__name__}")
    return policy


def load_policy(name: str | Path) -> Policy:
    """Load and validate a policy file (a path, or the name of a bundled model)."""
    path = resolve_policy_path(name)
    policy = policy_from_dict(read_yaml(path), str(path))
    for warning in policy.warnings():  # valid, but rarely meant (`Policy.warnings`)
        _logger.warning("%s: %s", path, warning)
    return policy
