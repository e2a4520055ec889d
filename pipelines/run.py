"""The pipeline: bounded passes over every source, from raw items to committed runs.

``build`` assembles the graph from the stage transforms; ``run`` plans the run (run id,
feed validators, Kafka offset ranges), splits it into passes of at most
``run.max_messages_per_pass`` Kafka messages and ``run.max_feeds_per_pass`` feeds, executes
each pass on the chosen Beam runner and commits it before the next, and returns what was
committed. A pass is a complete run of the commit protocol with its own run id: the
DirectRunner holds a pass's data in memory, so the pass size, not the backlog, bounds it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter

from newswatch.connectors.dataset.layout import OutputLayout
from newswatch.connectors.dataset.write import WriteAlertLog, WriteArticles, WriteRejected
from newswatch.connectors.kafka.connection import KafkaConnection, PartitionRange, plan_partitions
from newswatch.connectors.kafka.read import ReadFromKafka
from newswatch.connectors.rss.read import FeedRequest, ReadFromRss
from newswatch.pipelines.chain import AnalyseArticles, StageForms
from newswatch.pipelines.commit.feed_state import feed_requests
from newswatch.pipelines.commit.manifest import CommitTargets, new_run_id, recover
from newswatch.pipelines.commit.run_commit import CommitRun
from newswatch.pipelines.commit.run_counts import counts_from_report
from newswatch.pipelines.commit.run_report import read_run_report
from newswatch.pipelines.control.local_runner import local_workers, new_pipeline
from newswatch.pipelines.control.memory import release_freed_memory
from newswatch.pipelines.control.settings import Config, RunSettings
from newswatch.pipelines.control.worker_pool import WarmWorkers
from newswatch.pipelines.delivery.after_commit import DeliveryReport, deliver_committed
from newswatch.pipelines.stages.alerts import RaiseAlerts
from newswatch.pipelines.stages.analyse import ExtractEntities, analyser_warm_up
from newswatch.pipelines.stages.clusters import ClusterNearDuplicates
from newswatch.pipelines.stages.dedupe import DropSeen

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunPlan:
    """What one run reads, decided before the pipeline starts."""

    run_id: str
    started_at: datetime
    feeds: tuple[FeedRequest, ...]
    kafka: tuple[PartitionRange, ...] = ()


@dataclass(frozen=True)
class RunOutcome:
    """What a run committed; over several passes, their counters and reports together."""

    run_id: str
    output: str
    counters: dict[str, int]
    report: dict[str, Any] | None
    passes: tuple[str, ...] = ()  # the run id of each pass, when there was more than one
    delivery: DeliveryReport = DeliveryReport()  # notify, webhook, feed, digest sinks

    def count(self, name: str) -> int:
        return self.counters.get(name, 0)


@dataclass(frozen=True)
class PassProgress:
    """Where a run is: pass ``number`` of ``passes`` is running or done; what the passes
    done so far read and stored, in ``elapsed_s`` since the run started."""

    number: int  # from 1
    passes: int
    read: int
    stored: int
    elapsed_s: float
    running: bool = False


def plan_run(config: Config, now: datetime | None = None) -> RunPlan:
    """Run id, feed validators from the last commit, and each Kafka partition's range."""
    started = now or datetime.now(UTC)
    feeds = feed_requests(config)
    ranges: list[PartitionRange] = []
    for kafka in config.kafka_sources:
        ranges.extend(
            plan_partitions(
                KafkaConnection.from_config(kafka),
                source=kafka.name,
                topic=kafka.topic,
                group_id=kafka.group_id,
            )
        )
    return RunPlan(new_run_id(started), started, tuple(feeds), tuple(ranges))


def split_plan(plan: RunPlan, settings: RunSettings) -> list[RunPlan]:
    """The passes of a run: each at most ``settings``' feeds and Kafka messages, in order.

    Kafka messages are shared fairly among the partitions that have any left, so every pass
    reads from as many partitions as it can; a partition's next pass starts where its
    previous one ended (what that pass commits). Partitions with nothing new go in the
    first pass, so that every planned partition is reported. The first pass keeps the
    plan's run id; the caller gives the later ones theirs when they start.
    """
    feeds = plan.feeds
    step = settings.max_feeds_per_pass
    feed_chunks = [feeds[i : i + step] for i in range(0, len(feeds), step)]
    kafka_slices = _kafka_slices(plan.kafka, settings.max_messages_per_pass)
    if len(feed_chunks) <= 1 and len(kafka_slices) <= 1:
        return [plan]
    kafka_slices = kafka_slices or [{}]
    kafka_slices[0].update({i: r for i, r in enumerate(plan.kafka) if r.end <= r.start})
    return [
        dataclasses.replace(
            plan,
            feeds=feed_chunks[i] if i < len(feed_chunks) else (),
            kafka=tuple(r for _, r in sorted(kafka_slices[i].items()))
            if i < len(kafka_slices)
            else (),
        )
        for i in range(max(len(feed_chunks), len(kafka_slices)))
    ]


