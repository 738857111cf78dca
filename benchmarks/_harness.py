"""Benchmark harness: the same call uninstrumented and instrumented, interleaved, in one process.

Export is real and counted: the instrumented runs use SDK providers built by ``genai_observe.init``
(batch span processor, periodic metric reader, OTLP/HTTP exporters) shipping to a local sink that
accepts everything. Timings are per call with ``time.perf_counter_ns``; medians, p99 and minimums
are reported, never asserted. Each call's CPU time on the calling thread (``time.thread_time_ns``)
is reported too: it leaves out time the thread spent waiting (for the GIL, or for the CPU while
other processes ran), so it is the figure least moved by other load; the wall-clock figures are
the ones that include the background threads' share of the GIL.
"""

from __future__ import annotations

import gc
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Scenario:
    """One benchmarked call, built the same way for the wall-clock harness and the instruction counter.

    ``setup`` builds the clients once and returns ``call(instrumented)``, which makes one call and
    returns what the SDK returns (for a stream: what the application iterates). ``instrumented``
    only picks the client where the two sides differ (anthropic's SDK tracing); whether our
    instrumentor is on is decided by the caller.
    """

    name: str
    instrumentation: str  # init()'s name for it: "openai", "anthropic", ...
    instrumentor: Callable[[], Any]
    setup: Callable[[], Callable[[bool], Any]]
    chunks: int = 0  # wire events per stream; 0 for a single call


def consume(result: Any) -> None:
    """Iterate a stream to its end (what an application reading every chunk does)."""
    for _ in result:
        pass


@dataclass
class Result:
    name: str
    base_ns: list[int]
    inst_ns: list[int]
    extra: dict[str, float]
    base_cpu_ns: list[int] = field(default_factory=list)  # calling thread's CPU time per call
    inst_cpu_ns: list[int] = field(default_factory=list)

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
            # The fastest call of each side: what the code costs when nothing else runs, so the
            # least disturbed by other load on the machine (medians shift with it).
            "added_min_us": round((min(self.inst_ns) - min(self.base_ns)) / 1000, 1),
            **self._cpu(),
            **{k: round(v, 2) for k, v in self.extra.items()},
        }

    def _cpu(self) -> dict[str, Any]:
        if not self.base_cpu_ns or not self.inst_cpu_ns:
            return {}
        base = statistics.median(self.base_cpu_ns) / 1000
        inst = statistics.median(self.inst_cpu_ns) / 1000
        return {
            "base_cpu_us": round(base, 1),
            "inst_cpu_us": round(inst, 1),
            "added_cpu_us": round(inst - base, 1),
            "cpu_ratio": round(inst / base, 3) if base else None,
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
    wall: dict[bool, list[int]] = {False: [], True: []}
    cpu: dict[bool, list[int]] = {False: [], True: []}
    gc.collect()
    done = 0
    while done < iterations:
        for on in (False, True):
            toggle(on)
            walls, cpus = wall[on], cpu[on]
            for _ in range(block):
                start_cpu = time.thread_time_ns()
                start = time.perf_counter_ns()
                call()
                walls.append(time.perf_counter_ns() - start)
                cpus.append(time.thread_time_ns() - start_cpu)
        done += block
    toggle(False)
    return Result(name, wall[False], wall[True], {}, cpu[False], cpu[True])


def instrument_toggle(instrumentor: Any, handle: Any) -> Callable[[bool], None]:
    """Turn ``instrumentor`` on (with the real providers of ``handle``) or off between blocks."""
    kwargs = {
        "tracer_provider": handle.tracer_provider,
        "meter_provider": handle.meter_provider,
        "logger_provider": handle.logger_provider,
        "capture": handle.settings.capture,
        "profile": handle.settings.profile,
    }

    def toggle(on: bool) -> None:
        if on and not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(**kwargs)
        elif not on and instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()

    return toggle


def streamed(
    name: str,
    open_stream: Callable[[], Iterable[Any]],
    toggle: Callable[[bool], None],
    *,
    chunks: int,
    iterations: int,
    warmup: int,
) -> Result:
    """Time whole streams (call + full consumption) and, separately, the time to the first chunk.

    ``open_stream`` makes the call and returns what the application iterates; ``chunks`` is the
    number of wire events per stream, so the per-chunk figure is the whole added cost (span start,
    end and export included) spread over them: an upper bound on the marginal per-chunk cost.
    """
    ttfc: dict[bool, list[int]] = {False: [], True: []}
    state = {"on": False}

    def call() -> None:
        start = time.perf_counter_ns()
        first = True
        for _ in open_stream():
            if first:
                ttfc[state["on"]].append(time.perf_counter_ns() - start)
                first = False

    def stream_toggle(on: bool) -> None:
        state["on"] = on
        toggle(on)

    warm = warmup // 4
    # Short blocks: a stream lasts milliseconds, so blocks of 50 would leave a burst of other load
    # on the machine to one side of the comparison.
    result = interleaved(
        name, call, stream_toggle, iterations=max(iterations // 4, 200), warmup=warm, block=10
    )
    base_ttfc = statistics.median(ttfc[False][warm:]) / 1000  # warm-up calls left out
    inst_ttfc = statistics.median(ttfc[True][warm:]) / 1000
    row = result.row()
    result.extra = {
        "chunks": chunks,
        "added_cpu_us_per_chunk": row["added_cpu_us"] / chunks,
        "added_us_per_chunk": row["added_us"] / chunks,
        "added_min_us_per_chunk": row["added_min_us"] / chunks,
        "base_ttfc_us": base_ttfc,
        "inst_ttfc_us": inst_ttfc,
        "added_ttfc_us": inst_ttfc - base_ttfc,
    }
    return result


def per_chunk_estimate(stream: Result, call: Result) -> Result:
    """Add an estimate of the marginal per-chunk cost: the stream's added cost less the added cost
    of the same provider's non-streamed call (span start, end and export), over the chunks."""
    stream_row, call_row = stream.row(), call.row()
    chunks = stream.extra["chunks"]
    stream.extra["est_marginal_us_per_chunk"] = (stream_row["added_us"] - call_row["added_us"]) / chunks
    stream.extra["est_marginal_cpu_us_per_chunk"] = (
        stream_row["added_cpu_us"] - call_row["added_cpu_us"]
    ) / chunks
    return stream


def run_scenarios(
    scenarios: Iterable[Scenario], toggle: Callable[[bool], None], *, iterations: int, warmup: int
) -> list[Result]:
    """Each scenario interleaved (or streamed), with ``toggle`` turning our instrumentor on and off."""
    state = {"on": False}

    def side_toggle(on: bool) -> None:
        state["on"] = on
        toggle(on)

    results: list[Result] = []
    for scenario in scenarios:
        call = scenario.setup()

        def once(call: Callable[[bool], Any] = call) -> Any:
            return call(state["on"])

        if scenario.chunks:
            results.append(
                streamed(
                    scenario.name,
                    once,
                    side_toggle,
                    chunks=scenario.chunks,
                    iterations=iterations,
                    warmup=warmup,
                )
            )
        else:
            results.append(
                interleaved(scenario.name, once, side_toggle, iterations=iterations, warmup=warmup)
            )
    return results
