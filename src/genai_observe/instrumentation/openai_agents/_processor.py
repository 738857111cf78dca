"""The Agents SDK trace processor that turns its traces and spans into step spans.

The SDK reports every trace and span to its processors, synchronously, in the task that starts or
finishes it; each span names its parent (``parent_id``, or the trace when None). A bounded map
id -> :class:`_Node` keeps what a live trace or span became: its step (None for the SDK spans we
fold into their parent: tasks, turns, model responses, guardrails, handoffs), the context its
children start under, and the agent it runs for.

Model calls are not recorded here: the SDK's response/generation spans would make a second LLM
span and count tokens twice. The openai instrumentation records them, under the agent step,
because a step's context is made current in the task that starts it (``on_span_start`` runs just
before the SDK's own code for the span): :meth:`_attach`. That context names the agent, so the
LLM span carries ``gen_ai.agent.name`` (``_core/agent_context.py``). Tasks the SDK creates afterwards
(parallel tools, guardrails, the first model call) inherit it. When the span ends, the context
that was current before is put back, but only where ours is still the current one: a span ended
from another task, or after code of the app made another context current, leaves that alone.
No token is kept, so nothing can be detached in the wrong context.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Final

from agents.tracing import TracingProcessor
from opentelemetry import context as otel_context

from ..._core import semconv as sc
from ..._core.agent_context import AgentScope, with_agent
from ..._core.diagnostics import report_internal_error
from ..._core.recorder import Recorder
from ..._core.steps import Step, StepRecorder

MAX_NODES: Final = 10_000
_NODE_KEY: Final = otel_context.create_key("genai_observe.openai_agents.node")
# SDK span types (SpanData.type) that become steps; every other type is folded into its parent.
_AGENT: Final = "agent"
_FUNCTION: Final = "function"
_CUSTOM: Final = "custom"
_RESPONSES: Final = frozenset({"response", "generation"})
# Pending tool calls kept per agent, to give function spans their call id.
_MAX_PENDING_CALLS: Final = 128


class _Node:
    """What one SDK trace or span became while it is live."""

    __slots__ = (
        "agent",
        "attached",
        "calls",
        "context",
        "conversation",
        "ended",
        "failure",
        "handoff",
        "output_guardrail",
        "prev",
        "responses",
        "step",
        "trace",
        "tripwires",
        "workflow",
    )

    def __init__(
        self,
        step: Step | None,
        context: otel_context.Context | None,
        agent: _Node | None,
        trace: _Node | None,
        workflow: str | None,
    ) -> None:
        self.step = step
        self.context = context  # what children start under
        self.agent = agent  # the agent this runs for (itself for agents)
        self.trace = trace  # the workflow node (itself for traces)
        self.workflow = workflow
        self.attached: otel_context.Context | None = None  # what we made current, and over what
        self.prev: otel_context.Context | None = None
        self.ended = False
        # agents: model responses ended so far, their tool calls not yet claimed by a function
        # span (call id, name), a failure a turn reported, guardrails whose tripwire fired
        self.responses = 0
        self.calls: list[tuple[str, str]] = []
        self.failure: Mapping[str, Any] | None = None
        self.tripwires: list[str] = []
        # traces: the conversation id (group_id) and (from, to) of the last handoff, for the agent
        # that takes over; guardrails: whether it checks output (decided at start)
        self.conversation: str | None = None
        self.handoff: tuple[str, str] | None = None
        self.output_guardrail = False


class GenAITracingProcessor(TracingProcessor):
    """Receives the SDK's traces and spans beside its own processors; never raises."""

    def __init__(self, recorder: Recorder, max_nodes: int = MAX_NODES) -> None:
        self.steps = StepRecorder(recorder)
        self.max_nodes = max_nodes
        self.active = True
        self._nodes: OrderedDict[str, _Node] = OrderedDict()
        self._lock = threading.Lock()

    def use(self, recorder: Recorder) -> None:
        """Record with ``recorder`` from now on (the instrumentor was turned on again)."""
        self.steps = StepRecorder(recorder)
        self.active = True

    def tracked(self) -> int:
        return len(self._nodes)

    # --- bookkeeping -----------------------------------------------------------------------------

    def _store(self, key: str, node: _Node) -> None:
        evicted: list[_Node] = []
        with self._lock:
            previous = self._nodes.pop(key, None)
            if previous is not None:
                evicted.append(previous)
            while len(self._nodes) >= self.max_nodes:
                evicted.append(self._nodes.popitem(last=False)[1])
            self._nodes[key] = node
        for old in evicted:
            old.ended = True
            if old.step is not None:
                old.step.end()

    def _pop(self, key: str) -> _Node | None:
        with self._lock:
            return self._nodes.pop(key, None)

    def _get(self, key: str | None) -> _Node | None:
        if key is None:
            return None
        with self._lock:
            return self._nodes.get(key)

    def _parent(self, span: Any) -> _Node | None:
        """The node of the span's parent, else of its trace (None: the app's current context)."""
        return self._get(getattr(span, "parent_id", None)) or self._get(getattr(span, "trace_id", None))

    # --- the current context ---------------------------------------------------------------------

    def _attach(self, node: _Node) -> None:
        """Make ``node``'s step current in the calling task, over what is current now."""
        step = node.step
        if step is None:
            return
        try:
            prev = otel_context.get_current()
            context = step.context(prev)
            scope = _scope_of(node.agent)
            if scope is not None and step.agent is None:
                context = with_agent(scope, context)  # a tool's own LLM calls count for its agent
            context = otel_context.set_value(_NODE_KEY, node, context)
            otel_context.attach(context)  # undone by value in _restore: no token to outlive us
            node.attached, node.prev = context, prev
        except Exception as exc:
            report_internal_error("openai_agents.attach", exc)

    def _restore(self, node: _Node) -> None:
        """Put back what was current before ``node`` (skipping contexts of nodes that ended since),
        only where ``node``'s context is still the current one."""
        attached = node.attached
        if attached is None:
            return
        node.attached = None
        try:
            if otel_context.get_current() is not attached:
                return
            target = node.prev
            while target is not None:
                owner = otel_context.get_value(_NODE_KEY, target)
                if not isinstance(owner, _Node) or not owner.ended or owner.prev is None:
                    break
                target = owner.prev
            if target is not None:
                otel_context.attach(target)
        except Exception as exc:
            report_internal_error("openai_agents.restore", exc)

    # --- traces ----------------------------------------------------------------------------------

    def on_trace_start(self, trace: Any) -> None:
        if not self.active:
            return
        try:
            trace_id = getattr(trace, "trace_id", None)
            if not isinstance(trace_id, str):
                return
            name = _text(getattr(trace, "name", None)) or "Agent workflow"
            step = self.steps.start_step(sc.SPAN_KIND_WORKFLOW, name, workflow_name=name, parent=None)
            node = _Node(step, step.context() if step is not None else None, None, None, name)
            node.trace = node
            # The trace's group_id ("links multiple traces from the same conversation") is the
            # conversation id of its agents and their LLM calls.
            node.conversation = _text(getattr(trace, "group_id", None))
            self._store(trace_id, node)
            self._attach(node)
        except Exception as exc:
            report_internal_error("openai_agents.trace_start", exc)

    def on_trace_end(self, trace: Any) -> None:
        try:
            node = self._pop(getattr(trace, "trace_id", ""))
            if node is None:
                return
            node.ended = True
            if node.step is not None:
                node.step.end()
            self._restore(node)
        except Exception as exc:
            report_internal_error("openai_agents.trace_end", exc)

    # --- spans -----------------------------------------------------------------------------------

    def on_span_start(self, span: Any) -> None:
        if not self.active:
            return
        try:
            span_id = getattr(span, "span_id", None)
            if not isinstance(span_id, str):
                return
            data = getattr(span, "span_data", None)
            kind = getattr(data, "type", None)
            parent = self._parent(span)
            context = parent.context if parent is not None else None
            agent = parent.agent if parent is not None else None
            trace = parent.trace if parent is not None else None
            workflow = parent.workflow if parent is not None else None
            step: Step | None = None
            if kind == _AGENT:
                step = self._start_agent(data, context, trace, workflow)
            elif kind == _FUNCTION:
                name = _text(getattr(data, "name", None)) or "tool"
                step = self.steps.start_step(
                    sc.SPAN_KIND_TOOL,
                    name,
                    workflow_name=workflow,
                    parent=context,
                    tool_call_id=_claim_call(agent, name),
                )
            elif kind == _CUSTOM:
                name = _text(getattr(data, "name", None)) or "custom"
                step = self.steps.start_step(sc.SPAN_KIND_TASK, name, workflow_name=workflow, parent=context)
            node = _Node(step, step.context(context) if step is not None else context, agent, trace, workflow)
            if kind == _AGENT and step is not None:
                node.agent = node
            elif kind == "guardrail":
                # Input guardrails run before or beside the agent's first model call, output
                # guardrails after its final one; the span data does not say which.
                node.output_guardrail = agent is not None and agent.responses > 0
            self._store(span_id, node)
            self._attach(node)
        except Exception as exc:
            report_internal_error("openai_agents.span_start", exc)

    def _start_agent(
        self, data: Any, context: otel_context.Context | None, trace: _Node | None, workflow: str | None
    ) -> Step | None:
        name = _text(getattr(data, "name", None)) or "agent"
        conversation = trace.conversation if trace is not None else None
        step = self.steps.start_step(
            sc.SPAN_KIND_AGENT, name, workflow_name=workflow, parent=context, conversation_id=conversation
        )
        if step is not None and trace is not None and trace.handoff is not None:
            source, target = trace.handoff
            if target == name:
                trace.handoff = None
                step.set_attributes({sc.GEN_AI_HANDOFF_FROM_AGENT: source})
        return step

    def on_span_end(self, span: Any) -> None:
        try:
            node = self._pop(getattr(span, "span_id", ""))
            if node is None:
                return
            node.ended = True
            data = getattr(span, "span_data", None)
            kind = getattr(data, "type", None)
            error = _error_of(span)
            try:
                if kind == _AGENT:
                    self._end_agent(node, error)
                elif kind == _FUNCTION:
                    self._end_tool(node, data, error)
                elif kind == _CUSTOM:
                    self._end_custom(node, data, error)
                elif kind in _RESPONSES:
                    _note_response(node.agent, data)
                elif kind == "turn":
                    if error is not None and node.agent is not None and node.agent.failure is None:
                        node.agent.failure = error
                elif kind == "guardrail":
                    self._guardrail(node, data)
                elif kind == "handoff":
                    self._handoff(node, data)
            finally:
                if node.step is not None and not node.step.ended:
                    node.step.end()  # whatever failed above, the span ends once
                self._restore(node)
        except Exception as exc:
            report_internal_error("openai_agents.span_end", exc)

    def _end_agent(self, node: _Node, error: Mapping[str, Any] | None) -> None:
        step = node.step
        if step is None:
            return
        if node.tripwires:
            step.set_attributes({sc.GUARDRAIL_TRIPWIRES: list(node.tripwires)})
        raised = _run_exception()
        if isinstance(raised, (asyncio.CancelledError, GeneratorExit)):
            step.end()  # the app stopped the run: nothing failed (as for abandoned streams)
        elif error is not None or (node.failure is not None and raised is not None):
            _fail(step, raised, error or node.failure)
        else:
            step.end()

    def _end_tool(self, node: _Node, data: Any, error: Mapping[str, Any] | None) -> None:
        step = node.step
        if step is None:
            return
        step.set_input(_arguments(getattr(data, "input", None)))
        output = getattr(data, "output", None)
        if error is not None:
            _fail(step, None, error, output)
        else:
            step.end(output=output)

    def _end_custom(self, node: _Node, data: Any, error: Mapping[str, Any] | None) -> None:
        step = node.step
        if step is None:
            return
        values = getattr(data, "data", None)
        if values:
            step.set_input(values)
        if error is not None:
            _fail(step, None, error)
        else:
            step.end()

    def _guardrail(self, node: _Node, data: Any) -> None:
        agent = node.agent
        if agent is None or agent.step is None:
            return
        name = _text(getattr(data, "name", None)) or "guardrail"
        triggered = bool(getattr(data, "triggered", False))
        agent.step.add_event(
            sc.EVENT_AGENT_GUARDRAIL,
            {
                sc.GUARDRAIL_NAME: name,
                sc.GUARDRAIL_DIRECTION: sc.GUARDRAIL_OUTPUT if node.output_guardrail else sc.GUARDRAIL_INPUT,
                sc.GUARDRAIL_TRIGGERED: triggered,
            },
        )
        if triggered and name not in agent.tripwires and len(agent.tripwires) < 32:
            agent.tripwires.append(name)

    def _handoff(self, node: _Node, data: Any) -> None:
        source = _text(getattr(data, "from_agent", None))
        target = _text(getattr(data, "to_agent", None))
        if target is None:
            return  # the handoff failed: no agent took over
        attributes = {sc.GEN_AI_HANDOFF_TO_AGENT: target}
        if source is not None:
            attributes[sc.GEN_AI_HANDOFF_FROM_AGENT] = source
        agent = node.agent
        if agent is not None and agent.step is not None:
            agent.step.add_event(sc.EVENT_AGENT_HANDOFF, attributes)
            agent.step.set_attributes({sc.GEN_AI_HANDOFF_TO_AGENT: target})
        if node.trace is not None:
            node.trace.handoff = (source or (agent.step.name if agent and agent.step else "agent"), target)

    def shutdown(self) -> None:
        """The SDK shuts its processors down at exit; our spans go through the app's providers."""

    def force_flush(self) -> None:
        """Nothing is buffered here."""


