"""The InvokeModel response body, observed while the app reads it.

botocore returns the body as a ``StreamingBody`` over the live HTTP response: it can be read once,
and ``invoke_model()`` returns before it has arrived. Reading it ourselves would make the call wait
for the whole body and change what the app's reads return and raise, so the app gets a transparent
proxy instead (wrapt, like the stream proxies): every call goes to botocore's own body, and the
bytes the app receives are copied into a bounded buffer. The span ends, exactly once, when the app
has read the body to the end, closes it, a read fails (the exception reaches the app unchanged), or
the body is garbage-collected unread (``abandoned``); its duration therefore covers the body, as for
streams. What the response headers tell (token counts, request id) is recorded in every case.

``StreamingBody``'s composite readers (``iter_chunks``, ``iter_lines``, iteration) call
``self.read``; they run as botocore wrote them, with the proxy as ``self``, so that their reads are
observed too. The raw stream its context manager hands out is proxied the same way.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable
from typing import Any, Final

from ..._core import semconv as sc
from ..._core.diagnostics import report_internal_error
from ..._core.record import LLMCall
from ..._core.recorder import Invocation
from ..._core.streams import END_ABANDONED, END_CANCELLED, END_CLOSED, END_EXHAUSTED, _ProxyBase
from . import _adapter as ad

__all__ = ["observe_body"]

END_ERROR: Final = "error"


class _Tee:
    """The bytes the app has read so far (kept up to ``cap``) and how reading ended."""

    __slots__ = ("cap", "chunks", "length", "reason", "seen")

    def __init__(self, length: int | None, cap: int) -> None:
        self.length = length  # Content-Length, when the response has one
        self.cap = cap
        self.seen = 0
        # None once over the cap: the body is then recorded from the headers only.
        self.chunks: list[bytes] | None = [] if length is None or length <= cap else None
        self.reason = END_ABANDONED

    def add(self, data: bytes) -> None:
        self.seen += len(data)
        chunks = self.chunks
        if chunks is not None and data:
            if self.seen > self.cap:
                self.chunks = None
            else:
                chunks.append(data)

    @property
    def complete(self) -> bool:
        """Every byte of a body with a known length has been read (no final empty read needed)."""
        return self.length is not None and self.seen >= self.length

    def take(self) -> bytes | None:
        """The whole body, or None when part of it is missing or it was over the cap; keeps no more."""
        chunks, self.chunks = self.chunks, None
        if chunks is None or (self.length is not None and self.seen != self.length):
            return None
        return b"".join(chunks)


def _as_bytes(data: Any) -> bytes:
    return data if isinstance(data, bytes) else bytes(data)


class _Reading(_ProxyBase):
    """Observes what the wrapped reader returns or raises; shared by the body and its raw stream."""

    def __init__(
        self, wrapped: Any, inv: Invocation, tee: _Tee, fill: Callable[[LLMCall], None] | None
    ) -> None:
        super().__init__(wrapped, inv, None, fill)
        self._self_tee = tee

    def _self_took(self, data: Any, eof: bool) -> None:
        if self._self_inv.ended:
            return
        try:
            tee = self._self_tee
            if isinstance(data, (bytes, bytearray, memoryview)):
                tee.add(_as_bytes(data))
            if eof or tee.complete:
                self._self_done(END_EXHAUSTED)
        except Exception as exc:
            report_internal_error("bedrock.body", exc)

    def _self_took_lines(self, lines: Any, eof: bool) -> None:
        try:
            for line in lines:
                self._self_took(line, False)
            self._self_took(b"", eof)
        except Exception as exc:
            report_internal_error("bedrock.body", exc)

    def _self_done(self, reason: str) -> None:
        if not self._self_inv.ended:
            self._self_tee.reason = reason
            self._self_end(reason)

    def _self_failed(self, exc: BaseException) -> None:
        try:
            if not self._self_inv.ended:
                cancelled = isinstance(exc, (GeneratorExit, asyncio.CancelledError))
                self._self_tee.reason = END_CANCELLED if cancelled else END_ERROR
                self._self_fail(exc)
        except Exception as err:
            report_internal_error("bedrock.body", err)

    def read(self, *args: Any, **kwargs: Any) -> Any:
        try:
            data = self.__wrapped__.read(*args, **kwargs)
        except BaseException as exc:
            self._self_failed(exc)
            raise
        amt = args[0] if args else kwargs.get("amt")
        # read() and read(None) read to the end; read(n) returns b"" only there.
        self._self_took(data, amt is None or (not data and amt != 0))
        return data

    def readline(self, *args: Any, **kwargs: Any) -> Any:
        try:
            line = self.__wrapped__.readline(*args, **kwargs)
        except BaseException as exc:
            self._self_failed(exc)
            raise
        size = args[0] if args else kwargs.get("size", -1)
        self._self_took(line, not line and size != 0)
        return line

    def readlines(self, *args: Any, **kwargs: Any) -> Any:
        try:
            lines = self.__wrapped__.readlines(*args, **kwargs)
        except BaseException as exc:
            self._self_failed(exc)
            raise
        hint = args[0] if args else kwargs.get("hint")
        self._self_took_lines(lines, hint is None or hint <= 0)  # a hint may stop before the end
        return lines

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_done(END_CLOSED)


def _readinto(self: _Reading, buffer: Any) -> Any:
    """readinto, on the proxies of readers that have it (older botocore bodies do not)."""
    try:
        n = self.__wrapped__.readinto(buffer)
    except BaseException as exc:
        self._self_failed(exc)
        raise
    try:
        view = memoryview(buffer).cast("B")
        self._self_took(bytes(view[: n or 0]), n == 0 and view.nbytes > 0)
    except Exception as exc:  # an exotic buffer: the body is then recorded from the headers only
        self._self_tee.chunks = None
        report_internal_error("bedrock.body", exc)
    return n


class _Raw(_Reading):
    """The raw urllib3 stream ``with body as raw`` hands out: reads through it are observed too."""

    def __next__(self) -> Any:
        try:
            line = next(self.__wrapped__)
        except StopIteration:
            self._self_took(b"", True)
            raise
        except BaseException as exc:
            self._self_failed(exc)
            raise
        self._self_took(line, False)
        return line

    def __del__(self) -> None:
        pass  # leaving the with block (or dropping the body) ends the span, not dropping this


class _RawInto(_Raw):
    readinto = _readinto


class _Body(_Reading):
    """The ``StreamingBody`` the app gets (``isinstance`` holds; every other attribute is botocore's)."""

    def _self_bound(self, name: str) -> Any:
        """botocore's own method, run with the proxy as ``self`` so that its ``self.read`` is ours."""
        function = getattr(type(self.__wrapped__), name, None)
        if isinstance(function, types.FunctionType):
            return types.MethodType(function, self)
        return getattr(self.__wrapped__, name)

    def iter_chunks(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_bound("iter_chunks")(*args, **kwargs)

    def iter_lines(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_bound("iter_lines")(*args, **kwargs)

    def __iter__(self) -> Any:
        return self._self_bound("__iter__")()

    def __next__(self) -> Any:
        return self._self_bound("__next__")()

    def next(self) -> Any:
        return self._self_bound("next")()

    def __enter__(self) -> Any:
        raw = self.__wrapped__.__enter__()
        try:
            if callable(getattr(raw, "read", None)):
                cls = _RawInto if hasattr(type(raw), "readinto") else _Raw
                return cls(raw, self._self_inv, self._self_tee, self._self_fill)
        except Exception as exc:
            report_internal_error("bedrock.body.enter", exc)
        return raw

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_done(END_CLOSED)


class _BodyInto(_Body):
    readinto = _readinto


def _metadata(result: dict[str, Any]) -> dict[str, Any]:
    """What the response readers need besides the body, copied now: the app may change its dict."""
    meta = result.get("ResponseMetadata")
    if not isinstance(meta, dict):
        return {}
    meta = dict(meta)
    headers = meta.get("HTTPHeaders")
    if isinstance(headers, dict):
        meta["HTTPHeaders"] = dict(headers)
    return {"ResponseMetadata": meta}


def observe_body(inv: Invocation, plan: ad.Plan, result: dict[str, Any]) -> dict[str, Any]:
    """Puts the observing proxy in ``result["body"]``; ends the span now if there is no body to read."""
    from botocore.response import StreamingBody  # botocore made the call: it is imported

    response = _metadata(result)
    body = result.get("body")
    if not isinstance(body, StreamingBody):
        inv.finish(lambda call: ad.invoke_response(call, plan, response, None))
        return result
    length = ad.content_length(response)
    # Image and video bodies are never kept: the span gets what the headers tell.
    tee = _Tee(length, 0 if plan.family == ad.MEDIA else ad.MAX_BODY_BYTES)

    def fill(call: LLMCall) -> None:
        call.response_attributes[sc.STREAM_END_REASON] = tee.reason
        ad.invoke_response(call, plan, response, tee.take())

    cls = _BodyInto if hasattr(type(body), "readinto") else _Body
    result["body"] = cls(body, inv, tee, fill)
    if tee.complete:  # an empty body: there is nothing to wait for
        tee.reason = END_EXHAUSTED
        inv.finish(fill)
    return result
