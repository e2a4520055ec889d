"""How ``newswatch eval`` measures near-duplicate clustering on labelled records.

Records of one ``story_group`` are copies of one wire story and should share a cluster;
records that share only an ``event_group`` are independent reports of one event and must
not. The clusters are those one run of ``ClusterNearDuplicates`` would give these articles:
the same signatures (``minhash.py``) and the same decisions (``clustering.py``), without
the Beam graph around them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from newswatch.pipelines.core.clustering import cluster_run
from newswatch.pipelines.core.languages import UNSPACED_LANGUAGES
from newswatch.pipelines.core.minhash import (
    Hashes,
    band_hashes,
    days_around,
    decode_signature,
    near_duplicates_of,
    shingle_hashes,
    sign_article,
    signed_of,
)
from newswatch.schemas import Article

if TYPE_CHECKING:  # config imports Beam, which eval does not need
    from newswatch.pipelines.control.settings import NearDuplicateSettings

# Copies that keep at least this share of the smaller text's shingles are the ones the
# clustering is expected to join; heavier rewrites are reported apart.
HIGH_CONTAINMENT = 0.5

Groups = tuple[str | None, str | None]  # (story_group, event_group) of one record


@dataclass(frozen=True)
class Pair:
    a: str  # record ids
    b: str
    group: str
    containment: float  # exact shingle containment of the smaller text in the larger
    joined: bool  # in one run
    joined_later: bool = False  # the second arriving in a later run than the first


@dataclass(frozen=True)
class CopyScores:
    story_pairs: int
    story_pairs_joined: int
    high_pairs: int  # story pairs with containment >= HIGH_CONTAINMENT
    high_pairs_joined: int
    high_pairs_joined_later: int  # the copy arriving in a later run than its original
    event_pairs: int  # same event, not the same story: must stay apart
    event_pairs_merged: int
    not_joined: tuple[Pair, ...]
    merged: tuple[Pair, ...]

    def lines(self) -> list[str]:
        out = [
            f"copies: {self.story_pairs_joined} of {self.story_pairs} story-group pairs joined; "
            f"{self.high_pairs_joined} of {self.high_pairs} with containment >= {HIGH_CONTAINMENT}"
            f" ({self.high_pairs_joined_later} when the copy arrives in a later run)",
            f"independent reports: {self.event_pairs_merged} of {self.event_pairs} "
            "same-event pairs merged",
        ]
        for kind, pairs in (("not joined", self.not_joined), ("merged", self.merged)):
            out.extend(
                f"  {kind}: {p.a} {p.b} ({p.group}, containment {p.containment})" for p in pairs
            )
        return out


def one_run_clusters(
    articles: Sequence[Article], settings: NearDuplicateSettings
) -> dict[str, str]:
    """article id -> cluster id, as one run of the pipeline would set them."""
    signed = [signed_of(sign_article(a, settings.num_perm)) for a in articles]
    duplicates = cluster_run(signed, settings).duplicates
    return {
        a.article_id: duplicates[a.article_id].cluster_id
        if a.article_id in duplicates
        else a.article_id
        for a in articles
    }


def joins_a_later_run(stored: Article, later: Article, settings: NearDuplicateSettings) -> bool:
    """Whether ``later``, arriving in a run after ``stored`` was committed, joins its story:
    the run reads ``stored``'s partition (it lies around ``later``'s day), they meet in an
    LSH bucket, lie within the horizon and reach the threshold.

    The wall clock plays no part: a dated copy is anchored on its own date, however long
    after it the run is. An undated copy is anchored on the day it is read; it is taken to
    be read by the run that follows the one that stored the original (a day later), since
    what an undated item read a year late belongs to cannot be known.
    """
    if later.published_at is None:
        read_at = (stored.published_at or stored.ingested_at) + timedelta(days=1)
        later = dataclasses.replace(later, ingested_at=read_at)
    if stored.partition_date not in days_around(later.partition_date, settings.horizon_days):
        return False
    a = dataclasses.replace(signed_of(sign_article(stored, settings.num_perm)), this_run=False)
    b = signed_of(sign_article(later, settings.num_perm))
    if not (
        a.comparable(settings.num_perm, settings.min_shingles)
        and b.comparable(settings.num_perm, settings.min_shingles)
    ):
        return False
    rows = settings.rows_per_band
    bands_a = band_hashes(decode_signature(a.minhash), rows)
    if not (bands_a == band_hashes(decode_signature(b.minhash), rows)).any():
        return False
    return bool(near_duplicates_of(b, [a], settings.threshold, settings.horizon_days))


def first_seen_first(a: Article, b: Article) -> tuple[Article, Article]:
    """The pair as (original, copy): the earlier published first, an undated one last."""
    if b.published_at is not None and (a.published_at is None or b.published_at < a.published_at):
        return b, a
    return a, b


def containment(a: Hashes, b: Hashes) -> float:
    if not len(a) or not len(b):
        return 0.0
    return round(len(np.intersect1d(a, b)) / min(len(a), len(b)), 4)


def copy_scores(
    articles: Sequence[Article],
    ids: Sequence[str],
    groups: Sequence[Groups],
    settings: NearDuplicateSettings,
) -> CopyScores:
    """Story-group pairs joined and same-event pairs merged by one run's clustering."""
    clusters = one_run_clusters(articles, settings)
    shingles = [
        shingle_hashes(a.text, characters=a.language in UNSPACED_LANGUAGES) for a in articles
    ]
    story: list[Pair] = []
    event: list[Pair] = []
    for i, j in combinations(range(len(articles)), 2):
        (story_i, event_i), (story_j, event_j) = groups[i], groups[j]
        same_story = story_i is not None and story_i == story_j
        if not same_story and (event_i is None or event_i != event_j):
            continue
        a, b = articles[i], articles[j]
        joined = a.article_id == b.article_id or clusters[a.article_id] == clusters[b.article_id]
        pair = Pair(
            ids[i],
            ids[j],
            (story_i if same_story else event_i) or "",
            containment(shingles[i], shingles[j]),
            joined,
            a.article_id == b.article_id or joins_a_later_run(*first_seen_first(a, b), settings),
        )
        (story if same_story else event).append(pair)
    high = [p for p in story if p.containment >= HIGH_CONTAINMENT]
    return CopyScores(
        story_pairs=len(story),
        story_pairs_joined=sum(p.joined for p in story),
        high_pairs=len(high),
        high_pairs_joined=sum(p.joined for p in high),
        high_pairs_joined_later=sum(p.joined_later for p in high),
        event_pairs=len(event),
        event_pairs_merged=sum(p.joined for p in event),
        not_joined=tuple(p for p in story if not p.joined),
        merged=tuple(p for p in event if p.joined),
    )
