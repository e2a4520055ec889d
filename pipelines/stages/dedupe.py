"""Stage 2: exact dedupe. An article already stored, or seen twice, is stored once.

``DropSeen`` (batch): the seen-set is the dataset itself (the committed ``article_id``
column), joined by key with the run's articles, so it holds on any number of workers and
on a distributed runner. Of one run's copies of an id, the earliest published is kept.

``DropSeenStreaming``: a CoGroupByKey never fires on an unbounded input, so each id is
looked up in an on-disk index of that column kept in step with the dataset, plus the ids
passed since the last sync (``commit/committed_keys.py``). The first copy to arrive is
kept. The ids passed but not yet committed are held by the worker, so every copy must
reach the same worker: true on the DirectRunner that ``newswatch stream`` runs on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.connectors.dataset.read import ReadStoredArticleIds
from newswatch.pipelines.commit.committed_keys import ARTICLE_IDS, CommittedKeys, SeenKeys
from newswatch.pipelines.stages.committed_join import OneUnlessCommitted
from newswatch.schemas import Article

__all__ = ["DropSeen", "DropSeenStreaming", "pick_unseen"]


def first_copy_order(article: Article) -> tuple[datetime | str, str, str]:
    """Which of several copies with one id is kept: earliest published, then by source, url."""
    return (
        article.published_at.isoformat() if article.published_at else "~",
        article.source,
        article.url,
    )


def pick_unseen(copies: Iterable[Article], already_stored: bool) -> Article | None:
    """The copy to store, or None when the article is already in the dataset."""
    if already_stored:
        return None
    return min(copies, key=first_copy_order, default=None)


def key_by_id(article: Article) -> tuple[str, Article]:
    return article.article_id, article


class DropSeen(beam.PTransform):
    """Keeps one copy of each article id not yet in the dataset under ``output_root``."""

    def __init__(self, output_root: str) -> None:
        super().__init__()
        self._root = output_root

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        return (
            articles
            | "KeyById" >> beam.Map(key_by_id)
            | "KeepUnseen"
            >> OneUnlessCommitted(
                ReadStoredArticleIds(self._root),
                pick_unseen,
                kept="articles_new",
                dropped="duplicates_dropped",
            )
        )


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
