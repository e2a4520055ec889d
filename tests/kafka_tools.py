"""Talking to the test broker directly: topics, producing, reading back, committed offsets."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic


def new_topic(bootstrap: str, partitions: int = 3, prefix: str = "news") -> str:
    name = f"{prefix}.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    return name


def produce(
    bootstrap: str, topic: str, values: Iterable[bytes | dict[str, Any]], key: bytes | None = None
) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=16 * 2**20)
    try:
        futures = []
        for i, value in enumerate(values):
            raw = json.dumps(value).encode() if isinstance(value, dict) else value
            # Round-robin by key so every partition gets messages.
            futures.append(producer.send(topic, key=key or str(i).encode(), value=raw))
        producer.flush()
        for future in futures:
            future.get(timeout=10)
    finally:
        producer.close()


def read_all(
    bootstrap: str, topic: str, timeout_s: float = 10.0
) -> list[tuple[bytes | None, bytes]]:
    """Every message of a topic up to its high watermark, as (key, value), in partition order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        messages: dict[int, list[tuple[bytes | None, bytes]]] = {tp.partition: [] for tp in tps}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                messages[tp.partition].extend((r.key, r.value) for r in records)
            if all(
                consumer.highwater(tp) is not None
                and consumer.position(tp) >= consumer.highwater(tp)
                for tp in tps
            ):
                break
        return [m for p in sorted(messages) for m in messages[p]]
    finally:
        consumer.close(autocommit=False)


def high_watermarks(bootstrap: str, topic: str) -> dict[int, int]:
    """Per partition, one past the last offset (read from fetch responses, not end_offsets)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(consumer.highwater(tp) is None for tp in tps):
            consumer.poll(timeout_ms=200)
        return {tp.partition: consumer.highwater(tp) for tp in tps}
    finally:
        consumer.close(autocommit=False)


def committed_offsets(bootstrap: str, topic: str, group: str) -> dict[int, int | None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        return {tp.partition: consumer.committed(tp) for tp in tps}
    finally:
        consumer.close(autocommit=False)
