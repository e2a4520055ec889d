"""Language detection, analysis routed by language, inflected terms, and the startup
check of configured languages."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from configs import rss_config
from multilingual_reports import REPORTS

from newswatch.pipelines.cli import main
from newswatch.pipelines.control.config import load_config
from newswatch.pipelines.core.installed import LanguageNotInstalled, check_languages
from newswatch.pipelines.core.languages import LanguageDetector, feed_language
from newswatch.pipelines.core.minhash import shingle_hashes
from newswatch.pipelines.core.multilingual import RoutedAnalyser, load_language_pipeline
from newswatch.pipelines.core.nlp import TextAnalyser, document_text
from newswatch.pipelines.core.rule_files import parse_topic_rules
from newswatch.pipelines.core.rules import match_topics

# (language, a headline-length text, a paragraph)
TEXTS = [
    (
        "en",
        "North Korea sends artillery shells to Russia",
        "South Korea's spy agency said on Thursday that North Korea has shipped millions of "
        "artillery shells and dozens of ballistic missiles to Russia since last summer.",
    ),
    (
        "ru",
        "Северная Корея отправила снаряды в Россию",
        "Южнокорейская разведка сообщила в четверг, что Северная Корея с прошлого лета "
        "отправила в Россию миллионы артиллерийских снарядов и десятки баллистических ракет.",
    ),
    (
        "uk",
        "Північна Корея надіслала снаряди до Росії",
        "Південнокорейська розвідка повідомила в четвер, що Північна Корея з минулого літа "
        "надіслала до Росії мільйони артилерійських снарядів і десятки балістичних ракет.",
    ),
    (
        "de",
        "Nordkorea schickt Granaten nach Russland",
        "Der südkoreanische Geheimdienst teilte am Donnerstag mit, dass Nordkorea seit dem "
        "vergangenen Sommer Millionen Artilleriegranaten und Dutzende Raketen geliefert hat.",
    ),
    (
        "fr",
        "La Corée du Nord envoie des obus à la Russie",
        "Le service de renseignement sud-coréen a indiqué jeudi que la Corée du Nord a livré "
        "à la Russie des millions d'obus et des dizaines de missiles balistiques depuis l'été.",
    ),
    (
        "ko",
        "북한, 러시아에 포탄 수송",
        "국가정보원은 목요일 북한이 지난여름부터 러시아에 포탄 수백만 발과 탄도미사일 수십 "
        "기를 보냈다고 밝혔다.",
    ),
    (
        "ja",
        "北朝鮮がロシアに砲弾を送る",
        "韓国の情報機関は木曜日、北朝鮮が昨年の夏から数百万発の砲弾と数十発の弾道ミサイルを"
        "ロシアに送ったと明らかにした。",
    ),
    (
        "zh",
        "朝鲜向俄罗斯运送炮弹",
        "韩国情报机构周四表示，自去年夏天以来，朝鲜已向俄罗斯运送数百万发炮弹和数十枚弹道导弹。",
    ),
]


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector()


@pytest.fixture(scope="module")
def analyser() -> RoutedAnalyser:
    config = load_config(None)
    return RoutedAnalyser.load(config.nlp.model, config.aliases, config.topics)


@pytest.mark.parametrize(("language", "short", "long"), TEXTS, ids=[t[0] for t in TEXTS])
def test_detects_short_and_long_texts(
    detector: LanguageDetector, language: str, short: str, long: str
) -> None:
    assert detector.language(short, None) == language
    assert detector.language(long, None) == language
    assert detector.language(f"{short}\n\n{long}", "en") == language  # sure beats the feed


@pytest.mark.parametrize(
    ("text", "declared", "expected"),
    [
        ("2024-05-01 12:00 KN-23", "ru", "ru"),  # unsure: the feed's own value is kept
        ("1234 5678", "pt-BR", "pt"),  # no letters at all
        ("1234 5678", None, None),
        ("", "uk", "uk"),
    ],
)
def test_feed_language_is_kept_when_the_detector_is_unsure(
    detector: LanguageDetector, text: str, declared: str | None, expected: str | None
) -> None:
    assert detector.language(text, declared) == expected


def test_feed_language_tags() -> None:
    assert [feed_language(v) for v in ("en-US", "ZH_tw", "ko", "english", None, "")] == [
        "en",
        "zh",
        "ko",
        None,
        None,
        None,
    ]


@pytest.mark.parametrize("language", sorted(REPORTS))
def test_reports_find_canonical_english_entities_and_the_topic(
    analyser: RoutedAnalyser, language: str
) -> None:
    title, text = REPORTS[language]
    config = load_config(None)
    entities, analysis = next(
        iter(analyser.analyser_for(language).analyse([document_text(title, text, 10_000)]))
    )
    assert {"North Korea", "Russia"} <= {e.canonical for e in entities}
    assert "dprk-russia-arms" in {m.id for m in match_topics(analysis, config.topics)}


@pytest.mark.parametrize(
    ("language", "text", "term"),
    [
        # genitive plural, instrumental, prepositional: one dictionary lemma each
        ("ru", "Пхеньян поставил десятки тысяч снарядов.", "снаряд"),
        ("ru", "Переговоры с Северной Кореей продолжатся.", "северная корея"),
        ("uk", "Росія отримала ракети від північнокорейських військових.", "військовий"),
        ("de", "Nordkoreanische Soldaten kämpfen.", "nordkoreanisch"),
    ],
)
def test_an_inflected_form_matches_its_rule_term(
    analyser: RoutedAnalyser, language: str, text: str, term: str
) -> None:
    rules = parse_topic_rules(
        {"topics": [{"id": "t", "all": [{"any": {language: [term]}}]}]}, "test.yaml"
    )
    nlp, table = load_language_pipeline(language, load_config(None).aliases)
    _, analysis = next(iter(TextAnalyser(nlp, table, rules, 8).analyse([text])))
    assert term in analysis.terms
    assert [m.id for m in match_topics(analysis, rules)] == ["t"]


def test_terms_listed_for_one_language_are_not_searched_in_another(
    analyser: RoutedAnalyser,
) -> None:
    # Korean "北" is North Korea; in Chinese it is in every "北京" (Beijing).
    _, analysis = next(iter(analyser.analyser_for("zh").analyse(["北京表示，俄罗斯提供武器。"])))
    assert "北" not in analysis.terms
    _, analysis = next(iter(analyser.analyser_for("ko").analyse(["北, 러시아에 무기 제공"])))
    assert "北" in analysis.terms


def test_unspaced_languages_are_shingled_by_characters() -> None:
    text = "朝鲜向俄罗斯运送数百万发炮弹和数十枚弹道导弹。"
    assert len(shingle_hashes(text)) == 1  # one "word" by spaces
    assert len(shingle_hashes(text, characters=True)) == len(text) - 1 - 4


def test_an_unknown_or_uninstalled_language_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(LanguageNotInstalled, match="no analysis for 'xx'"):
        check_languages(["en", "xx"])
    real = importlib.util.find_spec

    def without_pymorphy(name: str, *args: Any) -> Any:
        return None if name.startswith("pymorphy3") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_pymorphy)
    with pytest.raises(LanguageNotInstalled, match="'uk' needs pymorphy3.*pip install"):
        check_languages(["en", "uk"])


def test_run_exits_2_when_a_configured_language_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec

    def without_pymorphy(name: str, *args: Any) -> Any:
        return None if name.startswith("pymorphy3") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_pymorphy)
    config = rss_config(
        tmp_path / "nw.yaml",
        [("feed", "http://127.0.0.1:9/feed.xml")],
        tmp_path / "data",
        nlp={"languages": ["en", "ru"]},
    )
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "config error" in err and "'ru' needs pymorphy3" in err
    assert not (tmp_path / "data").exists()
