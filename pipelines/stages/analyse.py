"""The NLP stages: named entities (spaCy, once per worker) and watched-topic matching."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.pipelines.control.settings import NlpSettings
from newswatch.pipelines.core.aliases import AliasTable
from newswatch.pipelines.core.multilingual import RoutedAnalyser
from newswatch.pipelines.core.rules import TextAnalysis, TopicRule, match_topics
from newswatch.schemas import Article

Analysed = tuple[Article, TextAnalysis]


class _AnalyseBatchFn(beam.DoFn):
    """Runs spaCy over a batch of articles with ``nlp.pipe``, each through its language's
    pipeline; the models load in setup."""

    def __init__(
        self, settings: NlpSettings, aliases: AliasTable, rules: Sequence[TopicRule]
    ) -> None:
        self._settings = settings
        self._aliases = aliases
        self._rules = tuple(rules)
        self._analyser: RoutedAnalyser | None = None
        self._articles = Metrics.counter(self.__class__, "articles_analysed")
        self._batch_sizes = Metrics.distribution(self.__class__, "nlp_batch_size")

    def setup(self) -> None:
        self._analyser = RoutedAnalyser.load(
            self._settings.model,
            self._aliases,
            self._rules,
            self._settings.languages,
            self._settings.batch_size,
        )

    def process(self, batch: Sequence[Article]) -> Iterator[Analysed]:
        assert self._analyser is not None, "setup() loads the model"
        yield from self._analyser.analyse_articles(batch, self._settings.max_chars)
        self._articles.inc(len(batch))
        self._batch_sizes.update(len(batch))


class ExtractEntities(beam.PTransform):
    """Articles to (article with canonical entities, per-sentence text analysis) pairs."""

    def __init__(
        self, settings: NlpSettings, aliases: AliasTable, rules: Sequence[TopicRule]
    ) -> None:
        super().__init__()
        self._settings = settings
        self._aliases = aliases
        self._rules = tuple(rules)

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        return (
            articles
            | "Batch"
            >> beam.BatchElements(
                min_batch_size=min(8, self._settings.batch_size),
                max_batch_size=self._settings.batch_size,
            )
            | "Analyse" >> beam.ParDo(_AnalyseBatchFn(self._settings, self._aliases, self._rules))
        )


class _MatchTopicsFn(beam.DoFn):
    def __init__(self, rules: Sequence[TopicRule]) -> None:
        self._rules = tuple(rules)
        self._matched = Metrics.counter(self.__class__, "articles_matched")

    def process(self, element: Analysed) -> Iterator[Article]:
        article, analysis = element
        topics = match_topics(analysis, self._rules)
        if topics:
            self._matched.inc()
        yield dataclasses.replace(article, topics=topics)


class MatchTopics(beam.PTransform):
    """Scores every watched topic against each analysed article; keeps matches with evidence."""

    def __init__(self, rules: Sequence[TopicRule]) -> None:
        super().__init__()
        self._rules = tuple(rules)

    def expand(self, analysed: beam.PCollection) -> beam.PCollection:
        return analysed | "Match" >> beam.ParDo(_MatchTopicsFn(self._rules))
