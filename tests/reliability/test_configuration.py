"""Settings that used to be accepted and then failed later, or leaked a token into a log line.

Issue 13: a header value read from a file (ending in a newline) made every export fail and each
failure log the token; out-of-range durations raised OverflowError from shutdown() or killed the
export thread; a space in the endpoint host or a non-Latin-1 character in the token made every
export fail with a message naming no setting. Each is now refused (or cleaned) by init(), with
the usual ConfigurationError, and no log line can carry the token.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

import genai_observe
from genai_observe import ConfigurationError
from tests.rig.otlp_receiver import OTLPReceiver

TOKEN = "dt0c01.CONFIGTESTTOKEN000000000.SECRETPART000000000000000000000000000000000000000000000000000000"


def _one_span() -> None:
    with genai_observe.llm_call(
        provider="openai", model="m", messages=[{"role": "user", "content": "q"}]
    ) as c:
        c.set_response(content="a", finish_reason="stop", input_tokens=1, output_tokens=1)


@pytest.mark.parametrize("where", ["argument", "environment"])
def test_header_token_read_from_a_file_is_stripped_and_exports(
    where: str,
    otlp_receiver: OTLPReceiver,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    kwargs: dict[str, Any] = {}
    if where == "argument":
        kwargs["headers"] = {"Authorization": f"Api-Token {TOKEN}\n"}  # open(f).read()
    else:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Api-Token%20{TOKEN}%0A")
    handle = genai_observe.init(endpoint=otlp_receiver.url, metrics=False, logs=False, **kwargs)
    assert handle.settings.headers["traces"]["authorization"] == f"Api-Token {TOKEN}"
    _one_span()
    handle.shutdown()
    (request,) = [r for r in otlp_receiver.requests if r.signal == "traces"]
    assert request.headers["authorization"] == f"Api-Token {TOKEN}"
    assert "SECRETPART" not in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "env", "named"),
    [
        ({"headers": {"Authorization": f"Api-Token {TOKEN[:20]}\n{TOKEN[20:]}"}}, {}, "headers (argument)"),
        ({"headers": {"x-api-key": f"{TOKEN}\x00"}}, {}, "headers (argument)"),
        ({}, {"OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Api-Token%20{TOKEN}%0D%0Ax=1"}, "OTEL_EXPORTER"),
        ({}, {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"x-api-key={TOKEN}%09tail"}, "OTEL_EXPORTER_OTLP_TRACES"),
        ({"headers": {"x-api-key": f"{TOKEN}€"}}, {}, "headers (argument)"),
        ({"headers": {"bad name": "v"}}, {}, "headers (argument) header name"),
    ],
)
def test_control_or_non_latin1_characters_in_a_header_are_refused_by_name(
    kwargs: dict[str, Any], env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError) as info:
        genai_observe.init(endpoint="https://abc.live.dynatrace.com", **kwargs)
    assert named in str(info.value)
    assert "SECRETPART" not in str(info.value)
    assert genai_observe._pipeline.bootstrap.current() is None


def test_exporter_and_processor_log_lines_never_carry_the_token(caplog: pytest.LogCaptureFixture) -> None:
    """Whatever an exporter or batch processor logs (message or traceback) has the token masked."""
    caplog.set_level(logging.DEBUG)
    handle = genai_observe.init(
        endpoint="https://abc.live.dynatrace.com",
        api_token=TOKEN,
        headers={"x-api-key": "my-own-collector-key"},
        shutdown_timeout=0.5,
    )
    from genai_observe._pipeline.logmask import LOGGERS

    for name in LOGGERS:
        logger = logging.getLogger(name)
        try:
            raise ValueError(f"Invalid header value: 'Api-Token {TOKEN}\\n' and 'my-own-collector-key'")
        except ValueError:
            logger.exception("Exception while exporting: headers %s", {"authorization": f"Api-Token {TOKEN}"})
        logger.warning("Transient error %s", f"key=my-own-collector-key token={TOKEN}")
    handle.shutdown()
    assert caplog.records
    assert "SECRETPART" not in caplog.text and "my-own-collector-key" not in caplog.text
    assert "Exception while exporting" in caplog.text and "ValueError" in caplog.text  # still said


BAD: list[tuple[dict[str, Any], dict[str, str], str, str]] = [
    ({"shutdown_timeout": 1e10}, {}, "shutdown_timeout (argument)", "3600"),
    ({}, {"GENAI_OBSERVE_SHUTDOWN_TIMEOUT": "1e10"}, "GENAI_OBSERVE_SHUTDOWN_TIMEOUT", "3600"),
    ({"metric_export_interval_ms": 10**13}, {}, "metric_export_interval_ms (argument)", "86400000"),
    ({}, {"OTEL_METRIC_EXPORT_INTERVAL": "10000000000000"}, "OTEL_METRIC_EXPORT_INTERVAL", "86400000"),
    ({}, {"OTEL_BSP_SCHEDULE_DELAY": "10000000000000"}, "OTEL_BSP_SCHEDULE_DELAY", "86400000"),
    ({}, {"OTEL_BLRP_SCHEDULE_DELAY": "10000000000000"}, "OTEL_BLRP_SCHEDULE_DELAY", "86400000"),
    ({}, {"OTEL_BSP_EXPORT_TIMEOUT": "10000000000000"}, "OTEL_BSP_EXPORT_TIMEOUT", "3600000"),
    ({}, {"OTEL_METRIC_EXPORT_TIMEOUT": "1e13"}, "OTEL_METRIC_EXPORT_TIMEOUT", "3600000"),
    ({"export_timeout": 1e10}, {}, "export_timeout (argument)", "3600"),
    ({}, {"OTEL_EXPORTER_OTLP_TIMEOUT": "1e13"}, "OTEL_EXPORTER_OTLP_TIMEOUT", "3600000"),
    ({}, {"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "1e13"}, "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "3600000"),
    ({"endpoint": "https://my host:4318"}, {}, "endpoint (argument)", "without spaces"),
    ({"endpoint": "https://collector\t:4318"}, {}, "endpoint (argument)", "control characters"),
    ({"traces_endpoint": "https://c:4318/v1/tr aces"}, {}, "traces_endpoint (argument)", "without spaces"),
    ({}, {"DT_ENDPOINT": "https://ab%20c.live.dynatrace.com"}, "DT_ENDPOINT", "valid host name"),
    ({"api_token": TOKEN + "é"}, {}, "api_token (argument)", "ASCII"),
    ({"api_token": "dt0c01.ÄÖÜ.secret"}, {}, "api_token (argument)", "ASCII"),
]


@pytest.mark.parametrize(("kwargs", "env", "named", "accepted"), BAD)
def test_settings_that_would_fail_later_are_refused_up_front(
    kwargs: dict[str, Any], env: dict[str, str], named: str, accepted: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if not any("ENDPOINT" in key for key in env):
        kwargs = {"endpoint": "https://abc.live.dynatrace.com", **kwargs}
    with pytest.raises(ConfigurationError) as info:
        genai_observe.init(**kwargs)
    assert named in str(info.value) and accepted in str(info.value)
    assert "SECRETPART" not in str(info.value)
    assert genai_observe._pipeline.bootstrap.current() is None


def test_the_documented_maxima_are_accepted_and_shutdown_returns(
    otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "86400000")
    monkeypatch.setenv("OTEL_BSP_EXPORT_TIMEOUT", "3600000")
    handle = genai_observe.init(
        endpoint=otlp_receiver.url,
        shutdown_timeout=3600,
        export_timeout=3600,
        metric_export_interval_ms=86_400_000,
        logs=False,
    )
    _one_span()
    began = time.monotonic()
    handle.shutdown()  # flushes the day-long batch delay at once; nothing raises
    assert time.monotonic() - began < 10
    assert len(otlp_receiver.spans()) == 1
    assert otlp_receiver.metrics()


def test_surrounding_whitespace_of_an_endpoint_argument_is_dropped() -> None:
    """Like a token read from a file: whitespace around a URL is never meant; inside it is refused."""
    from genai_observe._pipeline.settings import load_settings

    s = load_settings(
        endpoint=" https://abc.live.dynatrace.com\n", traces_endpoint="https://t:4318/v1/traces "
    )
    assert s.endpoints is not None
    assert s.endpoints.traces == "https://t:4318/v1/traces"
    assert s.endpoints.metrics == "https://abc.live.dynatrace.com/api/v2/otlp/v1/metrics"
