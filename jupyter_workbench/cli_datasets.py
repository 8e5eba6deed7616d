"""``jupyter workbench datasets ...``: commit a folder, list, diff, materialize, verify, gc.

Where a workbench server is named (``--url``, ``WORKBENCH_URL``, or inside a JupyterHub user
server, ``JUPYTERHUB_SERVICE_URL``) the commands go through its REST API as the token's user
(``WORKBENCH_TOKEN`` or ``JUPYTERHUB_API_TOKEN``), like the Python client; else, or with
``--local``, they open this machine's store directly, as its owner (or ``--as``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from traitlets import Bool, List, Unicode

from .cli_options import CommandApp
from .core import datasets as ds
from .core.context import Identity
from .core.dataset_ignore import shown
from .core.errors import WorkbenchError
from .dataset_jobs import Progress
from .service import WorkbenchService
from .settings import Workbench

if TYPE_CHECKING:
    from .client import Client

# every subcommand's options; each adds its own (an option another one has is refused)
ALIASES: dict[Any, Any] = {
    "database-url": "Workbench.database_url",
    "data-dir": "Workbench.data_dir",
    "config": "JupyterApp.config_file",
    "as": "DatasetsCommand.user",
    "url": "DatasetsCommand.url",
}
FLAGS: dict[Any, Any] = {
    "json": ({"DatasetsCommand": {"as_json": True}}, "Print JSON."),
    "local": (
        {"DatasetsCommand": {"local": True}},
        "Use this machine's store directly, even where a workbench server is named.",
    ),
}
QUIET: dict[Any, Any] = {
    "quiet": ({"DatasetsCommand": {"quiet": True}}, "No progress bar."),
}


def _split(target: str) -> tuple[str, str, str]:
    """'project/dataset[@ref]' -> (project, dataset, ref); no part may be empty."""
    path, ref = target.rsplit("@", 1) if "@" in target else (target, "latest")
    project, _, dataset = path.partition("/")
    if path.count("/") != 1 or not project or not dataset or not ref:
        raise SystemExit(f"expected PROJECT/DATASET[@VERSION], got {target!r}")
    return project, dataset, ref


class DatasetsCommand(CommandApp):
    """Base of the dataset subcommands."""

    name = "jupyter-workbench-datasets"
    classes = [Workbench]
    aliases = ALIASES
    flags = FLAGS
    config_file_name = Unicode("jupyter_server_config")

    as_json = Bool(False, help="Print JSON results.").tag(config=True)
    quiet = Bool(False, help="No progress bar (the commands that show one).").tag(config=True)
    user = Unicode(
        "", help="Act as this user (access rules apply); default: the owner, an administrator."
    ).tag(config=True)
    url = Unicode(
        "",
        help="The workbench to go through over its REST API (a Jupyter server's address; token "
        "from $WORKBENCH_TOKEN). Default: $WORKBENCH_URL, else $JUPYTERHUB_SERVICE_URL.",
    ).tag(config=True)
    local = Bool(
        False, help="Open this machine's store directly even where a workbench server is named."
    ).tag(config=True)

    def remote_client(self) -> Client | None:
        """The workbench server to go through, or ``None``: this machine's store (``--local``,
        or a store named on the command line: ``--database-url``, ``--data-dir``)."""
        store_named = {"database_url", "data_dir"} & set(self.cli_config.get("Workbench", {}))
        if self.local or (store_named and not self.url):
            return None
        url = (
            self.url or os.environ.get("WORKBENCH_URL") or os.environ.get("JUPYTERHUB_SERVICE_URL")
        )
        if not url:
            return None
        if self.user:
            raise SystemExit(
                "--as acts on this machine's store; through a workbench server you act as the "
                "token's user (add --local to use this machine's store)"
            )
        from .client import Client

        return Client(url)

    def identity(self, settings: Workbench) -> Identity:
        if self.user:
            return Identity(self.user, self.user)
        return Identity(settings.standalone_username, settings.standalone_username, is_admin=True)

    def progress(self, what: str) -> Progress:
        if self.quiet:
            return Progress()
        from tqdm import tqdm

        # disable=None: a bar on terminals, silence in logs and pipes
        bar = tqdm(
            desc=what, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, disable=None
        )

        def update(progress: Progress) -> None:
            if progress.bytes_total is not None and bar.total != progress.bytes_total:
                bar.total = progress.bytes_total
            bar.n = progress.bytes_done
            bar.set_postfix_str(f"{progress.files_done}/{progress.files_total or '?'} files")
            bar.refresh()

        return Progress(callback=update)

    def bar_shown(self) -> bool:
        """A progress bar on a terminal, none in logs and pipes (nor with ``--quiet``)."""
        return not self.quiet and sys.stderr.isatty()

    def follow(self, what: str) -> Callable[[dict[str, Any]], None]:
        """Show a server operation's progress (polled) as a local one's."""
        progress = self.progress(what)

        def update(operation: dict[str, Any]) -> None:
            progress.bytes_done = int(operation.get("bytes_done") or 0)
            progress.files_done = int(operation.get("files_done") or 0)
            progress.totals(
                bytes_total=operation.get("bytes_total"), files_total=operation.get("files_total")
            )

        return update

    def emit(self, data: Any, text: str) -> None:
        print(json.dumps(data, indent=2, default=str) if self.as_json else text)

    def start(self) -> None:
        from .client.errors import WorkbenchError as ClientError

        client = self.remote_client()
        if client is not None:
            try:
                self.run_remote(client, list(self.extra_args))
            except ClientError as exc:
                print(f"error: {exc.message}", file=sys.stderr)
                self.exit(2)
            except OSError as exc:  # a DEST that is a file, a full disk ...
                print(f"error: {exc}", file=sys.stderr)
                self.exit(2)
            finally:
                client.close()
            return
        settings = Workbench(parent=self)
        service = WorkbenchService(settings)
        try:
            self.run(service, self.identity(settings), list(self.extra_args))
        except WorkbenchError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            self.exit(2)
        except OSError as exc:  # a DEST under a file, a full disk ... (as through a server)
            print(f"error: {exc}", file=sys.stderr)
            self.exit(2)
        finally:
            service.close()

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        raise NotImplementedError

    def run_remote(self, client: Client, args: list[str]) -> None:
        raise NotImplementedError


class CommitCommand(DatasetsCommand):
    name = "jupyter-workbench-datasets-commit"
    description = "Commit a folder as a new version: commit PROJECT/DATASET PATH -m MESSAGE"

    message = Unicode("", help="Commit message.").tag(config=True)
    parent_version = Unicode("", help="Parent version of the commit (default: latest).").tag(
        config=True
    )
    strict_parent = Bool(
        False, help="Refuse the commit if --parent is not the latest version."
    ).tag(config=True)
    update_mode = Bool(
        False, help="Commit on top of the parent's files instead of replacing them."
    ).tag(config=True)
    ignore = List(
        Unicode(),
        help="Leave out files matching this .gitignore pattern (repeat for more), after the "
        "defaults (.ipynb_checkpoints/, __pycache__/, .git/, .DS_Store, Thumbs.db) and the "
        "folder's .wbignore; '!PATTERN' takes one back.",
    ).tag(config=True)
    aliases = {
        **ALIASES,
        "m": "CommitCommand.message",
        "message": "CommitCommand.message",
        "parent": "CommitCommand.parent_version",
        "ignore": "CommitCommand.ignore",
    }
    flags = {
        **FLAGS,
        **QUIET,
        "strict-parent": ({"CommitCommand": {"strict_parent": True}}, strict_parent.help),
        "update": ({"CommitCommand": {"update_mode": True}}, update_mode.help),
    }

    def args(self, args: list[str]) -> tuple[str, str, Path]:
        if len(args) != 2:
            raise SystemExit("usage: jupyter workbench datasets commit PROJECT/DATASET PATH -m MSG")
        if "@" in args[0]:  # was ignored: a replace of the latest, not a commit on that version
            raise SystemExit(
                f"commit makes a new version of PROJECT/DATASET, got {args[0]!r}; to commit on "
                "top of a version, name it with --parent (e.g. --parent v3 --update)"
            )
        project, dataset, _ref = _split(args[0])
        return project, dataset, Path(args[1])

    def report(self, project: str, dataset: str, result: dict[str, Any]) -> None:
        v, stored, sent = result["version"], result["stored"], result.get("uploaded")
        if result.get("unchanged"):
            how = f"unchanged: the files are v{v['version']}'s, no new version"
        elif sent is not None:  # through a server: what travelled
            how = (
                f"{sent['bytes']} bytes uploaded, {sent['chunks_present']} of "
                f"{sent['chunks'] + sent['chunks_present']} chunks already there"
            )
        else:
            how = f"{stored['bytes_new']} new bytes stored, {stored['chunks_reused']} chunks reused"
        ignored = result.get("ignored") or []
        left_out = f"; left out {shown(ignored)}" if ignored else ""
        self.emit(
            result,
            f"{project}/{dataset}@v{v['version']}: {v['file_count']} files, "
            f"{v['total_bytes']} bytes ({how}) in {result['seconds']:.2f}s{left_out}",
        )

    def run_remote(self, client: Client, args: list[str]) -> None:
        from .client.uploads import commit_folder

        project, dataset, folder = self.args(args)
        started = time.monotonic()
        try:
            result = commit_folder(
                client, project, dataset, folder, message=self.message, progress=self.bar_shown(),
                parent=self.parent_version or None, strict_parent=self.strict_parent,
                mode="update" if self.update_mode else "replace", ignore=self.ignore,
            )  # fmt: skip
        except (FileNotFoundError, ValueError) as exc:  # a missing or empty folder: nothing sent
            print(f"error: {exc}", file=sys.stderr)
            self.exit(2)
        self.report(project, dataset, {**result, "seconds": time.monotonic() - started})

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        project, dataset, folder = self.args(args)
        result = service.datasets.commit_folder(
            who,
            project,
            dataset,
            folder,
            message=self.message,
            parent=self.parent_version or None,
            strict_parent=self.strict_parent,
            mode="update" if self.update_mode else "replace",
            ignore=self.ignore,
            progress=self.progress("commit"),
        )
        self.report(project, dataset, result.as_json())


LIST_PAGE = 500  # items a list command reads at a time


def _every_page(
    service: WorkbenchService,
    who: Identity,
    page: Callable[[Any, Any, int, str | None], Any],
    as_json: Callable[[Any, Any, Any], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Every item of a paginated list, a page (one read transaction) at a time."""
    limit = min(LIST_PAGE, service.settings.max_page_size)
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:

        def read(s: Any, ctx: Any, after: str | None = cursor) -> tuple[list[Any], str | None]:
            found = page(s, ctx, limit, after)
            return [as_json(s, ctx, x) for x in found.items], found.next_cursor

        items, cursor = service.call(who, read, write=False)
        rows += items
        if cursor is None:
            return rows


