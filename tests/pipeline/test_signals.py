"""Telemetry survives a SIGTERM/SIGINT-driven exit, and the exit looks exactly as it would without us.

Every test runs real child processes (plain scripts, uvicorn, gunicorn, hypercorn, multiprocessing
workers) against the fake OpenAI server and the OTLP receiver, sends a signal, and compares the exit
status with the same run under ``GENAI_OBSERVE_DISABLED=true``. Spans and metrics are exported only
by the final flush (long batch delay and export interval), so their arrival proves it ran.
"""

from __future__ import annotations

import importlib.util
import os
import selectors
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from genai_observe._core import semconv as sc
from tests.examples.test_container_example import _HTTP, _free_port, _stop, _wait_ready
from tests.rig.openai_server import OpenAIMockServer
from tests.rig.otlp_receiver import OTLPReceiver
from tests.zerocode.test_cli import WRAPPER, _env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# Only the final flush exports: nothing leaves on a timer during the test. A generous flush
# deadline: a machine busy with other work must not make a flush miss it.
_FLUSH_ONLY = {
    "OTEL_BSP_SCHEDULE_DELAY": "600000",
    "OTEL_METRIC_EXPORT_INTERVAL": "600000",
    "GENAI_OBSERVE_SHUTDOWN_TIMEOUT": "30",
}

_CALL = """
import openai
_client = None


def ask(model="sig-model"):
    global _client
    _client = _client or openai.OpenAI(max_retries=0)
    reply = _client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    return reply.choices[0].message.content
"""

# A script that does nothing about signals: APP_INIT=code calls init() itself, APP_HANDLER puts
# the app's own SIGTERM handler in before or after init().
_SCRIPT = """
import os, signal, sys, time
if os.environ.get("APP_HANDLER") == "before":
    signal.signal(signal.SIGTERM, lambda *_: (print("app handler", flush=True), sys.exit(3)))
if os.environ.get("APP_INIT") == "code":
    import genai_observe
    genai_observe.init()
if os.environ.get("APP_HANDLER") == "after":
    signal.signal(signal.SIGTERM, lambda *_: (print("app handler", flush=True), sys.exit(3)))
from callmod import ask
ask()
if os.environ.get("APP_RAISE") == "KeyboardInterrupt":
    raise KeyboardInterrupt
print("ready", flush=True)
while True:
    time.sleep(60)
"""

# One module, served by every server: ASGI (FastAPI) as `api`, WSGI as `application`.
_SERVED_APP = """
import json, os
if os.environ.get("APP_INIT") == "code":
    import genai_observe
    genai_observe.init()
from callmod import ask


def application(environ, start_response):
    body = json.dumps({"answer": ask()} if environ["PATH_INFO"] == "/ask" else {"ok": True}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


try:
    from fastapi import FastAPI
except ImportError:
    pass
else:
    api = FastAPI()

    @api.get("/healthz")
    def healthz():
        return {"ok": True}

    @api.get("/ask")
    def ask_endpoint():
        return {"answer": ask()}
"""

_SRC = str(Path(__file__).resolve().parents[2] / "src")

# Exit statuses seen under GENAI_OBSERVE_DISABLED=true, per scenario (computed once).
_UNINSTRUMENTED: dict[tuple[str, ...], int] = {}


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "callmod.py").write_text(textwrap.dedent(_CALL))
    (tmp_path / "script.py").write_text(textwrap.dedent(_SCRIPT))
    (tmp_path / "sigapp.py").write_text(textwrap.dedent(_SERVED_APP))
    return tmp_path


def _child_env(
    server: OpenAIMockServer, receiver: OTLPReceiver, app_dir: Path, launch: str, **extra: str
) -> dict[str, str]:
    env = _env(server, DT_ENDPOINT=receiver.url, **_FLUSH_ONLY, **extra)
    env.update(
        # The app's folder, and these sources ahead of any installed copy of genai-observe.
        PYTHONPATH=os.pathsep.join([str(app_dir), _SRC]),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        XDG_RUNTIME_DIR=str(app_dir),  # gunicorn >= 25.1 puts a control socket there
    )
    if launch in ("code", "disabled"):
        env["APP_INIT"] = "code"  # init() in the app's own code
    if launch == "disabled":
        env["GENAI_OBSERVE_DISABLED"] = "true"
    return env


