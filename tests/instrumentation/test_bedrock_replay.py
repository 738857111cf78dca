"""Replays the recorded Amazon Bedrock traffic through the real boto3 client and our instrumentation.

Each recorded InvokeModel / InvokeModelWithResponseStream / Converse / ConverseStream request is sent
again through boto3 against a server that answers with the recorded response byte for byte (binary
event streams included, with the recorded content type and headers). Every case runs twice, without
and with instrumentation: the caller must see the same result both times, and the span must carry
what the recorded response says. Skipped without ``../shared``.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from genai_observe._core import semconv as sc
from genai_observe.instrumentation.bedrock import BedrockInstrumentor
from tests.conftest import Telemetry
from tests.rig import fixtures_bedrock
from tests.rig.bedrock_server import decode_messages
from tests.rig.replay import Interaction, interactions

aws_env = fixtures_bedrock.aws_env
pytestmark = pytest.mark.usefixtures("aws_env")

ENDPOINTS = ("/invoke", "/invoke-with-response-stream", "/converse", "/converse-stream")
CASES = interactions("bedrock", ENDPOINTS)

# Response headers that describe the recorded transfer, not the response: the replay sets its own.
_HOP_BY_HOP = frozenset(
    {"content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"}
)

# gen_ai.request.model for the model ids that are not plain foundation model ids (docs/bedrock.md).
RESOLVED_MODEL = {
    "arn:aws:bedrock:us-east-1:012345678901:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0": (
        "anthropic.claude-3-7-sonnet-20250219-v1:0"
    ),
    "us.amazon.nova-lite-v1:0": "amazon.nova-lite-v1:0",
    "arn:aws:sagemaker:us-east-1:767398002385:endpoint/endpoint-quick-start-idr7y": (
        "endpoint/endpoint-quick-start-idr7y"
    ),
}

# What the recorded guardrail traces say, checked by hand: (action, policy types that acted).
_SENSITIVE = ("INTERVENED", ["sensitive_information"])
GUARDRAILS = {
    "test_titan_converse_guardrail": _SENSITIVE,
    "test_titan_converse_stream_guardrail": _SENSITIVE,
    "test_titan_invoke_model_guardrail": _SENSITIVE,
    "test_titan_invoke_stream_guardrail": _SENSITIVE,
    "test_anthropic_cross_region": ("NONE", []),
    "test_guardrail_converse": _SENSITIVE,
    "test_guardrail_converse_stream": _SENSITIVE,
    "test_guardrail_invoke": _SENSITIVE,
    "test_guardrail_invoke_stream": ("INTERVENED", ["topic"]),  # the prompt itself was blocked
    "test_nova_completion": _SENSITIVE,
    "test_nova_converse": _SENSITIVE,
    "test_nova_converse_stream": _SENSITIVE,
    "test_nova_invoke_stream": _SENSITIVE,
    "test_titan_converse": _SENSITIVE,
    "test_titan_converse_stream": _SENSITIVE,
    "test_titan_invoke_stream": _SENSITIVE,
}

# Responses that carry no finish reason at all (a prompt blocked by the guardrail: one chunk).
NO_FINISH_REASON = frozenset({"test_guardrail_invoke_stream"})

# Exact values for a few cases, written out from the cassettes.
EXACT: dict[tuple[str, int], dict[str, Any]] = {
    # Anthropic prompt caching: 4 uncached input tokens plus 18131 written to / read from the cache.
    ("test_invoke_model_cache_tokens", 0): {
        "gen_ai.usage.input_tokens": 18135,
        "gen_ai.usage.cache_creation.input_tokens": 18131,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.output_tokens": 50,
        "gen_ai.response.model": "claude-3-5-haiku-20241022",
        "gen_ai.response.finish_reasons": ("max_tokens",),
    },
    ("test_invoke_model_cache_tokens", 1): {
        "gen_ai.usage.input_tokens": 18135,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "gen_ai.usage.cache_read.input_tokens": 18131,
    },
    # AI21 Jurassic-2 reports no counts in its body; Bedrock's headers do.
    ("test_ai21_j2_completion_string_content", 0): {
        "gen_ai.operation.name": "text_completion",
        "gen_ai.usage.input_tokens": 26,
        "gen_ai.usage.output_tokens": 42,
        "gen_ai.response.finish_reasons": ("endoftext",),
    },
    # The guardrail family: what each policy found, by category (the matches are content).
    ("test_titan_converse_guardrail", 0): {
        sc.GEN_AI_BEDROCK_GUARDRAIL_SENSITIVE_INFO: ("ADDRESS",),
        sc.GEN_AI_BEDROCK_GUARDRAIL_CONTEXTUAL: 0.94,  # the lower of GROUNDING 0.94, RELEVANCE 1.0
        sc.GEN_AI_GUARDRAIL_GROUNDING_TYPE: "GROUNDING",
    },
    ("test_titan_invoke_model_guardrail", 0): {
        sc.GEN_AI_BEDROCK_GUARDRAIL_SENSITIVE_INFO: ("Account Number",),  # a configured regex's name
    },
    # Nova with a guardrail: the body's usage lost outputTokens; the header has it.
    ("test_nova_completion", 0): {"gen_ai.usage.input_tokens": 30, "gen_ai.usage.output_tokens": 51},
    ("test_anthropic_converse_stream_with_tool_use", 0): {
        "gen_ai.completion.0.tool_calls.0.name": "get_weather",
        "gen_ai.completion.0.tool_calls.0.id": "tooluse_yypYDr71TwCwByoyao4-Vg",
        "gen_ai.completion.0.tool_calls.0.arguments": '{"location": "Barcelona"}',
        "gen_ai.response.finish_reasons": ("tool_use",),
        "llm.request.functions.0.name": "get_weather",
    },
    ("test_meta_converse", 0): {
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "You are an app that knows about everything.",
        "gen_ai.prompt.1.content": "Tell me a joke about opentelemetry",
    },
    ("test_imported_model_completion", 0): {
        "gen_ai.response.model": "/opt/ml/model",
        "gen_ai.response.finish_reasons": ("length",),
        "gen_ai.usage.input_tokens": 6,
        "gen_ai.usage.output_tokens": 100,
    },
}


def _ids(case: Interaction) -> str:
    return case.label()


def _stem(case: Interaction) -> str:
    stem = case.cassette.stem
    for suffix in ("_with_events_with_content", "_with_events_with_no_content"):
        stem = stem.removesuffix(suffix)
    return stem


def _request_headers(case: Interaction) -> dict[str, str]:
    """The recorded request headers (the loader keeps only response headers); values may be binary."""
    data = yaml.safe_load(case.cassette.read_text(encoding="utf-8")) or {}
    headers = data["interactions"][case.index]["request"].get("headers") or {}
    out: dict[str, str] = {}
    for name, values in headers.items():
        value = values[0] if isinstance(values, list) and values else values
        out[str(name).lower()] = value.decode() if isinstance(value, bytes) else str(value)
    return out


class Replay:
    """Answers with the selected interaction's recorded status, headers and body, byte for byte."""

    def __init__(self) -> None:
        self.current: Interaction | None = None
        self.requests: list[tuple[str, bytes]] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                replay.requests.append((self.path, body))
                case = replay.current
                if case is None:
                    self.send_error(500, "no interaction selected")
                    return
                self.send_response_only(case.status)
                for name, value in case.headers.items():
                    if name not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("content-length", str(len(case.body)))
                self.end_headers()
                self.wfile.write(case.body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def replay() -> Iterator[Replay]:
    server = Replay()
    yield server
    server.stop()


def _client(url: str) -> Any:
    import boto3
    import botocore.config

    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 0}),
    )


