"""The runner of a multi-process run on this machine: Beam's FnApiRunner (what the
DirectRunner uses for batch) with its workers from ``worker_pool``: processes started once
per run, which serve every pass and die with the run (a run killed with SIGKILL leaves no
worker behind to commit after it).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.portability.portable_runner import JobServiceHandle
from apache_beam.runners.runner import PipelineRunner
from apache_beam.transforms.environments import Environment

from newswatch.pipelines.control.worker_pool import WarmWorkers

__all__ = ["LocalWorkersRunner", "local_workers", "new_pipeline", "runner_for"]


class LocalWorkersRunner(fn_runner.FnApiRunner):
    """FnApiRunner whose workers are newswatch's worker processes.

    In ``multi_processing`` mode ``FnApiRunner.run_pipeline`` replaces the runner's default
    environment with one that starts Beam's own worker module; the environment here cannot
    be replaced, so the workers are always the pool's (same harness, same protocol).
    """

    def __init__(self, workers: WarmWorkers, options: PipelineOptions) -> None:
        self._workers = workers.environment
        # Beam's FnApiRunner provisions its workers with no pipeline options (they run on
        # the SDK's defaults). These workers read them from the provision service, as a job
        # server's do, so that --default_sdk_harness_log_level and the rest apply.
        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        super().__init__(
            provision_info=fn_runner.ExtendedProvisionInfo(
                beam_provision_api_pb2.ProvisionInfo(
                    retrieval_token="unused-retrieval-token", pipeline_options=encoded
                )
            )
        )

    @property  # type: ignore[override]
    def _default_environment(self) -> Environment:
        return self._workers

    @_default_environment.setter
    def _default_environment(self, _beams_own: Environment) -> None:
        pass


def wants_local_workers(options: PipelineOptions) -> bool:
    """Whether ``options`` ask for the DirectRunner's ``multi_processing`` mode."""
    runner = options.view_as(StandardOptions).runner
    mode = options.view_as(DirectOptions).direct_running_mode
    return runner in (None, "DirectRunner", "direct") and mode == "multi_processing"


def runner_for(options: PipelineOptions, workers: WarmWorkers | None) -> PipelineRunner | None:
    """The runner for ``options``: ours on ``workers`` when they ask for the DirectRunner's
    ``multi_processing`` mode, else None (Beam's choice from ``--runner``)."""
    if workers is not None and wants_local_workers(options):
        return LocalWorkersRunner(workers, options)
    return None


@contextmanager
def local_workers(
    beam_args: Sequence[str], warm_up: Callable[[], object] | None = None
) -> Iterator[WarmWorkers | None]:
    """The worker processes for every pipeline of a run on ``beam_args``, if they ask for
    local worker processes (``--direct_num_workers`` of them; all cores when 0), each
    running ``warm_up`` as it starts."""
    options = PipelineOptions(list(beam_args))
    if not wants_local_workers(options):
        yield None
        return
    # As many as the runner will ask for: it reads 0 as one per core.
    count = options.view_as(DirectOptions).direct_num_workers or multiprocessing.cpu_count()
    with WarmWorkers(count, warm_up) as workers:
        yield workers


def new_pipeline(beam_args: Sequence[str], workers: WarmWorkers | None = None) -> beam.Pipeline:
    """A pipeline on the runner ``beam_args`` ask for, with ``workers`` when it runs on
    local worker processes."""
    options = PipelineOptions(list(beam_args))
    if workers is None and wants_local_workers(options):
        raise ValueError("a multi-process run on this machine needs its workers (local_workers)")
    return beam.Pipeline(runner=runner_for(options, workers), options=options)
