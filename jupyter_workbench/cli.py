"""``jupyter workbench ...``: migrate, info, users, purge, rotate-keys, datasets.

Reads the same configuration as the server (``c.Workbench.*`` in ``jupyter_server_config.py``),
so it always talks to the database the server uses.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from traitlets import Bool, Integer, Unicode

from . import __version__
from .cli_datasets import DatasetsGroup
from .cli_options import CommandApp
from .core import projects, user_secrets, users
from .core.keyring import (
    SecretKeyError,
    derive,
    key_id,
    new_secret,
    read_key_file,
    write_key_file,
)
from .db.database import Database
from .db.models import Project, User
from .service import WorkbenchService
from .settings import Workbench

ALIASES: dict[Any, Any] = {
    "database-url": "Workbench.database_url",
    "data-dir": "Workbench.data_dir",
    "config": "JupyterApp.config_file",
}


class _Command(CommandApp):
    """Base of the subcommands: loads the server's config files and the Workbench settings."""

    classes = [Workbench]
    aliases = ALIASES
    config_file_name = Unicode("jupyter_server_config")

    def initialize(self, argv: Any = None) -> None:
        super().initialize(argv)
        if self.extra_args:  # none of these commands takes words of its own: say so
            words = " ".join(self.extra_args)
            print(
                f"error: {self.name.removeprefix('jupyter-workbench-')} takes no arguments "
                f"(got {words!r}); see --help",
                file=sys.stderr,
            )
            self.exit(1)

    def workbench(self) -> Workbench:
        return Workbench(parent=self)

    def database(self) -> Database:
        settings = self.workbench()
        return Database(settings.resolved_database_url(), pool_size=2)


class MigrateCommand(_Command):
    name = "jupyter-workbench-migrate"
    description = "Apply pending database migrations (the server also does this on start)."

    def start(self) -> None:
        db = self.database()
        try:
            before, after = db.migrate()
        finally:
            db.dispose()
        url = db.url.render_as_string(hide_password=True)
        if before == after:
            print(f"{url}: already at revision {after}")
        else:
            print(f"{url}: migrated from {before or 'empty'} to {after}")


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


class InfoCommand(_Command):
    name = "jupyter-workbench-info"
    description = "Show the settings in force, the database and the versions."

    as_json = Bool(False, help="Print JSON instead of text.").tag(config=True)
    flags = {"json": ({"InfoCommand": {"as_json": True}}, "Print JSON.")}

    def collect(self) -> dict[str, Any]:
        settings = self.workbench()
        db = Database(settings.resolved_database_url(), pool_size=2)
        try:
            current = db.current_revision()
            counts: dict[str, int] | None = None
            if current is not None:
                with db.transaction() as s:
                    counts = {
                        "users": s.scalar(
                            select(func.count()).select_from(User).where(users.IS_PERSON)
                        )
                        or 0,
                        "projects": s.scalar(select(func.count()).select_from(Project)) or 0,
                    }
            database = {
                "url": db.url.render_as_string(hide_password=True),
                "backend": db.url.get_backend_name(),
                "revision": current,
                "head": db.head_revision(),
                "up_to_date": current == db.head_revision(),
                "counts": counts,
            }
        finally:
            db.dispose()
        return {
            "settings": {
                name: getattr(settings, name)
                if not isinstance(getattr(settings, name), set)
                else sorted(getattr(settings, name))
                for name in sorted(settings.class_trait_names(config=True))
            },
            "effective_database_url": database["url"],
            "database": database,
            "versions": {
                "jupyter_workbench": __version__,
                "python": platform.python_version(),
                **{
                    pkg: _package_version(pkg)
                    for pkg in ("jupyter_server", "jupyterlab", "sqlalchemy", "alembic", "psycopg")
                },
            },
        }

    def start(self) -> None:
        info = self.collect()
        if self.as_json:
            print(json.dumps(info, indent=2, default=str))
            return
        print("Settings (c.Workbench.*):")
        for name, value in info["settings"].items():
            shown = value
            if name == "database_url":
                shown = info["effective_database_url"] + ("" if value else " (embedded default)")
            print(f"  {name:24} {shown if name == 'database_url' else repr(shown)}")
        db = info["database"]
        print("Database:")
        print(f"  url        {db['url']}")
        print(f"  revision   {db['revision'] or 'empty'} (head {db['head']})")
        if not db["up_to_date"]:
            print("  -> run 'jupyter workbench migrate'")
        if db["counts"]:
            print(
                f"  contents   {db['counts']['users']} users, {db['counts']['projects']} projects"
            )
        print("Versions:")
        for pkg, ver in info["versions"].items():
            print(f"  {pkg:18} {ver}")


class UsersCommand(_Command):
    name = "jupyter-workbench-users"
    description = "List the workbench's users."

    as_json = Bool(False, help="Print JSON lines instead of a table.").tag(config=True)
    admins = Bool(False, help="Only administrators.").tag(config=True)
    flags = {
        "json": ({"UsersCommand": {"as_json": True}}, "Print JSON lines."),
        "admins": ({"UsersCommand": {"admins": True}}, "Only administrators."),
    }

    def start(self) -> None:
        service = WorkbenchService(self.workbench())
        try:
            with service.db.transaction() as s:
                stmt = select(User).where(users.IS_PERSON).order_by(User.username)
                if self.admins:
                    stmt = stmt.where(User.is_admin.is_(True))
                rows = [users.user_json(u, private=True) for u in s.scalars(stmt)]
        finally:
            service.close()
        if self.as_json:
            for row in rows:
                print(json.dumps(row))
            return
        print(f"{'USERNAME':24} {'DISPLAY NAME':24} {'ADMIN':5}  LAST SEEN")
        for row in rows:
            admin = "yes" if row["is_admin"] else ""
            print(f"{row['username']:24} {row['display_name']:24} {admin:5}  {row['last_seen_at']}")
        print(f"{len(rows)} user(s)")


