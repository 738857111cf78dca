"""Reading LangChain callback payloads (serialized dicts, messages, LLMResult) into records.

Duck-typed on purpose: nothing here imports langchain, so this module costs nothing until a
callback fires, and a renamed attribute degrades to a missing value instead of an error.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..._core import safe_json as _json
from ..._core import semconv as sc
from ..._core.record import Choice, LLMCall, Message, ToolCall, Usage

# LangChain message ``type`` -> role.
_ROLES: Final[dict[str, str]] = {
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}

# How a model class is identified in ``serialized["id"]``: serializable partner models carry their
# LangChain namespace (``["langchain", "chat_models", "openai", "ChatOpenAI"]``), others their
# module path (``["langchain_ollama", "chat_models", "ChatOllama"]``). Prefix -> (instrumentation
# of the provider SDK underneath, gen_ai.provider.name).
_BACKING: Final[tuple[tuple[tuple[str, ...], str | None, str], ...]] = (
    (("langchain", "chat_models", "openai"), "openai", sc.PROVIDER_OPENAI),
    (("langchain", "llms", "openai"), "openai", sc.PROVIDER_OPENAI),
    (("langchain", "chat_models", "azure_openai"), "openai", sc.PROVIDER_AZURE_OPENAI),
    (("langchain", "llms", "openai", "AzureOpenAI"), "openai", sc.PROVIDER_AZURE_OPENAI),
    (("langchain_openai",), "openai", sc.PROVIDER_OPENAI),
    (("langchain", "chat_models", "anthropic"), "anthropic", sc.PROVIDER_ANTHROPIC),
    (("langchain_anthropic",), "anthropic", sc.PROVIDER_ANTHROPIC),
    (("langchain", "chat_models", "bedrock"), "bedrock", sc.PROVIDER_AWS_BEDROCK),
    (("langchain", "llms", "bedrock"), "bedrock", sc.PROVIDER_AWS_BEDROCK),
    (("langchain_aws",), "bedrock", sc.PROVIDER_AWS_BEDROCK),
    (("langchain_ollama",), "ollama", sc.PROVIDER_OLLAMA),
    (("langchain", "chat_models", "ollama"), "ollama", sc.PROVIDER_OLLAMA),
    (("langchain_nvidia_ai_endpoints",), None, sc.PROVIDER_NVIDIA_NIM),
    (("langchain", "chat_models", "nvidia_ai_endpoints"), None, sc.PROVIDER_NVIDIA_NIM),
)
# The same, by the package a model class (or one of its base classes) is defined in: the live
# model's class ancestry catches subclasses defined elsewhere (``ChatDeepSeek(BaseChatOpenAI)``
# in langchain-deepseek, ``ChatXAI`` in langchain-xai, an app's own ``ChatOpenAI`` subclass), whose
# serialized id names their own package.
_BACKING_PACKAGES: Final[dict[str, tuple[str | None, str]]] = {
    "langchain_openai": ("openai", sc.PROVIDER_OPENAI),
    "langchain_anthropic": ("anthropic", sc.PROVIDER_ANTHROPIC),
    "langchain_aws": ("bedrock", sc.PROVIDER_AWS_BEDROCK),
    "langchain_ollama": ("ollama", sc.PROVIDER_OLLAMA),
    "langchain_nvidia_ai_endpoints": (None, sc.PROVIDER_NVIDIA_NIM),
}
# Per model class; weak, so a class that goes away takes its entry with it.
_class_backing: weakref.WeakKeyDictionary[type, tuple[str | None, str] | None] = weakref.WeakKeyDictionary()
_INVOCATION_MODEL_KEYS: Final = ("model", "model_name", "model_id", "deployment_name")


def class_path(serialized: Mapping[str, Any] | None) -> tuple[str, ...]:
    ident = serialized.get("id") if isinstance(serialized, Mapping) else None
    if isinstance(ident, (list, tuple)):
        return tuple(str(part) for part in ident)
    return ()


def backing(path: Sequence[str]) -> tuple[str | None, str]:
    """(instrumentation name of the SDK underneath or None, provider name) for a model class path."""
    parts = tuple(path)
    for prefix, instrumentation, provider in _BACKING:
        if parts[: len(prefix)] == prefix:
            return instrumentation, provider
    return None, sc.PROVIDER_LANGCHAIN


def class_backing(cls: type) -> tuple[str | None, str] | None:
    """``backing`` from a model class's ancestry (most derived first), None when no base class
    comes from a known integration package."""
    try:
        return _class_backing[cls]
    except KeyError:
        pass
    except TypeError:
        return None
    found: tuple[str | None, str] | None = None
    for klass in getattr(cls, "__mro__", ()):
        module = getattr(klass, "__module__", None)
        entry = _BACKING_PACKAGES.get(module.partition(".")[0]) if isinstance(module, str) else None
        if entry is not None:
            if entry[0] == "openai" and klass.__name__.startswith("Azure"):
                entry = ("openai", sc.PROVIDER_AZURE_OPENAI)
            found = entry
            break
    try:
        _class_backing[cls] = found
    except TypeError:
        pass
    return found


def model_backing(cls: type | None, serialized: Mapping[str, Any] | None) -> tuple[str | None, str]:
    """The live model's class ancestry when known, else its serialized id."""
    found = class_backing(cls) if cls is not None else None
    return found if found is not None else backing(class_path(serialized))


