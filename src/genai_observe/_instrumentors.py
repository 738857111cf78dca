"""Which instrumentor class serves which name; imported lazily so unused ones cost nothing."""

from __future__ import annotations

import importlib
from typing import Any, Final

from ._config import KNOWN_INSTRUMENTATIONS

# name -> (module path, class name), one entry per name in KNOWN_INSTRUMENTATIONS (a test checks
# that, and that pyproject.toml registers each as the entry point genai_observe_<name>).
REGISTRY: Final[dict[str, tuple[str, str]]] = {
    "openai": ("genai_observe.instrumentation.openai", "OpenAIInstrumentor"),
    "bedrock": ("genai_observe.instrumentation.bedrock", "BedrockInstrumentor"),
    "anthropic": ("genai_observe.instrumentation.anthropic", "AnthropicInstrumentor"),
    "ollama": ("genai_observe.instrumentation.ollama", "OllamaInstrumentor"),
    "langchain": ("genai_observe.instrumentation.langchain", "LangChainInstrumentor"),
    "openai_agents": ("genai_observe.instrumentation.openai_agents", "OpenAIAgentsInstrumentor"),
}


def load(name: str) -> Any | None:
    """A new instrumentor for ``name`` (None only for a name without a registry entry)."""
    if name not in KNOWN_INSTRUMENTATIONS:
        raise KeyError(name)
    entry = REGISTRY.get(name)
    if entry is None:
        return None
    module = importlib.import_module(entry[0])
    return getattr(module, entry[1])()
