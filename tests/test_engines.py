"""Which runner and how many workers a run uses: the user's Beam options win, else all cores."""

from __future__ import annotations

from pathlib import Path

import pytest

from newswatch.pipelines.control import engines
from newswatch.pipelines.control.engines import (
    DASK_RUNNER,
    default_workers,
    engine_options,
    engine_problem,
)

QUIET = "--default_sdk_harness_log_level=CRITICAL"


@pytest.mark.parametrize(
    ("beam_args", "workers", "expected"),
    [
        ([], 1, ["--direct_running_mode=in_memory", "--direct_num_workers=1"]),
        ([], 3, ["--direct_running_mode=multi_processing", "--direct_num_workers=3", QUIET]),
        # What the user chose is passed on untouched, --workers or not.
        (["--direct_num_workers=4"], 2, ["--direct_num_workers=4"]),
        (["--direct_running_mode=in_memory"], None, ["--direct_running_mode=in_memory"]),
        (["--runner=PortableRunner", "--job_endpoint=embed"], 2, None),
        (["--runner", "DirectRunner"], None, ["--runner", "DirectRunner"]),
        # Beam's DaskRunner has no short name of its own.
        (
            ["--runner=dask", "--dask_client_address=tcp://10.0.0.5:8786"],
            2,
            [f"--runner={DASK_RUNNER}", "--dask_client_address=tcp://10.0.0.5:8786"],
        ),
        (["--runner", "DaskRunner"], None, ["--runner", DASK_RUNNER]),
        ([f"--runner={DASK_RUNNER}"], None, [f"--runner={DASK_RUNNER}"]),
        # The user's worker log level is kept.
        (
            ["--default_sdk_harness_log_level=DEBUG"],
            2,
            [
                "--default_sdk_harness_log_level=DEBUG",
                "--direct_running_mode=multi_processing",
                "--direct_num_workers=2",
            ],
        ),
    ],
)
def test_engine_options(beam_args: list[str], workers: int | None, expected: list[str]) -> None:
    if expected is None:
        expected = beam_args
    assert engine_options(beam_args, workers) == expected


@pytest.mark.parametrize(
    ("beam_args", "problem"),
    [
        ([], None),
        (["--runner=PortableRunner"], None),
        ([f"--runner={DASK_RUNNER}", "--dask_client_address=tcp://10.0.0.5:8786"], None),
        ([f"--runner={DASK_RUNNER}", "--dask_scheduler_file", "/shared/scheduler.json"], None),
        ([f"--runner={DASK_RUNNER}"], "needs the scheduler of a running cluster"),
    ],
)
def test_a_run_on_dask_names_its_cluster(beam_args: list[str], problem: str | None) -> None:
    found = engine_problem(beam_args)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_without_options_every_usable_core_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "usable_cores", lambda: 6)
    monkeypatch.setattr(engines, "available_memory_bytes", lambda: 64 << 30)
    assert default_workers() == 6
    assert engine_options([], None)[:2] == [
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=6",
    ]


def test_workers_are_capped_by_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "usable_cores", lambda: 16)
    monkeypatch.setattr(engines, "available_memory_bytes", lambda: 4 << 30)
    assert default_workers() == 3  # a GiB for the runner process, a GiB per worker
    monkeypatch.setattr(engines, "available_memory_bytes", lambda: 1 << 29)
    assert default_workers() == 1
    monkeypatch.setattr(engines, "available_memory_bytes", lambda: None)
    assert default_workers() == 16


def test_one_core_runs_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "usable_cores", lambda: 1)
    assert engine_options([], None) == [
        "--direct_running_mode=in_memory",
        "--direct_num_workers=1",
    ]


def test_workers_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        engine_options([], 0)


@pytest.mark.parametrize(
    ("cpu_max", "memory_max", "memory_current", "cores", "memory"),
    [
        ("max 100000", "max", "0", 8, 20 << 30),
        ("200000 100000", "max", "0", 2, 20 << 30),
        ("150000 100000", None, None, 2, 20 << 30),  # 1.5 CPUs: two processes share them
        (None, str(2 << 30), str(512 << 20), 8, (2 << 30) - (512 << 20)),  # a Kubernetes limit
        ("garbage", "garbage", None, 8, 20 << 30),
    ],
)
def test_a_containers_limits_bound_cores_and_memory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cpu_max: str | None,
    memory_max: str | None,
    memory_current: str | None,
    cores: int,
    memory: int,
) -> None:
    for name, value in (
        ("cpu.max", cpu_max),
        ("memory.max", memory_max),
        ("memory.current", memory_current),
    ):
        if value is not None:
            (tmp_path / name).write_text(value + "\n", "ascii")
    monkeypatch.setattr(engines, "CGROUP", tmp_path)
    monkeypatch.setattr(engines.os, "sched_getaffinity", lambda pid: set(range(8)))
    real_read_lines = engines._read_lines

    def meminfo(path: Path) -> list[str]:
        if str(path) == "/proc/meminfo":
            return ["MemTotal: 33554432 kB", f"MemAvailable: {20 << 20} kB"]
        return real_read_lines(path)

    monkeypatch.setattr(engines, "_read_lines", meminfo)
    assert engines.usable_cores() == cores
    assert engines.available_memory_bytes() == memory


def test_a_two_gib_container_runs_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Kubernetes CronJob's limit (deploy/kubernetes/cronjob.yaml): no room for workers."""
    (tmp_path / "memory.max").write_text(str(2 << 30), "ascii")
    (tmp_path / "memory.current").write_text(str(100 << 20), "ascii")
    monkeypatch.setattr(engines, "CGROUP", tmp_path)
    monkeypatch.setattr(engines, "usable_cores", lambda: 8)
    assert default_workers() == 1
