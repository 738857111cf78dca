"""Run the benchmark suite: `python -m benchmarks.run [--quick] [--content off] [--profile latest]`."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Any

import genai_observe

from ._harness import OTLPSink


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--content", choices=["on", "off"], default="on")
    parser.add_argument("--profile", choices=["dynatrace", "latest"], default="dynatrace")
    parser.add_argument("--only", default="", help="comma-separated suites: openai")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = parser.parse_args(argv)
    iterations, warmup = (400, 100) if args.quick else (3000, 500)

    sink = OTLPSink()
    handle = genai_observe.init(
        service_name="bench",
        endpoint=sink.url,
        capture_content=args.content == "on",
        profile=args.profile,
        instrumentations=[],
        metric_export_interval_ms=1000,
    )
    rows: list[dict[str, Any]] = []
    suites = [s for s in args.only.split(",") if s and s not in ("startup", "backend")]
    if not args.only:
        suites = ["openai"]
    try:
        for suite in suites:
            module = __import__(f"benchmarks.bench_{suite}", fromlist=["run"])
            for result in module.run(handle, iterations, warmup):
                rows.append({"content": args.content, "profile": args.profile, **result.row()})
    finally:
        genai_observe.shutdown()
        sink.stop()
    if not args.only or "startup" in args.only:
        from .bench_startup import measure as startup

        extras = startup(3 if args.quick else 7)
    else:
        extras = []
    if not args.only or "backend" in args.only:
        from .bench_backend import measure as backend

        extras += backend(300 if args.quick else 2000)
    if args.json:
        rows += extras
        print(json.dumps(rows, indent=1))
    else:
        print(
            f"# {platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
            f"{time.strftime('%Y-%m-%d')}; content={args.content} profile={args.profile}"
        )
        keys = sorted(
            {k for r in rows for k in r}, key=lambda k: list(rows[0]).index(k) if k in rows[0] else 99
        )
        print(" | ".join(keys))
        for r in rows:
            print(" | ".join(str(r.get(k, "")) for k in keys))
        for extra in extras:
            print(extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
