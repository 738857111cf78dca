"""Every way a caller can stop reading a stream, with the real SDKs of every provider that streams:
the LLM span ends exactly once, with the documented ``genai_observe.stream.end`` (docs/telemetry.md
#stream-end-reason) and without error status (the provider did not fail).

Ways to stop: abandoned after one chunk (garbage-collected), ``break`` in the loop (the span stays
open until the stream is dropped), ``close()``, an exception in the consumer's loop body, and, for
async clients, the reading task cancelled mid-stream.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import itertools
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from genai_observe._core import semconv as sc
from tests.conftest import Telemetry
from tests.rig.bedrock_server import Reply as BedrockReply

from ._providers import (
    ANTHROPIC_MODEL,
    BEDROCK_CLAUDE,
    BEDROCK_MODEL,
    INSTRUMENTATIONS,
    OLLAMA_MODEL,
    SERVERS,
    SpanCounter,
    anthropic_client,
    attrs,
    bedrock_client,
    count_spans,
    fake_chain,
    instrumented,
    llm_spans,
    ollama_client,
    openai_chain,
    openai_client,
)

MESSAGES = [{"role": "user", "content": "count to ten"}]
TEXT = "one two three four five six seven eight nine ten"  # streamed in several chunks
SLOW = 0.2  # seconds between chunks, for cancelling a task while it waits for the next one


def _script(provider: str, server: Any, slow: bool = False) -> None:
    delay = SLOW if slow else 0.0
    if provider in ("openai", "langchain"):
        server.script(content=TEXT, chunk_delay=delay)
    elif provider == "anthropic":
        server.script(text=TEXT, chunk_delay=delay, chunk_size=4)
    elif provider == "ollama":
        server.script(content=TEXT, chunk_delay=delay)
    else:
        server.script(BedrockReply(text=TEXT))


@functools.cache
def _slow_fake_model() -> Any:
    """A langchain-core fake chat model that waits between chunks (made on first use)."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    class SlowFake(GenericFakeChatModel):
        async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            async for chunk in super()._astream(*args, **kwargs):
                await asyncio.sleep(SLOW)
                yield chunk

    return SlowFake


# --- the streams: (server) -> a stream object, as the caller holds it ---------------------------


def _openai(server: Any) -> Any:
    return openai_client(server).chat.completions.create(model="m", messages=MESSAGES, stream=True)


async def _openai_async(server: Any) -> Any:
    client = openai_client(server, is_async=True)
    return await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)


def _anthropic_args() -> dict[str, Any]:
    return {"model": ANTHROPIC_MODEL, "max_tokens": 50, "messages": MESSAGES}


def _anthropic(server: Any) -> Any:
    return anthropic_client(server).messages.create(**_anthropic_args(), stream=True)


async def _anthropic_async(server: Any) -> Any:
    return await anthropic_client(server, is_async=True).messages.create(**_anthropic_args(), stream=True)


def _converse_stream(server: Any) -> Any:
    client = bedrock_client(server)
    return client.converse_stream(
        modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )["stream"]


def _invoke_stream(server: Any) -> Any:
    body = json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    return bedrock_client(server).invoke_model_with_response_stream(modelId=BEDROCK_CLAUDE, body=body)["body"]


def _ollama(server: Any) -> Any:
    return ollama_client(server).chat(model=OLLAMA_MODEL, messages=MESSAGES, stream=True)


async def _ollama_async(server: Any) -> Any:
    return await ollama_client(server, is_async=True).chat(model=OLLAMA_MODEL, messages=MESSAGES, stream=True)


def _chain_openai(server: Any) -> Any:
    return openai_chain(server.base_url).stream({"q": "count to ten"})


async def _chain_openai_async(server: Any) -> Any:
    return openai_chain(server.base_url).astream({"q": "count to ten"})


def _chain_fake(server: Any) -> Any:
    return fake_chain(TEXT).stream({"q": "count to ten"})


async def _chain_fake_async(server: Any) -> Any:
    return fake_chain(TEXT, _slow_fake_model()).astream({"q": "count to ten"})


