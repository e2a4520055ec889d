"""How re-analysis changed which articles each watched topic matches: counts per topic of
articles newly matched, no longer matched and unchanged, with a few example titles.

Tallies add up in any order and merge across workers to the same result, so the examples
are the alphabetically first titles, not the first seen.

>>> tally = TopicChanges()
>>> tally.add(["a"], ["a", "b"], "Title")
>>> tally.count("b", NEWLY_MATCHED), tally.count("a", UNCHANGED)
(1, 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CHANGE_KINDS",
    "NEWLY_MATCHED",
    "NO_LONGER_MATCHED",
    "UNCHANGED",
    "TopicChanges",
    "changes_of",
]

NEWLY_MATCHED = "newly_matched"
NO_LONGER_MATCHED = "no_longer_matched"
UNCHANGED = "unchanged"
CHANGE_KINDS = (NEWLY_MATCHED, NO_LONGER_MATCHED, UNCHANGED)
EXAMPLES = 3


def changes_of(before: Iterable[str], after: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(topic, kind) for every topic an article matched before or matches now.

    >>> sorted(changes_of(["a", "b"], ["b", "c"]))
    [('a', 'no_longer_matched'), ('b', 'unchanged'), ('c', 'newly_matched')]
    """
    old, new = set(before), set(after)
    for topic in sorted(old | new):
        if topic not in old:
            yield topic, NEWLY_MATCHED
        elif topic not in new:
            yield topic, NO_LONGER_MATCHED
        else:
            yield topic, UNCHANGED


@dataclass
class _Tally:
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, title: str, count: int = 1) -> None:
        self.count += count
        if title not in self.examples:
            self.examples = sorted([*self.examples, title])[:EXAMPLES]


@dataclass
class TopicChanges:
    """Per topic and kind of change, the number of articles and up to three titles."""

    topics: dict[str, dict[str, _Tally]] = field(default_factory=dict)

    def _tally(self, topic: str, kind: str) -> _Tally:
        return self.topics.setdefault(topic, {}).setdefault(kind, _Tally())

    def add(self, before: Iterable[str], after: Iterable[str], title: str) -> None:
        """One article's topics before and after re-analysis."""
        for topic, kind in changes_of(before, after):
            self._tally(topic, kind).add(title)

    def merge(self, other: TopicChanges) -> TopicChanges:
        for topic, kinds in other.topics.items():
            for kind, tally in kinds.items():
                mine = self._tally(topic, kind)
                mine.count += tally.count
                for title in tally.examples:
                    mine.add(title, count=0)
        return self

    def count(self, topic: str, kind: str) -> int:
        tally = self.topics.get(topic, {}).get(kind)
        return tally.count if tally else 0

    def examples(self, topic: str, kind: str) -> list[str]:
        tally = self.topics.get(topic, {}).get(kind)
        return list(tally.examples) if tally else []

    def to_dict(self) -> dict[str, Any]:
        return {
            topic: {
                kind: {"articles": t.count, "examples": t.examples} for kind, t in kinds.items()
            }
            for topic, kinds in sorted(self.topics.items())
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TopicChanges:
        return cls(
            {
                topic: {k: _Tally(v["articles"], list(v["examples"])) for k, v in kinds.items()}
                for topic, kinds in data.items()
            }
        )
