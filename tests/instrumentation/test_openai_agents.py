"""The real OpenAI Agents SDK (``openai-agents``) against the local Responses API server: agents,
tools, handoffs, guardrails, agents as tools, failures; the model calls traced once, by the openai
instrumentation, under the agent that made them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

agents = pytest.importorskip("agents")  # the oldest-openai session has no openai-agents

from agents import (  # noqa: E402
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    MaxTurnsExceeded,
    RunConfig,
    Runner,
    TracingProcessor,
    custom_span,
    function_tool,
    input_guardrail,
    output_guardrail,
    trace,
)
from agents.tracing.provider import DefaultTraceProvider  # noqa: E402
from openai import InternalServerError  # noqa: E402
from opentelemetry import context as otel_context  # noqa: E402
from opentelemetry import trace as otel_trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402

from genai_observe._core import semconv as sc  # noqa: E402
from genai_observe.instrumentation.openai import OpenAIInstrumentor  # noqa: E402
from genai_observe.instrumentation.openai_agents import OpenAIAgentsInstrumentor  # noqa: E402
from tests.conftest import Telemetry  # noqa: E402
from tests.rig.openai_server import DEFAULT_USAGE, OpenAIMockServer, RecordedRequest, ToolCall  # noqa: E402

MODEL = "gpt-4o-mini"
LLM = f"chat {MODEL}"


class SDKSpans(TracingProcessor):
    """Stands for the SDK's own processors: what they receive must not change."""

    def __init__(self) -> None:
        self.ended: list[str] = []

    def on_trace_start(self, trace: Any) -> None:
        pass

    def on_trace_end(self, trace: Any) -> None:
        self.ended.append("trace")

    def on_span_start(self, span: Any) -> None:
        pass

    def on_span_end(self, span: Any) -> None:
        self.ended.append(span.span_data.type)

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


@pytest.fixture
def sdk_spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[SDKSpans]:
    """A trace provider of our own for each test, with a stand-in for the SDK's processors: the
    default one would export to api.openai.com."""
    monkeypatch.delenv("OPENAI_AGENTS_DISABLE_TRACING", raising=False)
    provider = DefaultTraceProvider()
    collector = SDKSpans()
    provider.register_processor(collector)
    agents.set_trace_provider(provider)
    yield collector
    agents.set_trace_provider(DefaultTraceProvider())


@pytest.fixture
def instrument(
    telemetry: Telemetry, sdk_spans: SDKSpans
) -> Iterator[Callable[..., OpenAIAgentsInstrumentor]]:
    """The openai and Agents SDK instrumentations on (content on spans, unless told otherwise)."""
    with (
        telemetry.instrumenting(OpenAIInstrumentor(), capture="SPAN_ONLY") as apply_openai,
        telemetry.instrumenting(OpenAIAgentsInstrumentor(), capture="SPAN_ONLY") as apply,
    ):

        def both(**options: Any) -> OpenAIAgentsInstrumentor:
            apply_openai(**options)
            return apply(**options)  # type: ignore[no-any-return]

        yield both


@pytest.fixture
def client(openai_server: OpenAIMockServer) -> Callable[[], None]:
    """Points the SDK at the local server with a new client: each asyncio.run() and run_sync()
    has its own event loop, and an async client is bound to the loop it first ran in."""

    def fresh() -> None:
        agents.set_default_openai_client(openai_server.async_client(), use_for_tracing=False)

    fresh()
    return fresh


@function_tool
def lookup(question: str) -> str:
    """Look up the answer to a frequently asked question."""
    return f"answer to {question}"


@function_tool
def broken(question: str) -> str:
    """A tool that fails."""
    raise RuntimeError("the FAQ database is down")


@input_guardrail
async def relevance(ctx: Any, agent: Any, text: Any) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered="homework" in str(text))


@output_guardrail
async def polite(ctx: Any, agent: Any, output: Any) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered=False)


def customer_service() -> Agent[Any]:
    """Triage (an input guardrail) hands off to the FAQ agent, which looks answers up."""
    faq = Agent(
        name="FAQ Agent", instructions="Answer FAQs.", tools=[lookup], model=MODEL, output_guardrails=[polite]
    )
    return Agent(
        name="Triage Agent",
        instructions="Route the customer.",
        handoffs=[faq],
        model=MODEL,
        input_guardrails=[relevance],
    )


