"""The stream's sender: a thread that drains the outbox while ``newswatch stream`` runs.

The stream's windows queue their alerts as they commit (``commit/windows.py``); this thread
drains the outbox every ``interval_s`` (1 s), so an alert reaches its receivers within a
window and a second of its article. The same drains send each digest when its period
ends, and spikes are looked for every ``spike_every_s``. The drains run beside the
pipeline, never in it: a receiver that is down never delays a window's commit (it delays
the other sinks' alerts by at most its retry wait in one drain, as sinks are drained in
turn).

``stop`` ends the thread: a retry waiting for its backoff gives up at once (the alert stays
in the outbox, as after a crash), then one last drain without retries sends what the
final window queued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from newswatch.pipelines.delivery.after_commit import deliver_committed
from newswatch.pipelines.delivery.sinks import DeliverySink, SpikeSettings

log = logging.getLogger(__name__)


class _Stopping(BaseException):
    """Raised from a backoff sleep when the stream stops; not an ``Exception``, so that
    ``deliver_committed`` does not report it as a delivery error."""


class DeliveryLoop:
    """Drains ``sinks`` on a daemon thread until ``stop``; hold the run lock meanwhile."""

    def __init__(
        self,
        root: str,
        sinks: Sequence[DeliverySink],
        spikes: SpikeSettings | None = None,
        interval_s: float = 1.0,
        spike_every_s: float = 300.0,
    ) -> None:
        self._root = root
        self._sinks = tuple(sinks)
        self._spikes = spikes
        self._interval_s = interval_s
        self._spike_every_s = spike_every_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="newswatch-delivery", daemon=True)

    def start(self) -> None:
        if self._sinks:
            self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop after a last drain without retries; wait at most ``timeout_s`` for it."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _sleep(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise _Stopping

    def _run(self) -> None:
        spikes_checked = float("-inf")
        while not self._stopping.is_set():
            spikes = None
            if (
                self._spikes is not None
                and time.monotonic() - spikes_checked >= self._spike_every_s
            ):
                spikes, spikes_checked = self._spikes, time.monotonic()
            try:
                deliver_committed(self._root, self._sinks, spikes, sleep=self._sleep)
            except _Stopping:
                break
            self._stopping.wait(self._interval_s)
        try:
            deliver_committed(self._root, self._sinks, sleep=self._no_retry)
        except _Stopping:
            log.info("stopped delivering; the rest of the outbox waits for the next start")

    @staticmethod
    def _no_retry(seconds: float) -> None:
        raise _Stopping
