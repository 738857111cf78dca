"""Hooks for the stock ``opentelemetry-instrument``: a distro and a configurator.

The distro only sets defaults Dynatrace needs (http/protobuf, DELTA) where the environment has
none. The configurator (selected with OTEL_PYTHON_CONFIGURATOR=genai_observe, or when it is the only
one installed) builds the export pipeline with ``init()`` but leaves instrumenting to
``opentelemetry-instrument`` itself, which loads our instrumentors from their entry points; our
instrumentors are singletons, so nothing is instrumented twice.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

try:
    from opentelemetry.sdk._configuration import _BaseConfigurator
except ImportError:  # pragma: no cover - very old SDKs
    _BaseConfigurator = object  # type: ignore[assignment,misc]


class GenAIObserveDistro(BaseDistro):  # type: ignore[misc]
    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        os.environ.setdefault("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")


class GenAIObserveConfigurator(_BaseConfigurator):
    def _configure(self, **kwargs: Any) -> None:
        from .._errors import ConfigurationError
        from .._pipeline.bootstrap import init_automatic
        from .autoinit import _say

        try:
            init_automatic(instrumentations=[])
        except ConfigurationError as exc:
            _say(f"{exc}; the application runs uninstrumented")
