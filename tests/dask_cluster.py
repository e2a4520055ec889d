"""A real dask.distributed cluster on this machine: a scheduler and worker processes, each
started as ``dask scheduler`` / ``dask worker`` from this environment (so the workers
import newswatch as deployed workers do), on 127.0.0.1, and stopped afterwards.

    with LocalDaskCluster(tmp_path, workers=2) as cluster:
        main(["run", "--runner=dask", f"--dask_client_address={cluster.address}"])
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from newswatch.pipelines.cli.broker import free_port

DASK = str(Path(sys.executable).with_name("dask"))
START_S = 60.0


class LocalDaskCluster:
    def __init__(self, folder: Path, workers: int = 2) -> None:
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self._folder = folder
        self._workers = workers
        self._processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> LocalDaskCluster:
        self._folder.mkdir(parents=True, exist_ok=True)
        try:
            port = self.address.rsplit(":", 1)[1]
            self._start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", port)
            for i in range(self._workers):
                # One single-threaded process each, no nanny: the processes are the workers.
                self._start(
                    f"worker-{i}", "worker", self.address, "--host", "127.0.0.1",
                    "--nworkers", "1", "--nthreads", "1", "--no-nanny",
                    "--local-directory", str(self._folder / f"worker-{i}"),
                )  # fmt: skip
            self._wait_for_workers()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self, name: str, *args: str) -> None:
        with (self._folder / f"{name}.log").open("wb") as log:
            self._processes.append(
                subprocess.Popen(
                    [DASK, *args, "--no-dashboard"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._folder,
                )
            )

    def _wait_for_workers(self) -> None:
        from distributed import Client

        with Client(self.address, timeout=START_S) as client:
            client.wait_for_workers(self._workers, timeout=START_S)

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self._processes[1:]]

    def log(self, name: str) -> str:
        return (self._folder / f"{name}.log").read_text("utf-8", errors="replace")

    def stop(self) -> None:
        """The workers, then the scheduler: a worker whose scheduler closes under it while
        it closes itself can hang. SIGTERM, then SIGKILL after 20 s."""
        workers, scheduler = self._processes[1:], self._processes[:1]
        for group in (workers, scheduler):
            for process in group:
                if process.poll() is None:
                    process.terminate()
            for process in group:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._processes = []
