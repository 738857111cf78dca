"""Reading provider objects without importing their SDKs: one fast ``get`` for every adapter.

An adapter reads a few dozen fields per call (more per streamed chunk) from kwargs dicts, pydantic
models or TypedDict-like mappings, so this is on the hot path: plain dicts skip the ``Mapping``
ABC check, which is otherwise answered once per type.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

# The openai / anthropic "argument not given" sentinels (NOT_GIVEN, omit), known by type name so
# that no SDK is imported.
_SENTINELS: Final = frozenset({"NotGiven", "Omit"})
_IS_MAPPING: dict[type, bool] = {}
_MAX_TYPES: Final = 256  # a handful of SDK types in practice; never unbounded


def given(value: Any) -> bool:
    """False for None and for the SDK's NOT_GIVEN / omit sentinels."""
    return value is not None and type(value).__name__ not in _SENTINELS


def get(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` otherwise; absent, None and sentinels read as ``default``."""
    kind = type(obj)
    if kind is dict:
        value = obj.get(key)
    elif obj is None:
        return default
    else:
        mapping = _IS_MAPPING.get(kind)
        if mapping is None:
            mapping = issubclass(kind, Mapping)
            if len(_IS_MAPPING) < _MAX_TYPES:
                _IS_MAPPING[kind] = mapping
        value = obj.get(key) if mapping else getattr(obj, key, None)
    if value is None or type(value).__name__ in _SENTINELS:
        return default
    return value


def items(value: Any) -> list[Any] | tuple[Any, ...]:
    """``value`` if it is a list or tuple, else ``()``: the only sequences of a caller's we iterate.

    The SDKs accept any iterable (a generator of messages, ``iter(tools)``) and turn it into a
    list when they serialise the request, after we read it: iterating a one-shot iterable here would
    leave the SDK nothing to send. What cannot be read twice is not recorded.
    """
    return value if isinstance(value, (list, tuple)) else ()


def safe_content(value: Any) -> Any:
    """A content value safe to keep for later: ``None`` for a one-shot iterator (a generator of
    parts), which the content policy could not read without taking it from the SDK."""
    return None if isinstance(value, Iterator) else value


_NO_EXTRA: Any = object()


def _declares(cls: Any, key: str) -> bool:
    fields = getattr(cls, "__pydantic_fields__", None)
    return bool(fields) and key in fields  # type: ignore[operator]


declares: Callable[[Any, str], bool] = functools.lru_cache(maxsize=256)(_declares)
"""Whether pydantic model class ``cls`` declares field ``key`` (then it is an attribute, not an
extra); cached, so per-chunk readers can take the extras dict directly."""


def extra(obj: Any, key: str) -> Any:
    """A field the SDK's models do not declare (Azure's filter results), read cheaply.

    ``getattr`` on a pydantic model for an undeclared name goes through its slow ``__getattr__``
    (an exception per miss), so the model's extras dict is read directly when it has one.
    """
    if type(obj) is dict:
        return obj.get(key)
    extras = getattr(obj, "__pydantic_extra__", _NO_EXTRA)
    if extras is _NO_EXTRA:
        return get(obj, key)
    if extras and key in extras:
        return extras[key]
    # A later SDK release may declare the field: then it is an ordinary attribute.
    fields = getattr(type(obj), "__pydantic_fields__", None)
    return get(obj, key) if fields and key in fields else None
