"""Pytest fixtures for the fake Bedrock Runtime server.

Import them into a test module that uses them::

    from tests.rig.fixtures_bedrock import aws_env, bedrock_server, bedrock_server_session  # noqa: F401

and isolate the module from the developer's AWS setup with
``pytestmark = pytest.mark.usefixtures("aws_env")``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .bedrock_server import BedrockMockServer

__all__ = ["aws_env", "bedrock_server", "bedrock_server_session"]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No AWS setting of the developer or CI reaches botocore: no profile, config or credentials
    file, retry mode, endpoint override or instance metadata lookup, and no proxy for 127.0.0.1."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)
    missing = tmp_path_factory.mktemp("aws") / "absent"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(missing))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def bedrock_server_session() -> Iterator[BedrockMockServer]:
    """One fake Bedrock server for the whole session (started once, stopped at the end)."""
    with BedrockMockServer() as server:
        yield server


@pytest.fixture
def bedrock_server(bedrock_server_session: BedrockMockServer) -> Iterator[BedrockMockServer]:
    """The fake Bedrock server with no scripted replies and no recorded requests.

    Scripts and recordings are cleared before and after every test; the ``errors`` list
    (exceptions inside the rig itself) must be empty at the end.
    """
    server = bedrock_server_session
    server.reset()
    yield server
    rig_errors = list(server.errors)
    server.reset()
    assert not rig_errors, f"the fake Bedrock server failed internally: {rig_errors!r}"
