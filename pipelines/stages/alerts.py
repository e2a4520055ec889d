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
from apache_beam.metrics.metricbase import Counter

from newswatch.connectors.dataset.read import ReadStoredAlertKeys
from newswatch.pipelines.commit.committed_keys import ALERT_KEYS, CommittedKeys, SeenKeys
from newswatch.pipelines.core.alerting import alert_key, candidate_alerts, pick_alert
from newswatch.pipelines.core.rules import TopicRule
from newswatch.schemas import Alert, Article

__all__ = ["RaiseAlerts", "RaiseAlertsStreaming"]

CANDIDATES = "candidates"
RAISED = "raised"


def _counters(owner: type) -> tuple[Counter, Counter]:
    return (
        Metrics.counter(owner, "alerts_raised"),
        Metrics.counter(owner, "alerts_suppressed"),
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class _CandidateAlertsFn(beam.DoFn):
    def __init__(self, rules: Sequence[TopicRule]) -> None:
        self._rules = tuple(rules)

    def process(self, article: Article) -> Iterator[tuple[str, Alert]]:
        for alert in candidate_alerts(article, self._rules, _now()):
            yield alert_key(alert.topic, alert.cluster_id), alert


def mark_raised(key: str) -> tuple[str, bool]:
    return key, True


class _PickAlertFn(beam.DoFn):
    def __init__(self) -> None:
        self._raised, self._suppressed = _counters(self.__class__)

    def process(self, element: tuple[str, dict[str, list]]) -> Iterator[Alert]:
        _, grouped = element
        candidates = list(grouped[CANDIDATES])
        if not candidates:
            return
        alert = pick_alert(candidates, already_raised=bool(grouped[RAISED]))
        self._suppressed.inc(len(candidates) - (1 if alert else 0))
        if alert is not None:
            self._raised.inc()
            yield alert


class RaiseAlerts(beam.PTransform):
    """Stored articles to new alerts, never repeating one already in the alert log."""

    def __init__(self, rules: Sequence[TopicRule], output_root: str) -> None:
        super().__init__()
        self._rules = tuple(rules)
        self._root = output_root

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        raised = (
            articles.pipeline
            | "ReadAlertLog" >> ReadStoredAlertKeys(self._root)
            | "MarkRaised" >> beam.Map(mark_raised)
        )
        candidates = articles | "Candidates" >> beam.ParDo(_CandidateAlertsFn(self._rules))
        return (
            {CANDIDATES: candidates, RAISED: raised}
            | "JoinWithLog" >> beam.CoGroupByKey()
            | "OnePerStory" >> beam.ParDo(_PickAlertFn())
        )


class _RaiseAlertsStreamingFn(beam.DoFn):
    def __init__(self, rules: Sequence[TopicRule], output_root: str, refresh_s: float) -> None:
        self._rules = tuple(rules)
        self._root = output_root
        self._refresh_s = refresh_s
        self._raised_before: SeenKeys | None = None
        self._raised, self._suppressed = _counters(self.__class__)

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
