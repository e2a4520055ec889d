"""Putting articles on a Kafka topic: JSON Lines files, or the bundled samples, for trying
newswatch out against a local broker (``newswatch produce``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from newswatch.connectors.kafka.connection import KafkaConnection, KafkaUnavailable, produce_messages
from newswatch.connectors.rss.read import parse_feed

SAMPLE_FEED = "defaults/samples/asia-desk.atom.xml"


def sample_articles() -> list[dict[str, Any]]:
    """The bundled Asia desk sample feed as Kafka input messages (schemas/kafka_article.schema.json)."""
    body = files("newswatch.pipelines").joinpath(SAMPLE_FEED).read_bytes()
    parsed = parse_feed(
        "sample-asia-desk", "package:newswatch.pipelines/" + SAMPLE_FEED, body, datetime.now(UTC)
    )
    return [
        {
            key: value
            for key, value in {
                "url": item.url,
                "id": item.guid,
                "title": item.title,
                "text": item.content or item.summary,
                "published": item.published,
                "source": "sample-wire",
                "language": item.language,
                "authors": list(item.authors),
            }.items()
            if value
        }
        for item in parsed.articles
    ]


def read_json_lines(path: Path) -> Iterator[bytes]:
    """Each non-empty line of a JSON Lines file, as the message value it will be."""
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield line.strip()


def ensure_topic(connection: KafkaConnection, topic: str, partitions: int) -> bool:
    """Create the topic if the cluster does not have it; True when it was created."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(**connection.client_config())
    except KafkaError as err:
        raise KafkaUnavailable(f"cannot reach Kafka at {connection.describe()}: {err}") from None
    try:
        if topic in admin.list_topics():
            return False
        admin.create_topics([NewTopic(topic, partitions, 1)])
        return True
    except TopicAlreadyExistsError:
        return False
    finally:
        admin.close()


def produce_articles(connection: KafkaConnection, topic: str, values: Iterable[bytes]) -> int:
    """Send each value without a key, so the partitioner spreads them; returns how many."""
    return produce_messages(connection, topic, ((None, value) for value in values))


def encode(article: dict[str, Any]) -> bytes:
    return json.dumps(article, ensure_ascii=False).encode("utf-8")