def _datasets_text(rows: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{r['name']:30} v{r['latest_version'] or '-':<6} {r['description']}" for r in rows
    )


def _versions_text(rows: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"v{r['version']:<5} {r['file_count']:>7} files {r['total_bytes']:>14} bytes  "
        f"{','.join(r['tags']):20} {r['message']}"
        for r in rows
    )


class ListCommand(DatasetsCommand):
    name = "jupyter-workbench-datasets-list"
    description = "List a project's datasets, or a dataset's versions: list PROJECT[/DATASET]"

    def target(self, args: list[str]) -> str:
        if len(args) != 1 or not args[0].strip():
            raise SystemExit("usage: jupyter workbench datasets list PROJECT[/DATASET]")
        return args[0]

    def run_remote(self, client: Client, args: list[str]) -> None:
        target = self.target(args)
        if "/" not in target:
            rows = client.datasets.list(target)
            self.emit(rows, _datasets_text(rows) or "(none)")
        else:
            project, dataset, _ = _split(target)
            rows = client.datasets.versions(dataset, project=project)
            self.emit(rows, _versions_text(rows) or "(none)")

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        target = self.target(args)
        if "/" not in target:
            rows = _every_page(
                service,
                who,
                lambda s, ctx, limit, cursor: ds.list_datasets(
                    s, ctx, target, limit=limit, cursor=cursor
                ),
                ds.dataset_json,
            )
            self.emit(rows, _datasets_text(rows) or "(none)")
        else:
            project, dataset, _ = _split(target)
            rows = _every_page(
                service,
                who,
                lambda s, ctx, limit, cursor: ds.list_versions(
                    s, ctx, project, dataset, limit=limit, cursor=cursor
                ),
                lambda s, _ctx, v: ds.version_json(s, v),
            )
            self.emit(rows, _versions_text(rows) or "(none)")


