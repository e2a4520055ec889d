"""The pipeline run continuously: sources polled without end, alerts as articles pass,
Parquet and offsets committed per fixed window.

``build_stream`` assembles the graph from the same stage chain as ``newswatch run``
(``chain.AnalyseArticles``, with the streaming forms of the three stages that consult
committed state and of entity extraction, ``stream_stages``); ``start_stream`` plans the
stream (feed validators, each Kafka partition's committed offset), starts it on the
DirectRunner and returns a handle to stop it::

    stream = start_stream(config, [])
    ...
    stream.request_stop()     # a drain: the open window commits, then the pipeline ends
    stream.wait(60)

The graph: ``Ticks`` → ``CommitWindows`` (closes ended windows) and ``Ticks`` →
``PollSources`` → ``WindowInto(FixedWindows)`` → the stage chain → spools per window
(articles, alert log, rejections, source reports) and alerts straight to Kafka.

It runs on the DirectRunner's FnApiRunner, in memory, whatever ``--runner`` says is refused:
that runner executes the graph as one fused stage, one tick per bundle, which the window
committer relies on (``pipelines/commit/windows.py``); other runners would need Beam's own
windowing, which does not fire downstream of an endless source on the DirectRunner here.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.transforms.window import FixedWindows

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import ALERTS, ARTICLES, REJECTED, OutputLayout
from newswatch.connectors.kafka.alerts import SendAlerts
from newswatch.connectors.kafka.connection import KafkaConnection, plan_partitions
from newswatch.connectors.kafka.poll import KafkaPolling
from newswatch.connectors.rss.poll import FeedPolling
from newswatch.connectors.rss.read import FetchOptions
from newswatch.connectors.stream.polling import PollSources
from newswatch.connectors.stream.spool import SpoolWindows
from newswatch.connectors.stream.ticks import Ticks
from newswatch.pipelines.chain import AnalyseArticles, StageForms
from newswatch.pipelines.commit.feed_state import feed_requests
from newswatch.pipelines.commit.manifest import CommitTargets, PartitionKey, recover
from newswatch.pipelines.commit.stream_status import REPORTS
from newswatch.pipelines.commit.windows import CommitWindows, WindowCommitSettings
from newswatch.pipelines.control.engines import is_dask
from newswatch.pipelines.control.settings import Config, KafkaAlerts
from newswatch.pipelines.delivery.loop import DeliveryLoop
from newswatch.pipelines.stages.alerts import RaiseAlertsStreaming
from newswatch.pipelines.stages.analyse import ExtractEntitiesStreaming
from newswatch.pipelines.stages.clusters import ClusterNearDuplicatesStreaming
from newswatch.pipelines.stages.dedupe import DropSeenStreaming

__all__ = ["RunningStream", "StreamPlan", "build_stream", "plan_stream", "start_stream"]

log = logging.getLogger(__name__)

# Runners the stream can run on: the DirectRunner's in-memory FnApiRunner (see above).
_DIRECT_RUNNERS = {"directrunner", "switchingdirectrunner", "fnapirunner"}
# How long a stopping stream waits for its last drain of the alert outbox (no retries),
# within stream.drain_timeout; what it does not get to is sent at the next start.
_LAST_DELIVERY_S = 10.0


class StreamNotSupported(ValueError):
    """The Beam options ask for something ``newswatch stream`` cannot run on."""


@dataclass(frozen=True)
class StreamPlan:
    """What one stream process reads and where it keeps its windows, decided at start."""

    token: str  # names this process's windows: <window start>-<token>
    started_at: datetime
    feeds: tuple[FeedPolling, ...]
    kafka: tuple[KafkaPolling, ...]
    stop_file: str
    spool_root: str

    @property
    def starts(self) -> dict[PartitionKey, int]:
        return {
            (k.source, k.topic, partition): offset
            for k in self.kafka
            for partition, offset in k.starts
        }


def spool_root_for(output: str) -> str:
    """Spools sit beside the staging folders on a local output, in a temp folder otherwise."""
    if filesystem.is_local(output):
        return OutputLayout(output).staging_root
    return os.path.join(tempfile.gettempdir(), "newswatch-spool")


def plan_stream(config: Config, stop_file: str, now: datetime | None = None) -> StreamPlan:
    """Feed validators from the last commit and each Kafka partition's committed offset."""
    started = now or datetime.now(UTC)
    intervals = {source.name: source.poll_interval_s for source in config.rss_sources}
    feeds = [FeedPolling(request, intervals[request.source]) for request in feed_requests(config)]
    kafka = []
    for source in config.kafka_sources:
        connection = KafkaConnection.from_config(source)
        ranges = plan_partitions(
            connection, source=source.name, topic=source.topic, group_id=source.group_id
        )
        kafka.append(
            KafkaPolling.from_plan(
                source=source.name,
                connection=connection,
                group_id=source.group_id,
                ranges=ranges,
                max_message_bytes=source.max_message_bytes,
            )
        )
    return StreamPlan(
        token=secrets.token_hex(3),
        started_at=started,
        feeds=tuple(feeds),
        kafka=tuple(kafka),
        stop_file=stop_file,
        spool_root=spool_root_for(config.output),
    )


