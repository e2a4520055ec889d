"""Exact dedupe: an article already stored, or seen twice in this run, is stored once.

The seen-set is the dataset itself (the committed ``article_id`` column), joined by key
with the run's articles, so it holds on any number of workers and on a distributed runner.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.connectors.dataset.write import ReadStoredArticleIds
from newswatch.schemas import Article

NEW = "new"
STORED = "stored"


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


def mark_stored(article_id: str) -> tuple[str, bool]:
    return article_id, True


class _DropSeenFn(beam.DoFn):
    def __init__(self) -> None:
        self._kept = Metrics.counter(self.__class__, "articles_new")
        self._dropped = Metrics.counter(self.__class__, "duplicates_dropped")

    def process(self, element: tuple[str, dict[str, list]]) -> Iterator[Article]:
        _, grouped = element
        copies = list(grouped[NEW])
        if not copies:
            return
        kept = pick_unseen(copies, already_stored=bool(grouped[STORED]))
        self._dropped.inc(len(copies) - (1 if kept else 0))
        if kept is not None:
            self._kept.inc()
            yield kept


class DropSeen(beam.PTransform):
    """Keeps one copy of each article id not yet in the dataset under ``output_root``."""

    def __init__(self, output_root: str) -> None:
        super().__init__()
        self._root = output_root

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        stored = (
            articles.pipeline
            | "ReadStoredIds" >> ReadStoredArticleIds(self._root)
            | "MarkStored" >> beam.Map(mark_stored)
        )
        new = articles | "KeyById" >> beam.Map(key_by_id)
        return (
            {NEW: new, STORED: stored}
            | "JoinWithStored" >> beam.CoGroupByKey()
            | "KeepUnseen" >> beam.ParDo(_DropSeenFn())
        )
