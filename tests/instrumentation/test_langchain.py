"""Real langchain-core runnables, tools, retrievers, LangGraph graphs and langchain-openai."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypedDict

import pytest
from langchain_core.callbacks import CallbackManager
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langchain_core.tools import tool
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from genai_observe._core import semconv as sc
from genai_observe.instrumentation.langchain import LangChainInstrumentor
from genai_observe.instrumentation.langchain import _adapter as ad
from genai_observe.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import Telemetry

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123"


@pytest.fixture
def instrument(telemetry: Telemetry) -> Iterator[Callable[..., LangChainInstrumentor]]:
    """LangChain instrumented with the given options (content on spans by default); undone after."""
    with telemetry.instrumenting(LangChainInstrumentor(), capture="SPAN_ONLY") as apply:
        yield apply


@pytest.fixture(autouse=True)
def fresh_async_http_clients() -> None:
    """langchain-openai caches one async HTTP client per base URL; every asyncio.run() of these
    tests has a new event loop, so a client cached by an earlier test would be bound to a closed one."""
    from langchain_openai.chat_models import _client_utils

    cache_clear = getattr(getattr(_client_utils, "_cached_async_httpx_client", None), "cache_clear", None)
    if cache_clear is not None:
        cache_clear()


@pytest.fixture
def openai_on(telemetry: Telemetry) -> Iterator[OpenAIInstrumentor]:
    instrumentor = OpenAIInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    instrumentor.instrument(**telemetry.instrument_kwargs(capture="SPAN_ONLY"))
    yield instrumentor
    instrumentor.uninstrument()


def by_name(telemetry: Telemetry) -> dict[str, ReadableSpan]:
    spans = telemetry.spans()
    names = [s.name for s in spans]
    out = {s.name: s for s in spans}
    assert len(out) == len(names), f"duplicate span names: {names}"
    return out


def parent_of(span: ReadableSpan, telemetry: Telemetry) -> ReadableSpan | None:
    if span.parent is None:
        return None
    for s in telemetry.spans():
        if s.context.span_id == span.parent.span_id:
            return s
    raise AssertionError(f"parent of {span.name} not exported")


def ancestors(span: ReadableSpan, telemetry: Telemetry) -> list[str]:
    out: list[str] = []
    current = parent_of(span, telemetry)
    while current is not None:
        out.append(current.name)
        current = parent_of(current, telemetry)
    return out


def llm_spans(telemetry: Telemetry) -> list[ReadableSpan]:
    return [s for s in telemetry.spans() if (s.attributes or {}).get(sc.GEN_AI_OPERATION_NAME) == sc.OP_CHAT]


def reply(text: str = "hello there", tokens: tuple[int, int] = (3, 2)) -> GenericFakeChatModel:
    usage = {"input_tokens": tokens[0], "output_tokens": tokens[1], "total_tokens": sum(tokens)}
    return GenericFakeChatModel(messages=iter([AIMessage(content=text, usage_metadata=usage)] * 4))


def simple_chain(model: Any | None = None) -> Any:
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("user", "{q}")])
    return prompt | (model or reply()) | StrOutputParser()


def token_points(telemetry: Telemetry) -> list[Any]:
    return telemetry.metrics().get(sc.METRIC_TOKEN_USAGE, [])


# --- the run tree --------------------------------------------------------------------------------


def test_chain_tree_dynatrace_profile(telemetry: Telemetry, instrument: Any) -> None:
    assert simple_chain().invoke({"q": "Say hi"}) == "hello there"
    spans = by_name(telemetry)
    assert set(spans) == {
        "RunnableSequence.workflow",
        "ChatPromptTemplate.task",
        "chat",
        "StrOutputParser.task",
    }
    root = spans["RunnableSequence.workflow"]
    assert root.parent is None
    for name in ("ChatPromptTemplate.task", "chat", "StrOutputParser.task"):
        assert parent_of(spans[name], telemetry) is root
    assert dict(root.attributes or {}) == {
        "traceloop.span.kind": "workflow",
        "traceloop.entity.name": "RunnableSequence",
        "traceloop.workflow.name": "RunnableSequence",
        "traceloop.entity.input": '{"q":"Say hi"}',
        "traceloop.entity.output": '"hello there"',
    }
    task = spans["ChatPromptTemplate.task"].attributes or {}
    assert task["traceloop.span.kind"] == "task"
    assert task["traceloop.workflow.name"] == "RunnableSequence"
    assert task["traceloop.entity.name"] == "ChatPromptTemplate"
    llm = dict(spans["chat"].attributes or {})
    assert llm == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "langchain",
        "gen_ai.system": "Langchain",
        "llm.request.type": "chat",
        "traceloop.workflow.name": "RunnableSequence",
        "traceloop.entity.name": "GenericFakeChatModel",
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "Be brief.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "Say hi",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "hello there",
        # The v1.41.0 JSON form as well: the app reads it first (AR-011, AR-012).
        "gen_ai.input.messages": '[{"role":"system","parts":[{"type":"text","content":"Be brief."}]},'
        '{"role":"user","parts":[{"type":"text","content":"Say hi"}]}]',
        # The history's system prompt, for the app's system-prompt column (AR-043).
        "gen_ai.system_instructions": '[{"type":"text","content":"Be brief."}]',
        "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text","content":"hello there"}],'
        '"finish_reason":""}]',
        "gen_ai.usage.input_tokens": 3,
        "gen_ai.usage.output_tokens": 2,
        "gen_ai.usage.prompt_tokens": 3,
        "gen_ai.usage.completion_tokens": 2,
        "llm.usage.total_tokens": 5,
    }
    points = token_points(telemetry)
    assert sorted((p.attributes["gen_ai.token.type"], p.sum) for p in points) == [("input", 3), ("output", 2)]
    assert {p.attributes["gen_ai.provider.name"] for p in points} == {"langchain"}


def test_request_parameters_from_invocation_params(telemetry: Telemetry, instrument: Any) -> None:
    from langchain_openai import ChatOpenAI

    # openai is not instrumented here: ChatOpenAI's run is the LLM span itself. No request is made.
    model = ChatOpenAI(model="gpt-4o-mini", temperature=0.25, max_tokens=42, api_key="k", base_url="http://x")
    handler = instrument().handler
    manager = CallbackManager.configure(local_metadata=model._get_ls_params())
    assert handler in manager.handlers
    from langchain_core.load import dumpd

    params = model._get_invocation_params()
    (run,) = manager.on_chat_model_start(dumpd(model), [[HumanMessage("hi")]], invocation_params=params)
    run.on_llm_error(RuntimeError("no network in this test"))
    a = telemetry.span().attributes or {}
    assert telemetry.span().name == "chat gpt-4o-mini"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.request.temperature"] == 0.25
    assert a["gen_ai.request.max_tokens"] == 42
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.system"] == "Langchain"
    assert a["error.type"] == "RuntimeError"


def test_latest_profile_tools_and_content(telemetry: Telemetry, instrument: Any) -> None:
    instrument(profile="latest")

    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    chain = RunnableLambda(lambda x: x, name="prep") | add
    assert chain.invoke({"a": 2, "b": 3}) == 5
    spans = by_name(telemetry)
    assert set(spans) == {"RunnableSequence", "prep", "execute_tool add"}
    t = dict(spans["execute_tool add"].attributes or {})
    assert t == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "add",
        "gen_ai.tool.call.arguments": '{"a":2,"b":3}',
        "gen_ai.tool.call.result": "5",
    }
    assert parent_of(spans["execute_tool add"], telemetry) is spans["RunnableSequence"]
    assert not any(k.startswith("traceloop.") for s in spans.values() for k in (s.attributes or {}))

    telemetry.span_exporter.clear()
    message = add.invoke({"name": "add", "args": {"a": 1, "b": 1}, "id": "call_7", "type": "tool_call"})
    assert message.content == "2"
    t = dict(telemetry.span().attributes or {})
    assert t["gen_ai.tool.call.id"] == "call_7"
    assert t["gen_ai.tool.call.result"] == '"2"'

    telemetry.span_exporter.clear()
    simple_chain().invoke({"q": "Say hi"})
    llm = dict(by_name(telemetry)["chat"].attributes or {})
    assert llm["gen_ai.input.messages"] == (
        '[{"role":"system","parts":[{"type":"text","content":"Be brief."}]},'
        '{"role":"user","parts":[{"type":"text","content":"Say hi"}]}]'
    )
    assert "gen_ai.system" not in llm and "traceloop.workflow.name" not in llm


def test_dynatrace_tool_span(telemetry: Telemetry, instrument: Any) -> None:
    @tool
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    assert shout.invoke({"text": "hey"}) == "HEY"
    s = telemetry.span()
    assert s.name == "shout.tool"
    assert dict(s.attributes or {}) == {
        "traceloop.span.kind": "tool",
        "traceloop.entity.name": "shout",
        "traceloop.workflow.name": "shout",
        "traceloop.entity.input": '{"text":"hey"}',
        "traceloop.entity.output": '"HEY"',
    }


def test_content_off_exports_no_text(telemetry: Telemetry, instrument: Any) -> None:
    instrument(capture="NO_CONTENT")

    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    chain = simple_chain(reply(f"answer {SECRET} zebra")) | RunnableLambda(lambda s: echo.invoke({"text": s}))
    chain.invoke({"q": "question giraffe"})
    assert len(telemetry.spans()) == 6
    for s in telemetry.spans():
        for key, value in (s.attributes or {}).items():
            assert "giraffe" not in str(value) and "zebra" not in str(value), (s.name, key)
            assert not key.startswith(("gen_ai.prompt.", "gen_ai.completion.", "traceloop.entity.input"))


def test_content_is_masked_and_capped(telemetry: Telemetry, instrument: Any) -> None:
    from genai_observe._core.content import ContentPolicy

    instrument(content=ContentPolicy(max_length=20))
    simple_chain(reply("short")).invoke({"q": f"key {SECRET} and a long tail of words"})
    root = by_name(telemetry)["RunnableSequence.workflow"].attributes or {}
    assert SECRET not in str(root["traceloop.entity.input"])
    assert "[REDACTED]" in str(root["traceloop.entity.input"])
    assert "…[truncated]" in str(root["traceloop.entity.input"])


# --- async, streaming, parallel -------------------------------------------------------------------


def test_async_chain(telemetry: Telemetry, instrument: Any) -> None:
    assert asyncio.run(simple_chain().ainvoke({"q": "Say hi"})) == "hello there"
    spans = by_name(telemetry)
    root = spans["RunnableSequence.workflow"]
    assert parent_of(spans["chat"], telemetry) is root
    assert parent_of(spans["StrOutputParser.task"], telemetry) is root
    assert (spans["chat"].attributes or {})["gen_ai.usage.output_tokens"] == 2


def test_stream_sync(telemetry: Telemetry, instrument: Any) -> None:
    chunks = list(simple_chain(reply("one two three")).stream({"q": "count"}))
    assert "".join(chunks) == "one two three" and len(chunks) > 1
    spans = by_name(telemetry)
    llm = spans["chat"]
    assert parent_of(llm, telemetry) is spans["RunnableSequence.workflow"]
    assert (llm.attributes or {})["gen_ai.completion.0.content"] == "one two three"
    ttfc = telemetry.metrics().get(sc.METRIC_TIME_TO_FIRST_CHUNK, [])
    assert sum(p.count for p in ttfc) == 1


def test_astream_and_astream_events(telemetry: Telemetry, instrument: Any) -> None:
    async def run() -> tuple[str, list[str]]:
        text = "".join([c async for c in simple_chain(reply("a b c")).astream({"q": "x"})])
        kinds = [
            e["event"] async for e in simple_chain(reply("d e")).astream_events({"q": "y"}, version="v2")
        ]
        return text, kinds

    text, kinds = asyncio.run(run())
    assert text == "a b c" and "on_chat_model_stream" in kinds
    roots = [s for s in telemetry.spans() if s.parent is None]
    assert [r.name for r in roots] == ["RunnableSequence.workflow"] * 2
    llms = llm_spans(telemetry)
    assert len(llms) == 2
    for llm in llms:
        assert ancestors(llm, telemetry) == ["RunnableSequence.workflow"]
    assert {p.trace_id for p in (s.context for s in llms)} == {r.context.trace_id for r in roots}


def _parallel() -> Any:
    def branch(label: str) -> Any:
        model = FakeListChatModel(responses=[f"from {label}"] * 4)
        return (RunnableLambda(lambda x: f"{label}:{x['q']}", name=f"prep_{label}") | model).with_config(
            run_name=f"branch_{label}"
        )

    return RunnableParallel(left=branch("left"), right=branch("right"))


def _assert_parallel_parents(telemetry: Telemetry) -> None:
    llms = llm_spans(telemetry)
    assert len(llms) == 2
    for llm in llms:
        a = llm.attributes or {}
        label = "left" if a["gen_ai.completion.0.content"] == "from left" else "right"
        assert a["gen_ai.prompt.0.content"] == f"{label}:q"
        assert ancestors(llm, telemetry)[0] == f"branch_{label}.task"


def test_parallel_branches_sync(telemetry: Telemetry, instrument: Any) -> None:
    out = _parallel().invoke({"q": "q"})
    assert out["left"].content == "from left"
    _assert_parallel_parents(telemetry)


def test_parallel_branches_async(telemetry: Telemetry, instrument: Any) -> None:
    out = asyncio.run(_parallel().ainvoke({"q": "q"}))
    assert out["right"].content == "from right"
    _assert_parallel_parents(telemetry)


# --- errors ---------------------------------------------------------------------------------------


class Boom(FakeListChatModel):
    def _call(self, *args: Any, **kwargs: Any) -> str:
        raise ValueError(f"bad key {SECRET}")


def test_errors_land_on_the_right_span(telemetry: Telemetry, instrument: Any) -> None:
    chain = simple_chain(Boom(responses=["x"]))
    with pytest.raises(ValueError) as caught:
        chain.invoke({"q": "q"})
    assert SECRET in str(caught.value)  # the app sees LangChain's exception untouched
    spans = by_name(telemetry)
    llm = spans["chat"]
    assert llm.status.status_code is StatusCode.ERROR
    assert (llm.attributes or {})["error.type"] == "ValueError"
    (event,) = llm.events
    assert SECRET not in str(event.attributes) and "[REDACTED]" in str(event.attributes)
    root = spans["RunnableSequence.workflow"]
    assert root.status.status_code is StatusCode.ERROR
    assert (root.attributes or {})["error.type"] == "ValueError"
    assert SECRET not in str(root.status.description) and SECRET not in str(root.events[0].attributes)
    assert spans["ChatPromptTemplate.task"].status.status_code is StatusCode.UNSET
    assert LangChainInstrumentor().handler.tracked_runs() == 0


def test_tool_error(telemetry: Telemetry, instrument: Any) -> None:
    @tool
    def fail(x: int) -> int:
        """Always fails."""
        raise KeyError("nope")

    with pytest.raises(KeyError):
        fail.invoke({"x": 1})
    s = telemetry.span()
    assert s.name == "fail.tool" and s.status.status_code is StatusCode.ERROR
    assert (s.attributes or {})["error.type"] == "KeyError"


# --- retrievers and agents ------------------------------------------------------------------------


class Docs(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return [Document(page_content=f"about {query}", metadata={"src": "kb"})]


def test_retriever_span(telemetry: Telemetry, instrument: Any) -> None:
    chain = Docs() | RunnableLambda(lambda docs: docs[0].page_content, name="first")
    assert chain.invoke("cats") == "about cats"
    spans = by_name(telemetry)
    r = spans["Docs.retriever"]
    assert parent_of(r, telemetry) is spans["RunnableSequence.workflow"]
    a = r.attributes or {}
    assert a["traceloop.span.kind"] == "retriever"
    assert a["traceloop.entity.input"] == '"cats"'
    assert a["traceloop.entity.output"] == '[{"page_content":"about cats","metadata":{"src":"kb"}}]'


@pytest.mark.parametrize("profile", ["dynatrace", "latest"])
def test_agent_callbacks_make_an_agent_span(telemetry: Telemetry, instrument: Any, profile: str) -> None:
    from langchain_core.agents import AgentAction, AgentFinish

    instrument(profile=profile)
    manager = CallbackManager.configure()
    run = manager.on_chain_start({"id": ["x", "MyAgent"], "name": "MyAgent"}, {"input": "hi"})
    child = run.get_child()
    tool_run = child.on_tool_start({"name": "lookup"}, "q", inputs={"q": "q"})
    tool_run.on_tool_end("found")
    run.on_agent_action(AgentAction(tool="lookup", tool_input="q", log=""))
    run.on_agent_finish(AgentFinish(return_values={"output": "done"}, log=""))
    run.on_chain_end({"output": "done"})
    spans = by_name(telemetry)
    if profile == "dynatrace":
        agent = spans["MyAgent.agent"]
        assert (agent.attributes or {})["traceloop.span.kind"] == "agent"
        assert parent_of(spans["lookup.tool"], telemetry) is agent
    else:
        agent = spans["invoke_agent MyAgent"]
        assert (agent.attributes or {})["gen_ai.operation.name"] == "invoke_agent"
        assert (agent.attributes or {})["gen_ai.agent.name"] == "MyAgent"
        assert parent_of(spans["execute_tool lookup"], telemetry) is agent


# --- LangGraph --------------------------------------------------------------------------------------


class State(TypedDict, total=False):
    q: str
    a: str


def _graph() -> Any:
    from langgraph.graph import END, START, StateGraph

    model = FakeListChatModel(responses=["graph answer"] * 4)

    def prepare(state: State) -> State:
        return {"q": state["q"] + "?"}

    def answer(state: State) -> State:
        return {"a": str(model.invoke(state["q"]).content)}

    graph = StateGraph(State)
    graph.add_node("prepare", prepare)
    graph.add_node("answer", answer)
    graph.add_edge(START, "prepare")
    graph.add_edge("prepare", "answer")
    graph.add_edge("answer", END)
    return graph.compile()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_langgraph_graph_is_one_workflow_with_nodes(telemetry: Telemetry, instrument: Any, mode: str) -> None:
    graph = _graph()
    out = graph.invoke({"q": "why"}) if mode == "sync" else asyncio.run(graph.ainvoke({"q": "why"}))
    assert out == {"q": "why?", "a": "graph answer"}
    spans = by_name(telemetry)
    assert set(spans) == {"LangGraph.workflow", "prepare.task", "answer.task", "chat"}
    root = spans["LangGraph.workflow"]
    assert root.parent is None
    assert parent_of(spans["prepare.task"], telemetry) is root
    assert parent_of(spans["answer.task"], telemetry) is root
    assert parent_of(spans["chat"], telemetry) is spans["answer.task"]
    assert (spans["chat"].attributes or {})["traceloop.workflow.name"] == "LangGraph"


# --- agents built with LangGraph ----------------------------------------------------------------------


class ToolCallingFake(GenericFakeChatModel):
    """A fake chat model agents can bind tools to (the scripted messages decide the tool calls)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


