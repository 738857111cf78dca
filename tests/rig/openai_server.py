"""A fake OpenAI REST API on 127.0.0.1 for driving the real ``openai`` SDK in tests.

The server speaks enough of the wire format (JSON and server-sent events) for
``OpenAI``, ``AsyncOpenAI`` and ``AzureOpenAI`` to work unchanged against it:

* ``POST /v1/chat/completions``   JSON and SSE, ``n > 1``, tool calls, usage details
* ``POST /v1/completions``        legacy completions, JSON and SSE
* ``POST /v1/embeddings``         ``encoding_format`` float or base64
* ``POST /v1/responses``          Responses API, JSON and its typed SSE event stream
* ``GET  /v1/models``             a tiny model list
* Azure: ``/openai/deployments/{deployment}/...`` (plus ``/openai/...`` and
  ``/openai/v1/...``) with ``prompt_filter_results`` / ``content_filter_results``.

By default every answer is deterministic and derived from the request (the
response echoes the requested model, token counts are fixed, see
``DEFAULT_USAGE``).  Tests change the behaviour of upcoming requests with
:meth:`OpenAIMockServer.script` and inspect what the SDK sent through
:attr:`OpenAIMockServer.requests`.

Example::

    with OpenAIMockServer() as server:
        server.script(content="Hi there", usage={"prompt_tokens": 3})
        client = OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        client.chat.completions.create(model="gpt-4o", messages=[...])
        assert server.last_request.body["model"] == "gpt-4o"

For the module-level client use ``openai.base_url = server.base_url + "/"``
(the module client, unlike ``OpenAI(...)``, does not add the trailing slash).

Only the standard library is used at import time; the ``*_client()`` helpers
import ``openai`` lazily.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import parse_qsl, urlsplit

from ._mock_server import MockHandler, MockServerBase, MockWire, parse_json_body

if TYPE_CHECKING:  # pragma: no cover - typing only
    from openai import AsyncAzureOpenAI, AsyncOpenAI, AzureOpenAI, OpenAI

__all__ = [
    "AZURE_PROMPT_FILTER_ERROR",
    "AZURE_SAFE_FILTER_RESULTS",
    "CREATED",
    "DEFAULT_EMBEDDING_DIMENSIONS",
    "DEFAULT_USAGE",
    "DONE",
    "OpenAIMockServer",
    "RecordedRequest",
    "Reply",
    "SSEEvent",
    "ToolCall",
    "default_content",
    "example_from_schema",
]

# --------------------------------------------------------------------------- #
# Public constants
# --------------------------------------------------------------------------- #

DONE = "[DONE]"
"""The terminating ``data:`` payload of chat/legacy completion streams."""

CREATED = 1_700_000_000
"""The ``created`` / ``created_at`` timestamp of every generated object."""

DEFAULT_USAGE: Mapping[str, int] = {
    "prompt_tokens": 10,
    "completion_tokens": 20,
    "cached_tokens": 3,
    "reasoning_tokens": 5,
}
"""Token counts of every default answer (total = prompt + completion = 30).

Chat completions report ``cached_tokens`` in ``prompt_tokens_details`` and
``reasoning_tokens`` in ``completion_tokens_details``; the Responses API maps
them to ``input_tokens_details`` / ``output_tokens_details``; legacy
completions and embeddings only report the plain counts (embeddings:
``prompt_tokens`` and ``total_tokens`` both equal ``prompt_tokens``).
"""

DEFAULT_EMBEDDING_DIMENSIONS = 8
"""Vector length when the request does not ask for ``dimensions``."""

AZURE_SAFE_FILTER_RESULTS: Mapping[str, Any] = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}
"""Azure's per-category content filter verdict when nothing was filtered."""

AZURE_PROMPT_FILTER_ERROR: Mapping[str, Any] = {
    "message": (
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
        "Please modify your prompt and retry."
    ),
    "type": None,
    "param": "prompt",
    "code": "content_filter",
    "status": 400,
    "innererror": {
        "code": "ResponsibleAIPolicyViolation",
        "content_filter_result": {
            "hate": {"filtered": True, "severity": "high"},
            "self_harm": {"filtered": False, "severity": "safe"},
            "sexual": {"filtered": False, "severity": "safe"},
            "violence": {"filtered": True, "severity": "medium"},
        },
    },
}
"""Azure's error object when the *prompt* is filtered; use with ``script(status=400, error=...)``."""

SSEEvent = Union[str, Mapping[str, Any], "tuple[str | None, Any]"]
"""A custom SSE event for ``Reply.events``.

* ``str``: written verbatim as ``data: <str>`` (e.g. ``DONE`` or broken JSON);
* ``dict``: written as ``data: <json>``;
* ``(event_name, payload)``: written as ``event: <name>`` + ``data: <payload>``
  where payload is a ``str`` (verbatim) or JSON-serialisable object.
"""

_ENDPOINTS = {
    "/chat/completions": "chat.completions",
    "/completions": "completions",
    "/embeddings": "embeddings",
    "/responses": "responses",
    "/models": "models",
}

_ROUTE = re.compile(
    r"^(?P<prefix>/openai/deployments/(?P<deployment>[^/]+)|/openai/v1|/openai|/v1)?(?P<rest>/[^?]*)$"
)

