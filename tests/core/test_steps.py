"""StepRecorder: non-LLM step spans in both profiles, content rules, errors, exactly-once end."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from genai_observe import CaptureMode, Profile
from genai_observe._core.content import ContentPolicy
from genai_observe._core.steps import StepRecorder
from tests.conftest import Telemetry

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123"


def steps(telemetry: Telemetry, **kwargs: Any) -> StepRecorder:
    kwargs.setdefault("capture", CaptureMode.SPAN_ONLY)
    return StepRecorder(telemetry.recorder(**kwargs))


def test_dynatrace_workflow_and_task(telemetry: Telemetry) -> None:
    rec = steps(telemetry)
    root = rec.start_step("workflow", "pipeline", workflow_name="pipeline", parent=None, inputs={"q": "hi"})
    assert root is not None
    task = rec.start_step("task", "prompt", workflow_name="pipeline", parent=root.context(), inputs=["x"])
    assert task is not None
    task.end(output="done")
    root.end(output={"answer": 42})
    spans = {s.name: s for s in telemetry.spans()}
    assert set(spans) == {"pipeline.workflow", "prompt.task"}
    r, t = spans["pipeline.workflow"], spans["prompt.task"]
    assert r.kind is SpanKind.INTERNAL and r.parent is None
    assert t.parent is not None and t.parent.span_id == r.context.span_id
    assert dict(r.attributes or {}) == {
        "traceloop.span.kind": "workflow",
        "traceloop.entity.name": "pipeline",
        "traceloop.workflow.name": "pipeline",
        "traceloop.entity.input": '{"q":"hi"}',
        "traceloop.entity.output": '{"answer":42}',
    }
    assert json.loads(str((t.attributes or {})["traceloop.entity.output"])) == "done"


@pytest.mark.parametrize("kind", ["agent", "tool", "retriever"])
def test_dynatrace_kinds(telemetry: Telemetry, kind: str) -> None:
    step = steps(telemetry).start_step(kind, "thing", workflow_name="wf", parent=None)
    assert step is not None
    step.end()
    s = telemetry.span()
    assert s.name == f"thing.{kind}"
    assert (s.attributes or {})["traceloop.span.kind"] == kind


def test_unknown_kind_is_a_task(telemetry: Telemetry) -> None:
    step = steps(telemetry).start_step("bogus", "x", workflow_name=None, parent=None)
    assert step is not None
    step.end()
    assert dict(telemetry.span().attributes or {}) == {
        "traceloop.span.kind": "task",
        "traceloop.entity.name": "x",
    }


def test_latest_agent_tool_and_plain(telemetry: Telemetry) -> None:
    rec = steps(telemetry, profile=Profile.LATEST)
    agent = rec.start_step("agent", "planner", workflow_name="wf", parent=None, inputs="hi")
    assert agent is not None
    tool = rec.start_step(
        "tool", "search", workflow_name="wf", parent=agent.context(), inputs={"q": "x"}, tool_call_id="c1"
    )
    assert tool is not None
    tool.end(output=["r"])
    chain = rec.start_step("task", "format", workflow_name="wf", parent=agent.context(), inputs="in")
    assert chain is not None
    chain.end(output="out")
    agent.end(output="bye")
    spans = {s.name: s for s in telemetry.spans()}
    assert set(spans) == {"invoke_agent planner", "execute_tool search", "format"}
    assert dict(spans["invoke_agent planner"].attributes or {}) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "planner",
    }
    assert dict(spans["execute_tool search"].attributes or {}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "search",
        "gen_ai.tool.call.id": "c1",
        "gen_ai.tool.call.arguments": '{"q":"x"}',
        "gen_ai.tool.call.result": '["r"]',
        "gen_ai.agent.name": "planner",  # every GenAI span under an agent names it (AR-010)
    }
    assert dict(spans["format"].attributes or {}) == {"gen_ai.agent.name": "planner"}


def test_content_off_exports_no_content(telemetry: Telemetry) -> None:
    for profile in (Profile.DYNATRACE, Profile.LATEST):
        rec = steps(telemetry, capture=CaptureMode.NO_CONTENT, profile=profile)
        step = rec.start_step("tool", "t", workflow_name="wf", parent=None, inputs="giraffe")
        assert step is not None
        step.end(output="zebra")
    for s in telemetry.spans():
        assert "giraffe" not in str(s.attributes) and "zebra" not in str(s.attributes)
        assert not {"traceloop.entity.input", "gen_ai.tool.call.arguments"} & set(s.attributes or {})


def test_content_masked_redacted_and_capped(telemetry: Telemetry) -> None:
    policy = ContentPolicy(max_length=30, redact=lambda s: s.replace("hidden", "***"), max_total=100)
    step = steps(telemetry, content=policy).start_step(
        "task", "t", workflow_name=None, parent=None, inputs={"a": f"hidden {SECRET}", "b": ["y" * 50] * 10}
    )
    assert step is not None
    step.end()
    text = str((telemetry.span().attributes or {})["traceloop.entity.input"])
    assert SECRET not in text and "hidden" not in text and "[REDACTED]" in text
    assert len(text) <= 100 + len("…[truncated]")


def test_error_status_type_and_masked_event(telemetry: Telemetry) -> None:
    step = steps(telemetry).start_step("tool", "t", workflow_name=None, parent=None)
    assert step is not None
    try:
        raise PermissionError(f"denied for {SECRET}")
    except PermissionError as exc:
        step.end(error=exc)
    s = telemetry.span()
    assert s.status.status_code is StatusCode.ERROR
    assert SECRET not in str(s.status.description) and "PermissionError" in str(s.status.description)
    assert (s.attributes or {})["error.type"] == "PermissionError"
    (event,) = s.events
    assert event.name == "exception"
    assert SECRET not in str(event.attributes) and "[REDACTED]" in str(event.attributes["exception.message"])


def test_end_exactly_once(telemetry: Telemetry) -> None:
    step = steps(telemetry).start_step("task", "t", workflow_name=None, parent=None)
    assert step is not None
    step.end(output="a")
    step.end(error=ValueError("late"))
    assert step.ended
    s = telemetry.span()
    assert s.status.status_code is StatusCode.UNSET and "error.type" not in (s.attributes or {})


def test_promote_to_agent(telemetry: Telemetry) -> None:
    for profile, name in ((Profile.DYNATRACE, "exec.agent"), (Profile.LATEST, "invoke_agent exec")):
        step = steps(telemetry, profile=profile).start_step("task", "exec", workflow_name=None, parent=None)
        assert step is not None
        step.promote("agent")
        step.end()
        s = telemetry.spans()[-1]
        assert s.name == name
        key = "traceloop.span.kind" if profile is Profile.DYNATRACE else "gen_ai.operation.name"
        assert (s.attributes or {})[key] in {"agent", "invoke_agent"}


def test_default_parent_is_current_context(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("outer") as outer:
        step = steps(telemetry).start_step("task", "t", workflow_name=None, parent=None)
        assert step is not None
        step.end()
    inner = next(s for s in telemetry.spans() if s.name == "t.task")
    assert inner.parent is not None and inner.parent.span_id == outer.get_span_context().span_id


def test_suppressed_returns_none(telemetry: Telemetry) -> None:
    token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        assert steps(telemetry).start_step("task", "t", workflow_name=None, parent=None) is None
    finally:
        otel_context.detach(token)
    assert telemetry.spans() == []


def test_broken_content_never_raises(telemetry: Telemetry) -> None:
    class Evil:
        def __str__(self) -> str:
            raise RuntimeError("no")

    step = steps(telemetry).start_step("task", "t", workflow_name=None, parent=None, inputs=Evil())
    assert step is None  # recording failed: no span, and nothing raised
    assert not trace.get_current_span().get_span_context().is_valid


def test_agent_step_names_the_agent_of_llm_calls_under_it(telemetry: Telemetry) -> None:
    """An agent step's context makes Recorder.start put the agent's name (and conversation) on the
    LLM span; the call's own conversation id wins; outside any agent nothing is added."""
    from genai_observe._core.record import LLMCall

    rec = steps(telemetry)
    agent = rec.start_step("agent", "planner", workflow_name="wf", parent=None, conversation_id="thread-1")
    assert agent is not None
    tool = rec.start_step("tool", "search", workflow_name="wf", parent=agent.context())
    assert tool is not None
    recorder = rec.recorder
    calls = [
        (LLMCall(operation="chat", provider="openai", request_model="m1"), agent.context()),
        (LLMCall(operation="chat", provider="openai", request_model="m2"), tool.context(agent.context())),
        (LLMCall(operation="chat", provider="openai", request_model="m3"), None),
    ]
    calls[1][0].request_attributes["gen_ai.conversation.id"] = "own"
    for call, parent in calls:
        token = otel_context.attach(parent) if parent is not None else None
        try:
            invocation = recorder.start(call)
            assert invocation is not None
            invocation.finish()
        finally:
            if token is not None:
                otel_context.detach(token)
    tool.end()
    agent.end()
    spans = {s.name: dict(s.attributes or {}) for s in telemetry.spans()}
    assert spans["planner.agent"]["gen_ai.agent.name"] == "planner"  # dynatrace profile too
    assert spans["planner.agent"]["gen_ai.conversation.id"] == "thread-1"
    assert (spans["chat m1"]["gen_ai.agent.name"], spans["chat m1"]["gen_ai.conversation.id"]) == (
        "planner",
        "thread-1",
    )
    assert (spans["chat m2"]["gen_ai.agent.name"], spans["chat m2"]["gen_ai.conversation.id"]) == (
        "planner",
        "own",
    )
    assert "gen_ai.agent.name" not in spans["chat m3"]
    # Issue 15: every GenAI span started inside an agent names it, steps too (AR-010).
    assert spans["search.tool"]["gen_ai.agent.name"] == "planner"
    assert spans["search.tool"]["gen_ai.conversation.id"] == "thread-1"


