"""Instrumentation of the OpenAI Agents SDK (``openai-agents``, module ``agents``).

Nothing of the SDK is patched: a trace processor (``_processor.py``) is added beside the SDK's own
processors through its public tracing interface (``agents.add_trace_processor``), so it follows the
SDK's releases. Traces become workflow steps, agents agent steps, function tools tool steps, custom
spans task steps; handoffs and guardrail results are recorded on the agent span. Model calls are
recorded once, by the openai instrumentation, under the agent step. See docs/openai-agents.md.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any, ClassVar

from ..._core.config import parse_bool
from ..._core.diagnostics import report_internal_error
from .._kit.base import GenAIInstrumentor

# "true": our processor replaces the SDK's (its export to the OpenAI dashboard stops).
ENV_REPLACE_SDK_PROCESSORS = "GENAI_OBSERVE_OPENAI_AGENTS_REPLACE_SDK_PROCESSORS"


class OpenAIAgentsInstrumentor(GenAIInstrumentor):
    """Adds a span-building trace processor to the Agents SDK.

    Usable on its own: ``OpenAIAgentsInstrumentor().instrument(tracer_provider=...,
    replace_sdk_processors=False)``. ``replace_sdk_processors=True`` makes ours the only processor
    (``agents.set_trace_processors``), which stops the SDK's export of traces to OpenAI.
    """

    name: ClassVar[str] = "openai_agents"
    module: ClassVar[str] = "agents"
    requirements: ClassVar[tuple[str, ...]] = ("openai-agents >= 0.25",)

    _processor: Any = None
    _registered_with: Any = None

    def _instrument(self, **kwargs: Any) -> None:
        option = kwargs.get("replace_sdk_processors")
        if option is None:
            env = os.environ.get(ENV_REPLACE_SDK_PROCESSORS)
            option = parse_bool(ENV_REPLACE_SDK_PROCESSORS, env) if env else False
        self._replace = bool(option)
        super()._instrument(**kwargs)

    def _uninstrument(self, **kwargs: Any) -> None:
        processor = self._processor
        if processor is not None:
            # The SDK has no way to remove one processor: ours stays registered and goes quiet
            # (and is reused, not added again, when instrumented again).
            processor.active = False
        super()._uninstrument(**kwargs)

    @property
    def processor(self) -> Any:
        """The trace processor (None before ``agents`` is imported): pass it to
        ``agents.set_trace_processors`` along with your own if you replace the SDK's list."""
        return self._processor

    def _patch(self, module: ModuleType) -> None:
        from agents import tracing

        from ._processor import GenAITracingProcessor

        processor = self._processor
        if processor is None:
            processor = self._processor = GenAITracingProcessor(self.recorder)
        else:
            processor.use(self.recorder)
        provider = tracing.get_trace_provider()
        try:
            if self._replace:
                tracing.set_trace_processors([processor])
            elif self._registered_with is not provider:
                tracing.add_trace_processor(processor)
            self._registered_with = provider
        except Exception as exc:
            report_internal_error("openai_agents.register", exc)


__all__ = ["ENV_REPLACE_SDK_PROCESSORS", "OpenAIAgentsInstrumentor"]
