"""Alert latency of ``newswatch stream``: from a matching article acknowledged by Kafka to its
alert printed by ``newswatch alerts subscribe``, under steady background load.

    .venv/bin/python -m benchmarks.stream_latency                 # 10 articles/s for 180 s
    .venv/bin/python -m benchmarks.stream_latency --texts short --label short  # feed-summary length
    .venv/bin/python -m benchmarks.stream_latency --rate 4 --label rate4      # what full texts sustain

1. start the development broker on a free port, a 3-partition input topic and an alert
   topic;
2. start ``newswatch stream`` (DirectRunner, default window 60 s) and ``newswatch alerts
   subscribe --format json`` as subprocesses, and wait until the stream has read a first
   article;
3. produce at a fixed rate for ``--seconds``: benchmark corpus articles (``corpus.py``) as
   background, and every ``--match-every``-th a distinct article that the bundled
   ``dprk-russia-arms`` rule matches; each is produced on its own and timed when acked;
4. wait for the last alerts, stop the stream with SIGTERM (it commits its open window);
5. latency = the subscriber's arrival time of each injected article's alert minus its ack
   time; throughput = articles stored (read back from Parquet) over the production span;
   the stream's CPU time and peak memory from /proc.

Writes ``benchmarks/results/stream-latency-<time>[-label].json``; the figures quoted in
``benchmarks/STREAMING.md`` come from these files.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
from kafka import KafkaProducer

from benchmarks.corpus import DEFAULT_CORPUS, corpus_articles
from benchmarks.inputs import create_topic
from benchmarks.measure import library_versions, machine
from newswatch.pipelines.cli.broker import free_port, start_broker

RESULTS = Path(__file__).resolve().parent / "results"
NEWSWATCH = [sys.executable, "-m", "newswatch.pipelines.cli"]
GOAL_P95_S = 5.0
# "short" background texts: the lead of each corpus article, about a feed summary's length.
SHORT_CHARS = 400
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Distinct filler around one sentence the rule matches: copies share too little text to be
# near-duplicates of each other, so every one raises its own alert.
_WORDS = (
    "harbour railway festival drought bridge museum tariff orchestra glacier pension wildfire "
    "satellite stadium refinery airline vineyard tunnel hospital library reservoir turbine "
    "fishery mayor senate exports rainfall harvest ferry bakery airport theatre clinic novel"
).split()


def matching_article(n: int, run: str) -> dict[str, Any]:
    rng = __import__("random").Random(n)
    filler = [" ".join(rng.choice(_WORDS) for _ in range(14)).capitalize() + "." for _ in range(10)]
    return {
        "url": f"https://latency.example/{run}/{n}",
        # The rule wants two sentences (the headline counts as one).
        "title": f"Dispatch {n}: North Korea sends more artillery shells to Russia",
        "text": " ".join(filler[:5])
        + f" North Korea shipped {1000 + n} artillery shells to Russia, officials said. "
        + " ".join(filler[5:]),
        "published": datetime.now(UTC).isoformat(),
        "source": "latency-wire",
    }


def _lead(text: str, chars: int = SHORT_CHARS) -> str:
    """The first sentences of a text, up to about ``chars``: what a feed summary carries."""
    cut = text.find(". ", chars)
    return text if cut < 0 else text[: cut + 1]


def background_articles(count: int, run: str, texts: str = "full") -> list[dict[str, Any]]:
    _, articles = corpus_articles(count, DEFAULT_CORPUS)
    return [
        {
            "url": f"{a.url}?run={run}",
            "title": a.title,
            "text": a.text if texts == "full" else _lead(a.text),
            "published": a.published.isoformat(),
            "source": "bench-wire",
        }
        for a in articles
    ]


def stream_config(
    folder: Path, bootstrap: str, topic: str, alerts_topic: str, window: float
) -> Path:
    path = folder / "stream.yaml"
    path.write_text(
        "\n".join(
            [
                "sources:",
                "  - name: wire",
                "    type: kafka",
                f"    bootstrap_servers: {bootstrap}",
                f"    topic: {topic}",
                "    group_id: latency-bench",
                f"output: {folder / 'data'}",
                "alerts:",
                "  - type: file",
                "  - type: kafka",
                f"    bootstrap_servers: {bootstrap}",
                f"    topic: {alerts_topic}",
                "stream:",
                f"  window: {window:g}",
                "  status_interval: 10",
            ]
        )
        + "\n",
        "utf-8",
    )
    return path


class Reader(threading.Thread):
    """Lines of a subprocess's stream with their arrival time."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()

    def run(self) -> None:
        for line in self._stream:
            self.lines.put((time.time(), line.rstrip("\n")))


