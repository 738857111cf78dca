"""Provider-side faults and failures of our own code, for every instrumented provider: the caller
sees exactly what it would see without genai-observe, and the span records what happened.

Each fault case makes the same call twice against the provider's local server (tests/rig), once
uninstrumented and once instrumented, and compares what the caller saw: the result, or the
exception's type and message (with the chunks a stream delivered before it failed). Per-response
ids the rigs number are scrubbed first (they differ between any two calls).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from genai_observe._core import diagnostics as _diagnostics
from genai_observe._core import recorder as _recorder
from genai_observe._core import semconv as sc
from genai_observe._core import streams as _streams
from genai_observe.instrumentation import ollama as ollama_instrumentation
from genai_observe.instrumentation import openai as openai_instrumentation
from genai_observe.instrumentation.anthropic import _adapter as anthropic_ad
from genai_observe.instrumentation.bedrock import _adapter as bedrock_ad
from genai_observe.instrumentation.bedrock import _invoke as bedrock_invoke
from genai_observe.instrumentation.langchain import _adapter as langchain_ad
from genai_observe.instrumentation.ollama import _adapter as ollama_ad
from genai_observe.instrumentation.openai import _adapter as openai_ad
from tests.conftest import Telemetry
from tests.rig.bedrock_server import Reply as BedrockReply
from tests.rig.bedrock_server import json_event

from ._providers import (
    ANTHROPIC_MODEL,
    BEDROCK_CLAUDE,
    BEDROCK_MODEL,
    INSTRUMENTATIONS,
    OLLAMA_MODEL,
    SERVERS,
    Seen,
    anthropic_client,
    asettle,
    attrs,
    bedrock_client,
    count_spans,
    dump,
    error_type,
    instrumented,
    llm_spans,
    ollama_client,
    openai_chain,
    openai_client,
    settle,
)

MESSAGES = [{"role": "user", "content": "hello"}]
CONVERSE_MESSAGES = [{"role": "user", "content": [{"text": "hello"}]}]
CLAUDE_BODY = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 20, "messages": MESSAGES})
TIMEOUT = 0.5  # the client timeout of the timeout cases; their server waits longer (LATE)
LATE = 2.0


# --- the calls: (server, chunks so far, client timeout) -> what the caller gets -----------------


def _timeout(timeout: float | None) -> float:
    return timeout if timeout is not None else 30.0


def _openai(server: Any, timeout: float | None, is_async: bool = False) -> Any:
    return openai_client(server, is_async=is_async, timeout=_timeout(timeout))


def _openai_chat(server: Any, got: list[Any], timeout: float | None) -> Any:
    return dump(_openai(server, timeout).chat.completions.create(model="m", messages=MESSAGES))


def _openai_chat_raw(server: Any, got: list[Any], timeout: float | None) -> Any:
    raw = _openai(server, timeout).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    return [raw.status_code, dump(raw.parse())]


def _openai_stream(server: Any, got: list[Any], timeout: float | None) -> Any:
    for chunk in _openai(server, timeout).chat.completions.create(model="m", messages=MESSAGES, stream=True):
        got.append(dump(chunk))
    return got


async def _openai_chat_async(server: Any, got: list[Any], timeout: float | None) -> Any:
    async with _openai(server, timeout, is_async=True) as client:
        return dump(await client.chat.completions.create(model="m", messages=MESSAGES))


async def _openai_stream_async(server: Any, got: list[Any], timeout: float | None) -> Any:
    async with _openai(server, timeout, is_async=True) as client:
        async for chunk in await client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
            got.append(dump(chunk))
        return got


def _anthropic(server: Any, timeout: float | None, is_async: bool = False) -> Any:
    return anthropic_client(server, is_async=is_async, timeout=_timeout(timeout))


def _anthropic_args() -> dict[str, Any]:
    return {"model": ANTHROPIC_MODEL, "max_tokens": 20, "messages": MESSAGES}


def _anthropic_messages(server: Any, got: list[Any], timeout: float | None) -> Any:
    return dump(_anthropic(server, timeout).messages.create(**_anthropic_args()))


def _anthropic_messages_raw(server: Any, got: list[Any], timeout: float | None) -> Any:
    raw = _anthropic(server, timeout).messages.with_raw_response.create(**_anthropic_args())
    return [raw.status_code, dump(raw.parse())]


def _anthropic_stream(server: Any, got: list[Any], timeout: float | None) -> Any:
    for event in _anthropic(server, timeout).messages.create(**_anthropic_args(), stream=True):
        got.append(dump(event))
    return got


def _anthropic_helper(server: Any, got: list[Any], timeout: float | None) -> Any:
    with _anthropic(server, timeout).messages.stream(**_anthropic_args()) as stream:
        for event in stream:
            got.append(dump(event))
        return [got, dump(stream.get_final_message())]


async def _anthropic_messages_async(server: Any, got: list[Any], timeout: float | None) -> Any:
    async with _anthropic(server, timeout, is_async=True) as client:
        return dump(await client.messages.create(**_anthropic_args()))


async def _anthropic_stream_async(server: Any, got: list[Any], timeout: float | None) -> Any:
    async with _anthropic(server, timeout, is_async=True) as client:
        async for event in await client.messages.create(**_anthropic_args(), stream=True):
            got.append(dump(event))
        return got


async def _anthropic_helper_async(server: Any, got: list[Any], timeout: float | None) -> Any:
    async with (
        _anthropic(server, timeout, is_async=True) as client,
        client.messages.stream(**_anthropic_args()) as stream,
    ):
        async for event in stream:
            got.append(dump(event))
        return [got, dump(await stream.get_final_message())]


def _bedrock(server: Any, timeout: float | None) -> Any:
    return bedrock_client(server, read_timeout=_timeout(timeout))


def _bedrock_converse(server: Any, got: list[Any], timeout: float | None) -> Any:
    return _bedrock(server, timeout).converse(modelId=BEDROCK_MODEL, messages=CONVERSE_MESSAGES)


def _bedrock_converse_stream(server: Any, got: list[Any], timeout: float | None) -> Any:
    response = _bedrock(server, timeout).converse_stream(modelId=BEDROCK_MODEL, messages=CONVERSE_MESSAGES)
    for event in response.pop("stream"):
        got.append(event)
    return [response, got]


def _bedrock_invoke(server: Any, got: list[Any], timeout: float | None) -> Any:
    response = _bedrock(server, timeout).invoke_model(modelId=BEDROCK_CLAUDE, body=CLAUDE_BODY)
    body = response.pop("body")
    return [response, body.read()]


def _bedrock_invoke_stream(server: Any, got: list[Any], timeout: float | None) -> Any:
    client = _bedrock(server, timeout)
    response = client.invoke_model_with_response_stream(modelId=BEDROCK_CLAUDE, body=CLAUDE_BODY)
    for event in response.pop("body"):
        got.append(event)
    return [response, got]


def _ollama(server: Any, timeout: float | None, is_async: bool = False) -> Any:
    return ollama_client(server, is_async=is_async, timeout=_timeout(timeout))


def _ollama_chat(server: Any, got: list[Any], timeout: float | None) -> Any:
    return dump(_ollama(server, timeout).chat(model=OLLAMA_MODEL, messages=MESSAGES, stream=False))


def _ollama_stream(server: Any, got: list[Any], timeout: float | None) -> Any:
    for chunk in _ollama(server, timeout).chat(model=OLLAMA_MODEL, messages=MESSAGES, stream=True):
        got.append(dump(chunk))
    return got


def _ollama_generate_stream(server: Any, got: list[Any], timeout: float | None) -> Any:
    for chunk in _ollama(server, timeout).generate(model=OLLAMA_MODEL, prompt="hi", stream=True):
        got.append(dump(chunk))
    return got


async def _ollama_chat_async(server: Any, got: list[Any], timeout: float | None) -> Any:
    async with _ollama(server, timeout, is_async=True) as client:
        return dump(await client.chat(model=OLLAMA_MODEL, messages=MESSAGES, stream=False))


async def _ollama_stream_async(server: Any, got: list[Any], timeout: float | None) -> Any:
    async with _ollama(server, timeout, is_async=True) as client:
        async for chunk in await client.chat(model=OLLAMA_MODEL, messages=MESSAGES, stream=True):
            got.append(dump(chunk))
        return got


async def _ollama_generate_stream_async(server: Any, got: list[Any], timeout: float | None) -> Any:
    async with _ollama(server, timeout, is_async=True) as client:
        async for chunk in await client.generate(model=OLLAMA_MODEL, prompt="hi", stream=True):
            got.append(dump(chunk))
        return got


def _chain(server: Any, timeout: float | None) -> Any:
    return openai_chain(server.base_url, timeout=_timeout(timeout))


def _langchain_invoke(server: Any, got: list[Any], timeout: float | None) -> Any:
    return _chain(server, timeout).invoke({"q": "hello"})


def _langchain_stream(server: Any, got: list[Any], timeout: float | None) -> Any:
    for chunk in _chain(server, timeout).stream({"q": "hello"}):
        got.append(chunk)
    return got


async def _langchain_invoke_async(server: Any, got: list[Any], timeout: float | None) -> Any:
    return await _chain(server, timeout).ainvoke({"q": "hello"})


async def _langchain_stream_async(server: Any, got: list[Any], timeout: float | None) -> Any:
    async for chunk in _chain(server, timeout).astream({"q": "hello"}):
        got.append(chunk)
    return got


Call = Callable[[Any, list[Any], "float | None"], Any]
# provider -> api -> (sync call, async call or None, streamed?)
CALLS: dict[str, dict[str, tuple[Call, Call | None, bool]]] = {
    "openai": {
        "chat": (_openai_chat, _openai_chat_async, False),
        "chat-raw": (_openai_chat_raw, None, False),
        "chat-stream": (_openai_stream, _openai_stream_async, True),
    },
    "anthropic": {
        "messages": (_anthropic_messages, _anthropic_messages_async, False),
        "messages-raw": (_anthropic_messages_raw, None, False),
        "messages-sse": (_anthropic_stream, _anthropic_stream_async, True),
        "stream-helper": (_anthropic_helper, _anthropic_helper_async, True),
    },
    "bedrock": {  # botocore has no async client
        "converse": (_bedrock_converse, None, False),
        "converse-stream": (_bedrock_converse_stream, None, True),
        "invoke": (_bedrock_invoke, None, False),
        "invoke-stream": (_bedrock_invoke_stream, None, True),
    },
    "ollama": {
        "chat": (_ollama_chat, _ollama_chat_async, False),
        "chat-ndjson": (_ollama_stream, _ollama_stream_async, True),
        "generate-ndjson": (_ollama_generate_stream, _ollama_generate_stream_async, True),
    },
    "langchain": {
        "chain": (_langchain_invoke, _langchain_invoke_async, False),
        "chain-stream": (_langchain_stream, _langchain_stream_async, True),
    },
}


# --- the fault table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    provider: str
    api: str
    name: str
    reply: dict[str, Any] = field(default_factory=dict)  # the rig's Reply fields
    timeout: float | None = None  # a short client timeout (the timeout cases)
    usage: bool = True  # False: the answer carries no token counts, the span must not invent any
    bug: str | None = None  # a known bug of genai-observe this case shows (strict xfail)

    def arrange(self, server: Any) -> None:
        if self.provider == "bedrock":
            server.script(BedrockReply(**self.reply))
        else:
            server.script(**self.reply)


def _anthropic_message(**fields: Any) -> dict[str, Any]:
    message = {
        "id": "msg_fault",
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_MODEL,
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    message.update(fields)
    return {k: v for k, v in message.items() if v is not ...}


def _anthropic_events_without_usage() -> list[tuple[str, Any]]:
    start = {k: v for k, v in _anthropic_message(content=[], stop_reason=None).items() if k != "usage"}
    block = {"type": "text_delta", "text": "hi"}
    return [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": block}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def _converse_body(**fields: Any) -> bytes:
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4},
        "metrics": {"latencyMs": 5},
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def _openai_completion(**fields: Any) -> dict[str, Any]:
    body = {"id": "x", "object": "chat.completion", "created": 1, "model": "m"}
    body.update(fields)
    return body


def _faults() -> list[Fault]:
    f: list[Fault] = []
    # OpenAI: chat completions, JSON and SSE.
    for status in (400, 401, 404, 429, 500, 503):
        f.append(Fault("openai", "chat", f"http-{status}", {"status": status, "retry_after": 0.01}))
    f += [
        Fault("openai", "chat", "timeout", {"delay": LATE}, timeout=TIMEOUT),
        Fault("openai", "chat", "no-answer", {"disconnect": True}),
        Fault("openai", "chat", "malformed-json", {"malformed": True}),
        Fault("openai", "chat", "truncated-body", {"break_after": 1}),
        Fault("openai", "chat", "no-usage", {"include_usage": False}, usage=False),
        Fault("openai", "chat", "no-choices", {"body": _openai_completion(choices=[])}, usage=False),
        Fault(
            "openai",
            "chat",
            "null-content",
            {
                "body": _openai_completion(
                    choices=[
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": None},
                            "finish_reason": "stop",
                        }
                    ]
                )
            },
            usage=False,
        ),
        Fault(
            "openai",
            "chat",
            "unexpected-fields",
            {"extra": {"surprise": {"n": [1]}, "usage": "not-an-object"}},
        ),
        Fault("openai", "chat-raw", "http-429", {"status": 429, "retry_after": 0.01}),
        Fault("openai", "chat-raw", "truncated-body", {"break_after": 1}),
        Fault("openai", "chat-raw", "malformed-json", {"malformed": True}),
        Fault("openai", "chat-stream", "http-500", {"status": 500}),
        Fault("openai", "chat-stream", "malformed-sse", {"malformed": True}),
        Fault("openai", "chat-stream", "connection-drop", {"break_after": 2}),
        Fault("openai", "chat-stream", "error-event", {"stream_error_after": 2}),
        Fault("openai", "chat-stream", "timeout-mid-stream", {"chunk_delay": LATE}, timeout=TIMEOUT),
        Fault("openai", "chat-stream", "no-usage", {"include_usage": False}, usage=False),
    ]
    # Anthropic: messages, JSON and SSE, and the messages.stream() helper.
    for status in (400, 401, 404, 413, 429, 500, 529):
        f.append(Fault("anthropic", "messages", f"http-{status}", {"status": status}))
    f += [
        Fault("anthropic", "messages", "timeout", {"hang": True}, timeout=TIMEOUT),
        Fault("anthropic", "messages", "no-answer", {"disconnect": True}),
        Fault("anthropic", "messages", "malformed-json", {"raw_body": b'{"id": "m", not json'}),
        Fault("anthropic", "messages", "truncated-body", {"break_after": 1}),
        Fault("anthropic", "messages", "no-usage", {"body": _anthropic_message(usage=...)}, usage=False),
        Fault("anthropic", "messages", "null-content", {"body": _anthropic_message(content=None)}),
        Fault(
            "anthropic",
            "messages",
            "unexpected-fields",
            {"extra": {"surprise": {"n": [1]}, "usage": "not-an-object", "content": [{"type": "mystery"}]}},
            usage=False,
        ),
        Fault("anthropic", "messages-raw", "http-429", {"status": 429}),
        Fault("anthropic", "messages-raw", "malformed-json", {"raw_body": b"{not json"}),
        Fault("anthropic", "messages-sse", "http-529", {"status": 529}),
        Fault("anthropic", "messages-sse", "malformed-sse", {"events": [("message_start", "{not json")]}),
        Fault("anthropic", "messages-sse", "connection-drop", {"break_after": 3}),
        Fault("anthropic", "messages-sse", "error-event", {"stream_error_after": 3}),
        Fault("anthropic", "messages-sse", "timeout-mid-stream", {"chunk_delay": LATE}, timeout=TIMEOUT),
        Fault(
            "anthropic",
            "messages-sse",
            "no-usage",
            {"events": _anthropic_events_without_usage()},
            usage=False,
        ),
        Fault(
            "anthropic", "messages-sse", "unexpected-events", {"events": [("mystery", {"type": "mystery"})]}
        ),
        Fault("anthropic", "stream-helper", "http-429", {"status": 429}),
        Fault("anthropic", "stream-helper", "connection-drop", {"break_after": 4}),
        Fault("anthropic", "stream-helper", "error-event", {"stream_error_after": 4}),
    ]
    # Bedrock: Converse / ConverseStream / InvokeModel / InvokeModelWithResponseStream.
    for code in (
        "ValidationException",
        "AccessDeniedException",
        "ResourceNotFoundException",
        "ThrottlingException",
        "ModelTimeoutException",
        "InternalServerException",
        "ServiceUnavailableException",
    ):
        f.append(Fault("bedrock", "converse", f"http-{code}", {"error": code}))
    f += [
        Fault("bedrock", "converse", "timeout", {"delay": LATE}, timeout=TIMEOUT),
        Fault("bedrock", "converse", "truncated-body", {"truncate": True}, usage=False),
        Fault("bedrock", "converse", "malformed-json", {"body": b'{"output": not json'}, usage=False),
        Fault("bedrock", "converse", "no-usage", {"body": _converse_body(usage=...)}, usage=False),
        Fault(
            "bedrock",
            "converse",
            "null-content",
            {"body": _converse_body(output={"message": {"role": "assistant", "content": None}})},
        ),
        Fault("bedrock", "converse", "unexpected-fields", {"body": _converse_body(surprise={"n": [1]})}),
        Fault("bedrock", "converse", "wrong-types", {"body": _converse_body(usage="not-an-object")}),
        Fault("bedrock", "converse-stream", "http-ThrottlingException", {"error": "ThrottlingException"}),
        Fault("bedrock", "converse-stream", "timeout", {"delay": LATE}, timeout=TIMEOUT),
        Fault(
            "bedrock",
            "converse-stream",
            "error-event",
            {"stream_error": "modelStreamErrorException", "stream_error_after": 2},
        ),
        Fault("bedrock", "converse-stream", "connection-drop", {"drop_after": 2}),
        Fault(
            "bedrock",
            "converse-stream",
            "unexpected-events",
            {"events": [json_event("mysteryEvent", {"x": 1}), json_event("messageStop", {"stopReason": 7})]},
            usage=False,
        ),
        Fault("bedrock", "invoke", "http-ThrottlingException", {"error": "ThrottlingException"}),
        Fault("bedrock", "invoke", "malformed-json", {"body": b'{"content": not json'}),
        Fault("bedrock", "invoke", "truncated-body", {"truncate": True}),
        Fault(
            "bedrock",
            "invoke",
            "no-usage",
            {"body": json.dumps(_anthropic_message(usage=...)).encode(), "token_headers": False},
            usage=False,
        ),
        Fault(
            "bedrock",
            "invoke",
            "unexpected-fields",
            {
                "body": json.dumps(
                    _anthropic_message(usage="x", content=[{"type": "mystery"}], surprise=1)
                ).encode()
            },
        ),
        Fault(
            "bedrock",
            "invoke-stream",
            "error-event",
            {"stream_error": "modelStreamErrorException", "stream_error_after": 2},
        ),
        Fault("bedrock", "invoke-stream", "connection-drop", {"drop_after": 2}),
        Fault(
            "bedrock",
            "invoke-stream",
            "malformed-chunk",
            {"events": [json_event("chunk", {"bytes": "bm90IGpzb24="})]},  # base64("not json")
            usage=False,
        ),
    ]
    # Ollama: chat and generate, JSON and NDJSON.
    for status in (400, 404, 500, 503):
        f.append(Fault("ollama", "chat", f"http-{status}", {"status": status}))
    f += [
        Fault("ollama", "chat", "timeout", {"delay": LATE}, timeout=TIMEOUT),
        Fault("ollama", "chat", "no-answer", {"disconnect": True}),
        Fault("ollama", "chat", "malformed-json", {"raw_body": b'{"model": not json'}),
        Fault("ollama", "chat", "truncated-body", {"break_after": 1}),
        Fault("ollama", "chat", "no-usage", {"counts": False}, usage=False),
        Fault(
            "ollama",
            "chat",
            "null-content",
            {
                "body": {
                    "model": OLLAMA_MODEL,
                    "message": {"role": "assistant", "content": None},
                    "done": True,
                }
            },
            usage=False,
        ),
        Fault("ollama", "chat", "unexpected-fields", {"extra": {"surprise": {"n": [1]}, "done_reason": 42}}),
        Fault("ollama", "chat-ndjson", "http-404", {"status": 404}),
        Fault(
            "ollama",
            "chat-ndjson",
            "malformed-ndjson",
            {
                "lines": [
                    {"model": OLLAMA_MODEL, "message": {"role": "assistant", "content": "a"}},
                    "{not json",
                ]
            },
            usage=False,
        ),
        Fault("ollama", "chat-ndjson", "connection-drop", {"break_after": 2}),
        Fault("ollama", "chat-ndjson", "error-line", {"stream_error_after": 2}),
        Fault("ollama", "chat-ndjson", "timeout-mid-stream", {"chunk_delay": LATE}, timeout=TIMEOUT),
        Fault("ollama", "chat-ndjson", "no-usage", {"counts": False}, usage=False),
        Fault("ollama", "generate-ndjson", "connection-drop", {"break_after": 2}),
        Fault("ollama", "generate-ndjson", "error-line", {"stream_error_after": 2}),
    ]
    # LangChain: prompt | ChatOpenAI | parser, with the openai instrumentation on as well.
    f += [
        Fault("langchain", "chain", "http-429", {"status": 429, "retry_after": 0.01}),
        Fault("langchain", "chain", "http-500", {"status": 500}),
        Fault("langchain", "chain", "timeout", {"delay": LATE}, timeout=TIMEOUT),
        Fault("langchain", "chain", "malformed-json", {"malformed": True}),
        Fault("langchain", "chain", "truncated-body", {"break_after": 1}),
        Fault("langchain", "chain", "no-usage", {"include_usage": False}, usage=False),
        Fault("langchain", "chain-stream", "http-500", {"status": 500}),
        Fault("langchain", "chain-stream", "connection-drop", {"break_after": 2}),
        Fault("langchain", "chain-stream", "error-event", {"stream_error_after": 2}),
    ]
    return f


FAULTS = _faults()
CASES = [
    pytest.param(
        fault,
        is_async,
        id=f"{fault.provider}-{fault.api}{'-async' if is_async else ''}-{fault.name}",
        marks=[pytest.mark.xfail(strict=True, reason=fault.bug)] if fault.bug else [],
    )
    for fault in FAULTS
    for is_async in (False, True)
    if not is_async or CALLS[fault.provider][fault.api][1] is not None
]


def _outcome(fault: Fault, server: Any, is_async: bool) -> Seen:
    sync_call, async_call, _ = CALLS[fault.provider][fault.api]
    fault.arrange(server)
    if is_async:
        assert async_call is not None
        call = async_call
        return asyncio.run(asettle(lambda got: call(server, got, fault.timeout)))
    return settle(lambda got: sync_call(server, got, fault.timeout))


@pytest.fixture
def server_for(request: pytest.FixtureRequest) -> Callable[[str], Any]:
    """The local server of a provider (its fixture is only set up when a case needs it)."""

    def get(provider: str) -> Any:
        if provider == "bedrock":
            request.getfixturevalue("aws_env")
        return request.getfixturevalue(SERVERS[provider])

    return get


@pytest.mark.parametrize(("fault", "is_async"), CASES)
def test_provider_fault_is_transparent_and_recorded(
    fault: Fault, is_async: bool, server_for: Callable[[str], Any], telemetry: Telemetry
) -> None:
    server = server_for(fault.provider)
    streamed = CALLS[fault.provider][fault.api][2]
    plain = _outcome(fault, server, is_async)
    counter = count_spans(telemetry)
    with instrumented(telemetry, *INSTRUMENTATIONS[fault.provider]):
        seen = _outcome(fault, server, is_async)
    assert seen == plain  # the caller sees exactly what it sees without us
    assert counter.open() == []  # every span we started has ended
    spans = llm_spans(telemetry)
    assert len(spans) == 1, [s.name for s in telemetry.spans()]  # one LLM span per call
    span, a = spans[0], attrs(spans[0])
    if plain.kind == "raise":
        assert plain.error is not None
        assert span.status.status_code is StatusCode.ERROR
        # langchain-openai re-raises the SDK's exception as its own subclass (raise ... from e);
        # the LLM span is the openai SDK call's and records the SDK's exception.
        cause = plain.error.__cause__ if fault.provider == "langchain" else None
        assert a[sc.ERROR_TYPE] == error_type(cause or plain.error)
        assert any(e.name == "exception" for e in span.events)
        if streamed:
            assert a[sc.STREAM_END_REASON] == "error"
    else:
        assert span.status.status_code is StatusCode.UNSET
        assert sc.ERROR_TYPE not in a
        if streamed:
            assert a[sc.STREAM_END_REASON] == "exhausted"
    if not fault.usage:
        assert sc.GEN_AI_USAGE_OUTPUT_TOKENS not in a  # nothing invented
    if fault.provider == "langchain":
        roots = [s for s in telemetry.spans() if s.parent is None]
        assert [r.name for r in roots] == ["RunnableSequence.workflow"]
        expected = StatusCode.ERROR if plain.kind == "raise" else StatusCode.UNSET
        assert roots[0].status.status_code is expected


# --- failures of our own code -------------------------------------------------------------------


def _boom(where: str) -> Callable[..., Any]:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"injected failure in {where}")

    return boom


def _hook(owner: Any, path: str, package: Any = None) -> Callable[[pytest.MonkeyPatch], None]:
    """Replace ``owner.path`` (``"function"`` or ``"Class.method"``) by a function that raises.

    Readers some instrumentations bind in a table when the SDK is patched (openai ``_TARGETS``,
    ollama ``_METHODS``) are replaced in ``package``'s table as well.
    """

    def inject(monkeypatch: pytest.MonkeyPatch) -> None:
        target = owner
        *parents, name = path.split(".")
        for part in parents:
            target = getattr(target, part)
        original = getattr(target, name)
        boom = _boom(path)
        monkeypatch.setattr(target, name, boom)
        for table_name in ("_TARGETS", "_METHODS"):
            table = getattr(package, table_name, None)
            if isinstance(table, tuple):
                rows = tuple(tuple(boom if x is original else x for x in row) for row in table)
                monkeypatch.setattr(package, table_name, rows)
            elif isinstance(table, dict):
                for key, row in list(table.items()):
                    if original in row:
                        monkeypatch.setitem(table, key, tuple(boom if x is original else x for x in row))

    return inject


def _langchain_plain_at_run_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """``plain`` fails only for a run's output (a failure on its inputs prevents the step)."""
    import sys

    original = langchain_ad.plain

    def plain(value: Any, depth: int = 0) -> Any:
        if sys._getframe(1).f_code.co_name == "_end":
            raise TypeError("injected failure in plain (run output)")
        return original(value, depth)

    monkeypatch.setattr(langchain_ad, "plain", plain)


