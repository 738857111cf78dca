"""The real boto3 ``bedrock-runtime`` client over real HTTP against the local Bedrock server."""

from __future__ import annotations

import base64
import gc
import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.client
import botocore.exceptions
import botocore.response
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from opentelemetry.trace import StatusCode

import genai_observe
from genai_observe import CaptureMode, Profile
from genai_observe._core import semconv as sc
from genai_observe.instrumentation.bedrock import BedrockInstrumentor
from genai_observe.instrumentation.bedrock import _adapter as ad
from tests.conftest import Telemetry, attrs
from tests.rig import fixtures_bedrock
from tests.rig.bedrock_server import (
    DEFAULT_TEXT,
    DEFAULT_USAGE,
    EVENTSTREAM,
    BedrockMockServer,
    Guardrail,
    Reply,
    ToolUse,
    Usage,
    chunk_event,
    decode_messages,
    encode_message,
    exception_event,
    json_event,
)
from tests.rig.otlp_receiver import OTLPReceiver

# The rig's fixtures, made visible to this module.
aws_env = fixtures_bedrock.aws_env
bedrock_server = fixtures_bedrock.bedrock_server
bedrock_server_session = fixtures_bedrock.bedrock_server_session
pytestmark = pytest.mark.usefixtures("aws_env")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOVA = "amazon.nova-lite-v1:0"
USER = [{"role": "user", "content": [{"text": "Say hi"}]}]
WEATHER_TOOL = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
}


@pytest.fixture
def instrument(telemetry: Telemetry) -> Iterator[Callable[..., BedrockInstrumentor]]:
    """Instrument with given options; undone after the test."""
    with telemetry.instrumenting(BedrockInstrumentor()) as apply:
        yield apply


def as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def token_points(telemetry: Telemetry) -> dict[str, float]:
    return {p.attributes[sc.GEN_AI_TOKEN_TYPE]: p.sum for p in telemetry.metrics()[sc.METRIC_TOKEN_USAGE]}


def guardrail_points(telemetry: Telemetry) -> list[tuple[str, str, str, int]]:
    """Activation points as (policy, input/output, guardrail id, count); "" where a dimension is absent."""
    points = telemetry.metrics().get(sc.METRIC_GUARDRAIL_ACTIVATIONS, [])
    return sorted(
        (
            p.attributes.get(sc.GEN_AI_GUARDRAIL_POLICY, ""),
            p.attributes.get(sc.GEN_AI_GUARDRAIL_TYPE, ""),
            p.attributes[sc.GEN_AI_GUARDRAIL_ID],
            p.value,
        )
        for p in points
    )


# --------------------------------------------------------------------------------------------------
# The rig: event-stream framing, checked against botocore's own decoder
# --------------------------------------------------------------------------------------------------


