"""Near-duplicate clustering in a stream: each article is compared as it passes.

The streaming form of ``ClusterNearDuplicates`` (``pipelines/clusters.py``): the same
signatures, band keys, containment test and cluster decision (``pipelines/minhash.py``),
but the candidates come from an in-memory LSH index instead of GroupByKeys that never
fire on an unbounded input. The index starts with the stored signatures of the horizon
(the ``dt=`` partitions ``horizon_partitions`` names, read in ``setup``) and takes every
article that passes; entries whose ``dt=`` day falls out of the horizon are dropped when
the day changes, so memory is bounded by the horizon (about 6 KB an article: 64 band keys
and a 512-byte signature at the default settings).

An article joins the cluster of the first seen (earliest published, then smallest id) of
the earlier articles it is a near-duplicate of, stored or streamed: an article that
arrives later never changes the cluster of one already passed (batch decides within a run
by publication time, so the two can differ for copies of one story read in one run).

The index is per worker: correct on the DirectRunner ``newswatch stream`` runs on.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from newswatch.connectors import filesystem
from newswatch.connectors.dataset import ARTICLES
from newswatch.pipelines.clusters import horizon_partitions, signatures_in
from newswatch.pipelines.config import NearDuplicateSettings
from newswatch.pipelines.minhash import (
    FirstSeen,
    Signed,
    band_keys,
    decide_cluster,
    decode_signature,
    encode_signature,
    is_near_duplicate,
    shingle_hashes,
    signature,
)
from newswatch.schemas import Article

__all__ = ["ClusterNearDuplicatesStreaming", "SignatureIndex", "read_horizon_signatures"]


@dataclasses.dataclass
class _Entry:
    signed: Signed
    day: str  # the dt= partition: what the horizon is counted in
    keys: list[bytes]


class SignatureIndex:
    """Signatures by LSH band key, earliest first in each bucket; dropped by ``dt=`` day."""

    def __init__(self, settings: NearDuplicateSettings) -> None:
        self._settings = settings
        self._entries: dict[str, _Entry] = {}
        self._buckets: dict[bytes, list[str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, signed: Signed, day: str) -> None:
        if signed.article_id in self._entries or not signed.comparable(
            self._settings.num_perm, self._settings.min_shingles
        ):
            return
        keys = band_keys(decode_signature(signed.minhash), self._settings.rows_per_band)
        self._entries[signed.article_id] = _Entry(signed, day, keys)
        for key in keys:
            self._buckets.setdefault(key, []).append(signed.article_id)

    def near_duplicates(self, signed: Signed) -> list[Signed]:
        """The indexed articles whose estimated containment with ``signed`` reaches the threshold."""
        settings = self._settings
        if not signed.comparable(settings.num_perm, settings.min_shingles):
            return []
        seen: set[str] = set()
        near = []
        for key in band_keys(decode_signature(signed.minhash), settings.rows_per_band):
            # Only the bucket's earliest members, as in batch: a story copied a thousand
            # times still meets its first copies, in bounded time.
            for article_id in self._buckets.get(key, ())[: settings.max_bucket]:
                if article_id in seen:
                    continue
                seen.add(article_id)
                earlier = self._entries[article_id].signed
                if is_near_duplicate(earlier, signed, settings.threshold):
                    near.append(earlier)
        return near

    def drop_before(self, first_day: str) -> int:
        """Forget entries of ``dt=`` days before ``first_day``; returns how many."""
        old = [a for a, e in self._entries.items() if e.day < first_day]
        for article_id in old:
            entry = self._entries.pop(article_id)
            for key in entry.keys:
                bucket = self._buckets.get(key)
                if bucket is not None:
                    bucket.remove(article_id)
                    if not bucket:
                        del self._buckets[key]
        return len(old)


def read_horizon_signatures(root: str, partitions: Sequence[str]) -> Iterator[tuple[str, Signed]]:
    """(dt day, signature) of every committed article in the given ``dt=`` partitions."""
    for day in partitions:
        for path in filesystem.list_files(
            filesystem.join(root, ARTICLES, f"dt={day}", "*.parquet")
        ):
            parquet = pq.ParquetFile(io.BytesIO(filesystem.read_file(path)))
            for signed in signatures_in(parquet):
                yield day, signed


def _first_seen(item: tuple[str, Signed]) -> FirstSeen:
    return item[1].first_seen


class _ClusterStreamingFn(beam.DoFn):
    def __init__(self, output_root: str, settings: NearDuplicateSettings) -> None:
        self._root = output_root
        self._settings = settings
        self._index: SignatureIndex | None = None
        self._today: date | None = None
        self._duplicates = Metrics.counter(self.__class__, "near_duplicates")
        self._indexed = Metrics.counter(self.__class__, "stored_signatures_read")

    def setup(self) -> None:
        self._today = datetime.now(UTC).date()
        self._index = SignatureIndex(self._settings)
        partitions = horizon_partitions(self._today, self._settings.horizon_days)
        # In first-seen order, so each bucket lists its earliest members first.
        for day, signed in sorted(read_horizon_signatures(self._root, partitions), key=_first_seen):
            self._index.add(signed, day)
            self._indexed.inc()

    def _roll_horizon(self) -> None:
        assert self._index is not None
        today = datetime.now(UTC).date()
        if today != self._today:
            self._today = today
            first = (today - timedelta(days=self._settings.horizon_days)).isoformat()
            self._index.drop_before(first)

    def process(self, article: Article) -> Iterator[Article]:
        assert self._index is not None, "setup() builds the index"
        self._roll_horizon()
        shingles = shingle_hashes(article.text)
        minhash = (
            encode_signature(signature(shingles, self._settings.num_perm)) if len(shingles) else b""
        )
        this = Signed(
            article_id=article.article_id,
            published_at=article.published_at,
            this_run=False,  # once passed, it is "earlier" to whatever comes next
            cluster_id=article.article_id,
            minhash=minhash,
            shingle_count=len(shingles),
        )
        decision = decide_cluster(article.article_id, self._index.near_duplicates(this))
        if decision.is_duplicate:
            self._duplicates.inc()
        self._index.add(
            dataclasses.replace(this, cluster_id=decision.cluster_id), article.partition_date
        )
        yield dataclasses.replace(
            article,
            minhash=minhash,
            shingle_count=len(shingles),
            cluster_id=decision.cluster_id,
            is_duplicate=decision.is_duplicate,
        )


class ClusterNearDuplicatesStreaming(beam.PTransform):
    """Sets ``minhash``, ``shingle_count``, ``cluster_id`` and ``is_duplicate`` as articles pass."""

    def __init__(self, output_root: str, settings: NearDuplicateSettings) -> None:
        super().__init__()
        self._root = output_root
        self._settings = settings

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        return articles | "Decide" >> beam.ParDo(_ClusterStreamingFn(self._root, self._settings))
