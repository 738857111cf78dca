"""Configuration: explicit arguments, then environment variables, then defaults.

Everything is parsed and validated here, once, before anything is built, so that a bad value
raises one :class:`ConfigurationError` and leaves nothing half-initialised.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote, urlsplit, urlunsplit

from .._core.modes import CaptureMode, Profile
from .._errors import ConfigurationError
from ..instrumentation._kit.registry import KNOWN_INSTRUMENTATIONS

SIGNALS: Final[tuple[str, ...]] = ("traces", "metrics", "logs")

# Environment variable names, in one place (docs/configuration.md lists each).
ENV_DISABLED: Final = "GENAI_OBSERVE_DISABLED"
ENV_OTEL_SDK_DISABLED: Final = "OTEL_SDK_DISABLED"
ENV_SERVICE_NAME: Final = "OTEL_SERVICE_NAME"
ENV_SERVICE_VERSION: Final = "GENAI_OBSERVE_SERVICE_VERSION"
ENV_ENVIRONMENT: Final = "GENAI_OBSERVE_ENVIRONMENT"
ENV_RESOURCE_ATTRIBUTES: Final = "OTEL_RESOURCE_ATTRIBUTES"
ENV_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
# Read by genai_observe only: genai-observe-instrument --endpoint sets it, so that a Dynatrace
# tenant URL never reaches other OTel SDKs (which would not add /api/v2/otlp) in child processes.
ENV_GENAI_ENDPOINT: Final = "GENAI_OBSERVE_ENDPOINT"
ENV_DT_ENDPOINT: Final = "DT_ENDPOINT"
ENV_DT_API_TOKEN: Final = "DT_API_TOKEN"
ENV_HEADERS: Final = "OTEL_EXPORTER_OTLP_HEADERS"
ENV_TIMEOUT: Final = "OTEL_EXPORTER_OTLP_TIMEOUT"
ENV_COMPRESSION: Final = "OTEL_EXPORTER_OTLP_COMPRESSION"
ENV_METRIC_INTERVAL: Final = "OTEL_METRIC_EXPORT_INTERVAL"
ENV_SEMCONV_OPT_IN: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
ENV_PROFILE: Final = "GENAI_OBSERVE_SEMCONV_PROFILE"
ENV_CAPTURE: Final = "GENAI_OBSERVE_CAPTURE_CONTENT"
ENV_OTEL_CAPTURE: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_TRACELOOP_CAPTURE: Final = "TRACELOOP_TRACE_CONTENT"
ENV_MAX_CONTENT_LENGTH: Final = "GENAI_OBSERVE_MAX_CONTENT_LENGTH"
ENV_LEGACY_CONTENT: Final = "GENAI_OBSERVE_LEGACY_CONTENT"
ENV_INSTRUMENTATIONS: Final = "GENAI_OBSERVE_INSTRUMENTATIONS"
ENV_DISABLED_INSTRUMENTATIONS: Final = "GENAI_OBSERVE_DISABLED_INSTRUMENTATIONS"
ENV_SHUTDOWN_TIMEOUT: Final = "GENAI_OBSERVE_SHUTDOWN_TIMEOUT"
ENV_OPENAI_STREAM_USAGE: Final = "GENAI_OBSERVE_OPENAI_STREAM_USAGE"
ENV_ALLOW_INSECURE_TOKEN: Final = "GENAI_OBSERVE_ALLOW_INSECURE_TOKEN"
ENV_PROMETHEUS_TARGETS: Final = "GENAI_OBSERVE_PROMETHEUS_TARGETS"
ENV_AUDIT_EVENTS: Final = "GENAI_OBSERVE_AUDIT_EVENTS"
ENV_USAGE_LOGS: Final = "GENAI_OBSERVE_USAGE_LOGS"
ENV_BIZEVENTS_ENDPOINT: Final = "GENAI_OBSERVE_BIZEVENTS_ENDPOINT"
ENV_SAMPLER: Final = "OTEL_TRACES_SAMPLER"
ENV_SAMPLER_ARG: Final = "OTEL_TRACES_SAMPLER_ARG"
ENV_SIGNAL_ON: Final[dict[str, str]] = {
    "traces": "GENAI_OBSERVE_TRACES",
    "metrics": "GENAI_OBSERVE_METRICS",
    "logs": "GENAI_OBSERVE_LOGS",
}
ENV_SIGNAL_EXPORTER: Final[dict[str, str]] = {
    "traces": "OTEL_TRACES_EXPORTER",
    "metrics": "OTEL_METRICS_EXPORTER",
    "logs": "OTEL_LOGS_EXPORTER",
}
ENV_SIGNAL_ENDPOINT: Final[dict[str, str]] = {s: f"OTEL_EXPORTER_OTLP_{s.upper()}_ENDPOINT" for s in SIGNALS}
ENV_SIGNAL_HEADERS: Final[dict[str, str]] = {s: f"OTEL_EXPORTER_OTLP_{s.upper()}_HEADERS" for s in SIGNALS}

_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})
_BOOL_ACCEPTED: Final = "true/false (also 1/0, yes/no, on/off)"

_KNOWN_SAMPLERS: Final = frozenset(
    {
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    }
)

# Upper bounds of durations (docs/configuration.md, "Limits"). Larger values are typos or unit
# mix-ups, and past about 2**63 ns they overflow the timers of threading and the SDK: an
# OverflowError in shutdown(), a dead export thread, or every export failing.
MAX_TIMEOUT_S: Final = 3600.0  # export and shutdown timeouts: one hour
MAX_INTERVAL_MS: Final = 86_400_000  # metric export interval and batch delays: one day

# Header names whose values are credentials (matched on the lower-cased name).
_CREDENTIAL_HEADER: Final = re.compile(r"authorization|token|key|secret|password|cookie|auth")
# RFC 9110 field-name characters.
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# C0 controls, DEL and C1 controls: never valid inside a header value or a URL.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# The OneAgent's local OTLP endpoint refuses gzip (Dynatrace docs).
_ONEAGENT_PORT: Final = 14499
_OTLP_PATH: Final = "/api/v2/otlp"
_SIGNAL_SUFFIX: Final = re.compile(r"/v1/(traces|metrics|logs)/?$")
_BIZEVENTS_PATH: Final = "/api/v2/bizevents/ingest"


class Secret:
    """A string that never shows itself in a repr, str or f-string."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Endpoints:
    """Where each signal goes; ``None`` for a signal that is not exported over OTLP."""

    traces: str | None
    metrics: str | None
    logs: str | None

    def for_signal(self, signal: str) -> str | None:
        value: str | None = getattr(self, signal)
        return value


