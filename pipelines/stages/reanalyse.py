"""The stages of ``newswatch reprocess`` around the analysis it re-runs.

``PairWithStored`` brings each re-analysed article back together with the file it is
stored in and the topics it matched there; ``CountTopicChanges`` tallies what changed per
topic; ``NewlyMatched`` keeps of each article only the topics it did not match before,
which is what ``RaiseAlerts`` may alert on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import apache_beam as beam

from newswatch.pipelines.core.topic_changes import TopicChanges
from newswatch.schemas import Article

__all__ = ["CountTopicChanges", "NewlyMatched", "PairWithStored", "Reanalysed"]

STORED = "stored"
REANALYSED = "reanalysed"


class Reanalysed(NamedTuple):
    """A stored article after re-analysis, the file it is in and its topics before."""

    path: str
    before: tuple[str, ...]  # topic ids as stored
    article: Article


def _stored_entry(element: tuple[str, Article]) -> tuple[str, tuple[str, tuple[str, ...]]]:
    path, article = element
    return article.article_id, (path, tuple(t.id for t in article.topics))


def _by_id(article: Article) -> tuple[str, Article]:
    return article.article_id, article


def _pair(element: tuple[str, dict[str, list]]) -> Iterator[Reanalysed]:
    article_id, grouped = element
    stored, reanalysed = grouped[STORED], grouped[REANALYSED]
    if stored and not reanalysed:
        # Writing the file without this row would lose the article: fail the pass instead.
        raise RuntimeError(f"article {article_id} was read but not re-analysed")
    for path, before in stored:
        yield Reanalysed(path, before, reanalysed[0])


class PairWithStored(beam.PTransform):
    """``{"stored": (path, Article) as read, "reanalysed": Article}`` in; ``Reanalysed`` out."""

    def expand(self, inputs: dict[str, beam.PCollection]) -> beam.PCollection:
        return (
            {
                STORED: inputs[STORED] | "KeyStored" >> beam.Map(_stored_entry),
                REANALYSED: inputs[REANALYSED] | "KeyReanalysed" >> beam.Map(_by_id),
            }
            | "JoinById" >> beam.CoGroupByKey()
            | "Pair" >> beam.FlatMap(_pair)
        )


class _TopicChangesFn(beam.CombineFn):
    def create_accumulator(self) -> TopicChanges:
        return TopicChanges()

    def add_input(self, tally: TopicChanges, item: Reanalysed) -> TopicChanges:
        tally.add(item.before, (t.id for t in item.article.topics), item.article.title)
        return tally

    def merge_accumulators(self, tallies: Iterable[TopicChanges]) -> TopicChanges:
        merged = TopicChanges()
        for tally in tallies:
            merged.merge(tally)
        return merged

    def extract_output(self, tally: TopicChanges) -> TopicChanges:
        return tally


class CountTopicChanges(beam.PTransform):
    """``Reanalysed`` in; one ``TopicChanges`` out (empty when there was nothing)."""

    def expand(self, reanalysed: beam.PCollection) -> beam.PCollection:
        return reanalysed | "Tally" >> beam.CombineGlobally(_TopicChangesFn())


def _newly_matched(item: Reanalysed) -> Iterator[Article]:
    fresh = tuple(t for t in item.article.topics if t.id not in item.before)
    if fresh:
        yield dataclasses.replace(item.article, topics=fresh)


class NewlyMatched(beam.PTransform):
    """``Reanalysed`` in; the articles with a topic they did not match before, with only
    those topics."""

    def expand(self, reanalysed: beam.PCollection) -> beam.PCollection:
        return reanalysed | "KeepNewTopics" >> beam.FlatMap(_newly_matched)
