"""What every GenAI span started in a context carries, kept in the OpenTelemetry context.

Dynatrace's agent views need ``gen_ai.agent.name`` on the spans themselves (AR-010) and group
prompts into threads by ``gen_ai.conversation.id`` (AR-041), but the provider instrumentation that
records an LLM call (openai, anthropic, ...) knows nothing of the agent or conversation it runs
for. So one immutable :class:`CallScope` travels in the OpenTelemetry context (contextvars):

- agent steps (``steps.Step.context``: ours, LangChain's, the OpenAI Agents SDK's) set the agent
  (and the conversation, when the framework knows one);
- ``genai_observe.conversation()`` sets the conversation id, ``genai_observe.attributes()`` adds
  the caller's own attributes, workflow steps set the workflow name.

``Recorder.start`` copies the scope onto every LLM span (:func:`attribute_call`) and
``StepRecorder.start_step`` onto every step span (:func:`scope_attributes`). The innermost setting
wins; what a call or step itself knows (a conversation id sent in the request, an agent's own
name) wins over the scope.

The caller's attributes are validated here, once, when the scope is made: OpenTelemetry attribute
types only, at most :data:`MAX_ATTRIBUTES` keys, strings capped at :data:`MAX_VALUE_LENGTH`, and
never a name of the namespaces we write (:data:`semconv.RESERVED_PREFIXES`), so a caller's key can
neither override nor fake one of ours. What does not fit is dropped, never raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from opentelemetry import context as otel_context

from . import semconv as sc

_KEY: Final = otel_context.create_key("genai_observe.scope")

MAX_ATTRIBUTES: Final = 32  # the caller's attributes a scope keeps (the first ones given win)
MAX_KEY_LENGTH: Final = 128
MAX_VALUE_LENGTH: Final = 1024  # per string value, and per string inside a sequence
MAX_SEQUENCE_LENGTH: Final = 32
MAX_ID_LENGTH: Final = 256  # agent, workflow and conversation names

AttributeValue = (
    str | bool | int | float | tuple[str, ...] | tuple[bool, ...] | tuple[int, ...] | tuple[float, ...]
)


@dataclass(frozen=True, slots=True)
class AgentScope:
    """The agent (and conversation, when the framework knows one) an agent step runs."""

    name: str
    conversation_id: str | None = None

    def attributes(self) -> dict[str, Any]:
        a: dict[str, Any] = {sc.GEN_AI_AGENT_NAME: self.name}
        if self.conversation_id is not None:
            a[sc.GEN_AI_CONVERSATION_ID] = self.conversation_id
        return a


@dataclass(frozen=True, slots=True)
class CallScope:
    """Everything a context adds to the GenAI spans started in it; immutable, shared by reference."""

    agent: str | None = None
    conversation_id: str | None = None
    workflow: str | None = None
    attributes: tuple[tuple[str, AttributeValue], ...] = ()  # the caller's, validated

    def span_attributes(self) -> dict[str, Any]:
        a: dict[str, Any] = dict(self.attributes)
        if self.agent is not None:
            a[sc.GEN_AI_AGENT_NAME] = self.agent
        if self.conversation_id is not None:
            a[sc.GEN_AI_CONVERSATION_ID] = self.conversation_id
        return a


_EMPTY: Final = CallScope()


def current_scope(context: otel_context.Context | None = None) -> CallScope:
    """The scope of ``context`` (default: current); an empty one outside every scope."""
    scope = otel_context.get_value(_KEY, context)
    return scope if isinstance(scope, CallScope) else _EMPTY


def _with(scope: CallScope, base: otel_context.Context | None) -> otel_context.Context:
    return otel_context.set_value(_KEY, scope, base)


def with_agent(agent: AgentScope, base: otel_context.Context | None = None) -> otel_context.Context:
    """``base`` (default: current) with ``agent`` as the agent of calls made in it; its conversation,
    when it has one, replaces the enclosing one."""
    scope = current_scope(base)
    return _with(
        replace(scope, agent=agent.name, conversation_id=agent.conversation_id or scope.conversation_id), base
    )


def with_conversation(conversation_id: str, base: otel_context.Context | None = None) -> otel_context.Context:
    return _with(replace(current_scope(base), conversation_id=conversation_id), base)


def with_workflow(name: str, base: otel_context.Context | None = None) -> otel_context.Context:
    return _with(replace(current_scope(base), workflow=name), base)


def with_attributes(
    attributes: tuple[tuple[str, AttributeValue], ...], base: otel_context.Context | None = None
) -> otel_context.Context:
    """``base`` with ``attributes`` (already validated) added to the enclosing scope's; the inner
    value of a key wins, and the total stays within :data:`MAX_ATTRIBUTES`."""
    scope = current_scope(base)
    merged = dict(scope.attributes)
    for key, value in attributes:
        if key in merged or len(merged) < MAX_ATTRIBUTES:
            merged[key] = value
    return _with(replace(scope, attributes=tuple(merged.items())), base)


def current_agent(context: otel_context.Context | None = None) -> AgentScope | None:
    """The agent of ``context`` (default: current), None outside any agent step."""
    scope = current_scope(context)
    return AgentScope(scope.agent, scope.conversation_id) if scope.agent is not None else None


def attribute_call(request_attributes: dict[str, Any], context: otel_context.Context | None) -> None:
    """Add the scope's attributes to an LLM call's; what the call itself knows (a conversation id
    sent in the request) wins."""
    scope = otel_context.get_value(_KEY, context)
    if isinstance(scope, CallScope) and scope is not _EMPTY:
        for key, value in scope.span_attributes().items():
            request_attributes.setdefault(key, value)


def scope_attributes(context: otel_context.Context | None) -> dict[str, Any]:
    """The attributes a step span started in ``context`` (default: current) gets from its scope."""
    scope = otel_context.get_value(_KEY, context)
    return scope.span_attributes() if isinstance(scope, CallScope) else {}


# --- validation of what the caller passes -------------------------------------------------------


def clean_name(value: object) -> str | None:
    """An agent, workflow or conversation name as a bounded string; None when it is no string."""
    if not isinstance(value, str) or not value:
        return None
    return value[:MAX_ID_LENGTH]


def _clean_value(value: object) -> AttributeValue | None:
    if isinstance(value, str):
        return value[:MAX_VALUE_LENGTH]
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        items = list(value[:MAX_SEQUENCE_LENGTH])
        if not items:
            return None
        # OpenTelemetry arrays are homogeneous: one of str, bool, int, float (bool is no int here).
        for kind in (str, bool, int, float):
            if all(type(i) is kind for i in items):
                if kind is str:
                    return tuple(str(i)[:MAX_VALUE_LENGTH] for i in items)
                return tuple(items)
    return None


def clean_attributes(attributes: object) -> tuple[tuple[str, AttributeValue], ...]:
    """The caller's attributes OpenTelemetry can carry, bounded; everything else dropped."""
    if not isinstance(attributes, Mapping):
        return ()
    out: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if len(out) >= MAX_ATTRIBUTES:
            break
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            continue
        if key.startswith(sc.RESERVED_PREFIXES):
            continue
        clean = _clean_value(value)
        if clean is not None:
            out[key] = clean
    return tuple(out.items())


__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_VALUE_LENGTH",
    "AgentScope",
    "CallScope",
    "attribute_call",
    "clean_attributes",
    "clean_name",
    "current_agent",
    "current_scope",
    "scope_attributes",
    "with_agent",
    "with_attributes",
    "with_conversation",
    "with_workflow",
]
