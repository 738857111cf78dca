"""Real langchain-core runnables, tools, retrievers, LangGraph graphs and langchain-openai."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypedDict

import pytest
from langchain_core.callbacks import CallbackManager
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langchain_core.tools import tool
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from genai_observe import _semconv as sc
from genai_observe.instrumentation.langchain import LangChainInstrumentor
from genai_observe.instrumentation.langchain import _adapter as ad
from genai_observe.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import Telemetry

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123"


@pytest.fixture
def instrument(telemetry: Telemetry) -> Iterator[Callable[..., LangChainInstrumentor]]:
    """LangChain instrumented with the given options (content on spans by default); undone after."""
    instrumentor = LangChainInstrumentor()

    def apply(**kwargs: Any) -> LangChainInstrumentor:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        kwargs.setdefault("capture", "SPAN_ONLY")
        instrumentor.instrument(**telemetry.instrument_kwargs(**kwargs))
        return instrumentor

    apply()
    yield apply
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


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
    from genai_observe._content import ContentPolicy

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
    assert a["gen_ai.request.model"] == "meta/llama-3.1-8b-instruct"


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
