"""Configuration: endpoint forms, precedence, every error, and that tokens never show."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import genai_observe
from genai_observe import CaptureMode, ConfigurationError, Profile
from genai_observe._pipeline.settings import load_settings

TOKEN = "dt0c01.ABCDEFGHIJKLMNOPQRSTUVWX.SECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETXX"


@pytest.mark.parametrize(
    ("given", "traces"),
    [
        # Dynatrace SaaS tenant URL, with and without trailing slash
        ("https://abc12345.live.dynatrace.com", "https://abc12345.live.dynatrace.com/api/v2/otlp/v1/traces"),
        ("https://abc12345.live.dynatrace.com/", "https://abc12345.live.dynatrace.com/api/v2/otlp/v1/traces"),
        # The platform (apps) URL maps to the live API host
        ("https://abc12345.apps.dynatrace.com", "https://abc12345.live.dynatrace.com/api/v2/otlp/v1/traces"),
        # The OTLP base
        (
            "https://abc12345.live.dynatrace.com/api/v2/otlp",
            "https://abc12345.live.dynatrace.com/api/v2/otlp/v1/traces",
        ),
        (
            "https://abc12345.live.dynatrace.com/api/v2/otlp/",
            "https://abc12345.live.dynatrace.com/api/v2/otlp/v1/traces",
        ),
        # A full signal URL given as the base: the signal suffix is stripped and re-derived
        (
            "https://abc12345.live.dynatrace.com/api/v2/otlp/v1/traces",
            "https://abc12345.live.dynatrace.com/api/v2/otlp/v1/traces",
        ),
        # Managed / ActiveGate environment URL and its OTLP base
        (
            "https://ag.example.com:9999/e/abc12345",
            "https://ag.example.com:9999/e/abc12345/api/v2/otlp/v1/traces",
        ),
        (
            "https://ag.example.com:9999/e/abc12345/api/v2/otlp",
            "https://ag.example.com:9999/e/abc12345/api/v2/otlp/v1/traces",
        ),
        # Local OneAgent and a plain collector
        ("http://localhost:14499/otlp", "http://localhost:14499/otlp/v1/traces"),
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
    ],
)
def test_endpoint_forms(given: str, traces: str) -> None:
    s = load_settings(endpoint=given)
    assert s.endpoints is not None
    assert s.endpoints.traces == traces
    assert s.endpoints.metrics == traces.replace("/v1/traces", "/v1/metrics")
    assert s.endpoints.logs == traces.replace("/v1/traces", "/v1/logs")


def test_per_signal_endpoints_win_and_stand_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://localhost:14499/otlp/v1/traces")
    s = load_settings()
    assert s.endpoints is not None
    assert s.endpoints.traces == "http://localhost:14499/otlp/v1/traces"
    assert s.endpoints.metrics == "http://collector:4318/v1/metrics"
    # Only a per-signal URL: the other signals are not exported.
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    s = load_settings(traces_endpoint="http://t:4318/v1/traces")
    assert s.endpoints is not None
    assert (s.endpoints.traces, s.endpoints.metrics, s.endpoints.logs) == (
        "http://t:4318/v1/traces",
        None,
        None,
    )


def test_endpoint_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DT_ENDPOINT", "https://dt.live.dynatrace.com")
    s = load_settings()
    assert s.endpoints is not None and s.endpoints.traces is not None
    assert s.endpoints.traces.startswith("https://dt.live.dynatrace.com/api/v2/otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    s = load_settings()
    assert s.endpoints is not None and s.endpoints.traces == "http://collector:4318/v1/traces"
    monkeypatch.setenv("GENAI_OBSERVE_ENDPOINT", "http://ours-only:4318")
    s = load_settings()
    assert s.endpoints is not None and s.endpoints.traces == "http://ours-only:4318/v1/traces"
    s = load_settings(endpoint="http://explicit:4318")
    assert s.endpoints is not None and s.endpoints.traces == "http://explicit:4318/v1/traces"


def test_no_endpoint_means_console() -> None:
    assert load_settings().endpoints is None


def test_per_signal_timeout_and_compression(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "4000")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "deflate")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "2500")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none")
    s = load_settings(endpoint="https://abc12345.live.dynatrace.com")
    url = "https://abc12345.live.dynatrace.com/api/v2/otlp/v1/traces"
    # per-signal variables win over the general ones for their signal only
    assert [s.timeout_for(sig) for sig in ("traces", "metrics", "logs")] == [4.0, 2.5, 4.0]
    assert [s.compression_for(url, sig) for sig in ("traces", "metrics", "logs")] == [
        "none",
        "deflate",
        "deflate",
    ]
    # an argument wins over every variable, per-signal ones included
    s = load_settings(endpoint="https://abc12345.live.dynatrace.com", export_timeout=7, compression="gzip")
    assert [s.timeout_for(sig) for sig in ("traces", "metrics", "logs")] == [7.0, 7.0, 7.0]
    assert {s.compression_for(url, sig) for sig in ("traces", "metrics", "logs")} == {"gzip"}


def test_compression_defaults() -> None:
    s = load_settings(endpoint="https://a.live.dynatrace.com")
    assert s.compression_for("https://a.live.dynatrace.com/api/v2/otlp/v1/traces") == "gzip"
    # The local OneAgent refuses gzip; decided per signal, so a tenant URL beside it keeps gzip.
    s = load_settings(
        traces_endpoint="http://localhost:14499/otlp/v1/traces", endpoint="https://a.live.dynatrace.com"
    )
    assert s.endpoints is not None and s.endpoints.traces and s.endpoints.metrics
    assert s.compression_for(s.endpoints.traces) == "none"
    assert s.compression_for(s.endpoints.metrics) == "gzip"
    s = load_settings(endpoint="http://localhost:14499/otlp", compression="gzip")
    assert s.compression_for("http://localhost:14499/otlp/v1/traces") == "gzip"


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("https://user:hunter2@collector:4318?x=1", "https://***@collector:4318"),
        ("https://collector:4318/v1?Api-Token=dt0c01.SECRET", "https://collector:4318/v1?***"),
    ],
)
def test_url_errors_never_show_credentials_or_query(given: str, shown: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(endpoint=given)
    assert "hunter2" not in str(info.value) and "SECRET" not in str(info.value)
    assert shown in str(info.value) and "endpoint (argument)" in str(info.value)


def test_explicit_disabled_false_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not load_settings(disabled=False).disabled


def test_token_becomes_api_token_header_for_every_signal() -> None:
    s = load_settings(endpoint="https://a.live.dynatrace.com", api_token=TOKEN)
    for signal in ("traces", "metrics", "logs"):
        assert s.headers[signal]["authorization"] == f"Api-Token {TOKEN}"


def test_env_headers_percent_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Api-Token%20{TOKEN},x-team=ai")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-team=metrics")
    s = load_settings(endpoint="https://c:4318", headers={"X-Extra": "1"})
    assert s.headers["traces"] == {"authorization": f"Api-Token {TOKEN}", "x-team": "ai", "x-extra": "1"}
    assert s.headers["metrics"]["x-team"] == "metrics"


def test_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("GENAI_OBSERVE_CAPTURE_CONTENT", "false")
    monkeypatch.setenv("GENAI_OBSERVE_SEMCONV_PROFILE", "latest")
    s = load_settings(service_name="from-arg", capture_content=True, profile="dynatrace")
    assert (s.service_name, s.capture, s.profile) == ("from-arg", CaptureMode.SPAN_ONLY, Profile.DYNATRACE)
    s = load_settings()
    assert (s.service_name, s.capture, s.profile) == ("from-env", CaptureMode.NO_CONTENT, Profile.LATEST)


@pytest.mark.parametrize(
    ("env", "value", "mode"),
    [
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true", CaptureMode.SPAN_ONLY),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false", CaptureMode.NO_CONTENT),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "NO_CONTENT", CaptureMode.NO_CONTENT),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_and_event", CaptureMode.SPAN_AND_EVENT),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "EVENT_ONLY", CaptureMode.EVENT_ONLY),
        ("TRACELOOP_TRACE_CONTENT", "false", CaptureMode.NO_CONTENT),
        ("GENAI_OBSERVE_CAPTURE_CONTENT", "0", CaptureMode.NO_CONTENT),
    ],
)
def test_capture_modes_from_env(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, mode: CaptureMode
) -> None:
    monkeypatch.setenv(env, value)
    assert load_settings().capture is mode


def test_legacy_content_on_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().legacy_content is True
    monkeypatch.setenv("GENAI_OBSERVE_LEGACY_CONTENT", "off")
    assert load_settings().legacy_content is False
    assert load_settings(legacy_content=True).legacy_content is True  # the argument wins


def test_semconv_opt_in_selects_latest(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().profile is Profile.DYNATRACE
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http, gen_ai_latest_experimental")
    assert load_settings().profile is Profile.LATEST


def test_instrumentation_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(instrumentations=["openai", "Bedrock"]).instrumentations == {"openai", "bedrock"}
    monkeypatch.setenv("GENAI_OBSERVE_DISABLED_INSTRUMENTATIONS", "langchain,ollama")
    assert load_settings().instrumentations == {"openai", "anthropic", "bedrock", "openai_agents"}


def test_signals_switch_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    s = load_settings(endpoint="http://c:4318", metrics=False)
    assert s.endpoints is not None
    assert (s.traces, s.metrics, s.logs) == (True, False, False)
    assert (s.endpoints.metrics, s.endpoints.logs) == (None, None)


def test_disabled_by_either_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert load_settings().disabled
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    monkeypatch.setenv("GENAI_OBSERVE_DISABLED", "yes")
    handle = genai_observe.init()
    assert not handle.enabled and handle.tracer_provider is None


# --- every configuration error -------------------------------------------------------------

BAD_ARGUMENTS: list[tuple[dict[str, Any], str, str]] = [
    ({"legacy_content": "sometimes"}, "legacy_content (argument)", "true/false"),
    ({"endpoint": "abc12345.live.dynatrace.com"}, "endpoint (argument)", "http(s) URL"),
    ({"endpoint": "ftp://collector:4318"}, "endpoint (argument)", "http(s) URL"),
    ({"endpoint": "http://collector:99999"}, "endpoint (argument)", "http(s) URL"),
    ({"endpoint": "http://collector:4318?x=1"}, "endpoint (argument)", "without query"),
    ({"traces_endpoint": "not a url"}, "traces_endpoint (argument)", "http(s) URL"),
    ({"api_token": TOKEN}, "api_token (argument)", "an endpoint as well"),
    ({"endpoint": "http://c:4318", "api_token": "has space"}, "api_token (argument)", "without spaces"),
    ({"compression": "brotli"}, "compression (argument)", "gzip, deflate or none"),
    ({"export_timeout": -1}, "export_timeout (argument)", "positive number of seconds"),
    ({"metric_export_interval_ms": -5}, "metric_export_interval_ms (argument)", "positive whole number"),
    ({"metric_export_interval_ms": 1.5}, "metric_export_interval_ms (argument)", "positive whole number"),
    ({"shutdown_timeout": "soon"}, "shutdown_timeout (argument)", "seconds >= 0"),
    ({"instrumentations": ["openai", "cohere"]}, "instrumentations (argument)", "names from openai"),
    ({"disabled_instrumentations": "gpt"}, "disabled_instrumentations (argument)", "names from openai"),
    ({"capture_content": "sometimes"}, "capture_content (argument)", "true/false"),
    ({"max_content_length": 3}, "max_content_length (argument)", ">= 16"),
    ({"profile": "openllmetry"}, "profile (argument)", "dynatrace or latest"),
    ({"redact": "yes"}, "redact (argument)", "callable"),
    ({"traces": "maybe"}, "traces (argument)", "true/false"),
    ({"disabled": "perhaps"}, "disabled (argument)", "true/false"),
    ({"metrics": "maybe"}, "metrics (argument)", "true/false"),
    ({"logs": "x"}, "logs (argument)", "true/false"),
    ({"reuse_existing_providers": "x"}, "reuse_existing_providers (argument)", "true/false"),
    ({"metrics_endpoint": "nope"}, "metrics_endpoint (argument)", "http(s) URL"),
    ({"logs_endpoint": "ftp://x"}, "logs_endpoint (argument)", "http(s) URL"),
    ({"headers": {"x-team": 1}}, "headers (argument)", "a dict of str to str"),
    ({"resource_attributes": 5}, "resource_attributes (argument)", "a dict"),
]

BAD_ENVIRONMENT: list[tuple[dict[str, str], str, str]] = [
    ({"DT_ENDPOINT": "live.dynatrace.com/api"}, "DT_ENDPOINT (environment)", "http(s) URL"),
    (
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://c:4317"},
        "OTEL_EXPORTER_OTLP_ENDPOINT (environment)",
        "http(s)",
    ),
    ({"DT_API_TOKEN": TOKEN}, "DT_API_TOKEN (environment)", "an endpoint as well"),
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": "-10"}, "OTEL_EXPORTER_OTLP_TIMEOUT (environment)", "milliseconds"),
    ({"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "OTEL_EXPORTER_OTLP_COMPRESSION (environment)", "gzip"),
    ({"OTEL_METRIC_EXPORT_INTERVAL": "often"}, "OTEL_METRIC_EXPORT_INTERVAL (environment)", "milliseconds"),
    ({"OTEL_SDK_DISABLED": "nah"}, "OTEL_SDK_DISABLED", "true/false"),
    ({"GENAI_OBSERVE_TRACES": "2"}, "GENAI_OBSERVE_TRACES (environment)", "true/false"),
    ({"GENAI_OBSERVE_INSTRUMENTATIONS": "openai,mistral"}, "GENAI_OBSERVE_INSTRUMENTATIONS", "names from"),
    (
        {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "ALL"},
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE",
        "NO_CONTENT",
    ),
    ({"GENAI_OBSERVE_MAX_CONTENT_LENGTH": "lots"}, "GENAI_OBSERVE_MAX_CONTENT_LENGTH", "whole number"),
    (
        {"GENAI_OBSERVE_SEMCONV_PROFILE": "v2"},
        "GENAI_OBSERVE_SEMCONV_PROFILE (environment)",
        "dynatrace or latest",
    ),
    ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER", "sampler plugin"),
    (
        {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "logs"},
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT (environment)",
        "http(s)",
    ),
    (
        {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
        "OTEL_TRACES_SAMPLER_ARG",
        "0..1",
    ),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS", "key=value"),
    ({"OTEL_BSP_MAX_QUEUE_SIZE": "-1"}, "OTEL_BSP_MAX_QUEUE_SIZE", "positive whole number"),
    ({"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "many"}, "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "positive whole number"),
    ({"GENAI_OBSERVE_OPENAI_STREAM_USAGE": "maybe"}, "GENAI_OBSERVE_OPENAI_STREAM_USAGE", "true/false"),
    ({"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "zstd"}, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
    ({"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "-1"}, "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "milliseconds"),
    ({"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "5s"}, "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "milliseconds"),
    ({"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "key=value"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "x"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http(s) URL"),
    ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "grpc://a:1"}, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http(s)"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "novalue"}, "OTEL_RESOURCE_ATTRIBUTES", "key=value"),
    ({"GENAI_OBSERVE_DISABLED": "nah"}, "GENAI_OBSERVE_DISABLED (environment)", "true/false"),
    ({"GENAI_OBSERVE_SHUTDOWN_TIMEOUT": "soon"}, "GENAI_OBSERVE_SHUTDOWN_TIMEOUT", "seconds >= 0"),
    ({"GENAI_OBSERVE_METRICS": "2"}, "GENAI_OBSERVE_METRICS (environment)", "true/false"),
    ({"GENAI_OBSERVE_LOGS": "2"}, "GENAI_OBSERVE_LOGS (environment)", "true/false"),
    ({"GENAI_OBSERVE_ENDPOINT": "x"}, "GENAI_OBSERVE_ENDPOINT (environment)", "http(s) URL"),
    ({"GENAI_OBSERVE_CAPTURE_CONTENT": "x"}, "GENAI_OBSERVE_CAPTURE_CONTENT", "NO_CONTENT"),
    ({"GENAI_OBSERVE_LEGACY_CONTENT": "x"}, "GENAI_OBSERVE_LEGACY_CONTENT (environment)", "true/false"),
    ({"TRACELOOP_TRACE_CONTENT": "maybe"}, "TRACELOOP_TRACE_CONTENT", "true/false"),
    ({"OTEL_BSP_SCHEDULE_DELAY": "x"}, "OTEL_BSP_SCHEDULE_DELAY", "positive whole number"),
    ({"OTEL_BSP_EXPORT_TIMEOUT": "x"}, "OTEL_BSP_EXPORT_TIMEOUT", "positive whole number"),
    (
        {"DT_ENDPOINT": "http://c:4318", "DT_API_TOKEN": "dt0c01.ab cd"},
        "DT_API_TOKEN (environment)",
        "without spaces",
    ),
]


@pytest.mark.parametrize(("kwargs", "setting", "accepted"), BAD_ARGUMENTS)
def test_bad_argument_raises_one_clear_error(kwargs: dict[str, Any], setting: str, accepted: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        genai_observe.init(**kwargs)
    message = str(info.value)
    assert setting in message and accepted in message
    assert TOKEN not in message
    assert genai_observe._pipeline.bootstrap.current() is None  # nothing half-initialised


@pytest.mark.parametrize(("env", "setting", "accepted"), BAD_ENVIRONMENT)
def test_bad_environment_raises_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], setting: str, accepted: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError) as info:
        genai_observe.init()
    message = str(info.value)
    assert setting in message and accepted in message
    assert TOKEN not in message
    assert genai_observe._pipeline.bootstrap.current() is None


def test_error_names_the_bad_value() -> None:
    with pytest.raises(ConfigurationError, match=r"'brotli'"):
        load_settings(compression="brotli")
    assert issubclass(ConfigurationError, genai_observe.GenAIObserveError)


def test_token_never_shown(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Api-Token%20{TOKEN}")
    s = load_settings(endpoint="https://a.live.dynatrace.com", api_token=TOKEN)
    assert s.token is not None
    for text in (repr(s), str(s), repr(s.token), str(s.token), f"{s.token}"):
        assert TOKEN not in text
    handle = genai_observe.init(endpoint="http://127.0.0.1:9", api_token=TOKEN, shutdown_timeout=0.5)
    assert TOKEN not in repr(handle)
    # A bad header list never echoes its content (it may hold the token).
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Api-Token {TOKEN}")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert TOKEN not in str(info.value)
    genai_observe.shutdown(timeout=0.5)
    assert TOKEN not in caplog.text


def test_queue_smaller_than_default_batch_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")
    s = load_settings(endpoint="http://c:4318")
    assert s.batch_sizes("traces") == (100, 100)
    assert s.batch_sizes("logs") == (2048, 512)
    handle = genai_observe.init(endpoint="http://127.0.0.1:9", shutdown_timeout=0.5)  # must not raise
    handle.shutdown()


@pytest.mark.parametrize(
    ("kwargs", "env", "named"),
    [
        ({"endpoint": "http://myhost:14318", "api_token": TOKEN}, {}, "api_token (argument)"),
        ({"endpoint": "http://abc12345.live.dynatrace.com", "api_token": TOKEN}, {}, "api_token (argument)"),
        ({}, {"DT_ENDPOINT": "http://10.0.0.7:4318", "DT_API_TOKEN": TOKEN}, "DT_API_TOKEN (environment)"),
        (  # only one signal goes over http: still refused
            {"endpoint": "https://abc12345.live.dynatrace.com", "api_token": TOKEN},
            {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://collector:4318/v1/metrics"},
            "api_token (argument)",
        ),
        (
            {"endpoint": "http://collector:4318", "headers": {"Authorization": "Bearer abcdefgh"}},
            {},
            "headers",
        ),
        (
            {"endpoint": "http://collector:4318", "headers": {"x-api-key": "abcdefgh"}},
            {},
            "headers (argument)",
        ),
        (
            {"endpoint": "http://collector:4318"},
            {"OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Api-Token%20{TOKEN}"},
            "OTEL_EXPORTER_OTLP_HEADERS (environment)",
        ),
        (
            {"endpoint": "https://collector:4318", "traces_endpoint": "http://collector:4318/v1/traces"},
            {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "authorization=Basic%20dXNlcjpwYXNz"},
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS (environment)",
        ),
    ],
)
def test_credentials_over_plain_http_to_another_host_are_refused(
    kwargs: dict[str, Any], env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError) as info:
        genai_observe.init(**kwargs)
    message = str(info.value)
    assert named in message and "clear text" in message
    assert "allow_insecure_token=True" in message and "GENAI_OBSERVE_ALLOW_INSECURE_TOKEN" in message
    assert TOKEN not in message and "abcdefgh" not in message and "dXNlcjpwYXNz" not in message
    # The explicit opt-in, as argument or variable, lets it through.
    assert load_settings(**kwargs, allow_insecure_token=True).endpoints is not None
    monkeypatch.setenv("GENAI_OBSERVE_ALLOW_INSECURE_TOKEN", "true")
    assert load_settings(**kwargs).endpoints is not None


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://localhost:14499/otlp",  # the local OneAgent
        "http://127.0.0.1:4318",
        "http://127.8.9.10:4318",
        "http://[::1]:4318",
        "http://LOCALHOST:4318",
        "https://myhost:14318",
    ],
)
def test_credentials_to_loopback_or_over_https_are_fine(endpoint: str) -> None:
    s = load_settings(endpoint=endpoint, api_token=TOKEN, headers={"x-api-key": "abcdefgh"})
    assert s.headers["traces"]["authorization"] == f"Api-Token {TOKEN}"
    # Headers that are no credentials go anywhere.
    assert load_settings(endpoint="http://collector:4318", headers={"x-team": "ai"}).headers["logs"] == {
        "x-team": "ai"
    }


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"service_name": 123}, "service_name (argument)"),
        ({"service_version": 1.2}, "service_version (argument)"),
        ({"deployment_environment": ["prod"]}, "deployment_environment (argument)"),
        ({"service_name": "   "}, "service_name (argument)"),
        ({"service_version": ""}, "service_version (argument)"),
        ({"resource_attributes": {"team": 7}}, "resource_attributes (argument) key 'team'"),
        ({"resource_attributes": {"team": " "}}, "resource_attributes (argument) key 'team'"),
        ({"resource_attributes": {"  ": "x"}}, "resource_attributes (argument) key"),
        ({"resource_attributes": {1: "x"}}, "resource_attributes (argument) key"),
    ],
)
def test_resource_settings_are_non_blank_strings(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        genai_observe.init(**kwargs)
    assert named in str(info.value) and "non-blank string" in str(info.value)


def test_resource_settings_are_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=%20ai%20,cost.center=42")
    s = load_settings(service_name=" svc ", service_version="1.2 ", resource_attributes={" region ": " eu "})
    assert (s.service_name, s.service_version) == ("svc", "1.2")
    assert s.resource_attributes == {"team": "ai", "cost.center": "42", "region": "eu"}
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=")
    with pytest.raises(ConfigurationError, match="OTEL_RESOURCE_ATTRIBUTES key 'team'"):
        load_settings()
