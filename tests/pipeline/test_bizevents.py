"""Business events end to end: audit trail, evaluation results and usage logs, over real HTTP.

The real OpenAI, Anthropic and LangChain code runs against the rig's provider servers; the events
go to tests/rig/bizevents_receiver.py (Dynatrace's Business Events API, with scripted 400, 429 and
hanging answers) and, where they travel as OTLP log records, to the OTLP receiver.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace

import genai_observe
from genai_observe._core import semconv as sc
from genai_observe._pipeline import bizevents as _bizevents
from tests.rig.anthropic_server import AnthropicMockServer
from tests.rig.bizevents_receiver import BizEventsReceiver
from tests.rig.openai_server import OpenAIMockServer
from tests.rig.otlp_receiver import OTLPReceiver

TOKEN = "dt0c01.ABCDEFGHIJKLMNOPQRSTUVWX.SECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETXX"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
AUDIT = sc.EVENT_TYPE_AUDIT
EVALUATION = sc.EVENT_TYPE_EVALUATION_RESULT


def start(otlp: OTLPReceiver, biz: BizEventsReceiver | None, **kwargs: Any) -> genai_observe.Handle:
    kwargs.setdefault("endpoint", otlp.url)
    kwargs.setdefault("metric_export_interval_ms", 600_000)
    kwargs.setdefault("audit_events", True)
    kwargs.setdefault("instrumentations", [])
    if biz is not None:
        kwargs.setdefault("bizevents_endpoint", biz.ingest_url)
        kwargs.setdefault("api_token", TOKEN)
    return genai_observe.init(service_name="svc-audit", **kwargs)


def manual_call(
    model: str = "m1",
    *,
    prompt: str = "What is OTLP?",
    answer: str = "A protocol.",
    response_id: str = "resp-1",
) -> None:
    with genai_observe.llm_call(
        provider="acme", model=model, messages=[{"role": "user", "content": prompt}]
    ) as call:
        call.set_response(
            content=answer, finish_reason="stop", response_id=response_id, input_tokens=4, output_tokens=2
        )


def spans_by_id(otlp: OTLPReceiver) -> dict[str, Any]:
    return {s.span_id: s for s in otlp.spans()}


# --- audit events of real provider calls -------------------------------------------------------


def test_openai_chat_and_embeddings_each_make_one_audit_event_with_the_fields(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver, openai_server: OpenAIMockServer
) -> None:
    handle = start(
        otlp_receiver, bizevents_receiver, instrumentations=["openai"], capture_content="SPAN_ONLY"
    )
    openai_server.script(content="Paris is the capital.", usage={"prompt_tokens": 11, "completion_tokens": 5})
    client = openai_server.client()
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Capital of France?"},
        ],
    )
    client.embeddings.create(model="text-embedding-3-small", input="hello")
    handle.shutdown()

    events = bizevents_receiver.events(AUDIT)
    assert len(events) == 2, events  # once each, no duplicates
    chat = next(e for e in events if e["gen_ai.operation.name"] == "chat")
    span = spans_by_id(otlp_receiver)[chat["span_id"]]
    assert chat["trace_id"] == span.trace_id
    assert span.name == "chat gpt-4o-mini"
    assert chat["event.type"] == AUDIT
    assert chat["event.provider"] == chat["service.name"] == "svc-audit"
    assert chat["gen_ai.provider.name"] == "openai"
    assert chat["gen_ai.model"] == chat["gen_ai.response.model"]
    assert chat["gen_ai.request.model"] == "gpt-4o-mini"
    assert chat["gen_ai.usage.input_tokens"] == 11 and chat["gen_ai.usage.output_tokens"] == 5
    assert chat["gen_ai.response.finish_reasons"] == ["stop"]
    assert chat["status"] == "ok" and "error.type" not in chat
    assert RFC3339.match(chat["start_time"]) and RFC3339.match(chat["end_time"])
    assert chat["start_time"] <= chat["end_time"] and chat["duration_ms"] >= 0
    assert "Capital of France?" in chat["gen_ai.input.messages"]
    assert "Paris is the capital." in chat["gen_ai.output.messages"]
    embeddings = next(e for e in events if e["gen_ai.operation.name"] == "embeddings")
    assert embeddings["gen_ai.request.model"] == "text-embedding-3-small"

    request = bizevents_receiver.requests[0]
    assert request.content_type == "application/cloudevent-batch+json"
    assert request.headers["authorization"] == f"Api-Token {TOKEN}"
    envelope = next(bizevents_receiver.envelopes())
    assert envelope["specversion"] == "1.0" and envelope["type"] == AUDIT
    assert envelope["source"] == "svc-audit" and envelope["id"] and RFC3339.match(envelope["time"])
    assert envelope["traceparent"].startswith("00-")
    assert all(TOKEN.encode() not in r.body for r in bizevents_receiver.requests)  # never in an event
    assert handle.stats()["events"]["sent"] == 2


def test_anthropic_with_capture_off_sends_no_content_and_failed_calls_carry_the_error(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver, anthropic_server: AnthropicMockServer
) -> None:
    handle = start(otlp_receiver, bizevents_receiver, instrumentations=["anthropic"], capture_content=False)
    anthropic_server.script(text="zebra-answer-text")
    anthropic_server.script_error(
        400, "prompt giraffe-prompt-text is not allowed", type="invalid_request_error"
    )
    client = anthropic_server.client()
    client.messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=50,
        system="system-okapi-text",
        messages=[{"role": "user", "content": "giraffe-prompt-text"}],
    )
    with pytest.raises(Exception, match="giraffe"):
        client.messages.create(
            model="claude-3-5-haiku-latest",
            max_tokens=50,
            messages=[{"role": "user", "content": "giraffe-prompt-text"}],
        )
    handle.shutdown()

    ok, failed = sorted(bizevents_receiver.events(AUDIT), key=lambda e: e["status"] == "error")
    assert ok["gen_ai.provider.name"] == "anthropic" and ok["status"] == "ok"
    assert failed["status"] == "error" and failed["error.type"]
    for key in (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS):
        assert key not in ok and key not in failed
    sent = bizevents_receiver.everything()
    for text in (b"zebra-answer-text", b"giraffe-prompt-text", b"system-okapi-text"):
        assert text not in sent


def test_content_in_audit_events_is_masked_and_capped(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver
) -> None:
    secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
    handle = start(otlp_receiver, bizevents_receiver, max_content_length=40)
    manual_call(prompt=f"my key is {secret} " + "x" * 200)
    handle.shutdown()
    (event,) = bizevents_receiver.events(AUDIT)
    assert secret not in event["gen_ai.input.messages"] and "[REDACTED]" in event["gen_ai.input.messages"]
    assert "…[truncated]" in event["gen_ai.input.messages"]
    assert secret.encode() not in bizevents_receiver.everything()


# --- tool and agent steps (LangChain) ------------------------------------------------------------


@pytest.mark.parametrize("profile", ["dynatrace", "latest"])
def test_langchain_tool_and_agent_steps_make_audit_events(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver, profile: str
) -> None:
    from langchain_core.agents import AgentAction, AgentFinish
    from langchain_core.callbacks import CallbackManager

    handle = start(otlp_receiver, bizevents_receiver, instrumentations=["langchain"], profile=profile)
    manager = CallbackManager.configure()
    run = manager.on_chain_start({"id": ["x", "MyAgent"], "name": "MyAgent"}, {"input": "hi there"})
    tool_run = run.get_child().on_tool_start({"name": "lookup"}, "q", inputs={"q": "capybara-query"})
    tool_run.on_tool_end("capybara-result")
    run.on_agent_action(AgentAction(tool="lookup", tool_input="q", log=""))
    run.on_agent_finish(AgentFinish(return_values={"output": "done"}, log=""))
    run.on_chain_end({"output": "done"})
    handle.shutdown()

    events = {e["gen_ai.operation.name"]: e for e in bizevents_receiver.events(AUDIT)}
    assert set(events) == {"execute_tool", "invoke_agent"}
    tool_event, agent_event = events["execute_tool"], events["invoke_agent"]
    assert tool_event["gen_ai.tool.name"] == "lookup"
    assert "capybara-query" in tool_event["gen_ai.tool.call.arguments"]
    assert "capybara-result" in tool_event["gen_ai.tool.call.result"]
    assert agent_event["gen_ai.agent.name"] == "MyAgent"
    spans = spans_by_id(otlp_receiver)
    assert spans[tool_event["span_id"]].parent_span_id == agent_event["span_id"]
    assert tool_event["trace_id"] == agent_event["trace_id"]


def test_langchain_steps_without_content(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver
) -> None:
    from langchain_core.tools import tool

    @tool
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    handle = start(otlp_receiver, bizevents_receiver, instrumentations=["langchain"], capture_content=False)
    assert shout.invoke({"text": "capybara"}) == "CAPYBARA"
    handle.shutdown()
    (event,) = bizevents_receiver.events(AUDIT)
    assert event["gen_ai.tool.name"] == "shout" and event["status"] == "ok"
    assert b"capybara" not in bizevents_receiver.everything().lower()


# --- evaluation results ----------------------------------------------------------------------------


def test_evaluation_results_link_to_the_right_span_without_audit_events(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver
) -> None:
    handle = start(otlp_receiver, bizevents_receiver, audit_events=False)
    with genai_observe.llm_call(provider="acme", model="m1") as call:
        call.set_response(content="x", response_id="resp-current")
        assert genai_observe.record_evaluation(
            "relevance",
            score_value=0.9,
            score_label="pass",
            method="llm_as_judge",
            scoring_format="numeric",
            evaluation_type="ready_made",
            version="1",
            spec_id="spec-7",
            explanation="on topic",
            question="q?",
            answer="a.",
        )
    manual_call(model="m2", response_id="resp-later")
    tracer = handle.tracer_provider.get_tracer("app")  # the globals may be an earlier test's
    with tracer.start_as_current_span("app work") as app_span:
        pass
    assert genai_observe.record_evaluation("accuracy", score_label="fail", response_id="resp-later")
    assert genai_observe.record_evaluation(
        "toxicity", score_value=0, span_context=app_span.get_span_context()
    )
    handle.shutdown()

    assert bizevents_receiver.events(AUDIT) == []  # audit events are off
    events = {e["gen_ai.evaluation.name"]: e for e in bizevents_receiver.events(EVALUATION)}
    spans = {s.name: s for s in otlp_receiver.spans()}
    relevance = events["relevance"]
    assert (relevance["trace_id"], relevance["span_id"]) == (
        spans["chat m1"].trace_id,
        spans["chat m1"].span_id,
    )
    assert relevance["gen_ai.evaluation.score.value"] == 0.9
    assert relevance["gen_ai.evaluation.score.label"] == "pass"
    assert relevance["gen_ai.evaluation.method"] == "llm_as_judge"
    assert relevance["gen_ai.evaluation.scoring_format"] == "numeric"
    assert relevance["gen_ai.evaluation.type"] == "ready_made"
    assert (
        relevance["gen_ai.evaluation.version"] == "1" and relevance["gen_ai.evaluation.spec_id"] == "spec-7"
    )
    assert relevance["gen_ai.evaluation.explanation"] == "on topic"
    assert relevance["gen_ai.evaluation.input.question"] == "q?"
    assert relevance["gen_ai.evaluation.input.answer"] == "a."
    assert relevance["gen_ai.provider.name"] == "acme" and relevance["event.provider"] == "svc-audit"
    accuracy = events["accuracy"]
    assert accuracy["span_id"] == spans["chat m2"].span_id
    assert accuracy["gen_ai.response.id"] == "resp-later" and accuracy["gen_ai.model"] == "m2"
    assert events["toxicity"]["span_id"] == spans["app work"].span_id
    assert events["toxicity"]["gen_ai.evaluation.score.value"] == 0

    # ... and the OpenTelemetry event of the same name, in the evaluated span's trace context.
    logs = otlp_receiver.logs(EVALUATION)
    assert len(logs) == 3
    by_name = {log.attributes["gen_ai.evaluation.name"]: log for log in logs}
    assert (by_name["relevance"].trace_id, by_name["relevance"].span_id) == (
        spans["chat m1"].trace_id,
        spans["chat m1"].span_id,
    )


def test_evaluation_content_needs_capture_and_runtime_misses_return_false(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver
) -> None:
    handle = start(otlp_receiver, bizevents_receiver, capture_content="NO_CONTENT")
    manual_call(response_id="resp-1")
    assert genai_observe.record_evaluation(
        "faithfulness", score_label="pass", explanation="quotes tapir-answer", response_id="resp-1"
    )
    assert not genai_observe.record_evaluation("x", response_id="never-seen")  # unknown response
    assert not genai_observe.record_evaluation("x")  # no current span
    handle.shutdown()
    (event,) = bizevents_receiver.events(EVALUATION)
    assert "gen_ai.evaluation.explanation" not in event
    assert b"tapir" not in bizevents_receiver.everything()
    assert all(b"tapir" not in r.body for r in otlp_receiver.requests)


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"name": 3}, TypeError, "name"),
        ({"name": "  "}, ValueError, "name"),
        ({"name": "n", "score_value": "high"}, TypeError, "score_value"),
        ({"name": "n", "score_value": True}, TypeError, "score_value"),
        ({"name": "n", "score_value": float("nan")}, TypeError, "score_value"),
        ({"name": "n", "score_label": 1}, TypeError, "score_label"),
        ({"name": "n", "span_context": "abc"}, TypeError, "span_context"),
        (
            {"name": "n", "response_id": "r", "span_context": trace.INVALID_SPAN_CONTEXT},
            ValueError,
            "not both",
        ),
    ],
)
def test_evaluation_api_misuse_raises_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], argument: str
) -> None:
    name = kwargs.pop("name")
    with pytest.raises(error, match=argument):
        genai_observe.record_evaluation(name, **kwargs)


# --- transport: answers of the Business Events API ------------------------------------------------


def test_429_with_retry_after_and_503_are_retried_and_arrive_once(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver
) -> None:
    bizevents_receiver.queue_response("429", retry_after=1)
    bizevents_receiver.queue_response("status", status=503)
    handle = start(otlp_receiver, bizevents_receiver)
    manual_call()
    assert handle.force_flush(timeout=10)
    requests = bizevents_receiver.requests
    assert [r.status for r in requests] == [429, 503, 202]
    assert requests[1].received_at - requests[0].received_at >= 0.9  # Retry-After honoured
    assert len(bizevents_receiver.events(AUDIT)) == 1
    stats = handle.stats()["events"]
    assert stats["retried"] == 2 and stats["sent"] == 1


def test_400_is_counted_as_rejected_and_not_retried(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bizevents_receiver.set_response("status", status=400, body='{"error": "echo What is OTLP?"}')
    handle = start(otlp_receiver, bizevents_receiver)
    for _ in range(3):
        manual_call()
        handle.force_flush(timeout=5)
    assert len(bizevents_receiver.requests) == 3
    assert handle.stats()["events"]["rejected"] == 3
    assert caplog.text.count("Business Events endpoint answered HTTP 400") == 1  # rate-limited
    assert TOKEN not in caplog.text and "What is OTLP" not in caplog.text


def test_a_refused_body_is_what_dynatrace_would_refuse() -> None:
    from tests.rig.bizevents_receiver import parse_body

    with pytest.raises(ValueError):
        parse_body("application/cloudevent-batch+json", b'[{"specversion": "1.0", "id": "1"}]')
    with pytest.raises(ValueError):
        parse_body("text/plain", b"{}")
    events, _ = parse_body("application/json", b'{"event.type": "t", "a": 1}')
    assert events == [{"event.type": "t", "a": 1}]


def test_a_hanging_endpoint_never_slows_the_app_and_shutdown_is_bounded(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_bizevents.EventPipeline, "MAX_QUEUE", 10)
    bizevents_receiver.set_response("hang")
    handle = start(otlp_receiver, bizevents_receiver, export_timeout=3, shutdown_timeout=2)
    slowest = 0.0
    for i in range(40):
        began = time.perf_counter()
        manual_call(f"m{i}")
        slowest = max(slowest, time.perf_counter() - began)
        if i == 0:
            bizevents_receiver.wait_for(lambda r: r.requests)  # the worker is stuck in the request
    assert slowest < 1.0  # far below the 3 s a call waiting for the stuck request would take
    stats = handle.stats()["events"]
    assert stats["dropped"] >= 20  # the queue stays bounded; drops counted
    began = time.monotonic()
    handle.shutdown()
    assert time.monotonic() - began < 3.5  # the 2 s shutdown timeout, plus scheduling slack
    assert len(otlp_receiver.spans()) == 40  # spans are unaffected


def test_a_dead_endpoint_costs_the_app_nothing(otlp_receiver: OTLPReceiver) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connections are refused
    handle = start(
        otlp_receiver,
        None,
        bizevents_endpoint=f"http://127.0.0.1:{port}/api/v2/bizevents/ingest",
        export_timeout=1,
        shutdown_timeout=2,
    )
    began = time.perf_counter()
    for _ in range(20):
        manual_call()
    assert time.perf_counter() - began < 1.0
    began = time.monotonic()
    handle.shutdown()
    assert time.monotonic() - began < 2.5
    assert len(otlp_receiver.spans()) == 20


def test_shutdown_flushes_queued_events(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver
) -> None:
    handle = start(otlp_receiver, bizevents_receiver)
    for i in range(5):
        manual_call(f"m{i}")
    genai_observe.shutdown()
    assert len(bizevents_receiver.events(AUDIT)) == 5
    assert handle.stats()["events"]["queued"] == 0
    manual_call()  # after shutdown: nothing is queued or sent
    assert _bizevents.active() is None


_FORK_SCRIPT = """
import os, sys, time
import genai_observe
from genai_observe._pipeline import bizevents as _bizevents

