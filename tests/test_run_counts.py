"""The summary's counts of a run on a runner without metrics, from its committed report and
its own article files (``commit/run_counts.py``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from articles import make_article
from datasets import EARLIER_RUN, commit_records

from newswatch.connectors.dataset.write import ARTICLE_FILES
from newswatch.pipelines.commit.run_counts import counts_from_report

RUN = "20261130T090000Z-a1a1a1"


def test_counts_follow_from_the_report_and_the_runs_files(tmp_path: Path) -> None:
    stored = [make_article(f"https://wire.example/{i}") for i in range(4)]
    copies = {1, 3}
    commit_records(
        tmp_path,
        ARTICLE_FILES,
        [dataclasses.replace(a, is_duplicate=i in copies) for i, a in enumerate(stored)],
        run_id=RUN,
    )
    # An earlier run's copy is not this run's.
    earlier = dataclasses.replace(make_article("https://wire.example/old"), is_duplicate=True)
    commit_records(tmp_path, ARTICLE_FILES, [earlier], run_id=EARLIER_RUN)
    report = {
        "run_id": RUN,
        # 11 items read (8 from feeds, 3 from Kafka; 2 of them rejected there); 4 stored and
        # 3 rejected (one more by normalization): the other 4 were dropped as duplicates.
        "committed": {"run_id": RUN, "articles": 4, "alerts": 0, "rejected": 3, "files": 2},
        "feeds": [
            {"source": "a", "status": "ok", "entries": 4, "rejected": 1},
            {"source": "b", "status": "ok", "entries": 3, "rejected": 0},
            {"source": "c", "status": "failed", "entries": 0, "rejected": 0},
        ],
        "partitions": [{"source": "k", "partition": 0, "read": 2, "rejected": 1}],
    }
    assert counts_from_report(str(tmp_path), report) == {
        "entries_read": 7,
        "entries_rejected": 1,
        "kafka_messages_read": 2,
        "kafka_messages_rejected": 1,
        "duplicates_dropped": 4,
        "near_duplicates": 2,
    }
