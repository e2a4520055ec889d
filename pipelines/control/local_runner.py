"""The runner of a multi-process run on this machine: Beam's FnApiRunner (what the
DirectRunner uses for batch) with SDK workers started by ``worker_process``, which die with
the run (a run killed with SIGKILL leaves no worker behind to commit after it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.runner import PipelineRunner
from apache_beam.transforms.environments import Environment, SubprocessSDKEnvironment

from newswatch.pipelines.control.worker_process import command_line

__all__ = ["LocalWorkersRunner", "new_pipeline", "runner_for"]


class LocalWorkersRunner(fn_runner.FnApiRunner):
    """FnApiRunner whose workers are newswatch's worker processes.

    In ``multi_processing`` mode ``FnApiRunner.run_pipeline`` replaces the runner's default
    environment with one that starts Beam's own worker module; the environment here cannot
    be replaced, so the workers it starts are always ours (same harness, same protocol).
    """

    def __init__(self) -> None:
        self._workers = SubprocessSDKEnvironment.from_command_string(command_line(os.getpid()))
        super().__init__()

    @property  # type: ignore[override]
    def _default_environment(self) -> Environment:
        return self._workers

    @_default_environment.setter
    def _default_environment(self, _beams_own: Environment) -> None:
        pass


def runner_for(options: PipelineOptions) -> PipelineRunner | None:
    """The runner for ``options``: ours when they ask for the DirectRunner's
    ``multi_processing`` mode, else None (Beam's choice from ``--runner``)."""
    runner = options.view_as(StandardOptions).runner
    mode = options.view_as(DirectOptions).direct_running_mode
    if runner in (None, "DirectRunner", "direct") and mode == "multi_processing":
        return LocalWorkersRunner()
    return None


def new_pipeline(beam_args: Sequence[str]) -> beam.Pipeline:
    """A pipeline on the runner ``beam_args`` ask for."""
    options = PipelineOptions(list(beam_args))
    return beam.Pipeline(runner=runner_for(options), options=options)
