"""The real ``openai`` SDK over real HTTP against the local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pydantic
import pytest
from opentelemetry.trace import StatusCode

import genai_observe
from genai_observe import CaptureMode, Profile
from genai_observe._core import semconv as sc
from genai_observe.instrumentation.openai import OpenAIInstrumentor
from genai_observe.instrumentation.openai import _adapter as ad
from tests.conftest import Telemetry, attrs
from tests.rig.openai_server import DEFAULT_USAGE, OpenAIMockServer, ToolCall
from tests.rig.otlp_receiver import OTLPReceiver

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}]
SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "dynatrace-genai-attributes.md"

# Features the oldest supported SDK (1.40) does not have; their tests skip there.
HAS_RESPONSES = hasattr(openai.OpenAI, "responses")
HAS_PARSE = hasattr(openai.resources.chat.completions.Completions, "parse")
HAS_RESPONSES_PARSE = HAS_RESPONSES and hasattr(openai.OpenAI(api_key="k").responses, "parse")
needs_responses = pytest.mark.skipif(not HAS_RESPONSES, reason="this openai has no Responses API")
needs_parse = pytest.mark.skipif(not HAS_PARSE, reason="this openai has no chat.completions.parse")
needs_responses_parse = pytest.mark.skipif(
    not HAS_RESPONSES_PARSE, reason="this openai has no responses.parse"
)


def chat_stream_helper(client: Any) -> Any:
    """``chat.completions.stream``; openai < 1.92 has it under ``beta`` only."""
    chat = client.chat.completions
    return chat.stream if hasattr(chat, "stream") else client.beta.chat.completions.stream


@pytest.fixture
def instrument(telemetry: Telemetry) -> Iterator[Callable[..., OpenAIInstrumentor]]:
    """Instrument with given options; undone after the test."""
    with telemetry.instrumenting(OpenAIInstrumentor()) as apply:
        yield apply


def test_chat_dynatrace_profile(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = openai_server.client()
    result = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        temperature=0.3,
        max_tokens=50,
        top_p=0.8,
        seed=7,
        stop=["END"],
    )
    assert isinstance(result, openai.types.chat.ChatCompletion)
    a = attrs(telemetry)
    port = openai_server.port
    assert telemetry.span().name == "chat gpt-4o-mini"
    expected = {
        "gen_ai.system": "openai",
        "llm.request.type": "chat",
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": result.model,
        "gen_ai.response.id": result.id,
        "gen_ai.request.temperature": 0.3,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.top_p": 0.8,
        "gen_ai.request.seed": 7,
        "server.address": "127.0.0.1",
        "server.port": port,
        "gen_ai.openai.api_base": f"http://127.0.0.1:{port}/v1",
        "openai.api.type": "chat_completions",
        "gen_ai.usage.prompt_tokens": DEFAULT_USAGE["prompt_tokens"],
        "gen_ai.usage.completion_tokens": DEFAULT_USAGE["completion_tokens"],
        "gen_ai.usage.input_tokens": DEFAULT_USAGE["prompt_tokens"],
        "gen_ai.usage.cache_read.input_tokens": DEFAULT_USAGE["cached_tokens"],
        "gen_ai.usage.reasoning.output_tokens": DEFAULT_USAGE["reasoning_tokens"],
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "Be brief.",
        "gen_ai.prompt.1.content": "Say hi",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": result.choices[0].message.content,
        "gen_ai.completion.0.finish_reason": "stop",
    }
    for key, value in expected.items():
        assert a.get(key) == value, key
    assert tuple(a["gen_ai.request.stop_sequences"]) == ("END",)
    assert result.system_fingerprint == "fp_mock"  # the rig always sends one
    assert a["gen_ai.openai.system_fingerprint"] == result.system_fingerprint
    assert a["openai.response.system_fingerprint"] == result.system_fingerprint
    assert a["openai.response.service_tier"] == result.service_tier == "default"
    assert "openai.request.service_tier" not in a  # not asked for
    metrics = telemetry.metrics()  # DELTA: one collection holds this call's points
    tokens = metrics[sc.METRIC_TOKEN_USAGE]
    assert {p.attributes["gen_ai.token.type"]: p.sum for p in tokens} == {
        "input": DEFAULT_USAGE["prompt_tokens"],
        "output": DEFAULT_USAGE["completion_tokens"],
        "cache_read": DEFAULT_USAGE["cached_tokens"],
    }
    assert metrics[sc.METRIC_GENERATION_CHOICES][0].value == 1


def test_chat_latest_profile(openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any) -> None:
    instrument(profile=Profile.LATEST)
    client = openai_server.client()
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = attrs(telemetry)
    assert "gen_ai.system" not in a and "gen_ai.prompt.0.content" not in a
    assert "gen_ai.system_instructions" not in a  # chat system messages stay in the input messages
    inputs = json.loads(a["gen_ai.input.messages"])
    assert inputs[1] == {"role": "user", "parts": [{"type": "text", "content": "Say hi"}]}
    outputs = json.loads(a["gen_ai.output.messages"])
    assert outputs[0]["parts"][0]["content"] == result.choices[0].message.content
    assert a["openai.api.type"] == "chat_completions"


def test_stream_without_usage_is_not_changed(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = openai_server.client()
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "stream_options" not in openai_server.last_request.json  # never injected by default
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.content"] == text
    assert a["gen_ai.request.stream"] is True and a["llm.is_streaming"] is True
    assert a[sc.STREAM_END_REASON] == "exhausted"
    assert "gen_ai.usage.input_tokens" not in a
    metrics = telemetry.metrics()
    assert sc.METRIC_TOKEN_USAGE not in metrics  # no usage reported: no token points
    assert metrics[sc.METRIC_TIME_TO_FIRST_CHUNK][0].count == 1
    assert metrics[sc.METRIC_TIME_PER_OUTPUT_CHUNK][0].count >= 1


def test_stream_with_usage_n2_and_opt_in_injection(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = openai_server.client()
    stream = client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, n=2, stream_options={"include_usage": True}
    )
    texts: dict[int, str] = {}
    for chunk in stream:
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + (c.delta.content or "")
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.content"] == texts[0] and a["gen_ai.completion.1.content"] == texts[1]
    assert a["gen_ai.usage.input_tokens"] == DEFAULT_USAGE["prompt_tokens"]
    assert a["gen_ai.request.choice.count"] == 2
    assert telemetry.metrics()[sc.METRIC_GENERATION_CHOICES][0].value == 2
    telemetry.span_exporter.clear()
    instrument(stream_usage=True)
    list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert openai_server.last_request.json["stream_options"] == {"include_usage": True}
    assert attrs(telemetry)["gen_ai.usage.output_tokens"] == DEFAULT_USAGE["completion_tokens"]


def test_tool_calls_stream_and_not(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = openai_server.client()
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]
    openai_server.script_tool_calls(ToolCall("get_weather", {"city": "Linz"}, id="call_a"))
    result = client.chat.completions.create(model="m", messages=MESSAGES, tools=tools)
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.tool_calls.0.name"] == "get_weather"
    assert json.loads(a["gen_ai.completion.0.tool_calls.0.arguments"]) == {"city": "Linz"}
    assert a["gen_ai.completion.0.tool_calls.0.id"] == result.choices[0].message.tool_calls[0].id
    assert a["gen_ai.completion.0.finish_reason"] == "tool_calls"
    assert a["llm.request.functions.0.name"] == "get_weather"
    telemetry.span_exporter.clear()
    openai_server.script_tool_calls(ToolCall("get_weather", {"city": "Graz", "days": 3}, id="call_b"))
    for _ in client.chat.completions.create(model="m", messages=MESSAGES, tools=tools, stream=True):
        pass
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.tool_calls.0.id"] == "call_b"
    assert json.loads(a["gen_ai.completion.0.tool_calls.0.arguments"]) == {"city": "Graz", "days": 3}


@needs_parse
def test_parse_and_stream_helper(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    class Answer(pydantic.BaseModel):
        text: str

    client = openai_server.client()
    parsed = client.chat.completions.parse(model="m", messages=MESSAGES, response_format=Answer)
    assert isinstance(parsed.choices[0].message.parsed, Answer)
    assert attrs(telemetry)["gen_ai.output.type"] == "json"
    telemetry.span_exporter.clear()
    with client.chat.completions.stream(model="m", messages=MESSAGES) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert attrs(telemetry)["gen_ai.completion.0.content"] == final.choices[0].message.content


def test_raw_and_streaming_response_variants(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = openai_server.client()
    raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert raw.headers is not None
    completion = raw.parse()
    assert attrs(telemetry)["gen_ai.completion.0.content"] == completion.choices[0].message.content
    telemetry.span_exporter.clear()
    with client.chat.completions.with_streaming_response.create(model="m", messages=MESSAGES) as response:
        assert response.http_response.status_code == 200
        body = response.parse()
    assert attrs(telemetry)["gen_ai.response.id"] == body.id
    telemetry.span_exporter.clear()
    with client.chat.completions.with_streaming_response.create(model="m", messages=MESSAGES) as response:
        pass  # never parsed: the span still ends, once
    assert len(telemetry.spans()) == 1
    telemetry.span_exporter.clear()
    raw_stream = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in raw_stream.parse() if c.choices)
    assert attrs(telemetry)["gen_ai.completion.0.content"] == text


def test_legacy_completions(openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any) -> None:
    client = openai_server.client()
    result = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon", max_tokens=5)
    a = attrs(telemetry)
    assert a["llm.request.type"] == "completion" and a["gen_ai.operation.name"] == "text_completion"
    assert a["gen_ai.prompt.0.content"] == "Once upon"
    assert a["gen_ai.completion.0.content"] == result.choices[0].text
    telemetry.span_exporter.clear()
    text = "".join(
        c.choices[0].text for c in client.completions.create(model="x", prompt="p", stream=True) if c.choices
    )
    assert attrs(telemetry)["gen_ai.completion.0.content"] == text


def test_embeddings(openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any) -> None:
    client = openai_server.client()
    result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert isinstance(result.data[0].embedding, list)  # the SDK's base64 decoding is untouched
    a = attrs(telemetry)
    assert a["llm.request.type"] == "embedding" and a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.embeddings.dimension.count"] == len(result.data[0].embedding)
    assert a["gen_ai.prompt.1.content"] == "b"
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    size = telemetry.metrics()[sc.METRIC_EMBEDDINGS_VECTOR_SIZE]
    assert size[0].value == len(result.data[0].embedding)
    telemetry.span_exporter.clear()
    client.embeddings.create(model="e", input="x", encoding_format="base64")
    assert attrs(telemetry)["gen_ai.embeddings.dimension.count"] == len(result.data[0].embedding)


@needs_responses
def test_responses_api(openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any) -> None:
    client = openai_server.client()
    response = client.responses.create(
        model="gpt-4.1", input="Tell me a joke", instructions="Be funny", max_output_tokens=60
    )
    a = attrs(telemetry)
    assert a["openai.api.type"] == "responses"
    assert a["gen_ai.prompt.0.role"] == "system" and a["gen_ai.prompt.0.content"] == "Be funny"
    assert a["gen_ai.prompt.1.content"] == "Tell me a joke"
    assert a["gen_ai.completion.0.content"] == response.output_text
    assert a["gen_ai.request.max_tokens"] == 60
    assert a["gen_ai.response.id"] == response.id
    assert a["gen_ai.usage.input_tokens"] == response.usage.input_tokens
    telemetry.span_exporter.clear()
    events = list(client.responses.create(model="gpt-4.1", input="Stream it", stream=True))
    final = events[-1].response
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.content"] == final.output_text
    assert a["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    telemetry.span_exporter.clear()
    with client.responses.stream(model="gpt-4.1", input="helper") as stream:
        for _ in stream:
            pass
    assert attrs(telemetry)["gen_ai.response.model"] == "gpt-4.1"


def test_azure(openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any) -> None:
    client = openai_server.azure_client()
    result = client.chat.completions.create(model="my-deployment", messages=MESSAGES)
    a = attrs(telemetry)
    assert a["gen_ai.provider.name"] == "azure.ai.openai" and a["gen_ai.system"] == "openai"
    assert a["gen_ai.openai.api_version"] == "2024-06-01"
    assert a["gen_ai.request.model"] == "my-deployment" and a["gen_ai.response.model"] == result.model
    assert "api-version" not in a["gen_ai.openai.api_base"]
    assert json.loads(a["gen_ai.prompt.prompt_filter_results"])[0]["prompt_index"] == 0
    assert json.loads(a["gen_ai.completion.0.content_filter_results"])["hate"]["filtered"] is False
    assert sc.AZURE_DEPLOYMENT not in a  # model= named the deployment; nothing else to record
    assert openai_server.last_request.deployment == "my-deployment"
    telemetry.span_exporter.clear()
    for _ in client.chat.completions.create(model="my-deployment", messages=MESSAGES, stream=True):
        pass
    a = attrs(telemetry)
    assert "gen_ai.prompt.prompt_filter_results" in a and a["gen_ai.response.model"]


def test_errors_reach_caller_unchanged(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = openai_server.client()
    openai_server.script_error(429, "Rate limit reached", retry_after=1)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 429
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "RateLimitError"
    duration = telemetry.metrics()[sc.METRIC_OPERATION_DURATION]
    assert duration[0].attributes["error.type"] == "RateLimitError"
    telemetry.span_exporter.clear()
    openai_server.script_broken_stream(after=2)
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    # openai 3.x raises APIConnectionError, older releases the transport's own error.
    with pytest.raises(Exception) as broken:
        for _ in stream:
            pass
    del stream
    gc.collect()
    span = telemetry.span()
    assert (span.attributes or {})["error.type"] == type(broken.value).__name__
    telemetry.span_exporter.clear()
    timeout_client = openai_server.client(timeout=0.2)
    openai_server.script(delay=1.0)
    with pytest.raises(openai.APITimeoutError):
        timeout_client.chat.completions.create(model="m", messages=MESSAGES)
    assert (telemetry.span().attributes or {})["error.type"] == "APITimeoutError"


@needs_responses
def test_async_variants(openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any) -> None:
    async def main() -> None:
        client = openai_server.async_client()
        result = await client.chat.completions.create(model="m", messages=MESSAGES)
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        assert isinstance(stream, openai.AsyncStream)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await client.embeddings.create(model="e", input="x")
        response = await client.responses.create(model="r", input="hello")
        async with client.chat.completions.with_streaming_response.create(
            model="m", messages=MESSAGES
        ) as raw:
            await raw.parse()
        spans = telemetry.spans()
        assert [s.name for s in spans] == ["chat m", "chat m", "embeddings e", "chat r", "chat m"]
        assert spans[0].attributes["gen_ai.completion.0.content"] == result.choices[0].message.content
        assert spans[1].attributes["gen_ai.completion.0.content"] == text
        assert spans[3].attributes["gen_ai.completion.0.content"] == response.output_text

    asyncio.run(main())


def test_caller_sees_identical_results(openai_server: OpenAIMockServer, telemetry: Telemetry) -> None:
    client = openai_server.client()

    def calls() -> list[Any]:
        out: list[Any] = []
        out.append(
            client.chat.completions.create(model="m", messages=MESSAGES).model_dump(exclude={"id", "created"})
        )
        out.append(
            [
                c.model_dump(exclude={"id", "created"})
                for c in client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            ]
        )
        out.append(client.embeddings.create(model="e", input="x").model_dump())
        openai_server.script_error(400, "bad request")
        try:
            client.chat.completions.create(model="m", messages=MESSAGES)
        except openai.BadRequestError as exc:
            out.append((type(exc), exc.status_code, exc.body))
        return out

    plain = calls()
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs())
    try:
        instrumented = calls()
    finally:
        instrumentor.uninstrument()
    assert plain == instrumented
    assert len(telemetry.spans()) == 4


def test_content_off_keeps_text_out(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    instrument(capture=CaptureMode.NO_CONTENT)
    client = openai_server.client()
    list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    client.chat.completions.create(model="m", messages=MESSAGES)
    for span in telemetry.spans():
        blob = json.dumps({k: str(v) for k, v in (span.attributes or {}).items()})
        assert "Say hi" not in blob and "Be brief" not in blob and "content" not in blob


@pytest.mark.parametrize(
    ("base_url", "client_name", "provider", "port"),
    [
        ("https://api.openai.com/v1/", "OpenAI", "openai", 443),
        ("https://myres.openai.azure.com/openai/", "AzureOpenAI", "azure.ai.openai", 443),
        ("https://integrate.api.nvidia.com/v1/", "OpenAI", "nvidia_nim", 443),
        ("http://nim.internal:8000/v1/", "OpenAI", "nvidia_nim", 8000),
        ("http://localhost:11434/v1/", "OpenAI", "ollama", 11434),
        ("http://vllm:8000/v1/", "OpenAI", "openai", 8000),
    ],
)
def test_provider_detection(
    monkeypatch: pytest.MonkeyPatch, base_url: str, client_name: str, provider: str, port: int
) -> None:
    monkeypatch.setenv(ad.ENV_NIM_HOSTS, "nim.internal:8000")
    client = type(client_name, (), {"base_url": base_url})()
    info = ad.client_info(client, ad.nim_hosts())
    assert (info.provider, info.port) == (provider, port)
    assert info.api_base == base_url.rstrip("/")


def test_clients_created_before_instrumenting_are_covered(
    openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    client = openai_server.client()  # before
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs())
    try:
        client.chat.completions.create(model="m", messages=MESSAGES)
    finally:
        instrumentor.uninstrument()
    client.chat.completions.create(model="m", messages=MESSAGES)  # after uninstrument: no span
    assert len(telemetry.spans()) == 1


def _run_python(script: str) -> str:
    """Runs ``script`` in a fresh interpreter (what it imports must not leak into this one)."""
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_after_init_through_otlp(openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver) -> None:
    script = textwrap.dedent(f"""
        import sys
        import genai_observe
        genai_observe.init(endpoint={otlp_receiver.url!r}, service_name="late-import")
        assert "openai" not in sys.modules  # init() did not import the SDK
        import openai
        client = openai.OpenAI(base_url={openai_server.base_url!r}, api_key="k", max_retries=0)
        client.chat.completions.create(model="late", messages=[{{"role": "user", "content": "hi"}}])
        genai_observe.shutdown()
    """)
    _run_python(script)
    (span,) = otlp_receiver.spans()
    assert span.name == "chat late" and span.resource_attributes["service.name"] == "late-import"
    durations = otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)
    assert durations and durations[0].temporality == 1


def test_init_imports_none_of_the_sdks_resource_modules(
    openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    """init() imports none of openai's modules (the Responses API's alone takes ~200 ms): each
    resource and helper module is patched when the app imports it, and chat is still traced."""
    script = textwrap.dedent(f"""
        import sys
        import openai
        imported_by_openai = set(sys.modules)  # openai 1.x imports its resources itself; 3.x lazily
        import genai_observe
        genai_observe.init(endpoint={otlp_receiver.url!r}, service_name="lazy-modules")
        print(",".join(sorted(m for m in set(sys.modules) - imported_by_openai
                              if m.startswith("openai."))) or "none")
        client = openai.OpenAI(base_url={openai_server.base_url!r}, api_key="k", max_retries=0)
        client.chat.completions.create(model="lazy", messages=[{{"role": "user", "content": "hi"}}])
        genai_observe.shutdown()
    """)
    assert _run_python(script).splitlines() == ["none"]
    (span,) = otlp_receiver.spans()
    assert span.name == "chat lazy"


def test_init_instruments_openai(openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver) -> None:
    handle = genai_observe.init(endpoint=otlp_receiver.url, profile="latest")
    assert "openai" in handle.instrumented
    openai_server.client().chat.completions.create(model="m", messages=MESSAGES)
    handle.shutdown()
    (span,) = otlp_receiver.spans()
    assert "gen_ai.input.messages" in span.attributes and "gen_ai.system" not in span.attributes


def test_stream_chunks_with_null_choice_index() -> None:
    """Seen in recorded traffic: a choice whose index is null must count as choice 0."""
    from types import SimpleNamespace as NS

    from genai_observe._core.record import LLMCall

    for acc in (ad.ChatStream(True), ad.CompletionStream(True)):
        for text in ("a", "b"):
            delta = NS(content=text, role=None, tool_calls=None, function_call=None)
            acc.on_chunk(
                NS(
                    id="x",
                    model="m",
                    usage=None,
                    choices=[NS(index=None, delta=delta, text=text, finish_reason=None)],
                )
            )
        call = LLMCall()
        acc.fill(call)
        assert [c.content for c in call.choices] == ["ab"]


def test_stream_reader_looks_only_for_what_the_request_allows() -> None:
    """Per chunk, the chat stream reader skips Azure's filter verdicts on OpenAI's own host and
    reads its usage from the last chunk only (issue 19); any other host still gets both read in
    every chunk, and tool calls are read everywhere (the SDK's own chunk models)."""
    from openai.types.chat import ChatCompletionChunk

    from genai_observe._core.record import LLMCall

    chunk = ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "content": "hi",
                        "tool_calls": [
                            {"index": 0, "id": "t1", "function": {"name": "f", "arguments": "{}"}}
                        ],
                    },
                    "finish_reason": "stop",
                    "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}},
                }
            ],
        }
    )

    usage_chunk = ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
        }
    )

    def read(**fields: Any) -> LLMCall:
        call = LLMCall(provider="openai", **fields)
        acc = ad.ChatStream(True, call)
        acc.on_chunk(chunk)
        acc.on_chunk(usage_chunk)
        acc.fill(call)
        assert call.usage is not None and (call.usage.input_tokens, call.usage.output_tokens) == (7, 2)
        return call

    own = read(server_address="api.openai.com")
    assert own.choices[0].content_filter_results is None  # (the first chunk's own fields are read once)
    assert [t.name for t in own.choices[0].tool_calls or []] == ["f"] and own.choices[0].content == "hi"
    gateway = read(server_address="llm-gateway.example.com")
    assert gateway.prompt_filter_results == [{"prompt_index": 0, "content_filter_results": {}}]
    assert gateway.choices[0].content_filter_results == {"hate": {"filtered": False, "severity": "safe"}}
    assert [(t.id, t.name, t.arguments) for t in gateway.choices[0].tool_calls or []] == [("t1", "f", "{}")]