def stream_stages(config: Config) -> StageForms:
    """The unbounded forms of the stages: lookups in on-disk indexes of the dataset and
    in-memory state of what passed, on the one worker the stream runs on; spaCy batches
    made per bundle."""
    refresh_s = config.stream.state_refresh_s
    return StageForms(
        drop_seen=DropSeenStreaming(config.output, refresh_s),
        cluster=ClusterNearDuplicatesStreaming(config.output, config.near_duplicates),
        extract_entities=ExtractEntitiesStreaming(config.nlp, config.aliases, config.topics),
        raise_alerts=RaiseAlertsStreaming(config.topics, config.output, refresh_s),
    )


def build_stream(pipeline: beam.Pipeline, config: Config, plan: StreamPlan) -> None:
    """The whole unbounded graph, stage by stage."""
    settings = config.stream
    ticks = pipeline | "Ticks" >> Ticks(interval_s=settings.tick_s, stop_file=plan.stop_file)
    ticks | "CommitWindows" >> CommitWindows(
        WindowCommitSettings(
            root=config.output,
            spool_root=plan.spool_root,
            token=plan.token,
            window_s=settings.window_s,
            targets=CommitTargets.from_config(config),
            starts=tuple(sorted(plan.starts.items())),
            status_interval_s=settings.status_interval_s,
        )
    )
    sources = ticks | "PollSources" >> PollSources(
        kafka=plan.kafka, feeds=plan.feeds, options=FetchOptions.from_config(config.http)
    )
    windowed = {
        key: pcoll | f"Window{key.title()}" >> beam.WindowInto(FixedWindows(settings.window_s))
        for key, pcoll in sources.items()
    }
    stages = windowed["articles"] | "AnalyseArticles" >> AnalyseArticles(
        config, stream_stages(config)
    )

    def spool(kind: str, sink: str = "main") -> SpoolWindows:
        return SpoolWindows(spool_root=plan.spool_root, token=plan.token, kind=kind, sink=sink)

    stages["articles"] | "SpoolArticles" >> spool(ARTICLES)
    stages["alerts"] | "SpoolAlertLog" >> spool(ALERTS)
    kafka_alerts = [
        (KafkaConnection.from_config(sink), sink.topic)
        for sink in config.alerts
        if isinstance(sink, KafkaAlerts)
    ]
    if kafka_alerts:
        stages["alerts"] | "SendAlerts" >> SendAlerts(kafka_alerts)
    windowed["rejected"] | "SpoolSourceRejections" >> spool(REJECTED, "sources")
    stages["rejected"] | "SpoolRejections" >> spool(REJECTED, "normalize")
    windowed["reports"] | "SpoolReports" >> spool(REPORTS)


def stream_options(beam_args: Sequence[str]) -> PipelineOptions:
    """The user's Beam options, checked for what the stream runs on, with --streaming set."""
    options = PipelineOptions(list(beam_args))
    runner = options.view_as(StandardOptions).runner
    if is_dask(runner):
        raise StreamNotSupported(
            "newswatch stream does not run on Dask: Beam's DaskRunner runs bounded pipelines "
            "only (no unbounded sources, state or timers); run `newswatch run --runner=dask` "
            "on a schedule instead"
        )
    if runner is not None and str(runner).lower() not in _DIRECT_RUNNERS:
        raise StreamNotSupported(
            f"newswatch stream runs on the DirectRunner only, not {runner} "
            "(see benchmarks/STREAMING.md)"
        )
    mode = options.view_as(DirectOptions).direct_running_mode
    if mode not in (None, "in_memory"):
        raise StreamNotSupported(
            f"newswatch stream runs the DirectRunner in_memory, not {mode}: its sources and "
            "state live in one process"
        )
    options.view_as(StandardOptions).streaming = True
    return options


class RunningStream:
    """A stream running on a background thread; ``request_stop`` drains it.

    ``delivery`` drains the alert outbox beside it (``pipelines/delivery/loop.py``) and is
    stopped once the pipeline has ended, so its last drain sends the last window's alerts.
    """

    def __init__(
        self, pipeline: beam.Pipeline, plan: StreamPlan, delivery: DeliveryLoop | None = None
    ) -> None:
        self.plan = plan
        self.error: BaseException | None = None
        self._pipeline = pipeline
        self._delivery = delivery
        self._thread = threading.Thread(target=self._run, name="newswatch-stream", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if self._delivery is not None:
            self._delivery.start()

    def _run(self) -> None:
        try:
            self._pipeline.run().wait_until_finish()
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            self.error = err
        finally:
            if self._delivery is not None:
                self._delivery.stop(_LAST_DELIVERY_S)

    def request_stop(self) -> None:
        """The next tick commits every open window and ends the stream."""
        Path(self.plan.stop_file).touch()

    def wait(self, timeout_s: float | None = None) -> bool:
        """True once the pipeline has ended (``error`` says how), False on timeout."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


def start_stream(config: Config, beam_args: Sequence[str]) -> RunningStream:
    """Finish interrupted commits, plan, and start the stream. Hold the run lock around it."""
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    options = stream_options(beam_args)
    for result in recover(config.output, CommitTargets.from_config(config)):
        log.warning("completed interrupted window %s: %d articles", result.run_id, result.articles)
    stop_dir = tempfile.mkdtemp(prefix="newswatch-stream-")
    plan = plan_stream(config, os.path.join(stop_dir, "stop"))
    pipeline = beam.Pipeline(runner=fn_runner.FnApiRunner(), options=options)
    build_stream(pipeline, config, plan)
    delivery = DeliveryLoop(config.output, config.delivery_sinks, config.spikes)
    stream = RunningStream(pipeline, plan, delivery)
    stream.start()
    return stream
