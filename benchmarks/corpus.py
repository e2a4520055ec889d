"""Benchmark articles: the news-bench BBC corpus, stretched to any N with distinct variants.

The corpus (``../shared/corpora/news-bench/articles.jsonl``, research use only) is read at
run time and never copied into the repository. Its 2,225 articles hold 133 repeated texts;
those are dropped, leaving 2,092 distinct originals. The first N benchmark articles are the
originals in a seeded shuffle, then variant rounds r = 1, 2, ... until N are made.

A variant keeps one original's shape (its number of paragraphs and of sentences in each)
but fills it with sentences from three articles of the same category, taking turns
sentence by sentence: the original and two donors. Each source gives a run of consecutive
sentences starting at an offset that moves with the round, so every variant is a new text:
about a third of its sentences come from any one article, which keeps the containment of
one text in another (what near-duplicate detection on word shingles measures) near 1/3,
far below any near-duplicate threshold. Its URL is new (``.../r<round>``) and its title is
the title of the donor that supplies its first sentence. ``sentence_overlap`` measures the
worst case over the whole set.

Without the corpus, articles are generated: English-like sentences built from word lists
with people, places and organisations for NER to find, each article distinct.
"""

from __future__ import annotations

import html
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared/corpora/news-bench/articles.jsonl"
BASE_URL = "https://bench.newswatch.example"
SOURCE = "bench-wire"
# Published dates spread over a week, so the output has several dt= partitions.
# A variant takes at most 1/SHARE of its sentences from one text, and 1/SHARE of that text.
SHARE = 5
# A variant sharing this much of its words (or of an earlier text's) is drawn again; the
# pipeline's near-duplicate threshold is 0.7 (containment of 5-word shingles).
MAX_CONTAINMENT = 0.4
MAX_REROLLS = 50
FIRST_DAY = datetime(2024, 5, 1, tzinfo=UTC)
DAYS = 7

_SENTENCE_END = re.compile(r"(?<=[.!?\"”’'])\s+(?=[A-Z0-9\"“‘£$(])")
_INLINE_SPACE = re.compile(r"[ \t\r\f\v\u00a0]+")


Part = tuple[int, int, int]


@dataclass(frozen=True)
class BenchArticle:
    url: str
    title: str
    text: str  # plain text, paragraphs separated by one blank line
    published: datetime
    category: str
    # The original sentences the text is made of: (original index, sentence index, words).
    parts: tuple[Part, ...] = ()

    def message(self) -> dict[str, str]:
        """The Kafka message value (schemas/kafka_article.schema.json)."""
        return {
            "url": self.url,
            "title": self.title,
            "text": self.text,
            "published": self.published.isoformat().replace("+00:00", "Z"),
            "source": SOURCE,
        }


@dataclass(frozen=True)
class _Original:
    title: str
    category: str
    paragraphs: tuple[tuple[str, ...], ...]  # sentences of each paragraph

    @property
    def sentences(self) -> tuple[str, ...]:
        return tuple(s for paragraph in self.paragraphs for s in paragraph)


@dataclass(frozen=True)
class Corpus:
    name: str  # "news-bench" or "synthetic"
    path: str | None
    originals: int  # distinct source articles before variants
    dropped_repeats: int

    def describe(self) -> str:
        if self.path is None:
            return "synthetic English-like articles (no news-bench corpus found)"
        return (
            f"news-bench ({self.originals:,} distinct BBC articles; "
            f"{self.dropped_repeats} repeated texts dropped)"
        )


def clean_text(text: str) -> str:
    """Whitespace as normalization leaves it: single spaces, paragraphs one blank line apart."""
    # Entities decoded ("pass&#233;" is in the corpus): Kafka input is unescaped on the way in.
    text = html.unescape(text)
    paragraphs = (_INLINE_SPACE.sub(" ", p).strip() for p in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paragraphs if p)


def split_sentences(paragraph: str) -> tuple[str, ...]:
    return tuple(s for s in _SENTENCE_END.split(paragraph) if s)


def _load_originals(path: Path) -> tuple[list[_Original], int]:
    seen: set[str] = set()
    originals = []
    records = 0
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            records += 1
            text = clean_text(record["text"])
            if text in seen:
                continue
            seen.add(text)
            paragraphs = tuple(split_sentences(p) for p in text.split("\n\n"))
            originals.append(
                _Original(
                    " ".join(html.unescape(record["title"]).split()), record["category"], paragraphs
                )
            )
    return originals, records - len(originals)


def _published(sequence: int, rng: random.Random) -> datetime:
    return FIRST_DAY + timedelta(days=sequence % DAYS, seconds=rng.randrange(86_400))