def is_instrumented(instrumentation: str | None) -> bool:
    """Whether our instrumentation of that SDK is on, without importing any provider SDK.

    An instrumentor that was never imported was never instrumented; instrumentors are singletons
    (BaseInstrumentor), so constructing one returns the instance that holds the state.
    """
    if instrumentation is None:
        return False
    from .._kit.registry import REGISTRY

    entry = REGISTRY.get(instrumentation)
    if entry is None:
        return False
    module = sys.modules.get(entry[0])
    cls = getattr(module, entry[1], None) if module is not None else None
    if cls is None:
        return False
    return bool(cls().is_instrumented_by_opentelemetry)


# LangChain's ``create_agent`` (langchain >= 1.0) compiles its graph with this metadata, which every
# child run inherits; ``lc_agent_name`` is set when the agent is given a name.
_CREATE_AGENT_INTEGRATION: Final = "langchain_create_agent"


def agent_marker(metadata: Mapping[str, Any] | None) -> tuple[str, str | None] | None:
    """The create_agent marker of a run's metadata (with the agent's name), or None."""
    if not isinstance(metadata, Mapping) or metadata.get("ls_integration") != _CREATE_AGENT_INTEGRATION:
        return None
    name = metadata.get("lc_agent_name")
    return _CREATE_AGENT_INTEGRATION, name if isinstance(name, str) else None


def is_graph_node(name: str, tags: Sequence[str] | None, metadata: Mapping[str, Any] | None) -> bool:
    """Whether a chain run is a LangGraph node: LangGraph tags it ``graph:step:N`` and names the
    node in ``langgraph_node`` (children of the node inherit the metadata, not the name and tag)."""
    if not isinstance(metadata, Mapping) or metadata.get("langgraph_node") != name:
        return False
    return any(isinstance(t, str) and t.startswith("graph:step:") for t in tags or ())


