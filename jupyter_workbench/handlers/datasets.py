"""Datasets over REST: datasets, versions, files (ranged downloads, tar), tags, diffs, lineage,
resumable chunk uploads, verification, garbage collection and operations."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.orm import Session

from ..core import datasets as ds
from ..core import operations
from ..core.access import is_superuser
from ..core.context import Ctx
from ..core.dataset_paths import servable_media_type
from ..core.errors import Forbidden, RangeNotSatisfiable
from ..core.etags import none_match
from ..dataset_jobs import DatasetJobs, Progress
from . import schemas as S
from .base import Param, WorkbenchHandler, attachment, endpoint, page_json

META_PARAM = re.compile(r"^meta\.([A-Za-z0-9_.-]{1,64})$")
PAGING_ONLY = (
    Param("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Items per page."),
    S.CURSOR_PARAM,
)
SEARCH_QUERY = (
    Param("q", {"type": "string", "maxLength": 200}, "Text in the name, description or card."),
    Param("tag", {"type": "string", "maxLength": 64}, "A tag from the metadata's 'tags'."),
    Param("license", {"type": "string", "maxLength": 200}, "metadata.license equals this."),
    Param("source", {"type": "string", "maxLength": 2000}, "metadata.source equals this."),
    *S.paging(ds.DATASET_SORTS),
)


class DatasetHandler(WorkbenchHandler):
    """Shared helpers of the dataset handlers."""

    @property
    def jobs(self) -> DatasetJobs:
        return self.service.datasets

    async def blocking(self, fn: Callable[[], Any]) -> Any:
        """Run byte-moving work on the I/O threads (not the database ones)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.service.io_executor, fn)

    async def stream(self, pieces: Iterator[bytes], content_type: str) -> None:
        """Send ``pieces`` as the body, of type ``content_type``."""
        self.set_header("Content-Type", content_type)
        loop = asyncio.get_running_loop()
        done = object()
        while True:
            piece = await loop.run_in_executor(self.service.io_executor, next, pieces, done)
            if piece is done:
                break
            self.write(piece)  # type: ignore[arg-type]
            await self.flush()
        # (APIHandler.finish sets JSON's type, which would win where nothing was flushed yet)
        self.finish(set_content_type=content_type)

    def background(
        self, kind: str, slug: str | None, job: Callable[[Progress], dict[str, Any]]
    ) -> str:
        """Start ``job`` as an operation; the caller answers 202 with it at once."""
        op_id = self.jobs.start_operation(self.identity(), kind, slug)
        self.run_in_background(op_id, job)
        return op_id

    def run_in_background(self, op_id: str, job: Callable[[Progress], dict[str, Any]]) -> None:
        """Run ``job`` on the I/O threads, reporting to operation ``op_id``."""
        future = self.service.io_executor.submit(self.jobs.run_operation, op_id, job)
        self.service.track(future)

    async def reply_operation(self, op_id: str) -> None:
        data = await self.call(
            lambda s, ctx: operations.operation_json(operations.get(s, ctx, op_id))
        )
        self.set_header("Location", f"{self.base_url}workbench/api/v1/operations/{op_id}")
        self.reply(data, status=202)


def _meta_filters(query: dict[str, Any]) -> dict[str, str]:
    return {key: query[key] for key in ("license", "source") if key in query}


class SearchHandler(DatasetHandler):
    @endpoint(
        action="datasets.search",
        summary="Search datasets of every project you can see",
        response=S.page_of(S.DATASET),
        query=SEARCH_QUERY,
    )
    async def get(self) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = ds.search(
                s,
                ctx,
                q=q.get("q"),
                tag=q.get("tag"),
                meta=_meta_filters(q),
                **self.page_args(),
            )
            facts = ds.dataset_facts(s, ctx, page.items)
            return page_json(page, lambda d: ds.dataset_json(s, ctx, d, facts=facts))

        self.reply(await self.call(work))


