"""Following alerts as they arrive: from the Kafka alert topic, or from the file sink.

Kafka: the subscriber assigns itself every partition of the alert topic instead of joining
a consumer group (a group join can take a full rebalance timeout on some brokers); with a
group name it starts from, and commits, that group's offsets, so it resumes where it left off.
Files: committed alert files never change once they appear (they are renamed into place
whole), so following a folder means reading each new file once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newswatch.connectors.kafka.connection import KafkaConnection, KafkaUnavailable


@dataclass(frozen=True)
class AlertFilter:
    topics: frozenset[str] = frozenset()

    def accepts(self, alert: dict[str, Any]) -> bool:
        return not self.topics or alert.get("topic") in self.topics


def format_alert(alert: dict[str, Any], fmt: str) -> str:
    """One alert as one line: readable text, or the JSON message itself."""
    if fmt == "json":
        return json.dumps(alert, ensure_ascii=False, sort_keys=True)
    when = alert.get("published_at") or alert.get("created_at") or ""
    return (
        f"{when[:19].replace('T', ' ')}  {alert.get('topic')}  {alert.get('score', 0):.2f}  "
        f"{alert.get('title', '')}  {alert.get('url', '')}"
    )


def follow_kafka(
    connection: KafkaConnection,
    topic: str,
    *,
    group: str | None = None,
    from_beginning: bool = False,
    poll_s: float = 0.5,
    should_stop: Callable[[], bool] = lambda: False,
    on_ready: Callable[[], None] = lambda: None,
) -> Iterator[dict[str, Any]]:
    """Alerts from the Kafka alert topic, as they arrive, until ``should_stop()``.

    ``on_ready`` is called once the starting positions are fixed: every alert sent after
    that is delivered.
    """
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(
            **connection.client_config(), group_id=group, enable_auto_commit=False
        )
    except KafkaError as err:
        raise KafkaUnavailable(f"cannot reach Kafka at {connection.describe()}: {err}") from None
    assigned: set[Any] = set()
    delivered: dict[Any, int] = {}
    first_look = True
    try:
        while not should_stop():
            partitions = consumer.partitions_for_topic(topic) or set()
            new = {TopicPartition(topic, p) for p in partitions} - assigned
            if new:
                assigned |= new
                consumer.assign(sorted(assigned))
                for tp in new:
                    committed = consumer.committed(tp) if group else None
                    if committed is not None:
                        consumer.seek(tp, committed)
                    elif from_beginning or not first_look:
                        # A partition (or the topic) that appears while following is new:
                        # everything in it arrived after we started.
                        consumer.seek_to_beginning(tp)
                    else:
                        consumer.seek_to_end(tp)
                    consumer.position(tp)  # resolve the seek now, not at the first poll
            if first_look:
                on_ready()
            first_look = False
            if not assigned:
                time.sleep(poll_s)
                continue
            batches = consumer.poll(timeout_ms=int(poll_s * 1000))
            for tp in sorted(batches, key=lambda t: t.partition):
                for record in batches[tp]:
                    try:
                        alert = json.loads(record.value)
                    except ValueError:
                        alert = None
                    if alert is not None:
                        yield alert
                    # Reached only once the caller has taken the alert: a Ctrl-C while it
                    # prints leaves this one to be delivered again, never lost.
                    delivered[tp] = record.offset + 1
            if group:
                _commit(consumer, delivered)
    finally:
        if group:
            _commit(consumer, delivered)
        consumer.close(autocommit=False)


def _commit(consumer: Any, delivered: dict[Any, int]) -> None:
    from kafka.structs import OffsetAndMetadata

    if delivered:
        consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in delivered.items()})
        delivered.clear()


def follow_directory(
    alerts_dir: str,
    *,
    from_beginning: bool = False,
    cursor: Path | None = None,
    poll_s: float = 1.0,
    should_stop: Callable[[], bool] = lambda: False,
    on_ready: Callable[[], None] = lambda: None,
) -> Iterator[dict[str, Any]]:
    """Alerts from the file sink (``<out>/alerts``), each committed file read once.

    With a ``cursor`` file, the names already read are kept there, so a named subscriber
    resumes where it left off.
    """
    root = Path(alerts_dir)
    done: set[str] = set()
    if cursor is not None and cursor.exists():
        done = set(json.loads(cursor.read_text("utf-8")))
    elif not from_beginning:
        done = {str(p.relative_to(root)) for p in _alert_files(root)}
    on_ready()
    while not should_stop():
        fresh = [p for p in _alert_files(root) if str(p.relative_to(root)) not in done]
        for path in fresh:
            for line in path.read_text("utf-8").splitlines():
                if line.strip():
                    yield json.loads(line)
            done.add(str(path.relative_to(root)))
            if cursor is not None:
                cursor.parent.mkdir(parents=True, exist_ok=True)
                temp = cursor.with_suffix(".tmp")
                temp.write_text(json.dumps(sorted(done)), "utf-8")
                temp.replace(cursor)
        if not fresh:
            time.sleep(poll_s)


def _alert_files(root: Path) -> Sequence[Path]:
    return sorted(root.glob("dt=*/*.jsonl"))
