"""Stage 3: near-duplicates. Copies of one story share a ``cluster_id``; only the first is new.

Each article gets a MinHash signature of its text's word shingles (``core/minhash.py``,
``sign_article``). An article joins the cluster of the first seen (earliest published, then
smallest id) of the earlier articles it is a near-duplicate of: stored ones within the
horizon (read back from the dataset's ``minhash`` and ``shingle_count`` columns, so a copy
arriving in a later run joins the story stored before it) or earlier ones of this run.

``ClusterNearDuplicates`` (batch) lets candidates meet by LSH band key in a GroupByKey, the
only place articles meet; no worker holds an index. Only the stored signatures that share
a band with an article of the run can meet one, so the run's band hashes are gathered into
one element first and the stored signatures of the horizon are read against them: the
shuffle grows with the run, not with the stored days. The graph::

    articles ─Sign─┬──────────────────────────────────────────────────────────┐
                   ├─> run band hashes ─gather─> stored sharing a band ─┐     │
                   └─> signatures ─────────────────────────────────────┴─┬─> band keys
      ─GroupByKey─> pairs ─CoGroupByKey with signatures by the earlier id─> (later id, earlier)
    articles + (later id, earlier) ─CoGroupByKey by article id─> containment check, decision

Its outcome depends on no bundle or worker order: buckets are sorted by first seen.

``ClusterNearDuplicatesStreaming`` compares each article as it passes with an in-memory
index (``core/signature_index.py``) that starts with the stored signatures of the horizon:
GroupByKeys never fire on an unbounded input. An article that arrives later never changes
the cluster of one already passed (batch decides within a run by publication time, so the
two can differ for copies of one story read in one run). The index is per worker: correct
on the DirectRunner ``newswatch stream`` runs on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.metrics.metricbase import Counter

from newswatch.connectors.dataset.read import (
    horizon_signature_tables,
    read_horizon_signatures,
    signed_rows,
)
from newswatch.pipelines.control.settings import NearDuplicateSettings
from newswatch.pipelines.core.minhash import (
    FirstSeen,
    Signed,
    band_hashes,
    band_keys,
    bucket_pairs,
    days_around,
    decide_cluster,
    decode_signature,
    first_seen_of,
    near_duplicates_of,
    sharing_a_band,
    sign_article,
    signed_of,
)
from newswatch.pipelines.core.signature_index import SignatureIndex
from newswatch.schemas import Article

__all__ = [
    "ClusterNearDuplicates",
    "ClusterNearDuplicatesStreaming",
]

ARTICLE = "article"
EARLIER = "earlier"
SIGNED = "signed"
LATER = "later"
RUN = "run"  # the one key the run's band hashes are gathered under


class _RunBandsFn(beam.DoFn):
    """(RUN, (day, band hashes)) of each comparable article of the run: what the stored
    signatures are read against."""

    def __init__(self, settings: NearDuplicateSettings) -> None:
        self._settings = settings

    def process(self, article: Article) -> Iterator[tuple[str, tuple[str, bytes]]]:
        signed = signed_of(article)
        settings = self._settings
        if signed.comparable(settings.num_perm, settings.min_shingles):
            hashes = band_hashes(decode_signature(signed.minhash), settings.rows_per_band)
            yield RUN, (article.partition_date, hashes.tobytes())


class _StoredSharingABandFn(beam.DoFn):
    """The stored signatures, within the horizon of the run's days, that share a band hash
    with an article of the run: the only stored ones that can meet it in a bucket."""

    def __init__(self, output_root: str, settings: NearDuplicateSettings) -> None:
        self._root = output_root
        self._settings = settings
        self._read = Metrics.counter(self.__class__, "stored_signatures_read")
        self._kept = Metrics.counter(self.__class__, "stored_signatures_sharing_a_band")

    def process(self, element: tuple[str, Iterable[tuple[str, bytes]]]) -> Iterator[Signed]:
        _, run = element
        settings = self._settings
        days: set[str] = set()
        hashes = []
        for day, packed in run:
            days.update(days_around(day, settings.horizon_days))
            hashes.append(np.frombuffer(packed, dtype=np.uint64))
        wanted = np.unique(np.concatenate(hashes))
        for _, table in horizon_signature_tables(self._root, sorted(days)):
            self._read.inc(table.num_rows)
            sharing = sharing_a_band(
                table.column("minhash").to_pylist(),
                settings.num_perm,
                settings.rows_per_band,
                wanted,
            )
            self._kept.inc(len(sharing))
            if sharing:
                yield from signed_rows(table.take(sharing))


def with_cluster(article: Article, cluster_id: str, is_duplicate: bool) -> Article:
    return dataclasses.replace(article, cluster_id=cluster_id, is_duplicate=is_duplicate)


def _counted_near_duplicates(owner: type) -> Counter:
    return Metrics.counter(owner, "near_duplicates")


class _SignFn(beam.DoFn):
    def __init__(self, num_perm: int) -> None:
        self._num_perm = num_perm
        self._signed = Metrics.counter(self.__class__, "articles_signed")

    def process(self, article: Article) -> Iterator[Article]:
        self._signed.inc()
        yield sign_article(article, self._num_perm)


class _ComparableFn(beam.DoFn):
    """Keeps signatures that can be compared under the current settings."""

    def __init__(self, settings: NearDuplicateSettings) -> None:
        self._settings = settings
        self._skipped = Metrics.counter(self.__class__, "signatures_not_compared")

    def process(self, signed: Signed) -> Iterator[tuple[str, Signed]]:
        if signed.comparable(self._settings.num_perm, self._settings.min_shingles):
            yield signed.article_id, signed
        else:
            # Too short a text, or a stored signature of another num_perm.
            self._skipped.inc()


class _BandKeysFn(beam.DoFn):
    def __init__(self, rows: int) -> None:
        self._rows = rows

    def process(self, element: tuple[str, Signed]) -> Iterator[tuple[bytes, FirstSeen]]:
        _, signed = element
        seen = signed.first_seen
        for key in band_keys(decode_signature(signed.minhash), self._rows):
            yield key, seen


class _CandidatePairsFn(beam.DoFn):
    """(earlier id, later id) for the pairs of one bucket that include this run's articles."""

    def __init__(self, max_bucket: int) -> None:
        self._max_bucket = max_bucket
        self._capped = Metrics.counter(self.__class__, "band_buckets_capped")

    def process(self, element: tuple[bytes, Iterable[FirstSeen]]) -> Iterator[tuple[str, str]]:
        _, grouped = element
        members = list(grouped)
        if len(members) < 2 or not any(m.this_run for m in members):
            return
        if len(members) > self._max_bucket:
            self._capped.inc()
        yield from bucket_pairs(members, self._max_bucket)


