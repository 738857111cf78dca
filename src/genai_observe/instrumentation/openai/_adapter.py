"""Reads the ``openai`` SDK's requests and responses into the neutral :class:`LLMCall`.

Nothing here imports ``openai`` or ``httpx``/``httpx2``: objects are read by attribute or key,
so the same code serves openai 1.x to 3.x and pydantic models as well as plain dicts.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlunsplit

from ..._core import semconv as sc
from ..._core.record import Choice, LLMCall, Message, ToolCall, Usage
from .._kit.endpoints import PerClient, split
from .._kit.read import declares, extra, get, items, safe_content

ENV_NIM_HOSTS = "GENAI_OBSERVE_NIM_HOSTS"
_NIM_HOSTS = frozenset({"integrate.api.nvidia.com", "ai.api.nvidia.com"})
_AZURE_SUFFIXES = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
    ".azure-api.net",
)
_OLLAMA_PORT = 11434
# An Azure client created with ``azure_deployment=`` (or a base URL naming one) sends its chat,
# completions and embeddings requests to ``.../deployments/{name}/...`` whatever ``model=`` says.
_DEPLOYMENT_PATH = re.compile(r"/deployments/([^/]+)")


# --- the client: provider, server and base URL ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientInfo:
    provider: str
    address: str | None
    port: int | None
    api_base: str | None
    api_version: str | None
    deployment: str | None = None  # from a base URL path with /deployments/{name}
    # The server is known to accept stream_options.include_usage (see accepts_stream_options).
    stream_options: bool = False


def nim_hosts() -> frozenset[str]:
    """NIM hosts: NVIDIA's hosted API plus self-hosted ones named in GENAI_OBSERVE_NIM_HOSTS."""
    extra = os.environ.get(ENV_NIM_HOSTS, "")
    return _NIM_HOSTS | {h.strip().lower() for h in extra.split(",") if h.strip()}


def _compute_client_info(client: Any, nim: frozenset[str]) -> ClientInfo:
    raw = getattr(client, "base_url", None)
    host, port, parts = split(str(raw) if raw is not None else "")
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    # Never credentials or query strings (Azure puts api-version there).
    api_base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")) if host else None
    is_azure = "Azure" in type(client).__name__ or (host is not None and host.endswith(_AZURE_SUFFIXES))
    api_version = getattr(client, "_api_version", None)
    if api_version is None:
        query = getattr(client, "default_query", None) or getattr(client, "_custom_query", None)
        if isinstance(query, Mapping):
            api_version = query.get("api-version")
    if is_azure:
        provider = sc.PROVIDER_AZURE_OPENAI
    elif host is not None and (host in nim or f"{host}:{port}" in nim):
        provider = sc.PROVIDER_NVIDIA_NIM
    elif port == _OLLAMA_PORT:
        provider = sc.PROVIDER_OLLAMA
    else:
        provider = sc.PROVIDER_OPENAI
    match = _DEPLOYMENT_PATH.search(parts.path)
    deployment = unquote(match.group(1)) if match else None
    version = str(api_version) if api_version else None
    return ClientInfo(
        provider,
        host,
        port,
        api_base,
        version,
        deployment or None,
        accepts_stream_options(provider, host, parts.path, version),
    )


# --- stream_options: which servers take it, and the chunk it adds --------------------------------

_OPENAI_HOST = "api.openai.com"
# Azure OpenAI's dated api-versions: the first preview whose inference spec has stream_options
# (2024-08-01-preview; earlier ones answer 400 "Unknown parameter: 'stream_options'"), and the last
# GA version, whose spec (stable/2024-10-21) still lacks it. Later GA versions come after the
# previews that added it. The v1 API (base URL .../openai/v1, api-version absent, "v1", "latest"
# or "preview") has it.
_AZURE_FIRST_PREVIEW_WITH_USAGE = "2024-08-01"
_AZURE_LAST_GA_WITHOUT_USAGE = "2024-10-21"
_AZURE_V1_VERSIONS = frozenset({"v1", "latest", "preview"})
_DATED_VERSION = re.compile(r"(\d{4}-\d{2}-\d{2})(-preview)?")


