"""The provider contract: a provider declares each SDK method it instruments as an
:class:`Operation` (where it lives, how to read the request and the response, how to read a stream),
and :func:`wrapper` builds the one wrapper every such method runs through, sync or async: the span
around the call, the stream proxy, the raw-response proxy, the response read into the record.

A provider module therefore holds tables and readers, never call plumbing; the hooks a provider
needs beyond the table (rewriting the request, a context set around the call, an off switch) are
the few keyword arguments of :func:`wrapper`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from ..._core.diagnostics import report_internal_error
from ..._core.record import LLMCall
from ..._core.recorder import Invocation, Recorder
from ..._core.streams import (
    AsyncStreamProxy,
    ChunkFilter,
    FilteringAsyncStreamProxy,
    FilteringSyncStreamProxy,
    SyncStreamProxy,
)
from .calls import run_async, run_sync
from .raw import raw_response

Args = tuple[Any, ...]
Kwargs = dict[str, Any]
# (the SDK object the method is called on, positional arguments, keyword arguments) -> the record
RequestReader = Callable[[Any, Args, Kwargs], LLMCall]
# Reads the SDK's response into the record.
ResponseReader = Callable[[LLMCall, Any], None]
# (the SDK object the method is called on, keyword arguments) -> (the keyword arguments the SDK is
# called with, and which chunks of the resulting stream the caller must not see: None for none).
Prepare = Callable[[Any, Kwargs], tuple[Kwargs, ChunkFilter | None]]


class Accumulator(Protocol):
    """Reads a stream chunk by chunk (cheap: it runs per chunk), then fills the record once."""

    def on_chunk(self, chunk: Any) -> None: ...

    def fill(self, call: LLMCall) -> None: ...


# (recorder, the call's record as the request made it) -> a new accumulator for one stream. The
# recorder says whether text is kept and how long; the request says what the stream can carry, so
# the accumulator need not look for the rest in every chunk.
StreamReader = Callable[[Recorder, LLMCall], Accumulator]


def _iterates(result: Any, is_async: bool) -> bool:
    """A stream object (an iterator), not a response model: pydantic models are iterable too."""
    return hasattr(type(result), "__anext__" if is_async else "__next__")


@dataclass(frozen=True, slots=True)
class Operation:
    """One SDK method a provider instruments."""

    module: str
    path: str  # "Class.method", or a module-level name
    request: RequestReader
    response: ResponseReader
    stream: StreamReader | None = None  # None: the method never streams
    is_async: bool = False
    # The SDK may hand back its raw response object (openai/anthropic ``with_raw_response`` and
    # ``with_streaming_response``): the operation is then read when the caller parses it.
    raw: bool = False
    # Whether the result is a stream to wrap; default: the request asked to stream and the result
    # is an iterator. Ollama's streams are generators whatever the request said.
    streams: Callable[[Invocation, Any, bool], bool] | None = None


def _default_streams(inv: Invocation, result: Any, is_async: bool) -> bool:
    return inv.call.stream and _iterates(result, is_async)


def wrapper(
    recorder: Recorder,
    op: Operation,
    *,
    prepare: Prepare | None = None,
    enter: Callable[[], Any] | None = None,
    leave: Callable[[Any], None] | None = None,
    active: Callable[[], bool] | None = None,
) -> Callable[..., Any]:
    """The wrapt wrapper for ``op``.

    ``prepare`` rewrites the keyword arguments the SDK is called with (openai's usage chunk for
    streams) and names the chunks that rewrite adds, which the caller's stream then skips; a
    failing ``prepare`` leaves the call as the caller made it, and so does a call not recorded.
    ``enter``/``leave`` run around the call, ``leave`` with what ``enter`` returned (anthropic's
    note to its native tracing hook); ``active`` False makes the wrapper a plain call (a wrapper
    the app still holds after ``uninstrument()``).
    """
    proxy_cls: Any = AsyncStreamProxy if op.is_async else SyncStreamProxy
    filtering_cls: Any = FilteringAsyncStreamProxy if op.is_async else FilteringSyncStreamProxy
    read_request, read_response, stream = op.request, op.response, op.stream
    is_stream = op.streams or _default_streams
    is_async = op.is_async

    def on_result(inv: Invocation, result: Any, hide: ChunkFilter | None = None) -> Any:
        if op.raw and hasattr(result, "http_response") and hasattr(result, "parse"):
            accumulator = None if stream is None else (lambda _keep_text: stream(recorder, inv.call))
            return raw_response(inv, result, read_response, accumulator, recorder.capture.any, proxy_cls)
        if stream is not None and is_stream(inv, result, is_async):
            acc = stream(recorder, inv.call)
            if hide is not None:
                return filtering_cls(result, inv, acc.on_chunk, acc.fill, hide=hide)
            return proxy_cls(result, inv, acc.on_chunk, acc.fill)
        inv.finish(lambda call: read_response(call, result))
        return result

    def prepared(instance: Any, kwargs: Kwargs) -> tuple[Kwargs | None, Any]:
        """The kwargs to call with when the call is recorded (None: the caller's) and the on_result
        for them. Unrecorded calls keep the caller's kwargs: nothing would hide what a rewrite adds.
        """
        if prepare is None:
            return None, on_result
        try:
            new_kwargs, hide = prepare(instance, kwargs)
        except Exception as exc:  # prepare is ours: its failure leaves the call as the caller made it
            report_internal_error(f"prepare:{getattr(prepare, '__qualname__', '?')}", exc)
            return None, on_result
        return new_kwargs, (on_result if hide is None else partial(on_result, hide=hide))

    if is_async:

        async def async_wrapper(wrapped: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
            if active is not None and not active():
                return await wrapped(*args, **kwargs)
            recorded, deliver = prepared(instance, kwargs)
            mark = enter() if enter is not None else None
            try:
                build = partial(read_request, instance, args, kwargs)
                return await run_async(
                    recorder, build, wrapped, args, kwargs, deliver, recorded_kwargs=recorded
                )
            finally:
                if leave is not None:
                    leave(mark)

        return async_wrapper

    def sync_wrapper(wrapped: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        if active is not None and not active():
            return wrapped(*args, **kwargs)
        recorded, deliver = prepared(instance, kwargs)
        mark = enter() if enter is not None else None
        try:
            build = partial(read_request, instance, args, kwargs)
            return run_sync(recorder, build, wrapped, args, kwargs, deliver, recorded_kwargs=recorded)
        finally:
            if leave is not None:
                leave(mark)

    return sync_wrapper
