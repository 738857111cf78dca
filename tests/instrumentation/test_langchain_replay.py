"""Replays the recorded LangChain traffic through langchain-openai, LangChain and OpenAI instrumented.

``../shared/recorded/openllmetry/langchain`` holds OpenAI chat and legacy completion exchanges made
by ``ChatOpenAI``/``OpenAI`` (LLMs, LCEL chains, LangGraph graphs, agents, tool calls, structured
output, streams). Each recorded request is sent again through the same kind of LangChain run
(a chain, a graph node, async or not, streamed or not) against a server answering with the
recorded response. With both instrumentations on, every call must give exactly one LLM span (the
openai one, under the model's LangChain task) carrying the recorded model and usage, and token
metrics counted once. Skipped without ``../shared``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, TypedDict

import pytest
from langchain_core.messages import convert_to_messages
from langchain_core.runnables import RunnableLambda
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

from genai_observe._core import semconv as sc
from genai_observe.instrumentation.langchain import LangChainInstrumentor
from genai_observe.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import Telemetry
from tests.rig.replay import Interaction, ReplayServer, interactions

# The cassettes also hold Anthropic, Bedrock, Cohere, Hugging Face, Tavily and LangSmith traffic
# (other integrations, not langchain-openai): only OpenAI's API, as recorded against api.openai.com
# or a local OpenAI-compatible server (vLLM).
CASES = [
    case
    for case in interactions("langchain", ("/chat/completions", "/completions"))
    if case.host in ("api.openai.com", "localhost")
]
# Request fields passed on to the model run as call arguments (the rest are client settings).
_BOUND = ("tools", "tool_choice", "functions", "function_call", "response_format", "parallel_tool_calls")


class State(TypedDict, total=False):
    q: Any
    a: Any


@pytest.fixture(scope="module")
def replay() -> Iterator[ReplayServer]:
    server = ReplayServer()
    yield server
    server.stop()


@pytest.fixture
def instrumented(telemetry: Telemetry) -> Iterator[None]:
    instrumentors = [LangChainInstrumentor(), OpenAIInstrumentor()]
    for instrumentor in instrumentors:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        instrumentor.instrument(**telemetry.instrument_kwargs(capture="SPAN_ONLY"))
    yield
    for instrumentor in instrumentors:
        instrumentor.uninstrument()


@pytest.fixture(autouse=True)
def fresh_async_http_clients() -> None:
    """langchain-openai caches async HTTP clients per base URL; each asyncio.run() has a new loop."""
    from langchain_openai.chat_models import _client_utils

    cache_clear = getattr(getattr(_client_utils, "_cached_async_httpx_client", None), "cache_clear", None)
    if cache_clear is not None:
        cache_clear()


def _model(case: Interaction, body: dict[str, Any], url: str) -> tuple[Any, Any]:
    """(the langchain-openai model for this request, its input)."""
    from langchain_openai import ChatOpenAI, OpenAI

    settings: dict[str, Any] = {
        "model": body["model"],
        "base_url": url + "/v1",
        "api_key": "k",
        "max_retries": 0,
    }
    for key in ("temperature", "max_tokens"):
        if body.get(key) is not None:
            settings[key] = body[key]
    if case.path.endswith("/chat/completions"):
        model: Any = ChatOpenAI(**settings)
        given = convert_to_messages(body["messages"])
    else:
        model = OpenAI(**settings)
        prompt = body.get("prompt")
        given = prompt[0] if isinstance(prompt, list) else prompt
    bound = {k: body[k] for k in _BOUND if k in body}
    return (model.bind(**bound) if bound else model), given


def _runnable(case: Interaction, model: Any) -> Any:
    """The recorded test's shape: a LangGraph node for graph tests, else a chain around the model."""
    if "langgraph" in case.cassette.stem:
        from langgraph.graph import END, START, StateGraph

        def call(state: State) -> State:
            return {"a": model.invoke(state["q"])}

        async def acall(state: State) -> State:
            return {"a": await model.ainvoke(state["q"])}

        graph = StateGraph(State)
        graph.add_node("call", RunnableLambda(call, afunc=acall, name="call"))
        graph.add_edge(START, "call")
        graph.add_edge("call", END)
        compiled = graph.compile()
        return RunnableLambda(lambda q: {"q": q}, name="prepare") | compiled
    return RunnableLambda(lambda q: q, name="prepare") | model