@tool
def lookup(q: str) -> str:
    """Look something up."""
    return f"found {q}"


def _agent_model() -> ToolCallingFake:
    usage = {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6}
    return ToolCallingFake(
        messages=iter(
            [
                AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"q": "x"}, "id": "c1"}]),
                AIMessage(content="the answer", usage_metadata=usage),
            ]
        )
    )


def _kinds(telemetry: Telemetry) -> list[tuple[str, str | None, str | None]]:
    """(span name, parent name, traceloop.span.kind or gen_ai.operation.name) in start order."""
    spans = sorted(telemetry.spans(), key=lambda s: s.start_time or 0)
    out = []
    for s in spans:
        parent = parent_of(s, telemetry)
        a = s.attributes or {}
        kind = a.get("traceloop.span.kind", a.get("gen_ai.operation.name"))
        out.append((s.name, parent.name if parent else None, str(kind) if kind else None))
    return out


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_create_react_agent_is_an_agent_dynatrace(telemetry: Telemetry, instrument: Any, mode: str) -> None:
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated in favour of langchain.agents.create_agent
        agent = create_react_agent(_agent_model(), [lookup], name="helper")
    question = {"messages": [("user", "find x")]}
    out = agent.invoke(question) if mode == "sync" else asyncio.run(agent.ainvoke(question))
    assert out["messages"][-1].content == "the answer"
    assert _kinds(telemetry) == [
        ("helper.agent", None, "agent"),
        ("agent.task", "helper.agent", "task"),
        ("call_model.task", "agent.task", "task"),
        (
            "RunnableSequence.task",
            "agent.task",
            "task",
        ),  # LangChain's parent: call_model passes the node's config
        ("Prompt.task", "RunnableSequence.task", "task"),
        ("chat", "RunnableSequence.task", "chat"),
        ("should_continue.task", "agent.task", "task"),
        ("tools.task", "helper.agent", "task"),
        ("lookup.tool", "tools.task", "tool"),
        ("agent.task", "helper.agent", "task"),
        ("call_model.task", "agent.task", "task"),
        ("RunnableSequence.task", "agent.task", "task"),
        ("Prompt.task", "RunnableSequence.task", "task"),
        ("chat", "RunnableSequence.task", "chat"),
        ("should_continue.task", "agent.task", "task"),
    ]
    root = next(s for s in telemetry.spans() if s.parent is None)
    a = root.attributes or {}
    assert a["traceloop.entity.name"] == "helper" and a["traceloop.workflow.name"] == "helper"
    assert LangChainInstrumentor().handler.tracked_runs() == 0


