"""examples/container/app.py served the way its container runs it: under genai-observe-instrument,
configured only through the environment, with one HTTP request from outside."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from genai_observe._core import semconv as sc
from tests.rig.openai_server import OpenAIMockServer, default_content
from tests.rig.otlp_receiver import OTLPReceiver
from tests.rig.prometheus_server import PrometheusServer, kong_exposition

APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "container"
WRAPPER = str(Path(sys.executable).parent / "genai-observe-instrument")

# Settings a developer's shell may carry that would send the app or its telemetry elsewhere.
_FOREIGN = ("OTEL_", "DT_", "GENAI_OBSERVE_", "TRACELOOP_", "OPENAI_")

# No direct HTTP requests through a proxy the environment may configure.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(server: OpenAIMockServer, receiver: OTLPReceiver, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    env.update(
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        # What the Kubernetes manifest sets, pointed at the local rig.
        OPENAI_BASE_URL=server.base_url,
        OPENAI_API_KEY="test",
        OPENAI_MODEL="container-model",
        DT_ENDPOINT=receiver.url,
        OTEL_SERVICE_NAME="chat-api",
        OTEL_RESOURCE_ATTRIBUTES="k8s.namespace.name=ai,k8s.pod.name=chat-api-0",
        GENAI_OBSERVE_ENVIRONMENT="test",
        # Metrics only at shutdown: their arrival shows the graceful stop flushed.
        OTEL_METRIC_EXPORT_INTERVAL="600000",
        OTEL_BSP_SCHEDULE_DELAY="200",
        # gunicorn >= 25.1 puts a control socket under $XDG_RUNTIME_DIR (else $HOME).
        XDG_RUNTIME_DIR=str(tmp_path),
    )
    return env


def _command(server: str, port: int) -> list[str]:
    if server == "gunicorn":
        bind = f"127.0.0.1:{port}"
        return [WRAPPER, sys.executable, "-m", "gunicorn", "-w", "2", "-b", bind, "app:application"]
    return [WRAPPER, sys.executable, "app.py"]


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the app exited early with code {proc.returncode}")
        try:
            with _HTTP.open(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the app did not answer {url} within {timeout}s")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.mark.parametrize("server", ["wsgiref", "gunicorn"])
def test_container_app_is_instrumented_from_outside(
    server: str, tmp_path: Path, openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    if server == "gunicorn" and importlib.util.find_spec("gunicorn") is None:
        pytest.skip("gunicorn is not installed (the container image installs it)")
    port = _free_port()
    env = _env(openai_server, otlp_receiver, tmp_path)
    env.update(HOST="127.0.0.1", PORT=str(port))
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            _command(server, port),
            cwd=APP_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(proc, f"{base}/healthz", timeout=30)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; stderr:\n{stderr_path.read_text()}") from None
        request = urllib.request.Request(
            f"{base}/ask",
            data=json.dumps({"question": "What is OTLP?"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with _HTTP.open(request, timeout=30) as answer:
            reply = json.loads(answer.read())
        assert reply == {"answer": default_content("container-model"), "model": "container-model"}

        (span,) = otlp_receiver.wait_for_spans(1, timeout=20)
        assert span.name == "chat container-model"
        assert span.attributes["gen_ai.request.model"] == "container-model"
        assert span.attributes["gen_ai.completion.0.content"] == reply["answer"]
        resource = span.resource_attributes
        assert resource["service.name"] == "chat-api"
        assert resource["deployment.environment.name"] == "test"
        assert resource["k8s.namespace.name"] == "ai"
        assert resource["k8s.pod.name"] == "chat-api-0"

        # SIGTERM, as a container runtime sends it: the app exits normally and flushes on the way.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, stderr_path.read_text()
    finally:
        _stop(proc)

    assert [s.name for s in otlp_receiver.spans()] == ["chat container-model"]  # exported once
    durations = otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)
    assert sum(p.count or 0 for m in durations for p in m.data_points) == 1, otlp_receiver.summary()
    assert "genai_observe" not in stderr_path.read_text()  # no bootstrap complaint


# --- the deployment files: what the docs promise about them --------------------------------------


def test_dockerfile_runs_the_app_under_the_wrapper() -> None:
    text = (APP_DIR / "Dockerfile").read_text().replace("\\\n", " ")  # join continued lines
    instructions: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            kind, _, rest = line.strip().partition(" ")
            instructions.setdefault(kind, []).append(rest.strip())
    assert [json.loads(e) for e in instructions["ENTRYPOINT"]] == [["genai-observe-instrument"]]
    assert json.loads(instructions["CMD"][-1])[0] == "gunicorn"
    assert any("genai-observe" in run for run in instructions["RUN"])
    assert instructions["USER"][-1].isdigit()  # numeric, so Kubernetes can enforce runAsNonRoot


def test_kubernetes_manifest_keeps_the_token_in_a_secret() -> None:
    yaml = pytest.importorskip("yaml")
    docs = [d for d in yaml.safe_load_all((APP_DIR / "k8s.yaml").read_text()) if d]
    kinds = {d["kind"]: d for d in docs}
    assert {"Secret", "Deployment", "Service"} <= set(kinds)
    (container,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    token = env["DT_API_TOKEN"]
    assert "value" not in token
    ref = token["valueFrom"]["secretKeyRef"]
    assert ref["name"] == kinds["Secret"]["metadata"]["name"]
    assert ref["key"] in kinds["Secret"].get("stringData", kinds["Secret"].get("data", {}))
    # everything else is plain configuration in the environment
    assert {"DT_ENDPOINT", "OTEL_SERVICE_NAME"} <= set(env)


def test_collector_gateway_limits_memory_batches_retries_and_exports_otlp_http() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((APP_DIR / "collector.yaml").read_text())
    exporters = config["exporters"]
    (name,) = [n for n in exporters if n.split("/")[0] == "otlphttp"]
    exporter = exporters[name]
    assert exporter["endpoint"].endswith("/api/v2/otlp")
    assert exporter["headers"]["Authorization"].startswith("Api-Token ")
    assert exporter["retry_on_failure"]["enabled"] is True
    assert exporter["sending_queue"]["enabled"] is True
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs"}
    assert pipelines["metrics"]["receivers"] == ["otlp", "prometheus"]
    for signal_name, pipeline in pipelines.items():
        assert pipeline["processors"][0] == "memory_limiter", signal_name  # first, always
        assert any(p.split("/")[0] == "batch" for p in pipeline["processors"]), signal_name
        assert pipeline["exporters"] == [name]
        for processor in pipeline["processors"]:
            assert processor in config["processors"], processor
    # Dynatrace takes only DELTA: cumulative sums (e.g. scraped Prometheus metrics) are converted.
    assert "cumulativetodelta" in pipelines["metrics"]["processors"]


def test_collector_scrapes_nim_and_kong_keeping_names_and_bounds_the_delta_state() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((APP_DIR / "collector.yaml").read_text())
    prometheus = config["receivers"]["prometheus"]
    assert (
        prometheus["trim_metric_suffixes"] is False
    )  # request_success_total stays as the dashboards chart it
    jobs = {job["job_name"]: job for job in prometheus["config"]["scrape_configs"]}
    assert set(jobs) == {"nim", "kong"}
    assert jobs["nim"]["metrics_path"] == "/v1/metrics"
    assert jobs["nim"]["static_configs"][0]["targets"] == ["nim-llm.ai:8000"]
    assert jobs["kong"]["metrics_path"] == "/metrics"
    assert jobs["kong"]["static_configs"][0]["targets"] == ["kong-status.ai:8100"]
    for job in jobs.values():  # the timeout fits in the interval (Prometheus refuses it otherwise)
        assert int(job["scrape_timeout"].rstrip("s")) < int(job["scrape_interval"].rstrip("s"))
    # Scraped counters are cumulative: converted before the exporter, with series state bounded.
    assert config["processors"]["cumulativetodelta"]["max_staleness"]
    processors = config["service"]["pipelines"]["metrics"]["processors"]
    assert processors.index("cumulativetodelta") < processors.index("batch/metrics")


def test_model_servers_are_annotated_for_dynatraces_own_scrape() -> None:
    yaml = pytest.importorskip("yaml")
    docs = [d for d in yaml.safe_load_all((APP_DIR / "model-servers.yaml").read_text()) if d]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert set(deployments) == {"nim-llm", "kong"}
    expected = {"nim-llm": ("8000", "/v1/metrics"), "kong": ("8100", "/metrics")}
    for name, (port, path) in expected.items():
        template = deployments[name]["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["metrics.dynatrace.com/scrape"] == "true"  # strings: annotations are
        assert (annotations["metrics.dynatrace.com/port"], annotations["metrics.dynatrace.com/path"]) == (
            port,
            path,
        )
        (container,) = template["spec"]["containers"]
        assert int(port) in [p["containerPort"] for p in container["ports"]]
    # The Services are what the collector and GENAI_OBSERVE_PROMETHEUS_TARGETS name.
    assert services["nim-llm"]["spec"]["ports"][0]["port"] == 8000
    assert services["kong-status"]["spec"]["ports"][0]["port"] == 8100
    collector = (APP_DIR / "collector.yaml").read_text()
    k8s = (APP_DIR / "k8s.yaml").read_text()
    for host in ("nim-llm.ai:8000", "kong-status.ai:8100"):
        assert host in collector and host in k8s


@pytest.mark.parametrize("server", ["wsgiref", "gunicorn"])
def test_container_app_scrapes_kong_once_however_many_workers(
    server: str, tmp_path: Path, openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    """GENAI_OBSERVE_PROMETHEUS_TARGETS under the wrapper: the process that bootstrapped (gunicorn's
    master) scrapes; its forked workers do not, so each delta arrives once."""
    if server == "gunicorn" and importlib.util.find_spec("gunicorn") is None:
        pytest.skip("gunicorn is not installed (the container image installs it)")
    pytest.importorskip("prometheus_client")
    with PrometheusServer() as prom:
        prom.serve("/metrics", kong_exposition(requests={("openai", "gpt-4o"): 10}))
        port = _free_port()
        env = _env(openai_server, otlp_receiver, tmp_path)
        env.update(
            HOST="127.0.0.1",
            PORT=str(port),
            OTEL_METRIC_EXPORT_INTERVAL="300",
            GENAI_OBSERVE_PROMETHEUS_TARGETS=prom.url("/metrics"),
        )
        stderr_path = tmp_path / "stderr.txt"
        with stderr_path.open("wb") as stderr:
            proc = subprocess.Popen(
                _command(server, port),
                cwd=APP_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            try:
                _wait_ready(proc, f"http://127.0.0.1:{port}/healthz", timeout=30)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; stderr:\n{stderr_path.read_text()}") from None
            otlp_receiver.wait_for(lambda r: len(prom.scrapes()) >= 2, timeout=20, description="a baseline")
            prom.serve("/metrics", kong_exposition(requests={("openai", "gpt-4o"): 17}))
            seen = len(prom.scrapes())
            otlp_receiver.wait_for(
                lambda r: len(prom.scrapes()) >= seen + 2, timeout=20, description="the change scraped"
            )
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, stderr_path.read_text()
        finally:
            _stop(proc)
    views = otlp_receiver.metrics("kong_ai_llm_requests_total")
    assert sum(p.value or 0 for v in views for p in v.data_points) == 7.0, otlp_receiver.summary()
    assert "genai_observe" not in stderr_path.read_text()  # no warning: every scrape worked
