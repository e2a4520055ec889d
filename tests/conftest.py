"""Shared fixtures: the real services tests run against, started here, never assumed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from servers import LocalHttpServer  # noqa: E402

from newswatch.pipelines.cli.broker import Broker, free_port, start_broker  # noqa: E402


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """The development Kafka-protocol broker on a free port, for the whole session."""
    running = start_broker(free_port())
    yield running
    running.stop()


@pytest.fixture
def http_server() -> Iterator[LocalHttpServer]:
    with LocalHttpServer() as server:
        yield server
