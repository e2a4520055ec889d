"""Trying a send again: exponential backoff with jitter, ``Retry-After``, a bounded wait.

The wait is bounded per sink and per drain (``WaitBudget``), not per alert: with a receiver
down, a drain over a hundred alerts still ends after ``max_wait_s`` of waiting, and the
alerts it did not get to stay pending for the next drain.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from newswatch.pipelines.delivery.sinks import RetryPolicy

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Attempt:
    """One try at a receiver. ``permanent``: trying again cannot help (a 400, a redirect)."""

    ok: bool
    error: str | None = None
    retry_after_s: float | None = None
    permanent: bool = False


@dataclass(frozen=True)
class Outcome:
    """The last try, how many there were, and whether the wait ran out before the retries:
    then the alert is neither delivered nor dead, and stays pending."""

    last: Attempt
    attempts: int
    out_of_time: bool = False


class WaitBudget:
    """Seconds one sink may still spend waiting between retries in this drain."""

    def __init__(self, seconds: float) -> None:
        self.remaining_s = seconds

    def take(self, seconds: float) -> bool:
        if seconds > self.remaining_s:
            self.remaining_s = 0.0
            return False
        self.remaining_s -= seconds
        return True


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
    sleep: Sleep,
    budget: WaitBudget,
    jitter: Callable[[], float] = random.random,
) -> Outcome:
    """``attempt()`` until it succeeds, fails for good, or the retries or the budget run out."""
    for n in range(policy.retries + 1):
        result = attempt()
        if result.ok or result.permanent or n == policy.retries:
            return Outcome(result, n + 1)
        delay = backoff_delay(n, policy, result.retry_after_s, jitter())
        if not budget.take(delay):
            return Outcome(result, n + 1, out_of_time=True)
        sleep(delay)
    raise AssertionError("unreachable: the last try returns")