# provider -> (hook, injector, known bug or None). Each hook is patched before the instrumentation
# is applied (some readers are bound when the SDK is patched). "recorder": the shared recording
# code, driven by OpenAI calls.
HOOKS: dict[str, list[tuple[str, Callable[[pytest.MonkeyPatch], None], str | None]]] = {
    "openai": [
        (name, _hook(openai_ad, name, openai_instrumentation), None)
        for name in ("chat_request", "chat_response", "client_info", "ChatStream.on_chunk", "ChatStream.fill")
    ],
    "anthropic": [
        (name, _hook(anthropic_ad, name), None)
        for name in (
            "client_info",
            "messages_request",
            "message_response",
            "usage",
            "MessageStreamAccumulator.on_chunk",
            "MessageStreamAccumulator.fill",
        )
    ],
    "bedrock": [
        (name, _hook(bedrock_ad, name), None)
        for name in (
            "client_endpoint",
            "new_call",
            "converse_response",
            "invoke_response",
            "content_length",
            "StreamState.fill",
            "ConverseStream.on_event",
            "InvokeStream.on_event",
        )
    ]
    + [("load_json", _hook(bedrock_invoke, "load_json"), None)],  # called inside _invoke
    "ollama": [
        (name, _hook(ollama_ad, name, ollama_instrumentation), None)
        for name in (
            "server_of",
            "arguments",
            "chat_request",
            "chat_response",
            "Stream.on_chunk",
            "Stream.fill",
        )
    ],
    "langchain": [
        (name, _hook(langchain_ad, name), None)
        for name in ("llm_call", "messages", "fill_result", "run_name", "plain", "usage_of")
    ]
    + [
        ("plain (run output)", _langchain_plain_at_run_end, None),
        ("result_text", _hook(langchain_ad, "result_text"), None),
    ],
    "recorder": [
        ("Recorder._start_attributes", _hook(_recorder, "Recorder._start_attributes"), None),
        ("Recorder._end_attributes", _hook(_recorder, "Recorder._end_attributes"), None),
        ("Recorder._record_metrics", _hook(_recorder, "Recorder._record_metrics"), None),
        # The stream proxies time each chunk inline (no Invocation.chunk call per chunk).
        ("stream chunk timing", _hook(_streams, "_perf_counter"), None),
    ],
}
HOOK_CASES = [
    pytest.param(
        provider,
        name,
        inject,
        id=f"{provider}-{name}",
        marks=[pytest.mark.xfail(strict=True, reason=bug)] if bug else [],
    )
    for provider, hooks in HOOKS.items()
    for name, inject, bug in hooks
]


