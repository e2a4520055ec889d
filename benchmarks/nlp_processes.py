"""Two ways to use both cores for NER, measured side by side on the same articles.

    .venv/bin/python -m benchmarks.nlp_processes [--size 1000] [--processes 2]

1. **Beam workers**: ``newswatch run --direct_running_mode=multi_processing
   --direct_num_workers=2``. Each SDK worker process loads the model once and runs the
   stage's DoFns on its half of every stage's input; articles cross processes as pickles.
2. **spaCy's n_process inside one worker**: ``newswatch run`` on the in-memory runner, with
   the NER DoFn swapped (in this experiment only) for one that collects its bundle and runs
   one ``nlp.pipe(texts, n_process=2)`` over it at the end of the bundle. spaCy forks
   processes that each hold the model and ship every finished Doc back to the worker as
   bytes. (Calling ``nlp.pipe(n_process=2)`` per batch instead would start two processes
   per batch.)

Both against bare ``nlp.pipe`` with n_process=1 and 2 over the same texts. The winner is
what ``make bench`` runs with two workers; see benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from benchmarks.corpus import DEFAULT_CORPUS, corpus_articles
from benchmarks.measure import run_measured, wait_for_quiet
from benchmarks.throughput import Inputs, bare_spacy, document_texts, verify_output
from newswatch.pipelines.control.settings import NlpSettings
from newswatch.pipelines.core.aliases import AliasTable
from newswatch.pipelines.core.nlp import TextAnalyser, analyse_doc, document_text
from newswatch.pipelines.core.rules import TopicRule
from newswatch.schemas import Article

SPACY_BATCH = 16  # documents per batch sent to a spaCy process (memory grows with it)


class _WholeBundleFn(beam.DoFn):
    """Collects the bundle's articles; at its end, one nlp.pipe with n_process over them."""

    def __init__(
        self,
        settings: NlpSettings,
        aliases: AliasTable,
        rules: Sequence[TopicRule],
        processes: int,
    ) -> None:
        self._settings = settings
        self._aliases = aliases
        self._rules = tuple(rules)
        self._processes = processes
        self._analyser: TextAnalyser | None = None
        self._articles: list[Article] = []

    def setup(self) -> None:
        self._analyser = TextAnalyser.load(self._settings.model, self._aliases, self._rules)

    def start_bundle(self) -> None:
        self._articles = []

    def process(self, article: Article) -> None:
        self._articles.append(article)

    def finish_bundle(self) -> Iterator[Any]:
        assert self._analyser is not None
        analyser = self._analyser
        texts = [document_text(a.title, a.text, self._settings.max_chars) for a in self._articles]
        docs = analyser.nlp.pipe(texts, batch_size=SPACY_BATCH, n_process=self._processes)
        for article, doc, text in zip(self._articles, docs, texts, strict=True):
            entities, analysis = analyse_doc(doc, analyser.aliases, analyser.terms, text)
            yield GlobalWindows.windowed_value(
                (dataclasses.replace(article, entities=entities), analysis)
            )
        self._articles = []


def _in_worker_transform(processes: int) -> type[beam.PTransform]:
    class ExtractEntitiesInWorker(beam.PTransform):
        def __init__(
            self, settings: NlpSettings, aliases: AliasTable, rules: Sequence[TopicRule]
        ) -> None:
            super().__init__()
            self._fn = _WholeBundleFn(settings, aliases, rules, processes)

        def expand(self, articles: beam.PCollection) -> beam.PCollection:
            return articles | "AnalyseBundle" >> beam.ParDo(self._fn)

    return ExtractEntitiesInWorker


def run_in_worker(argv: Sequence[str], processes: int) -> int:
    """``newswatch run`` with the NER transform swapped for the n_process one."""
    from newswatch.pipelines import run as batch
    from newswatch.pipelines.cli import main

    batch.ExtractEntities = _in_worker_transform(processes)  # type: ignore[misc]
    return main(["run", *argv, "--direct_num_workers=1", "--direct_running_mode=in_memory"])


def compare(size: int, processes: int, corpus: Path) -> None:
    _, articles = corpus_articles(size, corpus)
    texts = document_texts(articles)
    batch_size = NlpSettings().batch_size
    rows: list[tuple[str, float, str]] = []
    for n_process in (1, processes):
        bare = bare_spacy(texts, n_process, batch_size)
        rows.append((f"bare nlp.pipe, n_process={n_process}", bare.articles_per_s, ""))
    variants = (
        (
            f"newswatch run, {processes} Beam workers",
            ["-m", "newswatch.pipelines.cli", "run"],
            [f"--direct_num_workers={processes}", "--direct_running_mode=multi_processing"],
        ),
        (
            f"newswatch run, 1 worker, spaCy n_process={processes}",
            ["-m", "benchmarks.nlp_processes", "run"],
            [f"--processes={processes}"],
        ),
    )
    with tempfile.TemporaryDirectory(prefix="newswatch-nlp-processes-") as tmp:
        inputs = Inputs(Path(tmp), None)
        for label, command, options in variants:
            folder = Path(tempfile.mkdtemp(dir=tmp))
            out = folder / "data"
            config = inputs.prepare("rss", articles, out)
            argv = [sys.executable, *command, "--config", str(config), "--out", str(out), *options]
            wait_for_quiet()
            measured = run_measured(argv, folder / "run.log")
            _, problems = verify_output(out, articles)
            note = (
                f"{measured.wall_s:.1f} s, Σ peak RSS {measured.memory.sum_of_hwm / 2**20:,.0f} MiB"
                + (f"; {'; '.join(problems)}" if problems else "")
            )
            rows.append((label, size / measured.wall_s, note))
    print(f"\n{size:,} articles (RSS input):")
    for label, rate, note in rows:
        print(f"  {label:<48} {rate:7.2f} articles/s  {note}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nlp_processes")
    parser.add_argument("command", nargs="?", default="compare", choices=("compare", "run"))
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--config")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_in_worker(["--config", args.config, "--out", args.out], args.processes)
    compare(args.size, args.processes, args.corpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
