"""Provider-side faults and failures of our own code: the caller sees exactly what it would see
without genai-observe, and the span records what happened."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from genai_observe import _recorder
from genai_observe.instrumentation.openai import OpenAIInstrumentor
from genai_observe.instrumentation.openai import _adapter as ad
from tests.conftest import Telemetry
from tests.rig.openai_server import OpenAIMockServer

MESSAGES = [{"role": "user", "content": "hello"}]

# name -> (reply fields, streamed?)
FAULTS: dict[str, tuple[dict[str, Any], bool]] = {
    "http-400": ({"status": 400}, False),
    "http-401": ({"status": 401}, False),
    "http-404": ({"status": 404}, False),
    "http-429": ({"status": 429, "retry_after": 1}, False),
    "http-500": ({"status": 500}, False),
    "timeout": ({"delay": 1.0}, False),
    "malformed-json": ({"malformed": True}, False),
    "malformed-sse": ({"malformed": True}, True),
    "truncated-body": ({"break_after": 1}, False),
    "truncated-sse": ({"break_after": 2}, True),
    "no-usage": ({"include_usage": False}, False),
    "no-choices": (
        {"body": {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": []}},
        False,
    ),
    "null-content": (
        {
            "body": {
                "id": "x",
                "object": "chat.completion",
                "created": 1,
                "model": "m",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "stop"}
                ],
            }
        },
        False,
    ),
    "unexpected-fields": ({"extra": {"surprise": {"nested": [1, 2]}, "usage": "not-an-object"}}, False),
}


def _outcome(server: OpenAIMockServer, fields: dict[str, Any], stream: bool) -> tuple[str, Any]:
    """What the caller sees: ('ok', comparable result) or ('raise', (type, message-ish))."""
    server.script(**fields)
    client = server.client(timeout=0.3)
    try:
        if stream:
            result: Any = [
                c.model_dump(exclude={"created"})
                for c in client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            ]
        else:
            result = client.chat.completions.create(model="m", messages=MESSAGES).model_dump(
                exclude={"created"}
            )
    except Exception as exc:
        return "raise", (type(exc), getattr(exc, "status_code", None))
    return "ok", result


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_provider_fault_is_transparent_and_recorded(
    fault: str, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    fields, stream = FAULTS[fault]
    plain = _outcome(openai_server, fields, stream)
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs())
    try:
        instrumented = _outcome(openai_server, fields, stream)
    finally:
        instrumentor.uninstrument()
    if plain[0] == "ok" and isinstance(plain[1], dict):  # ids are generated per response
        plain[1].pop("id", None)
        instrumented[1].pop("id", None)
    assert instrumented == plain
    spans = telemetry.spans()
    assert len(spans) == 1
    attributes = dict(spans[0].attributes or {})
    if plain[0] == "raise":
        assert spans[0].status.status_code is StatusCode.ERROR
        assert attributes["error.type"] == plain[1][0].__name__
    else:
        assert spans[0].status.status_code is not StatusCode.ERROR


HOOKS: list[tuple[str, str]] = [
    ("chat_request", "function"),
    ("chat_response", "function"),
    ("client_info", "function"),
    ("ChatStream.on_chunk", "method"),
    ("ChatStream.fill", "method"),
]


@pytest.fixture
def broken_hook(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name, _ = request.param

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"injected failure in {name}")

    if "." in name:
        cls, attr = name.split(".")
        monkeypatch.setattr(getattr(ad, cls), attr, boom)
    else:
        monkeypatch.setattr(ad, name, boom)
    monkeypatch.setattr(_recorder, "_reported", set())
    yield name


@pytest.mark.parametrize("broken_hook", HOOKS, indirect=True, ids=[h[0] for h in HOOKS])
def test_failure_in_our_code_never_reaches_the_caller(
    broken_hook: str, openai_server: OpenAIMockServer, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="genai_observe")
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs())
    try:
        client = openai_server.client()
        for _ in range(3):
            reply = client.chat.completions.create(model="m", messages=MESSAGES)
            assert reply.choices[0].message.content  # the normal result
            text = "".join(
                c.choices[0].delta.content or ""
                for c in client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
                if c.choices
            )
            assert text
    finally:
        instrumentor.uninstrument()
    failures = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert failures and all(r.levelno == logging.DEBUG for r in failures)
    places = [r.getMessage() for r in failures]
    assert len(places) == len(set(places))  # each place reported once, not once per call
    for span in telemetry.spans():
        assert span.end_time is not None  # whatever was started also ended


def test_threads_keep_their_own_parents(openai_server: OpenAIMockServer, telemetry: Telemetry) -> None:
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs())
    tracer = telemetry.tracer_provider.get_tracer("app")
    parents: dict[int, int] = {}
    errors: list[BaseException] = []

    def request(n: int) -> None:
        try:
            client = openai_server.client()
            with tracer.start_as_current_span(f"request-{n}") as span:
                parents[n] = span.get_span_context().span_id
                for _ in range(5):
                    client.chat.completions.create(model=f"t{n}", messages=MESSAGES)
                    for _ in client.chat.completions.create(model=f"t{n}", messages=MESSAGES, stream=True):
                        pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        instrumentor.uninstrument()
    assert errors == []
    _check_parents(telemetry, parents, expected_per_parent=10)


def test_asyncio_tasks_keep_their_own_parents(openai_server: OpenAIMockServer, telemetry: Telemetry) -> None:
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs())
    tracer = telemetry.tracer_provider.get_tracer("app")
    parents: dict[int, int] = {}

    async def request(client: openai.AsyncOpenAI, n: int) -> None:
        with tracer.start_as_current_span(f"request-{n}") as span:
            parents[n] = span.get_span_context().span_id
            for _ in range(3):
                await client.chat.completions.create(model=f"t{n}", messages=MESSAGES)
                async for _ in await client.chat.completions.create(
                    model=f"t{n}", messages=MESSAGES, stream=True
                ):
                    await asyncio.sleep(0)  # interleave with the other tasks mid-stream

    async def main() -> None:
        client = openai_server.async_client()
        await asyncio.gather(*(request(client, n) for n in range(20)))

    try:
        asyncio.run(main())
    finally:
        instrumentor.uninstrument()
    _check_parents(telemetry, parents, expected_per_parent=6)


def _check_parents(telemetry: Telemetry, parents: dict[int, int], expected_per_parent: int) -> None:
    by_parent: dict[int, list[Any]] = {}
    for span in telemetry.spans():
        if span.name.startswith("chat "):
            assert span.parent is not None
            by_parent.setdefault(span.parent.span_id, []).append(span)
    assert set(by_parent) == set(parents.values())
    for n, parent_id in parents.items():
        spans = by_parent[parent_id]
        assert len(spans) == expected_per_parent
        assert {s.attributes["gen_ai.request.model"] for s in spans} == {f"t{n}"}  # no span crossed over
    assert trace.get_current_span().get_span_context().is_valid is False
