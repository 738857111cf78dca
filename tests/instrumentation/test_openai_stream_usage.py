"""Token usage of OpenAI streams by default (docs/openai.md, "Token usage in streams").

Where the server is known to accept ``stream_options``, a stream the app set none for asks for the
usage chunk, and that chunk is read by us and never handed to the app: what the app iterates is
exactly what it gets without the library. The real ``openai`` SDK talks real HTTP to the local
server in tests/rig, which (like the real API) sends the usage chunk, and ``usage: null`` on every
other chunk, only when asked. Clients whose base URL names a public host (api.openai.com) reach
that server through an HTTP transport that only rewrites where the request goes.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from opentelemetry import context

from genai_observe._core import semconv as sc
from genai_observe.instrumentation.openai import ENV_STREAM_USAGE, OpenAIInstrumentor
from genai_observe.instrumentation.openai import _adapter as ad
from tests.conftest import Telemetry
from tests.rig.openai_server import DEFAULT_USAGE, OpenAIMockServer

MESSAGES = [{"role": "user", "content": "Say hi"}]
OPENAI_BASE = "https://api.openai.com/v1"
# The HTTP library this openai is built on (openai 3.x: httpx2; earlier: httpx).
_http: Any = importlib.import_module(
    "httpx2" if hasattr(importlib.import_module("openai._base_client"), "httpx2") else "httpx"
)


def _to(server: OpenAIMockServer, request: Any) -> None:
    target = _http.URL(server.base_url)
    request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)


class _ToRig(_http.BaseTransport):  # type: ignore[misc]
    """Sends every request to the rig's server, whatever host the client's base URL names."""

    def __init__(self, server: OpenAIMockServer) -> None:
        self._server = server
        self._inner = _http.HTTPTransport()

    def handle_request(self, request: Any) -> Any:
        _to(self._server, request)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class _AsyncToRig(_http.AsyncBaseTransport):  # type: ignore[misc]
    def __init__(self, server: OpenAIMockServer) -> None:
        self._server = server
        self._inner = _http.AsyncHTTPTransport()

    async def handle_async_request(self, request: Any) -> Any:
        _to(self._server, request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def openai_com(server: OpenAIMockServer) -> openai.OpenAI:
    """A client of api.openai.com whose requests reach the rig's server."""
    return openai.OpenAI(
        base_url=OPENAI_BASE, api_key="k", max_retries=0, http_client=_http.Client(transport=_ToRig(server))
    )


def async_openai_com(server: OpenAIMockServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=OPENAI_BASE,
        api_key="k",
        max_retries=0,
        http_client=_http.AsyncClient(transport=_AsyncToRig(server)),
    )


def seen(chunks: Any) -> list[tuple[dict[str, Any], frozenset[str]]]:
    """What the app got from each chunk: its fields as the SDK serialises them (``to_dict``: only
    the fields the server sent) and which fields are set; ids and timestamps aside."""
    out = []
    for chunk in chunks:
        data = chunk.to_dict()
        data.pop("id", None)
        data.pop("created", None)
        out.append((data, frozenset(chunk.model_fields_set)))
    return out


@pytest.fixture
def instrumentor(telemetry: Telemetry) -> Iterator[Callable[..., OpenAIInstrumentor]]:
    """``apply(**options)`` instruments (again) with these options; undone after the test."""
    with telemetry.instrumenting(OpenAIInstrumentor()) as apply:
        yield apply


@pytest.fixture
def uninstrumented(telemetry: Telemetry) -> Callable[[Callable[[], Any]], Any]:
    """Runs ``fn`` with the library off, so its result is what the app gets without us."""
    probe = OpenAIInstrumentor()

    def run(fn: Callable[[], Any]) -> Any:
        was_on = probe.is_instrumented_by_opentelemetry
        if was_on:
            probe.uninstrument()
        try:
            return fn()
        finally:
            if was_on:
                probe.instrument(**telemetry.instrument_kwargs())

    return run


