"""``newswatch reprocess``: the current topic rules and alias table over stored articles.

    stored files ─ReadStoredArticles─> ExtractEntities ─> MatchTopics ──┐
          └──────────── (file, topics as stored) by article id ─────────┴─> PairWithStored
    PairWithStored ─┬─> StageRewrittenFiles ─────────────────────┐
                    ├─> CountTopicChanges ───────────────────────┼─> CommitRewrite
                    └─> NewlyMatched ─> RaiseAlerts ─> WriteAlertLog ┘   (with --alert)

``plan_passes`` picks the article files of the chosen ``dt=`` days and splits them into
passes of whole files, at most ``articles_per_pass`` articles together (a larger file is a
pass of its own). As in ``run.py`` each pass is a pipeline run with its own run id,
committed (``commit/rewrite.py``) before the next starts: the DirectRunner holds a pass's
data in memory, so the pass size, not the dataset, bounds it. A dry run stages and
commits nothing; it only reports what would change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import OutputLayout
from newswatch.connectors.dataset.read import ReadStoredArticles, StoredFile, stored_article_files
from newswatch.connectors.dataset.rewrite import StageRewrittenFiles
from newswatch.connectors.dataset.write import WriteAlertLog
from newswatch.pipelines.commit.manifest import CommitResult, CommitTargets, new_run_id, recover
from newswatch.pipelines.commit.rewrite import CommitRewrite, read_reprocess_report
from newswatch.pipelines.control.local_runner import local_workers, new_pipeline
from newswatch.pipelines.control.memory import release_freed_memory
from newswatch.pipelines.control.settings import Config
from newswatch.pipelines.control.worker_pool import WarmWorkers
from newswatch.pipelines.core.topic_changes import TopicChanges
from newswatch.pipelines.stages.alerts import RaiseAlerts
from newswatch.pipelines.stages.analyse import ExtractEntities, MatchTopics, analyser_warm_up
from newswatch.pipelines.stages.reanalyse import (
    REANALYSED,
    STORED,
    CountTopicChanges,
    NewlyMatched,
    PairWithStored,
    Reanalysed,
)
from newswatch.schemas import Article

__all__ = [
    "PassPlan",
    "ReprocessOptions",
    "ReprocessOutcome",
    "build",
    "plan_passes",
    "reprocess",
    "run_pass",
]

DEFAULT_ARTICLES_PER_PASS = 2_500


@dataclass(frozen=True)
class ReprocessOptions:
    since: str = ""  # first dt= day (ISO date), empty for the oldest
    until: str = ""  # last dt= day, included; empty for the newest
    dry_run: bool = False
    alert: bool = False
    articles_per_pass: int = DEFAULT_ARTICLES_PER_PASS


@dataclass(frozen=True)
class PassPlan:
    run_id: str
    files: tuple[StoredFile, ...]


@dataclass
class ReprocessOutcome:
    """What the passes read, changed and committed, added up."""

    output: str
    dry_run: bool
    alert: bool = False
    run_ids: list[str] = field(default_factory=list)
    partitions: int = 0
    files: int = 0
    articles: int = 0
    committed: dict[str, int] = field(default_factory=dict)
    changes: TopicChanges = field(default_factory=TopicChanges)
    recovered: list[CommitResult] = field(default_factory=list)

    def add_pass(self, plan: PassPlan, report: dict[str, Any]) -> None:
        self.run_ids.append(plan.run_id)
        self.files += len(plan.files)
        self.articles += sum(f.articles for f in plan.files)
        for name, value in report.get("committed", {}).items():
            self.committed[name] = self.committed.get(name, 0) + int(value)
        self.changes.merge(TopicChanges.from_dict(report.get("topics", {})))


# Called before the first pass and after each with (files done, every file planned).
Progress = Callable[[Sequence[StoredFile], Sequence[StoredFile]], None]


def plan_passes(files: Sequence[StoredFile], articles_per_pass: int) -> list[list[StoredFile]]:
    """Consecutive groups of whole files, each at most ``articles_per_pass`` articles
    unless one file alone holds more.

    >>> f = [StoredFile(str(i), "2026-11-30", n) for i, n in enumerate([3, 3, 5, 1])]
    >>> [[x.path for x in p] for p in plan_passes(f, 6)]
    [['0', '1'], ['2', '3']]
    """
    passes: list[list[StoredFile]] = []
    size = 0
    for stored in files:
        if not passes or size + stored.articles > articles_per_pass:
            passes.append([])
            size = 0
        passes[-1].append(stored)
        size += stored.articles
    return passes


def build(
    pipeline: beam.Pipeline, config: Config, plan: PassPlan, options: ReprocessOptions
) -> None:
    """One pass's graph, stage by stage."""
    layout = OutputLayout(config.output, plan.run_id)
    stored = (
        pipeline
        | "StoredFiles" >> beam.Create([f.path for f in plan.files])
        | "ReadStoredArticles" >> ReadStoredArticles()
    )
    reanalysed = (
        stored
        | "Articles" >> beam.Values()
        | "ExtractEntities" >> ExtractEntities(config.nlp, config.aliases, config.topics)
        | "MatchTopics" >> MatchTopics(config.topics)
    )
    paired = {STORED: stored, REANALYSED: reanalysed} | "PairWithStored" >> PairWithStored()
    to_commit = [paired | "CountTopicChanges" >> CountTopicChanges()]
    if not options.dry_run:
        to_commit.append(
            paired
            | "ByFile" >> beam.Map(_by_file)
            | "GroupByFile" >> beam.GroupByKey()
            | "StageRewrittenFiles" >> StageRewrittenFiles(layout)
        )
    if options.alert:
        alerts = (
            paired
            | "NewlyMatched" >> NewlyMatched()
            | "RaiseAlerts" >> RaiseAlerts(config.topics, config.output)
        )
        # A dry run only counts the alerts it would raise; a real pass commits them.
        to_commit.append(
            alerts if options.dry_run else alerts | "WriteAlertLog" >> WriteAlertLog(layout)
        )
    (
        to_commit
        | "ToCommit" >> beam.Flatten()
        | "CommitRewrite"
        >> CommitRewrite(layout, CommitTargets.from_config(config), options.dry_run)
    )