def test_create_react_agent_is_an_agent_latest(telemetry: Telemetry, instrument: Any) -> None:
    from langgraph.prebuilt import create_react_agent

    instrument(profile="latest")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent = create_react_agent(_agent_model(), [lookup])  # unnamed: the graph's default name
    agent.invoke({"messages": [("user", "find x")]})
    (root,) = [s for s in telemetry.spans() if s.parent is None]
    assert root.name == "invoke_agent LangGraph"
    a = root.attributes or {}
    assert a["gen_ai.operation.name"] == "invoke_agent" and a["gen_ai.agent.name"] == "LangGraph"
    (tool_span,) = [s for s in telemetry.spans() if s.name == "execute_tool lookup"]
    assert (tool_span.attributes or {})["gen_ai.tool.call.id"] == "c1"
    assert ancestors(tool_span, telemetry) == ["tools", "invoke_agent LangGraph"]


def _marked_graph(name: str | None) -> Any:
    """A graph compiled the way ``langchain.agents.create_agent`` compiles its agents."""
    from langgraph.graph import END, START, StateGraph

    def model(state: State) -> State:
        return {"a": str(reply("hi from the model").invoke(state["q"]).content)}

    graph = StateGraph(State)
    graph.add_node("model", model)
    graph.add_edge(START, "model")
    graph.add_edge("model", END)
    metadata = {"ls_integration": "langchain_create_agent"}
    if name:
        metadata["lc_agent_name"] = name
    return graph.compile(name=name or "LangGraph").with_config({"metadata": metadata})


