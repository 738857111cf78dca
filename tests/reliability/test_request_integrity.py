"""The request a provider receives is byte for byte the one it receives without genai-observe.

The SDKs accept any iterable where their types say ``Iterable[...]`` (a generator of messages,
``iter(tools)``, an assistant message's ``tool_calls`` as a generator) and turn it into a list when
they serialise the request. Our request readers run before that, so one that iterated such an
argument would leave the SDK an exhausted iterator: the server would receive empty lists. Each case
passes one-shot iterables for one list-typed parameter of a provider's API, through the real SDK
against its local server (tests/rig), once uninstrumented and once instrumented (content capture on,
and off), and compares the raw request bodies the server received and what the caller saw. Where
the SDK itself rejects a generator (a ``List``/``Sequence`` parameter, botocore's validation), the
caller must see the same error.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import Telemetry

from ._providers import (
    ANTHROPIC_MODEL,
    BEDROCK_MODEL,
    INSTRUMENTATIONS,
    OLLAMA_MODEL,
    SERVERS,
    TLS,
    anthropic_client,
    bedrock_client,
    count_spans,
    instrumented,
    llm_spans,
    ollama_client,
    openai_client,
)

Call = Callable[[Any], Any]


def gen(*values: Any) -> Iterator[Any]:
    """A one-shot iterable of ``values``: a generator, as callers build them."""
    return (v for v in values)


USER = {"role": "user", "content": "hello"}
FUNCTION = {"name": "lookup", "description": "looks up", "parameters": {"type": "object", "properties": {}}}
CHAT_TOOL = {"type": "function", "function": FUNCTION}
TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}}


def _chat_history() -> list[Any]:
    """A conversation whose nested lists are one-shot: content parts and the assistant's tool calls."""
    return [
        {"role": "system", "content": gen({"type": "text", "text": "be brief"})},
        {
            "role": "user",
            "content": gen({"type": "text", "text": "hello"}, {"type": "text", "text": "again"}),
        },
        {"role": "assistant", "content": None, "tool_calls": gen(TOOL_CALL)},
        {"role": "tool", "tool_call_id": "call_1", "content": gen({"type": "text", "text": "42"})},
    ]


# --- openai ----------------------------------------------------------------------------------------


def _openai_stream(client: Any, **kwargs: Any) -> Any:
    return [c.model_dump() for c in client.chat.completions.create(model="m", stream=True, **kwargs)]


async def _openai_async(server: Any) -> Any:
    async with openai_client(server, is_async=True) as client:
        await client.chat.completions.create(
            model="m", messages=gen(*_chat_history()), tools=iter([CHAT_TOOL])
        )


def _openai_helper_stream(client: Any) -> Any:
    with client.chat.completions.stream(model="m", messages=gen(USER), tools=iter([CHAT_TOOL])) as stream:
        return stream.get_final_completion().model_dump()


OPENAI: dict[str, Call] = {
    "chat-messages": lambda c: c.chat.completions.create(model="m", messages=gen(USER)),
    "chat-nested": lambda c: c.chat.completions.create(model="m", messages=_chat_history()),
    "chat-all": lambda c: c.chat.completions.create(
        model="m", messages=gen(*_chat_history()), tools=iter([CHAT_TOOL])
    ),
    "chat-tools": lambda c: c.chat.completions.create(model="m", messages=[USER], tools=iter([CHAT_TOOL])),
    "chat-functions": lambda c: c.chat.completions.create(
        model="m", messages=[USER], functions=iter([FUNCTION])
    ),
    "chat-stop": lambda c: c.chat.completions.create(model="m", messages=[USER], stop=gen("x", "y")),
    "chat-stream": lambda c: _openai_stream(c, messages=gen(*_chat_history()), tools=iter([CHAT_TOOL])),
    "chat-parse": lambda c: c.chat.completions.parse(model="m", messages=gen(*_chat_history())),
    "chat-stream-helper": _openai_helper_stream,
    "completions-prompt": lambda c: c.completions.create(model="m", prompt=gen("a", "b")),
    "completions-token-ids": lambda c: c.completions.create(model="m", prompt=gen(1, 2, 3)),
    "completions-token-lists": lambda c: c.completions.create(model="m", prompt=[gen(1, 2), gen(3)]),
    "embeddings-input": lambda c: c.embeddings.create(model="e", input=gen("a", "b")),
    "embeddings-token-lists": lambda c: c.embeddings.create(model="e", input=gen([1, 2], gen(3, 4))),
    "responses-tools": lambda c: c.responses.create(
        model="m", input="hi", tools=iter([{"type": "function", **FUNCTION}])
    ),
    "responses-input": lambda c: c.responses.create(model="m", input=gen(USER)),
    "responses-content": lambda c: c.responses.create(
        model="m",
        input=[
            {"role": "user", "content": gen({"type": "input_text", "text": "hi"})},
            {
                "type": "function_call_output",
                "call_id": "call_1",
                "output": gen({"type": "input_text", "text": "4"}),
            },
        ],
    ),
}