def _exercise_openai(server: Any) -> list[Seen]:
    return [
        settle(lambda got: _openai_chat(server, got, None)),
        settle(lambda got: _openai_stream(server, got, None)),
        asyncio.run(asettle(lambda got: _openai_chat_async(server, got, None))),
        asyncio.run(asettle(lambda got: _openai_stream_async(server, got, None))),
    ]


def _exercise_anthropic(server: Any) -> list[Seen]:
    return [
        settle(lambda got: _anthropic_messages(server, got, None)),
        settle(lambda got: _anthropic_stream(server, got, None)),
        settle(lambda got: _anthropic_helper(server, got, None)),
        asyncio.run(asettle(lambda got: _anthropic_messages_async(server, got, None))),
        asyncio.run(asettle(lambda got: _anthropic_stream_async(server, got, None))),
        asyncio.run(asettle(lambda got: _anthropic_helper_async(server, got, None))),
    ]


def _exercise_bedrock(server: Any) -> list[Seen]:
    calls = (_bedrock_converse, _bedrock_converse_stream, _bedrock_invoke, _bedrock_invoke_stream)
    return [settle(lambda got, call=call: call(server, got, None)) for call in calls]


def _exercise_ollama(server: Any) -> list[Seen]:
    return [
        settle(lambda got: _ollama_chat(server, got, None)),
        settle(lambda got: _ollama_stream(server, got, None)),
        asyncio.run(asettle(lambda got: _ollama_chat_async(server, got, None))),
        asyncio.run(asettle(lambda got: _ollama_stream_async(server, got, None))),
    ]


