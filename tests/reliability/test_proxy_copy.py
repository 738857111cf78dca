"""``copy.copy``, ``copy.deepcopy`` and ``pickle`` see through every object we hand back in place of
the SDK's: stream proxies (openai ``Stream``/``AsyncStream``, anthropic streams and
``messages.stream()`` managers, Bedrock ``EventStream``, Ollama generators), the raw responses of
``with_raw_response``/``with_streaming_response``, and SDK objects holding one of them (openai's
``.stream()`` helper streams).

Each object is made twice with the real SDK against its local server (tests/rig), uninstrumented
and instrumented, and each operation's outcome is compared: the type of what it returned (for
pickle: of what ``pickle.loads`` gives back), or the type and message of what it raised. The
instrumented object must still be readable to its end afterwards, and its span must end.
"""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Telemetry
from tests.rig.bedrock_server import Reply as BedrockReply

from ._providers import (
    ANTHROPIC_MODEL,
    BEDROCK_CLAUDE,
    BEDROCK_MODEL,
    INSTRUMENTATIONS,
    OLLAMA_MODEL,
    SERVERS,
    anthropic_client,
    bedrock_client,
    count_spans,
    instrumented,
    llm_spans,
    ollama_client,
    openai_client,
)

MESSAGES = [{"role": "user", "content": "hello"}]
ANTHROPIC_ARGS: dict[str, Any] = {"model": ANTHROPIC_MODEL, "max_tokens": 20, "messages": MESSAGES}
_ADDRESS = re.compile(r"0x[0-9a-f]+")


def _pickled(obj: Any) -> Any:
    return pickle.loads(pickle.dumps(obj))


OPERATIONS: tuple[Callable[[Any], Any], ...] = (copy.copy, copy.deepcopy, _pickled)


def outcomes(obj: Any) -> list[tuple[str, Any, str]]:
    """Per operation: ``("ok", type of the result, "")`` or ``("raise", exception type, message)``."""
    out: list[tuple[str, Any, str]] = []
    for operation in OPERATIONS:
        try:
            result = operation(obj)
        except Exception as exc:
            out.append(("raise", type(exc), _ADDRESS.sub("0x#", str(exc))))
        else:
            out.append(("ok", result.__class__, ""))  # a proxy's __class__ is the SDK object's
    return out


# --- the objects: (server, record) -> None; ``record(obj)`` is called where the caller holds obj ---

Record = Callable[[Any], None]


def _drain(stream: Any) -> None:
    for _ in stream:
        pass


def _openai_stream(server: Any, record: Record) -> None:
    stream = openai_client(server).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    record(stream)
    _drain(stream)


def _openai_raw_stream(server: Any, record: Record) -> None:
    client = openai_client(server)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, stream=True)
    record(raw)
    stream = raw.parse()
    record(stream)
    _drain(stream)


def _openai_streaming_response(server: Any, record: Record) -> None:
    client = openai_client(server)
    with client.chat.completions.with_streaming_response.create(model="m", messages=MESSAGES) as response:
        record(response)
        response.parse()


def _openai_helper(server: Any, record: Record) -> None:
    manager = openai_client(server).chat.completions.stream(model="m", messages=MESSAGES)
    record(manager)
    with manager as stream:
        record(stream)
        _drain(stream)


def _openai_responses(server: Any, record: Record) -> None:
    stream = openai_client(server).responses.create(model="m", input="hello", stream=True)
    record(stream)
    _drain(stream)


async def _openai_async(server: Any, record: Record) -> None:
    async with openai_client(server, is_async=True) as client:
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        record(stream)
        async for _ in stream:
            pass
        manager = client.chat.completions.stream(model="m", messages=MESSAGES)
        async with manager as helper:
            record(helper)
            async for _ in helper:
                pass


def _anthropic_stream(server: Any, record: Record) -> None:
    stream = anthropic_client(server).messages.create(**ANTHROPIC_ARGS, stream=True)
    record(stream)
    _drain(stream)


def _anthropic_raw(server: Any, record: Record) -> None:
    raw = anthropic_client(server).messages.with_raw_response.create(**ANTHROPIC_ARGS, stream=True)
    record(raw)
    _drain(raw.parse())


def _anthropic_manager(server: Any, record: Record) -> None:
    manager = anthropic_client(server).messages.stream(**ANTHROPIC_ARGS)
    record(manager)
    with manager as stream:
        record(stream)
        stream.until_done()


async def _anthropic_async(server: Any, record: Record) -> None:
    async with anthropic_client(server, is_async=True) as client:
        stream = await client.messages.create(**ANTHROPIC_ARGS, stream=True)
        record(stream)
        async for _ in stream:
            pass
        manager = client.messages.stream(**ANTHROPIC_ARGS)
        record(manager)
        async with manager as helper:
            record(helper)
            await helper.until_done()