def _variant(
    round_: int, base: int, peers: Sequence[int], originals: Sequence[_Original], rng: random.Random
) -> tuple[str, str, tuple[Part, ...]]:
    """One variant of ``originals[base]``: its shape, filled from a third of each of 3+ texts.

    No source gives more than a third of its own sentences nor more than a third of the
    variant's, so the variant is never mostly one text and no text is mostly in it.
    """
    size = len(originals[base].sentences)
    share = max(1, size // SHARE)
    sources = [base]
    caps = [share]
    while sum(caps) < size:
        pick = rng.choice(peers)
        if pick in sources:
            continue
        sources.append(pick)
        caps.append(min(share, max(1, len(originals[pick].sentences) // SHARE)))
    cursors = [rng.randrange(len(originals[s].sentences)) for s in sources]
    turn = round_ % len(sources)
    paragraphs, parts = [], []
    first = None
    for shape in originals[base].paragraphs:
        sentences = []
        for _ in shape:
            while caps[turn] == 0:
                turn = (turn + 1) % len(sources)
            pool = originals[sources[turn]].sentences
            index = cursors[turn] % len(pool)
            first = sources[turn] if first is None else first
            sentences.append(pool[index])
            parts.append((sources[turn], index, len(pool[index].split())))
            cursors[turn] += 1
            caps[turn] -= 1
            turn = (turn + 1) % len(sources)
        paragraphs.append(" ".join(sentences))
    assert first is not None
    return originals[first].title, "\n\n".join(paragraphs), tuple(parts)


def corpus_articles(
    n: int, path: Path = DEFAULT_CORPUS, seed: int = 20240501
) -> tuple[Corpus, list[BenchArticle]]:
    """The first ``n`` benchmark articles: the corpus when present, else synthetic ones."""
    if not path.exists():
        return Corpus("synthetic", None, n, 0), synthetic_articles(n, seed)
    originals, dropped = _load_originals(path)
    corpus = Corpus("news-bench", str(path), len(originals), dropped)
    return corpus, list(_take(_stretched(originals, seed), n))


def _stretched(originals: Sequence[_Original], seed: int) -> Iterator[BenchArticle]:
    rng = random.Random(seed)
    by_category: dict[str, list[int]] = defaultdict(list)
    for i, original in enumerate(originals):
        by_category[original.category].append(i)
    guard = _OverlapGuard()
    order = list(range(len(originals)))
    sequence = 0
    round_ = 0
    while True:
        rng.shuffle(order)
        for i in order:
            original = originals[i]
            if round_ == 0:
                title = original.title
                text = "\n\n".join(" ".join(p) for p in original.paragraphs)
                parts = tuple((i, k, len(s.split())) for k, s in enumerate(original.sentences))
                url = f"{BASE_URL}/{original.category}/{i:05d}"
            else:
                peers = by_category[original.category]
                for _ in range(MAX_REROLLS):
                    title, text, parts = _variant(round_, i, peers, originals, rng)
                    if guard.worst(parts) < MAX_CONTAINMENT:
                        break
                url = f"{BASE_URL}/{original.category}/{i:05d}/r{round_}"
            guard.add(parts)
            yield BenchArticle(
                url, title, text, _published(sequence, rng), original.category, parts
            )
            sequence += 1
        round_ += 1


class _OverlapGuard:
    """Word-weighted containment of a new text's sentences in every text made so far."""

    def __init__(self) -> None:
        self._holders: dict[tuple[int, int], list[int]] = defaultdict(list)
        self._words: list[int] = []

    def worst(self, parts: Sequence[Part]) -> float:
        shared: Counter[int] = Counter()
        for source, index, words in set(parts):
            for doc in self._holders.get((source, index), ()):
                shared[doc] += words
        size = sum(words for _, _, words in set(parts))
        return max(
            (common / max(1, min(size, self._words[doc])) for doc, common in shared.items()),
            default=0.0,
        )

    def add(self, parts: Sequence[Part]) -> None:
        doc = len(self._words)
        self._words.append(sum(words for _, _, words in set(parts)))
        for source, index, _ in set(parts):
            self._holders[(source, index)].append(doc)


def _take(items: Iterator[BenchArticle], n: int) -> Iterator[BenchArticle]:
    for _, item in zip(range(n), items, strict=False):
        yield item


def sentence_overlap(articles: Sequence[BenchArticle], exact_top: int = 50) -> dict[str, Any]:
    """How much any two benchmark texts share: the check that variants are not duplicates.

    Every pair of texts holding a common original sentence is scored by the words of
    their common sentences over the smaller text's words (a word-weighted containment,
    what near-duplicate detection on shingles approximates); the top ``exact_top`` pairs
    are then scored exactly, as 5-word-shingle containment of the smaller text.
    """
    holders: dict[tuple[int, int], list[int]] = defaultdict(list)
    weights: dict[tuple[int, int], int] = {}
    sizes = []
    for doc, article in enumerate(articles):
        unique = set(article.parts)
        sizes.append(sum(words for _, _, words in unique))
        for source, index, words in unique:
            holders[(source, index)].append(doc)
            weights[(source, index)] = words
    shared: Counter[tuple[int, int]] = Counter()
    for part, docs in holders.items():
        for x in range(len(docs)):
            for y in range(x + 1, len(docs)):
                shared[(docs[x], docs[y])] += weights[part]
    scored = sorted(
        ((words / max(1, min(sizes[a], sizes[b])), a, b) for (a, b), words in shared.items()),
        reverse=True,
    )
    exact = [
        _shingle_containment(articles[a].text, articles[b].text) for _, a, b in scored[:exact_top]
    ]
    return {
        "pairs_sharing_a_sentence": len(shared),
        "max_word_containment": round(scored[0][0], 3) if scored else 0.0,
        "pairs_word_containment_ge_0.5": sum(1 for c, _, _ in scored if c >= 0.5),
        "max_shingle_containment_top_pairs": round(max(exact, default=0.0), 3),
    }


def _shingles(text: str, size: int = 5) -> set[tuple[str, ...]]:
    words = re.sub(r"\W+", " ", text.casefold()).split()
    return {tuple(words[i : i + size]) for i in range(max(1, len(words) - size + 1))}


def _shingle_containment(a: str, b: str) -> float:
    x, y = _shingles(a), _shingles(b)
    return len(x & y) / max(1, min(len(x), len(y)))


# Synthetic articles: enough variety for NER and the tokenizer to do real work.
_PEOPLE = (
    "Maria Lopez|James Okafor|Chen Wei|Anna Kowalska|Rahul Mehta|Sarah O'Neill|David Kim|"
    "Fatima Haddad|Tom Becker|Elena Rossi|Kenji Sato|Grace Mensah"
).split("|")
_PLACES = (
    "London|Lagos|Berlin|Mumbai|Toronto|Madrid|Nairobi|Osaka|Lima|Warsaw|Melbourne|Cairo|"
    "Glasgow|Denver|Lyon|Seville"
).split("|")
_ORGS = (
    "the Treasury|Northwind Bank|the Football Association|Atlas Motors|the BBC|"
    "the European Commission|Helix Pharma|the National Theatre|Orbit Telecom|the Met Office|"
    "Greenfield University|the World Bank"
).split("|")
_NOUNS = (
    "budget|stadium|election|merger|festival|tariff|season|album|strike|report|inquiry|deal|"
    "launch|verdict|forecast|tour"
).split("|")
_VERBS = (
    "announced|criticised|approved|delayed|welcomed|questioned|unveiled|rejected|defended|confirmed"
).split("|")
_FILLER = (
    "after months of talks|despite strong opposition|earlier this week|in a statement on Monday|"
    "according to figures released on Friday|amid growing concern|"
    "for the first time since 1998|ahead of the new year"
).split("|")


def synthetic_articles(n: int, seed: int = 20240501) -> list[BenchArticle]:
    articles = []
    for i in range(n):
        rng = random.Random(seed * 1_000_003 + i)
        paragraphs = []
        for _ in range(rng.randint(4, 6)):
            sentences = [_synthetic_sentence(rng, i) for _ in range(rng.randint(2, 4))]
            paragraphs.append(" ".join(sentences))
        title = f"{rng.choice(_PEOPLE)} {rng.choice(_VERBS)} {rng.choice(_NOUNS)} plan in {rng.choice(_PLACES)}"
        articles.append(
            BenchArticle(
                url=f"{BASE_URL}/synthetic/{i:06d}",
                title=title,
                text="\n\n".join(paragraphs),
                published=_published(i, rng),
                category="synthetic",
                parts=(),
            )
        )
    return articles


def _synthetic_sentence(rng: random.Random, i: int) -> str:
    return (
        f"{rng.choice(_PEOPLE)} of {rng.choice(_ORGS)} {rng.choice(_VERBS)} the "
        f"{rng.choice(_NOUNS)} in {rng.choice(_PLACES)} {rng.choice(_FILLER)}, saying "
        f"{rng.randint(2, 98)}% of the {rng.choice(_NOUNS)} costs would fall by "
        f"{rng.randint(1, 9)}.{rng.randint(0, 9)}bn (ref {i}-{rng.randrange(10_000)})."
    )
