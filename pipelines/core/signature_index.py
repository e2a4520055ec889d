"""An in-memory LSH index of MinHash signatures, for clustering articles one at a time.

The stream's near-duplicate stage (``stages/clusters.py``) keeps one per worker: it starts
with the stored signatures of the horizon and takes every article that passes; entries
whose ``dt=`` day falls out of the horizon are dropped when the day changes, so memory is
bounded by the horizon (about 2 KB an article at the default settings, most of it the
signature).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from newswatch.pipelines.control.settings import NearDuplicateSettings
from newswatch.pipelines.core.minhash import (
    Signed,
    band_hashes,
    decode_signature,
    near_duplicates_of,
)

__all__ = ["SignatureIndex"]


@dataclasses.dataclass
class _Entry:
    signed: Signed
    day: str  # the dt= partition: what the horizon is counted in


class SignatureIndex:
    """Signatures by LSH band, earliest first in each bucket; dropped by ``dt=`` day.

    The buckets are two sorted arrays, band hash and entry number (12 bytes a band), rather
    than a dict of lists (measured: 11 KB an article at 64 bands, against under 1 KB): new
    entries wait in a small dict and are merged in once ``merge_every`` bands are waiting.
    Entries are numbered in the order added, so within a bucket the lower number is the one
    seen first, in the arrays as in the waiting dict.
    """

    def __init__(self, settings: NearDuplicateSettings, merge_every: int = 65_536) -> None:
        self._settings = settings
        self._merge_every = merge_every
        self._entries: dict[int, _Entry] = {}
        self._numbers: dict[str, int] = {}  # article id -> entry number
        self._next = 0
        self._hashes = np.empty(0, dtype=np.uint64)  # sorted by (hash, entry number)
        self._owners = np.empty(0, dtype=np.uint32)
        self._waiting: dict[int, list[int]] = {}
        self._waiting_bands = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, signed: Signed, day: str) -> None:
        if signed.article_id in self._numbers or not signed.comparable(
            self._settings.num_perm, self._settings.min_shingles
        ):
            return
        number = self._next
        self._next += 1
        self._entries[number] = _Entry(signed, day)
        self._numbers[signed.article_id] = number
        for key in self._band_hashes(signed).tolist():
            self._waiting.setdefault(key, []).append(number)
        self._waiting_bands += self._settings.num_perm // self._settings.rows_per_band
        if self._waiting_bands >= self._merge_every:
            self._merge()

    def near_duplicates(self, signed: Signed) -> list[Signed]:
        """The indexed articles within the horizon of ``signed`` whose estimated containment
        with it reaches the threshold."""
        settings = self._settings
        if not signed.comparable(settings.num_perm, settings.min_shingles):
            return []
        keys = self._band_hashes(signed)
        starts = np.searchsorted(self._hashes, keys, side="left")
        ends = np.minimum(
            np.searchsorted(self._hashes, keys, side="right"), starts + settings.max_bucket
        )
        # Only the bucket's earliest members, as in batch: a story copied a thousand times
        # still meets its first copies, in bounded time.
        buckets = [self._owners[a:b].tolist() for a, b in zip(starts, ends, strict=True) if b > a]
        if self._waiting:
            for key, a, b in zip(keys.tolist(), starts.tolist(), ends.tolist(), strict=True):
                waiting = self._waiting.get(key)
                if waiting:
                    buckets.append(waiting[: settings.max_bucket - (b - a)])
        seen: set[int] = set()
        candidates = []
        for number in (n for bucket in buckets for n in bucket):
            if number not in seen:
                seen.add(number)
                candidates.append(self._entries[number].signed)
        return near_duplicates_of(signed, candidates, settings.threshold, settings.horizon_days)

    def drop_before(self, first_day: str) -> int:
        """Forget entries of ``dt=`` days before ``first_day``; returns how many."""
        old = [n for n, e in self._entries.items() if e.day < first_day]
        if not old:
            return 0
        for number in old:
            del self._numbers[self._entries.pop(number).signed.article_id]
        self._merge()
        keep = np.isin(self._owners, np.array(old, dtype=np.uint32), invert=True)
        self._hashes, self._owners = self._hashes[keep], self._owners[keep]
        return len(old)

    def _band_hashes(self, signed: Signed) -> npt.NDArray[np.uint64]:
        return band_hashes(decode_signature(signed.minhash), self._settings.rows_per_band)

    def _merge(self) -> None:
        if not self._waiting:
            return
        keys = np.fromiter(
            (k for k, numbers in self._waiting.items() for _ in numbers),
            dtype=np.uint64,
            count=sum(len(numbers) for numbers in self._waiting.values()),
        )
        owners = np.fromiter(
            (n for numbers in self._waiting.values() for n in numbers),
            dtype=np.uint32,
            count=keys.size,
        )
        order = np.lexsort((owners, keys))
        keys, owners = keys[order], owners[order]
        # Every waiting entry is newer than every merged one: after its equal hashes.
        at = np.searchsorted(self._hashes, keys, side="right")
        self._hashes = np.insert(self._hashes, at, keys)
        self._owners = np.insert(self._owners, at, owners)
        self._waiting = {}
        self._waiting_bands = 0
