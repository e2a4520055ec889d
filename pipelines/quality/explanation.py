"""Why each watched topic matched a text, or why not: the report ``newswatch explain`` prints.

The text is analysed by the pipeline's own ``TextAnalyser`` and matched by ``match_topic``;
the report reads the same ``pattern_outcome`` the matcher decides on, so it cannot
disagree with it. Heavy modules (spaCy, Beam) are imported where used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from newswatch.pipelines.core.rules import (
    PatternOutcome,
    TextAnalysis,
    TopicRule,
    match_topic,
    pattern_outcome,
    vetoing_terms,
)

if TYPE_CHECKING:
    pass


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
