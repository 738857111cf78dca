"""Instrumentation of the official ``anthropic`` client (Anthropic, AnthropicBedrock, AnthropicVertex, ...).

Patched at class level, so clients created before ``init()`` are covered, and lazily on import, so
an app that never imports ``anthropic`` pays nothing. Covers ``messages.create`` / ``parse`` (sync,
async, ``stream=True``), the ``messages.stream(...)`` helper, ``client.beta.messages``, and the legacy
``completions.create`` where the installed SDK still has them. See docs/anthropic.md.

One span per LLM call: recent ``anthropic`` releases start their own CLIENT span per API call
(``anthropic._tracing.start_api_call_span``) whenever a tracer provider is available. For the calls
we instrument, that hook is answered with a non-recording span that carries *our* span's context:
the SDK records and exports nothing for the call, yet still sends ``traceparent`` (pointing at our
span) exactly as its ``propagation`` setting says. Every other SDK call (models, files, batches,
count_tokens, tool-runner loops, ...) keeps the SDK's own spans. SDKs without native tracing have
no such hook, and nothing is patched for it.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar, Token
from types import ModuleType
from typing import Any, ClassVar

import wrapt
from opentelemetry import trace

from ..._core.diagnostics import report_internal_error
from ..._core.record import LLMCall
from ..._core.recorder import Invocation, Recorder
from ..._core.streams import END_CLOSED, AsyncStreamProxy, SeeThrough, SyncStreamProxy
from .._kit.base import GenAIInstrumentor
from .._kit.calls import run_async, run_sync
from .._kit.operations import Operation
from . import _adapter as ad

__all__ = ["AnthropicInstrumentor"]

RequestReader = Callable[[ad.ClientInfo, Mapping[str, Any]], LLMCall]
ResponseReader = Callable[[LLMCall, Any], None]

# Where the resource classes live. Each is wrapped only if this SDK version has it.
_MESSAGES_MODULES = (
    "anthropic.resources.messages",  # client.messages (a module in 0.x, a package later)
    "anthropic.resources.beta.messages",  # client.beta.messages (not in 0.30; 0.40 has create only)
    "anthropic.resources.beta.prompt_caching.messages",  # client.beta.prompt_caching.messages (0.x)
)
_COMPLETIONS_MODULE = "anthropic.resources.completions"  # legacy /v1/complete (removed in 1.x)
_NATIVE_TRACING = ("anthropic._base_client", "start_api_call_span")
# anthropic < 1.x: Stream / AsyncStream have a metaclass whose isinstance() accepts only the exact
# class (plus the message stream helpers), so it would reject our stream proxies.
_STREAM_INSTANCECHECKS = (
    ("anthropic._streaming", "_SyncStreamMeta.__instancecheck__"),
    ("anthropic._streaming", "_AsyncStreamMeta.__instancecheck__"),
)

# Set while one of our wrappers runs a call: the span context that was current when it started.
# If a different, valid span is current when the SDK asks for its own span, our recorder started it.
_CALL: ContextVar[Any] = ContextVar("genai_observe_anthropic_call", default=None)


def _exists(module_name: str, path: str) -> bool:
    """Whether ``module_name.path`` exists in the installed SDK (expected to vary between versions)."""
    try:
        target: Any = importlib.import_module(module_name)
    except Exception:
        return False
    for part in path.split("."):
        target = getattr(target, part, None)
        if target is None:
            return False
    return True


def _mark() -> Token[Any]:
    return _CALL.set(trace.get_current_span().get_span_context())


def _native_span(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Stands in for ``anthropic._tracing.start_api_call_span`` (see the module docstring).

    For a call our wrapper runs and our recorder gave a span, the SDK gets a non-recording span with
    our span's context instead of a span of its own, so the call has exactly one span, ours. The SDK
    never records on or ends a non-recording span, but it propagates its context as usual.
    """
    parent = _CALL.get()
    if parent is not None:
        try:
            ours = trace.get_current_span().get_span_context()
            options = args[2] if len(args) > 2 else kwargs.get("options")
            if ours.is_valid and ours != parent and getattr(options, "span_name", None):
                return trace.NonRecordingSpan(ours)
        except Exception as exc:
            report_internal_error("anthropic.native_span", exc)
    return wrapped(*args, **kwargs)


