"""Stage 1: every raw item becomes an article in the common schema, or a rejection with a reason.

Each article's language is detected here (``core/languages.py``): near-duplicate
shingles and the NLP stage both depend on it.

The rules are ``core/normalization.py``'s ``normalize_entry``; this is its Beam shell.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.connectors.split_by_type import SplitByType
from newswatch.pipelines.core.languages import LanguageDetector, with_language
from newswatch.pipelines.core.normalization import NormalizeSettings, normalize_entry
from newswatch.schemas import Article, RawArticle, Rejection

__all__ = ["Normalize"]


class _NormalizeFn(beam.DoFn):
    def __init__(self, settings: NormalizeSettings) -> None:
        self._settings = settings
        self._normalized = Metrics.counter(self.__class__, "articles_normalized")
        self._rejected = Metrics.counter(self.__class__, "articles_rejected")
        self._detector: LanguageDetector | None = None

    def setup(self) -> None:
        # The language decides how the article is shingled and analysed downstream.
        self._detector = LanguageDetector()

    def process(self, raw: RawArticle) -> Iterator[Article | Rejection]:
        assert self._detector is not None, "setup() loads the language detector"
        result = normalize_entry(raw, self._settings)
        if isinstance(result, Rejection):
            self._rejected.inc()
            yield result
        else:
            self._normalized.inc()
            article = with_language(result, self._detector)
            Metrics.counter(self.__class__, f"language_{article.language or 'unknown'}").inc()
            yield article


class Normalize(beam.PTransform):
    """RawArticles to Articles; what cannot be an article goes to the ``rejected`` output.

    Returns a dict: ``{"articles": PCollection[Article], "rejected": PCollection[Rejection]}``.
    """

    def __init__(self, settings: NormalizeSettings) -> None:
        super().__init__()
        self._settings = settings

    def expand(self, raw: beam.PCollection) -> dict[str, beam.PCollection]:
        return (
            raw
            | "NormalizeEntry" >> beam.ParDo(_NormalizeFn(self._settings))
            | "ByType" >> SplitByType("articles", rejected=Rejection)
        )
