"""Rules for file paths inside a dataset version (POSIX, relative, no tricks), and the walk of a
folder to commit that applies them (the store's own commits and the Python client's alike)."""

from __future__ import annotations

import mimetypes
import os
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from .dataset_ignore import IgnoreRules
from .errors import BadRequest, PayloadTooLarge

MAX_PATH = 1024
# in UTF-8: PostgreSQL's index of a version's paths holds at most about 2,700 bytes an entry
MAX_PATH_BYTES = 2048
DATASET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
VERSION_RE = re.compile(r"^v?([0-9]{1,9})$")

EXTRA_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".jsonl": "application/jsonl",
    ".npy": "application/octet-stream",
    ".md": "text/markdown",
}


# Unicode category Cc (control characters): U+0000-U+001F and U+007F-U+009F.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
DRIVE_RE = re.compile(r"^[A-Za-z]:")
# Anything check_path might refuse: control characters, backslashes, lone surrogates, absolute
# or drive paths, empty, '.' and '..' components. A path it does not match is valid (if not too
# long).
_SUSPECT_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\\\ud800-\udfff]|^/|^[A-Za-z]:|(?:^|/)\.{0,2}(?:/|$)")
# Lone surrogates: what Python reads a file name in another encoding than UTF-8 as.
SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
# A media type as a Content-Type header holds it (RFC 9110 8.3.1): type/subtype, then
# '; name=value' parameters, the value a token or a quoted string; printable ASCII only.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[ !#-\[\]-~]|\\[ -~])*"'
MEDIA_TYPE_RE = re.compile(rf"{_TOKEN}/{_TOKEN}(?: *; *{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*")


def check_path(path: object, field: str = "path") -> str:
    """A safe relative POSIX path, or BadRequest naming what is wrong with it."""
    if not isinstance(path, str) or not path:
        raise BadRequest(f"{field}: must be a non-empty string", code="invalid_path")
    if len(path) <= MAX_PATH and _SUSPECT_RE.search(path) is None and _fits(path):
        return path  # the common case, in one scan; the checks below name the problem
    shown = path if len(path) <= 80 else path[:77] + "..."
    if len(path) > MAX_PATH:
        raise BadRequest(f"{field}: longer than {MAX_PATH} characters", code="invalid_path")
    if CONTROL_RE.search(path):
        raise BadRequest(
            f"{field}: {shown!r} contains a NUL or control character", code="invalid_path"
        )
    if SURROGATE_RE.search(path):
        raise BadRequest(
            f"{field}: {shown!r} is not UTF-8 text (a name written in another encoding?)",
            code="invalid_path",
        )
    if "\\" in path:
        raise BadRequest(f"{field}: {shown!r} contains a backslash; use '/'", code="invalid_path")
    if path.startswith("/") or DRIVE_RE.match(path):
        raise BadRequest(f"{field}: {shown!r} is absolute; paths are relative", code="invalid_path")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise BadRequest(
            f"{field}: {shown!r} has an empty, '.' or '..' component", code="invalid_path"
        )
    if not _fits(path):
        raise BadRequest(
            f"{field}: longer than {MAX_PATH_BYTES} bytes in UTF-8", code="invalid_path"
        )
    return path


def _fits(path: str) -> bool:
    """Whether ``path`` is at most MAX_PATH_BYTES in UTF-8 (encoded only when it may not be)."""
    if len(path) <= MAX_PATH_BYTES // 4:
        return True
    return len(path.encode("utf-8", "surrogatepass")) <= MAX_PATH_BYTES


def check_media_type(value: str, field: str = "media_type") -> str:
    """A media type a download can send as its Content-Type ('text/csv; charset=utf-8')."""
    if MEDIA_TYPE_RE.fullmatch(value) is None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise BadRequest(
            f"{field}: {shown!r} is not a media type like 'text/csv' (type/subtype, then "
            "'; name=value' parameters, in printable ASCII)",
            code="invalid_manifest",
        )
    return value


def servable_media_type(value: str) -> str:
    """``value`` if a Content-Type header can hold it, else application/octet-stream: a file
    stored before media types were checked may have one with a line break."""
    return value if MEDIA_TYPE_RE.fullmatch(value) else "application/octet-stream"


def check_dataset_name(name: object) -> str:
    if not isinstance(name, str) or not DATASET_NAME_RE.fullmatch(name):
        raise BadRequest(
            f"name: {name!r} is not a valid dataset name (1-100 characters: lowercase letters, "
            "digits, '.', '_' and '-', starting with a letter or digit)",
            code="invalid_field",
        )
    return name