_bizevents.EventPipeline.INTERVAL_S = 600  # nothing leaves before a flush
handle = genai_observe.init(endpoint=sys.argv[1], bizevents_endpoint=sys.argv[2], audit_events=True,
                            service_name="forky", instrumentations=[], metric_export_interval_ms=600_000)
with genai_observe.llm_call(provider="acme", model="in-parent") as call:
    call.set_response(content="x")
pid = os.fork()
if pid == 0:
    assert handle.stats()["events"]["queued"] == 0, handle.stats()  # the parent's event stays with it
    with genai_observe.llm_call(provider="acme", model="in-child") as call:
        call.set_response(content="x")
    genai_observe.shutdown()
    os._exit(0)
assert os.waitpid(pid, 0)[1] == 0
genai_observe.shutdown()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_fresh(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FORK_SCRIPT, otlp_receiver.url, bizevents_receiver.ingest_url],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
    )
    assert done.returncode == 0, done.stderr
    models = sorted(e["gen_ai.model"] for e in bizevents_receiver.events(AUDIT))
    assert models == ["in-child", "in-parent"]  # each once: the child did not send the parent's


# --- other targets: a collector (OTLP log records), the console, usage logs ----------------------


def test_towards_a_collector_audit_events_are_otlp_log_records(otlp_receiver: OTLPReceiver) -> None:
    handle = start(otlp_receiver, None)
    manual_call()
    handle.shutdown()
    (log,) = otlp_receiver.logs(AUDIT)
    (span,) = otlp_receiver.spans()
    assert (log.trace_id, log.span_id) == (span.trace_id, span.span_id)
    assert log.attributes["event.type"] == AUDIT
    assert log.attributes["gen_ai.model"] == "m1" and log.attributes["gen_ai.usage.input_tokens"] == 4
    assert "trace_id" not in log.attributes  # the record's own trace context carries it
    assert log.resource_attributes["service.name"] == "svc-audit"


