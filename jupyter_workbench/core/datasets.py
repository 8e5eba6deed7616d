"""Datasets: immutable versions of files (manifests of content-addressed chunks), tags, lineage.

Everything here runs inside one transaction. The long parts of a commit (reading, chunking and
storing bytes) happen outside, in ``dataset_jobs.py``, under a *commit session* whose pins keep
garbage collection off the chunks; ``publish`` then makes the version visible in one transaction.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from blake3 import blake3
from sqlalchemy import Row, and_, delete, func, insert, literal, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, defer

from ..db.bulk import insert_ignore, insert_many
from ..db.locks import lock_name
from ..db.models import (
    BlobChunk,
    CommitSession,
    Dataset,
    DatasetFile,
    DatasetFileSpan,
    DatasetLineage,
    DatasetTag,
    DatasetVersion,
    Operation,
    Project,
    SessionChunk,
    SessionPack,
    User,
    VersionChunk,
    utcnow,
)
from ..storage.chunking import blake3_hex
from . import audit, operations
from .access import Role, is_superuser, require_project, roles_for_projects
from .context import Ctx
from .dataset_paths import (
    TAG_RE,
    VERSION_RE,
    check_dataset_name,
    check_normalization_twins,
    check_path,
    check_tag,
)
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .etags import check_etag, etag
from .pagination import Page, SortSpec, paginate
from .text_search import holds_text
from .validation import check_text

LATEST = "latest"
MAX_LABELS = 50

DATASET_SORTS = SortSpec(
    {"name": Dataset.name, "updated": Dataset.updated_at, "created": Dataset.created_at},
    id_column=Dataset.id,
    default="name",
)
VERSION_SORTS = SortSpec(
    {"version": DatasetVersion.version}, id_column=DatasetVersion.id, default="-version"
)
FILE_SORTS = SortSpec({"path": DatasetFile.path}, id_column=DatasetFile.id, default="path")
TAG_SORTS = SortSpec(
    {"name": DatasetTag.name, "updated": DatasetTag.updated_at},
    id_column=DatasetTag.id,
    default="name",
)
MAX_TAGS = 1000  # of one dataset ('latest' included): each also rides in the dataset's JSON
LINEAGE_SORTS = SortSpec({"time": DatasetLineage.id}, id_column=DatasetLineage.id, default="-time")


@dataclass
class FileEntry:
    """One file of a manifest, before or after it is stored."""

    path: str
    size: int
    digest: str
    chunks: list[tuple[str, int]]
    media_type: str = "application/octet-stream"
    file_id: int | None = None  # its row, once stored (``chunks`` may then be left unread)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "digest": self.digest,
            "media_type": self.media_type,
            "chunks": [[d, n] for d, n in self.chunks],
        }


@dataclass
class Changes:
    """What a new version does to its parent: files added or replaced, paths deleted."""

    put: list[FileEntry] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    replace_all: bool = False  # the version is exactly ``put`` (a snapshot of a folder)


def manifest_digest(entries: Iterable[FileEntry]) -> str:
    lines = sorted(f"{e.path}\t{e.size}\t{e.digest}" for e in entries)
    return blake3_hex("\n".join(lines).encode())


_DIGEST_RE = re.compile(r"[0-9a-f]{64}")


def check_manifest(
    entries: list[FileEntry], *, also: Iterable[str] = (), sort_names: bool = False
) -> None:
    """Paths valid and unique; sizes add up to the chunk lengths; digests well-formed; one
    length for each chunk. ``also``: paths of other files of the version (checked already),
    that ``entries`` must not clash with (an update passes only those of its kept files that
    could: see ``_scan_parent``); ``sort_names``: the version has other files (whether or not
    ``also`` names any), so that a clash is named as when all of them were passed."""
    seen: set[str] = set(also)
    lengths: dict[str, int] = {}
    is_digest = _DIGEST_RE.fullmatch
    for entry in entries:
        check_path(entry.path)
        if entry.path in seen:
            raise BadRequest(f"path: {entry.path!r} appears twice", code="duplicate_path")
        seen.add(entry.path)
        if sum(n for _, n in entry.chunks) != entry.size:
            raise BadRequest(
                f"files[{entry.path}]: chunk lengths do not add up to its size {entry.size}",
                code="invalid_manifest",
            )
        for digest in [entry.digest, *(d for d, _ in entry.chunks)]:
            if not isinstance(digest, str) or is_digest(digest) is None:
                raise BadRequest(
                    f"files[{entry.path}]: {digest!r} is not a BLAKE3 hex digest",
                    code="invalid_manifest",
                )
        for digest, length in entry.chunks:
            if lengths.setdefault(digest, length) != length:
                raise BadRequest(
                    f"files[{entry.path}]: chunk {digest} is declared with two lengths "
                    f"({lengths[digest]} and {length}); one content has one length",
                    code="invalid_manifest",
                )
    _check_no_file_dir_clash(seen)
    names = sorted(seen) if also or sort_names else [entry.path for entry in entries]
    check_normalization_twins(names, seen)


def _check_no_file_dir_clash(paths: set[str]) -> None:
    for path in paths:
        cut = path.find("/")
        while cut != -1:
            prefix = path[:cut]
            if prefix in paths:
                raise BadRequest(
                    f"path: {prefix!r} is both a file and a folder (of {path!r})",
                    code="duplicate_path",
                )
            cut = path.find("/", cut + 1)


# -- datasets ------------------------------------------------------------------------
def _check_metadata(metadata: object) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        raise BadRequest("metadata: must be a JSON object", code="invalid_field")
    for key in ("license", "source"):
        if key in metadata and not isinstance(metadata[key], str):
            raise BadRequest(f"metadata.{key}: must be a string", code="invalid_field")
    tags = metadata.get("tags", [])
    if not isinstance(tags, list) or len(tags) > MAX_LABELS:
        raise BadRequest(
            f"metadata.tags: must be a list of at most {MAX_LABELS} tags", code="invalid_field"
        )
    for tag in tags:
        check_tag(tag, "metadata.tags")
    return metadata


def _labels(metadata: dict[str, Any]) -> str:
    tags = sorted(set(metadata.get("tags", [])))
    return "," + ",".join(tags) + "," if tags else ""


def _load(
    s: Session, project: Project, name: str, *, for_update: bool = False, key_share: bool = False
) -> Dataset:
    stmt = select(Dataset).where(Dataset.project_id == project.id, Dataset.name == name)
    if for_update:
        stmt = stmt.with_for_update()
    elif key_share:  # FOR KEY SHARE: as the row's foreign keys do, blocks only its deletion
        stmt = stmt.with_for_update(read=True, key_share=True)
    dataset = s.scalar(stmt)
    if dataset is None:
        raise NotFound(f"dataset '{name}' not found in project '{project.slug}'")
    return dataset


def create(
    s: Session,
    ctx: Ctx,
    slug: str,
    *,
    name: str,
    description: str = "",
    card: str = "",
    metadata: dict[str, Any] | None = None,
) -> Dataset:
    project, _ = require_project(s, ctx, slug, "datasets.write")
    check_dataset_name(name)
    meta = _check_metadata(metadata or {})
    dataset = Dataset(
        project_id=project.id,
        name=name,
        description=check_text(description, "description", max_length=10_000, allow_empty=True),
        card=check_text(card, "card", max_length=200_000, allow_empty=True),
        meta=meta,
        labels=_labels(meta),
        created_by_id=ctx.user.id,
    )
    try:
        with s.begin_nested():
            s.add(dataset)
            s.flush()
    except IntegrityError:
        raise Conflict(f"name: a dataset named '{name}' already exists") from None
    audit.record(s, ctx, "dataset.create", "dataset", name, project=project)
    s.flush()
    return dataset


def get(s: Session, ctx: Ctx, slug: str, name: str) -> tuple[Project, Dataset]:
    project, _ = require_project(s, ctx, slug, "datasets.read")
    return project, _load(s, project, name)


def _filters(stmt: Any, q: str | None, tag: str | None, meta: dict[str, str] | None) -> Any:
    if q:
        stmt = stmt.where(holds_text(q, Dataset.name, Dataset.description, Dataset.card))
    if tag:
        # ('_' is a character of tags, not LIKE's any-character wildcard)
        stmt = stmt.where(Dataset.labels.contains(f",{check_tag(tag)},", autoescape=True))
    for key, value in (meta or {}).items():
        stmt = stmt.where(Dataset.meta[key].as_string() == value)
    return stmt


def list_datasets(
    s: Session,
    ctx: Ctx,
    slug: str,
    *,
    q: str | None = None,
    tag: str | None = None,
    meta: dict[str, str] | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Dataset]:
    project, _ = require_project(s, ctx, slug, "datasets.read")
    stmt = _filters(select(Dataset).where(Dataset.project_id == project.id), q, tag, meta)
    return paginate(s, stmt, DATASET_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def search(
    s: Session,
    ctx: Ctx,
    *,
    q: str | None = None,
    tag: str | None = None,
    meta: dict[str, str] | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Dataset]:
    """Datasets of every live project the caller can see, by name/text, tag or metadata."""
    from .projects import visible_project_ids

    stmt = select(Dataset).join(Project, Project.id == Dataset.project_id)
    stmt = stmt.where(Project.deleted_at.is_(None))
    if not is_superuser(ctx.user):
        stmt = stmt.where(Dataset.project_id.in_(visible_project_ids(ctx.user)))
    stmt = _filters(stmt, q, tag, meta)
    return paginate(s, stmt, DATASET_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def update_dataset(
    s: Session,
    ctx: Ctx,
    slug: str,
    name: str,
    changes: dict[str, Any],
    *,
    if_match: str | None = None,
) -> Dataset:
    """Description, card (markdown) and metadata (license, source, schema, tags ...)."""
    project, _ = require_project(s, ctx, slug, "datasets.write")
    dataset = _load(s, project, name, for_update=True)
    check_etag(dataset, if_match)
    summary: dict[str, Any] = {}
    if "description" in changes:
        dataset.description = check_text(
            changes["description"], "description", max_length=10_000, allow_empty=True
        )
        summary["description"] = "changed"
    if "card" in changes:
        dataset.card = check_text(changes["card"], "card", max_length=200_000, allow_empty=True)
        summary["card"] = "changed"
    if "metadata" in changes:
        meta = _check_metadata(changes["metadata"])
        summary["metadata"] = audit.changes(dataset.meta, meta)
        dataset.meta = meta
        dataset.labels = _labels(meta)
    if summary:
        dataset.updated_at = utcnow()
        audit.record(s, ctx, "dataset.update", "dataset", name, project=project, summary=summary)
    s.flush()
    return dataset


def delete_dataset(s: Session, ctx: Ctx, slug: str, name: str) -> None:
    """Delete a dataset and its versions; its chunks are freed by the next garbage collection."""
    project, _ = require_project(s, ctx, slug, "datasets.delete")
    dataset = _load(s, project, name, for_update=True)
    versions = s.scalar(select(func.count()).where(DatasetVersion.dataset_id == dataset.id))
    audit.record(
        s, ctx, "dataset.delete", "dataset", name, project=project, summary={"versions": versions}
    )
    s.delete(dataset)
    s.flush()


# -- versions ------------------------------------------------------------------------
def resolve(s: Session, dataset: Dataset, ref: str) -> DatasetVersion:
    """A version by number ('3' or 'v3') or by tag ('latest', 'production' ...)."""
    match = VERSION_RE.fullmatch(ref)
    if match:
        version = s.scalar(
            select(DatasetVersion).where(
                DatasetVersion.dataset_id == dataset.id,
                DatasetVersion.version == int(match.group(1)),
            )
        )
    else:
        version = s.scalar(
            select(DatasetVersion)
            .join(DatasetTag, DatasetTag.version_id == DatasetVersion.id)
            .where(DatasetTag.dataset_id == dataset.id, DatasetTag.name == ref)
        )
    if version is None:
        if ref == "latest":  # no 'latest' tag: nothing was ever committed
            raise NotFound(
                f"dataset '{dataset.name}' has no versions yet: commit files to it first",
                code="no_versions",
            )
        raise NotFound(f"dataset '{dataset.name}' has no version '{ref}'")
    return version


def latest(s: Session, dataset: Dataset) -> DatasetVersion | None:
    return s.scalar(
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset.id)
        .order_by(DatasetVersion.version.desc())
        .limit(1)
    )


def get_version(
    s: Session, ctx: Ctx, slug: str, name: str, ref: str
) -> tuple[Project, Dataset, DatasetVersion]:
    project, dataset = get(s, ctx, slug, name)
    return project, dataset, resolve(s, dataset, ref)


def list_versions(
    s: Session,
    ctx: Ctx,
    slug: str,
    name: str,
    *,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[DatasetVersion]:
    _project, dataset = get(s, ctx, slug, name)
    stmt = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
    return paginate(s, stmt, VERSION_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def list_files(
    s: Session,
    ctx: Ctx,
    slug: str,
    name: str,
    ref: str,
    *,
    prefix: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[DatasetFile]:
    """A page of a version's files, without their chunk lists (16,000 for a file of 1 GB:
    ``chunk_lists`` reads those of a page, when asked for); each row has its ``chunk_count``."""
    _project, _dataset, version = get_version(s, ctx, slug, name, ref)
    stmt = select(DatasetFile).where(DatasetFile.version_id == version.id)
    if prefix:
        stmt = stmt.where(DatasetFile.path.startswith(prefix, autoescape=True))
    return paginate(s, stmt, FILE_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def get_file(
    s: Session, ctx: Ctx, slug: str, name: str, ref: str, path: str
) -> tuple[DatasetVersion, FileEntry]:
    _project, _dataset, version = get_version(s, ctx, slug, name, ref)
    row = s.scalar(
        select(DatasetFile).where(DatasetFile.version_id == version.id, DatasetFile.path == path)
    )
    if row is None:
        raise NotFound(f"version v{version.version} of '{name}' has no file {path!r}")
    return version, entry_of(row, chunk_lists(s, [row.id]).get(row.id, []))


def file_head(
    s: Session, ctx: Ctx, slug: str, name: str, ref: str, path: str
) -> tuple[DatasetVersion, FileEntry]:
    """As ``get_file``, without the chunk list (``chunks`` empty, ``file_id`` set): what a
    download needs before ``chunks_in_range`` reads the part of the list it sends."""
    _project, _dataset, version = get_version(s, ctx, slug, name, ref)
    row = s.execute(
        select(DatasetFile.id, DatasetFile.size, DatasetFile.digest, DatasetFile.media_type).where(
            DatasetFile.version_id == version.id, DatasetFile.path == path
        )
    ).first()
    if row is None:
        raise NotFound(f"version v{version.version} of '{name}' has no file {path!r}")
    file_id, size, digest, media_type = row
    return version, FileEntry(path, size, digest, [], media_type, file_id=file_id)


def file_heads(
    s: Session, version_id: int, *, after: str | None = None, limit: int = 500
) -> list[FileEntry]:
    """A page of a version's files by path (those after ``after``), without their chunk lists
    (``chunks`` empty, ``file_id`` set): a tar of any number of files, a page at a time."""
    stmt = select(
        DatasetFile.id,
        DatasetFile.path,
        DatasetFile.size,
        DatasetFile.digest,
        DatasetFile.media_type,
    ).where(DatasetFile.version_id == version_id)
    if after is not None:
        stmt = stmt.where(DatasetFile.path > after)
    rows = s.execute(stmt.order_by(DatasetFile.path).limit(limit))
    return [
        FileEntry(path, size, digest, [], kind, file_id=file_id)
        for file_id, path, size, digest, kind in rows
    ]


# files of a parent version an update reads (and copies) at a time: its memory is that of a
# page and of the files changed, whatever the number of files kept
FILE_PAGE = 1000
SPAN_CHUNKS = 1024  # chunks of one ``DatasetFileSpan`` row (64 MiB of a file at 64 KiB each)


def span_rows(file_id: int, chunks: list[tuple[str, int]]) -> Iterable[dict[str, Any]]:
    """The ``DatasetFileSpan`` rows of a file made of ``chunks``."""
    position = 0
    for cut in range(0, len(chunks), SPAN_CHUNKS):
        part = [(d, int(n)) for d, n in chunks[cut : cut + SPAN_CHUNKS]]
        nbytes = sum(n for _, n in part)
        yield {"file_id": file_id, "first_byte": position, "nbytes": nbytes, "chunks": part}
        position += nbytes


def chunks_in_range(
    s: Session, file_id: int, start: int, end: int, *, max_spans: int = 16
) -> tuple[int, list[tuple[str, int]]]:
    """The chunks of a stored file from the one holding byte ``start`` on, towards ``end``
    (exclusive), and the byte the first of them starts at: read from at most ``max_spans``
    spans (the caller asks again from where they stop), through the spans' index, whatever
    the file's size. Empty when the file has no byte at ``start``."""
    first = (
        select(func.max(DatasetFileSpan.first_byte))
        .where(DatasetFileSpan.file_id == file_id, DatasetFileSpan.first_byte <= start)
        .scalar_subquery()
    )
    rows = s.execute(
        select(DatasetFileSpan.first_byte, DatasetFileSpan.chunks)
        .where(
            DatasetFileSpan.file_id == file_id,
            DatasetFileSpan.first_byte >= first,
            DatasetFileSpan.first_byte < end,
        )
        .order_by(DatasetFileSpan.first_byte)
        .limit(max_spans)
    ).all()
    position, first_kept = (rows[0][0] if rows else start), None
    out: list[tuple[str, int]] = []
    for _first_byte, chunks in rows:
        for digest, length in chunks:
            if position >= end:
                break
            if position + length > start:
                first_kept = position if first_kept is None else first_kept
                out.append((digest, int(length)))
            position += length
    return (start if first_kept is None else first_kept), out


