"""The running workbench: database, policy and the worker threads that run core calls.

One instance lives in the server extension (``app.py``); the CLI and benchmarks make their own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from .core import events
from .core.context import Ctx, Identity, Policy
from .core.errors import Conflict, WorkbenchError
from .core.keyring import KeyRing, read_key_file
from .core.users import SYSTEM_IDENTITY, ensure_user
from .db.database import Database
from .db.models import User
from .settings import Workbench
from .tracking.events import TrackingEvents

if TYPE_CHECKING:
    from .dataset_jobs import DatasetJobs

T = TypeVar("T")
log = logging.getLogger("jupyter_workbench")

# PostgreSQL serialization failure / deadlock; SQLite busy. Safe to retry the whole unit.
_RETRY_SQLSTATES = {"40001", "40P01"}
_ACTOR_CACHE_SIZE = 10_000


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError) and "database is locked" in str(exc):
        return True
    if isinstance(exc, DBAPIError):
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return code in _RETRY_SQLSTATES
    return False


def policy_from(settings: Workbench) -> Policy:
    return Policy(
        invitation_ttl=timedelta(hours=settings.invitation_ttl_hours),
        trash_retention=timedelta(days=settings.trash_retention_days),
        page_size=settings.page_size,
        max_page_size=settings.max_page_size,
        hub_group_prefix=settings.hub_group_prefix if settings.hub_sync_active else None,
        max_open_uploads_per_user=settings.max_open_uploads_per_user,
        max_open_uploads_per_project=settings.max_open_uploads_per_project,
    )


class WorkbenchService:
    """Runs core calls as units of work: one transaction each, retried on transient errors."""

    def __init__(self, settings: Workbench, *, migrate: bool | None = None) -> None:
        self.settings = settings
        self.db = Database(settings.resolved_database_url(), pool_size=settings.database_pool_size)
        self.policy = policy_from(settings)
        self.executor = ThreadPoolExecutor(
            max_workers=settings.worker_threads, thread_name_prefix="workbench-db"
        )
        # Byte-moving work (uploads, downloads, commits, gc) runs here, so that it never
        # starves the database threads of short API requests.
        self.io_executor = ThreadPoolExecutor(
            max_workers=settings.io_threads, thread_name_prefix="workbench-io"
        )
        self._background: set[Future[Any]] = set()
        # set by close(): running operations stop at their next step instead of holding it up
        self.stopping = threading.Event()
        self._actors: OrderedDict[str, tuple[Identity, int]] = OrderedDict()
        self._datasets: DatasetJobs | None = None
        self._keyring: KeyRing | None = None
        self._keyring_stamp: tuple[int, int, int] | None = None
        self.tracking_events = TrackingEvents()
        # what core changed, after each commit (the hub layer subscribes in hub service mode)
        self.events = events.EventBus()
        if settings.auto_migrate if migrate is None else migrate:
            before, after = self.db.migrate()
            if before != after:
                log.info("Workbench database migrated from %s to %s", before, after)
        elif self.db.needs_migration():
            raise RuntimeError(
                "The workbench database needs migrating: run 'jupyter workbench migrate'"
            )

    # -- units of work ------------------------------------------------------------------
    def call(
        self,
        identity: Identity,
        fn: Callable[[Session, Ctx], T],
        *,
        write: bool,
        request_id: str = "",
        retry_stale: bool = True,
    ) -> T:
        """Run ``fn(session, ctx)`` in one transaction as ``identity`` (blocking)."""
        user_id = self.actor_id(identity)
        for attempt in range(4):
            try:
                refusal: WorkbenchError | None = None
                with self.db.transaction(write=write) as s:
                    user = s.get(User, user_id)
                    assert user is not None
                    try:
                        result = fn(s, Ctx(user=user, request_id=request_id, policy=self.policy))
                    except WorkbenchError as exc:
                        if not exc.keeps_changes:
                            raise
                        refusal = exc  # refused, yet what it found on the way is committed
                    changed = events.take(s)
                self.events.publish(changed)  # committed: tell the subscribers
                if refusal is not None:
                    raise refusal
                return result
            except StaleDataError:
                if not retry_stale or attempt == 3:
                    raise Conflict(
                        "the object was changed by someone else at the same time; try again",
                        code="concurrent_update",
                    ) from None
            except DBAPIError as exc:
                if not _is_transient(exc) or attempt == 3:
                    raise
            time.sleep(0.01 * (2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def acall(
        self,
        identity: Identity,
        fn: Callable[[Session, Ctx], T],
        *,
        write: bool,
        request_id: str = "",
        retry_stale: bool = True,
    ) -> T:
        """``call`` on a worker thread, so the event loop never waits on the database."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor,
            lambda: self.call(
                identity, fn, write=write, request_id=request_id, retry_stale=retry_stale
            ),
        )

    def actor_id(self, identity: Identity) -> int:
        """The user id for ``identity``; the row is created/refreshed only when it changed."""
        cached = self._actors.get(identity.username)
        if cached is not None and cached[0] == identity:
            self._actors.move_to_end(identity.username)
            return cached[1]
        # With the hub's groups polled, a request applies only what changed in the user's
        # groups since their previous request (first sight: additions only): a hub user model
        # cached for minutes never undoes a change the workbench or the poll made since.
        previous: tuple[str, ...] | None = None
        if self.policy.hub_group_prefix is not None and self.settings.hub_group_sync_interval:
            previous = (cached[0].groups or ()) if cached is not None else ()
        for attempt in range(4):
            try:
                with self.db.transaction(write=True) as s:
                    user_id = ensure_user(
                        s,
                        identity,
                        previous_groups=previous,
                        group_prefix=self.policy.hub_group_prefix or "",
                    ).id
                    changed = events.take(s)
                self.events.publish(changed)
                break
            except DBAPIError as exc:
                if not _is_transient(exc) or attempt == 3:
                    raise
                time.sleep(0.01 * (2**attempt))
        self._actors[identity.username] = (identity, user_id)
        while len(self._actors) > _ACTOR_CACHE_SIZE:
            self._actors.popitem(last=False)
        return user_id

    def forget_actors(self, usernames: Iterable[str]) -> None:
        """Refresh these users' rows at their next request (the hub sync marked them gone)."""
        for username in usernames:
            self._actors.pop(username, None)

    @property
    def datasets(self) -> DatasetJobs:
        """Dataset jobs over the configured blob store (built on first use)."""
        if self._datasets is None:
            from .dataset_jobs import build_jobs

            self._datasets = build_jobs(self)
        return self._datasets

    def keyring(self) -> KeyRing:
        """The keys of user secrets: from secrets_key (+ earlier keys), else the key file (read
        again whenever it changes, so ``rotate-keys --new-key`` reaches a running service)."""
        settings = self.settings
        if settings.secrets_key:
            if self._keyring is None:
                self._keyring = KeyRing.from_secrets(
                    settings.secrets_key, settings.secrets_previous_keys
                )
            return self._keyring
        path = Path(settings.secrets_key_file)
        try:
            st = path.stat()
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if self._keyring is None or stamp is None or stamp != self._keyring_stamp:
            keys = read_key_file(path)
            st = path.stat()
            self._keyring_stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            self._keyring = KeyRing.from_secrets(keys[0], keys[1:])
        return self._keyring

    def system_identity(self) -> Identity:
        """The identity background jobs (the trash purge) act and are audited as."""
        return SYSTEM_IDENTITY

    def track(self, future: Future[Any]) -> None:
        """Keep a background job referenced until it ends (its outcome is on its operation)."""
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    def close(self) -> None:
        self.stopping.set()
        self.io_executor.shutdown(wait=True, cancel_futures=True)
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.db.dispose()