def _cpu_and_rss(pid: int) -> tuple[float, int]:
    """CPU seconds and resident bytes of one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        return cpu, rss
    except (OSError, IndexError, ValueError):
        return 0.0, 0


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def window_commit_delays(out: Path, window: float, before: float) -> list[float]:
    """Seconds from each window's end to its Parquet files being written (they are moved
    into the dataset, keeping that time, within the same commit)."""
    written: dict[str, float] = {}
    for path in (out / "articles").glob("dt=*/part-*.parquet"):
        run_id = path.stem.removeprefix("part-").rsplit("-", 1)[0]  # <window start>-<token>
        written[run_id] = max(written.get(run_id, 0.0), path.stat().st_mtime)
    delays = []
    for run_id, at in written.items():
        stamp = run_id.split("-")[0]
        start = datetime.strptime(stamp[:-4], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        end = start.timestamp() + int(stamp[-4:-1]) / 1000 + window
        if at < before:
            delays.append(at - end)
    return sorted(delays)


def run_benchmark(
    rate: float, seconds: float, match_every: int, window: float, label: str, texts: str
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    total = int(rate * seconds)
    matches = {i for i in range(total) if i % match_every == match_every // 2}
    background_plan = background_articles(total - len(matches) + 1, run, texts)
    background = iter(background_plan)
    plan = [matching_article(i, run) if i in matches else next(background) for i in range(total)]
    broker = start_broker(free_port())
    folder = Path(tempfile.mkdtemp(prefix="newswatch-stream-bench-"))
    stream = subscriber = None
    try:
        topic, alerts_topic = f"news.{run}", f"alerts.{run}"
        create_topic(broker.bootstrap, topic, partitions=3)
        create_topic(broker.bootstrap, alerts_topic, partitions=1)
        config = stream_config(folder, broker.bootstrap, topic, alerts_topic, window)
        subscriber = subprocess.Popen(
            [
                *NEWSWATCH,
                "alerts",
                "subscribe",
                "--bootstrap",
                broker.bootstrap,
                "--alerts-topic",
                alerts_topic,
                "--from-beginning",
                "--format",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        alerts = Reader(subscriber.stdout)
        alerts.start()
        started = time.monotonic()
        stream = subprocess.Popen(
            [*NEWSWATCH, "stream", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        status = Reader(stream.stderr)
        status.start()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=0)
        # Ready: a first article produced before timing starts has been read and processed.
        producer.send(topic, json.dumps(background_articles(1, f"{run}-warm")[0]).encode()).get(30)
        status_lines: list[str] = []
        while True:
            at, line = status.lines.get(timeout=300)
            status_lines.append(line)
            if line.startswith("newswatch stream 20") and " in 1 " in line:
                break
        startup_s = time.monotonic() - started
        cpu_before, _ = _cpu_and_rss(stream.pid)
        acked: dict[str, float] = {}
        peak_rss = 0
        rss_series: list[tuple[int, int]] = []
        begin = time.time()
        for i, article in enumerate(plan):
            due = begin + i / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            key = str(i).encode()
            producer.send(topic, key=key, value=json.dumps(article).encode()).get(timeout=30)
            if i in matches:
                acked[article["url"]] = time.time()
            if i % int(rate) == 0:
                rss_now = _cpu_and_rss(stream.pid)[1]
                peak_rss = max(peak_rss, rss_now)
                if i % int(rate * 30) == 0:  # every 30 s: is memory flat over a long run?
                    rss_series.append((round(time.time() - begin), rss_now))
        end = time.time()
        producer.close()
        arrived: dict[str, float] = {}
        deadline = time.time() + 60
        while len(arrived) < len(acked) and time.time() < deadline:
            try:
                at, line = alerts.lines.get(timeout=1)
            except queue.Empty:
                continue
            if line.startswith("{"):
                url = json.loads(line)["url"]
                if url in acked and url not in arrived:
                    arrived[url] = at
        cpu_after, rss = _cpu_and_rss(stream.pid)
        peak_rss = max(peak_rss, rss)
        stop_sent = time.time()
        stream.send_signal(signal.SIGTERM)
        exit_code = stream.wait(timeout=180)
        stopped_in = time.time() - end
        while not status.lines.empty():
            status_lines.append(status.lines.get()[1])
        table = ds.dataset(
            folder / "data" / "articles", format="parquet", partitioning="hive"
        ).to_table(columns=["ingested_at"])
        stored = table.num_rows
        ingested = sorted(t.timestamp() for t in table.column("ingested_at").to_pylist())
        # Read in time: how far behind production the last article was read.
        read_behind_s = (ingested[-1] - end) if ingested else float("nan")
        latencies = [arrived[url] - acked[url] for url in arrived]
        commit_delays = window_commit_delays(folder / "data", window, stop_sent)
        result = {
            "benchmark": "stream_latency",
            "label": label,
            "measured_at": datetime.now(UTC).isoformat(),
            "rate_per_s": rate,
            "seconds": seconds,
            "window_s": window,
            "background_texts": texts,
            "background_mean_chars": statistics.fmean(len(a["text"]) for a in background_plan),
            "produced": total + 1,
            "matching_produced": len(acked),
            "alerts_received": len(arrived),
            "alerts_missing": sorted(set(acked) - set(arrived)),
            "latency_s": {
                "p50": percentile(latencies, 0.50),
                "p95": percentile(latencies, 0.95),
                "max": max(latencies, default=float("nan")),
                "mean": statistics.fmean(latencies) if latencies else float("nan"),
                "all": sorted(round(v, 4) for v in latencies),
            },
            "goal_p95_s": GOAL_P95_S,
            # When each window's files were in the dataset, after the window ended (windows
            # closed by the drain at the end are left out).
            "window_commit_delay_s": {
                "windows": len(commit_delays),
                "p50": percentile(commit_delays, 0.50),
                "max": max(commit_delays, default=float("nan")),
            },
            "stored_articles": stored,
            "production_span_s": end - begin,
            "sustained_articles_per_s": stored / max(1e-9, ingested[-1] - begin)
            if ingested
            else 0.0,
            "last_read_after_production_s": read_behind_s,
            "produced_articles_per_s": total / (end - begin),
            "stream_startup_s": startup_s,
            "stream_cpu_s_during_production": cpu_after - cpu_before,
            "stream_peak_rss_bytes": peak_rss,
            "stream_rss_bytes_every_30s": rss_series,
            "stop_after_sigterm_s": stopped_in,
            "stream_exit_code": exit_code,
            "status_lines": status_lines[-6:],
            "machine": machine(),
            "libraries": library_versions(),
        }
        return result
    finally:
        for process in (stream, subscriber):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stream_latency", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rate", type=float, default=10.0, help="articles per second (10)")
    parser.add_argument("--seconds", type=float, default=180.0, help="production time (180)")
    parser.add_argument(
        "--match-every", type=int, default=20, help="one matching article in N (20)"
    )
    parser.add_argument("--window", type=float, default=60.0, help="stream window seconds (60)")
    parser.add_argument(
        "--texts",
        choices=("full", "short"),
        default="full",
        help="background articles: whole corpus texts, or their first ~400 characters",
    )
    parser.add_argument("--label", default="", help="a tag for the results file")
    args = parser.parse_args(argv)
    result = run_benchmark(
        args.rate, args.seconds, args.match_every, args.window, args.label, args.texts
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"stream-latency-{stamp}{'-' + args.label if args.label else ''}.json"
    path.write_text(json.dumps(result, indent=1), "utf-8")
    lat = result["latency_s"]
    commit = result["window_commit_delay_s"]
    print(
        f"alerts {result['alerts_received']}/{result['matching_produced']}  "
        f"latency p50 {lat['p50']:.2f}s  p95 {lat['p95']:.2f}s  max {lat['max']:.2f}s  "
        f"(goal p95 < {GOAL_P95_S:g}s)\n"
        f"stored {result['stored_articles']} of {result['produced']} produced; "
        f"sustained {result['sustained_articles_per_s']:.1f} articles/s at "
        f"{result['produced_articles_per_s']:.1f}/s offered; "
        f"stream CPU {result['stream_cpu_s_during_production']:.0f}s over "
        f"{result['production_span_s']:.0f}s, peak RSS "
        f"{result['stream_peak_rss_bytes'] / 2**20:.0f} MiB\n"
        f"windows committed {commit['p50']:.2f}s (p50), {commit['max']:.2f}s (max) after "
        f"they ended ({commit['windows']} windows)\n"
        f"-> {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
