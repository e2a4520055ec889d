"""The worker processes of a multi-process run on this machine: which runner starts them,
and that they die with the process that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from processes import is_running, wait_for

from newswatch.pipelines.control.local_runner import LocalWorkersRunner, runner_for
from newswatch.pipelines.control.worker_process import command_line


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
def test_multi_processing_on_the_direct_runner_starts_our_workers(
    args: list[str], ours: bool
) -> None:
    runner = runner_for(PipelineOptions(args))
    assert isinstance(runner, LocalWorkersRunner) is ours
    if ours:
        assert runner is not None
        # Beam's multi_processing mode would put its own worker command here.
        runner._default_environment = "replaced"  # type: ignore[assignment]
        assert runner._default_environment.command_string == command_line(os.getpid())


def test_the_worker_command_replaces_the_shell() -> None:
    assert command_line(123).startswith("exec ")
    assert command_line(123).endswith("-m newswatch.pipelines.control.worker_process 123")


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
