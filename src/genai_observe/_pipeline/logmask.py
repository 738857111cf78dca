"""No log line of ours or of the OpenTelemetry exporters and processors can carry a credential.

The HTTP client quotes a header it refuses (``Invalid ... header value: 'Api-Token dt0c01...'``),
and the SDK logs that exception on every failed export, traceback included. Configuration already
refuses such values, but a token must not reach a log handler whatever goes wrong, so one filter,
on each logger that can see export requests, masks the configured token and credential header
values (and anything that looks like a credential) in the message and in the traceback text.

Logger filters only see records logged on that very logger, not on its children, so the loggers
are listed one by one (those of opentelemetry-exporter-otlp-proto-http and the SDK's batch
processors and metric reader).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Final

from .._core.content import mask_credentials

LOGGERS: Final[tuple[str, ...]] = (
    "genai_observe",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.trace.export",
    "opentelemetry.sdk._logs._internal.export",
    "opentelemetry.sdk.metrics._internal.export",
)
MASK: Final = "***"
_MIN_SECRET: Final = 6  # shorter values would mask ordinary words


class SecretMask(logging.Filter):
    """Replaces known secret values in a record's message and traceback text."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these values from now on (kept after shutdown: export threads may still log)."""
        with self._lock:
            known = set(self._secrets)
            for secret in secrets:
                for part in (secret, secret.rpartition(" ")[2]):  # "Api-Token <t>": <t> alone too
                    if len(part) >= _MIN_SECRET:
                        known.add(part)
            self._secrets = tuple(sorted(known, key=len, reverse=True))

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return mask_credentials(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            masked = self.mask(message)
            if masked != message:
                record.msg, record.args = masked, None
            if record.exc_info or record.exc_text:
                text = record.exc_text or logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]
                masked = self.mask(text)
                if masked != text:
                    # Formatters print exc_text when it is set; the live exception is dropped so
                    # that no formatter renders the unmasked original. Records without a secret
                    # keep theirs.
                    record.exc_text, record.exc_info = masked, None
        except Exception:  # a filter that raises would lose the record; keep it as it is
            pass
        return True

    def install(self) -> None:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)


SECRETS: Final = SecretMask()


def protect(secrets: Iterable[str]) -> None:
    """Mask ``secrets`` in every log record of the export path, from now on."""
    SECRETS.add(secrets)
    SECRETS.install()
