"""How a bounded run cuts articles into batches for spaCy, with no state between elements.

Beam's ``BatchElements`` buffers a bundle's elements and emits the last, partial batch from
``finish_bundle``; a runner that drops what ``finish_bundle`` emits (Beam's DaskRunner
does) silently loses those articles. Instead a pass's articles are gathered and cut into
batches inside ``process``: right on every runner, and the same batches whatever the
bundles or workers.

The batches are cut to equal work, not equal counts: a worker that draws the long
articles would otherwise still be running spaCy while the others wait for it at the end
of the pass. Their number is a multiple of ``BATCH_MULTIPLE``, so 1, 2, 4 or 8 workers
that each take the same number of batches take the same work.

>>> [len(b) for b in balanced_batches(["word"] * 10, len, 4, multiple=1)]
[4, 3, 3]
>>> [sum(b) for b in balanced_batches([9, 1, 1, 1, 5, 5, 2], int, 4, multiple=2)]
[12, 12]
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["BATCH_MULTIPLE", "balanced_batches"]

T = TypeVar("T")

BATCH_MULTIPLE = 8


def balanced_batches(
    items: Sequence[T], cost: Callable[[T], int], size: int, multiple: int = BATCH_MULTIPLE
) -> list[list[T]]:
    """``items`` in batches of at most ``size`` whose total ``cost`` is as even as it can be
    made greedily; each batch keeps the items' order.

    The batch count is the fewest batches of ``size``, rounded up to a multiple of
    ``multiple`` (never more than one item per batch). The items go, costliest first (ties
    in the given order), to the batch with the least cost so far that has room; so the
    batches differ by at most about one item's cost, and the same items in the same order
    always make the same batches.
    """
    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size}")
    if multiple < 1:
        raise ValueError(f"batch multiple must be at least 1, not {multiple}")
    if not items:
        return []
    count = min(len(items), math.ceil(math.ceil(len(items) / size) / multiple) * multiple)
    room = math.ceil(len(items) / count)
    costs = [cost(item) for item in items]
    order = sorted(range(len(items)), key=lambda i: -costs[i])  # stable: ties keep their order
    members: list[list[int]] = [[] for _ in range(count)]
    open_batches = [(0, batch) for batch in range(count)]  # (cost so far, batch) with room
    for i in order:
        total, batch = heapq.heappop(open_batches)
        members[batch].append(i)
        if len(members[batch]) < room:
            heapq.heappush(open_batches, (total + costs[i], batch))
    return [[items[i] for i in sorted(batch)] for batch in members]