def _usage_on_span(telemetry: Telemetry) -> dict[str, Any]:
    spans = telemetry.spans()
    a = dict(spans[-1].attributes or {})
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == DEFAULT_USAGE["prompt_tokens"]
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == DEFAULT_USAGE["completion_tokens"]
    assert a[sc.STREAM_END_REASON] == "exhausted"
    return a


def _token_points(telemetry: Telemetry) -> dict[str, int]:
    return {
        p.attributes[sc.GEN_AI_TOKEN_TYPE]: int(p.sum)
        for p in telemetry.metrics().get(sc.METRIC_TOKEN_USAGE, [])
    }


def test_chat_stream_app_sees_what_it_would_without_us_and_span_has_usage(
    openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    client = openai_com(openai_server)

    def run() -> list[Any]:
        return seen(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, n=2))

    plain = run()
    assert "stream_options" not in openai_server.last_request.json
    with telemetry.instrumenting(OpenAIInstrumentor()):
        instrumented = run()
    assert openai_server.last_request.json["stream_options"] == {"include_usage": True}
    assert instrumented == plain  # no usage chunk, no "usage": null in any chunk
    assert all(c["choices"] for c, _ in instrumented)
    _usage_on_span(telemetry)
    assert _token_points(telemetry) == {
        "input": DEFAULT_USAGE["prompt_tokens"],
        "output": DEFAULT_USAGE["completion_tokens"],
        "cache_read": DEFAULT_USAGE["cached_tokens"],
    }


def test_chunk_gaps_count_only_chunks_the_app_received(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrumentor: Any
) -> None:
    chunks = list(
        openai_com(openai_server).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    )
    points = telemetry.metrics()
    assert points[sc.METRIC_TIME_PER_OUTPUT_CHUNK][0].count == len(chunks) - 1
    assert points[sc.METRIC_TIME_TO_FIRST_CHUNK][0].count == 1


def test_async_chat_and_legacy_completion_streams(
    openai_server: OpenAIMockServer, telemetry: Telemetry, uninstrumented: Any, instrumentor: Any
) -> None:
    async def chat() -> list[Any]:
        client = async_openai_com(openai_server)
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        return seen([c async for c in stream])

    async def legacy() -> list[Any]:
        client = async_openai_com(openai_server)
        stream = await client.completions.create(model="m", prompt="p", stream=True)
        return seen([c async for c in stream])

    def sync_legacy() -> list[Any]:
        return seen(openai_com(openai_server).completions.create(model="m", prompt="p", stream=True))

    for run in (lambda: asyncio.run(chat()), lambda: asyncio.run(legacy()), sync_legacy):
        plain = uninstrumented(run)
        telemetry.span_exporter.clear()
        assert run() == plain
        assert openai_server.last_request.json["stream_options"] == {"include_usage": True}
        _usage_on_span(telemetry)


def test_app_stream_options_always_win(
    openai_server: OpenAIMockServer, telemetry: Telemetry, uninstrumented: Any, instrumentor: Any
) -> None:
    """The app's own ``stream_options`` (even ``None`` or ``include_usage: False``) are sent as they
    are, and every chunk, the usage chunk included, reaches the app."""
    client = openai_com(openai_server)
    for options in ({"include_usage": True}, {"include_usage": False}, None):

        def run(options: Any = options) -> list[Any]:
            return seen(
                client.chat.completions.create(
                    model="m", messages=MESSAGES, stream=True, stream_options=options
                )
            )

        plain = uninstrumented(run)
        sent = openai_server.last_request.json.get("stream_options", "absent")
        assert run() == plain
        assert openai_server.last_request.json.get("stream_options", "absent") == sent
    usage_chunk, _ = seen(
        client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )[-1]
    assert (
        usage_chunk["choices"] == []
        and usage_chunk["usage"]["prompt_tokens"] == DEFAULT_USAGE["prompt_tokens"]
    )


