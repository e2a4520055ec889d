"""What an alert is made of: its key, its stable id, and the alerts an article raises.

One story raises at most one alert per watched topic, ever. The key of that promise is
``alert_key(topic, cluster_id)``; every stage that checks it (the batch join with the alert
log, the stream's on-disk index) and the alert's public ``alert_id`` are made from it here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from newswatch.pipelines.core.rules import TopicRule
from newswatch.schemas import Alert, Article

__all__ = ["alert_id", "alert_key", "candidate_alerts", "pick_alert"]


def alert_key(topic: str, cluster_id: str) -> str:
    """The key of the one alert a story (``cluster_id``) can raise for a topic.

    >>> alert_key("dprk-russia-arms", "c1")
    'dprk-russia-arms\\x00c1'
    """
    return f"{topic}\x00{cluster_id}"


def alert_id(topic: str, cluster_id: str) -> str:
    """Stable public id of that alert: receivers can drop repeats by it.

    >>> alert_id("dprk-russia-arms", "c1") == alert_id("dprk-russia-arms", "c1")
    True
    >>> len(alert_id("dprk-russia-arms", "c1"))
    32
    """
    return hashlib.sha256(alert_key(topic, cluster_id).encode()).hexdigest()[:32]


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
            language=article.language,
        )


def _best_first(alert: Alert) -> tuple[float, str]:
    return -alert.score, alert.article_id


def pick_alert(candidates: Iterable[Alert], already_raised: bool) -> Alert | None:
    """One alert per story: the highest score, then the earliest article id; none if raised."""
    if already_raised:
        return None
    return min(candidates, key=_best_first, default=None)
