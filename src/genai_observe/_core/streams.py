"""Transparent stream proxies shared by every provider.

A proxy wraps the SDK's stream object (wrapt.ObjectProxy, so ``isinstance``, attributes and the
SDK's helper methods keep working), feeds each chunk to the adapter's accumulator, and ends the
operation exactly once: on exhaustion, ``close()``, leaving a ``with`` block, an error, task
cancellation, or garbage collection of an abandoned stream.

``copy.copy``, ``copy.deepcopy`` and ``pickle`` see through every proxy (:class:`SeeThrough`):
they act on the SDK's object, so they succeed or fail exactly as they would without us.
"""

from __future__ import annotations

import asyncio
import atexit
import copy
import copyreg
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import wrapt

from .diagnostics import report_internal_error
from .record import LLMCall
from .recorder import MAX_CHUNK_TIMES, Invocation

ChunkHandler = Callable[[Any], None]
_perf_counter = time.perf_counter
Filler = Callable[[LLMCall], None]

# (chunk) -> True for a chunk the caller must not see: one only our own change to the request made
# the server send (openai's usage chunk when we added ``stream_options``). It has been read by then.
ChunkFilter = Callable[[Any], bool]

END_EXHAUSTED = "exhausted"
END_CLOSED = "closed"
END_ABANDONED = "abandoned"
END_CANCELLED = "cancelled"

# Every stream proxy not yet collected, by id (weakly: a dict keyed by the proxy would hash the
# wrapped SDK object, which may not be hashable), so that those still open when the interpreter
# exits are ended as abandoned rather than never (their spans would be lost).
_live: dict[int, weakref.ref[Any]] = {}
_at_exit_lock = threading.Lock()
_at_exit_registered = False


def end_open_streams() -> None:
    """End every stream still open as abandoned; at interpreter exit, before the export shuts down."""
    for ref in list(_live.values()):
        proxy = ref()
        if proxy is not None:
            try:
                proxy._self_end(END_ABANDONED)
            except Exception as exc:
                report_internal_error("stream.end_at_exit", exc)


def _track(proxy: Any) -> None:
    global _at_exit_registered
    key = id(proxy)

    def forget(_ref: weakref.ref[Any]) -> None:
        _live.pop(key, None)

    _live[key] = weakref.ref(proxy, forget)
    if not _at_exit_registered:
        with _at_exit_lock:
            if not _at_exit_registered:
                # atexit runs last-registered first: registered at the first stream, after the
                # providers (and init()'s shutdown hook) it feeds, so it runs before they shut down.
                atexit.register(end_open_streams)
                _at_exit_registered = True


class SeeThrough:
    """Mixin for our wrapt proxies: copying or pickling one copies or pickles the SDK's object.

    wrapt's proxies raise NotImplementedError there, which an app that copies a stream (or an
    object holding one) would not get without us. The copy is the SDK's object, uninstrumented: a
    copy of a live stream is a second reader of the same connection, and the operation it belongs
    to is recorded once, by the original. What the SDK's object cannot do (deepcopy a lock, pickle
    a generator) raises the SDK's own error.
    """

    __slots__ = ()
    __wrapped__: Any

    def __copy__(self) -> Any:
        return copy.copy(self.__wrapped__)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return copy.deepcopy(self.__wrapped__, memo)

    def __reduce_ex__(self, protocol: Any) -> Any:
        wrapped = self.__wrapped__
        reducer = copyreg.dispatch_table.get(type(wrapped))
        return reducer(wrapped) if reducer is not None else wrapped.__reduce_ex__(protocol)

    def __reduce__(self) -> Any:
        return self.__reduce_ex__(0)


