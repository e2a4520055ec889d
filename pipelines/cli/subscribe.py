"""Following alerts as they arrive: from the Kafka alert topic, or from the file sink.

Kafka: the subscriber assigns itself every partition of the alert topic instead of joining
a consumer group (a group join can take a full rebalance timeout on some brokers); with a
group name it starts from, and commits, that group's offsets, so it resumes where it left off.
Files: committed alert files never change once they appear (they are renamed into place
whole), so following a folder means reading each new file once.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newswatch.connectors.dataset.layout import OutputLayout
from newswatch.connectors.kafka.connection import KafkaConnection, KafkaUnavailable
from newswatch.pipelines.cli.exits import EXIT_CONFIG, EXIT_OK, EXIT_RUN_FAILED


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
    # The title is in the article's language: say which, so a reader knows what follows.
    language = f"[{alert['language']}] " if alert.get("language") else ""
    return (
        f"{when[:19].replace('T', ' ')}  {alert.get('topic')}  {alert.get('score', 0):.2f}  "
        f"{language}{alert.get('title', '')}  {alert.get('url', '')}"
    )


def _start_partitions(consumer: Any, new: set[Any], group: str | None, from_start: bool) -> None:
    """Each new partition at the group's committed offset, else at its start or its end."""
    for tp in new:
        committed = consumer.committed(tp) if group else None
        if committed is not None:
            consumer.seek(tp, committed)
        elif from_start:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek_to_end(tp)
        consumer.position(tp)  # resolve the seek now, not at the first poll


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
                # A partition (or the topic) that appears while following is new:
                # everything in it arrived after we started.
                _start_partitions(consumer, new, group, from_beginning or not first_look)
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


def add_parser(alert_commands: argparse._SubParsersAction) -> None:
    subscribe = alert_commands.add_parser(
        "subscribe",
        help="print alerts as they arrive, from Kafka or from the file sink",
        description="Print each alert as it arrives. Ctrl-C stops.",
    )
    where = subscribe.add_mutually_exclusive_group()
    where.add_argument(
        "--bootstrap",
        default="127.0.0.1:9092",
        help="Kafka bootstrap server (default 127.0.0.1:9092)",
    )
    where.add_argument("--dir", help="follow the file sink instead: <out>/alerts")
    subscribe.add_argument(
        "--alerts-topic",
        default="newswatch.alerts",
        help="Kafka topic of alerts (default newswatch.alerts)",
    )
    subscribe.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="ID",
        help="only this watched topic (repeatable)",
    )
    subscribe.add_argument(
        "--from-beginning", action="store_true", help="start with the oldest alert"
    )
    subscribe.add_argument("--format", choices=("text", "json"), default="text")
    subscribe.add_argument("--group", help="a subscriber name: resume where it left off")
    subscribe.set_defaults(handler=main)


def _announce(what: str, from_beginning: bool) -> Callable[[], None]:
    def announce() -> None:
        start = "from the oldest alert" if from_beginning else "from now on"
        print(f"newswatch: {what}, {start} (Ctrl-C stops)", file=sys.stderr, flush=True)

    return announce


def main(args: argparse.Namespace) -> int:
    wanted = AlertFilter(frozenset(args.topic))
    # Ctrl-C and SIGTERM end the loop at its next turn, after the alerts already printed
    # are recorded for --group: none is lost, none is printed twice.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if args.dir:
        if not Path(args.dir).is_dir():
            print(f"newswatch: no alerts folder at {args.dir}", file=sys.stderr)
            return EXIT_CONFIG
        cursor = (
            Path(
                OutputLayout(str(Path(args.dir).parent)).state("subscribers", f"{args.group}.json")
            )
            if args.group
            else None
        )
        alerts = follow_directory(
            args.dir,
            from_beginning=args.from_beginning,
            cursor=cursor,
            on_ready=_announce(f"following alerts in {args.dir}", args.from_beginning),
            should_stop=stop.is_set,
        )
    else:
        connection = KafkaConnection(bootstrap_servers=tuple(args.bootstrap.split(",")))
        alerts = follow_kafka(
            connection,
            args.alerts_topic,
            group=args.group,
            from_beginning=args.from_beginning,
            on_ready=_announce(
                f"following {args.alerts_topic} on {args.bootstrap}", args.from_beginning
            ),
            should_stop=stop.is_set,
        )
    try:
        for alert in alerts:
            if wanted.accepts(alert):
                print(format_alert(alert, args.format), flush=True)
    except KafkaUnavailable as err:
        print(f"newswatch: {err}", file=sys.stderr)
        return EXIT_RUN_FAILED
    return EXIT_OK
