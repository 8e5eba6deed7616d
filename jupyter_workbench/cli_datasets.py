"""``jupyter workbench datasets ...``: commit a folder, list, diff, materialize, verify, gc."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_core.application import JupyterApp
from traitlets import Bool, Unicode

from .core import datasets as ds
from .core.context import Identity
from .core.errors import WorkbenchError
from .dataset_jobs import Progress
from .service import WorkbenchService
from .settings import Workbench

ALIASES: dict[Any, Any] = {
    "database-url": "Workbench.database_url",
    "data-dir": "Workbench.data_dir",
    "config": "JupyterApp.config_file",
    "m": "DatasetsCommand.message",
    "message": "DatasetsCommand.message",
    "parent": "DatasetsCommand.parent_version",
    "as": "DatasetsCommand.user",
}
FLAGS: dict[Any, Any] = {
    "strict-parent": (
        {"DatasetsCommand": {"strict_parent": True}},
        "Fail if the parent is not the latest.",
    ),
    "update": ({"DatasetsCommand": {"update_mode": True}}, "Keep the parent's other files."),
    "dry-run": ({"DatasetsCommand": {"dry_run": True}}, "Only report what gc would free."),
    "json": ({"DatasetsCommand": {"as_json": True}}, "Print JSON."),
    "quiet": ({"DatasetsCommand": {"quiet": True}}, "No progress bar."),
}


def _split(target: str) -> tuple[str, str, str]:
    """'project/dataset[@ref]' -> (project, dataset, ref)."""
    ref = "latest"
    if "@" in target:
        target, ref = target.rsplit("@", 1)
    if target.count("/") != 1:
        raise SystemExit(f"expected PROJECT/DATASET[@VERSION], got {target!r}")
    project, dataset = target.split("/")
    return project, dataset, ref


class DatasetsCommand(JupyterApp):
    """Base of the dataset subcommands."""

    name = "jupyter-workbench-datasets"
    classes = [Workbench]
    aliases = ALIASES
    flags = FLAGS
    config_file_name = Unicode("jupyter_server_config")

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
    dry_run = Bool(False, help="gc: only report what would be freed.").tag(config=True)
    as_json = Bool(False, help="Print JSON results.").tag(config=True)
    quiet = Bool(False, help="No progress bar.").tag(config=True)
    user = Unicode(
        "", help="Act as this user (access rules apply); default: the owner, an administrator."
    ).tag(config=True)

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

    def emit(self, data: Any, text: str) -> None:
        print(json.dumps(data, indent=2, default=str) if self.as_json else text)

    def start(self) -> None:
        settings = Workbench(parent=self)
        service = WorkbenchService(settings)
        try:
            self.run(service, self.identity(settings), list(self.extra_args))
        except WorkbenchError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            self.exit(2)
        finally:
            service.close()

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        raise NotImplementedError


class CommitCommand(DatasetsCommand):
    name = "jupyter-workbench-datasets-commit"
    description = "Commit a folder as a new version: commit PROJECT/DATASET PATH -m MESSAGE"

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        if len(args) != 2:
            raise SystemExit("usage: jupyter workbench datasets commit PROJECT/DATASET PATH -m MSG")
        project, dataset, _ref = _split(args[0])
        result = service.datasets.commit_folder(
            who,
            project,
            dataset,
            Path(args[1]),
            message=self.message,
            parent=self.parent_version or None,
            strict_parent=self.strict_parent,
            mode="update" if self.update_mode else "replace",
            progress=self.progress("commit"),
        )
        v = result.version
        self.emit(
            result.as_json(),
            f"{project}/{dataset}@v{v['version']}: {v['file_count']} files, "
            f"{v['total_bytes']} bytes ({result.bytes_new} new bytes stored, "
            f"{result.chunks_reused} chunks reused) in {result.seconds:.2f}s",
        )


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


class ListCommand(DatasetsCommand):
    name = "jupyter-workbench-datasets-list"
    description = "List a project's datasets, or a dataset's versions: list PROJECT[/DATASET]"

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        if len(args) != 1:
            raise SystemExit("usage: jupyter workbench datasets list PROJECT[/DATASET]")
        if "/" not in args[0]:
            rows = _every_page(
                service,
                who,
                lambda s, ctx, limit, cursor: ds.list_datasets(
                    s, ctx, args[0], limit=limit, cursor=cursor
                ),
                ds.dataset_json,
            )
            text = "\n".join(
                f"{r['name']:30} v{r['latest_version'] or '-':<6} {r['description']}" for r in rows
            )
        else:
            project, dataset, _ = _split(args[0])
            rows = _every_page(
                service,
                who,
                lambda s, ctx, limit, cursor: ds.list_versions(
                    s, ctx, project, dataset, limit=limit, cursor=cursor
                ),
                lambda s, _ctx, v: ds.version_json(s, v),
            )
            text = "\n".join(
                f"v{r['version']:<5} {r['file_count']:>7} files {r['total_bytes']:>14} bytes  "
                f"{','.join(r['tags']):20} {r['message']}"
                for r in rows
            )
        self.emit(rows, text or "(none)")


class DiffCommand(DatasetsCommand):
    name = "jupyter-workbench-datasets-diff"
    description = "Diff two versions: diff PROJECT/DATASET FROM [TO]"

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        if len(args) not in (2, 3):
            raise SystemExit("usage: jupyter workbench datasets diff PROJECT/DATASET FROM [TO]")
        project, dataset, _ = _split(args[0])
        diff = service.datasets.diff(
            who, project, dataset, args[1], args[2] if len(args) == 3 else "latest"
        )
        lines = [f"v{diff['from']} -> v{diff['to']}"]
        lines += [f"  + {f['path']} ({f['size']} bytes)" for f in diff["added"]]
        lines += [f"  - {f['path']} ({f['size']} bytes)" for f in diff["removed"]]
        lines += [
            f"  ~ {f['path']} ({f['old_size']} -> {f['new_size']} bytes)" for f in diff["modified"]
        ]
        for table in diff["tables"]:
            if "rows" in table:
                rows, schema = table["rows"], table["schema"]
                lines.append(
                    f"    {table['path']}: rows {rows['old']} -> {rows['new']} "
                    f"(+{rows['added']} -{rows['removed']}), columns +{schema['added']} "
                    f"-{schema['removed']}"
                )
        self.emit(diff, "\n".join(lines))


class GetCommand(DatasetsCommand):
    name = "jupyter-workbench-datasets-get"
    description = "Materialize a version into a folder: get PROJECT/DATASET[@VERSION] DEST"

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        if len(args) != 2:
            raise SystemExit("usage: jupyter workbench datasets get PROJECT/DATASET[@VERSION] DEST")
        project, dataset, ref = _split(args[0])
        result = service.datasets.materialize(
            who, project, dataset, ref, Path(args[1]), progress=self.progress("get")
        )
        self.emit(
            result,
            f"v{result['version']}: {result['files']} files in {result['path']} "
            f"({result['fetched']} fetched, the rest from the cache)",
        )


class VerifyCommand(DatasetsCommand):
    name = "jupyter-workbench-datasets-verify"
    description = (
        "Check every hash: verify [PROJECT/DATASET[@VERSION]] (no argument: the whole store)"
    )

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        if args:
            project, dataset, ref = _split(args[0])
            report = service.datasets.verify_version(
                who, project, dataset, ref, progress=self.progress("verify")
            )
        else:
            report = service.datasets.verify_store(progress=self.progress("verify"))
        self.emit(report, "OK" if report["ok"] else json.dumps(report, indent=2))
        if not report["ok"]:
            self.exit(1)


class GcCommand(DatasetsCommand):
    name = "jupyter-workbench-datasets-gc"
    description = "Free storage that no version uses: gc [--dry-run]"

    def run(self, service: WorkbenchService, who: Identity, args: list[str]) -> None:
        report = service.datasets.gc(dry_run=self.dry_run)
        verb = "would free" if self.dry_run else "freed"
        self.emit(
            report,
            f"{verb} {report['chunks_freed']} chunks ({report['bytes_freed']} bytes); "
            f"packs: {report['packs_retired']} retired, {report['packs_repacked']} "
            f"repacked, {report['packs_deleted']} deleted",
        )


class DatasetsGroup(JupyterApp):
    name = "jupyter-workbench-datasets"
    description = "Versioned datasets: commit, list, diff, get, verify, gc."
    subcommands = {
        "commit": (CommitCommand, CommitCommand.description),
        "list": (ListCommand, ListCommand.description),
        "diff": (DiffCommand, DiffCommand.description),
        "get": (GetCommand, GetCommand.description),
        "verify": (VerifyCommand, VerifyCommand.description),
        "gc": (GcCommand, GcCommand.description),
    }

    def start(self) -> None:
        if self.subapp is None:
            print("usage: jupyter workbench datasets {commit,list,diff,get,verify,gc} ...\n")
            for name, (_cls, help_text) in self.subcommands.items():
                print(f"  {name:8} {help_text}")
            self.exit(1)
        super().start()
