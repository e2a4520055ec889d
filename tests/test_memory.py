"""How the commands that run pipelines set up memory for themselves and their workers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import os, subprocess, sys
    import pyarrow
    from newswatch.pipelines.control.memory import keep_memory_compact

    keep_memory_compact()
    print(pyarrow.default_memory_pool().backend_name)
    # What a worker process started now finds in its environment.
    print(subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ['MALLOC_ARENA_MAX'],"
         " os.environ['ARROW_DEFAULT_MEMORY_POOL'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip())
    """
)


def run_child(env: dict[str, str]) -> list[str]:
    unset = ("MALLOC_ARENA_MAX", "ARROW_DEFAULT_MEMORY_POOL")
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split("\n")[:2]


def test_two_arenas_and_the_system_allocator_reach_the_workers() -> None:
    assert run_child({}) == ["system", "2 system"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"MALLOC_ARENA_MAX": "4"}, ["system", "4 system"]),
        ({"ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}, ["jemalloc", "2 jemalloc"]),
    ],
)
def test_settings_already_in_the_environment_win(env: dict[str, str], expected: list[str]) -> None:
    assert run_child(env) == expected