@dataclass(frozen=True)
class Kind:
    name: str
    provider: str
    open: Callable[[Any], Any]
    aopen: Callable[[Any], Any] | None
    # Whether the LLM span carries genai_observe.stream.end: a LangChain model run that is the LLM
    # span itself records no stream end reason (its end comes from LangChain's callbacks).
    end_reason: bool = True


KINDS = [
    Kind("openai-chat", "openai", _openai, _openai_async),
    Kind("anthropic-messages", "anthropic", _anthropic, _anthropic_async),
    Kind("bedrock-converse-stream", "bedrock", _converse_stream, None),
    Kind("bedrock-invoke-stream", "bedrock", _invoke_stream, None),
    Kind("ollama-chat", "ollama", _ollama, _ollama_async),
    Kind("langchain-chatopenai", "langchain", _chain_openai, _chain_openai_async),
    Kind("langchain-model", "langchain", _chain_fake, _chain_fake_async, end_reason=False),
]


# --- how the caller stops: each returns once the stream is stopped and dropped ----------------------


def _abandoned(stream: Any, telemetry: Telemetry) -> None:
    next(iter(stream))
    del stream
    gc.collect()


def _break(stream: Any, telemetry: Telemetry) -> None:
    for _ in stream:
        break
    assert llm_spans(telemetry) == []  # still open: the caller may go on reading
    del stream
    gc.collect()


def _close(stream: Any, telemetry: Telemetry) -> None:
    next(iter(stream))
    stream.close()
    del stream
    gc.collect()


class ConsumerError(Exception):
    pass


def _consumer_raises(stream: Any, telemetry: Telemetry) -> None:
    with pytest.raises(ConsumerError):
        for _ in stream:
            raise ConsumerError("the app's own bug")
    del stream
    gc.collect()


SYNC_WAYS: dict[str, tuple[Callable[[Any, Telemetry], None], str]] = {
    # way -> (how, expected end reason)
    "abandoned": (_abandoned, "abandoned"),
    "break": (_break, "abandoned"),
    "close": (_close, "closed"),
    "consumer-exception": (_consumer_raises, "abandoned"),
}


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "close", None) or stream.aclose
    result = close()
    if asyncio.iscoroutine(result):
        await result


async def _a_break(stream: Any, telemetry: Telemetry) -> None:
    async for _ in stream:
        break
    assert llm_spans(telemetry) == []
    del stream
    gc.collect()
    await asyncio.sleep(0)  # async generators are finalised by the loop


async def _a_close(stream: Any, telemetry: Telemetry) -> None:
    await stream.__anext__()
    await _aclose(stream)
    del stream
    gc.collect()


async def _a_consumer_raises(stream: Any, telemetry: Telemetry) -> None:
    with pytest.raises(ConsumerError):
        async for _ in stream:
            raise ConsumerError("the app's own bug")
    del stream
    gc.collect()
    await asyncio.sleep(0)


async def _read_until_cancelled(stream: Any, first: asyncio.Event) -> None:
    async for _ in stream:
        first.set()  # then waits SLOW for the next chunk


async def _a_cancelled(stream: Any, telemetry: Telemetry) -> None:
    first = asyncio.Event()
    task = asyncio.ensure_future(_read_until_cancelled(stream, first))
    await asyncio.wait_for(first.wait(), 10)
    await asyncio.sleep(SLOW / 4)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    del stream, task
    gc.collect()
    await asyncio.sleep(0)


ASYNC_WAYS: dict[str, tuple[Callable[[Any, Telemetry], Any], str]] = {
    "break": (_a_break, "abandoned"),
    "close": (_a_close, "closed"),
    "consumer-exception": (_a_consumer_raises, "abandoned"),
    "cancelled": (_a_cancelled, "cancelled"),
}

# The LangChain chain over ChatOpenAI. Sync: LangChain itself reads the model's stream to the end
# when the chain's stream is dropped or closed (it takes as long without genai-observe), so the
# openai stream is "exhausted". Async: langchain-openai reads the openai stream inside a ``with``
# block, which closing LangChain's generators leaves: "closed", not "abandoned".
LANGCHAIN_OPENAI_ENDS = {
    (False, "abandoned"): "exhausted",
    (False, "closed"): "exhausted",
    (True, "abandoned"): "closed",
}