_DEFAULT_ERRORS: Mapping[int, tuple[str, str | None, str | None]] = {
    400: ("Invalid request (mock).", "invalid_request_error", None),
    401: (
        "Incorrect API key provided: sk-mock***. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    403: ("You are not allowed to access this resource (mock).", "invalid_request_error", None),
    404: (
        "The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    409: ("Conflict (mock).", "invalid_request_error", None),
    422: ("Unprocessable entity (mock).", "invalid_request_error", None),
    429: (
        "Rate limit reached for {model} in organization org-mock on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1. Please try again in 20ms.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}

_UNSET: Any = object()


# --------------------------------------------------------------------------- #
# Scripting model
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class ToolCall:
    """A canned function/tool call the fake model "decides" to make."""

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str | None = None

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, separators=(",", ":"))

    @classmethod
    def coerce(cls, value: ToolCall | Mapping[str, Any]) -> ToolCall:
        if isinstance(value, ToolCall):
            return value
        function = value.get("function")
        if isinstance(function, Mapping):  # OpenAI wire shape
            return cls(name=function["name"], arguments=function.get("arguments", "{}"), id=value.get("id"))
        return cls(name=value["name"], arguments=value.get("arguments", "{}"), id=value.get("id"))


@dataclass
class Reply:
    """How the server answers one or more upcoming requests.

    Every field is optional; unset fields keep the default behaviour.  Queue a
    reply with :meth:`OpenAIMockServer.script`.

    Matching
        ``endpoint``: only requests to this endpoint consume the reply
        (``"chat.completions"``, ``"completions"``, ``"embeddings"``,
        ``"responses"``); ``None`` matches any request.
        ``times``: how many requests consume it (``None`` = every request until
        :meth:`OpenAIMockServer.reset`).
        ``when``: a predicate on the :class:`RecordedRequest`; only requests it accepts
        consume the reply (concurrent requests, e.g. agents running in parallel, then get
        their own answers whatever order they arrive in).

    Content (success answers)
        ``content``: assistant text (``str``), or one text per choice
        (sequence).  ``None`` means the default answer: ``default_content()``,
        or an example JSON value when the request asks for a ``json_schema``
        response format, or a tool call when ``tool_choice`` forces one; no
        text at all when ``tool_calls``, ``refusal`` or
        ``finish_reason="content_filter"`` is scripted (Azure then omits the
        choice's ``message`` entirely, like the real service).
        ``refusal``: a refusal instead of content.
        ``tool_calls``: :class:`ToolCall` objects (or dicts with ``name`` /
        ``arguments`` / ``id``) returned for every choice.
        ``finish_reason``: defaults to ``"tool_calls"`` with tool calls, else
        ``"stop"`` (Responses API: ``"length"`` -> ``status="incomplete"``,
        reason ``max_output_tokens``; ``"content_filter"`` -> reason
        ``content_filter``).
        ``model``: model name reported in the answer (default: echo request).
        ``usage``: overrides of ``DEFAULT_USAGE`` keys (and optionally
        ``total_tokens``).  ``include_usage``: ``False`` omits usage
        everywhere; ``True`` forces the final usage chunk of a stream even
        without ``stream_options.include_usage``.
        ``system_fingerprint`` / ``service_tier`` / ``response_id``: override
        those fields.  ``embedding``: the vector returned for every input.
        ``content_filter_results`` / ``prompt_filter_results``: Azure filter
        verdict overrides.  ``filters``: ``True`` sends Azure's filter verdicts
        on any path (a gateway in front of another service that adds them),
        ``False`` never; ``None`` (default) on Azure paths only.
        ``extra``: merged into the top-level JSON object (non-streaming
        answers only).

    Transport
        ``status``: an HTTP status; ``>= 400`` answers with an OpenAI style
        error body (``error`` replaces the whole error object, or tune
        ``error_message`` / ``error_type`` / ``error_code`` / ``error_param``).
        ``retry_after``: seconds, sent as ``retry-after`` (integer, rounded
        up) and ``retry-after-ms`` (429 defaults to 0.02 s).
        ``headers``: extra response headers.  ``delay``: seconds to wait
        before answering.  ``chunk_delay``: seconds between SSE events.
        ``break_after``: write that many SSE events (non-streaming: half the
        body) then close the socket abruptly.  ``disconnect``: close the
        socket without any answer.  ``malformed``: invalid JSON (non-stream
        body, or the second SSE event).  ``stream_error_after``: after that
        many SSE events send an in-stream error event (``{"error": ...}``
        for chat/completions, ``event: error`` for Responses) and end the
        stream.
        ``body``: a custom JSON body (sent as-is with ``status`` or 200).
        ``raw_body`` + ``content_type``: custom raw bytes.  ``events``: a
        custom SSE event list (see :data:`SSEEvent`); ``done`` appends
        ``data: [DONE]`` (default: yes for chat/completions, no for
        Responses, unless the list already ends with it).
    """

    endpoint: str | None = None
    times: int | None = 1
    when: Callable[[RecordedRequest], bool] | None = None

    content: str | Sequence[str] | None = None
    refusal: str | None = None
    tool_calls: Sequence[ToolCall | Mapping[str, Any]] | None = None
    finish_reason: str | None = None
    model: str | None = None
    usage: Mapping[str, int] | None = None
    include_usage: bool | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    response_id: str | None = None
    embedding: Sequence[float] | None = None
    content_filter_results: Mapping[str, Any] | None = None
    prompt_filter_results: Sequence[Mapping[str, Any]] | None = None
    filters: bool | None = None
    extra: Mapping[str, Any] | None = None

    status: int | None = None
    error: Mapping[str, Any] | None = None
    error_message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    error_param: str | None = None
    retry_after: float | None = None
    headers: Mapping[str, str] | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    break_after: int | None = None
    disconnect: bool = False
    malformed: bool = False
    stream_error_after: int | None = None
    body: Any = _UNSET
    raw_body: bytes | str | None = None
    content_type: str | None = None
    events: Sequence[SSEEvent] | None = None
    done: bool | None = None

    def matches(self, endpoint: str | None) -> bool:
        return self.endpoint is None or self.endpoint == endpoint

    def has_body(self) -> bool:
        return self.body is not _UNSET


@dataclass
class RecordedRequest:
    """One HTTP request as the server received it."""

    method: str
    path: str
    """Path without the query string, e.g. ``/v1/chat/completions``."""
    query: dict[str, str]
    headers: dict[str, str]
    """Header names lower-cased (last value wins)."""
    raw_body: bytes
    body: Any
    """The parsed JSON body (``None`` when empty or not JSON)."""
    endpoint: str | None
    """``chat.completions``, ``completions``, ``embeddings``, ``responses``, ``models`` or ``None``."""
    deployment: str | None
    """The Azure deployment from ``/openai/deployments/{deployment}/...``."""
    azure: bool
    """True for ``/openai/...`` (Azure style) paths."""
    client_address: tuple[str, int] = ("", 0)
    """The peer address; the same port for two requests means a reused keep-alive connection."""
    reply: Reply | None = None
    """The scripted reply that answered this request (``None`` = default)."""
    aborted: bool = False
    """The connection broke (client went away, or a scripted break) before the answer was complete."""
    events_sent: int = 0
    """Number of SSE events written (streaming answers)."""

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True

    @property
    def json(self) -> Any:
        return self.body

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


# --------------------------------------------------------------------------- #
# Helpers shared by the answer builders
# --------------------------------------------------------------------------- #


def default_content(model: str, index: int = 0) -> str:
    """The default assistant text for ``model`` and choice ``index``."""
    text = f"This is a mock response from {model}."
    return text if index == 0 else f"{text} (choice {index})"


def example_from_schema(schema: Any, defs: Mapping[str, Any] | None = None, _depth: int = 0) -> Any:
    """A small value that satisfies a JSON schema (structured outputs / strict tools)."""
    if not isinstance(schema, Mapping) or _depth > 12:
        return None
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        target = defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
        return example_from_schema(target, defs, _depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if options:
            non_null = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
            return example_from_schema((non_null or options)[0], defs, _depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties", {})
        return {name: example_from_schema(sub, defs, _depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [example_from_schema(schema.get("items", {}), defs, _depth + 1)]
    if kind == "string":
        return "example"
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return None


def _split_text(text: str) -> list[str]:
    """Split text into token-like stream pieces (``"a b"`` -> ``["a", " b"]``)."""
    pieces = re.findall(r"\s*\S+", text)
    tail = text[len("".join(pieces)) :]
    if tail:
        pieces.append(tail)
    return pieces


def _split_fixed(text: str, size: int = 6) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _embedding_vector(seed_text: str, dimensions: int) -> list[float]:
    # Sixteenths are exact in float32, so base64 and float answers agree exactly.
    seed = zlib.crc32(seed_text.encode("utf-8"))
    return [((seed + 5 * j) % 16) / 16.0 - 0.5 for j in range(dimensions)]


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --------------------------------------------------------------------------- #
# Answer builders (pure functions of request + reply)
# --------------------------------------------------------------------------- #


@dataclass
class _Choice:
    index: int
    content: str | None
    refusal: str | None
    tool_calls: list[ToolCall]
    finish_reason: str


@dataclass
class _Answer:
    """Everything the builders need, resolved from request + reply."""

    request: RecordedRequest
    reply: Reply
    seq: int
    model: str
    body: dict[str, Any] = field(default_factory=dict)

    # -- common bits -------------------------------------------------------- #

    @property
    def azure(self) -> bool:
        return self.request.azure

    @property
    def filters(self) -> bool:
        """Whether the answer carries Azure's prompt/content filter verdicts."""
        return self.reply.filters if self.reply.filters is not None else self.azure

    def usage_numbers(self) -> dict[str, int]:
        numbers = dict(DEFAULT_USAGE)
        numbers.update(self.reply.usage or {})
        numbers.setdefault("total_tokens", numbers["prompt_tokens"] + numbers["completion_tokens"])
        return numbers

    def want_usage_chunk(self) -> bool:
        if self.reply.include_usage is not None:
            return self.reply.include_usage
        options = self.body.get("stream_options")
        return isinstance(options, Mapping) and options.get("include_usage") is True

    def chat_usage(self) -> dict[str, Any]:
        u = self.usage_numbers()
        return {
            "prompt_tokens": u["prompt_tokens"],
            "completion_tokens": u["completion_tokens"],
            "total_tokens": u["total_tokens"],
            "prompt_tokens_details": {"cached_tokens": u["cached_tokens"], "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": u["reasoning_tokens"],
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def plain_usage(self) -> dict[str, int]:
        u = self.usage_numbers()
        return {
            "prompt_tokens": u["prompt_tokens"],
            "completion_tokens": u["completion_tokens"],
            "total_tokens": u["total_tokens"],
        }

    def service_tier(self) -> str:
        if self.reply.service_tier is not None:
            return self.reply.service_tier
        requested = self.body.get("service_tier")
        return requested if isinstance(requested, str) and requested != "auto" else "default"

    def system_fingerprint(self) -> str:
        return self.reply.system_fingerprint if self.reply.system_fingerprint is not None else "fp_mock"

    def n(self) -> int:
        n = self.body.get("n")
        return n if isinstance(n, int) and n > 0 else 1

    def filter_results(self) -> dict[str, Any]:
        return dict(self.reply.content_filter_results or AZURE_SAFE_FILTER_RESULTS)

    def prompt_filter_results(self) -> list[Any]:
        if self.reply.prompt_filter_results is not None:
            return list(self.reply.prompt_filter_results)
        return [{"prompt_index": 0, "content_filter_results": dict(AZURE_SAFE_FILTER_RESULTS)}]

    # -- deciding what the "model" says --------------------------------------- #

    def forced_tool_calls(self, responses_api: bool) -> list[ToolCall]:
        """Tool calls the request forces via ``tool_choice`` (default behaviour only)."""
        tools = self.body.get("tools") or []
        choice = self.body.get("tool_choice")
        if not tools or choice in (None, "auto", "none"):
            return []
        wanted: str | None = None
        if isinstance(choice, Mapping):
            fn = choice.get("function")
            wanted = fn.get("name") if isinstance(fn, Mapping) else choice.get("name")
        for tool in tools:
            if not isinstance(tool, Mapping):
                continue
            spec = tool if responses_api else tool.get("function", {})
            name = spec.get("name")
            if name and (wanted is None or wanted == name):
                args = example_from_schema(spec.get("parameters") or {"type": "object"}) or {}
                return [ToolCall(name=name, arguments=args)]
        return []

    def structured_schema(self, responses_api: bool) -> Mapping[str, Any] | None:
        if responses_api:
            text = self.body.get("text")
            fmt = text.get("format") if isinstance(text, Mapping) else None
            if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
                return fmt.get("schema") or {}
            return None
        fmt = self.body.get("response_format")
        if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema") or {}
            return spec.get("schema") or {}
        return None

    def choices(self, count: int, responses_api: bool = False) -> list[_Choice]:
        reply = self.reply
        tool_calls = [ToolCall.coerce(t) for t in reply.tool_calls] if reply.tool_calls is not None else None
        if tool_calls is None and reply.content is None and reply.refusal is None:
            tool_calls = self.forced_tool_calls(responses_api)
        tool_calls = tool_calls or []
        result: list[_Choice] = []
        for index in range(count):
            content: str | None
            if isinstance(reply.content, str):
                content = reply.content
            elif reply.content is not None:
                texts = list(reply.content)
                content = texts[index] if index < len(texts) else texts[-1]
            elif tool_calls or reply.refusal is not None or reply.finish_reason == "content_filter":
                content = None  # a filtered answer has no text unless scripted
            else:
                schema = self.structured_schema(responses_api)
                if schema is not None:
                    content = json.dumps(example_from_schema(schema))
                else:
                    content = default_content(self.model, index)
            finish = reply.finish_reason or ("tool_calls" if tool_calls else "stop")
            result.append(_Choice(index, content, reply.refusal, tool_calls, finish))
        return result

    def tool_call_id(self, choice: int, position: int, call: ToolCall) -> str:
        return call.id or f"call_mock{self.seq:04d}_{choice}_{position}"

    # -- chat completions ---------------------------------------------------- #

    def chat_id(self) -> str:
        return self.reply.response_id or f"chatcmpl-mock{self.seq:06d}"

    def chat_completion(self) -> dict[str, Any]:
        choices: list[dict[str, Any]] = []
        for choice in self.choices(self.n()):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": choice.content,
                "refusal": choice.refusal,
                "annotations": [],
            }
            if choice.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": self.tool_call_id(choice.index, pos, call),
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments_json()},
                    }
                    for pos, call in enumerate(choice.tool_calls)
                ]
            entry: dict[str, Any] = {
                "index": choice.index,
                "message": message,
                "logprobs": None,
                "finish_reason": choice.finish_reason,
            }
            if self.filters:
                entry["content_filter_results"] = self.filter_results()
            if (
                self.azure
                and choice.finish_reason == "content_filter"
                and choice.content is None
                and not choice.tool_calls
            ):
                del entry["message"]  # Azure omits the message of a filtered completion
            choices.append(entry)
        body: dict[str, Any] = {
            "id": self.chat_id(),
            "object": "chat.completion",
            "created": CREATED,
            "model": self.model,
            "choices": choices,
        }
        if self.reply.include_usage is not False:
            body["usage"] = self.chat_usage()
        if self.filters:
            body["prompt_filter_results"] = self.prompt_filter_results()
        if not self.azure:
            body["service_tier"] = self.service_tier()
        body["system_fingerprint"] = self.system_fingerprint()
        body.update(self.reply.extra or {})
        return body

    def chat_chunk_events(self) -> list[SSEEvent]:
        include_usage = self.want_usage_chunk()

        def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": self.chat_id(),
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": self.model,
            }
            if not self.azure:
                data["service_tier"] = self.service_tier()
            data["system_fingerprint"] = self.system_fingerprint()
            data["choices"] = choices
            if include_usage:
                data["usage"] = None
            return data

        per_choice: list[list[dict[str, Any]]] = []
        for choice in self.choices(self.n()):
            steps: list[tuple[dict[str, Any], str | None]] = []
            first: dict[str, Any] = {
                "role": "assistant",
                "content": None if choice.tool_calls else "",
                "refusal": None,
            }
            steps.append((first, None))
            for piece in _split_text(choice.content or ""):
                steps.append(({"content": piece}, None))
            for piece in _split_text(choice.refusal or ""):
                steps.append(({"refusal": piece}, None))
            for pos, call in enumerate(choice.tool_calls):
                opening = {
                    "index": pos,
                    "id": self.tool_call_id(choice.index, pos, call),
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
                steps.append(({"tool_calls": [opening]}, None))
                for fragment in _split_fixed(call.arguments_json()):
                    steps.append(
                        ({"tool_calls": [{"index": pos, "function": {"arguments": fragment}}]}, None)
                    )
            steps.append(({}, choice.finish_reason))
            entries = []
            for number, (delta, finish) in enumerate(steps):
                entry: dict[str, Any] = {
                    "index": choice.index,
                    "delta": delta,
                    "logprobs": None,
                    "finish_reason": finish,
                }
                if self.filters:
                    carries_text = "content" in delta and delta.get("content") and number > 0
                    # Azure puts the verdict that stopped a choice on the chunk that ends it.
                    stopped = finish == "content_filter"
                    entry["content_filter_results"] = self.filter_results() if carries_text or stopped else {}
                entries.append(entry)
            per_choice.append(entries)

        events: list[SSEEvent] = []
        if self.filters:
            events.append(
                {
                    "choices": [],
                    "created": 0,
                    "id": "",
                    "model": "",
                    "object": "",
                    "prompt_filter_results": self.prompt_filter_results(),
                }
            )
        for group in itertools.zip_longest(*per_choice):  # interleave choices like the real API
            for entry in group:
                if entry is not None:
                    events.append(chunk([entry]))
        if include_usage:
            final = chunk([])
            final["usage"] = self.chat_usage()
            events.append(final)
        return events

    # -- legacy completions -------------------------------------------------- #

    def legacy_choices(self) -> list[_Choice]:
        prompt = self.body.get("prompt")
        prompts = len(prompt) if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int) else 1
        return self.choices(prompts * self.n())

    def legacy_completion(self) -> dict[str, Any]:
        choices = []
        for choice in self.legacy_choices():
            entry: dict[str, Any] = {
                "text": choice.content or "",
                "index": choice.index,
                "logprobs": None,
                "finish_reason": choice.finish_reason if choice.finish_reason != "tool_calls" else "stop",
            }
            if self.filters:
                entry["content_filter_results"] = self.filter_results()
            choices.append(entry)
        body: dict[str, Any] = {
            "id": self.reply.response_id or f"cmpl-mock{self.seq:06d}",
            "object": "text_completion",
            "created": CREATED,
            "model": self.model,
            "choices": choices,
        }
        if self.reply.include_usage is not False:
            body["usage"] = self.plain_usage()
        if self.filters:
            body["prompt_filter_results"] = self.prompt_filter_results()
        body["system_fingerprint"] = self.system_fingerprint()
        body.update(self.reply.extra or {})
        return body

    def legacy_chunk_events(self) -> list[SSEEvent]:
        ident = self.reply.response_id or f"cmpl-mock{self.seq:06d}"
        include_usage = self.want_usage_chunk()

        def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": ident,
                "object": "text_completion",
                "created": CREATED,
                "model": self.model,
                "system_fingerprint": self.system_fingerprint(),
                "choices": choices,
            }
            if include_usage:
                data["usage"] = None
            return data

        per_choice = []
        for choice in self.legacy_choices():
            finish = choice.finish_reason if choice.finish_reason != "tool_calls" else "stop"
            steps = [(piece, None) for piece in _split_text(choice.content or "")] + [("", finish)]
            entries = []
            for text, fr in steps:
                entry: dict[str, Any] = {
                    "text": text,
                    "index": choice.index,
                    "logprobs": None,
                    "finish_reason": fr,
                }
                if self.filters:
                    entry["content_filter_results"] = self.filter_results() if text else {}
                entries.append(entry)
            per_choice.append(entries)
        events: list[SSEEvent] = []
        for group in itertools.zip_longest(*per_choice):
            for entry in group:
                if entry is not None:
                    events.append(chunk([entry]))
        if self.filters and events:
            first = events[0]
            assert isinstance(first, dict)
            first["prompt_filter_results"] = self.prompt_filter_results()
        if include_usage:
            final = chunk([])
            final["usage"] = self.plain_usage()
            events.append(final)
        return events

    # -- embeddings ------------------------------------------------------------ #

    def embeddings(self) -> dict[str, Any]:
        raw_input = self.body.get("input", "")
        if isinstance(raw_input, list) and raw_input and not isinstance(raw_input[0], int):
            inputs = list(raw_input)
        else:
            inputs = [raw_input]
        dims = self.body.get("dimensions")
        dims = dims if isinstance(dims, int) and dims > 0 else DEFAULT_EMBEDDING_DIMENSIONS
        as_base64 = self.body.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(inputs):
            vector = (
                list(self.reply.embedding)
                if self.reply.embedding is not None
                else _embedding_vector(repr(item), dims)
            )
            encoded: Any = vector
            if as_base64:
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        body: dict[str, Any] = {"object": "list", "data": data, "model": self.model}
        if self.reply.include_usage is not False:
            prompt_tokens = self.usage_numbers()["prompt_tokens"]
            body["usage"] = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
        body.update(self.reply.extra or {})
        return body

    # -- Responses API --------------------------------------------------------- #

    def response_id(self) -> str:
        return self.reply.response_id or f"resp_mock{self.seq:06d}"

    def responses_usage(self) -> dict[str, Any]:
        u = self.usage_numbers()
        return {
            "input_tokens": u["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": u["cached_tokens"]},
            "output_tokens": u["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": u["reasoning_tokens"]},
            "total_tokens": u["total_tokens"],
        }

    def responses_output(self) -> list[dict[str, Any]]:
        choice = self.choices(1, responses_api=True)[0]
        items: list[dict[str, Any]] = []
        reasoning = self.body.get("reasoning")
        if isinstance(reasoning, Mapping) and reasoning.get("effort") is not None:
            items.append({"id": f"rs_mock{self.seq:06d}", "type": "reasoning", "summary": []})
        if choice.content is not None or choice.refusal is not None:
            parts: list[dict[str, Any]] = []
            if choice.content is not None:
                parts.append(
                    {"type": "output_text", "annotations": [], "logprobs": [], "text": choice.content}
                )
            if choice.refusal is not None:
                parts.append({"type": "refusal", "refusal": choice.refusal})
            items.append(
                {
                    "id": f"msg_mock{self.seq:06d}",
                    "type": "message",
                    "status": "completed",
                    "content": parts,
                    "role": "assistant",
                }
            )
        for pos, call in enumerate(choice.tool_calls):
            items.append(
                {
                    "id": f"fc_mock{self.seq:06d}_{pos}",
                    "type": "function_call",
                    "status": "completed",
                    "arguments": call.arguments_json(),
                    "call_id": self.tool_call_id(0, pos, call),
                    "name": call.name,
                }
            )
        return items

    def responses_status(self) -> tuple[str, dict[str, str] | None]:
        finish = self.reply.finish_reason
        if finish == "length":
            return "incomplete", {"reason": "max_output_tokens"}
        if finish == "content_filter":
            return "incomplete", {"reason": "content_filter"}
        return "completed", None

    def response_object(self, *, in_progress: bool = False) -> dict[str, Any]:
        body = self.body
        status, incomplete = self.responses_status()
        text: Mapping[str, Any] = body["text"] if isinstance(body.get("text"), Mapping) else {}
        reasoning: Mapping[str, Any] = body["reasoning"] if isinstance(body.get("reasoning"), Mapping) else {}
        obj: dict[str, Any] = {
            "id": self.response_id(),
            "object": "response",
            "created_at": CREATED,
            "status": "in_progress" if in_progress else status,
            "background": bool(body.get("background", False)),
            "error": None,
            "incomplete_details": None if in_progress else incomplete,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "model": self.model,
            "output": [] if in_progress else self.responses_output(),
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "safety_identifier": body.get("safety_identifier"),
            "service_tier": self.service_tier(),
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": {
                "format": text.get("format", {"type": "text"}),
                "verbosity": text.get("verbosity", "medium"),
            },
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_logprobs": body.get("top_logprobs", 0),
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": None if in_progress or self.reply.include_usage is False else self.responses_usage(),
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }
        if not in_progress:
            obj.update(self.reply.extra or {})
        return obj

    def responses_events(self) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        seq = itertools.count()

        def emit(kind: str, **payload: Any) -> None:
            events.append((kind, {"type": kind, "sequence_number": next(seq), **payload}))

        emit("response.created", response=self.response_object(in_progress=True))
        emit("response.in_progress", response=self.response_object(in_progress=True))
        final = self.response_object()
        for index, item in enumerate(final["output"]):
            if item["type"] == "message":
                emit(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "content": []},
                )
                for part_index, part in enumerate(item["content"]):
                    common = {"item_id": item["id"], "output_index": index, "content_index": part_index}
                    if part["type"] == "output_text":
                        emit("response.content_part.added", **common, part={**part, "text": ""})
                        for piece in _split_text(part["text"]):
                            emit("response.output_text.delta", **common, delta=piece, logprobs=[])
                        emit("response.output_text.done", **common, text=part["text"], logprobs=[])
                    else:
                        emit("response.content_part.added", **common, part={**part, "refusal": ""})
                        for piece in _split_text(part["refusal"]):
                            emit("response.refusal.delta", **common, delta=piece)
                        emit("response.refusal.done", **common, refusal=part["refusal"])
                    emit("response.content_part.done", **common, part=part)
            elif item["type"] == "function_call":
                emit(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "arguments": ""},
                )
                for fragment in _split_fixed(item["arguments"]):
                    emit(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=index,
                        delta=fragment,
                    )
                emit(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    arguments=item["arguments"],
                )
            else:
                emit("response.output_item.added", output_index=index, item=item)
            emit("response.output_item.done", output_index=index, item=item)
        emit(
            "response.completed" if final["status"] == "completed" else "response.incomplete", response=final
        )
        return events


