"""The stream's exact-dedupe state at scale: the on-disk index of committed article ids.

    .venv/bin/python -m benchmarks.stream_state [--ids 2000000] [--per-file 5000]

Writes a dataset of ``--ids`` committed article ids (Parquet files of ``--per-file`` rows
each, in ``dt=`` folders, holding the ``article_id`` column the index reads), then, in a
fresh process each, measures what a stream pays for it:

- ``first sync``: building the index from the whole dataset (a stream's first start on it);
- ``restart``: opening the built index and syncing with nothing new;
- ``one window``: syncing after one more file is committed;
- lookups per second (half committed ids, half new), and the process's peak RSS.

Writes ``benchmarks/results/stream-state-<ids>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LOOKUPS = 100_000


def write_dataset(out: Path, ids: int, per_file: int, rng: random.Random) -> list[str]:
    """``ids`` random article ids in files of ``per_file``; returns a sample of them."""
    sample: list[str] = []
    for n, start in enumerate(range(0, ids, per_file)):
        chunk = [f"{rng.getrandbits(128):032x}" for _ in range(min(per_file, ids - start))]
        sample.extend(chunk[:: max(1, ids // LOOKUPS)])
        folder = out / "articles" / f"dt=2026-{1 + n // 300 % 12:02d}-{1 + n % 28:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"article_id": chunk}), folder / f"part-bench{n:05d}-0.parquet")
    return sample[: LOOKUPS // 2]


def measure(phase: str, out: str, sample_file: str) -> dict[str, float]:
    """One phase in this process; peak RSS is this process's."""
    from newswatch.pipelines.commit.committed_keys import ARTICLE_IDS, CommittedKeys

    began = time.perf_counter()
    index = CommittedKeys(out, ARTICLE_IDS)
    files = index.sync()
    synced = time.perf_counter() - began
    result: dict[str, float] = {"sync_s": round(synced, 3), "files_read": files}
    if phase == "lookups":
        committed = json.loads(Path(sample_file).read_text())
        rng = random.Random(7)
        fresh = [f"{rng.getrandbits(128):032x}" for _ in committed]
        began = time.perf_counter()
        hits = sum(1 for key in [*committed, *fresh] if key in index)
        elapsed = time.perf_counter() - began
        assert hits == len(committed), (hits, len(committed))
        result["lookups_per_s"] = round(2 * len(committed) / elapsed)
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["index_mib"] = round(os.path.getsize(index.path) / 2**20, 1)
    result["ids_held"] = len(index)
    index.close()
    return result


def run_phase(phase: str, out: Path, sample_file: Path) -> dict[str, float]:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.stream_state",
            "--phase",
            phase,
            str(out),
            str(sample_file),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=2_000_000)
    parser.add_argument("--per-file", type=int, default=5_000)
    parser.add_argument("--phase", nargs=3, metavar=("PHASE", "OUT", "SAMPLE"), help="internal")
    args = parser.parse_args(argv)
    if args.phase:
        phase, out, sample_file = args.phase
        print(json.dumps(measure(phase, out, sample_file)))
        return 0

    with tempfile.TemporaryDirectory(prefix="newswatch-bench-state-") as tmp:
        out = Path(tmp) / "data"
        sample_file = Path(tmp) / "sample.json"
        began = time.perf_counter()
        sample = write_dataset(out, args.ids, args.per_file, random.Random(42))
        sample_file.write_text(json.dumps(sample))
        print(
            f"dataset: {args.ids:,} ids in {args.ids // args.per_file:,} files, "
            f"{time.perf_counter() - began:.0f} s to write"
        )
        report: dict[str, object] = {"ids": args.ids, "per_file": args.per_file}
        report["first_sync"] = run_phase("sync", out, sample_file)
        report["restart"] = run_phase("sync", out, sample_file)
        extra = out / "articles" / "dt=2026-12-31"
        extra.mkdir()
        rng = random.Random(3)
        pq.write_table(
            pa.table({"article_id": [f"{rng.getrandbits(128):032x}" for _ in range(600)]}),
            extra / "part-window-0.parquet",
        )
        report["one_window"] = run_phase("sync", out, sample_file)
        report["lookups"] = run_phase("lookups", out, sample_file)
    for name in ("first_sync", "restart", "one_window", "lookups"):
        print(f"{name:>11}: {report[name]}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"stream-state-{args.ids}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