def _expected(kind: Kind, end: str, is_async: bool) -> str | None:
    if not kind.end_reason:
        return None
    if kind.name == "langchain-chatopenai":
        return LANGCHAIN_OPENAI_ENDS.get((is_async, end), end)
    return end


def _check(
    kind: Kind, telemetry: Telemetry, counter: SpanCounter, caplog: Any, end: str, is_async: bool = False
) -> None:
    spans = llm_spans(telemetry)
    assert len(spans) == 1, [s.name for s in telemetry.spans()]
    a = attrs(spans[0])
    assert a.get(sc.STREAM_END_REASON) == _expected(kind, end, is_async)
    assert spans[0].status.status_code is StatusCode.UNSET, spans[0].status
    assert sc.ERROR_TYPE not in a
    assert counter.open() == [] and counter.ended_twice() == []  # ended, and exactly once
    assert "ended span" not in caplog.text  # the SDK warns on a second end()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []  # e.g. asyncio: "an error occurred during closing of asynchronous generator"


SYNC_CASES = [pytest.param(kind, way, id=f"{kind.name}-{way}") for kind in KINDS for way in SYNC_WAYS]
ASYNC_CASES = [
    pytest.param(kind, way, id=f"{kind.name}-async-{way}")
    for kind in KINDS
    if kind.aopen is not None
    for way in ASYNC_WAYS
]


@pytest.fixture
def server_for(request: pytest.FixtureRequest) -> Callable[[str], Any]:
    def get(provider: str) -> Any:
        if provider == "bedrock":
            request.getfixturevalue("aws_env")
        return request.getfixturevalue(SERVERS[provider])

    return get


@pytest.fixture
def span_warnings(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.WARNING, logger="opentelemetry")
    yield caplog


@pytest.mark.parametrize(("kind", "way"), SYNC_CASES)
def test_sync_stream_ends_once(
    kind: Kind,
    way: str,
    server_for: Callable[[str], Any],
    telemetry: Telemetry,
    span_warnings: pytest.LogCaptureFixture,
) -> None:
    server = server_for(kind.provider)
    how, end = SYNC_WAYS[way]
    _script(kind.provider, server)
    counter = count_spans(telemetry)
    with instrumented(telemetry, *INSTRUMENTATIONS[kind.provider]):
        how(kind.open(server), telemetry)
    _check(kind, telemetry, counter, span_warnings, end)


@pytest.mark.parametrize(("kind", "way"), ASYNC_CASES)
def test_async_stream_ends_once(
    kind: Kind,
    way: str,
    server_for: Callable[[str], Any],
    telemetry: Telemetry,
    span_warnings: pytest.LogCaptureFixture,
) -> None:
    server = server_for(kind.provider)
    how, end = ASYNC_WAYS[way]
    _script(kind.provider, server, slow=way == "cancelled")
    counter = count_spans(telemetry)
    assert kind.aopen is not None
    aopen = kind.aopen

    async def run() -> None:
        await how(await aopen(server), telemetry)

    with instrumented(telemetry, *INSTRUMENTATIONS[kind.provider]):
        asyncio.run(run())
    _check(kind, telemetry, counter, span_warnings, end, is_async=True)


# --- the Anthropic messages.stream() helper: a context manager around the stream -----------------


def test_anthropic_stream_helper_endings(
    anthropic_server: Any, telemetry: Telemetry, span_warnings: pytest.LogCaptureFixture
) -> None:
    kind = Kind("anthropic-helper", "anthropic", _anthropic, None)
    client = anthropic_client(anthropic_server)
    cases: list[tuple[Callable[[], None], str]] = []

    def broken_out_of() -> None:
        with client.messages.stream(**_anthropic_args()) as stream:
            for _ in stream.text_stream:
                break

    def consumer_raises() -> None:
        with pytest.raises(ConsumerError), client.messages.stream(**_anthropic_args()) as stream:
            for _ in stream:
                raise ConsumerError("the app's own bug")

    def read_to_the_end() -> None:
        with client.messages.stream(**_anthropic_args()) as stream:
            assert stream.get_final_text() == TEXT

    def never_read() -> None:
        with client.messages.stream(**_anthropic_args()):
            pass

    cases = [
        (broken_out_of, "closed"),
        (consumer_raises, "closed"),
        (read_to_the_end, "exhausted"),
        (never_read, "closed"),
    ]
    with instrumented(telemetry, "anthropic"):
        for how, end in cases:
            anthropic_server.script(text=TEXT, chunk_size=4)
            telemetry.span_exporter.clear()
            counter = count_spans(telemetry)
            how()
            gc.collect()
            _check(kind, telemetry, counter, span_warnings, end)


