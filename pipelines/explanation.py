"""``newswatch explain``: why each watched topic matched a text, or why not.

    newswatch explain [--config FILE] [--topics FILE] [--aliases FILE] [--out DIR]
                      [--format text|json] (URL | ARTICLE_ID | -)

The text is a stored article (looked up by its URL or id in the dataset under ``--out``,
read through Beam filesystems) or text on stdin (``-``: the first line is the title).
It is analysed by the pipeline's own ``TextAnalyser`` and matched by ``match_topic``;
the report reads the same ``pattern_outcome`` the matcher decides on, so it cannot
disagree with it. Heavy modules (spaCy, Beam) are imported where used.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from newswatch.pipelines.errors import ConfigError
from newswatch.pipelines.topics import (
    PatternOutcome,
    TextAnalysis,
    TopicRule,
    match_topic,
    pattern_outcome,
    vetoing_terms,
)

if TYPE_CHECKING:
    from newswatch.pipelines.config import Config

EXIT_OK = 0
EXIT_BAD_INPUT = 2
ARTICLE_COLUMNS = ["article_id", "url", "title", "text"]


@dataclass(frozen=True)
class PatternReport:
    number: int  # 1-based, as the text report names it
    scope: str
    within: int | None
    min_matches: int
    groups: tuple[tuple[str, ...], ...]
    unless: tuple[str, ...]
    satisfied: int  # scopes that satisfy it
    vetoed: int  # scopes with every group, vetoed by an ``unless`` term
    matched: bool
    reason: str


@dataclass(frozen=True)
class SentenceHits:
    index: int
    paragraph: int  # 0 is the title
    text: str
    terms: tuple[tuple[str, tuple[str, ...]], ...]  # (term, roles such as "p1.g2", "none")


@dataclass(frozen=True)
class RuleReport:
    id: str
    title: str
    matched: bool
    score: float | None
    evidence: tuple[str, ...]
    vetoed_by: tuple[str, ...]  # the rule's ``none`` terms found in the document
    patterns: tuple[PatternReport, ...]
    sentences: tuple[SentenceHits, ...]  # the sentences holding any of the rule's terms
    reason: str


def explain_rule(analysis: TextAnalysis, rule: TopicRule) -> RuleReport:
    match = match_topic(analysis, rule)
    vetoes = vetoing_terms(analysis, rule)
    patterns = tuple(
        _pattern_report(n, pattern_outcome(analysis, p), analysis)
        for n, p in enumerate(rule.patterns, 1)
    )
    if vetoes:
        reason = f"no match: the document holds none term(s) {_quoted(vetoes)}"
    elif match is not None:
        won = [f"pattern {p.number}" for p in patterns if p.matched]
        reason = f"matched by {', '.join(won)}: " + "; ".join(
            p.reason for p in patterns if p.matched
        )
    else:
        reason = "no pattern matched: " + "; ".join(
            f"pattern {p.number}: {p.reason}" for p in patterns
        )
    return RuleReport(
        id=rule.id,
        title=rule.title,
        matched=match is not None,
        score=match.score if match else None,
        evidence=match.evidence if match else (),
        vetoed_by=tuple(sorted(vetoes)),
        patterns=patterns,
        sentences=_sentence_hits(analysis, rule),
        reason=reason,
    )


def _pattern_report(number: int, outcome: PatternOutcome, analysis: TextAnalysis) -> PatternReport:
    pattern = outcome.pattern
    return PatternReport(
        number=number,
        scope=pattern.scope,
        within=pattern.within,
        min_matches=pattern.min_matches,
        groups=tuple(tuple(sorted(g)) for g in pattern.groups),
        unless=tuple(sorted(pattern.unless)),
        satisfied=len(outcome.units),
        vetoed=len(outcome.vetoed),
        matched=outcome.matched,
        reason=_pattern_reason(outcome, analysis.terms),
    )


def _pattern_reason(outcome: PatternOutcome, present: frozenset[str]) -> str:
    pattern = outcome.pattern
    where = pattern.scope + (f" within {pattern.within} words" if pattern.within else "")
    found = f"{len(outcome.units)} {where} scope(s) satisfy it, {pattern.min_matches} needed"
    if outcome.matched:
        return found
    absent = [n for n, group in enumerate(pattern.groups, 1) if not group & present]
    if absent:
        named = ", ".join(f"group {n} ({_quoted(pattern.groups[n - 1], 4)})" for n in absent)
        return f"no term of {named} anywhere"
    if outcome.vetoed and not outcome.units:
        return (
            f"every {where} with all groups also holds an unless term ({_quoted(pattern.unless)})"
        )
    if not outcome.units:
        return f"every group occurs, but never all in one {where}"
    return found


def _quoted(terms: frozenset[str] | Sequence[str], most: int = 8) -> str:
    ordered = sorted(terms)
    shown = ", ".join(repr(t) for t in ordered[:most])
    return shown + (f", ... ({len(ordered)} terms)" if len(ordered) > most else "")


def _roles(rule: TopicRule) -> dict[str, list[str]]:
    roles: dict[str, list[str]] = {}
    for n, pattern in enumerate(rule.patterns, 1):
        for g, group in enumerate(pattern.groups, 1):
            for term in group:
                roles.setdefault(term, []).append(f"p{n}.g{g}")
        for term in pattern.unless:
            roles.setdefault(term, []).append(f"p{n}.unless")
    for term in rule.none:
        roles.setdefault(term, []).append("none")
    return roles


def _sentence_hits(analysis: TextAnalysis, rule: TopicRule) -> tuple[SentenceHits, ...]:
    roles = _roles(rule)
    hits = []
    for i, sentence in enumerate(analysis.sentences):
        terms = tuple((t, tuple(roles[t])) for t in sorted(sentence.terms) if t in roles)
        if terms:
            hits.append(SentenceHits(i, sentence.paragraph, " ".join(sentence.text.split()), terms))
    return tuple(hits)


def format_reports(reports: Sequence[RuleReport], output: str) -> str:
    if output == "json":
        return json.dumps({"topics": [asdict(r) for r in reports]}, ensure_ascii=False, indent=2)
    lines = []
    for report in reports:
        verdict = f"MATCH (score {report.score})" if report.matched else "no match"
        lines.append(f"{report.id}: {verdict}")
        lines.append(f"  why: {report.reason}")
        for p in report.patterns:
            within = f", within {p.within} words" if p.within else ""
            lines.append(f"  pattern {p.number} ({p.scope}{within}, min_matches {p.min_matches}):")
            for g, group in enumerate(p.groups, 1):
                lines.append(f"    group {g}: {_quoted(group, 6)}")
            if p.unless:
                lines.append(f"    unless: {_quoted(p.unless, 6)}")
        for s in report.sentences:
            terms = ", ".join(f"{t} [{' '.join(r)}]" for t, r in s.terms)
            lines.append(f"  sentence {s.index} (paragraph {s.paragraph}): {terms}")
            lines.append(f"    {s.text[:200]}")
        lines.append("")
    return "\n".join(lines)


# --- the command --------------------------------------------------------------------------------


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options ``explain`` and ``eval`` share: which rules and aliases, which output."""
    parser.add_argument("--config", help="YAML config file (default: the bundled one)")
    parser.add_argument("--topics", help="a topics file to use instead of the config's")
    parser.add_argument("--aliases", help="an alias table to add over the config's")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def load_analysis_config(args: argparse.Namespace) -> Config:
    """The config, with ``--topics`` replacing its rules and ``--aliases`` added to its table."""
    import dataclasses

    import yaml

    from newswatch.pipelines.config import load_config
    from newswatch.pipelines.entities import parse_alias_table
    from newswatch.pipelines.topics import parse_topic_rules

    config = load_config(args.config)
    for path, key in ((args.topics, "topics"), (args.aliases, "aliases")):
        if path is None:
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(path, "", f"cannot read the {key} file: {err}") from None
        except yaml.YAMLError as err:
            raise ConfigError(path, "", f"not valid YAML: {err}") from None
        if key == "topics":
            config = dataclasses.replace(config, topics=parse_topic_rules(data, path))
        else:
            aliases = config.aliases.merged_with(parse_alias_table(data, path))
            config = dataclasses.replace(config, aliases=aliases)
    return config


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "explain",
        help="show why each watched topic matched a text, or why not",
        description="Analyse a stored article (by URL or article id) or text on stdin ('-', "
        "first line the title) and show, per topic rule, its patterns, the terms found in "
        "each sentence and why the topic matched or not.",
    )
    add_common_options(parser)
    parser.add_argument("--out", help="output folder of `newswatch run` (default: the config's)")
    parser.add_argument("article", metavar="URL|ARTICLE_ID|-")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from newswatch.pipelines.nlp import ModelNotInstalled, TextAnalyser, document_text

    try:
        config = load_analysis_config(args)
        title, text = _input_text(args, config)
        analyser = TextAnalyser.load(config.nlp.model, config.aliases, config.topics)
    except (ConfigError, ModelNotInstalled, LookupError) as err:
        print(f"newswatch: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    _, analysis = next(iter(analyser.analyse([document_text(title, text, config.nlp.max_chars)])))
    print(format_reports([explain_rule(analysis, rule) for rule in config.topics], args.format))
    return EXIT_OK


def _input_text(args: argparse.Namespace, config: Config) -> tuple[str, str]:
    if args.article == "-":
        title, _, body = sys.stdin.read().strip().partition("\n")
        return title.strip(), body.strip()
    from newswatch.pipelines.config import resolve_output

    root = resolve_output(args.out, None) if args.out else config.output
    row = stored_article(root, args.article)
    return row["title"] or "", row["text"] or ""


def stored_article(root: str, url_or_id: str) -> dict[str, Any]:
    """The stored article with this URL or article id; LookupError when there is none.

    Each committed file's ``article_id`` column is read first, the text only of the file
    that holds the article, newest partitions first.
    """
    import pyarrow.parquet as pq
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    from newswatch.connectors import filesystem
    from newswatch.connectors.dataset import ARTICLES
    from newswatch.pipelines.normalize import article_id, canonical_url

    wanted = article_id(canonical_url(url_or_id)) if "://" in url_or_id else url_or_id
    pattern = filesystem.join(root, ARTICLES, "dt=*", "*.parquet")
    for path in reversed(filesystem.list_files(pattern)):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            parquet = pq.ParquetFile(handle)
            ids = parquet.read(columns=["article_id"]).column(0).to_pylist()
            if wanted in ids:
                rows = parquet.read(columns=ARTICLE_COLUMNS).to_pylist()
                return rows[ids.index(wanted)]
    raise LookupError(f"no stored article {url_or_id!r} under {root}")
