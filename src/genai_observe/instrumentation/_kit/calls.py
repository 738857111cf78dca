"""How every instrumented provider method runs: one sync and one async shape for all providers.

The contract with the host application: the wrapped method is called exactly once with the
caller's arguments, its return value or exception reaches the caller unchanged, and any failure of
ours only costs the telemetry of that call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..._core.diagnostics import report_internal_error
from ..._core.record import LLMCall
from ..._core.recorder import Invocation, Recorder
from ..._core.streams import AsyncStreamProxy, ChunkHandler, SyncStreamProxy

Build = Callable[[], LLMCall]
# Given the invocation and the provider's result, return what the caller gets: the result itself
# (after inv.finish(...)) or a stream proxy around it.
OnResult = Callable[[Invocation, Any], Any]


def run_sync(
    recorder: Recorder,
    build: Build,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    on_result: OnResult,
    *,
    recorded_kwargs: dict[str, Any] | None = None,
) -> Any:
    """``recorded_kwargs``: what the method is called with when the call is recorded (a provider's
    rewrite of the request, whose extra output only our stream proxy removes); otherwise ``kwargs``."""
    inv = recorder.start_from(build)
    if inv is None:
        return wrapped(*args, **kwargs)
    if recorded_kwargs is not None:
        kwargs = recorded_kwargs
    inv.activate()
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        inv.deactivate()
        inv.fail(exc)
        raise
    inv.deactivate()
    return _deliver(inv, result, on_result)


async def run_async(
    recorder: Recorder,
    build: Build,
    wrapped: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    on_result: OnResult,
    *,
    recorded_kwargs: dict[str, Any] | None = None,
) -> Any:
    """The async twin of :func:`run_sync`."""
    inv = recorder.start_from(build)
    if inv is None:
        return await wrapped(*args, **kwargs)
    if recorded_kwargs is not None:
        kwargs = recorded_kwargs
    inv.activate()
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        inv.deactivate()
        inv.fail(exc)
        raise
    inv.deactivate()
    return _deliver(inv, result, on_result)


def _deliver(inv: Invocation, result: Any, on_result: OnResult) -> Any:
    try:
        return on_result(inv, result)
    except Exception as exc:
        report_internal_error(f"on_result:{getattr(on_result, '__qualname__', '?')}", exc)
        if not inv.ended:
            inv.finish()
        return result


def finish_with(fill: Callable[[LLMCall, Any], None]) -> OnResult:
    """on_result for plain responses: read the response into the record, return it unchanged."""

    def on_result(inv: Invocation, result: Any) -> Any:
        inv.finish(lambda call: fill(call, result))
        return result

    return on_result


def stream_sync(inv: Invocation, stream: Any, on_chunk: ChunkHandler, fill: Callable[[LLMCall], None]) -> Any:
    return SyncStreamProxy(stream, inv, on_chunk, fill)


def stream_async(
    inv: Invocation, stream: Any, on_chunk: ChunkHandler, fill: Callable[[LLMCall], None]
) -> Any:
    return AsyncStreamProxy(stream, inv, on_chunk, fill)
