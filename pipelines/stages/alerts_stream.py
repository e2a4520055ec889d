"""Alerts in a stream: raised per article as it passes, sent to Kafka at once.

``RaiseAlertsStreaming`` is the streaming form of ``RaiseAlerts`` (``pipelines/stages/alerts.py``):
the same candidates (``candidate_alerts``), at most one alert per (topic, cluster_id) ever,
looked up in an on-disk index of the alert log and the keys this worker raised since
(``pipelines/commit/committed_keys.py``), instead of a CoGroupByKey that never fires on an
unbounded input. The first qualifying article of a story raises it (batch picks the
best-scored of one run's).

``SendAlerts`` delivers each alert to the Kafka alert sinks as soon as it is raised
(acks=all, flushed per alert), before its window commits: the alert log gets it when the
window commits, and that window's manifest records the alerts as already delivered.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.connectors.kafka.connection import KafkaConnection, KafkaUnavailable
from newswatch.pipelines.stages.alerts import candidate_alerts
from newswatch.pipelines.commit.committed_keys import ALERT_KEYS, CommittedKeys, SeenKeys, alert_key
from newswatch.pipelines.core.rules import TopicRule
from newswatch.schemas import Alert, Article

__all__ = ["RaiseAlertsStreaming", "SendAlerts"]


class _RaiseAlertsStreamingFn(beam.DoFn):
    def __init__(self, rules: Sequence[TopicRule], output_root: str, refresh_s: float) -> None:
        self._rules = tuple(rules)
        self._root = output_root
        self._refresh_s = refresh_s
        self._raised_before: SeenKeys | None = None
        self._raised = Metrics.counter(self.__class__, "alerts_raised")
        self._suppressed = Metrics.counter(self.__class__, "alerts_suppressed")

    def setup(self) -> None:
        self._raised_before = SeenKeys(CommittedKeys(self._root, ALERT_KEYS), self._refresh_s)

    def process(self, article: Article) -> Iterator[Alert]:
        assert self._raised_before is not None, "setup() opens the index"
        now = datetime.now(UTC).replace(microsecond=0)
        for alert in candidate_alerts(article, self._rules, now):
            if not self._raised_before.first_time(alert_key(alert.topic, alert.cluster_id)):
                self._suppressed.inc()
                continue
            self._raised.inc()
            yield alert

    def teardown(self) -> None:
        if self._raised_before is not None:
            self._raised_before.close()


class RaiseAlertsStreaming(beam.PTransform):
    """Stored articles to new alerts, at most one per (topic, story) ever."""

    def __init__(
        self, rules: Sequence[TopicRule], output_root: str, refresh_s: float = 300.0
    ) -> None:
        super().__init__()
        self._rules = tuple(rules)
        self._root = output_root
        self._refresh_s = refresh_s

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        return articles | "OnePerStory" >> beam.ParDo(
            _RaiseAlertsStreamingFn(self._rules, self._root, self._refresh_s)
        )


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
