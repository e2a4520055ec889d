"""``newswatch alerts status`` and ``alerts retry``, on delivery state made by real drains."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from delivery_receivers import T0, WebhookReceiver, story

from newswatch.pipelines.cli import alerts_delivery as command
from newswatch.pipelines.cli.broker import free_port
from newswatch.pipelines.control.lock import RunLock
from newswatch.pipelines.delivery import deliver, enqueue, status
from newswatch.pipelines.delivery.sinks import RetryPolicy, WebhookSink

SECRET = "hook-key-never-printed"
TOKEN = "T0KEN-in-the-path-9f8e7d"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="newswatch alerts")
    commands = parser.add_subparsers(dest="alerts_command", required=True)
    command.add_status_parser(commands)
    command.add_retry_parser(commands)
    return command.main(parser.parse_args(argv))


def no_wait(seconds: float) -> None:
    pass


@pytest.fixture
def dead_hook(tmp_path: Path) -> tuple[str, int]:
    """An output folder whose sink `desk-hook` has two dead letters; the receiver's port."""
    port = free_port()
    hook = WebhookSink(
        name="desk-hook",
        url=f"http://127.0.0.1:{port}/{TOKEN}",
        secret=SECRET,
        allow_insecure=True,
        retry=RetryPolicy(retries=0),
    )
    enqueue(str(tmp_path), "run-1", [story(1), story(2)], [hook])
    deliver(str(tmp_path), [hook], T0, sleep=no_wait)
    return str(tmp_path), port


def test_status_prints_counts_and_the_last_error_without_secrets(
    dead_hook: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = dead_hook
    assert run(["status", "--out", root]) == 0
    out = capsys.readouterr().out
    assert out.startswith("desk-hook  delivered 0  pending 0  dead 2  last error ")
    assert "ConnectionRefusedError" in out
    assert run(["status", "--out", root, "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["sink"], row["delivered"], row["pending"], row["dead"]) == ("desk-hook", 0, 0, 2)
    everything = out + json.dumps(row) + "".join(p.read_text() for p in Path(root).rglob("*.json"))
    assert SECRET not in everything and TOKEN not in everything


def test_retry_then_the_next_drain_delivers_once(
    dead_hook: tuple[str, int], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root, port = dead_hook
    config = tmp_path / "newswatch.yaml"
    config.write_text(
        f"output: {root}\nalerts:\n  - type: file\n  - type: webhook\n    name: desk-hook\n"
        f"    url: http://127.0.0.1:{port}/{TOKEN}\n    secret_env: UNSET_IN_THIS_SHELL\n"
    )
    assert run(["retry", "--config", str(config), "--sink", "nosuch"]) == 2
    assert "no sink 'nosuch' (configured: desk-hook)" in capsys.readouterr().err
    assert run(["retry", "--config", str(config), "--sink", "desk-hook"]) == 0
    assert capsys.readouterr().out == "desk-hook: 2 dead letters queued again\n"
    assert run(["status", "--config", str(config)]) == 0
    status_line = capsys.readouterr().out
    assert status_line.startswith("desk-hook  delivered 0  pending 2  dead 0  last error")
    hook = WebhookSink(
        name="desk-hook", url=f"http://127.0.0.1:{port}/{TOKEN}", secret=SECRET, allow_insecure=True
    )
    with WebhookReceiver(SECRET, port=port) as receiver:
        deliver(root, [hook], T0)
        deliver(root, [hook], T0)
    assert sorted(receiver.accepted_ids()) == sorted([story(1).alert_id, story(2).alert_id])
    assert run(["retry", "--out", root]) == 0
    assert capsys.readouterr().out == "no dead letters\n"


def test_status_of_an_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["status", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "no delivery sinks have state here\n"


def test_retry_waits_for_the_run_lock(dead_hook: tuple[str, int]) -> None:
    root, _ = dead_hook
    with RunLock(root, ttl_s=60):
        assert run(["retry", "--out", root]) == 75
    [row] = status(root)
    assert row.dead == 2  # nothing was moved while a run held the lock
    assert run(["retry", "--out", root]) == 0
    [row] = status(root)
    assert (row.pending, row.dead) == (2, 0)