@pytest.mark.parametrize("profile", ["dynatrace", "latest"])
def test_create_agent_metadata_makes_the_graph_an_agent(
    telemetry: Telemetry, instrument: Any, profile: str
) -> None:
    instrument(profile=profile)
    inner = _marked_graph("researcher")

    def delegate(state: State) -> State:
        return {"a": inner.invoke({"q": state["q"]})["a"]}

    from langgraph.graph import END, START, StateGraph

    outer_graph = StateGraph(State)
    outer_graph.add_node("delegate", delegate)
    outer_graph.add_edge(START, "delegate")
    outer_graph.add_edge("delegate", END)
    outer = outer_graph.compile(name="boss").with_config(
        {"metadata": {"ls_integration": "langchain_create_agent", "lc_agent_name": "boss"}}
    )
    assert outer.invoke({"q": "why"})["a"] == "hi from the model"
    kinds = _kinds(telemetry)
    if profile == "dynatrace":
        assert kinds == [
            ("boss.agent", None, "agent"),
            ("delegate.task", "boss.agent", "task"),
            ("researcher.agent", "delegate.task", "agent"),
            ("model.task", "researcher.agent", "task"),
            ("chat", "model.task", "chat"),
        ]
    else:
        assert kinds == [
            ("invoke_agent boss", None, "invoke_agent"),
            ("delegate", "invoke_agent boss", None),
            ("invoke_agent researcher", "delegate", "invoke_agent"),
            ("model", "invoke_agent researcher", None),
            ("chat", "model", "chat"),
        ]


def test_plain_graph_stays_a_workflow(telemetry: Telemetry, instrument: Any) -> None:
    _graph().invoke({"q": "why"})
    assert [s.name for s in telemetry.spans() if s.parent is None] == ["LangGraph.workflow"]
    assert ad.agent_marker({"ls_integration": "langgraph"}) is None
    assert not ad.is_graph_node("agent", ["seq:step:1"], {"langgraph_node": "agent"})


# --- provider SDK calls made inside a step's own code ---------------------------------------------


def _ask(client: Any, model: str = "gpt-4o-mini") -> Callable[[Any], str]:
    def ask(x: Any) -> str:
        out = client.chat.completions.create(model=model, messages=[{"role": "user", "content": str(x)}])
        return str(out.choices[0].message.content)

    return ask


def _assert_nested(telemetry: Telemetry, expected: dict[str, str]) -> None:
    """Each ``chat <model>`` span's parent is the given step span, all in one trace, nothing current."""
    spans = telemetry.spans()
    llms = {s.name: s for s in llm_spans(telemetry)}
    assert set(llms) == set(expected), [s.name for s in spans]
    for name, step in expected.items():
        parent = parent_of(llms[name], telemetry)
        assert parent is not None and parent.name == step, (name, parent and parent.name)
        assert (llms[name].attributes or {})["gen_ai.provider.name"] == "openai"
    assert len({s.context.trace_id for s in spans}) == 1, [(s.name, s.parent) for s in spans]
    assert len([s for s in spans if s.parent is None]) == 1
    assert not trace.get_current_span().get_span_context().is_valid
    assert LangChainInstrumentor().handler.tracked_runs() == 0