def check_tag(name: object, field: str = "tag") -> str:
    if not isinstance(name, str) or not TAG_RE.fullmatch(name) or VERSION_RE.fullmatch(name):
        raise BadRequest(
            f"{field}: {name!r} is not a valid tag (lowercase letters, digits, '.', '_', '-'; "
            "not a version number like 'v3')",
            code="invalid_field",
        )
    return name


def media_type(path: str) -> str:
    lowered = path.lower()
    for suffix, kind in EXTRA_TYPES.items():
        if lowered.endswith(suffix):
            return kind
    # the guess depends only on the name's suffixes ('.tar.gz'): one guess per kind of name
    name = path.rpartition("/")[2].lstrip(".")
    dot = name.find(".")
    return _guess("" if dot < 0 else name[dot:])


@lru_cache(maxsize=4096)
def _guess(suffixes: str) -> str:
    guessed, _ = mimetypes.guess_type(f"f{suffixes}", strict=False)
    return guessed or "application/octet-stream"


def check_normalization_twins(paths: list[str], present: set[str]) -> None:
    """No two paths that differ only in Unicode normalization ('café' composed and decomposed):
    they look the same, and are one file where names are normalized (macOS)."""
    first: dict[str, str] = {}
    for path in paths:
        if path.isascii():
            continue
        nfc = unicodedata.normalize("NFC", path)
        if nfc == path:
            continue
        other = nfc if nfc in present else first.setdefault(nfc, path)
        if other != path:
            raise BadRequest(
                f"path: {path!r} and {other!r} differ only in Unicode normalization "
                "(they are one name on macOS); keep one of them",
                code="duplicate_path",
            )


# -- scanning a folder ---------------------------------------------------------------
class SourceFile(NamedTuple):
    path: str  # in the dataset
    local: str  # on disk (absolute)
    size: int


class FolderScan(NamedTuple):
    files: list[SourceFile]
    ignored: list[str]  # dataset paths the ignore rules left out (a folder once, with its '/')


def scan_folder(source: Path, *, max_bytes: int, ignore: Sequence[str] = ()) -> FolderScan:
    """Every regular file under ``source`` with its dataset path, but those the ignore rules
    leave out (``core.dataset_ignore``: defaults, ``.wbignore``, then ``ignore``); bad names,
    symlinks that leave the folder and oversize totals are refused before anything is stored.

    Order: a folder's files by name, then its subfolders by name, each in the same order
    (``os.walk`` top-down with sorted names). Folders that cannot be listed are skipped, as
    ``os.walk`` does. One ``os.scandir`` per folder; a regular file costs one ``stat`` (for its
    size), a symlink one more.
    """
    root = source.resolve()
    if not root.is_dir():
        raise BadRequest(f"source: {str(source)!r} is not a folder", code="invalid_source")
    rules = IgnoreRules.for_folder(root, ignore)
    found: list[SourceFile] = []
    ignored: list[str] = []
    total = 0
    pending: list[tuple[str, str]] = [(str(root), "")]  # (folder, its dataset path + "/")
    while pending:
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=_entry_name)
        except OSError:
            continue
        folders: list[os.DirEntry[str]] = []
        files: list[os.DirEntry[str]] = []
        for entry in entries:
            is_dir = _is_dir(entry)
            if rules.ignores(prefix + entry.name, folder=is_dir):
                ignored.append(prefix + entry.name + ("/" if is_dir else ""))
                continue
            (folders if is_dir else files).append(entry)
        for entry in folders:
            if entry.is_symlink():
                _check_link(root, Path(entry.path))
                raise BadRequest(
                    f"path: {prefix + entry.name!r} is a symlinked folder; link its files or "
                    "copy it",
                    code="invalid_source",
                )
        for entry in files:
            relative = prefix + entry.name
            if entry.is_symlink():
                _check_link(root, Path(entry.path))
            if not entry.is_file():
                continue  # sockets, fifos ...
            check_path(relative)
            size = entry.stat().st_size
            total += size
            if total > max_bytes:
                raise PayloadTooLarge(
                    f"source: more than the {max_bytes} bytes a commit may hold "
                    "(Workbench.max_dataset_commit_bytes)",
                    code="too_large",
                )
            found.append(SourceFile(relative, entry.path, size))
        pending.extend((entry.path, f"{prefix}{entry.name}/") for entry in reversed(folders))
    paths = sorted(f.path for f in found)  # (refused before a commit makes its dataset)
    check_normalization_twins(paths, set(paths))
    return FolderScan(found, sorted(ignored))


def _entry_name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """As ``os.walk`` tells folders from files (a symlink to a folder is a folder)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _check_link(root: Path, link: Path) -> None:
    target = link.resolve()
    if target != root and root not in target.parents:
        raise BadRequest(
            f"path: {link.relative_to(root).as_posix()!r} is a symlink that leaves the folder",
            code="invalid_source",
        )