def _exercise_langchain(server: Any) -> list[Seen]:
    from ._providers import fake_chain

    fake = fake_chain("a fake answer")
    return [
        settle(lambda got: _langchain_invoke(server, got, None)),
        settle(lambda got: _langchain_stream(server, got, None)),
        settle(lambda got: fake.invoke({"q": "hello"})),
        settle(lambda got: list(fake.stream({"q": "hello"}))),
        asyncio.run(asettle(lambda got: _langchain_invoke_async(server, got, None))),
        asyncio.run(asettle(lambda got: fake.ainvoke({"q": "hello"}))),
    ]


EXERCISE: dict[str, Callable[[Any], list[Seen]]] = {
    "openai": _exercise_openai,
    "anthropic": _exercise_anthropic,
    "bedrock": _exercise_bedrock,
    "ollama": _exercise_ollama,
    "langchain": _exercise_langchain,
    "recorder": _exercise_openai,
}


@pytest.fixture
def fresh_reports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_diagnostics, "_reported", set())
    yield


@pytest.mark.usefixtures("fresh_reports")
@pytest.mark.parametrize(("provider", "hook", "inject"), HOOK_CASES)
def test_failure_in_our_code_never_reaches_the_caller(
    provider: str,
    hook: str,
    inject: Callable[[pytest.MonkeyPatch], None],
    server_for: Callable[[str], Any],
    telemetry: Telemetry,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = server_for("openai" if provider == "recorder" else provider)
    exercise = EXERCISE[provider]
    plain = exercise(server)
    assert all(s.kind == "ok" for s in plain), plain
    inject(monkeypatch)
    caplog.set_level(logging.DEBUG, logger="genai_observe")
    counter = count_spans(telemetry)
    with instrumented(telemetry, *INSTRUMENTATIONS.get(provider, ("openai",))):
        for _ in range(2):
            assert exercise(server) == plain  # the normal result, every time
        telemetry.metric_reader.get_metrics_data()  # a collection records the queued points
    ours = [r for r in caplog.records if r.name.startswith("genai_observe")]
    failures = [r for r in ours if "internal error" in r.getMessage()]
    assert failures, "the injected failure was not reported"
    assert all(r.levelno == logging.DEBUG for r in ours)
    assert any("injected failure" in str(r.exc_info[1]) for r in failures if r.exc_info)
    places = [r.getMessage() for r in failures]
    assert len(places) == len(set(places))  # each place reported once, not once per call
    assert counter.open() == []  # whatever was started also ended
    assert counter.ended_twice() == []