def _model_id(case: Interaction) -> str:
    return unquote(case.path.split("/model/", 1)[1].rsplit("/", 1)[0])


def _call(case: Interaction, url: str) -> Any:
    """Sends the recorded request through boto3; returns what the caller sees, made comparable."""
    client = _client(url)
    model_id = _model_id(case)
    action = case.path.rsplit("/", 1)[1]
    if action.startswith("converse"):
        body = case.request_json()
        method = client.converse if action == "converse" else client.converse_stream
        result = method(modelId=model_id, **body)
    else:
        headers = _request_headers(case)
        kwargs: dict[str, Any] = {"modelId": model_id, "body": case.request_body}
        for name, param in (
            ("x-amzn-bedrock-guardrailidentifier", "guardrailIdentifier"),
            ("x-amzn-bedrock-guardrailversion", "guardrailVersion"),
            ("x-amzn-bedrock-trace", "trace"),
        ):
            if name in headers:
                kwargs[param] = headers[name]
        method = client.invoke_model if action == "invoke" else client.invoke_model_with_response_stream
        result = method(**kwargs)
    seen = dict(result)
    if "body" in seen and hasattr(seen["body"], "read"):
        seen["body"] = seen["body"].read()
    for key in ("body", "stream"):
        if key in seen and not isinstance(seen[key], bytes):
            seen[key] = list(seen[key])
    return seen


