"""Serving benchmark articles to ``newswatch run``: RSS 2.0 files, or messages on a Kafka topic.

RSS items carry the body as HTML paragraphs in ``<description>`` (as most publishers'
feeds do), so the run pays for feedparser's sanitizer and the HTML-to-text step. Kafka
messages carry plain text, as schemas/kafka_article.schema.json allows.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from benchmarks.corpus import BenchArticle
from newswatch.pipelines.control.settings import RunSettings

ITEMS_PER_FEED = 500
KAFKA_PARTITIONS = 4


def rss_document(articles: Sequence[BenchArticle], channel: str) -> str:
    items = []
    for article in articles:
        body = "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in article.text.split("\n\n"))
        items.append(
            "<item>"
            f"<title>{escape(article.title)}</title>"
            f"<link>{escape(article.url)}</link>"
            f'<guid isPermaLink="true">{escape(article.url)}</guid>'
            f"<pubDate>{format_datetime(article.published)}</pubDate>"
            f"<description>{escape(body)}</description>"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(channel)}</title><link>https://bench.newswatch.example/</link>"
        "<description>newswatch benchmark feed</description><language>en-gb</language>"
        + "".join(items)
        + "</channel></rss>\n"
    )


def write_feeds(articles: Sequence[BenchArticle], folder: Path) -> list[Path]:
    """RSS files of ``ITEMS_PER_FEED`` items each."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, start in enumerate(range(0, len(articles), ITEMS_PER_FEED)):
        path = folder / f"feed-{n:03d}.xml"
        path.write_text(
            rss_document(articles[start : start + ITEMS_PER_FEED], f"bench {n}"), "utf-8"
        )
        paths.append(path)
    return paths


def rss_config(feeds: Sequence[Path], out: Path) -> str:
    lines = ["sources:"]
    for n, path in enumerate(feeds):
        lines += [f"  - name: bench-feed-{n:03d}", "    type: rss", f"    url: {path}"]
    lines += [f"output: {out}", "alerts:", "  - type: file"]
    # The benchmark's feeds are far longer than real ones: a pass of the default Kafka
    # message count, in feeds.
    per_pass = max(1, RunSettings().max_messages_per_pass // ITEMS_PER_FEED)
    lines += ["run:", f"  max_feeds_per_pass: {per_pass}"]
    return "\n".join(lines) + "\n"


def create_topic(bootstrap: str, name: str, partitions: int = KAFKA_PARTITIONS) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def delete_topic(bootstrap: str, name: str) -> None:
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([name])
    except KafkaError:
        pass  # the dev broker keeps topics in memory; a leftover costs only memory
    finally:
        admin.close()


def produce_articles(bootstrap: str, topic: str, articles: Sequence[BenchArticle]) -> int:
    from newswatch.connectors.kafka.connection import KafkaConnection, produce_messages

    connection = KafkaConnection(bootstrap_servers=(bootstrap,))
    messages = (
        (str(i).encode(), json.dumps(a.message(), ensure_ascii=False).encode("utf-8"))
        for i, a in enumerate(articles)
    )
    return produce_messages(connection, topic, messages, timeout_s=300)


def kafka_config(bootstrap: str, topic: str, out: Path) -> str:
    return (
        "\n".join(
            [
                "sources:",
                "  - name: bench-wire",
                "    type: kafka",
                f"    bootstrap_servers: {bootstrap}",
                f"    topic: {topic}",
                "    group_id: newswatch-bench",
                f"output: {out}",
                "alerts:",
                "  - type: file",
            ]
        )
        + "\n"
    )