def accepts_stream_options(provider: str, host: str | None, path: str, api_version: str | None) -> bool:
    """Whether the server is known to accept ``stream_options`` (then asked for usage by default).

    OpenAI (api.openai.com); Azure OpenAI with an api-version that has it; NVIDIA NIM (NVIDIA's
    hosted API and the hosts named in GENAI_OBSERVE_NIM_HOSTS: NIM's OpenAI API takes it); Ollama
    (which takes it, and whose older versions ignore fields they do not know). Any other server is
    left alone: a self-hosted vLLM accepts it, but so few URLs say what server they lead to that an
    unknown field could make a stricter one fail the call; ``stream_usage=True`` forces it.
    """
    if provider == sc.PROVIDER_AZURE_OPENAI:
        if "/openai/v1" in path:
            return True
        if api_version is None:
            return False
        version = api_version.strip().lower()
        if version in _AZURE_V1_VERSIONS:
            return True
        dated = _DATED_VERSION.fullmatch(version)
        if dated is None:
            return False
        day, preview = dated.groups()
        return day >= _AZURE_FIRST_PREVIEW_WITH_USAGE if preview else day > _AZURE_LAST_GA_WITHOUT_USAGE
    if provider in (sc.PROVIDER_NVIDIA_NIM, sc.PROVIDER_OLLAMA):
        return True
    return host == _OPENAI_HOST


def injected_usage_chunk(chunk: Any) -> bool:
    """For streams we asked for usage: True for the usage chunk (no choices), which the caller then
    does not see; every other chunk loses the ``usage: null`` the option adds to it, so its
    ``to_dict()``/``model_fields_set`` are what they would be without the option.
    """
    if getattr(chunk, "usage", None) is not None:
        return not getattr(chunk, "choices", None)
    fields = getattr(chunk, "__pydantic_fields_set__", None)
    if fields is None:
        fields = getattr(chunk, "__fields_set__", None)  # pydantic 1
    if isinstance(fields, set):
        fields.discard("usage")
    return False


# (client, NIM hosts) -> ClientInfo, once per client.
client_info: PerClient[ClientInfo] = PerClient(_compute_client_info)
_client_cache = client_info  # what the long-run test counts


def new_call(
    operation: str,
    info: ClientInfo,
    kwargs: Mapping[str, Any],
    api_type: str | None,
    deployment_routed: bool = True,
) -> LLMCall:
    """The request part every operation shares.

    ``deployment_routed``: the SDK sends this operation to the client's Azure deployment path when
    it has one (chat, completions, embeddings; not the Responses API). The request model stays the
    ``model=`` argument, as OpenLLMetry and Dynatrace read it; the deployment is recorded beside
    it, and stands in for the model only when ``model=`` is missing or empty.
    """
    model = get(kwargs, "model")
    deployment = info.deployment if deployment_routed else None
    if not model and deployment is not None:
        model = deployment
    call = LLMCall(
        operation=operation,
        provider=info.provider,
        request_model=model,
        server_address=info.address,
        server_port=info.port,
        api_base=info.api_base,
        stream=bool(get(kwargs, "stream", False)),
    )
    if deployment is not None:
        call.request_attributes[sc.AZURE_DEPLOYMENT] = deployment
    if info.api_version:
        call.legacy_attributes[sc.GEN_AI_OPENAI_API_VERSION] = info.api_version
    if api_type is not None and info.provider != sc.PROVIDER_OLLAMA:
        call.request_attributes[sc.OPENAI_API_TYPE] = api_type
    tier = get(kwargs, "service_tier")
    if isinstance(tier, str):
        call.request_attributes[sc.OPENAI_REQUEST_SERVICE_TIER] = tier
    return call