# --- anthropic -------------------------------------------------------------------------------------

ANTHROPIC_TOOL = {"name": "lookup", "description": "looks up", "input_schema": {"type": "object"}}


def _anthropic_history() -> list[Any]:
    return [
        {"role": "user", "content": gen({"type": "text", "text": "hello"})},
        {
            "role": "assistant",
            "content": gen({"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}),
        },
        {
            "role": "user",
            "content": gen(
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": gen({"type": "text", "text": "42"}),
                }
            ),
        },
    ]


def _anthropic(**kwargs: Any) -> dict[str, Any]:
    return {"model": ANTHROPIC_MODEL, "max_tokens": 20, **kwargs}


def _anthropic_stream(client: Any) -> Any:
    events = client.messages.create(**_anthropic(messages=gen(*_anthropic_history()), stream=True))
    return [e.type for e in events]


def _anthropic_helper(client: Any) -> Any:
    with client.messages.stream(
        **_anthropic(messages=gen(*_anthropic_history()), tools=iter([ANTHROPIC_TOOL]))
    ) as s:
        return s.get_final_message().model_dump()


async def _anthropic_async(server: Any) -> Any:
    async with anthropic_client(server, is_async=True) as client:
        await client.messages.create(
            **_anthropic(messages=gen(*_anthropic_history()), tools=iter([ANTHROPIC_TOOL]))
        )


ANTHROPIC: dict[str, Call] = {
    "messages": lambda c: c.messages.create(**_anthropic(messages=gen(USER))),
    "nested": lambda c: c.messages.create(**_anthropic(messages=_anthropic_history())),
    "system": lambda c: c.messages.create(
        **_anthropic(messages=[USER], system=gen({"type": "text", "text": "x"}))
    ),
    "tools": lambda c: c.messages.create(**_anthropic(messages=[USER], tools=iter([ANTHROPIC_TOOL]))),
    "stop-sequences": lambda c: c.messages.create(**_anthropic(messages=[USER], stop_sequences=gen("x"))),
    "stream": _anthropic_stream,
    "stream-helper": _anthropic_helper,
}

# --- ollama ----------------------------------------------------------------------------------------

OLLAMA_TOOL = {"type": "function", "function": FUNCTION}


def _ollama_history() -> list[Any]:
    return [
        {"role": "user", "content": "look", "images": gen("aGVsbG8=")},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "lookup", "arguments": {}}}],
        },
        {"role": "tool", "content": "42", "tool_name": "lookup"},
    ]


def _ollama_stream(client: Any) -> Any:
    return [dict(c) for c in client.chat(OLLAMA_MODEL, messages=gen(*_ollama_history()), stream=True)]


async def _ollama_async(server: Any) -> Any:
    client = ollama_client(server, is_async=True)
    await client.chat(OLLAMA_MODEL, messages=gen(*_ollama_history()), tools=iter([OLLAMA_TOOL]))


OLLAMA: dict[str, Call] = {
    "chat-messages": lambda c: c.chat(OLLAMA_MODEL, messages=gen(USER)),
    "chat-nested": lambda c: c.chat(OLLAMA_MODEL, messages=_ollama_history()),
    "chat-tools": lambda c: c.chat(OLLAMA_MODEL, messages=[USER], tools=iter([OLLAMA_TOOL])),
    "chat-tool-calls": lambda c: c.chat(
        OLLAMA_MODEL, messages=[{"role": "assistant", "content": "", "tool_calls": gen(TOOL_CALL)}]
    ),
    "chat-stop": lambda c: c.chat(OLLAMA_MODEL, messages=[USER], options={"stop": gen("x")}),
    "chat-stream": _ollama_stream,
    "generate-images": lambda c: c.generate(OLLAMA_MODEL, "look", images=gen("aGVsbG8=")),
    "embed-input": lambda c: c.embed(OLLAMA_MODEL, input=gen("a", "b")),
}

# --- bedrock (botocore validates list parameters: a generator is refused either way) ----------------

