"""RSS growth over many instrumented OpenAI chat calls, each run in a fresh interpreter.

The target is < 5 MB growth over 100,000 calls with content capture on. A run makes ``warmup``
calls (caches, pools and SDK internals reach their steady size), reads VmRSS, makes ``calls``
more (sampling VmRSS every tenth of them), flushes the exporters, collects garbage and reads VmRSS
again. A control run does the same with the instrumentor off (providers still exporting), so
growth of the SDK, httpx2 or the allocator itself is visible apart from ours.
tests/reliability/test_long_run.py asserts a looser bound (20 MB) on a mixed workload; this
reports the figure for the plain chat path.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent


def _vm(field: str) -> int:
    """A ``/proc/self/status`` field in kB (``VmRSS``, ``VmHWM``)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _child(calls: int, warmup: int, instrumented: bool) -> dict[str, Any]:
    import httpx2
    import openai

    import genai_observe

    from . import bench_openai
    from ._harness import OTLPSink

    sink = OTLPSink()
    handle = genai_observe.init(
        service_name="bench-memory",
        endpoint=sink.url,
        capture_content=True,
        instrumentations=["openai"] if instrumented else [],
        metric_export_interval_ms=1000,
    )
    client = openai.OpenAI(
        api_key="bench",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(bench_openai._handler)),
    )

    def call() -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=bench_openai.MESSAGES)

    for _ in range(warmup):
        call()
    handle.force_flush()
    gc.collect()
    before = _vm("VmRSS")
    samples = []  # every tenth of the run, unflushed: a leak climbs, a high-water mark levels off
    step = max(calls // 10, 1)
    for i in range(1, calls + 1):
        call()
        if i % step == 0:
            samples.append(round(_vm("VmRSS") / 1024, 1))
    handle.force_flush()
    gc.collect()
    after = _vm("VmRSS")
    row = {
        "case": f"memory.openai.chat{'' if instrumented else '.control'}",
        "instrumented": handle.instrumented,
        "calls": calls,
        "warmup_calls": warmup,
        "rss_before_mb": round(before / 1024, 2),
        "rss_after_mb": round(after / 1024, 2),
        "rss_growth_mb": round((after - before) / 1024, 2),
        "rss_peak_mb": round(_vm("VmHWM") / 1024, 2),
        "rss_samples_mb": samples,
        "export_stats": handle.stats(),
    }
    genai_observe.shutdown()
    sink.stop()
    return row


def measure(calls: int = 100_000, warmup: int = 2_000, control: bool = True) -> list[dict[str, Any]]:
    """One fresh interpreter per run, so the other suites' allocations are not counted."""
    rows = []
    for instrumented in (True, False) if control else (True,):
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.bench_memory",
            "--calls",
            str(calls),
            "--warmup",
            str(warmup),
        ]
        if not instrumented:
            cmd.append("--control")
        out = subprocess.run(cmd, cwd=_ROOT, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--control", action="store_true", help="instrumentor off (providers still on)")
    args = parser.parse_args(argv)
    print(json.dumps(_child(args.calls, args.warmup, not args.control)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
