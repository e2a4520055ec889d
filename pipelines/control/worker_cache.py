"""Heavy objects (the spaCy pipelines) that a worker process keeps between the DoFn
instances that use them.

Most runners set a DoFn up once per worker thread and reuse it for bundle after bundle.
Beam's DaskRunner sets up a fresh copy for every partition of the data, and a run has a
dozen partitions or more after its joins: loading spaCy (about 3 s) in each ``setup`` cost
more than the analysis. A DoFn takes its object from here in ``setup``, loading it only
when none is idle, and gives it back in ``teardown``. One object is never used by two
threads at once (spaCy pipelines are not safe to share between threads), and on every
runner a worker loads at most as many as it runs at the same time.

A worker process may also load an object ahead of the DoFn that will take it
(``preload``): a local worker loads the model while the run is still planning and reading,
and the stage's first ``take`` waits for that load instead of starting its own.

Objects belong to one ``token`` (what they are made of, e.g. a hash of the settings they
are loaded from): a worker that serves pass after pass of a run keeps them from one pass to
the next, and taking another token drops the idle objects of the last, so a long-lived
worker holds only the newest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["WorkerCache"]

T = TypeVar("T")


class WorkerCache(Generic[T]):
    """Idle loaded objects of one token, shared by the threads of this process.

    >>> cache: WorkerCache[list[int]] = WorkerCache()
    >>> first = cache.take("run-1", list)
    >>> cache.give_back("run-1", first)
    >>> cache.take("run-1", list) is first
    True
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._token: str | None = None
        self._idle: list[T] = []
        self._preloading = 0  # preloads of ``_token`` in progress

    def take(self, token: str, load: Callable[[], T]) -> T:
        """An idle object of ``token`` (waiting for one being preloaded), else a new one from
        ``load()`` (outside the lock: other threads need not wait for a load)."""
        with self._lock:
            self._switch_to(token)
            self._lock.wait_for(lambda: self._idle or not self._preloading or token != self._token)
            if self._idle and token == self._token:
                return self._idle.pop()
        return load()

    def preload(self, token: str, load: Callable[[], T]) -> None:
        """Load an object of ``token`` for a later ``take``. If the load fails, the ``take``
        loads again itself, and its DoFn reports the error where the run will see it."""
        with self._lock:
            self._switch_to(token)
            self._preloading += 1
        item: T | None = None
        try:
            item = load()
        except Exception:  # noqa: BLE001, S110 - reported by the take that loads again
            pass
        finally:
            with self._lock:
                if token == self._token:
                    self._preloading -= 1
                    if item is not None:
                        self._idle.append(item)
                self._lock.notify_all()

    def give_back(self, token: str, item: T) -> None:
        """``item`` is idle again; kept only while ``token`` is the newest."""
        with self._lock:
            if token == self._token:
                self._idle.append(item)
                self._lock.notify_all()

    def _switch_to(self, token: str) -> None:
        if token != self._token:
            self._token = token
            self._idle = []
            self._preloading = 0