def test_anthropic_async_stream_helper_cancelled(
    anthropic_server: Any, telemetry: Telemetry, span_warnings: pytest.LogCaptureFixture
) -> None:
    kind = Kind("anthropic-helper", "anthropic", _anthropic, None)
    anthropic_server.script(text=TEXT, chunk_size=4, chunk_delay=SLOW)
    counter = count_spans(telemetry)

    async def run() -> None:
        first = asyncio.Event()

        async def read() -> None:
            client = anthropic_client(anthropic_server, is_async=True)
            async with client.messages.stream(**_anthropic_args()) as stream:
                async for _ in stream:
                    first.set()

        task = asyncio.ensure_future(read())
        await asyncio.wait_for(first.wait(), 10)
        await asyncio.sleep(SLOW / 4)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with instrumented(telemetry, "anthropic"):
        asyncio.run(run())
    _check(kind, telemetry, counter, span_warnings, "cancelled", is_async=True)


def test_many_abandoned_streams_leave_nothing_open(
    openai_server: Any, anthropic_server: Any, ollama_server: Any, telemetry: Telemetry
) -> None:
    """Streams dropped after one chunk, one after another: each ends once as "abandoned" (when its
    last reference goes, or at the latest at the next garbage collection)."""
    openai_server.script(content=TEXT, times=None)
    anthropic_server.script(text=TEXT, times=None)
    ollama_server.script(content=TEXT, times=None)
    counter = count_spans(telemetry)
    opens = itertools.cycle(
        [(_openai, openai_server), (_anthropic, anthropic_server), (_ollama, ollama_server)]
    )
    with instrumented(telemetry, "openai", "anthropic", "ollama"):
        for open_, server in itertools.islice(opens, 60):
            stream = open_(server)
            next(iter(stream))
            del stream
        gc.collect()
    spans = llm_spans(telemetry)
    assert len(spans) == 60
    assert {attrs(s)[sc.STREAM_END_REASON] for s in spans} == {"abandoned"}
    assert counter.open() == [] and counter.ended_twice() == []


def test_stream_open_at_interpreter_exit_is_ended_as_abandoned(
    openai_server: Any, anthropic_server: Any, otlp_receiver: Any
) -> None:
    """A stream still referenced when the program ends (a global, a cache) gets its span, ended as
    abandoned before the export shuts down; it got none before (issue 13, item 13)."""
    openai_server.script(endpoint="chat.completions", content=TEXT)
    anthropic_server.script(text=TEXT)
    script = textwrap.dedent(f"""
        import anthropic, openai
        import genai_observe
        genai_observe.init(endpoint={otlp_receiver.url!r})
        client = openai.OpenAI(base_url={openai_server.base_url!r}, api_key="k", max_retries=0)
        KEPT = [client.chat.completions.create(model="gpt-exit", messages={MESSAGES!r}, stream=True)]
        next(iter(KEPT[0]))
        claude = anthropic.Anthropic(base_url={anthropic_server.url!r}, api_key="k", max_retries=0)
        KEPT.append(claude.messages.create(
            model="claude-exit", max_tokens=20, messages={MESSAGES!r}, stream=True
        ))
        next(iter(KEPT[1]))
        # no close, no shutdown(): the interpreter exits with both streams open
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    spans = {s.name: s for s in otlp_receiver.spans()}
    assert set(spans) == {"chat gpt-exit", "chat claude-exit"}
    for span in spans.values():
        assert span.attributes[sc.STREAM_END_REASON] == "abandoned"
        assert span.status_code != 2