def test_stream_reader_keeps_each_choices_filter_verdicts() -> None:
    """n > 1 on an Azure-like host: a choice with empty verdicts (Azure sends ``{}``) does not stop
    the next choice's from being read (one chunk carrying both choices)."""
    from openai.types.chat import ChatCompletionChunk

    from genai_observe._core.record import LLMCall

    verdict = {"hate": {"filtered": True, "severity": "high"}}
    chunk = ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [
                {"index": 0, "delta": {"content": "a"}, "finish_reason": None, "content_filter_results": {}},
                {
                    "index": 1,
                    "delta": {"content": "b"},
                    "finish_reason": "content_filter",
                    "content_filter_results": verdict,
                },
            ],
        }
    )
    call = LLMCall(provider="azure.ai.openai", server_address="example.openai.azure.com")
    acc = ad.ChatStream(True, call)
    acc.on_chunk(chunk)
    acc.fill(call)
    assert [(c.content, c.content_filter_results) for c in call.choices] == [("a", None), ("b", verdict)]


def test_stream_reader_reads_legacy_function_calls_when_functions_were_declared() -> None:
    from openai.types.chat import ChatCompletionChunk

    from genai_observe._core.record import LLMCall

    def chunk(fn: dict[str, str]) -> Any:
        return ChatCompletionChunk.model_validate(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": {"function_call": fn}, "finish_reason": None}],
            }
        )

    call = LLMCall(provider="openai", server_address="api.openai.com", tool_definitions=[{"name": "f"}])
    acc = ad.ChatStream(True, call)
    acc.on_chunk(chunk({"name": "f", "arguments": ""}))
    acc.on_chunk(chunk({"arguments": '{"a": 1}'}))
    acc.fill(call)
    assert [(t.name, t.arguments) for t in call.choices[0].tool_calls or []] == [("f", '{"a": 1}')]


