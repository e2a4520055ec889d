"""``newswatch alerts status`` and ``newswatch alerts retry``.

    newswatch alerts status [--out DIR] [--config FILE] [--format text|json]
    newswatch alerts retry [--sink NAME] [--out DIR] [--config FILE]

``status`` prints one line per sink: alerts delivered, pending and dead, and the last
error (secrets masked). ``retry`` moves dead letters back to the outbox; the next
``newswatch run`` (or the running ``newswatch stream``) sends them. ``retry`` changes
delivery state, so it takes the run lock for that moment (exit 75 while a run holds it;
a running stream holds it too, so stop the stream, retry, start it again). Neither reads a
secret, so both work in a shell without the sinks' environment variables.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from newswatch.pipelines.cli.console import DEFAULT_LOCK_TTL_S
from newswatch.pipelines.cli.exits import EXIT_CONFIG, EXIT_LOCK_HELD, EXIT_OK, EXIT_RUN_FAILED
from newswatch.pipelines.delivery.sink_config import sink_name

if TYPE_CHECKING:  # imported where used: the lock and the delivery state load Beam
    from newswatch.pipelines.delivery.deadletters import SinkStatus

__all__ = ["add_retry_parser", "add_status_parser", "format_status", "main"]

DEFAULT_OUTPUT = "./newswatch-data"


def add_status_parser(alert_commands: argparse._SubParsersAction) -> None:
    parser = alert_commands.add_parser(
        "status",
        help="per delivery sink: alerts delivered, pending, dead, and the last error",
        description="Print, for each delivery sink (notify, webhook, feed, digest), the alerts "
        "delivered, pending and dead, and the last error. Secrets are never shown.",
    )
    _add_location(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(handler=main)


def add_retry_parser(alert_commands: argparse._SubParsersAction) -> None:
    parser = alert_commands.add_parser(
        "retry",
        help="send dead-lettered alerts again (at the next delivery)",
        description="Move the dead letters of one sink, or of all, back to the outbox; the "
        "next run or the running stream delivers them.",
    )
    _add_location(parser)
    parser.add_argument("--sink", metavar="NAME", help="only this sink (default: all)")
    parser.set_defaults(handler=main)


def _add_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config file: its `output` and its sinks")
    parser.add_argument("--out", help="output folder or filesystem URL (overrides `output`)")


def main(args: argparse.Namespace) -> int:
    """Run ``status`` or ``retry`` (``args.alerts_command``); returns the exit code."""
    from newswatch.pipelines.control.lock import LockHeld
    from newswatch.pipelines.delivery.deadletters import status

    try:
        root, sinks = _root_and_sinks(args.config, args.out)
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f"newswatch: config error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    if args.alerts_command == "retry":
        if args.sink and sinks is not None and args.sink not in sinks:
            known = ", ".join(sinks) or "none"
            print(f"newswatch: no sink {args.sink!r} (configured: {known})", file=sys.stderr)
            return EXIT_CONFIG
        try:
            moved = _retry_locked(root, args.sink)
        except LockHeld as err:
            print(f"newswatch: {err}; nothing done, try again later", file=sys.stderr)
            return EXIT_LOCK_HELD
        except ValueError as err:  # a --sink that cannot be a sink's name
            print(f"newswatch: {err}", file=sys.stderr)
            return EXIT_CONFIG
        except OSError as err:
            print(f"newswatch: retry failed: {err}", file=sys.stderr)
            return EXIT_RUN_FAILED
        for name, count in sorted(moved.items()):
            if count:
                print(f"{name}: {count} dead letters queued again")
        if not any(moved.values()):
            print("no dead letters")
        return EXIT_OK
    rows = status(root, sinks)
    if args.format == "json":
        print(json.dumps([asdict(r) for r in rows], indent=1))
    else:
        print(format_status(rows))
    return EXIT_OK


def _retry_locked(root: str, sink: str | None) -> dict[str, int]:
    """Dead letters back to the outbox, under the run lock: a drain must not be reading
    the dead letters and the outbox meanwhile."""
    from newswatch.pipelines.control.lock import RunLock
    from newswatch.pipelines.delivery.deadletters import retry

    with RunLock(root, ttl_s=DEFAULT_LOCK_TTL_S):
        return retry(root, sink)


def format_status(rows: list[SinkStatus]) -> str:
    if not rows:
        return "no delivery sinks have state here"
    width = max(len(r.sink) for r in rows)
    lines = []
    for r in rows:
        line = f"{r.sink:<{width}}  delivered {r.delivered}  pending {r.pending}  dead {r.dead}"
        if r.last_error:
            line += f"  last error {r.last_error_at or ''}: {r.last_error}"
        lines.append(line)
    return "\n".join(lines)


def _root_and_sinks(config: str | None, out: str | None) -> tuple[str, list[str] | None]:
    """The output root, and the configured delivery sink names (None without --config)."""
    from newswatch.pipelines.control.config import resolve_output

    if config is None:
        return resolve_output(out or DEFAULT_OUTPUT, None), None
    data: Any = yaml.safe_load(Path(config).read_text("utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{config}: not a mapping")
    base = Path(config).resolve().parent
    root = (
        resolve_output(out, None)
        if out
        else resolve_output(data.get("output", DEFAULT_OUTPUT), base)
    )
    names = [sink_name(item) for item in data.get("alerts") or [] if isinstance(item, dict)]
    return root, [n for n in names if n]
