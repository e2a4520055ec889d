"""The NLP stages: named entities (spaCy, once per worker) and watched-topic matching.

spaCy is fastest on batches of texts. ``ExtractEntities`` (bounded runs) gathers a pass's
articles and cuts them into batches of equal work (``core/batching.py``), which a second
grouping spreads over the workers: nothing is emitted from ``finish_bundle``, which Beam's
DaskRunner drops. ``ExtractEntitiesStreaming`` uses Beam's ``BatchElements``: a grouping
never fires on the stream's unbounded input.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.pipelines.control.settings import NlpSettings
from newswatch.pipelines.control.worker_cache import WorkerCache
from newswatch.pipelines.core.aliases import AliasTable
from newswatch.pipelines.core.batching import balanced_batches
from newswatch.pipelines.core.rules import TextAnalysis, TopicRule, match_topics
from newswatch.schemas import Article

if TYPE_CHECKING:
    from newswatch.pipelines.core.multilingual import RoutedAnalyser

Analysed = tuple[Article, TextAnalysis]

PASS = "pass"  # the one key a pass's articles are gathered under, to be cut into batches


# The loaded pipelines a worker process keeps between DoFn instances (control/worker_cache.py).
_LOADED: WorkerCache[RoutedAnalyser] = WorkerCache()


def _cache_token(settings: NlpSettings, aliases: AliasTable, rules: Sequence[TopicRule]) -> str:
    """What the loaded pipelines are made of: the copies of the NLP DoFn in a pipeline, and
    those of the next pass of the run on the same worker, share them."""
    return hashlib.sha256(pickle.dumps((settings, aliases, tuple(rules)))).hexdigest()


def _load_analyser(
    settings: NlpSettings, aliases: AliasTable, rules: Sequence[TopicRule]
) -> RoutedAnalyser:
    # Imported here: the process that builds the graph never needs spaCy, only workers.
    from newswatch.pipelines.core.multilingual import RoutedAnalyser

    return RoutedAnalyser.load(
        settings.model, aliases, rules, settings.languages, settings.batch_size
    )


def _preload(
    token: str, settings: NlpSettings, aliases: AliasTable, rules: Sequence[TopicRule]
) -> None:
    _LOADED.preload(token, functools.partial(_load_analyser, settings, aliases, rules))


def analyser_warm_up(
    settings: NlpSettings, aliases: AliasTable, rules: Sequence[TopicRule]
) -> Callable[[], None]:
    """What a local worker process can run before the NLP stage reaches it: loading the
    stage's pipelines (about 1 s) while the run plans, reads and dedupes."""
    rules = tuple(rules)
    return functools.partial(
        _preload, _cache_token(settings, aliases, rules), settings, aliases, rules
    )


class _AnalyseBatchFn(beam.DoFn):
    """Runs spaCy over a batch of articles with ``nlp.pipe``, each through its language's
    pipeline; the models load in setup, or come loaded from an earlier instance."""

    def __init__(
        self, settings: NlpSettings, aliases: AliasTable, rules: Sequence[TopicRule]
    ) -> None:
        self._settings = settings
        self._aliases = aliases
        self._rules = tuple(rules)
        self._token = _cache_token(settings, aliases, self._rules)
        self._analyser: RoutedAnalyser | None = None
        self._articles = Metrics.counter(self.__class__, "articles_analysed")
        self._batch_sizes = Metrics.distribution(self.__class__, "nlp_batch_size")

    def setup(self) -> None:
        self._analyser = _LOADED.take(
            self._token,
            functools.partial(_load_analyser, self._settings, self._aliases, self._rules),
        )

    def teardown(self) -> None:
        if self._analyser is not None:
            _LOADED.give_back(self._token, self._analyser)
            self._analyser = None

    def process(self, batch: Sequence[Article]) -> Iterator[Analysed]:
        assert self._analyser is not None, "setup() loads the model"
        yield from self._analyser.analyse_articles(batch, self._settings.max_chars)
        self._articles.inc(len(batch))
        self._batch_sizes.update(len(batch))


def _article_id(article: Article) -> str:
    return article.article_id


class _DocumentChars:
    """Picklable: what spaCy's work on an article grows with, the characters it reads."""

    def __init__(self, max_chars: int) -> None:
        self._max_chars = max_chars

    def __call__(self, article: Article) -> int:
        return min(len(article.title) + len(article.text), self._max_chars)


class _BalancedBatchesFn(beam.DoFn):
    """A pass's articles, gathered, to (batch number, batch): batches of equal work, in id order."""

    def __init__(self, settings: NlpSettings) -> None:
        self._batch_size = settings.batch_size
        self._cost = _DocumentChars(settings.max_chars)

    def process(
        self, element: tuple[str, Iterable[Article]]
    ) -> Iterator[tuple[int, list[Article]]]:
        _, articles = element
        ordered = sorted(articles, key=_article_id)
        yield from enumerate(balanced_batches(ordered, self._cost, self._batch_size))


def _batch_of(element: tuple[int, Iterable[list[Article]]]) -> Iterator[list[Article]]:
    _, batches = element
    yield from batches


class _ExtractEntitiesBase(beam.PTransform):
    def __init__(
        self, settings: NlpSettings, aliases: AliasTable, rules: Sequence[TopicRule]
    ) -> None:
        super().__init__()
        self._settings = settings
        self._aliases = aliases
        self._rules = tuple(rules)

    def _analyse(self) -> beam.ParDo:
        return beam.ParDo(_AnalyseBatchFn(self._settings, self._aliases, self._rules))


class ExtractEntities(_ExtractEntitiesBase):
    """Articles to (article with canonical entities, per-sentence text analysis) pairs,
    on a bounded input."""

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        return (
            articles
            | "KeyOfPass" >> beam.WithKeys(PASS)
            | "GatherPass" >> beam.GroupByKey()
            | "Batch" >> beam.ParDo(_BalancedBatchesFn(self._settings))
            # Spreads the batches over the workers.
            | "GroupByBatch" >> beam.GroupByKey()
            | "Batches" >> beam.FlatMap(_batch_of)
            | "Analyse" >> self._analyse()
        )


class ExtractEntitiesStreaming(_ExtractEntitiesBase):
    """Articles to (article with canonical entities, per-sentence text analysis) pairs,
    as they pass."""

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        return (
            articles
            | "Batch"
            >> beam.BatchElements(
                min_batch_size=min(8, self._settings.batch_size),
                max_batch_size=self._settings.batch_size,
            )
            | "Analyse" >> self._analyse()
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