def test_nested_instrumented_calls_make_one_span(telemetry: Telemetry, instrument: Any) -> None:
    """openai 1.x `beta...parse` calls `create`: one LLM call, one span, tokens counted once."""
    from genai_observe._core.record import LLMCall
    from genai_observe.instrumentation._kit.calls import run_sync

    recorder = OpenAIInstrumentor().recorder
    inner = lambda: run_sync(recorder, LLMCall, lambda: "inner", (), {}, lambda inv, r: (inv.finish(), r)[1])  # noqa: E731
    assert run_sync(recorder, LLMCall, inner, (), {}, lambda inv, r: (inv.finish(), r)[1]) == "inner"
    assert len(telemetry.spans()) == 1


def test_standalone_options_accept_strings(telemetry: Telemetry, instrument: Any) -> None:
    instrumentor = instrument(capture="NO_CONTENT", profile="latest")
    assert instrumentor.recorder.capture is CaptureMode.NO_CONTENT
    assert instrumentor.recorder.profile is Profile.LATEST


@pytest.mark.skipif(
    not hasattr(openai.resources.chat.completions.Completions, "stream"),
    reason="this openai has no .stream()",
)
def test_stream_usage_opt_in_reaches_the_stream_helper(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    instrument(stream_usage=True)
    with openai_server.client().chat.completions.stream(model="m", messages=MESSAGES) as stream:
        for _ in stream:
            pass
    assert openai_server.last_request.json["stream_options"] == {"include_usage": True}
    assert attrs(telemetry)["gen_ai.usage.output_tokens"] == DEFAULT_USAGE["completion_tokens"]


def test_audio_and_image_bytes_never_exported(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    audio = "UklGR" + "A" * 4000
    content = [
        {"type": "text", "text": "Transcribe"},
        {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "B" * 4000}},
    ]
    openai_server.client().chat.completions.create(model="m", messages=[{"role": "user", "content": content}])
    blob = json.dumps({k: str(v) for k, v in attrs(telemetry).items()})
    assert "AAAAAAAAAAAA" not in blob and "BBBBBBBBBBBB" not in blob
    assert "Transcribe" in blob


# --- the .stream() helpers end where the caller leaves them ----------------------------------------

HELPERS = ["chat", pytest.param("responses", marks=needs_responses)]


def _open_helper(client: Any, kind: str) -> Any:
    """The SDK's stream manager (``with``/``async with`` sends the request)."""
    if kind == "chat":
        return chat_stream_helper(client)(model="m", messages=MESSAGES)
    return client.responses.stream(model="m", input="hello")


def _ended(telemetry: Telemetry) -> str:
    span = telemetry.span()
    telemetry.span_exporter.clear()
    return str((span.attributes or {})[sc.STREAM_END_REASON])


@pytest.mark.parametrize("kind", HELPERS)
def test_stream_helper_ends_when_its_block_is_left(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any, kind: str
) -> None:
    client = openai_server.client()
    with _open_helper(client, kind) as stream:
        next(iter(stream))  # one event, then leave the block
        assert telemetry.spans() == []  # open while the caller may still read
    # Ended at exit, not when garbage-collected: `stream` is still referenced here.
    span = telemetry.span()
    assert stream is not None and (span.attributes or {})["gen_ai.response.model"] == "m"
    assert _ended(telemetry) == "closed"
    with _open_helper(client, kind):
        pass  # never read
    assert _ended(telemetry) == "closed"
    with _open_helper(client, kind) as stream:
        stream.close()
        assert _ended(telemetry) == "closed"  # at close(), before the block ends
    assert telemetry.spans() == []  # and only once
    with pytest.raises(KeyError), _open_helper(client, kind) as stream:
        next(iter(stream))
        raise KeyError("the caller's own error")
    assert _ended(telemetry) == "closed"
    with _open_helper(client, kind) as stream:
        for _ in stream:
            pass
    assert _ended(telemetry) == "exhausted"  # a stream read to the end stays exhausted


@pytest.mark.parametrize("kind", HELPERS)
def test_async_stream_helper_ends_when_its_block_is_left(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any, kind: str
) -> None:
    async def main() -> None:
        client = openai_server.async_client()
        async with _open_helper(client, kind) as stream:
            async for _ in stream:
                break
            assert telemetry.spans() == []
        assert stream is not None and _ended(telemetry) == "closed"
        async with _open_helper(client, kind):
            pass
        assert _ended(telemetry) == "closed"
        async with _open_helper(client, kind) as stream:
            await stream.close()
            assert _ended(telemetry) == "closed"
        assert telemetry.spans() == []
        async with _open_helper(client, kind) as stream:
            async for _ in stream:
                pass
        assert _ended(telemetry) == "exhausted"

    asyncio.run(main())


def test_stream_helper_patches_are_removed_on_uninstrument(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    from openai.lib.streaming.chat import _completions as helpers

    assert hasattr(helpers.ChatCompletionStream.close, "__wrapped__")
    instrument().uninstrument()
    assert not hasattr(helpers.ChatCompletionStream.close, "__wrapped__")
    assert not hasattr(helpers.ChatCompletionStreamManager.__exit__, "__wrapped__")
    with chat_stream_helper(openai_server.client())(model="m", messages=MESSAGES) as stream:
        next(iter(stream))
    assert telemetry.spans() == []


# --- Azure: a deployment set on the client --------------------------------------------------------


def test_azure_client_level_deployment(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = openai_server.azure_client(azure_deployment="dep1")
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert openai_server.last_request.deployment == "dep1"  # the URL picks the deployment, not model=
    span = telemetry.span()
    a = dict(span.attributes or {})
    assert span.name == "chat gpt-4o" and a["gen_ai.request.model"] == "gpt-4o"
    assert a[sc.AZURE_DEPLOYMENT] == "dep1"
    assert a["gen_ai.openai.api_base"] == f"{openai_server.azure_endpoint}/openai/deployments/dep1"
    duration = telemetry.metrics()[sc.METRIC_OPERATION_DURATION][0]
    assert duration.attributes["gen_ai.request.model"] == "gpt-4o"
    telemetry.span_exporter.clear()
    client.chat.completions.create(model="", messages=MESSAGES)  # no model: the deployment stands in
    span = telemetry.span()
    assert span.name == "chat dep1" and (span.attributes or {})["gen_ai.request.model"] == "dep1"
    telemetry.span_exporter.clear()
    client.embeddings.create(model="text-embedding-3-small", input="x")
    a = attrs(telemetry)
    assert a["gen_ai.request.model"] == "text-embedding-3-small" and a[sc.AZURE_DEPLOYMENT] == "dep1"
    telemetry.span_exporter.clear()
    instrument(profile=Profile.LATEST)

    async def main() -> None:
        aclient = openai_server.async_azure_client(azure_deployment="dep2")
        stream = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        async for _ in stream:
            pass

    asyncio.run(main())
    assert openai_server.last_request.deployment == "dep2"
    a = attrs(telemetry)
    assert a[sc.AZURE_DEPLOYMENT] == "dep2" and a["gen_ai.request.model"] == "gpt-4o"  # both profiles


@pytest.mark.parametrize(
    ("base_url", "deployment"),
    [
        ("https://res.openai.azure.com/openai/deployments/dep1/", "dep1"),
        ("https://gw.example/azure/openai/deployments/my%20dep", "my dep"),
        ("https://res.openai.azure.com/openai/", None),
        ("https://res.openai.azure.com/openai/v1/", None),
        ("https://api.openai.com/v1/", None),
    ],
)
def test_deployment_read_from_base_url(base_url: str, deployment: str | None) -> None:
    client = type("AzureOpenAI", (), {"base_url": base_url})()
    info = ad.client_info(client, ad.nim_hosts())
    assert info.deployment == deployment
    chat = ad.chat_request(info, {"model": "gpt-4o", "messages": []})
    assert chat.request_attributes.get(sc.AZURE_DEPLOYMENT) == deployment
    # The SDK sends Responses API calls to /openai/responses, without the deployment.
    responses = ad.responses_request(info, {"model": "gpt-4o", "input": "x"})
    assert sc.AZURE_DEPLOYMENT not in responses.request_attributes


# --- calls and variants not covered above ---------------------------------------------------------


class Answer(pydantic.BaseModel):
    text: str


@needs_responses_parse
def test_responses_parse_sync_and_async(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = openai_server.client()
    parsed = client.responses.parse(model="gpt-4.1", input="Answer in JSON", text_format=Answer)
    assert isinstance(parsed.output_parsed, Answer)
    a = attrs(telemetry)
    assert telemetry.span().name == "chat gpt-4.1"
    assert a["openai.api.type"] == "responses" and a["gen_ai.output.type"] == "json"
    assert a["gen_ai.response.id"] == parsed.id
    assert a["gen_ai.completion.0.content"] == parsed.output_text
    assert a["gen_ai.usage.output_tokens"] == parsed.usage.output_tokens
    telemetry.span_exporter.clear()

    async def main() -> Any:
        return await openai_server.async_client().responses.parse(
            model="gpt-4.1", input="Answer in JSON", text_format=Answer
        )

    parsed = asyncio.run(main())
    assert isinstance(parsed.output_parsed, Answer)
    a = attrs(telemetry)
    assert a["gen_ai.output.type"] == "json" and a["gen_ai.response.id"] == parsed.id
    assert a["gen_ai.completion.0.content"] == parsed.output_text


def test_async_chat_parse(openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any) -> None:
    async def main() -> Any:
        client = openai_server.async_client()
        chat = client.chat.completions if HAS_PARSE else client.beta.chat.completions
        return await chat.parse(model="m", messages=MESSAGES, response_format=Answer)

    parsed = asyncio.run(main())
    assert isinstance(parsed.choices[0].message.parsed, Answer)
    a = attrs(telemetry)  # one span, also where parse() calls create() (openai 1.x beta)
    assert a["gen_ai.output.type"] == "json" and a["gen_ai.response.id"] == parsed.id
    assert a["gen_ai.completion.0.content"] == parsed.choices[0].message.content
    tokens = telemetry.metrics()[sc.METRIC_TOKEN_USAGE]
    assert {p.attributes["gen_ai.token.type"]: p.sum for p in tokens}["input"] == DEFAULT_USAGE[
        "prompt_tokens"
    ]


def test_async_legacy_completions(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    async def main() -> tuple[Any, str]:
        client = openai_server.async_client()
        result = await client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="Once upon", max_tokens=5
        )
        stream = await client.completions.create(
            model="x", prompt="p", stream=True, stream_options={"include_usage": True}
        )
        assert isinstance(stream, openai.AsyncStream)
        text = "".join([c.choices[0].text async for c in stream if c.choices])
        return result, text

    result, text = asyncio.run(main())
    plain, streamed = telemetry.spans()
    assert plain.name == "text_completion gpt-3.5-turbo-instruct"
    a = dict(plain.attributes or {})
    assert a["gen_ai.operation.name"] == "text_completion" and a["llm.request.type"] == "completion"
    assert a["gen_ai.prompt.0.content"] == "Once upon" and a["gen_ai.request.max_tokens"] == 5
    assert a["gen_ai.completion.0.content"] == result.choices[0].text
    assert a["gen_ai.response.id"] == result.id
    assert a["openai.response.system_fingerprint"] == result.system_fingerprint
    a = dict(streamed.attributes or {})
    assert a["gen_ai.completion.0.content"] == text and a[sc.STREAM_END_REASON] == "exhausted"
    assert a["gen_ai.usage.output_tokens"] == DEFAULT_USAGE["completion_tokens"]
    assert a["gen_ai.completion.0.finish_reason"] == "stop"


def test_async_raw_response_variants(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    async def main() -> None:
        client = openai_server.async_client()
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        assert raw.headers.get("x-request-id")
        completion = raw.parse()
        assert attrs(telemetry)["gen_ai.completion.0.content"] == completion.choices[0].message.content
        telemetry.span_exporter.clear()
        raw = await client.chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, stream=True
        )
        stream = raw.parse()
        assert isinstance(stream, openai.AsyncStream)
        assert telemetry.spans() == []  # open until the stream ends
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        a = attrs(telemetry)
        assert a["gen_ai.completion.0.content"] == text and a[sc.STREAM_END_REASON] == "exhausted"
        telemetry.span_exporter.clear()
        async with client.chat.completions.with_streaming_response.create(
            model="m", messages=MESSAGES, stream=True
        ) as response:
            stream = await response.parse()
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert attrs(telemetry)["gen_ai.completion.0.content"] == text
        telemetry.span_exporter.clear()
        async with client.chat.completions.with_streaming_response.create(model="m", messages=MESSAGES):
            pass  # never parsed
        assert len(telemetry.spans()) == 1

    asyncio.run(main())


@needs_responses
def test_responses_raw_response_variants(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = openai_server.client()
    raw = client.responses.with_raw_response.create(model="gpt-4.1", input="hi")
    response = raw.parse()
    a = attrs(telemetry)
    assert a["openai.api.type"] == "responses" and a["gen_ai.response.id"] == response.id
    assert a["gen_ai.completion.0.content"] == response.output_text
    telemetry.span_exporter.clear()
    raw = client.responses.with_raw_response.create(model="gpt-4.1", input="hi", stream=True)
    events = list(raw.parse())
    a = attrs(telemetry)
    assert a["gen_ai.completion.0.content"] == events[-1].response.output_text
    assert a[sc.STREAM_END_REASON] == "exhausted"
    telemetry.span_exporter.clear()
    with client.responses.with_streaming_response.create(model="gpt-4.1", input="hi") as streaming:
        body = streaming.parse()
    assert attrs(telemetry)["gen_ai.response.id"] == body.id

    async def main() -> Any:
        raw = await openai_server.async_client().responses.with_raw_response.create(
            model="gpt-4.1", input="hi"
        )
        return raw.parse()

    telemetry.span_exporter.clear()
    response = asyncio.run(main())
    assert attrs(telemetry)["gen_ai.response.id"] == response.id


def test_openai_attributes_in_latest_profile(
    openai_server: OpenAIMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    instrument(profile=Profile.LATEST)
    client = openai_server.client()
    openai_server.script(endpoint="chat.completions", system_fingerprint="fp_test", times=2)
    result = client.chat.completions.create(model="m", messages=MESSAGES, service_tier="flex")
    assert (result.service_tier, result.system_fingerprint) == ("flex", "fp_test")
    a = attrs(telemetry)
    assert a["openai.request.service_tier"] == "flex"
    assert a["openai.response.service_tier"] == "flex"
    assert a["openai.response.system_fingerprint"] == "fp_test"
    assert "gen_ai.openai.system_fingerprint" not in a  # the dynatrace name only in that profile
    telemetry.span_exporter.clear()
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    a = attrs(telemetry)
    assert a["openai.response.service_tier"] == chunks[0].service_tier == "default"
    assert a["openai.response.system_fingerprint"] == "fp_test"
    assert "openai.request.service_tier" not in a
    if HAS_RESPONSES:
        telemetry.span_exporter.clear()
        response = client.responses.create(model="r", input="x", service_tier="priority")
        a = attrs(telemetry)
        assert a["openai.request.service_tier"] == "priority"
        assert a["openai.response.service_tier"] == response.service_tier == "priority"


# --- every attribute the Dynatrace tables list for OpenAI / Azure and NIM --------------------------


def _spec_attributes(column: int) -> list[str]:
    names = []
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0].startswith("`") and cells[column] == "x":
            names.append(cells[0].strip("`"))
    return names


# What the spec lists (the test below checks these lists against the spec file itself).
OPENAI_SPEC_ATTRIBUTES = [
    "gen_ai.system",
    "llm.request.type",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.request.max_tokens",
    "gen_ai.request.temperature",
    "gen_ai.request.top_p",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.prompt.N.role",
    "gen_ai.prompt.N.content",
    "gen_ai.prompt.prompt_filter_results",
    "gen_ai.completion.N.role",
    "gen_ai.completion.N.content",
    "gen_ai.completion.N.finish_reason",
    "gen_ai.completion.N.content_filter_results",
    "gen_ai.openai.api_base",
    "gen_ai.openai.api_version",
    "gen_ai.openai.system_fingerprint",
]
NIM_SPEC_ATTRIBUTES = list(OPENAI_SPEC_ATTRIBUTES)  # the NIM page lists the same attributes
# Written only when the service sends them (Azure does; OpenAI never does).
AZURE_ONLY = {
    "gen_ai.prompt.prompt_filter_results",
    "gen_ai.completion.N.content_filter_results",
    "gen_ai.openai.api_version",
}
SPEC_METRICS = [sc.METRIC_OPERATION_DURATION, sc.METRIC_TOKEN_USAGE, sc.METRIC_GENERATION_CHOICES]


@pytest.mark.parametrize("operation", ["chat", "chat-stream", "completion", "completion-stream"])
@pytest.mark.parametrize("service", ["openai", "azure", "nim"])
def test_every_spec_attribute_for_openai_and_nim(
    openai_server: OpenAIMockServer,
    telemetry: Telemetry,
    instrument: Any,
    monkeypatch: pytest.MonkeyPatch,
    service: str,
    operation: str,
) -> None:
    if SPEC.is_file():
        assert _spec_attributes(3) == OPENAI_SPEC_ATTRIBUTES
        assert _spec_attributes(4) == NIM_SPEC_ATTRIBUTES
    if service == "azure":
        client: Any = openai_server.azure_client()
    elif service == "nim":
        monkeypatch.setenv(ad.ENV_NIM_HOSTS, f"127.0.0.1:{openai_server.port}")
        instrument()  # the NIM host list is read when instrumenting
        # NIM sends no filter verdicts and takes no api-version; a gateway in front of it may.
        openai_server.script(filters=True)
        client = openai_server.client(default_query={"api-version": "2024-06-01"})
    else:
        client = openai_server.client()
    stream = operation.endswith("-stream")
    kwargs: dict[str, Any] = {"model": "gpt-4o-mini", "max_tokens": 50, "temperature": 0.2, "top_p": 0.9}
    if stream:
        kwargs.update(stream=True, stream_options={"include_usage": True})
    if operation.startswith("chat"):
        result = client.chat.completions.create(messages=MESSAGES, **kwargs)
    else:
        result = client.completions.create(prompt="Say hi", **kwargs)
    if stream:
        for _ in result:
            pass
    a = attrs(telemetry)
    expected = NIM_SPEC_ATTRIBUTES if service == "nim" else OPENAI_SPEC_ATTRIBUTES
    for name in expected:
        key = name.replace(".N.", ".0.")
        if service == "openai" and name in AZURE_ONLY:
            assert key not in a, name  # never made up
        else:
            assert key in a, name
    assert a["gen_ai.system"] == ("nvidia_nim" if service == "nim" else "openai")
    assert a["llm.request.type"] == ("chat" if operation.startswith("chat") else "completion")
    metrics = telemetry.metrics()
    for metric in SPEC_METRICS:
        assert metrics.get(metric), metric


def test_completion_stream_reads_azure_filters_from_their_own_chunk() -> None:
    """Azure may open a stream with a chunk that carries only prompt_filter_results."""
    from types import SimpleNamespace as NS

    from genai_observe._core.record import LLMCall

    prompt_filters = [{"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False}}}]
    verdict = {"hate": {"filtered": False, "severity": "safe"}}
    acc = ad.CompletionStream(True)
    acc.on_chunk(NS(id="", model="", usage=None, choices=[], prompt_filter_results=prompt_filters))
    for text, filters, finish in (("Hi", verdict, None), ("", {}, "stop")):
        choice = NS(index=0, text=text, finish_reason=finish, content_filter_results=filters)
        acc.on_chunk(NS(id="cmpl-1", model="gpt-35-turbo-instruct", usage=None, choices=[choice]))
    call = LLMCall()
    acc.fill(call)
    assert (call.response_id, call.response_model) == ("cmpl-1", "gpt-35-turbo-instruct")
    assert call.prompt_filter_results == prompt_filters
    assert call.choices[0].content_filter_results == verdict  # the last non-empty verdict
    assert (call.choices[0].content, call.choices[0].finish_reason) == ("Hi", "stop")
