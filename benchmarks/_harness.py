"""Benchmark harness: the same call uninstrumented and instrumented, interleaved, in one process.

Export is real and counted: the instrumented runs use SDK providers built by ``genai_observe.init``
(batch span processor, periodic metric reader, OTLP/HTTP exporters) shipping to a local sink that
accepts everything. Timings are per call with ``time.perf_counter_ns``; medians and p99 are
reported, never asserted.
"""

from __future__ import annotations

import gc
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()


class OTLPSink:
    """An OTLP/HTTP endpoint on 127.0.0.1 that accepts and discards everything."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Result:
    name: str
    base_ns: list[int]
    inst_ns: list[int]
    extra: dict[str, float]

    @staticmethod
    def _pct(values: list[int], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000

    def row(self) -> dict[str, Any]:
        base = statistics.median(self.base_ns) / 1000
        inst = statistics.median(self.inst_ns) / 1000
        return {
            "case": self.name,
            "base_median_us": round(base, 1),
            "inst_median_us": round(inst, 1),
            "added_us": round(inst - base, 1),
            "ratio": round(inst / base, 3) if base else None,
            "base_p99_us": round(self._pct(self.base_ns, 0.99), 1),
            "inst_p99_us": round(self._pct(self.inst_ns, 0.99), 1),
            **{k: round(v, 2) for k, v in self.extra.items()},
        }


def interleaved(
    name: str,
    call: Callable[[], Any],
    toggle: Callable[[bool], None],
    *,
    iterations: int,
    warmup: int,
    block: int = 50,
) -> Result:
    """Alternate blocks of uninstrumented and instrumented calls; time each call."""
    for on in (False, True):
        toggle(on)
        for _ in range(warmup):
            call()
    base: list[int] = []
    inst: list[int] = []
    gc.collect()
    done = 0
    while done < iterations:
        for on, sink in ((False, base), (True, inst)):
            toggle(on)
            for _ in range(block):
                start = time.perf_counter_ns()
                call()
                sink.append(time.perf_counter_ns() - start)
        done += block
    toggle(False)
    return Result(name, base, inst, {})