# --------------------------------------------------------------------------- #
# HTTP plumbing
# --------------------------------------------------------------------------- #


class _Handler(MockHandler):
    server_version = "mock-openai/1.0"

    do_GET = MockHandler.do_POST
    do_DELETE = MockHandler.do_POST
    do_PUT = MockHandler.do_POST
    do_PATCH = MockHandler.do_POST


class _Wire(MockWire):
    """Writes one answer to the handler's socket."""

    def send_json(self, status: int, obj: Any, headers: Mapping[str, str]) -> None:
        self.send_bytes(status, _json_bytes(obj), "application/json", headers)

    def send_sse(
        self,
        events: Iterable[SSEEvent],
        headers: Mapping[str, str],
        chunk_delay: float = 0.0,
        break_after: int | None = None,
    ) -> None:
        all_headers = {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Transfer-Encoding": "chunked",
            "Cache-Control": "no-cache",
            **headers,
        }
        self.send_chunked(all_headers, events, _encode_sse, chunk_delay, break_after)


def _encode_sse(event: SSEEvent) -> bytes:
    name: str | None = None
    payload: Any = event
    if isinstance(event, tuple):
        name, payload = event
    data = (
        payload
        if isinstance(payload, str)
        else json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    )
    lines = [f"event: {name}"] if name else []
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


