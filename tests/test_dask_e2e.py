"""The whole run on a dask.distributed cluster (``--runner=dask``): a scheduler and two
worker processes started here, the workers importing newswatch from this environment.

Beam's DaskRunner raises no error where a pipeline relies on what it does not do (tagged
outputs kept apart, what ``finish_bundle`` emits, branches that do not lead to the last
step, metrics): it loses data silently. So the same inputs (local RSS feeds and a Kafka
topic, with copies of one story across them) are read by the DirectRunner and by the
cluster, twice (the second run joins with what the first committed), and the stored rows
are counted, besides articles, clusters, alerts, the committed counts and the counts the
summary prints (from the run report: the DaskRunner keeps no metrics). What cannot run
on Dask is refused before any work: the stream, and a run that names no cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from articles import arms_story
from configs import rss_source, write_config
from dask_cluster import LocalDaskCluster
from feeds import stories_feed
from runner_comparison import (
    EXPECTED_ARTICLES,
    EXPECTED_COPIES,
    committed_counts,
    comparable_alerts,
    comparable_articles,
    rerun,
    run_on,
    serve_inputs,
    summary_counts,
)
from servers import LocalHttpServer, respond

from newswatch.pipelines.cli import main
from newswatch.pipelines.cli.broker import Broker
from newswatch.pipelines.run import RunOutcome


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDaskCluster]:
    with LocalDaskCluster(tmp_path_factory.mktemp("dask-cluster"), workers=2) as cluster:
        yield cluster


def on_dask(cluster: LocalDaskCluster) -> list[str]:
    return ["--runner=dask", f"--dask_client_address={cluster.address}"]


def assert_same(dask: tuple[Path, RunOutcome], direct: tuple[Path, RunOutcome]) -> None:
    (dask_out, dask_run), (direct_out, direct_run) = dask, direct
    assert comparable_articles(dask_out).equals(comparable_articles(direct_out))
    alerts = comparable_alerts(dask_out)
    assert alerts and alerts == comparable_alerts(direct_out)
    assert committed_counts(dask_out) == committed_counts(direct_out)
    assert summary_counts(dask_run) == summary_counts(direct_run)
    # Every staged file reached the commit, which moved it and removed the staging folder.
    assert not list((dask_out / "_staging").iterdir())


@pytest.mark.slow
def test_a_dask_cluster_stores_what_the_direct_runner_stores(
    tmp_path: Path, http_server: LocalHttpServer, broker: Broker, dask_cluster: LocalDaskCluster
) -> None:
    topic = serve_inputs(http_server, broker)
    inputs = (http_server, broker.bootstrap, topic)
    direct = run_on([], 1, tmp_path / "direct", *inputs)
    dask = run_on(on_dask(dask_cluster), None, tmp_path / "dask", *inputs)

    articles = comparable_articles(dask[0])
    assert articles.num_rows == EXPECTED_ARTICLES
    assert sum(articles.column("is_duplicate").to_pylist()) == EXPECTED_COPIES
    assert_same(dask, direct)
    assert summary_counts(dask[1])["kafka_messages_read"] == 8

    # Again, with one more copy of the first arms story: every other item is stored
    # already, the copy joins the stored story, and the story has had its alert.
    late = [arms_story(i) for i in (0, 1, 4)]
    http_server.routes["/arms.xml"] = respond(200, stories_feed(late))
    direct = rerun([], 1, tmp_path / "direct")
    dask = rerun(on_dask(dask_cluster), None, tmp_path / "dask")

    articles = comparable_articles(dask[0])
    assert articles.num_rows == EXPECTED_ARTICLES + 1
    assert sum(articles.column("is_duplicate").to_pylist()) == EXPECTED_COPIES + 1
    assert committed_counts(dask[0])[-1]["articles"] == 1
    assert committed_counts(dask[0])[-1]["alerts"] == 0
    assert_same(dask, direct)


@pytest.mark.parametrize(
    ("command", "what"),
    [
        (["stream", "--runner=dask"], "does not run on Dask"),
        (["reprocess", "--runner=dask"], "reprocess does not run on Dask"),
        (["run", "--runner", "dask"], "--dask_client_address"),
    ],
)
def test_what_cannot_run_on_dask_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], what: str
) -> None:
    feed = rss_source("world", "http://127.0.0.1:9/world.xml")
    config = write_config(tmp_path / "nw.yaml", [feed], tmp_path / "data")
    assert main([*command, "--config", str(config)]) == 2
    assert what in capsys.readouterr().err
    assert not (tmp_path / "data").exists(), "not even the run lock was taken"
