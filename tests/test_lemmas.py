"""Text words' lemmas without a tagger (``WordLemmas``), checked against the tagger and
lemmatizer they replace, and the rule terms' own lemmas."""

from __future__ import annotations

import pytest

from newswatch.pipelines.control.config import default_alias_table
from newswatch.pipelines.core.aliases import AliasTable
from newswatch.pipelines.core.lemmas import WordLemmas, lemmatized
from newswatch.pipelines.core.nlp import TermIndex, TextAnalyser, load_pipeline
from newswatch.pipelines.core.rules import TopicRule

NEWS = (
    "North Korea has shipped millions of artillery shells and rockets to Russia, officials "
    "said on Friday. The weapons were loaded onto trains bound for the front; analysts "
    "believe the deliveries are continuing. Drones struck two refineries overnight, and "
    "thousands of troops were deployed to the border regions. Pyongyang denied supplying "
    "munitions, calling the reports lies spread by its enemies. Engineers tested newer, "
    "longer-range missiles while leaders met and signed agreements."
)


@pytest.fixture(scope="module")
def nlp() -> object:
    return load_pipeline("auto", default_alias_table())


def test_articles_run_ner_and_sentences_only(nlp: object) -> None:
    enabled = nlp.pipe_names  # type: ignore[attr-defined]
    assert {"tok2vec", "ner", "sentencizer"} <= set(enabled)
    assert not {"tagger", "attribute_ruler", "lemmatizer", "senter", "parser"} & set(enabled)


def test_every_lemma_the_tagger_gives_is_among_the_words_lemmas(nlp: object) -> None:
    word_lemmas = WordLemmas.of(nlp)
    [doc] = lemmatized(nlp, [NEWS])
    tagged = [t for t in doc if t.pos_ in ("NOUN", "VERB", "ADJ")]
    assert len(tagged) > 30
    for token in tagged:
        assert token.lemma_.lower() in word_lemmas(token.lower_), token.text


@pytest.mark.parametrize(
    ("word", "lemmas"),
    [
        ("weapons", {"weapons", "weapon"}),
        ("went", {"went", "go"}),
        ("children", {"children", "child"}),
        ("supplying", {"supplying", "supply"}),
        ("news", {"news"}),  # known as it is: not "new"
        ("uavs", {"uavs", "uav"}),  # unknown: read as a plural noun
        ("pyongyang", {"pyongyang"}),
    ],
)
def test_word_lemmas(nlp: object, word: str, lemmas: set[str]) -> None:
    assert WordLemmas.of(nlp)(word) == lemmas


def test_a_term_matches_inflected_forms_in_text(nlp: object) -> None:
    rule = TopicRule(id="t", title="t", groups=(frozenset({"artillery shell", "drone strike"}),))
    analyser = TextAnalyser(nlp, AliasTable(), [rule], batch_size=8)
    text = "Title\n\nArtillery shells fell. A drone struck. Drones strike again."
    [(_, analysis)] = list(analyser.analyse([text]))
    found = [sorted(s.terms) for s in analysis.sentences]
    assert found == [[], ["artillery shell"], ["drone strike"], ["drone strike"]]


def test_term_lemmas_come_from_the_tagger(nlp: object) -> None:
    rule = TopicRule(id="t", title="t", groups=(frozenset({"arms deals"}),))
    index = TermIndex.build(nlp, [rule])
    assert set(index.by_first_token["arms"]) == {("arms deals", ("arms", "deals"))}
    assert set(index.by_first_token["arm"]) == {("arms deals", ("arm", "deal"))}
