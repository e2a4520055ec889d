"""The pipeline: one bounded pass over every source, from raw items to a committed run.

``build`` assembles the graph from the stage transforms; ``run`` plans the run (run id,
feed validators, Kafka offset ranges), executes it on the chosen Beam runner and returns
what it committed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from newswatch.connectors.dataset import OutputLayout, WriteAlertLog, WriteArticles, WriteRejected
from newswatch.connectors.http_fetch import redact_url
from newswatch.connectors.kafka import (
    KafkaConnection,
    PartitionRange,
    ReadFromKafka,
    plan_partitions,
)
from newswatch.connectors.rss import FeedRequest, ReadFromRss
from newswatch.pipelines.alerts import RaiseAlerts
from newswatch.pipelines.alerts_stream import RaiseAlertsStreaming
from newswatch.pipelines.clusters import ClusterNearDuplicates
from newswatch.pipelines.clusters_stream import ClusterNearDuplicatesStreaming
from newswatch.pipelines.commit import (
    CommitRun,
    CommitTargets,
    KafkaAlertTarget,
    load_feed_state,
    new_run_id,
    read_run_report,
    recover,
)
from newswatch.pipelines.config import Config, KafkaAlerts
from newswatch.pipelines.dedupe import DropSeen
from newswatch.pipelines.dedupe_stream import DropSeenStreaming
from newswatch.pipelines.enrich import ExtractEntities, MatchTopics
from newswatch.pipelines.normalize import Normalize

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
    run_id: str
    output: str
    counters: dict[str, int]
    report: dict[str, Any] | None

    def count(self, name: str) -> int:
        return self.counters.get(name, 0)


def commit_targets(config: Config) -> CommitTargets:
    return CommitTargets(
        kafka_sources={s.name: KafkaConnection.from_config(s) for s in config.kafka_sources},
        kafka_alerts=tuple(
            KafkaAlertTarget(KafkaConnection.from_config(sink), sink.topic)
            for sink in config.alerts
            if isinstance(sink, KafkaAlerts)
        ),
    )


def feed_requests(config: Config) -> list[FeedRequest]:
    """Each feed with the validators its last committed read saved (none if its URL changed)."""
    validators = load_feed_state(config.output)
    feeds = []
    for source in config.rss_sources:
        known = validators.get(source.name)
        if known is not None and known.url != redact_url(source.url):
            known = None
        feeds.append(
            FeedRequest(
                source=source.name,
                url=source.url,
                etag=known.etag if known else None,
                last_modified=known.last_modified if known else None,
            )
        )
    return feeds


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


def read_sources(pipeline: beam.Pipeline, config: Config, plan: RunPlan) -> dict[str, Any]:
    """Every configured source, as raw items, rejections and per-source reports."""
    outputs: dict[str, list[beam.PCollection]] = {"articles": [], "rejected": [], "reports": []}
    if plan.feeds:
        rss = pipeline | "ReadFromRss" >> ReadFromRss(
            feeds=plan.feeds,
            timeout_s=config.http.timeout_s,
            max_bytes=config.http.max_bytes,
            user_agent=config.http.user_agent,
            allow_file=config.http.allow_local_files,
            max_redirects=config.http.max_redirects,
        )
        for key in outputs:
            outputs[key].append(rss[key])
    for source in config.kafka_sources:
        ranges = [r for r in plan.kafka if r.source == source.name]
        kafka = pipeline | f"ReadFromKafka[{source.name}]" >> ReadFromKafka(
            connection=KafkaConnection.from_config(source),
            ranges=ranges,
            group_id=source.group_id,
            max_message_bytes=source.max_message_bytes,
            stall_timeout_s=source.read_timeout_s,
        )
        for key in outputs:
            outputs[key].append(kafka[key])
    return {
        key: tuple(pcolls) | f"All{key.title()}" >> beam.Flatten()
        for key, pcolls in outputs.items()
    }


def analyse_articles(
    raw: beam.PCollection, config: Config, now: datetime, *, streaming: bool = False
) -> dict[str, beam.PCollection]:
    """The stage chain of ``newswatch run`` and ``newswatch stream``: raw items to stored
    articles, the alerts they raise, and the items normalization rejected.

    ``streaming`` picks the unbounded form of the three stages that consult committed state
    (exact dedupe, near-duplicates, alerts): in batch each is a join with the dataset, which
    never fires on an unbounded input. ``now`` fixes the near-duplicate horizon of a batch run.
    """
    normalized = raw | "Normalize" >> Normalize(config.normalize)
    refresh_s = config.stream.state_refresh_s
    if streaming:
        new = normalized["articles"] | "DropSeen" >> DropSeenStreaming(config.output, refresh_s)
        new = new | "ClusterNearDuplicates" >> ClusterNearDuplicatesStreaming(
            config.output, config.near_duplicates
        )
    else:
        new = normalized["articles"] | "DropSeen" >> DropSeen(config.output)
        new = new | "ClusterNearDuplicates" >> ClusterNearDuplicates(
            config.output, config.near_duplicates, now
        )
    analysed = new | "ExtractEntities" >> ExtractEntities(config.nlp, config.aliases, config.topics)
    articles = analysed | "MatchTopics" >> MatchTopics(config.topics)
    if streaming:
        raise_alerts: beam.PTransform = RaiseAlertsStreaming(
            config.topics, config.output, refresh_s
        )
    else:
        raise_alerts = RaiseAlerts(config.topics, config.output)
    alerts = articles | "RaiseAlerts" >> raise_alerts
    return {"articles": articles, "alerts": alerts, "rejected": normalized["rejected"]}


def build(pipeline: beam.Pipeline, config: Config, plan: RunPlan) -> None:
    """The whole bounded graph, stage by stage."""
    layout = OutputLayout(config.output, plan.run_id)
    sources = read_sources(pipeline, config, plan)
    stages = analyse_articles(sources["articles"], config, plan.started_at)
    rejected = (sources["rejected"], stages["rejected"]) | "AllRejections" >> beam.Flatten()
    to_commit = (
        stages["articles"] | "WriteArticles" >> WriteArticles(layout),
        stages["alerts"] | "WriteAlertLog" >> WriteAlertLog(layout),
        rejected | "WriteRejected" >> WriteRejected(layout),
        sources["reports"],
    ) | "ToCommit" >> beam.Flatten()
    to_commit | "CommitRun" >> CommitRun(layout, commit_targets(config))


def run(config: Config, beam_args: Sequence[str], now: datetime | None = None) -> RunOutcome:
    """One bounded pass: finish any interrupted commit, plan, run the pipeline, report."""
    for result in recover(config.output, commit_targets(config)):
        log.warning("completed interrupted run %s: %d articles", result.run_id, result.articles)
    plan = plan_run(config, now)
    pipeline = beam.Pipeline(options=PipelineOptions(list(beam_args)))
    build(pipeline, config, plan)
    result = pipeline.run()
    result.wait_until_finish()
    return RunOutcome(
        run_id=plan.run_id,
        output=config.output,
        counters=_counters(result),
        report=read_run_report(config.output, plan.run_id),
    )


def _counters(result: Any) -> dict[str, int]:
    totals: dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter())["counters"]:
        name = counter.key.metric.name
        totals[name] = totals.get(name, 0) + int(counter.committed or 0)
    return totals
