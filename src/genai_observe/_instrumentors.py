"""Which instrumentor class serves which name; imported lazily so unused ones cost nothing."""

from __future__ import annotations

import importlib
from typing import Any, Final

from ._config import KNOWN_INSTRUMENTATIONS

# name -> (module path, class name). Every name in KNOWN_INSTRUMENTATIONS has an entry once its
# provider issue lands; names without one are accepted in configuration and skipped.
REGISTRY: Final[dict[str, tuple[str, str]]] = {
    "openai": ("genai_observe.instrumentation.openai", "OpenAIInstrumentor"),
    "bedrock": ("genai_observe.instrumentation.bedrock", "BedrockInstrumentor"),
    "anthropic": ("genai_observe.instrumentation.anthropic", "AnthropicInstrumentor"),
    "ollama": ("genai_observe.instrumentation.ollama", "OllamaInstrumentor"),
    "langchain": ("genai_observe.instrumentation.langchain", "LangChainInstrumentor"),
}


def load(name: str) -> Any | None:
    """The instrumentor instance for ``name``, or None if this build does not ship it yet."""
    if name not in KNOWN_INSTRUMENTATIONS:
        raise KeyError(name)
    entry = REGISTRY.get(name)
    if entry is None:
        return None
    module = importlib.import_module(entry[0])
    return getattr(module, entry[1])()
