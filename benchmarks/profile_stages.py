"""Where the pipeline's own time goes, spaCy excluded: ``python -m benchmarks --profile``.

Two views over the same N benchmark articles:

1. **Stage functions, timed alone.** Each stage's pure functions (the ones the DoFns call)
   over every article, in order: feed parsing or message parsing, normalization, the NLP
   stage's own work around spaCy (``document_text``, ``analyse_doc`` on spaCy's Docs),
   topic matching, alert candidates, Parquet encoding, and one Beam coder round trip of
   what crosses a stage boundary. ``nlp.pipe`` itself is timed too, as the yardstick.
2. **The whole run under cProfile.** ``batch.run`` on the in-memory DirectRunner, in this
   process, so every frame is seen; time is grouped by package, with everything below
   ``Language.pipe`` counted as spaCy. cProfile slows Python-heavy code more than C code,
   so read its shares as where to look, and view 1 for the numbers.
"""

from __future__ import annotations

import cProfile
import dataclasses
import json
import pstats
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.corpus import DEFAULT_CORPUS, corpus_articles
from benchmarks.inputs import ITEMS_PER_FEED, rss_config, rss_document, write_feeds
from benchmarks.throughput import RESULTS

SPACY_PACKAGES = (
    "spacy",
    "spacy (cython)",
    "thinc",
    "srsly",
    "blis",
    "cymem",
    "preshed",
    "numpy",
    "murmurhash",
)


def _timed(label: str, n: int, fn: Callable[[], Any], results: list[tuple[str, float]]) -> Any:
    start = time.perf_counter()
    value = fn()
    elapsed = time.perf_counter() - start
    results.append((label, elapsed))
    print(f"  {label:<44} {elapsed:8.3f} s  {1e6 * elapsed / n:10.1f} µs/article", flush=True)
    return value


def stage_functions(n: int, corpus: Path) -> list[tuple[str, float]]:

    from apache_beam.coders import registry

    from newswatch.connectors.dataset.write import encode_parquet
    from newswatch.connectors.kafka.messages import parse_message
    from newswatch.connectors.rss.read import parse_feed
    from newswatch.pipelines.control.config import (
        NearDuplicateSettings,
        NlpSettings,
        default_alias_table,
        default_topic_rules,
    )
    from newswatch.pipelines.core.minhash import encode_signature, shingle_hashes, signature
    from newswatch.pipelines.core.nlp import TermIndex, analyse_doc, document_text, load_pipeline
    from newswatch.pipelines.core.normalization import NormalizeSettings, normalize_entry
    from newswatch.pipelines.core.rules import match_topics
    from newswatch.pipelines.stages.alerts import candidate_alerts
    from newswatch.schemas import Article, RawArticle

    _, articles = corpus_articles(n, corpus)
    aliases, rules, settings = default_alias_table(), default_topic_rules(), NlpSettings()
    now = datetime.now(UTC)
    results: list[tuple[str, float]] = []
    print(f"stage functions over {n:,} articles:")
    feeds = [
        rss_document(articles[i : i + ITEMS_PER_FEED], "profile").encode()
        for i in range(0, n, ITEMS_PER_FEED)
    ]
    raw_rss: list[RawArticle] = _timed(
        "RSS: parse_feed (feedparser, sanitizer)",
        n,
        lambda: [a for body in feeds for a in parse_feed("p", "file:///p.xml", body, now).articles],
        results,
    )
    messages = [json.dumps(a.message()).encode() for a in articles]
    _timed(
        "Kafka: parse_message (JSON)",
        n,
        lambda: [parse_message("p", "t", 0, i, m, 10**6, now) for i, m in enumerate(messages)],
        results,
    )
    normalized: list[Article] = _timed(
        "normalize_entry (HTML to text, URL, id)",
        n,
        lambda: [normalize_entry(r, NormalizeSettings()) for r in raw_rss],
        results,
    )
    settings_nd = NearDuplicateSettings()

    def sign(article: Article) -> Article:
        shingles = shingle_hashes(article.text)
        minhash = signature(shingles, settings_nd.num_perm) if len(shingles) else None
        return dataclasses.replace(
            article,
            minhash=encode_signature(minhash) if minhash is not None else b"",
            shingle_count=len(shingles),
        )

    normalized = _timed(
        "near-duplicates: shingles + MinHash",
        n,
        lambda: [sign(a) for a in normalized],
        results,
    )
    texts = _timed(
        "document_text",
        n,
        lambda: [document_text(a.title, a.text, settings.max_chars) for a in normalized],
        results,
    )
    nlp = load_pipeline(settings.model, aliases)
    terms = TermIndex.build(nlp, rules)
    docs = _timed(
        "spaCy nlp.pipe (the limit; not our code)",
        n,
        lambda: list(nlp.pipe(texts, batch_size=settings.batch_size)),
        results,
    )
    analysed = _timed(
        "analyse_doc (entities, sentences, terms)",
        n,
        lambda: [analyse_doc(d, aliases, terms) for d in docs],
        results,
    )
    with_entities = _timed(
        "dataclasses.replace (entities)",
        n,
        lambda: [
            dataclasses.replace(a, entities=e)
            for a, (e, _) in zip(normalized, analysed, strict=True)
        ],
        results,
    )
    topics = _timed(
        "match_topics", n, lambda: [match_topics(t, rules) for _, t in analysed], results
    )
    stored = _timed(
        "dataclasses.replace (topics)",
        n,
        lambda: [
            dataclasses.replace(a, topics=t) for a, t in zip(with_entities, topics, strict=True)
        ],
        results,
    )
    _timed(
        "candidate_alerts",
        n,
        lambda: [list(candidate_alerts(a, rules, now)) for a in stored],
        results,
    )
    _timed("encode_parquet (one file)", n, lambda: encode_parquet(stored), results)
    coder = registry.get_coder(Any)
    _timed(
        "Beam coder round trip: RawArticle",
        n,
        lambda: [coder.decode(coder.encode(r)) for r in raw_rss],
        results,
    )
    _timed(
        "Beam coder round trip: Article (stored)",
        n,
        lambda: [coder.decode(coder.encode(a)) for a in stored],
        results,
    )
    _timed(
        "Beam coder round trip: (Article, TextAnalysis)",
        n,
        lambda: [
            coder.decode(coder.encode((a, t)))
            for a, (_, t) in zip(with_entities, analysed, strict=True)
        ],
        results,
    )
    return results