def test_event_stream_framing_is_what_botocore_decodes() -> None:
    messages = [
        json_event("messageStart", {"role": "assistant"}),
        chunk_event({"outputText": "hé", "index": 0}),
        exception_event("modelStreamErrorException", "boom", originalStatusCode=500),
    ]
    data = b"".join(messages)
    buffer = EventStreamBuffer()
    for i in range(0, len(data), 7):  # arbitrary network chunking
        buffer.add_data(data[i : i + 7])
    decoded = list(buffer)
    assert [m.headers for m in decoded] == [h for h, _ in decode_messages(data)]
    assert decoded[0].headers == {
        ":event-type": "messageStart",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    payload = json.loads(decoded[1].payload)
    assert json.loads(base64.b64decode(payload["bytes"])) == {"outputText": "hé", "index": 0}
    assert decoded[2].headers[":message-type"] == "exception"
    corrupted = bytearray(messages[0])
    corrupted[-6] ^= 0xFF  # a payload byte: the message CRC no longer matches
    with pytest.raises(ChecksumMismatch):
        broken = EventStreamBuffer()
        broken.add_data(bytes(corrupted))
        list(broken)
    assert decode_messages(encode_message({}, b"")) == [({}, b"")]


def test_event_stream_framing_matches_recorded_aws_bytes() -> None:
    recorded = Path(__file__).resolve().parents[3] / "shared/recorded/openllmetry/bedrock"
    cassette = recorded / "traces/test_meta/test_meta_converse_stream.yaml"
    if not cassette.is_file():
        pytest.skip("recorded traffic (../shared/recorded) not available")
    from tests.rig.replay import load

    body = load(cassette)[0].body
    assert b"".join(encode_message(h, p) for h, p in decode_messages(body)) == body


# --------------------------------------------------------------------------------------------------
# InvokeModel: every model family's native body
# --------------------------------------------------------------------------------------------------

SYSTEM = "Be brief."
PROMPT = "Say hi"
# family, model id, request body, operation, request attributes, finish reason, has a response id,
# body reports tokens (used when Bedrock's token headers are absent)
FAMILIES: list[tuple[str, str, dict[str, Any], str, dict[str, Any], str, bool, bool]] = [
    (
        "anthropic",
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        {
            "anthropic_version": "bedrock-2023-05-31",
            "system": SYSTEM,
            "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
            "max_tokens": 64,
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "stop_sequences": ["END"],
        },
        "chat",
        {"max_tokens": 64, "temperature": 0.2, "top_p": 0.9, "top_k": 40, "stop_sequences": ("END",)},
        "end_turn",
        True,
        True,
    ),
    (
        "anthropic_text",
        "anthropic.claude-v2:1",
        {
            "prompt": f"\n\nHuman: {PROMPT}\n\nAssistant:",
            "max_tokens_to_sample": 64,
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "stop_sequences": ["END"],
        },
        "text_completion",
        {"max_tokens": 64, "temperature": 0.2, "top_p": 0.9, "top_k": 40, "stop_sequences": ("END",)},
        "stop_sequence",
        False,
        False,
    ),
    (
        "titan",
        "amazon.titan-text-premier-v1:0",
        {
            "inputText": PROMPT,
            "textGenerationConfig": {
                "maxTokenCount": 64,
                "temperature": 0.2,
                "topP": 0.9,
                "stopSequences": ["END"],
            },
        },
        "text_completion",
        {"max_tokens": 64, "temperature": 0.2, "top_p": 0.9, "stop_sequences": ("END",)},
        "FINISH",
        False,
        True,
    ),
    (
        "nova",
        NOVA,
        {
            "schemaVersion": "messages-v1",
            "system": [{"text": SYSTEM}],
            "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
            "inferenceConfig": {
                "max_new_tokens": 64,
                "temperature": 0.2,
                "topP": 0.9,
                "topK": 40,
                "stopSequences": ["END"],
            },
        },
        "chat",
        {"max_tokens": 64, "temperature": 0.2, "top_p": 0.9, "top_k": 40, "stop_sequences": ("END",)},
        "end_turn",
        False,
        True,
    ),
    (
        "meta",
        "meta.llama3-1-8b-instruct-v1:0",
        {"prompt": PROMPT, "max_gen_len": 64, "temperature": 0.2, "top_p": 0.9},
        "text_completion",
        {"max_tokens": 64, "temperature": 0.2, "top_p": 0.9},
        "stop",
        False,
        True,
    ),
    (
        "cohere",
        "cohere.command-text-v14",
        {
            "prompt": PROMPT,
            "max_tokens": 64,
            "temperature": 0.2,
            "p": 0.9,
            "k": 40,
            "stop_sequences": ["END"],
        },
        "text_completion",
        {"max_tokens": 64, "temperature": 0.2, "top_p": 0.9, "top_k": 40, "stop_sequences": ("END",)},
        "COMPLETE",
        True,
        False,
    ),
    (
        "cohere_chat",
        "cohere.command-r-plus-v1:0",
        {
            "preamble": SYSTEM,
            "chat_history": [{"role": "USER", "message": "Earlier"}, {"role": "CHATBOT", "message": "Reply"}],
            "message": PROMPT,
            "max_tokens": 64,
            "temperature": 0.2,
            "p": 0.9,
            "k": 40,
            "stop_sequences": ["END"],
            "seed": 7,
            "frequency_penalty": 0.1,
            "presence_penalty": 0.3,
        },
        "chat",
        {
            "max_tokens": 64,
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "stop_sequences": ("END",),
            "seed": 7,
            "frequency_penalty": 0.1,
            "presence_penalty": 0.3,
        },
        "COMPLETE",
        True,
        False,
    ),
    (
        "mistral",
        "mistral.mixtral-8x7b-instruct-v0:1",
        {
            "prompt": f"<s>[INST] {PROMPT} [/INST]",
            "max_tokens": 64,
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "stop": ["END"],
        },
        "text_completion",
        {"max_tokens": 64, "temperature": 0.2, "top_p": 0.9, "top_k": 40, "stop_sequences": ("END",)},
        "stop",
        False,
        False,
    ),
    (
        "mistral_chat",
        "mistral.mistral-large-2407-v1:0",
        {
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
            "max_tokens": 64,
            "temperature": 0.2,
            "top_p": 0.9,
        },
        "chat",
        {"max_tokens": 64, "temperature": 0.2, "top_p": 0.9},
        "stop",
        True,
        True,
    ),
    (
        "ai21_j2",
        "ai21.j2-ultra-v1",
        {"prompt": PROMPT, "maxTokens": 64, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
        "text_completion",
        {"max_tokens": 64, "temperature": 0.2, "top_p": 0.9, "stop_sequences": ("END",)},
        "endoftext",
        True,
        True,
    ),
    (
        "ai21_jamba",
        "ai21.jamba-1-5-large-v1:0",
        {
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
            "max_tokens": 64,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": ["END"],
        },
        "chat",
        {"max_tokens": 64, "temperature": 0.2, "top_p": 0.9, "stop_sequences": ("END",)},
        "stop",
        True,
        True,
    ),
]
STREAMING_FAMILIES = [f for f in FAMILIES if f[0] != "ai21_j2"]  # Jurassic-2 does not stream


def _expect_request(a: dict[str, Any], model: str, operation: str, params: dict[str, Any]) -> None:
    assert a[sc.GEN_AI_OPERATION_NAME] == operation
    assert a[sc.GEN_AI_REQUEST_MODEL] == model
    assert (a[sc.GEN_AI_PROVIDER_NAME], a[sc.GEN_AI_SYSTEM]) == ("aws.bedrock", "AWS")
    assert a[sc.LLM_REQUEST_TYPE] == {"chat": "chat", "text_completion": "completion"}[operation]
    for key, value in params.items():
        assert as_tuple(a[f"gen_ai.request.{key}"]) == value, key


def _expect_prompt(a: dict[str, Any], family: str) -> None:
    prompts = [v for k, v in sorted(a.items()) if k.startswith("gen_ai.prompt.") and k.endswith(".content")]
    assert any(PROMPT in p for p in prompts), prompts
    if family in ("anthropic", "nova", "cohere_chat", "mistral_chat", "ai21_jamba"):
        assert (a["gen_ai.prompt.0.role"], a["gen_ai.prompt.0.content"]) == ("system", SYSTEM)


@pytest.mark.parametrize(
    ("family", "model", "body", "operation", "params", "finish", "has_id", "body_tokens"),
    FAMILIES,
    ids=[f[0] for f in FAMILIES],
)
def test_invoke_model_each_family(
    bedrock_server: BedrockMockServer,
    telemetry: Telemetry,
    instrument: Any,
    family: str,
    model: str,
    body: dict[str, Any],
    operation: str,
    params: dict[str, Any],
    finish: str,
    has_id: bool,
    body_tokens: bool,
) -> None:
    client = bedrock_server.client()
    response = client.invoke_model(modelId=model, body=json.dumps(body))
    answer = json.loads(response["body"].read())
    assert bedrock_server.last_request.json == body
    a = attrs(telemetry)
    assert telemetry.span().name == f"{operation} {model}"
    _expect_request(a, model, operation, params)
    _expect_prompt(a, family)
    assert a["gen_ai.completion.0.content"] == DEFAULT_TEXT
    assert as_tuple(a[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == (finish,)
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == DEFAULT_USAGE.input
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == DEFAULT_USAGE.output
    assert a[sc.LLM_USAGE_TOTAL_TOKENS] == DEFAULT_USAGE.input + DEFAULT_USAGE.output
    assert (a[sc.SERVER_ADDRESS], a[sc.SERVER_PORT]) == ("127.0.0.1", bedrock_server.port)
    assert a["aws.request_id"] == response["ResponseMetadata"]["RequestId"]
    if has_id:
        assert a[sc.GEN_AI_RESPONSE_ID] == str(answer.get("id") or answer.get("response_id"))
    else:
        assert sc.GEN_AI_RESPONSE_ID not in a
    # Anthropic names the model that answered in its body; for the others it is the model asked for.
    assert a[sc.GEN_AI_RESPONSE_MODEL] == answer.get("model", model)
    metrics = telemetry.metrics()  # DELTA: this call's points, in one collection
    tokens = {p.attributes[sc.GEN_AI_TOKEN_TYPE]: p.sum for p in metrics[sc.METRIC_TOKEN_USAGE]}
    assert tokens == {"input": DEFAULT_USAGE.input, "output": DEFAULT_USAGE.output}
    assert metrics[sc.METRIC_GENERATION_CHOICES][0].value == 1

    # Without Bedrock's token-count headers the model's own usage fields are used, where it has them.
    telemetry.span_exporter.clear()
    bedrock_server.script(Reply(token_headers=False, usage=Usage(input=3, output=2)))
    client.invoke_model(modelId=model, body=json.dumps(body))["body"].read()
    a = attrs(telemetry)
    if body_tokens:
        assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (3, 2)
    else:
        assert sc.GEN_AI_USAGE_INPUT_TOKENS not in a


@pytest.mark.parametrize(
    ("family", "model", "body", "operation", "params", "finish", "has_id", "body_tokens"),
    STREAMING_FAMILIES,
    ids=[f[0] for f in STREAMING_FAMILIES],
)
def test_invoke_model_with_response_stream_each_family(
    bedrock_server: BedrockMockServer,
    telemetry: Telemetry,
    instrument: Any,
    family: str,
    model: str,
    body: dict[str, Any],
    operation: str,
    params: dict[str, Any],
    finish: str,
    has_id: bool,
    body_tokens: bool,
) -> None:
    client = bedrock_server.client()
    response = client.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
    assert isinstance(response["body"], botocore.eventstream.EventStream)  # the proxy is transparent
    assert telemetry.spans() == []  # the span stays open until the stream ends
    chunks = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == DEFAULT_USAGE.output
    a = attrs(telemetry)
    _expect_request(a, model, operation, params)
    assert a[sc.GEN_AI_REQUEST_STREAM] is True and a[sc.LLM_IS_STREAMING] is True
    assert a["gen_ai.completion.0.content"] == DEFAULT_TEXT
    assert as_tuple(a[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == (finish,)
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (
        DEFAULT_USAGE.input,
        DEFAULT_USAGE.output,
    )
    assert a[sc.STREAM_END_REASON] == "exhausted"
    if has_id:
        assert a[sc.GEN_AI_RESPONSE_ID]
    metrics = telemetry.metrics()
    assert metrics[sc.METRIC_TIME_TO_FIRST_CHUNK][0].count == 1
    assert metrics[sc.METRIC_TIME_PER_OUTPUT_CHUNK][0].count == len(chunks) - 1

    # Without Bedrock's invocation metrics in the last chunk: the model's own stream usage fields.
    telemetry.span_exporter.clear()
    bedrock_server.script(Reply(invocation_metrics=False, usage=Usage(input=3, output=2)))
    for _ in client.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))["body"]:
        pass
    a = attrs(telemetry)
    if body_tokens:
        assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (3, 2)
    else:
        assert sc.GEN_AI_USAGE_OUTPUT_TOKENS not in a


@pytest.mark.parametrize(
    ("model", "body", "dimensions"),
    [
        ("amazon.titan-embed-text-v2:0", {"inputText": "observability", "dimensions": 256}, 256),
        (
            "cohere.embed-multilingual-v3",
            {"texts": ["observability", "tracing"], "input_type": "search_document"},
            8,
        ),
    ],
    ids=["titan", "cohere"],
)
def test_embeddings(
    bedrock_server: BedrockMockServer,
    telemetry: Telemetry,
    instrument: Any,
    model: str,
    body: dict[str, Any],
    dimensions: int,
) -> None:
    response = bedrock_server.client().invoke_model(modelId=model, body=json.dumps(body))
    vectors = json.loads(response["body"].read())
    first = vectors["embedding"] if "embedding" in vectors else vectors["embeddings"][0]
    assert len(first) == dimensions
    a = attrs(telemetry)
    assert telemetry.span().name == f"embeddings {model}"
    assert (a[sc.GEN_AI_OPERATION_NAME], a[sc.LLM_REQUEST_TYPE]) == ("embeddings", "embedding")
    assert a[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == dimensions
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == DEFAULT_USAGE.input
    assert sc.GEN_AI_USAGE_OUTPUT_TOKENS not in a
    assert a["gen_ai.prompt.0.content"] == "observability"
    metrics = telemetry.metrics()
    assert metrics[sc.METRIC_EMBEDDINGS_VECTOR_SIZE][0].value == dimensions
    assert {p.attributes[sc.GEN_AI_TOKEN_TYPE] for p in metrics[sc.METRIC_TOKEN_USAGE]} == {"input"}


def test_opaque_and_imported_models_are_read_by_body_shape(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    """An imported model's ARN says nothing about its format: the body does (OpenAI-style here)."""
    arn = "arn:aws:bedrock:us-east-1:123456789012:imported-model/abcd1234efgh"
    bedrock_server.script(Reply(text="Quantum!", stop_reason="length", response_model="/opt/ml/model"))
    client = bedrock_server.client()
    client.invoke_model(modelId=arn, body=json.dumps({"prompt": "Explain quantum", "max_tokens": 10}))[
        "body"
    ].read()
    assert bedrock_server.last_request.model_id == arn  # sent as given
    a = attrs(telemetry)
    assert telemetry.span().name == "text_completion imported-model/abcd1234efgh"
    assert a[sc.GEN_AI_REQUEST_MODEL] == "imported-model/abcd1234efgh"
    assert a[ad.AWS_BEDROCK_MODEL_ID] == arn
    assert a["gen_ai.completion.0.content"] == "Quantum!"
    assert a[sc.GEN_AI_RESPONSE_MODEL] == "/opt/ml/model"
    assert as_tuple(a[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == ("length",)
    assert a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 10
    # An opaque id is not a model name: no response model is assumed when the body has none.
    telemetry.span_exporter.clear()
    provisioned = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/p1a2b3"
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
    }
    bedrock_server.script(
        Reply(body=json.dumps({"type": "message", "content": [], "stop_reason": "end_turn"}).encode())
    )
    client.invoke_model(modelId=provisioned, body=json.dumps(body))["body"].read()
    a = attrs(telemetry)
    assert (a[sc.GEN_AI_OPERATION_NAME], a[sc.GEN_AI_REQUEST_MODEL]) == ("chat", "provisioned-model/p1a2b3")
    assert sc.GEN_AI_RESPONSE_MODEL not in a


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
        ("us.anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
        ("eu.anthropic.claude-3-7-sonnet-20250219-v1:0", "anthropic.claude-3-7-sonnet-20250219-v1:0"),
        ("apac.amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
        ("global.anthropic.claude-sonnet-4-20250514-v1:0", "anthropic.claude-sonnet-4-20250514-v1:0"),
        ("us-gov.meta.llama3-8b-instruct-v1:0", "meta.llama3-8b-instruct-v1:0"),
        ("amazon.titan-text-express-v1", "amazon.titan-text-express-v1"),
        ("meta.llama3-2-1b-instruct-v1:0", "meta.llama3-2-1b-instruct-v1:0"),
        ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2:1", "anthropic.claude-v2:1"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0",
            "amazon.nova-lite-v1:0",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4",
            "application-inference-profile/a1b2c3d4",
        ),
        ("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/p1a2b3", "provisioned-model/p1a2b3"),
        ("arn:aws:bedrock:us-east-1:123456789012:imported-model/i1j2k3", "imported-model/i1j2k3"),
        ("arn:aws:sagemaker:us-east-1:767398002385:endpoint/my-endpoint", "endpoint/my-endpoint"),
        (
            "arn:aws-cn:bedrock:cn-north-1::foundation-model/amazon.titan-text-lite-v1",
            "amazon.titan-text-lite-v1",
        ),
    ],
)
def test_model_id_rule(model_id: str, expected: str) -> None:
    ref = ad.resolve_model(model_id)
    assert ref.model == expected
    assert ref.foundation is ("/" not in expected)


# --------------------------------------------------------------------------------------------------
# The caller's body and streams
# --------------------------------------------------------------------------------------------------


def test_invoke_body_reads_exactly_as_before(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = bedrock_server.client()
    text = "line one\nline two\n" + "x" * 3000
    body = {"inputText": "hi", "textGenerationConfig": {"maxTokenCount": 5}}

    def invoke() -> Any:
        bedrock_server.script(Reply(text=text))
        return client.invoke_model(modelId="amazon.titan-text-lite-v1", body=json.dumps(body))["body"]

    raw = invoke().read()
    assert json.loads(raw)["results"][0]["outputText"] == text
    stream = invoke()
    assert isinstance(stream, botocore.response.StreamingBody)
    assert b"".join(iter(lambda: stream.read(100), b"")) == raw  # partial reads
    assert list(invoke().iter_lines()) == list(
        botocore.response.StreamingBody(io.BytesIO(raw), len(raw)).iter_lines()
    )
    assert b"".join(invoke().iter_chunks(7)) == raw
    assert b"".join(invoke()) == raw
    with invoke() as raw_stream:  # StreamingBody's context manager hands out the raw stream
        assert raw_stream.read() == raw
    assert len(telemetry.spans()) == 6 and all(
        s.attributes["gen_ai.completion.0.content"] == text for s in telemetry.spans()
    )


def test_invoke_body_as_file_object(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    payload = json.dumps({"inputText": "from a file", "textGenerationConfig": {"maxTokenCount": 9}}).encode()
    body = io.BytesIO(b"##" + payload)
    body.seek(2)  # the caller's position is where botocore reads from; we must leave it there
    bedrock_server.client().invoke_model(modelId="amazon.titan-text-lite-v1", body=body)["body"].read()
    assert bedrock_server.last_request.body == payload
    a = attrs(telemetry)
    assert a["gen_ai.prompt.0.content"] == "from a file" and a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 9


def test_media_models_bodies_are_not_kept(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    image = base64.b64encode(b"\x89PNG" + b"\0" * 5000).decode()
    bedrock_server.script(Reply(body=json.dumps({"artifacts": [{"base64": image}]}).encode()))
    response = bedrock_server.client().invoke_model(
        modelId="stability.stable-image-core-v1:1", body=json.dumps({"prompt": "a lighthouse"})
    )
    assert telemetry.spans() == []  # open while the app has not read the body
    assert json.loads(response["body"].read())["artifacts"][0]["base64"] == image
    a = attrs(telemetry)  # the (large) body was passed on, not kept
    assert (a[sc.GEN_AI_OPERATION_NAME], a[sc.GEN_AI_REQUEST_MODEL]) == (
        "generate_content",
        "stability.stable-image-core-v1:1",
    )
    assert a[sc.STREAM_END_REASON] == "exhausted" and a[sc.GEN_AI_USAGE_INPUT_TOKENS] == DEFAULT_USAGE.input
    assert image[:200] not in json.dumps(a)


def test_stream_close_early_break_and_abandon_end_the_span_once(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    client = bedrock_server.client()
    response = client.converse_stream(modelId=NOVA, messages=USER)
    events = iter(response["stream"])
    next(events)
    next(events)
    response["stream"].close()
    response["stream"].close()  # twice: still one span
    a = attrs(telemetry)
    assert a[sc.STREAM_END_REASON] == "closed"
    assert a["gen_ai.completion.0.content"] == DEFAULT_TEXT[:12]  # what arrived before close()

    telemetry.span_exporter.clear()
    response = client.invoke_model_with_response_stream(
        modelId="meta.llama3-1-8b-instruct-v1:0", body=json.dumps({"prompt": "hi"})
    )
    underlying = response["body"].__wrapped__  # botocore's EventStream, to release the socket afterwards
    for _ in response["body"]:
        break  # early break, then the caller drops the response
    del response, _
    gc.collect()
    assert attrs(telemetry)[sc.STREAM_END_REASON] == "abandoned"
    underlying.close()

    telemetry.span_exporter.clear()
    response = client.converse_stream(modelId=NOVA, messages=USER)
    assert len(list(response["stream"])) == 7
    assert list(response["stream"]) == []  # a second pass yields nothing, as with botocore
    response["stream"].close()
    del response
    gc.collect()
    assert attrs(telemetry)[sc.STREAM_END_REASON] == "exhausted"


# --------------------------------------------------------------------------------------------------
# Converse
# --------------------------------------------------------------------------------------------------

CONVERSATION = [
    {"role": "user", "content": [{"text": "What is the weather in Linz?"}]},
    {
        "role": "assistant",
        "content": [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Linz"}}}],
    },
    {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "t1", "content": [{"json": {"celsius": 21}}]}},
            {"text": "And tomorrow?"},
            {"image": {"format": "png", "source": {"bytes": b"\x89PNG" + b"\x01" * 4096}}},
        ],
    },
]
CONVERSE_KWARGS: dict[str, Any] = {
    "messages": CONVERSATION,
    "system": [{"text": "You are a weather bot."}, {"cachePoint": {"type": "default"}}],
    "toolConfig": {"tools": [WEATHER_TOOL]},
    "inferenceConfig": {"maxTokens": 100, "temperature": 0.3, "topP": 0.8, "stopSequences": ["STOP"]},
    "additionalModelRequestFields": {"top_k": 50},
}


def test_converse_with_tools_system_prompt_dynatrace_profile(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    bedrock_server.script(
        Reply(text="Let me check.", tool_use=ToolUse("get_weather", {"city": "Linz", "day": "+1"}, id="tu2"))
    )
    result = bedrock_server.client().converse(modelId="us.amazon.nova-pro-v1:0", **CONVERSE_KWARGS)
    assert result["stopReason"] == "tool_use"
    a = attrs(telemetry)
    assert telemetry.span().name == "chat amazon.nova-pro-v1:0"
    assert a[ad.AWS_BEDROCK_MODEL_ID] == "us.amazon.nova-pro-v1:0"
    expected = {
        "gen_ai.operation.name": "chat",
        "llm.request.type": "chat",
        "gen_ai.request.max_tokens": 100,
        "gen_ai.request.temperature": 0.3,
        "gen_ai.request.top_p": 0.8,
        "gen_ai.request.top_k": 50,
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "You are a weather bot.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "What is the weather in Linz?",
        "gen_ai.prompt.2.role": "assistant",
        "gen_ai.prompt.2.tool_calls.0.name": "get_weather",
        "gen_ai.prompt.2.tool_calls.0.id": "t1",
        "gen_ai.prompt.3.role": "tool",
        "gen_ai.prompt.3.tool_call_id": "t1",
        "gen_ai.prompt.4.role": "user",
        "llm.request.functions.0.name": "get_weather",
        "llm.request.functions.0.description": "Current weather for a city",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "Let me check.",
        "gen_ai.completion.0.finish_reason": "tool_use",
        "gen_ai.completion.0.tool_calls.0.name": "get_weather",
        "gen_ai.completion.0.tool_calls.0.id": "tu2",
        "gen_ai.response.model": "amazon.nova-pro-v1:0",
        "gen_ai.usage.input_tokens": DEFAULT_USAGE.input,
        "gen_ai.usage.output_tokens": DEFAULT_USAGE.output,
    }
    for key, value in expected.items():
        assert a.get(key) == value, key
    assert as_tuple(a[sc.GEN_AI_REQUEST_STOP_SEQUENCES]) == ("STOP",)
    assert json.loads(a["gen_ai.prompt.2.tool_calls.0.arguments"]) == {"city": "Linz"}
    assert json.loads(a["gen_ai.prompt.3.content"]) == {"celsius": 21}
    assert json.loads(a["gen_ai.completion.0.tool_calls.0.arguments"]) == {"city": "Linz", "day": "+1"}
    assert json.loads(a["llm.request.functions.0.parameters"])["properties"]["city"] == {"type": "string"}
    last_user = json.loads(a["gen_ai.prompt.4.content"])
    assert last_user[0] == {"type": "text", "text": "And tomorrow?"} and last_user[1]["type"] == "image"
    assert "AQEBAQEB" not in json.dumps(a) and "\\u0001" not in json.dumps(a)  # image bytes never exported


def test_converse_latest_profile(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    instrument(profile=Profile.LATEST)
    bedrock_server.script(Reply(text="Let me check.", reasoning="The user wants weather."))
    bedrock_server.client().converse(modelId=NOVA, **CONVERSE_KWARGS)
    a = attrs(telemetry)
    assert sc.GEN_AI_SYSTEM not in a and "gen_ai.prompt.0.content" not in a and sc.LLM_REQUEST_TYPE not in a
    assert not [k for k in a if k.startswith(("gen_ai.completion.", "gen_ai.usage.prompt", "llm."))]
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == DEFAULT_USAGE.input
    assert json.loads(a[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [
        {"type": "text", "content": "You are a weather bot."}
    ]
    inputs = json.loads(a[sc.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inputs] == ["user", "assistant", "tool", "user"]
    assert inputs[1]["parts"][0] == {
        "type": "tool_call",
        "id": "t1",
        "name": "get_weather",
        "arguments": {"city": "Linz"},
    }
    assert inputs[2]["parts"][0] == {"type": "tool_call_response", "id": "t1", "response": {"celsius": 21}}
    assert inputs[3]["parts"][1] == {"type": "blob", "modality": "image", "content": "<omitted>"}
    outputs = json.loads(a[sc.GEN_AI_OUTPUT_MESSAGES])
    assert outputs[0]["parts"][0] == {"type": "reasoning", "content": "The user wants weather."}
    assert outputs[0]["parts"][1] == {"type": "text", "content": "Let me check."}
    assert outputs[0]["finish_reason"] == "end_turn"
    assert json.loads(a[sc.GEN_AI_TOOL_DEFINITIONS])[0]["name"] == "get_weather"


def test_converse_stream_text_tool_use_and_reasoning(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    bedrock_server.script(
        Reply(
            text="Checking the weather.",
            reasoning="Need the tool.",
            tool_use=ToolUse("get_weather", {"city": "Graz"}, id="tu9"),
        )
    )
    response = bedrock_server.client().converse_stream(modelId=NOVA, **CONVERSE_KWARGS)
    events = list(response["stream"])
    text = "".join(
        e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e
    )
    assert text == "Checking the weather."
    a = attrs(telemetry)
    assert a[sc.GEN_AI_REQUEST_STREAM] is True
    assert a["gen_ai.completion.0.content"] == text
    assert a["gen_ai.completion.0.reasoning"] == "Need the tool."
    assert a["gen_ai.completion.0.tool_calls.0.id"] == "tu9"
    assert json.loads(a["gen_ai.completion.0.tool_calls.0.arguments"]) == {"city": "Graz"}
    assert as_tuple(a[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_use",)
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (13, 7)
    assert a[sc.STREAM_END_REASON] == "exhausted"
    metrics = telemetry.metrics()
    assert metrics[sc.METRIC_TIME_TO_FIRST_CHUNK][0].count == 1
    assert metrics[sc.METRIC_TIME_PER_OUTPUT_CHUNK][0].count == len(events) - 1


def test_content_off_exports_no_text(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    instrument(capture=CaptureMode.NO_CONTENT)
    client = bedrock_server.client()
    secret_answer = "The secret answer is 42."
    for _ in range(4):
        bedrock_server.script(
            Reply(
                text=secret_answer,
                reasoning="secret reasoning",
                tool_use=ToolUse("get_weather", {"city": "Secretville"}),
            )
        )
    client.converse(modelId=NOVA, **CONVERSE_KWARGS)
    list(client.converse_stream(modelId=NOVA, **CONVERSE_KWARGS)["stream"])
    nova_body = {"system": [{"text": "You are a weather bot."}], "messages": CONVERSATION[:1]}
    client.invoke_model(modelId=NOVA, body=json.dumps(nova_body))["body"].read()
    list(client.invoke_model_with_response_stream(modelId=NOVA, body=json.dumps(nova_body))["body"])
    spans = telemetry.spans()
    assert len(spans) == 4
    for span in spans:
        blob = json.dumps({k: str(v) for k, v in (span.attributes or {}).items()})
        for text in ("secret", "Secretville", "weather bot", "Linz", "tomorrow", "celsius"):
            assert text not in blob, (span.name, text)
        assert span.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == DEFAULT_USAGE.output
        assert span.attributes["gen_ai.completion.0.finish_reason"] == "tool_use"


def test_content_event(bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any) -> None:
    instrument(capture=CaptureMode.EVENT_ONLY)
    bedrock_server.client().converse(modelId=NOVA, **CONVERSE_KWARGS)
    span = telemetry.span()
    assert "gen_ai.prompt.0.content" not in (span.attributes or {})
    (record,) = telemetry.logs()
    assert record.event_name == sc.EVENT_INFERENCE_DETAILS
    assert json.loads(record.attributes[sc.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == DEFAULT_TEXT
    assert record.attributes[sc.GEN_AI_PROVIDER_NAME] == "aws.bedrock"


# --------------------------------------------------------------------------------------------------
# Guardrails
# --------------------------------------------------------------------------------------------------

GUARDRAIL_ID = "gr1abc2def3"
NOVA_BODY = {"messages": USER, "inferenceConfig": {"maxTokens": 50}}


def _guarded_call(client: Any, operation: str, identifier: str, trace: bool) -> Any:
    """Runs one guarded call of ``operation`` to the end; returns what the caller saw."""
    if operation.startswith("converse"):
        config = {
            "guardrailIdentifier": identifier,
            "guardrailVersion": "3",
            "trace": "enabled" if trace else "disabled",
        }
        if operation == "converse":
            return client.converse(modelId=NOVA, messages=USER, guardrailConfig=config)
        return list(client.converse_stream(modelId=NOVA, messages=USER, guardrailConfig=config)["stream"])
    kwargs = {
        "modelId": NOVA,
        "body": json.dumps(NOVA_BODY),
        "guardrailIdentifier": identifier,
        "guardrailVersion": "3",
        "trace": "ENABLED" if trace else "DISABLED",
    }
    if operation == "invoke":
        return json.loads(client.invoke_model(**kwargs)["body"].read())
    return [
        json.loads(e["chunk"]["bytes"]) for e in client.invoke_model_with_response_stream(**kwargs)["body"]
    ]


OPERATIONS = ["converse", "converse_stream", "invoke", "invoke_stream"]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_guardrail_intervened_counts_each_policy_type_that_acted(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any, operation: str
) -> None:
    bedrock_server.script(Reply(guardrail=Guardrail(("sensitive_information", "word"))))
    _guarded_call(bedrock_server.client(), operation, GUARDRAIL_ID, trace=True)
    a = attrs(telemetry)
    assert a[sc.AWS_BEDROCK_GUARDRAIL_ID] == GUARDRAIL_ID
    assert a[sc.AWS_BEDROCK_GUARDRAIL_VERSION] == "3"
    assert a[sc.AWS_BEDROCK_GUARDRAIL_ACTION] == "INTERVENED"
    if operation.startswith("converse"):
        assert as_tuple(a[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == ("guardrail_intervened",)
    # The trace also carries a NONE finding (contextual grounding passed): not counted.
    assert guardrail_points(telemetry) == [
        ("sensitive_information", "output", GUARDRAIL_ID, 1),
        ("word", "output", GUARDRAIL_ID, 1),
    ]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_guardrail_that_let_everything_through_counts_nothing(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any, operation: str
) -> None:
    identifier = f"arn:aws:bedrock:us-east-1:123456789012:guardrail/{GUARDRAIL_ID}"
    bedrock_server.script(Reply(guardrail=Guardrail(())))
    _guarded_call(bedrock_server.client(), operation, identifier, trace=True)
    a = attrs(telemetry)
    assert a[sc.AWS_BEDROCK_GUARDRAIL_ID] == GUARDRAIL_ID  # the ARN names the guardrail after "guardrail/"
    assert a[sc.AWS_BEDROCK_GUARDRAIL_ACTION] == "NONE"
    assert guardrail_points(telemetry) == []


@pytest.mark.parametrize("operation", OPERATIONS)
def test_guardrail_without_trace_counts_the_activation_without_a_policy(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any, operation: str
) -> None:
    bedrock_server.script(Reply(guardrail=Guardrail(("content",))))
    _guarded_call(bedrock_server.client(), operation, GUARDRAIL_ID, trace=False)
    a = attrs(telemetry)
    assert a[sc.AWS_BEDROCK_GUARDRAIL_ACTION] == "INTERVENED"
    assert a[sc.GEN_AI_BEDROCK_GUARDRAIL_ACTIVATION] is True
    assert sc.GEN_AI_BEDROCK_GUARDRAIL_CONTENT not in a  # which policy acted is only in the trace
    # Counted, but without the policy and input/output dimensions: they are never guessed.
    assert guardrail_points(telemetry) == [("", "", GUARDRAIL_ID, 1)]


def test_guardrail_blocking_the_prompt(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    guard = Guardrail(("topic",), on="input", blocked_message="Blocked by policy.")
    bedrock_server.script(Reply(guardrail=guard), Reply(guardrail=guard))
    client = bedrock_server.client()
    result = _guarded_call(client, "converse", GUARDRAIL_ID, trace=True)
    assert result["output"]["message"]["content"][0]["text"] == "Blocked by policy."
    _guarded_call(client, "invoke_stream", GUARDRAIL_ID, trace=True)
    for span in telemetry.spans():
        assert span.attributes[sc.AWS_BEDROCK_GUARDRAIL_ACTION] == "INTERVENED"
        assert span.attributes["gen_ai.completion.0.content"] == "Blocked by policy."
    assert guardrail_points(telemetry) == [("topic", "input", GUARDRAIL_ID, 2)]


def test_no_guardrail_no_guardrail_attributes(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    bedrock_server.client().converse(modelId=NOVA, messages=USER)
    a = attrs(telemetry)
    assert not [k for k in a if k.startswith("aws.bedrock.guardrail")]
    assert guardrail_points(telemetry) == []


def _points(receiver: OTLPReceiver, name: str) -> list[Any]:
    return [p for m in receiver.metrics(name) for p in m.data_points]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_guardrail_family_reaches_the_receiver(
    bedrock_server: BedrockMockServer, otlp_receiver: OTLPReceiver, operation: str
) -> None:
    """AR-017..021, AR-040, AR-046, AR-050/051: span attributes and metrics, as Dynatrace reads them."""
    handle = genai_observe.init(endpoint=otlp_receiver.url, service_name="guarded")
    policies = ("content", "topic", "word", "sensitive_information")
    bedrock_server.script(Reply(guardrail=Guardrail(policies)))
    _guarded_call(bedrock_server.client(), operation, GUARDRAIL_ID, trace=True)
    handle.shutdown()
    (span,) = otlp_receiver.spans()
    a = span.attributes
    assert (a[sc.GEN_AI_GUARDRAIL_ID], a[sc.GEN_AI_GUARDRAIL_VERSION]) == (GUARDRAIL_ID, "3")
    assert a[sc.GEN_AI_BEDROCK_GUARDRAIL_ACTIVATION] is True
    assert a[sc.GEN_AI_BEDROCK_GUARDRAIL_CONTENT] == ["VIOLENCE"]
    assert a[sc.GEN_AI_BEDROCK_GUARDRAIL_TOPICS] == ["investment-advice"]
    assert a[sc.GEN_AI_BEDROCK_GUARDRAIL_WORDS] == ["CUSTOM"]  # the list, not the matched word
    assert a[sc.GEN_AI_BEDROCK_GUARDRAIL_SENSITIVE_INFO] == ["EMAIL"]
    # The input assessment's grounding check passed (action NONE): its score is still reported.
    assert (a[sc.GEN_AI_BEDROCK_GUARDRAIL_CONTEXTUAL], a[sc.GEN_AI_GUARDRAIL_GROUNDING_TYPE]) == (
        0.98,
        "GROUNDING",
    )

    base = {sc.GEN_AI_GUARDRAIL_ID: GUARDRAIL_ID, sc.GEN_AI_PROVIDER_NAME: "aws.bedrock"}

    def dims(point: Any, *extra: str) -> dict[str, Any]:
        assert {k: point.attributes[k] for k in base} == base
        return {k: point.attributes.get(k) for k in (sc.GEN_AI_GUARDRAIL_TYPE, *extra)}

    activations = _points(otlp_receiver, sc.METRIC_GUARDRAIL_ACTIVATIONS)
    assert sorted((p.attributes[sc.GEN_AI_GUARDRAIL_POLICY], p.value) for p in activations) == [
        ("content", 1),
        ("sensitive_information", 1),
        ("topic", 1),
        ("word", 1),
    ]
    assert {dims(p)[sc.GEN_AI_GUARDRAIL_TYPE] for p in activations} == {"output"}
    (content,) = _points(otlp_receiver, sc.METRIC_GUARDRAIL_CONTENT)
    assert content.value == 1
    assert dims(
        content, sc.GEN_AI_GUARDRAIL_CONTENT, sc.GEN_AI_GUARDRAIL_CONFIDENCE, sc.GEN_AI_GUARDRAIL_ACTION
    ) == {
        sc.GEN_AI_GUARDRAIL_TYPE: "output",
        sc.GEN_AI_GUARDRAIL_CONTENT: "VIOLENCE",
        sc.GEN_AI_GUARDRAIL_CONFIDENCE: "HIGH",
        sc.GEN_AI_GUARDRAIL_ACTION: "BLOCKED",
    }
    (pii,) = _points(otlp_receiver, sc.METRIC_GUARDRAIL_SENSITIVE_INFO)
    assert dims(pii, sc.GEN_AI_GUARDRAIL_PII, sc.GEN_AI_GUARDRAIL_ACTION) == {
        sc.GEN_AI_GUARDRAIL_TYPE: "output",
        sc.GEN_AI_GUARDRAIL_PII: "EMAIL",
        sc.GEN_AI_GUARDRAIL_ACTION: "ANONYMIZED",
    }
    (topic,) = _points(otlp_receiver, sc.METRIC_GUARDRAIL_TOPICS)
    assert dims(topic, sc.GEN_AI_GUARDRAIL_TOPIC)[sc.GEN_AI_GUARDRAIL_TOPIC] == "investment-advice"
    (word,) = _points(otlp_receiver, sc.METRIC_GUARDRAIL_WORDS)
    assert dims(word, sc.GEN_AI_GUARDRAIL_WORD_LIST)[sc.GEN_AI_GUARDRAIL_WORD_LIST] == "CUSTOM"
    (score,) = _points(otlp_receiver, sc.METRIC_GUARDRAIL_CONTEXTUAL)
    assert (score.count, score.sum) == (1, 0.98)
    assert dims(score, sc.GEN_AI_GUARDRAIL_GROUNDING_TYPE, sc.GEN_AI_GUARDRAIL_ACTION) == {
        sc.GEN_AI_GUARDRAIL_TYPE: "input",
        sc.GEN_AI_GUARDRAIL_GROUNDING_TYPE: "GROUNDING",
        sc.GEN_AI_GUARDRAIL_ACTION: "NONE",
    }
    # Bedrock's invocationMetrics of each assessment (input and output): 40 characters, 120 ms.
    coverage = _points(otlp_receiver, sc.METRIC_GUARDRAIL_COVERAGE)
    assert sorted((dims(p)[sc.GEN_AI_GUARDRAIL_TYPE], p.value) for p in coverage) == [
        ("input", 40),
        ("output", 40),
    ]
    latency = _points(otlp_receiver, sc.METRIC_GUARDRAIL_LATENCY)
    assert sorted((dims(p)[sc.GEN_AI_GUARDRAIL_TYPE], p.count, p.sum) for p in latency) == [
        ("input", 1, 120),
        ("output", 1, 120),
    ]
    (unit,) = {m.unit for m in otlp_receiver.metrics(sc.METRIC_GUARDRAIL_LATENCY)}
    assert unit == "ms"
    # What was matched is content: in no attribute of the span and no metric point.
    everything = str(a) + str([p.attributes for m in otlp_receiver.metrics() for p in m.data_points])
    assert "frobnicate" not in everything and "jane@example.com" not in everything


def test_guardrail_that_found_nothing_makes_no_finding_points(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    bedrock_server.script(Reply(guardrail=Guardrail(())))
    _guarded_call(bedrock_server.client(), "converse", GUARDRAIL_ID, trace=True)
    a = attrs(telemetry)
    assert a[sc.GEN_AI_BEDROCK_GUARDRAIL_ACTIVATION] is False
    assert not [
        k
        for k in a
        if k.startswith("gen_ai.bedrock.guardrail.") and not k.endswith((".activation", ".contextual"))
    ]
    metrics = telemetry.metrics()
    for name in (sc.METRIC_GUARDRAIL_CONTENT, sc.METRIC_GUARDRAIL_SENSITIVE_INFO, sc.METRIC_GUARDRAIL_TOPICS):
        assert name not in metrics  # policies that found nothing add no series
    assert sum(p.value for p in metrics[sc.METRIC_GUARDRAIL_COVERAGE]) == 80


def test_guardrail_span_attributes_are_dynatrace_profile_only(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    instrument(profile=Profile.LATEST)
    bedrock_server.script(Reply(guardrail=Guardrail(("content",))))
    _guarded_call(bedrock_server.client(), "converse", GUARDRAIL_ID, trace=True)
    a = attrs(telemetry)
    # v1.41.0 has no guardrail names: latest keeps the aws.bedrock.guardrail.* ones only.
    assert not [k for k in a if k.startswith(("gen_ai.bedrock.guardrail", "gen_ai.guardrail"))]
    assert (a[sc.AWS_BEDROCK_GUARDRAIL_ID], a[sc.AWS_BEDROCK_GUARDRAIL_ACTION]) == (
        GUARDRAIL_ID,
        "INTERVENED",
    )
    assert guardrail_points(telemetry) == [("content", "output", GUARDRAIL_ID, 1)]  # metrics: both profiles


# --------------------------------------------------------------------------------------------------
# Prompt caching
# --------------------------------------------------------------------------------------------------

CACHED = Usage(input=5, output=7, cache_read=100, cache_write=20)
ANTHROPIC_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 50,
    "system": [{"type": "text", "text": "long system prompt", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "How do I write js?"}],
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_prompt_caching_tokens(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any, operation: str
) -> None:
    model = "anthropic.claude-3-5-haiku-20241022-v1:0"
    bedrock_server.script(Reply(usage=CACHED))
    client = bedrock_server.client()
    if operation == "converse":
        usage = client.converse(modelId=model, messages=USER)["usage"]
        assert (usage["cacheReadInputTokens"], usage["cacheWriteInputTokens"]) == (100, 20)
    elif operation == "converse_stream":
        list(client.converse_stream(modelId=model, messages=USER)["stream"])
    elif operation == "invoke":
        client.invoke_model(modelId=model, body=json.dumps(ANTHROPIC_BODY))["body"].read()
    else:
        list(client.invoke_model_with_response_stream(modelId=model, body=json.dumps(ANTHROPIC_BODY))["body"])
    a = attrs(telemetry)
    # Bedrock reports input tokens without the cached ones; v1.41.0 input tokens include them.
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 125
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 100
    assert a[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 20
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_LEGACY] == 100
    assert a[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_LEGACY] == 20
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert a[sc.LLM_USAGE_TOTAL_TOKENS] == 132
    # cache points are a part of input, shown on their own
    assert token_points(telemetry) == {"input": 125, "output": 7, "cache_read": 100, "cache_creation": 20}


@pytest.mark.parametrize("operation", [*OPERATIONS, "invoke_body_only"])
def test_prompt_caching_reaches_the_receiver(
    bedrock_server: BedrockMockServer, otlp_receiver: OTLPReceiver, operation: str
) -> None:
    """Converse usage, the InvokeModel headers, Anthropic's body usage (``invoke_body_only``: no
    token-count headers) and the stream's invocation metrics all fill the cache counts."""
    handle = genai_observe.init(endpoint=otlp_receiver.url, service_name="cached")
    model = "anthropic.claude-3-5-haiku-20241022-v1:0"
    bedrock_server.script(Reply(usage=CACHED, token_headers=operation != "invoke_body_only"))
    client = bedrock_server.client()
    if operation == "converse":
        client.converse(modelId=model, messages=USER)
    elif operation == "converse_stream":
        list(client.converse_stream(modelId=model, messages=USER)["stream"])
    elif operation in ("invoke", "invoke_body_only"):
        client.invoke_model(modelId=model, body=json.dumps(ANTHROPIC_BODY))["body"].read()
    else:
        list(client.invoke_model_with_response_stream(modelId=model, body=json.dumps(ANTHROPIC_BODY))["body"])
    handle.shutdown()
    (span,) = otlp_receiver.spans()
    a = span.attributes
    assert (a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS], a[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS]) == (
        100,
        20,
    )
    assert (
        a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_LEGACY],
        a[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_LEGACY],
    ) == (
        100,
        20,
    )
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 125  # 5 uncached + 100 read + 20 written
    tokens = {
        p.attributes[sc.GEN_AI_TOKEN_TYPE]: p.sum for p in _points(otlp_receiver, sc.METRIC_TOKEN_USAGE)
    }
    assert tokens == {"input": 125, "output": 7, "cache_read": 100, "cache_creation": 20}


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


def _any_call(client: Any, operation: str) -> Any:
    if operation == "converse":
        return client.converse(modelId=NOVA, messages=USER)
    if operation == "invoke":
        return client.invoke_model(modelId=NOVA, body=json.dumps(NOVA_BODY))["body"].read()
    if operation == "converse_stream":
        stream = client.converse_stream(modelId=NOVA, messages=USER)["stream"]
    else:
        stream = client.invoke_model_with_response_stream(modelId=NOVA, body=json.dumps(NOVA_BODY))["body"]
    try:
        return list(stream)
    finally:
        stream.close()  # a careful caller releases the connection, also after an error


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize(
    ("code", "status", "attempts"),
    [("ThrottlingException", 429, 2), ("ValidationException", 400, 1), ("AccessDeniedException", 403, 1)],
)
def test_errors_reach_the_caller_unchanged_and_are_recorded(
    bedrock_server: BedrockMockServer,
    telemetry: Telemetry,
    instrument: Any,
    operation: str,
    code: str,
    status: int,
    attempts: int,
) -> None:
    # retries={"max_attempts": 1} is botocore's legacy mode: one retry for throttling, none for 4xx.
    bedrock_server.script(*[Reply(error=code, message=f"{code} for the test")] * 2)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        _any_call(bedrock_server.client(), operation)
    assert type(info.value).__name__ == code  # botocore's modeled exception class
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert len(bedrock_server.requests) == attempts
    span = telemetry.span()  # one span for the API call, retries included
    assert span.status.status_code is StatusCode.ERROR
    assert code in (span.status.description or "")
    assert (span.attributes or {})[sc.ERROR_TYPE] == code
    durations = telemetry.metrics()[sc.METRIC_OPERATION_DURATION]
    assert durations[0].attributes[sc.ERROR_TYPE] == code


def test_a_throttled_call_that_succeeds_on_retry_is_one_ok_span(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    bedrock_server.script(Reply(error="ThrottlingException"))
    result = bedrock_server.client().converse(modelId=NOVA, messages=USER)
    assert result["ResponseMetadata"]["RetryAttempts"] == 1
    span = telemetry.span()
    assert span.status.status_code is StatusCode.UNSET and sc.ERROR_TYPE not in (span.attributes or {})


@pytest.mark.parametrize("operation", ["converse_stream", "invoke_stream"])
@pytest.mark.parametrize("exception", ["modelStreamErrorException", "throttlingException"])
def test_stream_error_event_mid_stream(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any, operation: str, exception: str
) -> None:
    bedrock_server.script(Reply(stream_error=exception, stream_error_after=2, message="the model broke"))
    with pytest.raises(botocore.exceptions.EventStreamError) as info:
        _any_call(bedrock_server.client(), operation)
    assert info.value.response["Error"] == {"Code": exception, "Message": "the model broke"}
    span = telemetry.span()
    a = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.ERROR
    assert exception in (span.status.description or "")  # the AWS code is in the status message
    assert a[sc.ERROR_TYPE] == exception  # the AWS error code, not botocore's generic class
    assert a[sc.STREAM_END_REASON] == "error"
    assert a["gen_ai.completion.0.content"] == DEFAULT_TEXT[:12]  # the part that arrived
    assert sc.GEN_AI_USAGE_OUTPUT_TOKENS not in a


def test_broken_connection_mid_stream(bedrock_server: BedrockMockServer, telemetry: Telemetry) -> None:
    def broken() -> type[BaseException]:
        bedrock_server.script(Reply(drop_after=2))
        response = bedrock_server.client().converse_stream(modelId=NOVA, messages=USER)
        with pytest.raises(Exception) as info:
            list(response["stream"])
        response["stream"].close()
        return type(info.value)

    plain = broken()
    instrumentor = BedrockInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs())
    try:
        assert broken() is plain
    finally:
        instrumentor.uninstrument()
    a = attrs(telemetry)
    assert a[sc.ERROR_TYPE] == plain.__name__ and a[sc.STREAM_END_REASON] == "error"


# --------------------------------------------------------------------------------------------------
# Attaching: existing clients, other services, identical results, our own failures
# --------------------------------------------------------------------------------------------------


def test_clients_created_before_instrumenting_are_covered(
    bedrock_server: BedrockMockServer, telemetry: Telemetry
) -> None:
    client = bedrock_server.client()  # before
    client.converse(modelId=NOVA, messages=USER)  # and already used
    instrumentor = BedrockInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs())
    try:
        client.converse(modelId=NOVA, messages=USER)
    finally:
        instrumentor.uninstrument()
    client.converse(modelId=NOVA, messages=USER)  # after uninstrument: no span
    assert len(telemetry.spans()) == 1
    assert type(botocore.client.BaseClient.__dict__["_make_api_call"]).__name__ == "function"


def test_other_operations_and_services_are_not_recorded(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any
) -> None:
    import boto3

    client = bedrock_server.client()
    with pytest.raises(botocore.exceptions.ClientError):  # our server has no such route
        client.apply_guardrail(
            guardrailIdentifier="g", guardrailVersion="1", source="INPUT", content=[{"text": {"text": "hi"}}]
        )
    control = boto3.client(
        "bedrock",
        region_name="us-east-1",
        endpoint_url=bedrock_server.url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    with pytest.raises(botocore.exceptions.ClientError):
        control.list_foundation_models()
    assert telemetry.spans() == []


def _battery(client: Any, server: BedrockMockServer) -> list[Any]:
    """Calls of every kind; what the caller sees, in comparable form."""
    out: list[Any] = []
    server.script(Reply(tool_use=ToolUse("get_weather", {"city": "Linz"})))
    out.append(client.converse(modelId=NOVA, **CONVERSE_KWARGS))
    stream = client.converse_stream(modelId=NOVA, **CONVERSE_KWARGS)
    out.append({**stream, "stream": list(stream["stream"])})
    for model, body in (("anthropic.claude-3-haiku-20240307-v1:0", ANTHROPIC_BODY), (NOVA, NOVA_BODY)):
        response = client.invoke_model(modelId=model, body=json.dumps(body))
        out.append({**response, "body": response["body"].read()})
        streamed = client.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
        out.append({**streamed, "body": list(streamed["body"])})
    server.script(Reply(guardrail=Guardrail(("content",))))
    config = {"guardrailIdentifier": "g", "guardrailVersion": "1", "trace": "enabled"}
    out.append(client.converse(modelId=NOVA, messages=USER, guardrailConfig=config))
    server.script(Reply(error="ValidationException", message="bad input"))
    try:
        client.converse(modelId=NOVA, messages=USER)
    except botocore.exceptions.ClientError as exc:
        out.append((type(exc).__name__, exc.response, str(exc)))
    server.script(Reply(stream_error="modelStreamErrorException"))
    events: list[Any] = []
    try:
        for event in client.converse_stream(modelId=NOVA, messages=USER)["stream"]:
            events.append(event)
    except botocore.exceptions.EventStreamError as exc:
        out.append((events, type(exc).__name__, exc.response, str(exc)))
    return out


def test_caller_sees_identical_results_with_and_without_instrumentation(
    bedrock_server: BedrockMockServer, telemetry: Telemetry
) -> None:
    client = bedrock_server.client()
    plain = _battery(client, bedrock_server)
    plain_requests = [
        (r.path, r.body, r.headers.get("x-amzn-bedrock-guardrailidentifier")) for r in bedrock_server.requests
    ]
    bedrock_server.requests.clear()
    instrumentor = BedrockInstrumentor()
    instrumentor.instrument(**telemetry.instrument_kwargs(capture=CaptureMode.SPAN_AND_EVENT))
    try:
        instrumented = _battery(client, bedrock_server)
    finally:
        instrumentor.uninstrument()
    assert instrumented == plain
    assert [
        (r.path, r.body, r.headers.get("x-amzn-bedrock-guardrailidentifier")) for r in bedrock_server.requests
    ] == plain_requests
    assert len(telemetry.spans()) == 9


def test_our_own_failures_never_reach_the_caller(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("adapter bug")

    client = bedrock_server.client()
    monkeypatch.setattr(ad, "invoke_response", broken)
    monkeypatch.setattr(ad, "converse_response", broken)
    monkeypatch.setattr(ad.InvokeStream, "on_event", broken)
    answer = json.loads(client.invoke_model(modelId=NOVA, body=json.dumps(NOVA_BODY))["body"].read())
    assert answer["output"]["message"]["content"][0]["text"] == DEFAULT_TEXT
    assert client.converse(modelId=NOVA, messages=USER)["stopReason"] == "end_turn"
    assert (
        len(list(client.invoke_model_with_response_stream(modelId=NOVA, body=json.dumps(NOVA_BODY))["body"]))
        == 7
    )
    assert len(telemetry.spans()) == 3  # each still ends, without the unreadable details

    telemetry.span_exporter.clear()
    monkeypatch.setattr(ad, "new_call", broken)
    assert client.converse(modelId=NOVA, messages=USER)["stopReason"] == "end_turn"
    assert telemetry.spans() == []  # the request reader failed: the call ran untraced


def test_reading_the_body_fails_the_same_way_for_the_caller(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the caller's read of the body fails, it gets botocore's exception object itself, and
    the span ends with it."""
    error = botocore.exceptions.ReadTimeoutError(endpoint_url="http://x")
    response = bedrock_server.client().invoke_model(modelId=NOVA, body=json.dumps(NOVA_BODY))
    monkeypatch.setattr(
        botocore.response.StreamingBody, "read", lambda self, amt=None: (_ for _ in ()).throw(error)
    )
    with pytest.raises(botocore.exceptions.ReadTimeoutError) as info:
        response["body"].read()
    assert info.value is error
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        response["body"].read()  # again: the span still ended once
    monkeypatch.undo()
    a = attrs(telemetry)
    assert telemetry.span().status.status_code is StatusCode.ERROR and a[sc.ERROR_TYPE] == "ReadTimeoutError"
    assert a[sc.STREAM_END_REASON] == "error" and a[sc.GEN_AI_USAGE_INPUT_TOKENS] == DEFAULT_USAGE.input
    response["body"].close()


# --------------------------------------------------------------------------------------------------
# Through init(), after-import, the example
# --------------------------------------------------------------------------------------------------


def test_init_end_to_end_through_otlp(bedrock_server: BedrockMockServer, otlp_receiver: OTLPReceiver) -> None:
    handle = genai_observe.init(endpoint=otlp_receiver.url, service_name="bedrock-e2e")
    assert "bedrock" in handle.instrumented
    client = bedrock_server.client()
    client.converse(modelId=NOVA, messages=USER)
    bedrock_server.script(Reply(guardrail=Guardrail(("content",))))
    list(
        client.converse_stream(
            modelId=NOVA,
            messages=USER,
            guardrailConfig={"guardrailIdentifier": "g9", "guardrailVersion": "1", "trace": "enabled"},
        )["stream"]
    )
    client.invoke_model(modelId="meta.llama3-1-8b-instruct-v1:0", body=json.dumps({"prompt": "hi"}))[
        "body"
    ].read()
    handle.shutdown()
    spans = otlp_receiver.spans()
    assert sorted(s.name for s in spans) == [
        "chat amazon.nova-lite-v1:0",
        "chat amazon.nova-lite-v1:0",
        "text_completion meta.llama3-1-8b-instruct-v1:0",
    ]
    for span in spans:
        assert span.kind == 3 and span.resource_attributes["service.name"] == "bedrock-e2e"
        assert span.attributes[sc.GEN_AI_PROVIDER_NAME] == "aws.bedrock"
        assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == DEFAULT_USAGE.input
    (guard,) = [p for m in otlp_receiver.metrics(sc.METRIC_GUARDRAIL_ACTIVATIONS) for p in m.data_points]
    assert (
        guard.value,
        guard.attributes[sc.GEN_AI_GUARDRAIL_POLICY],
        guard.attributes[sc.GEN_AI_GUARDRAIL_TYPE],
        guard.attributes[sc.GEN_AI_GUARDRAIL_ID],
    ) == (1, "content", "output", "g9")
    durations = [p for m in otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION) for p in m.data_points]
    assert sum(p.count or 0 for p in durations) == 3
    assert all(m.temporality == 1 for m in otlp_receiver.metrics(sc.METRIC_TOKEN_USAGE))


def test_latest_profile_end_to_end_through_otlp(
    bedrock_server: BedrockMockServer, otlp_receiver: OTLPReceiver
) -> None:
    handle = genai_observe.init(endpoint=otlp_receiver.url, profile="latest", capture_content=True)
    client = bedrock_server.client()
    client.converse(modelId=NOVA, messages=USER, system=[{"text": "Be brief."}])
    list(client.converse_stream(modelId=NOVA, messages=USER)["stream"])
    handle.shutdown()
    spans = otlp_receiver.spans()
    assert [s.name for s in spans] == ["chat amazon.nova-lite-v1:0"] * 2
    for span in spans:
        a = span.attributes
        assert a[sc.GEN_AI_PROVIDER_NAME] == "aws.bedrock" and a[sc.GEN_AI_OPERATION_NAME] == "chat"
        assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == DEFAULT_USAGE.input
        # v1.41.0 only: content as JSON, none of the flat Dynatrace names
        assert json.loads(a[sc.GEN_AI_INPUT_MESSAGES])[0]["role"] == "user"
        assert json.loads(a[sc.GEN_AI_OUTPUT_MESSAGES])[0]["role"] == "assistant"
        assert not any(k.startswith(("gen_ai.prompt.", "gen_ai.completion.", "llm.")) for k in a)
        assert sc.GEN_AI_SYSTEM not in a
    assert json.loads(spans[0].attributes[sc.GEN_AI_SYSTEM_INSTRUCTIONS])[0]["content"] == "Be brief."
    points = [p for m in otlp_receiver.metrics(sc.METRIC_TOKEN_USAGE) for p in m.data_points]
    assert {p.attributes["gen_ai.token.type"] for p in points} >= {"input", "output"}
    assert all(sc.GEN_AI_SYSTEM not in p.attributes for p in points)


def _clean_env(**extra: str) -> dict[str, str]:
    foreign = ("OTEL_", "DT_", "GENAI_OBSERVE_", "TRACELOOP_", "AWS_", "BEDROCK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(foreign)}
    env.update(
        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", AWS_EC2_METADATA_DISABLED="true"
    )
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    env.update(extra)
    return env


def test_import_after_init_in_a_subprocess(
    bedrock_server: BedrockMockServer, otlp_receiver: OTLPReceiver
) -> None:
    script = textwrap.dedent(f"""
        import sys
        import genai_observe
        genai_observe.init(endpoint={otlp_receiver.url!r}, service_name="late-import")
        assert "botocore" not in sys.modules  # init() did not import the SDK
        import boto3
        client = boto3.client(
            "bedrock-runtime", region_name="us-east-1", endpoint_url={bedrock_server.url!r},
            aws_access_key_id="test", aws_secret_access_key="test",
        )
        client.converse(
            modelId="amazon.nova-micro-v1:0", messages=[{{"role": "user", "content": [{{"text": "hi"}}]}}]
        )
        genai_observe.shutdown()
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=_clean_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (span,) = otlp_receiver.spans()
    assert (
        span.name == "chat amazon.nova-micro-v1:0"
        and span.resource_attributes["service.name"] == "late-import"
    )
    assert otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)


def test_importing_the_instrumentation_does_not_import_botocore() -> None:
    script = (
        "import sys, genai_observe.instrumentation.bedrock as b; b.BedrockInstrumentor(); "
        "print('botocore' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=_clean_env(), capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


def test_example_runs_against_the_local_server(
    bedrock_server: BedrockMockServer, otlp_receiver: OTLPReceiver
) -> None:
    bedrock_server.script(Reply(), Reply(tool_use=ToolUse("get_weather", {"city": "Linz"})))
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "bedrock_converse.py")],
        env=_clean_env(
            AWS_ENDPOINT_URL_BEDROCK_RUNTIME=bedrock_server.url,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            DT_ENDPOINT=otlp_receiver.url,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert f"converse: {DEFAULT_TEXT}" in done.stdout
    assert "| tools: ['get_weather']" in done.stdout and f"invoke_model: {DEFAULT_TEXT}" in done.stdout
    assert [r.operation for r in bedrock_server.requests] == ["Converse", "ConverseStream", "InvokeModel"]
    assert {r.model_id for r in bedrock_server.requests} == {"us.amazon.nova-lite-v1:0"}
    spans = otlp_receiver.spans()
    assert [s.name for s in spans] == ["chat amazon.nova-lite-v1:0"] * 3
    for span in spans:
        assert span.resource_attributes["service.name"] == "bedrock-converse-example"
        assert span.attributes[ad.AWS_BEDROCK_MODEL_ID] == "us.amazon.nova-lite-v1:0"
    streamed = next(s for s in spans if s.attributes.get(sc.GEN_AI_REQUEST_STREAM))
    assert streamed.attributes[sc.STREAM_END_REASON] == "exhausted"
    assert streamed.attributes["gen_ai.completion.0.tool_calls.0.name"] == "get_weather"
    assert otlp_receiver.metrics(sc.METRIC_TIME_TO_FIRST_CHUNK)


def test_server_rig_records_requests_and_rejects_unknown_routes(bedrock_server: BedrockMockServer) -> None:
    import urllib.error
    import urllib.request

    client = bedrock_server.client()
    client.invoke_model(
        modelId="arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1",
        body=b"{}",
        trace="ENABLED",
    )
    request = bedrock_server.last_request
    assert request.operation == "InvokeModel"
    assert request.model_id == "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1"
    assert request.headers["x-amzn-bedrock-trace"] == "ENABLED" and request.json == {}
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(bedrock_server.url + "/nope", data=b"{}"), timeout=10)
    assert info.value.code == 404
    info.value.close()
    stream = client.converse_stream(modelId=NOVA, messages=USER)
    assert stream["ResponseMetadata"]["HTTPHeaders"]["content-type"] == EVENTSTREAM
    assert [next(iter(e)) for e in stream["stream"]] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]


def test_streams_keep_no_text_when_content_is_off() -> None:
    """With content capture off a stream costs no memory for text, tool arguments or reasoning."""
    events = [
        {"messageStart": {"role": "assistant"}},
        {
            "contentBlockDelta": {
                "delta": {"reasoningContent": {"text": "thinking..."}},
                "contentBlockIndex": 0,
            }
        },
        {"contentBlockDelta": {"delta": {"text": "Hello"}, "contentBlockIndex": 1}},
        {
            "contentBlockStart": {
                "start": {"toolUse": {"toolUseId": "t", "name": "f"}},
                "contentBlockIndex": 2,
            }
        },
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"a": 1}'}}, "contentBlockIndex": 2}},
        {"messageStop": {"stopReason": "tool_use"}},
    ]
    for keep_text, kept in ((False, 0), (True, 3)):
        state = ad.ConverseStream(keep_text)
        for event in events:
            state.on_event(event)
        fragments = sum(len(parts) for parts in state.texts.values()) + len(state.reasoning)
        fragments += sum(len(entry[2]) for entry in state.tools.values())
        assert fragments == kept
        assert state.tools[2][:2] == ["t", "f"] and state.finish == {0: "tool_use"}


# The Bedrock column of shared/spec/dynatrace-genai-attributes.md (what Dynatrace documents).
DYNATRACE_BEDROCK_ATTRIBUTES = (
    "gen_ai.system",
    "llm.request.type",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.request.max_tokens",
    "gen_ai.request.temperature",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.prompt.0.role",
    "gen_ai.prompt.0.content",
    "gen_ai.completion.0.role",
    "gen_ai.completion.0.content",
    "gen_ai.completion.0.finish_reason",
)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_attribute_dynatrace_lists_for_bedrock(
    bedrock_server: BedrockMockServer, telemetry: Telemetry, instrument: Any, operation: str
) -> None:
    client = bedrock_server.client()
    config = {"maxTokens": 20, "temperature": 0.5}
    body = json.dumps({**NOVA_BODY, "inferenceConfig": config})
    if operation == "converse":
        client.converse(modelId=NOVA, messages=USER, inferenceConfig=config)
    elif operation == "converse_stream":
        list(client.converse_stream(modelId=NOVA, messages=USER, inferenceConfig=config)["stream"])
    elif operation == "invoke":
        client.invoke_model(modelId=NOVA, body=body)["body"].read()
    else:
        list(client.invoke_model_with_response_stream(modelId=NOVA, body=body)["body"])
    a = attrs(telemetry)
    assert [k for k in DYNATRACE_BEDROCK_ATTRIBUTES if k not in a] == []
    assert (a["gen_ai.system"], a["gen_ai.request.max_tokens"], a["gen_ai.request.temperature"]) == (
        "AWS",
        20,
        0.5,
    )
    metrics = telemetry.metrics()
    assert metrics[sc.METRIC_OPERATION_DURATION][0].count == 1
    assert {p.attributes[sc.GEN_AI_TOKEN_TYPE] for p in metrics[sc.METRIC_TOKEN_USAGE]} == {"input", "output"}