class DatasetsHandler(DatasetHandler):
    @endpoint(
        action="datasets.read",
        summary="List a project's datasets",
        response=S.page_of(S.DATASET),
        query=SEARCH_QUERY,
    )
    async def get(self, slug: str) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = ds.list_datasets(
                s,
                ctx,
                slug,
                q=q.get("q"),
                tag=q.get("tag"),
                meta=_meta_filters(q),
                **self.page_args(),
            )
            facts = ds.dataset_facts(s, ctx, page.items)
            return page_json(page, lambda d: ds.dataset_json(s, ctx, d, facts=facts))

        self.reply(await self.call(work))

    @endpoint(
        action="datasets.write",
        summary="Create a dataset (commits also create one)",
        status=201,
        body=S.DATASET_CREATE,
        response=S.DATASET,
        example={
            "name": "{fresh}",
            "description": "raw events",
            "metadata": {"license": "CC-BY-4.0", "tags": ["events"]},
        },
    )
    async def post(self, slug: str) -> None:
        b = self.body

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            dataset = ds.create(
                s,
                ctx,
                slug,
                name=b["name"],
                description=b.get("description", ""),
                card=b.get("card", ""),
                metadata=b.get("metadata"),
            )
            return ds.dataset_json(s, ctx, dataset)

        data = await self.call(work)
        self.reply(data, status=201, etag=data["etag"])


