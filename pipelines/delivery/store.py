"""Delivery state as small JSON files, read and written through Beam filesystems.

A file is replaced by writing a temporary sibling and renaming it over the old one: on a
local disk the rename is atomic, so a reader (or a process restarted after a crash) sees
the old file or the new one, never a part; on an object store the rename is a copy of a
whole object, which is as good.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from newswatch.connectors import filesystem

STATE = "_state"
# Names that become file names: sink names, run and window ids, alert ids, topic ids.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def state_path(root: str, *parts: str) -> str:
    return filesystem.join(root, STATE, *parts)


def safe_name(name: str, what: str) -> str:
    if not SAFE_NAME.fullmatch(name):
        raise ValueError(f"{what} {name!r} cannot be a file name")
    return name


def write_atomically(path: str, data: bytes) -> None:
    """Replace ``path`` whole: the temporary name never matches ``*.json`` listings."""
    temp = f"{path}.tmp-{secrets.token_hex(4)}"
    filesystem.write_file(temp, data)
    filesystem.move(temp, path)


def write_json(path: str, value: Any) -> None:
    write_atomically(path, json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8"))


def read_json(path: str, default: Any = None) -> Any:
    if not filesystem.exists(path):
        return default
    return json.loads(filesystem.read_file(path).decode("utf-8"))


def list_json(folder: str) -> list[str]:
    """The ``*.json`` files directly in ``folder``, sorted by path."""
    return filesystem.list_files(filesystem.join(folder, "*.json"))


def delete(path: str) -> None:
    if filesystem.exists(path):
        filesystem.FileSystems.delete([path])


def stem(path: str) -> str:
    return path.rsplit("/", 1)[-1].removesuffix(".json")


def exists(path: str) -> bool:
    return filesystem.exists(path)


def join(base: str, *parts: str) -> str:
    return filesystem.join(base, *parts)


def list_dirs(folder: str) -> list[str]:
    return list(filesystem.list_dirs(folder))
