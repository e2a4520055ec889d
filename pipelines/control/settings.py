"""The typed, frozen settings a run is made of; ``config.py`` parses them from YAML.

Nothing here imports Beam or spaCy: stages and connectors take these objects in their
constructors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from newswatch.pipelines.core.aliases import AliasTable
from newswatch.pipelines.core.languages import DEFAULT_LANGUAGES
from newswatch.pipelines.core.normalization import NormalizeSettings
from newswatch.pipelines.core.rules import TopicRule
from newswatch.pipelines.delivery.sinks import DeliverySink, SpikeSettings

__all__ = [
    "AlertSink",
    "Config",
    "FileAlerts",
    "HttpSettings",
    "KafkaAlerts",
    "KafkaSource",
    "NearDuplicateSettings",
    "NlpSettings",
    "RssSource",
    "RunSettings",
    "STATUS_LOGGER",
    "Source",
    "StreamSettings",
]


@dataclass(frozen=True)
class RssSource:
    name: str
    url: str
    poll_interval_s: float = 300.0


@dataclass(frozen=True)
class KafkaSource:
    name: str
    bootstrap_servers: tuple[str, ...]
    topic: str
    group_id: str = "newswatch"
    max_message_bytes: int = 1_000_000
    # A partition that yields nothing for this long while data is due fails the run.
    read_timeout_s: float = 60.0
    # Passed through to the client; the password itself is read from the named variable.
    security: Mapping[str, str] = field(default_factory=dict)


Source = RssSource | KafkaSource


@dataclass(frozen=True)
class FileAlerts:
    pass


@dataclass(frozen=True)
class KafkaAlerts:
    bootstrap_servers: tuple[str, ...]
    topic: str = "newswatch.alerts"
    security: Mapping[str, str] = field(default_factory=dict)


# DeliverySink: notify, webhook, feed, digest (``pipelines/delivery/``), sent after the commit.
AlertSink: TypeAlias = FileAlerts | KafkaAlerts | DeliverySink


@dataclass(frozen=True)
class HttpSettings:
    timeout_s: float = 20.0
    max_bytes: int = 10 * 2**20
    user_agent: str = "newswatch/0.1 (+https://github.com/newswatch/newswatch)"
    max_redirects: int = 5
    allow_local_files: bool = True


@dataclass(frozen=True)
class NlpSettings:
    model: str = "auto"
    batch_size: int = 64
    max_chars: int = 100_000
    # Languages analysed with their own pipeline (core/multilingual.py); English always
    # goes through ``model``, and so do languages not listed here.
    languages: tuple[str, ...] = DEFAULT_LANGUAGES


@dataclass(frozen=True)
class NearDuplicateSettings:
    """Near-duplicate clustering (``pipelines/stages/clusters.py``); see the README for each key."""

    threshold: float = 0.5
    horizon_days: int = 7
    num_perm: int = 128
    rows_per_band: int = 2
    min_shingles: int = 10
    max_bucket: int = 50


# The logger of the stream's status records (``commit/stream_status.py``), which the
# command line shows as text or JSON lines.
STATUS_LOGGER = "newswatch.status"


@dataclass(frozen=True)
class StreamSettings:
    """``newswatch stream`` (``pipelines/stream.py``); benchmarks/STREAMING.md has the figures."""

    window_s: float = 60.0  # Parquet, alert log and offsets are committed once per window
    status_interval_s: float = 30.0  # a one-line status on stderr this often
    tick_s: float = 0.5  # how often Kafka is polled (and RSS feeds checked for being due)
    # How often the on-disk indexes of committed article ids and alert keys read the files
    # committed since; what the stream passed is kept in memory only until then.
    state_refresh_s: float = 300.0
    drain_timeout_s: float = 60.0  # after SIGTERM, how long the last window may take to commit


@dataclass(frozen=True)
class RunSettings:
    """``newswatch run``: how much one pass of the pipeline reads (``pipelines/run.py``).

    A run whose sources hold more is made of several passes, each committed before the
    next: the DirectRunner keeps a pass's data in memory, so its size bounds the memory.
    """

    max_messages_per_pass: int = 2500  # Kafka messages, over all Kafka sources
    max_feeds_per_pass: int = 50  # RSS/Atom feeds; size it to feeds x items a feed


@dataclass(frozen=True)
class Config:
    file: str
    sources: tuple[Source, ...]
    topics: tuple[TopicRule, ...]
    aliases: AliasTable
    output: str
    alerts: tuple[AlertSink, ...]
    http: HttpSettings = HttpSettings()
    nlp: NlpSettings = NlpSettings()
    normalize: NormalizeSettings = NormalizeSettings()
    near_duplicates: NearDuplicateSettings = NearDuplicateSettings()
    stream: StreamSettings = StreamSettings()
    run: RunSettings = RunSettings()
    spikes: SpikeSettings | None = None  # ``spikes:``; None: no spike alerts

    @property
    def delivery_sinks(self) -> tuple[DeliverySink, ...]:
        return tuple(s for s in self.alerts if not isinstance(s, FileAlerts | KafkaAlerts))

    @property
    def rss_sources(self) -> tuple[RssSource, ...]:
        return tuple(s for s in self.sources if isinstance(s, RssSource))

    @property
    def kafka_sources(self) -> tuple[KafkaSource, ...]:
        return tuple(s for s in self.sources if isinstance(s, KafkaSource))
