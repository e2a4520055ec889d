"""Stage 5: raising alerts, at most one per (watched topic, story), ever.

Both forms take the candidates of ``core/alerting.py`` and check them against every alert
already committed, by ``alert_key(topic, cluster_id)``:

* ``RaiseAlerts`` (batch) joins the run's candidates with the keys read back from the alert
  log, so reruns, retries and later copies of a story raise nothing new; of one run's
  candidates for a story, the best scored wins.
* ``RaiseAlertsStreaming`` looks each key up in an on-disk index of the alert log plus the
  keys this worker raised since (``commit/committed_keys.py``): a CoGroupByKey never fires
  on an unbounded input. The first qualifying article of a story raises it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.connectors.dataset.read import ReadStoredAlertKeys
from newswatch.pipelines.commit.committed_keys import ALERT_KEYS, CommittedKeys, SeenKeys
from newswatch.pipelines.core.alerting import alert_key, candidate_alerts, pick_alert
from newswatch.pipelines.core.rules import TopicRule
from newswatch.pipelines.stages.committed_join import OneUnlessCommitted
from newswatch.schemas import Alert, Article

__all__ = ["RaiseAlerts", "RaiseAlertsStreaming"]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class _CandidateAlertsFn(beam.DoFn):
    def __init__(self, rules: Sequence[TopicRule]) -> None:
        self._rules = tuple(rules)

    def process(self, article: Article) -> Iterator[tuple[str, Alert]]:
        for alert in candidate_alerts(article, self._rules, _now()):
            yield alert_key(alert.topic, alert.cluster_id), alert


class RaiseAlerts(beam.PTransform):
    """Stored articles to new alerts, never repeating one already in the alert log."""

    def __init__(self, rules: Sequence[TopicRule], output_root: str) -> None:
        super().__init__()
        self._rules = tuple(rules)
        self._root = output_root

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        return (
            articles
            | "Candidates" >> beam.ParDo(_CandidateAlertsFn(self._rules))
            | "OnePerStory"
            >> OneUnlessCommitted(
                ReadStoredAlertKeys(self._root),
                pick_alert,
                kept="alerts_raised",
                dropped="alerts_suppressed",
            )
        )


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
        for alert in candidate_alerts(article, self._rules, _now()):
            if not self._raised_before.first_time(alert_key(alert.topic, alert.cluster_id)):
                self._suppressed.inc()
                continue
            self._raised.inc()
            yield alert

    def teardown(self) -> None:
        if self._raised_before is not None:
            self._raised_before.close()


class RaiseAlertsStreaming(beam.PTransform):
    """Stored articles to new alerts as they pass, at most one per (topic, story) ever."""

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
