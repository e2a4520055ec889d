"""The SDK worker process of a multi-process local run: Beam's own harness, started so that
it dies with the process that launched it and keeps the terminal quiet.

Beam's DirectRunner starts ``python -m apache_beam.runners.worker.sdk_worker_main`` for each
worker. Such a worker outlives a launcher killed with SIGKILL: it finishes the bundle in
hand, and when that bundle is a run's commit it commits Kafka offsets after the run (and its
lock) is gone. Here the kernel kills the worker as soon as its parent dies (Linux's
parent-death signal). Beam's harness also logs its start-up on stderr (a module imported by
Beam calls ``logging.warning`` and so installs a stderr handler); the worker's records reach
the launcher through the Fn API's logging service anyway, and a failed bundle's error
through its response, which is where newswatch reports them.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shlex
import signal
import sys

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def command_line(launcher_pid: int) -> str:
    """The shell command Beam runs for each worker (``exec``: the worker's parent is then the
    launcher itself, not a shell that would outlive it)."""
    return f"exec {shlex.quote(sys.executable)} -m {__name__} {launcher_pid}"


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


def main() -> None:
    die_with_parent(int(sys.argv[1]))
    # A handler on the root logger before Beam is imported: Beam's own start-up records then
    # find one and install no stderr handler. The harness also prints each failed bundle's
    # traceback on stderr; the runner receives that error and the run reports it once.
    logging.getLogger().addHandler(logging.NullHandler())
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    # Warns on every start that no main session was staged: newswatch stages none (its code
    # is an installed package), so the warning says nothing about the run.
    logging.getLogger("apache_beam.runners.worker.sdk_worker_main").setLevel(logging.ERROR)
    from apache_beam.runners.worker import sdk_worker_main

    try:
        sdk_worker_main.main(sys.argv)
    except Exception as err:  # noqa: BLE001 - one line; the runner says which bundle failed
        print(f"newswatch worker {os.getpid()}: {err}", file=sys.__stderr__)
        sys.exit(1)
    # The harness has returned: every bundle's outputs are written and reported, the DoFns
    # torn down, its log handler flushed. Tearing down an interpreter that holds spaCy
    # takes 0.7 s, which the runner waits for at the end of every pass, one worker after
    # the other.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
