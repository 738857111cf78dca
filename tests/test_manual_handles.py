"""``llm_call()`` after one ``init()`` handle was shut down and another made: the new handle's
providers record, even when the new handle sits at the old one's address (CPython reuses the
address of a freed object, so ``id()`` of two handles can be equal; seen as a lost span when one
test's handle was freed and the next test's took its place)."""

from __future__ import annotations

import builtins

import pytest

import genai_observe
from genai_observe import _manual
from tests.rig.otlp_receiver import OTLPReceiver


def test_a_new_handle_at_a_reused_address_gets_the_calls(
    otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every handle "at the same address": what address reuse does to a key made of id(handle).
    monkeypatch.setattr(
        _manual,
        "id",
        lambda obj: 1 if isinstance(obj, genai_observe.Handle) else builtins.id(obj),
        raising=False,
    )
    for model in ("first", "second", "third"):
        handle = genai_observe.init(
            endpoint=otlp_receiver.url, service_name="handles", metrics=False, logs=False, instrumentations=[]
        )
        with genai_observe.llm_call(provider="openai", model=model) as call:
            call.set_response(content="x")
        handle.shutdown()
    assert sorted(s.attributes["gen_ai.request.model"] for s in otlp_receiver.spans()) == [
        "first",
        "second",
        "third",
    ]