def _chunks(case: Interaction) -> list[dict[str, Any]]:
    """The recorded event stream, decoded: Converse events, or InvokeModel chunks' JSON."""
    out = []
    for headers, payload in decode_messages(case.body):
        event = json.loads(payload)
        if headers.get(":event-type") == "chunk":
            out.append(json.loads(base64.b64decode(event["bytes"])))
        else:
            out.append({headers[":event-type"]: event})
    return out


def _expected_tokens(case: Interaction) -> tuple[int | None, int | None, int | None, int | None]:
    """(input, output, cache read, cache write) as Bedrock recorded them (input without cache)."""
    action = case.path.rsplit("/", 1)[1]
    if action == "invoke":
        h = case.headers

        def header(name: str) -> int | None:
            value = h.get(f"x-amzn-bedrock-{name}-token-count")
            return int(value) if value is not None else None

        return header("input"), header("output"), header("cache-read-input"), header("cache-write-input")
    if action == "converse":
        usage = case.response_json()["usage"]
    elif action == "converse-stream":
        usage = next(c["metadata"]["usage"] for c in _chunks(case) if "metadata" in c)
    else:
        chunks = _chunks(case)
        metrics = chunks[-1].get("amazon-bedrock-invocationMetrics")
        if metrics is None:  # a blocked prompt: Titan's own counts only
            titan = {k: int(v) for c in chunks for k, v in c.items() if k.endswith("TokenCount")}
            return titan.get("inputTextTokenCount"), titan.get("totalOutputTextTokenCount"), None, None
        return (
            metrics.get("inputTokenCount"),
            metrics.get("outputTokenCount"),
            metrics.get("cacheReadInputTokenCount"),
            metrics.get("cacheWriteInputTokenCount"),
        )
    # botocore keeps only the modeled names (cacheReadInputTokens, not ...TokenCount).
    return (
        usage.get("inputTokens"),
        usage.get("outputTokens"),
        usage.get("cacheReadInputTokens"),
        usage.get("cacheWriteInputTokens"),
    )


def _expected_text(case: Interaction) -> str | None:
    """The completion text as the recorded response carries it, by each family's own fields."""
    action = case.path.rsplit("/", 1)[1]
    if action == "converse":
        blocks = case.response_json()["output"]["message"]["content"]
        return "".join(b["text"] for b in blocks if "text" in b)
    if action.endswith("stream"):
        parts: list[str] = []
        for c in _chunks(case):
            delta = (c.get("contentBlockDelta") or {}).get("delta") or c.get("delta") or {}
            parts.append(delta.get("text") or "")
            parts.append(c.get("outputText") or c.get("generation") or "")
        return "".join(parts) or None
    body = case.response_json()
    if "content" in body:  # Anthropic messages
        return "".join(b["text"] for b in body["content"] if b.get("type") == "text")
    if "completion" in body:
        return str(body["completion"])
    if "results" in body:
        return str(body["results"][0]["outputText"])
    if "output" in body:
        return "".join(b["text"] for b in body["output"]["message"]["content"] if "text" in b)
    if "generation" in body:
        return str(body["generation"])
    if "generations" in body:
        return str(body["generations"][0]["text"])
    if "completions" in body:
        return str(body["completions"][0]["data"]["text"])
    if "choices" in body:
        return str(body["choices"][0]["text"])
    return None


