"""A blob store in a local folder: one file per key, written atomically and durably."""

from __future__ import annotations

import io
import os
import stat
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from .blobstore import (
    RESERVED_PREFIX,
    BlobCorrupt,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    StorageError,
    check_range,
    validate_key,
    validate_prefix,
)

COPY_BLOCK = 1024 * 1024


class LocalBlobStore(BlobStore):
    """Objects as files under ``root`` (``root/packs/ab/abcd...``).

    A write goes to a temporary file in the target's folder (named ``.wbtmp-...``, never listed),
    which is fsynced, renamed over the target with ``os.replace`` and made durable by fsyncing
    the folder. A key cannot be both an object and the folder of other keys ('a' and 'a/b').
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return f"local:{self.root}"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    # -- writing ------------------------------------------------------------------------
    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        with open(path, "rb", buffering=0) as src:
            self._write_atomic(key, target, _blocks(src))

    def move_in(self, key: str, path: Path) -> None:
        """Rename ``path`` into place when it is on the same filesystem (no copy), else copy."""
        target = self._path(key)
        try:
            self._ensure_dir(target.parent)
            if os.stat(path).st_dev != os.stat(target.parent).st_dev:
                raise OSError("another filesystem")
            os.replace(path, target)
        except OSError:
            super().move_in(key, path)
            return
        _fsync_dir(target.parent)

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        self._write_atomic(key, target, [data])

    def _write_atomic(self, key: str, target: Path, blocks: Iterable[bytes | memoryview]) -> None:
        """Write ``blocks`` to ``target`` atomically. Errors raised by ``blocks`` itself (reading
        the caller's source) propagate unchanged; failures of this store are StorageError."""
        try:
            self._ensure_dir(target.parent)
            tmp = target.parent / f"{RESERVED_PREFIX}{uuid.uuid4().hex}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot write {key} under {self.root}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb", buffering=0) as dst:
                for block in blocks:
                    try:
                        _write_all(dst.fileno(), block)
                    except OSError as exc:
                        raise StorageError(f"cannot write {key} under {self.root}: {exc}") from exc
                try:
                    os.fsync(dst.fileno())
                except OSError as exc:
                    raise StorageError(f"cannot write {key} under {self.root}: {exc}") from exc
            try:
                os.replace(tmp, target)
            except OSError as exc:
                raise StorageError(f"cannot write {key} under {self.root}: {exc}") from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        try:
            _fsync_dir(target.parent)
        except OSError as exc:
            raise StorageError(f"cannot make {key} durable under {self.root}: {exc}") from exc

    def _ensure_dir(self, folder: Path) -> None:
        """Create ``folder`` and missing parents, fsyncing each new entry's parent."""
        if folder.is_dir():
            return
        if folder != self.root:
            self._ensure_dir(folder.parent)
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
            return
        _fsync_dir(folder.parent)

    # -- reading ------------------------------------------------------------------------
    def _open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise BlobNotFound(f"no blob {key!r} in {self.describe()}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {key} under {self.root}: {exc}") from exc

    def get_range(self, key: str, start: int, length: int) -> bytes:
        check_range(start, length)
        with self._open(key) as f:
            try:
                f.seek(start)
                data = _read_exact(f, length)
            except OSError as exc:
                raise StorageError(f"cannot read {key} under {self.root}: {exc}") from exc
        if len(data) != length:
            raise BlobCorrupt(
                f"blob {key!r} is too short: wanted {length} bytes at {start}, got {len(data)}"
            )
        return data

    def get_bytes(self, key: str) -> bytes:
        with self._open(key) as f:
            try:
                return f.read()
            except OSError as exc:
                raise StorageError(f"cannot read {key} under {self.root}: {exc}") from exc

    def open_stream(self, key: str) -> BinaryIO:
        return self._open(key)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise BlobNotFound(f"no blob {key!r} in {self.describe()}") from exc
        if not _is_regular(st.st_mode):
            raise BlobNotFound(f"no blob {key!r} in {self.describe()}")
        return st.st_size

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        except OSError as exc:
            raise StorageError(f"cannot delete {key} under {self.root}: {exc}") from exc

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        validate_prefix(prefix)
        # Walk only the deepest folder the prefix names fully; filter the rest by string prefix.
        folder_part = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        top = self.root.joinpath(*folder_part.split("/")) if folder_part else self.root
        if not top.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(top):
            rel = os.path.relpath(dirpath, self.root)
            base = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            dirnames[:] = [d for d in dirnames if _may_hold(base + d + "/", prefix)]
            for name in filenames:
                if name.startswith(RESERVED_PREFIX):
                    continue
                key = base + name
                if not key.startswith(prefix):
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except FileNotFoundError:  # deleted meanwhile
                    continue
                if _is_regular(st.st_mode):
                    modified = datetime.fromtimestamp(st.st_mtime, UTC)
                    yield BlobInfo(key=key, size=st.st_size, modified=modified)


def _may_hold(folder_key: str, prefix: str) -> bool:
    """Whether keys under ``folder_key`` ('a/b/') can start with ``prefix``."""
    return folder_key.startswith(prefix) or prefix.startswith(folder_key)


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def _blocks(src: io.RawIOBase) -> Iterator[memoryview]:
    """The contents of ``src`` in blocks (one reused buffer: each is valid until the next)."""
    buf = bytearray(COPY_BLOCK)
    view = memoryview(buf)
    while True:
        n = src.readinto(view)
        if not n:
            return
        yield view[:n]


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(f: BinaryIO, length: int) -> bytes:
    parts: list[bytes] = []
    remaining = length
    while remaining > 0:
        part = f.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
