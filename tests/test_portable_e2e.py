"""The whole run on Beam's portable runner: the job API and proto translation Flink, Spark and
Dataflow go through, with an embedded job service and the SDK harness in this process.

Same inputs (local RSS feeds and a Kafka topic, with copies of one story across them) read
by the DirectRunner and by the ``PortableRunner``; articles, clusters, alerts and the
committed counts must be the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from runner_comparison import (
    EXPECTED_ARTICLES,
    EXPECTED_COPIES,
    committed_counts,
    comparable_alerts,
    comparable_articles,
    run_on,
    serve_inputs,
)
from servers import LocalHttpServer

from newswatch.pipelines.cli.broker import Broker

pytestmark = pytest.mark.slow

PORTABLE = ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"]


def test_the_portable_runner_gives_what_the_direct_runner_gives(
    tmp_path: Path, http_server: LocalHttpServer, broker: Broker
) -> None:
    topic = serve_inputs(http_server, broker)
    inputs = (http_server, broker.bootstrap, topic)
    direct, _ = run_on([], 1, tmp_path / "direct", *inputs)
    portable, _ = run_on(PORTABLE, None, tmp_path / "portable", *inputs)

    articles = comparable_articles(direct)
    assert articles.num_rows == EXPECTED_ARTICLES
    copies = [r for r in articles.to_pylist() if r["is_duplicate"]]
    assert len(copies) == EXPECTED_COPIES, "the Kafka copies join the clusters of the RSS stories"
    assert comparable_articles(portable).equals(articles)
    alerts = comparable_alerts(direct)
    assert alerts and comparable_alerts(portable) == alerts
    assert committed_counts(portable) == committed_counts(direct)