def entry_of(row: DatasetFile, chunks: list[tuple[str, int]]) -> FileEntry:
    """The entry of a stored file whose chunk list (from ``chunk_lists``) is ``chunks``."""
    return FileEntry(
        path=row.path,
        size=row.size,
        digest=row.digest,
        chunks=chunks,
        media_type=row.media_type,
        file_id=row.id,
    )


def chunk_lists(s: Session, file_ids: list[int]) -> dict[int, list[tuple[str, int]]]:
    """The whole chunk lists of some stored files, by file id: their spans by first byte,
    concatenated (a file without chunks has no spans and is left out)."""
    out: dict[int, list[tuple[str, int]]] = {}
    for cut in range(0, len(file_ids), 500):
        rows = s.execute(
            select(DatasetFileSpan.file_id, DatasetFileSpan.chunks)
            .where(DatasetFileSpan.file_id.in_(file_ids[cut : cut + 500]))
            .order_by(DatasetFileSpan.file_id, DatasetFileSpan.first_byte)
        )
        for file_id, chunks in rows:
            out.setdefault(file_id, []).extend((d, int(n)) for d, n in chunks)
    return out


def files_of(s: Session, version_id: int) -> list[FileEntry]:
    """A version's files by path, each with its whole chunk list."""
    rows = s.scalars(
        select(DatasetFile).where(DatasetFile.version_id == version_id).order_by(DatasetFile.path)
    ).all()
    lists: dict[int, list[tuple[str, int]]] = {}
    for file_id, chunks in s.execute(
        select(DatasetFileSpan.file_id, DatasetFileSpan.chunks)
        .join(DatasetFile, DatasetFile.id == DatasetFileSpan.file_id)
        .where(DatasetFile.version_id == version_id)
        .order_by(DatasetFileSpan.file_id, DatasetFileSpan.first_byte)
    ):
        lists.setdefault(file_id, []).extend((d, int(n)) for d, n in chunks)
    return [entry_of(r, lists.get(r.id, [])) for r in rows]