class _ProxyBase(SeeThrough, wrapt.ObjectProxy):  # type: ignore[type-arg]
    def __init__(
        self, wrapped: Any, inv: Invocation, on_chunk: ChunkHandler | None, fill: Filler | None
    ) -> None:
        super().__init__(wrapped)
        self._self_inv = inv
        self._self_times = inv.streaming_times()  # Invocation.chunk(), inlined per chunk below
        self._self_on_chunk = on_chunk
        self._self_fill = fill
        self._self_hide: ChunkFilter | None = None  # set by the filtering subclasses
        try:
            _track(self)
        except Exception as exc:
            report_internal_error("stream.track", exc)

    def _self_end(self, reason: str) -> None:
        inv = self._self_inv
        if not inv.ended:
            inv.finish(self._self_fill, end_reason=reason)

    def _self_fail(self, exc: BaseException) -> None:
        inv = self._self_inv
        if inv.ended:
            return
        if isinstance(exc, (GeneratorExit, asyncio.CancelledError)):
            # The caller stopped waiting; nothing failed on the provider side.
            inv.finish(self._self_fill, end_reason=END_CANCELLED)
        else:
            inv.fail(exc, self._self_fill)

    def __del__(self) -> None:
        try:
            self._self_end(END_ABANDONED)
        except Exception:
            pass

    def __repr__(self) -> str:
        return repr(self.__wrapped__)


