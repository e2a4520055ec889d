"""The throughput suite's figures: per-run records, the printed table and the verdicts.

Definitions (all wall-clock):

- ``articles_per_s`` = N / wall time of the whole ``newswatch run`` (start-up included);
- ``net_*`` subtract the wall time of a run over ``STARTUP_N`` articles (interpreter,
  imports, model load in every worker, planning, commit): the cost that does not grow
  with N;
- ``ratio`` = pipeline articles/s over bare ``nlp.pipe`` articles/s (the model's tok2vec
  and ner only) with as many processes as the pipeline has workers (the issue's measure),
  bare measured just before and again just after the pipeline runs and the mean of the two
  taken (spaCy's own speed on a shared machine drifts; with several rounds, bare runs
  between them, and the median round's ratio is the verdict); ``ideal_ratio`` compares
  with W times the single-process rate instead (perfect scaling, a stricter yardstick);
- flatness = ms per article at the largest N over ms per article at the smallest N;
- memory = the sum of each process's own peak RSS (an upper bound on the tree's peak).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.throughput import BareSpacy, PipelineRun

GOAL_RATIO = 0.85  # of bare tok2vec+ner on the same cores (issue 17)
FLATNESS_LIMIT = 1.15
MEMORY_BUDGET = 2 * 2**30
NAN = float("nan")


def mib(value: int) -> str:
    return f"{value / 2**20:,.0f}"


def run_record(
    run: PipelineRun,
    cores: int,
    startup: PipelineRun | None,
    bare: BareSpacy | None,
    bare_single: BareSpacy | None,
) -> dict[str, Any]:
    record: dict[str, Any] = asdict(run)
    record["articles_per_s"] = round(run.articles_per_s, 3)
    record["ms_per_article"] = round(run.ms_per_article, 3)
    record["cpu_ms_per_article"] = round(1000 * run.cpu_s / run.n, 3)
    record["foreign_share"] = round(run.foreign_cpu_s / (run.wall_s * cores), 3)
    if startup is not None and run.n > startup.n:
        net = max(1e-9, run.wall_s - startup.wall_s)
        record["startup_s"] = round(startup.wall_s, 3)
        record["net_articles_per_s"] = round((run.n - startup.n) / net, 3)
        record["net_ms_per_article"] = round(1000 * net / (run.n - startup.n), 3)
    if bare is not None:
        record["bare_spacy_articles_per_s"] = round(bare.articles_per_s, 3)
        record["ratio"] = round(run.articles_per_s / bare.articles_per_s, 3)
        if "net_articles_per_s" in record:
            record["net_ratio"] = round(record["net_articles_per_s"] / bare.articles_per_s, 3)
    if bare_single is not None:
        ideal = run.workers * bare_single.articles_per_s
        record["ideal_articles_per_s"] = round(ideal, 3)
        record["ideal_ratio"] = round(run.articles_per_s / ideal, 3)
    return record


def format_table(records: Sequence[dict[str, Any]], bare: Sequence[dict[str, Any]]) -> str:
    header = (
        f"{'input':<6} {'W':>2} {'N':>7} {'wall s':>8} {'art/s':>7} {'ms/art':>7} "
        f"{'net ms':>7} {'spaCy/s':>8} {'ratio':>6} {'net':>6} {'ideal':>6} "
        f"{'peak MiB':>9} {'other':>6} {'ok':>3}"
    )
    lines = [header, "-" * len(header)]
    for r in records:
        name = f"{r['input']}/{r['round']}" if "round" in r else r["input"]
        lines.append(
            f"{name:<6} {r['workers']:>2} {r['n']:>7,} {r['wall_s']:>8.1f} "
            f"{r['articles_per_s']:>7.2f} {r['ms_per_article']:>7.1f} "
            f"{r.get('net_ms_per_article', NAN):>7.1f} "
            f"{r.get('bare_spacy_articles_per_s', NAN):>8.2f} "
            f"{r.get('ratio', NAN):>6.3f} {r.get('net_ratio', NAN):>6.3f} "
            f"{r.get('ideal_ratio', NAN):>6.3f} "
            f"{mib(r['peak_tree_rss_bytes']):>9} "
            f"{r['foreign_share']:>6.0%} {'yes' if r['verified'] else 'NO':>3}"
        )
    if bare:
        lines.append("")
        lines.append("bare spaCy nlp.pipe (same model, tok2vec and ner only, same texts):")
        for b in bare:
            lines.append(
                f"  N={b['n']:>7,}  n_process={b['processes']}  batch_size={b['batch_size']}  "
                f"{b.get('when', ''):<13}  {b['wall_s']:8.1f} s  {b['articles_per_s']:7.2f} "
                f"articles/s  (other load {b['foreign_share']:.0%})"
            )
    lines.append(
        "\nart/s includes start-up; net: without it; ratio: over bare spaCy with W processes; "
        "ideal: over W x bare spaCy with 1 process; peak: the run's processes together at their "
        "highest (sampled 4 times a second); other: CPU share used by other processes"
    )
    return "\n".join(lines)


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per (input, W): flatness, the ratio goal at every N and the memory budget at the
    largest N. With several rounds per N, the median round's figures count (the median of
    the ratios, of the costs per article) and the highest memory."""
    summary: dict[str, Any] = {"groups": []}
    groups: dict[tuple[str, int], dict[int, list[dict[str, Any]]]] = {}
    for r in records:
        groups.setdefault((r["input"], r["workers"]), {}).setdefault(r["n"], []).append(r)
    for (kind, workers), by_n in sorted(groups.items()):
        sizes = sorted(by_n)
        small, large = by_n[sizes[0]], by_n[sizes[-1]]
        entry: dict[str, Any] = {
            "input": kind,
            "workers": workers,
            "from_n": sizes[0],
            "to_n": sizes[-1],
            "rounds": {n: len(by_n[n]) for n in sizes},
            "per_article_ratio": round(
                _median(large, "ms_per_article") / _median(small, "ms_per_article"), 3
            ),
        }
        if _has([*small, *large], "net_ms_per_article"):
            entry["net_per_article_ratio"] = round(
                _median(large, "net_ms_per_article") / _median(small, "net_ms_per_article"), 3
            )
        entry["flat"] = entry["per_article_ratio"] <= FLATNESS_LIMIT
        ratios = {n: round(_median(by_n[n], "ratio"), 3) for n in sizes if _has(by_n[n], "ratio")}
        entry["ratio_by_n"] = ratios
        entry["ratio_at_largest_n"] = ratios.get(sizes[-1])
        entry["meets_ratio_goal"] = bool(ratios) and min(ratios.values()) >= GOAL_RATIO
        # The kernel's own peak of each process, summed: an upper bound that sampling
        # cannot miss.
        peak = max(r["sum_of_process_peaks_bytes"] for r in large)
        entry["peak_memory_bytes_at_largest_n"] = peak
        entry["under_memory_budget"] = peak < MEMORY_BUDGET
        summary["groups"].append(entry)
    return summary


