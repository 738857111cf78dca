"""prometheus_targets: NIM, vLLM and Kong metrics scraped over real HTTP, converted to DELTA and
checked where they arrive, at the OTLP receiver."""

from __future__ import annotations

import importlib.util
import itertools
import logging
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

import genai_observe
from genai_observe._core import semconv as sc
from genai_observe._pipeline import prometheus as _prometheus
from genai_observe._pipeline.prometheus import Counts, DeltaConverter, Series
from genai_observe._pipeline.settings import load_settings
from tests.rig.otlp_receiver import DataPointView, MetricView, OTLPReceiver
from tests.rig.prometheus_server import (
    KONG_AI_LATENCY_BUCKETS,
    KONG_LATENCY_BUCKETS,
    NIM_LATENCY_BUCKETS,
    OPENMETRICS,
    PrometheusServer,
    kong_exposition,
    nim_exposition,
)

DELTA = 1
MODEL = "meta/llama-3.1-8b-instruct"
TARGET = sc.PROMETHEUS_TARGET


@pytest.fixture(autouse=True)
def no_scraper_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    """init() marks this process as the scraper in os.environ; undone after each test."""
    monkeypatch.setenv(_prometheus.ENV_SCRAPER, "")


@pytest.fixture
def prom() -> Iterator[PrometheusServer]:
    with PrometheusServer() as server:
        yield server


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _init(receiver: OTLPReceiver, targets: list[str], **kw: Any) -> genai_observe.Handle:
    options: dict[str, Any] = {
        "endpoint": receiver.url,
        "service_name": "chat-api",
        "metric_export_interval_ms": 600_000,  # only force_flush() collects, so rounds are exact
        "instrumentations": [],
        "traces": False,
        "logs": False,
        **kw,
    }
    return genai_observe.init(prometheus_targets=targets, **options)


def _metric(receiver: OTLPReceiver, name: str) -> MetricView:
    (view,) = receiver.metrics(name)  # exactly one export of it since the last clear()
    return view


