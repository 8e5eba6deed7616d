"""``DatasetBrowser(dataset)``: a dataset's versions, the files of one, and the diff of two."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import traitlets as t

from .base import WorkbenchWidget, esc, esm, html_table

if TYPE_CHECKING:  # pragma: no cover
    from ..client import Client
    from ..client.resources import DatasetVersion


ROWS = 200  # rows of a file list in the HTML fallback: a notebook keeps it (100k files: 5 MB)


def _number(ref: int | str) -> int:
    """``3``, ``"3"`` or ``"v3"`` -> 3."""
    text = str(ref).strip().lower().removeprefix("v")
    if not text.isdigit():
        raise ValueError(f"version {ref!r}: use a number or 'v3'")
    return int(text)


class DatasetBrowser(WorkbenchWidget):
    """Browse one dataset: pick a version (``version``) to see its files and who used it
    (lineage); pick two (``diff_from``, ``diff_to``) to see files added, removed and modified,
    and the schema and row changes of tables."""

    _esm = esm("dataset_browser.js")

    project = t.Unicode(help="The project.").tag(sync=True)
    dataset = t.Unicode(help="The dataset's name.").tag(sync=True)
    info = t.Dict(help="The dataset: description, card, metadata, tags, latest_version.").tag(
        sync=True
    )
    versions = t.List(t.Dict(), help="Every version, newest first.").tag(sync=True)
    version = t.Int(0, help="The version shown (0: none yet).").tag(sync=True)
    files = t.List(t.Dict(), help="The files of ``version``.").tag(sync=True)
    lineage = t.List(t.Dict(), help="The runs that read or wrote ``version``.").tag(sync=True)
    diff_from = t.Int(0, help="The older side of the diff (0: no diff).").tag(sync=True)
    diff_to = t.Int(0, help="The newer side of the diff.").tag(sync=True)
    diff = t.Dict(help="The diff of diff_from and diff_to (added, removed, modified, tables).").tag(
        sync=True
    )

    def __init__(
        self,
        dataset: str | DatasetVersion,
        *,
        project: str | None = None,
        client: Client | None = None,
    ) -> None:
        chosen = 0
        if not isinstance(dataset, str):
            client, project, chosen = (
                client or dataset.client,
                project or dataset.project,
                dataset.version,
            )
            dataset = dataset.name
        super().__init__(client=client)
        try:
            self.project = self.client.project_slug(project)
            self.dataset = dataset
            self.observe(self._load_version, names=["version"])
            self.observe(self._load_diff, names=["diff_from", "diff_to"])
            self.refresh(chosen)
        except BaseException:  # no current project ...: no comm left open for no browser
            self._abandon()
            raise

    @property
    def _base(self) -> str:
        return f"projects/{quote(self.project, safe='')}/datasets/{quote(self.dataset, safe='')}"

    def refresh(self, version: int = 0) -> DatasetBrowser:
        """Load the dataset and its versions again; show ``version`` (default the newest) and
        the diff of it with the one before."""
        info = self._call(lambda: self.client.get(self._base))
        if info is None:
            return self
        versions = self._call(
            lambda: self.client.datasets.versions(self.dataset, project=self.project)
        )
        if versions is None:
            return self
        self.info, self.versions = info, versions
        numbers = sorted(int(v["version"]) for v in versions)
        if not numbers:
            return self
        shown = version or numbers[-1]
        if shown == self.version:  # no change event: its lineage (new readers) loaded again
            self._load_version()
        else:
            self.version = shown
        older = [n for n in numbers if n < shown]
        if older:
            with self.hold_trait_notifications():
                self.diff_from, self.diff_to = older[-1], shown
        return self

    def reload(self) -> None:
        self.refresh()

    def show_diff(self, a: int | str, b: int | str) -> dict[str, Any]:
        """Diff two versions (``2``, ``"v2"``); answers the diff. A version that does not
        exist raises ``NotFound`` (and the view says so); it answered ``{}``."""
        pair = (_number(a), _number(b))
        self.failure = None
        if pair == (self.diff_from, self.diff_to):
            self._load_diff()  # no change event: fetched again, its error raised again
        else:
            with self.hold_trait_notifications():
                self.diff_from, self.diff_to = pair
        if self.failure is not None:
            raise self.failure
        return dict(self.diff)

    def _load_version(self, _change: Any = None) -> None:
        if not self.version:
            self.files, self.lineage = [], []
            return
        base = f"{self._base}/versions/v{self.version}"
        files = self._call(lambda: list(self.client.paged(f"{base}/files")))
        lineage = self._call(lambda: list(self.client.paged(f"{base}/lineage")))
        self.files = files or []
        self.lineage = lineage or []

    def _load_diff(self, _change: Any = None) -> None:
        if not (self.diff_from and self.diff_to) or self.diff_from == self.diff_to:
            self.diff = {}
            return
        found = self._call(
            lambda: self.client.datasets.diff(
                self.dataset, self.diff_from, self.diff_to, project=self.project
            )
        )
        self.diff = found or {}

    def summary(self) -> str:
        return (
            f"{self.project}/{self.dataset}: {len(self.versions)} versions, v{self.version} shown"
        )

    def fallback_html(self) -> str:
        tags = self.info.get("tags", {})
        by_version: dict[str, list[str]] = {}
        for tag, ref in tags.items():
            by_version.setdefault(str(ref), []).append(tag)
        parts = [
            f"<p><b>{esc(self.project)}/{esc(self.dataset)}</b> "
            f"{esc(self.info.get('description') or '')}</p>",
            html_table(
                ["version", "tags", "files", "bytes", "author", "message", "created"],
                [
                    [
                        v["name"],
                        ", ".join(sorted(by_version.get(v["name"], []))),
                        v.get("file_count"),
                        v.get("total_bytes"),
                        v.get("author"),
                        v.get("message"),
                        str(v.get("created_at", ""))[:16],
                    ]
                    for v in self.versions
                ],
                caption="versions",
            ),
        ]
        if self.version:
            parts.append(
                html_table(
                    ["path", "size", "type"],
                    [[f["path"], f["size"], f.get("media_type", "")] for f in self.files[:ROWS]],
                    caption=f"files of v{self.version}" + _first(len(self.files)),
                )
            )
        d = self.diff
        if d:
            rows = [["added", f["path"], f.get("size")] for f in d.get("added", [])]
            rows += [["removed", f["path"], f.get("size")] for f in d.get("removed", [])]
            rows += [
                ["modified", f["path"], f"{f.get('old_size')} → {f.get('new_size')}"]
                for f in d.get("modified", [])
            ]
            caption = f"v{d['from']} → v{d['to']}" + _first(len(rows))
            parts.append(html_table(["change", "path", "size"], rows[:ROWS], caption=caption))
            if d.get("tables"):  # the schema and row changes the view shows were left out
                parts.append(
                    html_table(
                        ["table", "rows", "columns added", "removed", "retyped"],
                        [_table_row(t) for t in d["tables"]],
                        caption="tables",
                    )
                )
        return "".join(parts)


def _first(count: int) -> str:
    """A fallback table's note where it shows the first ``ROWS`` rows only."""
    return f" (the first {ROWS} of {count:,}; the widget shows them all)" if count > ROWS else ""


def _table_row(table: dict[str, Any]) -> list[Any]:
    """One changed table of a diff: its rows and columns, or why it was not compared."""
    path = f"{table['path']} ({table.get('format', '')})"
    why = table.get("skipped") or table.get("error")
    if why:
        return [path, f"not compared: {why}", "", "", ""]
    rows, schema = table.get("rows", {}), table.get("schema", {})
    return [
        path,
        f"{rows.get('old', '?')} → {rows.get('new', '?')} "
        f"(+{rows.get('added', 0)}, -{rows.get('removed', 0)})",
        ", ".join(map(str, schema.get("added", []))),
        ", ".join(map(str, schema.get("removed", []))),
        ", ".join(
            f"{c.get('column')} {c.get('old_type')} → {c.get('new_type')}"
            for c in schema.get("changed", [])
        ),
    ]