def _has(rows: Sequence[dict[str, Any]], key: str) -> bool:
    return all(key in r for r in rows)


def _median(rows: Sequence[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def format_summary(summary: dict[str, Any]) -> str:
    lines = ["", f"verdicts (ratio >= {GOAL_RATIO}, flat <= {FLATNESS_LIMIT}, memory < 2 GiB):"]
    for g in summary["groups"]:
        net = g.get("net_per_article_ratio")
        ratios = g.get("ratio_by_n", {})
        rounds = max(g.get("rounds", {}).values(), default=1)
        ratio = ", ".join(f"{r:.3f} at {n:,}" for n, r in ratios.items())
        if ratios and rounds > 1:
            ratio += f" (medians of {rounds} rounds)"
        lines.append(
            f"  {g['input']:<6} W={g['workers']}  per-article cost {g['from_n']:,} -> "
            f"{g['to_n']:,}: {g['per_article_ratio']:.3f}"
            + (f" (net of start-up {net:.3f})" if net is not None else "")
            + ("" if g["flat"] else " NOT FLAT")
            + (f"; ratio {ratio}" if ratios else "")
            + ("" if not ratios or g["meets_ratio_goal"] else " BELOW GOAL")
            + f"; peak {mib(g['peak_memory_bytes_at_largest_n'])} MiB"
            + ("" if g["under_memory_budget"] else " OVER BUDGET")
        )
    return "\n".join(lines)


def markdown(document: dict[str, Any]) -> str:
    """A results file as the Markdown tables of benchmarks/RESULTS.md."""
    lines = [
        "| input (round) | W | N | wall s | articles/s | ms/article | net ms/article | "
        "bare spaCy/s | ratio | net ratio | ideal ratio | peak RSS MiB | largest process MiB "
        "| other load |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in document["runs"]:
        round_ = f" ({r['round']})" if "round" in r else ""
        lines.append(
            f"| {r['input']}{round_} | {r['workers']} | {r['n']:,} | {r['wall_s']:.1f} | "
            f"{r['articles_per_s']:.2f} | {r['ms_per_article']:.1f} | "
            f"{r.get('net_ms_per_article', NAN):.1f} | "
            f"{r.get('bare_spacy_articles_per_s', NAN):.2f} | {r.get('ratio', NAN):.3f} | "
            f"{r.get('net_ratio', NAN):.3f} | {r.get('ideal_ratio', NAN):.3f} | "
            f"{mib(r['peak_tree_rss_bytes'])} | {mib(r['max_process_peak_bytes'])} | "
            f"{r['foreign_share']:.0%} |" + ("" if r["verified"] else " **not verified** |")
        )
    if document.get("bare_spacy"):
        lines += ["", "| bare spaCy | N | n_process | when | wall s | articles/s | other load |"]
        lines.append("|---|--:|--:|---|--:|--:|--:|")
        for b in document["bare_spacy"]:
            lines.append(
                f"| nlp.pipe | {b['n']:,} | {b['processes']} | {b.get('when', '')} | "
                f"{b['wall_s']:.1f} | {b['articles_per_s']:.2f} | {b['foreign_share']:.0%} |"
            )
    if document.get("startup"):
        lines += ["", "| start-up run | W | N | wall s |", "|---|--:|--:|--:|"]
        for s in document["startup"]:
            lines.append(f"| {s['input']} | {s['workers']} | {s['n']} | {s['wall_s']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m benchmarks.report benchmarks/results/throughput-*.json
    import json
    import sys
    from pathlib import Path

    for name in sys.argv[1:]:
        print(markdown(json.loads(Path(name).read_text("utf-8"))))
