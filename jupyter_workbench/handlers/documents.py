"""Collaborative documents over REST: create, list, read, presence, snapshots, restore."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy.orm import Session

from ..collab.room import DocumentTooLarge, EditFailed, Room, RoomClosed
from ..core import documents as docs
from ..core.access import Role
from ..core.context import Ctx
from ..core.documents import KINDS
from ..core.errors import PayloadTooLarge, WorkbenchError
from ..documents_live import LiveDocuments
from . import document_schemas as S
from .base import Param, WorkbenchHandler, endpoint, page_json
from .schemas import paging


class RestoreFailed(WorkbenchError):
    status = 500
    code = "restore_failed"


def room_path(document_id: str) -> str:
    return f"workbench/api/v1/rooms/{document_id}"


class _DocumentHandler(WorkbenchHandler):
    @property
    def live(self) -> LiveDocuments:
        live: LiveDocuments = self.settings["workbench_documents"]
        return live

    async def room_of(self, document_id: str, action: str) -> tuple[Room, dict[str, Any]]:
        """The document's room (opened from the store if nobody has it open) and its JSON."""

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return docs.document_json(s, *docs.get_document(s, ctx, document_id, action))

        data = await self.call(work, write=False)
        return await self.live.rooms.room(document_id), data


class DocumentsHandler(_DocumentHandler):
    """``/projects/{slug}/documents``."""

    @endpoint(
        action="documents.read",
        summary="A page of the project's collaborative documents (README, notes, cards, "
        "reports), oldest first",
        response=S.DOCUMENT_LIST,
        query=(
            Param("kind", S.KIND, "Only documents of this kind."),
            Param("ref", {"type": "string", "maxLength": 255}, "Only the one with this ref."),
            *paging(docs.DOCUMENT_SORTS),
        ),
    )
    async def get(self, slug: str) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = docs.list_documents(
                s, ctx, slug, q.get("kind"), q.get("ref"), **self.page_args()
            )
            return page_json(page, lambda d: {**docs.document_json(s, d), "room": room_path(d.id)})

        self.reply(await self.call(work))

    @endpoint(
        action="documents.write",
        summary="Open a document for co-editing: create it (a card or README starts with the "
        "current text), or get the existing one of that kind and ref (200). Kinds: "
        + "; ".join(f"{k}: ref is {v}" for k, v in KINDS.items()),
        status=201,
        body=S.DOCUMENT_CREATE,
        response=S.DOCUMENT,
        example={"kind": "notes", "ref": "{fresh}"},
    )
    async def post(self, slug: str) -> None:
        body = self.body

        def work(s: Session, ctx: Ctx) -> tuple[dict[str, Any], bool]:
            document, created = docs.open_document(
                s, ctx, slug, kind=body["kind"], ref=body.get("ref", ""), title=body.get("title")
            )
            data = docs.document_json(s, document, Role.EDITOR)  # creating needs editor
            return {**data, "room": room_path(document.id)}, created

        data, created = await self.call(work)
        self.reply(data, status=201 if created else 200)


class DocumentHandler(_DocumentHandler):
    """``/documents/{document_id}``."""

    @endpoint(
        action="documents.read",
        summary="A document: its current text, its room and who is in it",
        response=S.DOCUMENT,
    )
    async def get(self, document_id: str) -> None:
        room, data = await self.room_of(document_id, "documents.read")
        await room.drained()
        data.update(room=room_path(document_id), text=room.text, present=room.presence())
        self.reply(data)

    @endpoint(
        action="documents.delete",
        summary="Delete a document, its history and snapshots (project admins); everyone in "
        "its room is disconnected",
        status=204,
    )
    async def delete(self, document_id: str) -> None:
        await self.call(lambda s, ctx: docs.delete_document(s, ctx, document_id))
        await self.live.rooms.forget(document_id, 4404, "the document was deleted")
        self.reply(None, status=204)


class PresenceHandler(_DocumentHandler):
    """``/documents/{document_id}/presence``."""

    @endpoint(action="documents.read", summary="Who is in the document's room now",
              response=S.PRESENCE_LIST)  # fmt: skip
    async def get(self, document_id: str) -> None:
        await self.call(lambda s, ctx: docs.get_document(s, ctx, document_id, "documents.read"))
        self.reply({"users": self.live.rooms.presence(document_id)})


class CompactHandler(_DocumentHandler):
    """``/documents/{document_id}/compact``."""

    @endpoint(
        action="documents.write",
        summary="Merge the document's stored updates into one (done on its own when a "
        "document gets busy and when its room closes)",
        response=S.COMPACTION,
    )
    async def post(self, document_id: str) -> None:
        room, _data = await self.room_of(document_id, "documents.write")
        await room.drained()
        result = await self.live.rooms.compact(document_id)
        self.reply({"rows_before": result.rows_before, "bytes_before": result.bytes_before,
                    "bytes_after": result.bytes_after})  # fmt: skip


class PublishHandler(_DocumentHandler):
    """``/documents/{document_id}/publish``."""

    @endpoint(
        action="documents.write",
        summary="Publish a card document's current text as the card: the dataset's card, or "
        "a new revision of the model's card (its fields kept); 400 for other kinds",
        response=S.PUBLISHED,
    )
    async def post(self, document_id: str) -> None:
        room, _data = await self.room_of(document_id, "documents.write")
        await room.drained()
        text = room.text
        self.reply(await self.call(lambda s, ctx: docs.publish(s, ctx, document_id, text)))


