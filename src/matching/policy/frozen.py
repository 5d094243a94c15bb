"""Read-only dict and list for the few containers a `Policy` holds.

Why: pydantic's ``frozen=True`` refuses ``policy.quotas = ...`` but not a change inside a
container the policy holds. ``policy.income_ceilings.products.pop(Financing.PLS)`` or
``rule.base[0].value.append('vente')`` changed a validated policy in place: the next solve read
a policy that no validator had seen (a product without ceilings, a flux exclusion missing),
and every earlier result made with that object no longer said what it was solved under. A
variant is made with ``model_copy(update=...)``, which validates it.

Both types are subclasses of the built-in ones, so that reading code, pydantic's serializers,
``json`` and ``isinstance`` checks see a dict and a list; they pickle (``compare --jobs``
sends the policy to worker processes) and deep-copy as plain containers rebuilt read-only.
"""

from __future__ import annotations

from typing import Any, NoReturn

_HOW = "a Policy cannot be changed in place: make a variant with model_copy(update=...)"


def _refuse(self: object, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(_HOW)


class FrozenDict(dict):
    """A dict whose every mutating method raises `TypeError`."""

    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[Any, Any]]]:
        # a dict subclass is unpickled item by item through __setitem__, which refuses
        return (type(self), (dict(self),))

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        from copy import deepcopy

        return type(self)({deepcopy(k, memo): deepcopy(v, memo) for k, v in self.items()})


class FrozenList(list):
    """A list whose every mutating method raises `TypeError`."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __reduce__(self) -> tuple[type[FrozenList], tuple[list[Any]]]:
        # a list subclass is unpickled through extend/append, which refuse
        return (type(self), (list(self),))

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenList:
        from copy import deepcopy

        return type(self)(deepcopy(v, memo) for v in self)


def read_only(value: Any) -> Any:
    """A pydantic after-validator: a dict or list made read-only, anything else as it is."""
    if isinstance(value, dict) and not isinstance(value, FrozenDict):
        return FrozenDict(value)
    if isinstance(value, list) and not isinstance(value, FrozenList):
        return FrozenList(value)
    return value
