"""Errors that stop a run before any work starts."""

from __future__ import annotations


class ConfigError(Exception):
    """Bad configuration or topic rules: names the file, the key path and what is wrong."""

    def __init__(self, file: str, path: str, message: str) -> None:
        self.file = file
        self.path = path
        self.message = message
        where = f"{file}: {path}" if path else file
        super().__init__(f"{where}: {message}")