def _point(view: MetricView, **labels: str) -> DataPointView:
    found = [p for p in view.data_points if all(p.attributes.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (labels, [p.attributes for p in view.data_points])
    return found[0]


def _per_bucket(values: list[float], bounds: tuple[float, ...]) -> list[int]:
    edges = (-math.inf, *bounds, math.inf)
    return [sum(1 for v in values if lo < v <= hi) for lo, hi in itertools.pairwise(edges)]


def _assert_nothing_negative(receiver: OTLPReceiver) -> None:
    for view in receiver.metrics():
        for p in view.data_points:
            if view.kind == "sum":
                assert p.value is not None and p.value > 0, (view.name, p)
            if view.kind == "histogram":
                assert p.count and p.count > 0 and min(p.bucket_counts) >= 0, (view.name, p)


def test_nim_and_kong_counters_and_histograms_arrive_as_exact_deltas(
    otlp_receiver: OTLPReceiver, prom: PrometheusServer
) -> None:
    long_ago = time.time() - 3600  # created before init(): the first scrape is a baseline only
    nim: dict[str, Any] = {
        "success": {"stop": 10, "length": 2},
        "generation_tokens": 1000,
        "latencies": [0.4, 1.2, 2.2],
        "ttft": [0.05],
        "running": 2,
        "cache_usage": 0.25,
        "created": long_ago,
    }
    kong: dict[str, Any] = {
        "requests": {("openai", "gpt-4o"): 5},
        "tokens": {("gpt-4o", "prompt_tokens"): 100, ("gpt-4o", "completion_tokens"): 40},
        "provider_latency_ms": {("openai", "gpt-4o"): [120, 900]},
        "kong_latency_ms": {("chat-svc", "chat-route"): [3, 4]},
    }
    prom.serve("/v1/metrics", nim_exposition(**nim))
    prom.serve("/metrics", kong_exposition(**kong))
    nim_url, kong_url = prom.url("/v1/metrics"), prom.url("/metrics")
    handle = _init(otlp_receiver, [nim_url, kong_url])

    # Scrape 1: a baseline. Only the gauges go out.
    assert handle.force_flush()
    assert {v.name for v in otlp_receiver.metrics()} == {
        "num_requests_running",
        "gpu_cache_usage_perc",
        "kong_nginx_connections_total",
    }
    running = _metric(otlp_receiver, "num_requests_running")
    assert running.kind == "gauge"
    assert _point(running).value == 2.0
    assert _point(running).attributes == {"model_name": MODEL, TARGET: nim_url}
    otlp_receiver.clear()

    # Scrape 2: three more successes, 450 tokens, two more requests in the histograms.
    nim.update(success={"stop": 13, "length": 2}, generation_tokens=1450, running=1, cache_usage=0.5)
    nim["latencies"] = [0.4, 1.2, 2.2, 0.7, 12.0]
    kong.update(
        requests={("openai", "gpt-4o"): 8},
        tokens={("gpt-4o", "prompt_tokens"): 160, ("gpt-4o", "completion_tokens"): 70},
        provider_latency_ms={("openai", "gpt-4o"): [120, 900, 60]},
        kong_latency_ms={("chat-svc", "chat-route"): [3, 4, 12]},
    )
    prom.serve("/v1/metrics", nim_exposition(**nim))
    prom.serve("/metrics", kong_exposition(**kong))
    before = time.time_ns()
    assert handle.force_flush()

    success = _metric(otlp_receiver, "request_success_total")  # the name as exposed, _total kept
    assert (success.kind, success.temporality, success.is_monotonic) == ("sum", DELTA, True)
    assert success.scope_name == sc.PROMETHEUS_SCOPE
    assert success.resource_attributes["service.name"] == "chat-api"
    stop = _point(success, finished_reason="stop")
    assert stop.value == 3.0
    assert stop.attributes == {"finished_reason": "stop", "model_name": MODEL, TARGET: nim_url}
    assert stop.start_time_ns < before <= stop.time_ns  # from the previous scrape to this one
    assert [p.attributes["finished_reason"] for p in success.data_points] == ["stop"]  # no zero delta
    assert _point(_metric(otlp_receiver, "generation_tokens_total")).value == 450.0

    latency = _metric(otlp_receiver, "e2e_request_latency_seconds")
    assert (latency.kind, latency.temporality) == ("histogram", DELTA)
    point = _point(latency)
    assert point.explicit_bounds == list(NIM_LATENCY_BUCKETS)
    assert point.bucket_counts == _per_bucket([0.7, 12.0], NIM_LATENCY_BUCKETS)
    assert (point.count, point.sum) == (2, pytest.approx(12.7))
    assert _point(_metric(otlp_receiver, "num_requests_running")).value == 1.0  # gauges: as they are

    requests = _metric(otlp_receiver, "kong_ai_llm_requests_total")
    assert (requests.kind, requests.temporality, requests.is_monotonic) == ("sum", DELTA, True)
    # Kong's empty labels (cache_status="", ...) are absent labels, as in Prometheus.
    assert _point(requests).attributes == {
        "ai_provider": "openai", "ai_model": "gpt-4o", "workspace": "default", TARGET: kong_url,
    }  # fmt: skip
    assert _point(requests).value == 3.0
    tokens = _metric(otlp_receiver, "kong_ai_llm_tokens_total")
    assert _point(tokens, token_type="prompt_tokens").value == 60.0
    assert _point(tokens, token_type="completion_tokens").value == 30.0
    provider = _point(_metric(otlp_receiver, "kong_ai_llm_provider_latency_ms"))
    assert provider.explicit_bounds == [float(b) for b in KONG_AI_LATENCY_BUCKETS]  # le="00025.0" read
    assert provider.bucket_counts == _per_bucket([60], KONG_AI_LATENCY_BUCKETS)
    assert (provider.count, provider.sum) == (1, 60.0)
    kong_latency = _point(_metric(otlp_receiver, "kong_kong_latency_ms"), service="chat-svc")
    assert kong_latency.attributes["route"] == "chat-route"
    assert kong_latency.bucket_counts == _per_bucket([12], KONG_LATENCY_BUCKETS)
    _assert_nothing_negative(otlp_receiver)
    otlp_receiver.clear()

    # Scrape 3: NIM restarted (lower values, a later _created; "length" gone); Kong has a new series.
    restarted = time.time()
    nim.update(success={"stop": 2}, generation_tokens=50, latencies=[0.9], ttft=[], created=restarted)
    kong["requests"] = {("openai", "gpt-4o"): 9, ("anthropic", "claude-sonnet-4"): 4}
    prom.serve("/v1/metrics", nim_exposition(**nim))
    prom.serve("/metrics", kong_exposition(**kong))
    assert handle.force_flush()

    success = _metric(otlp_receiver, "request_success_total")
    assert _point(success, finished_reason="stop").value == 2.0  # the new value is the delta
    assert _point(success, finished_reason="stop").start_time_ns >= int(restarted * 1e9)
    assert _point(_metric(otlp_receiver, "generation_tokens_total")).value == 50.0
    point = _point(_metric(otlp_receiver, "e2e_request_latency_seconds"))
    assert (point.count, point.bucket_counts) == (1, _per_bucket([0.9], NIM_LATENCY_BUCKETS))
    requests = _metric(otlp_receiver, "kong_ai_llm_requests_total")
    assert _point(requests, ai_provider="openai").value == 1.0
    # New since the previous (complete) scrape: all of it happened in between.
    assert _point(requests, ai_provider="anthropic").value == 4.0
    assert not otlp_receiver.metrics("time_to_first_token_seconds")  # reset to zero: nothing to send
    _assert_nothing_negative(otlp_receiver)

    assert handle.stats()["prometheus"] == {
        "scrapes": 6, "failed": 0, "timed_out": 0, "series_dropped": 0, "samples_skipped": 0,
    }  # fmt: skip
    accept = prom.scrapes("/metrics")[0].headers["accept"]
    assert accept.startswith("text/plain;version=0.0.4")


_OPENMETRICS = """# HELP vllm:request_success Count of successfully processed requests.
# TYPE vllm:request_success counter
vllm:request_success_total{{finished_reason="stop",model_name="m"}} {n}
vllm:request_success_created{{finished_reason="stop",model_name="m"}} {created}
# HELP vllm:time_to_first_token_seconds Time to first token.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{le="0.1",model_name="m"}} {n}
vllm:time_to_first_token_seconds_bucket{{le="+Inf",model_name="m"}} {n}
vllm:time_to_first_token_seconds_count{{model_name="m"}} {n}
vllm:time_to_first_token_seconds_sum{{model_name="m"}} 0.25
vllm:time_to_first_token_seconds_created{{model_name="m"}} {created}
# EOF
"""


def test_vllm_series_created_after_init_count_from_creation_in_both_formats(
    otlp_receiver: OTLPReceiver, prom: PrometheusServer
) -> None:
    handle = _init(otlp_receiver, [prom.url("/text"), prom.url("/om")])
    created = time.time()  # after init(): everything these series counted is new
    prom.serve("/text", nim_exposition(prefix="vllm:", success={"stop": 4}, latencies=[0.2], created=created))
    prom.serve("/om", _OPENMETRICS.format(n=5, created=created), content_type=OPENMETRICS)
    assert handle.force_flush()

    success = _metric(otlp_receiver, "vllm:request_success_total")
    text_point = _point(success, **{TARGET: prom.url("/text")})
    om_point = _point(success, **{TARGET: prom.url("/om")})
    assert (text_point.value, om_point.value) == (4.0, 5.0)
    assert text_point.start_time_ns == om_point.start_time_ns == pytest.approx(created * 1e9, abs=1000)
    latency = _point(_metric(otlp_receiver, "vllm:e2e_request_latency_seconds"))
    assert (latency.count, latency.sum) == (1, pytest.approx(0.2))
    ttft = _point(_metric(otlp_receiver, "vllm:time_to_first_token_seconds"), **{TARGET: prom.url("/om")})
    assert (ttft.explicit_bounds, ttft.bucket_counts, ttft.count) == ([0.1], [5, 0], 5)
    # `_created` is read, never exported as a gauge of its own.
    assert not [v.name for v in otlp_receiver.metrics() if v.name.endswith("_created")]


def test_dead_slow_and_html_targets_never_touch_the_app(
    otlp_receiver: OTLPReceiver, prom: PrometheusServer, caplog: pytest.LogCaptureFixture
) -> None:
    prom.serve("/slow", nim_exposition(), delay=5)
    prom.serve("/html", "<html><body>Kong Manager</body></html>", content_type="text/html")
    prom.serve("/text-page", "Welcome to nginx!", content_type="text/plain")
    prom.serve("/moved", "", status=302, headers={"Location": "http://example.invalid/metrics"})
    prom.serve("/empty", "")
    prom.serve("/metrics", kong_exposition(requests={("openai", "gpt-4o"): 1}))
    dead_port = _closed_port()
    dead = f"http://scraper:s3cret@127.0.0.1:{dead_port}/metrics?token=q-secret"
    targets = [dead, prom.url("/slow"), prom.url("/html"), prom.url("/text-page"), prom.url("/moved")]
    targets.append(prom.url("/empty"))
    targets.append(prom.url("/metrics"))
    caplog.set_level(logging.INFO, logger="genai_observe")

    started = time.monotonic()
    handle = _init(otlp_receiver, targets)
    assert time.monotonic() - started < 1.0  # init() does not scrape
    with genai_observe.llm_call(provider="openai", model="gpt-4o") as call:  # the app goes on
        call.set_response(content="hi", input_tokens=3, output_tokens=2)

    for round_number in (1, 2):
        started = time.monotonic()
        assert handle.force_flush(timeout=2)  # scrape budget: 1 s
        assert time.monotonic() - started < 4.0, round_number  # not the slow target's 5 s
        prom.serve("/metrics", kong_exposition(requests={("openai", "gpt-4o"): 1 + 2 * round_number}))

    # The app's own metrics went out in the first round; the good target's delta in the second.
    durations = otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)
    assert sum(p.count or 0 for m in durations for p in m.data_points) == 1
    assert _point(_metric(otlp_receiver, "kong_ai_llm_requests_total")).value == 2.0

    stats = handle.stats()["prometheus"]
    assert stats["scrapes"] == 2
    assert stats["failed"] == 12  # six bad targets, two rounds
    assert stats["timed_out"] == 2  # the slow one (the second time: still busy, then given up)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 6, warnings  # once per failing target, not once per round
    text = "\n".join(warnings)
    assert "cannot connect" in text and "no answer within" in text and "HTTP status 302" in text
    assert "empty exposition" in text
    assert "Content-Type text/html" in text and "not a Prometheus exposition (ValueError" in text
    assert "s3cret" not in caplog.text and "q-secret" not in caplog.text and "scraper:" not in caplog.text
    assert f"http://127.0.0.1:{dead_port}/metrics" in text  # shown without credentials or query


def test_credentials_in_a_target_url_are_sent_as_basic_auth_and_kept_out_of_attributes(
    otlp_receiver: OTLPReceiver, prom: PrometheusServer
) -> None:
    prom.serve("/metrics", kong_exposition(), gzip=True)
    url = prom.url("/metrics").replace("http://", "http://metrics:p%40ss@") + "?format=prometheus"
    handle = _init(otlp_receiver, [url])
    assert handle.force_flush()
    (scrape,) = prom.scrapes("/metrics")
    assert scrape.headers["authorization"] == "Basic bWV0cmljczpwQHNz"  # metrics:p@ss
    assert "gzip" in scrape.headers["accept-encoding"]
    point = _point(_metric(otlp_receiver, "kong_nginx_connections_total"))  # gzip body decoded
    assert point.attributes[TARGET] == prom.url("/metrics")
    assert handle.stats()["prometheus"]["failed"] == 0


def test_shutdown_stops_scraping(otlp_receiver: OTLPReceiver, prom: PrometheusServer) -> None:
    prom.serve("/metrics", kong_exposition())
    handle = _init(otlp_receiver, [prom.url("/metrics")], metric_export_interval_ms=100)
    otlp_receiver.wait_for(lambda r: len(prom.scrapes()) >= 3, timeout=10, description="3 scrapes")
    handle.shutdown(timeout=2)
    after = len(prom.scrapes())
    time.sleep(0.5)
    assert len(prom.scrapes()) == after
    names = [t.name for t in threading.enumerate()]
    assert "genai-observe-scrape" not in names  # the reader's last round joined its scrape


_FORK_SCRIPT = """
import os, sys, json
import genai_observe

handle = genai_observe.init(endpoint=sys.argv[1], prometheus_targets=[sys.argv[2]], instrumentations=[],
                            metric_export_interval_ms=600_000, traces=False, logs=False)
handle.force_flush()  # the parent's baseline
pid = os.fork()
if pid == 0:
    ok = handle.force_flush()  # a child's collection: no scrape
    print(json.dumps(handle.stats()["prometheus"]), flush=True)
    os._exit(0 if ok else 1)
assert os.waitpid(pid, 0)[1] == 0
with open(sys.argv[3], "w") as fh:
    fh.write("go")
import time
deadline = time.time() + 10
while os.path.exists(sys.argv[3]) and time.time() < deadline:
    time.sleep(0.05)  # the test changes the exposition
handle.force_flush()
genai_observe.shutdown()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_scrape_and_the_parent_keeps_counting(
    otlp_receiver: OTLPReceiver, prom: PrometheusServer, tmp_path: Path
) -> None:
    prom.serve("/metrics", kong_exposition(requests={("openai", "gpt-4o"): 10}))
    flag = tmp_path / "flag"
    proc = subprocess.Popen(
        [sys.executable, "-c", _FORK_SCRIPT, otlp_receiver.url, prom.url("/metrics"), str(flag)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
    )
    try:
        deadline = time.monotonic() + 30
        while not flag.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr and proc.stderr.read()
            time.sleep(0.05)
        assert len(prom.scrapes()) == 1  # the parent's baseline; the child's flush scraped nothing
        prom.serve("/metrics", kong_exposition(requests={("openai", "gpt-4o"): 15}))
        flag.unlink()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    child_stats = out.strip().splitlines()[0]
    assert '"scrapes": 0' in child_stats and '"failed": 0' in child_stats
    assert len(prom.scrapes()) == 2
    views = otlp_receiver.metrics("kong_ai_llm_requests_total")
    assert [p.value for v in views for p in v.data_points] == [5.0]  # once, by the parent


_CHILD = """
import sys, genai_observe
handle = genai_observe.init(endpoint=sys.argv[1], instrumentations=[], metric_export_interval_ms=600_000,
                            prometheus_targets=sys.argv[2].split(",") if len(sys.argv) > 2 else None)
handle.force_flush()
genai_observe.shutdown()
"""

_SPAWNING_SCRIPT = """
import os, subprocess, sys
import genai_observe

endpoint, kong, nim = sys.argv[1:4]
os.environ["GENAI_OBSERVE_PROMETHEUS_TARGETS"] = kong
handle = genai_observe.init(endpoint=endpoint, instrumentations=[], metric_export_interval_ms=600_000)
handle.force_flush()

def child(*targets):  # a process started anew, bootstrapping from the same environment
    subprocess.run([sys.executable, "-c", sys.argv[4], endpoint, *targets], check=True)

child()  # kong from the inherited variable: this process scrapes it already
child(kong + "," + nim)  # nim is nobody's yet: the child scrapes nim only
genai_observe.shutdown()
child()  # the scraper has stopped: a new process takes kong over
"""


def test_processes_started_from_the_scraper_leave_its_targets_alone(
    otlp_receiver: OTLPReceiver, prom: PrometheusServer
) -> None:
    prom.serve("/metrics", kong_exposition())
    prom.serve("/v1/metrics", nim_exposition())
    args = [otlp_receiver.url, prom.url("/metrics"), prom.url("/v1/metrics"), _CHILD]
    done = subprocess.run(
        [sys.executable, "-c", _SPAWNING_SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # kong: the parent's flush, then the last child's; nim: the second child's.
    assert (len(prom.scrapes("/metrics")), len(prom.scrapes("/v1/metrics"))) == (2, 1)


def test_targets_from_the_environment_and_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "GENAI_OBSERVE_PROMETHEUS_TARGETS", " http://nim:8000/v1/metrics , http://kong:8100/metrics,"
    )
    assert load_settings().prometheus_targets == ("http://nim:8000/v1/metrics", "http://kong:8100/metrics")
    chosen = load_settings(prometheus_targets=["http://a:1/m"]).prometheus_targets
    assert chosen == ("http://a:1/m",)  # the argument wins

    monkeypatch.setenv("GENAI_OBSERVE_PROMETHEUS_TARGETS", "nim:8000/metrics")
    with pytest.raises(genai_observe.ConfigurationError, match="GENAI_OBSERVE_PROMETHEUS_TARGETS"):
        genai_observe.init()
    with pytest.raises(genai_observe.ConfigurationError, match=r"prometheus_targets \(argument\)") as info:
        genai_observe.init(prometheus_targets=["ftp://user:pw@kong/metrics"])
    assert "pw" not in str(info.value)
    with pytest.raises(genai_observe.ConfigurationError, match="prometheus_targets"):
        genai_observe.init(prometheus_targets=["http://kong:99999/metrics"])
    with pytest.raises(genai_observe.ConfigurationError, match="prometheus_targets"):
        genai_observe.init(prometheus_targets=42)  # type: ignore[arg-type]

    real_find_spec = importlib.util.find_spec

    def without_prometheus_client(name: str, *args: Any) -> Any:
        return None if name == "prometheus_client" else real_find_spec(name, *args)

    monkeypatch.delenv("GENAI_OBSERVE_PROMETHEUS_TARGETS")
    monkeypatch.setattr(importlib.util, "find_spec", without_prometheus_client)
    with pytest.raises(genai_observe.ConfigurationError, match=r"genai-observe\[prometheus\]"):
        genai_observe.init(prometheus_targets="http://kong:8100/metrics")
    assert genai_observe._pipeline.bootstrap.current() is None  # nothing was set up


def test_targets_without_an_otlp_metrics_pipeline_are_not_scraped(
    prom: PrometheusServer, caplog: pytest.LogCaptureFixture
) -> None:
    prom.serve("/metrics", kong_exposition())
    handle = genai_observe.init(prometheus_targets=[prom.url("/metrics")], instrumentations=[], traces=False)
    assert "nothing is scraped" in caplog.text  # console mode: no endpoint to send them to
    handle.force_flush()
    assert prom.scrapes() == []
    assert "prometheus" not in handle.stats()


# --- the converter on its own: edge cases a live server rarely shows ------------------------------


def _sum(value: float, created: float | None = None, **labels: str) -> Series:
    return Series("sum", "requests_total", tuple(sorted(labels.items())), value=value, created=created)


def _hist(cumulative: tuple[float, ...], total: float, bounds: tuple[float, ...] = (1.0, 5.0)) -> Series:
    return Series(
        "histogram", "latency", (), bounds=bounds, cumulative=cumulative, count=cumulative[-1], total=total
    )


def _values(points: list[Any]) -> list[Any]:
    return [
        getattr(p, "value", None) if s.kind != "histogram" else (p.count, list(p.bucket_counts))
        for s, p in points
    ]


def test_nan_inf_and_negative_samples_are_skipped_and_counted() -> None:
    converter, counts = DeltaConverter("t", 0), Counts()
    converter.convert([_sum(10), Series("gauge", "g", (), value=1.0)], 1, counts)
    points = converter.convert([_sum(math.nan), Series("gauge", "g", (), value=math.inf)], 2, counts)
    assert points == [] and counts.samples_skipped == 2
    points = converter.convert([_sum(-1.0), _hist((1.0, 2.0, math.nan), 1.0)], 3, counts)
    assert points == [] and counts.samples_skipped == 4
    assert _values(converter.convert([_sum(12)], 4, counts)) == [2.0]  # against the last good value


def test_cardinality_cap_drops_new_series_and_counts_them() -> None:
    converter, counts = DeltaConverter("t", 0, max_series=2), Counts()
    converter.convert([_sum(1, model="a"), _sum(1, model="b"), _sum(1, model="c")], 1, counts)
    assert (counts.series_dropped, len(converter)) == (1, 2)
    # "a" and "b" keep their places; "c" stays out, and "d" appearing is no full-value report
    # while the target was over the cap (it may have existed before).
    points = converter.convert([_sum(3, model="a"), _sum(1, model="b"), _sum(5, model="c")], 2, counts)
    assert _values(points) == [2.0] and counts.series_dropped == 2
    points = converter.convert([_sum(4, model="a"), _sum(7, model="d")], 3, counts)
    assert _values(points) == [1.0] and len(converter) == 2  # "b" vanished: its place went to "d"
    points = converter.convert([_sum(4, model="a"), _sum(9, model="d")], 4, counts)
    assert _values(points) == [2.0]


def test_vanished_series_are_forgotten_and_a_returning_one_is_new() -> None:
    converter, counts = DeltaConverter("t", 0), Counts()
    converter.convert([_sum(5, model="a"), _sum(5, model="b")], 1, counts)
    converter.convert([_sum(6, model="a")], 2, counts)
    assert len(converter) == 1
    # "b" comes back (its server restarted it): it was absent at the previous complete scrape.
    points = converter.convert([_sum(6, model="a"), _sum(2, model="b")], 3, counts)
    assert _values(points) == [2.0] and points[0][1].start_time_unix_nano == 2


def test_a_metric_appearing_as_a_whole_without_created_is_a_baseline() -> None:
    """An exposition that came back partial once must not send every total again."""
    converter, counts = DeltaConverter("t", 0), Counts()
    tokens = Series("sum", "tokens_total", (), value=5000.0)
    converter.convert([_sum(5, model="a"), tokens], 1, counts)
    converter.convert([_sum(6, model="a")], 2, counts)  # tokens_total missing this once
    points = converter.convert([_sum(6, model="a"), tokens], 3, counts)
    assert points == []  # not 5000 again
    assert _values(
        converter.convert([_sum(6, model="a"), Series("sum", "tokens_total", (), value=5010.0)], 4, counts)
    ) == [10.0]


def test_histogram_resets_layout_changes_and_inf_bucket() -> None:
    converter, counts = DeltaConverter("t", 0), Counts()
    converter.convert([_hist((1.0, 3.0, 4.0), 10.0)], 1, counts)
    assert _values(converter.convert([_hist((2.0, 5.0, 7.0), 16.0)], 2, counts)) == [(3, [1, 1, 1])]
    # A bucket shrank although the count grew: a reset; the current histogram is the delta.
    assert _values(converter.convert([_hist((0.0, 8.0, 8.0), 20.0)], 3, counts)) == [(8, [0, 8, 0])]
    # Other bounds without a reset: a new baseline, nothing sent.
    assert converter.convert([_hist((1.0, 8.0, 9.0), 21.0, bounds=(2.0, 4.0))], 4, counts) == []
    assert _values(converter.convert([_hist((2.0, 9.0, 10.0), 22.0, bounds=(2.0, 4.0))], 5, counts)) == [
        (1, [1, 0, 0])
    ]
    assert counts.samples_skipped == 0


def test_series_of_a_family_without_inf_bucket_use_count() -> None:
    families = _prometheus.parse(
        "text/plain",
        '# TYPE x histogram\nx_bucket{le="1"} 2\nx_count 3\nx_sum 4\n'
        '# TYPE y histogram\ny_bucket{le="1"} 1\n',
        _prometheus.load_parsers(),
    )
    (series,) = _prometheus.to_series(families)  # y has neither +Inf nor _count: not readable
    assert (series.bounds, series.cumulative, series.count) == ((1.0,), (2.0, 3.0), 3.0)