def test_openai_call_inside_a_runnable_lambda_nests_under_it(
    openai_server: Any, telemetry: Telemetry, instrument: Any, openai_on: Any
) -> None:
    chain = RunnableLambda(lambda x: x["q"], name="prep") | RunnableLambda(
        _ask(openai_server.client()), name="ask"
    )
    assert isinstance(chain.invoke({"q": "hi"}), str)
    _assert_nested(telemetry, {"chat gpt-4o-mini": "ask.task"})
    telemetry.span_exporter.clear()
    assert list(chain.stream({"q": "streamed"}))
    _assert_nested(telemetry, {"chat gpt-4o-mini": "ask.task"})


def test_openai_call_inside_a_tool_nests_under_it(
    openai_server: Any, telemetry: Telemetry, instrument: Any, openai_on: Any
) -> None:
    client = openai_server.client()

    @tool
    def research(topic: str) -> str:
        """Ask a model about a topic."""
        return _ask(client)(topic)

    chain = RunnableLambda(lambda x: {"topic": x}, name="prep") | research
    assert isinstance(chain.invoke("otel"), str)
    _assert_nested(telemetry, {"chat gpt-4o-mini": "research.tool"})
    assert (
        parent_of(by_name(telemetry)["research.tool"], telemetry)
        is by_name(telemetry)["RunnableSequence.workflow"]
    )


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_openai_call_inside_a_langgraph_node_nests_under_it(
    openai_server: Any, telemetry: Telemetry, instrument: Any, openai_on: Any, mode: str
) -> None:
    from langgraph.graph import END, START, StateGraph

    sync_client, async_client = openai_server.client(), openai_server.async_client()

    def answer(state: State) -> State:
        return {"a": _ask(sync_client)(state["q"])}

    async def aanswer(state: State) -> State:
        out = await async_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": state["q"]}]
        )
        return {"a": str(out.choices[0].message.content)}

    graph = StateGraph(State)
    graph.add_node("answer", answer if mode == "sync" else aanswer)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    compiled = graph.compile()
    out = compiled.invoke({"q": "why"}) if mode == "sync" else asyncio.run(compiled.ainvoke({"q": "why"}))
    assert isinstance(out["a"], str)
    _assert_nested(telemetry, {"chat gpt-4o-mini": "answer.task"})


