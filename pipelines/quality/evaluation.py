"""``newswatch eval``: the pipeline's judgments measured against labelled records.

    newswatch eval LABELLED.jsonl [--config FILE] [--topics FILE] [--aliases FILE]
                   [--format text|json]

Each line of the file is a record: ``id``, ``url``, ``title``, ``text``, ``labels``
({topic id: bool}), ``ambiguous``, ``story_group``, ``event_group``, ``entities`` (gold
canonical names) and optionally ``published`` and ``language``. Records become articles
through ``normalize_entry``, are analysed by the NLP stage's ``TextAnalyser`` and matched
by ``match_topics``, and are clustered with ``minhash.py``'s functions under the config's
near-duplicate settings, as one run of the pipeline would: what is measured is what the
pipeline does, not a copy of it. This is the loop for writing a watched topic: rule,
eval on labelled examples, read the misses.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from newswatch.pipelines.control.settings import Config
from newswatch.pipelines.core.aliases import surface_key
from newswatch.pipelines.core.languages import language_counts
from newswatch.pipelines.core.rules import TextAnalysis, TopicRule, match_topics
from newswatch.pipelines.quality.copies import CopyScores, copy_scores
from newswatch.pipelines.quality.explanation import (
    explain_rule,
)
from newswatch.schemas import Article, TopicMatch

MAX_MISSED_NAMES = 30


class LabelledFileError(ValueError):
    """A labelled file that cannot be read: names the file and line."""


@dataclass(frozen=True)
class LabelledRecord:
    id: str
    text: str
    title: str = ""
    url: str = ""
    published: str | None = None
    labels: Mapping[str, bool] | None = None
    ambiguous: bool = False
    story_group: str | None = None
    event_group: str | None = None
    entities: tuple[str, ...] | None = None
    language: str | None = None


def read_labelled(path: str) -> list[LabelledRecord]:
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise LabelledFileError(f"{path}: cannot read: {err}") from None
    records = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            records.append(_record(line, f"{path}:{number}"))
    if not records:
        raise LabelledFileError(f"{path}: no records")
    if len({r.id for r in records}) != len(records):
        raise LabelledFileError(f"{path}: record ids are not unique")
    return records


def _record(line: str, where: str) -> LabelledRecord:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as err:
        raise LabelledFileError(f"{where}: not JSON: {err.msg}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise LabelledFileError(f"{where}: a record is an object with a string 'id'")
    if not isinstance(raw.get("text"), str):
        raise LabelledFileError(f"{where}: 'text' must be a string")
    labels = raw.get("labels")
    if labels is not None and not (
        isinstance(labels, dict) and all(isinstance(v, bool) for v in labels.values())
    ):
        raise LabelledFileError(f"{where}: 'labels' must map topic ids to true or false")
    entities = raw.get("entities")
    if entities is not None and not (
        isinstance(entities, list) and all(isinstance(e, str) for e in entities)
    ):
        raise LabelledFileError(f"{where}: 'entities' must be a list of names")
    return LabelledRecord(
        id=raw["id"],
        text=raw["text"],
        title=raw.get("title") or "",
        url=raw.get("url") or "",
        published=raw.get("published"),
        labels=labels,
        ambiguous=bool(raw.get("ambiguous")),
        story_group=raw.get("story_group"),
        event_group=raw.get("event_group"),
        entities=tuple(entities) if entities is not None else None,
        language=raw.get("language"),
    )


@dataclass(frozen=True)
class Finding:
    id: str
    title: str
    detail: Sequence[str]  # the evidence of a false alarm, or why a miss did not match


@dataclass(frozen=True)
class TopicScore:
    id: str
    labelled: int  # records labelled for this topic, ambiguous ones left out
    ambiguous_left_out: int
    tp: int
    fp: int
    fn: int
    precision: float | None
    recall: float | None
    f1: float | None
    misses: tuple[Finding, ...]
    false_alarms: tuple[Finding, ...]


@dataclass(frozen=True)
class Evaluated:
    """One record as the pipeline saw it."""

    record: LabelledRecord
    article: Article
    analysis: TextAnalysis
    topics: tuple[TopicMatch, ...]


def ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def topic_score(rule: TopicRule, evaluated: Sequence[Evaluated]) -> TopicScore:
    """Precision, recall and F1 of one topic over the records labelled for it."""
    labelled = [e for e in evaluated if e.record.labels and rule.id in e.record.labels]
    kept = [e for e in labelled if not e.record.ambiguous]
    tp = fp = fn = 0
    misses, alarms = [], []
    for e in kept:
        match = next((m for m in e.topics if m.id == rule.id), None)
        truth = bool(e.record.labels and e.record.labels[rule.id])
        if truth and match:
            tp += 1
        elif match:
            fp += 1
            alarms.append(Finding(e.record.id, e.record.title, match.evidence))
        elif truth:
            fn += 1
            misses.append(
                Finding(e.record.id, e.record.title, (explain_rule(e.analysis, rule).reason,))
            )
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    f1 = None
    if precision is not None and recall is not None and precision + recall:
        f1 = round(2 * precision * recall / (precision + recall), 4)
    return TopicScore(
        rule.id,
        len(kept),
        len(labelled) - len(kept),
        tp,
        fp,
        fn,
        precision,
        recall,
        f1,
        tuple(misses),
        tuple(alarms),
    )


@dataclass(frozen=True)
class EntityScore:
    records: int  # records with gold names
    gold: int
    found: int
    recall: float | None
    missed: tuple[tuple[str, int], ...]  # the gold names most often not found, with counts


def entity_score(evaluated: Iterable[Evaluated]) -> EntityScore:
    """Share of the gold canonical names that are among the article's canonical entities."""
    records = gold = found = 0
    missed: Counter[str] = Counter()
    for e in evaluated:
        if e.record.entities is None:
            continue
        records += 1
        # Names compare as the alias table compares them: case, hyphens, a leading "the".
        names = {surface_key(entity.canonical) for entity in e.article.entities}
        for name in dict.fromkeys(e.record.entities):
            gold += 1
            if surface_key(name) in names:
                found += 1
            else:
                missed[name] += 1
    return EntityScore(
        records, gold, found, ratio(found, gold), tuple(missed.most_common(MAX_MISSED_NAMES))
    )


