"""Runs the scripts in examples/ the way a user would: a fresh interpreter configured only through
the environment, talking to the local OpenAI-compatible server and shipping to the local OTLP
receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from genai_observe._core import semconv as sc
from tests.rig.openai_server import DEFAULT_USAGE, OpenAIMockServer, RecordedRequest, ToolCall
from tests.rig.otlp_receiver import OTLPReceiver, SpanView

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Settings a developer's shell may carry that would point the examples elsewhere.
_FOREIGN = ("OTEL_", "DT_", "GENAI_OBSERVE_", "TRACELOOP_", "OPENAI_", "AZURE_OPENAI_", "NVIDIA_", "NIM_")


def run_example(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    # Never send traffic for 127.0.0.1 through a proxy the environment may configure.
    clean.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    clean.update(env)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    return done


def by_name(spans: list[SpanView]) -> list[str]:
    return sorted(s.name for s in spans)


def test_openai_chat(openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver) -> None:
    done = run_example(
        "openai_chat.py",
        OPENAI_BASE_URL=openai_server.base_url,
        OPENAI_API_KEY="test",
        DT_ENDPOINT=otlp_receiver.url,
    )
    assert "chat:" in done.stdout and "embedding size:" in done.stdout and "async:" in done.stdout
    spans = otlp_receiver.spans()
    assert by_name(spans) == ["chat gpt-4o-mini"] * 3 + ["embeddings text-embedding-3-small"]
    assert {s.attributes[sc.GEN_AI_PROVIDER_NAME] for s in spans} == {"openai"}
    assert {s.resource_attributes["service.name"] for s in spans} == {"openai-chat-example"}
    (streamed,) = [s for s in spans if s.attributes.get(sc.GEN_AI_REQUEST_STREAM)]
    assert streamed.attributes[sc.STREAM_END_REASON] == "exhausted"
    assert streamed.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == DEFAULT_USAGE["prompt_tokens"]
    assert streamed.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == DEFAULT_USAGE["completion_tokens"]
    durations = otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)
    assert sum(p.count or 0 for m in durations for p in m.data_points) == 4
    assert otlp_receiver.metrics(sc.METRIC_TIME_TO_FIRST_CHUNK)


def test_azure_openai(openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver) -> None:
    openai_server.script(model="gpt-4o-mini-2024-07-18", times=None)  # the model behind the deployment
    done = run_example(
        "azure_openai.py",
        AZURE_OPENAI_ENDPOINT=openai_server.azure_endpoint,
        AZURE_OPENAI_API_KEY="test",
        OPENAI_API_VERSION="2024-06-01",
        AZURE_OPENAI_DEPLOYMENT="example-deployment",
        DT_ENDPOINT=otlp_receiver.url,
    )
    assert "chat (gpt-4o-mini-2024-07-18):" in done.stdout
    assert [r.deployment for r in openai_server.requests] == ["example-deployment"] * 2
    spans = otlp_receiver.spans()
    assert by_name(spans) == ["chat example-deployment"] * 2
    for span in spans:
        a = span.attributes
        assert (a[sc.GEN_AI_PROVIDER_NAME], a[sc.GEN_AI_SYSTEM]) == ("azure.ai.openai", "openai")
        assert a[sc.GEN_AI_REQUEST_MODEL] == "example-deployment"
        assert a[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
        assert a[sc.GEN_AI_OPENAI_API_VERSION] == "2024-06-01"
        assert sc.GEN_AI_PROMPT_FILTER_RESULTS in a
        assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == DEFAULT_USAGE["prompt_tokens"]


def test_nvidia_nim(openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver) -> None:
    done = run_example(
        "nvidia_nim.py",
        NIM_BASE_URL=openai_server.base_url,
        NVIDIA_API_KEY="test",
        GENAI_OBSERVE_NIM_HOSTS=f"127.0.0.1:{openai_server.port}",
        DT_ENDPOINT=otlp_receiver.url,
    )
    assert "chat:" in done.stdout and "stream:" in done.stdout
    spans = otlp_receiver.spans()
    assert by_name(spans) == ["chat meta/llama-3.1-8b-instruct"] * 2
    for span in spans:
        a = span.attributes
        assert (a[sc.GEN_AI_PROVIDER_NAME], a[sc.GEN_AI_SYSTEM]) == ("nvidia_nim", "nvidia_nim")
        assert (a[sc.SERVER_ADDRESS], a[sc.SERVER_PORT]) == ("127.0.0.1", openai_server.port)
        assert a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 100
        assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == DEFAULT_USAGE["completion_tokens"]


def test_nim_host_must_be_listed_for_self_hosted(
    openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    run_example(
        "nvidia_nim.py",
        NIM_BASE_URL=openai_server.base_url,
        NVIDIA_API_KEY="test",
        DT_ENDPOINT=otlp_receiver.url,
    )
    assert {s.attributes[sc.GEN_AI_PROVIDER_NAME] for s in otlp_receiver.spans()} == {"openai"}


def test_demo_prints_console_lines() -> None:
    done = run_example("demo.py")
    assert "error reached the caller unchanged: NotFoundError" in done.stdout
    err = done.stderr
    assert "no OTLP endpoint configured" in err
    assert "genai-observe: chat gpt-4o-mini [openai]  tokens in=14 out=5" in err
    assert "stream  ok" in err
    assert "genai-observe: embeddings text-embedding-3-small [openai]" in err
    assert "genai-observe: chat missing-model [openai]" in err and "error=NotFoundError" in err


def test_openai_agents_app(openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver) -> None:
    """The customer-service app: three runs of one conversation (FAQ, seat change, a guardrail that
    trips), the model's replies scripted per agent (the guardrail runs beside the triage agent)."""
    pytest.importorskip("agents")

    def agent(marker: str, text: str | None = None) -> Any:
        def accepts(request: RecordedRequest) -> bool:
            body = request.body if isinstance(request.body, dict) else {}
            if marker not in str(body.get("instructions")):
                return False
            return text is None or text in json.dumps(body.get("input"))

        return accepts

    triage, faq, seat = agent("triage agent"), agent("FAQ agent"), agent("seat booking agent")
    openai_server.script(when=triage, tool_calls=[ToolCall(name="transfer_to_faq_agent")])
    openai_server.script(when=faq, tool_calls=[ToolCall(name="faq_lookup", arguments={"question": "bag"})])
    openai_server.script(when=faq, content="One bag under 50 pounds.")
    openai_server.script(when=triage, tool_calls=[ToolCall(name="transfer_to_seat_booking_agent")])
    openai_server.script(
        when=seat,
        tool_calls=[
            ToolCall(name="update_seat", arguments={"confirmation_number": "ABC123", "new_seat": "14C"})
        ],
    )
    openai_server.script(when=seat, content="You are now in 14C.")
    openai_server.script(
        when=agent("relevance guardrail", "strawberries"),
        content=json.dumps({"reasoning": "not about air travel", "is_relevant": False}),
    )
    done = run_example(
        "openai_agents_app.py",
        OPENAI_BASE_URL=openai_server.base_url,
        OPENAI_API_KEY="test",
        GENAI_OBSERVE_OPENAI_AGENTS_REPLACE_SDK_PROCESSORS="true",  # nothing for api.openai.com
        DT_ENDPOINT=otlp_receiver.url,
    )
    assert "FAQ Agent: One bag under 50 pounds." in done.stdout
    assert "Seat Booking Agent: You are now in 14C." in done.stdout
    assert "Sorry, I can only help" in done.stdout
    assert not openai_server.pending(), openai_server.pending()
    spans = otlp_receiver.spans()
    by_id = {s.span_id: s for s in spans}
    workflows = [s for s in spans if s.name == "Customer service.workflow"]
    assert len(workflows) == 3 and len({s.trace_id for s in workflows}) == 3
    agents = [s for s in spans if s.attributes.get(sc.TRACELOOP_SPAN_KIND) == "agent"]
    conversations = {s.attributes[sc.GEN_AI_CONVERSATION_ID] for s in agents}
    assert len(conversations) == 1 and next(iter(conversations)).startswith("conv_")
    llm = [s for s in spans if s.name == "chat gpt-4o-mini"]
    for call in llm:  # each model call once, under the agent that made it, naming it
        parent = by_id[call.parent_span_id]
        assert parent.attributes[sc.TRACELOOP_SPAN_KIND] == "agent"
        assert call.attributes[sc.GEN_AI_AGENT_NAME] == parent.attributes[sc.GEN_AI_AGENT_NAME]
        assert call.attributes[sc.GEN_AI_CONVERSATION_ID] in conversations
    assert {s.name for s in spans if s.attributes.get(sc.TRACELOOP_SPAN_KIND) == "tool"} == {
        "faq_lookup.tool",
        "update_seat.tool",
    }
    stopped = [s for s in agents if s.status_code == 2]
    assert [s.name for s in stopped] == ["Triage Agent.agent"]
    assert stopped[0].attributes[sc.ERROR_TYPE] == "InputGuardrailTripwireTriggered"
    assert list(stopped[0].attributes[sc.GUARDRAIL_TRIPWIRES]) == ["relevance"]
    durations = otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)
    assert sum(p.count or 0 for m in durations for p in m.data_points) == len(llm)