def test_openai_call_inside_an_async_lambda_nests_under_it(
    openai_server: Any, telemetry: Telemetry, instrument: Any, openai_on: Any
) -> None:
    client = openai_server.async_client()

    async def ask(x: str) -> str:
        out = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": x}]
        )
        return str(out.choices[0].message.content)

    chain = RunnableLambda(lambda x: x["q"], name="prep") | RunnableLambda(ask, name="ask")

    async def run() -> None:
        assert isinstance(await chain.ainvoke({"q": "hi"}), str)
        assert not trace.get_current_span().get_span_context().is_valid
        assert [c async for c in chain.astream({"q": "streamed"})]
        assert not trace.get_current_span().get_span_context().is_valid

    asyncio.run(run())
    llms = llm_spans(telemetry)
    assert len(llms) == 2
    for llm in llms:
        assert ancestors(llm, telemetry) == ["ask.task", "RunnableSequence.workflow"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_openai_calls_in_parallel_branches_nest_under_their_branch(
    openai_server: Any, telemetry: Telemetry, instrument: Any, openai_on: Any, mode: str
) -> None:
    client = openai_server.client()
    parallel = RunnableParallel(
        left=RunnableLambda(_ask(client, "gpt-left"), name="left"),
        right=RunnableLambda(_ask(client, "gpt-right"), name="right"),
    )
    out = parallel.invoke("q") if mode == "sync" else asyncio.run(parallel.ainvoke("q"))
    assert set(out) == {"left", "right"}
    _assert_nested(telemetry, {"chat gpt-left": "left.task", "chat gpt-right": "right.task"})


def test_step_context_is_detached_when_the_step_fails(
    openai_server: Any, telemetry: Telemetry, instrument: Any, openai_on: Any
) -> None:
    ask = _ask(openai_server.client())

    def ask_then_fail(x: str) -> str:
        ask(x)
        raise KeyError("after the call")

    chain = RunnableLambda(lambda x: x, name="prep") | RunnableLambda(ask_then_fail, name="ask")
    with pytest.raises(KeyError):
        chain.invoke("q")
    _assert_nested(telemetry, {"chat gpt-4o-mini": "ask.task"})
    assert by_name(telemetry)["ask.task"].status.status_code is StatusCode.ERROR
    # The next, unrelated run is a trace of its own.
    telemetry.span_exporter.clear()
    ask("outside")
    assert telemetry.span().parent is None


# --- one LLM span per call: langchain-openai over the openai instrumentation ---------------------------


def test_chat_openai_with_openai_instrumented_has_one_llm_span(
    openai_server: Any, telemetry: Telemetry, instrument: Any, openai_on: Any
) -> None:
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(model="gpt-4o-mini", base_url=openai_server.base_url, api_key="k", max_retries=0)
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | model | StrOutputParser()
    assert isinstance(chain.invoke({"q": "Say hi"}), str)
    llms = llm_spans(telemetry)
    assert len(llms) == 1, [s.name for s in telemetry.spans()]
    (llm,) = llms
    a = llm.attributes or {}
    assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.system"] == "openai"
    assert llm.instrumentation_scope is not None
    assert ancestors(llm, telemetry) == ["ChatOpenAI.task", "RunnableSequence.workflow"]
    task = by_name(telemetry)["ChatOpenAI.task"].attributes or {}
    assert task["traceloop.span.kind"] == "task"
    assert not any(k.startswith(("gen_ai.usage", "llm.usage")) for k in task)
    points = token_points(telemetry)
    # one point per token type (the local server reports cached input): counted once, by openai
    assert sorted(p.attributes["gen_ai.token.type"] for p in points) == ["cache_read", "input", "output"]
    assert {p.attributes["gen_ai.provider.name"] for p in points} == {"openai"}
    assert LangChainInstrumentor().handler.tracked_runs() == 0


def test_chat_openai_nesting_in_every_call_shape(
    openai_server: Any, telemetry: Telemetry, instrument: Any, openai_on: Any
) -> None:
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(model="gpt-4o-mini", base_url=openai_server.base_url, api_key="k", max_retries=0)

    def check_two_nested() -> None:
        llms = llm_spans(telemetry)
        assert len(llms) == 2, [s.name for s in telemetry.spans()]
        for llm in llms:
            assert ancestors(llm, telemetry) == ["ChatOpenAI.task"]
            assert (llm.attributes or {})["gen_ai.provider.name"] == "openai"
        telemetry.span_exporter.clear()

    async def run() -> None:
        assert "".join([str(c.content) async for c in model.astream("Say hi")])
        await model.ainvoke("again")
        # The step made current for the SDK call is not left current in the caller's context
        # (async on_llm_end runs in a shielded task, so only the method wrappers can undo it).
        assert not trace.get_current_span().get_span_context().is_valid

    asyncio.run(run())
    check_two_nested()
    model.invoke("sync")
    assert list(model.stream("sync stream"))
    assert not trace.get_current_span().get_span_context().is_valid
    check_two_nested()


def test_openai_llm_nesting_in_every_call_shape(
    openai_server: Any, telemetry: Telemetry, instrument: Any, openai_on: Any
) -> None:
    from langchain_openai import OpenAI

    # BaseLLM.agenerate runs on_llm_start in tasks of its own (asyncio.gather): the task context
    # still reaches the provider call, through the wrapped _agenerate_helper.
    model = OpenAI(
        model="gpt-3.5-turbo-instruct", base_url=openai_server.base_url, api_key="k", max_retries=0
    )

    async def run() -> None:
        await model.ainvoke("async")
        assert "".join([c async for c in model.astream("async stream")])
        assert not trace.get_current_span().get_span_context().is_valid

    asyncio.run(run())
    model.invoke("sync")
    assert "".join(model.stream("sync stream"))
    assert not trace.get_current_span().get_span_context().is_valid
    llms = [
        s for s in telemetry.spans() if (s.attributes or {}).get("gen_ai.operation.name") == "text_completion"
    ]
    assert len(llms) == 4, [s.name for s in telemetry.spans()]
    for llm in llms:
        assert ancestors(llm, telemetry) == ["OpenAI.task"]
        assert (llm.attributes or {})["gen_ai.system"] == "openai"
    assert {p.attributes["gen_ai.provider.name"] for p in token_points(telemetry)} == {"openai"}


def test_chat_openai_without_openai_instrumentation_is_the_llm_span(
    openai_server: Any, telemetry: Telemetry, instrument: Any
) -> None:
    from langchain_openai import ChatOpenAI

    assert not OpenAIInstrumentor().is_instrumented_by_opentelemetry
    model = ChatOpenAI(model="gpt-4o-mini", base_url=openai_server.base_url, api_key="k", max_retries=0)
    model.invoke("Say hi")
    s = telemetry.span()
    a = s.attributes or {}
    assert s.name == "chat gpt-4o-mini"
    assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.system"] == "Langchain"
    assert isinstance(a["gen_ai.usage.input_tokens"], int) and a["gen_ai.usage.input_tokens"] > 0
    assert isinstance(a.get("gen_ai.response.model"), str)
    points = token_points(telemetry)
    assert sorted(p.attributes["gen_ai.token.type"] for p in points) == ["cache_read", "input", "output"]


def _acme_chat_class() -> Any:
    """A ChatOpenAI subclass from another package, as langchain-deepseek / langchain-xai ship."""
    from langchain_openai import ChatOpenAI

    class ChatAcme(ChatOpenAI):
        __module__ = "langchain_acme.chat_models"

        @classmethod
        def get_lc_namespace(cls) -> list[str]:
            return ["langchain_acme", "chat_models"]

    return ChatAcme


def duration_points(metrics: dict[str, list[Any]]) -> list[Any]:
    return metrics.get(sc.METRIC_OPERATION_DURATION, [])


@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream"])
def test_chat_openai_subclass_from_another_package_has_one_llm_span(
    openai_server: Any, telemetry: Telemetry, instrument: Any, openai_on: Any, mode: str
) -> None:
    from langchain_core.load import dumpd

    model = _acme_chat_class()(
        model="gpt-4o-mini", base_url=openai_server.base_url, api_key="k", max_retries=0, stream_usage=True
    )
    # Its serialized id names its own package: only the class ancestry tells it wraps ChatOpenAI.
    assert ad.class_path(dumpd(model))[0] == "langchain_acme"
    assert ad.backing(ad.class_path(dumpd(model))) == (None, "langchain")
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | model | StrOutputParser()
    if mode == "invoke":
        chain.invoke({"q": "Say hi"})
    elif mode == "ainvoke":
        asyncio.run(chain.ainvoke({"q": "Say hi"}))
    else:
        assert "".join(chain.stream({"q": "Say hi"}))
    (llm,) = llm_spans(telemetry)
    assert (llm.attributes or {})["gen_ai.system"] == "openai"
    assert ancestors(llm, telemetry) == ["ChatAcme.task", "RunnableSequence.workflow"]
    metrics = telemetry.metrics()
    points = metrics.get(sc.METRIC_TOKEN_USAGE, [])
    assert sorted(p.attributes["gen_ai.token.type"] for p in points) == ["cache_read", "input", "output"]
    assert {p.attributes["gen_ai.provider.name"] for p in points} == {"openai"}
    assert [p.count for p in duration_points(metrics)] == [1]
    assert not trace.get_current_span().get_span_context().is_valid


def test_class_backing_follows_the_ancestry() -> None:
    from langchain_openai import AzureChatOpenAI, ChatOpenAI
    from langchain_openai.chat_models.base import BaseChatOpenAI

    class ChatDeepSeekLike(BaseChatOpenAI):
        __module__ = "langchain_deepseek.chat_models"

    class MyAzure(AzureChatOpenAI):
        __module__ = "my_app.models"

    assert ad.class_backing(ChatOpenAI) == ("openai", "openai")
    assert ad.class_backing(_acme_chat_class()) == ("openai", "openai")
    assert ad.class_backing(ChatDeepSeekLike) == ("openai", "openai")
    assert ad.class_backing(MyAzure) == ("openai", "azure.ai.openai")
    assert ad.class_backing(GenericFakeChatModel) is None
    assert ad.model_backing(None, {"id": ["langchain_ollama", "chat_models", "ChatOllama"]}) == (
        "ollama",
        "ollama",
    )
    nvidia = pytest.importorskip("langchain_nvidia_ai_endpoints")
    assert ad.class_backing(nvidia.ChatNVIDIA) == (None, "nvidia_nim")


class RelayChat(BaseChatModel):
    """A model class nobody knows wraps an SDK: it calls the openai client itself."""

    sync_client: Any = None
    async_client: Any = None

    @property
    def _llm_type(self) -> str:
        return "relay"

    @staticmethod
    def _result(out: Any) -> ChatResult:
        u = out.usage
        usage = {"input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens, "total_tokens": 0}
        message = AIMessage(content=out.choices[0].message.content, usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        out = self.sync_client.chat.completions.create(
            model="gpt-relay", messages=[{"role": "user", "content": str(messages[-1].content)}]
        )
        return self._result(out)

    async def _agenerate(
        self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        out = await self.async_client.chat.completions.create(
            model="gpt-relay", messages=[{"role": "user", "content": str(messages[-1].content)}]
        )
        return self._result(out)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_unknown_model_wrapping_an_instrumented_sdk_yields_its_usage(
    openai_server: Any, telemetry: Telemetry, instrument: Any, openai_on: Any, mode: str
) -> None:
    model = RelayChat(sync_client=openai_server.client(), async_client=openai_server.async_client())
    chain = RunnableLambda(lambda x: x, name="prep") | model
    out = chain.invoke("hi") if mode == "sync" else asyncio.run(chain.ainvoke("hi"))
    assert out.usage_metadata["input_tokens"] > 0  # what the app gets is untouched
    spans = by_name(telemetry)
    outer, inner = spans["chat"], spans["chat gpt-relay"]
    # The provider call nests under the LangChain run, which keeps its span but no usage.
    assert parent_of(inner, telemetry) is outer
    assert (outer.attributes or {})["gen_ai.provider.name"] == "langchain"
    assert not any(k.startswith(("gen_ai.usage", "llm.usage")) for k in outer.attributes or {})
    assert (inner.attributes or {})["gen_ai.usage.input_tokens"] > 0
    metrics = telemetry.metrics()
    assert {p.attributes["gen_ai.provider.name"] for p in metrics[sc.METRIC_TOKEN_USAGE]} == {"openai"}
    assert [p.attributes["gen_ai.provider.name"] for p in duration_points(metrics)] == ["openai"]
    assert not trace.get_current_span().get_span_context().is_valid


def test_model_calling_another_model_counts_the_inner_one(telemetry: Telemetry, instrument: Any) -> None:
    inner = reply("inner answer", tokens=(7, 3))

    class Router(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "router"

        def _generate(
            self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> ChatResult:
            answer = inner.invoke(messages)
            return ChatResult(
                generations=[
                    ChatGeneration(
                        message=AIMessage(content=answer.content, usage_metadata=answer.usage_metadata)
                    )
                ]
            )

    assert Router().invoke("hi").content == "inner answer"
    llms = llm_spans(telemetry)
    assert len(llms) == 2
    points = token_points(telemetry)
    assert sorted((p.attributes["gen_ai.token.type"], p.sum) for p in points) == [("input", 7), ("output", 3)]
    with_usage = [s for s in llms if "gen_ai.usage.input_tokens" in (s.attributes or {})]
    assert [(s.attributes or {})["traceloop.entity.name"] for s in with_usage] == ["GenericFakeChatModel"]


# --- NVIDIA NIM ------------------------------------------------------------------------------------


def test_backing_detection() -> None:
    assert ad.backing(["langchain", "chat_models", "openai", "ChatOpenAI"]) == ("openai", "openai")
    assert ad.backing(["langchain", "chat_models", "azure_openai", "AzureChatOpenAI"]) == (
        "openai",
        "azure.ai.openai",
    )
    assert ad.backing(["langchain_ollama", "chat_models", "ChatOllama"]) == ("ollama", "ollama")
    assert ad.backing(["langchain_aws", "chat_models", "ChatBedrockConverse"])[0] == "bedrock"
    assert ad.backing(["langchain_nvidia_ai_endpoints", "chat_models", "ChatNVIDIA"]) == (None, "nvidia_nim")
    assert ad.backing(["langchain_core", "language_models", "fake_chat_models", "X"]) == (None, "langchain")
    assert ad.is_instrumented(None) is False
    assert ad.is_instrumented("no-such") is False


def test_chat_nvidia_is_nvidia_nim(openai_server: Any, telemetry: Telemetry, instrument: Any) -> None:
    nvidia = pytest.importorskip("langchain_nvidia_ai_endpoints")
    from langchain_core.load import dumpd

    model = nvidia.ChatNVIDIA(
        model="meta/llama-3.1-8b-instruct", base_url=openai_server.base_url, api_key="nvapi-" + "x" * 30
    )
    assert ad.backing(ad.class_path(dumpd(model)))[1] == "nvidia_nim"
    result = model.invoke("Say hi")
    assert isinstance(result.content, str)
    (llm,) = llm_spans(telemetry)
    a = llm.attributes or {}
    assert a["gen_ai.provider.name"] == "nvidia_nim"
    # The only record of this NIM call: NIM's gen_ai.system, as NIM through the openai client.
    assert a["gen_ai.system"] == "nvidia_nim"
    assert a["gen_ai.request.model"] == "meta/llama-3.1-8b-instruct"
    assert a["gen_ai.usage.input_tokens"] > 0
    (duration,) = telemetry.metrics()[sc.METRIC_OPERATION_DURATION]
    assert duration.attributes["gen_ai.system"] == "nvidia_nim"
    assert not trace.get_current_span().get_span_context().is_valid


@pytest.fixture(autouse=True)
def no_nvidia_usage_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """langchain-nvidia-ai-endpoints reports usage to NVIDIA by default: never from tests."""
    monkeypatch.setenv("NVIDIA_USAGE_TELEMETRY_ENABLED", "false")


EMBED_MODEL = "nvidia/nv-embedqa-e5-v5"


def _nvidia_embeddings(openai_server: Any) -> Any:
    nvidia = pytest.importorskip("langchain_nvidia_ai_endpoints")
    return nvidia.NVIDIAEmbeddings(
        model=EMBED_MODEL, base_url=openai_server.base_url, api_key="nvapi-" + "x" * 30, max_batch_size=2
    )


@pytest.mark.parametrize("method", ["embed_query", "embed_documents", "aembed_query", "aembed_documents"])
def test_nvidia_embeddings_are_nim_embeddings_calls(
    openai_server: Any, telemetry: Telemetry, instrument: Any, method: str
) -> None:
    embeddings = _nvidia_embeddings(openai_server)
    texts = ["alpha", "beta", "gamma"]
    arg = texts[0] if method.endswith("query") else texts
    call = getattr(embeddings, method)(arg)
    result = asyncio.run(call) if method.startswith("a") else call
    vectors = [result] if method.endswith("query") else result
    assert len(vectors) == len([arg] if method.endswith("query") else texts)
    assert all(len(v) == 8 for v in vectors)
    requests = [r for r in openai_server.requests if r.path.endswith("/embeddings")]
    assert len(requests) == (1 if method.endswith("query") else 2)  # batches of two: one span
    s = telemetry.span()
    a = dict(s.attributes or {})
    assert s.name == f"embeddings {EMBED_MODEL}"
    assert s.kind is trace.SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.provider.name"] == "nvidia_nim" and a["gen_ai.system"] == "nvidia_nim"
    assert a["llm.request.type"] == "embedding"
    assert a["gen_ai.request.model"] == EMBED_MODEL and a["gen_ai.response.model"] == EMBED_MODEL
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == openai_server.port
    assert a["gen_ai.openai.api_base"] == openai_server.base_url
    assert a["gen_ai.request.encoding_formats"] == ("float",)
    assert a["gen_ai.embeddings.dimension.count"] == 8
    assert a["gen_ai.usage.input_tokens"] == 10 * len(requests)  # the server's 10 per request, summed
    assert a["gen_ai.prompt.0.content"] == "alpha"
    metrics = telemetry.metrics()
    assert [(p.attributes["gen_ai.token.type"], p.sum) for p in metrics[sc.METRIC_TOKEN_USAGE]] == [
        ("input", 10 * len(requests))
    ]
    assert [p.value for p in metrics[sc.METRIC_EMBEDDINGS_VECTOR_SIZE]] == [8]
    (duration,) = metrics[sc.METRIC_OPERATION_DURATION]
    assert duration.attributes["gen_ai.provider.name"] == "nvidia_nim"
    assert duration.attributes["gen_ai.system"] == "nvidia_nim"


def test_nvidia_embeddings_inside_a_step_and_on_error(
    openai_server: Any, telemetry: Telemetry, instrument: Any
) -> None:
    embeddings = _nvidia_embeddings(openai_server)
    chain = RunnableLambda(lambda x: x, name="prep") | RunnableLambda(embeddings.embed_query, name="embed")
    assert len(chain.invoke("q")) == 8
    spans = by_name(telemetry)
    assert parent_of(spans[f"embeddings {EMBED_MODEL}"], telemetry) is spans["embed.task"]
    telemetry.span_exporter.clear()
    openai_server.script_error(400, "bad input")
    with pytest.raises(Exception) as caught:
        embeddings.embed_documents(["x"])
    s = telemetry.span()
    assert s.status.status_code is StatusCode.ERROR
    assert (s.attributes or {})["error.type"] == type(caught.value).__name__
    instrument().uninstrument()
    telemetry.span_exporter.clear()
    assert len(embeddings.embed_query("off")) == 8
    assert telemetry.spans() == []


# --- bounded state, lifecycle ----------------------------------------------------------------------


def test_ten_thousand_runs_leave_no_state(telemetry: Telemetry, instrument: Any) -> None:
    handler = instrument(capture="NO_CONTENT").handler
    manager = CallbackManager.configure()
    for i in range(10_000):
        run = manager.on_chain_start({"name": "c"}, {})
        if i % 2:
            run.on_chain_end({})
        else:
            run.on_chain_error(ValueError("x"))
    assert handler.tracked_runs() == 0
    assert len(telemetry.spans()) == 10_000


def test_oldest_runs_are_evicted_with_their_spans_ended(telemetry: Telemetry, instrument: Any) -> None:
    handler = instrument().handler
    handler.max_runs = 3
    for i in range(5):
        handler.on_chain_start({"name": f"r{i}"}, {}, run_id=uuid.uuid4())
    assert handler.tracked_runs() == 3
    assert sorted(s.name for s in telemetry.spans()) == ["r0.workflow", "r1.workflow"]


def test_uninstrument_stops_spans(telemetry: Telemetry, instrument: Any) -> None:
    instrumentor = instrument()
    chain = simple_chain()
    instrumentor.uninstrument()
    assert chain.invoke({"q": "x"}) == "hello there"
    assert telemetry.spans() == []
    instrument()
    simple_chain().invoke({"q": "x"})
    assert len(telemetry.spans()) == 4


def test_handler_failures_never_reach_the_app(
    telemetry: Telemetry, instrument: Any, monkeypatch: Any, caplog: Any
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("ours")

    monkeypatch.setattr(ad, "llm_call", broken)
    monkeypatch.setattr(ad, "plain", broken)
    monkeypatch.setattr(ad, "fill_result", broken)
    with caplog.at_level("WARNING"):
        assert simple_chain().invoke({"q": "x"}) == "hello there"
        assert asyncio.run(simple_chain().ainvoke({"q": "x"})) == "hello there"
    # LangChain logs "Error in GenAICallbackHandler..." for a handler that raises: none may appear.
    assert not [r for r in caplog.records if "GenAICallbackHandler" in r.getMessage()]
    assert LangChainInstrumentor().handler.tracked_runs() == 0


def test_importing_the_package_does_not_import_langchain() -> None:
    code = textwrap.dedent(
        """
        import sys
        import genai_observe
        import genai_observe.instrumentation.langchain
        assert "langchain_core" not in sys.modules, "langchain imported eagerly"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("order", ["imported_before", "imported_after"])
def test_langgraph_and_nvidia_are_patched_whatever_the_import_order(order: str) -> None:
    pytest.importorskip("langchain_nvidia_ai_endpoints")
    code = textwrap.dedent(
        """
        import sys
        import wrapt
        from opentelemetry.sdk.trace import TracerProvider
        if sys.argv[1] == "imported_before":
            import langgraph.graph
            import langchain_nvidia_ai_endpoints
        from genai_observe.instrumentation.langchain import LangChainInstrumentor
        instrumentor = LangChainInstrumentor()
        instrumentor.instrument(tracer_provider=TracerProvider())
        from langgraph.graph import StateGraph
        from langchain_nvidia_ai_endpoints import NVIDIAEmbeddings
        import langgraph._internal._runnable as runnable
        def patched():
            return (
                isinstance(runnable.set_config_context, wrapt.FunctionWrapper),
                isinstance(NVIDIAEmbeddings.__dict__["embed_query"], wrapt.FunctionWrapper),
            )
        from opentelemetry import trace
        from langchain_core.runnables import RunnableLambda
        probe = RunnableLambda(lambda x: getattr(trace.get_current_span(), "name", None), name="probe")
        def current_spans():
            return probe.invoke(1), probe.with_fallbacks([probe]).invoke(1)
        assert patched() == (True, True), patched()
        assert current_spans() == ("probe.workflow", "probe.task"), current_spans()
        instrumentor.uninstrument()
        assert patched() == (False, False), patched()
        assert current_spans() == (None, None), current_spans()
        instrumentor.instrument(tracer_provider=TracerProvider())
        assert patched() == (True, True), patched()
        assert current_spans() == ("probe.workflow", "probe.task"), current_spans()
        """
    )
    env = {**os.environ, "NVIDIA_USAGE_TELEMETRY_ENABLED": "false"}
    subprocess.run([sys.executable, "-c", code, order], check=True, env=env)
