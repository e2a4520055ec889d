"""A worker process of a multi-process run on this machine (``worker_pool``): it runs Beam's
own SDK harness for one runner after another, and dies with the process that started it.

Requests come one JSON line at a time on stdin: the endpoints of a runner's worker, as
Beam's external worker pool API gives them. The process connects to that runner, serves
it until the runner closes, says ``done`` on stdout and waits for the next; it ends when
stdin closes. A request may instead carry a warm-up (a pickled callable, e.g. loading the
spaCy model into ``worker_cache``), which runs on a thread of its own while the process
serves the runners of the run's first stages. Its imports (Beam's harness, spaCy) are
done before it first says ``ready``, and what its DoFns keep between runners (the loaded
model, ``worker_cache``) stays.

Such a worker would otherwise outlive a launcher killed with SIGKILL: it finishes the
bundle in hand, and when that bundle is a run's commit it commits Kafka offsets after the
run (and its lock) is gone. Here the kernel kills the worker as soon as its parent dies
(Linux's parent-death signal). Beam's harness also logs its start-up on stderr (a module
imported by Beam calls ``logging.warning`` and so installs a stderr handler); the worker's
records reach the launcher through the Fn API's logging service anyway, and a failed
bundle's error through its response, which is where newswatch reports them.
"""

from __future__ import annotations

import base64
import ctypes
import json
import logging
import os
import pickle
import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any, TextIO

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# What a worker says on stdout to the pool that started it (``worker_pool``).
READY = "ready"
DONE = "done"
WARM_UP = "warm_up"  # the key of a request that is a warm-up, not a runner


def die_with_parent(parent_pid: int) -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies; False where the platform
    has no such request (the worker then lives until it notices its runner is gone)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    # The parent may have died before the request: the signal would then never come.
    if os.getppid() != parent_pid:
        os._exit(1)
    return True


def on_this_machine(url: str) -> str:
    """``url`` with its host replaced by ``localhost``. Beam names its endpoints to an
    external worker by the machine's fully qualified name, which need not resolve; the
    runner listens on every interface, and this worker runs beside it."""
    _, _, port = url.rpartition(":")
    return f"localhost:{port}"


def harness_environment(request: dict[str, str], options_json: str) -> dict[str, str]:
    """What Beam's ``sdk_worker_main`` reads from its environment, for one runner's worker."""
    from apache_beam.portability.api import endpoints_pb2
    from google.protobuf import text_format

    def descriptor(url: str) -> str:
        return text_format.MessageToString(
            endpoints_pb2.ApiServiceDescriptor(url=on_this_machine(url))
        )

    return {
        "CONTROL_API_SERVICE_DESCRIPTOR": descriptor(request["control"]),
        "LOGGING_API_SERVICE_DESCRIPTOR": descriptor(request["logging"]),
        "PIPELINE_OPTIONS": options_json,
        "WORKER_ID": request["worker_id"],
    }


def provisioned_options(request: dict[str, str]) -> str:
    """The runner's pipeline options for this worker, from its provision service (as
    Beam's container boot program gets them), as the JSON ``sdk_worker_main`` reads."""
    import grpc
    from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc
    from google.protobuf import json_format

    with grpc.insecure_channel(on_this_machine(request["provision"])) as channel:
        info = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel).GetProvisionInfo(
            beam_provision_api_pb2.GetProvisionInfoRequest(),
            metadata=[("worker_id", request["worker_id"])],
        )
    return json_format.MessageToJson(info.info.pipeline_options)


def serve_runner(request: dict[str, str]) -> None:
    """Run Beam's SDK harness for one runner's worker until that runner closes."""
    from apache_beam.runners.worker import sdk_worker_main

    environment = harness_environment(request, provisioned_options(request))
    handler, harness, _ = sdk_worker_main.create_harness(environment)
    try:
        harness.run()
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()


def serve(requests: Iterable[str], replies: TextIO) -> None:
    """Serve each runner asked for in ``requests``, saying ``done`` on ``replies`` after each."""
    from newswatch.pipelines.control.memory import release_freed_memory

    for line in requests:
        request: dict[str, Any] = json.loads(line)
        if WARM_UP in request:
            warm_up = pickle.loads(base64.b64decode(request[WARM_UP]))  # noqa: S301 - our launcher's
            threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
            continue
        serve_runner(request)
        # A pass's elements and bundle processors are garbage now; the next pass's runner
        # may be a while coming.
        release_freed_memory()
        replies.write(DONE + "\n")
        replies.flush()


def main() -> None:
    die_with_parent(int(sys.argv[1]))
    # The requests and replies are stdin and stdout; anything else printed goes nowhere.
    replies = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    # A handler on the root logger before Beam is imported: Beam's own start-up records then
    # find one and install no stderr handler. The harness also prints each failed bundle's
    # traceback on stderr; the runner receives that error and the run reports it once.
    logging.getLogger().addHandler(logging.NullHandler())
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    # Warns on every start that no main session was staged: newswatch stages none (its code
    # is an installed package), so the warning says nothing about the run.
    logging.getLogger("apache_beam.runners.worker.sdk_worker_main").setLevel(logging.ERROR)
    import spacy  # noqa: F401 - imported warm, while the launcher plans the first pass
    from apache_beam.runners.worker import sdk_worker_main  # noqa: F401 - imported warm

    replies.write(READY + "\n")
    replies.flush()
    try:
        serve(sys.stdin, replies)
    except Exception as err:  # noqa: BLE001 - one line; the runner says which bundle failed
        print(f"newswatch worker {os.getpid()}: {err}", file=sys.__stderr__)
        sys.exit(1)
    # stdin closed: the run is over. Tearing down an interpreter that holds spaCy takes
    # 0.7 s, which the launcher would wait for.
    os._exit(0)


if __name__ == "__main__":
    main()
