"""Putting articles on a Kafka topic: JSON Lines files, or the bundled samples, for trying
newswatch out against a local broker (``newswatch produce``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from newswatch.connectors.kafka.connection import (
    KafkaConnection,
    KafkaUnavailable,
    produce_messages,
)
from newswatch.connectors.rss.parse import parse_feed
from newswatch.pipelines.cli.exits import EXIT_CONFIG, EXIT_OK, EXIT_RUN_FAILED

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


def add_parser(commands: argparse._SubParsersAction) -> None:
    produce = commands.add_parser(
        "produce",
        help="put articles on a Kafka topic as JSON messages (for trying newswatch out)",
        description="Send JSON articles (schemas/kafka_article.schema.json) to a Kafka topic, "
        "creating the topic when the cluster does not have it.",
    )
    produce.add_argument("--topic", required=True, help="Kafka topic to send to")
    produce.add_argument(
        "--bootstrap",
        default="127.0.0.1:9092",
        help="Kafka bootstrap server (default 127.0.0.1:9092)",
    )
    produce.add_argument(
        "--partitions", type=int, default=3, help="partitions of a topic created here (default 3)"
    )
    what = produce.add_mutually_exclusive_group(required=True)
    what.add_argument("--sample", action="store_true", help="the bundled sample articles")
    what.add_argument("file", nargs="?", help="a JSON Lines file, one article per line")
    produce.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    connection = KafkaConnection(bootstrap_servers=tuple(args.bootstrap.split(",")))
    if args.sample:
        values = [encode(article) for article in sample_articles()]
    else:
        try:
            values = list(read_json_lines(Path(args.file)))
        except OSError as err:
            print(f"newswatch: cannot read {args.file}: {err.strerror or err}", file=sys.stderr)
            return EXIT_CONFIG
    try:
        ensure_topic(connection, args.topic, args.partitions)
        sent = produce_articles(connection, args.topic, values)
    except KafkaUnavailable as err:
        print(f"newswatch: {err}", file=sys.stderr)
        return EXIT_RUN_FAILED
    print(f"sent {sent} articles to {args.topic} on {args.bootstrap}")
    return EXIT_OK