def script_customer_service(server: OpenAIMockServer) -> None:
    """Handoff to FAQ; FAQ calls lookup twice in parallel; then answers."""
    server.script(tool_calls=[ToolCall(name="transfer_to_faq_agent", arguments={})])
    server.script(
        tool_calls=[
            ToolCall(name="lookup", arguments={"question": "bags"}, id="call_bags"),
            ToolCall(name="lookup", arguments={"question": "wifi"}, id="call_wifi"),
        ]
    )
    server.script(content="One bag of 23 kg, and wifi is free.")


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = named(spans, name)
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def a(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def check_customer_service_tree(telemetry: Telemetry, *, workflow: str = "Agent workflow") -> None:
    spans = telemetry.spans()
    assert sorted(s.name for s in spans) == sorted(
        [f"{workflow}.workflow", "Triage Agent.agent", "FAQ Agent.agent", "lookup.tool", "lookup.tool"]
        + [LLM] * 3
    )
    root = one(spans, f"{workflow}.workflow")
    assert a(root)[sc.TRACELOOP_SPAN_KIND] == "workflow"
    triage, faq = one(spans, "Triage Agent.agent"), one(spans, "FAQ Agent.agent")
    assert {s.name for s in children(spans, root)} == {"Triage Agent.agent", "FAQ Agent.agent"}
    assert len({s.context.trace_id for s in spans}) == 1
    # The model calls: once each, by the openai instrumentation, under their agent, naming it.
    assert [s.name for s in children(spans, triage)] == [LLM]
    assert sorted(s.name for s in children(spans, faq)) == [LLM, LLM, "lookup.tool", "lookup.tool"]
    for agent in (triage, faq):
        for llm in named(children(spans, agent), LLM):
            assert a(llm)[sc.GEN_AI_AGENT_NAME] == a(agent)[sc.GEN_AI_AGENT_NAME]
            assert a(llm)[sc.GEN_AI_USAGE_INPUT_TOKENS] == DEFAULT_USAGE["prompt_tokens"]
    assert a(triage)[sc.TRACELOOP_SPAN_KIND] == "agent"
    assert a(triage)[sc.GEN_AI_AGENT_NAME] == "Triage Agent"
    assert a(triage)[sc.TRACELOOP_WORKFLOW_NAME] == workflow
    # The handoff, both ways; the guardrail results on the agent they checked.
    assert a(triage)[sc.GEN_AI_HANDOFF_TO_AGENT] == "FAQ Agent"
    assert a(faq)[sc.GEN_AI_HANDOFF_FROM_AGENT] == "Triage Agent"
    events = {e.name: dict(e.attributes or {}) for e in triage.events}
    assert events[sc.EVENT_AGENT_HANDOFF] == {
        sc.GEN_AI_HANDOFF_FROM_AGENT: "Triage Agent",
        sc.GEN_AI_HANDOFF_TO_AGENT: "FAQ Agent",
    }
    assert events[sc.EVENT_AGENT_GUARDRAIL] == {
        sc.GUARDRAIL_NAME: "relevance",
        sc.GUARDRAIL_DIRECTION: "input",
        sc.GUARDRAIL_TRIGGERED: False,
    }
    assert [dict(e.attributes or {}) for e in faq.events] == [
        {sc.GUARDRAIL_NAME: "polite", sc.GUARDRAIL_DIRECTION: "output", sc.GUARDRAIL_TRIGGERED: False}
    ]
    assert sc.GUARDRAIL_TRIPWIRES not in a(triage)
    for tool in named(spans, "lookup.tool"):
        assert a(tool)[sc.TRACELOOP_SPAN_KIND] == "tool"
        assert json.loads(a(tool)[sc.TRACELOOP_ENTITY_INPUT])["question"] in {"bags", "wifi"}
        assert json.loads(a(tool)[sc.TRACELOOP_ENTITY_OUTPUT]).startswith("answer to ")
    assert all(s.status.status_code is StatusCode.UNSET for s in spans)
    # Tokens counted once: three calls, three points.
    points = telemetry.metrics()
    assert sum(p.count for p in points[sc.METRIC_OPERATION_DURATION]) == 3
    sums: dict[str, int] = {}
    for p in points[sc.METRIC_TOKEN_USAGE]:
        kind = p.attributes[sc.GEN_AI_TOKEN_TYPE]
        sums[kind] = sums.get(kind, 0) + int(p.sum)
    assert sums == {
        "input": 3 * DEFAULT_USAGE["prompt_tokens"],
        "output": 3 * DEFAULT_USAGE["completion_tokens"],
        "cache_read": 3 * DEFAULT_USAGE["cached_tokens"],
    }


# --- the three ways to run -------------------------------------------------------------------------


def test_run(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry, sdk_spans: SDKSpans
) -> None:
    script_customer_service(openai_server)
    before = otel_context.get_current()
    result = asyncio.run(Runner.run(customer_service(), "How many bags can I take?"))
    assert result.final_output == "One bag of 23 kg, and wifi is free."
    check_customer_service_tree(telemetry)
    assert otel_context.get_current() is before
    # Beside the SDK's processors: they got every span, the model responses included.
    assert sdk_spans.ended.count("response") == 3 and sdk_spans.ended.count("agent") == 2


def test_run_in_the_apps_task_restores_its_context(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    """Awaited in the app's own task, under the app's span: the workflow nests under that span,
    and the app's context is what it was once the run returns."""
    script_customer_service(openai_server)
    tracer = telemetry.tracer_provider.get_tracer("app")

    async def handler() -> None:
        with tracer.start_as_current_span("request") as request:
            inside = otel_context.get_current()
            await Runner.run(customer_service(), "bags?")
            assert otel_context.get_current() is inside
            assert otel_trace.get_current_span() is request

    asyncio.run(handler())
    spans = telemetry.spans()
    request = one(spans, "request")
    assert [s.name for s in children(spans, request)] == ["Agent workflow.workflow"]


def test_run_sync(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    script_customer_service(openai_server)
    before = otel_context.get_current()
    Runner.run_sync(customer_service(), "How many bags can I take?")
    check_customer_service_tree(telemetry)
    assert otel_context.get_current() is before


def test_run_streamed(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    script_customer_service(openai_server)

    async def consume() -> str:
        result = Runner.run_streamed(customer_service(), "How many bags can I take?")
        async for _event in result.stream_events():
            pass
        return str(result.final_output)

    assert asyncio.run(consume()) == "One bag of 23 kg, and wifi is free."
    check_customer_service_tree(telemetry)
    for llm in named(telemetry.spans(), LLM):
        assert a(llm)[sc.GEN_AI_REQUEST_STREAM] is True


def test_named_trace_and_conversation_id(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    """``trace(...)`` names the workflow; its group id is the conversation of agents and calls."""
    script_customer_service(openai_server)

    async def main() -> None:
        with trace("Customer service", group_id="thread-42"):
            await Runner.run(customer_service(), "bags?")

    asyncio.run(main())
    check_customer_service_tree(telemetry, workflow="Customer service")
    for span in telemetry.spans():
        if span.name == LLM or span.name.endswith(".agent"):
            assert a(span)[sc.GEN_AI_CONVERSATION_ID] == "thread-42", span.name


def test_latest_profile(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    instrument(profile="latest")
    script_customer_service(openai_server)
    Runner.run_sync(customer_service(), "bags?", run_config=RunConfig(group_id="thread-7"))
    spans = telemetry.spans()
    assert sorted(s.name for s in spans) == sorted(
        ["Agent workflow", "invoke_agent Triage Agent", "invoke_agent FAQ Agent"]
        + ["execute_tool lookup"] * 2
        + [LLM] * 3
    )
    faq = one(spans, "invoke_agent FAQ Agent")
    assert a(faq)[sc.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert a(faq)[sc.GEN_AI_CONVERSATION_ID] == "thread-7"
    tools = {a(t)[sc.GEN_AI_TOOL_CALL_ID]: a(t) for t in named(spans, "execute_tool lookup")}
    assert set(tools) == {"call_bags", "call_wifi"}  # the ids the model gave the calls
    assert json.loads(tools["call_bags"][sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"question": "bags"}
    assert json.loads(tools["call_wifi"][sc.GEN_AI_TOOL_CALL_RESULT]) == "answer to wifi"
    for tool in named(spans, "execute_tool lookup"):
        assert tool.parent is not None and tool.parent.span_id == faq.context.span_id
    for llm in named(spans, LLM):
        assert a(llm)[sc.GEN_AI_AGENT_NAME] in {"Triage Agent", "FAQ Agent"}
        assert a(llm)[sc.GEN_AI_CONVERSATION_ID] == "thread-7"


def test_no_content(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    instrument(capture="NO_CONTENT")
    script_customer_service(openai_server)
    Runner.run_sync(customer_service(), "bags?")
    for span in telemetry.spans():
        keys = set(a(span))
        assert not keys & {sc.TRACELOOP_ENTITY_INPUT, sc.TRACELOOP_ENTITY_OUTPUT}, span.name
        assert not any(
            k.startswith((sc.GEN_AI_PROMPT + ".", sc.GEN_AI_COMPLETION + ".0.content")) for k in keys
        )


# --- agents as tools, in parallel --------------------------------------------------------------------


def _for(instructions: str) -> Callable[[RecordedRequest], bool]:
    return lambda request: request.body.get("instructions") == instructions


def test_agents_as_tools_in_parallel(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    """An orchestrator calls two agents as tools in one turn; they run concurrently, each model
    call nested under its own agent, under the tool span that ran it."""
    spanish = Agent(name="Spanish", instructions="Translate to Spanish.", model=MODEL)
    french = Agent(name="French", instructions="Translate to French.", model=MODEL)
    boss = Agent(
        name="Orchestrator",
        instructions="Use the translators.",
        model=MODEL,
        tools=[
            spanish.as_tool(tool_name="to_spanish", tool_description="Translate to Spanish."),
            french.as_tool(tool_name="to_french", tool_description="Translate to French."),
        ],
    )
    openai_server.script(
        when=_for("Use the translators."),
        tool_calls=[
            ToolCall(name="to_spanish", arguments={"input": "hello"}),
            ToolCall(name="to_french", arguments={"input": "hello"}),
        ],
    )
    openai_server.script(when=_for("Translate to Spanish."), content="hola", delay=0.05)
    openai_server.script(when=_for("Translate to French."), content="bonjour")
    openai_server.script(when=_for("Use the translators."), content="hola / bonjour")
    result = Runner.run_sync(boss, "Translate hello")
    assert result.final_output == "hola / bonjour"
    spans = telemetry.spans()
    boss_span = one(spans, "Orchestrator.agent")
    assert sorted(s.name for s in children(spans, boss_span)) == [
        LLM,
        LLM,
        "to_french.tool",
        "to_spanish.tool",
    ]
    for tool, agent in (("to_spanish.tool", "Spanish.agent"), ("to_french.tool", "French.agent")):
        tool_span = one(spans, tool)
        (inner,) = children(spans, tool_span)
        assert inner.name == agent
        (llm,) = children(spans, inner)
        assert llm.name == LLM and a(llm)[sc.GEN_AI_AGENT_NAME] == agent.split(".")[0]
    assert len(named(spans, LLM)) == 4
    assert sum(p.count for p in telemetry.metrics()[sc.METRIC_OPERATION_DURATION]) == 4


def test_custom_span_is_a_task(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    @function_tool
    def plan(goal: str) -> str:
        """Plan."""
        with custom_span("plan-steps", {"goal": goal}):
            return "1. pack"

    agent = Agent(name="Planner", instructions="Plan.", model=MODEL, tools=[plan])
    openai_server.script(tool_calls=[ToolCall(name="plan", arguments={"goal": "travel"})])
    openai_server.script(content="done")
    Runner.run_sync(agent, "plan a trip")
    spans = telemetry.spans()
    task = one(spans, "plan-steps.task")
    assert task.parent is not None and task.parent.span_id == one(spans, "plan.tool").context.span_id
    assert json.loads(a(task)[sc.TRACELOOP_ENTITY_INPUT]) == {"goal": "travel"}


# --- failures: every span ends, once, with the error -----------------------------------------------


@pytest.fixture
def double_ends(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Warnings about spans ended twice: OpenTelemetry's for ours, the SDK's for its own."""
    caplog.set_level(logging.WARNING)
    found: list[str] = []
    yield found
    found.extend(
        r.getMessage()
        for r in caplog.records
        if "on an ended span" in r.getMessage() or "already finished" in r.getMessage()
    )
    assert not found


def test_max_turns(
    instrument: Any,
    client: Any,
    openai_server: OpenAIMockServer,
    telemetry: Telemetry,
    double_ends: list[str],
) -> None:
    openai_server.script(tool_calls=[ToolCall(name="lookup", arguments={"question": "again"})], times=None)
    agent = Agent(name="Looper", instructions="Loop.", model=MODEL, tools=[lookup])
    with pytest.raises(MaxTurnsExceeded):
        Runner.run_sync(agent, "loop", max_turns=2)
    spans = telemetry.spans()
    looper = one(spans, "Looper.agent")
    assert looper.status.status_code is StatusCode.ERROR
    assert a(looper)[sc.ERROR_TYPE] == "MaxTurnsExceeded"
    assert len(named(spans, LLM)) == 2 and len(named(spans, "lookup.tool")) == 2
    assert one(spans, "Agent workflow.workflow").end_time is not None


def test_model_error(
    instrument: Any,
    client: Any,
    openai_server: OpenAIMockServer,
    telemetry: Telemetry,
    double_ends: list[str],
) -> None:
    openai_server.script_error(500)
    with pytest.raises(InternalServerError):
        Runner.run_sync(customer_service(), "bags?")
    spans = telemetry.spans()
    triage, llm = one(spans, "Triage Agent.agent"), one(spans, LLM)
    assert (a(triage)[sc.ERROR_TYPE], a(llm)[sc.ERROR_TYPE]) == ("InternalServerError", "InternalServerError")
    assert triage.status.status_code is StatusCode.ERROR
    assert llm.parent is not None and llm.parent.span_id == triage.context.span_id
    assert len(spans) == 3  # workflow, agent, the failed call


def test_input_guardrail_tripwire(
    instrument: Any,
    client: Any,
    openai_server: OpenAIMockServer,
    telemetry: Telemetry,
    double_ends: list[str],
) -> None:
    openai_server.script(content="never shown")
    with pytest.raises(InputGuardrailTripwireTriggered):
        Runner.run_sync(customer_service(), "do my homework")
    spans = telemetry.spans()
    triage = one(spans, "Triage Agent.agent")
    assert a(triage)[sc.GUARDRAIL_TRIPWIRES] == ("relevance",)
    assert a(triage)[sc.ERROR_TYPE] == "InputGuardrailTripwireTriggered"
    (event,) = [e for e in triage.events if e.name == sc.EVENT_AGENT_GUARDRAIL]
    assert dict(event.attributes or {})[sc.GUARDRAIL_TRIGGERED] is True


def test_tool_error_the_model_is_told_about(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    """A failing tool does not fail the run (the SDK tells the model): the tool span is an error."""
    agent = Agent(name="FAQ", instructions="Answer.", model=MODEL, tools=[broken])
    openai_server.script(tool_calls=[ToolCall(name="broken", arguments={"question": "x"})])
    openai_server.script(content="sorry")
    assert Runner.run_sync(agent, "x").final_output == "sorry"
    spans = telemetry.spans()
    tool = one(spans, "broken.tool")
    assert tool.status.status_code is StatusCode.ERROR and sc.ERROR_TYPE in a(tool)
    assert one(spans, "FAQ.agent").status.status_code is StatusCode.UNSET


def test_streamed_run_cancelled(
    instrument: Any,
    client: Any,
    openai_server: OpenAIMockServer,
    telemetry: Telemetry,
    double_ends: list[str],
) -> None:
    openai_server.script(content="a long answer " * 20, chunk_delay=0.01)

    async def consume() -> None:
        result = Runner.run_streamed(customer_service(), "bags?")
        async for _event in result.stream_events():
            result.cancel()

    asyncio.run(consume())
    spans = telemetry.spans()
    assert {"Agent workflow.workflow", "Triage Agent.agent"} <= {s.name for s in spans}
    assert all(s.status.status_code is not StatusCode.ERROR for s in spans if s.name != LLM)


def test_run_task_cancelled(
    instrument: Any,
    client: Any,
    openai_server: OpenAIMockServer,
    telemetry: Telemetry,
    double_ends: list[str],
) -> None:
    openai_server.script(content="slow", delay=2)

    async def main() -> None:
        before = otel_context.get_current()
        task = asyncio.ensure_future(Runner.run(customer_service(), "bags?"))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert otel_context.get_current() is before

    asyncio.run(main())
    spans = telemetry.spans()
    triage = one(spans, "Triage Agent.agent")
    assert triage.status.status_code is StatusCode.UNSET  # stopped by the app, not failed
    assert one(spans, "Agent workflow.workflow").end_time is not None


# --- processors: beside the SDK's, or instead of them -------------------------------------------------


def test_replace_sdk_processors(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry, sdk_spans: SDKSpans
) -> None:
    instrument(replace_sdk_processors=True)
    openai_server.script(content="hi")
    Runner.run_sync(Agent(name="Solo", instructions="Hi.", model=MODEL), "hi")
    assert sdk_spans.ended == []
    assert {s.name for s in telemetry.spans()} == {"Agent workflow.workflow", "Solo.agent", LLM}


def test_uninstrument_and_again(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    instrumentor = instrument()
    instrumentor.uninstrument()
    openai_server.script(content="hi", times=None)
    Runner.run_sync(Agent(name="Solo", instructions="Hi.", model=MODEL), "hi")
    assert [s.name for s in telemetry.spans() if s.name != LLM] == []
    instrument()
    client()
    Runner.run_sync(Agent(name="Solo", instructions="Hi.", model=MODEL), "hi")
    assert sorted(s.name for s in telemetry.spans() if s.name != LLM) == [
        "Agent workflow.workflow",
        "Solo.agent",
    ]


def test_no_state_left_behind(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    instrumentor = instrument()
    script_customer_service(openai_server)
    Runner.run_sync(customer_service(), "bags?")
    openai_server.script_error(500)
    with pytest.raises(InternalServerError):
        Runner.run_sync(customer_service(), "bags?")
    assert instrumentor.processor.tracked() == 0


def test_runs_in_threads_keep_their_own_trees(
    instrument: Any, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    """run_sync in several threads at once (a thread-pool web server): each run its own trace,
    each model call under its own agent."""
    import threading

    names = [f"Agent {n}" for n in range(4)]
    for name in names:
        openai_server.script(
            when=_for(name), tool_calls=[ToolCall(name="lookup", arguments={"question": name})]
        )
        openai_server.script(when=_for(name), content=f"done {name}", delay=0.02)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            agent = Agent(name=name, instructions=name, model=MODEL, tools=[lookup])
            # A client per thread: run_sync gives each thread an event loop of its own.
            result = Runner.run_sync(
                agent, "go", run_config=RunConfig(model_provider=_provider(openai_server))
            )
            assert result.final_output == f"done {name}"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    spans = telemetry.spans()
    assert len(named(spans, "Agent workflow.workflow")) == 4
    for name in names:
        agent = one(spans, f"{name}.agent")
        assert sorted(s.name for s in children(spans, agent)) == [LLM, LLM, "lookup.tool"]
        assert {a(s)[sc.GEN_AI_AGENT_NAME] for s in named(children(spans, agent), LLM)} == {name}
        assert len({s.context.trace_id for s in [agent, *children(spans, agent)]}) == 1


def _provider(server: OpenAIMockServer) -> Any:
    from agents.models.openai_provider import OpenAIProvider

    return OpenAIProvider(openai_client=server.async_client())


def test_bounded_state_evicts_without_harm(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    """With room for only two live SDK spans, the oldest are ended early and forgotten: the run
    and its result are untouched, every span still ends once, nothing stays tracked."""
    processor = instrument().processor
    processor.max_nodes = 2
    try:
        script_customer_service(openai_server)
        before = otel_context.get_current()
        result = Runner.run_sync(customer_service(), "bags?")
        assert result.final_output == "One bag of 23 kg, and wifi is free."
        assert otel_context.get_current() is before
        assert processor.tracked() == 0
        names = [s.name for s in telemetry.spans()]
        assert names.count(LLM) == 3 and len(names) == len({s.context.span_id for s in telemetry.spans()})
    finally:
        processor.max_nodes = 10_000


def test_chat_completions_model(
    instrument: Any, client: Any, openai_server: OpenAIMockServer, telemetry: Telemetry
) -> None:
    """Agents on the Chat Completions API (the SDK's generation spans instead of response spans):
    the same tree, the tool call ids from the generation's output."""
    instrument(profile="latest")
    agents.set_default_openai_api("chat_completions")
    try:
        script_customer_service(openai_server)
        result = Runner.run_sync(customer_service(), "bags?")
    finally:
        agents.set_default_openai_api("responses")
    assert result.final_output == "One bag of 23 kg, and wifi is free."
    assert {r.endpoint for r in openai_server.requests} == {"chat.completions"}
    spans = telemetry.spans()
    faq = one(spans, "invoke_agent FAQ Agent")
    assert sorted(s.name for s in children(spans, faq)) == [
        LLM,
        LLM,
        "execute_tool lookup",
        "execute_tool lookup",
    ]
    assert {a(t)[sc.GEN_AI_TOOL_CALL_ID] for t in named(spans, "execute_tool lookup")} == {
        "call_bags",
        "call_wifi",
    }
    assert {a(s)[sc.GEN_AI_AGENT_NAME] for s in named(spans, LLM)} == {"Triage Agent", "FAQ Agent"}