def _instancecheck(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``isinstance(proxy, anthropic.Stream)`` answers for the stream the proxy wraps, as without us."""
    if args and issubclass(type(args[0]), (SyncStreamProxy, AsyncStreamProxy)):
        return isinstance(args[0].__wrapped__, instance)
    return wrapped(*args, **kwargs)


def _unmark(token: Token[Any]) -> None:
    _CALL.reset(token)


def _operation(
    module_name: str,
    path: str,
    read_request: RequestReader,
    read_response: ResponseReader,
    accumulator: Any,
    is_async: bool,
) -> Operation:
    """A messages or completions method as the kit's contract: the request is read with the client's
    info, a stream with the reader's accumulator, a raw response when the caller parses it."""

    def request(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMCall:
        return read_request(ad.client_info(instance._client), kwargs)

    request.__qualname__ = read_request.__qualname__  # failures are reported by the reader's name
    return Operation(
        module_name,
        path,
        request,
        read_response,
        stream=lambda recorder, _call: accumulator(recorder.capture.any),
        is_async=is_async,
        raw=True,
    )


class AnthropicInstrumentor(GenAIInstrumentor):
    """Instruments ``anthropic`` messages (stable and beta) and legacy completions, sync and async.

    Usable on its own: ``AnthropicInstrumentor().instrument(tracer_provider=..., meter_provider=...)``.
    """

    name: ClassVar[str] = "anthropic"
    module: ClassVar[str] = "anthropic"
    requirements: ClassVar[tuple[str, ...]] = ("anthropic >= 0.30",)

    def _patch(self, module: ModuleType) -> None:
        native = _exists(*_NATIVE_TRACING) and self._wrap(*_NATIVE_TRACING, _native_span)
        for module_name, path in _STREAM_INSTANCECHECKS:
            if _exists(module_name, path):
                self._wrap(module_name, path, _instancecheck)
        hooks: dict[str, Any] = {"enter": _mark, "leave": _unmark} if native else {}
        for module_name in _MESSAGES_MODULES:
            for cls, is_async in (("Messages", False), ("AsyncMessages", True)):
                for method in ("create", "parse"):
                    path = f"{cls}.{method}"
                    if _exists(module_name, path):
                        op = _operation(
                            module_name,
                            path,
                            ad.messages_request,
                            ad.message_response,
                            ad.MessageStreamAccumulator,
                            is_async,
                        )
                        self._wrap_operation(op, **hooks)
                if _exists(module_name, f"{cls}.stream"):
                    self._wrap(module_name, f"{cls}.stream", self._stream_wrapper(native))
        for cls, is_async in (("Completions", False), ("AsyncCompletions", True)):
            path = f"{cls}.create"
            if _exists(_COMPLETIONS_MODULE, path):
                op = _operation(
                    _COMPLETIONS_MODULE,
                    path,
                    ad.completion_request,
                    ad.completion_response,
                    ad.CompletionStreamAccumulator,
                    is_async,
                )
                self._wrap_operation(op, **hooks)

    def _stream_wrapper(self, native: bool) -> Callable[..., Any]:
        """``messages.stream(...)``: the request is only sent when the returned manager is entered."""
        recorder: Recorder = self.recorder
        keep_text = recorder.capture.any

        def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            manager = wrapped(*args, **kwargs)  # only builds the request; its errors are the SDK's
            try:
                client = instance._client

                def build() -> LLMCall:
                    return ad.messages_request(ad.client_info(client), kwargs, stream=True)

                proxy_cls = _AsyncStreamManager if hasattr(type(manager), "__aenter__") else _StreamManager
                return proxy_cls(manager, recorder, build, keep_text, native)
            except Exception as exc:
                report_internal_error("anthropic.stream", exc)
                return manager

        return wrapper


# --- messages.stream(): the manager and the MessageStream it yields --------------------------------


def _snapshot_reader(stream: Any) -> Callable[[], Any]:
    def read() -> Any:
        return stream.current_message_snapshot  # the SDK's accumulated message (asserts before start)

    return read


class _ManagerBase(SeeThrough, wrapt.ObjectProxy):  # type: ignore[type-arg]
    def __init__(
        self, wrapped: Any, recorder: Recorder, build: Callable[[], LLMCall], keep_text: bool, native: bool
    ) -> None:
        super().__init__(wrapped)
        self._self_recorder = recorder
        self._self_build = build
        self._self_keep_text = keep_text
        self._self_native = native
        self._self_stream: Any = None

    def _self_wrap(self, inv: Invocation, stream: Any, proxy_cls: Any) -> Any:
        acc = ad.MessageStreamAccumulator(self._self_keep_text)
        acc.snapshot = _snapshot_reader(stream)
        proxy = proxy_cls(stream, inv, acc.on_chunk, acc.fill)
        self._self_stream = proxy
        return proxy

    def _self_closed(self) -> None:
        # The SDK's manager closes the MessageStream itself, not through our proxy.
        stream = self._self_stream
        if stream is not None:
            stream._self_end(END_CLOSED)


class _StreamManager(_ManagerBase):
    def __enter__(self) -> Any:
        enter = self.__wrapped__.__enter__
        token = _mark() if self._self_native else None
        try:
            return run_sync(
                self._self_recorder,
                self._self_build,
                enter,
                (),
                {},
                lambda inv, stream: self._self_wrap(inv, stream, _MessageStream),
            )
        finally:
            if token is not None:
                _CALL.reset(token)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_closed()


class _AsyncStreamManager(_ManagerBase):
    async def __aenter__(self) -> Any:
        enter = self.__wrapped__.__aenter__
        token = _mark() if self._self_native else None
        try:
            return await run_async(
                self._self_recorder,
                self._self_build,
                enter,
                (),
                {},
                lambda inv, stream: self._self_wrap(inv, stream, _AsyncMessageStream),
            )
        finally:
            if token is not None:
                _CALL.reset(token)

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_closed()


def _texts(events: Iterable[Any]) -> Iterator[str]:
    for event in events:
        if getattr(event, "type", None) == "content_block_delta":
            delta: Any = getattr(event, "delta", None)
            if getattr(delta, "type", None) == "text_delta":
                yield delta.text


async def _async_texts(events: Any) -> AsyncIterator[str]:
    async for event in events:
        if getattr(event, "type", None) == "content_block_delta":
            delta: Any = getattr(event, "delta", None)
            if getattr(delta, "type", None) == "text_delta":
                yield delta.text


class _MessageStream(SyncStreamProxy):
    """The SDK's MessageStream; its helpers read the events through this proxy, so the span sees
    every event (and ends when the stream does) whichever helper the caller uses."""

    def __init__(self, wrapped: Any, inv: Invocation, on_chunk: Any = None, fill: Any = None) -> None:
        super().__init__(wrapped, inv, on_chunk, fill)
        self._self_text_stream: Iterator[str] | None = None

    @property
    def text_stream(self) -> Iterator[str]:
        if self._self_text_stream is None:
            self._self_text_stream = _texts(self)
        return self._self_text_stream

    def until_done(self) -> None:
        for _ in self:
            pass

    def get_final_message(self) -> Any:
        self.until_done()
        return self.__wrapped__.get_final_message()

    def get_final_text(self) -> Any:
        self.until_done()
        return self.__wrapped__.get_final_text()


class _AsyncMessageStream(AsyncStreamProxy):
    def __init__(self, wrapped: Any, inv: Invocation, on_chunk: Any = None, fill: Any = None) -> None:
        super().__init__(wrapped, inv, on_chunk, fill)
        self._self_text_stream: AsyncIterator[str] | None = None

    @property
    def text_stream(self) -> AsyncIterator[str]:
        if self._self_text_stream is None:
            self._self_text_stream = _async_texts(self)
        return self._self_text_stream

    async def until_done(self) -> None:
        async for _ in self:
            pass

    async def get_final_message(self) -> Any:
        await self.until_done()
        return await self.__wrapped__.get_final_message()

    async def get_final_text(self) -> Any:
        await self.until_done()
        return await self.__wrapped__.get_final_text()