CONVERSE_USER = {"role": "user", "content": [{"text": "hello"}]}
TOOL_SPEC = {"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}

BEDROCK: dict[str, Call] = {
    "converse-messages": lambda c: c.converse(modelId=BEDROCK_MODEL, messages=gen(CONVERSE_USER)),
    "converse-content": lambda c: c.converse(
        modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": gen({"text": "hello"})}]
    ),
    "converse-system": lambda c: c.converse(
        modelId=BEDROCK_MODEL, messages=[CONVERSE_USER], system=gen({"text": "x"})
    ),
    "converse-tools": lambda c: c.converse(
        modelId=BEDROCK_MODEL, messages=[CONVERSE_USER], toolConfig={"tools": gen(TOOL_SPEC)}
    ),
    "converse-stop": lambda c: c.converse(
        modelId=BEDROCK_MODEL, messages=[CONVERSE_USER], inferenceConfig={"stopSequences": gen("x")}
    ),
    "converse-stream": lambda c: list(
        c.converse_stream(modelId=BEDROCK_MODEL, messages=gen(CONVERSE_USER))["stream"]
    ),
}

# --- langchain (ChatOpenAI over the openai SDK) ----------------------------------------------------


def _chat_openai(server: Any) -> Any:
    import openai
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model="gpt-rel",
        base_url=server.base_url,
        api_key="test",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(verify=TLS),
    )


LANGCHAIN: dict[str, Call] = {
    "bind-tools": lambda chat: chat.bind_tools(iter([CHAT_TOOL])).invoke([("user", "hello")]),
    "input": lambda chat: chat.invoke(gen(("user", "hello"))),
    "stream": lambda chat: [
        c.content for c in chat.bind_tools(iter([CHAT_TOOL])).stream([("user", "hello")])
    ],
    "stop": lambda chat: chat.invoke([("user", "hello")], stop=gen("x")),
}

CLIENTS: dict[str, Callable[[Any], Any]] = {
    "openai": openai_client,
    "anthropic": anthropic_client,
    "ollama": ollama_client,
    "bedrock": bedrock_client,
    "langchain": _chat_openai,
}
SYNC_CASES = {
    "openai": OPENAI,
    "anthropic": ANTHROPIC,
    "ollama": OLLAMA,
    "bedrock": BEDROCK,
    "langchain": LANGCHAIN,
}
ASYNC_CASES: dict[str, Callable[[Any], Any]] = {
    "openai": _openai_async,
    "anthropic": _anthropic_async,
    "ollama": _ollama_async,
}

CASES = [
    pytest.param(provider, name, False, id=f"{provider}-{name}")
    for provider, calls in SYNC_CASES.items()
    for name in calls
] + [pytest.param(provider, "chat-async", True, id=f"{provider}-chat-async") for provider in ASYNC_CASES]

_ADDRESS = re.compile(r"0x[0-9a-f]+")


def _bodies(server: Any) -> list[bytes]:
    """The raw bodies the server received, oldest first (Bedrock's record calls it ``body``)."""
    return [r.raw_body if hasattr(r, "raw_body") else r.body for r in server.requests]


def _exchange(provider: str, name: str, is_async: bool, server: Any) -> tuple[Any, list[bytes]]:
    """What the caller saw (``ok``, or the exception's type and message) and what the server got."""
    server.reset()
    try:
        if is_async:
            asyncio.run(ASYNC_CASES[provider](server))
        else:
            SYNC_CASES[provider][name](CLIENTS[provider](server))
        seen: Any = "ok"
    except Exception as exc:  # a generator the SDK refuses: the same refusal with us
        seen = (type(exc), _ADDRESS.sub("0x#", str(exc)))
    return seen, _bodies(server)


@pytest.fixture
def server_for(request: pytest.FixtureRequest) -> Callable[[str], Any]:
    def get(provider: str) -> Any:
        if provider == "bedrock":
            request.getfixturevalue("aws_env")
        return request.getfixturevalue(SERVERS[provider])

    return get


@pytest.mark.parametrize(("provider", "name", "is_async"), CASES)
def test_one_shot_iterables_reach_the_provider_unchanged(
    provider: str, name: str, is_async: bool, server_for: Callable[[str], Any], telemetry: Telemetry
) -> None:
    server = server_for(provider)
    plain = _exchange(provider, name, is_async, server)
    counter = count_spans(telemetry)
    for capture in ("SPAN_AND_EVENT", False):
        with instrumented(telemetry, *INSTRUMENTATIONS[provider], capture=capture):
            seen = _exchange(provider, name, is_async, server)
        assert seen == plain  # same bytes sent, same result or error
    assert counter.open() == []
    if plain[0] == "ok":
        assert len(llm_spans(telemetry)) >= 2  # the instrumented calls were recorded
