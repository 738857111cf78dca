"""Zero-code: genai-observe-instrument and the stock opentelemetry-instrument, in real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import genai_observe
from genai_observe._core import semconv as sc
from tests.rig.openai_server import OpenAIMockServer
from tests.rig.otlp_receiver import OTLPReceiver

BIN = Path(sys.executable).parent
WRAPPER = str(BIN / "genai-observe-instrument")
# The children run the sources this test process imported (a worktree's, not the installed ones).
SRC = str(Path(genai_observe.__file__).resolve().parents[1])

APP = """
import json, sys
import openai
client = openai.OpenAI(max_retries=0)
reply = client.chat.completions.create(model="zc-model", messages=[{"role": "user", "content": "hi"}])
print(json.dumps({"argv": sys.argv, "answer": reply.choices[0].message.content}))
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""


def _env(server: OpenAIMockServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DT_", "GENAI_OBSERVE_"))}
    env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="test", **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra.get("PYTHONPATH"), SRC) if p)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=90, check=False)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(APP))
    return script


def test_wrapper_instruments_an_unmodified_app(
    app: Path, openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    env = _env(openai_server, DT_ENDPOINT=otlp_receiver.url, OTEL_METRIC_EXPORT_INTERVAL="60000")
    done = _run(
        [WRAPPER, "--service-name", "zc-app", sys.executable, str(app), "3", "--app-flag"], env, app.parent
    )
    assert done.returncode == 3, done.stderr  # the app's exit code, unchanged
    out = json.loads(done.stdout)  # the app's stdout, unchanged (nothing of ours on stdout)
    assert out["argv"] == [str(app), "3", "--app-flag"]  # argv as if run directly
    assert done.stderr == ""
    (span,) = otlp_receiver.spans()
    assert span.name == "chat zc-model"
    assert span.resource_attributes["service.name"] == "zc-app"
    assert span.attributes["gen_ai.completion.0.content"] == out["answer"]
    assert otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION)


def test_existing_sitecustomize_still_runs(
    app: Path, tmp_path: Path, openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    marker = tmp_path / "marker.txt"
    (theirs / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    env = _env(openai_server, DT_ENDPOINT=otlp_receiver.url, PYTHONPATH=str(theirs))
    done = _run([WRAPPER, sys.executable, str(app)], env, app.parent)
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "ran"
    assert len(otlp_receiver.spans()) == 1


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"DT_ENDPOINT": "not-a-url"}, "DT_ENDPOINT"),
        ({"DT_API_TOKEN": "dt0c01.SECRETSECRETSECRET.SECRETSECRETSECRETSECRET"}, "DT_API_TOKEN"),
        ({"GENAI_OBSERVE_CAPTURE_CONTENT": "sometimes"}, "GENAI_OBSERVE_CAPTURE_CONTENT"),
        # Traceloop's header variable: a control character in the token, and a token without endpoint.
        ({"TRACELOOP_HEADERS": "Authorization=Api-Token%20dt0c01.SECRETSECRET%0A"}, "TRACELOOP_HEADERS"),
        ({"TRACELOOP_HEADERS": "Authorization=Api-Token%20dt0c01.SECRETSECRET"}, "TRACELOOP_HEADERS"),
    ],
)
def test_misconfiguration_leaves_the_app_running(
    app: Path, openai_server: OpenAIMockServer, extra: dict[str, str], named: str
) -> None:
    done = _run([WRAPPER, sys.executable, str(app)], _env(openai_server, **extra), app.parent)
    assert done.returncode == 0
    assert json.loads(done.stdout)["answer"]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "uninstrumented" in lines[0]
    assert "SECRETSECRET" not in done.stderr


