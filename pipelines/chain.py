"""The one stage chain of ``newswatch run`` and ``newswatch stream``: raw items to stored
articles, the alerts they raise, and the items normalization rejected.

    raw ─Normalize─> DropSeen ─> ClusterNearDuplicates ─> ExtractEntities ─> MatchTopics
                                                                               └─> RaiseAlerts

Three stages consult what is already committed (exact dedupe, near-duplicates, one alert
per story). In a bounded run each is a join with the dataset; a join never fires on an
unbounded input, so the stream has its own form of each (``stages/``). The caller passes
the forms it runs (``run.batch_stages``, ``stream.stream_stages``); the chain has no mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam

from newswatch.pipelines.control.settings import Config
from newswatch.pipelines.stages.analyse import ExtractEntities, MatchTopics
from newswatch.pipelines.stages.normalize import Normalize

__all__ = ["AnalyseArticles", "StatefulStages"]


@dataclass(frozen=True)
class StatefulStages:
    """The stages that check committed state, in the form the caller runs."""

    drop_seen: beam.PTransform  # DropSeen | DropSeenStreaming
    cluster: beam.PTransform  # ClusterNearDuplicates | ClusterNearDuplicatesStreaming
    raise_alerts: beam.PTransform  # RaiseAlerts | RaiseAlertsStreaming


class AnalyseArticles(beam.PTransform):
    """Raw items in; ``{"articles", "alerts", "rejected"}`` out."""

    def __init__(self, config: Config, stateful: StatefulStages) -> None:
        super().__init__()
        self._config = config
        self._stateful = stateful

    def expand(self, raw: beam.PCollection) -> dict[str, beam.PCollection]:
        config = self._config
        normalized = raw | "Normalize" >> Normalize(config.normalize)
        new = normalized["articles"] | "DropSeen" >> self._stateful.drop_seen
        clustered = new | "ClusterNearDuplicates" >> self._stateful.cluster
        analysed = clustered | "ExtractEntities" >> ExtractEntities(
            config.nlp, config.aliases, config.topics
        )
        articles = analysed | "MatchTopics" >> MatchTopics(config.topics)
        alerts = articles | "RaiseAlerts" >> self._stateful.raise_alerts
        return {"articles": articles, "alerts": alerts, "rejected": normalized["rejected"]}
