"""The one table of ``init()`` options: name, environment variables, parsing, default and docs.

Every option is declared once, here. The table drives:

- which keywords ``load_settings`` accepts and which aliases map to which option (``Given``),
- which variables are consulted for an option, in which order (``Given.pick``),
- the parsing and the error message of the simple options (``Option.parse``; the options whose
  meaning depends on others, such as endpoints, headers and the token, are read by
  ``settings.load_settings`` itself, from the variables named here),
- the option table of docs/configuration.md (``markdown_table``; tests/pipeline/test_options.py
  fails when the page and the table differ, ``python -m genai_observe._pipeline.options``
  prints it).

``init()`` keeps its explicit keyword signature, for type checkers and IDEs; a test asserts that
its parameters are exactly the table's argument names, in the table's order.

To add an option: one ``Option`` row below, a ``Settings`` field, a keyword of ``init()`` (the
test names what is missing), and the page regenerated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._core.config import (
    CAPTURE_ENV,
    ENV_PROFILE,
    ENV_SEMCONV_OPT_IN,
    capture_mode_for,
    label,
    parse_bool,
    pick,
)
from .._errors import ConfigurationError
from ..instrumentation._kit.registry import KNOWN_INSTRUMENTATIONS

SIGNALS: Final[tuple[str, ...]] = ("traces", "metrics", "logs")

# Upper bounds of durations (docs/configuration.md, "Limits"). Larger values are typos or unit
# mix-ups, and past about 2**63 ns they overflow the timers of threading and the SDK: an
# OverflowError in shutdown(), a dead export thread, or every export failing.
MAX_TIMEOUT_S: Final = 3600.0  # export and shutdown timeouts: one hour
MAX_INTERVAL_MS: Final = 86_400_000  # metric export interval and batch delays: one day

# C0 controls, DEL and C1 controls: never valid inside a header value, a URL or a resource value.
CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Traceloop's variables (OpenLLMetry's SDK), read so that its setup works unchanged
# (docs/migrating-from-openllmetry.md). Each is the last of its option's variables: a variable
# of ours or of OpenTelemetry, when set, is the more specific one.
ENV_TRACELOOP_BASE_URL: Final = "TRACELOOP_BASE_URL"
ENV_TRACELOOP_HEADERS: Final = "TRACELOOP_HEADERS"

# A parser: (how errors name the setting, the raw value, whether it came from the environment)
# -> the value Settings holds. It raises ConfigurationError, never anything else.
Parser = Callable[[str, object, bool], Any]


# --- parsers of the simple options -------------------------------------------------------------


def parse_number(
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


def _number(*, integer: bool, minimum: float, accepted: str, maximum: float = math.inf) -> Parser:
    def parse(setting: str, value: object, from_env: bool) -> float | int:
        number = parse_number(
            setting, value, integer=integer, minimum=minimum, maximum=maximum, accepted=accepted
        )
        return int(number) if integer else number

    return parse


def resource_text(setting: str, value: object) -> str:
    """A resource attribute value: a non-blank string, stripped (backends index them as given)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(setting, value, "a non-blank string")
    if CONTROL.search(value.strip()):
        raise ConfigurationError(setting, value, "a string without control characters")
    return value.strip()


def instrumentation_names(setting: str, value: object) -> frozenset[str]:
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


def timeout_ms(setting: str, raw: object) -> float:
    """An OTLP timeout variable, in milliseconds as the OTel specification gives it, in seconds."""
    return (
        parse_number(
            setting,
            raw,
            integer=False,
            minimum=1,
            maximum=MAX_TIMEOUT_S * 1000,
            accepted=f"a positive number of milliseconds up to {MAX_TIMEOUT_S * 1000:.0f} (one hour)",
        )
        / 1000
    )


