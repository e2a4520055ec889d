"""The parts of ``newswatch reprocess`` without a pipeline: articles read back from Arrow,
columns replaced in a stored file, passes, topic change tallies, and the rewrite commit
interrupted after some files were replaced."""

from __future__ import annotations

import dataclasses
import io
import itertools
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from articles import T0, make_article
from datasets import commit_records
from outputs import read_articles

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import ARTICLES, OutputLayout, StagedFile
from newswatch.connectors.dataset.read import StoredFile, stored_article_files
from newswatch.connectors.dataset.rewrite import replace_columns
from newswatch.connectors.dataset.write import ARTICLE_FILES, encode_table
from newswatch.pipelines.commit.manifest import CommitTargets, Manifest, commit, recover
from newswatch.pipelines.commit.rewrite import rewrite_manifest
from newswatch.pipelines.core.topic_changes import NEWLY_MATCHED, UNCHANGED, TopicChanges
from newswatch.pipelines.reprocess import plan_passes
from newswatch.schemas import Entity, TopicMatch, articles_from_table, articles_to_table

REPROCESS_RUN = "20261130T100000Z-r0r0r0"

FULL = make_article(
    "https://a.example/1",
    published_at=T0,
    language="en",
    authors=("A", "B"),
    entities=(Entity("Pyongyang", "GPE", "North Korea"),),
    topics=(TopicMatch("t", 0.5, ("One sentence.",)),),
    is_duplicate=True,
    minhash=b"\x01\x02\x03\x04",
    shingle_count=7,
)
BARE = make_article("https://a.example/2")


def test_articles_read_back_from_arrow_are_the_articles_written() -> None:
    assert articles_from_table(articles_to_table([FULL, BARE])) == [FULL, BARE]


def test_a_column_a_file_lacks_takes_its_default_and_unknown_columns_are_left_out() -> None:
    table = articles_to_table([FULL]).drop_columns(["minhash", "shingle_count"])
    table = table.append_column("dt", [["2026-11-30"]])
    [article] = articles_from_table(table)
    assert article == dataclasses.replace(FULL, minhash=b"", shingle_count=0)


def test_replace_columns_changes_only_entities_and_topics_in_the_file_order() -> None:
    stored = articles_to_table([FULL, BARE])
    topics = (TopicMatch("new", 0.75, ("Evidence.",)),)
    reanalysed = [dataclasses.replace(BARE, topics=topics), dataclasses.replace(FULL, entities=())]
    after = replace_columns(stored, reanalysed)
    assert after.schema == stored.schema
    for name in stored.column_names:
        if name not in ("entities", "topics"):
            assert after.column(name).equals(stored.column(name)), name
    assert articles_from_table(after) == [
        dataclasses.replace(FULL, entities=()),
        dataclasses.replace(BARE, topics=topics),
    ]


def test_replace_columns_refuses_to_drop_a_row() -> None:
    with pytest.raises(ValueError, match="no re-analysed article"):
        replace_columns(articles_to_table([FULL, BARE]), [FULL])


def test_a_column_unknown_to_the_schema_passes_through_a_rewrite() -> None:
    stored = articles_to_table([FULL]).append_column("later_column", [["kept"]])
    after = replace_columns(stored, [dataclasses.replace(FULL, topics=())])
    assert after.column("later_column").to_pylist() == ["kept"]


@pytest.mark.parametrize(
    ("sizes", "budget", "expected"),
    [
        ([], 10, []),
        ([3, 3, 5, 1], 6, [[0, 1], [2, 3]]),
        ([20, 1, 1], 5, [[0], [1, 2]]),  # a file larger than a pass is a pass of its own
        ([1, 20, 1], 5, [[0], [1], [2]]),
        ([5, 5], 10, [[0, 1]]),
    ],
)
def test_passes_are_whole_files_within_the_budget(
    sizes: list[int], budget: int, expected: list[list[int]]
) -> None:
    stored = [StoredFile(str(i), "2026-11-30", n) for i, n in enumerate(sizes)]
    passes = plan_passes(stored, budget)
    assert [[int(f.path) for f in p] for p in passes] == expected