@dataclass(frozen=True)
class Settings:
    """The validated configuration ``init()`` builds from."""

    disabled: bool = False
    service_name: str | None = None
    service_version: str | None = None
    deployment_environment: str | None = None
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    endpoints: Endpoints | None = None  # None: nothing is shipped, the console shows operations.
    token: Secret | None = field(default=None, repr=False)
    headers: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)
    compression: str | None = None  # None: gzip, except "none" towards a local OneAgent
    export_timeout: float = 10.0
    # OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_{COMPRESSION,TIMEOUT}: win over the two above for
    # their signal, unless the argument was given (an argument wins over every variable).
    signal_compression: Mapping[str, str] = field(default_factory=dict)
    signal_timeout: Mapping[str, float] = field(default_factory=dict)
    metric_export_interval_ms: int = 60_000
    shutdown_timeout: float = 10.0
    instrumentations: frozenset[str] = frozenset(KNOWN_INSTRUMENTATIONS)
    capture: CaptureMode = CaptureMode.SPAN_ONLY
    max_content_length: int = 16_384
    redact: Callable[[str], str] | None = None
    profile: Profile = Profile.DYNATRACE
    # dynatrace profile: content also in the flat gen_ai.prompt.N.* form (docs/telemetry.md).
    legacy_content: bool = True
    traces: bool = True
    metrics: bool = True
    logs: bool = True
    reuse_existing_providers: bool = True
    openai_stream_usage: bool = False
    # Batch processor sizes (OTEL_BSP_* / OTEL_BLRP_*), validated here; None: the SDK default.
    span_queue_size: int | None = None
    span_batch_size: int | None = None
    log_queue_size: int | None = None
    log_batch_size: int | None = None
    # Prometheus endpoints scraped into the metrics pipeline (_prometheus.py); may hold user:password.
    prometheus_targets: tuple[str, ...] = field(default=(), repr=False)
    # Business events (_bizevents.py): the audit trail and usage logs are opt-in; evaluation
    # results always go out. bizevents_url None: as OTLP log records (or the console).
    audit_events: bool = False
    usage_logs: bool = False
    bizevents_url: str | None = None

    def batch_sizes(self, signal: str) -> tuple[int, int]:
        """(queue size, batch size) with the batch never larger than the queue.

        The SDK rejects a batch larger than the queue with a ValueError; a user who only lowers
        the queue size (a sensible thing to do) would otherwise crash init().
        """
        queue, batch = (
            (self.span_queue_size, self.span_batch_size)
            if signal == "traces"
            else (self.log_queue_size, self.log_batch_size)
        )
        queue = queue or 2048
        return queue, min(batch or 512, queue)

    def compression_for(self, url: str, signal: str = "") -> str:
        chosen = self.signal_compression.get(signal, self.compression)
        if chosen is not None:
            return chosen
        return "none" if is_local_oneagent(url) else "gzip"  # the OneAgent refuses gzip

    def timeout_for(self, signal: str) -> float:
        return self.signal_timeout.get(signal, self.export_timeout)

    def __repr__(self) -> str:
        # Header values may carry credentials: show names only.
        shown = {k: sorted(v) for k, v in self.headers.items()}
        return (
            f"Settings(service_name={self.service_name!r}, endpoints={self.endpoints!r}, "
            f"token={'set' if self.token else 'unset'}, header_names={shown!r}, "
            f"profile={self.profile.value!r}, capture={self.capture.value!r}, "
            f"instrumentations={sorted(self.instrumentations)!r})"
        )


