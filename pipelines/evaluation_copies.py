"""How ``newswatch eval`` measures near-duplicate clustering on labelled records.

Records of one ``story_group`` are copies of one wire story and should share a cluster;
records that share only an ``event_group`` are independent reports of one event and must
not. The clusters are those one run of ``ClusterNearDuplicates`` would give these articles:
the same signatures, LSH band keys, bucket pairs, containment check and cluster decision
(``minhash.py``), wired in plain Python instead of a Beam graph.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from newswatch.pipelines.minhash import (
    Hashes,
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
from newswatch.schemas import Article

if TYPE_CHECKING:  # config imports Beam, which eval does not need
    from newswatch.pipelines.config import NearDuplicateSettings

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
    joined: bool


@dataclass(frozen=True)
class CopyScores:
    story_pairs: int
    story_pairs_joined: int
    high_pairs: int  # story pairs with containment >= HIGH_CONTAINMENT
    high_pairs_joined: int
    event_pairs: int  # same event, not the same story: must stay apart
    event_pairs_merged: int
    not_joined: tuple[Pair, ...]
    merged: tuple[Pair, ...]

    def lines(self) -> list[str]:
        out = [
            f"copies: {self.story_pairs_joined} of {self.story_pairs} story-group pairs joined; "
            f"{self.high_pairs_joined} of {self.high_pairs} with containment >= {HIGH_CONTAINMENT}",
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
    num_perm: int = settings.num_perm
    signed: dict[str, Signed] = {}
    for article in articles:
        shingles = shingle_hashes(article.text)
        minhash = encode_signature(signature(shingles, num_perm)) if len(shingles) else b""
        one = Signed(
            article.article_id,
            article.published_at,
            True,
            article.article_id,
            minhash,
            len(shingles),
        )
        if one.comparable(num_perm, settings.min_shingles):
            signed[article.article_id] = one
    buckets = defaultdict(list)
    for one in signed.values():
        for key in band_keys(decode_signature(one.minhash), settings.rows_per_band):
            buckets[key].append(one.first_seen)
    earlier: dict[str, set[str]] = defaultdict(set)
    for members in buckets.values():
        for first, later in bucket_pairs(members, settings.max_bucket):
            earlier[later].add(first)
    threshold = settings.threshold
    clusters = {}
    for article in articles:
        this = signed.get(article.article_id)
        near = [
            signed[e]
            for e in sorted(earlier.get(article.article_id, ()))
            if this is not None and is_near_duplicate(signed[e], this, threshold)
        ]
        clusters[article.article_id] = decide_cluster(article.article_id, near).cluster_id
    return clusters


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
    shingles = [shingle_hashes(a.text) for a in articles]
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
        )
        (story if same_story else event).append(pair)
    high = [p for p in story if p.containment >= HIGH_CONTAINMENT]
    return CopyScores(
        story_pairs=len(story),
        story_pairs_joined=sum(p.joined for p in story),
        high_pairs=len(high),
        high_pairs_joined=sum(p.joined for p in high),
        event_pairs=len(event),
        event_pairs_merged=sum(p.joined for p in event),
        not_joined=tuple(p for p in story if not p.joined),
        merged=tuple(p for p in event if p.joined),
    )