class SnapshotsHandler(_DocumentHandler):
    """``/documents/{document_id}/snapshots``."""

    @endpoint(action="documents.read", summary="A page of the document's named snapshots, "
              "newest first (manual ones and automatic ones taken during editing)",
              response=S.SNAPSHOT_LIST, query=paging(docs.SNAPSHOT_SORTS))  # fmt: skip
    async def get(self, document_id: str) -> None:

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = docs.list_snapshots(s, ctx, document_id, **self.page_args())
            lengths = docs.snapshot_lengths(s, page.items)
            return page_json(
                page, lambda x: docs.snapshot_json(s, x, characters=lengths.get(x.id, 0))
            )

        self.reply(await self.call(work))

    @endpoint(
        action="documents.write",
        summary="Take a named snapshot of the document as it is now",
        status=201,
        body=S.SNAPSHOT_CREATE,
        response=S.SNAPSHOT,
        example={"name": "before review"},
    )
    async def post(self, document_id: str) -> None:
        name = docs.check_snapshot_name(self.body["name"])
        room, _data = await self.room_of(document_id, "documents.write")
        await room.drained()
        state, text = room.doc.get_update(), room.text

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            snapshot = docs.add_snapshot(s, ctx, document_id, name=name, state=state, text=text)
            return docs.snapshot_json(s, snapshot, text=True)

        self.reply(await self.call(work), status=201)


class SnapshotHandler(_DocumentHandler):
    """``/documents/{document_id}/snapshots/{snapshot_id}``."""

    @endpoint(action="documents.read", summary="A snapshot with its text",
              response=S.SNAPSHOT)  # fmt: skip
    async def get(self, document_id: str, snapshot_id: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            snapshot = docs.get_snapshot(s, ctx, document_id, snapshot_id)
            return docs.snapshot_json(s, snapshot, text=True)

        self.reply(await self.call(work))


class SnapshotDiffHandler(_DocumentHandler):
    """``/documents/{document_id}/snapshots/{snapshot_id}/diff``."""

    @endpoint(
        action="documents.read",
        summary="A unified text diff from the snapshot to the current text (or to another "
        "snapshot with ?to=ID)",
        response=S.SNAPSHOT_DIFF,
        query=(
            Param(
                "to",
                {"type": "string", "maxLength": 32},
                "'current' (default) or another snapshot's id.",
            ),
        ),
    )
    async def get(self, document_id: str, snapshot_id: str) -> None:
        to = self.query.get("to") or "current"

        def work(s: Session, ctx: Ctx) -> tuple[str, str, str | None, str | None]:
            before = docs.get_snapshot(s, ctx, document_id, snapshot_id)
            if to == "current":
                return before.text, before.name, None, None
            after = docs.get_snapshot(s, ctx, document_id, to)
            return before.text, before.name, after.text, after.name

        before_text, before_name, after_text, after_name = await self.call(work)
        if after_text is None:
            room, _data = await self.room_of(document_id, "documents.read")
            await room.drained()
            after_text, after_name = room.text, "current"
        assert after_name is not None
        diff = docs.text_diff(before_text, after_text, before_name=before_name,
                              after_name=after_name)  # fmt: skip
        self.reply({"from": before_name, "to": after_name, "diff": diff})


class SnapshotRestoreHandler(_DocumentHandler):
    """``/documents/{document_id}/snapshots/{snapshot_id}/restore``."""

    @endpoint(
        action="documents.write",
        summary="Restore the snapshot's text: a normal edit (stored, sent to everyone in the "
        "room), so collaborators converge on it and it can itself be undone by another "
        "restore; 413 (nothing changed) when it would take the document past its size limit",
        response=S.DOCUMENT,
    )
    async def post(self, document_id: str, snapshot_id: str) -> None:
        target = await self.call(
            lambda s, ctx: docs.get_snapshot(s, ctx, document_id, snapshot_id).text, write=False
        )
        try:
            room, data = await self.restore(document_id, target)
        except DocumentTooLarge as exc:  # nothing changed: the refusal is on the record
            refused = {"reason": "payload_too_large", "size": exc.size, "limit": exc.limit}
            await self.call(lambda s, ctx: docs.record_restore(s, ctx, document_id, snapshot_id,
                                                               refused=refused))  # fmt: skip
            raise PayloadTooLarge(f"not restored, the document is unchanged: {exc}") from None
        except EditFailed as exc:
            # part of it may have landed (stored and sent to everyone): on the record too
            reason = str(exc)
            await self.call(lambda s, ctx: docs.record_restore(s, ctx, document_id, snapshot_id,
                                                               failed=reason))  # fmt: skip
            raise RestoreFailed(f"the restore failed partway ({reason}); what it changed was "
                                "kept: restore again, or edit by hand") from None  # fmt: skip
        await self.call(lambda s, ctx: docs.record_restore(s, ctx, document_id, snapshot_id))
        data.update(room=room_path(document_id), text=room.text, present=room.presence())
        self.reply(data)

    async def restore(self, document_id: str, target: str) -> tuple[Room, dict[str, Any]]:
        """Edit the document's room into ``target``; a room that closed meanwhile (nobody was
        in it) is opened again, a deleted document is a 404."""
        for _retry in range(2):
            room, data = await self.room_of(document_id, "documents.write")
            with contextlib.suppress(RoomClosed):
                await room.replace_text(target)
                return room, data
        room, data = await self.room_of(document_id, "documents.write")
        await room.replace_text(target)
        return room, data
