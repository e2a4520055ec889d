"""File operations through Beam filesystems, so output can live on a local disk or an object store.

Only local paths need directories made and can be fsynced; everything else goes through
``FileSystems`` unchanged (gs://, s3:// with the matching Beam extra installed).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.localfilesystem import LocalFileSystem


def is_local(path: str) -> bool:
    return isinstance(FileSystems.get_filesystem(path), LocalFileSystem)


def join(base: str, *parts: str) -> str:
    return FileSystems.join(base, *parts)


def write_file(path: str, data: bytes) -> None:
    """Write a whole file; on a local disk it is on stable storage when this returns."""
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        handle.write(data)
        if is_local(path):
            handle.flush()
            os.fsync(handle.fileno())


def read_file(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return handle.read()


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def replace_file(path: str, data: bytes) -> None:
    """Write ``data`` under a temporary name, then rename over ``path`` (atomic on local disks)."""
    temp = path + ".tmp"
    write_file(temp, data)
    if exists(path):
        FileSystems.delete([path])
    move(temp, path)


def move(source: str, destination: str) -> None:
    """Rename one file, making the destination folder where a local disk needs one."""
    if is_local(destination):
        os.makedirs(os.path.dirname(destination), exist_ok=True)
    FileSystems.rename([source], [destination])
    if is_local(destination):
        _fsync_dir(os.path.dirname(destination))


def delete_tree(path: str) -> None:
    """Delete a folder and everything in it, if it exists."""
    if exists(path):
        FileSystems.delete([path])


def list_files(pattern: str) -> list[str]:
    """Paths matching a glob, sorted; none is not an error."""
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def list_dirs(base: str) -> Iterable[str]:
    """Immediate sub-folder names of a local folder, or of an object-store prefix."""
    if is_local(base):
        return sorted(e.name for e in os.scandir(base) if e.is_dir()) if os.path.isdir(base) else []
    prefixes = {
        path[len(base) :].lstrip("/").split("/", 1)[0] for path in list_files(join(base, "**"))
    }
    return sorted(p for p in prefixes if p)


def _fsync_dir(path: str) -> None:
    # A rename is durable only once its directory entry is.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