def test_console_mode_prints_one_escaped_line_per_event(capfd: pytest.CaptureFixture[str]) -> None:
    genai_observe.init(service_name="svc", audit_events=True, instrumentations=[])
    manual_call(model="evil\x1b[31mred")
    genai_observe.shutdown()
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "event gen_ai.auditing" in line]
    assert len(lines) == 1
    assert "\x1b" not in lines[0] and "\\x1b[31m" in lines[0]


def test_usage_logs_are_content_free_log_records_in_the_calls_trace(
    otlp_receiver: OTLPReceiver, openai_server: OpenAIMockServer
) -> None:
    handle = start(
        otlp_receiver,
        None,
        audit_events=False,
        usage_logs=True,
        instrumentations=["openai"],
        capture_content=True,
    )
    openai_server.script(content="wombat-answer", usage={"prompt_tokens": 9, "completion_tokens": 3})
    openai_server.client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "wombat-question"}]
    )
    handle.shutdown()
    (log,) = otlp_receiver.logs(sc.EVENT_USAGE)
    (span,) = otlp_receiver.spans()
    assert (log.trace_id, log.span_id) == (span.trace_id, span.span_id)
    assert log.attributes["gen_ai.usage.input_tokens"] == 9
    assert log.attributes["gen_ai.usage.output_tokens"] == 3
    assert log.attributes["gen_ai.provider.name"] == "openai"
    assert log.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert "input=9 output=3" in str(log.body)
    assert otlp_receiver.logs(AUDIT) == []
    for request in otlp_receiver.requests_for("logs"):
        assert b"wombat" not in request.body


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        (
            "https://abc12345.live.dynatrace.com",
            "https://abc12345.live.dynatrace.com/api/v2/bizevents/ingest",
        ),
        (
            "https://abc12345.apps.dynatrace.com",
            "https://abc12345.live.dynatrace.com/api/v2/bizevents/ingest",
        ),
        ("https://ag.example:9999/e/abc123", "https://ag.example:9999/e/abc123/api/v2/bizevents/ingest"),
        (
            "https://ag.example:9999/e/abc123/api/v2/otlp",
            "https://ag.example:9999/e/abc123/api/v2/bizevents/ingest",
        ),
        ("https://proxy.example/api/v2/otlp/v1/traces", "https://proxy.example/api/v2/bizevents/ingest"),
        ("http://collector:4318", None),
        ("http://localhost:14499/otlp", None),
    ],
)
def test_the_business_events_url_is_derived_from_the_endpoint(endpoint: str, expected: str | None) -> None:
    from genai_observe._pipeline.settings import load_settings

    assert load_settings(endpoint=endpoint).bizevents_url == expected