def _command(launch: str, command: list[str]) -> list[str]:
    return [WRAPPER, *command] if launch == "wrapper" else command


def _wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float) -> list[str]:
    """Read the child's stdout until a line equal to ``text``; the lines read so far."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line.rstrip("\n"))
                if lines[-1] == text:
                    return lines
    raise AssertionError(f"no {text!r} line within {timeout}s (exit code {proc.poll()}): {lines}")


def _run_script(env: dict[str, str], app_dir: Path, launch: str, sig: int | None) -> tuple[int, str]:
    """Start script.py, wait for "ready", send ``sig``; exit status and stdout+stderr."""
    proc = subprocess.Popen(
        _command(launch, [sys.executable, "script.py"]),
        cwd=app_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        if sig is not None:
            _wait_for_line(proc, "ready", timeout=60)
            proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        _stop(proc)
    return proc.returncode, out


def _assert_flushed(receiver: OTLPReceiver, spans: int = 1) -> None:
    # Only ours: recent FastAPI releases record spans of their own into the global provider.
    names = [s.name for s in receiver.spans() if s.name.startswith("chat ")]
    assert names == ["chat sig-model"] * spans, receiver.summary()
    durations = receiver.metrics(sc.METRIC_OPERATION_DURATION)
    assert sum(p.count or 0 for m in durations for p in m.data_points) == spans, receiver.summary()


# --- plain scripts -----------------------------------------------------------------------------


@pytest.mark.parametrize("launch", ["wrapper", "code"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_script_that_ignores_signals_flushes_and_still_dies_from_the_signal(
    launch: str, sig: int, app_dir: Path, openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    key = ("script", str(sig))
    if key not in _UNINSTRUMENTED:
        env = _child_env(openai_server, otlp_receiver, app_dir, "disabled")
        _UNINSTRUMENTED[key] = _run_script(env, app_dir, "disabled", sig)[0]
        assert otlp_receiver.requests == []
    assert _UNINSTRUMENTED[key] == -sig  # SIGINT: KeyboardInterrupt, then Python re-raises SIGINT
    env = _child_env(openai_server, otlp_receiver, app_dir, launch)
    began = time.monotonic()
    code, out = _run_script(env, app_dir, launch, sig)
    assert code == -sig, out  # still killed by the signal, as its parent sees it
    _assert_flushed(otlp_receiver)
    assert time.monotonic() - began < 30


@pytest.mark.parametrize(("launch", "when"), [("code", "before"), ("code", "after"), ("wrapper", "after")])
def test_the_apps_own_handler_runs_unchanged_and_its_exit_flushes(
    launch: str, when: str, app_dir: Path, openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    env = _child_env(openai_server, otlp_receiver, app_dir, launch, APP_HANDLER=when)
    code, out = _run_script(env, app_dir, launch, signal.SIGTERM)
    assert code == 3, out
    assert out.splitlines()[-1] == "app handler"
    _assert_flushed(otlp_receiver)


def test_keyboard_interrupt_exit_flushes(
    app_dir: Path, openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    env = _child_env(openai_server, otlp_receiver, app_dir, "disabled", APP_RAISE="KeyboardInterrupt")
    expected, _ = _run_script(env, app_dir, "disabled", None)
    env = _child_env(openai_server, otlp_receiver, app_dir, "wrapper", APP_RAISE="KeyboardInterrupt")
    code, out = _run_script(env, app_dir, "wrapper", None)
    assert code == expected, out
    assert "KeyboardInterrupt" in out
    _assert_flushed(otlp_receiver)


_HANDLER_CHECKS = """
import signal, sys
import genai_observe
assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
genai_observe.init(endpoint=sys.argv[1])
# The stand-in is invisible: SIG_DFL is what the app reads, sets and gets back.
assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, signal.getsignal(signal.SIGTERM)
assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Python's own, left alone
mine = lambda *_: None
assert signal.signal(signal.SIGTERM, mine) is signal.SIG_DFL
assert signal.signal(signal.SIGTERM, signal.SIG_DFL) is mine
assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
signal.signal(signal.SIGTERM, signal.SIG_IGN)
assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # an ignored signal stays ignored
signal.signal(signal.SIGTERM, signal.SIG_DFL)
genai_observe.shutdown()
import _signal
assert _signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the real default, back
import genai_observe._pipeline.signals as ours
assert signal.signal is ours._original_signal and signal.getsignal is ours._original_getsignal
print("ok")
"""


def test_the_stand_in_handler_is_invisible_and_removed_at_shutdown(otlp_receiver: OTLPReceiver) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _HANDLER_CHECKS, otlp_receiver.url],
        env={**os.environ, "PYTHONPATH": _SRC},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr


_MULTIPROCESSING_TERMINATE = """
import multiprocessing, os, sys
import genai_observe

