"""Pytest fixtures for the fake Ollama server.

Import them into the test module that uses them (both names: the per-test fixture needs the
session one)::

    from tests.rig.fixtures_ollama import ollama_server, ollama_server_session  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .ollama_server import OllamaMockServer

__all__ = ["ollama_server", "ollama_server_session"]


@pytest.fixture(scope="session")
def ollama_server_session() -> Iterator[OllamaMockServer]:
    """One fake Ollama server for the whole session."""
    with OllamaMockServer() as server:
        yield server


@pytest.fixture
def ollama_server(ollama_server_session: OllamaMockServer) -> Iterator[OllamaMockServer]:
    """The fake Ollama server with no scripted replies and no recorded requests.

    Scripts and recordings are cleared before and after every test; the rig's own errors must be
    none at the end.
    """
    server = ollama_server_session
    server.reset()
    yield server
    rig_errors = server.errors
    server.reset()
    assert not rig_errors, f"the fake Ollama server failed internally: {rig_errors!r}"
