"""Pytest fixtures of the test rig; import them into tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .bizevents_receiver import BizEventsReceiver
from .otlp_receiver import OTLPReceiver


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """A started OTLP/HTTP receiver on 127.0.0.1, stopped after the test."""
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def bizevents_receiver() -> Iterator[BizEventsReceiver]:
    """A started Business Events API stand-in on 127.0.0.1, stopped after the test."""
    with BizEventsReceiver() as receiver:
        yield receiver