def test_topic_change_tallies_merge_to_the_same_result_in_any_order() -> None:
    articles = [(["a"], ["a", "b"], f"title {i}") for i in range(5)] + [(["c"], [], "gone")]
    whole = TopicChanges()
    for before, after, title in articles:
        whole.add(before, after, title)
    for split in itertools.permutations(range(3)):
        parts = [TopicChanges() for _ in range(3)]
        for i, (before, after, title) in enumerate(articles):
            parts[split[i % 3]].add(before, after, title)
        merged = TopicChanges()
        for part in parts:
            merged.merge(part)
        assert merged.to_dict() == whole.to_dict()
    assert whole.count("b", NEWLY_MATCHED) == whole.count("a", UNCHANGED) == 5
    assert whole.examples("b", NEWLY_MATCHED) == ["title 0", "title 1", "title 2"]
    assert TopicChanges.from_dict(whole.to_dict()).to_dict() == whole.to_dict()


def stored_dataset(root: Path) -> list[StoredFile]:
    """Six articles in three dt= partitions, committed as a run commits them."""
    days = ["2026-11-01", "2026-11-02", "2026-11-03"]
    articles = [
        make_article(f"https://a.example/{i}", published_at=T0.replace(day=1 + i % 3))
        for i in range(6)
    ]
    commit_records(root, ARTICLE_FILES, articles)
    stored = stored_article_files(str(root))
    assert [f.day for f in stored] == days and sum(f.articles for f in stored) == 6
    return stored


def staged_replacements(root: Path, stored: list[StoredFile]) -> list[StagedFile]:
    """Each stored file again, its articles with topic ``new``, staged as reprocess does."""
    layout = OutputLayout(str(root), REPROCESS_RUN)
    staged = []
    for file in stored:
        table = pq.read_table(io.BytesIO(filesystem.read_file(file.path)))
        new = [
            dataclasses.replace(a, topics=(TopicMatch("new", 0.5),))
            for a in articles_from_table(table)
        ]
        path = layout.staged_path(ARTICLES, file.day, Path(file.path).name)
        filesystem.write_file(path, encode_table(replace_columns(table, new)))
        staged.append(StagedFile(ARTICLES, path, file.path, table.num_rows))
    return staged


def topics_by_id(root: Path) -> dict[str, list[str]]:
    rows = read_articles(root).to_pylist()
    assert len(rows) == len({r["article_id"] for r in rows}) == 6  # each article once
    return {r["article_id"]: [t["id"] for t in r["topics"]] for r in rows}


def test_a_rewrite_cut_after_one_replacement_is_completed_by_recover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = stored_dataset(tmp_path)
    manifest = rewrite_manifest(REPROCESS_RUN, staged_replacements(tmp_path, stored))
    assert len(manifest.replaces) == 3 and manifest.files == ()
    rename = filesystem.move
    renamed: list[str] = []

    def rename_once(source: str, destination: str) -> None:
        """Renames the manifest and one article file, then fails as a killed process stops."""
        if "/articles/" in destination:
            if renamed:
                raise OSError("killed")
            renamed.append(destination)
        rename(source, destination)

    monkeypatch.setattr(filesystem, "move", rename_once)
    with pytest.raises(OSError, match="killed"):
        commit(str(tmp_path), manifest, CommitTargets())
    monkeypatch.setattr(filesystem, "move", rename)
    # Cut there, the dataset has one new file and two old ones: every article once.
    halfway = topics_by_id(tmp_path)
    assert sorted(map(len, halfway.values())) == [0, 0, 0, 0, 1, 1]

    [result] = recover(str(tmp_path), CommitTargets())
    assert result.run_id == REPROCESS_RUN
    assert set(map(tuple, topics_by_id(tmp_path).values())) == {("new",)}
    assert [f.path for f in stored_article_files(str(tmp_path))] == [f.path for f in stored]
    assert not list((tmp_path / "_staging").iterdir())
    # Applying it once more (killed after the last step) changes nothing.
    files = {p: p.read_bytes() for p in sorted(tmp_path.glob("articles/dt=*/*"))}
    commit(str(tmp_path), manifest, CommitTargets())
    assert {p: p.read_bytes() for p in sorted(tmp_path.glob("articles/dt=*/*"))} == files


def test_a_manifest_keeps_its_replacements_and_older_manifests_still_load() -> None:
    replacement = StagedFile(ARTICLES, "/s/a.parquet", "/d/a.parquet", 3)
    manifest = Manifest("r1", files=(), replaces=(replacement,))
    assert Manifest.from_json(manifest.to_json()) == manifest
    older = Manifest("r0", files=(replacement,)).to_json().replace('"replaces": [],', "")
    assert "replaces" not in older
    assert Manifest.from_json(older) == Manifest("r0", files=(replacement,))