def _diff_text(diff: dict[str, Any]) -> str:
    lines = [f"v{diff['from']} -> v{diff['to']}"]
    lines += [f"  + {f['path']} ({f['size']} bytes)" for f in diff["added"]]
    lines += [f"  - {f['path']} ({f['size']} bytes)" for f in diff["removed"]]
    lines += [
        f"  ~ {f['path']} ({f['old_size']} -> {f['new_size']} bytes)" for f in diff["modified"]
    ]
    for table in diff["tables"]:
        if "rows" in table:
            rows, schema = table["rows"], table["schema"]
            line = (
                f"    {table['path']}: rows {rows['old']} -> {rows['new']} "
                f"(+{rows['added']} -{rows['removed']})"
            )
            changes = [f"+{c}" for c in schema["added"]] + [f"-{c}" for c in schema["removed"]]
            changes += [
                f"{c['column']}: {c['old_type']} -> {c['new_type']}" for c in schema["changed"]
            ]
            lines.append(line + (f"; columns {', '.join(changes)}" if changes else ""))
    return "\n".join(lines)


class DiffCommand(DatasetsCommand):
    name = "jupyter-workbench-datasets-diff"
    description = "Diff two versions: diff PROJECT/DATASET FROM [TO]"

    def args(self, args: list[str]) -> tuple[str, str, str, str]:
        if len(args) not in (2, 3):
            raise SystemExit("usage: jupyter workbench datasets diff PROJECT/DATASET FROM [TO]")
        project, dataset, _ = _split(args[0])
        return project, dataset, args[1], args[2] if len(args) == 3 else "latest"

    def run_remote(self, client: Client, args: list[str]) -> None:
        project, dataset, a, b = self.args(args)
        diff = client.datasets.diff(dataset, a, b, project=project)
        self.emit(diff, _diff_text(diff))

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        project, dataset, a, b = self.args(args)
        diff = service.datasets.diff(who, project, dataset, a, b)
        self.emit(diff, _diff_text(diff))


