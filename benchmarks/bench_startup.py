"""`import genai_observe` and `init()` cost, each measured in fresh interpreters (median of runs)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from typing import Any

_IMPORT = """
import time, sys
t = time.perf_counter(); import genai_observe; d = time.perf_counter() - t
sdks = ("openai", "anthropic", "boto3", "botocore", "ollama", "langchain_core")
bad = [m for m in sdks if m in sys.modules]
print(d, ",".join(bad))
"""
_INIT = """
import time
import genai_observe
t = time.perf_counter()
genai_observe.init(endpoint="http://127.0.0.1:9", shutdown_timeout=0.1)
d = time.perf_counter() - t
print(d, "")
"""
_INIT_WITH_SDKS = """
import time
import openai, ollama  # an app that already imported its SDKs: init() patches them now
import genai_observe
t = time.perf_counter()
genai_observe.init(endpoint="http://127.0.0.1:9", shutdown_timeout=0.1)
d = time.perf_counter() - t
print(d, "")
"""


# As installed from a wheel, with bytecode: PYTHONDONTWRITEBYTECODE (set on some machines) would
# make every run compile genai_observe's own modules from source, which no installed copy does.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _median(code: str, runs: int) -> tuple[float, str]:
    values, extra = [], ""
    for run in range(runs + 1):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_ENV
        ).stdout.split()
        if run == 0:
            continue  # warm-up: writes the bytecode, fills the OS file cache
        values.append(float(out[0]))
        extra = out[1] if len(out) > 1 else ""
    return statistics.median(values) * 1000, extra


def measure(runs: int = 7) -> list[dict[str, Any]]:
    import_ms, leaked = _median(_IMPORT, runs)
    init_ms, _ = _median(_INIT, runs)
    init_sdk_ms, _ = _median(_INIT_WITH_SDKS, runs)
    return [
        {
            "case": "import genai_observe",
            "median_ms": round(import_ms, 1),
            "provider_sdks_imported": leaked or "none",
        },
        {"case": "init() (SDKs not imported)", "median_ms": round(init_ms, 1)},
        {"case": "init() (openai, ollama imported)", "median_ms": round(init_sdk_ms, 1)},
    ]


if __name__ == "__main__":
    for row in measure():
        print(row)