def summaries_of(s: Session, version_id: int) -> list[FileEntry]:
    """A version's files without their chunk lists (``chunks`` left empty, whatever the size):
    what comparing versions by digest needs; ``chunks_of`` reads the lists wanted after."""
    rows = s.execute(
        select(DatasetFile.path, DatasetFile.size, DatasetFile.digest, DatasetFile.media_type)
        .where(DatasetFile.version_id == version_id)
        .order_by(DatasetFile.path)
    )
    return [FileEntry(path, size, digest, [], kind) for path, size, digest, kind in rows]


def chunks_of(s: Session, version_id: int, paths: list[str]) -> dict[str, list[tuple[str, int]]]:
    """The chunk lists of some files of a version, by path (their spans, concatenated)."""
    out: dict[str, list[tuple[str, int]]] = {}
    for cut in range(0, len(paths), 500):
        out.update(
            (path, [])
            for path in s.scalars(
                select(DatasetFile.path).where(
                    DatasetFile.version_id == version_id,
                    DatasetFile.path.in_(paths[cut : cut + 500]),
                )
            )
        )
        rows = s.execute(
            select(DatasetFile.path, DatasetFileSpan.chunks)
            .join(DatasetFileSpan, DatasetFileSpan.file_id == DatasetFile.id)
            .where(
                DatasetFile.version_id == version_id,
                DatasetFile.path.in_(paths[cut : cut + 500]),
            )
            .order_by(DatasetFileSpan.file_id, DatasetFileSpan.first_byte)
        )
        for path, chunks in rows:
            out[path].extend((d, int(n)) for d, n in chunks)
    return out