if os.environ.get("APP_INIT") == "code":
    genai_observe.init()  # at the top: spawn-started children run it too


def work(ready, method):
    with genai_observe.llm_call(provider="openai", model=f"terminated-{method}") as call:
        call.set_response(content="x")
    ready.set()
    multiprocessing.Event().wait()  # until terminated


def pool_work(n):
    with genai_observe.llm_call(provider="openai", model=f"pool-{n}") as call:
        call.set_response(content="x")
    return n


if __name__ == "__main__":
    for method in ("fork", "spawn"):
        context = multiprocessing.get_context(method)
        ready = context.Event()
        process = context.Process(target=work, args=(ready, method))
        process.start()
        assert ready.wait(120)
        process.terminate()  # SIGTERM
        process.join(120)
        print(method, process.exitcode)
    # Leaving the block terminates the workers (SIGTERM), idle or on their way out.
    with multiprocessing.get_context("fork").Pool(2) as pool:
        print("pool", pool.map(pool_work, range(4)))
"""


@pytest.mark.parametrize("launch", ["wrapper", "code"])
def test_multiprocessing_worker_terminated_flushes_and_exits_by_sigterm(
    launch: str, app_dir: Path, openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    """``Process.terminate()`` sends SIGTERM: a fork-started child inherits the stand-in handler, a
    spawn-started one sets up its own; either flushes and still ends by SIGTERM. A ``Pool`` left
    by its ``with`` block terminates its workers, some of them already flushing on their way out
    (the stand-in then waits for that flush)."""
    (app_dir / "mp.py").write_text(textwrap.dedent(_MULTIPROCESSING_TERMINATE))
    env = _child_env(openai_server, otlp_receiver, app_dir, launch)
    done = subprocess.run(
        _command(launch, [sys.executable, "mp.py"]),
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["fork -15", "spawn -15", "pool [0, 1, 2, 3]"], done.stderr
    names = sorted(s.name.removeprefix("chat ") for s in otlp_receiver.spans())
    expected = ["pool-0", "pool-1", "pool-2", "pool-3", "terminated-fork", "terminated-spawn"]
    assert names == expected, otlp_receiver.summary()
    durations = otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)
    assert sum(p.count or 0 for m in durations for p in m.data_points) == 6


# --- servers -----------------------------------------------------------------------------------


def _server_command(server: str, port: int) -> list[str]:
    bind = f"127.0.0.1:{port}"
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "sigapp:api"]
    if server == "hypercorn":
        return [sys.executable, "-m", "hypercorn", "--bind", bind, "sigapp:api"]
    worker = {"gunicorn-sync": "sync", "gunicorn-uvicorn": "uvicorn.workers.UvicornWorker"}[server]
    app = "sigapp:application" if worker == "sync" else "sigapp:api"
    return [sys.executable, "-m", "gunicorn", "-w", "1", "-k", worker, "-b", bind, app]


def _serve(
    server: str, launch: str, sig: int, env: dict[str, str], app_dir: Path, ask: bool
) -> tuple[int, str]:
    """Start ``server``, answer one /ask when ``ask``, send ``sig``; exit status and stderr."""
    port = _free_port()
    stderr_path = app_dir / f"stderr-{server}-{launch}-{sig}.txt"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            _command(launch, _server_command(server, port)),
            cwd=app_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(proc, f"{base}/healthz", timeout=60)
            if ask:
                with _HTTP.open(urllib.request.Request(f"{base}/ask"), timeout=30) as answer:
                    assert answer.status == 200
        except AssertionError as exc:
            raise AssertionError(f"{exc}; stderr:\n{stderr_path.read_text()}") from None
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
    finally:
        _stop(proc)
    return code, stderr_path.read_text()


_SERVERS = [
    pytest.param(server, launch, sig, id=f"{server}-{launch}-{sig.name}")
    for server, launch, sig in [
        ("uvicorn", "wrapper", signal.SIGTERM),
        ("uvicorn", "wrapper", signal.SIGINT),
        ("uvicorn", "code", signal.SIGTERM),
        ("uvicorn", "code", signal.SIGINT),
        ("gunicorn-uvicorn", "wrapper", signal.SIGTERM),
        # Not SIGINT: gunicorn then sends SIGQUIT, which uvicorn's worker does not stop on; it is
        # SIGKILLed after graceful_timeout, with or without us, and nothing can flush then.
        ("gunicorn-uvicorn", "code", signal.SIGTERM),
        ("gunicorn-sync", "wrapper", signal.SIGTERM),
        ("gunicorn-sync", "wrapper", signal.SIGINT),
        ("gunicorn-sync", "code", signal.SIGQUIT),
        ("hypercorn", "wrapper", signal.SIGTERM),
        ("hypercorn", "wrapper", signal.SIGINT),
        ("hypercorn", "code", signal.SIGTERM),
    ]
]


@pytest.mark.parametrize(("server", "launch", "sig"), _SERVERS)
def test_server_stopped_by_a_signal_flushes_with_its_usual_exit_status(
    server: str,
    launch: str,
    sig: signal.Signals,
    app_dir: Path,
    openai_server: OpenAIMockServer,
    otlp_receiver: OTLPReceiver,
) -> None:
    needs = {"uvicorn": ["uvicorn", "fastapi"], "hypercorn": ["hypercorn", "fastapi"]}
    needs["gunicorn-uvicorn"] = ["gunicorn", "uvicorn", "fastapi"]
    for module in needs.get(server, ["gunicorn"]):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    key = (server, str(sig))
    if key not in _UNINSTRUMENTED:
        env = _child_env(openai_server, otlp_receiver, app_dir, "disabled")
        _UNINSTRUMENTED[key] = _serve(server, "disabled", sig, env, app_dir, ask=False)[0]
    env = _child_env(openai_server, otlp_receiver, app_dir, launch)
    code, stderr = _serve(server, launch, sig, env, app_dir, ask=True)
    assert code == _UNINSTRUMENTED[key], stderr
    _assert_flushed(otlp_receiver)
    assert "genai_observe" not in stderr


_AS_PID_1 = """
import os, signal, sys, time
import genai_observe
genai_observe.init(endpoint=sys.argv[1])
with genai_observe.llm_call(provider="openai", model="pid-one") as call:
    call.set_response(content="x")
os.kill(os.getpid(), signal.SIGTERM)  # as PID 1, the kernel drops a signal with no handler
time.sleep(0.2)
print(os.getpid(), "still running", flush=True)
"""


def test_as_pid_1_a_sigterm_flushes_and_the_process_keeps_running(otlp_receiver: OTLPReceiver) -> None:
    """PID 1 (a container without an init) ignores SIGTERM; with us it still does, after a flush."""
    unshare = shutil.which("unshare")
    probe = subprocess.run(
        [unshare or "unshare", "--pid", "--fork", "true"], capture_output=True, check=False
    )
    if unshare is None or probe.returncode != 0:
        pytest.skip("cannot start a process as PID 1 of a new PID namespace here")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DT_", "GENAI_OBSERVE_"))}
    env.update(PYTHONPATH=_SRC, **_FLUSH_ONLY)
    done = subprocess.run(
        [unshare, "--pid", "--fork", sys.executable, "-c", _AS_PID_1, otlp_receiver.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout == "1 still running\n", done.stderr
    assert [s.name for s in otlp_receiver.spans()] == ["chat pid-one"]