class _AttachEarlierFn(beam.DoFn):
    """Sends an article's signature to each later article that met it in some bucket."""

    def __init__(self) -> None:
        self._pairs = Metrics.counter(self.__class__, "candidate_pairs")

    def process(self, element: tuple[str, dict[str, list]]) -> Iterator[tuple[str, Signed]]:
        _, grouped = element
        if not grouped[SIGNED] or not grouped[LATER]:
            return
        earlier = min(grouped[SIGNED], key=first_seen_of)
        # A pair meets once per band it shares; it is checked once.
        for later_id in sorted(set(grouped[LATER])):
            self._pairs.inc()
            yield later_id, earlier


class _DecideFn(beam.DoFn):
    """Checks each candidate's horizon and containment and sets the article's cluster."""

    def __init__(self, settings: NearDuplicateSettings) -> None:
        self._settings = settings
        self._duplicates = _counted_near_duplicates(self.__class__)
        self._across_runs = Metrics.counter(self.__class__, "near_duplicates_of_earlier_runs")

    def process(self, element: tuple[str, dict[str, list]]) -> Iterator[Article]:
        _, grouped = element
        for article in grouped[ARTICLE]:
            this = signed_of(article)
            settings = self._settings
            near = near_duplicates_of(
                this, grouped[EARLIER], settings.threshold, settings.horizon_days
            )
            decision = decide_cluster(article.article_id, near)
            if decision.is_duplicate:
                self._duplicates.inc()
                if any(not e.this_run for e in near):
                    self._across_runs.inc()
            yield with_cluster(article, decision.cluster_id, decision.is_duplicate)


def key_by_id(article: Article) -> tuple[str, Article]:
    return article.article_id, article


