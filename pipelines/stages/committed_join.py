"""The batch form of "once, ever": keyed items joined with the keys already committed.

Exact dedupe (by article id) and one alert per story (by alert key) are both this join:
the run's items grouped by key with the committed keys read back from the dataset, and of
each key's items one kept, by the stage's own ``pick``, unless the key was committed.
The seen-set is the dataset itself, so it holds on any number of workers and runners.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

__all__ = ["OneUnlessCommitted"]

ITEMS = "items"
COMMITTED = "committed"

Pick = Callable[[Iterable[Any], bool], Any]  # (a key's items, committed before) -> one or None


def mark_committed(key: str) -> tuple[str, bool]:
    return key, True


class _PickOneFn(beam.DoFn):
    def __init__(self, pick: Pick, kept: str, dropped: str) -> None:
        self._pick = pick
        self._kept = Metrics.counter(self.__class__, kept)
        self._dropped = Metrics.counter(self.__class__, dropped)

    def process(self, element: tuple[str, dict[str, list]]) -> Iterator[Any]:
        _, grouped = element
        items = list(grouped[ITEMS])
        if not items:
            return
        kept = self._pick(items, bool(grouped[COMMITTED]))
        self._dropped.inc(len(items) - (0 if kept is None else 1))
        if kept is not None:
            self._kept.inc()
            yield kept


class OneUnlessCommitted(beam.PTransform):
    """(key, item) in; per key, the item ``pick`` keeps, none when ``committed`` has the key.

    ``committed`` reads the committed keys (a PTransform applied to the pipeline root);
    ``kept`` and ``dropped`` name the counters of what was kept and what was not.
    """

    def __init__(self, committed: beam.PTransform, pick: Pick, kept: str, dropped: str) -> None:
        super().__init__()
        self._committed = committed
        self._pick = pick
        self._counters = (kept, dropped)

    def expand(self, keyed: beam.PCollection) -> beam.PCollection:
        committed = (
            keyed.pipeline
            | "ReadCommittedKeys" >> self._committed
            | "MarkCommitted" >> beam.Map(mark_committed)
        )
        return (
            {ITEMS: keyed, COMMITTED: committed}
            | "JoinWithCommitted" >> beam.CoGroupByKey()
            | "PickOne" >> beam.ParDo(_PickOneFn(self._pick, *self._counters))
        )
