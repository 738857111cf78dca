"""genai-observe: OpenTelemetry traces, metrics and events for LLM calls, ready for Dynatrace.

    import genai_observe
    genai_observe.init()   # endpoint and token from DT_ENDPOINT / DT_API_TOKEN or arguments

Importing this package is cheap and imports no provider SDK and not the OpenTelemetry SDK: the
public names below load their modules on first use (PEP 562), and instrumentation is applied when
an SDK is imported. See docs/ for configuration and the attributes each provider records.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._core.modes import CaptureMode, Profile
from ._errors import ConfigurationError, GenAIObserveError
from ._version import __version__

if TYPE_CHECKING:
    from ._evaluation import record_evaluation
    from ._manual import LLMCallContext, llm_call
    from ._pipeline.bootstrap import Handle, init, shutdown
    from ._scopes import agent, attributes, conversation, task, tool, workflow

_LAZY = {
    "Handle": "._pipeline.bootstrap",
    "init": "._pipeline.bootstrap",
    "shutdown": "._pipeline.bootstrap",
    "LLMCallContext": "._manual",
    "llm_call": "._manual",
    "record_evaluation": "._evaluation",
    "workflow": "._scopes",
    "task": "._scopes",
    "agent": "._scopes",
    "tool": "._scopes",
    "conversation": "._scopes",
    "attributes": "._scopes",
}

__all__ = [
    "CaptureMode",
    "ConfigurationError",
    "GenAIObserveError",
    "Handle",
    "LLMCallContext",
    "Profile",
    "__version__",
    "agent",
    "attributes",
    "conversation",
    "init",
    "llm_call",
    "record_evaluation",
    "shutdown",
    "task",
    "tool",
    "workflow",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'genai_observe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
