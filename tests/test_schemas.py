"""schemas/: the Arrow schema agrees with the dataclasses, Parquet round trips, alert and rejection JSON."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from newswatch.schemas import (
    ARTICLE_SCHEMA,
    Alert,
    Article,
    Entity,
    Rejection,
    TopicMatch,
    alert_json_schema,
    articles_to_table,
)
from newswatch.schemas.alert import SPIKE_ONLY
from newswatch.schemas.article import ENTITY_TYPE, TOPIC_TYPE

UTC_US = pa.timestamp("us", tz="UTC")


# --- the Arrow schema and the dataclasses -------------------------------------------------------


def arrow_type(hint: Any) -> pa.DataType:
    """The Arrow type a dataclass field's type should have."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType):
        (hint,) = args
    if typing.get_origin(hint) is tuple:
        return pa.list_(arrow_type(args[0]))
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return pa.struct([(f.name, arrow_type(hints[f.name])) for f in dataclasses.fields(hint)])
    return {
        str: pa.string(),
        bool: pa.bool_(),
        float: pa.float64(),
        datetime: UTC_US,
        bytes: pa.binary(),
        int: pa.int32(),
    }[hint]


def is_optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(Article)])
def test_article_column_types_match_the_dataclass(name: str) -> None:
    hint = typing.get_type_hints(Article)[name]
    column = ARTICLE_SCHEMA.field(name)
    assert column.type == arrow_type(hint)
    # a field that may be None must be a nullable column; a plain scalar must not be
    if is_optional(hint):
        assert column.nullable
    elif typing.get_origin(hint) is not tuple:
        assert not column.nullable


def test_nested_types_match_their_dataclasses() -> None:
    assert ENTITY_TYPE == arrow_type(Entity)
    assert TOPIC_TYPE == arrow_type(TopicMatch)


# --- articles_to_table and Parquet -------------------------------------------------------------

FULL = Article(
    article_id="b5b10dd0429e69ac7cfaf0a20b6901c1",
    source="wire",
    url="https://example.org/a",
    title="North Korea\u2013Russia: \U0001f680 \u202eRTL\u202c",
    text="First paragraph.\n\nSecond, with a NUL \x00 and \u00e9.",
    published_at=datetime(2024, 5, 6, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
    ingested_at=datetime(2024, 5, 6, 12, 30, tzinfo=UTC),
    language="en",
    authors=("Jane Doe", "John Roe"),
    entities=(Entity("DPRK", "ORG", "North Korea"), Entity("Kremlin", "ORG", "Russia")),
    topics=(TopicMatch("dprk-russia-arms", 0.75, ("Pyongyang sent shells.", "Moscow paid.")),),
    cluster_id="b5b10dd0429e69ac7cfaf0a20b6901c1",
    is_duplicate=False,
)
MINIMAL = Article(
    article_id="ad8ff9fe9be0a6c10c52d408987ac3be",
    source="kafka-wire",
    url="tag:example.org,2024:1",
    title="",
    text="",
    published_at=None,
    ingested_at=datetime(2024, 5, 7, 0, 0, tzinfo=UTC),
    cluster_id="b5b10dd0429e69ac7cfaf0a20b6901c1",
    is_duplicate=True,
)


def article_from_row(row: dict[str, Any]) -> Article:
    return Article(
        **{
            **row,
            "authors": tuple(row["authors"]),
            "entities": tuple(Entity(**e) for e in row["entities"]),
            "topics": tuple(
                TopicMatch(t["id"], t["score"], tuple(t["evidence"])) for t in row["topics"]
            ),
        }
    )


def test_articles_round_trip_through_parquet(tmp_path: Path) -> None:
    path = tmp_path / "articles.parquet"
    pq.write_table(articles_to_table([FULL, MINIMAL]), path)
    table = pq.read_table(path)
    assert table.schema.equals(ARTICLE_SCHEMA)
    rows = table.to_pylist()
    assert [article_from_row(r) for r in rows] == [FULL, MINIMAL]
    # times come back as UTC instants with their microseconds
    assert rows[0]["published_at"] == datetime(2024, 5, 6, 8, 0, 0, 123456, tzinfo=UTC)
    assert rows[0]["published_at"].utcoffset() == timedelta(0)
    assert rows[1]["published_at"] is None
    assert rows[1]["language"] is None
    assert (rows[1]["authors"], rows[1]["entities"], rows[1]["topics"]) == ([], [], [])
    assert rows[0]["entities"][0] == {"text": "DPRK", "label": "ORG", "canonical": "North Korea"}


def test_no_articles_make_an_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    pq.write_table(articles_to_table([]), path)
    table = pq.read_table(path)
    assert table.num_rows == 0
    assert table.schema.equals(ARTICLE_SCHEMA)


@pytest.mark.parametrize(
    ("published_at", "ingested_at", "date"),
    [
        (
            datetime(2024, 5, 6, 23, 0, tzinfo=UTC),
            datetime(2024, 5, 8, 1, 0, tzinfo=UTC),
            "2024-05-06",
        ),
        (None, datetime(2024, 5, 8, 1, 0, tzinfo=UTC), "2024-05-08"),
    ],
)
def test_article_partition_date(
    published_at: datetime | None, ingested_at: datetime, date: str
) -> None:
    article = dataclasses.replace(MINIMAL, published_at=published_at, ingested_at=ingested_at)
    assert article.partition_date == date


# --- alerts -----------------------------------------------------------------------------------

ALERT = Alert(
    alert_id="0123456789abcdef0123456789abcdef",
    topic="dprk-russia-arms",
    topic_title="North Korea\u2013Russia arms cooperation",
    article_id=FULL.article_id,
    cluster_id=FULL.cluster_id,
    source="wire",
    title="Pyongyang ships shells to Moscow",
    url="https://example.org/a",
    published_at=datetime(2024, 5, 6, 8, 0, tzinfo=UTC),
    score=0.875,
    evidence=("Pyongyang shipped artillery shells to Moscow.",),
    entities=("North Korea", "Russia"),
    created_at=datetime(2024, 5, 6, 12, 30, 5, tzinfo=UTC),
    language="en",
)

VALIDATOR = jsonschema.Draft202012Validator(
    alert_json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


def test_the_alert_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(alert_json_schema())


@pytest.mark.parametrize(
    "alert",
    [
        ALERT,
        dataclasses.replace(ALERT, published_at=None, evidence=(), entities=(), score=0.0),
        dataclasses.replace(ALERT, score=1.0, title="", source=""),
        dataclasses.replace(ALERT, language=None),
    ],
)
def test_alerts_validate_against_the_json_schema(alert: Alert) -> None:
    VALIDATOR.validate(json.loads(alert.to_json()))


def test_alerts_written_before_language_still_validate() -> None:
    record = json.loads(ALERT.to_json())
    del record["language"]
    VALIDATOR.validate(record)
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate({**record, "language": "english"})


def test_alert_json() -> None:
    assert json.loads(ALERT.to_json()) == {
        "alert_id": "0123456789abcdef0123456789abcdef",
        "topic": "dprk-russia-arms",
        "topic_title": "North Korea\u2013Russia arms cooperation",
        "article_id": "b5b10dd0429e69ac7cfaf0a20b6901c1",
        "cluster_id": "b5b10dd0429e69ac7cfaf0a20b6901c1",
        "source": "wire",
        "title": "Pyongyang ships shells to Moscow",
        "url": "https://example.org/a",
        "published_at": "2024-05-06T08:00:00+00:00",
        "score": 0.875,
        "evidence": ["Pyongyang shipped artillery shells to Moscow."],
        "entities": ["North Korea", "Russia"],
        "created_at": "2024-05-06T12:30:05+00:00",
        "kind": "story",
        "language": "en",
    }
    text = ALERT.to_json()
    assert "\u2013" in text  # not escaped
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert "\n" not in text  # one JSON Lines record
    assert (
        json.loads(dataclasses.replace(ALERT, published_at=None).to_json())["published_at"] is None
    )
    assert ALERT.partition_date == "2024-05-06"


def test_every_alert_field_is_in_the_schema_and_every_required_key_is_written() -> None:
    schema = alert_json_schema()
    written = set(ALERT.to_dict())
    # A story alert leaves out the fields only spike alerts carry.
    assert written == set(schema["properties"]) - set(SPIKE_ONLY)
    assert set(schema["required"]) <= written


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"alert_id": "not-a-hash"}, "does not match"),
        ({"article_id": "0123456789ABCDEF0123456789ABCDEF"}, "does not match"),
        ({"score": 1.5}, "greater than the maximum"),
        ({"score": -0.1}, "less than the minimum"),
        ({"topic": ""}, "should be non-empty"),
        ({"entities": ("Russia", "Russia")}, "non-unique"),
    ],
)
def test_the_schema_rejects_bad_alerts(changes: dict[str, Any], problem: str) -> None:
    record = json.loads(dataclasses.replace(ALERT, **changes).to_json())
    errors = list(VALIDATOR.iter_errors(record))
    assert len(errors) == 1
    assert problem in errors[0].message


