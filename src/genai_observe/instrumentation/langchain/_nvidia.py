"""NVIDIA NIM embeddings made through ``langchain-nvidia-ai-endpoints`` (``NVIDIAEmbeddings``).

LangChain embeddings emit no callbacks and this package talks HTTP with ``requests``/``aiohttp``,
so nothing else records these calls. ``embed_query``, ``embed_documents``, ``aembed_query`` and
``aembed_documents`` are declared as kit :class:`Operation` s: one ``embeddings`` LLMCall per call
(provider ``nvidia_nim``). The public methods return only vectors, so the token counts and the
answering model are read from the parsed response body that ``_process_response`` receives (once
per batch; summed), noted for the call in progress in a context variable the operation's
``enter``/``leave`` hooks set around the outermost call.

Nothing here imports the package: the wrappers are installed from a post-import hook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any, Final
from urllib.parse import urlunsplit

from ..._core import semconv as sc
from ..._core.diagnostics import report_internal_error
from ..._core.record import LLMCall, Message, Usage
from ..._core.recorder import Recorder
from .._kit.endpoints import split
from .._kit.operations import Args, Kwargs, Operation
from .._kit.operations import wrapper as operation_wrapper

MODULE: Final = "langchain_nvidia_ai_endpoints.embeddings"
CLASS: Final = "NVIDIAEmbeddings"
# method -> (is async, takes one text)
METHODS: Final[dict[str, tuple[bool, bool]]] = {
    "embed_query": (False, True),
    "embed_documents": (False, False),
    "aembed_query": (True, True),
    "aembed_documents": (True, False),
}


class _Seen:
    """What the response bodies of one wrapped call said (several bodies when batched)."""

    __slots__ = ("input_tokens", "model", "total_tokens")

    def __init__(self) -> None:
        self.input_tokens: int | None = None
        self.total_tokens: int | None = None
        self.model: str | None = None

    def add(self, body: Any) -> None:
        if not isinstance(body, Mapping):
            return
        model = body.get("model")
        if self.model is None and isinstance(model, str) and model:
            self.model = model
        usage = body.get("usage")
        if isinstance(usage, Mapping):
            self.input_tokens = _plus(self.input_tokens, usage.get("prompt_tokens"))
            self.total_tokens = _plus(self.total_tokens, usage.get("total_tokens"))


def _plus(total: int | None, value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return total
    return value if total is None else total + value


# The wrapped call in progress (innermost), for the _process_response wrapper.
_SEEN: ContextVar[_Seen | None] = ContextVar("genai_observe_nvidia_embeddings", default=None)


def request(instance: Any, texts: Any, *, one: bool) -> LLMCall:
    call = LLMCall(operation=sc.OP_EMBEDDINGS, provider=sc.PROVIDER_NVIDIA_NIM)
    model = getattr(instance, "model", None)
    call.request_model = model if isinstance(model, str) and model else None
    base = getattr(instance, "base_url", None) or getattr(
        getattr(instance, "_client", None), "base_url", None
    )
    if isinstance(base, str):
        host, port, parts = split(base)
        if host:
            call.server_address, call.server_port = host, port
            netloc = f"{parts.hostname}:{parts.port}" if port is not None and parts.port else parts.hostname
            call.api_base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    call.encoding_formats = ["float"]  # what the package always asks for
    items = [texts] if one else texts
    if isinstance(items, (list, tuple)):
        call.input_messages = [Message(role="user", content=t) for t in items if isinstance(t, str)]
    return call


def fill(call: LLMCall, result: Any, seen: _Seen, *, one: bool) -> None:
    vectors = [result] if one else result
    if isinstance(vectors, (list, tuple)):
        call.embedding_count = len(vectors)
        first = vectors[0] if vectors else None
        if isinstance(first, (list, tuple)):
            call.embedding_vector_size = len(first)
    call.response_model = seen.model
    if seen.input_tokens is not None or seen.total_tokens is not None:
        call.usage = Usage(input_tokens=seen.input_tokens, total_tokens=seen.total_tokens)


def _enter() -> Token[_Seen | None] | None:
    """Bodies seen from here on belong to this call, unless it runs inside another wrapped call
    (``embed_query`` calling ``embed_documents``): the outermost call counts."""
    return _SEEN.set(_Seen()) if _SEEN.get() is None else None


def _leave(token: Token[_Seen | None] | None) -> None:
    if token is not None:
        _SEEN.reset(token)


def operation(method: str) -> Operation:
    """The kit operation for one of :data:`METHODS`."""
    is_async, one = METHODS[method]
    arg = "text" if one else "texts"

    def read_request(instance: Any, args: Args, kwargs: Kwargs) -> LLMCall:
        return request(instance, args[0] if args else kwargs.get(arg), one=one)

    def read_response(call: LLMCall, result: Any) -> None:
        fill(call, result, _SEEN.get() or _Seen(), one=one)

    return Operation(MODULE, f"{CLASS}.{method}", read_request, read_response, is_async=is_async)


def wrapper(recorder: Recorder, method: str) -> Callable[..., Any]:
    return operation_wrapper(recorder, operation(method), enter=_enter, leave=_leave)


def process_response(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``_process_response(result)``: note the body's usage and model for the call in progress."""
    seen = _SEEN.get()
    if seen is not None:
        try:
            seen.add(args[0] if args else kwargs.get("result"))
        except Exception as exc:
            report_internal_error("langchain.nvidia_usage", exc)
    return wrapped(*args, **kwargs)
