"""The recorder through a fake adapter: both profiles, content rules, errors, events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from genai_observe import CaptureMode, Profile
from genai_observe._core import semconv as sc
from genai_observe._core.content import ContentPolicy
from genai_observe._core.record import (
    Choice,
    GuardrailAssessment,
    GuardrailFinding,
    LLMCall,
    Message,
    ToolCall,
    Usage,
)
from genai_observe.instrumentation._kit.calls import finish_with, run_sync
from tests.conftest import Telemetry

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
OPENAI_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


class FakeResponse:
    def __init__(self, text: str) -> None:
        self.text = text


def fake_request(**overrides: Any) -> LLMCall:
    """What a provider adapter would build from a chat request."""
    call = LLMCall(
        operation=sc.OP_CHAT,
        provider=sc.PROVIDER_OPENAI,
        request_model="gpt-4o",
        server_address="api.openai.com",
        server_port=443,
        api_base="https://api.openai.com/v1",
        max_tokens=100,
        temperature=0.2,
        top_p=0.9,
        stop_sequences=["\n\n"],
        input_messages=[
            Message(role="system", content="You are terse."),
            Message(
                role="user",
                content=[
                    {"type": "text", "text": "Describe"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            ),
            Message(
                role="assistant", tool_calls=[ToolCall(name="lookup", arguments='{"q": "x"}', id="call_1")]
            ),
            Message(role="tool", content="42", tool_call_id="call_1"),
        ],
        tool_definitions=[{"name": "lookup", "description": "Look up", "parameters": {"type": "object"}}],
    )
    for key, value in overrides.items():
        setattr(call, key, value)
    return call


def fake_fill(call: LLMCall, response: FakeResponse) -> None:
    call.response_id = "chatcmpl-1"
    call.response_model = "gpt-4o-2024-08-06"
    call.choices = [
        Choice(index=0, content=response.text, finish_reason="stop"),
        Choice(
            index=1,
            content=None,
            finish_reason="tool_calls",
            tool_calls=[ToolCall(name="lookup", arguments='{"q":"y"}', id="call_2")],
        ),
    ]
    call.usage = Usage(
        input_tokens=20, output_tokens=10, cache_read_input_tokens=5, reasoning_output_tokens=3
    )
    call.response_attributes[sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = "fp_1"


def call_through(telemetry: Telemetry, text: str = "Hello there", **kw: Any) -> Any:
    recorder = telemetry.recorder(**kw)
    return run_sync(recorder, fake_request, lambda: FakeResponse(text), (), {}, finish_with(fake_fill))


def test_dynatrace_profile_attributes(telemetry: Telemetry) -> None:
    result = call_through(telemetry)
    assert isinstance(result, FakeResponse)  # the caller gets the provider's object unchanged
    span = telemetry.span()
    a = dict(span.attributes or {})
    assert span.name == "chat gpt-4o" and span.kind is SpanKind.CLIENT
    expected = {
        "gen_ai.system": "openai",
        "llm.request.type": "chat",
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.request.max_tokens": 100,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.usage.prompt_tokens": 20,
        "gen_ai.usage.completion_tokens": 10,
        "gen_ai.usage.input_tokens": 20,
        "gen_ai.usage.output_tokens": 10,
        "gen_ai.usage.cache_read.input_tokens": 5,
        "gen_ai.usage.reasoning.output_tokens": 3,
        "llm.usage.total_tokens": 30,
        "gen_ai.openai.api_base": "https://api.openai.com/v1",
        "gen_ai.openai.system_fingerprint": "fp_1",
        "openai.response.system_fingerprint": "fp_1",
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "You are terse.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.2.tool_calls.0.name": "lookup",
        "gen_ai.prompt.3.role": "tool",
        "gen_ai.prompt.3.tool_call_id": "call_1",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "Hello there",
        "gen_ai.completion.0.finish_reason": "stop",
        "gen_ai.completion.1.tool_calls.0.name": "lookup",
        "gen_ai.completion.1.tool_calls.0.arguments": '{"q":"y"}',
        "llm.request.functions.0.name": "lookup",
    }
    for key, value in expected.items():
        assert a.get(key) == value, key
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop", "tool_calls")
    # Vision input: parts as JSON, the image never exported as bytes.
    parts = json.loads(a["gen_ai.prompt.1.content"])
    assert parts[0] == {"type": "text", "text": "Describe"}
    assert "AAAA" not in a["gen_ai.prompt.1.content"]
    # The v1.41.0 JSON form too (the app reads it first), exactly as the latest profile writes it.
    telemetry.span_exporter.clear()
    call_through(telemetry, profile=Profile.LATEST)
    latest = dict(telemetry.span().attributes or {})
    for key in (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_TOOL_DEFINITIONS):
        assert a[key] == latest[key], key


def test_dynatrace_profile_without_the_flat_form(telemetry: Telemetry) -> None:
    """legacy_form=False: only the JSON form carries content; metadata stays flat."""
    call_through(telemetry, content=ContentPolicy(legacy_form=False))
    a = dict(telemetry.span().attributes or {})
    flat = [k for k in a if sc.FLAT_CONTENT_KEY.match(k)]
    assert flat == []
    assert json.loads(a[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "You are terse."
    assert json.loads(a[sc.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "Hello there"
    assert json.loads(a[sc.GEN_AI_TOOL_DEFINITIONS])[0]["name"] == "lookup"
    # Not content: the dynatrace profile's other names and the per-choice finish reasons stay.
    assert a["gen_ai.system"] == "openai" and a["gen_ai.usage.prompt_tokens"] == 20
    assert a["gen_ai.completion.0.finish_reason"] == "stop"


def test_system_instructions_in_both_forms(telemetry: Telemetry) -> None:
    """Separate system instructions (Anthropic, Bedrock): gen_ai.system_instructions (AR-043)
    and, in the flat form, gen_ai.prompt.0 as OpenLLMetry wrote it."""
    recorder = telemetry.recorder()
    build = lambda: fake_request(system_instructions=["Be brief."])  # noqa: E731
    run_sync(recorder, build, lambda: FakeResponse("x"), (), {}, finish_with(fake_fill))
    a = dict(telemetry.span().attributes or {})
    assert json.loads(a[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
    assert (a["gen_ai.prompt.0.role"], a["gen_ai.prompt.0.content"]) == ("system", "Be brief.")
    # The primary form keeps the instructions out of the messages: the prompts table shows the
    # user's message, not the system prompt the flat fallback puts at index 0.
    assert json.loads(a[sc.GEN_AI_INPUT_MESSAGES])[0]["role"] == "system"  # the chat history's own


def test_masking_and_cap_apply_to_both_forms(telemetry: Telemetry) -> None:
    policy = ContentPolicy(max_length=40)
    recorder = telemetry.recorder(content=policy)
    text = f"key {OPENAI_KEY} " + "y" * 100
    build = lambda: fake_request(input_messages=[Message(role="user", content=text)])  # noqa: E731
    run_sync(recorder, build, lambda: FakeResponse(text), (), {}, finish_with(fake_fill))
    a = dict(telemetry.span().attributes or {})
    for value in (
        a["gen_ai.prompt.0.content"],
        a["gen_ai.completion.0.content"],
        json.loads(a[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"],
        json.loads(a[sc.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"],
    ):
        assert OPENAI_KEY not in value and "[REDACTED]" in value and value.endswith("…[truncated]")


def test_latest_profile_is_v141_only(telemetry: Telemetry) -> None:
    call_through(telemetry, profile=Profile.LATEST)
    a = dict(telemetry.span().attributes or {})
    for legacy in (
        "gen_ai.system",
        "llm.request.type",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.openai.api_base",
        "gen_ai.openai.system_fingerprint",
        "llm.usage.total_tokens",
    ):
        assert legacy not in a, legacy
    assert not any(k.startswith(("gen_ai.prompt.", "gen_ai.completion.", "llm.request.functions")) for k in a)
    inputs = json.loads(a["gen_ai.input.messages"])
    assert inputs[0] == {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]}
    assert inputs[1]["parts"][1] == {"type": "blob", "modality": "image", "content": "<omitted>"}
    assert inputs[2]["parts"][0] == {
        "type": "tool_call",
        "id": "call_1",
        "name": "lookup",
        "arguments": {"q": "x"},
    }
    assert inputs[3]["parts"][0] == {"type": "tool_call_response", "id": "call_1", "response": "42"}
    outputs = json.loads(a["gen_ai.output.messages"])
    assert outputs[0] == {
        "role": "assistant",
        "parts": [{"type": "text", "content": "Hello there"}],
        "finish_reason": "stop",
    }
    assert outputs[1]["parts"][0]["name"] == "lookup"
    tools = json.loads(a["gen_ai.tool.definitions"])
    assert tools == [
        {"type": "function", "name": "lookup", "description": "Look up", "parameters": {"type": "object"}}
    ]
    assert a["gen_ai.usage.input_tokens"] == 20 and a["openai.response.system_fingerprint"] == "fp_1"


@pytest.mark.parametrize("profile", list(Profile))
def test_no_content_mode_exports_no_text(telemetry: Telemetry, profile: Profile) -> None:
    call_through(telemetry, "the secret answer", capture=CaptureMode.NO_CONTENT, profile=profile)
    a = dict(telemetry.span().attributes or {})
    blob = json.dumps({k: str(v) for k, v in a.items()})
    assert "the secret answer" not in blob and "You are terse" not in blob and "Describe" not in blob
    assert a["gen_ai.usage.input_tokens"] == 20
    assert telemetry.logs() == []


def test_event_only_mode_puts_content_on_the_log_event(telemetry: Telemetry) -> None:
    call_through(telemetry, capture=CaptureMode.EVENT_ONLY)
    span = telemetry.span()
    assert "gen_ai.completion.0.content" not in (span.attributes or {})
    (log,) = telemetry.logs()
    assert log.event_name == sc.EVENT_INFERENCE_DETAILS
    assert log.span_id == span.context.span_id
    attrs = dict(log.attributes or {})
    assert json.loads(attrs["gen_ai.output.messages"])[0]["parts"][0]["content"] == "Hello there"
    assert attrs["gen_ai.request.model"] == "gpt-4o"


def test_credentials_masked_redaction_hook_and_cap_keep_json_valid(telemetry: Telemetry) -> None:
    long_text = "x" * 500
    policy = ContentPolicy(max_length=100, redact=lambda s: s.replace("Hello", "[name]"))
    recorder = telemetry.recorder(profile=Profile.LATEST, content=policy)

    def build() -> LLMCall:
        return fake_request(
            input_messages=[
                Message(
                    role="user", content=f"my key is {OPENAI_KEY} and aws {AWS_KEY}; Bearer abcdefghijklmnop"
                ),
                Message(role="user", content=long_text),
            ]
        )

    run_sync(recorder, build, lambda: FakeResponse("Hello " + long_text), (), {}, finish_with(fake_fill))
    a = dict(telemetry.span().attributes or {})
    inputs = json.loads(a["gen_ai.input.messages"])  # still valid JSON after truncation
    first = inputs[0]["parts"][0]["content"]
    assert OPENAI_KEY not in first and AWS_KEY not in first and "abcdefghijklmnop" not in first
    assert first.count("[REDACTED]") == 3
    assert len(inputs[1]["parts"][0]["content"]) < 120 and inputs[1]["parts"][0]["content"].endswith(
        "[truncated]"
    )
    outputs = json.loads(a["gen_ai.output.messages"])
    assert outputs[0]["parts"][0]["content"].startswith("[name] xxx")


def test_error_reaches_caller_unchanged_and_is_recorded(telemetry: Telemetry) -> None:
    class RateLimitError(Exception):
        pass

    err = RateLimitError("Incorrect API key provided: sk-proj-abcdefghijklmnopqrstuvwxyz0123")

    def boom() -> None:
        raise err

    recorder = telemetry.recorder()
    with pytest.raises(RateLimitError) as info:
        run_sync(recorder, fake_request, boom, (), {}, finish_with(fake_fill))
    assert info.value is err
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "RateLimitError"
    assert "sk-proj-abc" not in (span.status.description or "")
    (event,) = [e for e in span.events if e.name == "exception"]
    event_attributes = dict(event.attributes or {})
    assert event_attributes["exception.type"].endswith("RateLimitError")
    assert event_attributes["exception.message"].startswith("Incorrect API key provided: [REDACTED]")
    assert "sk-proj-abc" not in str(event_attributes["exception.stacktrace"])  # the traceback quotes it too
    assert "RateLimitError" in str(event_attributes["exception.stacktrace"])
    duration = telemetry.metrics()[sc.METRIC_OPERATION_DURATION]
    assert duration[0].attributes["error.type"] == "RateLimitError"
    assert sc.METRIC_TOKEN_USAGE not in telemetry.metrics()


def test_adapter_bugs_never_reach_the_caller(telemetry: Telemetry) -> None:
    recorder = telemetry.recorder()

    def broken_build() -> LLMCall:
        raise KeyError("adapter bug")

    def broken_fill(call: LLMCall, response: Any) -> None:
        raise TypeError("unexpected response type")

    # A broken request reader: the call runs uninstrumented.
    assert run_sync(recorder, broken_build, lambda: 7, (), {}, finish_with(fake_fill)) == 7
    assert telemetry.spans() == []
    # A broken response reader: the span still ends, with what was known.
    assert run_sync(recorder, fake_request, lambda: 8, (), {}, finish_with(broken_fill)) == 8
    span = telemetry.span()
    assert (span.attributes or {})["gen_ai.request.model"] == "gpt-4o"

    def broken_on_result(inv: Any, result: Any) -> Any:
        raise RuntimeError("bug in on_result")

    assert run_sync(recorder, fake_request, lambda: 9, (), {}, broken_on_result) == 9
    assert len(telemetry.spans()) == 2 and all(s.end_time for s in telemetry.spans())


def test_metrics_have_only_low_cardinality_attributes(telemetry: Telemetry) -> None:
    call_through(telemetry)
    metrics = telemetry.metrics()
    tokens = metrics[sc.METRIC_TOKEN_USAGE]
    assert sorted((p.attributes["gen_ai.token.type"], p.sum) for p in tokens) == [
        ("cache_read", 5),  # a part of input, as its own point; no cache_creation point for None
        ("input", 20),
        ("output", 10),
    ]
    assert metrics[sc.METRIC_GENERATION_CHOICES][0].value == 2
    for points in metrics.values():
        for p in points:
            assert set(p.attributes) <= {*sc.METRIC_ATTRIBUTE_KEYS, *sc.METRIC_EXTRA_KEYS}


def test_suppressed_context_records_nothing(telemetry: Telemetry) -> None:
    from opentelemetry import context

    token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))  # type: ignore[attr-defined]
    try:
        assert isinstance(call_through(telemetry), FakeResponse)
    finally:
        context.detach(token)
    assert telemetry.spans() == []


def test_provider_span_is_current_during_the_call(telemetry: Telemetry) -> None:
    from opentelemetry import trace

    seen: list[Any] = []
    recorder = telemetry.recorder()
    run_sync(
        recorder,
        fake_request,
        lambda: seen.append(trace.get_current_span()) or FakeResponse("x"),
        (),
        {},
        finish_with(fake_fill),
    )
    span = telemetry.span()
    assert seen[0].get_span_context().span_id == span.context.span_id
    assert trace.get_current_span().get_span_context().is_valid is False


def test_finish_reasons_are_not_content(telemetry: Telemetry) -> None:
    call_through(telemetry, capture=CaptureMode.NO_CONTENT)
    a = dict(telemetry.span().attributes or {})
    assert a["gen_ai.completion.0.finish_reason"] == "stop"
    assert a["gen_ai.completion.1.finish_reason"] == "tool_calls"
    assert "gen_ai.completion.0.content" not in a and "gen_ai.completion.0.role" not in a


def test_nested_and_empty_content_parts(telemetry: Telemetry) -> None:
    recorder = telemetry.recorder(profile=Profile.LATEST)

    def build() -> LLMCall:
        return fake_request(
            input_messages=[Message(role="user", content=[[], ["a", {"type": "text", "text": "b"}]])]
        )

    run_sync(recorder, build, lambda: FakeResponse("x"), (), {}, finish_with(fake_fill))
    inputs = json.loads(dict(telemetry.span().attributes or {})["gen_ai.input.messages"])
    assert inputs[0]["parts"] == [{"type": "text", "content": "a"}, {"type": "text", "content": "b"}]


def test_event_keeps_metadata_and_drops_flat_content(telemetry: Telemetry) -> None:
    recorder = telemetry.recorder(capture=CaptureMode.SPAN_AND_EVENT)

    def fill(call: LLMCall, response: Any) -> None:
        fake_fill(call, response)
        call.prompt_filter_results = [{"prompt_index": 0}]

    run_sync(recorder, fake_request, lambda: FakeResponse("x"), (), {}, finish_with(fill))
    (log,) = telemetry.logs()
    attrs = dict(log.attributes or {})
    assert "gen_ai.prompt.0.content" not in attrs and "gen_ai.completion.0.content" not in attrs
    assert attrs["gen_ai.completion.0.finish_reason"] == "stop"
    assert "gen_ai.prompt.prompt_filter_results" in attrs
    assert "gen_ai.input.messages" in attrs


SAFE = {"hate": {"filtered": False, "severity": "safe"}}
FILTERED = {"hate": {"filtered": True, "severity": "high"}}


@pytest.mark.parametrize(
    ("verdicts", "finish", "expected"),
    [
        ([SAFE], ["stop"], SAFE),  # one choice: its verdict
        ([SAFE, FILTERED], ["stop", "stop"], FILTERED),  # a filtered later choice is not hidden
        ([FILTERED, SAFE], ["stop", "stop"], FILTERED),
        ([None, SAFE], ["stop", "stop"], SAFE),  # the first choice that has one
        ([SAFE, {}], ["stop", "content_filter"], {}),  # ended by the filters
        ([None], ["stop"], None),  # OpenAI: no verdict, nothing made up
    ],
)
def test_unindexed_completion_filter_verdict(
    telemetry: Telemetry, verdicts: list[Any], finish: list[str], expected: Any
) -> None:
    """AR-016: the Azure guardrail cards read gen_ai.completion.content_filter_results (no index)."""

    def fill(call: LLMCall, response: Any) -> None:
        call.choices = [
            Choice(index=i, content="x", finish_reason=f, content_filter_results=v)
            for i, (v, f) in enumerate(zip(verdicts, finish, strict=True))
        ]

    run_sync(telemetry.recorder(), fake_request, lambda: FakeResponse("x"), (), {}, finish_with(fill))
    a = dict(telemetry.span().attributes or {})
    if expected is None:
        assert sc.GEN_AI_COMPLETION_CONTENT_FILTER_RESULTS not in a
    else:
        assert json.loads(a[sc.GEN_AI_COMPLETION_CONTENT_FILTER_RESULTS]) == expected
    for i, verdict in enumerate(verdicts):  # the per-choice form as before
        assert (f"gen_ai.completion.{i}.content_filter_results" in a) is (verdict is not None)


def test_guardrail_assessments_become_attributes_and_points(telemetry: Telemetry) -> None:
    def fill(call: LLMCall, response: Any) -> None:
        fake_fill(call, response)
        call.guardrail_id = "gr-1"
        call.guardrail_version = "2"
        call.guardrail_intervened = True
        word = GuardrailFinding(sc.GUARDRAIL_POLICY_WORD, "CUSTOM", "BLOCKED")
        call.guardrail_assessments = [
            GuardrailAssessment(
                "gr-1",
                sc.GUARDRAIL_INPUT,
                [
                    GuardrailFinding(sc.GUARDRAIL_POLICY_CONTENT, "HATE", "BLOCKED", confidence="HIGH"),
                    GuardrailFinding(sc.GUARDRAIL_POLICY_WORD, "PROFANITY", "BLOCKED"),
                    GuardrailFinding(
                        sc.GUARDRAIL_POLICY_CONTEXTUAL_GROUNDING, "RELEVANCE", "NONE", score=0.9
                    ),
                    GuardrailFinding(
                        sc.GUARDRAIL_POLICY_CONTEXTUAL_GROUNDING, "GROUNDING", "NONE", score=0.5
                    ),
                ],
                latency_ms=12.0,
                guarded_characters=30,
            ),
            # Two output assessments acting on the same policy: one activation a call.
            GuardrailAssessment("gr-1", sc.GUARDRAIL_OUTPUT, [word]),
            GuardrailAssessment("gr-1", sc.GUARDRAIL_OUTPUT, [word]),
        ]

    recorder = telemetry.recorder()
    run_sync(recorder, fake_request, lambda: FakeResponse("x"), (), {}, finish_with(fill))
    a = dict(telemetry.span().attributes or {})
    assert a[sc.GEN_AI_BEDROCK_GUARDRAIL_ACTIVATION] is True
    assert (a[sc.GEN_AI_GUARDRAIL_ID], a[sc.GEN_AI_GUARDRAIL_VERSION]) == ("gr-1", "2")
    assert tuple(a[sc.GEN_AI_BEDROCK_GUARDRAIL_CONTENT]) == ("HATE",)
    assert tuple(a[sc.GEN_AI_BEDROCK_GUARDRAIL_WORDS]) == ("CUSTOM", "PROFANITY")
    assert a[sc.GEN_AI_BEDROCK_GUARDRAIL_CONTEXTUAL] == 0.5  # the lowest score, with its type
    assert a[sc.GEN_AI_GUARDRAIL_GROUNDING_TYPE] == "GROUNDING"
    run_sync(recorder, fake_request, lambda: FakeResponse("x"), (), {}, finish_with(fake_fill))  # none
    metrics = telemetry.metrics()
    activations = metrics[sc.METRIC_GUARDRAIL_ACTIVATIONS]
    got = sorted(
        (p.attributes[sc.GEN_AI_GUARDRAIL_POLICY], p.attributes[sc.GEN_AI_GUARDRAIL_TYPE], p.value)
        for p in activations
    )
    assert got == [("content", "input", 1), ("word", "input", 1), ("word", "output", 1)]
    assert {p.attributes[sc.GEN_AI_GUARDRAIL_ID] for p in activations} == {"gr-1"}
    scores = sorted(
        (p.attributes[sc.GEN_AI_GUARDRAIL_GROUNDING_TYPE], p.sum)
        for p in metrics[sc.METRIC_GUARDRAIL_CONTEXTUAL]
    )
    assert scores == [("GROUNDING", 0.5), ("RELEVANCE", 0.9)]
    assert sum(p.value for p in metrics[sc.METRIC_GUARDRAIL_WORDS]) == 3  # every finding counts
    assert [p.sum for p in metrics[sc.METRIC_GUARDRAIL_LATENCY]] == [12.0]
    assert [p.value for p in metrics[sc.METRIC_GUARDRAIL_COVERAGE]] == [30]


def test_metrics_worker_records_on_the_caller_when_no_thread_can_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python 3.12+ refuses new threads once shutdown has begun (atexit hooks included): a point
    submitted then is recorded at once on the submitting thread, never raised or left queued."""
    import threading

    from genai_observe._core.metrics import MetricsWorker

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    worker = MetricsWorker()
    got: list[int] = []
    monkeypatch.setattr(threading.Thread, "start", refuse)
    worker.submit(got.append, 1)
    worker.submit(got.append, 2)
    assert got == [1, 2]
    assert not worker._queue
    monkeypatch.undo()
    worker.submit(got.append, 3)  # once threads can start again, the worker thread takes over
    worker.drain()
    assert got == [1, 2, 3]
