"""Near-duplicate clustering: copies of one story share a ``cluster_id``; only the first is new.

Each article gets a MinHash signature of its text's word shingles (``pipelines/core/minhash.py``).
The signatures of the horizon (the last ``horizon_days`` of ``dt=`` partitions) are read
back from the dataset's ``minhash`` and ``shingle_count`` columns, so a copy arriving in a
later run joins the cluster of the story stored before it. Candidates meet by LSH band key
in a GroupByKey, the only place articles meet; no worker holds an index. The graph::

    articles ─Sign─┬──────────────────────────────────────────────────┐
                   └─> signatures ─┬─> band keys ─GroupByKey─> pairs ─┤ CoGroupByKey by the
    stored signatures of horizon ──┘                                  │ earlier article's id
                                                  (later id, earlier) ┘
    articles + (later id, earlier) ─CoGroupByKey by article id─> containment check, decision

The outcome depends on no bundle or worker order: buckets are sorted by first seen, and an
article joins the first seen of the earlier articles that are near-duplicates of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.fileio import EmptyMatchTreatment
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.write import ARTICLES
from newswatch.pipelines.control.config import NearDuplicateSettings
from newswatch.pipelines.core.minhash import (
    FirstSeen,
    Signed,
    band_keys,
    bucket_pairs,
    decide_cluster,
    decode_signature,
    encode_signature,
    is_near_duplicate,
    shingle_hashes,
    signature,
)
from newswatch.pipelines.core.normalization import FUTURE_TOLERANCE_DAYS
from newswatch.schemas import Article

__all__ = ["ClusterNearDuplicates", "ReadStoredSignatures", "horizon_partitions"]

# What a later run needs of a stored article; no other column is read.
SIGNATURE_COLUMNS = ("article_id", "published_at", "cluster_id", "minhash", "shingle_count")
ARTICLE = "article"
EARLIER = "earlier"
SIGNED = "signed"
LATER = "later"


def horizon_partitions(today: date, horizon_days: int) -> list[str]:
    """The ``dt=`` dates whose articles a run compares with: the horizon, today, and the
    days ahead that a source's clock may be (articles dated later lose their date)."""
    first = today - timedelta(days=horizon_days)
    last = today + timedelta(days=FUTURE_TOLERANCE_DAYS)
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def signatures_in(parquet: pq.ParquetFile) -> list[Signed]:
    """The stored signatures of one committed Parquet file (none if written before them)."""
    if not set(SIGNATURE_COLUMNS) <= set(parquet.schema_arrow.names):
        return []  # written before signatures were stored: its articles take no part
    return [
        Signed(
            article_id=row["article_id"],
            published_at=row["published_at"],
            this_run=False,
            cluster_id=row["cluster_id"],
            minhash=row["minhash"],
            shingle_count=row["shingle_count"],
        )
        for row in parquet.read(columns=list(SIGNATURE_COLUMNS)).to_pylist()
    ]


def _stored_signatures(readable: fileio.ReadableFile) -> list[Signed]:
    with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return signatures_in(pq.ParquetFile(handle))


class ReadStoredSignatures(beam.PTransform):
    """Signatures of the committed articles in the given ``dt=`` partitions of ``root``."""

    def __init__(self, root: str, partitions: Sequence[str]) -> None:
        super().__init__()
        self._patterns = [
            filesystem.join(root, ARTICLES, f"dt={day}", "*.parquet") for day in partitions
        ]

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "Partitions" >> beam.Create(self._patterns)
            | "Match" >> fileio.MatchAll(EmptyMatchTreatment.ALLOW)
            | "Open" >> fileio.ReadMatches()
            | "Read" >> beam.FlatMap(_stored_signatures)
        )


class _SignFn(beam.DoFn):
    """Sets an article's ``minhash`` and ``shingle_count`` from its text."""

    def __init__(self, num_perm: int) -> None:
        self._num_perm = num_perm
        self._signed = Metrics.counter(self.__class__, "articles_signed")

    def process(self, article: Article) -> Iterator[Article]:
        shingles = shingle_hashes(article.text)
        minhash = encode_signature(signature(shingles, self._num_perm)) if len(shingles) else b""
        self._signed.inc()
        yield dataclasses.replace(article, minhash=minhash, shingle_count=len(shingles))


def signed_of(article: Article) -> Signed:
    return Signed(
        article_id=article.article_id,
        published_at=article.published_at,
        this_run=True,
        cluster_id=article.article_id,
        minhash=article.minhash,
        shingle_count=article.shingle_count,
    )


class _ComparableFn(beam.DoFn):
    """Keeps signatures that can be compared under the current settings."""

    def __init__(self, settings: NearDuplicateSettings) -> None:
        self._settings = settings
        self._stored = Metrics.counter(self.__class__, "stored_signatures_read")
        self._skipped = Metrics.counter(self.__class__, "signatures_not_compared")

    def process(self, signed: Signed) -> Iterator[tuple[str, Signed]]:
        if not signed.this_run:
            self._stored.inc()
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
        earlier = min(grouped[SIGNED], key=_first_seen)
        # A pair meets once per band it shares; it is checked once.
        for later_id in sorted(set(grouped[LATER])):
            self._pairs.inc()
            yield later_id, earlier


class _DecideFn(beam.DoFn):
    """Checks each candidate's containment and sets the article's cluster."""

    def __init__(self, threshold: float) -> None:
        self._threshold = threshold
        self._duplicates = Metrics.counter(self.__class__, "near_duplicates")
        self._across_runs = Metrics.counter(self.__class__, "near_duplicates_of_earlier_runs")

    def process(self, element: tuple[str, dict[str, list]]) -> Iterator[Article]:
        _, grouped = element
        for article in grouped[ARTICLE]:
            this = signed_of(article)
            near = [e for e in grouped[EARLIER] if is_near_duplicate(e, this, self._threshold)]
            decision = decide_cluster(article.article_id, near)
            if decision.is_duplicate:
                self._duplicates.inc()
                if any(not e.this_run for e in near):
                    self._across_runs.inc()
            yield dataclasses.replace(
                article, cluster_id=decision.cluster_id, is_duplicate=decision.is_duplicate
            )


def _first_seen(signed: Signed) -> FirstSeen:
    return signed.first_seen


def key_by_id(article: Article) -> tuple[str, Article]:
    return article.article_id, article


class ClusterNearDuplicates(beam.PTransform):
    """Sets ``minhash``, ``shingle_count``, ``cluster_id`` and ``is_duplicate`` on each article.

    An article is a near-duplicate when the estimated containment of the smaller shingle
    set in the larger, against an earlier article (from an earlier run within the horizon,
    or earlier in this run), reaches ``settings.threshold``. ``now`` fixes the horizon
    (default: when the pipeline is built).
    """

    def __init__(
        self, output_root: str, settings: NearDuplicateSettings, now: datetime | None = None
    ) -> None:
        super().__init__()
        self._root = output_root
        self._settings = settings
        self._today = (now or datetime.now(UTC)).astimezone(UTC).date()

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        settings = self._settings
        signed = articles | "Sign" >> beam.ParDo(_SignFn(settings.num_perm))
        stored = articles.pipeline | "ReadHorizon" >> ReadStoredSignatures(
            self._root, horizon_partitions(self._today, settings.horizon_days)
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
            | "Decide" >> beam.ParDo(_DecideFn(settings.threshold))
        )