@dataclass(frozen=True)
class Evaluation:
    records: int
    topics: tuple[TopicScore | str, ...]  # a topic id alone: no labels for it in the file
    copies: CopyScores
    entities: EntityScore
    languages: Mapping[str, Mapping[str, Any]]  # per language: records, topics, entities
    detected_languages: Mapping[str, int]  # articles per detected language
    language_accuracy: float | None  # detected == labelled, over records with a language


def evaluate(
    evaluated: Sequence[Evaluated], rules: Sequence[TopicRule], copies: CopyScores
) -> Evaluation:
    topics: list[TopicScore | str] = []
    for rule in rules:
        score = topic_score(rule, evaluated)
        topics.append(score if score.labelled else rule.id)
    languages: dict[str, dict[str, Any]] = {}
    for language in sorted({e.record.language for e in evaluated if e.record.language}):
        subset = [e for e in evaluated if e.record.language == language]
        counts = [topic_score(rule, subset) for rule in rules]
        languages[language] = {
            "records": len(subset),
            "topics": {s.id: _counts(s) for s in counts if s.labelled},
            "entity_recall": entity_score(subset).recall,
        }
    detected, accuracy = language_score(evaluated)
    return Evaluation(
        len(evaluated),
        tuple(topics),
        copies,
        entity_score(evaluated),
        languages,
        detected,
        accuracy,
    )


def _counts(score: TopicScore) -> dict[str, Any]:
    return {k: getattr(score, k) for k in ("tp", "fp", "fn", "precision", "recall", "f1")}


def evaluation_json(result: Evaluation) -> dict[str, Any]:
    data = asdict(result)
    data["topics"] = [
        {"id": t, "no_labels": True} if isinstance(t, str) else asdict(t) for t in result.topics
    ]
    return data