class ClusterNearDuplicates(beam.PTransform):
    """Sets ``minhash``, ``shingle_count``, ``cluster_id`` and ``is_duplicate`` on each article.

    An article is a near-duplicate when the estimated containment of the smaller shingle
    set in the larger, against an earlier article (stored, or earlier in this run) whose day
    lies within ``settings.horizon_days`` of its own, reaches ``settings.threshold``. The
    horizon counts from each article's own day, not the wall clock: a backfill or a late
    feed meets the stories of its time, reading only the ``dt=`` partitions around it.
    """

    def __init__(self, output_root: str, settings: NearDuplicateSettings) -> None:
        super().__init__()
        self._root = output_root
        self._settings = settings

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        settings = self._settings
        signed = articles | "Sign" >> beam.ParDo(_SignFn(settings.num_perm))
        stored = (
            signed
            | "RunBands" >> beam.ParDo(_RunBandsFn(settings))
            | "GatherRunBands" >> beam.GroupByKey()
            | "StoredSharingABand" >> beam.ParDo(_StoredSharingABandFn(self._root, settings))
        )
        signatures = (
            (signed | "SignaturesOfRun" >> beam.Map(signed_of), stored)
            | "AllSignatures" >> beam.Flatten()
            | "Comparable" >> beam.ParDo(_ComparableFn(settings))
        )
        pairs = (
            signatures
            | "BandKeys" >> beam.ParDo(_BandKeysFn(settings.rows_per_band))
            | "GroupByBand" >> beam.GroupByKey()
            | "CandidatePairs" >> beam.ParDo(_CandidatePairsFn(settings.max_bucket))
            # A pair meets once per band it shares (up to every band for a syndicated
            # story); combining before the shuffle keeps one.
            | "DistinctPairs" >> beam.Distinct()
        )
        earlier = (
            {SIGNED: signatures, LATER: pairs}
            | "JoinEarlier" >> beam.CoGroupByKey()
            | "AttachEarlier" >> beam.ParDo(_AttachEarlierFn())
        )
        return (
            {ARTICLE: signed | "KeyById" >> beam.Map(key_by_id), EARLIER: earlier}
            | "JoinCandidates" >> beam.CoGroupByKey()
            | "Decide" >> beam.ParDo(_DecideFn(settings))
        )


def _first_seen_of_stored(item: tuple[str, Signed]) -> FirstSeen:
    return first_seen_of(item[1])


class _ClusterStreamingFn(beam.DoFn):
    def __init__(self, output_root: str, settings: NearDuplicateSettings) -> None:
        self._root = output_root
        self._settings = settings
        self._index: SignatureIndex | None = None
        self._today: date | None = None
        self._loaded: set[str] = set()  # the dt= days whose stored signatures are indexed
        self._duplicates = _counted_near_duplicates(self.__class__)
        self._indexed = Metrics.counter(self.__class__, "stored_signatures_read")

    def setup(self) -> None:
        self._today = datetime.now(UTC).date()
        self._index = SignatureIndex(self._settings)
        self._loaded = set()
        self._load(days_around(self._today.isoformat(), self._settings.horizon_days))

    def _load(self, days: Iterable[str]) -> None:
        """Index the stored signatures of the days not indexed yet."""
        assert self._index is not None
        missing = sorted(set(days) - self._loaded)
        if not missing:
            return
        stored = read_horizon_signatures(self._root, missing)
        # In first-seen order, so each bucket lists its earliest members first.
        for day, signed in sorted(stored, key=_first_seen_of_stored):
            self._index.add(signed, day)
            self._indexed.inc()
        self._loaded.update(missing)

    def _roll_horizon(self) -> None:
        """A new day: forget the days that left today's horizon (a late article whose own
        horizon reaches further loads them again)."""
        assert self._index is not None
        today = datetime.now(UTC).date()
        if today != self._today:
            self._today = today
            first = (today - timedelta(days=self._settings.horizon_days)).isoformat()
            self._index.drop_before(first)
            self._loaded = {day for day in self._loaded if day >= first}

    def process(self, article: Article) -> Iterator[Article]:
        assert self._index is not None, "setup() builds the index"
        self._roll_horizon()
        self._load(days_around(article.partition_date, self._settings.horizon_days))
        article = sign_article(article, self._settings.num_perm)
        # Once passed, it is "earlier" to whatever comes next.
        this = signed_of(article, this_run=False)
        decision = decide_cluster(article.article_id, self._index.near_duplicates(this))
        if decision.is_duplicate:
            self._duplicates.inc()
        self._index.add(
            dataclasses.replace(this, cluster_id=decision.cluster_id), article.partition_date
        )
        yield with_cluster(article, decision.cluster_id, decision.is_duplicate)


class ClusterNearDuplicatesStreaming(beam.PTransform):
    """Sets ``minhash``, ``shingle_count``, ``cluster_id`` and ``is_duplicate`` as articles pass."""

    def __init__(self, output_root: str, settings: NearDuplicateSettings) -> None:
        super().__init__()
        self._root = output_root
        self._settings = settings

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        return articles | "Decide" >> beam.ParDo(_ClusterStreamingFn(self._root, self._settings))
