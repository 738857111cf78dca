"""Pytest fixtures for the fake Anthropic server.

Make them visible in the test module that uses them (as module attributes, so that ruff does not
see the fixture parameters as redefinitions of an import)::

    from tests.rig import fixtures_anthropic

    anthropic_server = fixtures_anthropic.anthropic_server
    anthropic_server_session = fixtures_anthropic.anthropic_server_session
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .anthropic_server import AnthropicMockServer

__all__ = ["anthropic_server", "anthropic_server_session"]


@pytest.fixture(scope="session")
def anthropic_server_session() -> Iterator[AnthropicMockServer]:
    """One fake Anthropic server for the whole session (started once, stopped at the end)."""
    with AnthropicMockServer() as server:
        yield server


@pytest.fixture
def anthropic_server(anthropic_server_session: AnthropicMockServer) -> Iterator[AnthropicMockServer]:
    """The fake Anthropic server with no scripted replies and no recorded requests.

    Cleared before and after every test; exceptions inside the rig itself fail the test.
    """
    server = anthropic_server_session
    server.reset()
    yield server
    rig_errors = server.errors
    server.reset()
    assert not rig_errors, f"the fake Anthropic server failed internally: {rig_errors!r}"