def test_failure_reported_as_data_events_and_late_input(telemetry: Telemetry) -> None:
    rec = steps(telemetry, profile=Profile.LATEST)
    step = rec.start_step("tool", "lookup", workflow_name=None, parent=None)
    assert step is not None
    step.set_input({"q": "bags"})
    step.add_event("gen_ai.agent.handoff", {"gen_ai.handoff.to_agent": "FAQ"})
    step.set_attributes({"gen_ai.handoff.to_agent": "FAQ"})
    step.end(error_type="Error running tool", error_message=f"key {SECRET} rejected")
    step.add_event("late", {})  # after the end: ignored, never raises
    s = telemetry.span()
    a = dict(s.attributes or {})
    assert json.loads(str(a["gen_ai.tool.call.arguments"])) == {"q": "bags"}
    assert a["error.type"] == "Error running tool" and a["gen_ai.handoff.to_agent"] == "FAQ"
    assert s.status.status_code is StatusCode.ERROR
    assert SECRET not in (s.status.description or "") and "key" in (s.status.description or "")
    assert [e.name for e in s.events] == ["gen_ai.agent.handoff"]


def test_failure_reported_as_data_keeps_its_text_only_with_content_on_spans(telemetry: Telemetry) -> None:
    """A framework's error message is content like an exception's text: without content on spans
    the status says only the error type."""
    rec = steps(telemetry, capture=CaptureMode.NO_CONTENT)
    step = rec.start_step("tool", "lookup", workflow_name=None, parent=None)
    assert step is not None
    step.end(error_type="Error running tool", error_message="the prompt said: fly me to Lisbon")
    s = telemetry.span()
    assert s.status.status_code is StatusCode.ERROR
    assert s.status.description == "Error running tool"
