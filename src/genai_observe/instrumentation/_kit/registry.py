"""The one list of the providers this package instruments: which instrumentor class serves which
name. Settings, the CLI help and the tests read it from here; the classes are imported lazily, so
unused ones cost nothing."""

from __future__ import annotations

import importlib
from typing import Any, Final

# name -> (module path, class name); a test checks that pyproject.toml registers each as the entry
# point genai_observe_<name>. The order is the order settings and the docs list them in.
REGISTRY: Final[dict[str, tuple[str, str]]] = {
    "openai": ("genai_observe.instrumentation.openai", "OpenAIInstrumentor"),
    "anthropic": ("genai_observe.instrumentation.anthropic", "AnthropicInstrumentor"),
    "bedrock": ("genai_observe.instrumentation.bedrock", "BedrockInstrumentor"),
    "ollama": ("genai_observe.instrumentation.ollama", "OllamaInstrumentor"),
    "langchain": ("genai_observe.instrumentation.langchain", "LangChainInstrumentor"),
    "openai_agents": ("genai_observe.instrumentation.openai_agents", "OpenAIAgentsInstrumentor"),
}
KNOWN_INSTRUMENTATIONS: Final[tuple[str, ...]] = tuple(REGISTRY)


def load(name: str) -> Any | None:
    """A new instrumentor for ``name`` (KeyError for a name we do not ship)."""
    entry = REGISTRY[name]
    module = importlib.import_module(entry[0])
    return getattr(module, entry[1])()