# --- helpers ------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _arguments(value: Any) -> Any:
    """A tool's arguments (the model's JSON text) as the object they encode, so they are exported
    as JSON once, not as a JSON string inside JSON."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


def _scope_of(agent: _Node | None) -> AgentScope | None:
    return agent.step.agent if agent is not None and agent.step is not None else None


def _error_of(span: Any) -> Mapping[str, Any] | None:
    error = getattr(span, "error", None)
    return error if isinstance(error, Mapping) else None


def _run_exception() -> BaseException | None:
    """The exception the run is failing with, when the SDK ends a span while it propagates (its
    ``finally`` blocks): the one being handled, if it passed through the SDK's code. An exception an
    enclosing ``except`` block of the app handles does not count."""
    exc = sys.exc_info()[1]
    if exc is None:
        return None
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if isinstance(module, str) and (module == "agents" or module.startswith("agents.")):
            return exc
        tb = tb.tb_next
    return exc if isinstance(exc, asyncio.CancelledError) else None


def _fail(
    step: Step, raised: BaseException | None, error: Mapping[str, Any] | None, output: Any = None
) -> None:
    """End ``step`` as failed: with the exception when we have it, else with the SDK's error data
    (its message, a fixed text per kind of failure, is the error type)."""
    if raised is not None and not isinstance(raised, (asyncio.CancelledError, GeneratorExit)):
        step.end(output=output, error=raised)
        return
    message = _text(error.get("message")) if error is not None else None
    data = error.get("data") if error is not None else None
    detail = data.get("error") if isinstance(data, Mapping) else None
    step.end(
        output=output,
        error_type=message or "error",
        error_message=detail if isinstance(detail, str) else None,
    )


def _note_response(agent: _Node | None, data: Any) -> None:
    """A model response of ``agent`` ended: count it and keep its tool calls' ids."""
    if agent is None:
        return
    agent.responses += 1
    try:
        calls = list(_tool_calls(data))
    except Exception as exc:
        report_internal_error("openai_agents.tool_calls", exc)
        return
    agent.calls = calls[:_MAX_PENDING_CALLS]