def _number(value: Any) -> Any:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _sampling(call: LLMCall, kwargs: Mapping[str, Any], max_tokens_keys: tuple[str, ...]) -> None:
    for key in max_tokens_keys:
        value = _number(get(kwargs, key))
        if value is not None:
            call.max_tokens = int(value)
            break
    call.temperature = _number(get(kwargs, "temperature"))
    call.top_p = _number(get(kwargs, "top_p"))
    call.frequency_penalty = _number(get(kwargs, "frequency_penalty"))
    call.presence_penalty = _number(get(kwargs, "presence_penalty"))
    seed = _number(get(kwargs, "seed"))
    call.seed = int(seed) if seed is not None else None
    n = _number(get(kwargs, "n"))
    call.choice_count = int(n) if n is not None else None
    stop = get(kwargs, "stop")
    if isinstance(stop, str):
        call.stop_sequences = [stop]
    elif isinstance(stop, (list, tuple)):
        call.stop_sequences = [str(s) for s in stop]


def _tool_calls(value: Any) -> list[ToolCall] | None:
    calls = items(value)
    if not calls:
        return None
    out = []
    for tc in calls:
        fn = get(tc, "function")
        out.append(
            ToolCall(
                name=get(fn, "name") if fn is not None else get(tc, "name"),
                arguments=get(fn, "arguments") if fn is not None else get(tc, "arguments"),
                id=get(tc, "id"),
                type=get(tc, "type") or "function",
            )
        )
    return out