def test_agent_app(openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver) -> None:
    """The step API example: per user a workflow, two agents, a tool, the conversation and the
    experiment attributes on every span."""
    openai_server.script(content="Walk the old town.", times=None)
    done = run_example(
        "agent_app.py",
        OPENAI_BASE_URL=openai_server.base_url,
        OPENAI_API_KEY="test",
        DT_ENDPOINT=otlp_receiver.url,
    )
    assert "session-alice (A): Walk the old town." in done.stdout
    assert "session-bob (B): Walk the old town." in done.stdout
    spans = otlp_receiver.spans()
    by_id = {s.span_id: s for s in spans}
    assert by_name(spans) == sorted(
        [
            "plan-trip.workflow",
            "planner.agent",
            "weather.tool",
            "writer.agent",
            "chat gpt-4o-mini",
            "chat gpt-4o-mini",
        ]
        * 2
    )
    for session, arm in (("session-alice", "A"), ("session-bob", "B")):
        mine = [s for s in spans if s.attributes.get(sc.GEN_AI_CONVERSATION_ID) == session]
        assert len(mine) == 6 and len({s.trace_id for s in mine}) == 1
        assert {s.attributes["prompt_style"] for s in mine} == {arm}
        assert {s.attributes["experiment"] for s in mine} == {"prompt-style"}
    for llm in (s for s in spans if s.name == "chat gpt-4o-mini"):
        agent = by_id[llm.parent_span_id]
        assert agent.attributes[sc.TRACELOOP_SPAN_KIND] == "agent"
        assert llm.attributes[sc.GEN_AI_AGENT_NAME] == agent.attributes[sc.GEN_AI_AGENT_NAME]
    for tool in (s for s in spans if s.name == "weather.tool"):
        assert tool.attributes[sc.GEN_AI_AGENT_NAME] == "planner"
        assert by_id[tool.parent_span_id].name == "planner.agent"
    streamed = [s for s in spans if s.attributes.get(sc.GEN_AI_REQUEST_STREAM)]
    assert len(streamed) == 2 and {s.attributes[sc.GEN_AI_AGENT_NAME] for s in streamed} == {"writer"}
