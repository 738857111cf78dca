"""Spans for the non-LLM steps of a framework run: workflows, tasks, agents, tools, retrievers.

Framework modules (LangChain, ...) know their run tree but never build spans; they call
:meth:`StepRecorder.start_step` with an explicit parent context and end the returned
:class:`Step` exactly once. LLM calls inside a run still go through :meth:`Recorder.start`.

Naming follows the recorder's profile:

- ``dynatrace``: span ``"{name}.{kind}"`` with ``traceloop.span.kind``, ``traceloop.workflow.name``,
  ``traceloop.entity.name`` (agents also ``gen_ai.agent.name``, which Dynatrace's agent filter
  reads) and, with content capture on spans, ``traceloop.entity.input`` /
  ``traceloop.entity.output`` (JSON through the recorder's ContentPolicy).
- ``latest``: agents ``"invoke_agent {name}"``, tools ``"execute_tool {name}"`` with the v1.41.0
  attributes; every other step is a plain span named ``name``.

An agent step's :meth:`Step.context` also names the agent for the GenAI spans started under it,
and a workflow step's names the workflow (``agent_context.CallScope``): ``Recorder.start`` puts
``gen_ai.agent.name`` (and the conversation id, and the caller's ``genai_observe.attributes``) on
LLM spans, :meth:`StepRecorder.start_step` on step spans.

Steps record no metrics. Like the recorder, nothing here raises into the caller.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from . import semconv as sc
from .agent_context import AgentScope, current_scope, scope_attributes, with_agent, with_workflow
from .content import TRUNCATED_MARK, dumps, mask_cut
from .diagnostics import report_internal_error
from .errors import error_type_of, record_error
from .modes import Profile
from .observers import OBSERVERS
from .recorder import Recorder, instrumentation_suppressed


class StepRecorder:
    """Starts step spans with the tracer, capture mode, profile and content policy of ``recorder``."""

    __slots__ = ("_legacy", "recorder")

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._legacy = recorder.profile is Profile.DYNATRACE

    def start_step(
        self,
        kind: str,
        name: str,
        *,
        workflow_name: str | None,
        parent: otel_context.Context | None,
        inputs: Any = None,
        tool_call_id: str | None = None,
        conversation_id: str | None = None,
    ) -> Step | None:
        """Start a ``kind`` step (one of ``_semconv.STEP_KINDS``); None when suppressed or on failure.

        ``parent``: the context to start under (the parent run's span); None: the current context.
        ``inputs``: exported only with content capture on spans, masked and capped.
        ``conversation_id``: agents only; on the agent span and the LLM spans under it.
        ``workflow_name``: None takes the enclosing workflow's (a workflow step's: its own name).
        The scope of ``parent`` (its agent, conversation, the caller's attributes) is added under
        the step's own attributes.
        """
        if instrumentation_suppressed():
            return None
        try:
            if kind not in sc.STEP_KINDS:
                kind = sc.SPAN_KIND_TASK
            if workflow_name is None:
                workflow_name = name if kind == sc.SPAN_KIND_WORKFLOW else current_scope(parent).workflow
            attributes = self._attributes(kind, name, workflow_name, tool_call_id)
            scope = None
            if kind == sc.SPAN_KIND_AGENT:
                scope = AgentScope(name, conversation_id)
                attributes.update(scope.attributes())
            for key, value in scope_attributes(parent).items():
                attributes.setdefault(key, value)
            if inputs is not None and self.recorder.capture.on_span:
                self._content(kind, inputs, attributes, output=False)
            span = self.recorder.tracer.start_span(
                self._span_name(kind, name), context=parent, kind=SpanKind.INTERNAL, attributes=attributes
            )
            step = Step(self, span, kind, name, scope)
            # Kept for an observer that wants it (the audit event), only with content on.
            wants = OBSERVERS.step_input
            if inputs is not None and self.recorder.capture.any and wants is not None and wants():
                step.audit_input = self._json(inputs)
            return step
        except Exception as exc:
            report_internal_error("steps.start", exc)
            return None

    # --- attribute building --------------------------------------------------------------------

    def _span_name(self, kind: str, name: str) -> str:
        if self._legacy:
            return f"{name}.{kind}"
        if kind == sc.SPAN_KIND_AGENT:
            return f"{sc.OP_INVOKE_AGENT} {name}"
        if kind == sc.SPAN_KIND_TOOL:
            return f"{sc.OP_EXECUTE_TOOL} {name}"
        return name

    def _attributes(
        self, kind: str, name: str, workflow_name: str | None, tool_call_id: str | None
    ) -> dict[str, Any]:
        a: dict[str, Any] = {}
        if self._legacy:
            a[sc.TRACELOOP_SPAN_KIND] = kind
            a[sc.TRACELOOP_ENTITY_NAME] = name
            if workflow_name is not None:
                a[sc.TRACELOOP_WORKFLOW_NAME] = workflow_name
            return a
        if kind == sc.SPAN_KIND_AGENT:
            a[sc.GEN_AI_OPERATION_NAME] = sc.OP_INVOKE_AGENT
            a[sc.GEN_AI_AGENT_NAME] = name
        elif kind == sc.SPAN_KIND_TOOL:
            a[sc.GEN_AI_OPERATION_NAME] = sc.OP_EXECUTE_TOOL
            a[sc.GEN_AI_TOOL_NAME] = name
            if tool_call_id is not None:
                a[sc.GEN_AI_TOOL_CALL_ID] = tool_call_id
        return a

    def _content(self, kind: str, value: Any, a: dict[str, Any], *, output: bool) -> None:
        """Input or output content, in the profile's attribute (none for latest non-tool steps)."""
        if self._legacy:
            a[sc.TRACELOOP_ENTITY_OUTPUT if output else sc.TRACELOOP_ENTITY_INPUT] = self._json(value)
        elif kind == sc.SPAN_KIND_TOOL:
            a[sc.GEN_AI_TOOL_CALL_RESULT if output else sc.GEN_AI_TOOL_CALL_ARGUMENTS] = self._json(value)

    def _json(self, value: Any) -> str:
        policy = self.recorder.content
        text = dumps(policy.clean(value))
        # Every string inside is capped already; a huge structure is still bounded as a whole.
        if len(text) > policy.max_total:
            text = text[: policy.max_total] + TRUNCATED_MARK
        return text


class Step:
    """One step span in flight; :meth:`end` ends it exactly once."""

    __slots__ = ("_ended", "agent", "audit_input", "kind", "name", "span", "steps")

    def __init__(
        self, steps: StepRecorder, span: Span, kind: str, name: str, agent: AgentScope | None = None
    ) -> None:
        self.steps = steps
        self.span = span
        self.kind = kind
        self.name = name
        # Agent steps: the agent LLM calls under this step are made for (see context()).
        self.agent = agent
        self._ended = False
        self.audit_input: str | None = None  # the input's JSON, for the audit event

    @property
    def ended(self) -> bool:
        return self._ended

    def context(self, base: otel_context.Context | None = None) -> otel_context.Context:
        """A context with this step's span current: the parent for its children. An agent step's
        also names the agent for the GenAI spans started in it, a workflow step's the workflow."""
        context = trace.set_span_in_context(self.span, base)
        if self.kind == sc.SPAN_KIND_WORKFLOW:
            context = with_workflow(self.name, context)
        return context if self.agent is None else with_agent(self.agent, context)

    def set_input(self, inputs: Any) -> None:
        """The step's input when it is known only after the span started; content capture only."""
        if self._ended or inputs is None or not self.steps.recorder.capture.on_span:
            return
        try:
            a: dict[str, Any] = {}
            self.steps._content(self.kind, inputs, a, output=False)
            if a:
                self.span.set_attributes(a)
        except Exception as exc:
            report_internal_error("steps.set_input", exc)

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        """Attributes learnt while the step runs (names from ``_semconv``; no content)."""
        if self._ended:
            return
        try:
            self.span.set_attributes(attributes)
        except Exception as exc:
            report_internal_error("steps.set_attributes", exc)

    def add_event(self, name: str, attributes: dict[str, Any]) -> None:
        """Something that happened within the step and is no step of its own (a handoff, ...)."""
        if self._ended:
            return
        try:
            self.span.add_event(name, attributes)
        except Exception as exc:
            report_internal_error("steps.add_event", exc)

    def set_tool_call_id(self, tool_call_id: str) -> None:
        """The tool call id, when it becomes known only after the tool ran (latest profile)."""
        if self._ended or self.kind != sc.SPAN_KIND_TOOL or self.steps._legacy:
            return
        try:
            self.span.set_attribute(sc.GEN_AI_TOOL_CALL_ID, tool_call_id)
        except Exception as exc:
            report_internal_error("steps.tool_call_id", exc)

    def promote(self, kind: str) -> None:
        """Re-classify a running step (a chain that turns out to drive an agent)."""
        if self._ended or kind == self.kind or kind not in sc.STEP_KINDS:
            return
        try:
            steps = self.steps
            self.kind = kind
            self.span.update_name(steps._span_name(kind, self.name))
            a = steps._attributes(kind, self.name, None, None)
            if kind == sc.SPAN_KIND_AGENT and self.agent is None:
                self.agent = AgentScope(self.name)
                a.update(self.agent.attributes())
            if a:
                self.span.set_attributes(a)
        except Exception as exc:
            report_internal_error("steps.promote", exc)

    def end(
        self,
        output: Any = None,
        error: BaseException | None = None,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> None:
        """End the span; ``output`` is exported only with content capture on spans.

        A framework that reports a failure as data, not as the exception object, passes
        ``error_type`` (and ``error_message``, masked) instead of ``error``.
        """
        if self._ended:
            return
        self._ended = True
        span = self.span
        try:
            if span.is_recording():
                a: dict[str, Any] = {}
                steps = self.steps
                if output is not None and steps.recorder.capture.on_span:
                    steps._content(self.kind, output, a, output=True)
                if error is not None:
                    a[sc.ERROR_TYPE] = error_type_of(error)
                elif error_type is not None:
                    a[sc.ERROR_TYPE] = error_type
                if a:
                    span.set_attributes(a)
                if error is not None:
                    record_error(span, error, content=steps.recorder.capture.on_span)
                elif error_type is not None:
                    # Reported as data: the message is content like an exception's text (record_error).
                    text = ""
                    if error_message and steps.recorder.capture.on_span:
                        text, cut = mask_cut(error_message, 512)
                        text = text + TRUNCATED_MARK if cut else text
                    span.set_status(Status(StatusCode.ERROR, f"{error_type}: {text}" if text else error_type))
        except Exception as exc:
            report_internal_error("steps.end", exc)
        finally:
            try:
                span.end()
            except Exception as exc:
                report_internal_error("steps.span_end", exc)
        # Whoever watches finished steps (the audit event of the export pipeline).
        observer = OBSERVERS.step_end
        if observer is not None:
            observer(self, output, error)


__all__ = ["Step", "StepRecorder"]
