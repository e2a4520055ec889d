"""Raising alerts: at most one per (watched topic, story), ever.

An alert is keyed by (topic, cluster_id); the keys of alerts already committed are read
back from the alert log and joined with this run's candidates, so reruns, retries and
later copies of a story raise nothing new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.connectors.dataset.write import ReadStoredAlertKeys
from newswatch.pipelines.core.rules import TopicRule
from newswatch.schemas import Alert, Article

CANDIDATES = "candidates"
RAISED = "raised"


def alert_id(topic: str, cluster_id: str) -> str:
    """Stable id of the one alert a story can raise for a topic."""
    return hashlib.sha256(f"{topic}\x00{cluster_id}".encode()).hexdigest()[:32]


def candidate_alerts(
    article: Article, rules: Sequence[TopicRule], now: datetime
) -> Iterator[Alert]:
    """The alerts an article would raise: its matched topics at or above each rule's min_score."""
    if article.is_duplicate:
        return
    by_id = {rule.id: rule for rule in rules}
    canonical = tuple(dict.fromkeys(e.canonical for e in article.entities))
    for match in article.topics:
        rule = by_id.get(match.id)
        if rule is None or match.score < rule.min_score:
            continue
        yield Alert(
            alert_id=alert_id(match.id, article.cluster_id),
            topic=match.id,
            topic_title=rule.title,
            article_id=article.article_id,
            cluster_id=article.cluster_id,
            source=article.source,
            title=article.title,
            url=article.url,
            published_at=article.published_at,
            score=match.score,
            evidence=match.evidence,
            entities=canonical,
            created_at=now,
        )


def pick_alert(candidates: Iterable[Alert], already_raised: bool) -> Alert | None:
    """One alert per story: the highest score, then the earliest article id; none if raised."""
    if already_raised:
        return None
    return min(candidates, key=lambda a: (-a.score, a.article_id), default=None)


class _CandidateAlertsFn(beam.DoFn):
    def __init__(self, rules: Sequence[TopicRule]) -> None:
        self._rules = tuple(rules)

    def process(self, article: Article) -> Iterator[tuple[tuple[str, str], Alert]]:
        now = datetime.now(UTC).replace(microsecond=0)
        for alert in candidate_alerts(article, self._rules, now):
            yield (alert.topic, alert.cluster_id), alert


def mark_raised(key: tuple[str, str]) -> tuple[tuple[str, str], bool]:
    return (key[0], key[1]), True


class _PickAlertFn(beam.DoFn):
    def __init__(self) -> None:
        self._raised = Metrics.counter(self.__class__, "alerts_raised")
        self._suppressed = Metrics.counter(self.__class__, "alerts_suppressed")

    def process(self, element: tuple[tuple[str, str], dict[str, list]]) -> Iterator[Alert]:
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
