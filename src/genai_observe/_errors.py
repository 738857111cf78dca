"""The library's exceptions: one family, so callers can catch everything of ours at once."""

from __future__ import annotations


class GenAIObserveError(Exception):
    """Base of every exception genai_observe raises on purpose."""


class ConfigurationError(GenAIObserveError, ValueError):
    """A setting has a value the library cannot use.

    The message names the setting (argument and environment variable), the bad value (never for
    secrets) and what is accepted, so the fix is obvious from one line of stderr.
    """

    def __init__(self, setting: str, value: object, accepted: str, *, secret: bool = False) -> None:
        self.setting = setting
        self.accepted = accepted
        shown = "<redacted>" if secret else repr(value)
        super().__init__(f"genai_observe: invalid {setting}: {shown}; expected {accepted}")
