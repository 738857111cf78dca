"""Run the benchmark suite (docs/performance.md).

`python -m benchmarks.run [--quick] [--content on|off] [--profile dynatrace|latest] [--only SUITES] [--json]`
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

import genai_observe

from ._harness import OTLPSink

SUITES = ("openai", "anthropic", "bedrock", "ollama", "langchain")
"""In-process call suites (benchmarks/bench_<name>.py), run against one init()."""
EXTRAS = ("startup", "backend", "memory", "sdk")
"""Suites that measure on their own (fresh interpreters or their own init())."""


def _table(rows: list[dict[str, Any]]) -> list[str]:
    """A pipe table; columns in first-seen order, so the timing columns always lead."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    return [" | ".join(keys)] + [" | ".join(str(r.get(k, "")) for k in keys) for r in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--content", choices=["on", "off"], default="on")
    parser.add_argument("--profile", choices=["dynatrace", "latest"], default="dynatrace")
    parser.add_argument("--only", default="", help=f"comma-separated suites: {','.join(SUITES + EXTRAS)}")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = parser.parse_args(argv)
    iterations, warmup = (400, 100) if args.quick else (3000, 500)
    only = [s for s in args.only.split(",") if s]
    unknown = sorted(set(only) - set(SUITES + EXTRAS))
    if unknown:
        parser.error(f"unknown suite(s): {', '.join(unknown)}")
    selected = only or list(SUITES + EXTRAS)
    suites = [s for s in SUITES if s in selected]

    load_start = os.getloadavg()[0]  # other work on the machine shows in every figure: record it
    rows: list[dict[str, Any]] = []
    if suites:
        sink = OTLPSink()
        handle = genai_observe.init(
            service_name="bench",
            endpoint=sink.url,
            capture_content=args.content == "on",
            profile=args.profile,
            instrumentations=[],
            metric_export_interval_ms=1000,
        )
        try:
            for suite in suites:
                module = __import__(f"benchmarks.bench_{suite}", fromlist=["run"])
                for result in module.run(handle, iterations, warmup):
                    rows.append({"content": args.content, "profile": args.profile, **result.row()})
            handle.force_flush()
            # Spans dropped on a full export queue were never encoded or sent: say so, since the
            # instrumented timings then undercount the export cost.
            export = {"case": "export during the suites", **handle.stats()}
        finally:
            genai_observe.shutdown()
            sink.stop()
    extras: list[dict[str, Any]] = [export] if suites else []
    if "startup" in selected:
        from .bench_startup import measure as startup

        extras += startup(3 if args.quick else 7)
    if "backend" in selected:
        from .bench_backend import measure as backend

        extras += backend(300 if args.quick else 2000)
    if "sdk" in selected:
        from .bench_sdk import measure as sdk

        extras += sdk()
    if "memory" in selected:
        from .bench_memory import measure as memory

        extras += memory(10_000 if args.quick else 100_000)
    if args.json:
        print(json.dumps(rows + extras, indent=1))
    else:
        print(
            f"# {platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
            f"{time.strftime('%Y-%m-%d')}; content={args.content} profile={args.profile}; "
            f"{os.cpu_count()} CPUs, 1-min load average {load_start:.2f} at start, "
            f"{os.getloadavg()[0]:.2f} at end"
        )
        if rows:
            print("\n".join(_table(rows)))
        for extra in extras:
            print(extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