def _export_timeout(setting: str, value: object, from_env: bool) -> float:
    # The argument is in seconds, the OTLP variable in milliseconds (docs/configuration.md, Units).
    if from_env:
        return timeout_ms(setting, value)
    return parse_number(
        setting,
        value,
        integer=False,
        minimum=0.001,
        maximum=MAX_TIMEOUT_S,
        accepted=f"a positive number of seconds up to {MAX_TIMEOUT_S:.0f} (one hour)",
    )


def _boolean(setting: str, value: object, from_env: bool) -> bool:
    return parse_bool(setting, value)


def _text(setting: str, value: object, from_env: bool) -> str:
    return resource_text(setting, value)


def _names(setting: str, value: object, from_env: bool) -> frozenset[str]:
    return instrumentation_names(setting, value)


def _capture(setting: str, value: object, from_env: bool) -> Any:
    return capture_mode_for(setting, value)


def _callable(setting: str, value: object, from_env: bool) -> Any:
    if not callable(value):
        raise ConfigurationError(setting, value, "a callable taking and returning a str")
    return value


# --- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One setting: its ``init()`` keyword, its variables and its row of the docs table."""

    name: str  # the init() keyword; "" for a variable without one
    env: tuple[str, ...]  # consulted in this order; the first one set wins
    accepted: str  # docs: type / accepted values
    default: str  # docs: the default
    doc: str  # docs: what it does
    parse: Parser | None = None  # None: settings.load_settings reads it (it depends on others)
    default_value: Any = None  # Settings' value when neither argument nor variable is given
    env_doc: str = ""  # docs: the variables column, when the plain list would mislead
    alias_of: str = ""  # a Traceloop name: the option it sets (both given is an error)

    @property
    def variables(self) -> str:
        if self.env_doc:
            return self.env_doc
        if not self.env:
            return "none (argument only)"
        return ", then ".join(f"`{name}`" for name in self.env)


def _signal_env(template: str) -> tuple[str, ...]:
    return tuple(template.format(s.upper()) for s in SIGNALS)


_BOOL = "boolean"

