"""How long ``newswatch report`` takes over a large stored dataset (goal: under 10 s at 100,000).

    .venv/bin/python -m benchmarks.report_speed                 # 100,000 articles, 3 timings
    .venv/bin/python -m benchmarks.report_speed --articles 20000 --repeat 1 --keep DIR

Writes a synthetic dataset in the real layout with the project's own writers
(``encode_parquet`` over ``Article`` records, ``Alert.to_json``, ``Rejection.to_json`` and
``write_run_report``): 60 days, one run a day, 8 feeds (one failing now and then), stories
of 1 to 12 copies, about a third of them on one of 5 watched topics (one topic with a burst
ten days before the end), entities drawn from 300 names with a long tail, 1,500-character
texts and 512-byte MinHash values like the pipeline's. Then it runs ``newswatch report``
as a user does, in its own process (interpreter start and imports included), and prints
the wall time of each run and the size of the page.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import ALERTS, ARTICLES, REJECTED, OutputLayout
from newswatch.connectors.dataset.write import encode_json_lines, encode_parquet
from newswatch.connectors.rss.read import FeedReport
from newswatch.pipelines.commit.manifest import CommitResult
from newswatch.pipelines.commit.run_report import write_run_report
from newswatch.pipelines.core.alerting import candidate_alerts
from newswatch.pipelines.core.rules import TopicRule
from newswatch.schemas import Alert, Article, Entity, Rejection, TopicMatch

GOAL_S = 10.0
DAYS = 60
LAST_DAY = date(2026, 10, 31)  # fixed, so that every run of the benchmark writes the same data
SOURCES = tuple(f"wire-{n}" for n in range(7)) + ("flaky",)
TOPICS = ("dprk-russia-arms", "china-taiwan-military", "iran-russia-drones", "red-sea", "sahel")
RULES = tuple(TopicRule(t, t.replace("-", " ").title(), "sentence", ()) for t in TOPICS)
COPIES = ((1, 60), (2, 20), (3, 10), (5, 7), (12, 3))  # (copies of a story, weight)
WORDS = (
    "council budget harbour railway festival drought election vaccine bridge museum tariff "
    "orchestra glacier startup pension wildfire satellite parliament stadium refinery airline "
    "artillery shells treaty summit missile drones troops frontline sanctions ceasefire"
).split()


@dataclass(frozen=True)
class _Story:
    number: int
    day: date
    copies: int
    topics: tuple[str, ...]
    entities: tuple[Entity, ...]
    title: str


def _entity_pool() -> list[Entity]:
    names = [f"Person {n}" if n % 3 else f"Place {n}" for n in range(300)]
    labels = ["PERSON" if n % 3 else "GPE" for n in range(300)]
    return [Entity(name, label, name) for name, label in zip(names, labels, strict=True)]


def _stories(n: int, rng: random.Random) -> Iterator[_Story]:
    """Stories until their copies make ``n`` articles."""
    pool = _entity_pool()
    weights = [1 / (i + 1) for i in range(len(pool))]  # a few names in most stories
    sizes, size_weights = zip(*COPIES, strict=True)
    made, number = 0, 0
    while made < n:
        copies = min(rng.choices(sizes, size_weights)[0], n - made)
        topics: tuple[str, ...] = ()
        if rng.random() < 0.33:
            topics = (rng.choice(TOPICS),)
        day = LAST_DAY - timedelta(days=rng.randrange(DAYS))
        if rng.random() < 0.02:  # a burst of one topic ten days before the end
            day, topics = LAST_DAY - timedelta(days=10), (TOPICS[0],)
        entities = tuple(dict.fromkeys(rng.choices(pool, weights, k=rng.randint(3, 8))))
        title = " ".join(rng.choice(WORDS) for _ in range(8)).capitalize() + f" {number}"
        yield _Story(number, day, copies, topics, entities, title)
        made += copies
        number += 1


def _articles(story: _Story, paragraphs: list[str], rng: random.Random) -> list[Article]:
    start = datetime.combine(story.day, datetime.min.time(), UTC) + timedelta(
        seconds=rng.randrange(20 * 3600)
    )
    copies = []
    for copy in range(story.copies):
        article_id = f"{story.number:020x}{copy:012x}"
        published = start + timedelta(minutes=17 * copy)
        copies.append(
            Article(
                article_id=article_id,
                source=rng.choice(SOURCES),
                url=f"https://news.example/{story.number}/{copy}",
                title=story.title,
                text="\n\n".join(rng.sample(paragraphs, 3)),
                published_at=published,
                ingested_at=published + timedelta(minutes=10),
                language="en",
                authors=("Staff",),
                entities=story.entities,
                topics=tuple(
                    TopicMatch(t, round(rng.uniform(0.5, 1.0), 3), (story.title,))
                    for t in story.topics
                ),
                cluster_id=f"{story.number:020x}{0:012x}",
                is_duplicate=copy > 0,
                minhash=rng.randbytes(512),
                shingle_count=240,
            )
        )
    return copies


def _run_id(day: date) -> str:
    return f"{day:%Y%m%d}T060000Z-{day.toordinal() % 0xFFFFFF:06x}"


def _write(root: str, run_id: str, kind: str, day: str, data: bytes, suffix: str) -> None:
    layout = OutputLayout(root, run_id)
    filesystem.write_file(layout.final_path(kind, day, layout.file_name(kind, 0, suffix)), data)


def _run_reports(root: str, per_day: dict[date, int], rng: random.Random) -> None:
    for day in sorted(per_day):
        run_id = _run_id(day)
        fetched = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=6)
        feeds = []
        for source in SOURCES:
            failed = source == "flaky" and rng.random() < 0.2
            status = "failed" if failed else rng.choice(("ok", "ok", "ok", "not_modified"))
            feeds.append(
                FeedReport(
                    source=source,
                    url=f"https://{source}.example/rss.xml",
                    status=status,
                    fetched_at=fetched,
                    http_status=503 if failed else (304 if status == "not_modified" else 200),
                    entries=0 if status != "ok" else per_day[day] // len(SOURCES),
                    error="HTTP 503" if failed else None,
                )
            )
        result = CommitResult(run_id, per_day[day], 0, 0, 1)
        write_run_report(OutputLayout(root, run_id), result, feeds, [])


def write_dataset(root: Path, n: int, seed: int = 16) -> int:
    """``n`` stored articles (and their alerts, rejections and run reports) under ``root``."""
    rng = random.Random(seed)
    paragraphs = [" ".join(rng.choice(WORDS) for _ in range(80)) + "." for _ in range(400)]
    by_day: dict[date, list[Article]] = defaultdict(list)
    alerts: dict[date, list[Alert]] = defaultdict(list)
    for story in _stories(n, rng):
        copies = _articles(story, paragraphs, rng)
        by_day[story.day].extend(copies)
        first = copies[0]
        alerts[first.ingested_at.date()].extend(candidate_alerts(first, RULES, first.ingested_at))
    for day, articles in by_day.items():
        _write(
            str(root), _run_id(day), ARTICLES, day.isoformat(), encode_parquet(articles), "parquet"
        )
    for day, raised in alerts.items():
        _write(str(root), _run_id(day), ALERTS, day.isoformat(), encode_json_lines(raised), "jsonl")
    for day in by_day:
        rejections = [
            Rejection(
                "flaky",
                rng.choice(("missing_url_and_id", "not_a_feed")),
                "synthetic",
                datetime.combine(day, datetime.min.time(), UTC),
                {"feed_url": "x"},
            )
            for _ in range(rng.randrange(6))
        ]
        if rejections:
            _write(
                str(root),
                _run_id(day),
                REJECTED,
                day.isoformat(),
                encode_json_lines(rejections),
                "jsonl",
            )
    _run_reports(str(root), {day: len(a) for day, a in by_day.items()}, rng)
    return sum(len(a) for a in by_day.values())


def time_report(root: Path, html: Path) -> float:
    """Wall time of ``newswatch report`` in its own process, as a user runs it."""
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "newswatch.pipelines.cli",
            "report",
            "--out",
            str(root),
            "--html",
            str(html),
            "--since",
            f"{DAYS}d",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the dataset here and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="report-speed-") as scratch:
        root = args.keep or Path(scratch) / "data"
        started = time.perf_counter()
        stored = write_dataset(root, args.articles)
        parquet = sum(p.stat().st_size for p in (root / "articles").rglob("*.parquet"))
        print(
            f"wrote {stored:,} articles ({parquet / 2**20:.0f} MiB of Parquet) "
            f"in {time.perf_counter() - started:.0f}s"
        )
        html = Path(scratch) / "report.html"
        times = [time_report(root, html) for _ in range(args.repeat)]
        size = html.stat().st_size
    # Other work on the machine slows the report down; say how much there was.
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    median = statistics.median(times)
    print(
        f"newswatch report over {stored:,} articles: "
        f"{', '.join(f'{t:.2f}' for t in times)} s (median {median:.2f} s, goal < {GOAL_S:g} s); "
        f"page {size / 1024:.0f} KiB; load average {load} on {os.cpu_count()} cores"
    )
    return 0 if median < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