def test_business_events_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from genai_observe._pipeline.settings import load_settings

    monkeypatch.setenv("GENAI_OBSERVE_AUDIT_EVENTS", "yes")
    monkeypatch.setenv("GENAI_OBSERVE_USAGE_LOGS", "on")
    monkeypatch.setenv("GENAI_OBSERVE_BIZEVENTS_ENDPOINT", "https://gw.example/bizevents")
    settings = load_settings(endpoint="https://abc12345.live.dynatrace.com")
    assert settings.audit_events and settings.usage_logs
    assert settings.bizevents_url == "https://gw.example/bizevents"  # the override wins
    assert not load_settings(audit_events=False).audit_events  # the argument wins


@pytest.mark.parametrize(
    ("kwargs", "env", "named"),
    [
        ({"audit_events": "maybe"}, {}, "audit_events (argument)"),
        ({}, {"GENAI_OBSERVE_USAGE_LOGS": "sometimes"}, "GENAI_OBSERVE_USAGE_LOGS (environment)"),
        ({"bizevents_endpoint": "ftp://x"}, {}, "bizevents_endpoint (argument)"),
        ({"endpoint": "http://collector:4318", "logs": False, "audit_events": True}, {}, "audit_events"),
        ({"endpoint": "http://collector:4318", "logs": False, "usage_logs": True}, {}, "usage_logs"),
        (
            {
                "endpoint": "https://collector:4318",
                "api_token": TOKEN,
                "bizevents_endpoint": "http://gw.example/i",
            },
            {},
            "api_token (argument)",
        ),
    ],
)
def test_wrong_business_events_settings_raise_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], env: dict[str, str], named: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(genai_observe.ConfigurationError, match=re.escape(named)) as caught:
        genai_observe.init(**kwargs)
    assert TOKEN not in str(caught.value)


