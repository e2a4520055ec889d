"""Exact dedupe in a stream: the first copy of an article id is kept, later copies dropped.

The streaming form of ``DropSeen`` (``pipelines/stages/dedupe.py``). The batch form joins the
run's articles with the dataset's ``article_id`` column in a CoGroupByKey, which never
fires on an unbounded input; here each id is looked up in an on-disk index of that column
kept in step with the dataset, plus the ids passed since the last sync
(``pipelines/commit/committed_keys.py``). Copies within the stream: the first to arrive is kept
(the batch form keeps the earliest published of one run's copies).

The ids passed but not yet committed are held by the worker, so every copy must reach the
same worker: true on the DirectRunner that ``newswatch stream`` runs on (one worker runs
the fused stream).
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.pipelines.commit.committed_keys import ARTICLE_IDS, CommittedKeys, SeenKeys
from newswatch.schemas import Article

__all__ = ["DropSeenStreaming"]


class _DropSeenStreamingFn(beam.DoFn):
    def __init__(self, output_root: str, refresh_s: float) -> None:
        self._root = output_root
        self._refresh_s = refresh_s
        self._seen: SeenKeys | None = None
        self._kept = Metrics.counter(self.__class__, "articles_new")
        self._dropped = Metrics.counter(self.__class__, "duplicates_dropped")

    def setup(self) -> None:
        self._seen = SeenKeys(CommittedKeys(self._root, ARTICLE_IDS), self._refresh_s)

    def process(self, article: Article) -> Iterator[Article]:
        assert self._seen is not None, "setup() opens the index"
        if not self._seen.first_time(article.article_id):
            self._dropped.inc()
            return
        self._kept.inc()
        yield article

    def teardown(self) -> None:
        if self._seen is not None:
            self._seen.close()


class DropSeenStreaming(beam.PTransform):
    """Keeps the first copy of each article id not yet in the dataset under ``output_root``."""

    def __init__(self, output_root: str, refresh_s: float = 300.0) -> None:
        super().__init__()
        self._root = output_root
        self._refresh_s = refresh_s

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        return articles | "KeepUnseen" >> beam.ParDo(
            _DropSeenStreamingFn(self._root, self._refresh_s)
        )
