"""Traceloop's setup code (as Dynatrace documents it) works with only the import changed.

What a real OTLP receiver decodes, the error raised when an alias and its option are both given,
and that the token, however it came, never shows in an error, a repr or a log line.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

import genai_observe
from genai_observe import ConfigurationError
from genai_observe._pipeline.settings import load_settings
from tests.rig.otlp_receiver import OTLPReceiver

TOKEN = "dt0c01.TRACELOOPSTYLEABCDEFGHIJ.SECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETXX"


def one_call(model: str = "m1") -> None:
    with genai_observe.llm_call(
        provider="openai", model=model, messages=[{"role": "user", "content": "hi"}]
    ) as call:
        call.set_response(content="hello", finish_reason="stop", input_tokens=3, output_tokens=1)


def wait_for_spans(receiver: OTLPReceiver, within: float) -> list[Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if receiver.spans():
            return receiver.spans()
        time.sleep(0.02)
    return receiver.spans()


def test_the_documented_traceloop_setup_exports_with_the_token(otlp_receiver: OTLPReceiver) -> None:
    headers = {"Authorization": f"Api-Token {TOKEN}"}
    handle = genai_observe.init(
        app_name="my-app",
        api_endpoint=otlp_receiver.url,
        disable_batch=True,
        headers=headers,
        metric_export_interval_ms=60_000,
    )
    one_call()
    # disable_batch: out well before the SDK's 5 s schedule delay, without any flush.
    (span,) = wait_for_spans(otlp_receiver, within=2.0)
    assert span.resource_attributes["service.name"] == "my-app"
    traces = [r for r in otlp_receiver.requests if r.signal == "traces"]
    assert traces[0].headers["authorization"] == f"Api-Token {TOKEN}"
    # The header became the token: masked in the settings' repr, one Authorization only.
    assert handle.settings.token is not None and TOKEN not in repr(handle.settings)
    handle.shutdown()
    assert {r.headers["authorization"] for r in otlp_receiver.requests} == {f"Api-Token {TOKEN}"}


def test_without_disable_batch_spans_wait_for_the_batch(otlp_receiver: OTLPReceiver) -> None:
    genai_observe.init(endpoint=otlp_receiver.url, metric_export_interval_ms=60_000)
    one_call()
    assert wait_for_spans(otlp_receiver, within=1.0) == []  # the SDK's 5 s delay: what disable_batch changes


def test_traceloop_variables(otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELOOP_BASE_URL", otlp_receiver.url)
    # Traceloop's format: OTel's key=value list, %-encoded.
    monkeypatch.setenv("TRACELOOP_HEADERS", f"Authorization=Api-Token%20{TOKEN},X-Team=gen%20ai")
    handle = genai_observe.init(service_name="env-app", metric_export_interval_ms=60_000)
    one_call()
    handle.shutdown()
    (span,) = otlp_receiver.spans()
    assert span.resource_attributes["service.name"] == "env-app"
    for request in otlp_receiver.requests:
        assert request.headers["authorization"] == f"Api-Token {TOKEN}"
        assert request.headers["x-team"] == "gen ai"


def test_traceloop_variables_come_last(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELOOP_BASE_URL", "http://traceloop:4318")
    monkeypatch.setenv(
        "TRACELOOP_HEADERS", "Authorization=Api-Token%20from-traceloop,X-A=traceloop,X-B=traceloop"
    )
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "X-B=otel")
    monkeypatch.setenv("GENAI_OBSERVE_ALLOW_INSECURE_TOKEN", "true")
    s = load_settings()
    assert s.endpoints is not None and s.endpoints.traces == "http://traceloop:4318/v1/traces"
    assert s.token is not None and s.token.reveal() == "from-traceloop"
    assert s.headers["traces"]["x-a"] == "traceloop" and s.headers["traces"]["x-b"] == "otel"

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318")
    monkeypatch.setenv("DT_API_TOKEN", "from-dt")
    s = load_settings()
    assert s.endpoints is not None and s.endpoints.traces == "http://otel:4318/v1/traces"
    assert s.token is not None and s.token.reveal() == "from-dt"
    assert s.headers["traces"]["authorization"] == "Api-Token from-dt"

    # An argument wins over every variable (Traceloop lets its variables win; we do not).
    s = load_settings(api_endpoint="http://arg:4318", headers={"Authorization": "Api-Token from-arg"})
    assert s.endpoints is not None and s.endpoints.traces == "http://arg:4318/v1/traces"
    assert s.token is not None and s.token.reveal() == "from-arg"


def test_other_authorization_schemes_stay_headers() -> None:
    s = load_settings(endpoint="https://collector:4318", headers={"Authorization": "Bearer abc"})
    assert s.token is None
    assert s.headers["traces"]["authorization"] == "Bearer abc"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"service_name": "a", "app_name": "b"}, "service_name (argument) and app_name (argument)"),
        ({"app_name": "b", "service_name": "a"}, "service_name (argument) and app_name (argument)"),
        (
            {"endpoint": "https://a.live.dynatrace.com", "api_endpoint": "https://b.live.dynatrace.com"},
            "endpoint (argument) and api_endpoint (argument)",
        ),
        (
            {
                "endpoint": "https://a.live.dynatrace.com",
                "api_token": TOKEN,
                "headers": {"Authorization": f"Api-Token {TOKEN}"},
            },
            "api_token (argument) and headers (argument) 'authorization'",
        ),
    ],
)
def test_an_alias_with_its_option_is_one_clear_error(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        genai_observe.init(**kwargs)
    message = str(caught.value)
    assert message.startswith(f"genai_observe: invalid {named}: <redacted>; expected only one of them")
    assert TOKEN not in message and "SECRET" not in message


def test_a_bad_alias_value_names_the_alias() -> None:
    with pytest.raises(ConfigurationError, match=r"invalid app_name \(argument\)"):
        genai_observe.init(app_name="  ")
    with pytest.raises(ConfigurationError, match=r"invalid api_endpoint \(argument\)"):
        genai_observe.init(api_endpoint="not-a-url")
    with pytest.raises(ConfigurationError, match=r"invalid disable_batch \(argument\)"):
        genai_observe.init(disable_batch="sometimes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TRACELOOP_HEADERS": "no-equals-sign"}, "TRACELOOP_HEADERS: <redacted>"),
        (
            {"TRACELOOP_HEADERS": "Authorization=Api-Token%20dt0c01.SECRET%0Ainjected"},
            "TRACELOOP_HEADERS header 'authorization': <redacted>",
        ),
        (
            {"TRACELOOP_HEADERS": "Authorization=Api-Token%20dt0c01.SECRET%20SECRET"},
            "TRACELOOP_HEADERS (environment) 'authorization': <redacted>",
        ),
        ({"TRACELOOP_HEADERS": "Authorization=Api-Token%20dt0c01.SECRET"}, "an endpoint as well"),
        ({"TRACELOOP_BASE_URL": "ftp://x"}, "TRACELOOP_BASE_URL (environment)"),
    ],
)
def test_bad_traceloop_variables_are_named_never_shown(
    env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert named in str(caught.value)
    assert "SECRET" not in str(caught.value)


def test_token_from_headers_refused_over_plain_http_to_another_host() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            api_endpoint="http://collector.internal:4318", headers={"Authorization": f"Api-Token {TOKEN}"}
        )
    assert "invalid headers (argument) 'authorization': <redacted>; expected an https:// endpoint" in str(
        caught.value
    )
    assert TOKEN not in str(caught.value)


def test_token_from_headers_is_masked_in_logs(
    otlp_receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    handle = genai_observe.init(
        api_endpoint=otlp_receiver.url,
        headers={"Authorization": f"Api-Token {TOKEN}"},
        metric_export_interval_ms=60_000,
    )
    logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter").warning(
        "sent with Api-Token %s", TOKEN
    )
    handle.shutdown()
    assert "sent with" in caplog.text
    assert TOKEN not in caplog.text