def test_the_schema_rejects_unknown_and_missing_keys() -> None:
    record = json.loads(ALERT.to_json())
    assert not VALIDATOR.is_valid({**record, "extra": 1})
    del record["created_at"]
    assert not VALIDATOR.is_valid(record)


# --- rejections -------------------------------------------------------------------------------


def test_rejection_json() -> None:
    rejection = Rejection(
        source="wire",
        reason="empty_text",
        detail="the item has neither a title nor any text \u2013 caf\u00e9",
        rejected_at=datetime(2024, 5, 6, 10, 0, tzinfo=UTC),
        locator={"origin": "https://example.org/rss.xml", "entry": 3},
        raw=b"\xff\x00{",
    )
    assert rejection.to_json() == (
        '{"detail": "the item has neither a title nor any text \u2013 caf\u00e9", "entry": 3, '
        '"origin": "https://example.org/rss.xml", "raw_base64": "/wB7", "reason": "empty_text", '
        '"rejected_at": "2024-05-06T10:00:00+00:00", "source": "wire"}'
    )


@pytest.mark.parametrize(
    ("raw", "encoded"), [(None, None), (b"", ""), (b'{"a": 1}', "eyJhIjogMX0=")]
)
def test_rejection_raw_bytes(raw: bytes | None, encoded: str | None) -> None:
    rejection = Rejection("wire", "bad_json", "d", datetime(2024, 5, 6, tzinfo=UTC), raw=raw)
    assert json.loads(rejection.to_json()) == {
        "source": "wire",
        "reason": "bad_json",
        "detail": "d",
        "rejected_at": "2024-05-06T00:00:00+00:00",
        "raw_base64": encoded,
    }


def test_every_alert_field_survives_its_json() -> None:
    # The outbox stores alerts as JSON and sends what it reads back: nothing may drop out.
    story = dataclasses.replace(ALERT, language="ru")
    assert all(
        getattr(story, f.name) is not None
        for f in dataclasses.fields(story)
        if f.name not in SPIKE_ONLY
    )
    assert Alert.from_dict(json.loads(story.to_json())) == story