def _by_file(item: Reanalysed) -> tuple[str, Article]:
    return item.path, item.article


def reprocess(
    config: Config,
    beam_args: Sequence[str],
    options: ReprocessOptions,
    progress: Progress | None = None,
) -> ReprocessOutcome:
    """Finish any interrupted commit (not in a dry run), plan, run and commit each pass.

    A pass that fails ends the command: the passes before it stay committed.
    """
    outcome = ReprocessOutcome(config.output, options.dry_run, options.alert)
    if not options.dry_run:
        outcome.recovered = recover(config.output, CommitTargets.from_config(config))
    files = stored_article_files(config.output, options.since, options.until)
    outcome.partitions = len({f.day for f in files})
    done: list[StoredFile] = []
    if progress is not None:
        progress(done, files)
    with local_workers(
        beam_args, analyser_warm_up(config.nlp, config.aliases, config.topics)
    ) as workers:
        for files_of_pass in plan_passes(files, options.articles_per_pass):
            plan = PassPlan(new_run_id(datetime.now(UTC)), tuple(files_of_pass))
            outcome.add_pass(plan, run_pass(config, beam_args, plan, options, workers))
            done.extend(files_of_pass)
            if progress is not None:
                progress(done, files)
            release_freed_memory()
    return outcome


def run_pass(
    config: Config,
    beam_args: Sequence[str],
    plan: PassPlan,
    options: ReprocessOptions,
    workers: WarmWorkers | None,
) -> dict[str, Any]:
    """One pass run to its end; its report."""
    pipeline = new_pipeline(beam_args, workers)
    build(pipeline, config, plan, options)
    result = pipeline.run()
    result.wait_until_finish()
    layout = OutputLayout(config.output, plan.run_id)
    report = read_reprocess_report(layout, options.dry_run) or {}
    if options.dry_run:
        filesystem.delete_tree(layout.staging_dir)
    return report
