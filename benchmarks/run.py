"""Run the benchmark suite (docs/performance.md).

`python -m benchmarks.run [--quick] [--content on|off] [--profile dynatrace|latest] [--only SUITES] [--json]`
`python -m benchmarks.run --instructions [--only SCENARIOS_OR_SUITES] [--calls N,M] [--stream-calls N,M]`
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


def _pair(text: str, parser: argparse.ArgumentParser) -> tuple[int, int]:
    try:
        n, m = (int(v) for v in text.split(","))
    except ValueError:
        parser.error(f"expected N,M (two integers), got {text!r}")
    if not 0 <= n < m:
        parser.error(f"expected 0 <= N < M, got {text!r}")
    return n, m


def _instructions(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The instruction-count mode: one row per scenario (benchmarks/_instructions.py)."""
    import shutil

    from . import _instructions as counted

    if shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind (apt-get install valgrind)")
    only = [s for s in args.only.split(",") if s]
    names = [n for n in counted.SCENARIOS if not only or n in only or n.split(".", 1)[0] in only]
    unknown = [s for s in only if s not in counted.SCENARIOS and s not in counted.SUITES]
    if unknown:
        parser.error(f"unknown scenario(s) or suite(s) for --instructions: {', '.join(unknown)}")
    rows = counted.measure(
        names,
        _pair(args.calls, parser),
        _pair(args.stream_calls, parser),
        jobs=args.jobs,
        progress=lambda line: print(line, file=sys.stderr),
    )
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(
            f"# instructions per call (valgrind --tool=callgrind, every thread), "
            f"{platform.python_implementation()} {platform.python_version()}, {time.strftime('%Y-%m-%d')}; "
            "content on, profile dynatrace"
        )
        print("\n".join(_table(rows)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--content", choices=["on", "off"], default="on")
    parser.add_argument("--profile", choices=["dynatrace", "latest"], default="dynatrace")
    parser.add_argument("--only", default="", help=f"comma-separated suites: {','.join(SUITES + EXTRAS)}")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per call under valgrind --tool=callgrind: bare, ours and the SDK floor",
    )
    parser.add_argument("--calls", default="10,60", help="--instructions: N,M calls per single-call child")
    parser.add_argument("--stream-calls", default="2,12", help="--instructions: N,M calls per stream child")
    parser.add_argument("--jobs", type=int, default=2, help="--instructions: children run at once")
    args = parser.parse_args(argv)
    if args.instructions:
        return _instructions(args, parser)
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
