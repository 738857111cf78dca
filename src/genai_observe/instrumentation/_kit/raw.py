"""``with_raw_response`` / ``with_streaming_response`` for the SDKs built on the same generated
client (``openai``, ``anthropic``): the operation is read when the caller parses the response.

Shared by those instrumentations; the SDK's objects are read by attribute, never imported.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import wrapt

from ..._core.record import LLMCall
from ..._core.recorder import Invocation
from ..._core.streams import END_ABANDONED, END_CLOSED, SeeThrough

ResponseReader = Callable[[LLMCall, Any], None]


def raw_response(
    inv: Invocation,
    raw: Any,
    read_response: ResponseReader,
    accumulator: Any,
    keep_text: bool,
    proxy_cls: Any,
) -> Any:
    """The raw response as the caller gets it; its operation ends when the caller parses it.

    ``accumulator(keep_text)`` reads a stream's chunks (None: the operation cannot stream).
    """
    if type(raw).__name__ == "LegacyAPIResponse" and not inv.call.stream:
        # The body is already read; parse() caches, so the caller's own parse() gets the same
        # object, or raises the same error (a body the SDK cannot parse), which the span records.
        try:
            parsed = raw.parse()
        except Exception as exc:
            inv.fail(exc)
            return raw
        inv.finish(lambda call: read_response(call, parsed))
        return raw
    return RawResponseProxy(raw, inv, read_response, accumulator, keep_text, proxy_cls)


class RawResponseProxy(SeeThrough, wrapt.ObjectProxy):  # type: ignore[type-arg]
    """Ends the operation when the caller parses (or fails to), closes or drops the raw response."""

    def __init__(
        self,
        wrapped: Any,
        inv: Invocation,
        read_response: ResponseReader,
        accumulator: Any,
        keep_text: bool,
        proxy_cls: Any,
    ) -> None:
        super().__init__(wrapped)
        self._self_inv = inv
        self._self_read = read_response
        self._self_accumulator = accumulator
        self._self_keep_text = keep_text
        self._self_proxy_cls = proxy_cls
        self._self_stream: Any = None

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        try:
            result = self.__wrapped__.parse(*args, **kwargs)
        except Exception as exc:
            self._self_inv.fail(exc)  # the SDK's error, raised to the caller unchanged
            raise
        if inspect.isawaitable(result):
            return self._self_parse_async(result)
        return self._self_parsed(result)

    async def _self_parse_async(self, awaitable: Any) -> Any:
        try:
            parsed = await awaitable
        except Exception as exc:
            self._self_inv.fail(exc)
            raise
        return self._self_parsed(parsed)

    def _self_parsed(self, parsed: Any) -> Any:
        if self._self_stream is not None:
            return self._self_stream
        inv = self._self_inv
        if inv.ended:
            return parsed
        if inv.call.stream and self._self_accumulator is not None:
            acc = self._self_accumulator(self._self_keep_text)
            self._self_stream = self._self_proxy_cls(parsed, inv, acc.on_chunk, acc.fill)
            return self._self_stream
        read = self._self_read
        inv.finish(lambda call: read(call, parsed))
        return parsed

    def close(self) -> Any:
        try:
            result = self.__wrapped__.close()
        finally:
            if not self._self_inv.ended:
                self._self_inv.finish(end_reason=END_CLOSED)
        return result  # a coroutine for async responses: the caller awaits it

    def __del__(self) -> None:
        try:
            if self._self_stream is None and not self._self_inv.ended:
                self._self_inv.finish(end_reason=END_ABANDONED)
        except Exception:
            pass