# -- tags ----------------------------------------------------------------------------
def list_tags(
    s: Session,
    ctx: Ctx,
    slug: str,
    name: str,
    *,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[DatasetTag]:
    """A page of the dataset's tags (by name, or ``-updated``: the last moved first)."""
    _project, dataset = get(s, ctx, slug, name)
    stmt = select(DatasetTag).where(DatasetTag.dataset_id == dataset.id)
    return paginate(s, stmt, TAG_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def set_tag(s: Session, ctx: Ctx, slug: str, name: str, tag: str, ref: str) -> DatasetTag:
    """Point a tag at a version ('latest' moves by itself and cannot be set)."""
    project, _ = require_project(s, ctx, slug, "datasets.write")
    dataset = _load(s, project, name, for_update=True)
    check_tag(tag)
    if tag == LATEST:
        raise BadRequest("tag: 'latest' always points at the newest version", code="reserved_tag")
    if not (VERSION_RE.fullmatch(ref) or TAG_RE.fullmatch(ref)):
        raise BadRequest(
            f"version: {ref!r} is neither a version (like 'v3') nor a tag", code="invalid_field"
        )
    version = resolve(s, dataset, ref)
    row = s.scalar(
        select(DatasetTag).where(DatasetTag.dataset_id == dataset.id, DatasetTag.name == tag)
    )
    before = None
    if row is None:
        count = s.scalar(select(func.count()).where(DatasetTag.dataset_id == dataset.id)) or 0
        if count >= MAX_TAGS:
            raise Conflict(
                f"tag: dataset '{name}' has {count} tags, the most a dataset may have; "
                "remove tags no one uses any more first",
                code="too_many_tags",
            )
        row = DatasetTag(dataset_id=dataset.id, name=tag, version_id=version.id)
        s.add(row)
    else:
        before = s.get(DatasetVersion, row.version_id)
        row.version_id = version.id
    row.updated_by_id = ctx.user.id
    row.updated_at = utcnow()
    audit.record(
        s,
        ctx,
        "dataset.tag",
        "dataset",
        name,
        project=project,
        summary={
            "tag": tag,
            "from": f"v{before.version}" if before else None,
            "to": f"v{version.version}",
        },
    )
    s.flush()
    return row


def tag_json(s: Session, row: DatasetTag, numbers: dict[int, int] | None = None) -> dict[str, Any]:
    """A tag and its version's number (from ``numbers``, see ``version_numbers``, if given)."""
    if numbers is None:
        numbers = version_numbers(s, [row])
    return {"tag": row.name, "version": numbers[row.version_id]}


def version_numbers(s: Session, tags: list[DatasetTag]) -> dict[int, int]:
    """Version id -> number of the versions ``tags`` point at, in one query."""
    ids = {row.version_id for row in tags}
    rows = s.execute(
        select(DatasetVersion.id, DatasetVersion.version).where(DatasetVersion.id.in_(ids))
    )
    return {version_id: number for version_id, number in rows}


def delete_tag(s: Session, ctx: Ctx, slug: str, name: str, tag: str) -> None:
    project, _ = require_project(s, ctx, slug, "datasets.write")
    dataset = _load(s, project, name, for_update=True)
    if tag == LATEST:
        raise BadRequest("tag: 'latest' cannot be removed", code="reserved_tag")
    row = s.scalar(
        select(DatasetTag).where(DatasetTag.dataset_id == dataset.id, DatasetTag.name == tag)
    )
    if row is None:
        raise NotFound(f"dataset '{name}' has no tag '{tag}'")
    audit.record(s, ctx, "dataset.untag", "dataset", name, project=project, summary={"tag": tag})
    s.delete(row)
    s.flush()


def tags_of(s: Session, dataset_id: int) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for name, version_id in s.execute(
        select(DatasetTag.name, DatasetTag.version_id)
        .where(DatasetTag.dataset_id == dataset_id)
        .order_by(DatasetTag.name)
    ):
        out.setdefault(version_id, []).append(name)
    return out


# -- commit sessions and publishing --------------------------------------------------
def begin_session(
    s: Session,
    ctx: Ctx,
    slug: str,
    name: str,
    session_id: str,
    *,
    kind: str = "commit",
    create_missing: bool = True,
    files: list[FileEntry] | None = None,
) -> tuple[Project, Dataset, CommitSession]:
    """Open a session for writing to ``name`` (created on first commit if missing)."""
    project, _ = require_project(s, ctx, slug, "datasets.write")
    made = False
    try:  # (a key-share lock: a dataset dropped at this moment is not found, then made anew)
        dataset = _load(s, project, name, key_share=True)
    except NotFound:
        if not create_missing:
            raise
        dataset, made = _create_for_commit(s, ctx, project, name)
    if kind == "upload":
        # starters in one project queue here: each counts the uploads the others opened
        lock_name(s, f"dataset-uploads:{project.id}")
        _check_open_uploads(s, ctx, project)
    session = CommitSession(
        id=session_id,
        dataset_id=dataset.id,
        user_id=ctx.user.id,
        kind=kind,
        files=[f.as_json() for f in files or []],
        made_dataset=made,
    )
    s.add(session)
    s.flush()
    return project, dataset, session


SHOWN_UPLOADS = 5  # open uploads a refusal names


def _check_open_uploads(s: Session, ctx: Ctx, project: Project) -> None:
    """Refuse a new upload past the open uploads a user (or everyone) may have in ``project``
    (``Policy.max_open_uploads_per_*``); the refusal names the open ones to abandon. The
    caller holds the project's upload lock, so that two starts cannot both take the last
    place."""
    policy = ctx.policy
    open_here = (
        select(CommitSession.id, Dataset.name, CommitSession.user_id)
        .join(Dataset, Dataset.id == CommitSession.dataset_id)
        .where(
            Dataset.project_id == project.id,
            CommitSession.kind == "upload",
            CommitSession.state == "open",
        )
    )
    mine = open_here.where(CommitSession.user_id == ctx.user.id)
    limits = [
        (policy.max_open_uploads_per_user, mine, "you have", "user"),
        (policy.max_open_uploads_per_project, open_here, "the project has", "project"),
    ]
    for limit, stmt, whose, setting in limits:
        if not limit:
            continue
        count = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        if count < limit:
            continue
        oldest = s.execute(mine.order_by(CommitSession.created_at).limit(SHOWN_UPLOADS)).all()
        listed = ", ".join(f"{name}/uploads/{upload_id}" for upload_id, name, _user in oldest)
        raise Conflict(
            f"uploads: {whose} {count} open uploads in project '{project.slug}', the most "
            f"allowed (Workbench.max_open_uploads_per_{setting}); commit or abandon one first "
            "(DELETE .../datasets/{name}/uploads/{id}; GET .../datasets-uploads lists them)"
            + (f"; your oldest: {listed}" if listed else ""),
            code="too_many_uploads",
        )


UPLOAD_SORTS = SortSpec(
    {"created": CommitSession.created_at}, id_column=CommitSession.id, default="created"
)


def list_open_uploads(
    s: Session,
    ctx: Ctx,
    slug: str,
    *,
    dataset: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[CommitSession]:
    """A page of the caller's open uploads in a project (everyone's, for an administrator),
    of one dataset if ``dataset`` is given: those to commit or abandon when the limit of open
    uploads is reached."""
    project, _ = require_project(s, ctx, slug, "datasets.write")
    stmt = (
        select(CommitSession)
        .join(Dataset, Dataset.id == CommitSession.dataset_id)
        .where(
            Dataset.project_id == project.id,
            CommitSession.kind == "upload",
            CommitSession.state == "open",
        )
        .options(defer(CommitSession.files))
    )
    if dataset is not None:
        stmt = stmt.where(Dataset.name == _load(s, project, dataset).name)
    if not is_superuser(ctx.user):
        stmt = stmt.where(CommitSession.user_id == ctx.user.id)
    return paginate(s, stmt, UPLOAD_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def open_uploads_json(s: Session, sessions: list[CommitSession]) -> list[dict[str, Any]]:
    """Open uploads as a list shows them (their datasets and owners read at once)."""
    dataset_ids = {u.dataset_id for u in sessions}
    user_ids = {u.user_id for u in sessions}
    names = {
        i: n
        for i, n in s.execute(select(Dataset.id, Dataset.name).where(Dataset.id.in_(dataset_ids)))
    }
    owners = {
        i: n for i, n in s.execute(select(User.id, User.username).where(User.id.in_(user_ids)))
    }
    return [
        {
            "id": u.id,
            "dataset": names.get(u.dataset_id) if u.dataset_id else None,
            "owner": owners.get(u.user_id) if u.user_id else None,
            "state": u.state,
            "created_at": u.created_at.isoformat(),
            "last_active_at": u.heartbeat_at.isoformat(),
        }
        for u in sessions
    ]


def _create_for_commit(s: Session, ctx: Ctx, project: Project, name: str) -> tuple[Dataset, bool]:
    """Create the dataset a first commit names (``True``); one a racing commit just created
    is used (``False``)."""
    try:
        return create(s, ctx, project.slug, name=name), True
    except Conflict:
        try:  # (key-share locked, as begin_session's: it may be dropped at this moment)
            return _load(s, project, name, key_share=True), False
        except NotFound:
            raise Conflict(f"name: a dataset named '{name}' already exists") from None


def _drop_if_never_published(s: Session, ctx: Ctx, project: Project, name: str) -> None:
    """Delete dataset ``name`` when a first commit made it and it still has nothing of its own
    (no version, no upload open, no description, card or metadata): an upload that ended
    unpublished leaves no empty dataset behind. Audited as ``dataset.delete``."""
    stmt = select(Dataset).where(Dataset.project_id == project.id, Dataset.name == name)

    def kept(dataset_id: int) -> bool:
        of_it = CommitSession.dataset_id == dataset_id
        version = select(DatasetVersion.id).where(DatasetVersion.dataset_id == dataset_id)
        still_open = select(CommitSession.id).where(of_it, CommitSession.state == "open")
        made = select(CommitSession.id).where(of_it, CommitSession.made_dataset)
        return bool(
            s.scalar(version.limit(1))
            or s.scalar(still_open.limit(1))
            or not s.scalar(made.limit(1))
        )

    # unlocked first: the end of an upload of a dataset with versions (most) takes no lock on
    # it (it waited behind a publish of that dataset, and GC's expiries could deadlock on it)
    found = s.scalar(select(Dataset.id).where(Dataset.project_id == project.id,
                                              Dataset.name == name))  # fmt: skip
    if found is None or kept(found):
        return
    # then locked, read anew (the row loaded before may predate a description given since): a
    # session starting now waits, then makes the dataset anew
    dataset = s.scalar(stmt.with_for_update().execution_options(populate_existing=True))
    if dataset is None or dataset.description or dataset.card or dataset.meta or kept(dataset.id):
        return
    audit.record(s, ctx, "dataset.delete", "dataset", name, project=project,
                 summary={"versions": 0, "reason": "first_upload_ended"})  # fmt: skip
    s.delete(dataset)
    s.flush()


def load_session(
    s: Session, ctx: Ctx, slug: str, name: str, session_id: str
) -> tuple[Project, Dataset, CommitSession]:
    project, _ = require_project(s, ctx, slug, "datasets.write")
    dataset = _load(s, project, name)
    # the manifest (``files``, megabytes for a big upload) is read only by those who use it
    session = s.get(CommitSession, session_id, options=[defer(CommitSession.files)])
    if session is None or session.dataset_id != dataset.id:
        raise NotFound(f"upload {session_id} not found")
    if session.user_id != ctx.user.id and not is_superuser(ctx.user):
        raise Forbidden(f"upload {session_id} belongs to someone else")
    return project, dataset, session


def session_files(session: CommitSession) -> list[FileEntry]:
    return [
        FileEntry(
            f["path"],
            f["size"],
            f["digest"],
            [(d, n) for d, n in f["chunks"]],
            f.get("media_type", "application/octet-stream"),
        )
        for f in session.files
    ]


def pinned_digests(s: Session, session_id: str, digests: list[str]) -> set[str]:
    """Those of ``digests`` pinned to the session: one by one (chunks it reused) or through
    a pack it stored."""
    out: set[str] = set()
    for start in range(0, len(digests), 500):
        batch = digests[start : start + 500]
        out.update(
            s.scalars(
                select(SessionChunk.chunk_digest).where(
                    SessionChunk.session_id == session_id, SessionChunk.chunk_digest.in_(batch)
                )
            )
        )
        out.update(
            s.scalars(
                select(BlobChunk.digest)
                .join(SessionPack, SessionPack.pack_id == BlobChunk.pack_id)
                .where(SessionPack.session_id == session_id, BlobChunk.digest.in_(batch))
            )
        )
    return out


def end_session(s: Session, session_id: str, state: str) -> None:
    s.execute(delete(SessionChunk).where(SessionChunk.session_id == session_id))
    s.execute(delete(SessionPack).where(SessionPack.session_id == session_id))
    s.execute(
        update(CommitSession)
        .where(CommitSession.id == session_id)
        .values(state=state, heartbeat_at=utcnow())
    )


def abandon_upload(s: Session, ctx: Ctx, slug: str, name: str, session_id: str) -> None:
    """End an open upload at its owner's (or an administrator's) request; its chunks become
    collectable."""
    project, _dataset, session = load_session(s, ctx, slug, name, session_id)
    if session.state != "open":
        raise Conflict(f"upload {session_id} is {session.state}", code=session.state)
    _end_upload(s, ctx, project, name, {"upload": session_id})


def end_refused_upload(
    s: Session, ctx: Ctx, slug: str, name: str, session_id: str, reason: str
) -> None:
    """End an upload whose commit was refused because its files cannot be published as
    declared (``reason``: the refusal's code); audited as an abandon, naming the reason."""
    project, _dataset, session = load_session(s, ctx, slug, name, session_id)
    if session.state == "open":
        _end_upload(s, ctx, project, name, {"upload": session_id, "reason": reason})


def end_failed_commit(s: Session, ctx: Ctx, session_id: str, reason: str) -> None:
    """End the caller's server-side folder commit ``session_id`` that failed (``reason``: the
    error's code, or its type), audited as an abandoned upload naming the reason. Access is
    not checked again: the caller opened the session. Nothing if it is no longer open (or
    went with its dataset)."""
    row = s.execute(
        select(CommitSession.state, Dataset.name, Project)
        .join(Dataset, Dataset.id == CommitSession.dataset_id)
        .join(Project, Project.id == Dataset.project_id)
        .where(CommitSession.id == session_id)
    ).first()
    if row is None or row[0] != "open":
        return
    _state, name, project = row
    summary = {"upload": session_id, "kind": "commit", "reason": reason}
    _end_upload(s, ctx, project, name, summary)


def _end_upload(s: Session, ctx: Ctx, project: Project, name: str, summary: dict[str, Any]) -> None:
    """Abort the open upload ``summary["upload"]`` of dataset ``name``, audited as abandoned."""
    end_session(s, summary["upload"], "aborted")
    audit.record(s, ctx, "dataset.upload_abandon", "dataset", name, project=project,
                 summary=summary)  # fmt: skip
    s.flush()
    _drop_if_never_published(s, ctx, project, name)


def expire_sessions(s: Session, ctx: Ctx, cutoff: datetime) -> list[str]:
    """End the open commits and uploads idle since before ``cutoff`` (garbage collection does,
    as the system); each is audited. Returns their ids."""
    rows = s.execute(
        select(CommitSession.id, CommitSession.kind, User.username, Dataset.name, Project)
        .outerjoin(Dataset, Dataset.id == CommitSession.dataset_id)
        .outerjoin(Project, Project.id == Dataset.project_id)
        .outerjoin(User, User.id == CommitSession.user_id)
        .where(CommitSession.state == "open", CommitSession.heartbeat_at < cutoff)
        .order_by(CommitSession.created_at)
    ).all()
    for session_id, kind, owner, name, project in rows:
        end_session(s, session_id, "expired")
        audit.record(
            s,
            ctx,
            "dataset.upload_expire",
            "dataset",
            name or "",
            project=project,
            summary={"upload": session_id, "kind": kind, "owner": owner},
        )
    s.flush()
    # every session ended first, then the datasets, in one order: as an abandon does (its
    # session, then its dataset), so that the two never wait on each other
    ended = {(p.id, n): p for _i, _k, _o, n, p in rows if p is not None and n is not None}
    for (_project_id, name), project in sorted(ended.items(), key=lambda item: item[0]):
        _drop_if_never_published(s, ctx, project, name)
    return [row[0] for row in rows]


def commit_request(
    *, message: str, parent: str | None, strict_parent: bool, mode: str, delete: list[str]
) -> dict[str, Any]:
    """What a commit of an upload asked for, as recorded on it once published: a retry that
    asks the same is answered with the version it produced."""
    return {
        "message": message,
        "parent": parent,
        "strict_parent": strict_parent,
        "mode": mode,
        "delete": sorted(set(delete)),
    }


def check_strict_parent(parent: str | None, strict_parent: bool) -> None:
    """``strict_parent`` guards a named ``parent``: without one it would guard nothing."""
    if strict_parent and not parent:
        raise BadRequest(
            "strict_parent: needs parent, the version you expect to be the latest "
            "(e.g. parent 'v3'); without one the commit is on the latest anyway",
            code="invalid_field",
        )


class Published(NamedTuple):
    """What a commit of an upload did: the version, whether it is new (not the latest found
    unchanged), and whether this answer repeats an earlier commit's (a retry)."""

    version: DatasetVersion
    created: bool
    replayed: bool = False


def published_result(s: Session, session: CommitSession, request: dict[str, Any]) -> Published:
    """The answer to a commit of an upload already published: the version it produced, when
    ``request`` is the one that published it (a retry after a lost answer); else a 409 naming
    that version."""
    done = session.commit_request or {}
    version = s.get(DatasetVersion, session.version_id) if session.version_id else None
    if version is None:
        raise Conflict(f"upload {session.id} is published", code="published")
    if {k: v for k, v in done.items() if k != "unchanged"} != request:
        raise Conflict(
            f"upload {session.id} is published already, as v{version.version} (by a commit "
            "with another message, parent or mode); start a new upload to commit again",
            code="published",
        )
    return Published(version, not done.get("unchanged", False), replayed=True)


def replay_commit(
    s: Session, ctx: Ctx, slug: str, name: str, session_id: str, request: dict[str, Any]
) -> Published:
    """``published_result`` of an upload, checked as a commit is (the caller's own, or any
    for an administrator); a 409 if it is not published."""
    _project, _dataset, session = load_session(s, ctx, slug, name, session_id)
    if session.state != "published":
        raise Conflict(f"upload {session_id} is {session.state}", code=session.state)
    return published_result(s, session, request)


def publish(
    s: Session,
    ctx: Ctx,
    slug: str,
    name: str,
    session_id: str,
    changes: Changes,
    *,
    message: str = "",
    parent: str | None = None,
    strict_parent: bool = False,
) -> Published:
    """Make a new version visible: the parent's files with ``changes`` applied, or exactly
    ``changes.put`` when ``replace_all``. Its chunks must all be stored (foreign keys check).
    Returns it, created; or, when its files would be exactly the latest version's (a folder
    committed again unchanged), that version, not created: no new version, nothing else
    written. A commit of an upload published already is answered as the one that published
    it was (``replayed``), if it asks the same (``published_result``)."""
    check_strict_parent(parent, strict_parent)
    project, dataset, session = load_session(s, ctx, slug, name, session_id)
    dataset = _load(s, project, name, for_update=True)  # one publisher at a time
    s.refresh(session)  # as a commit of this upload that held the lock before us left it
    message = check_text(message, "message", max_length=10_000, allow_empty=True)
    request = commit_request(
        message=message,
        parent=parent,
        strict_parent=strict_parent,
        mode="replace" if changes.replace_all else "update",
        delete=changes.delete,
    )
    if session.state == "published":  # by a request like this one, just before us?
        return published_result(s, session, request)
    if session.state != "open":
        raise Conflict(f"upload {session_id} is {session.state}", code=session.state)
    head = latest(s, dataset)
    base = resolve(s, dataset, parent) if parent else head
    if strict_parent and parent and head is not None and base is not None and head.id != base.id:
        raise Conflict(
            f"parent: v{base.version} is no longer the latest version of '{name}' "
            f"(v{head.version} is); commit on top of it or drop strict_parent",
            code="stale_parent",
        )
    # an update keeps the parent's other files: they are read a page at a time (for the new
    # version's digest, count and size, and the checks against the files put), and copied
    # inside the database with their chunk lists, never held here whatever their number
    put = {e.path: e for e in changes.put}
    parent_id = base.id if base is not None and not changes.replace_all else None
    deleted = _check_deletes(s, parent_id, changes.delete)
    if parent_id is None:
        manifest = sorted(put.values(), key=lambda e: e.path)
        check_manifest(manifest)
        totals = _Totals(len(manifest), sum(e.size for e in manifest), manifest_digest(manifest))
    else:  # the kept files passed these checks when their version was published
        totals, near, kept_any = _scan_parent(s, parent_id, put, deleted)
        check_manifest(list(put.values()), also=near, sort_names=kept_any)
        _check_stored_lengths(s, list(put.values()))
    if head is not None and _unchanged(s, head, totals, parent_id, put):
        end_session(s, session_id, "published")
        _record_published(s, session, head, {**request, "unchanged": True})
        return Published(head, False)
    number = (head.version if head else 0) + 1
    version = DatasetVersion(
        dataset_id=dataset.id,
        version=number,
        parent_id=base.id if base else None,
        message=message,
        author_id=ctx.user.id,
        file_count=totals.files,
        total_bytes=totals.bytes,
        manifest_digest=totals.digest,
    )
    s.add(version)
    s.flush()
    added = list(put.values())
    for cut in range(0, len(added), FILE_PAGE):  # (the rows of a page at a time)
        insert_many(
            s,
            DatasetFile.__table__,  # type: ignore[arg-type]
            [
                {
                    "version_id": version.id,
                    "path": e.path,
                    "size": e.size,
                    "digest": e.digest,
                    "media_type": e.media_type,
                    "chunk_count": len(e.chunks),
                }
                for e in added[cut : cut + FILE_PAGE]
            ],
        )
    _insert_spans(s, version.id, {path: e.chunks for path, e in put.items()})
    if parent_id is not None:
        _copy_kept(s, parent_id, version.id, deleted | put.keys())
    try:
        with s.begin_nested():
            _insert_version_chunks(s, version.id)
    except IntegrityError:
        raise Conflict(
            "some chunks of this version are not stored (the upload is incomplete)",
            code="missing_chunks",
        ) from None
    _move_tag(s, ctx, dataset, LATEST, version)
    end_session(s, session_id, "published")
    _record_published(s, session, version, {**request, "unchanged": False})
    dataset.updated_at = utcnow()
    audit.record(
        s,
        ctx,
        "dataset.commit",
        "dataset",
        name,
        project=project,
        summary={
            "version": number,
            "parent": base.version if base else None,
            "files": totals.files,
            "bytes": version.total_bytes,
        },
    )
    s.flush()
    return Published(version, True)


def _check_stored_lengths(s: Session, entries: list[FileEntry]) -> None:
    """One length for each chunk between the new files of an update and the files it keeps
    (whose lists are copied unread): each new chunk already stored must have the length the
    store holds, which is the one every published file gives it (checked when it was
    published). A 400 naming the first chunk declared otherwise."""
    declared: dict[str, tuple[str, int]] = {}
    for entry in entries:
        for digest, length in entry.chunks:
            declared.setdefault(digest, (entry.path, length))
    digests = sorted(declared)
    for cut in range(0, len(digests), 500):
        for digest, stored in s.execute(
            select(BlobChunk.digest, BlobChunk.length).where(
                BlobChunk.digest.in_(digests[cut : cut + 500])
            )
        ):
            path, length = declared[digest]
            if stored != length:
                raise BadRequest(
                    f"files[{path}]: chunk {digest} is declared with {length} bytes, but the "
                    f"store holds it with {stored} (the length published files, those this "
                    "update keeps included, give it); one content has one length",
                    code="chunk_length_mismatch",
                )


def _insert_spans(s: Session, version_id: int, chunks: dict[str, list[tuple[str, int]]]) -> None:
    """The spans of files just inserted for a version (``chunks``: their lists, by path)."""
    paths = list(chunks)
    for cut in range(0, len(paths), 500):
        page = s.execute(
            select(DatasetFile.path, DatasetFile.id).where(
                DatasetFile.version_id == version_id, DatasetFile.path.in_(paths[cut : cut + 500])
            )
        ).all()
        rows = [row for path, file_id in page for row in span_rows(file_id, chunks[path])]
        insert_many(s, DatasetFileSpan.__table__, rows)  # type: ignore[arg-type]


def _copy_files(s: Session, parent_id: int, version_id: int, paths: list[str]) -> None:
    """Copy files ``paths`` of version ``parent_id`` into ``version_id``, their spans (their
    chunk lists) with them, inside the database (a batch of paths at a time)."""
    old, new = aliased(DatasetFile), aliased(DatasetFile)
    columns = ["version_id", "path", "size", "digest", "media_type", "chunk_count"]
    for cut in range(0, len(paths), 500):
        batch = paths[cut : cut + 500]
        s.execute(
            insert(DatasetFile).from_select(
                columns,
                select(
                    literal(version_id, DatasetFile.version_id.type),
                    DatasetFile.path,
                    DatasetFile.size,
                    DatasetFile.digest,
                    DatasetFile.media_type,
                    DatasetFile.chunk_count,
                ).where(DatasetFile.version_id == parent_id, DatasetFile.path.in_(batch)),
            )
        )
        s.execute(
            insert(DatasetFileSpan).from_select(
                ["file_id", "first_byte", "nbytes", "chunks"],
                select(
                    new.id,
                    DatasetFileSpan.first_byte,
                    DatasetFileSpan.nbytes,
                    DatasetFileSpan.chunks,
                )
                .join(old, old.id == DatasetFileSpan.file_id)
                .join(new, and_(new.path == old.path, new.version_id == version_id))
                .where(old.version_id == parent_id, old.path.in_(batch)),
            )
        )


class _Totals(NamedTuple):
    """What a version's row says of its files: how many, their bytes, the manifest digest."""

    files: int
    bytes: int
    digest: str


class _ManifestHasher:
    """``manifest_digest`` of files given one at a time in path order (a page of lines is
    hashed at a time): the same digest, without holding every file."""

    def __init__(self) -> None:
        self._hasher = blake3(max_threads=1)
        self._lines: list[str] = []
        self._separator = ""
        self.files = 0
        self.bytes = 0

    def add(self, path: str, size: int, digest: str) -> None:
        self._lines.append(f"{path}\t{size}\t{digest}")
        self.files += 1
        self.bytes += size
        if len(self._lines) >= 1000:
            self._flush()

    def _flush(self) -> None:
        if self._lines:
            self._hasher.update((self._separator + "\n".join(self._lines)).encode())
            self._separator = "\n"
            self._lines = []

    def totals(self) -> _Totals:
        self._flush()
        return _Totals(self.files, self.bytes, self._hasher.hexdigest())


def _check_deletes(s: Session, parent_id: int | None, delete: list[str]) -> set[str]:
    """The paths an update deletes, each checked (a valid path of the parent), in the order
    given: a 400 naming the first that is not."""
    paths = list(dict.fromkeys(delete))  # (a path listed twice is deleted once)
    present: set[str] = set()
    if parent_id is not None:
        named = [p for p in paths if isinstance(p, str)]
        for cut in range(0, len(named), 500):
            present.update(
                s.scalars(
                    select(DatasetFile.path).where(
                        DatasetFile.version_id == parent_id,
                        DatasetFile.path.in_(named[cut : cut + 500]),
                    )
                )
            )
    for path in paths:
        check_path(path, "delete")
        if path not in present:
            raise BadRequest(f"delete: {path!r} is not in the parent version", code="invalid_path")
    return set(paths)


def _file_pages(s: Session, version_id: int) -> Iterator[Sequence[Row[str, int, str, str]]]:
    """A version's files (path, size, digest, media type) in ``FILE_PAGE`` pages, by path in
    code-point order (Python's order of str, that of ``manifest_digest``): one query, streamed
    (a server-side cursor on PostgreSQL, whose own order is the database's collation's unless
    "C" is asked; SQLite's BINARY order is the code points')."""
    order: Any = DatasetFile.path
    if s.get_bind().dialect.name == "postgresql":
        order = DatasetFile.path.collate("C")
    result = s.execute(
        select(DatasetFile.path, DatasetFile.size, DatasetFile.digest, DatasetFile.media_type)
        .where(DatasetFile.version_id == version_id)
        .order_by(order),
        execution_options={"yield_per": FILE_PAGE},
    )
    with result:
        yield from result.partitions()


def _scan_parent(
    s: Session, parent_id: int, put: dict[str, FileEntry], removed: set[str]
) -> tuple[_Totals, list[str], bool]:
    """Read the parent's files a page at a time for an update that puts ``put`` and deletes
    ``removed``: the new version's totals (its kept files merged with ``put`` in path order),
    the kept paths that ``check_manifest`` must check ``put`` against (a folder of a put file,
    a file under a put path, a Unicode-normalization twin of one: at most a few per put file)
    and whether any file is kept."""
    removed = removed | put.keys()
    put_paths = sorted(put)
    folders = {path[:cut] for path in put_paths for cut in _slashes(path)}
    twins = {p if p.isascii() else unicodedata.normalize("NFC", p) for p in put_paths}
    under: set[str] = set()  # put paths found to be a folder of kept files (one is enough)
    near: list[str] = []
    hasher = _ManifestHasher()
    j, previous, kept_any = 0, "", False
    for page in _file_pages(s, parent_id):
        for path, size, digest, _kind in page:
            if path <= previous:  # (the digest needs code-point order; never hash another)
                raise RuntimeError(f"files of version {parent_id} not in code-point order")
            previous = path
            if path in removed:
                continue
            kept_any = True
            while j < len(put_paths) and put_paths[j] < path:
                entry = put[put_paths[j]]
                hasher.add(entry.path, entry.size, entry.digest)
                j += 1
            hasher.add(path, size, digest)
            twin = path if path.isascii() else unicodedata.normalize("NFC", path)
            if path in folders or twin in twins:
                near.append(path)
                continue
            for cut in _slashes(path):
                folder = path[:cut]
                if folder in put and folder not in under:
                    under.add(folder)
                    near.append(path)
                    break
    for path in put_paths[j:]:
        entry = put[path]
        hasher.add(entry.path, entry.size, entry.digest)
    return hasher.totals(), near, kept_any


def _slashes(path: str) -> Iterator[int]:
    cut = path.find("/")
    while cut != -1:
        yield cut
        cut = path.find("/", cut + 1)


def _copy_kept(s: Session, parent_id: int, version_id: int, removed: set[str]) -> None:
    """Copy the parent's files but ``removed`` into ``version_id``, a page of paths at a time
    (by path, through the index of a version's paths), with their spans."""
    after: str | None = None
    while True:
        stmt = select(DatasetFile.path).where(DatasetFile.version_id == parent_id)
        if after is not None:
            stmt = stmt.where(DatasetFile.path > after)
        page = s.scalars(stmt.order_by(DatasetFile.path).limit(FILE_PAGE)).all()
        if not page:
            return
        _copy_files(s, parent_id, version_id, [p for p in page if p not in removed])
        after = page[-1]


def _insert_version_chunks(s: Session, version_id: int) -> None:
    """The ``VersionChunk`` rows of a version whose files and spans are written: read from
    its spans 200 at a time, those of a page of its files (by path, through the index of a
    version's paths) at a time: bounded memory, and each query reads only that page's spans
    (a keyset over all the version's spans at once was planned as a scan from its first on
    SQLite: a commit of 200,000 files spent most of its time there). A chunk not stored fails
    a foreign key."""
    after_path: str | None = None
    while True:
        stmt = select(DatasetFile.id, DatasetFile.path).where(DatasetFile.version_id == version_id)
        if after_path is not None:
            stmt = stmt.where(DatasetFile.path > after_path)
        files = s.execute(stmt.order_by(DatasetFile.path).limit(500)).all()
        if not files:
            return
        ids = [file_id for file_id, _path in files]
        after = (0, -1)
        while True:
            page = s.execute(
                select(DatasetFileSpan.file_id, DatasetFileSpan.first_byte, DatasetFileSpan.chunks)
                .where(
                    DatasetFileSpan.file_id.in_(ids),
                    tuple_(DatasetFileSpan.file_id, DatasetFileSpan.first_byte) > tuple_(*after),
                )
                .order_by(DatasetFileSpan.file_id, DatasetFileSpan.first_byte)
                .limit(200)
            ).all()
            if not page:
                break
            digests = sorted({d for _f, _b, chunks in page for d, _n in chunks})
            insert_ignore(
                s,
                VersionChunk.__table__,  # type: ignore[arg-type]
                [{"version_id": version_id, "chunk_digest": d} for d in digests],
            )
            after = (page[-1][0], page[-1][1])
        after_path = files[-1][1]


def _record_published(
    s: Session, session: CommitSession, version: DatasetVersion, request: dict[str, Any]
) -> None:
    s.execute(
        update(CommitSession)
        .where(CommitSession.id == session.id)
        .values(version_id=version.id, commit_request=request)
    )


def _unchanged(
    s: Session,
    head: DatasetVersion,
    totals: _Totals,
    parent_id: int | None,
    put: dict[str, FileEntry],
) -> bool:
    """Whether the new version's files (``totals``: their count and digest; the parent's
    files but those replaced or deleted, plus ``put``) are exactly ``head``'s: paths, contents
    (by the manifest digest), media types. Reads the media types of ``put`` and, when the
    parent is not ``head``, those of the kept files that differ between the two (a page at a
    time), never every file."""
    if head.manifest_digest != totals.digest or head.file_count != totals.files:
        return False
    if parent_id is None:  # the new version is ``put`` (the changed files): compare them all
        have = {(e.path, e.media_type) for e in summaries_of(s, head.id)}
        return have == {(e.path, e.media_type) for e in put.values()}
    paths = list(put)
    for cut in range(0, len(paths), 500):
        batch = paths[cut : cut + 500]
        rows = s.execute(
            select(DatasetFile.path, DatasetFile.media_type).where(
                DatasetFile.version_id == head.id, DatasetFile.path.in_(batch)
            )
        ).all()
        if len(rows) != len(batch) or any(put[p].media_type != kind for p, kind in rows):
            return False
    if head.id == parent_id:  # the kept files are the head's own
        return True
    old, new = aliased(DatasetFile), aliased(DatasetFile)
    differing = s.execute(
        select(old.path)
        .join(new, and_(new.version_id == head.id, new.path == old.path))
        .where(old.version_id == parent_id, old.media_type != new.media_type),
        execution_options={"yield_per": FILE_PAGE},
    )
    with differing:
        return all(path in put for path in differing.scalars())


def _move_tag(s: Session, ctx: Ctx, dataset: Dataset, tag: str, version: DatasetVersion) -> None:
    row = s.scalar(
        select(DatasetTag).where(DatasetTag.dataset_id == dataset.id, DatasetTag.name == tag)
    )
    if row is None:
        s.add(
            DatasetTag(
                dataset_id=dataset.id, name=tag, version_id=version.id, updated_by_id=ctx.user.id
            )
        )
    else:
        row.version_id = version.id
        row.updated_by_id = ctx.user.id
        row.updated_at = utcnow()


# -- garbage collection --------------------------------------------------------------
def start_gc(s: Session, ctx: Ctx, slug: str, *, dry_run: bool) -> Operation:
    """The operation of a garbage collection asked for through project ``slug``; one that
    deletes (not a dry run) is audited."""
    project, _ = require_project(s, ctx, slug, "datasets.gc")
    op = operations.start(s, ctx, "gc", project=project)
    if not dry_run:
        audit.record(
            s, ctx, "dataset.gc", "operation", op.id, project=project, summary={"dry_run": False}
        )
    return op


# -- verification --------------------------------------------------------------------
VERIFY_KIND = "verify_version"


def start_verify(
    s: Session, ctx: Ctx, slug: str, name: str, ref: str
) -> tuple[Operation, int, bool]:
    """The operation verifying a version (editors): the one already running for it, if any
    (whoever started it), else a new one. Returns it, the version's number and whether it is
    new (its job is the caller's to run)."""
    project, _ = require_project(s, ctx, slug, "datasets.verify")
    dataset = _load(s, project, name, for_update=True)  # one starter at a time
    version = resolve(s, dataset, ref)
    target = {"dataset": name, "version": version.version}
    running = s.scalar(
        select(Operation)
        .where(
            Operation.kind == VERIFY_KIND,
            Operation.project_id == project.id,
            Operation.state == "running",
            Operation.result["dataset"].as_string() == name,
            Operation.result["version"].as_integer() == version.version,
        )
        .order_by(Operation.id)
        .limit(1)
    )
    if running is not None:
        return running, version.version, False
    op = operations.start(s, ctx, VERIFY_KIND, project=project)
    op.result = target  # what it verifies, until its report replaces it
    s.flush()
    return op, version.version, True


# -- lineage -------------------------------------------------------------------------
def check_consumer(consumer: object) -> str:
    if not isinstance(consumer, str) or not 1 <= len(consumer) <= 255:
        raise BadRequest(
            "consumer: must be 1-255 characters (e.g. 'run:4f2a')", code="invalid_field"
        )
    return check_text(consumer, "consumer", max_length=255)


def record_lineage(
    s: Session, ctx: Ctx, slug: str, name: str, ref: str, *, consumer: str, direction: str
) -> DatasetLineage:
    """Record that ``consumer`` read or wrote a version (readers need viewer, writers editor)."""
    if direction not in ("read", "write"):
        raise BadRequest("direction: must be 'read' or 'write'", code="invalid_field")
    action = "datasets.read" if direction == "read" else "datasets.write"
    project, _ = require_project(s, ctx, slug, action)
    dataset = _load(s, project, name)
    version = resolve(s, dataset, ref)
    consumer = check_consumer(consumer)
    found = select(DatasetLineage).where(
        DatasetLineage.version_id == version.id,
        DatasetLineage.consumer == consumer,
        DatasetLineage.direction == direction,
    )
    row = s.scalar(found)
    if row is None:
        row = DatasetLineage(
            version_id=version.id,
            consumer=consumer,
            direction=direction,
            recorded_by_id=ctx.user.id,
        )
        try:
            with s.begin_nested():
                s.add(row)
                s.flush()
        except IntegrityError:  # a request racing this one recorded it first
            raced = s.scalar(found)
            if raced is None:
                raise
            return raced
        audit.record(
            s,
            ctx,
            "dataset.lineage",
            "dataset",
            name,
            project=project,
            summary={"version": version.version, "consumer": consumer, "direction": direction},
        )
    s.flush()
    return row


def version_lineage(
    s: Session,
    ctx: Ctx,
    slug: str,
    name: str,
    ref: str,
    *,
    direction: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[DatasetLineage]:
    """Which consumers (runs ...) read or wrote this version."""
    _project, _dataset, version = get_version(s, ctx, slug, name, ref)
    stmt = select(DatasetLineage).where(DatasetLineage.version_id == version.id)
    if direction:
        stmt = stmt.where(DatasetLineage.direction == direction)
    return paginate(s, stmt, LINEAGE_SORTS, ctx, sort=None, limit=limit, cursor=cursor)


def consumer_lineage(
    s: Session,
    ctx: Ctx,
    consumer: str,
    *,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[DatasetLineage]:
    """Which dataset versions ``consumer`` read or wrote, in projects the caller can see."""
    from .projects import visible_project_ids

    stmt = (
        select(DatasetLineage)
        .join(DatasetVersion, DatasetVersion.id == DatasetLineage.version_id)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .join(Project, Project.id == Dataset.project_id)
        .where(DatasetLineage.consumer == check_consumer(consumer), Project.deleted_at.is_(None))
    )
    if not is_superuser(ctx.user):
        stmt = stmt.where(Dataset.project_id.in_(visible_project_ids(ctx.user)))
    return paginate(s, stmt, LINEAGE_SORTS, ctx, sort=None, limit=limit, cursor=cursor)


# -- serialisation -------------------------------------------------------------------
@dataclass
class DatasetFacts:
    """What the JSON of some datasets needs beyond their rows, read for all of them at once."""

    projects: dict[int, Project]
    roles: dict[int, Role]
    heads: dict[int, tuple[int, int]]  # dataset id -> (latest version, version count)
    tags: dict[int, dict[str, str]]  # dataset id -> {tag: 'v3'}


def dataset_facts(s: Session, ctx: Ctx, datasets: list[Dataset]) -> DatasetFacts:
    """The facts of ``datasets`` in a few queries, whatever their number (for list pages)."""
    ids = [d.id for d in datasets]
    project_ids = {d.project_id for d in datasets}
    projects = {p.id: p for p in s.scalars(select(Project).where(Project.id.in_(project_ids)))}
    heads: dict[int, tuple[int, int]] = {
        dataset_id: (top, count)
        for dataset_id, top, count in s.execute(
            select(DatasetVersion.dataset_id, func.max(DatasetVersion.version), func.count())
            .where(DatasetVersion.dataset_id.in_(ids))
            .group_by(DatasetVersion.dataset_id)
        )
    }
    tags: dict[int, dict[str, str]] = {}
    for dataset_id, tag, number in s.execute(
        select(DatasetTag.dataset_id, DatasetTag.name, DatasetVersion.version)
        .join(DatasetVersion, DatasetVersion.id == DatasetTag.version_id)
        .where(DatasetTag.dataset_id.in_(ids))
        .order_by(DatasetTag.name)
    ):
        tags.setdefault(dataset_id, {})[tag] = f"v{number}"
    roles = roles_for_projects(s, ctx.user, list(projects.values()))
    return DatasetFacts(projects, roles, heads, tags)


def dataset_json(
    s: Session,
    ctx: Ctx,
    dataset: Dataset,
    project: Project | None = None,
    *,
    facts: DatasetFacts | None = None,
) -> dict[str, Any]:
    """A dataset as the API shows it (``facts``: from ``dataset_facts``, for a list page)."""
    if facts is None:
        facts = dataset_facts(s, ctx, [dataset])
    project = project or facts.projects[dataset.project_id]
    head, count = facts.heads.get(dataset.id, (None, 0))
    return {
        "project": project.slug,
        "name": dataset.name,
        "description": dataset.description,
        "card": dataset.card,
        "metadata": dataset.meta,
        "latest_version": head,
        "version_count": count,
        "tags": facts.tags.get(dataset.id, {}),
        "can_write": facts.roles[project.id] >= Role.EDITOR,
        "created_at": dataset.created_at.isoformat(),
        "updated_at": dataset.updated_at.isoformat(),
        "etag": etag(dataset),
    }


@dataclass
class VersionRefs:
    """The authors' names and parents' numbers of some versions, read at once."""

    authors: dict[int, str]  # user id -> username
    parents: dict[int, int]  # version id -> number


def version_refs(s: Session, versions: list[DatasetVersion]) -> VersionRefs:
    """The authors and parents of ``versions`` in two queries (for list pages)."""
    user_ids = {v.author_id for v in versions if v.author_id}
    parent_ids = {v.parent_id for v in versions if v.parent_id}
    authors = s.execute(select(User.id, User.username).where(User.id.in_(user_ids)))
    parents = s.execute(
        select(DatasetVersion.id, DatasetVersion.version).where(DatasetVersion.id.in_(parent_ids))
    )
    return VersionRefs(
        {user_id: name for user_id, name in authors},
        {version_id: number for version_id, number in parents},
    )


def version_json(
    s: Session,
    version: DatasetVersion,
    tags: dict[int, list[str]] | None = None,
    refs: VersionRefs | None = None,
) -> dict[str, Any]:
    """A version as the API shows it (``tags`` and ``refs``: read once for a list page)."""
    if refs is None:
        refs = version_refs(s, [version])
    if tags is None:
        tags = tags_of(s, version.dataset_id)
    return {
        "version": version.version,
        "name": f"v{version.version}",
        "parent": refs.parents.get(version.parent_id) if version.parent_id else None,
        "message": version.message,
        "author": refs.authors.get(version.author_id) if version.author_id else None,
        "file_count": version.file_count,
        "total_bytes": version.total_bytes,
        "manifest_digest": version.manifest_digest,
        "tags": tags.get(version.id, []),
        "created_at": version.created_at.isoformat(),
    }


def file_json(
    row: DatasetFile | FileEntry, *, chunks: list[tuple[str, int]] | None = None
) -> dict[str, Any]:
    """A file as the API shows it; with its chunk list when ``chunks`` is given (a stored
    file's, from ``chunk_lists``; an entry's own otherwise)."""
    count = row.chunk_count if isinstance(row, DatasetFile) else len(row.chunks)
    data: dict[str, Any] = {
        "path": row.path,
        "size": row.size,
        "digest": row.digest,
        "media_type": row.media_type,
        "chunk_count": count,
    }
    if chunks is not None:
        data["chunks"] = [[d, n] for d, n in chunks]
    return data


@dataclass
class LineageRefs:
    """What lineage records name (versions with their dataset and project, recorders)."""

    versions: dict[int, tuple[str, str, int]]  # version id -> (project slug, dataset, number)
    users: dict[int, str]  # user id -> username


def lineage_refs(s: Session, rows: list[DatasetLineage]) -> LineageRefs:
    """The versions and recorders of lineage ``rows`` in two queries (for list pages)."""
    version_ids = {r.version_id for r in rows}
    user_ids = {r.recorded_by_id for r in rows if r.recorded_by_id}
    versions = s.execute(
        select(DatasetVersion.id, Project.slug, Dataset.name, DatasetVersion.version)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .join(Project, Project.id == Dataset.project_id)
        .where(DatasetVersion.id.in_(version_ids))
    )
    users = s.execute(select(User.id, User.username).where(User.id.in_(user_ids)))
    return LineageRefs(
        {version_id: (slug, name, number) for version_id, slug, name, number in versions},
        {user_id: name for user_id, name in users},
    )


def lineage_json(
    s: Session, row: DatasetLineage, refs: LineageRefs | None = None
) -> dict[str, Any]:
    """A lineage record as the API shows it (``refs``: read once for a list page)."""
    if refs is None:
        refs = lineage_refs(s, [row])
    slug, dataset, number = refs.versions[row.version_id]
    return {
        "project": slug,
        "dataset": dataset,
        "version": number,
        "consumer": row.consumer,
        "direction": row.direction,
        "recorded_by": refs.users.get(row.recorded_by_id) if row.recorded_by_id else None,
        "time": row.created_at.isoformat(),
    }
