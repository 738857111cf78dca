"""The public step API (genai_observe.workflow/task/agent/tool, conversation, attributes): real
openai and anthropic SDKs against the rig's servers, telemetry read back at the OTLP receiver."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import genai_observe
from genai_observe._core import semconv as sc
from tests.rig.otlp_receiver import OTLPReceiver, SpanView

MESSAGES = [{"role": "user", "content": "hi"}]


class Run:
    """One init() against the receiver; ``spans()`` shuts down (flushes) and decodes."""

    def __init__(self, receiver: OTLPReceiver, **options: Any) -> None:
        self.receiver = receiver
        self.handle = genai_observe.init(endpoint=receiver.url, **options)
        self._spans: list[SpanView] | None = None

    def spans(self) -> list[SpanView]:
        if self._spans is None:
            self.handle.shutdown()
            self._spans = self.receiver.spans()
        return self._spans

    def by_name(self) -> dict[str, SpanView]:
        spans = self.spans()
        out = {s.name: s for s in spans}
        assert len(out) == len(spans), sorted(s.name for s in spans)
        return out

    def parent(self, span: SpanView) -> SpanView | None:
        return next((s for s in self.spans() if s.span_id == span.parent_span_id), None)

    def llm(self) -> list[SpanView]:
        return [s for s in self.spans() if s.kind == 3]  # CLIENT: the LLM spans


@pytest.fixture
def observe(otlp_receiver: OTLPReceiver) -> Callable[..., Run]:
    return functools.partial(Run, otlp_receiver)


def chat(client: Any, model: str = "gpt-4o-mini") -> str:
    out = client.chat.completions.create(model=model, messages=MESSAGES)
    return str(out.choices[0].message.content)


async def achat(client: Any, model: str = "gpt-4o-mini") -> str:
    out = await client.chat.completions.create(model=model, messages=MESSAGES)
    return str(out.choices[0].message.content)


# --- decorator and context-manager forms ---------------------------------------------------------


@pytest.mark.parametrize("form", ["sync", "async", "generator", "async generator"])
def test_agent_decorator_forms(openai_server: Any, observe: Callable[..., Run], form: str) -> None:
    run = observe()
    client, aclient = openai_server.client(), openai_server.async_client()

    @genai_observe.agent
    def planner(goal: str) -> str:
        return chat(client) + goal

    @genai_observe.agent
    async def aplanner(goal: str) -> str:
        return await achat(aclient) + goal

    @genai_observe.agent
    def gplanner(goal: str) -> Iterator[str]:
        yield chat(client)
        yield goal

    @genai_observe.agent
    async def agplanner(goal: str) -> AsyncIterator[str]:
        yield await achat(aclient)
        yield goal

    async def collect() -> list[str]:
        return [item async for item in agplanner("!")]

    if form == "sync":
        result: Any = planner("!")
        name = "planner"
    elif form == "async":
        result = asyncio.run(aplanner("!"))
        name = "aplanner"
    elif form == "generator":
        result = list(gplanner("!"))
        name = "gplanner"
    else:
        result = asyncio.run(collect())
        name = "agplanner"
    assert "!" in result  # the function's own value, unchanged
    spans = run.by_name()
    agent = spans[f"{name}.agent"]
    (llm,) = run.llm()
    assert run.parent(llm) is agent
    assert agent.attributes[sc.TRACELOOP_SPAN_KIND] == "agent"
    assert agent.attributes[sc.GEN_AI_AGENT_NAME] == name
    assert llm.attributes[sc.GEN_AI_AGENT_NAME] == name  # AR-010: on the LLM span itself
    assert agent.scope_name == sc.STEPS_SCOPE and agent.kind == 1 and agent.status_code == 0
    assert agent.attributes[sc.TRACELOOP_ENTITY_INPUT] == '{"goal":"!"}'  # content capture on spans
    if form in ("sync", "async"):
        assert agent.attributes[sc.TRACELOOP_ENTITY_OUTPUT].endswith('!"')
    assert llm.end_time_ns <= agent.end_time_ns


def test_context_manager_forms(anthropic_server: Any, observe: Callable[..., Run]) -> None:
    run = observe()
    client, aclient = anthropic_server.client(), anthropic_server.async_client()

    with genai_observe.agent("sync-agent") as scope:
        assert scope is not None
        client.messages.create(model="claude-test", max_tokens=5, messages=MESSAGES)

    async def main() -> None:
        async with genai_observe.agent("async-agent"):
            await aclient.messages.create(model="claude-test", max_tokens=5, messages=MESSAGES)

    asyncio.run(main())
    client.messages.create(model="claude-test", max_tokens=5, messages=MESSAGES)  # outside: no agent
    spans = run.spans()
    llm = run.llm()
    assert len(llm) == 3
    for call, agent in zip(llm[:2], ("sync-agent", "async-agent"), strict=True):
        assert call.attributes[sc.GEN_AI_PROVIDER_NAME] == "anthropic"
        assert call.attributes[sc.GEN_AI_AGENT_NAME] == agent
        parent = run.parent(call)
        assert parent is not None and parent.name == f"{agent}.agent"
    assert sc.GEN_AI_AGENT_NAME not in llm[2].attributes
    assert not llm[2].parent_span_id
    assert sorted(s.name for s in spans if s.kind == 1) == ["async-agent.agent", "sync-agent.agent"]


def test_nesting_names_the_innermost_agent(openai_server: Any, observe: Callable[..., Run]) -> None:
    run = observe()
    client = openai_server.client()

    @genai_observe.tool("lookup")
    def lookup(q: str) -> str:
        return chat(client, "tool-model") + q

    @genai_observe.agent("researcher")
    def researcher() -> str:
        return chat(client, "inner-model")

    @genai_observe.workflow("trip")
    def trip() -> None:
        with genai_observe.agent("planner"):
            chat(client, "before-model")
            lookup("x")
            researcher()
            chat(client, "after-model")
        with genai_observe.task("wrap-up"):
            chat(client, "outside-model")

    trip()
    spans = run.by_name()
    agent_of = {
        s.attributes[sc.GEN_AI_REQUEST_MODEL]: s.attributes.get(sc.GEN_AI_AGENT_NAME) for s in run.llm()
    }
    assert agent_of == {
        "before-model": "planner",
        "tool-model": "planner",
        "inner-model": "researcher",
        "after-model": "planner",  # the inner agent's scope ended with it
        "outside-model": None,
    }
    tool = spans["lookup.tool"]
    assert tool.attributes[sc.GEN_AI_AGENT_NAME] == "planner"  # steps under an agent name it too
    assert run.parent(tool) is spans["planner.agent"]
    assert run.parent(spans["researcher.agent"]) is spans["planner.agent"]
    assert run.parent(spans["planner.agent"]) is spans["trip.workflow"]
    assert sc.GEN_AI_AGENT_NAME not in spans["wrap-up.task"].attributes
    for name in ("trip.workflow", "planner.agent", "lookup.tool", "researcher.agent", "wrap-up.task"):
        assert spans[name].attributes[sc.TRACELOOP_WORKFLOW_NAME] == "trip", name
    assert len({s.trace_id for s in run.spans()}) == 1


def test_latest_profile_names_and_operations(openai_server: Any, observe: Callable[..., Run]) -> None:
    run = observe(profile="latest")
    client = openai_server.client()

    @genai_observe.tool(call_id="call_1")
    def search(q: str) -> list[str]:
        return [q]

    with genai_observe.workflow("flow"), genai_observe.agent("planner"):
        search("cats")
        chat(client)
    spans = run.by_name()
    assert set(spans) == {"flow", "invoke_agent planner", "execute_tool search", "chat gpt-4o-mini"}
    agent = spans["invoke_agent planner"].attributes
    assert agent[sc.GEN_AI_OPERATION_NAME] == "invoke_agent" and agent[sc.GEN_AI_AGENT_NAME] == "planner"
    tool = spans["execute_tool search"].attributes
    assert tool[sc.GEN_AI_OPERATION_NAME] == "execute_tool" and tool[sc.GEN_AI_TOOL_NAME] == "search"
    assert tool[sc.GEN_AI_TOOL_CALL_ID] == "call_1"
    assert tool[sc.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"q":"cats"}'
    assert tool[sc.GEN_AI_TOOL_CALL_RESULT] == '["cats"]'
    assert tool[sc.GEN_AI_AGENT_NAME] == "planner"
    assert spans["chat gpt-4o-mini"].attributes[sc.GEN_AI_AGENT_NAME] == "planner"
    assert not any(k.startswith("traceloop.") for s in run.spans() for k in s.attributes)


def test_content_off_exports_no_step_inputs(openai_server: Any, observe: Callable[..., Run]) -> None:
    run = observe(capture_content=False)

    @genai_observe.tool
    def secret(q: str) -> str:
        return "result " + q

    assert secret("password") == "result password"
    (span,) = run.spans()
    assert span.name == "secret.tool"
    assert sc.TRACELOOP_ENTITY_INPUT not in span.attributes
    assert sc.TRACELOOP_ENTITY_OUTPUT not in span.attributes


# --- conversations and the caller's attributes ---------------------------------------------------


def test_conversation_and_attributes_on_llm_and_step_spans(
    openai_server: Any, anthropic_server: Any, observe: Callable[..., Run]
) -> None:
    run = observe()
    client, claude = openai_server.client(), anthropic_server.client()
    with (
        genai_observe.conversation("thread-7"),
        genai_observe.attributes({"experiment": "B", "model_version": 3, "user.tier": "gold"}),
    ):
        chat(client, "m-openai")
        with (
            genai_observe.attributes({"experiment": "C", "cohort": ["a", "b"]}),
            genai_observe.agent("helper"),
        ):
            claude.messages.create(model="m-anthropic", max_tokens=5, messages=MESSAGES)
        # A conversation id the call itself sends wins (OpenAI Responses API).
        client.responses.create(model="m-responses", input="hi", conversation="conv_own")
        with genai_observe.conversation("thread-8"):
            chat(client, "m-inner-thread")
    chat(client, "m-outside")
    spans = {s.attributes.get(sc.GEN_AI_REQUEST_MODEL, s.name): s.attributes for s in run.spans()}
    assert spans["m-openai"][sc.GEN_AI_CONVERSATION_ID] == "thread-7"
    assert (spans["m-openai"]["experiment"], spans["m-openai"]["model_version"]) == ("B", 3)
    assert spans["m-openai"]["user.tier"] == "gold"
    inner = spans["m-anthropic"]
    assert inner[sc.GEN_AI_CONVERSATION_ID] == "thread-7" and inner[sc.GEN_AI_AGENT_NAME] == "helper"
    assert (inner["experiment"], inner["model_version"], tuple(inner["cohort"])) == ("C", 3, ("a", "b"))
    agent = spans["helper.agent"]  # the step span gets the scope too
    assert agent[sc.GEN_AI_CONVERSATION_ID] == "thread-7" and agent["experiment"] == "C"
    assert spans["m-responses"][sc.GEN_AI_CONVERSATION_ID] == "conv_own"
    assert spans["m-responses"]["experiment"] == "B"
    assert spans["m-inner-thread"][sc.GEN_AI_CONVERSATION_ID] == "thread-8"
    outside = spans["m-outside"]
    assert sc.GEN_AI_CONVERSATION_ID not in outside and "experiment" not in outside
    # Never on metrics: the caller's attributes are high-cardinality as far as we know.
    for metric in run.receiver.metrics(sc.METRIC_OPERATION_DURATION):
        for point in metric.data_points:
            assert "experiment" not in point.attributes and sc.GEN_AI_CONVERSATION_ID not in point.attributes


def test_attributes_are_validated_and_bounded(openai_server: Any, observe: Callable[..., Run]) -> None:
    run = observe()
    given: dict[Any, Any] = {
        "ok.str": "x" * 5000,
        "ok.bool": True,
        "ok.float": 0.5,
        "ok.list": list(range(100)),
        "bad.object": object(),
        "bad.mixed": [1, "a"],
        "bad.empty": [],
        "bad.none": None,
        "bad.dict": {"a": 1},
        "gen_ai.request.model": "spoofed",  # ours: never overridden by the caller
        "traceloop.span.kind": "agent",
        7: "not a string key",
        "k" * 200: "key too long",
    }
    given.update({f"many.{i}": i for i in range(50)})
    with genai_observe.attributes(given):
        chat(openai_server.client())
    (llm,) = run.llm()
    a = llm.attributes
    assert len(a["ok.str"]) == 1024 and a["ok.bool"] is True and a["ok.float"] == 0.5
    assert list(a["ok.list"]) == list(range(32))
    assert a[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini" and sc.TRACELOOP_SPAN_KIND not in a
    assert not [k for k in a if k.startswith("bad.") or len(k) > 128]
    assert len([k for k in a if k.startswith(("ok.", "many."))]) == 32  # the first 32 valid keys
    assert genai_observe.attributes("not a mapping") is not None  # type: ignore[arg-type]
    with genai_observe.attributes("not a mapping"), genai_observe.conversation(None):  # type: ignore[arg-type]
        pass


# --- exceptions, generators closed early ----------------------------------------------------------


class Boom(Exception):
    pass


def test_exceptions_propagate_unchanged_and_mark_the_step(observe: Callable[..., Run]) -> None:
    run = observe()
    error = Boom("no")

    @genai_observe.task
    def failing() -> None:
        raise error

    @genai_observe.task
    async def afailing() -> None:
        raise error

    @genai_observe.task
    def gfailing() -> Iterator[int]:
        yield 1
        raise error

    @genai_observe.task
    async def agfailing() -> AsyncIterator[int]:
        yield 1
        raise error

    async def drain() -> None:
        async for _ in agfailing():
            pass

    for call in (
        failing,
        lambda: asyncio.run(afailing()),
        lambda: list(gfailing()),
        lambda: asyncio.run(drain()),
    ):
        with pytest.raises(Boom) as caught:
            call()
        assert caught.value is error
    with pytest.raises(Boom), genai_observe.agent("cm"):
        raise error
    spans = run.by_name()
    assert set(spans) == {"failing.task", "afailing.task", "gfailing.task", "agfailing.task", "cm.agent"}
    for span in spans.values():
        assert span.status_code == 2, span.name
        assert span.attributes[sc.ERROR_TYPE].endswith("Boom")


def test_generators_closed_or_abandoned_end_once(observe: Callable[..., Run]) -> None:
    run = observe()
    finished: list[str] = []

    @genai_observe.task
    def numbers() -> Iterator[int]:
        try:
            yield from range(10)
        finally:
            finished.append("numbers")

    @genai_observe.task
    async def anumbers() -> AsyncIterator[int]:
        try:
            for i in range(10):
                yield i
        finally:
            finished.append("anumbers")

    @genai_observe.task
    def echo() -> Iterator[Any]:
        received = yield "ready"
        while True:
            try:
                received = yield f"got {received}"
            except ValueError:
                received = "handled"

    g = numbers()
    assert next(g) == 0
    g.close()
    g.close()
    abandoned = numbers()
    next(abandoned)
    del abandoned  # garbage: closed by the interpreter

    async def partial() -> None:
        agen = anumbers()
        assert await agen.__anext__() == 0
        await agen.aclose()

    asyncio.run(partial())
    e = echo()
    assert next(e) == "ready"
    assert e.send(1) == "got 1"
    assert e.throw(ValueError("x")) == "got handled"  # thrown in, handled by the generator
    e.close()
    assert finished == ["numbers", "numbers", "anumbers"]
    spans = run.spans()
    assert sorted(s.name for s in spans) == ["anumbers.task", "echo.task", "numbers.task", "numbers.task"]
    assert all(s.status_code == 0 for s in spans)  # the consumer stopping is no failure


def test_scope_is_current_only_while_the_generator_runs(
    openai_server: Any, observe: Callable[..., Run]
) -> None:
    run = observe()
    client = openai_server.client()

    @genai_observe.agent("producer")
    def produce() -> Iterator[int]:
        yield 1
        chat(client, "inside")
        yield 2

    for _ in produce():
        chat(client, "consumer")  # the consumer's own calls are not the agent's
    agent_of = [
        (s.attributes[sc.GEN_AI_REQUEST_MODEL], s.attributes.get(sc.GEN_AI_AGENT_NAME)) for s in run.llm()
    ]
    assert agent_of == [("consumer", None), ("inside", "producer"), ("consumer", None)]


# --- what the decorators keep ---------------------------------------------------------------------


def test_decorators_keep_signatures_kinds_and_methods(observe: Callable[..., Run]) -> None:
    run = observe()

    def plain(a: int, b: str = "x") -> str:
        """Docs."""
        return f"{a}{b}"

    async def coro(a: int) -> int:
        return a

    def gen(a: int) -> Iterator[int]:
        yield a

    async def agen(a: int) -> AsyncIterator[int]:
        yield a

    for fn, check in (
        (plain, inspect.isfunction),
        (coro, inspect.iscoroutinefunction),
        (gen, inspect.isgeneratorfunction),
        (agen, inspect.isasyncgenfunction),
    ):
        wrapped = genai_observe.task(fn)
        assert check(wrapped), fn
        assert wrapped.__name__ == fn.__name__ and wrapped.__wrapped__ is fn  # type: ignore[attr-defined]
        assert inspect.signature(wrapped) == inspect.signature(fn)
    assert genai_observe.task(plain).__doc__ == "Docs."

    class Bot:
        @genai_observe.agent
        def answer(self, q: str) -> str:
            return q + "!"

        @genai_observe.tool("helper")
        @staticmethod
        def helper(q: str) -> str:
            return q

        @genai_observe.task
        @classmethod
        def build(cls) -> str:
            return cls.__name__

    assert Bot().answer("a") == "a!" and Bot.helper("b") == "b" and Bot.build() == "Bot"
    spans = run.by_name()
    assert spans["answer.agent"].attributes[sc.TRACELOOP_ENTITY_INPUT] == '{"q":"a"}'  # no self
    assert {"helper.tool", "build.task"} <= set(spans)


def test_our_failure_degrades_to_calling_the_function(
    openai_server: Any, observe: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = observe()
    from genai_observe import _manual

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("recorder unavailable")

    monkeypatch.setattr(_manual, "_recorder", broken)

    @genai_observe.agent
    def works(x: int) -> int:
        return x + 1

    assert works(1) == 2
    with genai_observe.agent("cm"):
        chat(openai_server.client())
    (llm,) = run.spans()  # no step span, the LLM call recorded as always
    assert llm.kind == 3


def test_steps_without_init_still_name_the_agent(openai_server: Any, telemetry: Any) -> None:
    """No init(): step spans go to the global provider (none here: not recording), and the scope
    still reaches LLM spans of an SDK instrumented with explicit providers."""
    from genai_observe.instrumentation.openai import OpenAIInstrumentor

    with (
        telemetry.instrumenting(OpenAIInstrumentor()),
        genai_observe.agent("no-init"),
        genai_observe.conversation("c-1"),
    ):
        chat(openai_server.client())
    (span,) = telemetry.spans()
    a = span.attributes or {}
    assert (a[sc.GEN_AI_AGENT_NAME], a[sc.GEN_AI_CONVERSATION_ID]) == ("no-init", "c-1")


# --- threads and tasks ------------------------------------------------------------------------------


def test_scope_across_tasks_and_threads(openai_server: Any, observe: Callable[..., Run]) -> None:
    """asyncio tasks copy the context; a plain threading.Thread does not; contextvars.copy_context()
    carries it into a thread or an executor."""
    run = observe()
    client, aclient = openai_server.client(), openai_server.async_client()

    async def gather() -> None:
        await asyncio.gather(achat(aclient, "task-1"), asyncio.create_task(achat(aclient, "task-2")))
        await asyncio.to_thread(chat, client, "to-thread")  # copies the context
        await asyncio.get_running_loop().run_in_executor(None, chat, client, "run-in-executor")

    with genai_observe.agent("threaded"):
        asyncio.run(gather())
        bare = threading.Thread(target=chat, args=(client, "bare-thread"))
        bare.start()
        bare.join()
        copied = threading.Thread(target=contextvars.copy_context().run, args=(chat, client, "copied-thread"))
        copied.start()
        copied.join()
        with ThreadPoolExecutor(2) as pool:
            pool.submit(contextvars.copy_context().run, chat, client, "executor").result()
            pool.submit(chat, client, "executor-bare").result()
    agent_of = {
        s.attributes[sc.GEN_AI_REQUEST_MODEL]: s.attributes.get(sc.GEN_AI_AGENT_NAME) for s in run.llm()
    }
    assert agent_of == {
        "task-1": "threaded",
        "task-2": "threaded",
        "to-thread": "threaded",
        "run-in-executor": None,
        "bare-thread": None,
        "copied-thread": "threaded",
        "executor": "threaded",
        "executor-bare": None,
    }


def test_context_manager_reused_in_concurrent_tasks(observe: Callable[..., Run]) -> None:
    run = observe()
    shared = genai_observe.task("shared")

    async def worker(delay: float) -> None:
        async with shared:
            await asyncio.sleep(delay)

    async def main() -> None:
        await asyncio.gather(worker(0.02), worker(0.0))

    asyncio.run(main())
    spans = run.spans()
    assert [s.name for s in spans] == ["shared.task", "shared.task"]
    assert all(not s.parent_span_id for s in spans)  # neither ended as the other's child


# --- LangChain / LangGraph --------------------------------------------------------------------------


def test_langgraph_inside_our_agent_and_conversation(openai_server: Any, observe: Callable[..., Run]) -> None:
    """LangGraph runs nodes inline or in its executor with the context copied: our scopes reach the
    LLM spans of the SDK calls its nodes make, parallel branches included."""
    pytest.importorskip("langgraph")
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    class State(TypedDict, total=False):
        a: str
        b: str

    run = observe()
    client = openai_server.client()
    graph = StateGraph(State)
    graph.add_node("left", lambda s: {"a": chat(client, "left-model")})
    graph.add_node("right", lambda s: {"b": chat(client, "right-model")})
    graph.add_edge(START, "left")
    graph.add_edge(START, "right")
    graph.add_edge("left", END)
    graph.add_edge("right", END)
    compiled = graph.compile()
    with genai_observe.agent("orchestrator"), genai_observe.conversation("lg-1"):
        compiled.invoke({})
    llm = run.llm()
    assert sorted(s.attributes[sc.GEN_AI_REQUEST_MODEL] for s in llm) == ["left-model", "right-model"]
    for span in llm:
        assert span.attributes[sc.GEN_AI_AGENT_NAME] == "orchestrator"
        assert span.attributes[sc.GEN_AI_CONVERSATION_ID] == "lg-1"
    graph_span = next(s for s in run.spans() if s.name == "LangGraph.workflow")
    assert run.parent(graph_span) is next(s for s in run.spans() if s.name == "orchestrator.agent")


def test_langgraph_react_agent_names_its_llm_spans(openai_server: Any, observe: Callable[..., Run]) -> None:
    """A LangGraph ReAct agent (recognised only once its 'agent' node runs) puts its name on the LLM
    spans of its model calls (ChatOpenAI against the rig; the openai instrumentation records them)."""
    pytest.importorskip("langgraph")
    pytest.importorskip("langchain_openai")
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from langgraph.prebuilt import create_react_agent

    from tests.rig.openai_server import ToolCall

    @tool
    def lookup(q: str) -> str:
        """Look something up."""
        return f"found {q}"

    openai_server.script(tool_calls=[ToolCall(name="lookup", arguments={"q": "x"})])
    openai_server.script(content="the answer")
    run = observe()
    model = ChatOpenAI(model="gpt-4o-mini", base_url=openai_server.base_url, api_key="test", max_retries=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent = create_react_agent(model, [lookup], name="helper")
    with genai_observe.conversation("react-1"):
        out = agent.invoke({"messages": [("user", "find x")]})
    assert out["messages"][-1].content == "the answer"
    llm = run.llm()
    assert len(llm) == 2
    for span in llm:
        assert span.attributes[sc.GEN_AI_AGENT_NAME] == "helper"
        assert span.attributes[sc.GEN_AI_CONVERSATION_ID] == "react-1"
    (tool_span,) = [s for s in run.spans() if s.name == "lookup.tool"]
    assert tool_span.attributes[sc.GEN_AI_AGENT_NAME] == "helper"
