"""Developer and CI sessions. `nox` with no arguments runs lint, typecheck and tests (what CI runs)."""

from __future__ import annotations

import glob
import shutil

import nox

nox.options.sessions = [
    "lint",
    "typecheck",
    "tests",
    "tests_openai_oldest",
    "tests_anthropic_oldest",
    "tests_ollama_oldest",
]
nox.options.reuse_existing_virtualenvs = True
# Sessions name no interpreter: they run on the one nox itself runs on (any supported Python,
# 3.10+), so the README's commands work wherever nox is installed, and none can "pass" by
# skipping an interpreter the machine lacks.
nox.options.error_on_missing_interpreters = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, with every provider SDK at its newest release."""
    session.install("-e", ".[all,test,test-langchain]")
    session.run("pytest", "-q", *session.posargs)


# The oldest openai release we claim to support (README, docs/openai.md). It predates httpx 0.28,
# which removed an argument it passes, so httpx is pinned below 0.28 for it.
OPENAI_OLDEST = "1.40.0"


@nox.session
def tests_openai_oldest(session: nox.Session) -> None:
    """The OpenAI tests against the oldest supported openai release."""
    session.install("-e", ".[test]", f"openai=={OPENAI_OLDEST}", "httpx<0.28")
    session.run(
        "pytest",
        "-q",
        "tests/instrumentation/test_openai.py",
        "tests/instrumentation/test_openai_replay.py",
        *session.posargs,
    )


# The oldest anthropic release we claim to support (docs/anthropic.md). It predates the SDK's own
# tracing (so the one-span-per-call patch is absent there) and still has legacy completions;
# it predates httpx 0.28 too. boto3 lets the AnthropicBedrock tests run.
ANTHROPIC_OLDEST = "0.30.0"


@nox.session
def tests_anthropic_oldest(session: nox.Session) -> None:
    """The Anthropic tests against the oldest supported anthropic release."""
    session.install("-e", ".[test]", f"anthropic=={ANTHROPIC_OLDEST}", "httpx<0.28", "boto3")
    session.run(
        "pytest",
        "-q",
        "tests/instrumentation/test_anthropic.py",
        "tests/instrumentation/test_anthropic_replay.py",
        *session.posargs,
    )


# The oldest ollama release verified (docs/ollama.md); it predates httpx 0.28 as well.
OLLAMA_OLDEST = "0.1.9"


@nox.session
def tests_ollama_oldest(session: nox.Session) -> None:
    """The Ollama tests against the oldest supported ollama release."""
    session.install("-e", ".[test]", f"ollama=={OLLAMA_OLDEST}", "httpx<0.28")
    session.run(
        "pytest",
        "-q",
        "tests/instrumentation/test_ollama.py",
        "tests/instrumentation/test_ollama_replay.py",
        *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "examples", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    # With the provider SDKs installed: their types are what the instrumentations are checked
    # against (without them, subclassing LangChain's handler is subclassing Any).
    session.install("-e", ".[all]", "mypy")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark suite (docs/performance.md); `nox -s bench -- --quick` for a smoke run."""
    session.install("-e", ".[all]", "httpx2")
    session.run("python", "-m", "benchmarks.run", *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """Builds the wheel and the sdist into dist/ and checks them with twine.

    Not in the default sessions: the isolated build downloads setuptools from PyPI, and CI's
    tests already cover the code. `pip install "dist/genai_observe-<version>-py3-none-any.whl[openai]"`
    then installs it anywhere.
    """
    session.install("build", "twine")
    shutil.rmtree("dist", ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", "dist")
    artifacts = sorted(glob.glob("dist/*"))
    session.run("twine", "check", "--strict", *artifacts)
    session.log("built: " + ", ".join(artifacts))


@nox.session
def demo(session: nox.Session) -> None:
    """Runs examples/demo.py: no network, telemetry printed to stderr."""
    session.install("-e", ".[openai]")
    session.run("python", "examples/demo.py")