def format_text(result: Evaluation) -> str:
    lines = [f"{result.records} records"]
    for topic in result.topics:
        if isinstance(topic, str):
            lines.append(f"\n{topic}: no labels")
            continue
        lines.append(
            f"\n{topic.id}: precision {_shown(topic.precision)} recall {_shown(topic.recall)} "
            f"F1 {_shown(topic.f1)} "
            f"(tp {topic.tp}, fp {topic.fp}, fn {topic.fn}; "
            f"{topic.labelled} labelled, {topic.ambiguous_left_out} ambiguous left out)"
        )
        for kind, findings in (("miss", topic.misses), ("false alarm", topic.false_alarms)):
            for f in findings:
                lines.append(f"  {kind} {f.id}: {f.title}")
                lines.extend(f"      {' '.join(d.split())[:300]}" for d in f.detail)
    lines.append("")
    lines.extend(result.copies.lines())
    e = result.entities
    lines.append(f"\nentities: {e.found} of {e.gold} gold names found, recall {_shown(e.recall)}")
    if e.missed:
        lines.append("  most missed: " + ", ".join(f"{n} ({c})" for n, c in e.missed))
    lines.append(
        "languages detected: "
        + ", ".join(f"{code} {n}" for code, n in result.detected_languages.items())
        + (
            ""
            if result.language_accuracy is None
            else f"; share detected right of the records labelled with one: "
            f"{_shown(result.language_accuracy)}"
        )
    )
    for language, data in result.languages.items():
        topics = "; ".join(
            f"{topic} precision {_shown(c['precision'])} recall {_shown(c['recall'])} "
            f"(tp {c['tp']}, fp {c['fp']}, fn {c['fn']})"
            for topic, c in data["topics"].items()
        )
        lines.append(
            f"language {language}: {data['records']} records; {topics or 'no labels'}; "
            f"entity recall {_shown(data['entity_recall'])}"
        )
    return "\n".join(lines)


def _shown(figure: float | None) -> str:
    return "n/a" if figure is None else f"{figure:g}"


def evaluate_records(records: Sequence[LabelledRecord], config: Config, origin: str) -> Evaluation:
    """The pipeline's analysis over labelled records, scored: what ``newswatch eval`` prints.

    Raises ``LabelledFileError`` for a record the pipeline would reject, ``ModelNotInstalled``
    when the spaCy model is missing.
    """
    from newswatch.pipelines.core.languages import LanguageDetector
    from newswatch.pipelines.core.multilingual import RoutedAnalyser

    detector = LanguageDetector()
    # Detected from the text alone, not told the record's language: what is measured is
    # the detector, and the analysis follows what it found.
    articles = [
        dataclasses.replace(a, language=detector.language(f"{a.title}\n{a.text}", None))
        for a in (record_article(r, config.normalize, origin) for r in records)
    ]
    analyser = RoutedAnalyser.load(
        config.nlp.model, config.aliases, config.topics, config.nlp.languages, config.nlp.batch_size
    )
    evaluated = [
        Evaluated(record, article, analysis, match_topics(analysis, config.topics))
        for record, (article, analysis) in zip(
            records, analyser.analyse_articles(articles, config.nlp.max_chars), strict=True
        )
    ]
    groups = [(r.story_group, r.event_group) for r in records]
    copies = copy_scores(articles, [r.id for r in records], groups, config.near_duplicates)
    return evaluate(evaluated, config.topics, copies)


def language_score(evaluated: Sequence[Evaluated]) -> tuple[dict[str, int], float | None]:
    """Articles per detected language, and the share of records with a labelled language
    whose detected language is that one."""
    labelled = [e for e in evaluated if e.record.language]
    right = sum(1 for e in labelled if e.article.language == e.record.language)
    return language_counts([e.article.language for e in evaluated]), ratio(right, len(labelled))


def record_article(record: LabelledRecord, settings: Any, origin: str) -> Article:
    """The article the pipeline makes of a record, as a feed item with these fields."""
    from newswatch.pipelines.core.normalization import normalize_entry
    from newswatch.schemas import RawArticle

    raw = RawArticle(
        source="eval",
        origin=origin,
        fetched_at=datetime.now(UTC),
        url=record.url or None,
        guid=record.id,
        title=record.title,
        content=record.text,
        published=record.published,
        language=record.language,
    )
    article = normalize_entry(raw, settings)
    if not isinstance(article, Article):
        raise LabelledFileError(f"{origin}: record {record.id}: {article.detail}")
    return article
