"""Exact dedupe in a stream: the first copy of an article id is kept, later copies dropped.

The streaming form of ``DropSeen`` (``pipelines/dedupe.py``). The batch form joins the
run's articles with the dataset's ``article_id`` column in a CoGroupByKey, which never
fires on an unbounded input; here each worker holds a snapshot of that column
(``pipelines/snapshots.py``, read again every ``refresh_s``) plus the ids it has passed
since, forgotten once a snapshot holds them. Copies within the stream: the first to arrive
is kept (the batch form keeps the earliest published of one run's copies).

The seen-set is per worker, so every copy must reach the same worker: true on the
DirectRunner that ``newswatch stream`` runs on (one worker runs the fused stream).
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.pipelines.snapshots import Recent, Refreshing, StoredIds, read_article_ids
from newswatch.schemas import Article

__all__ = ["DropSeenStreaming"]


class _DropSeenStreamingFn(beam.DoFn):
    def __init__(self, output_root: str, refresh_s: float) -> None:
        self._root = output_root
        self._refresh_s = refresh_s
        self._stored: Refreshing[StoredIds] | None = None
        self._recent: Recent[str] = Recent()
        self._kept = Metrics.counter(self.__class__, "articles_new")
        self._dropped = Metrics.counter(self.__class__, "duplicates_dropped")

    def setup(self) -> None:
        self._recent = Recent()
        self._stored = Refreshing(self._load, self._refresh_s, on_swap=self._recent.forget_held)

    def _load(self) -> StoredIds:
        return read_article_ids(self._root)

    def process(self, article: Article) -> Iterator[Article]:
        assert self._stored is not None, "setup() reads the snapshot"
        stored = self._stored.current()
        if article.article_id in self._recent or article.article_id in stored:
            self._dropped.inc()
            return
        self._recent.add(article.article_id)
        self._kept.inc()
        yield article


class DropSeenStreaming(beam.PTransform):
    """Keeps the first copy of each article id not yet in the dataset under ``output_root``."""

    def __init__(self, output_root: str, refresh_s: float = 3600.0) -> None:
        super().__init__()
        self._root = output_root
        self._refresh_s = refresh_s

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        return articles | "KeepUnseen" >> beam.ParDo(
            _DropSeenStreamingFn(self._root, self._refresh_s)
        )
