"""Which agent an LLM call is made for, carried in the OpenTelemetry context.

Dynatrace's agent views need ``gen_ai.agent.name`` on the LLM spans themselves, but the provider
instrumentation that records an LLM call (openai, anthropic, ...) knows nothing of the framework
agent it runs for. Agent steps (``_steps.Step.context``) put an :class:`AgentScope` in the context
their children run in; ``Recorder.start`` copies it onto the LLM span it starts. Any framework
instrumentation gets this by making its agent step's context current, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import context as otel_context

from . import semconv as sc

_KEY: Final = otel_context.create_key("genai_observe.agent")


@dataclass(frozen=True, slots=True)
class AgentScope:
    """The agent (and conversation, when the framework knows one) that calls run for."""

    name: str
    conversation_id: str | None = None

    def attributes(self) -> dict[str, Any]:
        a: dict[str, Any] = {sc.GEN_AI_AGENT_NAME: self.name}
        if self.conversation_id is not None:
            a[sc.GEN_AI_CONVERSATION_ID] = self.conversation_id
        return a


def with_agent(scope: AgentScope, base: otel_context.Context | None = None) -> otel_context.Context:
    """``base`` (default: current) with ``scope`` as the agent of calls made in it."""
    return otel_context.set_value(_KEY, scope, base)


def current_agent(context: otel_context.Context | None = None) -> AgentScope | None:
    """The agent of ``context`` (default: current), None outside any agent step."""
    scope = otel_context.get_value(_KEY, context)
    return scope if isinstance(scope, AgentScope) else None


def attribute_call(request_attributes: dict[str, Any], context: otel_context.Context | None) -> None:
    """Add the agent's attributes to an LLM call's; what the call itself knows (a conversation id
    sent in the request) wins."""
    scope = current_agent(context)
    if scope is not None:
        for key, value in scope.attributes().items():
            request_attributes.setdefault(key, value)


__all__ = ["AgentScope", "attribute_call", "current_agent", "with_agent"]
