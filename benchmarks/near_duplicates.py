"""Near-duplicate detection: precision, recall, F1 and speed, ours beside datasketch's.

    .venv/bin/python -m benchmarks.near_duplicates [--corpus FILE] [--seed N] [--repeat N]
                                                   [--quick]

Builds labelled pairs from a news corpus (``../shared/corpora/news-bench/articles.jsonl``
beside the repository when present, else a small generated one):

- copies of one story, each under a new headline and with one realistic edit: an added
  byline, truncation to 40-80% of the text, a dropped paragraph, the copying site's
  boilerplate around it, or truncation and boilerplate together (positives);
- two different stories of one section that quote the same long statement, 30-100% as
  long as the shorter story, so up to half of it is shared text (negatives).

Every article of every pair goes into one index; each method then declares which pairs
are duplicates. Ours runs the functions of ``pipelines/core/minhash.py`` exactly as the
pipeline does (band keys, buckets capped at ``max_bucket``, containment check), grouped
in memory instead of by a Beam shuffle; datasketch's MinHashLSH (Jaccard) and
MinHashLSHEnsemble (containment) get the same shingles and each its best threshold on a
small grid. Prints a table; writes ``benchmarks/results/near_duplicates.json``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

from datasketch import MinHash, MinHashLSH, MinHashLSHEnsemble

from newswatch.pipelines.control.settings import NearDuplicateSettings
from newswatch.pipelines.core.clustering import near_duplicate_pairs
from newswatch.pipelines.core.minhash import (
    SHINGLE_WORDS,
    Signed,
    encode_signature,
    shingle_hashes,
    signature,
    words,
)

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpora" / "news-bench" / "articles.jsonl"
RESULTS = ROOT / "benchmarks" / "results" / "near_duplicates.json"
POSITIVE_KINDS = (
    "byline",
    "truncated",
    "dropped_paragraph",
    "boilerplate",
    "truncated_boilerplate",
)
NEGATIVE_KIND = "shared_statement"
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’']?\s+(?=[\"“‘A-Z0-9])")

Pair = frozenset[str]


@dataclass(frozen=True)
class Story:
    key: str
    section: str
    title: str
    text: str


@dataclass
class Bench:
    articles: dict[str, Story] = field(default_factory=dict)
    labels: dict[Pair, tuple[bool, str]] = field(default_factory=dict)


# --- the data --------------------------------------------------------------------------------


def load_corpus(path: Path) -> list[Story]:
    stories, seen = [], set()
    for line in path.read_text("utf-8").splitlines():
        record = json.loads(line)
        text = record["text"].strip()
        if text and text not in seen:  # the corpus repeats some texts word for word
            seen.add(text)
            stories.append(Story(record["id"], record.get("category", ""), record["title"], text))
    return stories


def generated_corpus(rng: random.Random, count: int = 600) -> list[Story]:
    """Stories of pseudo-words with a Zipf-like vocabulary, when no corpus is at hand."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    vocabulary = sorted({"".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(4000)})
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]

    def sentence() -> str:
        return " ".join(rng.choices(vocabulary, weights, k=rng.randint(8, 26))).capitalize() + "."

    stories = []
    for n in range(count):
        paragraphs = [
            " ".join(sentence() for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(3, 9))
        ]
        stories.append(Story(f"gen-{n:04d}", f"s{n % 5}", sentence(), "\n\n".join(paragraphs)))
    return stories


def without_related(stories: Sequence[Story], limit: float = 0.2) -> list[Story]:
    """Drops stories that already share more than ``limit`` of their shingles with another."""
    sets = [set(shingle_hashes(s.text).tolist()) for s in stories]
    postings: dict[int, list[int]] = defaultdict(list)
    for index, shingles in enumerate(sets):
        for shingle in shingles:
            postings[shingle].append(index)
    related = set()
    for index, shingles in enumerate(sets):
        overlap: dict[int, int] = defaultdict(int)
        for shingle in shingles:
            for other in postings[shingle]:
                if other != index:
                    overlap[other] += 1
        if any(n > limit * min(len(shingles), len(sets[o])) for o, n in overlap.items()):
            related.add(index)
    return [s for i, s in enumerate(stories) if i not in related]


