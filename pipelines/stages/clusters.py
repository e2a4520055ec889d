"""Stage 3: near-duplicates. Copies of one story share a ``cluster_id``; only the first is new.

Each article gets a MinHash signature of its text's word shingles (``core/minhash.py``,
``sign_article``). An article joins the cluster of the first seen (earliest published, then
smallest id) of the earlier articles it is a near-duplicate of: stored ones within the
horizon (read back from the dataset's ``minhash`` and ``shingle_count`` columns, so a copy
arriving in a later run joins the story stored before it) or earlier ones of this run.

``ClusterNearDuplicates`` (batch) gathers the run's signatures into one element (a run is
bounded: 2,500 articles by default) and decides every article's cluster there at once
(``core/clustering.py``): it reads the stored signatures of the horizon that share an LSH
band with an article of the run, the only stored ones that can meet it, so the work grows
with the run, not with the stored days. Pairs of articles meeting in a bucket were once
Beam elements, shuffled by band and joined by article id twice: 2,500 articles with
boilerplate-filled buckets made 337,163 distinct pairs, and the shuffles cost more than
the NLP. The graph::

    articles ─Sign─┬─> (day, signature) ─gather─> stored sharing a band, decisions ─┐
                   └──────────────────────────────────────────────────────────────┴─>
      CoGroupByKey by article id ─> cluster set

Its outcome depends on no bundle or worker order: decisions follow first-seen order.

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
from newswatch.pipelines.core.clustering import cluster_run
from newswatch.pipelines.core.minhash import (
    ClusterDecision,
    FirstSeen,
    Signed,
    band_hashes,
    days_around,
    decide_cluster,
    first_seen_of,
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
DECISION = "decision"
RUN = "run"  # the one key the run's signatures are gathered under


class _SignFn(beam.DoFn):
    def __init__(self, num_perm: int) -> None:
        self._num_perm = num_perm
        self._signed = Metrics.counter(self.__class__, "articles_signed")

    def process(self, article: Article) -> Iterator[Article]:
        self._signed.inc()
        yield sign_article(article, self._num_perm)


def day_and_signature(article: Article) -> tuple[str, tuple[str, Signed]]:
    """(RUN, (the article's dt= day, its signature)): what the run's decisions are made of."""
    return RUN, (article.partition_date, signed_of(article))


class _DecideClustersFn(beam.DoFn):
    """Reads the stored signatures, within the horizon of the run's days, that share a band
    with an article of the run, and decides the run's clusters among them and the run's
    own: (article id, decision) of each article that is a near-duplicate."""

    def __init__(self, output_root: str, settings: NearDuplicateSettings) -> None:
        self._root = output_root
        self._settings = settings
        self._read = Metrics.counter(self.__class__, "stored_signatures_read")
        self._kept = Metrics.counter(self.__class__, "stored_signatures_sharing_a_band")
        self._pairs = Metrics.counter(self.__class__, "candidate_pairs")
        self._skipped = Metrics.counter(self.__class__, "signatures_not_compared")
        self._duplicates = _counted_near_duplicates(self.__class__)
        self._across_runs = Metrics.counter(self.__class__, "near_duplicates_of_earlier_runs")

    def process(
        self, element: tuple[str, Iterable[tuple[str, Signed]]]
    ) -> Iterator[tuple[str, ClusterDecision]]:
        _, gathered = element
        settings = self._settings
        days: set[str] = set()
        run: list[Signed] = []
        for day, signed in gathered:
            if signed.comparable(settings.num_perm, settings.min_shingles):
                days.update(days_around(day, settings.horizon_days))
                run.append(signed)
            else:
                # Too short a text to compare.
                self._skipped.inc()
        stored = list(self._stored_sharing_a_band(run, sorted(days)))
        outcome = cluster_run([*run, *stored], settings)
        self._pairs.inc(outcome.candidate_pairs)
        self._duplicates.inc(len(outcome.duplicates))
        self._across_runs.inc(outcome.of_earlier_runs)
        yield from outcome.duplicates.items()

    def _stored_sharing_a_band(self, run: list[Signed], days: list[str]) -> Iterator[Signed]:
        settings = self._settings
        if not run:
            return
        matrix = np.frombuffer(b"".join(s.minhash for s in run), dtype="<u4")
        matrix = matrix.reshape(len(run), settings.num_perm)
        wanted = np.unique(band_hashes(matrix, settings.rows_per_band))
        for _, table in horizon_signature_tables(self._root, days):
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


class _SetClusterFn(beam.DoFn):
    def process(self, element: tuple[str, dict[str, list]]) -> Iterator[Article]:
        article_id, grouped = element
        decisions = grouped[DECISION]
        decision = decisions[0] if decisions else ClusterDecision(article_id, False)
        for article in grouped[ARTICLE]:
            yield with_cluster(article, decision.cluster_id, decision.is_duplicate)


def with_cluster(article: Article, cluster_id: str, is_duplicate: bool) -> Article:
    return dataclasses.replace(article, cluster_id=cluster_id, is_duplicate=is_duplicate)


def _counted_near_duplicates(owner: type) -> Counter:
    return Metrics.counter(owner, "near_duplicates")


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
        signed = articles | "Sign" >> beam.ParDo(_SignFn(self._settings.num_perm))
        decisions = (
            signed
            | "DayAndSignature" >> beam.Map(day_and_signature)
            | "GatherSignatures" >> beam.GroupByKey()
            | "DecideClusters" >> beam.ParDo(_DecideClustersFn(self._root, self._settings))
        )
        return (
            {ARTICLE: signed | "KeyById" >> beam.Map(key_by_id), DECISION: decisions}
            | "JoinDecisions" >> beam.CoGroupByKey()
            | "SetCluster" >> beam.ParDo(_SetClusterFn())
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
