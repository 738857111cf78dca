"""The option parsing provider code needs too: booleans, the content mode and the profile.

These sit in the core, not in ``_pipeline/settings.py``, because instrumentors used on their own
(without ``init()``) read the content mode and the profile from the environment, and provider code
may import only the core (tests/test_architecture.py). ``_pipeline`` builds its option table on them.
"""

from __future__ import annotations

import os
from typing import Any, Final

from .._errors import ConfigurationError
from .modes import CaptureMode, Profile

ENV_PROFILE: Final = "GENAI_OBSERVE_SEMCONV_PROFILE"
ENV_SEMCONV_OPT_IN: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
ENV_CAPTURE: Final = "GENAI_OBSERVE_CAPTURE_CONTENT"
ENV_OTEL_CAPTURE: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_TRACELOOP_CAPTURE: Final = "TRACELOOP_TRACE_CONTENT"
# The content variables, in the order they are consulted (the first one set wins).
CAPTURE_ENV: Final = (ENV_CAPTURE, ENV_OTEL_CAPTURE, ENV_TRACELOOP_CAPTURE)

_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})
BOOL_ACCEPTED: Final = "true/false (also 1/0, yes/no, on/off)"

# "Not given" for an argument, distinct from None (which also means not given).
UNSET: Any = object()


def env(name: str) -> str | None:
    """A variable's value, stripped; empty or whitespace-only counts as unset."""
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def pick(arg: object, *env_names: str) -> tuple[object, str | None]:
    """The explicit argument if given, else the first environment variable set, and its name."""
    if arg is not UNSET and arg is not None:
        return arg, None
    for name in env_names:
        value = env(name)
        if value is not None:
            return value, name
    return None, None


def label(arg_name: str, env_name: str | None) -> str:
    """How an error names a setting: ``<VARIABLE> (environment)`` or ``<name> (argument)``."""
    return f"{env_name} (environment)" if env_name else f"{arg_name} (argument)"


def parse_bool(setting: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return True
    if isinstance(value, str) and value.strip().lower() in _FALSE:
        return False
    raise ConfigurationError(setting, value, BOOL_ACCEPTED)


def capture_mode(value: object, env_name: str | None) -> CaptureMode:
    return capture_mode_for(label("capture_content", env_name), value)


def capture_mode_for(setting: str, value: object) -> CaptureMode:
    """A content mode from a mode name, a boolean or a CaptureMode; errors name ``setting``."""
    if isinstance(value, CaptureMode):
        return value
    if isinstance(value, str):
        upper = value.strip().upper()
        if upper in CaptureMode.__members__:
            return CaptureMode[upper]
    try:
        # Older instrumentations used true/false; true means "on" here (util-genai reads it as
        # NO_CONTENT, which surprises the people who set it).
        return CaptureMode.SPAN_ONLY if parse_bool(setting, value) else CaptureMode.NO_CONTENT
    except ConfigurationError:
        raise ConfigurationError(
            setting, value, f"{BOOL_ACCEPTED} or one of {', '.join(CaptureMode.__members__)}"
        ) from None


def resolve_profile(profile: str | Profile | None) -> Profile:
    value, env_name = pick(profile, ENV_PROFILE)
    if value is not None:
        try:
            return Profile(str(value.value if isinstance(value, Profile) else value).strip().lower())
        except ValueError:
            raise ConfigurationError(label("profile", env_name), value, "dynatrace or latest") from None
    opt_in = env(ENV_SEMCONV_OPT_IN) or ""
    if "gen_ai_latest_experimental" in {v.strip() for v in opt_in.split(",")}:
        return Profile.LATEST
    return Profile.DYNATRACE


def capture_from_env() -> CaptureMode:
    """The content mode for instrumentors used on their own, without ``init()``."""
    raw, env_name = pick(None, *CAPTURE_ENV)
    if raw is None:
        return CaptureMode.SPAN_ONLY
    return capture_mode(raw, env_name)


def profile_from_env() -> Profile:
    return resolve_profile(None)
