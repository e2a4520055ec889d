"""Near-duplicate clustering: shingles and signatures, the cluster stage, and runs end to end."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from articles import make_article
from configs import rss_source, write_config
from datasets import commit_records
from datasketch import MinHash
from feeds import rss_document, rss_item
from hypothesis import given, settings
from hypothesis import strategies as st
from outputs import read_articles, read_jsonl
from processes import IN_PROCESS

from newswatch.connectors.dataset.write import ARTICLE_FILES
from newswatch.pipelines.cli import main
from newswatch.pipelines.control.config import NearDuplicateSettings, parse_config
from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.core.clustering import cluster_run, near_duplicate_pairs
from newswatch.pipelines.core.minhash import (
    FirstSeen,
    Signed,
    band_hashes,
    candidate_probability,
    days_around,
    decide_cluster,
    decode_signature,
    encode_signature,
    estimated_containment,
    estimated_jaccard,
    is_near_duplicate,
    near_duplicates_of,
    sharing_a_band,
    shingle_hashes,
    signature,
    within_horizon,
    word_string,
)
from newswatch.pipelines.stages.clusters import ClusterNearDuplicates
from newswatch.schemas import Article

# --- sample texts (written for these tests) ----------------------------------------------------

WIRE = [
    "SEOUL, March 3 (Newswire) - North Korea has shipped several thousand containers of "
    "artillery shells and short-range ballistic missiles to Russia since last summer, South "
    "Korea's defence ministry said on Monday, citing satellite imagery and shipping records "
    "reviewed by its intelligence service.",
    "The ministry said the munitions were loaded at the port of Rajin and moved by rail across "
    "the short land border, then onward to depots in western Russia that supply units fighting "
    "in Ukraine. Officials estimated that the shipments amounted to more than five million rounds.",
    "In return, Pyongyang is believed to be receiving food, fuel and help with its space "
    "programme, according to the ministry, which said visiting engineers had toured a satellite "
    "launch site on the west coast at least twice this winter.",
    "The Kremlin did not respond to a request for comment. Moscow and Pyongyang have repeatedly "
    "denied any arms transfers, which would violate United Nations Security Council resolutions "
    "that Russia itself voted for when they were adopted.",
    "Analysts in Seoul said the pace of the transfers suggested that North Korean factories were "
    "running at full capacity. Several pointed to the reopening of a plant near the city of "
    "Kanggye, idle for years, as evidence of new demand.",
    "South Korea, Japan and the United States are expected to discuss the findings at a meeting "
    "of their foreign ministers in Tokyo later this month, where officials said new sanctions on "
    "shipping companies and banks would be on the agenda.",
]
BOILERPLATE = (
    "Sign up for the Harbour Post morning briefing to get the day's top stories in your inbox. "
    "Copyright Harbour Post. All rights reserved."
)
BYLINE = "By Dana Kowalski, Metro Courier"
STATEMENT = (
    "We, the leaders of the twenty-seven member states, commit to cutting net greenhouse gas "
    "emissions by ninety per cent by 2040 compared with 1990 levels, to tripling renewable power "
    "capacity within this decade, and to phasing out unabated coal in electricity generation as "
    "soon as technology and security of supply allow. We call on every major economy to present "
    "plans of equal ambition before the next climate conference, and we will support partner "
    "countries with finance, technology and skills."
)
REPORT_A = [
    "BRUSSELS - European Union leaders agreed on a tougher climate goal early on Friday after "
    "talks that ran through the night, overcoming objections from two central European "
    "governments worried about the cost to their heavy industry.",
    f"In a joint declaration, the leaders said: “{STATEMENT}”",
    "Diplomats said the holdouts had won a review clause in 2030 and extra money for regions that "
    "still depend on mining. Environmental groups called the deal a step forward but said the "
    "coal pledge lacked a firm date.",
]
REPORT_B = [
    "The summit ended with smiles for the cameras, but the path to Friday's climate compromise "
    "was anything but smooth, according to officials from three delegations who described hours "
    "of bargaining over subsidies and transition funds.",
    "Poland's prime minister left the room twice to call his coalition partners, one official "
    "said, before the text was changed to promise support for coal regions.",
    f"The final declaration reads: “{STATEMENT}”",
    "Markets barely moved on the news. Carbon permits traded slightly higher in Amsterdam, and "
    "shares in wind turbine makers rose in early trading in Copenhagen and Madrid.",
]
HARBOUR = [
    "Dockworkers at the country's largest container port voted to strike for forty-eight hours "
    "next week over pay and shift patterns, their union said on Wednesday, threatening delays "
    "for retailers stocking up before the holidays.",
    "The port operator said it had offered a raise of six per cent over two years and called the "
    "walkout unnecessary. Talks are scheduled to resume on Monday with a government mediator.",
    "Shipping lines warned customers that vessels could be diverted to smaller ports along the "
    "coast if the strike goes ahead, adding several days to delivery times for some goods.",
]


def text(paragraphs: list[str]) -> str:
    return "\n\n".join(paragraphs)


def first_words(paragraphs: list[str], share: float) -> str:
    tokens = text(paragraphs).split(" ")
    return " ".join(tokens[: round(len(tokens) * share)]) + "…"


COPIES = {
    "new headline": text(WIRE),
    "byline": text([BYLINE, *WIRE]),
    "truncated to 45%": first_words(WIRE, 0.45),
    "truncated to 80%": first_words(WIRE, 0.8),
    "dropped paragraph": text(WIRE[:2] + WIRE[3:]),
    "boilerplate around": text([BOILERPLATE, *WIRE, BOILERPLATE]),
    "truncated and boilerplate": text([first_words(WIRE, 0.6), BOILERPLATE]),
}


def signed(key: str, body: str, this_run: bool = True, cluster: str | None = None, **kw: Any):
    shingles = shingle_hashes(body)
    return Signed(
        article_id=key,
        published_at=kw.get("published_at"),
        this_run=this_run,
        cluster_id=cluster or key,
        minhash=encode_signature(signature(shingles)),
        shingle_count=len(shingles),
    )


# --- words, shingles, signatures ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("  \n\t ", ""),
        ("—!?…", ""),
        ("Rates RISE, again.", "rates rise again"),
        ("“Quoted” — it’s 3.5%", "quoted it s 3 5"),
        ("Straße STRASSE", "strasse strasse"),
        ("naïve café 東京 Москва", "naïve café 東京 москва"),
        ("lone \ud800 surrogate", "lone surrogate"),
        ("snake_case and-hyphen", "snake_case and hyphen"),
    ],
)
def test_word_string(raw: str, expected: str) -> None:
    assert word_string(raw) == expected


@pytest.mark.parametrize(
    ("raw", "count"),
    [
        ("", 0),
        ("...", 0),
        ("one", 1),
        ("one two three four", 1),  # shorter than a shingle: one shingle of all
        ("one two three four five", 1),
        ("one two three four five six", 2),
        ("a b a b a b a b", 2),  # "a b a b a" and "b a b a b" repeat
        ("\ud800 lone surrogate text only here", 1),
    ],
)
def test_shingle_counts(raw: str, count: int) -> None:
    hashes = shingle_hashes(raw)
    assert len(hashes) == count
    assert hashes.dtype == np.uint32
    assert list(hashes) == sorted(set(hashes.tolist()))


def test_shingles_ignore_case_punctuation_and_position() -> None:
    base = shingle_hashes("The bank raised its key rate on Tuesday")
    assert np.array_equal(base, shingle_hashes("THE BANK, raised its key-rate on... Tuesday!"))
    # A shingle hashes the same wherever it stands: a prefix adds, never changes, shingles.
    longer = shingle_hashes("Breaking: the bank raised its key rate on Tuesday")
    assert set(base.tolist()) < set(longer.tolist())
    # Word order matters.
    assert not set(base.tolist()) & set(shingle_hashes("Tuesday on rate key its raised bank the"))


def test_signature_is_datasketch_affine32_minhash() -> None:
    shingles = shingle_hashes(text(WIRE))
    reference = MinHash(num_perm=128, seed=1, hashfunc=int)
    reference.update_batch(shingles.tolist())
    assert np.array_equal(signature(shingles, 128), reference.hashvalues)
    assert signature(shingles, 64).shape == (64,)


def test_empty_signature_and_round_trip() -> None:
    empty = signature(np.empty(0, dtype=np.uint32), 16)
    assert (empty == 0xFFFFFFFF).all()
    values = signature(shingle_hashes("some words to sign here today"), 32)
    raw = encode_signature(values)
    assert len(raw) == 4 * 32 and raw[:4] == int(values[0]).to_bytes(4, "little")
    assert np.array_equal(decode_signature(raw), values)


@settings(max_examples=30, deadline=None)
@given(
    st.sets(st.integers(0, 2**32 - 1), min_size=1, max_size=300),
    st.sets(st.integers(0, 2**32 - 1), min_size=1, max_size=300),
)
def test_signature_of_a_union_is_the_least_of_both(left: set[int], right: set[int]) -> None:
    a, b = (np.array(sorted(s), dtype=np.uint32) for s in (left, right))
    union = np.array(sorted(left | right), dtype=np.uint32)
    assert np.array_equal(signature(union, 64), np.minimum(signature(a, 64), signature(b, 64)))


@pytest.mark.parametrize(
    ("size_a", "size_b", "shared", "containment"),
    [
        (1000, 1000, 1000, 1.0),  # identical
        (1000, 1000, 0, 0.0),  # disjoint
        (400, 1000, 400, 1.0),  # a truncated copy, wholly inside
        (400, 1000, 300, 0.75),
        (1000, 400, 300, 0.75),  # symmetric: the smaller set counts
        (500, 500, 250, 0.5),
        (200, 2000, 180, 0.9),  # a tenth of the size: Jaccard 0.09, containment still seen
    ],
)
def test_estimated_containment_is_close(
    size_a: int, size_b: int, shared: int, containment: float
) -> None:
    rng = np.random.default_rng(size_a * 7 + size_b + shared)
    pool = rng.choice(2**32, size=size_a + size_b, replace=False).astype(np.uint32)
    a = pool[:size_a]
    b = np.concatenate([a[:shared], pool[size_a : size_a + size_b - shared]])
    sig_a, sig_b = signature(a, 256), signature(b, 256)
    estimate = estimated_containment(sig_a, size_a, sig_b, size_b)
    assert estimate == pytest.approx(containment, abs=0.12)
    assert estimate == estimated_containment(sig_b, size_b, sig_a, size_a)
    jaccard = shared / (size_a + size_b - shared)
    assert estimated_jaccard(sig_a, sig_b) == pytest.approx(jaccard, abs=0.1)


def test_containment_of_empty_or_mismatched_signatures() -> None:
    values = signature(np.arange(50, dtype=np.uint32), 16)
    assert estimated_containment(values, 0, values, 50) == 0.0
    with pytest.raises(ValueError, match="cannot be compared"):
        estimated_jaccard(values, values[:8])


def test_band_hashes() -> None:
    values = signature(shingle_hashes(text(WIRE)), 128)
    hashes = band_hashes(values, 2)
    assert hashes.dtype == np.uint64 and len(set(hashes.tolist())) == 64
    assert len(band_hashes(values, 3)) == 42
    changed = values.copy()
    changed[7] ^= 1
    assert (band_hashes(changed, 2) != hashes).tolist() == [i == 3 for i in range(64)]
    # The same values in another band are another key.
    swapped = np.concatenate([values[2:4], values[0:2], values[4:]])
    assert band_hashes(swapped, 2)[0] != hashes[1] and band_hashes(swapped, 2)[1] != hashes[0]
    with pytest.raises(ValueError):
        band_hashes(values, 0)


def test_band_hashes_of_a_matrix_are_those_of_each_row() -> None:
    rows = [signature(shingle_hashes(text(body)), 128) for body in (WIRE, HARBOUR, REPORT_A)]
    matrix = band_hashes(np.stack(rows), 2)
    assert matrix.shape == (3, 64)
    for row, values in zip(matrix, rows, strict=True):
        assert row.tolist() == band_hashes(values, 2).tolist()


def test_sharing_a_band_keeps_the_stored_signatures_a_run_can_meet() -> None:
    def raw(body: str, num_perm: int = 128) -> bytes:
        return encode_signature(signature(shingle_hashes(body), num_perm))

    stored = [
        raw(text(WIRE)),  # the original of the run's copy
        raw(text(HARBOUR)),  # unrelated
        raw(text(WIRE), 64),  # the original again, but signed with another num_perm
        None,
        raw(COPIES["truncated to 45%"]),  # another copy of the original
        raw(text(REPORT_A)),  # unrelated
    ]
    run = signature(shingle_hashes(COPIES["dropped paragraph"]), 128)
    wanted = np.unique(band_hashes(run, 2))
    assert sharing_a_band(stored, 128, 2, wanted) == [0, 4]
    assert sharing_a_band(stored, 64, 2, wanted) == []  # no band of another length matches
    assert sharing_a_band(stored, 128, 2, np.array([], dtype=np.uint64)) == []
    assert sharing_a_band([], 128, 2, wanted) == []


def test_sharing_a_band_agrees_with_comparing_every_band() -> None:
    rng = np.random.default_rng(7)
    run = rng.integers(0, 2**32, size=(50, 128), dtype=np.uint32)
    stored = rng.integers(0, 2**32, size=(3000, 128), dtype=np.uint32)
    for i in range(0, 3000, 97):  # a band of some run article, in the same band
        band = i % 64
        stored[i, 2 * band : 2 * band + 2] = run[i % 50, 2 * band : 2 * band + 2]
    stored[5, 0:2] = run[0, 2:4]  # the same values in another band do not count
    wanted = np.unique(band_hashes(run, 2))
    expected = [
        i
        for i, row in enumerate(stored)
        if set(band_hashes(row, 2).tolist()) & set(wanted.tolist())
    ]
    raw = [encode_signature(row) for row in stored]
    assert sharing_a_band(raw, 128, 2, wanted) == expected
    assert len(expected) == 31


def test_candidate_probability_meets_realistic_copies() -> None:
    # A copy cut to 40% of the text that is 70% contained has Jaccard 0.25.
    assert candidate_probability(0.25, 64, 2) > 0.98
    # Unrelated stories (Jaccard below 0.01) rarely meet.
    assert candidate_probability(0.01, 64, 2) < 0.01


# --- the cluster decision ----------------------------------------------------------------------

T0 = datetime(2024, 6, 10, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        (FirstSeen.of("z", T0 + timedelta(days=3), False), FirstSeen.of("a", T0, True)),
        (FirstSeen.of("z", T0, True), FirstSeen.of("a", T0 + timedelta(seconds=1), True)),
        (FirstSeen.of("a", T0, True), FirstSeen.of("b", T0, True)),
        (FirstSeen.of("z", T0 + timedelta(days=900), True), FirstSeen.of("a", None, True)),
        (FirstSeen.of("z", None, False), FirstSeen.of("a", T0, True)),
        (FirstSeen.of("a", None, True), FirstSeen.of("b", None, True)),
    ],
)
def test_first_seen_order(earlier: FirstSeen, later: FirstSeen) -> None:
    assert earlier < later


def members(*spec: tuple[str, bool]) -> list[Signed]:
    """One bucket: the same signature for all, first seen in the order given."""
    same = encode_signature(signature(shingle_hashes(text(WIRE)), 128))
    return [
        Signed(key, T0 + timedelta(minutes=n), this_run, key, same, 100)
        for n, (key, this_run) in enumerate(spec)
    ]


@pytest.mark.parametrize(
    ("bucket", "cap", "pairs"),
    [
        (members(("a", True)), 50, set()),
        (members(("s1", False), ("s2", False)), 50, set()),  # settled in an earlier run
        (members(("s1", False), ("a", True)), 50, {("s1", "a")}),
        (members(("a", True), ("b", True), ("c", True)), 50, {("a", "b"), ("a", "c"), ("b", "c")}),
        (
            members(("s", False), ("a", True), ("b", True), ("c", True)),
            2,
            {("s", "a"), ("s", "b"), ("a", "b"), ("s", "c"), ("a", "c")},
        ),
        (
            list(reversed(members(("s", False), ("a", True), ("b", True)))),
            1,
            {("s", "a"), ("s", "b")},
        ),
    ],
)
def test_bucket_pairs(bucket: list[Signed], cap: int, pairs: set[tuple[str, str]]) -> None:
    # Identical texts meet in every band and are all near-duplicates: the pairs found are
    # exactly the pairs the buckets make, each once.
    found = near_duplicate_pairs(bucket, NearDuplicateSettings(max_bucket=cap))
    ids = [e.article_id for e in found.entries]
    named = [(ids[a], ids[b]) for a, b in zip(found.earlier, found.later, strict=True)]
    assert set(named) == pairs and len(named) == len(pairs) == found.checked


@pytest.mark.parametrize(
    ("near", "decision"),
    [
        ([], ("x", False)),
        ([signed("b", "b", published_at=T0)], ("b", True)),
        (
            [signed("b", "b", published_at=T0), signed("a", "a", published_at=T0 + timedelta(1))],
            ("b", True),
        ),
        # An earlier run's article wins over this run's, and brings its stored cluster.
        (
            [
                signed("b", "b", published_at=T0),
                signed("s", "s", this_run=False, cluster="root", published_at=T0 + timedelta(2)),
            ],
            ("root", True),
        ),
        ([signed("c", "c", published_at=None), signed("d", "d", published_at=T0)], ("d", True)),
    ],
)
def test_decide_cluster(near: list[Signed], decision: tuple[str, bool]) -> None:
    result = decide_cluster("x", near)
    assert (result.cluster_id, result.is_duplicate) == decision


@pytest.mark.parametrize("kind", sorted(COPIES))
def test_edited_copies_are_near_duplicates(kind: str) -> None:
    assert is_near_duplicate(signed("wire", text(WIRE)), signed("copy", COPIES[kind]), 0.7)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (text(REPORT_A), text(REPORT_B)),  # the same summit and statement, each outlet's own piece
        (text(WIRE), text(HARBOUR)),
        (text(WIRE), text([*WIRE[:1], *HARBOUR])),  # one paragraph in common
    ],
)
def test_different_stories_are_not(left: str, right: str) -> None:
    assert not is_near_duplicate(signed("l", left), signed("r", right), 0.7)


def test_the_shared_statement_is_a_large_part_of_each_report() -> None:
    # The case is hard: plain containment of the statement alone is high in both.
    a, b, s = (set(shingle_hashes(t).tolist()) for t in (text(REPORT_A), text(REPORT_B), STATEMENT))
    assert len(a & b) / min(len(a), len(b)) > 0.35
    assert len(s & a) / len(s) > 0.95


def test_days_around() -> None:
    days = days_around("2024-03-01", 2)
    assert days == ["2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02", "2024-03-03"]
    assert days_around("2024-03-01", 0) == ["2024-03-01"]


@pytest.mark.parametrize(
    ("left", "right", "horizon", "expected"),
    [
        ("2024-03-01", "2024-03-08", 7, True),
        ("2024-03-01", "2024-03-09", 7, False),
        ("2024-03-09", "2024-03-01", 7, False),  # either way round
        ("2024-03-01", "2024-03-01", 0, True),
        ("", "2024-03-09", 0, True),  # signed before days were kept: compared as before
    ],
)
def test_within_horizon(left: str, right: str, horizon: int, expected: bool) -> None:
    a = dataclasses.replace(signed("a", text(WIRE)), day=left)
    b = dataclasses.replace(signed("b", text(WIRE)), day=right)
    assert within_horizon(a, b, horizon) is expected


# --- config ------------------------------------------------------------------------------------

SOURCES = [{"name": "wire", "type": "rss", "url": "https://example.org/rss.xml"}]


def test_near_duplicate_settings_defaults_and_values(tmp_path: Path) -> None:
    assert parse_config({"sources": SOURCES}, "c.yaml", tmp_path).near_duplicates == (
        NearDuplicateSettings(0.5, 7, 128, 2, 10, 50)
    )
    given_values = {
        "threshold": 0.8,
        "horizon_days": 3,
        "num_perm": 64,
        "rows_per_band": 4,
        "min_shingles": 20,
        "max_bucket": 10,
    }
    config = parse_config({"sources": SOURCES, "near_duplicates": given_values}, "c.yaml", tmp_path)
    assert config.near_duplicates == NearDuplicateSettings(0.8, 3, 64, 4, 20, 10)
    empty = parse_config({"sources": SOURCES, "near_duplicates": None}, "c.yaml", tmp_path)
    assert empty.near_duplicates == NearDuplicateSettings()


@pytest.mark.parametrize(
    ("section", "path", "message"),
    [
        ("yes", "near_duplicates", "must be a mapping"),
        ({"treshold": 0.7}, "near_duplicates.treshold", "unknown key"),
        ({"threshold": 1.5}, "near_duplicates.threshold", "from 0.01 to 1"),
        ({"threshold": 0}, "near_duplicates.threshold", "number >= 0.01"),
        ({"threshold": "high"}, "near_duplicates.threshold", "number >= 0.01"),
        ({"horizon_days": -1}, "near_duplicates.horizon_days", "whole number from 0"),
        ({"horizon_days": 7.5}, "near_duplicates.horizon_days", "whole number"),
        ({"horizon_days": True}, "near_duplicates.horizon_days", "whole number"),
        ({"num_perm": 8}, "near_duplicates.num_perm", "whole number from 16 to 1024"),
        ({"num_perm": 64, "rows_per_band": 65}, "near_duplicates.rows_per_band", "1 to 64"),
        ({"min_shingles": 0}, "near_duplicates.min_shingles", "whole number from 1"),
        ({"max_bucket": "50"}, "near_duplicates.max_bucket", "whole number from 1"),
    ],
)
def test_near_duplicate_settings_errors(
    tmp_path: Path, section: Any, path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"sources": SOURCES, "near_duplicates": section}, "c.yaml", tmp_path)
    assert info.value.path == path
    assert message in info.value.message


# --- the stage on a TestPipeline ---------------------------------------------------------------

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)


def article(name: str, body: str, published: datetime | None, **fields: Any) -> Article:
    return make_article(
        f"https://news.example/{name}",
        source="test",
        title=name,
        text=body,
        published_at=published,
        ingested_at=NOW,
        **fields,
    )


def stored(name: str, body: str, published: datetime, cluster: Article | None = None) -> Article:
    """An article as an earlier run committed it, signature included."""
    shingles = shingle_hashes(body)
    new = article(name, body, published)
    return Article(
        **{
            **new.__dict__,
            "cluster_id": cluster.article_id if cluster else new.article_id,
            "is_duplicate": cluster is not None,
            "minhash": encode_signature(signature(shingles)),
            "shingle_count": len(shingles),
        }
    )


S_WIRE = stored("s-wire", text(WIRE), NOW - timedelta(days=1))
S_COPY = stored("s-copy", COPIES["truncated to 45%"], NOW - timedelta(hours=20), cluster=S_WIRE)
S_OLD = stored("s-old", text(HARBOUR), NOW - timedelta(days=30))
NEW = [
    article("copy-of-wire", COPIES["dropped paragraph"], NOW - timedelta(hours=3)),
    article("copy-of-old", text([*HARBOUR, BOILERPLATE]), NOW - timedelta(hours=3)),
    article("report-a", text(REPORT_A), NOW - timedelta(hours=2)),
    article("report-b", text(REPORT_B), NOW - timedelta(hours=2)),
    article("report-a-copy", text([BYLINE, *REPORT_A]), NOW - timedelta(hours=1)),
    article("short-1", "Live updates to follow.", NOW - timedelta(hours=1)),
    article("short-2", "Live updates to follow.", NOW - timedelta(minutes=30)),
    article("empty", "", None),
]
ID = {a.title: a.article_id for a in [S_WIRE, S_COPY, S_OLD, *NEW]}
EXPECTED = [
    (ID["copy-of-wire"], ID["s-wire"], True),  # joins the earlier run's cluster
    (ID["copy-of-old"], ID["copy-of-old"], False),  # its original is past the horizon
    (ID["report-a"], ID["report-a"], False),
    (ID["report-b"], ID["report-b"], False),
    (ID["report-a-copy"], ID["report-a"], True),  # a copy within the run
    (ID["short-1"], ID["short-1"], False),  # too short to compare
    (ID["short-2"], ID["short-2"], False),
    (ID["empty"], ID["empty"], False),
]


def cluster_of(a: Article) -> tuple[str, str, bool]:
    return a.article_id, a.cluster_id, a.is_duplicate


def signature_shape(a: Article) -> tuple[str, int, bool]:
    return a.article_id, len(a.minhash), a.shingle_count > 0


@pytest.mark.parametrize("order", ["as given", "reversed"])
def test_cluster_stage(tmp_path: Path, order: str) -> None:
    commit_records(tmp_path, ARTICLE_FILES, [S_WIRE, S_COPY, S_OLD])
    # A file written before signatures were stored is skipped, not an error.
    legacy = tmp_path / "articles" / f"dt={S_WIRE.partition_date}" / "part-legacy.parquet"
    pq.write_table(pa.table({"article_id": ["0" * 32], "text": [text(WIRE)]}), legacy)
    inputs = NEW if order == "as given" else list(reversed(NEW))
    with test_pipeline.TestPipeline() as p:
        out = (
            p | beam.Create(inputs) | ClusterNearDuplicates(str(tmp_path), NearDuplicateSettings())
        )
        assert_that(out | "Clusters" >> beam.Map(cluster_of), equal_to(EXPECTED))
        assert_that(
            out | "Signatures" >> beam.Map(signature_shape),
            equal_to(
                [(a.article_id, 0 if a.title == "empty" else 512, a.title != "empty") for a in NEW]
            ),
            label="SignaturesSet",
        )


def test_a_copy_of_a_year_old_story_joins_it_whatever_the_wall_clock(tmp_path: Path) -> None:
    # A backfill: the story and its copy are dated a year before the run.
    year_ago = datetime.now(UTC) - timedelta(days=365)
    original = stored("old-wire", text(WIRE), year_ago)
    commit_records(tmp_path, ARTICLE_FILES, [original])
    copy = article("old-copy", COPIES["dropped paragraph"], year_ago + timedelta(hours=5))
    unrelated = article("old-other", text(HARBOUR), year_ago + timedelta(hours=5))
    with test_pipeline.TestPipeline() as p:
        out = (
            p
            | beam.Create([copy, unrelated])
            | ClusterNearDuplicates(str(tmp_path), NearDuplicateSettings())
        )
        assert_that(
            out | beam.Map(cluster_of),
            equal_to(
                [
                    (copy.article_id, original.article_id, True),
                    (unrelated.article_id, unrelated.article_id, False),
                ]
            ),
        )


def test_only_stored_signatures_sharing_a_band_are_compared(tmp_path: Path) -> None:
    unrelated = stored("s-harbour", text(HARBOUR), NOW - timedelta(days=2))
    commit_records(tmp_path, ARTICLE_FILES, [S_WIRE, S_COPY, unrelated, S_OLD])
    p = test_pipeline.TestPipeline()
    out = p | beam.Create(NEW[:1]) | ClusterNearDuplicates(str(tmp_path), NearDuplicateSettings())
    assert_that(out | beam.Map(cluster_of), equal_to([EXPECTED[0]]))
    result = p.run()
    result.wait_until_finish()

    def counted(name: str) -> int:
        query = result.metrics().query(MetricsFilter().with_name(name))
        return sum(c.committed for c in query["counters"])

    # S_OLD lies outside the horizon and is not read; of the three read, the unrelated
    # story shares no band with the run's article and goes no further.
    assert counted("stored_signatures_read") == 3
    assert counted("stored_signatures_sharing_a_band") == 2
    assert counted("candidate_pairs") == 2


def test_cluster_stage_with_a_short_horizon_forgets_yesterday(tmp_path: Path) -> None:
    commit_records(tmp_path, ARTICLE_FILES, [S_WIRE])
    settings = NearDuplicateSettings(horizon_days=0)
    with test_pipeline.TestPipeline() as p:
        out = p | beam.Create(NEW[:1]) | ClusterNearDuplicates(str(tmp_path), settings)
        assert_that(
            out | beam.Map(cluster_of), equal_to([(NEW[0].article_id, NEW[0].article_id, False)])
        )


# --- end to end, through the command line ------------------------------------------------------


def item(site: str, slug: str, title: str, paragraphs: list[str], published: datetime) -> dict:
    return {
        "title": title,
        "link": f"https://{site}.example/{slug}",
        "paragraphs": paragraphs,
        "published": published,
    }


def write_run(tmp_path: Path, name: str, feeds: dict[str, list[dict]], out: Path) -> Path:
    """A config reading each feed of ``items`` from a file beside it."""
    sources = []
    for feed, items in feeds.items():
        path = tmp_path / f"{feed}.xml"
        path.write_bytes(
            rss_document(
                rss_item(
                    i["title"],
                    i["link"],
                    "".join(f"<p>{p}</p>" for p in i["paragraphs"]),
                    i["published"],
                )
                for i in items
            )
        )
        sources.append(rss_source(feed, str(path)))
    return write_config(tmp_path / f"{name}.yaml", sources, out)


def clusters(out: Path) -> dict[str, tuple[str, bool]]:
    rows = read_articles(out).to_pylist()
    by_url = {r["url"]: r["article_id"] for r in rows}
    name = {v: k for k, v in by_url.items()}
    return {r["url"]: (name[r["cluster_id"]], r["is_duplicate"]) for r in rows}


@pytest.mark.slow
@pytest.mark.parametrize("age_days", [0, 365], ids=["news", "a year-old story"])
def test_copies_cluster_across_runs_and_alert_once(tmp_path: Path, age_days: int) -> None:
    # A year-old story is a backfill or a replay: its copy in a later run still joins it.
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(days=age_days)
    wire = item(
        "wire",
        "nk-shells",
        "North Korea sent shells and missiles to Russia, Seoul says",
        WIRE,
        now - timedelta(hours=6),
    )
    site_copy = item(
        "site",
        "news/seoul-arms",
        "Seoul: Pyongyang arming Moscow",
        [first_words(WIRE, 0.6), BOILERPLATE],
        now - timedelta(hours=5),
    )
    report_a = item(
        "wire",
        "eu-climate",
        "EU leaders agree 2040 climate goal",
        REPORT_A,
        now - timedelta(hours=4),
    )
    report_b = item(
        "site",
        "news/summit-inside",
        "Inside the all-night climate summit",
        REPORT_B,
        now - timedelta(hours=3),
    )
    late_copy = item(
        "site",
        "news/seoul-arms-update",
        "UPDATED: North Korea arms shipments to Russia",
        [BYLINE, *WIRE[:4], *WIRE[5:]],
        now - timedelta(hours=1),
    )
    out = tmp_path / "data"
    first = write_run(
        tmp_path, "run1", {"wire": [wire, report_a], "site": [site_copy, report_b]}, out
    )
    assert main(["run", *IN_PROCESS, "--config", str(first)]) == 0
    W = wire["link"]
    assert clusters(out) == {
        W: (W, False),
        site_copy["link"]: (W, True),
        report_a["link"]: (report_a["link"], False),
        report_b["link"]: (report_b["link"], False),
    }
    alerts = read_jsonl(out, "alerts")
    arms = [a for a in alerts if a["topic"] == "dprk-russia-arms"]
    ids = {r["url"]: r["article_id"] for r in read_articles(out).to_pylist()}
    assert [(a["url"], a["cluster_id"]) for a in arms] == [(W, ids[W])]

    # A later run: the late copy joins the first run's cluster and raises nothing, though
    # it matches the watched topic as well as the wire story does.
    second = write_run(
        tmp_path, "run2", {"wire": [wire, report_a], "site": [site_copy, report_b, late_copy]}, out
    )
    assert main(["run", *IN_PROCESS, "--config", str(second)]) == 0
    sequential = clusters(out)
    assert sequential[late_copy["link"]] == (W, True)
    assert len(sequential) == 5
    assert read_jsonl(out, "alerts") == alerts
    row = next(r for r in read_articles(out).to_pylist() if r["url"] == late_copy["link"])
    assert "dprk-russia-arms" in {t["id"] for t in row["topics"]}
    assert len(row["minhash"]) == 512 and row["shingle_count"] > 200
    if age_days:
        return  # the rest does not depend on the stories' age

    # All five in one run on two worker processes: the same clusters.
    together = tmp_path / "together"
    third = write_run(
        tmp_path,
        "run3",
        {"wire": [wire, report_a], "site": [site_copy, report_b, late_copy]},
        together,
    )
    assert (
        main(
            [
                "run",
                "--config",
                str(third),
                "--direct_running_mode=multi_processing",
                "--direct_num_workers=2",
            ]
        )
        == 0
    )
    assert clusters(together) == sequential
    assert [(a["topic"], a["url"]) for a in read_jsonl(together, "alerts")] == [
        (a["topic"], a["url"]) for a in alerts
    ]


def _reference_clusters(
    signatures: list[Signed], settings: NearDuplicateSettings
) -> tuple[dict[str, str], int, int]:
    """The run's decisions worked out the plain way, as Beam elements once made them: a
    dict of band hashes to members, each bucket sorted by first seen, pairs in a set."""
    by_id: dict[str, Signed] = {}
    for s in signatures:
        if s.comparable(settings.num_perm, settings.min_shingles):
            if s.article_id not in by_id or s.first_seen < by_id[s.article_id].first_seen:
                by_id[s.article_id] = s
    buckets: dict[int, list[Signed]] = {}
    for s in by_id.values():
        for key in band_hashes(decode_signature(s.minhash), settings.rows_per_band).tolist():
            buckets.setdefault(key, []).append(s)
    earlier: dict[str, set[str]] = {}
    for members_ in buckets.values():
        ordered = sorted(members_, key=lambda m: m.first_seen)
        for index, later in enumerate(ordered):
            if later.this_run:
                for e in ordered[: min(index, settings.max_bucket)]:
                    earlier.setdefault(later.article_id, set()).add(e.article_id)
    clusters = {}
    of_earlier_runs = 0
    for later_id, ids in earlier.items():
        near = near_duplicates_of(
            by_id[later_id], [by_id[i] for i in ids], settings.threshold, settings.horizon_days
        )
        decision = decide_cluster(later_id, near)
        if decision.is_duplicate:
            clusters[later_id] = decision.cluster_id
            of_earlier_runs += any(not n.this_run for n in near)
    return clusters, sum(len(ids) for ids in earlier.values()), of_earlier_runs


def _random_run(seed: int) -> list[Signed]:
    """Stories and their copies (some values of the signature changed, sizes varied, so
    containment falls on both sides of the threshold), a boilerplate signature shared by
    many, stored articles (one of them twice), undated ones, short texts."""
    rng = np.random.default_rng(seed)
    out: list[Signed] = []

    def add(key: str, values: np.ndarray, this_run: bool, size: int) -> None:
        day = int(rng.integers(0, 20))
        when = (
            None
            if rng.random() < 0.1
            else T0 + timedelta(days=day, minutes=int(rng.integers(0, 600)))
        )
        cluster = key if this_run else f"story-of-{key}"
        out.append(
            Signed(
                key,
                when,
                this_run,
                cluster,
                encode_signature(values),
                size,
                when.strftime("%Y-%m-%d") if when else "",
            )
        )

    boilerplate = rng.integers(0, 2**32, 128, dtype=np.uint64).astype(np.uint32)
    for story in range(40):
        base = rng.integers(0, 2**32, 128, dtype=np.uint64).astype(np.uint32)
        for copy in range(int(rng.integers(1, 6))):
            values = base.copy()
            changed = rng.choice(128, int(rng.integers(0, 100)), replace=False)
            values[changed] = rng.integers(0, 2**32, changed.size, dtype=np.uint64)
            add(f"a{story}-{copy}", values, bool(rng.random() < 0.7), int(rng.integers(5, 400)))
    for n in range(30):
        add(f"boiler-{n}", boilerplate, bool(rng.random() < 0.8), int(rng.integers(50, 60)))
    twice = out[0]
    out.append(dataclasses.replace(twice, this_run=False, published_at=T0 - timedelta(days=1)))
    out.append(Signed("other-length", T0, True, "other-length", b"\0" * 64, 100, "2026-01-01"))
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("cap", [3, 50])
def test_the_run_is_decided_as_bucket_by_bucket_pairs_would(seed: int, cap: int) -> None:
    signatures = _random_run(seed)
    settings = NearDuplicateSettings(max_bucket=cap, horizon_days=7)
    expected, checked, of_earlier_runs = _reference_clusters(signatures, settings)
    outcome = cluster_run(signatures, settings)
    assert {k: d.cluster_id for k, d in outcome.duplicates.items()} == expected
    assert all(d.is_duplicate for d in outcome.duplicates.values())
    assert outcome.candidate_pairs == checked
    assert outcome.of_earlier_runs == of_earlier_runs
    # The case is not trivial: copies join stored stories and articles of the run.
    assert any(c.startswith("story-of-") for c in expected.values())
    assert any(not c.startswith("story-of-") for c in expected.values())