class OneDatasetHandler(DatasetHandler):
    @endpoint(action="datasets.read", summary="Get a dataset", response=S.DATASET)
    async def get(self, slug: str, name: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            project, dataset = ds.get(s, ctx, slug, name)
            return ds.dataset_json(s, ctx, dataset, project)

        data = await self.call(work)
        self.reply(data, etag=data["etag"])

    @endpoint(
        action="datasets.write",
        summary="Update the description, card or metadata",
        body=S.DATASET_UPDATE,
        response=S.DATASET,
        example={"card": "# Events\nOne row per click."},
    )
    async def patch(self, slug: str, name: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            dataset = ds.update_dataset(s, ctx, slug, name, self.body, if_match=self.if_match)
            return ds.dataset_json(s, ctx, dataset)

        data = await self.call(work)
        self.reply(data, etag=data["etag"])

    @endpoint(action="datasets.delete", summary="Delete a dataset and all its versions", status=204)
    async def delete(self, slug: str, name: str) -> None:
        await self.call(lambda s, ctx: ds.delete_dataset(s, ctx, slug, name))
        self.reply(None, status=204)


class VersionsHandler(DatasetHandler):
    @endpoint(
        action="datasets.read",
        summary="List versions (newest first)",
        response=S.page_of(S.VERSION),
        query=S.paging(ds.VERSION_SORTS),
    )
    async def get(self, slug: str, name: str) -> None:

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = ds.list_versions(s, ctx, slug, name, **self.page_args())
            tags = ds.tags_of(s, page.items[0].dataset_id) if page.items else {}
            refs = ds.version_refs(s, page.items)
            return page_json(page, lambda v: ds.version_json(s, v, tags, refs))

        self.reply(await self.call(work))


class VersionHandler(DatasetHandler):
    @endpoint(
        action="datasets.read", summary="Get a version ('v3', '3' or a tag)", response=S.VERSION
    )
    async def get(self, slug: str, name: str, ref: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return ds.version_json(s, ds.get_version(s, ctx, slug, name, ref)[2])

        self.reply(await self.call(work))


class FilesHandler(DatasetHandler):
    @endpoint(
        action="datasets.read",
        summary="List the files of a version",
        response=S.page_of(S.DATASET_FILE),
        query=(
            Param("prefix", {"type": "string", "maxLength": 1024}, "Only paths starting so."),
            Param("chunks", {"type": "boolean"}, "Include each file's chunk list."),
            *S.paging(ds.FILE_SORTS),
        ),
    )
    async def get(self, slug: str, name: str, ref: str) -> None:
        q = self.query
        with_chunks = bool(q.get("chunks", False))

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = ds.list_files(
                s,
                ctx,
                slug,
                name,
                ref,
                prefix=q.get("prefix"),
                **self.page_args(),
            )
            if not with_chunks:
                return page_json(page, ds.file_json)
            lists = ds.chunk_lists(s, [f.id for f in page.items])
            return page_json(page, lambda f: ds.file_json(f, chunks=lists.get(f.id, [])))

        self.reply(await self.call(work))


RANGE_RE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
_PAST_ANY_FILE = 10**18  # what a longer position than this many digits stands for


def _position(digits: str) -> int:
    return int(digits) if len(digits) < 18 else _PAST_ANY_FILE


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a single 'bytes=' range, or None for the whole file."""
    if not header:
        return None
    match = RANGE_RE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None  # not a form we serve: answer with the whole file, as RFC 9110 allows
    first, last = match.group(1), match.group(2)
    if first:
        start = _position(first)
        end = min(_position(last) + 1, size) if last else size
    else:
        start, end = max(size - _position(last), 0), size
    if start >= size or start >= end:
        raise RangeNotSatisfiable(f"Range: {header!r} is outside the file's {size} bytes")
    return start, end


class FileHandler(DatasetHandler):
    @endpoint(
        action="datasets.read",
        summary="Download one file (supports HTTP Range requests)",
        produces="*/*",
        errors=(416,),
    )
    async def get(self, slug: str, name: str, ref: str, path: str) -> None:
        identity = self.identity()
        number, entry = await self.blocking(
            lambda: self.jobs.file_head(identity, slug, name, ref, path)
        )
        tag = f'"blake3-{entry.digest}"'
        content_type = servable_media_type(entry.media_type)
        self.set_header("ETag", tag)
        self.set_header("Accept-Ranges", "bytes")
        self.set_header("Content-Type", content_type)
        self.set_header("X-Dataset-Version", str(number))
        self.set_header("Content-Disposition", attachment(entry.path.rsplit("/", 1)[-1]))
        if none_match(self.request.headers.get("If-None-Match"), tag):
            self.set_status(304)
            self.finish()
            return
        ranged = self.request.headers.get("Range")
        if_range = self.request.headers.get("If-Range")
        if if_range is not None and if_range.strip() != tag:
            ranged = None  # the client's part is of another file: send this one whole
        try:
            wanted = parse_range(ranged, entry.size)
        except RangeNotSatisfiable:
            self.error_headers["Content-Range"] = f"bytes */{entry.size}"
            raise
        start, end = (0, entry.size) if wanted is None else wanted
        if wanted is not None:
            self.set_status(206)
            self.set_header("Content-Range", f"bytes {start}-{end - 1}/{entry.size}")
        self.set_header("Content-Length", str(end - start))
        if self.request.method == "HEAD":
            self.finish(set_content_type=content_type)
            return
        await self.stream(self.jobs.read_file(entry, start, end), content_type)

    async def head(self, **path: str) -> None:
        """As GET, without the bytes: the size, type and ETag that tools reading a file by
        ranges ask first (DuckDB, Polars, curl -I)."""
        await self.get(**path)


class ArchiveHandler(DatasetHandler):
    @endpoint(
        action="datasets.read",
        summary="Download a whole version as a tar stream",
        produces="application/x-tar",
    )
    async def get(self, slug: str, name: str, ref: str) -> None:
        identity = self.identity()
        number, pieces = await self.blocking(lambda: self.jobs.archive(identity, slug, name, ref))
        self.set_header("Content-Disposition", attachment(f"{name}-v{number}.tar"))
        await self.stream(pieces, "application/x-tar")


class DiffHandler(DatasetHandler):
    @endpoint(
        action="datasets.read",
        summary="Diff two versions: files, and CSV/Parquet schema and rows",
        response=S.VERSION_DIFF,
        query=(
            Param(
                "from",
                {"type": "string", "maxLength": 64},
                "Older version (e.g. v1).",
                required=True,
                example="v1",
            ),
            Param("to", {"type": "string", "maxLength": 64}, "Newer version (default latest)."),
        ),
    )
    async def get(self, slug: str, name: str) -> None:
        old, new = self.query["from"], self.query.get("to", ds.LATEST)
        identity = self.identity()
        self.reply(await self.blocking(lambda: self.jobs.diff(identity, slug, name, old, new)))


class TagsHandler(DatasetHandler):
    @endpoint(
        action="datasets.read",
        summary="A page of the dataset's tags (at most 1000 a dataset), by name or last moved",
        response=S.page_of(S.TAG),
        query=S.paging(ds.TAG_SORTS),
    )
    async def get(self, slug: str, name: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = ds.list_tags(s, ctx, slug, name, **self.page_args())
            numbers = ds.version_numbers(s, page.items)
            return page_json(page, lambda row: ds.tag_json(s, row, numbers))

        self.reply(await self.call(work))


class TagHandler(DatasetHandler):
    @endpoint(
        action="datasets.write",
        summary="Point a tag (e.g. 'production') at a version",
        body=S.TAG_SET,
        response=S.TAG,
        example={"version": "v1"},
    )
    async def put(self, slug: str, name: str, tag: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return ds.tag_json(s, ds.set_tag(s, ctx, slug, name, tag, self.body["version"]))

        self.reply(await self.call(work))

    @endpoint(action="datasets.write", summary="Remove a tag", status=204)
    async def delete(self, slug: str, name: str, tag: str) -> None:
        await self.call(lambda s, ctx: ds.delete_tag(s, ctx, slug, name, tag))
        self.reply(None, status=204)


class LineageHandler(DatasetHandler):
    @endpoint(
        action="datasets.read",
        summary="Who read or wrote this version",
        response=S.page_of(S.LINEAGE),
        query=(Param("direction", {"type": "string", "enum": ["read", "write"]}), *PAGING_ONLY),
    )
    async def get(self, slug: str, name: str, ref: str) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = ds.version_lineage(
                s,
                ctx,
                slug,
                name,
                ref,
                direction=q.get("direction"),
                **self.page_args(sort=False),
            )
            refs = ds.lineage_refs(s, page.items)
            return page_json(page, lambda r: ds.lineage_json(s, r, refs))

        self.reply(await self.call(work))

    @endpoint(
        action="datasets.read",
        summary="Record that a run (any consumer id) read or wrote it",
        status=201,
        body=S.LINEAGE_RECORD,
        response=S.LINEAGE,
        example={"consumer": "run:4f2a9c", "direction": "read"},
    )
    async def post(self, slug: str, name: str, ref: str) -> None:
        b = self.body

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            row = ds.record_lineage(
                s,
                ctx,
                slug,
                name,
                ref,
                consumer=b["consumer"],
                direction=b.get("direction", "read"),
            )
            return ds.lineage_json(s, row)

        self.reply(await self.call(work), status=201)


class ConsumerLineageHandler(DatasetHandler):
    @endpoint(
        action="lineage.read",
        summary="Which dataset versions a consumer (run) read or wrote",
        response=S.page_of(S.LINEAGE),
        query=(
            Param(
                "consumer",
                {"type": "string", "minLength": 1, "maxLength": 255},
                "The consumer id, e.g. 'run:4f2a9c'.",
                required=True,
                example="run:4f2a9c",
            ),
            *PAGING_ONLY,
        ),
    )
    async def get(self) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = ds.consumer_lineage(s, ctx, q["consumer"], **self.page_args(sort=False))
            refs = ds.lineage_refs(s, page.items)
            return page_json(page, lambda r: ds.lineage_json(s, r, refs))

        self.reply(await self.call(work))


class UploadsHandler(DatasetHandler):
    @endpoint(
        action="datasets.write",
        summary="Start a resumable upload: declare files and chunks, learn which are missing",
        status=201,
        body=S.UPLOAD_CREATE,
        response=S.UPLOAD,
        large_body=True,
        example={
            "files": [
                {
                    "path": "a.txt",
                    "size": 5,
                    "chunks": [
                        ["7f4b82af5f8e5e1b93bd6e1ba18b1b9bd8a05ed9e2ea4f0d2fd3f4bae0ff8b4c", 5]
                    ],
                    "digest": "7f4b82af5f8e5e1b93bd6e1ba18b1b9bd8a05ed9e2ea4f0d2fd3f4bae0ff8b4c",
                }
            ]
        },
    )
    async def post(self, slug: str, name: str) -> None:
        identity, files = self.identity(), self.body["files"]
        data = await self.blocking(lambda: self.jobs.start_upload(identity, slug, name, files))
        self.reply(data, status=201)


class OpenUploadsHandler(DatasetHandler):
    @endpoint(
        action="datasets.write",
        summary="A page of your open uploads in the project (everyone's, for administrators),"
        " oldest first: those to commit or abandon when too many are open",
        response=S.page_of(S.OPEN_UPLOAD),
        query=(
            Param("dataset", {"type": "string", "maxLength": 200}, "Of this dataset only."),
            *S.paging(ds.UPLOAD_SORTS),
        ),
    )
    async def get(self, slug: str) -> None:
        dataset = self.query.get("dataset")

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = ds.list_open_uploads(s, ctx, slug, dataset=dataset, **self.page_args())
            return {
                "items": ds.open_uploads_json(s, page.items),
                "next_cursor": page.next_cursor,
            }

        self.reply(await self.call(work))


class UploadHandler(DatasetHandler):
    @endpoint(
        action="datasets.write",
        summary="An upload's state and its still-missing chunks",
        response=S.UPLOAD,
    )
    async def get(self, slug: str, name: str, upload_id: str) -> None:
        identity = self.identity()
        self.reply(
            await self.blocking(lambda: self.jobs.upload_status(identity, slug, name, upload_id))
        )

    @endpoint(
        action="datasets.write",
        summary="Abandon an upload (its chunks become collectable)",
        status=204,
    )
    async def delete(self, slug: str, name: str, upload_id: str) -> None:
        identity = self.identity()
        await self.blocking(lambda: self.jobs.abort_upload(identity, slug, name, upload_id))
        self.reply(None, status=204)


class UploadChunksHandler(DatasetHandler):
    @endpoint(
        action="datasets.write",
        summary="Send a batch of chunks: frames of 32-byte BLAKE3 digest, 4-byte big-endian "
        "length, then the bytes; each is checked, a bad batch stores nothing",
        response=S.CHUNKS_STORED,
        large_body=True,
        raw_body=True,
    )
    async def post(self, slug: str, name: str, upload_id: str) -> None:
        identity, body = self.identity(), self.request.body
        self.reply(
            await self.blocking(
                lambda: self.jobs.receive_chunks(identity, slug, name, upload_id, body)
            )
        )


class UploadCommitHandler(DatasetHandler):
    @endpoint(
        action="datasets.write",
        summary="Publish a complete upload as a new version ('replace', or 'update' the parent);"
        " files exactly the latest version's make none (200, 'unchanged')",
        status=201,
        also=(200,),
        body=S.COMMIT,
        response=S.COMMIT_RESULT,
        example={"message": "first"},
    )
    async def post(self, slug: str, name: str, upload_id: str) -> None:
        b, identity = self.body, self.identity()
        result = await self.blocking(
            lambda: self.jobs.finish_upload(
                identity,
                slug,
                name,
                upload_id,
                message=b.get("message", ""),
                parent=b.get("parent"),
                strict_parent=b.get("strict_parent", False),
                mode=b.get("mode", "replace"),
                delete_paths=b.get("delete"),
            )
        )
        self.reply(result.as_json(), status=200 if result.unchanged else 201)


class VerifyVersionHandler(DatasetHandler):
    @endpoint(
        action="datasets.verify",
        summary="Re-read and check every hash of a version: an operation (the one already "
        "running for the version, if any) whose result is the report",
        status=202,
        response=S.OPERATION,
    )
    async def post(self, slug: str, name: str, ref: str) -> None:
        identity = self.identity()

        def start(s: Session, ctx: Ctx) -> tuple[str, int, bool]:
            op, number, started = ds.start_verify(s, ctx, slug, name, ref)
            return op.id, number, started

        op_id, number, started = await self.call(start)
        if started:
            self.run_in_background(
                op_id,
                lambda p: self.jobs.verify_version(identity, slug, name, f"v{number}", progress=p),
            )
        await self.reply_operation(op_id)


class DatasetGCHandler(DatasetHandler):
    @endpoint(
        action="datasets.gc",
        summary="Free storage no version uses (the whole store; dry_run only reports)",
        status=202,
        body=S.GC_REQUEST,
        response=S.OPERATION,
        example={"dry_run": True},
    )
    async def post(self, slug: str) -> None:
        dry_run = self.body.get("dry_run", True)
        op_id = await self.call(lambda s, ctx: ds.start_gc(s, ctx, slug, dry_run=dry_run).id)
        self.run_in_background(op_id, lambda p: self.jobs.gc(dry_run=dry_run, progress=p))
        await self.reply_operation(op_id)


class StorageVerifyHandler(DatasetHandler):
    @endpoint(
        action="storage.admin",
        summary="Verify the whole store (administrators)",
        status=202,
        response=S.OPERATION,
    )
    async def post(self) -> None:
        def check(s: Session, ctx: Ctx) -> None:
            if not is_superuser(ctx.user):
                raise Forbidden("only workbench administrators verify the whole store")

        await self.call(check)
        op_id = self.background("verify", None, lambda p: self.jobs.verify_store(progress=p))
        await self.reply_operation(op_id)


class OperationsHandler(DatasetHandler):
    @endpoint(
        action="operations.read",
        summary="Your operations, newest first",
        response=S.page_of(S.OPERATION),
        query=(Param("state", {"type": "string", "enum": list(operations.STATES)}), *PAGING_ONLY),
    )
    async def get(self) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = operations.list_mine(s, ctx, state=q.get("state"), **self.page_args(sort=False))
            return page_json(page, operations.operation_json)

        self.reply(await self.call(work))


class OperationHandler(DatasetHandler):
    @endpoint(
        action="operations.read", summary="An operation's state and progress", response=S.OPERATION
    )
    async def get(self, op_id: str) -> None:
        self.reply(
            await self.call(lambda s, ctx: operations.operation_json(operations.get(s, ctx, op_id)))
        )


class OperationCancelHandler(DatasetHandler):
    @endpoint(
        action="operations.read", summary="Ask a running operation to stop", response=S.OPERATION
    )
    async def post(self, op_id: str) -> None:
        self.reply(
            await self.call(
                lambda s, ctx: operations.operation_json(operations.request_cancel(s, ctx, op_id))
            )
        )
