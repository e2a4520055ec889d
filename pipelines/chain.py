"""The one stage chain of ``newswatch run`` and ``newswatch stream``: raw items to stored
articles, the alerts they raise, and the items normalization rejected.

    raw ─Normalize─> DropSeen ─> ClusterNearDuplicates ─> ExtractEntities ─> MatchTopics
                                                                               └─> RaiseAlerts

Three stages consult what is already committed (exact dedupe, near-duplicates, one alert
per story). In a bounded run each is a join with the dataset; a join never fires on an
unbounded input, so the stream has its own form of each (``stages/``). Entity extraction
batches articles for spaCy by grouping them in a bounded run, and with Beam's
``BatchElements`` in the stream, for the same reason. The caller passes the forms it runs
(``run.batch_stages``, ``stream.stream_stages``); the chain has no mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam

from newswatch.pipelines.control.settings import Config
from newswatch.pipelines.stages.analyse import MatchTopics
from newswatch.pipelines.stages.normalize import Normalize

__all__ = ["AnalyseArticles", "StageForms"]


@dataclass(frozen=True)
class StageForms:
    """The stages with a bounded and an unbounded form, in the form the caller runs."""

    drop_seen: beam.PTransform  # DropSeen | DropSeenStreaming
    cluster: beam.PTransform  # ClusterNearDuplicates | ClusterNearDuplicatesStreaming
    extract_entities: beam.PTransform  # ExtractEntities | ExtractEntitiesStreaming
    raise_alerts: beam.PTransform  # RaiseAlerts | RaiseAlertsStreaming


class AnalyseArticles(beam.PTransform):
    """Raw items in; ``{"articles", "alerts", "rejected"}`` out."""

    def __init__(self, config: Config, forms: StageForms) -> None:
        super().__init__()
        self._config = config
        self._forms = forms

    def expand(self, raw: beam.PCollection) -> dict[str, beam.PCollection]:
        config = self._config
        normalized = raw | "Normalize" >> Normalize(config.normalize)
        new = normalized["articles"] | "DropSeen" >> self._forms.drop_seen
        clustered = new | "ClusterNearDuplicates" >> self._forms.cluster
        analysed = clustered | "ExtractEntities" >> self._forms.extract_entities
        articles = analysed | "MatchTopics" >> MatchTopics(config.topics)
        alerts = articles | "RaiseAlerts" >> self._forms.raise_alerts
        return {"articles": articles, "alerts": alerts, "rejected": normalized["rejected"]}