def test_disabled_runs_uninstrumented(
    app: Path, openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    env = _env(openai_server, DT_ENDPOINT=otlp_receiver.url)
    done = _run([WRAPPER, "--disabled", sys.executable, str(app)], env, app.parent)
    assert done.returncode == 0 and done.stderr == ""
    env["OTEL_SDK_DISABLED"] = "true"
    done = _run([WRAPPER, sys.executable, str(app)], env, app.parent)
    assert done.returncode == 0
    assert otlp_receiver.requests == []


def test_wrapper_usage_errors(tmp_path: Path) -> None:
    done = _run([WRAPPER], dict(os.environ), tmp_path)
    assert done.returncode == 2 and "a command to run is required" in done.stderr
    done = _run([WRAPPER, "no-such-command-xyz"], dict(os.environ), tmp_path)
    assert done.returncode == 127 and "no-such-command-xyz" in done.stderr
    done = _run([WRAPPER, "--version"], dict(os.environ), tmp_path)
    assert done.returncode == 0 and "genai-observe" in done.stdout


def test_every_option_is_documented_in_help_and_sets_its_variable(tmp_path: Path) -> None:
    from genai_observe._zerocode.cli import _OPTIONS

    done = _run([WRAPPER, "--help"], dict(os.environ), tmp_path)
    assert done.returncode == 0
    help_text = " ".join(done.stdout.split())  # argparse wraps lines
    args = []
    for flag, variable, _ in _OPTIONS:
        assert flag in help_text and f"[{variable}]" in help_text, flag
        args += [flag, f"value-of-{flag[2:]}"]
    # --disabled: the child gets the variables but no bootstrap (these values are not valid ones)
    env = {k: v for k, v in os.environ.items() if k not in {v for _, v, _ in _OPTIONS}}
    show = "import json, os, sys; json.dump(dict(os.environ), sys.stdout)"
    done = _run([WRAPPER, *args, "--disabled", sys.executable, "-c", show], env, tmp_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    for flag, variable, _ in _OPTIONS:
        assert seen[variable] == f"value-of-{flag[2:]}", flag


def test_forking_server_exports_each_worker_once(
    tmp_path: Path, openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    """A pre-fork server: the parent imports and sets up, two forked workers each serve a call."""
    script = tmp_path / "prefork.py"
    script.write_text(
        textwrap.dedent("""
        import os, sys
        import openai
        client = openai.OpenAI(max_retries=0)
        messages = [{"role": "user", "content": "hi"}]
        client.chat.completions.create(model="in-parent", messages=messages)
        children = []
        for n in range(2):
            pid = os.fork()
            if pid == 0:
                # Its own client, as a worker must: an inherited keep-alive connection would be
                # shared by both workers and their answers interleaved on it.
                client = openai.OpenAI(max_retries=0)
                client.chat.completions.create(model=f"worker-{n}", messages=messages)
                sys.exit(0)  # a normal worker exit: atexit flushes
            children.append(pid)
        for pid in children:
            assert os.waitpid(pid, 0)[1] == 0
    """)
    )
    env = _env(openai_server, DT_ENDPOINT=otlp_receiver.url, OTEL_METRIC_EXPORT_INTERVAL="60000")
    done = _run([WRAPPER, sys.executable, str(script)], env, tmp_path)
    assert done.returncode == 0, done.stderr
    names = sorted(s.name for s in otlp_receiver.spans())
    assert names == ["chat in-parent", "chat worker-0", "chat worker-1"]  # each exactly once
    counts: dict[str, int] = {}
    for metric in otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION):
        for point in metric.data_points:
            model = point.attributes["gen_ai.request.model"]
            counts[model] = counts.get(model, 0) + (point.count or 0)
    assert counts == {"in-parent": 1, "worker-0": 1, "worker-1": 1}  # no point recorded twice


def test_stock_opentelemetry_instrument_uses_our_entry_points(
    app: Path, openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    env = _env(
        openai_server,
        DT_ENDPOINT=otlp_receiver.url,
        OTEL_PYTHON_CONFIGURATOR="genai_observe",
        OTEL_PYTHON_DISTRO="genai_observe",
        OTEL_SERVICE_NAME="stock",
    )
    done = _run([str(BIN / "opentelemetry-instrument"), sys.executable, str(app)], env, app.parent)
    assert done.returncode == 0, done.stderr
    spans = otlp_receiver.spans()
    assert [s.name for s in spans] == ["chat zc-model"]  # instrumented once
    assert spans[0].resource_attributes["service.name"] == "stock"
    # Our wrapper next to the stock one: still one span per call.
    otlp_receiver.clear()
    done = _run([WRAPPER, str(BIN / "opentelemetry-instrument"), sys.executable, str(app)], env, app.parent)
    assert done.returncode == 0, done.stderr
    assert [s.name for s in otlp_receiver.spans()] == ["chat zc-model"]


def test_every_instrumentor_is_registered_as_an_entry_point() -> None:
    """The stock opentelemetry-instrument finds each of ours under a name of our own."""
    from importlib.metadata import entry_points

    from genai_observe.instrumentation._kit.registry import REGISTRY

    group = entry_points(group="opentelemetry_instrumentor")
    ours = {ep.name: ep for ep in group if ep.name.startswith("genai_observe_")}
    assert set(ours) == {f"genai_observe_{name}" for name in REGISTRY}
    for name, (module, cls) in REGISTRY.items():
        ep = ours[f"genai_observe_{name}"]
        assert ep.value == f"{module}:{cls}"
        assert ep.load().__name__ == cls  # importable without the provider SDK being imported


IN_CODE_INIT = """
import json, sys
import genai_observe
import openai
client = openai.OpenAI(max_retries=0)
messages = [{"role": "user", "content": "hi"}]
client.chat.completions.create(model="before-init", messages=messages)
handle = genai_observe.init(**json.loads(sys.argv[1]))
client.chat.completions.create(model="after-init", messages=messages)
current = genai_observe._pipeline.bootstrap.current()
print(json.dumps({"instrumented": handle.instrumented, "same": handle is current}))
"""


def test_in_code_init_with_an_endpoint_upgrades_the_wrappers_console_setup(
    tmp_path: Path, openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    """No endpoint in the environment: the wrapper prints to the console until the app's own
    init(endpoint=...) runs; from then on everything is exported, with the app's resource."""
    script = tmp_path / "app.py"
    script.write_text(IN_CODE_INIT)
    settings = {
        "endpoint": otlp_receiver.url,
        "service_name": "from-code",
        "capture_content": "SPAN_AND_EVENT",
        "metric_export_interval_ms": 60000,
    }
    done = _run([WRAPPER, sys.executable, str(script), json.dumps(settings)], _env(openai_server), tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"instrumented": ["openai"], "same": True}
    assert "keeping the first setup" not in done.stderr
    assert "chat before-init" in done.stderr  # the console line of the call made before init()
    (span,) = otlp_receiver.spans()
    assert span.name == "chat after-init"
    assert span.resource_attributes["service.name"] == "from-code"
    assert span.attributes["gen_ai.prompt.0.content"] == "hi"
    (event,) = otlp_receiver.logs()
    assert event.resource_attributes["service.name"] == "from-code"
    points = [p for m in otlp_receiver.metrics(sc.METRIC_OPERATION_DURATION) for p in m.data_points]
    assert [p.attributes["gen_ai.request.model"] for p in points] == ["after-init"]
    assert "after-init" not in done.stderr  # not on the console any more


@pytest.mark.parametrize("wrapper", ["genai-observe-instrument", "opentelemetry-instrument"])
def test_in_code_capture_off_applies_under_the_wrappers(
    wrapper: str, tmp_path: Path, openai_server: OpenAIMockServer, otlp_receiver: OTLPReceiver
) -> None:
    script = tmp_path / "app.py"
    script.write_text(IN_CODE_INIT)
    env = _env(
        openai_server,
        DT_ENDPOINT=otlp_receiver.url,
        GENAI_OBSERVE_CAPTURE_CONTENT="SPAN_AND_EVENT",
        OTEL_PYTHON_CONFIGURATOR="genai_observe",
        OTEL_PYTHON_DISTRO="genai_observe",
    )
    command = [WRAPPER] if wrapper == "genai-observe-instrument" else [str(BIN / "opentelemetry-instrument")]
    args = [sys.executable, str(script), json.dumps({"capture_content": False})]
    done = _run([*command, *args], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "keeping the first setup" not in done.stderr
    spans = {s.name: s for s in otlp_receiver.spans()}
    assert set(spans) == {"chat before-init", "chat after-init"}
    assert spans["chat before-init"].attributes["gen_ai.prompt.0.content"] == "hi"  # env said so
    after = spans["chat after-init"].attributes
    assert not [k for k in after if k.endswith(".content")], after
    assert [e.attributes.get("gen_ai.request.model") for e in otlp_receiver.logs()] == ["before-init"]