def _kafka_slices(ranges: Sequence[PartitionRange], budget: int) -> list[dict[int, PartitionRange]]:
    """Consecutive slices of ``ranges`` of at most ``budget`` offsets each, shared fairly;
    each slice maps a range's index in ``ranges`` to its part of it."""
    cursor = [r.start for r in ranges]
    slices: list[dict[int, PartitionRange]] = []
    while True:
        active = [i for i, r in enumerate(ranges) if cursor[i] < r.end]
        if not active:
            return slices
        take = dict.fromkeys(active, 0)
        left = budget
        while left and active:
            share = max(1, left // len(active))
            for i in list(active):
                n = min(share, ranges[i].end - cursor[i] - take[i], left)
                take[i] += n
                left -= n
                if cursor[i] + take[i] >= ranges[i].end:
                    active.remove(i)
                if not left:
                    break
        slices.append(
            {
                i: dataclasses.replace(ranges[i], start=cursor[i], end=cursor[i] + n)
                for i, n in take.items()
                if n
            }
        )
        for i, n in take.items():
            cursor[i] += n


def read_sources(pipeline: beam.Pipeline, config: Config, plan: RunPlan) -> dict[str, Any]:
    """Every configured source, as raw items, rejections and per-source reports."""
    outputs: dict[str, list[beam.PCollection]] = {"articles": [], "rejected": [], "reports": []}
    reads = []
    if plan.feeds:
        reads.append(pipeline | "ReadFromRss" >> ReadFromRss.from_config(plan.feeds, config.http))
    for source in config.kafka_sources:
        reads.append(
            pipeline
            | f"ReadFromKafka[{source.name}]" >> ReadFromKafka.from_config(source, plan.kafka)
        )
    for read in reads:
        for key in outputs:
            outputs[key].append(read[key])
    return {
        key: tuple(pcolls) | f"All{key.title()}" >> beam.Flatten()
        for key, pcolls in outputs.items()
    }


def batch_stages(config: Config) -> StageForms:
    """The bounded forms of the stages: joins with the committed dataset, and spaCy
    batches made by grouping."""
    return StageForms(
        drop_seen=DropSeen(config.output),
        cluster=ClusterNearDuplicates(config.output, config.near_duplicates),
        extract_entities=ExtractEntities(config.nlp, config.aliases, config.topics),
        raise_alerts=RaiseAlerts(config.topics, config.output),
    )


def build(pipeline: beam.Pipeline, config: Config, plan: RunPlan) -> None:
    """The whole bounded graph, stage by stage."""
    layout = OutputLayout(config.output, plan.run_id)
    sources = read_sources(pipeline, config, plan)
    stages = sources["articles"] | "AnalyseArticles" >> AnalyseArticles(
        config, batch_stages(config)
    )
    rejected = (sources["rejected"], stages["rejected"]) | "AllRejections" >> beam.Flatten()
    to_commit = (
        stages["articles"] | "WriteArticles" >> WriteArticles(layout),
        stages["alerts"] | "WriteAlertLog" >> WriteAlertLog(layout),
        rejected | "WriteRejected" >> WriteRejected(layout),
        sources["reports"],
    ) | "ToCommit" >> beam.Flatten()
    to_commit | "CommitRun" >> CommitRun(layout, CommitTargets.from_config(config))


def run(
    config: Config,
    beam_args: Sequence[str],
    now: datetime | None = None,
    progress: Callable[[PassProgress], None] | None = None,
) -> RunOutcome:
    """Finish any interrupted commit, plan, run and commit each pass in turn, report.

    A pass that fails ends the run: the passes before it stay committed, and the next run
    plans from there. ``progress`` hears when each pass starts and when it is committed.
    The alerts for delivery sinks are sent at the end, after every commit (also those an
    interrupted run had queued); delivery never fails the run.
    """
    started = time.monotonic()
    outcomes: list[RunOutcome] = []
    # The worker processes start first: their imports and the model's loading overlap the
    # recovery, the planning and the first pass's reading.
    with local_workers(
        beam_args, analyser_warm_up(config.nlp, config.aliases, config.topics)
    ) as workers:
        for result in recover(config.output, CommitTargets.from_config(config)):
            log.warning("completed interrupted run %s: %d articles", result.run_id, result.articles)
        passes = split_plan(plan_run(config, now), config.run)
        for number, planned in enumerate(passes):
            if number:
                planned = dataclasses.replace(planned, run_id=new_run_id(datetime.now(UTC)))
                log.info("pass %d: run %s", number + 1, planned.run_id)
            if progress is not None:
                progress(_progress(outcomes, number + 1, len(passes), started, running=True))
            outcomes.append(run_pass(config, beam_args, planned, workers))
            release_freed_memory()
            if progress is not None:
                progress(_progress(outcomes, number + 1, len(passes), started, running=False))
    delivery = deliver_committed(config.output, config.delivery_sinks, config.spikes)
    return dataclasses.replace(merged(outcomes), delivery=delivery)


def _progress(
    done: Sequence[RunOutcome], number: int, passes: int, started: float, running: bool
) -> PassProgress:
    return PassProgress(
        number=number,
        passes=passes,
        read=sum(o.count("entries_read") + o.count("kafka_messages_read") for o in done),
        stored=sum((o.report or {}).get("committed", {}).get("articles", 0) for o in done),
        elapsed_s=time.monotonic() - started,
        running=running,
    )


def run_pass(
    config: Config, beam_args: Sequence[str], plan: RunPlan, workers: WarmWorkers | None
) -> RunOutcome:
    pipeline = new_pipeline(beam_args, workers)
    build(pipeline, config, plan)
    result = pipeline.run()
    try:
        result.wait_until_finish()
        counters = _counters(result)
    finally:
        _disconnect(result)
    report = read_run_report(config.output, plan.run_id)
    if counters is None and report is not None:
        counters = counts_from_report(config.output, report)
    return RunOutcome(
        run_id=plan.run_id,
        output=config.output,
        counters=counters or {},
        report=report,
    )


def merged(outcomes: Sequence[RunOutcome]) -> RunOutcome:
    """One account of several passes: counters and committed counts summed, each Kafka
    partition listed once (from its first pass's start to its last pass's next offset)."""
    if len(outcomes) == 1:
        return outcomes[0]
    counters: dict[str, int] = {}
    committed: dict[str, int] = {}
    feeds: list[dict[str, Any]] = []
    partitions: dict[tuple[Any, ...], dict[str, Any]] = {}
    for outcome in outcomes:
        for name, value in outcome.counters.items():
            counters[name] = counters.get(name, 0) + value
        report = outcome.report or {}
        for name, value in report.get("committed", {}).items():
            if isinstance(value, int):
                committed[name] = committed.get(name, 0) + value
        feeds.extend(report.get("feeds", []))
        for part in report.get("partitions", []):
            key = (part.get("source"), part.get("topic"), part.get("partition"))
            earlier = partitions.get(key)
            if earlier is not None:
                part = {
                    **part,
                    "start": earlier["start"],
                    "read": earlier["read"] + part["read"],
                    "rejected": earlier["rejected"] + part["rejected"],
                }
            partitions[key] = part
    first = outcomes[0]
    return RunOutcome(
        run_id=first.run_id,
        output=first.output,
        counters=counters,
        report={
            "run_id": first.run_id,
            "committed": committed,
            "feeds": feeds,
            "partitions": list(partitions.values()),
        },
        passes=tuple(o.run_id for o in outcomes),
    )


def _disconnect(result: Any) -> None:
    """Beam's DaskRunner leaves the client it connected to the cluster with open: every
    pass would add a connection, and they would outlive the run."""
    client = getattr(result, "client", None)
    if client is not None:
        client.close()


def _counters(result: Any) -> dict[str, int] | None:
    """The run's counters from its metrics; None when the runner keeps none (Beam's
    DaskRunner raises, a runner may also answer with nothing)."""
    try:
        counters = result.metrics().query(MetricsFilter())["counters"]
    except NotImplementedError:
        return None
    totals: dict[str, int] = {}
    for counter in counters:
        name = counter.key.metric.name
        totals[name] = totals.get(name, 0) + int(counter.committed or 0)
    return totals or None