def run_name(serialized: Mapping[str, Any] | None, kwargs: Mapping[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if isinstance(serialized, Mapping):
        name = serialized.get("name")
        if isinstance(name, str) and name:
            return name
    path = class_path(serialized)
    return path[-1] if path else default


def llm_call(
    serialized: Mapping[str, Any] | None,
    kwargs: Mapping[str, Any],
    metadata: Mapping[str, Any] | None,
    provider: str,
    *,
    chat: bool,
) -> LLMCall:
    """The request part of a LangChain model run."""
    params = kwargs.get("invocation_params")
    params = params if isinstance(params, Mapping) else {}
    meta = metadata or {}
    call = LLMCall(
        operation=sc.OP_CHAT if chat else sc.OP_TEXT_COMPLETION,
        provider=provider,
        # NIM through LangChain (ChatNVIDIA) has no instrumented SDK underneath: this run is the
        # NIM call's only record, so it carries NIM's gen_ai.system, as NIM through openai does.
        system=None
        if provider == sc.PROVIDER_NVIDIA_NIM
        else sc.GEN_AI_SYSTEM_BY_PROVIDER[sc.PROVIDER_LANGCHAIN],
    )
    model = next((params[k] for k in _INVOCATION_MODEL_KEYS if isinstance(params.get(k), str)), None)
    if model is None and isinstance(meta.get("ls_model_name"), str):
        model = meta["ls_model_name"]
    call.request_model = model
    call.temperature = _number(params.get("temperature", meta.get("ls_temperature")))
    max_tokens = params.get("max_tokens", params.get("max_completion_tokens", meta.get("ls_max_tokens")))
    call.max_tokens = max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None
    call.top_p = _number(params.get("top_p"))
    stop = params.get("stop", meta.get("ls_stop"))
    if isinstance(stop, str):
        call.stop_sequences = [stop]
    elif isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        call.stop_sequences = list(stop)
    call.stream = bool(params.get("stream") or params.get("streaming"))
    return call


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def messages(batch: Any) -> list[Message]:
    """``on_chat_model_start``'s ``messages`` (one list per prompt; a run has one) -> Messages."""
    if not isinstance(batch, (list, tuple)) or not batch:
        return []
    first = batch[0]
    return [message(m) for m in first] if isinstance(first, (list, tuple)) else []


def message(m: Any) -> Message:
    kind = getattr(m, "type", None)
    role = _ROLES.get(kind, "user") if isinstance(kind, str) else "user"
    if kind == "chat" and isinstance(getattr(m, "role", None), str):
        role = m.role
    out = Message(role=role, content=getattr(m, "content", None))
    calls = tool_calls(getattr(m, "tool_calls", None))
    if calls:
        out.tool_calls = calls
    tool_call_id = getattr(m, "tool_call_id", None)
    if isinstance(tool_call_id, str):
        out.tool_call_id = tool_call_id
    name = getattr(m, "name", None)
    if isinstance(name, str) and name:
        out.name = name
    return out


def tool_calls(calls: Any) -> list[ToolCall] | None:
    if not isinstance(calls, (list, tuple)) or not calls:
        return None
    out: list[ToolCall] = []
    for c in calls:
        if isinstance(c, Mapping):
            args = c.get("args")
            out.append(
                ToolCall(
                    name=c.get("name"),
                    arguments=_json.dumps(args, default=str) if isinstance(args, Mapping) else args,
                    id=c.get("id"),
                )
            )
    return out or None


def prompts(texts: Any) -> list[Message]:
    if not isinstance(texts, (list, tuple)) or not texts:
        return []
    return [Message(role="user", content=texts[0])] if isinstance(texts[0], str) else []


def fill_result(call: LLMCall, result: Any) -> None:
    """Generations -> choices; usage and response model from llm_output or the messages."""
    generations = getattr(result, "generations", None) or []
    index = 0
    usage: Usage | None = None
    for group in generations:
        for generation in group or ():
            msg = getattr(generation, "message", None)
            info = getattr(generation, "generation_info", None) or {}
            meta = getattr(msg, "response_metadata", None) or {}
            finish = info.get("finish_reason") or meta.get("finish_reason") or meta.get("stop_reason")
            choice = Choice(index=index, finish_reason=finish if isinstance(finish, str) else None)
            if msg is not None:
                choice.content = getattr(msg, "content", None)
                choice.tool_calls = tool_calls(getattr(msg, "tool_calls", None))
                usage = usage or usage_of(getattr(msg, "usage_metadata", None))
                model = meta.get("model_name") or meta.get("model")
                if call.response_model is None and isinstance(model, str):
                    call.response_model = model
                if call.response_id is None and isinstance(meta.get("id"), str):
                    call.response_id = meta["id"]
            else:
                choice.content = getattr(generation, "text", None)
            call.choices.append(choice)
            index += 1
    output = getattr(result, "llm_output", None)
    if isinstance(output, Mapping):
        usage = usage or usage_of(output.get("token_usage") or output.get("usage"))
        model = output.get("model_name") or output.get("model")
        if call.response_model is None and isinstance(model, str):
            call.response_model = model
    call.usage = usage


def usage_of(data: Any) -> Usage | None:
    """LangChain ``usage_metadata`` (input/output_tokens) or OpenAI-style token_usage."""
    if not isinstance(data, Mapping):
        return None

    def count(*keys: str) -> int | None:
        for key in keys:
            value = data.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    usage = Usage(
        input_tokens=count("input_tokens", "prompt_tokens"),
        output_tokens=count("output_tokens", "completion_tokens"),
        total_tokens=count("total_tokens"),
    )
    inputs = data.get("input_token_details")
    if isinstance(inputs, Mapping) and isinstance(inputs.get("cache_read"), int):
        usage.cache_read_input_tokens = inputs["cache_read"]
    outputs = data.get("output_token_details")
    if isinstance(outputs, Mapping) and isinstance(outputs.get("reasoning"), int):
        usage.reasoning_output_tokens = outputs["reasoning"]
    if usage.input_tokens is None and usage.output_tokens is None:
        return None
    return usage


def result_text(result: Any) -> list[Any]:
    """The generated contents of an LLMResult (a task step's output when a provider span has them)."""
    out: list[Any] = []
    for group in getattr(result, "generations", None) or []:
        for generation in group or ():
            msg = getattr(generation, "message", None)
            out.append(
                getattr(msg, "content", None) if msg is not None else getattr(generation, "text", None)
            )
    return out


_MAX_DEPTH: Final = 12


def plain(value: Any, depth: int = 0) -> Any:
    """A JSON-friendly view of chain inputs/outputs, documents and messages (content only).

    The ContentPolicy masks and caps the strings afterwards; this only picks what to show.
    """
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if depth >= _MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, Mapping):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in value]
    page = getattr(value, "page_content", None)
    if isinstance(page, str):  # Document
        meta = getattr(value, "metadata", None)
        return {"page_content": page, "metadata": plain(meta, depth + 1) if isinstance(meta, Mapping) else {}}
    kind = getattr(value, "type", None)
    if isinstance(kind, str) and hasattr(value, "content"):  # BaseMessage
        return {"role": _ROLES.get(kind, kind), "content": plain(value.content, depth + 1)}
    to_string = getattr(value, "to_string", None)  # PromptValue
    if callable(to_string):
        try:
            return str(to_string())
        except Exception:
            pass
    return str(value)
