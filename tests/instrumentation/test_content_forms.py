"""Both content forms at a real OTLP receiver, through init() and each provider's real SDK.

The dynatrace profile writes prompt and completion content in the v1.41.0 JSON form
(``gen_ai.input.messages``, ``gen_ai.output.messages``, ``gen_ai.system_instructions``: what the
AI Observability app reads first) and in the flat OpenLLMetry form it falls back to
(``gen_ai.prompt.N.*``, ``gen_ai.completion.N.*``); ``legacy_content=False`` drops the flat one.
Both go through one content policy: same capture switch, masking and caps. Azure's completion
filter verdict is also written without a choice index (AR-016).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest

import genai_observe
from genai_observe._core import semconv as sc
from tests.rig.anthropic_server import AnthropicMockServer
from tests.rig.bedrock_server import BedrockMockServer
from tests.rig.fixtures_bedrock import aws_env, bedrock_server, bedrock_server_session  # noqa: F401
from tests.rig.ollama_server import OllamaMockServer
from tests.rig.openai_server import OpenAIMockServer
from tests.rig.otlp_receiver import OTLPReceiver, SpanView

SYSTEM = "Be brief."
SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"  # masked in every form
PROMPT = f"Say hi. My key is {SECRET}"
HAS_RESPONSES = hasattr(openai.OpenAI, "responses")


class Servers:
    """The rig servers a case may talk to (pytest fixtures, resolved lazily)."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    @property
    def openai(self) -> OpenAIMockServer:
        return self._request.getfixturevalue("openai_server")  # type: ignore[no-any-return]

    @property
    def anthropic(self) -> AnthropicMockServer:
        return self._request.getfixturevalue("anthropic_server")  # type: ignore[no-any-return]

    @property
    def bedrock(self) -> BedrockMockServer:
        self._request.getfixturevalue("aws_env")
        return self._request.getfixturevalue("bedrock_server")  # type: ignore[no-any-return]

    @property
    def ollama(self) -> OllamaMockServer:
        return self._request.getfixturevalue("ollama_server")  # type: ignore[no-any-return]


CHAT = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]


def openai_chat(s: Servers) -> None:
    s.openai.client().chat.completions.create(model="gpt-4o-mini", messages=CHAT)


def openai_chat_async(s: Servers) -> None:
    async def run() -> None:
        await s.openai.async_client().chat.completions.create(model="gpt-4o-mini", messages=CHAT)

    asyncio.run(run())


def openai_chat_stream(s: Servers) -> None:
    for _ in s.openai.client().chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True):
        pass


def openai_responses(s: Servers) -> None:
    s.openai.client().responses.create(model="gpt-4.1", instructions=SYSTEM, input=PROMPT)


def anthropic_messages(s: Servers) -> None:
    messages = [{"role": "user", "content": PROMPT}]
    s.anthropic.client().messages.create(model="claude-test", max_tokens=50, system=SYSTEM, messages=messages)


def anthropic_stream(s: Servers) -> None:
    messages = [{"role": "user", "content": PROMPT}]
    stream = s.anthropic.client().messages.create(
        model="claude-test", max_tokens=50, system=SYSTEM, messages=messages, stream=True
    )
    for _ in stream:
        pass


CONVERSE: dict[str, Any] = {
    "modelId": "amazon.nova-lite-v1:0",
    "system": [{"text": SYSTEM}],
    "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
}


def bedrock_converse(s: Servers) -> None:
    s.bedrock.client().converse(**CONVERSE)


def bedrock_converse_stream(s: Servers) -> None:
    for _ in s.bedrock.client().converse_stream(**CONVERSE)["stream"]:
        pass


def ollama_chat(s: Servers) -> None:
    s.ollama.client().chat(model="llama3.2", messages=CHAT)


def ollama_chat_async_stream(s: Servers) -> None:
    async def run() -> None:
        async for _ in await s.ollama.async_client().chat(model="llama3.2", messages=CHAT, stream=True):
            pass

    asyncio.run(run())


