"""Every source of a stream, polled on each tick of the stream clock.

    ticks = pipeline | Ticks(interval_s=0.5, stop_file=stop)
    read = ticks | "PollSources" >> PollSources(kafka=[KafkaPolling(...)],
                                                feeds=[FeedPolling(...)],
                                                options=FetchOptions(timeout_s=20.0))
    read["articles"]   # RawArticle
    read["rejected"]   # Rejection (bad messages, feed entries without link or id)
    read["reports"]    # PartitionReport, PartitionProgress, FeedReport

One DoFn polls all sources, in this order each tick: feeds (only those due, fetched on
background threads), then each Kafka source. They share one DoFn, not one transform each
merged with Flatten, because the DirectRunner's FnApiRunner materialises a Flatten of
several inputs as a stage of its own, and a stage downstream of an endless source never
runs there; one DoFn keeps the whole stream one fused stage.

Elements keep the tick's timestamp. The final tick (a drain) polls nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput

from newswatch.connectors.kafka.messages import KafkaCounters
from newswatch.connectors.kafka.poll import KafkaPoller, KafkaPolling
from newswatch.connectors.rss.poll import FeedPoller, FeedPolling
from newswatch.connectors.rss.read import FeedCounters, FeedReport, FetchOptions
from newswatch.connectors.stream.ticks import Tick
from newswatch.schemas import RawArticle, Rejection

__all__ = ["PollSources"]

REJECTED = "rejected"
REPORTS = "reports"


class _PollSourcesFn(beam.DoFn):
    def __init__(
        self, kafka: Sequence[KafkaPolling], feeds: Sequence[FeedPolling], options: FetchOptions
    ) -> None:
        self._kafka = tuple(kafka)
        self._feeds = tuple(feeds)
        self._options = options
        self._pollers: list[Any] = []
        self._kafka_counters = KafkaCounters(self.__class__)
        self._feed_counters = FeedCounters(self.__class__)

    def setup(self) -> None:
        pollers: list[Any] = []
        if self._feeds:
            pollers.append(FeedPoller(self._feeds, self._options))
        pollers.extend(KafkaPoller(spec) for spec in self._kafka)
        for poller in pollers:
            poller.open()
        self._pollers = pollers

    def process(self, tick: Tick) -> Iterator[Any]:
        if tick.final:
            return
        now = datetime.fromtimestamp(tick.at, UTC)
        for poller in self._pollers:
            if isinstance(poller, KafkaPoller):
                counters: KafkaCounters | FeedCounters = self._kafka_counters
            else:
                counters = self._feed_counters
            for item in poller.poll(now):
                if isinstance(item, RawArticle | Rejection | FeedReport):
                    counters.count(item)
                if isinstance(item, RawArticle):
                    yield item
                elif isinstance(item, Rejection):
                    yield TaggedOutput(REJECTED, item)
                else:
                    yield TaggedOutput(REPORTS, item)

    def teardown(self) -> None:
        for poller in self._pollers:
            poller.close()
        self._pollers = []


class PollSources(beam.PTransform):
    """Ticks in; ``{"articles", "rejected", "reports"}`` out, from every source."""

    def __init__(
        self,
        *,
        kafka: Sequence[KafkaPolling] = (),
        feeds: Sequence[FeedPolling] = (),
        options: FetchOptions | None = None,
    ) -> None:
        super().__init__()
        sources = [f.feed.source for f in feeds] + [k.source for k in kafka]
        duplicates = sorted({s for s in sources if sources.count(s) > 1})
        if duplicates:
            raise ValueError(f"duplicate sources: {', '.join(duplicates)}")
        self._kafka = tuple(kafka)
        self._feeds = tuple(feeds)
        self._options = options or FetchOptions()

    def expand(self, ticks: beam.PCollection) -> dict[str, beam.PCollection]:
        outputs = ticks | "Poll" >> beam.ParDo(
            _PollSourcesFn(self._kafka, self._feeds, self._options)
        ).with_outputs(REJECTED, REPORTS, main="articles")
        return {
            "articles": outputs.articles,
            "rejected": outputs[REJECTED],
            "reports": outputs[REPORTS],
        }
