"""Instrumentation of the official ``openai`` client (OpenAI, Azure OpenAI, NVIDIA NIM, vLLM, Ollama).

Patched at class level, so clients created before ``init()`` are covered, and lazily on import, so
an app that never imports ``openai`` pays nothing. See docs/openai.md.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, ClassVar

from ..._core.config import parse_bool
from ..._core.diagnostics import report_internal_error
from ..._core.record import LLMCall
from ..._core.recorder import Recorder
from ..._core.streams import END_CLOSED, AsyncStreamProxy, ChunkFilter, SyncStreamProxy
from .._kit.base import GenAIInstrumentor
from .._kit.operations import Operation
from .._kit.read import given
from . import _adapter as ad

ENV_STREAM_USAGE = "GENAI_OBSERVE_OPENAI_STREAM_USAGE"

RequestReader = Callable[[ad.ClientInfo, Mapping[str, Any]], LLMCall]
ResponseReader = Callable[[LLMCall, Any], None]

# (module, "Class.method", request reader, response reader, stream accumulator class)
_TARGETS: tuple[tuple[str, str, RequestReader, ResponseReader, Any], ...] = (
    (
        "openai.resources.chat.completions",
        "Completions.create",
        ad.chat_request,
        ad.chat_response,
        ad.ChatStream,
    ),
    (
        "openai.resources.chat.completions",
        "Completions.parse",
        ad.chat_request,
        ad.chat_response,
        ad.ChatStream,
    ),
    (
        "openai.resources.chat.completions",
        "AsyncCompletions.create",
        ad.chat_request,
        ad.chat_response,
        ad.ChatStream,
    ),
    (
        "openai.resources.chat.completions",
        "AsyncCompletions.parse",
        ad.chat_request,
        ad.chat_response,
        ad.ChatStream,
    ),
    # openai < 1.92 kept .parse under beta
    (
        "openai.resources.beta.chat.completions",
        "Completions.parse",
        ad.chat_request,
        ad.chat_response,
        ad.ChatStream,
    ),
    (
        "openai.resources.beta.chat.completions",
        "AsyncCompletions.parse",
        ad.chat_request,
        ad.chat_response,
        ad.ChatStream,
    ),
    (
        "openai.resources.completions",
        "Completions.create",
        ad.completion_request,
        ad.completion_response,
        ad.CompletionStream,
    ),
    (
        "openai.resources.completions",
        "AsyncCompletions.create",
        ad.completion_request,
        ad.completion_response,
        ad.CompletionStream,
    ),
    ("openai.resources.embeddings", "Embeddings.create", ad.embeddings_request, ad.embeddings_response, None),
    (
        "openai.resources.embeddings",
        "AsyncEmbeddings.create",
        ad.embeddings_request,
        ad.embeddings_response,
        None,
    ),
    (
        "openai.resources.responses",
        "Responses.create",
        ad.responses_request,
        ad.responses_response,
        ad.ResponsesStream,
    ),
    (
        "openai.resources.responses",
        "Responses.parse",
        ad.responses_request,
        ad.responses_response,
        ad.ResponsesStream,
    ),
    (
        "openai.resources.responses",
        "AsyncResponses.create",
        ad.responses_request,
        ad.responses_response,
        ad.ResponsesStream,
    ),
    (
        "openai.resources.responses",
        "AsyncResponses.parse",
        ad.responses_request,
        ad.responses_response,
        ad.ResponsesStream,
    ),
)


# The SDK's ``.stream()`` helpers (``chat.completions.stream``, ``responses.stream``): the manager's
# ``__exit__`` closes the helper stream, whose ``close()`` closes the HTTP response directly, not the
# instrumented stream the helper reads from. Both are wrapped so the operation ends right there.
# (module, manager class, helper stream class, is_async)
_HELPERS: tuple[tuple[str, str, str, bool], ...] = (
    ("openai.lib.streaming.chat._completions", "ChatCompletionStreamManager", "ChatCompletionStream", False),
    (
        "openai.lib.streaming.chat._completions",
        "AsyncChatCompletionStreamManager",
        "AsyncChatCompletionStream",
        True,
    ),
    ("openai.lib.streaming.responses._responses", "ResponseStreamManager", "ResponseStream", False),
    ("openai.lib.streaming.responses._responses", "AsyncResponseStreamManager", "AsyncResponseStream", True),
)


class OpenAIInstrumentor(GenAIInstrumentor):
    """Instruments ``openai`` chat/completions/embeddings/responses, sync and async.

    Usable on its own: ``OpenAIInstrumentor().instrument(tracer_provider=..., meter_provider=...)``.
    Streamed chat and text completions whose caller set no ``stream_options`` ask the server for
    their token usage, and the extra chunk that carries it is read by us and never reaches the
    caller (docs/openai.md, "Token usage in streams"). Option ``stream_usage`` (or
    GENAI_OBSERVE_OPENAI_STREAM_USAGE): unset, for the servers known to accept ``stream_options``;
    True, for every server; False, never.
    """

    name: ClassVar[str] = "openai"
    module: ClassVar[str] = "openai"
    requirements: ClassVar[tuple[str, ...]] = ("openai >= 1.40",)

    def _instrument(self, **kwargs: Any) -> None:
        option = kwargs.get("stream_usage")
        if option is None:
            env = os.environ.get(ENV_STREAM_USAGE)
            option = parse_bool(ENV_STREAM_USAGE, env) if env else None
        self._stream_usage: bool | None = None if option is None else parse_bool("stream_usage", option)
        self._nim = ad.nim_hosts()
        super()._instrument(**kwargs)

    def _patch(self, module: ModuleType) -> None:
        # Each resource and helper module is patched when the application imports it: ``import
        # openai`` loads none of them, and the Responses API's alone takes ~200 ms to import.
        for module_name in dict.fromkeys([t[0] for t in _TARGETS] + [h[0] for h in _HELPERS]):
            self._when_imported(module_name, functools.partial(self._patch_module, module_name))

    def _patch_module(self, module_name: str) -> None:
        for target_module, path, read_request, read_response, stream_cls in _TARGETS:
            if target_module == module_name:
                op = self._operation(target_module, path, read_request, read_response, stream_cls)
                asks_usage = self._stream_usage is not False and stream_cls in (
                    ad.ChatStream,
                    ad.CompletionStream,
                )
                prepare = functools.partial(_ask_usage, self._stream_usage, self._nim) if asks_usage else None
                self._wrap_operation(op, prepare=prepare)
        for helper_module, manager, helper, is_async in _HELPERS:
            if helper_module != module_name:
                continue
            try:
                if is_async:
                    self._wrap(module_name, f"{manager}.__aexit__", _async_ender(_manager_stream(manager)))
                    self._wrap(module_name, f"{helper}.close", _async_ender(_itself))
                else:
                    self._wrap(module_name, f"{manager}.__exit__", _sync_ender(_manager_stream(manager)))
                    self._wrap(module_name, f"{helper}.close", _sync_ender(_itself))
            except Exception:  # not in this SDK version (1.40 has no Responses API)
                continue

    def _operation(
        self,
        module_name: str,
        path: str,
        read_request: RequestReader,
        read_response: ResponseReader,
        stream_cls: Any,
    ) -> Operation:
        """One row of _TARGETS as the kit's contract: the request is read with the client's info."""
        nim = self._nim

        def request(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMCall:
            return read_request(ad.client_info(instance._client, nim), kwargs)

        request.__qualname__ = read_request.__qualname__  # failures are reported by the reader's name
        return Operation(
            module_name,
            path,
            request,
            read_response,
            stream=None if stream_cls is None else functools.partial(_accumulator, stream_cls),
            is_async=path.startswith("Async"),
            raw=True,
        )


def _accumulator(stream_cls: Any, recorder: Recorder, call: LLMCall) -> Any:
    return stream_cls(recorder.capture.any, call)


# The header the SDK's with_raw_response / with_streaming_response add to the request: their
# callers read the bytes themselves, so nothing could hide an extra chunk from them.
_RAW_RESPONSE_HEADER = "x-stainless-raw-response"


def _ask_usage(
    force: bool | None, nim: frozenset[str], instance: Any, kwargs: dict[str, Any]
) -> tuple[dict[str, Any], ChunkFilter | None]:
    """A stream the caller set no ``stream_options`` for asks for the final usage chunk, which
    the caller's stream then skips (``ad.injected_usage_chunk``).

    ``force`` None: only where the server is known to accept it; True: everywhere. Never for raw
    responses, and never over the caller's own ``stream_options`` (``None`` included: sent as is).
    """
    if kwargs.get("stream") is not True:
        return kwargs, None
    options = kwargs.get("stream_options", _ABSENT)
    if options is not _ABSENT and (options is None or given(options)):
        return kwargs, None  # the caller's choice
    headers = kwargs.get("extra_headers")
    if isinstance(headers, Mapping) and any(
        isinstance(k, str) and k.lower() == _RAW_RESPONSE_HEADER for k in headers
    ):
        return kwargs, None
    if force is None and not ad.client_info(instance._client, nim).stream_options:
        return kwargs, None
    return {**kwargs, "stream_options": {"include_usage": True}}, ad.injected_usage_chunk


_ABSENT = object()


# --- the .stream() helpers ------------------------------------------------------------------------


def _itself(helper: Any) -> Any:
    return helper


def _manager_stream(manager_cls: str) -> Callable[[Any], Any]:
    """Reads the helper stream a manager handed out (a private, name-mangled attribute)."""
    attribute = f"_{manager_cls}__stream"

    def read(manager: Any) -> Any:
        return getattr(manager, attribute, None)

    return read


def _end_helper(instance: Any, helper_of: Callable[[Any], Any]) -> None:
    """Ends the operation of the instrumented stream a helper stream reads, as ``closed``.

    A no-op when that stream already ended (read to the end, failed) or is not ours (a helper over
    ``responses.retrieve``, or a stream created while uninstrumented).
    """
    try:
        helper = helper_of(instance)
        raw: Any = getattr(helper, "_raw_stream", None) if helper is not None else None
        if issubclass(type(raw), (SyncStreamProxy, AsyncStreamProxy)):
            raw._self_end(END_CLOSED)
    except Exception as exc:
        report_internal_error("openai.stream_helper", exc)


def _sync_ender(helper_of: Callable[[Any], Any]) -> Callable[..., Any]:
    """Wraps a manager's ``__exit__`` or a helper stream's ``close()``: the SDK's call, then the end."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return wrapped(*args, **kwargs)
        finally:
            _end_helper(instance, helper_of)

    return wrapper


def _async_ender(helper_of: Callable[[Any], Any]) -> Callable[..., Any]:
    """Wraps a manager's ``__aexit__`` or an async helper stream's ``close()``."""

    async def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return await wrapped(*args, **kwargs)
        finally:
            _end_helper(instance, helper_of)

    return wrapper
