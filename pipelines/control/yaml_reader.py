"""Typed access to parsed YAML whose mistakes name their file and key path.

>>> KeyReader("config.yaml").number(-1, "stream.window", 0.1)
Traceback (most recent call last):
...
newswatch.pipelines.control.errors.ConfigError: config.yaml: stream.window: must be a number >= 0.1
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from newswatch.pipelines.control.errors import ConfigError

__all__ = ["KeyReader", "load_yaml", "load_yaml_file", "local_path", "whole"]


def whole(r: KeyReader, value: Any, path: str, minimum: int, maximum: int) -> int:
    # Counts are whole: 7.5 days or 100.0 permutations is a mistake, not a rounding.
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ConfigError(r.file, path, f"must be a whole number from {minimum} to {maximum}")
    return value


def local_path(r: KeyReader, value: Any, path: str, base_dir: Path | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(r.file, path, "must be a file path")
    local = Path(value).expanduser()
    if not local.is_absolute():
        local = (base_dir or Path.cwd()) / local
    return str(local)


# libyaml's loader when PyYAML was built with it: the bundled aliases and topics load in
# 0.03 s instead of 0.38 s, before any work starts. A document it refuses is read again by
# the Python loader, whose messages say what was found where ("expected ',' or ']', but
# got ':'").
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str, file: str) -> Any:
    try:
        return yaml.load(text, Loader=_FAST_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(file, "", f"not valid YAML: {where}{problem}") from None


def load_yaml_file(r: KeyReader, path: str, key: str) -> Any:
    try:
        text = Path(path).read_text("utf-8")
    except OSError as err:
        raise ConfigError(r.file, key, f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ConfigError(r.file, key, f"{path} is not UTF-8 text") from None
    return load_yaml(text, path)


@dataclass(frozen=True)
class KeyReader:
    """Typed access to parsed YAML that reports mistakes with their key path."""

    file: str

    def mapping(self, value: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
        if value is None and path:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(self.file, path, "must be a mapping")
        for key in value:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                raise ConfigError(
                    self.file, where, f"unknown key (expected one of {', '.join(sorted(allowed))})"
                )
        return value

    def typed_items(
        self, value: Any, path: str, what: str, non_empty: bool = False
    ) -> Iterator[tuple[str, Any, Any]]:
        """(key path, ``type``, item) of each item of a list of typed mappings."""
        if not isinstance(value, list) or (non_empty and not value):
            raise ConfigError(
                self.file, path, f"must be a {'non-empty ' if non_empty else ''}{what}"
            )
        for i, item in enumerate(value):
            kind = item.get("type") if isinstance(item, Mapping) else None
            yield f"{path}[{i}]", kind, item

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(self.file, path, "must be a non-empty string")
        return value.strip()

    def number(self, value: Any, path: str, minimum: float) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)  # .nan and .inf would pass a plain comparison
            or value < minimum
        ):
            raise ConfigError(self.file, path, f"must be a number >= {minimum:g}")
        return float(value)

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(self.file, path, "must be true or false")
        return value
