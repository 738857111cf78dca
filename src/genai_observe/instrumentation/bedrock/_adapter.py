"""Reads ``bedrock-runtime`` requests and responses into the neutral :class:`LLMCall`.

botocore hands us plain dicts (the API parameters, the parsed response), and InvokeModel bodies
are each model family's own JSON; one reader per family turns them into the record. Nothing here
imports botocore.

Conventions (see docs/bedrock.md):

* ``gen_ai.request.model``: the foundation model id. Cross-region inference profile ids lose their
  geography prefix (``us.anthropic.claude-...`` -> ``anthropic.claude-...``); ARNs of foundation
  models and system inference profiles resolve to that id; ARNs of opaque resources
  (provisioned/imported/custom models, application inference profiles, prompt routers, SageMaker
  endpoints) become their ``type/id`` resource part. The id as given goes to ``aws.bedrock.model_id``
  when it differs.
* ``Usage.input_tokens`` includes cache reads and writes: Bedrock reports input tokens without them
  (Converse ``inputTokens``, Anthropic ``input_tokens``, the token-count headers), so they are added.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..._core import safe_json as _json
from ..._core import semconv as sc
from ..._core.diagnostics import report_internal_error
from ..._core.record import Choice, LLMCall, Message, ToolCall, Usage, token_count
from .._kit.endpoints import host_port

AWS_BEDROCK_MODEL_ID: Final = sc.AWS_BEDROCK_MODEL_ID
AWS_REQUEST_ID: Final = sc.AWS_REQUEST_ID

SERVICE: Final = "bedrock-runtime"
INVOKE: Final = "InvokeModel"
INVOKE_STREAM: Final = "InvokeModelWithResponseStream"
CONVERSE: Final = "Converse"
CONVERSE_STREAM: Final = "ConverseStream"
OPERATIONS: Final = frozenset({INVOKE, INVOKE_STREAM, CONVERSE, CONVERSE_STREAM})

# Bodies larger than this are neither parsed (request) nor buffered for telemetry (response).
MAX_BODY_BYTES: Final = 32 * 1024 * 1024

INTERVENED: Final = "INTERVENED"
NONE: Final = "NONE"
# Guardrail assessment policy -> gen_ai.guardrail.type
_POLICY_TYPES: Final = (
    ("contentPolicy", "content"),
    ("topicPolicy", "topic"),
    ("wordPolicy", "word"),
    ("sensitiveInformationPolicy", "sensitive_information"),
    ("contextualGroundingPolicy", "contextual_grounding"),
)

# --- small readers ---------------------------------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _num(value: Any) -> int | float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    """Token counts arrive as ints, floats (Titan: ``28.0``) or header strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _str(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            return value
    return None


def _stops(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    items = [str(v) for v in _list(value) if isinstance(v, str)]
    return items or None


# --- the client: server address and port ------------------------------------------------------------


def client_endpoint(client: Any) -> tuple[str | None, int | None]:
    try:
        url = client.meta.endpoint_url
    except Exception:
        return None, None
    return host_port(url) if isinstance(url, str) else (None, None)


# --- model ids ---------------------------------------------------------------------------------------

# A cross-region inference profile id: a geography tag before a "vendor.model" id.
_GEO_PREFIX: Final = re.compile(r"^[a-z]{2,6}(?:-gov)?\.(?=[a-z0-9-]+\.)")


@dataclass(frozen=True, slots=True)
class ModelRef:
    given: str
    model: str  # gen_ai.request.model
    foundation: bool  # names one foundation model, which is then also the model that answered

    @property
    def vendor(self) -> str:
        return self.model.split(".", 1)[0] if self.foundation else ""


@functools.lru_cache(maxsize=256)
def resolve_model(model_id: str) -> ModelRef:
    """The rule of docs/bedrock.md#model-ids (bounded cache: model ids repeat)."""
    if model_id.startswith("arn:"):
        parts = model_id.split(":", 5)
        if len(parts) < 6 or not parts[5]:
            return ModelRef(model_id, model_id, False)
        resource = parts[5]
        kind, slash, name = resource.partition("/")
        if slash and name and kind == "foundation-model":
            return ModelRef(model_id, name, True)
        if slash and name and kind == "inference-profile":
            return ModelRef(model_id, _GEO_PREFIX.sub("", name), True)
        return ModelRef(model_id, resource, False)
    return ModelRef(model_id, _GEO_PREFIX.sub("", model_id), True)


def guardrail_id(identifier: str) -> str:
    """A guardrail ARN names the guardrail after ``guardrail/``; plain ids stay as they are."""
    if identifier.startswith("arn:") and "guardrail/" in identifier:
        return identifier.rsplit("guardrail/", 1)[-1] or identifier
    return identifier


# --- model families (InvokeModel bodies) ----------------------------------------------------------------

ANTHROPIC: Final = "anthropic"  # messages API
ANTHROPIC_TEXT: Final = "anthropic_text"  # legacy text completions
TITAN: Final = "titan"
TITAN_EMBED: Final = "titan_embed"
NOVA: Final = "nova"
META: Final = "meta"
COHERE: Final = "cohere"  # Command (generate)
COHERE_CHAT: Final = "cohere_chat"  # Command R / R+
COHERE_EMBED: Final = "cohere_embed"
MISTRAL: Final = "mistral"  # prompt API
AI21_J2: Final = "ai21_j2"  # Jurassic-2
OPENAI_CHAT: Final = "openai_chat"  # OpenAI-style chat: Mistral Large chat, AI21 Jamba, gpt-oss, imported
OPENAI_TEXT: Final = "openai_text"  # OpenAI-style text completion: DeepSeek, imported models
MEDIA: Final = "media"  # image / video generation: no text to read
UNKNOWN: Final = "unknown"

_MEDIA_PREFIXES: Final = (
    "stability.",
    "amazon.titan-image",
    "amazon.nova-canvas",
    "amazon.nova-reel",
    "luma.",
)


def family_of(ref: ModelRef, body: Mapping[str, Any]) -> str:
    """The family from the model id; for opaque ids (ARNs of custom/imported models) from the body."""
    model = ref.model.lower()
    vendor = ref.vendor.lower()
    if model.startswith(_MEDIA_PREFIXES):
        return MEDIA
    if vendor == "anthropic":
        return ANTHROPIC if "messages" in body else ANTHROPIC_TEXT
    if vendor == "amazon":
        if model.startswith("amazon.titan-embed"):
            return TITAN_EMBED
        if model.startswith("amazon.nova"):
            return NOVA
        if model.startswith("amazon.titan"):
            return TITAN
    if vendor == "meta":
        return META
    if vendor == "cohere":
        if "embed" in model:
            return COHERE_EMBED
        return COHERE_CHAT if "message" in body else COHERE
    if vendor == "mistral":
        return OPENAI_CHAT if "messages" in body else MISTRAL
    if vendor == "ai21":
        return OPENAI_CHAT if "messages" in body else AI21_J2
    return sniff_family(body)


def sniff_family(body: Mapping[str, Any]) -> str:
    if "anthropic_version" in body:
        return ANTHROPIC if "messages" in body else ANTHROPIC_TEXT
    if "schemaVersion" in body or ("messages" in body and "inferenceConfig" in body):
        return NOVA
    if "messages" in body:
        return OPENAI_CHAT
    if "inputText" in body:
        return TITAN if "textGenerationConfig" in body or "dimensions" not in body else TITAN_EMBED
    if "texts" in body:
        return COHERE_EMBED
    if "message" in body:
        return COHERE_CHAT
    if "max_gen_len" in body:
        return META
    if "prompt" in body:
        return OPENAI_TEXT
    return UNKNOWN


_OPERATION_BY_FAMILY: Final = {
    ANTHROPIC: sc.OP_CHAT,
    ANTHROPIC_TEXT: sc.OP_TEXT_COMPLETION,
    TITAN: sc.OP_TEXT_COMPLETION,
    TITAN_EMBED: sc.OP_EMBEDDINGS,
    NOVA: sc.OP_CHAT,
    META: sc.OP_TEXT_COMPLETION,
    COHERE: sc.OP_TEXT_COMPLETION,
    COHERE_CHAT: sc.OP_CHAT,
    COHERE_EMBED: sc.OP_EMBEDDINGS,
    MISTRAL: sc.OP_TEXT_COMPLETION,
    AI21_J2: sc.OP_TEXT_COMPLETION,
    OPENAI_CHAT: sc.OP_CHAT,
    OPENAI_TEXT: sc.OP_TEXT_COMPLETION,
    MEDIA: sc.OP_GENERATE_CONTENT,
    UNKNOWN: sc.OP_CHAT,
}


# --- content: Bedrock blocks to neutral parts ---------------------------------------------------------

_MEDIA_BLOCKS: Final = ("image", "document", "video", "audio")


def _block_part(block: Mapping[str, Any]) -> dict[str, Any] | None:
    """A Converse/Nova content block as a typed part; binary sources are never copied."""
    text = block.get("text")
    if isinstance(text, str):
        return {"type": "text", "text": text}
    guard = _map(block.get("guardContent"))
    if guard:
        guarded = _map(guard.get("text")).get("text")
        return {"type": "text", "text": guarded} if isinstance(guarded, str) else {"type": "guard_content"}
    for kind in _MEDIA_BLOCKS:
        if kind in block:
            return {"type": kind}
    reasoning = _map(block.get("reasoningContent"))
    if reasoning:
        said = _map(reasoning.get("reasoningText")).get("text")
        return {"type": "reasoning", "text": said if isinstance(said, str) else ""}
    citations = _map(block.get("citationsContent"))
    if citations:
        texts = [_map(c).get("text") for c in _list(citations.get("content"))]
        return {"type": "text", "text": "".join(t for t in texts if isinstance(t, str))}
    if "cachePoint" in block:
        return None
    other = next(iter(block), None)  # a block type this version does not know: its name only
    return {"type": str(other)} if other is not None else None


def _simplify(parts: list[Any]) -> Any:
    """One text part becomes a plain string; otherwise the list of parts."""
    if not parts:
        return None
    if len(parts) == 1 and isinstance(parts[0], Mapping) and parts[0].get("type") == "text":
        return parts[0].get("text")
    return parts


def _tool_result_content(content: Any) -> Any:
    """A tool result's content: one JSON document or text as itself, several blocks as parts."""
    items = [_map(item) for item in _list(content)]
    if len(items) == 1 and "json" in items[0]:
        return items[0]["json"]
    parts: list[Any] = []
    for m in items:
        if "json" in m:
            parts.append({"type": "json", "json": m["json"]})
            continue
        part = _block_part(m)
        if part is not None:
            parts.append(part)
    return _simplify(parts)


def converse_messages(messages: Any) -> list[Message]:
    """Converse (and Nova InvokeModel) messages; tool results become separate ``tool`` messages."""
    out: list[Message] = []
    for raw in _list(messages):
        m = _map(raw)
        role = str(m.get("role") or "user")
        parts: list[Any] = []
        tool_calls: list[ToolCall] = []
        results: list[Message] = []
        content = m.get("content")
        if isinstance(content, str):
            parts.append({"type": "text", "text": content})
        for block in _list(content):
            b = _map(block)
            use = _map(b.get("toolUse"))
            if use:
                tool_calls.append(
                    ToolCall(
                        name=_str(use.get("name")), arguments=use.get("input"), id=_str(use.get("toolUseId"))
                    )
                )
                continue
            result = _map(b.get("toolResult"))
            if result:
                results.append(
                    Message(
                        role="tool",
                        content=_tool_result_content(result.get("content")),
                        tool_call_id=_str(result.get("toolUseId")),
                    )
                )
                continue
            part = _block_part(b)
            if part is not None:
                parts.append(part)
        out.extend(results)
        if parts or tool_calls or not results:
            out.append(Message(role=role, content=_simplify(parts), tool_calls=tool_calls or None))
    return out


def _system_blocks(system: Any) -> list[Any] | None:
    if isinstance(system, str):
        return [system] if system else None
    out: list[Any] = []
    for block in _list(system):
        m = _map(block)
        if m.get("type") == "text" and isinstance(m.get("text"), str):  # Anthropic
            out.append(m["text"])
            continue
        part = _block_part(m)
        if part is not None:
            out.append(part.get("text") if part.get("type") == "text" else part)
    return out or None


def _tool_spec_definitions(tool_config: Any) -> list[Mapping[str, Any]] | None:
    out: list[Mapping[str, Any]] = []
    for tool in _list(_map(tool_config).get("tools")):
        spec = _map(_map(tool).get("toolSpec"))
        if not spec:
            continue
        entry: dict[str, Any] = {}
        if _str(spec.get("name")):
            entry["name"] = spec["name"]
        if isinstance(spec.get("description"), str):
            entry["description"] = spec["description"]
        schema = _map(spec.get("inputSchema")).get("json")
        if schema is not None:
            entry["parameters"] = schema
        out.append(entry)
    return out or None


def _function_definitions(tools: Any, parameters_key: str = "parameters") -> list[Mapping[str, Any]] | None:
    """OpenAI-style ``{"type": "function", "function": {...}}`` or flat ``{"name", ...}`` tools."""
    out: list[Mapping[str, Any]] = []
    for tool in _list(tools):
        t = _map(tool)
        fn = _map(t.get("function")) or t
        entry: dict[str, Any] = {}
        for key in ("name", "description"):
            if isinstance(fn.get(key), str):
                entry[key] = fn[key]
        schema = _first(fn, parameters_key, "parameters", "input_schema", "parameter_definitions")
        if schema is not None:
            entry["parameters"] = schema
        if not entry.get("name") and isinstance(t.get("type"), str):
            entry["name"] = t["type"]
        out.append(entry)
    return out or None


def _openai_messages(messages: Any) -> list[Message]:
    out: list[Message] = []
    for raw in _list(messages):
        m = _map(raw)
        calls = _openai_tool_calls(m.get("tool_calls"))
        out.append(
            Message(
                role=str(m.get("role") or "user"),
                content=m.get("content"),
                tool_calls=calls or None,
                tool_call_id=_str(m.get("tool_call_id")),
                name=_str(m.get("name")),
            )
        )
    return out


def _anthropic_messages(messages: Any) -> list[Message]:
    out: list[Message] = []
    for raw in _list(messages):
        m = _map(raw)
        role = str(m.get("role") or "user")
        content = m.get("content")
        if isinstance(content, str):
            out.append(Message(role=role, content=content))
            continue
        parts: list[Any] = []
        calls: list[ToolCall] = []
        results: list[Message] = []
        for block in _list(content):
            b = _map(block)
            kind = b.get("type")
            if kind == "tool_use":
                calls.append(
                    ToolCall(name=_str(b.get("name")), arguments=b.get("input"), id=_str(b.get("id")))
                )
            elif kind == "tool_result":
                inner = b.get("content")
                results.append(
                    Message(
                        role="tool",
                        content=inner if isinstance(inner, str) else _simplify(_anthropic_parts(inner)),
                        tool_call_id=_str(b.get("tool_use_id")),
                    )
                )
            else:
                parts.extend(_anthropic_parts([b]))
        out.extend(results)
        if parts or calls or not results:
            out.append(Message(role=role, content=_simplify(parts), tool_calls=calls or None))
    return out


def _anthropic_parts(blocks: Any) -> list[Any]:
    parts: list[Any] = []
    for block in _list(blocks):
        b = _map(block)
        kind = b.get("type")
        if kind == "text" and isinstance(b.get("text"), str):
            parts.append({"type": "text", "text": b["text"]})
        elif kind in ("thinking", "redacted_thinking"):
            thinking = b.get("thinking")
            parts.append({"type": "reasoning", "text": thinking if isinstance(thinking, str) else ""})
        elif isinstance(kind, str):
            parts.append({"type": kind})  # image, document, ...: never their (base64) source
    return parts


_COHERE_ROLES: Final = {"USER": "user", "CHATBOT": "assistant", "SYSTEM": "system", "TOOL": "tool"}


# --- request ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Plan:
    """What the request said, kept for reading the response."""

    operation: str
    ref: ModelRef
    family: str = UNKNOWN


def new_call(
    operation: str, params: Mapping[str, Any], address: str | None, port: int | None
) -> tuple[LLMCall, Plan]:
    """The record and plan for one call; never raises for odd input (the call still gets a span)."""
    model_id = params.get("modelId")
    ref = resolve_model(model_id) if isinstance(model_id, str) and model_id else ModelRef("", "", False)
    stream = operation in (INVOKE_STREAM, CONVERSE_STREAM)
    call = LLMCall(
        operation=sc.OP_CHAT,
        provider=sc.PROVIDER_AWS_BEDROCK,
        request_model=ref.model or None,
        server_address=address,
        server_port=port,
        stream=stream,
    )
    if ref.given and ref.given != ref.model:
        call.request_attributes[AWS_BEDROCK_MODEL_ID] = ref.given
    plan = Plan(operation, ref)
    try:
        if operation in (CONVERSE, CONVERSE_STREAM):
            _converse_request(call, params)
        else:
            _invoke_request(call, plan, params)
    except Exception as exc:
        report_internal_error("bedrock.request", exc)
    return call, plan


def _guardrail_request(call: LLMCall, identifier: Any, version: Any) -> None:
    if not isinstance(identifier, str) or not identifier:
        return
    gid = guardrail_id(identifier)
    call.guardrail_id = gid
    call.request_attributes[sc.AWS_BEDROCK_GUARDRAIL_ID] = gid
    if isinstance(version, str) and version:
        call.request_attributes[sc.AWS_BEDROCK_GUARDRAIL_VERSION] = version


def _converse_request(call: LLMCall, params: Mapping[str, Any]) -> None:
    config = _map(params.get("inferenceConfig"))
    max_tokens = _int(config.get("maxTokens"))
    call.max_tokens = max_tokens
    call.temperature = _num(config.get("temperature"))
    call.top_p = _num(config.get("topP"))
    call.stop_sequences = _stops(config.get("stopSequences"))
    extra = _map(params.get("additionalModelRequestFields"))
    call.top_k = _num(_first(extra, "top_k", "topK")) or _num(_map(extra.get("inferenceConfig")).get("topK"))
    output = _map(params.get("outputConfig"))
    text_format = _map(output.get("textFormat"))
    if text_format:
        call.output_type = "json" if "json" in str(text_format.get("type", "")).lower() else "text"
    call.system_instructions = _system_blocks(params.get("system"))
    call.input_messages = converse_messages(params.get("messages"))
    call.tool_definitions = _tool_spec_definitions(params.get("toolConfig"))
    guard = _map(params.get("guardrailConfig"))
    _guardrail_request(call, guard.get("guardrailIdentifier"), guard.get("guardrailVersion"))


def load_json(raw: Any) -> Any:
    """The JSON of an InvokeModel body given as bytes, str or a seekable file (position restored)."""
    data: Any = None
    if isinstance(raw, (bytes, bytearray, memoryview)):
        data = bytes(raw)
    elif isinstance(raw, str):
        data = raw
    elif callable(getattr(raw, "read", None)) and callable(getattr(raw, "seekable", None)) and raw.seekable():
        position = raw.tell()
        try:
            data = raw.read(MAX_BODY_BYTES + 1)
        finally:
            raw.seek(position)
    if data is None or len(data) > MAX_BODY_BYTES:
        return None
    return _json.loads(data)


def _invoke_request(call: LLMCall, plan: Plan, params: Mapping[str, Any]) -> None:
    _guardrail_request(call, params.get("guardrailIdentifier"), params.get("guardrailVersion"))
    body = _map(load_json(params.get("body")))
    plan.family = family_of(plan.ref, body)
    call.operation = _OPERATION_BY_FAMILY.get(plan.family, sc.OP_CHAT)
    reader = _REQUEST_READERS.get(plan.family)
    if reader is not None and body:
        reader(call, body)


def _sampling(
    call: LLMCall,
    body: Mapping[str, Any],
    *,
    max_tokens: tuple[str, ...],
    top_p: tuple[str, ...] = ("top_p",),
    top_k: tuple[str, ...] = ("top_k",),
    stop: tuple[str, ...] = ("stop_sequences",),
) -> None:
    call.max_tokens = _int(_first(body, *max_tokens))
    call.temperature = _num(body.get("temperature"))
    call.top_p = _num(_first(body, *top_p))
    call.top_k = _num(_first(body, *top_k))
    call.stop_sequences = _stops(_first(body, *stop))


def _prompt_message(call: LLMCall, prompt: Any) -> None:
    if isinstance(prompt, str):
        call.input_messages = [Message(role="user", content=prompt)]


def _req_anthropic(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(call, body, max_tokens=("max_tokens",))
    call.system_instructions = _system_blocks(body.get("system"))
    call.input_messages = _anthropic_messages(body.get("messages"))
    call.tool_definitions = _function_definitions(body.get("tools"), "input_schema")


def _req_anthropic_text(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(call, body, max_tokens=("max_tokens_to_sample",))
    _prompt_message(call, body.get("prompt"))


def _req_titan(call: LLMCall, body: Mapping[str, Any]) -> None:
    config = _map(body.get("textGenerationConfig"))
    _sampling(call, config, max_tokens=("maxTokenCount",), top_p=("topP",), top_k=(), stop=("stopSequences",))
    _prompt_message(call, body.get("inputText"))


def _req_titan_embed(call: LLMCall, body: Mapping[str, Any]) -> None:
    _prompt_message(call, body.get("inputText"))
    formats = _stops(body.get("embeddingTypes"))
    call.encoding_formats = formats


def _req_nova(call: LLMCall, body: Mapping[str, Any]) -> None:
    config = _map(body.get("inferenceConfig"))
    _sampling(
        call,
        config,
        max_tokens=("max_new_tokens", "maxTokens"),
        top_p=("topP", "top_p"),
        top_k=("topK", "top_k"),
        stop=("stopSequences",),
    )
    call.system_instructions = _system_blocks(body.get("system"))
    call.input_messages = converse_messages(body.get("messages"))
    call.tool_definitions = _tool_spec_definitions(body.get("toolConfig"))


def _req_meta(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(call, body, max_tokens=("max_gen_len",), top_k=())
    _prompt_message(call, body.get("prompt"))


def _cohere_common(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(call, body, max_tokens=("max_tokens",), top_p=("p",), top_k=("k",))
    call.frequency_penalty = _num(body.get("frequency_penalty"))
    call.presence_penalty = _num(body.get("presence_penalty"))
    seed = _int(body.get("seed"))
    call.seed = seed


def _req_cohere(call: LLMCall, body: Mapping[str, Any]) -> None:
    _cohere_common(call, body)
    call.choice_count = _int(body.get("num_generations"))
    _prompt_message(call, body.get("prompt"))


def _req_cohere_chat(call: LLMCall, body: Mapping[str, Any]) -> None:
    _cohere_common(call, body)
    preamble = body.get("preamble")
    call.system_instructions = [preamble] if isinstance(preamble, str) and preamble else None
    history = [
        Message(
            role=_COHERE_ROLES.get(str(_map(m).get("role", "")).upper(), "user"),
            content=_map(m).get("message"),
        )
        for m in _list(body.get("chat_history"))
    ]
    message = body.get("message")
    if isinstance(message, str):
        history.append(Message(role="user", content=message))
    call.input_messages = history
    call.tool_definitions = _function_definitions(body.get("tools"), "parameter_definitions")


def _req_cohere_embed(call: LLMCall, body: Mapping[str, Any]) -> None:
    call.input_messages = [
        Message(role="user", content=t) for t in _list(body.get("texts")) if isinstance(t, str)
    ]
    call.encoding_formats = _stops(body.get("embedding_types"))


def _req_mistral(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(call, body, max_tokens=("max_tokens",), stop=("stop",))
    _prompt_message(call, body.get("prompt"))


def _req_ai21_j2(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(call, body, max_tokens=("maxTokens",), top_p=("topP",), top_k=(), stop=("stopSequences",))
    call.choice_count = _int(body.get("numResults"))
    _prompt_message(call, body.get("prompt"))


def _req_openai_chat(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(call, body, max_tokens=("max_completion_tokens", "max_tokens"), stop=("stop",))
    call.frequency_penalty = _num(body.get("frequency_penalty"))
    call.presence_penalty = _num(body.get("presence_penalty"))
    call.seed = _int(_first(body, "seed", "random_seed"))
    call.choice_count = _int(body.get("n"))
    call.input_messages = _openai_messages(body.get("messages"))
    call.tool_definitions = _function_definitions(body.get("tools"))


def _req_openai_text(call: LLMCall, body: Mapping[str, Any]) -> None:
    _sampling(
        call, body, max_tokens=("max_tokens", "max_new_tokens"), top_p=("top_p", "topP"), stop=("stop",)
    )
    _prompt_message(call, body.get("prompt"))


_REQUEST_READERS: Final[dict[str, Callable[[LLMCall, Mapping[str, Any]], None]]] = {
    ANTHROPIC: _req_anthropic,
    ANTHROPIC_TEXT: _req_anthropic_text,
    TITAN: _req_titan,
    TITAN_EMBED: _req_titan_embed,
    NOVA: _req_nova,
    META: _req_meta,
    COHERE: _req_cohere,
    COHERE_CHAT: _req_cohere_chat,
    COHERE_EMBED: _req_cohere_embed,
    MISTRAL: _req_mistral,
    AI21_J2: _req_ai21_j2,
    OPENAI_CHAT: _req_openai_chat,
    OPENAI_TEXT: _req_openai_text,
}


# --- tokens --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Tokens:
    """Token counts as Bedrock reports them: ``input`` without cache reads and writes."""

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None

    def merge(self, other: Tokens) -> Tokens:
        """Fields of ``self`` win; missing ones come from ``other``."""
        return Tokens(
            self.input if self.input is not None else other.input,
            self.output if self.output is not None else other.output,
            self.cache_read if self.cache_read is not None else other.cache_read,
            self.cache_write if self.cache_write is not None else other.cache_write,
        )

    def usage(self) -> Usage | None:
        if (
            self.input is None
            and self.output is None
            and self.cache_read is None
            and self.cache_write is None
        ):
            return None
        # Checked before adding up: a bogus count must not hide inside a plausible sum.
        fresh, output = token_count(self.input), token_count(self.output)
        read, write = token_count(self.cache_read), token_count(self.cache_write)
        total_input = None
        if fresh is not None:
            total_input = fresh + (read or 0) + (write or 0)
        total = total_input + output if total_input is not None and output is not None else None
        return Usage(
            input_tokens=total_input,
            output_tokens=output,
            cache_read_input_tokens=read,
            cache_creation_input_tokens=write,
            total_tokens=total,
        )


_HEADER_TOKENS: Final = (
    "x-amzn-bedrock-input-token-count",
    "x-amzn-bedrock-output-token-count",
    "x-amzn-bedrock-cache-read-input-token-count",
    "x-amzn-bedrock-cache-write-input-token-count",
)


def _headers(result: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(_map(result.get("ResponseMetadata")).get("HTTPHeaders"))


def header_tokens(result: Mapping[str, Any]) -> Tokens:
    """InvokeModel: the token-count headers Bedrock sends for every model (what AWS bills)."""
    h = _headers(result)
    return Tokens(*(_int(h.get(name)) for name in _HEADER_TOKENS))


def metrics_tokens(metrics: Mapping[str, Any]) -> Tokens:
    """``amazon-bedrock-invocationMetrics`` of the last stream chunk."""
    return Tokens(
        _int(metrics.get("inputTokenCount")),
        _int(metrics.get("outputTokenCount")),
        _int(metrics.get("cacheReadInputTokenCount")),
        _int(metrics.get("cacheWriteInputTokenCount")),
    )


def converse_tokens(usage: Mapping[str, Any]) -> Tokens:
    return Tokens(
        _int(usage.get("inputTokens")),
        _int(usage.get("outputTokens")),
        _int(_first(usage, "cacheReadInputTokens", "cacheReadInputTokenCount")),
        _int(_first(usage, "cacheWriteInputTokens", "cacheWriteInputTokenCount")),
    )


# --- guardrails ---------------------------------------------------------------------------------------


def _assessments(trace: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(guardrail id, assessment) pairs of a guardrail trace, Converse or InvokeModel shape."""
    for key in ("inputAssessment", "input"):  # {id: assessment}
        for gid, assessment in _map(trace.get(key)).items():
            yield str(gid), _map(assessment)
    for gid, assessments in _map(trace.get("outputAssessments")).items():  # {id: [assessment]}
        for assessment in _list(assessments):
            yield str(gid), _map(assessment)
    for item in _list(trace.get("outputs")):  # [{id: assessment}]
        for gid, assessment in _map(item).items():
            yield str(gid), _map(assessment)


def _policy_acted(policy: Mapping[str, Any]) -> bool:
    """True when any finding of the policy has an action other than NONE (BLOCKED, ANONYMIZED)."""
    for findings in policy.values():
        for finding in _list(findings):
            action = _map(finding).get("action")
            if isinstance(action, str) and action and action != NONE:
                return True
    return False


def intervened_policies(trace: Mapping[str, Any]) -> tuple[list[str], str | None]:
    """(policy types that acted, in a fixed order; the first guardrail id named in the trace)."""
    acted: set[str] = set()
    first_id: str | None = None
    for gid, assessment in _assessments(trace):
        first_id = first_id or gid
        for key, kind in _POLICY_TYPES:
            if kind not in acted and _policy_acted(_map(assessment.get(key))):
                acted.add(kind)
    return [kind for _, kind in _POLICY_TYPES if kind in acted], first_id


@dataclass(slots=True)
class GuardrailSignals:
    action: str | None = None  # amazon-bedrock-guardrailAction (InvokeModel)
    trace: Mapping[str, Any] | None = None  # the "guardrail" part of the trace
    stop_reason: str | None = None  # Converse stopReason

    def note_action(self, action: Any) -> None:
        if isinstance(action, str) and action and self.action != INTERVENED:
            self.action = action


def apply_guardrail(call: LLMCall, signals: GuardrailSignals) -> None:
    """aws.bedrock.guardrail.action and the activations: only types that acted, only if it intervened."""
    types: list[str] = []
    traced_id: str | None = None
    if signals.trace:
        types, traced_id = intervened_policies(signals.trace)
    intervened = signals.action == INTERVENED or signals.stop_reason == "guardrail_intervened" or bool(types)
    if call.guardrail_id is None:
        if traced_id is None:
            return  # no guardrail in the request and none in the response
        call.guardrail_id = traced_id  # applied without being named (an enforced guardrail)
        call.response_attributes[sc.AWS_BEDROCK_GUARDRAIL_ID] = traced_id
    call.response_attributes[sc.AWS_BEDROCK_GUARDRAIL_ACTION] = INTERVENED if intervened else NONE
    if intervened and types:
        call.guardrail_activations = types


# --- response: shared -----------------------------------------------------------------------------------


def finish_common(call: LLMCall, plan: Plan, result: Any) -> None:
    """What every successful response adds: the AWS request id, the answering model."""
    request_id = _map(_map(result).get("ResponseMetadata")).get("RequestId")
    if isinstance(request_id, str) and request_id:
        call.response_attributes[AWS_REQUEST_ID] = request_id
    if call.response_model is None and plan.ref.foundation:
        call.response_model = plan.ref.model  # a foundation model id is the model that answered


def _choice_of(
    text_parts: list[str],
    finish: Any,
    calls: list[ToolCall] | None = None,
    reasoning: list[str] | None = None,
    index: int = 0,
) -> Choice:
    return Choice(
        index=index,
        content="".join(text_parts) if text_parts else None,
        finish_reason=_str(finish),
        tool_calls=calls or None,
        reasoning="".join(reasoning) if reasoning else None,
    )


def _converse_content(call: LLMCall, message: Mapping[str, Any], finish: Any) -> None:
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[str] = []
    for block in _list(message.get("content")):
        b = _map(block)
        use = _map(b.get("toolUse"))
        if use:
            calls.append(
                ToolCall(
                    name=_str(use.get("name")), arguments=use.get("input"), id=_str(use.get("toolUseId"))
                )
            )
            continue
        part = _block_part(b)
        if part is None:
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part.get("type") == "reasoning" and part.get("text"):
            reasoning.append(str(part["text"]))
    if texts or calls or reasoning or finish:
        choice = _choice_of(texts, finish, calls, reasoning)
        choice.role = str(message.get("role") or "assistant")
        call.choices.append(choice)


# --- response: Converse ---------------------------------------------------------------------------------


def converse_response(call: LLMCall, plan: Plan, result: Any) -> None:
    r = _map(result)
    stop = r.get("stopReason")
    _converse_content(call, _map(_map(r.get("output")).get("message")), stop)
    call.usage = converse_tokens(_map(r.get("usage"))).usage()
    trace = _map(r.get("trace"))
    invoked = _map(trace.get("promptRouter")).get("invokedModelId")
    if isinstance(invoked, str) and invoked:
        call.response_model = resolve_model(invoked).model
    apply_guardrail(
        call, GuardrailSignals(trace=_map(trace.get("guardrail")) or None, stop_reason=_str(stop))
    )
    finish_common(call, plan, result)


class StreamState:
    """What a stream said so far; cheap per event, text kept only when content is captured."""

    __slots__ = (
        "body_tokens",
        "finish",
        "guard",
        "keep_text",
        "metric_tokens",
        "reasoning",
        "response_id",
        "response_model",
        "role",
        "texts",
        "tools",
    )

    def __init__(self, keep_text: bool) -> None:
        self.keep_text = keep_text
        self.texts: dict[int, list[str]] = {}  # choice index -> text deltas
        self.finish: dict[int, str] = {}
        self.tools: dict[int, list[Any]] = {}  # tool index -> [id, name, [argument fragments]]
        self.reasoning: list[str] = []
        self.role = "assistant"
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.body_tokens = Tokens()  # from the model's own usage fields
        self.metric_tokens = Tokens()  # from Bedrock's invocation metrics / Converse metadata
        self.guard = GuardrailSignals()

    def text(self, delta: Any, index: int = 0) -> None:
        if isinstance(delta, str) and delta:
            parts = self.texts.get(index)
            if parts is None:
                parts = self.texts[index] = []
            if self.keep_text:
                parts.append(delta)

    def stop(self, reason: Any, index: int = 0) -> None:
        if isinstance(reason, str) and reason:
            self.finish[index] = reason

    def tool_start(self, index: int, tool_id: Any, name: Any) -> None:
        entry = self.tools.get(index)
        if entry is None:
            entry = self.tools[index] = [None, None, []]
        entry[0] = _str(tool_id) or entry[0]
        entry[1] = _str(name) or entry[1]

    def tool_arguments(self, index: int, fragment: Any) -> None:
        entry = self.tools.get(index)
        if entry is None:
            entry = self.tools[index] = [None, None, []]
        if self.keep_text and isinstance(fragment, str) and fragment:
            entry[2].append(fragment)

    def think(self, delta: Any) -> None:
        if self.keep_text and isinstance(delta, str) and delta:
            self.reasoning.append(delta)

    def fill(self, call: LLMCall, plan: Plan, result: Any) -> None:
        calls = [
            ToolCall(id=e[0], name=e[1], arguments="".join(e[2]) if e[2] else None)
            for _, e in sorted(self.tools.items())
        ]
        indexes = sorted(set(self.texts) | set(self.finish) | ({0} if calls or self.reasoning else set()))
        for index in indexes:
            choice = _choice_of(
                self.texts.get(index, []),
                self.finish.get(index),
                calls if index == 0 else None,
                self.reasoning if index == 0 else None,
                index,
            )
            choice.role = self.role
            call.choices.append(choice)
        call.response_id = self.response_id
        call.response_model = self.response_model
        call.usage = self.metric_tokens.merge(self.body_tokens).usage()
        apply_guardrail(call, self.guard)
        finish_common(call, plan, result)

    def converse_event(self, event: Any) -> None:
        """A ConverseStream event (also Nova's InvokeModel stream chunks): messageStart,
        contentBlockStart/Delta/Stop, messageStop, metadata."""
        e = _map(event)
        delta_event = e.get("contentBlockDelta")
        if delta_event is not None:
            d = _map(delta_event)
            index = _int(d.get("contentBlockIndex")) or 0
            delta = _map(d.get("delta"))
            if "text" in delta:
                self.text(delta["text"])
            elif "toolUse" in delta:
                self.tool_arguments(index, _map(delta["toolUse"]).get("input"))
            elif "reasoningContent" in delta:
                self.think(_map(delta["reasoningContent"]).get("text"))
            return
        start = _map(_map(e.get("contentBlockStart")).get("start"))
        if start:
            use = _map(start.get("toolUse"))
            if use:
                index = _int(_map(e["contentBlockStart"]).get("contentBlockIndex")) or 0
                self.tool_start(index, use.get("toolUseId"), use.get("name"))
            return
        if "messageStart" in e:
            role = _map(e["messageStart"]).get("role")
            self.role = role if isinstance(role, str) and role else self.role
        elif "messageStop" in e:
            reason = _map(e["messageStop"]).get("stopReason")
            self.stop(reason)
            self.guard.stop_reason = _str(reason)
        elif "metadata" in e:
            metadata = _map(e["metadata"])
            self.metric_tokens = converse_tokens(_map(metadata.get("usage")))
            trace = _map(metadata.get("trace"))
            guard = _map(trace.get("guardrail"))
            if guard:
                self.guard.trace = guard
            invoked = _map(trace.get("promptRouter")).get("invokedModelId")
            if isinstance(invoked, str) and invoked:
                self.response_model = resolve_model(invoked).model

    def on_event(self, event: Any) -> None:
        self.converse_event(event)


class ConverseStream(StreamState):
    """ConverseStream: botocore already parsed the events."""

    __slots__ = ()


# --- response: InvokeModel ------------------------------------------------------------------------------


def invoke_response(call: LLMCall, plan: Plan, result: Any, data: bytes | None) -> None:
    """The non-streamed body: ``data`` is what the caller read, None when incomplete or not kept."""
    r = _map(result)
    body: Mapping[str, Any] = {}
    if data:
        body = _map(_json.loads(data))
    tokens = Tokens()
    if body:
        family = plan.family if plan.family in _RESPONSE_READERS else sniff_response(body)
        if plan.family == UNKNOWN and family != UNKNOWN:
            plan.family = family
        reader = _RESPONSE_READERS.get(family)
        if reader is not None:
            tokens = reader(call, body)
    call.usage = header_tokens(r).merge(tokens).usage()
    signals = GuardrailSignals(trace=_map(_map(body.get("amazon-bedrock-trace")).get("guardrail")) or None)
    signals.note_action(body.get("amazon-bedrock-guardrailAction"))
    apply_guardrail(call, signals)
    finish_common(call, plan, result)


def sniff_response(body: Mapping[str, Any]) -> str:
    """The family of a response body, for model ids that do not tell (imported/custom models)."""
    if body.get("type") == "message":
        return ANTHROPIC
    if "completion" in body and "stop_reason" in body:
        return ANTHROPIC_TEXT
    if "results" in body:
        return TITAN
    if "embedding" in body:
        return TITAN_EMBED
    if "embeddings" in body:
        return COHERE_EMBED
    if "output" in body and "stopReason" in body:
        return NOVA
    if "generation" in body:
        return META
    if "generations" in body:
        return COHERE
    if "text" in body and ("finish_reason" in body or "response_id" in body):
        return COHERE_CHAT
    if "outputs" in body:
        return MISTRAL
    if "completions" in body:
        return AI21_J2
    if "choices" in body:
        return OPENAI_CHAT
    return UNKNOWN


def _resp_anthropic(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    call.response_id = _str(body.get("id"))
    call.response_model = _str(body.get("model"))
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[str] = []
    for block in _list(body.get("content")):
        b = _map(block)
        kind = b.get("type")
        if kind == "text" and isinstance(b.get("text"), str):
            texts.append(b["text"])
        elif kind == "tool_use":
            calls.append(ToolCall(name=_str(b.get("name")), arguments=b.get("input"), id=_str(b.get("id"))))
        elif kind == "thinking" and isinstance(b.get("thinking"), str):
            reasoning.append(b["thinking"])
    call.choices.append(_choice_of(texts, body.get("stop_reason"), calls, reasoning))
    return _anthropic_tokens(_map(body.get("usage")))


def _anthropic_tokens(u: Mapping[str, Any]) -> Tokens:
    return Tokens(
        _int(u.get("input_tokens")),
        _int(u.get("output_tokens")),
        _int(u.get("cache_read_input_tokens")),
        _int(u.get("cache_creation_input_tokens")),
    )


def _resp_anthropic_text(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    completion = body.get("completion")
    call.choices.append(
        _choice_of([completion] if isinstance(completion, str) else [], body.get("stop_reason"))
    )
    return Tokens()


def _resp_titan(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    output = 0
    counted = False
    for index, item in enumerate(_list(body.get("results"))):
        r = _map(item)
        text = r.get("outputText")
        call.choices.append(
            _choice_of([text] if isinstance(text, str) else [], r.get("completionReason"), index=index)
        )
        count = _int(r.get("tokenCount"))
        if count is not None:
            output += count
            counted = True
    return Tokens(_int(body.get("inputTextTokenCount")), output if counted else None)


def _resp_titan_embed(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    vector = body.get("embedding")
    if not isinstance(vector, list):
        by_type = _map(body.get("embeddingsByType"))
        vector = next((v for v in by_type.values() if isinstance(v, list)), None)
    if isinstance(vector, list):
        call.embedding_vector_size = len(vector)
        call.embedding_count = 1
    return Tokens(_int(body.get("inputTextTokenCount")))


def _resp_cohere_embed(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    call.response_id = _str(body.get("id"))
    vectors = body.get("embeddings")
    if isinstance(vectors, Mapping):  # embeddings_by_type: {"float": [[...]], "int8": [...]}
        vectors = next((v for v in vectors.values() if isinstance(v, list)), None)
    if isinstance(vectors, list):
        call.embedding_count = len(vectors)
        if vectors and isinstance(vectors[0], list):
            call.embedding_vector_size = len(vectors[0])
    meta = _map(_map(body.get("meta")).get("billed_units"))
    return Tokens(_int(meta.get("input_tokens")))


def _resp_nova(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    _converse_content(call, _map(_map(body.get("output")).get("message")), body.get("stopReason"))
    return converse_tokens(_map(body.get("usage")))


def _resp_meta(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    text = body.get("generation")
    call.choices.append(_choice_of([text] if isinstance(text, str) else [], body.get("stop_reason")))
    return Tokens(_int(body.get("prompt_token_count")), _int(body.get("generation_token_count")))


def _resp_cohere(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    call.response_id = _str(body.get("id"))
    for index, item in enumerate(_list(body.get("generations"))):
        g = _map(item)
        text = g.get("text")
        call.choices.append(
            _choice_of([text] if isinstance(text, str) else [], g.get("finish_reason"), index=index)
        )
    return Tokens()


def _cohere_tool_calls(items: Any) -> list[ToolCall]:
    return [
        ToolCall(name=_str(_map(tc).get("name")), arguments=_map(tc).get("parameters"))
        for tc in _list(items)
        if _map(tc)
    ]


def _resp_cohere_chat(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    call.response_id = _str(_first(body, "response_id", "generation_id"))
    text = body.get("text")
    call.choices.append(
        _choice_of(
            [text] if isinstance(text, str) and text else [],
            body.get("finish_reason"),
            _cohere_tool_calls(body.get("tool_calls")),
        )
    )
    billed = _map(_map(body.get("meta")).get("billed_units"))
    return Tokens(_int(billed.get("input_tokens")), _int(billed.get("output_tokens")))


def _resp_mistral(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    for index, item in enumerate(_list(body.get("outputs"))):
        o = _map(item)
        text = o.get("text")
        call.choices.append(
            _choice_of([text] if isinstance(text, str) else [], o.get("stop_reason"), index=index)
        )
    return Tokens()


def _resp_ai21_j2(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    call.response_id = _str(body.get("id"))
    output = 0
    for index, item in enumerate(_list(body.get("completions"))):
        c = _map(item)
        data = _map(c.get("data"))
        text = data.get("text")
        call.choices.append(
            _choice_of(
                [text] if isinstance(text, str) else [],
                _map(c.get("finishReason")).get("reason"),
                index=index,
            )
        )
        output += len(_list(data.get("tokens")))
    prompt_tokens = _list(_map(body.get("prompt")).get("tokens"))
    return Tokens(len(prompt_tokens) if prompt_tokens else None, output if call.choices else None)


def _openai_tool_calls(items: Any) -> list[ToolCall]:
    out = []
    for tc in _list(items):
        t = _map(tc)
        fn = _map(t.get("function"))
        out.append(ToolCall(name=_str(fn.get("name")), arguments=fn.get("arguments"), id=_str(t.get("id"))))
    return out


def _resp_openai(call: LLMCall, body: Mapping[str, Any]) -> Tokens:
    call.response_id = _str(body.get("id"))
    call.response_model = _str(body.get("model"))
    for position, item in enumerate(_list(body.get("choices"))):
        c = _map(item)
        message = _map(c.get("message"))
        text = message.get("content") if message else c.get("text")
        index = _int(c.get("index"))
        reasoning = message.get("reasoning_content")
        choice = _choice_of(
            [text] if isinstance(text, str) else [],
            _first(c, "finish_reason", "stop_reason"),
            _openai_tool_calls(message.get("tool_calls")),
            [reasoning] if isinstance(reasoning, str) else None,
            index=position if index is None else index,
        )
        if isinstance(message.get("role"), str):
            choice.role = message["role"]
        call.choices.append(choice)
    u = _map(body.get("usage"))
    return Tokens(_int(u.get("prompt_tokens")), _int(u.get("completion_tokens")))


_RESPONSE_READERS: Final[dict[str, Callable[[LLMCall, Mapping[str, Any]], Tokens]]] = {
    ANTHROPIC: _resp_anthropic,
    ANTHROPIC_TEXT: _resp_anthropic_text,
    TITAN: _resp_titan,
    TITAN_EMBED: _resp_titan_embed,
    NOVA: _resp_nova,
    META: _resp_meta,
    COHERE: _resp_cohere,
    COHERE_CHAT: _resp_cohere_chat,
    COHERE_EMBED: _resp_cohere_embed,
    MISTRAL: _resp_mistral,
    AI21_J2: _resp_ai21_j2,
    OPENAI_CHAT: _resp_openai,
    OPENAI_TEXT: _resp_openai,
}


class InvokeStream(StreamState):
    """InvokeModelWithResponseStream: each ``chunk`` event carries one JSON chunk of the model."""

    __slots__ = ("family",)

    def __init__(self, family: str, keep_text: bool) -> None:
        super().__init__(keep_text)
        self.family = family

    def on_event(self, event: Any) -> None:
        raw = _map(_map(event).get("chunk")).get("bytes")
        if not isinstance(raw, (bytes, bytearray, str)):
            return
        chunk = _map(_json.loads(raw))
        if not chunk:
            return
        metrics = chunk.get("amazon-bedrock-invocationMetrics")
        if metrics is not None:
            self.metric_tokens = metrics_tokens(_map(metrics))
        self.guard.note_action(chunk.get("amazon-bedrock-guardrailAction"))
        trace = _map(_map(chunk.get("amazon-bedrock-trace")).get("guardrail"))
        if trace:
            self.guard.trace = trace
        if self.family not in _STREAM_READERS:
            self.family = sniff_chunk(chunk)
        reader = _STREAM_READERS.get(self.family)
        if reader is not None:
            reader(self, chunk)


def sniff_chunk(chunk: Mapping[str, Any]) -> str:
    kind = chunk.get("type")
    if isinstance(kind, str) and kind.startswith(("message_", "content_block_")):
        return ANTHROPIC
    if kind == "completion":
        return ANTHROPIC_TEXT
    if "outputText" in chunk:
        return TITAN
    if any(k in chunk for k in ("messageStart", "contentBlockDelta", "messageStop", "metadata")):
        return NOVA
    if "generation" in chunk:
        return META
    if "event_type" in chunk:
        return COHERE_CHAT
    if "is_finished" in chunk or "generations" in chunk:
        return COHERE
    if "outputs" in chunk:
        return MISTRAL
    if "choices" in chunk:
        return OPENAI_CHAT
    return UNKNOWN


def _chunk_anthropic(s: StreamState, c: Mapping[str, Any]) -> None:
    kind = c.get("type")
    if kind == "content_block_delta":
        index = _int(c.get("index")) or 0
        delta = _map(c.get("delta"))
        dtype = delta.get("type")
        if dtype == "text_delta":
            s.text(delta.get("text"))
        elif dtype == "input_json_delta":
            s.tool_arguments(index, delta.get("partial_json"))
        elif dtype == "thinking_delta":
            s.think(delta.get("thinking"))
    elif kind == "content_block_start":
        block = _map(c.get("content_block"))
        if block.get("type") == "tool_use":
            s.tool_start(_int(c.get("index")) or 0, block.get("id"), block.get("name"))
    elif kind == "message_start":
        message = _map(c.get("message"))
        s.response_id = _str(message.get("id"))
        s.response_model = _str(message.get("model"))
        s.body_tokens = _anthropic_tokens(_map(message.get("usage"))).merge(s.body_tokens)
        s.body_tokens.output = None  # message_start reports a placeholder output count
    elif kind == "message_delta":
        s.stop(_map(c.get("delta")).get("stop_reason"))
        output = _int(_map(c.get("usage")).get("output_tokens"))
        if output is not None:
            s.body_tokens.output = output


def _chunk_anthropic_text(s: StreamState, c: Mapping[str, Any]) -> None:
    s.text(c.get("completion"))
    s.stop(c.get("stop_reason"))


def _chunk_titan(s: StreamState, c: Mapping[str, Any]) -> None:
    index = _int(c.get("index")) or 0
    s.text(c.get("outputText"), index)
    s.stop(c.get("completionReason"), index)
    if c.get("inputTextTokenCount") is not None:
        s.body_tokens.input = _int(c.get("inputTextTokenCount"))
    if c.get("totalOutputTextTokenCount") is not None:
        s.body_tokens.output = _int(c.get("totalOutputTextTokenCount"))


def _chunk_nova(s: StreamState, c: Mapping[str, Any]) -> None:
    if "metadata" in c:  # Nova's own usage; Bedrock's invocation metrics are kept apart
        s.body_tokens = converse_tokens(_map(_map(c["metadata"]).get("usage")))
        return
    s.converse_event(c)  # otherwise the same events as ConverseStream, as JSON chunks


def _chunk_meta(s: StreamState, c: Mapping[str, Any]) -> None:
    s.text(c.get("generation"))
    s.stop(c.get("stop_reason"))
    if c.get("prompt_token_count") is not None:
        s.body_tokens.input = _int(c.get("prompt_token_count"))
    if c.get("generation_token_count") is not None:
        s.body_tokens.output = _int(c.get("generation_token_count"))


def _chunk_cohere(s: StreamState, c: Mapping[str, Any]) -> None:
    if "generations" in c:  # whole generations in one chunk
        for index, item in enumerate(_list(c.get("generations"))):
            g = _map(item)
            s.text(g.get("text"), index)
            s.stop(g.get("finish_reason"), index)
        return
    if not c.get("is_finished"):
        s.text(c.get("text"), _int(c.get("index")) or 0)
        return
    s.stop(c.get("finish_reason"), _int(c.get("index")) or 0)
    response = _map(c.get("response"))
    s.response_id = _str(response.get("id")) or s.response_id


def _chunk_cohere_chat(s: StreamState, c: Mapping[str, Any]) -> None:
    kind = c.get("event_type")
    if kind == "text-generation":
        s.text(c.get("text"))
    elif kind == "tool-calls-generation":
        for position, tc in enumerate(_cohere_tool_calls(c.get("tool_calls"))):
            s.tool_start(position, None, tc.name)
            if tc.arguments is not None:
                s.tool_arguments(position, _json.dumps(tc.arguments))
    elif kind == "stream-end" or c.get("is_finished"):
        s.stop(c.get("finish_reason"))
        response = _map(c.get("response"))
        s.response_id = _str(_first(response, "response_id", "generation_id")) or s.response_id
        if not s.tools:
            for position, tc in enumerate(_cohere_tool_calls(response.get("tool_calls"))):
                s.tool_start(position, None, tc.name)
                if tc.arguments is not None:
                    s.tool_arguments(position, _json.dumps(tc.arguments))
        billed = _map(_map(response.get("meta")).get("billed_units"))
        s.body_tokens = Tokens(_int(billed.get("input_tokens")), _int(billed.get("output_tokens")))


def _chunk_mistral(s: StreamState, c: Mapping[str, Any]) -> None:
    for index, item in enumerate(_list(c.get("outputs"))):
        o = _map(item)
        s.text(o.get("text"), index)
        s.stop(o.get("stop_reason"), index)


def _chunk_openai(s: StreamState, c: Mapping[str, Any]) -> None:
    s.response_id = s.response_id or _str(c.get("id"))
    s.response_model = s.response_model or _str(c.get("model"))
    for position, item in enumerate(_list(c.get("choices"))):
        ch = _map(item)
        index = _int(ch.get("index"))
        index = position if index is None else index
        delta = _map(ch.get("delta")) or _map(ch.get("message"))
        s.text(delta.get("content") if delta else ch.get("text"), index)
        if isinstance(delta.get("role"), str) and delta["role"]:
            s.role = delta["role"]
        for fallback, tc in enumerate(_list(delta.get("tool_calls"))):
            t = _map(tc)
            slot = _int(t.get("index"))
            slot = fallback if slot is None else slot
            fn = _map(t.get("function"))
            s.tool_start(slot, t.get("id"), fn.get("name"))
            s.tool_arguments(slot, fn.get("arguments"))
        s.stop(_first(ch, "finish_reason", "stop_reason"), index)
    u = _map(c.get("usage"))
    if u:
        s.body_tokens = Tokens(_int(u.get("prompt_tokens")), _int(u.get("completion_tokens")))


_STREAM_READERS: Final[dict[str, Callable[[StreamState, Mapping[str, Any]], None]]] = {
    ANTHROPIC: _chunk_anthropic,
    ANTHROPIC_TEXT: _chunk_anthropic_text,
    TITAN: _chunk_titan,
    NOVA: _chunk_nova,
    META: _chunk_meta,
    COHERE: _chunk_cohere,
    COHERE_CHAT: _chunk_cohere_chat,
    MISTRAL: _chunk_mistral,
    OPENAI_CHAT: _chunk_openai,
    OPENAI_TEXT: _chunk_openai,
}


# --- the caller's body ----------------------------------------------------------------------------------


def content_length(result: Mapping[str, Any]) -> int | None:
    return _int(_headers(result).get("content-length"))