# name -> (the call, whether the SDK takes the system prompt apart from the messages)
CASES: dict[str, tuple[Callable[[Servers], None], bool]] = {
    "openai-chat": (openai_chat, False),
    "openai-chat-async": (openai_chat_async, False),
    "openai-chat-stream": (openai_chat_stream, False),
    "anthropic": (anthropic_messages, True),
    "anthropic-stream": (anthropic_stream, True),
    "bedrock-converse": (bedrock_converse, True),
    "bedrock-converse-stream": (bedrock_converse_stream, True),
    "ollama": (ollama_chat, False),
    "ollama-async-stream": (ollama_chat_async_stream, False),
}
if HAS_RESPONSES:
    CASES["openai-responses"] = (openai_responses, True)


def one_span(request: pytest.FixtureRequest, receiver: OTLPReceiver, case: str, **options: Any) -> SpanView:
    """``case`` run once under ``init(**options)``; the LLM span the receiver decoded."""
    handle = genai_observe.init(endpoint=receiver.url, metric_export_interval_ms=60_000, **options)
    CASES[case][0](Servers(request))
    handle.shutdown()
    spans = [s for s in receiver.spans() if sc.GEN_AI_OPERATION_NAME in s.attributes]
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def text_parts(message: dict[str, Any]) -> str:
    return "".join(p["content"] for p in message["parts"] if p["type"] == "text")


def flat_keys(attributes: dict[str, Any]) -> list[str]:
    return sorted(k for k in attributes if sc.FLAT_CONTENT_KEY.match(k))