class PurgeCommand(_Command):
    name = "jupyter-workbench-purge"
    description = "Delete for good the projects whose trash retention has passed."

    def start(self) -> None:
        service = WorkbenchService(self.workbench())
        try:
            purged = service.call(service.system_identity(), projects.purge_expired, write=True)
        finally:
            service.close()
        print(f"purged {len(purged)} project(s)" + (f": {', '.join(purged)}" if purged else ""))


class RotateKeysCommand(_Command):
    name = "jupyter-workbench-rotate-keys"
    description = "Re-encrypt every user secret under the current key (old keys stay readable)."
    examples = """
    With AUTH_SECRET_KEY: set AUTH_SECRET_KEY to the new key and AUTH_SECRET_KEY_PREVIOUS to the
    old one (service and this command), then run `jupyter workbench rotate-keys`.
    With the key file: `jupyter workbench rotate-keys --new-key --prune`.
    """
    new_key = Bool(
        False,
        help="Key file mode: put a new random key first in the key file before re-encrypting.",
    ).tag(config=True)
    prune = Bool(
        False,
        help="Key file mode: afterwards, drop the earlier keys that no secret uses any more.",
    ).tag(config=True)
    batch = Integer(200, help="Secrets re-encrypted per transaction.").tag(config=True)
    flags = {
        "new-key": ({"RotateKeysCommand": {"new_key": True}}, new_key.help),
        "prune": ({"RotateKeysCommand": {"prune": True}}, prune.help),
    }
    aliases = {**ALIASES, "batch": "RotateKeysCommand.batch"}

    def start(self) -> None:
        settings = self.workbench()
        key_file = None if settings.secrets_key else Path(settings.secrets_key_file)
        if key_file is None and (self.new_key or self.prune):
            print(
                "rotate-keys: --new-key/--prune are for the key file; with AUTH_SECRET_KEY set, "
                "put the new key in AUTH_SECRET_KEY and the old one in AUTH_SECRET_KEY_PREVIOUS",
                file=sys.stderr,
            )
            self.exit(2)
        if key_file is not None and self.new_key:
            write_key_file(key_file, [new_secret(), *read_key_file(key_file)])
            print(f"new key put first in {key_file}")
        service = WorkbenchService(settings)
        try:
            url = make_url(settings.resolved_database_url()).render_as_string(hide_password=True)
            print(f"secrets of {url}")
            keys = service.keyring()
            system = service.system_identity()
            done = 0
            while True:
                try:
                    n = service.call(
                        system,
                        lambda s, ctx: user_secrets.rotate_batch(s, ctx, keys, batch=self.batch),
                        write=True,
                    )
                except SecretKeyError as exc:
                    hint = (
                        f"put the key they were written under back in {key_file}"
                        if key_file
                        else "give the key they were written under in AUTH_SECRET_KEY_PREVIOUS "
                        f"(coming from the key file: its first line, {settings.secrets_key_file})"
                    )
                    print(f"rotate-keys: {exc}; {hint}", file=sys.stderr)
                    self.exit(1)
                done += n
                if n < self.batch:
                    break
            usage = service.call(system, lambda s, ctx: user_secrets.key_usage(s), write=False)
            print(f"re-encrypted {done} secret(s) under key {keys.current_id}")
            if key_file is not None and self.prune:
                current, *earlier = read_key_file(key_file)
                kept = [current, *(k for k in earlier if usage.get(key_id(derive(k)), 0))]
                write_key_file(key_file, kept)
                print(f"{key_file}: {len(kept)} key(s) kept")
            elif set(usage) - {keys.current_id}:
                print(f"still under earlier keys: {usage}")
            else:
                print("no secret uses an earlier key: they may be removed")
        finally:
            service.close()


class WorkbenchCommand(CommandApp):
    name = "jupyter-workbench"
    description = (
        "Manage the Jupyter Workbench: migrate, info, users, purge, rotate-keys, datasets."
    )
    version = __version__
    subcommands = {
        "migrate": (MigrateCommand, MigrateCommand.description),
        "info": (InfoCommand, InfoCommand.description),
        "users": (UsersCommand, UsersCommand.description),
        "purge": (PurgeCommand, PurgeCommand.description),
        "rotate-keys": (RotateKeysCommand, RotateKeysCommand.description),
        "datasets": (DatasetsGroup, DatasetsGroup.description),
    }

    def start(self) -> None:
        if self.subapp is None:
            print(f"usage: jupyter workbench {{{','.join(self.subcommands)}}} [options]\n")
            for name, (_cls, help_text) in self.subcommands.items():
                print(f"  {name:8} {help_text}")
            print("\nRun 'jupyter workbench <command> --help' for a command's options.")
            self.exit(1)
        super().start()


def main(argv: list[str] | None = None) -> None:
    WorkbenchCommand.launch_instance(argv=argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