# --- small parsers -------------------------------------------------------------------------


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def parse_bool(setting: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return True
    if isinstance(value, str) and value.strip().lower() in _FALSE:
        return False
    raise ConfigurationError(setting, value, _BOOL_ACCEPTED)


def _parse_number(
    setting: str,
    value: object,
    *,
    integer: bool,
    minimum: float,
    accepted: str,
    maximum: float = math.inf,
) -> float:
    if isinstance(value, bool):
        raise ConfigurationError(setting, value, accepted)
    try:
        number = float(value) if isinstance(value, (int, float, str)) else math.nan
    except (ValueError, OverflowError):
        number = math.nan
    if (
        not math.isfinite(number)
        or number < minimum
        or number > maximum
        or (integer and not number.is_integer())
    ):
        raise ConfigurationError(setting, value, accepted)
    return number


def _parse_key_values(setting: str, raw: str, *, percent_decode: bool) -> dict[str, str]:
    """Parse ``k1=v1,k2=v2`` (the OTel environment format; values may be %-encoded)."""
    result: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            # Never echo the raw string: header lists often carry credentials.
            raise ConfigurationError(setting, None, "a comma-separated list of key=value pairs", secret=True)
        result[unquote(key) if percent_decode else key] = unquote(value.strip()) if percent_decode else value
    return result


def _names(setting: str, value: object) -> frozenset[str]:
    if isinstance(value, str):
        items: Iterable[object] = value.split(",")
    elif isinstance(value, Iterable):
        items = value
    else:
        raise ConfigurationError(setting, value, "a list of instrumentation names")
    names = frozenset(str(v).strip().lower() for v in items if str(v).strip())
    unknown = sorted(names - set(KNOWN_INSTRUMENTATIONS))
    if unknown:
        raise ConfigurationError(
            setting, ",".join(unknown), f"names from {', '.join(KNOWN_INSTRUMENTATIONS)}"
        )
    return names


# --- endpoints -------------------------------------------------------------------------------


def _shown(url: str) -> str:
    """The URL as it may appear in an error: no user:password, no query (tokens hide there)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        if "@" in parts.netloc:
            netloc = "***@" + netloc
        return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))
    except ValueError:
        return "<unparseable URL>"


def _check_url(setting: str, url: str) -> tuple[str, str, str]:
    """Validate an endpoint URL; return (scheme, netloc, path) with credentials refused."""
    accepted = "an http(s) URL such as https://abc12345.live.dynatrace.com or http://localhost:4318"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError(setting, _shown(url), accepted) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(setting, _shown(url), accepted)
    if parts.username or parts.password:
        raise ConfigurationError(setting, _shown(url), "a URL without user:password (use the API token)")
    if parts.query or parts.fragment:
        raise ConfigurationError(setting, _shown(url), "a URL without query string or fragment")
    if not _valid_host(parts.hostname) or _CONTROL.search(url) or any(c.isspace() for c in url):
        # Accepted by urlsplit, but every export would fail with an error naming no setting.
        raise ConfigurationError(
            setting, _shown(url), "a URL without spaces or control characters and a valid host name"
        )
    del port
    return parts.scheme, parts.netloc, parts.path


def _valid_host(host: str) -> bool:
    """A DNS name (letters, digits, ``-``, ``_``, ``.``; IDN letters too) or an IP address."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    return all(c.isalnum() or c in "-._" for c in host) and not host.startswith((".", "-"))


def is_loopback(url: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: traffic that never leaves the machine."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_dynatrace_host(host: str) -> bool:
    return host.endswith((".dynatrace.com", ".dynatracelabs.com"))


def derive_base(setting: str, url: str) -> str:
    """Turn any of the accepted endpoint forms into an OTLP base ending before ``/v1/<signal>``.

    Accepted: a tenant URL (``https://abc.live.dynatrace.com``; the ``apps`` platform URL is
    mapped to ``live``), the OTLP base (``.../api/v2/otlp``), an ActiveGate environment URL
    (``https://ag:9999/e/<env-id>``), a OneAgent/collector base (``http://localhost:14499/otlp``,
    ``http://collector:4318``) or a full signal URL (``.../v1/traces``), whose suffix is stripped.
    """
    scheme, netloc, path = _check_url(setting, url)
    host = (urlsplit(url).hostname or "").lower()
    path = _SIGNAL_SUFFIX.sub("", path).rstrip("/")
    if _is_dynatrace_host(host):
        # The platform UI host (*.apps.*) serves no API: the OTLP API lives on the classic host.
        netloc = netloc.lower().replace(".apps.dynatrace.com", ".live.dynatrace.com")
        netloc = netloc.replace(".apps.dynatracelabs.com", ".dynatracelabs.com")
        if not path.endswith(_OTLP_PATH):
            path = path + _OTLP_PATH
    elif re.fullmatch(r"/e/[A-Za-z0-9_-]+", path):
        path = path + _OTLP_PATH  # ActiveGate environment URL.
    return urlunsplit((scheme, netloc, path, "", ""))


def is_local_oneagent(url: str) -> bool:
    parts = urlsplit(url)
    return parts.hostname in ("localhost", "127.0.0.1", "::1") and parts.port == _ONEAGENT_PORT


def resolve_endpoints(
    endpoint: str | None,
    endpoint_label: str,
    per_signal: Mapping[str, tuple[str | None, str]],
    enabled: Mapping[str, bool],
) -> Endpoints | None:
    """Signal URLs from a base endpoint and/or per-signal URLs (per-signal wins).

    ``per_signal`` maps a signal to (URL or None, the label naming where it came from).
    """
    base = derive_base(endpoint_label, endpoint) if endpoint else None
    urls: dict[str, str | None] = {}
    for signal in SIGNALS:
        explicit, label = per_signal.get(signal, (None, ""))
        if explicit:
            _check_url(label, explicit)
            urls[signal] = explicit
        elif base:
            urls[signal] = f"{base}/v1/{signal}"
        else:
            urls[signal] = None
        if not enabled.get(signal, True):
            urls[signal] = None
    if base is None and not any(url for url, _ in per_signal.values()):
        return None
    return Endpoints(urls["traces"], urls["metrics"], urls["logs"])


# --- headers, tokens and resource values ----------------------------------------------------


def _clean_header(setting: str, name: object, value: object) -> tuple[str, str]:
    """A header as it can go on the wire: surrounding whitespace dropped, nothing else changed.

    A token read from a file ends in a newline; the HTTP client refuses such a value on every
    export and logs it, token included. Whitespace around a value is never meant; a control
    character inside one, or a character HTTP cannot carry (not Latin-1), is refused here, by name.
    """
    if not isinstance(name, str) or not isinstance(value, str):
        raise ConfigurationError(setting, None, "a dict of str to str", secret=True)
    key = name.strip().lower()
    if not _HEADER_NAME.fullmatch(key):
        raise ConfigurationError(f"{setting} header name", name, "letters, digits and !#$%&'*+-.^_`|~ only")
    text = value.strip()
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigurationError(
            f"{setting} header {key!r}",
            None,
            "a value of Latin-1 characters (HTTP carries no others)",
            secret=True,
        ) from None
    if _CONTROL.search(text):
        raise ConfigurationError(
            f"{setting} header {key!r}",
            None,
            "a value without control characters (newline, tab, ...)",
            secret=True,
        )
    return key, text


def is_credential_header(name: str) -> bool:
    return bool(_CREDENTIAL_HEADER.search(name.lower()))


def _resource_text(setting: str, value: object) -> str:
    """A resource attribute value: a non-blank string, stripped (backends index them as given)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(setting, value, "a non-blank string")
    if _CONTROL.search(value.strip()):
        raise ConfigurationError(setting, value, "a string without control characters")
    return value.strip()


def _refuse_cleartext_credentials(
    endpoints: Endpoints | None,
    token_label: str | None,
    header_labels: Mapping[str, Mapping[str, str]],
) -> None:
    """A token or credential header must not travel unencrypted off this machine.

    Loopback (a local OneAgent on http://localhost:14499, a sidecar collector on 127.0.0.1) stays
    allowed; anything else needs https or the explicit opt-in.
    """
    if endpoints is None:
        return
    for signal in SIGNALS:
        url = endpoints.for_signal(signal)
        if url is None or urlsplit(url).scheme != "http" or is_loopback(url):
            continue
        credential = token_label or next(
            (label for name, label in header_labels.get(signal, {}).items() if is_credential_header(name)),
            None,
        )
        if credential is not None:
            raise ConfigurationError(
                credential,
                None,
                f"an https:// endpoint: it would be sent in clear text to {_shown(url)}. Use https, or "
                f"allow it explicitly with allow_insecure_token=True or {ENV_ALLOW_INSECURE_TOKEN}=true",
                secret=True,
            )


# --- the one entry point ------------------------------------------------------------------


_UNSET: Any = object()


def _pick(arg: object, *env_names: str) -> tuple[object, str | None]:
    """The explicit argument if given, else the first environment variable set."""
    if arg is not _UNSET and arg is not None:
        return arg, None
    for name in env_names:
        value = _env(name)
        if value is not None:
            return value, name
    return None, None


def _label(arg_name: str, env_name: str | None) -> str:
    return f"{env_name} (environment)" if env_name else f"{arg_name} (argument)"


def _compression(raw: object, setting: str) -> str:
    value = str(raw).strip().lower()
    if value not in ("gzip", "none", "deflate"):
        raise ConfigurationError(setting, raw, "gzip, deflate or none")
    return value


def _timeout_ms(raw: object, setting: str) -> float:
    """An OTLP timeout variable, in milliseconds as the OTel specification gives it, in seconds."""
    return (
        _parse_number(
            setting,
            raw,
            integer=False,
            minimum=1,
            maximum=MAX_TIMEOUT_S * 1000,
            accepted=f"a positive number of milliseconds up to {MAX_TIMEOUT_S * 1000:.0f} (one hour)",
        )
        / 1000
    )


def _capture_mode(value: object, env_name: str | None) -> CaptureMode:
    setting = _label("capture_content", env_name)
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
            setting, value, f"{_BOOL_ACCEPTED} or one of {', '.join(CaptureMode.__members__)}"
        ) from None


def load_settings(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    deployment_environment: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    traces_endpoint: str | None = None,
    metrics_endpoint: str | None = None,
    logs_endpoint: str | None = None,
    api_token: str | None = None,
    headers: Mapping[str, str] | None = None,
    compression: str | None = None,
    export_timeout: float | None = None,
    instrumentations: Iterable[str] | str | None = None,
    disabled_instrumentations: Iterable[str] | str | None = None,
    capture_content: bool | str | CaptureMode | None = None,
    max_content_length: int | None = None,
    redact: Callable[[str], str] | None = None,
    profile: str | Profile | None = None,
    legacy_content: bool | str | None = None,
    metric_export_interval_ms: int | None = None,
    shutdown_timeout: float | None = None,
    traces: bool | None = None,
    metrics: bool | None = None,
    logs: bool | None = None,
    reuse_existing_providers: bool | None = None,
    disabled: bool | None = None,
    allow_insecure_token: bool | None = None,
    prometheus_targets: Iterable[str] | str | None = None,
    audit_events: bool | None = None,
    usage_logs: bool | None = None,
    bizevents_endpoint: str | None = None,
) -> Settings:
    """Merge arguments and environment into validated :class:`Settings` (argument wins)."""
    off, env_name = _pick(disabled, ENV_DISABLED)
    is_disabled = parse_bool(_label("disabled", env_name), off) if off is not None else False
    sdk_off = _env(ENV_OTEL_SDK_DISABLED)
    if disabled is None and sdk_off is not None and parse_bool(ENV_OTEL_SDK_DISABLED, sdk_off):
        is_disabled = True  # an explicit disabled= argument wins, as every argument does
    if is_disabled:
        return Settings(disabled=True)

    # Signals on/off: GENAI_OBSERVE_<SIGNAL>=false or OTEL_<SIGNAL>_EXPORTER=none turn one off.
    signal_args = {"traces": traces, "metrics": metrics, "logs": logs}
    signal_on: dict[str, bool] = {}
    for signal in SIGNALS:
        value, env_name = _pick(signal_args[signal], ENV_SIGNAL_ON[signal])
        on = parse_bool(_label(signal, env_name), value) if value is not None else True
        exporter = _env(ENV_SIGNAL_EXPORTER[signal])
        if signal_args[signal] is None and exporter is not None and exporter.lower() == "none":
            on = False
        signal_on[signal] = on

    raw_endpoint, endpoint_env = _pick(endpoint, ENV_GENAI_ENDPOINT, ENV_ENDPOINT, ENV_DT_ENDPOINT)
    per_signal_args = {"traces": traces_endpoint, "metrics": metrics_endpoint, "logs": logs_endpoint}
    per_signal: dict[str, tuple[str | None, str]] = {}
    for signal in SIGNALS:
        value, env_name = _pick(per_signal_args[signal], ENV_SIGNAL_ENDPOINT[signal])
        per_signal[signal] = (
            str(value).strip() if value is not None else None,
            _label(f"{signal}_endpoint", env_name),
        )
    endpoints = resolve_endpoints(
        str(raw_endpoint).strip() if raw_endpoint is not None else None,
        _label("endpoint", endpoint_env),
        per_signal,
        signal_on,
    )

    raw_token, token_env = _pick(api_token, ENV_DT_API_TOKEN)
    token: Secret | None = None
    if raw_token is not None:
        text = str(raw_token).strip()
        if not text or any(c.isspace() for c in text) or not text.isprintable() or not text.isascii():
            raise ConfigurationError(
                _label("api_token", token_env),
                None,
                "a Dynatrace API token without spaces (ASCII letters, digits and punctuation)",
                secret=True,
            )
        if endpoints is None and _pick(bizevents_endpoint, ENV_BIZEVENTS_ENDPOINT)[0] is None:
            raise ConfigurationError(
                _label("api_token", token_env),
                None,
                f"an endpoint as well (endpoint argument, {ENV_GENAI_ENDPOINT}, {ENV_ENDPOINT} or "
                f"{ENV_DT_ENDPOINT})",
                secret=True,
            )
        token = Secret(text)

    # Headers: per signal, env per-signal > env general; explicit argument entries win.
    signal_headers: dict[str, dict[str, str]] = {}
    header_labels: dict[str, dict[str, str]] = {}  # signal -> header -> the setting it came from
    if headers and not isinstance(headers, Mapping):
        raise ConfigurationError("headers (argument)", None, "a dict of str to str", secret=True)
    for signal in SIGNALS:
        merged: dict[str, str] = {}
        labels: dict[str, str] = {}
        for env_name in (ENV_HEADERS, ENV_SIGNAL_HEADERS[signal]):
            raw = _env(env_name)
            if raw:
                for k, v in _parse_key_values(env_name, raw, percent_decode=True).items():
                    key, value = _clean_header(env_name, k, v)
                    merged[key], labels[key] = value, f"{env_name} (environment)"
        for k, v in (headers or {}).items():
            key, value = _clean_header("headers (argument)", k, v)
            merged[key], labels[key] = value, "headers (argument)"
        if token is not None:
            merged["authorization"] = f"Api-Token {token.reveal()}"
            labels.pop("authorization", None)
        signal_headers[signal] = merged
        header_labels[signal] = labels

    raw_insecure, insecure_env = _pick(allow_insecure_token, ENV_ALLOW_INSECURE_TOKEN)
    insecure_ok = (
        parse_bool(_label("allow_insecure_token", insecure_env), raw_insecure)
        if raw_insecure is not None
        else False
    )
    if not insecure_ok:
        _refuse_cleartext_credentials(
            endpoints, _label("api_token", token_env) if token is not None else None, header_labels
        )

    raw_compression, comp_env = _pick(compression, ENV_COMPRESSION)
    comp: str | None = None  # decided per signal URL: gzip, except for a local OneAgent
    if raw_compression is not None:
        comp = _compression(raw_compression, _label("compression", comp_env))
    signal_comp: dict[str, str] = {}
    signal_timeout: dict[str, float] = {}
    for signal in SIGNALS:
        comp_name = f"OTEL_EXPORTER_OTLP_{signal.upper()}_COMPRESSION"
        raw = _env(comp_name)
        if raw is not None and (compression is _UNSET or compression is None):
            signal_comp[signal] = _compression(raw, f"{comp_name} (environment)")
        timeout_name = f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT"
        raw = _env(timeout_name)
        if raw is not None and (export_timeout is _UNSET or export_timeout is None):
            signal_timeout[signal] = _timeout_ms(raw, f"{timeout_name} (environment)")

    raw_timeout, timeout_env = _pick(export_timeout, ENV_TIMEOUT)
    if raw_timeout is None:
        timeout_s = 10.0
    elif timeout_env:
        timeout_s = _timeout_ms(raw_timeout, _label("export_timeout", timeout_env))
    else:
        timeout_s = _parse_number(
            "export_timeout (argument)",
            raw_timeout,
            integer=False,
            minimum=0.001,
            maximum=MAX_TIMEOUT_S,
            accepted=f"a positive number of seconds up to {MAX_TIMEOUT_S:.0f} (one hour)",
        )

    raw_interval, interval_env = _pick(metric_export_interval_ms, ENV_METRIC_INTERVAL)
    interval = 60_000
    if raw_interval is not None:
        interval = int(
            _parse_number(
                _label("metric_export_interval_ms", interval_env),
                raw_interval,
                integer=True,
                minimum=1,
                maximum=MAX_INTERVAL_MS,
                accepted=f"a positive whole number of milliseconds up to {MAX_INTERVAL_MS} (one day)",
            )
        )

    raw_shutdown, shutdown_env = _pick(shutdown_timeout, ENV_SHUTDOWN_TIMEOUT)
    shutdown_s = 10.0
    if raw_shutdown is not None:
        shutdown_s = _parse_number(
            _label("shutdown_timeout", shutdown_env),
            raw_shutdown,
            integer=False,
            minimum=0,
            maximum=MAX_TIMEOUT_S,
            accepted=f"a number of seconds >= 0 and up to {MAX_TIMEOUT_S:.0f} (one hour)",
        )

    raw_enabled, enabled_env = _pick(instrumentations, ENV_INSTRUMENTATIONS)
    enabled = (
        _names(_label("instrumentations", enabled_env), raw_enabled)
        if raw_enabled is not None
        else frozenset(KNOWN_INSTRUMENTATIONS)
    )
    raw_disabled, disabled_env = _pick(disabled_instrumentations, ENV_DISABLED_INSTRUMENTATIONS)
    if raw_disabled is not None:
        enabled = enabled - _names(_label("disabled_instrumentations", disabled_env), raw_disabled)

    raw_capture, capture_env = _pick(capture_content, ENV_CAPTURE, ENV_OTEL_CAPTURE, ENV_TRACELOOP_CAPTURE)
    capture = _capture_mode(raw_capture, capture_env) if raw_capture is not None else CaptureMode.SPAN_ONLY

    raw_max, max_env = _pick(max_content_length, ENV_MAX_CONTENT_LENGTH)
    max_len = 16_384
    if raw_max is not None:
        max_len = int(
            _parse_number(
                _label("max_content_length", max_env),
                raw_max,
                integer=True,
                minimum=16,
                accepted="a whole number of characters >= 16",
            )
        )

    if redact is not None and not callable(redact):
        raise ConfigurationError("redact (argument)", redact, "a callable taking and returning a str")

    chosen_profile = _resolve_profile(profile)
    raw_legacy, legacy_env = _pick(legacy_content, ENV_LEGACY_CONTENT)
    legacy = parse_bool(_label("legacy_content", legacy_env), raw_legacy) if raw_legacy is not None else True

    attrs: dict[str, str] = {}
    raw_attrs = _env(ENV_RESOURCE_ATTRIBUTES)
    if raw_attrs:
        for key, value in _parse_key_values(ENV_RESOURCE_ATTRIBUTES, raw_attrs, percent_decode=True).items():
            attrs[key] = _resource_text(f"{ENV_RESOURCE_ATTRIBUTES} key {key!r}", value)
    if resource_attributes:
        if not isinstance(resource_attributes, Mapping):
            raise ConfigurationError("resource_attributes (argument)", resource_attributes, "a dict")
        for key, value in resource_attributes.items():
            name = _resource_text("resource_attributes (argument) key", key)
            attrs[name] = _resource_text(f"resource_attributes (argument) key {name!r}", value)

    sampler = _env(ENV_SAMPLER)
    if sampler is not None and sampler.lower() not in _KNOWN_SAMPLERS and not _sampler_plugin(sampler):
        raise ConfigurationError(
            ENV_SAMPLER, sampler, ", ".join(sorted(_KNOWN_SAMPLERS)) + " or an installed sampler plugin"
        )
    sampler_arg = _env(ENV_SAMPLER_ARG)
    if sampler_arg is not None and sampler is not None and "traceidratio" in sampler.lower():
        ratio = _parse_number(ENV_SAMPLER_ARG, sampler_arg, integer=False, minimum=0, accepted="a ratio 0..1")
        if ratio > 1:
            raise ConfigurationError(ENV_SAMPLER_ARG, sampler_arg, "a ratio 0..1")

    raw_reuse = reuse_existing_providers if reuse_existing_providers is not None else True

    sizes: dict[str, int | None] = {}
    for name, maximum in (
        ("OTEL_BSP_MAX_QUEUE_SIZE", math.inf),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", math.inf),
        ("OTEL_BSP_SCHEDULE_DELAY", MAX_INTERVAL_MS),
        ("OTEL_BSP_EXPORT_TIMEOUT", MAX_TIMEOUT_S * 1000),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", math.inf),
        ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", math.inf),
        ("OTEL_BLRP_SCHEDULE_DELAY", MAX_INTERVAL_MS),
        ("OTEL_BLRP_EXPORT_TIMEOUT", MAX_TIMEOUT_S * 1000),
        ("OTEL_METRIC_EXPORT_TIMEOUT", MAX_TIMEOUT_S * 1000),
    ):
        raw = _env(name)
        limit = "" if maximum == math.inf else f" up to {maximum:.0f} (milliseconds)"
        sizes[name] = (
            int(
                _parse_number(
                    name,
                    raw,
                    integer=True,
                    minimum=1,
                    maximum=maximum,
                    accepted=f"a positive whole number{limit}",
                )
            )
            if raw is not None
            else None
        )

    resource: dict[str, str | None] = {}
    for arg_name, arg, env_name in (
        ("service_name", service_name, ENV_SERVICE_NAME),
        ("service_version", service_version, ENV_SERVICE_VERSION),
        ("deployment_environment", deployment_environment, ENV_ENVIRONMENT),
    ):
        value, from_env = _pick(arg, env_name)
        resource[arg_name] = _resource_text(_label(arg_name, from_env), value) if value is not None else None

    raw_targets, targets_env = _pick(prometheus_targets, ENV_PROMETHEUS_TARGETS)
    targets = (
        _prometheus_targets(_label("prometheus_targets", targets_env), raw_targets)
        if raw_targets is not None
        else ()
    )

    audit_on, usage_on, bizevents_url = _business_events(
        audit_events,
        usage_logs,
        bizevents_endpoint,
        raw_endpoint,
        endpoint_env,
        endpoints,
        signal_headers,
        _label("api_token", token_env) if token is not None else None,
        insecure_ok,
    )

    return Settings(
        service_name=resource["service_name"],
        service_version=resource["service_version"],
        deployment_environment=resource["deployment_environment"],
        resource_attributes=attrs,
        endpoints=endpoints,
        token=token,
        headers=signal_headers,
        compression=comp,
        export_timeout=timeout_s,
        signal_compression=signal_comp,
        signal_timeout=signal_timeout,
        metric_export_interval_ms=interval,
        shutdown_timeout=shutdown_s,
        instrumentations=enabled,
        capture=capture,
        max_content_length=max_len,
        redact=redact,
        profile=chosen_profile,
        legacy_content=legacy,
        traces=signal_on["traces"],
        metrics=signal_on["metrics"],
        logs=signal_on["logs"],
        reuse_existing_providers=parse_bool("reuse_existing_providers (argument)", raw_reuse),
        openai_stream_usage=(
            parse_bool(ENV_OPENAI_STREAM_USAGE, _env(ENV_OPENAI_STREAM_USAGE))
            if _env(ENV_OPENAI_STREAM_USAGE) is not None
            else False
        ),
        span_queue_size=sizes["OTEL_BSP_MAX_QUEUE_SIZE"],
        span_batch_size=sizes["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"],
        log_queue_size=sizes["OTEL_BLRP_MAX_QUEUE_SIZE"],
        log_batch_size=sizes["OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"],
        prometheus_targets=targets,
        audit_events=audit_on,
        usage_logs=usage_on,
        bizevents_url=bizevents_url,
    )


def derive_bizevents_url(otlp_base: str | None) -> str | None:
    """The Business Events API next to a Dynatrace OTLP base (``.../api/v2/otlp``), else None.

    derive_base gives tenant and ActiveGate URLs that base, so ``https://abc.live.dynatrace.com``
    and ``https://ag:9999/e/<env>/api/v2/otlp`` both lead to ``.../api/v2/bizevents/ingest``. A
    collector or OneAgent base has no such API: events then travel as OTLP log records.
    """
    if not otlp_base:
        return None
    parts = urlsplit(otlp_base)
    path = _SIGNAL_SUFFIX.sub("", parts.path).rstrip("/")
    if not path.endswith(_OTLP_PATH):
        return None
    return urlunsplit((parts.scheme, parts.netloc, path[: -len(_OTLP_PATH)] + _BIZEVENTS_PATH, "", ""))


def _business_events(
    audit_events: object,
    usage_logs: object,
    bizevents_endpoint: object,
    raw_endpoint: object,
    endpoint_env: str | None,
    endpoints: Endpoints | None,
    signal_headers: Mapping[str, Mapping[str, str]],
    token_label: str | None,
    insecure_ok: bool,
) -> tuple[bool, bool, str | None]:
    """(audit events on, usage logs on, Business Events URL) for Settings.

    The URL is GENAI_OBSERVE_BIZEVENTS_ENDPOINT as given, else derived from a Dynatrace endpoint
    (tenant, ActiveGate, ``/api/v2/otlp``; or a logs URL under one). Requests carry the logs
    signal's headers, so the same clear-text rule applies to it.
    """
    raw_audit, audit_env = _pick(audit_events, ENV_AUDIT_EVENTS)
    audit = parse_bool(_label("audit_events", audit_env), raw_audit) if raw_audit is not None else False
    raw_usage, usage_env = _pick(usage_logs, ENV_USAGE_LOGS)
    usage = parse_bool(_label("usage_logs", usage_env), raw_usage) if raw_usage is not None else False

    raw_url, url_env = _pick(bizevents_endpoint, ENV_BIZEVENTS_ENDPOINT)
    url: str | None = None
    if raw_url is not None:
        url = str(raw_url).strip()
        _check_url(_label("bizevents_endpoint", url_env), url)
        setting = _label("bizevents_endpoint", url_env)
    else:
        base = (
            derive_base(_label("endpoint", endpoint_env), str(raw_endpoint).strip()) if raw_endpoint else None
        )
        url = derive_bizevents_url(base or (endpoints.logs if endpoints is not None else None))
        setting = _label("endpoint", endpoint_env)
    headers = signal_headers.get("logs", {})
    if url is not None and not insecure_ok and urlsplit(url).scheme == "http" and not is_loopback(url):
        credential = token_label or next(
            (f"headers for {setting}" for k in headers if is_credential_header(k)), None
        )
        if credential is not None:
            raise ConfigurationError(
                credential,
                None,
                f"an https:// Business Events endpoint: it would be sent in clear text to {_shown(url)}. "
                f"Use https, or allow it explicitly with allow_insecure_token=True or "
                f"{ENV_ALLOW_INSECURE_TOKEN}=true",
                secret=True,
            )
    logs_out = endpoints is not None and endpoints.logs is not None
    if audit and url is None and endpoints is not None and not logs_out:
        raise ConfigurationError(
            _label("audit_events", audit_env),
            raw_audit,
            f"a Business Events endpoint (a Dynatrace endpoint or {ENV_BIZEVENTS_ENDPOINT}) or logs "
            "export on: towards other endpoints audit events travel as OTLP log records",
        )
    if usage and endpoints is not None and not logs_out:
        raise ConfigurationError(
            _label("usage_logs", usage_env), raw_usage, "logs export on: usage logs are OTLP log records"
        )
    return audit, usage, url


def _prometheus_targets(setting: str, value: object) -> tuple[str, ...]:
    """Scrape URLs: http(s), any path and query; ``user:password@`` is allowed (sent as Basic auth)."""
    accepted = "comma-separated http(s) URLs such as http://nim:8000/v1/metrics,http://kong:8100/metrics"
    if isinstance(value, str):
        items: Iterable[object] = value.split(",")
    elif isinstance(value, Iterable):
        items = value
    else:
        raise ConfigurationError(setting, value, accepted)
    targets: list[str] = []
    for item in items:
        url = item.strip() if isinstance(item, str) else ""
        if not isinstance(item, str):
            raise ConfigurationError(setting, item, accepted)
        if not url:
            continue
        try:
            parts = urlsplit(url)
            port = parts.port  # raises ValueError on a bad port
        except ValueError:
            raise ConfigurationError(setting, _shown(url), accepted) from None
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
            raise ConfigurationError(setting, _shown(url), accepted)
        del port
        if url not in targets:
            targets.append(url)
    if targets and importlib.util.find_spec("prometheus_client") is None:
        raise ConfigurationError(
            setting,
            [_shown(t) for t in targets],
            "prometheus-client installed as well: pip install 'genai-observe[prometheus]'",
        )
    return tuple(targets)


def _sampler_plugin(name: str) -> bool:
    """True when a package registers ``name`` as a sampler the SDK can load."""
    from importlib.metadata import entry_points

    return any(ep.name == name for ep in entry_points(group="opentelemetry_traces_sampler"))


def _resolve_profile(profile: str | Profile | None) -> Profile:
    value, env_name = _pick(profile, ENV_PROFILE)
    if value is not None:
        try:
            return Profile(str(value.value if isinstance(value, Profile) else value).strip().lower())
        except ValueError:
            raise ConfigurationError(_label("profile", env_name), value, "dynatrace or latest") from None
    opt_in = _env(ENV_SEMCONV_OPT_IN) or ""
    if "gen_ai_latest_experimental" in {v.strip() for v in opt_in.split(",")}:
        return Profile.LATEST
    return Profile.DYNATRACE


def capture_from_env() -> CaptureMode:
    """The content mode for instrumentors used on their own, without ``init()``."""
    raw, env_name = _pick(None, ENV_CAPTURE, ENV_OTEL_CAPTURE, ENV_TRACELOOP_CAPTURE)
    if raw is None:
        return CaptureMode.SPAN_ONLY
    return _capture_mode(raw, env_name)


def profile_from_env() -> Profile:
    return _resolve_profile(None)
