"""The shared field reader every adapter uses on its hot path."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import openai
import pydantic
from openai.types.chat import ChatCompletion

from genai_observe.instrumentation._kit import read as _read
from genai_observe.instrumentation._kit.read import extra, get, given, items, safe_content


class _Frozen(Mapping[str, Any]):
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_get_reads_dicts_mappings_and_objects_and_defaults_the_rest() -> None:
    assert get({"a": 1}, "a") == 1 and get({"a": None}, "a", 5) == 5 and get({}, "a", 5) == 5
    assert get(_Frozen({"a": 0}), "a", 5) == 0  # falsy but present: kept
    assert get(_Frozen({}), "a", 5) == 5
    message = ChatCompletion.model_validate(
        {"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": []}
    )
    assert get(message, "model") == "m" and get(message, "nope", "d") == "d"
    assert get(None, "a", 3) == 3


def test_sentinels_read_as_absent() -> None:
    not_given: Any = openai.NOT_GIVEN
    assert get({"temperature": not_given}, "temperature", 0.5) == 0.5
    assert not given(not_given) and not given(None) and given(0) and given("")
    omit = getattr(openai, "omit", None)
    if omit is not None:  # openai >= 1.99
        assert get({"n": omit}, "n") is None


def test_extra_reads_undeclared_fields_of_models_and_dicts() -> None:
    class Model(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="allow")
        id: str

    model = Model.model_validate({"id": "x", "content_filter_results": {"hate": {"filtered": False}}})
    assert extra(model, "content_filter_results") == {"hate": {"filtered": False}}
    assert extra(Model(id="y"), "content_filter_results") is None
    assert extra({"prompt_filter_results": [1]}, "prompt_filter_results") == [1]
    assert extra(object(), "x") is None

    class Declared(pydantic.BaseModel):  # an SDK release that declares the field
        model_config = pydantic.ConfigDict(extra="allow")
        content_filter_results: dict[str, Any] | None = None

    assert extra(Declared(content_filter_results={"a": 1}), "content_filter_results") == {"a": 1}
    assert extra(Declared(), "content_filter_results") is None


def test_the_mapping_type_cache_is_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(_read, "_IS_MAPPING", {})
    for n in range(_read._MAX_TYPES + 50):
        kind = type(f"T{n}", (), {"a": n})
        assert get(kind(), "a") == n
    assert len(_read._IS_MAPPING) == _read._MAX_TYPES


def test_only_lists_and_tuples_are_iterated_and_one_shot_content_is_dropped() -> None:
    once = (m for m in [{"role": "user"}])
    assert items([1]) == [1] and items((1,)) == (1,)
    assert items(once) == () and items(iter([1])) == () and items({"a": 1}) == () and items(None) == ()
    assert next(once) == {"role": "user"}  # not consumed
    parts = iter([{"type": "text", "text": "x"}])
    assert safe_content(parts) is None and next(parts)  # dropped, not read
    assert safe_content("x") == "x" and safe_content([1]) == [1] and safe_content({"a": 1}) == {"a": 1}
