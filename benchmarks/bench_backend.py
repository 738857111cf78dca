"""Call latency of an instrumented OpenAI chat call with a healthy, a dead and a hanging backend.

Export runs on background threads, so a broken backend should not change the app's latency;
this measures it (issue 7). Each backend state gets its own init(); calls are timed the same way.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import openai

import genai_observe

from . import bench_openai
from ._harness import OTLPSink


class _Hang(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        time.sleep(30)


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def measure(iterations: int) -> list[dict[str, Any]]:
    client = openai.OpenAI(
        api_key="bench",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(bench_openai._handler)),
    )
    sink = OTLPSink()
    hang = ThreadingHTTPServer(("127.0.0.1", 0), _Hang)
    hang.daemon_threads = True
    threading.Thread(target=hang.serve_forever, daemon=True).start()
    backends = {
        "healthy": sink.url,
        "refused": _dead_url(),
        "hanging": f"http://127.0.0.1:{hang.server_address[1]}",
    }
    rows = []
    try:
        for name, url in backends.items():
            genai_observe.init(
                endpoint=url, export_timeout=2, shutdown_timeout=1, metric_export_interval_ms=500
            )
            for _ in range(200):
                client.chat.completions.create(model="gpt-4o-mini", messages=bench_openai.MESSAGES)
            times = []
            for _ in range(iterations):
                start = time.perf_counter_ns()
                client.chat.completions.create(model="gpt-4o-mini", messages=bench_openai.MESSAGES)
                times.append(time.perf_counter_ns() - start)
            began = time.perf_counter()
            genai_observe.shutdown()
            times.sort()
            rows.append(
                {
                    "backend": name,
                    "median_us": round(statistics.median(times) / 1000, 1),
                    "p99_us": round(times[int(0.99 * len(times))] / 1000, 1),
                    "max_ms": round(times[-1] / 1e6, 2),
                    "shutdown_s": round(time.perf_counter() - began, 2),
                }
            )
    finally:
        sink.stop()
        hang.shutdown()
    return rows


if __name__ == "__main__":
    for row in measure(2000):
        print(row)
