"""The worker processes of a multi-process run on this machine, kept from pass to pass.

A run is a sequence of passes, each a Beam pipeline of its own. With a worker process
started per pass, every pass paid for the process, its imports (Beam, spaCy) and the spaCy
model again: about 4 s of a 2,500-article pass (``benchmarks/RESULTS.md``). ``WarmWorkers``
starts the processes once, when the run starts, so their imports overlap the planning of
the first pass, and a warm-up (loading the model) can run in them meanwhile; each pass's
runner asks for workers through Beam's external worker pool API (an EXTERNAL environment,
as Flink and Spark job servers do), and an idle process runs Beam's own SDK harness for it
until that runner closes. The model stays loaded in the
process between passes (``control/worker_cache.py``).

The processes die with the process that started them (``worker_process``), so a run killed
with SIGKILL leaves no worker behind to commit after it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from types import TracebackType

import grpc
from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc
from apache_beam.transforms.environments import ExternalEnvironment

from newswatch.pipelines.control.worker_process import DONE, READY, WARM_UP

__all__ = ["WarmWorkers"]

log = logging.getLogger(__name__)

# How long a runner's request for a worker waits for a process to become idle: the last
# pass's workers finish as soon as their runner closes, well within this.
IDLE_WAIT_S = 120.0


class _Process:
    """One worker process and the pipe it takes its requests from."""

    def __init__(self, pool: WarmWorkers) -> None:
        self._pool = pool
        self._started = threading.Event()
        self.popen: subprocess.Popen[str]
        self._error: OSError | None = None
        # The thread that starts the process lives as long as the process: the kernel's
        # parent-death signal follows the thread that forked, not the whole launcher.
        threading.Thread(target=self._start_and_listen, name="worker-process", daemon=True).start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def _start_and_listen(self) -> None:
        try:
            self.popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "newswatch.pipelines.control.worker_process",
                    str(os.getpid()),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        except OSError as err:
            self._error = err
            return
        finally:
            self._started.set()
        if self._pool._warm_up is not None:
            try:
                self._send({WARM_UP: self._pool._warm_up})
            except OSError:
                pass  # the process is gone already: _listen sees its end
        self._listen()

    def serve(self, request: beam_fn_api_pb2.StartWorkerRequest) -> None:
        """Hand the process one runner's worker: it connects to that runner's endpoints."""
        self._send(
            {
                "worker_id": request.worker_id,
                "control": request.control_endpoint.url,
                "logging": request.logging_endpoint.url,
                "provision": request.provision_endpoint.url,
            }
        )

    def _send(self, request: dict[str, str]) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(json.dumps(request) + "\n")
        self.popen.stdin.flush()

    def _listen(self) -> None:
        # The process says when it is ready for a runner, and again when each runner is done.
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            if line.strip() in (READY, DONE):
                self._pool._idle.put(self)
        self._pool._ended(self)

    def close(self) -> None:
        if self.popen.stdin is not None:
            try:
                self.popen.stdin.close()
            except OSError:
                pass


class _PoolServicer(beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolServicer):
    def __init__(self, pool: WarmWorkers) -> None:
        self._pool = pool

    def StartWorker(  # noqa: N802 - the gRPC method's name
        self, request: beam_fn_api_pb2.StartWorkerRequest, context: object
    ) -> beam_fn_api_pb2.StartWorkerResponse:
        return beam_fn_api_pb2.StartWorkerResponse(error=self._pool._start(request))

    def StopWorker(  # noqa: N802
        self, request: beam_fn_api_pb2.StopWorkerRequest, context: object
    ) -> beam_fn_api_pb2.StopWorkerResponse:
        # A worker stops when its runner closes the control channel; nothing to do here.
        return beam_fn_api_pb2.StopWorkerResponse()


class WarmWorkers:
    """``count`` worker processes for the runners of one run; use as a context manager.

    Each process serves one runner's worker at a time, and a runner asks for at most
    ``count`` (its ``--direct_num_workers``). ``warm_up``, a picklable callable, runs once
    in each process (and in any that replaces one) beside the runners it serves.
    """

    def __init__(self, count: int, warm_up: Callable[[], object] | None = None) -> None:
        if count < 1:
            raise ValueError(f"a worker pool needs at least one process, not {count}")
        self.count = count
        self._warm_up = base64.b64encode(pickle.dumps(warm_up)).decode() if warm_up else None
        self._idle: queue.Queue[_Process] = queue.Queue()
        self._processes: list[_Process] = []
        self._lock = threading.Lock()
        self._closing = False
        self._server: grpc.Server | None = None
        self._address = ""

    def __enter__(self) -> WarmWorkers:
        self._processes = [_Process(self) for _ in range(self.count)]
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.count + 1))
        beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(
            _PoolServicer(self), self._server
        )
        port = self._server.add_insecure_port("localhost:0")
        self._server.start()
        self._address = f"localhost:{port}"
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def environment(self) -> ExternalEnvironment:
        """The Beam environment whose workers these processes are."""
        if not self._address:
            raise RuntimeError("the worker pool is not started")
        return ExternalEnvironment(self._address)

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [p.popen.pid for p in self._processes]

    def close(self) -> None:
        """End the processes (each finishes the runner it serves first) and the service."""
        with self._lock:
            self._closing = True
            processes = list(self._processes)
        if self._server is not None:
            self._server.stop(grace=None)
        for process in processes:
            process.close()
        for process in processes:
            try:
                process.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()

    def _start(self, request: beam_fn_api_pb2.StartWorkerRequest) -> str:
        """Give the runner's worker to an idle process; an error message if none is."""
        deadline = time.monotonic() + IDLE_WAIT_S
        while True:
            if self._closing:
                return "the run's worker processes are closing"
            if time.monotonic() > deadline:
                return f"no worker process became idle in {IDLE_WAIT_S:.0f} s"
            try:
                process = self._idle.get(timeout=1.0)
            except queue.Empty:
                continue
            if process.popen.poll() is None:
                break
        try:
            process.serve(request)
        except OSError as err:
            return f"worker process {process.popen.pid} did not take the request: {err}"
        return ""

    def _ended(self, process: _Process) -> None:
        """A process ended: at the close, or unexpectedly (killed, crashed), when a new one
        takes its place so that later passes still have ``count`` workers."""
        with self._lock:
            if self._closing or process not in self._processes:
                return
            log.warning(
                "worker process %d ended (exit code %s); starting another",
                process.popen.pid,
                process.popen.wait(),
            )
            self._processes[self._processes.index(process)] = _Process(self)