OPTIONS: Final[tuple[Option, ...]] = (
    Option(
        "service_name",
        ("OTEL_SERVICE_NAME",),
        "non-blank string (surrounding whitespace removed)",
        "unset (the SDK then reports `unknown_service:python`)",
        "Resource attribute `service.name`.",
        _text,
    ),
    Option(
        "service_version",
        ("GENAI_OBSERVE_SERVICE_VERSION",),
        "non-blank string (as `service_name`; `1.2` as a number is refused)",
        "unset",
        "Resource attribute `service.version`.",
        _text,
    ),
    Option(
        "deployment_environment",
        ("GENAI_OBSERVE_ENVIRONMENT",),
        "non-blank string (as `service_name`)",
        "unset",
        "Resource attribute `deployment.environment.name`.",
        _text,
    ),
    Option(
        "resource_attributes",
        ("OTEL_RESOURCE_ATTRIBUTES",),
        "dict of non-blank strings to non-blank strings, both stripped; env: `key=value,key=value`, "
        "%-encoded (an empty value is refused)",
        "none",
        "Extra resource attributes. The argument and the variable are **merged**; on a shared key the "
        "argument wins.",
    ),
    Option(
        "endpoint",
        # GENAI_OBSERVE_ENDPOINT is read by genai_observe only: genai-observe-instrument --endpoint
        # sets it, so that a Dynatrace tenant URL never reaches other OTel SDKs (which would not
        # add /api/v2/otlp) in child processes.
        ("GENAI_OBSERVE_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "DT_ENDPOINT", ENV_TRACELOOP_BASE_URL),
        "http(s) URL, no `user:password`, query or fragment, no whitespace inside (surrounding "
        "whitespace is removed)",
        "unset: [console mode](#no-endpoint-console-mode)",
        "Where all three signals go. Accepts several forms, see [Endpoints](#endpoints).",
    ),
    Option(
        "traces_endpoint",
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",),
        "full http(s) URL, used exactly as given",
        "derived from `endpoint`",
        "Trace URL for this signal only.",
    ),
    Option(
        "metrics_endpoint",
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",),
        "full http(s) URL, used exactly as given",
        "derived from `endpoint`",
        "Metric URL for this signal only.",
    ),
    Option(
        "logs_endpoint",
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",),
        "full http(s) URL, used exactly as given",
        "derived from `endpoint`",
        "Log/event URL for this signal only.",
    ),
    Option(
        "api_token",
        ("DT_API_TOKEN",),
        "ASCII string without whitespace; surrounding whitespace (a token read from a file ends in a "
        "newline) is removed",
        "unset",
        "Sent as `Authorization: Api-Token <token>` to every endpoint. Requires an endpoint, over "
        "`https://` unless it is on this machine, see "
        "[Credentials over plain http](#credentials-over-plain-http). An `Authorization: Api-Token "
        "<token>` header in `headers` or `TRACELOOP_HEADERS` is read as this token (see "
        "[migrating-from-openllmetry.md](migrating-from-openllmetry.md#headers-and-the-token)).",
    ),
    Option(
        "headers",
        # Merged, lowest first: Traceloop's, then OTel's general, then OTel's per signal.
        (ENV_TRACELOOP_HEADERS, "OTEL_EXPORTER_OTLP_HEADERS", *_signal_env("OTEL_EXPORTER_OTLP_{}_HEADERS")),
        "dict of str to str; env: `key=value,...`, %-encoded (write a space as `%20`)",
        "none",
        "Extra HTTP headers. Merged key by key, see [Precedence](#precedence). Header names are "
        "lower-cased. Values lose surrounding whitespace; a control character (newline, tab, ...) or a "
        "character outside Latin-1 inside a value is refused, naming the header but never showing the "
        "value.",
        env_doc="`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, "
        "`OTEL_EXPORTER_OTLP_METRICS_HEADERS`, `OTEL_EXPORTER_OTLP_LOGS_HEADERS`; `TRACELOOP_HEADERS` "
        "(lowest)",
    ),
    Option(
        "compression",
        ("OTEL_EXPORTER_OTLP_COMPRESSION",),
        "`gzip`, `deflate`, `none` (any case)",
        "chosen per signal URL: `none` for a local OneAgent, `gzip` for every other URL",
        "Request body compression. The argument applies to all three signals and wins over every "
        "variable; otherwise a per-signal variable wins over the general one for its signal. See "
        "[Endpoints](#endpoints).",
        env_doc="`OTEL_EXPORTER_OTLP_COMPRESSION`; per signal `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`, "
        "`OTEL_EXPORTER_OTLP_METRICS_COMPRESSION`, `OTEL_EXPORTER_OTLP_LOGS_COMPRESSION`",
    ),
    Option(
        "export_timeout",
        ("OTEL_EXPORTER_OTLP_TIMEOUT",),
        "argument: **seconds** (0.001 to 3600); variables: **milliseconds** (1 to 3,600,000)",
        "10 s",
        "Time budget of one export, retries included. The argument wins over every variable; "
        "otherwise a per-signal variable wins over the general one for its signal. See [Units](#units).",
        _export_timeout,
        10.0,
        env_doc="`OTEL_EXPORTER_OTLP_TIMEOUT`; per signal `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, "
        "`OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`, `OTEL_EXPORTER_OTLP_LOGS_TIMEOUT`",
    ),
    Option(
        "metric_export_interval_ms",
        ("OTEL_METRIC_EXPORT_INTERVAL",),
        "whole number of milliseconds, 1 to 86,400,000 (one day)",
        "`60000`",
        "How often metrics are exported.",
        _number(
            integer=True,
            minimum=1,
            maximum=MAX_INTERVAL_MS,
            accepted=f"a positive whole number of milliseconds up to {MAX_INTERVAL_MS} (one day)",
        ),
        60_000,
    ),
    Option(
        "shutdown_timeout",
        ("GENAI_OBSERVE_SHUTDOWN_TIMEOUT",),
        "seconds, 0 to 3600",
        "`10`",
        "Longest wait for the final flush, in all: at `shutdown()` and exit, and before a SIGTERM or "
        "SIGINT ends the process (see [zero-code.md](zero-code.md#stopping-sigterm-and-sigint)). Also "
        "the default for `Handle.force_flush()`.",
        _number(
            integer=False,
            minimum=0,
            maximum=MAX_TIMEOUT_S,
            accepted=f"a number of seconds >= 0 and up to {MAX_TIMEOUT_S:.0f} (one hour)",
        ),
        10.0,
    ),
    Option(
        "instrumentations",
        ("GENAI_OBSERVE_INSTRUMENTATIONS",),
        "list or comma-separated string of "
        + ", ".join(f"`{name}`" for name in KNOWN_INSTRUMENTATIONS)
        + " (any case)",
        "all six",
        "Which provider instrumentations to enable. `[]` enables none. Any other name is a "
        "configuration error.",
        _names,
        frozenset(KNOWN_INSTRUMENTATIONS),
    ),
    Option(
        "disabled_instrumentations",
        ("GENAI_OBSERVE_DISABLED_INSTRUMENTATIONS",),
        "same names as above",
        "none",
        "Removed from the enabled set.",
        _names,
        frozenset(),
    ),
    Option(
        "capture_content",
        CAPTURE_ENV,
        "`NO_CONTENT`, `SPAN_ONLY`, `EVENT_ONLY`, `SPAN_AND_EVENT` (any case), a boolean, or "
        "`genai_observe.CaptureMode`",
        "`SPAN_ONLY`",
        "Where prompt and completion text goes. See [Content capture](#content-capture).",
        _capture,
    ),
    Option(
        "max_content_length",
        ("GENAI_OBSERVE_MAX_CONTENT_LENGTH",),
        "whole number >= 16",
        "`16384`",
        "Longest single text value kept, in characters.",
        _number(integer=True, minimum=16, accepted="a whole number of characters >= 16"),
        16_384,
    ),
    Option(
        "redact",
        (),
        "callable `str -> str`",
        "none",
        "Your own redaction, applied to every captured text before credential masking.",
        _callable,
    ),
    Option(
        "profile",
        (ENV_PROFILE,),
        "`dynatrace` or `latest` (any case), or `genai_observe.Profile`; the opt-in variable selects "
        "`latest` when its comma-separated list contains `gen_ai_latest_experimental`",
        "`dynatrace`",
        "Which attribute names spans carry. See [Profiles](#profiles).",
        env_doc=f"`{ENV_PROFILE}`, then `{ENV_SEMCONV_OPT_IN}`",
    ),
    Option(
        "legacy_content",
        ("GENAI_OBSERVE_LEGACY_CONTENT",),
        _BOOL,
        "`true`",
        "`dynatrace` profile only: also write content in the flat `gen_ai.prompt.N.*` / "
        "`gen_ai.completion.N.*` / `llm.request.functions.N.*` form, next to the v1.41.0 JSON "
        "attributes. `false` keeps the JSON form only (smaller spans; the app reads it first). "
        "See [Profiles](#profiles).",
        _boolean,
        True,
    ),
    *(
        Option(
            signal,
            (f"GENAI_OBSERVE_{signal.upper()}",),
            _BOOL,
            "`true`",
            what,
            _boolean,
            True,
            env_doc=f"`GENAI_OBSERVE_{signal.upper()}`; `OTEL_{signal.upper()}_EXPORTER=none`",
        )
        for signal, what in (
            ("traces", "Export traces."),
            ("metrics", "Export metrics."),
            ("logs", "Export logs (the content event)."),
        )
    ),
    Option(
        "reuse_existing_providers",
        (),
        _BOOL,
        "`true`",
        "Use SDK providers the application already installed. See "
        "[Reusing providers](#reusing-providers-your-application-already-set).",
        _boolean,
        True,
    ),
    Option(
        "disabled",
        ("GENAI_OBSERVE_DISABLED",),
        _BOOL,
        "`false`",
        "Turn the library off. See [Disabling](#disabling).",
        _boolean,
        False,
        env_doc="`GENAI_OBSERVE_DISABLED`; `OTEL_SDK_DISABLED`",
    ),
    Option(
        "allow_insecure_token",
        ("GENAI_OBSERVE_ALLOW_INSECURE_TOKEN",),
        _BOOL,
        "`false`",
        "Allow the API token or a credential header to be sent over plain `http://` to another "
        "machine. See [Credentials over plain http](#credentials-over-plain-http).",
        _boolean,
        False,
    ),
    Option(
        "prometheus_targets",
        ("GENAI_OBSERVE_PROMETHEUS_TARGETS",),
        "list or comma-separated string of `http(s)` URLs (a path, a query and `user:password@` for "
        "Basic auth are allowed; no path means `/metrics`); needs the `prometheus` extra "
        '(`pip install "genai-observe[prometheus]"`), else a configuration error',
        "none",
        "Prometheus endpoints (NVIDIA NIM, vLLM, Kong AI Gateway) scraped at every metric export and "
        "sent as DELTA sums, explicit-bucket histograms and gauges with the app's own metrics. Scraped "
        "only where metrics are exported over OTLP by the `MeterProvider` `init()` built. See "
        "[server-metrics.md](server-metrics.md).",
    ),
    Option(
        "audit_events",
        ("GENAI_OBSERVE_AUDIT_EVENTS",),
        _BOOL,
        "`false`",
        "One `gen_ai.auditing` business event per LLM call, embedding, tool and agent step, for the "
        "audit trail (content only with content capture on). Towards an endpoint that is not "
        "Dynatrace's it needs the logs signal, else a configuration error. See "
        "[data-governance.md](data-governance.md).",
        _boolean,
        False,
    ),
    Option(
        "usage_logs",
        ("GENAI_OBSERVE_USAGE_LOGS",),
        _BOOL,
        "`false`",
        "One content-free OTLP log record `genai_observe.usage` per LLM call with model, provider and "
        "token counts. Needs the logs signal when an endpoint is set (else a configuration error); "
        "nothing in console mode. See [data-governance.md](data-governance.md#usage-log-genai_observeusage).",
        _boolean,
        False,
    ),
    Option(
        "bizevents_endpoint",
        ("GENAI_OBSERVE_BIZEVENTS_ENDPOINT",),
        "full http(s) URL, used exactly as given (same checks as `endpoint`)",
        "derived: `{tenant or ActiveGate}/api/v2/bizevents/ingest` for a Dynatrace endpoint (one ending "
        "in `/api/v2/otlp` once derived); none otherwise",
        "Where business events (audit events, evaluation results) go, as CloudEvents batches; with "
        "none they travel as OTLP log records. Sent with the logs signal's headers, token included, so "
        "the [plain-http rule](#credentials-over-plain-http) applies to it too. An `api_token` with "
        "only this URL set is accepted. See [data-governance.md](data-governance.md#where-the-events-go).",
    ),
    # --- Traceloop's names (OpenLLMetry), so that its setup code works with only the import changed.
    Option(
        "app_name",
        (),
        "as `service_name`",
        "unset",
        "Traceloop's name for `service_name`. Giving both is a configuration error.",
        alias_of="service_name",
    ),
    Option(
        "api_endpoint",
        (),
        "as `endpoint`",
        "unset",
        "Traceloop's name for `endpoint` (`TRACELOOP_BASE_URL` is read as the last endpoint variable). "
        "Giving both is a configuration error.",
        alias_of="endpoint",
    ),
    Option(
        "disable_batch",
        (),
        _BOOL,
        "`false`",
        "Export spans and log records promptly (within 100 ms of their end) instead of every few "
        "seconds: what Traceloop's `disable_batch=True` is used for. Export still runs on the "
        "processors' background thread; the app never waits for it, see "
        "[migrating-from-openllmetry.md](migrating-from-openllmetry.md#disable_batch).",
        _boolean,
        False,
    ),
    # --- variables without an init() argument, checked by init() and applied by the SDK.
    Option(
        "",
        ("OTEL_TRACES_SAMPLER",),
        "`always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, `parentbased_always_off`, "
        "`parentbased_traceidratio` (any case), or the name of a sampler plugin",
        "SDK default `parentbased_always_on`",
        "Checked by `init()`, then applied by the SDK's `TracerProvider` that `init()` builds. A name "
        "that an installed package registers under the `opentelemetry_traces_sampler` entry point group "
        "passes the check; any other name is refused. See the note below the table.",
    ),
    Option(
        "",
        ("OTEL_TRACES_SAMPLER_ARG",),
        "number 0..1",
        "SDK default `1.0`",
        "Sampling ratio; checked only when the sampler name contains `traceidratio`.",
    ),
)

BY_NAME: Final[Mapping[str, Option]] = {o.name: o for o in OPTIONS if o.name}
# The init() keywords, in the table's order (init()'s signature lists exactly these).
ARGUMENTS: Final[tuple[str, ...]] = tuple(BY_NAME)


def env_of(name: str) -> tuple[str, ...]:
    """The variables of option ``name``, in the order they are consulted."""
    return BY_NAME[name].env


class Given:
    """The keywords a caller gave (``None`` counts as not given), Traceloop aliases resolved.

    Errors name the keyword the caller actually used: ``app_name (argument)``, not
    ``service_name (argument)``.
    """

    def __init__(self, kwargs: Mapping[str, object]) -> None:
        self._values: dict[str, object] = {}
        self._used: dict[str, str] = {}  # option -> the keyword it was given by
        for name, value in kwargs.items():
            option = BY_NAME.get(name)
            if option is None:
                # What Python says for an unknown keyword of a function with a fixed signature.
                raise TypeError(f"load_settings() got an unexpected keyword argument {name!r}")
            if value is None:
                continue
            target = option.alias_of or name
            if target in self._values:
                raise conflict(self._used[target], name)
            self._values[target] = value
            self._used[target] = name

    def arg(self, name: str) -> Any:
        """The argument given for option ``name`` (or by its alias), else None."""
        return self._values.get(name)

    def given(self, name: str) -> bool:
        return name in self._values

    def pick(self, name: str) -> tuple[Any, str | None]:
        """The argument if given, else the first of the option's variables set, and its name."""
        return pick(self.arg(name), *BY_NAME[name].env)

    def label(self, name: str, env_name: str | None = None) -> str:
        return label(self._used.get(name, name), env_name)

    def value(self, name: str) -> Any:
        """Option ``name`` parsed by its table row, or its default when not given anywhere."""
        option = BY_NAME[name]
        raw, env_name = self.pick(name)
        if raw is None or option.parse is None:
            return option.default_value
        return option.parse(self.label(name, env_name), raw, env_name is not None)


def conflict(first: str, second: str) -> ConfigurationError:
    """Two keywords for one setting: neither value is shown (one of them may be a token)."""
    a, b = sorted((first, second), key=lambda n: BY_NAME[n].alias_of != "")
    return ConfigurationError(
        f"{a} (argument) and {b} (argument)",
        None,
        f"only one of them: {b} is Traceloop's name for {a}",
        secret=True,
    )


def markdown_table() -> str:
    """The option table of docs/configuration.md, as the table above declares it."""
    lines = [
        "| `init()` argument | Environment variable(s) | Type / accepted values | Default | What it does |",
        "|---|---|---|---|---|",
    ]
    for option in OPTIONS:
        name = f"`{option.name}`" if option.name else "none"
        lines.append(f"| {name} | {option.variables} | {option.accepted} | {option.default} | {option.doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m genai_observe._pipeline.options > table.md
    print(markdown_table(), end="")