def _package(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C)"
    if filename.endswith((".pyx", ".pxd")):  # Cython: spaCy's, thinc's, preshed's, ...
        return "spacy (cython)"
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    if "newswatch" in filename or "/work/" in filename:
        for name in ("pipelines", "connectors", "schemas", "benchmarks"):
            if name in parts:
                return f"newswatch.{name}"
    return "stdlib"


def whole_run(n: int, corpus: Path, top: int = 25) -> dict[str, float]:
    from newswatch.pipelines.control.config import load_config
    from newswatch.pipelines.run import run

    _, articles = corpus_articles(n, corpus)
    with tempfile.TemporaryDirectory(prefix="newswatch-profile-") as tmp:
        folder = Path(tmp)
        out = folder / "data"
        feeds = write_feeds(articles, folder / "feeds")
        config_path = folder / "newswatch.yaml"
        config_path.write_text(rss_config(feeds, out), "utf-8")
        config = load_config(str(config_path))
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        run(config, ["--direct_num_workers=1", "--direct_running_mode=in_memory"])
        profiler.disable()
        wall = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    cumulative = {label: 0.0 for label, _, _ in CALL_SITES}
    for (file, _, name), (_, _, _, ct, _) in raw.items():
        for label, suffix, function in CALL_SITES:
            if name == function and file.endswith(suffix):
                cumulative[label] += ct
    by_package: dict[str, float] = defaultdict(float)
    own: list[tuple[float, str]] = []
    for (file, line, name), (_, _, tottime, _, _) in raw.items():
        package = _package(file)
        by_package[package] += tottime
        if package not in SPACY_PACKAGES:
            own.append((tottime, f"{package}: {Path(file).name}:{line} {name}"))
    profiled = sum(by_package.values())
    spacy = cumulative["spaCy: Language.pipe"]
    print(
        f"\nwhole run under cProfile, {n:,} articles: {wall:.1f} s wall, {profiled:.1f} s profiled"
    )
    print(f"  {'spaCy: Language.pipe (cumulative)':<44} {spacy:8.2f} s")
    print(f"  {'everything else':<44} {profiled - spacy:8.2f} s")
    named = 0.0
    for label, seconds in cumulative.items():
        if label != "spaCy: Language.pipe":
            named += seconds
            print(f"    {label:<42} {seconds:8.2f} s  {1e6 * seconds / n:8.0f} µs/article")
    rest = profiled - spacy - named
    print(
        f"    {'the rest (Beam runner, coders, shuffles)':<42} {rest:8.2f} s  {1e6 * rest / n:8.0f} µs/article"
    )
    print("  self time by package, spaCy's excluded:")
    for package, seconds in sorted(by_package.items(), key=lambda kv: -kv[1]):
        if package not in SPACY_PACKAGES and seconds >= 0.05:
            print(f"    {package:<28} {seconds:8.2f} s")
    print(f"  top {top} functions outside spaCy's packages (self time):")
    for seconds, where in sorted(own, reverse=True)[:top]:
        print(f"    {seconds:8.2f} s  {where}")
    return {"wall_s": wall, "spacy_s": spacy, "other_s": profiled - spacy, **cumulative}


# Call sites whose cumulative time is reported (label, file suffix, function name). They
# do not nest in one another, so their sum is meaningful.
CALL_SITES = (
    ("spaCy: Language.pipe", "spacy/language.py", "pipe"),
    ("model load (load_pipeline, TermIndex.build)", "pipelines/core/nlp.py", "load"),
    ("RSS: fetch + parse_feed", "connectors/rss/read.py", "process"),
    ("Kafka: read + parse_message", "connectors/kafka/connection.py", "process"),
    ("normalize_entry", "pipelines/core/normalization.py", "normalize_entry"),
    ("near-duplicates (every DoFn of the stage)", "pipelines/stages/clusters.py", "process"),
    ("analyse_doc", "pipelines/core/nlp.py", "analyse_doc"),
    ("match_topics", "pipelines/core/rules.py", "match_topics"),
    ("candidate_alerts", "pipelines/stages/alerts.py", "candidate_alerts"),
    ("write files (Parquet, JSON Lines)", "connectors/dataset/write.py", "process"),
    ("plan_run", "pipelines/run.py", "plan_run"),
    ("commit", "pipelines/commit/manifest.py", "process"),
)


def profile(n: int, corpus: Path = DEFAULT_CORPUS, label: str = "") -> Path:
    """Both views; also written to ``benchmarks/results/profile-<time>[-label].json``."""
    stages = stage_functions(n, corpus)
    run = whole_run(n, corpus)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"profile-{stamp}{'-' + label if label else ''}.json"
    document = {
        "n": n,
        "label": label,
        "stage_functions_s": dict(stages),
        "stage_functions_us_per_article": {k: round(1e6 * v / n, 1) for k, v in stages},
        "whole_run_under_cprofile_s": {k: round(v, 3) for k, v in run.items()},
    }
    path.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    print(f"\nresults: {path}")
    return path
