"""Processors whose destination can be replaced while the providers stay the same objects.

A zero-code setup (``genai-observe-instrument``) is built from the environment before the app's
code runs; when that code then calls ``init()`` with an endpoint or other export settings, those
apply to the providers already installed as the global ones (OpenTelemetry lets a global
provider be set once only), and to every tracer and logger handed out from them. The SDK's
providers can add processors but never remove one, so ours add one of these and swap what is
inside.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor


class SwitchableSpanProcessor(SpanProcessor):
    """Forwards to one inner processor (or none); :meth:`swap` replaces it atomically."""

    def __init__(self, inner: SpanProcessor | None) -> None:
        self.inner = inner

    def swap(self, inner: SpanProcessor | None) -> SpanProcessor | None:
        """Install ``inner``; return the previous one, for the caller to shut down."""
        old, self.inner = self.inner, inner
        return old

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        inner = self.inner
        if inner is not None:
            inner.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        inner = self.inner
        if inner is not None:
            inner._on_ending(span)

    def on_end(self, span: ReadableSpan) -> None:
        inner = self.inner
        if inner is not None:
            inner.on_end(span)

    def shutdown(self) -> None:
        inner = self.inner
        if inner is not None:
            inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        inner = self.inner
        return True if inner is None else bool(inner.force_flush(timeout_millis))


class SwitchableLogRecordProcessor(LogRecordProcessor):
    """The log-record twin of :class:`SwitchableSpanProcessor`."""

    def __init__(self, inner: LogRecordProcessor | None) -> None:
        self.inner = inner

    def swap(self, inner: LogRecordProcessor | None) -> LogRecordProcessor | None:
        old, self.inner = self.inner, inner
        return old

    def on_emit(self, log_record: Any) -> None:
        inner = self.inner
        if inner is not None:
            inner.on_emit(log_record)

    def enabled(self, **kwargs: Any) -> bool:
        inner = self.inner
        return inner is not None and bool(inner.enabled(**kwargs))

    def shutdown(self) -> None:
        inner = self.inner
        if inner is not None:
            inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        inner = self.inner
        return True if inner is None else bool(inner.force_flush(timeout_millis))
