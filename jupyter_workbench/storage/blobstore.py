"""The blob store interface: a flat key -> bytes object store (local folder or S3 bucket).

Keys are '/'-separated relative names such as ``packs/ab/abcd...``. Writes are atomic (a reader
sees the old object or the whole new one, never part of it) and durable when they return.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

MAX_KEY_BYTES = 1024  # S3's limit
MAX_SEGMENT_BYTES = 255  # a file name on common filesystems
RESERVED_PREFIX = ".wbtmp-"  # temporary files of LocalBlobStore; no key segment may start so

_ALLOWED = re.compile(r"[\x20-\x7e]*")


class StorageError(Exception):
    """The storage backend failed (I/O error, unreachable endpoint, refused request...)."""


class BlobNotFound(StorageError, KeyError):
    """No object under that key."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "blob not found"


class BlobCorrupt(StorageError, OSError):
    """The object is not what was expected (e.g. shorter than a requested range)."""


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    modified: datetime  # timezone-aware UTC


def validate_key(key: str) -> str:
    """Return ``key`` if it is a valid blob key, else raise ValueError saying why."""
    if not isinstance(key, str):
        raise ValueError(f"blob key must be a string, not {type(key).__name__}")
    _check_chars(key, "blob key")
    if not key:
        raise ValueError("blob key must not be empty")
    if key.startswith("/"):
        raise ValueError(f"blob key must be relative (no leading '/'): {key!r}")
    if len(key) > MAX_KEY_BYTES:
        raise ValueError(f"blob key is longer than {MAX_KEY_BYTES} characters")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"blob key has an empty, '.' or '..' segment: {key!r}")
        if len(segment) > MAX_SEGMENT_BYTES:
            raise ValueError(f"blob key segment is longer than {MAX_SEGMENT_BYTES} characters")
        if segment.startswith(RESERVED_PREFIX):
            raise ValueError(f"blob key segments may not start with {RESERVED_PREFIX!r}: {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it may start keys (empty, or a key's leading part), else ValueError."""
    if not isinstance(prefix, str):
        raise ValueError(f"blob key prefix must be a string, not {type(prefix).__name__}")
    if not prefix:
        return prefix
    _check_chars(prefix, "blob key prefix")
    if prefix.startswith("/"):
        raise ValueError(f"blob key prefix must be relative (no leading '/'): {prefix!r}")
    if len(prefix) > MAX_KEY_BYTES:
        raise ValueError(f"blob key prefix is longer than {MAX_KEY_BYTES} characters")
    # Every complete segment must be valid; the last one may be partial (or empty: 'dir/').
    for segment in prefix.split("/")[:-1]:
        if segment in ("", ".", ".."):
            raise ValueError(f"blob key prefix has an empty, '.' or '..' segment: {prefix!r}")
    return prefix


def _check_chars(text: str, what: str) -> None:
    if not _ALLOWED.fullmatch(text):
        raise ValueError(f"{what} may only hold printable ASCII characters: {text!r}")
    if "\\" in text:
        raise ValueError(f"{what} may not hold a backslash: {text!r}")


class BlobStore(ABC):
    """Flat key -> bytes object store. Keys are '/'-separated relative names
    (e.g. 'packs/ab/abcd...'); see :func:`validate_key`."""

    @abstractmethod
    def put_file(self, key: str, path: Path) -> None:
        """Store the contents of a local file; atomic, and durable when it returns."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data``; atomic, and durable when it returns."""

    @abstractmethod
    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Exactly ``length`` bytes from ``start``. BlobNotFound if missing, BlobCorrupt if the
        object ends before ``start + length``."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The whole object; BlobNotFound if missing."""

    @abstractmethod
    def open_stream(self, key: str) -> BinaryIO:
        """A streaming reader of the whole object (close it); BlobNotFound if missing."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abstractmethod
    def size(self, key: str) -> int:
        """The object's size in bytes; BlobNotFound if missing."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Every object whose key starts with ``prefix`` (a plain string prefix), any order."""

    def move_in(self, key: str, path: Path) -> None:
        """Store the (already fsynced) local file ``path`` under ``key`` and remove ``path``.

        The default uploads then deletes; a local store renames instead of copying.
        """
        self.put_file(key, path)
        path.unlink(missing_ok=True)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete every key (missing ones are ignored); backends may batch."""
        for key in keys:
            self.delete(key)

    def describe(self) -> str:
        """Where the objects live, for logs and `info` output (never secrets)."""
        return type(self).__name__


def check_range(start: int, length: int) -> None:
    if start < 0 or length < 0:
        raise ValueError(f"range must be non-negative (start={start}, length={length})")