def test_plain_http_to_a_remote_events_endpoint_is_allowed_only_when_asked() -> None:
    from genai_observe._pipeline.settings import load_settings

    settings = load_settings(
        endpoint="https://collector:4318",
        api_token=TOKEN,
        bizevents_endpoint="http://gw.example/i",
        allow_insecure_token=True,
    )
    assert settings.bizevents_url == "http://gw.example/i"
    assert TOKEN not in repr(settings)


def test_no_token_in_any_event_log_or_repr(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bizevents_receiver.queue_response("status", status=401)
    handle = start(otlp_receiver, bizevents_receiver, usage_logs=True)
    manual_call(prompt=f"token {TOKEN} pasted")
    handle.force_flush(timeout=5)
    manual_call()
    handle.shutdown()
    assert "bizevents.ingest scope" in caplog.text
    assert TOKEN not in caplog.text and TOKEN not in repr(handle)
    for request in bizevents_receiver.requests:
        assert TOKEN.encode() not in request.body
        assert json.loads(request.body)  # well-formed
    for request in otlp_receiver.requests:
        assert TOKEN.encode() not in request.body


# --- sampling, the zero-code setup, TLS ----------------------------------------------------------


def test_audit_events_are_written_for_unsampled_calls_too(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    handle = start(otlp_receiver, bizevents_receiver)
    manual_call()
    handle.shutdown()
    assert otlp_receiver.spans() == []
    (event,) = bizevents_receiver.events(AUDIT)
    assert event["gen_ai.model"] == "m1" and len(event["span_id"]) == 16
    assert RFC3339.match(event["start_time"])


def test_the_apps_init_turns_audit_events_on_in_the_zero_code_setup(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver
) -> None:
    from genai_observe._pipeline import bootstrap as _bootstrap

    automatic = _bootstrap.init_automatic(endpoint=otlp_receiver.url, instrumentations=[])
    manual_call(model="before")
    handle = start(otlp_receiver, bizevents_receiver)
    assert handle is automatic
    manual_call(model="after")
    handle.shutdown()
    assert [e["gen_ai.model"] for e in bizevents_receiver.events(AUDIT)] == ["after"]


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.mark.skipif(not Path("/usr/bin/openssl").exists(), reason="needs openssl to make a certificate")
@pytest.mark.parametrize("trusted", [True, False])
def test_https_uses_the_otlp_certificate_variables(
    otlp_receiver: OTLPReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trusted: bool
) -> None:
    cert, key = _self_signed(tmp_path)
    if trusted:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", cert)
    with BizEventsReceiver(tls=(cert, key)) as receiver:
        handle = start(otlp_receiver, receiver, export_timeout=2)
        manual_call()
        handle.force_flush(timeout=5)
        stats = handle.stats()["events"]
        handle.shutdown()
        if trusted:
            assert len(receiver.events(AUDIT)) == 1 and stats["sent"] == 1
        else:  # an unknown CA: refused, counted, never raised
            assert receiver.events(AUDIT) == [] and stats["failed"] == 1 and stats["retried"] == 0


def test_concurrent_calls_each_make_exactly_one_event(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver
) -> None:
    import threading

    handle = start(otlp_receiver, bizevents_receiver, capture_content=False)

    def work(n: int) -> None:
        for i in range(50):
            manual_call(f"t{n}-{i}", response_id=f"r{n}-{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handle.shutdown()
    events = bizevents_receiver.events(AUDIT)
    assert len(events) == 400
    assert len({e["span_id"] for e in events}) == 400
    expected = sorted(f"t{n}-{i}" for n in range(8) for i in range(50))
    assert sorted(e["gen_ai.model"] for e in events) == expected
    assert handle.stats()["events"] == {**handle.stats()["events"], "sent": 400, "dropped": 0, "failed": 0}


def test_a_langchain_model_over_an_instrumented_sdk_is_one_audited_call(
    otlp_receiver: OTLPReceiver, bizevents_receiver: BizEventsReceiver, openai_server: OpenAIMockServer
) -> None:
    from langchain_openai import ChatOpenAI

    handle = start(otlp_receiver, bizevents_receiver, instrumentations=["openai", "langchain"])
    openai_server.script(content="hi", response_id="chatcmpl-lc-1")
    model = ChatOpenAI(model="gpt-4o-mini", base_url=openai_server.base_url, api_key="k", max_retries=0)
    model.invoke("Say hi")
    assert genai_observe.record_evaluation("relevance", score_label="pass", response_id="chatcmpl-lc-1")
    handle.shutdown()
    (event,) = [e for e in bizevents_receiver.events(AUDIT) if e["gen_ai.operation.name"] == "chat"]
    span = spans_by_id(otlp_receiver)[event["span_id"]]
    assert span.scope_name.startswith("genai_observe") and span.attributes["gen_ai.provider.name"] == "openai"
    assert event["gen_ai.usage.input_tokens"] == span.attributes["gen_ai.usage.input_tokens"]
    (evaluation,) = bizevents_receiver.events(EVALUATION)
    assert evaluation["span_id"] == event["span_id"]  # the span that counts, not the framework's
