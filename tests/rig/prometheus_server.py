"""A Prometheus endpoint for tests: scripted exposition text per path, changed between scrapes.

``PrometheusServer`` listens on ``127.0.0.1`` (ephemeral port) with the standard library's
``ThreadingHTTPServer`` in a daemon thread. Each path answers what the test last set with
:meth:`PrometheusServer.serve` (a body, a content type, a status, a delay, gzip), and every
request is recorded. :func:`nim_exposition` and :func:`kong_exposition` write realistic text of
an NVIDIA NIM / vLLM server and of Kong's Prometheus plugin from plain numbers, so a test can say
"3 more requests" and assert the exact delta.

    with PrometheusServer() as server:
        server.serve("/v1/metrics", nim_exposition(success=5, ...))
        url = server.url("/v1/metrics")
"""

from __future__ import annotations

import gzip as gzip_module
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = [
    "OPENMETRICS",
    "TEXT_FORMAT",
    "Answer",
    "PrometheusServer",
    "Scrape",
    "kong_exposition",
    "nim_exposition",
]

TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass
class Answer:
    body: str = ""
    content_type: str = TEXT_FORMAT
    status: int = 200
    delay: float = 0.0  # seconds before answering (released at once when the server stops)
    gzip: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers (Location, ...)


@dataclass
class Scrape:
    path: str
    headers: dict[str, str] = field(default_factory=dict)  # keys lower-cased


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        rig = self.server.rig
        path = self.path.split("?", 1)[0]
        rig._record(Scrape(path, {k.lower(): v for k, v in self.headers.items()}))
        answer = rig.answer_for(path)
        if answer.delay and rig._stopping.wait(answer.delay):
            return
        body = answer.body.encode()
        headers = {"Content-Type": answer.content_type, **answer.headers}
        if answer.gzip and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip_module.compress(body)
            headers["Content-Encoding"] = "gzip"
        try:
            self.send_response(answer.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    rig: PrometheusServer


class PrometheusServer:
    """Scripted Prometheus targets on one port; an unknown path answers 404."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, Answer] = {}
        self._scrapes: list[Scrape] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> PrometheusServer:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.rig = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self._server = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, body: str = "", **kw: Any) -> None:
        """From now on, ``path`` answers ``body`` (and the :class:`Answer` options in ``kw``)."""
        with self._lock:
            self._answers[path] = Answer(body, **kw)

    def answer_for(self, path: str) -> Answer:
        with self._lock:
            return self._answers.get(path, Answer("not found", "text/plain", 404))

    def _record(self, scrape: Scrape) -> None:
        with self._lock:
            self._scrapes.append(scrape)

    def scrapes(self, path: str | None = None) -> list[Scrape]:
        with self._lock:
            return [s for s in self._scrapes if path is None or s.path == path]


# --- realistic exposition text ---------------------------------------------------------------

NIM_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)
NIM_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)
KONG_AI_LATENCY_BUCKETS = (25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000)
KONG_LATENCY_BUCKETS = (1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _histogram_lines(
    name: str,
    labels: str,
    values: Sequence[float],
    bounds: Sequence[float],
    le_format: Any = _le,
) -> list[str]:
    lines = []
    for bound in (*bounds, float("inf")):
        count = sum(1 for v in values if v <= bound)
        le = "+Inf" if bound == float("inf") else le_format(bound)
        sep = "," if labels else ""
        lines.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {float(count)}')
    braces = f"{{{labels}}}" if labels else ""
    lines.append(f"{name}_count{braces} {float(len(values))}")
    lines.append(f"{name}_sum{braces} {float(sum(values))}")
    return lines


def nim_exposition(
    *,
    model: str = "meta/llama-3.1-8b-instruct",
    prefix: str = "",
    success: Mapping[str, float] | None = None,
    generation_tokens: float = 0.0,
    prompt_tokens: float = 0.0,
    latencies: Sequence[float] = (),
    ttft: Sequence[float] = (),
    running: float = 0.0,
    cache_usage: float = 0.0,
    created: float | None = None,
) -> str:
    """The metrics of a NIM for LLMs (``prefix=""``) or vLLM (``prefix="vllm:"``) server, as
    prometheus-client writes them in the text format: ``_created`` as gauge families of their own
    (when ``created`` is given), ``finished_reason`` on the success counter, float values."""
    model_label = f'model_name="{model}"'
    lines: list[str] = []

    def created_family(name: str, label_sets: Sequence[str]) -> None:
        if created is None:
            return
        lines.append(f"# HELP {prefix}{name}_created {name} creation time")
        lines.append(f"# TYPE {prefix}{name}_created gauge")
        lines.extend(f"{prefix}{name}_created{{{labels}}} {created!r}" for labels in label_sets)

    lines += [
        "# HELP {p}num_requests_running Number of requests currently running on GPU.",
        "# TYPE {p}num_requests_running gauge",
        f"{{p}}num_requests_running{{{model_label}}} {float(running)}",
        "# HELP {p}gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.",
        "# TYPE {p}gpu_cache_usage_perc gauge",
        f"{{p}}gpu_cache_usage_perc{{{model_label}}} {float(cache_usage)}",
    ]
    lines = [line.replace("{p}", prefix) for line in lines]
    reasons = success if success is not None else {"stop": 0.0}
    lines.append(f"# HELP {prefix}request_success_total Count of successfully processed requests.")
    lines.append(f"# TYPE {prefix}request_success_total counter")
    success_labels = [f'finished_reason="{r}",{model_label}' for r in reasons]
    lines.extend(
        f"{prefix}request_success_total{{{labels}}} {float(n)}"
        for labels, n in zip(success_labels, reasons.values(), strict=True)
    )
    created_family("request_success", success_labels)
    for name, value, help_text in (
        ("generation_tokens", generation_tokens, "Number of generation tokens processed."),
        ("prompt_tokens", prompt_tokens, "Number of prefill tokens processed."),
    ):
        lines.append(f"# HELP {prefix}{name}_total {help_text}")
        lines.append(f"# TYPE {prefix}{name}_total counter")
        lines.append(f"{prefix}{name}_total{{{model_label}}} {float(value)}")
        created_family(name, [model_label])
    for name, values, bounds, help_text in (
        ("e2e_request_latency_seconds", latencies, NIM_LATENCY_BUCKETS, "End to end request latency."),
        ("time_to_first_token_seconds", ttft, NIM_TTFT_BUCKETS, "Time to first token."),
    ):
        lines.append(f"# HELP {prefix}{name} {help_text}")
        lines.append(f"# TYPE {prefix}{name} histogram")
        lines.extend(_histogram_lines(prefix + name, model_label, values, bounds))
        created_family(name, [model_label])
    return "\n".join(lines) + "\n"


def _kong_le(bound: float) -> str:
    # Kong's plugin writes zero-padded bucket bounds: le="00025.0", le="+Inf".
    return f"{float(bound):07.1f}"


def kong_exposition(
    *,
    requests: Mapping[tuple[str, str], float] | None = None,
    tokens: Mapping[tuple[str, str], float] | None = None,
    provider_latency_ms: Mapping[tuple[str, str], Sequence[float]] | None = None,
    kong_latency_ms: Mapping[tuple[str, str], Sequence[float]] | None = None,
    connections_active: float = 1.0,
) -> str:
    """Kong's Prometheus plugin with ``ai_metrics`` on: ``requests`` by (provider, model),
    ``tokens`` by (model, token_type), latencies by (provider, model) and (service, route).
    Like Kong, no ``_created`` samples and several empty labels."""
    ai = (
        'ai_provider="{}",ai_model="{}",cache_status="",vector_db="",embeddings_provider="",'
        'embeddings_model="",workspace="default"'
    )
    lines = [
        "# HELP kong_nginx_connections_total Number of connections by subsystem",
        "# TYPE kong_nginx_connections_total gauge",
        'kong_nginx_connections_total{node_id="n1",subsystem="http",state="active"} '
        f"{float(connections_active)}",
        "# HELP kong_ai_llm_requests_total AI requests total per ai_provider in Kong",
        "# TYPE kong_ai_llm_requests_total counter",
    ]
    for (provider, model), n in (requests or {}).items():
        lines.append(f"kong_ai_llm_requests_total{{{ai.format(provider, model)}}} {n}")
    lines += [
        "# HELP kong_ai_llm_tokens_total AI tokens total per ai_provider/cache in Kong",
        "# TYPE kong_ai_llm_tokens_total counter",
    ]
    for (model, token_type), n in (tokens or {}).items():
        labels = ai.format("openai", model) + f',token_type="{token_type}"'
        lines.append(f"kong_ai_llm_tokens_total{{{labels}}} {n}")
    lines += [
        "# HELP kong_ai_llm_provider_latency_ms LLM response Latency per ai_provider in Kong",
        "# TYPE kong_ai_llm_provider_latency_ms histogram",
    ]
    for (provider, model), values in (provider_latency_ms or {}).items():
        labels = ai.format(provider, model)
        lines += _histogram_lines(
            "kong_ai_llm_provider_latency_ms", labels, values, KONG_AI_LATENCY_BUCKETS, _kong_le
        )
    lines += [
        "# HELP kong_kong_latency_ms Latency added by Kong and its plugins per service/route",
        "# TYPE kong_kong_latency_ms histogram",
    ]
    for (service, route), values in (kong_latency_ms or {}).items():
        labels = f'service="{service}",route="{route}",workspace="default"'
        lines += _histogram_lines("kong_kong_latency_ms", labels, values, KONG_LATENCY_BUCKETS, _kong_le)
    return "\n".join(lines) + "\n"
