"""An unbounded clock: one ``Tick`` every ``interval_s`` seconds, until a stop file appears.

It is the one unbounded source of ``newswatch stream``: every tick polls the sources
(``connectors/stream/polling.py``) and lets the window committer close the windows that ended.

    ticks = pipeline | "Ticks" >> Ticks(interval_s=0.5, stop_file="/tmp/nw.stop")
    ticks | beam.Map(print)   # Tick(at=1795878196.5, final=False), every half second

Each tick's element timestamp is its due time; ticks missed while the pipeline was busy
are skipped, not bunched. When ``stop_file`` exists, one last tick with ``final=True`` is
emitted and the source ends, so the pipeline finishes (a drain, not a cancel).

Why not ``PeriodicImpulse``: on the DirectRunner (FnApiRunner, which runs a streaming
pipeline made of element-wise and stateful steps) it defers its restriction without
waiting, and the runner re-invokes it at once: ~190 empty bundles a second, half a core
busy doing nothing. This DoFn sleeps until the tick is due instead, so each bundle is one
tick. It also has no way to stop cleanly, which a drain on SIGTERM needs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

__all__ = ["Tick", "Ticks"]

# The restriction of the one element: tick numbers, never exhausted in practice.
_ENDLESS = 2**62


@dataclass(frozen=True)
class Tick:
    """A moment of the stream clock: ``at`` in seconds since the epoch (UTC)."""

    at: float
    final: bool = False


class _TickRange(RestrictionProvider):
    def initial_restriction(self, element: float) -> OffsetRange:
        return OffsetRange(0, _ENDLESS)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def restriction_size(self, element: float, restriction: OffsetRange) -> int:
        return 1

    def truncate(self, element: float, restriction: OffsetRange) -> None:
        return None  # a drained pipeline emits no more ticks


# The DoFn parameters of the splittable process(), declared once (Beam reads the defaults).
_TICK_NUMBERS = beam.DoFn.RestrictionParam(_TickRange())
_WATERMARK = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())


class _TickFn(beam.DoFn):
    """Splittable: claims one tick number per invocation, then defers the rest."""

    def __init__(self, interval_s: float, stop_file: str | None) -> None:
        self._interval = interval_s
        self._stop_file = stop_file

    @beam.DoFn.unbounded_per_element()
    def process(
        self,
        start: float,
        tracker: Any = _TICK_NUMBERS,
        watermark: Any = _WATERMARK,
    ) -> Iterator[TimestampedValue]:
        index = tracker.current_restriction().start
        due = start + index * self._interval
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        else:
            # Behind (a slow bundle): skip to the latest tick that is due.
            index = max(index, int((time.time() - start) // self._interval))
            due = start + index * self._interval
        if self._stop_file is not None and os.path.exists(self._stop_file):
            if tracker.try_claim(_ENDLESS - 1):
                now = max(time.time(), due)
                watermark.set_watermark(Timestamp.of(now))
                yield TimestampedValue(Tick(now, final=True), now)
            return
        if not tracker.try_claim(index):
            return
        watermark.set_watermark(Timestamp.of(due))
        yield TimestampedValue(Tick(due), due)
        tracker.defer_remainder()


def start_time(_: bytes) -> float:
    return time.time()


class Ticks(beam.PTransform):
    """An unbounded PCollection of ``Tick``, one every ``interval_s`` seconds.

    Ends after a final tick once ``stop_file`` exists (checked every tick).
    """

    def __init__(self, *, interval_s: float, stop_file: str | None = None) -> None:
        super().__init__()
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._interval = interval_s
        self._stop_file = stop_file

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "Impulse" >> beam.Impulse()
            | "StartTime" >> beam.Map(start_time)
            | "Tick" >> beam.ParDo(_TickFn(self._interval, self._stop_file))
        )