class SyncStreamProxy(_ProxyBase):
    """Wraps an iterator/iterable of chunks (openai/anthropic ``Stream``, generators, ...)."""

    def __init__(
        self, wrapped: Any, inv: Invocation, on_chunk: ChunkHandler | None = None, fill: Filler | None = None
    ) -> None:
        super().__init__(wrapped, inv, on_chunk, fill)
        self._self_iter: Any = wrapped if hasattr(type(wrapped), "__next__") else None

    def __iter__(self) -> Iterator[Any]:
        """A generator over the chunks, not the proxy: a ``for`` loop then resumes one frame per
        chunk instead of calling ``__next__`` (about 4 k instructions less per chunk, issue 19).
        The SDK's own ``Stream.__iter__`` is a generator too. ``next()`` on the proxy still works,
        and both read the same underlying iterator."""
        return self._self_chunks()

    def _self_source(self) -> Any:
        it = self._self_iter
        if it is None:
            it = self._self_iter = iter(self.__wrapped__)
        return it

    def _self_chunks(self) -> Iterator[Any]:
        # iter() of an iterator continues it (openai's Stream hands out a generator over the same
        # underlying iterator its __next__ reads).
        source = iter(self._self_source())
        times = self._self_times
        handler = self._self_on_chunk
        hide = self._self_hide
        try:
            for chunk in source:
                timed = len(times) < MAX_CHUNK_TIMES
                try:  # per chunk: note the arrival time, hand the chunk to the accumulator
                    if timed:
                        times.append(_perf_counter())
                    if handler is not None:
                        handler(chunk)
                except Exception as exc:
                    report_internal_error("stream.on_chunk", exc)
                if hide is not None and _hides(hide, chunk):
                    if timed and times:
                        times.pop()
                    continue
                yield chunk
        except GeneratorExit:
            raise  # the loop over this generator stopped; the stream itself may go on
        except BaseException as exc:
            self._self_fail(exc)
            raise
        self._self_end(END_EXHAUSTED)

    def __next__(self) -> Any:
        it = self._self_source()
        try:
            chunk = next(it)
        except StopIteration:
            self._self_end(END_EXHAUSTED)
            raise
        except BaseException as exc:
            self._self_fail(exc)
            raise
        try:  # per chunk, so inlined: note the arrival time, hand the chunk to the accumulator
            times = self._self_times
            if len(times) < MAX_CHUNK_TIMES:
                times.append(_perf_counter())
            handler = self._self_on_chunk
            if handler is not None:
                handler(chunk)
        except Exception as exc:
            report_internal_error("stream.on_chunk", exc)
        return chunk

    def close(self) -> Any:
        try:
            close = getattr(self.__wrapped__, "close", None)
            return close() if close is not None else None
        finally:
            self._self_end(END_CLOSED)

    def __enter__(self) -> SyncStreamProxy:
        enter = getattr(self.__wrapped__, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            exit_ = getattr(self.__wrapped__, "__exit__", None)
            return exit_(exc_type, exc, tb) if exit_ is not None else None
        finally:
            self._self_end(END_CLOSED)


class AsyncStreamProxy(_ProxyBase):
    """Wraps an async iterator/iterable of chunks (``AsyncStream``, async generators, ...)."""

    def __init__(
        self, wrapped: Any, inv: Invocation, on_chunk: ChunkHandler | None = None, fill: Filler | None = None
    ) -> None:
        super().__init__(wrapped, inv, on_chunk, fill)
        self._self_iter: Any = wrapped if hasattr(type(wrapped), "__anext__") else None

    def __aiter__(self) -> AsyncStreamProxy:
        # The proxy itself, not an async generator as SyncStreamProxy.__iter__ hands out: an async
        # generator left by a ``break`` is closed by the event loop one step later, and at loop
        # shutdown asyncio may then close the SDK's own generators concurrently ("aclose():
        # asynchronous generator is already running", logged as an error by asyncio).
        return self

    def _self_source(self) -> Any:
        it = self._self_iter
        if it is None:
            it = self._self_iter = self.__wrapped__.__aiter__()
        return it

    async def __anext__(self) -> Any:
        it = self._self_source()
        try:
            chunk = await it.__anext__()
        except StopAsyncIteration:
            self._self_end(END_EXHAUSTED)
            raise
        except BaseException as exc:
            self._self_fail(exc)
            raise
        try:  # per chunk, so inlined: note the arrival time, hand the chunk to the accumulator
            times = self._self_times
            if len(times) < MAX_CHUNK_TIMES:
                times.append(_perf_counter())
            handler = self._self_on_chunk
            if handler is not None:
                handler(chunk)
        except Exception as exc:
            report_internal_error("stream.on_chunk", exc)
        return chunk

    async def close(self) -> Any:
        try:
            close = getattr(self.__wrapped__, "close", None) or getattr(self.__wrapped__, "aclose", None)
            if close is None:
                return None
            result = close()
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                return await result
            return result
        finally:
            self._self_end(END_CLOSED)

    async def aclose(self) -> Any:
        try:
            aclose = getattr(self.__wrapped__, "aclose", None) or getattr(self.__wrapped__, "close", None)
            if aclose is None:
                return None
            result = aclose()
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                return await result
            return result
        finally:
            self._self_end(END_CLOSED)

    async def __aenter__(self) -> AsyncStreamProxy:
        enter = getattr(self.__wrapped__, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            exit_ = getattr(self.__wrapped__, "__aexit__", None)
            return await exit_(exc_type, exc, tb) if exit_ is not None else None
        finally:
            self._self_end(END_CLOSED)


def _hides(hide: ChunkFilter | None, chunk: Any) -> bool:
    if hide is None:
        return False
    try:
        return hide(chunk)
    except Exception as exc:
        report_internal_error("stream.hide", exc)
        return False  # a chunk we cannot judge reaches the caller, as it would without us


class FilteringSyncStreamProxy(SyncStreamProxy):
    """A :class:`SyncStreamProxy` that reads, but does not hand out, the chunks ``hide`` names.

    A subclass, so streams without such chunks keep the plain per-chunk path. A hidden chunk's
    arrival time is dropped too: the chunk timings describe what the caller received.
    """

    def __init__(
        self,
        wrapped: Any,
        inv: Invocation,
        on_chunk: ChunkHandler | None = None,
        fill: Filler | None = None,
        *,
        hide: ChunkFilter,
    ) -> None:
        super().__init__(wrapped, inv, on_chunk, fill)
        self._self_hide = hide  # read by the iteration generators, and by __next__ below

    def __next__(self) -> Any:
        times = self._self_times
        while True:
            before = len(times)
            chunk = SyncStreamProxy.__next__(self)
            if not _hides(self._self_hide, chunk):
                return chunk
            if len(times) > before:
                times.pop()


class FilteringAsyncStreamProxy(AsyncStreamProxy):
    """The async twin of :class:`FilteringSyncStreamProxy`."""

    def __init__(
        self,
        wrapped: Any,
        inv: Invocation,
        on_chunk: ChunkHandler | None = None,
        fill: Filler | None = None,
        *,
        hide: ChunkFilter,
    ) -> None:
        super().__init__(wrapped, inv, on_chunk, fill)
        self._self_hide = hide  # read by __anext__ below

    async def __anext__(self) -> Any:
        times = self._self_times
        while True:
            before = len(times)
            chunk = await AsyncStreamProxy.__anext__(self)
            if not _hides(self._self_hide, chunk):
                return chunk
            if len(times) > before:
                times.pop()
