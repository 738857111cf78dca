"""Pytest fixtures of the test rig; import them into tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .otlp_receiver import OTLPReceiver


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """A started OTLP/HTTP receiver on 127.0.0.1, stopped after the test."""
    with OTLPReceiver() as receiver:
        yield receiver
