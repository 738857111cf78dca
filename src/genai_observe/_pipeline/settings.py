"""Configuration: explicit arguments, then environment variables, then defaults.

Everything is parsed and validated here, once, before anything is built, so that a bad value
raises one :class:`ConfigurationError` and leaves nothing half-initialised. Which options exist,
their variables, defaults and simple parsers are declared once, in ``options.OPTIONS``; this
module reads the options whose meaning depends on each other (endpoints, token, headers,
compression and timeouts per signal, business events).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote, urlsplit, urlunsplit

from .._core.config import (
    ENV_CAPTURE,
    ENV_OTEL_CAPTURE,
    ENV_PROFILE,
    ENV_SEMCONV_OPT_IN,
    ENV_TRACELOOP_CAPTURE,
    capture_from_env,
    parse_bool,
    profile_from_env,
    resolve_profile,
)
from .._core.config import env as _env
from .._core.modes import CaptureMode, Profile
from .._errors import ConfigurationError
from ..instrumentation._kit.registry import KNOWN_INSTRUMENTATIONS
from .options import (
    CONTROL as _CONTROL,
)
from .options import (
    ENV_TRACELOOP_HEADERS,
    MAX_INTERVAL_MS,
    MAX_TIMEOUT_S,
    SIGNALS,
    Given,
    env_of,
    timeout_ms,
)
from .options import parse_number as _parse_number
from .options import resource_text as _resource_text

# Re-exported for the modules that import them from here (instrumentation/openai does; new code
# imports them from _core/config.py).
__all__ = [
    "ENV_CAPTURE",
    "ENV_OTEL_CAPTURE",
    "ENV_PROFILE",
    "ENV_SEMCONV_OPT_IN",
    "ENV_TRACELOOP_CAPTURE",
    "capture_from_env",
    "load_settings",
    "parse_bool",
    "profile_from_env",
]

# Environment variable names, taken from the option table (options.OPTIONS declares each once).
ENV_DISABLED: Final = env_of("disabled")[0]
ENV_SERVICE_NAME: Final = env_of("service_name")[0]
ENV_SERVICE_VERSION: Final = env_of("service_version")[0]
ENV_ENVIRONMENT: Final = env_of("deployment_environment")[0]
ENV_RESOURCE_ATTRIBUTES: Final = env_of("resource_attributes")[0]
ENV_GENAI_ENDPOINT, ENV_ENDPOINT, ENV_DT_ENDPOINT, _ = env_of("endpoint")
ENV_DT_API_TOKEN: Final = env_of("api_token")[0]
_, ENV_HEADERS, *_SIGNAL_HEADER_VARS = env_of("headers")
ENV_TIMEOUT: Final = env_of("export_timeout")[0]
ENV_COMPRESSION: Final = env_of("compression")[0]
ENV_METRIC_INTERVAL: Final = env_of("metric_export_interval_ms")[0]
ENV_MAX_CONTENT_LENGTH: Final = env_of("max_content_length")[0]
ENV_INSTRUMENTATIONS: Final = env_of("instrumentations")[0]
ENV_DISABLED_INSTRUMENTATIONS: Final = env_of("disabled_instrumentations")[0]
ENV_SHUTDOWN_TIMEOUT: Final = env_of("shutdown_timeout")[0]
ENV_ALLOW_INSECURE_TOKEN: Final = env_of("allow_insecure_token")[0]
ENV_PROMETHEUS_TARGETS: Final = env_of("prometheus_targets")[0]
ENV_AUDIT_EVENTS: Final = env_of("audit_events")[0]
ENV_USAGE_LOGS: Final = env_of("usage_logs")[0]
ENV_BIZEVENTS_ENDPOINT: Final = env_of("bizevents_endpoint")[0]
ENV_SAMPLER: Final = "OTEL_TRACES_SAMPLER"
ENV_SAMPLER_ARG: Final = "OTEL_TRACES_SAMPLER_ARG"
ENV_SIGNAL_ON: Final[dict[str, str]] = {s: env_of(s)[0] for s in SIGNALS}
ENV_SIGNAL_ENDPOINT: Final[dict[str, str]] = {s: env_of(f"{s}_endpoint")[0] for s in SIGNALS}
ENV_SIGNAL_HEADERS: Final[dict[str, str]] = dict(zip(SIGNALS, _SIGNAL_HEADER_VARS, strict=True))
# Variables that only switch something off or refine an option per signal (the table's docs
# column names them): an OTel convention each, read here only.
ENV_OTEL_SDK_DISABLED: Final = "OTEL_SDK_DISABLED"
ENV_SIGNAL_EXPORTER: Final[dict[str, str]] = {s: f"OTEL_{s.upper()}_EXPORTER" for s in SIGNALS}
ENV_OPENAI_STREAM_USAGE: Final = "GENAI_OBSERVE_OPENAI_STREAM_USAGE"

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

# Header names whose values are credentials (matched on the lower-cased name).
_CREDENTIAL_HEADER: Final = re.compile(r"authorization|token|key|secret|password|cookie|auth")
# RFC 9110 field-name characters.
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# An Authorization header carrying a Dynatrace API token (Traceloop setups pass the token so).
_API_TOKEN_HEADER: Final = re.compile(r"api-token[ \t]+(.*)", re.IGNORECASE | re.DOTALL)

# The OneAgent's local OTLP endpoint refuses gzip (Dynatrace docs).
_ONEAGENT_PORT: Final = 14499
_OTLP_PATH: Final = "/api/v2/otlp"
_SIGNAL_SUFFIX: Final = re.compile(r"/v1/(traces|metrics|logs)/?$")
_BIZEVENTS_PATH: Final = "/api/v2/bizevents/ingest"

# disable_batch=True: the batch processors' schedule delay. Short enough that a span is out as
# soon as a Traceloop user expects (they used a synchronous processor), long enough that the
# export stays on the processor's thread and a burst of spans still goes in one request.
PROMPT_EXPORT_DELAY_MS: Final = 100


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
    # None: ask for usage where the server is known to accept stream_options (docs/openai.md).
    openai_stream_usage: bool | None = None
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
    # disable_batch (Traceloop's name): spans and log records leave within PROMPT_EXPORT_DELAY_MS.
    disable_batch: bool = False

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


def _compression(raw: object, setting: str) -> str:
    value = str(raw).strip().lower()
    if value not in ("gzip", "none", "deflate"):
        raise ConfigurationError(setting, raw, "gzip, deflate or none")
    return value


def _timeout_ms(raw: object, setting: str) -> float:
    return timeout_ms(setting, raw)


def load_settings(**kwargs: Any) -> Settings:
    """Merge arguments and environment into validated :class:`Settings` (argument wins).

    Takes ``init()``'s keywords (``options.ARGUMENTS``); an unknown one is a TypeError, as for a
    function with that signature.
    """
    given = Given(kwargs)
    off, env_name = given.pick("disabled")
    is_disabled = parse_bool(given.label("disabled", env_name), off) if off is not None else False
    sdk_off = _env(ENV_OTEL_SDK_DISABLED)
    if not given.given("disabled") and sdk_off is not None and parse_bool(ENV_OTEL_SDK_DISABLED, sdk_off):
        is_disabled = True  # an explicit disabled= argument wins, as every argument does
    if is_disabled:
        return Settings(disabled=True)

    # Signals on/off: GENAI_OBSERVE_<SIGNAL>=false or OTEL_<SIGNAL>_EXPORTER=none turn one off.
    signal_on: dict[str, bool] = {}
    for signal in SIGNALS:
        on: bool = given.value(signal)
        exporter = _env(ENV_SIGNAL_EXPORTER[signal])
        if not given.given(signal) and exporter is not None and exporter.lower() == "none":
            on = False
        signal_on[signal] = on

    raw_endpoint, endpoint_env = given.pick("endpoint")
    endpoint_label = given.label("endpoint", endpoint_env)
    per_signal: dict[str, tuple[str | None, str]] = {}
    for signal in SIGNALS:
        value, env_name = given.pick(f"{signal}_endpoint")
        per_signal[signal] = (
            str(value).strip() if value is not None else None,
            given.label(f"{signal}_endpoint", env_name),
        )
    endpoints = resolve_endpoints(
        str(raw_endpoint).strip() if raw_endpoint is not None else None,
        endpoint_label,
        per_signal,
        signal_on,
    )

    headers = given.arg("headers")
    if headers is not None and not isinstance(headers, Mapping):
        raise ConfigurationError("headers (argument)", None, "a dict of str to str", secret=True)
    arg_headers = [_clean_header("headers (argument)", k, v) for k, v in (headers or {}).items()]
    traceloop_raw = _env(ENV_TRACELOOP_HEADERS)
    traceloop_headers = [
        _clean_header(ENV_TRACELOOP_HEADERS, k, v)
        for k, v in (
            _parse_key_values(ENV_TRACELOOP_HEADERS, traceloop_raw, percent_decode=True)
            if traceloop_raw
            else {}
        ).items()
    ]
    token, token_label = _token(given, arg_headers, traceloop_headers)
    if token is not None and endpoints is None and given.pick("bizevents_endpoint")[0] is None:
        raise ConfigurationError(
            token_label,
            None,
            f"an endpoint as well (endpoint argument, {ENV_GENAI_ENDPOINT}, {ENV_ENDPOINT} or "
            f"{ENV_DT_ENDPOINT})",
            secret=True,
        )

    # Headers: per signal, lowest first: TRACELOOP_HEADERS, the OTel general variable, the OTel
    # per-signal variable, the argument; the token's Authorization replaces any other.
    signal_headers: dict[str, dict[str, str]] = {}
    header_labels: dict[str, dict[str, str]] = {}  # signal -> header -> the setting it came from
    for signal in SIGNALS:
        merged: dict[str, str] = {}
        labels: dict[str, str] = {}
        for key, value in traceloop_headers:
            merged[key], labels[key] = value, f"{ENV_TRACELOOP_HEADERS} (environment)"
        for env_name in (ENV_HEADERS, ENV_SIGNAL_HEADERS[signal]):
            raw = _env(env_name)
            if raw:
                for k, v in _parse_key_values(env_name, raw, percent_decode=True).items():
                    key, value = _clean_header(env_name, k, v)
                    merged[key], labels[key] = value, f"{env_name} (environment)"
        for key, value in arg_headers:
            merged[key], labels[key] = value, "headers (argument)"
        if token is not None:
            merged["authorization"] = f"Api-Token {token.reveal()}"
            labels.pop("authorization", None)
        signal_headers[signal] = merged
        header_labels[signal] = labels

    raw_insecure, insecure_env = given.pick("allow_insecure_token")
    insecure_ok = (
        parse_bool(given.label("allow_insecure_token", insecure_env), raw_insecure)
        if raw_insecure is not None
        else False
    )
    if not insecure_ok:
        _refuse_cleartext_credentials(endpoints, token_label if token is not None else None, header_labels)

    raw_compression, comp_env = given.pick("compression")
    comp: str | None = None  # decided per signal URL: gzip, except for a local OneAgent
    if raw_compression is not None:
        comp = _compression(raw_compression, given.label("compression", comp_env))
    signal_comp: dict[str, str] = {}
    signal_timeout: dict[str, float] = {}
    for signal in SIGNALS:
        comp_name = f"OTEL_EXPORTER_OTLP_{signal.upper()}_COMPRESSION"
        raw = _env(comp_name)
        if raw is not None and not given.given("compression"):
            signal_comp[signal] = _compression(raw, f"{comp_name} (environment)")
        timeout_name = f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT"
        raw = _env(timeout_name)
        if raw is not None and not given.given("export_timeout"):
            signal_timeout[signal] = _timeout_ms(raw, f"{timeout_name} (environment)")

    enabled: frozenset[str] = given.value("instrumentations") - given.value("disabled_instrumentations")

    raw_capture = given.pick("capture_content")[0]
    capture = given.value("capture_content") if raw_capture is not None else CaptureMode.SPAN_ONLY

    attrs: dict[str, str] = {}
    raw_attrs = _env(ENV_RESOURCE_ATTRIBUTES)
    if raw_attrs:
        for key, value in _parse_key_values(ENV_RESOURCE_ATTRIBUTES, raw_attrs, percent_decode=True).items():
            attrs[key] = _resource_text(f"{ENV_RESOURCE_ATTRIBUTES} key {key!r}", value)
    resource_attributes = given.arg("resource_attributes")
    if resource_attributes:
        if not isinstance(resource_attributes, Mapping):
            raise ConfigurationError("resource_attributes (argument)", resource_attributes, "a dict")
        for key, value in resource_attributes.items():
            name = _resource_text("resource_attributes (argument) key", key)
            attrs[name] = _resource_text(f"resource_attributes (argument) key {name!r}", value)

    _check_sampler()
    sizes = _batch_variables()

    raw_targets, targets_env = given.pick("prometheus_targets")
    targets = (
        _prometheus_targets(given.label("prometheus_targets", targets_env), raw_targets)
        if raw_targets is not None
        else ()
    )

    audit_on, usage_on, bizevents_url = _business_events(
        given,
        raw_endpoint,
        endpoint_label,
        endpoints,
        signal_headers,
        token_label if token is not None else None,
        insecure_ok,
    )

    return Settings(
        service_name=given.value("service_name"),
        service_version=given.value("service_version"),
        deployment_environment=given.value("deployment_environment"),
        resource_attributes=attrs,
        endpoints=endpoints,
        token=token,
        headers=signal_headers,
        compression=comp,
        export_timeout=given.value("export_timeout"),
        signal_compression=signal_comp,
        signal_timeout=signal_timeout,
        metric_export_interval_ms=given.value("metric_export_interval_ms"),
        shutdown_timeout=given.value("shutdown_timeout"),
        instrumentations=enabled,
        capture=capture,
        max_content_length=given.value("max_content_length"),
        redact=given.value("redact"),
        profile=_resolve_profile_given(given),
        traces=signal_on["traces"],
        metrics=signal_on["metrics"],
        logs=signal_on["logs"],
        legacy_content=given.value("legacy_content"),
        reuse_existing_providers=given.value("reuse_existing_providers"),
        openai_stream_usage=(
            parse_bool(ENV_OPENAI_STREAM_USAGE, _env(ENV_OPENAI_STREAM_USAGE))
            if _env(ENV_OPENAI_STREAM_USAGE) is not None
            else None
        ),
        span_queue_size=sizes["OTEL_BSP_MAX_QUEUE_SIZE"],
        span_batch_size=sizes["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"],
        log_queue_size=sizes["OTEL_BLRP_MAX_QUEUE_SIZE"],
        log_batch_size=sizes["OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"],
        prometheus_targets=targets,
        audit_events=audit_on,
        usage_logs=usage_on,
        bizevents_url=bizevents_url,
        disable_batch=given.value("disable_batch"),
    )


def _resolve_profile_given(given: Given) -> Profile:
    # The opt-in variable is no option of its own: resolve_profile falls back to it.
    profile = given.arg("profile")
    if profile is not None:
        try:
            return resolve_profile(profile)
        except ConfigurationError:
            # Name the keyword the caller used (it has no alias today; this keeps it right if one comes).
            raise ConfigurationError(given.label("profile"), profile, "dynatrace or latest") from None
    return resolve_profile(None)


def _token(
    given: Given, arg_headers: list[tuple[str, str]], env_headers: list[tuple[str, str]]
) -> tuple[Secret | None, str]:
    """The API token and how errors name it.

    Traceloop setups pass the Dynatrace token as ``headers={"Authorization": "Api-Token ..."}``
    (or in ``TRACELOOP_HEADERS``); such a header is read as the token, so it is validated, masked
    and ruled like ``api_token``. Precedence: an argument (``api_token``, or the header in
    ``headers``; both is an error), then ``DT_API_TOKEN``, then the header in ``TRACELOOP_HEADERS``.
    """
    from_headers = _api_token_header(arg_headers)
    if from_headers is not None and given.given("api_token"):
        raise ConfigurationError(
            "api_token (argument) and headers (argument) 'authorization'",
            None,
            "only one of them: an 'Authorization: Api-Token ...' header is read as the api_token",
            secret=True,
        )
    raw, env_name = (from_headers, None) if from_headers is not None else given.pick("api_token")
    setting = (
        "headers (argument) 'authorization'"
        if from_headers is not None
        else given.label("api_token", env_name)
    )
    if raw is None:
        from_env = _api_token_header(env_headers)
        if from_env is not None:
            raw, setting = from_env, f"{ENV_TRACELOOP_HEADERS} (environment) 'authorization'"
    if raw is None:
        return None, setting
    text = str(raw).strip()
    if not text or any(c.isspace() for c in text) or not text.isprintable() or not text.isascii():
        raise ConfigurationError(
            setting,
            None,
            "a Dynatrace API token without spaces (ASCII letters, digits and punctuation)",
            secret=True,
        )
    return Secret(text), setting


def _api_token_header(headers: list[tuple[str, str]]) -> str | None:
    """The token of an ``Authorization: Api-Token <token>`` header, else None (other schemes stay headers)."""
    for key, value in headers:
        if key == "authorization" and (match := _API_TOKEN_HEADER.fullmatch(value)):
            return match.group(1)
    return None


def _check_sampler() -> None:
    """OTEL_TRACES_SAMPLER(_ARG): applied by the SDK, checked here so a typo fails init()."""
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


def _batch_variables() -> dict[str, int | None]:
    """The SDK's batch and timeout variables: the SDK reads them, checked here so a typo fails init()."""
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
    return sizes


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
    given: Given,
    raw_endpoint: object,
    endpoint_label: str,
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
    raw_audit, audit_env = given.pick("audit_events")
    audit: bool = given.value("audit_events")
    raw_usage, usage_env = given.pick("usage_logs")
    usage: bool = given.value("usage_logs")

    raw_url, url_env = given.pick("bizevents_endpoint")
    url: str | None = None
    if raw_url is not None:
        url = str(raw_url).strip()
        setting = given.label("bizevents_endpoint", url_env)
        _check_url(setting, url)
    else:
        base = derive_base(endpoint_label, str(raw_endpoint).strip()) if raw_endpoint else None
        url = derive_bizevents_url(base or (endpoints.logs if endpoints is not None else None))
        setting = endpoint_label
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
            given.label("audit_events", audit_env),
            raw_audit,
            f"a Business Events endpoint (a Dynatrace endpoint or {ENV_BIZEVENTS_ENDPOINT}) or logs "
            "export on: towards other endpoints audit events travel as OTLP log records",
        )
    if usage and endpoints is not None and not logs_out:
        raise ConfigurationError(
            given.label("usage_logs", usage_env), raw_usage, "logs export on: usage logs are OTLP log records"
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
