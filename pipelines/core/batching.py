"""How a bounded run cuts articles into batches for spaCy, with no state between elements.

Beam's ``BatchElements`` buffers a bundle's elements and emits the last, partial batch from
``finish_bundle``; a runner that drops what ``finish_bundle`` emits (Beam's DaskRunner
does) silently loses those articles. Instead each article is keyed by a bucket of its id,
the buckets are grouped, and each bucket is cut into batches inside ``process``: right on
every runner, and the same batches whatever the bundles or workers.

>>> bucket_of("3f2a9c", 32) == bucket_of("3f2a9c", 32)
True
>>> [len(b) for b in in_batches(list(range(10)), 4)]
[4, 3, 3]
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator, Sequence
from typing import TypeVar

__all__ = ["bucket_of", "in_batches"]

T = TypeVar("T")


def bucket_of(key: str, buckets: int) -> int:
    """A bucket in ``range(buckets)`` for ``key``, the same in every process (the built-in
    ``hash`` of a string differs from one Python process to the next)."""
    return zlib.crc32(key.encode("utf-8")) % buckets


def in_batches(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """``items`` in order, cut into the fewest batches of at most ``size``, as even as can
    be (10 items by 4: 4, 3, 3 rather than 4, 4, 2)."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size}")
    count = math.ceil(len(items) / size)
    start = 0
    for i in range(count):
        end = start + math.ceil((len(items) - start) / (count - i))
        yield list(items[start:end])
        start = end