def _tool_calls(data: Any) -> Iterable[tuple[str, str]]:
    """(call id, tool name) of the function calls a response (Responses API) or a generation
    (Chat Completions, output messages as dicts) asked for."""
    response = getattr(data, "response", None)
    for item in getattr(response, "output", None) or ():
        if getattr(item, "type", None) == "function_call":
            call_id, name = getattr(item, "call_id", None), getattr(item, "name", None)
            if isinstance(call_id, str) and isinstance(name, str):
                yield call_id, name
    output = getattr(data, "output", None)
    if getattr(data, "type", None) == "generation" and isinstance(output, (list, tuple)):
        for message in output:
            if not isinstance(message, Mapping):
                continue
            for call in message.get("tool_calls") or ():
                if not isinstance(call, Mapping):
                    continue
                function = call.get("function")
                name = function.get("name") if isinstance(function, Mapping) else None
                call_id = call.get("id")
                if isinstance(call_id, str) and isinstance(name, str):
                    yield call_id, name


def _claim_call(agent: _Node | None, name: str) -> str | None:
    """The id of the first unclaimed call of tool ``name`` in the agent's last response: the SDK
    starts its function spans in the order of the calls."""
    if agent is None:
        return None
    calls = agent.calls
    for position, (call_id, tool) in enumerate(calls):
        if tool == name:
            del calls[position]
            return call_id
    return None


__all__ = ["GenAITracingProcessor"]