def _tools(kwargs: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    tools = items(get(kwargs, "tools")) or items(get(kwargs, "functions"))
    if not tools:
        return None
    out: list[Mapping[str, Any]] = []
    for tool in tools:
        fn = get(tool, "function") or tool  # chat: {"type","function":{...}}; responses/legacy: flat
        entry: dict[str, Any] = {
            k: get(fn, k) for k in ("name", "description", "parameters") if get(fn, k) is not None
        }
        if not entry.get("name") and get(tool, "type"):
            entry["name"] = str(get(tool, "type"))  # built-in tools (web_search, file_search, ...)
        out.append(entry)
    return out


def _output_type(response_format: Any) -> str | None:
    if response_format is None:
        return None
    if isinstance(response_format, type):
        return "json"  # a pydantic model given to .parse()
    kind = get(response_format, "type")
    if kind in ("json_object", "json_schema"):
        return "json"
    if kind == "text":
        return "text"
    return None


# --- chat completions ------------------------------------------------------------------------


def chat_request(info: ClientInfo, kwargs: Mapping[str, Any]) -> LLMCall:
    call = new_call(sc.OP_CHAT, info, kwargs, "chat_completions")
    _sampling(call, kwargs, ("max_completion_tokens", "max_tokens"))
    call.output_type = _output_type(get(kwargs, "response_format"))
    for m in items(get(kwargs, "messages")):
        tool_calls = _tool_calls(get(m, "tool_calls"))
        legacy_fn = get(m, "function_call")
        if legacy_fn is not None:
            tool_calls = (tool_calls or []) + [
                ToolCall(name=get(legacy_fn, "name"), arguments=get(legacy_fn, "arguments"))
            ]
        call.input_messages.append(
            Message(
                role=str(get(m, "role") or "user"),
                content=safe_content(get(m, "content")),
                tool_calls=tool_calls,
                tool_call_id=get(m, "tool_call_id"),
                name=get(m, "name"),
            )
        )
    call.tool_definitions = _tools(kwargs)
    return call


def _usage(call: LLMCall, u: Any) -> None:
    if u is None:
        return
    prompt_details = get(u, "prompt_tokens_details")
    completion_details = get(u, "completion_tokens_details")
    call.usage = Usage(
        input_tokens=get(u, "prompt_tokens"),
        output_tokens=get(u, "completion_tokens"),
        cache_read_input_tokens=get(prompt_details, "cached_tokens") if prompt_details is not None else None,
        reasoning_output_tokens=get(completion_details, "reasoning_tokens")
        if completion_details is not None
        else None,
        total_tokens=get(u, "total_tokens"),
    )


def _response_common(call: LLMCall, resp: Any) -> None:
    call.response_id = get(resp, "id")
    call.response_model = get(resp, "model") or None
    fingerprint = get(resp, "system_fingerprint")
    if fingerprint:
        call.response_attributes[sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint
    tier = get(resp, "service_tier")
    if tier:
        call.response_attributes[sc.OPENAI_RESPONSE_SERVICE_TIER] = str(tier)
    pfr = extra(resp, "prompt_filter_results")
    if pfr is not None:
        call.prompt_filter_results = pfr


def chat_response(call: LLMCall, resp: Any) -> None:
    _response_common(call, resp)
    for c in get(resp, "choices") or ():
        msg = get(c, "message")
        content = get(msg, "content")
        if content is None:
            content = get(msg, "refusal")
        tool_calls = _tool_calls(get(msg, "tool_calls"))
        fn = get(msg, "function_call")
        if fn is not None:
            tool_calls = (tool_calls or []) + [ToolCall(name=get(fn, "name"), arguments=get(fn, "arguments"))]
        call.choices.append(
            Choice(
                index=get(c, "index", 0),
                role=get(msg, "role") or "assistant",
                content=content,
                finish_reason=get(c, "finish_reason"),
                tool_calls=tool_calls,
                content_filter_results=extra(c, "content_filter_results"),
            )
        )
    _usage(call, get(resp, "usage"))


_OPENAI_HOST = "api.openai.com"


def _known_server(call: LLMCall | None) -> bool:
    """OpenAI's own API or a local Ollama, whose streams are documented: never Azure's content
    filter verdicts, usage only in the last chunk. Their streams skip looking for either in every
    chunk (about 1.2 k instructions per chunk). Any other host may be Azure behind a gateway or a
    custom domain (a NIM host list may name such a gateway too), so it is read everywhere there."""
    if call is None:
        return False
    if call.provider == sc.PROVIDER_OLLAMA:
        return True
    return call.provider == sc.PROVIDER_OPENAI and call.server_address == _OPENAI_HOST


class _ChoiceState:
    __slots__ = ("filters", "finish", "parts", "role", "role_open", "tools")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.role = "assistant"
        self.role_open = True  # no delta has named the role yet
        self.finish: str | None = None
        self.tools: dict[int, list[Any]] | None = None  # index -> [id, name, [argument fragments]]
        self.filters: Any = None


class ChatStream:
    """Accumulates chat completion chunks; cheap per chunk, text kept only when captured."""

    __slots__ = (
        "_declared",
        "_filters",
        "_functions",
        "_keep_text",
        "choices",
        "first",
        "last",
        "prompt_filters",
        "usage",
    )

    def __init__(self, keep_text: bool, call: LLMCall | None = None) -> None:
        self._keep_text = keep_text
        self._filters = not _known_server(call)
        # Legacy function_call deltas answer only a request that declared functions (or tools).
        self._functions = call is None or bool(call.tool_definitions)
        self.first: Any = None
        self.last: Any = None
        self.usage: Any = None
        self.choices: dict[int, _ChoiceState] = {}
        self.prompt_filters: Any = None
        self._declared: tuple[bool, bool] | None = None  # see _declare

    def on_chunk(self, chunk: Any) -> None:
        # Per chunk, so every attribute read counts: one on the SDK's pydantic models costs ~450
        # instructions (their class defines __getattr__, so CPython cannot specialize the read).
        # Each field is read once, and only while it can still change what is recorded.
        if self.first is None and getattr(chunk, "model", None):
            self.first = chunk
        filters = self._filters
        if filters:
            usage = getattr(chunk, "usage", None)  # absent from the oldest SDKs' chunk model
            if usage is not None:
                self.usage = usage
        else:  # a known server: the usage is in the last chunk, read once at the end
            self.last = chunk
        choices = chunk.choices
        declared = (False, False)
        if filters:
            # Azure's filter verdicts are extras of the SDK's models: read from the extras dict
            # (empty for other servers) unless the model declares the field or has no such dict.
            declared = self._declared or self._declare(chunk, choices)
            extras = getattr(chunk, "__pydantic_extra__", None)
            if extras or extras is None or declared[0]:
                pfr = (
                    extras.get("prompt_filter_results")
                    if extras and not declared[0]
                    else extra(chunk, "prompt_filter_results")
                )
                if pfr is not None:
                    self.prompt_filters = pfr
        states = self.choices
        for c in choices or ():
            index = c.index
            state = states.get(index)
            if state is None:
                if index is None:  # seen as null in recorded traffic
                    index = 0
                    state = states.get(0)
                if state is None:
                    state = states[index] = _ChoiceState()
            delta = c.delta
            if delta is not None:
                if self._keep_text:
                    text = delta.content
                    if text:
                        state.parts.append(text)
                if state.role_open:  # the role comes in a choice's first delta
                    role = delta.role
                    if role:
                        state.role = role
                        state.role_open = False
                # Tool-call deltas are looked for even when the request declared no tools: a
                # server (or a gateway adding tools) may still send them, and they are the call.
                tool_calls = delta.tool_calls
                if tool_calls:
                    self._tool_deltas(state, tool_calls)
                if self._functions:
                    fn = getattr(delta, "function_call", None)
                    if fn is not None:
                        self._tool_deltas(state, [{"index": 0, "function": fn}])
            finish = c.finish_reason
            if finish:
                state.finish = finish
            if not filters:
                continue
            extras = getattr(c, "__pydantic_extra__", None)
            if extras or extras is None or declared[1]:
                verdicts = (
                    extras.get("content_filter_results")
                    if extras and not declared[1]
                    else extra(c, "content_filter_results")
                )
                if verdicts:
                    state.filters = verdicts

    def _declare(self, chunk: Any, choices: Any) -> tuple[bool, bool]:
        """Whether the SDK's chunk and choice models declare Azure's filter fields (then they are
        attributes, not extras); kept from the first chunk that has a choice."""
        declared = (
            declares(type(chunk), "prompt_filter_results"),
            bool(choices) and declares(type(choices[0]), "content_filter_results"),
        )
        if choices:
            self._declared = declared
        return declared

    def _tool_deltas(self, state: _ChoiceState, deltas: Any) -> None:
        tools = state.tools
        if tools is None:
            tools = state.tools = {}
        for d in deltas:
            index = get(d, "index", 0)
            entry = tools.get(index)
            if entry is None:
                entry = tools[index] = [None, None, []]
            if get(d, "id"):
                entry[0] = get(d, "id")
            fn = get(d, "function")
            if fn is not None:
                if get(fn, "name"):
                    entry[1] = get(fn, "name")
                if get(fn, "arguments") and self._keep_text:
                    entry[2].append(get(fn, "arguments"))

    def fill(self, call: LLMCall) -> None:
        if self.first is not None:
            _response_common(call, self.first)
        if self.prompt_filters is not None:
            call.prompt_filter_results = self.prompt_filters
        for index in sorted(self.choices):
            state = self.choices[index]
            tool_calls = None
            if state.tools:
                tool_calls = [
                    ToolCall(id=e[0], name=e[1], arguments="".join(e[2]) if e[2] else None)
                    for _, e in sorted(state.tools.items())
                ]
            call.choices.append(
                Choice(
                    index=index,
                    role=state.role,
                    content="".join(state.parts) if state.parts else None,
                    finish_reason=state.finish,
                    tool_calls=tool_calls,
                    content_filter_results=state.filters,
                )
            )
        usage = self.usage
        if usage is None and self.last is not None:
            usage = getattr(self.last, "usage", None)
        _usage(call, usage)


# --- legacy completions ----------------------------------------------------------------------


def _prompt_text(prompt: Any) -> str:
    """A legacy prompt item: text, or token ids (written out; one-shot iterables are not read)."""
    if isinstance(prompt, str):
        return prompt
    return str(prompt) if isinstance(prompt, (list, tuple)) else "<tokens>"


def completion_request(info: ClientInfo, kwargs: Mapping[str, Any]) -> LLMCall:
    call = new_call(sc.OP_TEXT_COMPLETION, info, kwargs, None)
    _sampling(call, kwargs, ("max_tokens",))
    prompt = get(kwargs, "prompt")
    prompts = [prompt] if isinstance(prompt, str) else items(prompt)
    call.input_messages = [Message(role="user", content=_prompt_text(p)) for p in prompts]
    return call


def completion_response(call: LLMCall, resp: Any) -> None:
    _response_common(call, resp)
    for c in get(resp, "choices") or ():
        call.choices.append(
            Choice(
                index=get(c, "index", 0),
                content=get(c, "text"),
                finish_reason=get(c, "finish_reason"),
                content_filter_results=extra(c, "content_filter_results"),
            )
        )
    _usage(call, get(resp, "usage"))


class CompletionStream:
    __slots__ = ("_keep_text", "choices", "first", "prompt_filters", "usage")

    def __init__(self, keep_text: bool, call: LLMCall | None = None) -> None:
        self._keep_text = keep_text
        self.first: Any = None
        self.usage: Any = None
        self.choices: dict[int, _ChoiceState] = {}
        self.prompt_filters: Any = None

    def on_chunk(self, chunk: Any) -> None:
        # Azure may start with a chunk that has only prompt_filter_results (empty id and model).
        if self.first is None and (getattr(chunk, "model", None) or getattr(chunk, "id", None)):
            self.first = chunk
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        pfr = extra(chunk, "prompt_filter_results")
        if pfr is not None:
            self.prompt_filters = pfr
        for c in getattr(chunk, "choices", None) or ():
            index = c.index if c.index is not None else 0  # seen as null in recorded traffic
            state = self.choices.get(index)
            if state is None:
                state = self.choices[index] = _ChoiceState()
            if self._keep_text and c.text:
                state.parts.append(c.text)
            if c.finish_reason:
                state.finish = c.finish_reason
            filters = extra(c, "content_filter_results")
            if filters:
                state.filters = filters

    def fill(self, call: LLMCall) -> None:
        if self.first is not None:
            _response_common(call, self.first)
        if self.prompt_filters is not None:
            call.prompt_filter_results = self.prompt_filters
        for index in sorted(self.choices):
            s = self.choices[index]
            call.choices.append(
                Choice(
                    index=index,
                    content="".join(s.parts) if s.parts else None,
                    finish_reason=s.finish,
                    content_filter_results=s.filters,
                )
            )
        _usage(call, self.usage)


# --- embeddings --------------------------------------------------------------------------------


def _input_text(item: Any) -> str:
    """An embeddings input: text, or token ids recorded as a count, not content."""
    if isinstance(item, str):
        return item
    if isinstance(item, (list, tuple)):
        return f"<{len(item)} tokens>"
    return "<1 tokens>" if isinstance(item, int) else "<tokens>"


def embeddings_request(info: ClientInfo, kwargs: Mapping[str, Any]) -> LLMCall:
    call = new_call(sc.OP_EMBEDDINGS, info, kwargs, None)
    call.stream = False
    fmt = get(kwargs, "encoding_format")
    if isinstance(fmt, str):
        call.encoding_formats = [fmt]
    text = get(kwargs, "input")
    inputs = [text] if isinstance(text, str) else items(text)
    call.input_messages = [Message(role="user", content=_input_text(i)) for i in inputs]
    return call


def embeddings_response(call: LLMCall, resp: Any) -> None:
    call.response_model = get(resp, "model") or None
    data = get(resp, "data") or []
    call.embedding_count = len(data)
    if data:
        vector = get(data[0], "embedding")
        if isinstance(vector, str):  # base64 asked for explicitly: float32 values
            try:
                call.embedding_vector_size = len(base64.b64decode(vector)) // 4
            except ValueError:
                call.embedding_vector_size = None
        elif vector is not None:
            call.embedding_vector_size = len(vector)
    u = get(resp, "usage")
    if u is not None:
        call.usage = Usage(input_tokens=get(u, "prompt_tokens"), total_tokens=get(u, "total_tokens"))


# --- responses API -------------------------------------------------------------------------------


def responses_request(info: ClientInfo, kwargs: Mapping[str, Any]) -> LLMCall:
    call = new_call(sc.OP_CHAT, info, kwargs, "responses", deployment_routed=False)
    _sampling(call, kwargs, ("max_output_tokens",))
    text_cfg = get(kwargs, "text")
    call.output_type = _output_type(get(text_cfg, "format")) if text_cfg is not None else None
    if isinstance(get(kwargs, "text_format"), type):
        call.output_type = "json"
    instructions = get(kwargs, "instructions")
    if isinstance(instructions, str):
        call.system_instructions = [instructions]
    given_input = get(kwargs, "input")
    if isinstance(given_input, str):
        call.input_messages = [Message(role="user", content=given_input)]
    else:
        for item in items(given_input):
            kind = get(item, "type")
            if kind == "function_call_output":
                call.input_messages.append(
                    Message(
                        role="tool",
                        content=safe_content(get(item, "output")),
                        tool_call_id=get(item, "call_id"),
                    )
                )
            elif kind == "function_call":
                call.input_messages.append(
                    Message(
                        role="assistant",
                        tool_calls=[
                            ToolCall(
                                name=get(item, "name"),
                                arguments=get(item, "arguments"),
                                id=get(item, "call_id"),
                            )
                        ],
                    )
                )
            elif get(item, "role"):
                call.input_messages.append(
                    Message(role=str(get(item, "role")), content=safe_content(get(item, "content")))
                )
    conversation = get(kwargs, "conversation")
    if isinstance(conversation, str):
        call.request_attributes[sc.GEN_AI_CONVERSATION_ID] = conversation
    call.tool_definitions = _tools(kwargs)
    return call


_STATUS_TO_FINISH = {"completed": "stop", "failed": "error", "cancelled": "cancelled", "in_progress": None}


def responses_response(call: LLMCall, resp: Any) -> None:
    call.response_id = get(resp, "id")
    call.response_model = get(resp, "model") or None
    tier = get(resp, "service_tier")
    if tier:
        call.response_attributes[sc.OPENAI_RESPONSE_SERVICE_TIER] = str(tier)
    texts: list[str] = []
    tool_calls: list[ToolCall] = []
    reasoning: list[str] = []
    for item in get(resp, "output") or ():
        kind = get(item, "type")
        if kind == "message":
            for part in get(item, "content") or ():
                text = get(part, "text") if get(part, "type") == "output_text" else get(part, "refusal")
                if text:
                    texts.append(text)
        elif kind == "function_call":
            tool_calls.append(
                ToolCall(name=get(item, "name"), arguments=get(item, "arguments"), id=get(item, "call_id"))
            )
        elif kind == "reasoning":
            for summary in get(item, "summary") or ():
                if get(summary, "text"):
                    reasoning.append(get(summary, "text"))
    status = get(resp, "status")
    finish = _STATUS_TO_FINISH.get(status, status) if isinstance(status, str) else None
    incomplete = get(resp, "incomplete_details")
    if status == "incomplete" and incomplete is not None:
        finish = get(incomplete, "reason") or "incomplete"
    if tool_calls and finish == "stop":
        finish = "tool_calls"
    if texts or tool_calls or finish:
        call.choices = [
            Choice(
                content="".join(texts) if texts else None,
                finish_reason=finish,
                tool_calls=tool_calls or None,
                reasoning="\n".join(reasoning) if reasoning else None,
            )
        ]
    u = get(resp, "usage")
    if u is not None:
        in_details = get(u, "input_tokens_details")
        out_details = get(u, "output_tokens_details")
        call.usage = Usage(
            input_tokens=get(u, "input_tokens"),
            output_tokens=get(u, "output_tokens"),
            cache_read_input_tokens=get(in_details, "cached_tokens") if in_details is not None else None,
            reasoning_output_tokens=get(out_details, "reasoning_tokens") if out_details is not None else None,
            total_tokens=get(u, "total_tokens"),
        )


class ResponsesStream:
    """Keeps only the final response object (and text deltas in case the stream stops early)."""

    __slots__ = ("_keep_text", "final", "parts", "started")

    _FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})

    def __init__(self, keep_text: bool, call: LLMCall | None = None) -> None:
        self._keep_text = keep_text
        self.final: Any = None
        self.started: Any = None
        self.parts: list[str] = []

    def on_chunk(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "response.output_text.delta":
            if self._keep_text:
                self.parts.append(event.delta)
        elif kind in self._FINAL:
            self.final = event.response
        elif kind == "response.created":
            self.started = event.response

    def fill(self, call: LLMCall) -> None:
        if self.final is not None:
            responses_response(call, self.final)
            return
        if self.started is not None:
            call.response_id = get(self.started, "id")
            call.response_model = get(self.started, "model") or None
        if self.parts:
            call.choices = [Choice(content="".join(self.parts))]
