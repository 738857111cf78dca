"""The two choices every recorder makes: which semantic conventions, and where content goes.

They live in the core (recorders read them on every call); the pipeline's settings parse them from
arguments and the environment.
"""

from __future__ import annotations

from enum import Enum


class Profile(str, Enum):
    """Which semantic conventions the spans carry."""

    DYNATRACE = "dynatrace"  # Dynatrace's documented attributes plus v1.41.0 non-content ones.
    LATEST = "latest"  # OpenTelemetry GenAI v1.41.0 only.


class CaptureMode(str, Enum):
    """Where prompt and completion content goes (names match util-genai's)."""

    NO_CONTENT = "NO_CONTENT"
    SPAN_ONLY = "SPAN_ONLY"
    EVENT_ONLY = "EVENT_ONLY"
    SPAN_AND_EVENT = "SPAN_AND_EVENT"

    @property
    def on_span(self) -> bool:
        return self in (CaptureMode.SPAN_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def on_event(self) -> bool:
        return self in (CaptureMode.EVENT_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def any(self) -> bool:
        return self is not CaptureMode.NO_CONTENT
