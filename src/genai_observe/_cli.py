"""``genai-observe-instrument``: run a command with GenAI telemetry, without changing its code.

The options become environment variables (the same ones ``init()`` reads), this package's
``sitecustomize`` folder is put first on PYTHONPATH, and the command is exec'd: it keeps this
process's pid, signals, exit code, stdin/stdout and argv. Any Python interpreter the command
starts (gunicorn, uvicorn, python -m ...) bootstraps before user code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence

from . import _autoinstrument
from ._config import (
    ENV_CAPTURE,
    ENV_COMPRESSION,
    ENV_DISABLED,
    ENV_DISABLED_INSTRUMENTATIONS,
    ENV_DT_API_TOKEN,
    ENV_ENVIRONMENT,
    ENV_GENAI_ENDPOINT,
    ENV_HEADERS,
    ENV_INSTRUMENTATIONS,
    ENV_MAX_CONTENT_LENGTH,
    ENV_METRIC_INTERVAL,
    ENV_PROFILE,
    ENV_PROMETHEUS_TARGETS,
    ENV_RESOURCE_ATTRIBUTES,
    ENV_SERVICE_NAME,
    ENV_SERVICE_VERSION,
    ENV_SHUTDOWN_TIMEOUT,
    ENV_SIGNAL_ON,
    ENV_TIMEOUT,
)
from ._version import __version__

# option -> environment variable it sets
_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--service-name", ENV_SERVICE_NAME, "service.name of the telemetry"),
    ("--service-version", ENV_SERVICE_VERSION, "service.version"),
    ("--deployment-environment", ENV_ENVIRONMENT, "deployment.environment.name"),
    ("--endpoint", ENV_GENAI_ENDPOINT, "Dynatrace tenant/ActiveGate/OneAgent or collector URL"),
    (
        "--api-token",
        ENV_DT_API_TOKEN,
        "Dynatrace API token (prefer the DT_API_TOKEN variable: argv is visible to ps)",
    ),
    ("--capture-content", ENV_CAPTURE, "true/false or NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT"),
    ("--profile", ENV_PROFILE, "semantic conventions: dynatrace (default) or latest"),
    (
        "--instrumentations",
        ENV_INSTRUMENTATIONS,
        "comma-separated: openai,anthropic,bedrock,ollama,langchain,openai_agents",
    ),
    ("--disabled-instrumentations", ENV_DISABLED_INSTRUMENTATIONS, "comma-separated names to leave alone"),
    ("--resource-attributes", ENV_RESOURCE_ATTRIBUTES, "extra resource attributes, k1=v1,k2=v2"),
    (
        "--headers",
        ENV_HEADERS,
        "extra export headers, k1=v1,k2=v2 (prefer the variable for secrets: argv is visible to ps)",
    ),
    ("--compression", ENV_COMPRESSION, "gzip, deflate or none"),
    ("--export-timeout", ENV_TIMEOUT, "time budget of one export, in milliseconds"),
    ("--metric-export-interval", ENV_METRIC_INTERVAL, "metric export interval, in milliseconds"),
    ("--shutdown-timeout", ENV_SHUTDOWN_TIMEOUT, "longest wait at exit for the final flush, in seconds"),
    ("--max-content-length", ENV_MAX_CONTENT_LENGTH, "longest captured text value, in characters"),
    ("--traces", ENV_SIGNAL_ON["traces"], "export traces: true/false"),
    ("--metrics", ENV_SIGNAL_ON["metrics"], "export metrics: true/false"),
    ("--logs", ENV_SIGNAL_ON["logs"], "export log events: true/false"),
    (
        "--prometheus-targets",
        ENV_PROMETHEUS_TARGETS,
        "comma-separated Prometheus URLs (NIM, vLLM, Kong) to scrape and send as deltas",
    ),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genai-observe-instrument",
        description="Run COMMAND with OpenTelemetry GenAI telemetry (genai-observe), no code changes.",
        epilog="Every option is also an environment variable (named in brackets); an option given here "
        "overrides it. See docs/zero-code.md and docs/configuration.md.",
        allow_abbrev=False,
    )
    for flag, env, text in _OPTIONS:
        parser.add_argument(flag, metavar="VALUE", help=f"{text} [{env}]")
    parser.add_argument(
        "--disabled", action="store_true", help=f"run the command uninstrumented [{ENV_DISABLED}]"
    )
    parser.add_argument("--version", action="version", version=f"genai-observe {__version__}")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, e.g. python app.py")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        parser.error("a command to run is required, e.g. genai-observe-instrument python app.py")
    env = os.environ
    for flag, name, _ in _OPTIONS:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            if name == ENV_RESOURCE_ATTRIBUTES and env.get(name):
                value = f"{env[name]},{value}"
            env[name] = value
    if args.disabled:
        env[ENV_DISABLED] = "true"
        return _exec(command)  # nothing of ours in the child at all
    site_dir = os.path.dirname(os.path.abspath(_autoinstrument.__file__))
    existing = env.get("PYTHONPATH")
    parts = [site_dir] + [p for p in (existing or "").split(os.pathsep) if p and p != site_dir]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return _exec(command)


def _exec(command: list[str]) -> int:
    executable = shutil.which(command[0]) or command[0]
    try:
        os.execv(executable, command)
    except OSError as exc:
        sys.stderr.write(f"genai-observe-instrument: cannot run {command[0]!r}: {exc.strerror or exc}\n")
        return 127
    return 0  # pragma: no cover - exec does not return


if __name__ == "__main__":
    sys.exit(main())