def _converse_stream(server: Any, record: Record) -> None:
    server.script(BedrockReply(text="hi there"))
    client = bedrock_client(server)
    result = client.converse_stream(
        modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )
    record(result["stream"])
    _drain(result["stream"])


def _invoke_stream(server: Any, record: Record) -> None:
    server.script(BedrockReply(text="hi there"))
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 20, "messages": MESSAGES})
    result = bedrock_client(server).invoke_model_with_response_stream(modelId=BEDROCK_CLAUDE, body=body)
    record(result["body"])
    _drain(result["body"])


def _invoke_body(server: Any, record: Record) -> None:
    server.script(BedrockReply(text="hi there"))
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 20, "messages": MESSAGES})
    result = bedrock_client(server).invoke_model(modelId=BEDROCK_CLAUDE, body=body)
    record(result["body"])  # botocore's StreamingBody (a proxy over it when instrumented)
    result["body"].read()


def _ollama(server: Any, record: Record) -> None:
    stream = ollama_client(server).chat(model=OLLAMA_MODEL, messages=MESSAGES, stream=True)
    record(stream)
    _drain(stream)


async def _ollama_async(server: Any, record: Record) -> None:
    stream = await ollama_client(server, is_async=True).chat(
        model=OLLAMA_MODEL, messages=MESSAGES, stream=True
    )
    record(stream)
    async for _ in stream:
        pass


# The SDK methods we wrap (wrapt function wrappers): the SDKs keep bound ones in their state.


def _openai_methods(server: Any, record: Record) -> None:
    from openai.resources.chat.completions import Completions

    record(openai_client(server).chat.completions.create)
    record(Completions.create)


def _anthropic_methods(server: Any, record: Record) -> None:
    record(anthropic_client(server).messages.create)


def _ollama_methods(server: Any, record: Record) -> None:
    import ollama

    record(ollama_client(server).chat)
    record(ollama.chat)  # the default client's bound method, wrapped in the module


def _langchain_methods(server: Any, record: Record) -> None:
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.runnables import config

    record(BaseChatModel.generate)
    record(config.set_config_context)


@dataclass(frozen=True)
class Case:
    name: str
    provider: str
    run: Callable[[Any, Record], Any]
    is_async: bool = False


CASES = [
    Case("openai-stream", "openai", _openai_stream),
    Case("openai-raw-stream", "openai", _openai_raw_stream),
    Case("openai-streaming-response", "openai", _openai_streaming_response),
    Case("openai-stream-helper", "openai", _openai_helper),
    Case("openai-responses-stream", "openai", _openai_responses),
    Case("openai-async", "openai", _openai_async, is_async=True),
    Case("anthropic-stream", "anthropic", _anthropic_stream),
    Case("anthropic-raw-stream", "anthropic", _anthropic_raw),
    Case("anthropic-stream-manager", "anthropic", _anthropic_manager),
    Case("anthropic-async", "anthropic", _anthropic_async, is_async=True),
    Case("bedrock-converse-stream", "bedrock", _converse_stream),
    Case("bedrock-invoke-stream", "bedrock", _invoke_stream),
    Case("bedrock-invoke-body", "bedrock", _invoke_body),
    Case("ollama-stream", "ollama", _ollama),
    Case("ollama-async", "ollama", _ollama_async, is_async=True),
    Case("openai-methods", "openai", _openai_methods),
    Case("anthropic-methods", "anthropic", _anthropic_methods),
    Case("ollama-methods", "ollama", _ollama_methods),
    Case("langchain-methods", "langchain", _langchain_methods),
]


def _seen(case: Case, server: Any) -> list[tuple[str, list[tuple[str, Any, str]]]]:
    """Per object the case hands the caller: its type name and the operations' outcomes."""
    seen: list[tuple[str, list[tuple[str, Any, str]]]] = []

    def record(obj: Any) -> None:
        seen.append((obj.__class__.__name__, outcomes(obj)))  # a proxy's __class__ is the SDK's

    if case.is_async:
        asyncio.run(case.run(server, record))
    else:
        case.run(server, record)
    return seen


@pytest.fixture
def server_for(request: pytest.FixtureRequest) -> Callable[[str], Any]:
    def get(provider: str) -> Any:
        if provider == "bedrock":
            request.getfixturevalue("aws_env")
        return request.getfixturevalue(SERVERS[provider])

    return get


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_copy_deepcopy_and_pickle_behave_as_without_instrumentation(
    case: Case, server_for: Callable[[str], Any], telemetry: Telemetry
) -> None:
    server = server_for(case.provider)
    plain = _seen(case, server)
    counter = count_spans(telemetry)
    with instrumented(telemetry, *INSTRUMENTATIONS[case.provider]):
        seen = _seen(case, server)
    assert seen == plain
    assert counter.open() == []  # still read to the end after the copies: the span ended
    if not case.name.endswith("-methods"):
        assert llm_spans(telemetry)
