"""What a worker's spaCy vocabulary keeps: the words of its first texts, for speed; after
those, nothing a batch adds outlives the batch, so a long-running worker does not grow."""

from __future__ import annotations

from newswatch.pipelines.control.config import default_alias_table, default_topic_rules
from newswatch.pipelines.core import nlp as nlp_module
from newswatch.pipelines.core.nlp import TextAnalyser

WARM_UP_CHARS = 300


def _text(word: str) -> str:
    return (
        f"Pyongyang shipped {word} artillery shells to Russia.\n\n"
        f"Officials in Moscow said the {word} shipments arrived by train. " * 4
    )


def test_the_first_texts_words_stay_and_later_batches_words_are_freed(
    spacy_loaded_once: None,
) -> None:
    aliases = default_alias_table()
    nlp = nlp_module.load_pipeline("auto", aliases)
    analyser = TextAnalyser(
        nlp, aliases, default_topic_rules(), batch_size=8, warm_up_chars=WARM_UP_CHARS
    )
    strings = nlp.vocab.strings
    warm_up, later = _text("Zorblaxian"), _text("Quindlewort")
    assert len(warm_up) > WARM_UP_CHARS
    assert "Zorblaxian" not in strings and "Quindlewort" not in strings

    [during_warm_up] = analyser.analyse([warm_up])
    assert "Zorblaxian" in strings

    [(entities, analysis), in_a_zone] = analyser.analyse([later, warm_up])
    assert "Quindlewort" not in strings
    # A zone changes what is kept, not what is found.
    assert in_a_zone == during_warm_up
    assert any(sentence.text.startswith("Officials in Moscow") for sentence in analysis.sentences)
    assert {"North Korea", "Russia"} <= {e.canonical for e in entities}
