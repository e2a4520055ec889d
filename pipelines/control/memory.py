"""How the processes of a run give memory back to the system.

A run executes pass after pass in one process, with worker processes that serve them all. Two
allocators keep what a pass freed unless told otherwise: glibc, which gives each thread
that allocates (the DirectRunner's and gRPC's many) an arena of its own, and Arrow's
default pool (jemalloc or mimalloc), behind every Parquet file read and written. Over
passes of 2,500 articles the runner process grew by about 180 MiB a pass; with two arenas
and the system allocator for Arrow, by about 40 MiB (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import ctypes
import gc
import os

__all__ = ["ARENAS", "keep_memory_compact", "release_freed_memory"]

ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number for MALLOC_ARENA_MAX (glibc malloc.h)


def keep_memory_compact() -> None:
    """Bounds glibc's arenas and puts Arrow on the system allocator, in this process and
    (through the environment) in the worker processes it starts.

    Called by the commands that run pipelines, before their first pass. Settings already in
    the environment win, so ``MALLOC_ARENA_MAX`` or ``ARROW_DEFAULT_MEMORY_POOL`` set by the
    user or the container are kept. Without glibc only Arrow's pool changes.
    """
    os.environ.setdefault("MALLOC_ARENA_MAX", str(ARENAS))
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, int(os.environ["MALLOC_ARENA_MAX"]))
    except (OSError, AttributeError, ValueError):
        pass
    if os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "system":
        import pyarrow

        pyarrow.set_memory_pool(pyarrow.system_memory_pool())


def release_freed_memory() -> None:
    """Give the memory of a finished pass back to the system before the next one.

    The DirectRunner buffers a pass's data in this process, on many threads; glibc keeps
    what they freed in its arenas, so without a trim every pass would start from the last
    one's high-water mark. Elsewhere (no glibc) this only collects garbage.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
