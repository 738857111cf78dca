"""Pytest fixtures for the fake OpenAI server.

Register them from the root ``tests/conftest.py`` with::

    pytest_plugins = ["tests.rig.fixtures_openai"]

(or ``from tests.rig.fixtures_openai import *``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .openai_server import OpenAIMockServer

__all__ = ["openai_server", "openai_server_session"]


@pytest.fixture(scope="session")
def openai_server_session() -> Iterator[OpenAIMockServer]:
    """One fake OpenAI server for the whole session (started once, stopped at the end)."""
    with OpenAIMockServer() as server:
        yield server


@pytest.fixture
def openai_server(openai_server_session: OpenAIMockServer) -> Iterator[OpenAIMockServer]:
    """The fake OpenAI server with no scripted replies and no recorded requests.

    Scripts and recordings are cleared before and after every test.  The
    ``errors`` list (exceptions inside the rig itself) must be empty at the end.
    """
    server = openai_server_session
    server.reset()
    yield server
    rig_errors = server.errors
    server.reset()
    assert not rig_errors, f"the fake OpenAI server failed internally: {rig_errors!r}"
