"""GenAIInstrumentor: lazy patching and its locking."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import pytest

from genai_observe.instrumentation._kit.base import GenAIInstrumentor


def test_patch_importing_another_hooked_module_does_not_deadlock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "genai_fake_sdk_a.py").write_text("VALUE = 1\n")
    (tmp_path / "genai_fake_sdk_b.py").write_text("VALUE = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    patched: list[str] = []

    class B(GenAIInstrumentor):
        name: ClassVar[str] = "fake_b"
        module: ClassVar[str] = "genai_fake_sdk_b"

        def _patch(self, module: ModuleType) -> None:
            patched.append("b")

    class A(GenAIInstrumentor):
        name: ClassVar[str] = "fake_a"
        module: ClassVar[str] = "genai_fake_sdk_a"

        def _patch(self, module: ModuleType) -> None:
            import genai_fake_sdk_b  # noqa: F401 - fires B's hook while A's patch runs

            patched.append("a")

    B().instrument(skip_dep_check=True)
    A().instrument(skip_dep_check=True)
    worker = threading.Thread(target=lambda: __import__("genai_fake_sdk_a"), daemon=True)
    worker.start()
    worker.join(timeout=10)
    try:
        assert not worker.is_alive(), "deadlock: a hook waited on a lock its caller held"
        assert sorted(patched) == ["a", "b"]
    finally:
        A().uninstrument()
        B().uninstrument()
        for name in ("genai_fake_sdk_a", "genai_fake_sdk_b"):
            sys.modules.pop(name, None)


def test_first_metric_point_during_interpreter_exit_does_not_hang(tmp_path: Path) -> None:
    script = tmp_path / "exit.py"
    script.write_text(
        textwrap.dedent("""
        import genai_observe
        from genai_observe._core.record import LLMCall
        from genai_observe._core.recorder import Recorder
        from genai_observe._core.streams import SyncStreamProxy

        genai_observe.init(endpoint="http://127.0.0.1:9", metrics=False, traces=False, logs=False)
        invocation = Recorder().start(LLMCall(request_model="m", stream=True))
        KEPT = SyncStreamProxy(iter([1, 2]), invocation)  # never read: ends when collected at exit
        print("done")
    """)
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