def paragraphs(text: str) -> list[str]:
    """Paragraphs, long ones cut into runs of three sentences (feeds often merge them)."""
    out = []
    for block in (b.strip() for b in text.split("\n\n")):
        sentences = _SENTENCE_END.split(block)
        out.extend(" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3))
    return [p for p in out if p]


OUTLETS = ("Daily Ledger", "Metro Courier", "Valley Times", "Harbour Post", "Evening Star")
NAMES = ("Ana Ortiz", "Ben Carter", "Chen Wei", "Dana Kowalski", "Emeka Obi", "Farah Haddad")
BOILERPLATE = (
    "Copyright {year} {outlet}. All rights reserved. This material may not be published, "
    "broadcast, rewritten or redistributed without permission.",
    "Sign up for the {outlet} morning briefing to get the day's top stories in your inbox "
    "before breakfast.",
    "Additional reporting by {name}; editing by {other}. Send corrections to the {outlet} "
    "news desk.",
    "Follow {outlet} on social media for live updates, and download our app for breaking "
    "news alerts on your phone.",
    "Advertisement. Story continues below. Read more of our coverage in the {outlet} "
    "archive and subscribe for unlimited access.",
)


def boilerplate(rng: random.Random) -> str:
    fill = {
        "outlet": rng.choice(OUTLETS),
        "name": rng.choice(NAMES),
        "other": rng.choice(NAMES),
        "year": rng.randint(2004, 2025),
    }
    return " ".join(t.format(**fill) for t in rng.sample(BOILERPLATE, rng.randint(1, 2)))


def truncated(text: str, rng: random.Random) -> str:
    tokens = text.split(" ")
    keep = max(1, round(len(tokens) * rng.uniform(0.4, 0.8)))
    return " ".join(tokens[:keep]) + "…"


def copy_of(story: Story, kind: str, rng: random.Random) -> str:
    text = story.text
    if kind == "byline":
        return f"By {rng.choice(NAMES)}, {rng.choice(OUTLETS)}\n\n{text}"
    if kind == "truncated":
        return truncated(text, rng)
    if kind == "dropped_paragraph":
        parts = paragraphs(text)
        if len(parts) > 1:
            del parts[rng.randrange(1, len(parts))]
        return "\n\n".join(parts)
    if kind == "boilerplate":
        before, after = rng.choice([(True, False), (False, True), (True, True)])
        return "\n\n".join([boilerplate(rng)] * before + [text] + [boilerplate(rng)] * after)
    if kind == "truncated_boilerplate":
        return f"{truncated(text, rng)}\n\n{boilerplate(rng)}"
    raise ValueError(kind)


def statement_from(source: Story, words_wanted: int) -> str:
    """About ``words_wanted`` words of whole sentences from the start of another story."""
    out: list[str] = []
    for sentence in (s for p in paragraphs(source.text) for s in _SENTENCE_END.split(p)):
        if out and sum(len(s.split()) for s in out) + len(sentence.split()) > words_wanted:
            break
        out.append(sentence)
    tokens = " ".join(out).split()
    return " ".join(tokens[:words_wanted])


def with_statement(story: Story, statement: str, intro: str, rng: random.Random) -> str:
    parts = paragraphs(story.text)
    at = rng.randint(1, len(parts)) if len(parts) > 1 else 1
    return "\n\n".join(parts[:at] + [f"{intro} “{statement}”"] + parts[at:])


def build_bench(stories: Sequence[Story], rng: random.Random) -> Bench:
    """55% of the stories are copied once; 30% pair up within a section around a statement
    taken from one of the other 15%, each statement source used once."""
    bench = Bench()
    order = list(stories)
    rng.shuffle(order)
    copied, paired, sources = (
        order[: len(order) * 55 // 100],
        order[len(order) * 55 // 100 : len(order) * 85 // 100],
        order[len(order) * 85 // 100 :],
    )
    for n, story in enumerate(copied):
        kind = POSITIVE_KINDS[n % len(POSITIVE_KINDS)]
        copy = Story(f"{story.key}~{kind}", story.section, f"UPDATE: {story.title}", "")
        bench.articles[story.key] = story
        bench.articles[copy.key] = Story(
            copy.key, copy.section, copy.title, copy_of(story, kind, rng)
        )
        bench.labels[frozenset((story.key, copy.key))] = (True, kind)
    by_section: dict[str, list[Story]] = defaultdict(list)
    for story in paired:
        by_section[story.section].append(story)
    pairs = [
        pair
        for section in sorted(by_section)
        for pair in zip(by_section[section][0::2], by_section[section][1::2], strict=False)
    ]
    for (a, b), source in zip(pairs, sources, strict=False):
        shorter = min(len(a.text.split()), len(b.text.split()))
        statement = statement_from(source, max(30, round(shorter * rng.uniform(0.3, 1.0))))
        left = Story(
            f"{a.key}+q",
            a.section,
            a.title,
            with_statement(a, statement, "In a statement, officials said:", rng),
        )
        right = Story(
            f"{b.key}+q",
            b.section,
            b.title,
            with_statement(b, statement, "The statement read:", rng),
        )
        bench.articles[left.key] = left
        bench.articles[right.key] = right
        bench.labels[frozenset((left.key, right.key))] = (False, NEGATIVE_KIND)
    return bench


# --- the methods -----------------------------------------------------------------------------


def ours(bench: Bench, settings: NearDuplicateSettings) -> set[Pair]:
    """The pipeline's own functions, as one run calls them (``core/clustering.py``)."""
    signed = []
    for key, story in bench.articles.items():
        shingles = shingle_hashes(story.text)
        values = signature(shingles, settings.num_perm)
        signed.append(Signed(key, None, True, key, encode_signature(values), len(shingles)))
    pairs = near_duplicate_pairs(signed, settings)
    ids = [e.article_id for e in pairs.entries]
    return {
        frozenset((ids[a], ids[b]))
        for a, b in zip(pairs.earlier.tolist(), pairs.later.tolist(), strict=True)
    }


def datasketch_shingles(text: str) -> list[bytes]:
    tokens = words(text)
    width = min(SHINGLE_WORDS, len(tokens))
    return list({" ".join(tokens[i : i + width]).encode() for i in range(len(tokens) - width + 1)})


def datasketch_lsh(bench: Bench, threshold: float, num_perm: int) -> set[Pair]:
    keys = list(bench.articles)
    sketches = MinHash.bulk(
        (datasketch_shingles(bench.articles[k].text) for k in keys), num_perm=num_perm
    )
    index = MinHashLSH(threshold=threshold, num_perm=num_perm)
    with index.insertion_session() as session:
        for key, sketch in zip(keys, sketches, strict=True):
            session.insert(key, sketch)
    return {
        frozenset((key, other))
        for key, sketch in zip(keys, sketches, strict=True)
        for other in index.query(sketch)
        if other != key
    }


def datasketch_ensemble(bench: Bench, threshold: float, num_perm: int) -> set[Pair]:
    keys = list(bench.articles)
    shingles = [datasketch_shingles(bench.articles[k].text) for k in keys]
    sketches = MinHash.bulk(shingles, num_perm=num_perm)
    sizes = [len(s) for s in shingles]
    index = MinHashLSHEnsemble(threshold=threshold, num_perm=num_perm, num_part=16)
    index.index(
        (key, sketch, size) for key, sketch, size in zip(keys, sketches, sizes, strict=True) if size
    )
    # A containment query asks how much of the query is inside an indexed set: a pair is
    # declared when either text is mostly inside the other.
    return {
        frozenset((key, other))
        for key, sketch, size in zip(keys, sketches, sizes, strict=True)
        if size
        for other in index.query(sketch, size)
        if other != key
    }


# --- scoring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    method: str
    threshold: float
    precision: float
    recall: float
    f1: float
    articles_per_s: float
    seconds: float
    unlabelled_pairs: int
    recall_by_kind: dict[str, float]
    false_positive_rate: float


def score(
    method: str, threshold: float, bench: Bench, run: Callable[[], set[Pair]], repeat: int = 1
) -> Score:
    """Quality of the declared pairs; speed from the fastest of ``repeat`` runs."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        declared = run()
        timings.append(time.perf_counter() - started)
    seconds = min(timings)
    tp = sum(1 for p, (dup, _) in bench.labels.items() if dup and p in declared)
    fp = sum(1 for p, (dup, _) in bench.labels.items() if not dup and p in declared)
    positives = sum(1 for dup, _ in bench.labels.values() if dup)
    negatives = len(bench.labels) - positives
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / positives if positives else 1.0
    by_kind = {
        kind: _share(p in declared for p, (dup, k) in bench.labels.items() if dup and k == kind)
        for kind in POSITIVE_KINDS
    }
    return Score(
        method=method,
        threshold=threshold,
        precision=precision,
        recall=recall,
        f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        articles_per_s=len(bench.articles) / seconds,
        seconds=seconds,
        unlabelled_pairs=sum(1 for p in declared if p not in bench.labels),
        recall_by_kind=by_kind,
        false_positive_rate=fp / negatives if negatives else 0.0,
    )


def _share(hits: Iterable[bool]) -> float:
    values = list(hits)
    return sum(values) / len(values) if values else 0.0


def exact(bench: Bench, threshold: float) -> set[Pair]:
    """The labelled pairs whose exact containment reaches the threshold: what the
    definition itself decides, with no sketch and no index (a ceiling, not a method)."""
    shingles = {key: set(shingle_hashes(s.text).tolist()) for key, s in bench.articles.items()}
    declared = set()
    for pair in bench.labels:
        a, b = (shingles[key] for key in pair)
        if a and b and len(a & b) / min(len(a), len(b)) >= threshold:
            declared.add(pair)
    return declared


def best(scores: Iterable[Score]) -> Score:
    return max(scores, key=lambda s: (s.f1, s.articles_per_s))


def table(scores: Sequence[Score]) -> str:
    head = f"{'method':<34}{'t':>6}{'P':>8}{'R':>8}{'F1':>8}{'art/s':>9}{'FPR':>7}{'other':>7}"
    lines = [head, "-" * len(head)]
    for s in scores:
        lines.append(
            f"{s.method:<34}{s.threshold:>6.2f}{s.precision:>8.3f}{s.recall:>8.3f}{s.f1:>8.3f}"
            f"{s.articles_per_s:>9.0f}{s.false_positive_rate:>7.3f}{s.unlabelled_pairs:>7d}"
        )
    return "\n".join(lines)


def machine() -> dict[str, str | int | None]:
    return {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": importlib.metadata.version("numpy"),
        "datasketch": importlib.metadata.version("datasketch"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.near_duplicates")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each chosen method")
    parser.add_argument("--quick", action="store_true", help="one threshold each, one timed run")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    if args.corpus.exists():
        corpus_name, stories = str(args.corpus), load_corpus(args.corpus)
    else:
        corpus_name, stories = "generated", generated_corpus(rng)
    stories = without_related(stories)
    bench = build_bench(stories, rng)
    settings = NearDuplicateSettings()
    num_perm = settings.num_perm
    positives = sum(1 for dup, _ in bench.labels.values() if dup)
    print(
        f"corpus {corpus_name}: {len(stories)} stories -> {len(bench.articles)} articles, "
        f"{positives} copy pairs, {len(bench.labels) - positives} shared-statement pairs"
    )
    methods: dict[str, tuple[str, list[float], Callable[[float], set[Pair]]]] = {
        "ours": (
            "ours (pipelines/core/minhash.py)",
            [0.5, 0.6, settings.threshold, 0.8, 0.9],
            lambda t: ours(bench, replace(settings, threshold=t)),
        ),
        "MinHashLSH": (
            "datasketch MinHashLSH",
            [0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
            lambda t: datasketch_lsh(bench, t, num_perm),
        ),
        "MinHashLSHEnsemble": (
            "datasketch MinHashLSHEnsemble",
            [0.5, 0.6, 0.7, 0.8, 0.9],
            lambda t: datasketch_ensemble(bench, t, num_perm),
        ),
    }
    sweep: dict[str, list[Score]] = {}
    summary: list[Score] = []
    for name, (label, grid, run) in methods.items():
        if args.quick:
            grid = [settings.threshold if name != "MinHashLSH" else 0.4]
        sweep[name] = [score(label, t, bench, partial(run, t)) for t in sorted(set(grid))]
        # Ours at its default; datasketch at its best threshold. Then timed again, best of N.
        chosen = (
            next(s for s in sweep[name] if s.threshold == settings.threshold)
            if name == "ours"
            else best(sweep[name])
        )
        repeat = 1 if args.quick else args.repeat
        summary.append(
            score(label, chosen.threshold, bench, partial(run, chosen.threshold), repeat)
        )
    print(
        "\nOurs at the default threshold, datasketch at its best on the grid; speed best of runs:"
    )
    print(table(summary))
    ceiling = score(
        "exact containment (ceiling)",
        settings.threshold,
        bench,
        partial(exact, bench, settings.threshold),
    )
    print(
        f"The definition itself (exact containment >= {settings.threshold}, no sketch): "
        f"P {ceiling.precision:.3f} R {ceiling.recall:.3f} F1 {ceiling.f1:.3f}"
    )
    print("\nRecall by kind of copy:")
    for s in [*summary, ceiling]:
        print(f"  {s.method:<34}" + "  ".join(f"{k} {v:.3f}" for k, v in s.recall_by_kind.items()))
    print("\nEvery threshold tried (one run each):")
    print(table([s for scores in sweep.values() for s in scores]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "corpus": corpus_name,
                "seed": args.seed,
                "machine": machine(),
                "articles": len(bench.articles),
                "copy_pairs": positives,
                "shared_statement_pairs": len(bench.labels) - positives,
                "settings": asdict(settings),
                "summary": [asdict(s) for s in summary],
                "exact_containment": asdict(ceiling),
                "sweep": {name: [asdict(s) for s in scores] for name, scores in sweep.items()},
            },
            indent=1,
        )
        + "\n",
        "utf-8",
    )
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
