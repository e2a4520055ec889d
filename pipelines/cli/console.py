"""What the commands say: log set-up (text or JSON lines), one-line outcomes, and the
options ``run`` and ``stream`` share.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from newswatch.pipelines.control.settings import STATUS_LOGGER, Config

__all__ = [
    "DEFAULT_LOCK_TTL_S",
    "JsonLinesFormatter",
    "add_run_options",
    "configure_logging",
    "load_command_config",
    "one_line",
    "positive_count",
    "positive_seconds",
    "say",
]

# A killed run's lock blocks the runs after it for at most this long; a live run never
# loses its lock to it, as it refreshes the expiry every third of this.
DEFAULT_LOCK_TTL_S = 30 * 60.0

# Beam logs a warning at import about optional Google Cloud clients we do not use.
_QUIET_MESSAGES = ("apitools not found",)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_QUIET_MESSAGES)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message[, exception]."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Structured fields a record carries (the stream's status) go in as they are.
        status = getattr(record, "status", None)
        if isinstance(status, dict):
            entry["status"] = status
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(verbose: bool, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLinesFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    for installed in logging.getLogger().handlers:
        installed.addFilter(_DropNoise())
    # The stream's status line: always shown, as plain text or as a JSON record.
    status = logging.getLogger(STATUS_LOGGER)
    status_handler = logging.StreamHandler(sys.stderr)
    status_handler.setFormatter(
        JsonLinesFormatter() if log_format == "json" else logging.Formatter("%(message)s")
    )
    status.handlers = [status_handler]
    status.setLevel(logging.INFO)
    status.propagate = False
    if log_format == "text" and not verbose:
        # A failing step makes Beam log the element's traceback; in a terminal the run's
        # own one-line reason says it (-v shows everything, JSON logs keep it for operators).
        logging.getLogger("apache_beam").setLevel(logging.CRITICAL)


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def positive_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def worker_count(text: str) -> int | None:
    """``--workers``: a positive whole number, or ``auto`` (None: one per usable core)."""
    return None if text == "auto" else positive_count(text)


def add_run_options(parser: argparse.ArgumentParser, lock_help: str) -> None:
    """--config, --out, -v, --lock-ttl and --log-format, as ``run`` and ``stream`` take them."""
    parser.add_argument("--config", help="YAML config file (default: bundled sample feeds)")
    parser.add_argument("--out", help="output folder or filesystem URL (overrides `output`)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    parser.add_argument(
        "--lock-ttl",
        type=positive_seconds,
        default=DEFAULT_LOCK_TTL_S,
        metavar="SECONDS",
        help=lock_help,
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines on stderr: text, or JSON objects (time, level, logger, message)",
    )


def load_command_config(args: argparse.Namespace, config: Config | None = None) -> Config:
    """The config named by --config (or ``config``, loaded already) with --out applied;
    the spaCy model checked installed.

    Raises ``ConfigError`` or ``ModelNotInstalled``: exit 2 before any work starts.
    """
    from newswatch.pipelines.control.config import load_config, resolve_output
    from newswatch.pipelines.core.installed import check_languages, resolve_model

    config = config or load_config(args.config)
    if args.out:
        config = dataclasses.replace(config, output=resolve_output(args.out, None))
    resolve_model(config.nlp.model)
    check_languages(config.nlp.languages)
    return config


def say(args: argparse.Namespace, level: int, message: str) -> None:
    """A one-line outcome on stderr: a JSON log line under --log-format json."""
    if getattr(args, "log_format", "text") == "json":
        logging.getLogger("newswatch").log(level, message)
    else:
        print(f"newswatch: {message}", file=sys.stderr)


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}"