def _run(case: Interaction, runnable: Any, given: Any, stream: bool) -> None:
    if "async" in case.cassette.stem:

        async def go() -> None:
            if stream:
                async for _ in runnable.astream(given):
                    pass
            else:
                await runnable.ainvoke(given)

        asyncio.run(go())
    elif stream:
        for _ in runnable.stream(given):
            pass
    else:
        runnable.invoke(given)


def _expected(case: Interaction) -> dict[str, Any]:
    """The recorded response model and usage, in our attribute names."""
    exp: dict[str, Any] = {}
    usage: Any = None
    if case.is_sse:
        for _, chunk in case.sse_events():
            if isinstance(chunk, dict):
                if chunk.get("model") and "gen_ai.response.model" not in exp:
                    exp["gen_ai.response.model"] = chunk["model"]
                usage = chunk.get("usage") or usage
    else:
        body = case.response_json()
        if isinstance(body, dict):
            exp["gen_ai.response.model"] = body.get("model")
            usage = body.get("usage")
    if isinstance(usage, dict):
        exp["gen_ai.usage.input_tokens"] = usage.get("prompt_tokens")
        exp["gen_ai.usage.output_tokens"] = usage.get("completion_tokens")
    return {k: v for k, v in exp.items() if v is not None}


def _parent(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next(s for s in spans if s.context.span_id == span.parent.span_id)


@pytest.mark.skipif(not CASES, reason="recorded traffic (../shared/recorded) not available")
@pytest.mark.parametrize("case", CASES, ids=Interaction.label)
def test_replay(case: Interaction, replay: ReplayServer, telemetry: Telemetry, instrumented: None) -> None:
    body = case.request_json()
    assert isinstance(body, dict), case.label()
    replay.current = case
    model, given = _model(case, body, replay.url)
    _run(case, _runnable(case, model), given, stream=bool(body.get("stream")))

    spans = telemetry.spans()
    llms = [
        s
        for s in spans
        if (s.attributes or {}).get(sc.GEN_AI_OPERATION_NAME) in (sc.OP_CHAT, sc.OP_TEXT_COMPLETION)
    ]
    assert len(llms) == 1, [s.name for s in spans]
    (llm,) = llms
    a = dict(llm.attributes or {})
    # The provider's span, nested under the model's LangChain task, in the run's one trace.
    assert a["gen_ai.system"] == "openai" and a["gen_ai.provider.name"] == "openai"
    parent = _parent(llm, spans)
    model_class = "ChatOpenAI" if case.path.endswith("/chat/completions") else "OpenAI"
    assert parent is not None and parent.name == f"{model_class}.task"
    assert len({s.context.trace_id for s in spans}) == 1
    assert not trace.get_current_span().get_span_context().is_valid

    assert a["gen_ai.request.model"] == body["model"]
    expected = _expected(case)
    for key, value in expected.items():
        assert a.get(key) == value, f"{case.label()}: {key}"

    # Tokens counted once: by the openai span alone, as recorded (none when the stream had no usage).
    metrics = telemetry.metrics()
    points = metrics.get(sc.METRIC_TOKEN_USAGE, [])
    assert {p.attributes["gen_ai.provider.name"] for p in points} <= {"openai"}
    sums = {p.attributes["gen_ai.token.type"]: (p.count, p.sum) for p in points}
    recorded = {
        t: (1, expected[k])
        for t, k in (("input", "gen_ai.usage.input_tokens"), ("output", "gen_ai.usage.output_tokens"))
        if k in expected
    }
    assert {t: v for t, v in sums.items() if t in ("input", "output")} == recorded
    (duration,) = metrics[sc.METRIC_OPERATION_DURATION]
    assert duration.count == 1 and duration.attributes["gen_ai.provider.name"] == "openai"
