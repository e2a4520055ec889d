"""What a run on a Dask cluster costs beside the DirectRunner on this machine.

    .venv/bin/dask scheduler --host 127.0.0.1 --port 8786 &
    .venv/bin/dask worker tcp://127.0.0.1:8786 --nworkers 1 --nthreads 1 --no-nanny &  # twice
    .venv/bin/python -m benchmarks.dask_cost --address tcp://127.0.0.1:8786 --sizes 10,300

For each N (RSS files, as ``python -m benchmarks`` serves them), ``newswatch run`` on the
DirectRunner in-process (W=1), with one worker process per core (W=default), and with
``--runner=dask`` on the cluster; each run's output is read back and must hold exactly
the N articles served. Besides wall time: CPU seconds of the ``newswatch`` process tree,
of the cluster's worker processes (asked over the Dask client before and after each run),
and the workers' peak RSS (each process's own, since it started: start fresh workers for
a fresh figure). The machine's other load is what neither used.

Writes ``benchmarks/results/dask-<time>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import measure
from benchmarks.corpus import DEFAULT_CORPUS, corpus_articles
from benchmarks.measure import library_versions, machine
from benchmarks.throughput import (
    CORES,
    DEFAULT_WORKERS,
    RESULTS,
    Inputs,
    PipelineRun,
    clear,
    git_state,
    run_pipeline,
    save,
)


def cluster_usage(address: str) -> dict[str, tuple[float, int]]:
    """Per worker: (CPU seconds, peak RSS bytes) of its process so far."""
    from distributed import Client

    # A function of the standard library: the workers cannot import this module.
    with Client(address) as client:
        usage = client.run(resource.getrusage, resource.RUSAGE_SELF)
    return {w: (u.ru_utime + u.ru_stime, u.ru_maxrss * 1024) for w, u in usage.items()}


def measure_dask(
    address: str, articles: Sequence[Any], inputs: Inputs
) -> tuple[PipelineRun, dict[str, Any]]:
    before = cluster_usage(address)
    run = run_pipeline(
        "rss",
        len(before),
        articles,
        inputs,
        options=["--runner=dask", f"--dask_client_address={address}"],
    )
    after = cluster_usage(address)
    cluster_cpu = sum(after[w][0] - before[w][0] for w in after if w in before)
    return run, {
        "cluster_workers": len(after),
        "cluster_cpu_s": round(cluster_cpu, 3),
        "cluster_peak_rss_bytes": max(peak for _, peak in after.values()),
    }


def record(engine: str, run: PipelineRun, cluster: dict[str, Any] | None) -> dict[str, Any]:
    cluster_cpu = (cluster or {}).get("cluster_cpu_s", 0.0)
    # The workers are not children of the run: their CPU is in the machine's busy time.
    other = max(0.0, run.foreign_cpu_s - cluster_cpu)
    row = {
        "engine": engine,
        **{k: v for k, v in asdict(run).items() if k != "memory_timeline"},
        "ms_per_article": round(run.ms_per_article, 1),
        "cpu_s_total": round(run.cpu_s + cluster_cpu, 2),
        "other_share": round(other / (run.wall_s * CORES), 3),
        **(cluster or {}),
    }
    return row


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    header = (
        f"{'engine':<10} {'N':>5} {'wall s':>7} {'ms/art':>7} {'CPU s':>7} "
        f"{'peak MiB':>9} {'other':>6} {'ok':>3}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        peak = max(r["peak_tree_rss_bytes"], r.get("cluster_peak_rss_bytes", 0))
        lines.append(
            f"{r['engine']:<10} {r['n']:>5} {r['wall_s']:>7.1f} {r['ms_per_article']:>7.1f} "
            f"{r['cpu_s_total']:>7.1f} {peak / 2**20:>9,.0f} {r['other_share']:>6.0%} "
            f"{'yes' if r['verified'] else 'NO':>3}"
        )
    lines.append(
        "\nCPU s: the run's processes and, on Dask, the cluster's workers; peak MiB: the "
        "largest process (on Dask, of the run or of a worker); other: CPU share used by "
        "other processes"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dask_cost", description=__doc__)
    parser.add_argument("--address", required=True, help="the Dask scheduler, tcp://HOST:PORT")
    parser.add_argument("--sizes", default="10,300", help="article counts (default 10,300)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="articles.jsonl")
    parser.add_argument("--quiet-wait", type=float, default=120.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    measure.QUIET_WAIT_S = args.quiet_wait
    sizes = sorted(int(n) for n in args.sizes.split(","))
    _, articles = corpus_articles(max(sizes), args.corpus)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"dask-{stamp}.json"
    document: dict[str, Any] = {
        "started_at": stamp,
        "machine": machine(),
        "versions": library_versions(),
        "git": git_state(),
        "address": args.address,
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="newswatch-dask-bench-") as tmp:
        inputs = Inputs(Path(tmp), None)
        for n in sizes:
            chosen = articles[:n]
            for engine, workers in (("direct W=1", 1), ("direct W=d", DEFAULT_WORKERS)):
                run = run_pipeline("rss", workers, chosen, inputs)
                document["runs"].append(record(engine, run, None))
                clear(Path(tmp))
            run, cluster = measure_dask(args.address, chosen, inputs)
            document["runs"].append(record("dask", run, cluster))
            clear(Path(tmp))
            for row in document["runs"][-3:]:
                print(json.dumps({k: row[k] for k in ("engine", "n", "wall_s", "verified")}))
            save(path, document)
            time.sleep(1)
    print(format_rows(document["runs"]))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