class GetCommand(DatasetsCommand):
    name = "jupyter-workbench-datasets-get"
    description = "Materialize a version into a folder: get PROJECT/DATASET[@VERSION] DEST"

    link = Bool(
        False,
        help="Hard-link the files from this machine's cache instead of copying them (no second "
        "copy on disk; the files are read-only and must not be edited in place).",
    ).tag(config=True)
    flags = {
        **FLAGS,
        **QUIET,
        "link": (
            {"GetCommand": {"link": True}},
            "Hard-link the files from the cache (read-only; do not edit them in place).",
        ),
    }

    def args(self, args: list[str]) -> tuple[str, str, str, Path]:
        if len(args) != 2:
            raise SystemExit("usage: jupyter workbench datasets get PROJECT/DATASET[@VERSION] DEST")
        project, dataset, ref = _split(args[0])
        return project, dataset, ref, Path(args[1])

    def run_remote(self, client: Client, args: list[str]) -> None:
        project, dataset, ref, dest = self.args(args)
        if self.link:
            raise SystemExit(
                "--link links from this machine's store's cache; through a workbench server "
                "the files are copied (add --local to use this machine's store)"
            )
        version = client.datasets.get(dataset, ref, project=project)
        version.materialize(dest, progress=None if self.bar_shown() else False)
        result = {"path": str(dest), "version": version.version, "files": len(version.files())}
        self.emit(result, f"v{version.version}: {result['files']} files in {dest}")

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        project, dataset, ref, dest = self.args(args)
        result = service.datasets.materialize(
            who, project, dataset, ref, dest, link=self.link, progress=self.progress("get")
        )
        linked = f", {result['linked']} hard-linked" if self.link else ""
        self.emit(
            result,
            f"v{result['version']}: {result['files']} files in {result['path']} "
            f"({result['fetched']} fetched, {result['files'] - result['fetched']} from the "
            f"cache{linked})",
        )


class TagCommand(DatasetsCommand):
    name = "jupyter-workbench-datasets-tag"
    description = "Point a tag at a version: tag PROJECT/DATASET@VERSION TAG"

    def args(self, args: list[str]) -> tuple[str, str, str, str]:
        if len(args) != 2 or "@" not in args[0]:
            raise SystemExit("usage: jupyter workbench datasets tag PROJECT/DATASET@VERSION TAG")
        project, dataset, ref = _split(args[0])
        return project, dataset, ref, args[1]

    def run_remote(self, client: Client, args: list[str]) -> None:
        project, dataset, ref, tag = self.args(args)
        found = client.datasets.tag(dataset, tag, ref, project=project)
        self.report(project, dataset, found)

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        project, dataset, ref, tag = self.args(args)

        def work(s: Any, ctx: Any) -> dict[str, Any]:
            return ds.tag_json(s, ds.set_tag(s, ctx, project, dataset, tag, ref))

        self.report(project, dataset, service.call(who, work, write=True))

    def report(self, project: str, dataset: str, found: dict[str, Any]) -> None:
        self.emit(found, f"{project}/{dataset}@{found['tag']} -> v{found['version']}")


