"""Alerts to Kafka as they are raised, for ``newswatch stream``.

Each alert goes to every configured (connection, topic) with acks=all, flushed per alert,
before its window commits: the alert log gets it when the window commits, and that
window's manifest records the alerts as already delivered. (A bounded run sends its alerts
at commit instead: ``pipelines/commit/manifest.py``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.connectors.kafka.connection import KafkaConnection, KafkaUnavailable
from newswatch.schemas import Alert

__all__ = ["SendAlerts"]


class _SendAlertsFn(beam.DoFn):
    def __init__(self, sinks: Sequence[tuple[KafkaConnection, str]], timeout_s: float) -> None:
        self._sinks = tuple(sinks)
        self._timeout_s = timeout_s
        self._producers: list[tuple[Any, str]] = []
        self._sent = Metrics.counter(self.__class__, "alerts_sent")

    def setup(self) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        for connection, topic in self._sinks:
            try:
                producer = KafkaProducer(
                    **connection.client_config(), acks="all", linger_ms=0, retries=5
                )
            except KafkaError as err:
                raise KafkaUnavailable(
                    f"cannot reach Kafka at {connection.describe()}: {err}"
                ) from None
            self._producers.append((producer, topic))

    def process(self, alert: Alert) -> None:
        from kafka.errors import KafkaError

        value = alert.to_json().encode("utf-8")
        for producer, topic in self._producers:
            try:
                producer.send(topic, key=alert.topic.encode("utf-8"), value=value).get(
                    timeout=self._timeout_s
                )
            except KafkaError as err:
                raise KafkaUnavailable(f"sending an alert to {topic} failed: {err}") from None
            self._sent.inc()

    def teardown(self) -> None:
        for producer, _ in self._producers:
            producer.close(timeout=self._timeout_s)
        self._producers = []


class SendAlerts(beam.PTransform):
    """Sends each alert to every (connection, topic) as it arrives; key = topic id."""

    def __init__(
        self, sinks: Sequence[tuple[KafkaConnection, str]], timeout_s: float = 60.0
    ) -> None:
        super().__init__()
        self._sinks = tuple(sinks)
        self._timeout_s = timeout_s

    def expand(self, alerts: beam.PCollection) -> beam.PCollection:
        return alerts | "Send" >> beam.ParDo(_SendAlertsFn(self._sinks, self._timeout_s))
