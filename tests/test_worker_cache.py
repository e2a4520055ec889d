"""The loaded objects a worker process keeps for its DoFns, and those loaded ahead of them."""

from __future__ import annotations

import threading

import pytest

from newswatch.pipelines.control.worker_cache import WorkerCache


class Model:
    """Stands for a loaded spaCy pipeline: something each ``take`` may get or load."""

    def __init__(self, made_by: str) -> None:
        self.made_by = made_by


def _take_in_thread(cache: WorkerCache[Model], token: str) -> tuple[threading.Thread, list[Model]]:
    taken: list[Model] = []
    thread = threading.Thread(target=lambda: taken.append(cache.take(token, lambda: Model("take"))))
    thread.start()
    return thread, taken


def test_a_take_waits_for_the_preload_in_progress_and_gets_its_object() -> None:
    cache: WorkerCache[Model] = WorkerCache()
    loading, release = threading.Event(), threading.Event()

    def slow_load() -> Model:
        loading.set()
        release.wait(10)
        return Model("preload")

    preload = threading.Thread(target=cache.preload, args=("run", slow_load))
    preload.start()
    assert loading.wait(10)
    taker, taken = _take_in_thread(cache, "run")
    taker.join(0.3)
    assert taker.is_alive() and not taken  # waiting, not loading a second copy
    release.set()
    taker.join(10)
    preload.join(10)
    assert [m.made_by for m in taken] == ["preload"]


def test_a_failed_preload_leaves_the_take_to_load() -> None:
    cache: WorkerCache[Model] = WorkerCache()

    def broken() -> Model:
        raise OSError("model files missing")

    cache.preload("run", broken)
    assert cache.take("run", lambda: Model("take")).made_by == "take"


def test_a_preloaded_object_serves_one_take_and_is_kept_for_its_token_only() -> None:
    cache: WorkerCache[Model] = WorkerCache()
    cache.preload("run-1", lambda: Model("preload"))
    first = cache.take("run-1", lambda: Model("take"))
    second = cache.take("run-1", lambda: Model("take"))
    assert (first.made_by, second.made_by) == ("preload", "take")
    cache.give_back("run-1", first)
    # Another token drops the idle objects of the last: a long-lived worker keeps the newest.
    assert cache.take("run-2", lambda: Model("take")).made_by == "take"
    cache.give_back("run-1", second)
    assert cache.take("run-2", lambda: Model("take-again")).made_by == "take-again"


def test_a_take_of_another_token_does_not_wait_for_a_preload() -> None:
    cache: WorkerCache[Model] = WorkerCache()
    release = threading.Event()
    preload = threading.Thread(
        target=cache.preload, args=("old", lambda: release.wait(10) and Model("preload"))
    )
    preload.start()
    try:
        taker, taken = _take_in_thread(cache, "new")
        taker.join(10)
        assert [m.made_by for m in taken] == ["take"]
    finally:
        release.set()
        preload.join(10)
    with pytest.raises(LookupError):
        cache.take("new", _nothing_idle)


def _nothing_idle() -> Model:
    raise LookupError("nothing idle")