# --------------------------------------------------------------------------- #
# The server
# --------------------------------------------------------------------------- #


class OpenAIMockServer(MockServerBase[Reply, RecordedRequest]):
    """A scripted fake OpenAI (and Azure OpenAI) HTTP server on 127.0.0.1.

    Use as a context manager or call :meth:`start` / :meth:`stop`.  Thread-safe.
    """

    _reply_class = Reply
    _handler_class = _Handler
    _wire_class = _Wire
    _thread_name = "openai-mock-server"
    _not_running = "OpenAIMockServer is not running; call start() first"
    _label = "OpenAI"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._seq = itertools.count(1)

    # -- addresses ---------------------------------------------------------------- #

    @property
    def base_url(self) -> str:
        """``url + "/v1"``: the ``base_url`` for ``OpenAI(...)``."""
        return self.url + "/v1"

    @property
    def azure_endpoint(self) -> str:
        """The ``azure_endpoint`` for ``AzureOpenAI(...)`` (same as :attr:`url`)."""
        return self.url

    # -- SDK client conveniences (import openai lazily) ------------------------------ #

    def client(self, **kwargs: Any) -> OpenAI:
        """``openai.OpenAI`` pointed at this server (``api_key="test"``, ``max_retries=0`` unless given)."""
        from openai import OpenAI

        kwargs.setdefault("api_key", "test")
        kwargs.setdefault("max_retries", 0)
        return OpenAI(base_url=self.base_url, **kwargs)

    def async_client(self, **kwargs: Any) -> AsyncOpenAI:
        from openai import AsyncOpenAI

        kwargs.setdefault("api_key", "test")
        kwargs.setdefault("max_retries", 0)
        return AsyncOpenAI(base_url=self.base_url, **kwargs)

    def azure_client(self, **kwargs: Any) -> AzureOpenAI:
        """``openai.AzureOpenAI`` pointed at this server (``api_version="2024-06-01"`` unless given)."""
        from openai import AzureOpenAI

        kwargs.setdefault("api_key", "test")
        kwargs.setdefault("api_version", "2024-06-01")
        kwargs.setdefault("max_retries", 0)
        return AzureOpenAI(azure_endpoint=self.azure_endpoint, **kwargs)

    def async_azure_client(self, **kwargs: Any) -> AsyncAzureOpenAI:
        from openai import AsyncAzureOpenAI

        kwargs.setdefault("api_key", "test")
        kwargs.setdefault("api_version", "2024-06-01")
        kwargs.setdefault("max_retries", 0)
        return AsyncAzureOpenAI(azure_endpoint=self.azure_endpoint, **kwargs)

    # -- scripting ------------------------------------------------------------------- #

    def script_error(
        self,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        **fields: Any,
    ) -> Reply:
        """Queue an OpenAI style error answer (``{"error": {...}}`` with ``status``)."""
        return self.script(
            status=status,
            error_message=message,
            error_code=code,
            error_type=type,
            error_param=param,
            retry_after=retry_after,
            **fields,
        )

    def script_tool_calls(self, *calls: ToolCall | Mapping[str, Any], **fields: Any) -> Reply:
        """Queue an answer in which the model calls ``calls``."""
        return self.script(tool_calls=list(calls), **fields)

    def script_broken_stream(self, after: int = 3, **fields: Any) -> Reply:
        """Queue an answer that sends ``after`` SSE events then drops the connection."""
        return self.script(break_after=after, **fields)

    # -- internals ------------------------------------------------------------------- #

    def _record(self, handler: MockHandler) -> RecordedRequest:
        raw = self._read_body(handler)
        split = urlsplit(handler.path)
        match = _ROUTE.match(split.path)
        rest = match.group("rest") if match else split.path
        prefix = (match.group("prefix") if match else None) or ""
        return self._remember(
            RecordedRequest(
                method=handler.command,
                path=split.path,
                query=dict(parse_qsl(split.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in handler.headers.items()},
                raw_body=raw,
                body=parse_json_body(raw),
                endpoint=_ENDPOINTS.get(rest.rstrip("/")),
                deployment=match.group("deployment") if match else None,
                azure=prefix.startswith("/openai"),
                client_address=(str(handler.client_address[0]), int(handler.client_address[1])),
            )
        )

    def _scripted(self, endpoint: str | None) -> bool:
        return endpoint != "models"

    def _accepts(self, reply: Reply, record: RecordedRequest) -> bool:
        return reply.when is None or bool(reply.when(record))

    def _send_rig_error(self, wire: _Wire, exc: BaseException) -> None:
        wire.send_json(500, {"error": {"message": f"mock server error: {exc!r}", "type": "mock_error"}}, {})

    def _base_headers(self, record: RecordedRequest, seq: int) -> dict[str, str]:
        headers = {
            "x-request-id": f"req_mock{seq:06d}",
            "openai-processing-ms": "1",
            "openai-version": "2020-10-01",
            "openai-organization": "org-mock",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-limit-tokens": "1000000",
            "x-ratelimit-remaining-tokens": "999970",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-reset-tokens": "1ms",
        }
        if record.azure:
            headers["apim-request-id"] = f"00000000-0000-4000-8000-{seq:012d}"
            headers["x-ms-region"] = "East US 2"
            headers["azureml-model-session"] = "mock-session"
        return headers

    def _error_body(self, record: RecordedRequest, reply: Reply, status: int, model: str) -> dict[str, Any]:
        if reply.error is not None:
            return {"error": dict(reply.error)}
        message, kind, code = _DEFAULT_ERRORS.get(status, (f"Mock error {status}.", "api_error", None))
        if record.azure and status == 404 and record.deployment:
            message, kind, code = (
                "The API deployment for this resource does not exist.",
                "invalid_request_error",
                "DeploymentNotFound",
            )
        return {
            "error": {
                "message": reply.error_message or message.format(model=model),
                "type": reply.error_type or kind,
                "param": reply.error_param,
                "code": reply.error_code or code,
            }
        }

    def _answer(self, wire: _Wire, record: RecordedRequest, reply: Reply) -> None:
        seq = next(self._seq)
        body = record.body if isinstance(record.body, dict) else {}
        model = reply.model or str(body.get("model") or record.deployment or "mock-model")
        headers = self._base_headers(record, seq)
        if reply.headers:
            headers.update(reply.headers)

        wire.sleep(reply.delay)
        if reply.disconnect:
            wire.abort()
            return

        status = reply.status or 200
        if status >= 400 and not reply.has_body() and reply.raw_body is None:
            retry_after = (
                reply.retry_after if reply.retry_after is not None else (0.02 if status == 429 else None)
            )
            if retry_after is not None:
                headers.setdefault("retry-after", str(max(0, math.ceil(retry_after))))
                headers.setdefault("retry-after-ms", str(int(retry_after * 1000)))
            if status == 429:
                headers["x-ratelimit-remaining-requests"] = "0"
            wire.send_json(status, self._error_body(record, reply, status, model), headers)
            return
        if reply.raw_body is not None:
            raw = reply.raw_body.encode("utf-8") if isinstance(reply.raw_body, str) else reply.raw_body
            wire.send_bytes(
                status, raw, reply.content_type or "application/json", headers, reply.break_after is not None
            )
            return
        if reply.has_body():
            payload = _json_bytes(reply.body)
            wire.send_bytes(
                status,
                payload,
                reply.content_type or "application/json",
                headers,
                reply.break_after is not None,
            )
            return

        if record.endpoint is None:
            wire.send_json(
                404,
                {
                    "error": {
                        "message": f"Invalid URL ({record.method} {record.path})",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
                headers,
            )
            return
        if record.endpoint == "models":
            wire.send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": "gpt-4o-mini", "object": "model", "created": CREATED, "owned_by": "system"}
                    ],
                },
                headers,
            )
            return
        if record.raw_body and record.body is None:
            wire.send_json(
                400,
                {
                    "error": {
                        "message": "We could not parse the JSON body of your request.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
                headers,
            )
            return

        answer = _Answer(request=record, reply=reply, seq=seq, model=model, body=body)
        streaming = record.stream and record.endpoint != "embeddings"
        if reply.events is not None:
            self._send_events(wire, record, reply, list(reply.events), headers)
            return
        if not streaming:
            if reply.malformed:
                wire.send_bytes(status, b'{"id": "broken", "choices": [', "application/json", headers)
                return
            builders = {
                "chat.completions": answer.chat_completion,
                "completions": answer.legacy_completion,
                "embeddings": answer.embeddings,
                "responses": answer.response_object,
            }
            payload = _json_bytes(builders[record.endpoint]())
            wire.send_bytes(status, payload, "application/json", headers, reply.break_after is not None)
            return

        if record.endpoint == "chat.completions":
            events = answer.chat_chunk_events()
        elif record.endpoint == "completions":
            events = answer.legacy_chunk_events()
        else:
            events = answer.responses_events()
        if reply.malformed:
            events.insert(min(1, len(events)), "{not valid json")
        if reply.stream_error_after is not None:
            events = events[: reply.stream_error_after]
            error = self._error_body(
                record, reply, reply.status if reply.status and reply.status >= 400 else 500, model
            )
            if record.endpoint == "responses":
                err = error["error"]
                events.append(
                    (
                        "error",
                        {
                            "type": "error",
                            "code": err.get("code"),
                            "message": err.get("message"),
                            "param": err.get("param"),
                            "sequence_number": len(events),
                        },
                    )
                )
            else:
                events.append(error)
        self._send_events(wire, record, reply, events, headers)

    def _send_events(
        self,
        wire: _Wire,
        record: RecordedRequest,
        reply: Reply,
        events: list[SSEEvent],
        headers: Mapping[str, str],
    ) -> None:
        done = reply.done if reply.done is not None else record.endpoint != "responses"
        if done and not (events and events[-1] == DONE):
            events.append(DONE)
        wire.send_sse(events, headers, chunk_delay=reply.chunk_delay, break_after=reply.break_after)