@pytest.mark.parametrize("case", sorted(CASES))
def test_both_forms_in_the_dynatrace_profile(
    request: pytest.FixtureRequest, otlp_receiver: OTLPReceiver, case: str
) -> None:
    a = one_span(request, otlp_receiver, case).attributes
    separate_system = CASES[case][1]
    blob = json.dumps(a)
    assert SECRET not in blob  # masked in both forms
    # The JSON form, as the latest profile writes it.
    inputs = json.loads(a[sc.GEN_AI_INPUT_MESSAGES])
    assert text_parts(inputs[-1]) == PROMPT.replace(SECRET, "[REDACTED]")
    (output,) = json.loads(a[sc.GEN_AI_OUTPUT_MESSAGES])
    assert output["role"] == "assistant" and text_parts(output)
    # The app's system-prompt column (AR-043) reads gen_ai.system_instructions only: filled
    # whether the SDK takes the system prompt apart or in the chat history.
    assert json.loads(a[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": SYSTEM}]
    if separate_system:
        assert [m["role"] for m in inputs] == ["user"]  # the prompts table shows the user's message
    else:
        assert [m["role"] for m in inputs] == ["system", "user"]  # and it stays in the history
    # The flat form, as before: message 0 is the system prompt (the app's fallback shows that).
    assert (a["gen_ai.prompt.0.role"], a["gen_ai.prompt.0.content"]) == ("system", SYSTEM)
    assert a["gen_ai.prompt.1.content"] == PROMPT.replace(SECRET, "[REDACTED]")
    assert a["gen_ai.completion.0.content"] == text_parts(output)
    assert a[sc.GEN_AI_SYSTEM]  # still the dynatrace profile


@pytest.mark.parametrize("case", sorted(CASES))
def test_legacy_content_off_keeps_the_json_form_only(
    request: pytest.FixtureRequest, otlp_receiver: OTLPReceiver, case: str
) -> None:
    a = one_span(request, otlp_receiver, case, legacy_content=False).attributes
    assert flat_keys(a) == []
    assert text_parts(json.loads(a[sc.GEN_AI_INPUT_MESSAGES])[-1]) == PROMPT.replace(SECRET, "[REDACTED]")
    assert json.loads(a[sc.GEN_AI_OUTPUT_MESSAGES])
    # Only the content form goes: the dynatrace profile's other names stay.
    assert a[sc.GEN_AI_SYSTEM] and a[sc.LLM_REQUEST_TYPE] == "chat"
    assert a.get(sc.GEN_AI_USAGE_PROMPT_TOKENS) == a.get(sc.GEN_AI_USAGE_INPUT_TOKENS)


def test_legacy_content_off_from_the_environment(
    request: pytest.FixtureRequest, otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENAI_OBSERVE_LEGACY_CONTENT", "false")
    a = one_span(request, otlp_receiver, "openai-chat").attributes
    assert flat_keys(a) == [] and sc.GEN_AI_INPUT_MESSAGES in a


@pytest.mark.parametrize("case", sorted(CASES))
def test_capture_off_writes_neither_form(
    request: pytest.FixtureRequest, otlp_receiver: OTLPReceiver, case: str
) -> None:
    a = one_span(request, otlp_receiver, case, capture_content=False).attributes
    for key in (
        sc.GEN_AI_INPUT_MESSAGES,
        sc.GEN_AI_OUTPUT_MESSAGES,
        sc.GEN_AI_SYSTEM_INSTRUCTIONS,
        sc.GEN_AI_TOOL_DEFINITIONS,
    ):
        assert key not in a, key
    assert flat_keys(a) == []
    assert "Say hi" not in json.dumps(a) and SYSTEM not in json.dumps(a)


def test_later_init_switches_the_flat_form_off_in_place(
    openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    """A content setting: the app's init() after the zero-code one applies it without re-patching."""
    from genai_observe._pipeline import bootstrap

    bootstrap.init_automatic(endpoint=otlp_receiver.url, metric_export_interval_ms=60_000)
    genai_observe.init(endpoint=otlp_receiver.url, metric_export_interval_ms=60_000, legacy_content=False)
    openai_server.client().chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    genai_observe.shutdown()
    (span,) = otlp_receiver.spans()
    assert flat_keys(span.attributes) == [] and sc.GEN_AI_INPUT_MESSAGES in span.attributes


def test_tool_definitions_in_the_json_form_too(
    openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    """With the flat form dropped, the tool schema (llm.request.functions.N.*) is not lost."""
    tool = {
        "type": "function",
        "function": {"name": "lookup", "description": "Look up", "parameters": {"type": "object"}},
    }
    handle = genai_observe.init(endpoint=otlp_receiver.url, metric_export_interval_ms=60_000)
    openai_server.client().chat.completions.create(model="m", messages=CHAT, tools=[tool])
    handle.shutdown()
    (span,) = otlp_receiver.spans()
    a = span.attributes
    (definition,) = json.loads(a[sc.GEN_AI_TOOL_DEFINITIONS])
    assert definition["name"] == "lookup" and definition["parameters"] == {"type": "object"}
    assert a["llm.request.functions.0.name"] == "lookup"


# --- Azure: the completion verdict without an index (AR-016) -------------------------------------

FILTERED = {
    "hate": {"filtered": True, "severity": "high"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "async-stream"])
@pytest.mark.parametrize("legacy_content", [True, False])
def test_azure_completion_filter_verdict_unindexed(
    openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver, mode: str, legacy_content: bool
) -> None:
    openai_server.script(finish_reason="content_filter", content_filter_results=FILTERED)
    handle = genai_observe.init(
        endpoint=otlp_receiver.url, metric_export_interval_ms=60_000, legacy_content=legacy_content
    )
    kwargs: dict[str, Any] = {"model": "my-deployment", "messages": CHAT, "stream": "stream" in mode}

    async def run_async() -> None:
        result = await openai_server.async_azure_client().chat.completions.create(**kwargs)
        if kwargs["stream"]:
            async for _ in result:
                pass

    if mode.startswith("async"):
        asyncio.run(run_async())
    else:
        result = openai_server.azure_client().chat.completions.create(**kwargs)
        if kwargs["stream"]:
            for _ in result:
                pass
    handle.shutdown()
    (span,) = otlp_receiver.spans()
    a = span.attributes
    assert a[sc.GEN_AI_PROVIDER_NAME] == sc.PROVIDER_AZURE_OPENAI
    # The same verdict under both names; metadata, not content: kept without the flat form.
    assert json.loads(a["gen_ai.completion.content_filter_results"]) == FILTERED
    assert a["gen_ai.completion.content_filter_results"] == a["gen_ai.completion.0.content_filter_results"]
    assert json.loads(a["gen_ai.prompt.prompt_filter_results"])[0]["prompt_index"] == 0
    assert ("gen_ai.prompt.0.content" in a) is legacy_content


def test_no_verdict_without_azure(openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver) -> None:
    handle = genai_observe.init(endpoint=otlp_receiver.url, metric_export_interval_ms=60_000)
    openai_server.client().chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    handle.shutdown()
    (span,) = otlp_receiver.spans()
    assert not [k for k in span.attributes if k.endswith("content_filter_results")]
