"""The callback handler that turns LangChain's run tree into spans.

Every LangChain callback names its run and its parent run, so parents come from
``parent_run_id``, never from the current context (callbacks of parallel branches and async
tasks interleave freely). A bounded map run_id -> run keeps the span and the context its children
start under; an entry is released when its run ends or fails, and the oldest entries are evicted
(their spans ended) when the map is full.

LLM runs follow one rule (docs/langchain.md): the innermost recorded LLM call counts. A model
whose class (or a base class) wraps a provider SDK we also instrument (``ChatOpenAI`` and its
subclasses with the openai instrumentation on, ...) becomes a ``task`` step, made current while
it runs so the provider's LLM span nests under it and alone carries usage and metrics; any other
model run is the LLM span itself, recorded through ``Recorder.start`` and made current as a
yielding context, so an LLM call recorded underneath takes its usage and metrics over.

A step's own code runs with the step current through ``step_context`` (see _context.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from typing import Any, Final
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry import context as otel_context

from ..._core import semconv as sc
from ..._core.agent_context import with_agent
from ..._core.diagnostics import report_internal_error
from ..._core.recorder import Invocation, Recorder
from ..._core.steps import Step, StepRecorder
from ..._core.streams import END_CANCELLED
from . import _adapter as ad
from ._context import MODEL_SCOPE, callbacks_parent

MAX_RUNS: Final = 10_000
# LangGraph tags its plumbing (channel writes, branch routing) with this: no span, children go to
# the nearest visible ancestor.
_HIDDEN_TAG: Final = "langgraph:hidden"
_AGENT_CLASSES: Final = frozenset({"AgentExecutor"})
# LangGraph node names that make their graph an agent: ``create_react_agent`` (langgraph.prebuilt)
# calls its model node "agent", as many hand-built ReAct graphs do.
_AGENT_NODES: Final = frozenset({"agent"})


class _Run:
    """Bookkeeping of one live run. ``context``: what its children start under; ``agent``: the
    ``create_agent`` marker of the agent run it is part of (metadata is inherited by child runs)."""

    __slots__ = ("agent", "context", "invocation", "step", "workflow")

    def __init__(
        self,
        context: otel_context.Context | None,
        workflow: str | None,
        step: Step | None = None,
        invocation: Invocation | None = None,
        agent: object = None,
    ) -> None:
        self.context = context
        self.workflow = workflow
        self.step = step
        self.invocation = invocation
        self.agent = agent

    def close(self) -> None:
        """End what is still open without an outcome (eviction)."""
        if self.step is not None:
            self.step.end()
        if self.invocation is not None:
            self.invocation.finish(end_reason="evicted")


def _promote(run: _Run) -> None:
    """Make ``run`` an agent once it turns out to drive one; the runs started under it from now on
    (LLM calls included) carry its ``gen_ai.agent.name``."""
    step = run.step
    if step is None:
        return
    before = step.agent
    step.promote(sc.SPAN_KIND_AGENT)
    if before is None and step.agent is not None and run.context is not None:
        run.context = with_agent(step.agent, run.context)


class GenAICallbackHandler(BaseCallbackHandler):
    """Builds spans from LangChain callbacks; every method swallows its own failures."""

    # Inline: the handler runs in the caller's context in async runs too (no executor hop), so
    # the context it makes current for a delegated model run reaches the provider SDK call.
    run_inline = True
    raise_error = False

    def __init__(self, recorder: Recorder, max_runs: int = MAX_RUNS) -> None:
        super().__init__()
        self.recorder = recorder
        self.steps = StepRecorder(recorder)
        self.max_runs = max_runs
        self.active = True
        self._runs: OrderedDict[UUID, _Run] = OrderedDict()
        self._lock = threading.Lock()

    # --- bookkeeping -----------------------------------------------------------------------------

    def tracked_runs(self) -> int:
        return len(self._runs)

    def _store(self, run_id: UUID, run: _Run) -> None:
        evicted: list[_Run] = []
        with self._lock:
            previous = self._runs.pop(run_id, None)
            if previous is not None:
                evicted.append(previous)
            while len(self._runs) >= self.max_runs:
                evicted.append(self._runs.popitem(last=False)[1])
            self._runs[run_id] = run
        for old in evicted:
            old.close()

    def _pop(self, run_id: UUID) -> _Run | None:
        with self._lock:
            return self._runs.pop(run_id, None)

    def step_context(self, config: Any) -> otel_context.Context | None:
        """The context a step's own code runs in, for ``set_config_context(config)`` (_context.py):
        the step named by the config's callback manager, when it is a run of ours."""
        if not self.active:
            return None
        run_id = callbacks_parent(config)
        if run_id is None:
            return None
        run = self._runs.get(run_id)  # a read, on every step: no lock
        return run.context if run is not None else None

    def _parent(self, parent_run_id: UUID | None) -> _Run | None:
        if parent_run_id is None:
            return None
        with self._lock:
            return self._runs.get(parent_run_id)

    def _start_step(
        self,
        kind: str,
        name: str,
        run_id: UUID,
        parent_run_id: UUID | None,
        inputs: Any,
        tool_call_id: str | None = None,
        *,
        chain: bool = False,
        agent: object = None,
    ) -> _Run:
        parent = self._parent(parent_run_id)
        if agent is None and parent is not None:
            agent = parent.agent
        if parent is None and chain and kind == sc.SPAN_KIND_TASK:
            kind = sc.SPAN_KIND_WORKFLOW  # a root chain is the workflow
        context = parent.context if parent is not None else None
        workflow = parent.workflow if parent is not None and parent.workflow else name
        capture = self.recorder.capture.on_span
        step = self.steps.start_step(
            kind,
            name,
            workflow_name=workflow,
            parent=context,
            inputs=ad.plain(inputs) if capture and inputs is not None else None,
            tool_call_id=tool_call_id,
        )
        run = _Run(step.context(context) if step is not None else context, workflow, step=step, agent=agent)
        self._store(run_id, run)
        return run

    def _end(self, run_id: UUID, output: Any = None, error: BaseException | None = None) -> None:
        run = self._pop(run_id)
        if run is None:
            return
        # The consumer stopped (break, close, task cancelled): nothing failed, as for provider
        # streams, which record "cancelled" and no error.
        stopped = isinstance(error, (GeneratorExit, asyncio.CancelledError))
        if run.step is not None:
            shown: Any = None
            if self.recorder.capture.on_span and output is not None:
                try:
                    shown = ad.plain(output)
                except Exception as exc:  # the span still ends, without the output
                    report_internal_error("langchain.run_output", exc)
            run.step.end(output=shown, error=None if stopped else error)
        if run.invocation is not None:
            if stopped:
                run.invocation.finish(end_reason=END_CANCELLED)
            elif error is not None:
                run.invocation.fail(error)
            else:
                run.invocation.finish(lambda call: ad.fill_result(call, output))

    # --- chains and runnables ------------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.active:
            return
        try:
            if tags and _HIDDEN_TAG in tags:
                parent = self._parent(parent_run_id)
                self._store(
                    run_id,
                    _Run(
                        parent.context if parent else None,
                        parent.workflow if parent else None,
                        agent=parent.agent if parent else None,
                    ),
                )
                return
            path = ad.class_path(serialized)
            name = ad.run_name(serialized, kwargs, "chain")
            parent = self._parent(parent_run_id)
            kind, agent = sc.SPAN_KIND_TASK, None
            marker = ad.agent_marker(metadata)
            if path and path[-1] in _AGENT_CLASSES:
                kind = sc.SPAN_KIND_AGENT
            elif marker is not None and (parent is None or parent.agent != marker):
                # The top run carrying a create_agent marker is the agent; its children carry the
                # marker too (inherited metadata) and stay what they are.
                kind, agent = sc.SPAN_KIND_AGENT, marker
            run = self._start_step(kind, name, run_id, parent_run_id, inputs, chain=True, agent=agent)
            if (
                name in _AGENT_NODES
                and parent is not None
                and parent.step is not None
                and ad.is_graph_node(name, tags, metadata)
            ):
                _promote(parent)  # a ReAct graph: the graph run is the agent
                agent_scope = parent.step.agent
                if agent_scope is not None and run.context is not None and run.step is not None:
                    # The node started before its graph was known to be an agent; it and what runs
                    # under it are the agent's too.
                    run.step.set_attributes({sc.GEN_AI_AGENT_NAME: agent_scope.name})
                    run.context = with_agent(agent_scope, run.context)
        except Exception as exc:
            report_internal_error("langchain.chain_start", exc)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._end(run_id, output=outputs)
        except Exception as exc:
            report_internal_error("langchain.chain_end", exc)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._end(run_id, error=error)
        except Exception as exc:
            report_internal_error("langchain.chain_error", exc)

    # --- agents ----------------------------------------------------------------------------------

    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._promote(run_id)

    def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._promote(run_id)

    def _promote(self, run_id: UUID) -> None:
        try:
            run = self._parent(run_id)
            if run is not None:
                _promote(run)
        except Exception as exc:
            report_internal_error("langchain.agent", exc)

    # --- models ----------------------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.active:
            return
        try:
            self._start_model(serialized, messages, run_id, parent_run_id, metadata, kwargs, chat=True)
        except Exception as exc:
            report_internal_error("langchain.chat_model_start", exc)

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.active:
            return
        try:
            self._start_model(serialized, prompts, run_id, parent_run_id, metadata, kwargs, chat=False)
        except Exception as exc:
            report_internal_error("langchain.llm_start", exc)

    def _start_model(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: dict[str, Any] | None,
        kwargs: dict[str, Any],
        *,
        chat: bool,
    ) -> None:
        name = ad.run_name(serialized, kwargs, "llm")
        # Set by the model-method wrappers (_context.py): inside generate/stream/..., whose wrapper
        # restores the caller's context when the method returns (or per streamed chunk). Only then
        # is the run made current: no token has to survive callbacks that LangChain runs in other
        # contexts (async on_llm_end is shielded: a new task).
        scope = MODEL_SCOPE.get()
        instrumentation, provider = ad.model_backing(scope.cls if scope else None, serialized)
        if ad.is_instrumented(instrumentation):
            # The provider's own span is the LLM span; this run is a step it nests under.
            run = self._start_step(
                sc.SPAN_KIND_TASK,
                name,
                run_id,
                parent_run_id,
                inputs[0] if isinstance(inputs, list) and inputs else None,
            )
            if scope is not None and run.step is not None and run.context is not None:
                scope.make_current(run.context)
            return
        parent = self._parent(parent_run_id)
        call = ad.llm_call(serialized, kwargs, metadata, provider, chat=chat)
        call.input_messages = ad.messages(inputs) if chat else ad.prompts(inputs)
        workflow = parent.workflow if parent is not None else None
        if workflow is not None:
            call.legacy_attributes[sc.TRACELOOP_WORKFLOW_NAME] = workflow
        call.legacy_attributes[sc.TRACELOOP_ENTITY_NAME] = name
        context = parent.context if parent is not None else None
        invocation = self.recorder.start(call, parent=context)
        child_context = context
        if invocation is not None:
            # Current while the model runs: an LLM call of ours made underneath (by a model class
            # not known to wrap an instrumented SDK) nests under it and makes it yield: this span
            # then carries no usage and records no metrics (Invocation.yielding_context).
            child_context = invocation.yielding_context(context)
            if scope is not None:
                scope.make_current(child_context)
        self._store(
            run_id,
            _Run(child_context, workflow, invocation=invocation, agent=parent.agent if parent else None),
        )

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.get(run_id)  # a read; per-chunk, so no lock
        if run is not None and run.invocation is not None:
            try:
                run.invocation.chunk()
            except Exception as exc:
                report_internal_error("langchain.new_token", exc)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._runs.get(run_id)
            if run is not None and run.step is not None:
                try:
                    text = ad.result_text(response)
                except Exception as exc:  # the run still ends, without its output
                    report_internal_error("langchain.result_text", exc)
                    text = None
                self._end(run_id, output=text)
            else:
                self._end(run_id, output=response)
        except Exception as exc:
            report_internal_error("langchain.llm_end", exc)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._end(run_id, error=error)
        except Exception as exc:
            report_internal_error("langchain.llm_error", exc)

    # --- tools -----------------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.active:
            return
        try:
            call_id = kwargs.get("tool_call_id")
            self._start_step(
                sc.SPAN_KIND_TOOL,
                ad.run_name(serialized, kwargs, "tool"),
                run_id,
                parent_run_id,
                inputs if inputs is not None else input_str,
                tool_call_id=call_id if isinstance(call_id, str) else None,
            )
        except Exception as exc:
            report_internal_error("langchain.tool_start", exc)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            call_id = getattr(output, "tool_call_id", None)  # a ToolMessage
            if isinstance(call_id, str):
                run = self._runs.get(run_id)
                if run is not None and run.step is not None:
                    run.step.set_tool_call_id(call_id)
                output = getattr(output, "content", output)
            self._end(run_id, output=output)
        except Exception as exc:
            report_internal_error("langchain.tool_end", exc)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._end(run_id, error=error)
        except Exception as exc:
            report_internal_error("langchain.tool_error", exc)

    # --- retrievers ------------------------------------------------------------------------------

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.active:
            return
        try:
            name = ad.run_name(serialized, kwargs, "retriever")
            self._start_step(sc.SPAN_KIND_RETRIEVER, name, run_id, parent_run_id, query)
        except Exception as exc:
            report_internal_error("langchain.retriever_start", exc)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._end(run_id, output=documents)
        except Exception as exc:
            report_internal_error("langchain.retriever_end", exc)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._end(run_id, error=error)
        except Exception as exc:
            report_internal_error("langchain.retriever_error", exc)
