"""Shared fixtures: the real services tests run against, started here, never assumed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def _spacy_pipelines() -> list[tuple[str, Any, Any]]:
    """The spaCy pipelines loaded so far in this session: (model, aliases, pipeline)."""
    return []


@pytest.fixture(scope="module")
def spacy_loaded_once(_spacy_pipelines: list[tuple[str, Any, Any]]) -> Iterator[None]:
    """While a module runs, loading the NLP pipeline (``TextAnalyser.load``, a DoFn's setup)
    reuses the one already loaded in this session for the same model and alias table: the
    real model, loaded once per session instead of once per module or pipeline."""
    from newswatch.pipelines.core import nlp

    load = nlp.load_pipeline

    def cached(model: str, aliases: Any) -> Any:
        for known_model, known_aliases, pipeline in _spacy_pipelines:
            if (known_model, known_aliases) == (model, aliases):
                return pipeline
        pipeline = load(model, aliases)
        _spacy_pipelines.append((model, aliases, pipeline))
        return pipeline

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nlp, "load_pipeline", cached)
        yield