def test_raw_and_streaming_responses_get_the_bytes_unchanged(
    openai_server: OpenAIMockServer, telemetry: Telemetry, uninstrumented: Any, instrumentor: Any
) -> None:
    client = openai_com(openai_server)

    def raw() -> str:
        response = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, stream=True)
        return response.http_response.read().decode()

    def streamed() -> str:
        with client.chat.completions.with_streaming_response.create(
            model="m", messages=MESSAGES, stream=True
        ) as response:
            return "".join(response.iter_text())

    for run in (raw, streamed):
        plain = uninstrumented(run)
        body = run()
        assert "stream_options" not in openai_server.last_request.json
        assert _ids_aside(body) == _ids_aside(plain)
        assert '"usage"' not in body


def _ids_aside(body: str) -> str:
    return re.sub(r"chatcmpl-mock\d+", "ID", body)


def _ended(telemetry: Telemetry) -> dict[str, Any]:
    gc.collect()
    (span,) = telemetry.spans()
    telemetry.span_exporter.clear()
    return dict(span.attributes or {})


def test_close_context_managers_and_early_abandonment(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrumentor: Any
) -> None:
    client = openai_com(openai_server)
    # read to the end inside a with block: the usage chunk is read before the block is left
    with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        got = list(stream)
    assert got and all(c.choices for c in got)
    assert _ended(telemetry)[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == DEFAULT_USAGE["completion_tokens"]
    # left early: closed (or abandoned) without usage, like any stream stopped before its end
    with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        next(iter(stream))
    a = _ended(telemetry)
    assert a[sc.STREAM_END_REASON] == "closed" and sc.GEN_AI_USAGE_OUTPUT_TOKENS not in a
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    next(stream)
    stream.close()
    assert _ended(telemetry)[sc.STREAM_END_REASON] == "closed"
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    next(stream)
    del stream
    assert _ended(telemetry)[sc.STREAM_END_REASON] == "abandoned"

    async def run_async() -> None:
        aclient = async_openai_com(openai_server)
        async with await aclient.chat.completions.create(model="m", messages=MESSAGES, stream=True) as s:
            chunks = [c async for c in s]
        assert chunks and all(c.choices for c in chunks)
        s = await aclient.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        await s.__anext__()
        await s.close()

    asyncio.run(run_async())
    first, second = (dict(s.attributes or {}) for s in telemetry.spans())
    assert first[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == DEFAULT_USAGE["completion_tokens"]
    assert second[sc.STREAM_END_REASON] == "closed"


def test_stream_helper_events_unchanged(
    openai_server: OpenAIMockServer, telemetry: Telemetry, uninstrumented: Any, instrumentor: Any
) -> None:
    client = openai_com(openai_server)
    if not hasattr(client.chat.completions, "stream"):
        pytest.skip("this openai has no chat.completions.stream()")

    def run() -> tuple[list[str], Any]:
        with client.chat.completions.stream(model="m", messages=MESSAGES) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_completion()
        return kinds, final.usage

    plain = uninstrumented(run)
    assert run() == plain and plain[1] is None
    _usage_on_span(telemetry)


# --- which servers are asked ---------------------------------------------------------------------


def _info(base_url: str, client_name: str = "OpenAI", api_version: str | None = None) -> ad.ClientInfo:
    client = type(client_name, (), {"base_url": base_url, "_api_version": api_version})()
    return ad.client_info(client, ad.nim_hosts())


@pytest.mark.parametrize(
    ("base_url", "client_name", "api_version", "accepts"),
    [
        ("https://api.openai.com/v1/", "OpenAI", None, True),
        ("https://integrate.api.nvidia.com/v1", "OpenAI", None, True),
        ("http://localhost:11434/v1", "OpenAI", None, True),  # Ollama
        ("http://nim.internal:8000/v1", "OpenAI", None, True),  # named in GENAI_OBSERVE_NIM_HOSTS
        ("http://localhost:8000/v1", "OpenAI", None, False),  # vLLM or anything else: unknown
        ("https://api.groq.com/openai/v1", "OpenAI", None, False),
        ("https://r.openai.azure.com/openai/", "AzureOpenAI", "2024-06-01", False),
        ("https://r.openai.azure.com/openai/", "AzureOpenAI", "2024-07-01-preview", False),
        ("https://r.openai.azure.com/openai/", "AzureOpenAI", "2024-08-01-preview", True),
        ("https://r.openai.azure.com/openai/", "AzureOpenAI", "2025-04-01-preview", True),
        ("https://r.openai.azure.com/openai/", "AzureOpenAI", "2024-10-21", False),  # GA spec lacks it
        ("https://r.openai.azure.com/openai/", "AzureOpenAI", "2025-06-01", True),
        ("https://r.openai.azure.com/openai/", "AzureOpenAI", "preview", True),
        ("https://r.openai.azure.com/openai/", "AzureOpenAI", None, False),
        ("https://r.openai.azure.com/openai/v1/", "OpenAI", None, True),  # the v1 API
        ("https://r.services.ai.azure.com/models", "OpenAI", "2024-05-01-preview", False),
    ],
)
def test_servers_known_to_accept_stream_options(
    monkeypatch: pytest.MonkeyPatch, base_url: str, client_name: str, api_version: str | None, accepts: bool
) -> None:
    monkeypatch.setenv(ad.ENV_NIM_HOSTS, "nim.internal:8000")
    assert _info(base_url, client_name, api_version).stream_options is accepts


def _asked(server: OpenAIMockServer, client: Any) -> bool:
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert all(c.usage is None for c in chunks)  # a usage chunk never reaches the app
    return "stream_options" in server.last_request.json


def test_detection_over_http_and_the_switch(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrumentor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = openai_server
    assert not _asked(server, server.client())  # 127.0.0.1: unknown server
    assert not _asked(server, server.azure_client(api_version="2024-06-01"))
    assert _asked(server, server.azure_client(api_version="2024-10-01-preview"))
    _usage_on_span(telemetry)
    monkeypatch.setenv(ad.ENV_NIM_HOSTS, server.base_url.split("//")[1].split("/")[0])
    instrumentor()  # NIM hosts are read when instrumenting
    assert _asked(server, server.client())
    monkeypatch.delenv(ad.ENV_NIM_HOSTS)
    instrumentor(stream_usage=True)  # every server
    assert _asked(server, server.client())
    _usage_on_span(telemetry)
    instrumentor(stream_usage=False)  # none
    assert not _asked(server, openai_com(server))
    monkeypatch.setenv(ENV_STREAM_USAGE, "false")
    instrumentor()
    assert not _asked(server, openai_com(server))
    monkeypatch.setenv(ENV_STREAM_USAGE, "true")
    instrumentor()
    assert _asked(server, server.client())


def test_azure_stream_with_filter_chunks_unchanged(
    openai_server: OpenAIMockServer, telemetry: Telemetry, uninstrumented: Any, instrumentor: Any
) -> None:
    """Azure's first chunk (prompt filter verdicts, no choices) is no usage chunk: it reaches the app."""
    client = openai_server.azure_client(api_version="2024-10-01-preview")

    def run() -> list[Any]:
        return seen(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))

    plain = uninstrumented(run)
    assert run() == plain and plain[0][0]["choices"] == []
    assert openai_server.last_request.json["stream_options"] == {"include_usage": True}
    a = _usage_on_span(telemetry)
    assert a[sc.GEN_AI_PROMPT_FILTER_RESULTS]


def test_unrecorded_calls_are_sent_as_the_app_made_them(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrumentor: Any
) -> None:
    """Where instrumentation is suppressed no stream proxy would hide the usage chunk: no option."""
    token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        chunks = list(
            openai_com(openai_server).chat.completions.create(model="m", messages=MESSAGES, stream=True)
        )
    finally:
        context.detach(token)
    assert "stream_options" not in openai_server.last_request.json
    assert all(c.usage is None for c in chunks) and telemetry.spans() == []
