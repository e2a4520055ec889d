"""Trying a send again: exponential backoff with jitter, ``Retry-After``, a bounded wait."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from newswatch.pipelines.delivery.sinks import RetryPolicy


@dataclass(frozen=True)
class Attempt:
    """One try at a receiver. ``permanent``: trying again cannot help (a 400, a redirect)."""

    ok: bool
    error: str | None = None
    retry_after_s: float | None = None
    permanent: bool = False


@dataclass(frozen=True)
class Outcome:
    last: Attempt
    attempts: int


def backoff_delay(
    retry: int, policy: RetryPolicy, retry_after_s: float | None, jitter: float
) -> float:
    """Seconds to wait before retry number ``retry + 1`` (``jitter`` in [0, 1)).

    Equal jitter: half the exponential step is kept, so the delays still grow, and half is
    random, so receivers that come back are not hit by every sender at once. A receiver's
    ``Retry-After`` wins, capped so that a hostile or broken one cannot stall the drain.
    """
    if retry_after_s is not None:
        return max(0.0, min(retry_after_s, policy.retry_after_cap_s))
    step = min(policy.max_delay_s, policy.base_delay_s * 2**retry)
    return step / 2 + jitter * step / 2


def with_retries(
    attempt: Callable[[], Attempt],
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    jitter: Callable[[], float] = random.random,
) -> Outcome:
    """``attempt()`` until it succeeds, fails for good, or the retries or the wait run out."""
    waited = 0.0
    for n in range(policy.retries + 1):
        result = attempt()
        if result.ok or result.permanent or n == policy.retries:
            return Outcome(result, n + 1)
        delay = backoff_delay(n, policy, result.retry_after_s, jitter())
        if waited + delay > policy.max_wait_s:
            return Outcome(result, n + 1)
        sleep(delay)
        waited += delay
    raise AssertionError("unreachable: the last try returns")