@pytest.mark.skipif(not CASES, reason="recorded traffic (../shared/recorded) not available")
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_replay(case: Interaction, replay: Replay, telemetry: Telemetry) -> None:
    replay.current = case
    plain = _call(case, replay.url)
    with telemetry.instrumenting(BedrockInstrumentor()):
        instrumented = _call(case, replay.url)
    assert instrumented == plain, "the caller must see exactly what it sees without instrumentation"
    assert replay.requests[-1] == replay.requests[-2], "the SDK must send the same request"

    (span,) = telemetry.spans()
    a = dict(span.attributes or {})
    model_id = _model_id(case)
    model = RESOLVED_MODEL.get(model_id, model_id)
    assert a[sc.GEN_AI_REQUEST_MODEL] == model
    assert span.name == f"{a[sc.GEN_AI_OPERATION_NAME]} {model}"
    assert (a[sc.GEN_AI_PROVIDER_NAME], a[sc.GEN_AI_SYSTEM]) == ("aws.bedrock", "AWS")
    assert a[sc.SERVER_ADDRESS] == "127.0.0.1"
    if model_id != model:
        assert a["aws.bedrock.model_id"] == model_id
    assert a["aws.request_id"] == case.headers["x-amzn-requestid"]

    tokens_in, tokens_out, cache_read, cache_write = _expected_tokens(case)
    if tokens_in is not None:
        assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == tokens_in + (cache_read or 0) + (cache_write or 0)
    if tokens_out is not None:
        assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == tokens_out
    assert a.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) == cache_read
    assert a.get(sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS) == cache_write

    text = _expected_text(case)
    if text:
        assert a["gen_ai.completion.0.content"] == text
    if _stem(case) in NO_FINISH_REASON:
        assert sc.GEN_AI_RESPONSE_FINISH_REASONS not in a  # none recorded: none invented
    else:
        assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS]

    metrics = telemetry.metrics_agree_with(a)  # read at once, as a flush right after the call would
    guard = GUARDRAILS.get(_stem(case))
    if guard is None:
        assert sc.AWS_BEDROCK_GUARDRAIL_ACTION not in a
        assert sc.METRIC_GUARDRAIL_ACTIVATIONS not in metrics
    else:
        action, types = guard
        assert a[sc.AWS_BEDROCK_GUARDRAIL_ACTION] == action
        assert a[sc.AWS_BEDROCK_GUARDRAIL_VERSION] == "DRAFT"
        assert a[sc.GEN_AI_BEDROCK_GUARDRAIL_ACTIVATION] is (action == "INTERVENED")
        assert (a[sc.GEN_AI_GUARDRAIL_ID], a[sc.GEN_AI_GUARDRAIL_VERSION]) == (
            a[sc.AWS_BEDROCK_GUARDRAIL_ID],
            "DRAFT",
        )
        points = metrics.get(sc.METRIC_GUARDRAIL_ACTIVATIONS, [])
        assert sorted(p.attributes.get(sc.GEN_AI_GUARDRAIL_POLICY, "") for p in points) == types
        assert {p.attributes[sc.GEN_AI_GUARDRAIL_ID] for p in points} <= {a[sc.AWS_BEDROCK_GUARDRAIL_ID]}
        # What was matched (addresses, account numbers) is content: never in a guardrail attribute.
        guard_values = str(
            [v for k, v in a.items() if k.startswith(("gen_ai.bedrock.guardrail", "gen_ai.guardrail"))]
        )
        assert "1234561666" not in guard_values and "Tokyo" not in guard_values

    for key, value in EXACT.get((_stem(case), case.index), {}).items():
        got = a.get(key)
        assert (tuple(got) if isinstance(got, (list, tuple)) else got) == value, key