class UntagCommand(DatasetsCommand):
    name = "jupyter-workbench-datasets-untag"
    description = "Remove a tag: untag PROJECT/DATASET TAG"

    def args(self, args: list[str]) -> tuple[str, str, str]:
        if len(args) != 2 or "@" in args[0]:
            raise SystemExit("usage: jupyter workbench datasets untag PROJECT/DATASET TAG")
        project, dataset, _ = _split(args[0])
        return project, dataset, args[1]

    def run_remote(self, client: Client, args: list[str]) -> None:
        project, dataset, tag = self.args(args)
        client.datasets.untag(dataset, tag, project=project)
        self.emit({"removed": tag}, f"{project}/{dataset}: tag {tag} removed")

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        project, dataset, tag = self.args(args)
        service.call(who, lambda s, ctx: ds.delete_tag(s, ctx, project, dataset, tag), write=True)
        self.emit({"removed": tag}, f"{project}/{dataset}: tag {tag} removed")


class VerifyCommand(DatasetsCommand):
    name = "jupyter-workbench-datasets-verify"
    description = (
        "Check every hash: verify [PROJECT/DATASET[@VERSION]] (no argument: the whole store)"
    )
    flags = {**FLAGS, **QUIET}

    def target(self, args: list[str]) -> tuple[str, str, str] | None:
        """The version to verify, or ``None``: the whole store."""
        if len(args) > 1:
            raise SystemExit("usage: jupyter workbench datasets verify [PROJECT/DATASET[@VERSION]]")
        return _split(args[0]) if args else None

    def run_remote(self, client: Client, args: list[str]) -> None:
        target = self.target(args)
        if target is not None:
            project, dataset, ref = target
            version = client.datasets.get(dataset, ref, project=project)
            report = version.verify(on_progress=self.follow("verify"))
        else:  # the whole store: a background operation of the server's (administrators)
            operation = client.post("storage/verify")
            report = client.wait_operation(operation, on_progress=self.follow("verify"))
        self.report(report)

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        target = self.target(args)
        if target is not None:
            project, dataset, ref = target
            report = service.datasets.verify_version(
                who, project, dataset, ref, progress=self.progress("verify")
            )
        else:
            report = service.datasets.verify_store(progress=self.progress("verify"))
        self.report(report)

    def report(self, report: dict[str, Any]) -> None:
        self.emit(report, "OK" if report["ok"] else json.dumps(report, indent=2))
        if not report["ok"]:
            self.exit(1)


class GcCommand(DatasetsCommand):
    name = "jupyter-workbench-datasets-gc"
    description = (
        "Free storage that no version uses: gc [--dry-run] (through a server: gc PROJECT, "
        "a project you administer)"
    )

    dry_run = Bool(False, help="Only report what would be freed.").tag(config=True)
    aliases = {k: v for k, v in ALIASES.items() if k != "as"}  # the whole store, as its owner
    flags = {
        **FLAGS,
        **QUIET,
        "dry-run": ({"GcCommand": {"dry_run": True}}, "Only report what gc would free."),
    }

    def run_remote(self, client: Client, args: list[str]) -> None:
        if len(args) != 1:
            raise SystemExit(
                "usage: jupyter workbench datasets gc PROJECT [--dry-run] (through a workbench "
                "server, gc is asked of a project you administer; it frees the whole store)"
            )
        slug = quote(args[0], safe="")
        operation = client.post(f"projects/{slug}/datasets-gc", {"dry_run": self.dry_run})
        self.report(client.wait_operation(operation, on_progress=self.follow("gc")))

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        if args:
            raise SystemExit("usage: jupyter workbench datasets gc [--dry-run]")
        self.report(service.datasets.gc(dry_run=self.dry_run))

    def report(self, report: dict[str, Any]) -> None:
        verb = "would free" if self.dry_run else "freed"
        self.emit(
            report,
            f"{verb} {report['chunks_freed']} chunks ({report['bytes_freed']} bytes); "
            f"packs: {report['packs_retired']} retired, {report['packs_repacked']} "
            f"repacked, {report['packs_deleted']} deleted",
        )


class DatasetsGroup(CommandApp):
    name = "jupyter-workbench-datasets"
    description = "Versioned datasets: commit, list, diff, get, tag, untag, verify, gc."
    subcommands = {
        "commit": (CommitCommand, CommitCommand.description),
        "list": (ListCommand, ListCommand.description),
        "diff": (DiffCommand, DiffCommand.description),
        "get": (GetCommand, GetCommand.description),
        "tag": (TagCommand, TagCommand.description),
        "untag": (UntagCommand, UntagCommand.description),
        "verify": (VerifyCommand, VerifyCommand.description),
        "gc": (GcCommand, GcCommand.description),
    }

    def start(self) -> None:
        if self.subapp is None:
            print(
                "usage: jupyter workbench datasets {commit,list,diff,get,tag,untag,verify,gc} ...\n"
            )
            for name, (_cls, help_text) in self.subcommands.items():
                print(f"  {name:8} {help_text}")
            self.exit(1)
        super().start()
