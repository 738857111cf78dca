"""Someone else's ``uninstrument()`` of an instrumentation init() set up (issue 13, item 13).

Instrumentors are process-wide singletons (OpenTelemetry's BaseInstrumentor), so any code may call
``OpenAIInstrumentor().uninstrument()``. That is honoured: the SDK is unpatched and its calls are
no longer recorded. The handle notices: ``Handle.instrumented`` stops listing it, and
``Handle.shutdown()`` neither removes an instrumentation set up again by someone else since nor
warns about one already removed.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

import genai_observe
from genai_observe.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import Telemetry

from ._providers import llm_spans, openai_client

HI = [{"role": "user", "content": "hi"}]


def test_uninstrument_by_someone_else_is_honoured_and_noticed(
    openai_server: Any, otlp_receiver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    handle = genai_observe.init(endpoint=otlp_receiver.url)
    client = openai_client(openai_server)
    client.chat.completions.create(model="before", messages=HI)
    assert "openai" in handle.instrumented
    OpenAIInstrumentor().uninstrument()  # a library, a test fixture, the app's own teardown
    assert "openai" not in handle.instrumented
    client.chat.completions.create(model="after", messages=HI)
    handle.shutdown()
    assert [s.name for s in otlp_receiver.spans()] == ["chat before"]
    assert [r.getMessage() for r in caplog.records] == []  # no "already uninstrumented" warning


def test_shutdown_leaves_an_instrumentation_set_up_again_by_someone_else(
    openai_server: Any, otlp_receiver: Any, telemetry: Telemetry
) -> None:
    handle = genai_observe.init(endpoint=otlp_receiver.url)
    instrumentor = OpenAIInstrumentor()
    instrumentor.uninstrument()
    instrumentor.instrument(**telemetry.instrument_kwargs())  # now someone else's, on their providers
    try:
        assert "openai" not in handle.instrumented
        handle.shutdown()
        assert instrumentor.is_instrumented_by_opentelemetry  # theirs, left alone
        openai_client(openai_server).chat.completions.create(model="theirs", messages=HI)
        assert [s.name for s in llm_spans(telemetry)] == ["chat theirs"]
    finally:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
