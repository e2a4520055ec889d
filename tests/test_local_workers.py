"""The worker processes of a multi-process run on this machine: which runner uses them, that
they serve pipeline after pipeline, and that they die with the process that started them."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from processes import is_running, wait_for

from newswatch.pipelines.control.config import load_config
from newswatch.pipelines.control.local_runner import LocalWorkersRunner, new_pipeline, runner_for
from newswatch.pipelines.control.worker_pool import WarmWorkers
from newswatch.pipelines.control.worker_process import on_this_machine
from newswatch.pipelines.stages.analyse import _AnalyseBatchFn, analyser_warm_up


@pytest.fixture(scope="module")
def pool() -> Iterator[WarmWorkers]:
    with WarmWorkers(2) as workers:
        yield workers


@pytest.mark.parametrize(
    ("args", "ours"),
    [
        (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], True),
        (["--runner=DirectRunner", "--direct_running_mode=multi_processing"], True),
        (["--direct_running_mode=in_memory"], False),
        ([], False),
        (["--runner=PortableRunner", "--direct_running_mode=multi_processing"], False),
    ],
)
def test_multi_processing_on_the_direct_runner_runs_on_the_pool(
    args: list[str], ours: bool, pool: WarmWorkers
) -> None:
    runner = runner_for(PipelineOptions(args), pool)
    assert isinstance(runner, LocalWorkersRunner) is ours
    if ours:
        assert runner is not None
        # Beam's multi_processing mode would put its own worker command here.
        runner._default_environment = "replaced"  # type: ignore[assignment]
        assert runner._default_environment.url == pool.environment.url


def test_a_multi_process_pipeline_needs_its_workers() -> None:
    with pytest.raises(ValueError, match="needs its workers"):
        new_pipeline(["--direct_running_mode=multi_processing", "--direct_num_workers=2"])


TWO_WORKERS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def _run_on(pool: WarmWorkers, values: list[str], fn: Callable[[str], None], *options: str) -> None:
    pipeline = new_pipeline([*TWO_WORKERS, *options], pool)
    _ = pipeline | beam.Create(values) | beam.Reshuffle() | beam.Map(fn)
    pipeline.run().wait_until_finish()


def _remember(folder: str) -> Callable[[str], None]:
    def remember(value: str) -> None:
        # What a DoFn keeps in its worker process between pipelines (as the spaCy model in
        # worker_cache), and a file naming the process that saw the value.
        import newswatch.pipelines.control.worker_cache as kept

        seen = kept.__dict__.setdefault("_test_seen", [])
        seen.append(value)
        Path(folder, f"{os.getpid()}-{value}").write_text(" ".join(seen))

    return remember


def test_the_pool_serves_pipeline_after_pipeline_in_the_same_processes(
    pool: WarmWorkers, tmp_path: Path
) -> None:
    pids = set(pool.pids)
    first = [f"a{n}" for n in range(20)]
    second = [f"b{n}" for n in range(20)]
    _run_on(pool, first, _remember(str(tmp_path)))
    _run_on(pool, second, _remember(str(tmp_path)))
    seen_by = {name.split("-", 1)[1]: int(name.split("-", 1)[0]) for name in os.listdir(tmp_path)}
    assert sorted(seen_by) == sorted(first + second)
    assert set(seen_by.values()) <= pids
    assert set(pool.pids) == pids
    # A process of the second pipeline still held what it kept in the first.
    kept = [(tmp_path / f"{pid}-{value}").read_text().split() for value, pid in seen_by.items()]
    assert any(
        any(v.startswith("a") for v in words) and words[-1].startswith("b") for words in kept
    )


def _log_level(folder: str) -> Callable[[str], None]:
    def log_level(value: str) -> None:
        import logging

        Path(folder, value).write_text(str(logging.getLogger().level))

    return log_level


def test_the_workers_run_with_the_pipelines_options(pool: WarmWorkers, tmp_path: Path) -> None:
    # Beam's own FnApiRunner gives its workers no options; ours read them when provisioned.
    _run_on(pool, ["x", "y"], _log_level(str(tmp_path)), "--default_sdk_harness_log_level=ERROR")
    assert {p.read_text() for p in tmp_path.iterdir()} == {str(logging.ERROR)}
    _run_on(pool, ["z"], _log_level(str(tmp_path)), "--default_sdk_harness_log_level=CRITICAL")
    assert (tmp_path / "z").read_text() == str(logging.CRITICAL)


def _analyser_source(folder: str, token: str) -> Callable[[str], None]:
    def analyser_source(value: str) -> None:
        # What the NLP stage's setup would get from its worker's cache, without loading.
        from newswatch.pipelines.stages import analyse

        def load_here() -> object:
            return "loaded by the stage"

        analyser = analyse._LOADED.take(token, load_here)
        source = analyser if isinstance(analyser, str) else type(analyser).__name__
        analyse._LOADED.give_back(token, analyser)
        Path(folder, f"{os.getpid()}-{value}").write_text(source)

    return analyser_source


def test_the_warm_up_loads_the_nlp_stages_pipelines_before_the_stage_needs_them(
    tmp_path: Path,
) -> None:
    config = load_config(None)
    token = _AnalyseBatchFn(config.nlp, config.aliases, config.topics)._token
    warm_up = analyser_warm_up(config.nlp, config.aliases, config.topics)
    with WarmWorkers(2, warm_up) as workers:
        values = [str(n) for n in range(12)]
        _run_on(workers, values, _analyser_source(str(tmp_path), token))
        pids = {int(name.split("-", 1)[0]) for name in os.listdir(tmp_path)}
        assert pids <= set(workers.pids)
    assert len(os.listdir(tmp_path)) == len(values)
    assert {p.read_text() for p in tmp_path.iterdir()} == {"RoutedAnalyser"}


def test_a_worker_process_that_dies_is_replaced(tmp_path: Path) -> None:
    with WarmWorkers(2) as workers:
        victim = workers.pids[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in workers.pids, 30, "the pool to replace the process")
        assert len(workers.pids) == 2
        values = [str(n) for n in range(10)]
        _run_on(workers, values, _remember(str(tmp_path)))
        seen_by = {n.split("-", 1)[1]: int(n.split("-", 1)[0]) for n in os.listdir(tmp_path)}
        assert sorted(seen_by) == sorted(values)
        assert set(seen_by.values()) <= set(workers.pids)
        survivors = workers.pids
    assert not any(is_running(pid) for pid in survivors)


def test_the_worker_processes_end_with_the_pool() -> None:
    with WarmWorkers(2) as workers:
        pids = workers.pids
        assert all(is_running(pid) for pid in pids)
    assert not any(is_running(pid) for pid in pids)


@pytest.mark.parametrize(
    ("url", "local"),
    [("vm.example.org:41231", "localhost:41231"), ("[::1]:5000", "localhost:5000")],
)
def test_workers_reach_their_runner_on_this_machine(url: str, local: str) -> None:
    assert on_this_machine(url) == local


# A parent that starts a child which asks to die with it, prints the child's pid and waits.
PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", (
        "import os, time\\n"
        "from newswatch.pipelines.control.worker_process import die_with_parent\\n"
        "assert die_with_parent(os.getppid())\\n"
        "print('ready', flush=True)\\n"
        "time.sleep(120)\\n"
    )], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\\n"
    print(child.pid, flush=True)
    time.sleep(120)
    """
)


def test_a_worker_dies_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert is_running(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        wait_for(lambda: not is_running(child), 10, "the child to die with its parent")
    finally:
        parent.kill()


GRAPH_BUILDER = textwrap.dedent(
    """
    import dataclasses, sys
    import apache_beam as beam
    from newswatch.pipelines.control.config import load_config
    from newswatch.pipelines.core.installed import check_languages, resolve_model
    from newswatch.pipelines.run import build, plan_run

    config = dataclasses.replace(load_config(None), output=sys.argv[1])
    resolve_model(config.nlp.model)
    check_languages(config.nlp.languages)
    pipeline = beam.Pipeline()
    build(pipeline, config, plan_run(config))
    print(len(pipeline.to_runner_api().components.transforms))
    print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in ("spacy", "thinc"))))
    """
)


def test_the_process_that_builds_the_graph_never_imports_spacy(tmp_path: os.PathLike) -> None:
    # Importing spaCy takes over a second before any worker can start; only workers need it.
    done = subprocess.run(
        [sys.executable, "-c", GRAPH_BUILDER, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    transforms, spacy_modules = done.stdout.split("\n")[:2]
    assert int(transforms) > 100  # the whole graph was built and translated
    assert spacy_modules == ""
