"""``ModelCard(model)``: a registered model's card (markdown and fields), its versions and
aliases, and the lineage of a version (the run, the datasets it read, code, environment)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import traitlets as t

from ..client.errors import NotFound, WorkbenchError
from ..client.models import ModelVersion, parse_ref
from .base import WorkbenchWidget, esm, html_table

if TYPE_CHECKING:  # pragma: no cover
    from ..client import Client

FIELDS = ("intended_use", "limitations", "metrics", "training_datasets", "ethical_considerations")


def _datasets(items: list[dict[str, Any]]) -> str:
    return ", ".join(f"{d['project']}/{d['dataset']} v{d['version']}" for d in items)


class ModelCard(WorkbenchWidget):
    """A registered model rendered as its card: ``model`` is a name, ``"name@alias"``,
    ``"name/3"`` or a ``ModelVersion`` (the version whose lineage is shown; default the one
    ``production`` points at, else the newest)."""

    _esm = esm("model_card.js")

    project = t.Unicode(help="The project.").tag(sync=True)
    model = t.Unicode(help="The registered model's name.").tag(sync=True)
    description = t.Unicode("", help="The model's description.").tag(sync=True)
    card = t.Dict(help="The card: markdown, fields, revision, author, updated_at.").tag(sync=True)
    versions = t.List(t.Dict(), help="Every version: version, run_id, status, datasets.").tag(
        sync=True
    )
    aliases = t.Dict(help="Alias -> version.").tag(sync=True)
    version = t.Unicode("", help="The version whose lineage is shown.").tag(sync=True)
    lineage = t.Dict(help="The lineage of ``version``'s run (datasets, code, environment).").tag(
        sync=True
    )

    def __init__(
        self,
        model: str | ModelVersion,
        *,
        project: str | None = None,
        client: Client | None = None,
    ) -> None:
        super().__init__(client=client)
        alias: str | None
        version: str | None
        if isinstance(model, ModelVersion):
            name, alias, version = model.name, None, model.version
            project = project or model.project
        else:
            name, alias, version = parse_ref(model)
        try:
            self.project = self.client.project_slug(project)
            self.model = name
            self.observe(self._load_lineage, names=["version"])
            self.refresh(alias=alias, version=version)
        except BaseException:
            self._abandon()
            raise

    def refresh(self, *, alias: str | None = None, version: str | None = None) -> ModelCard:
        base = f"projects/{quote(self.project, safe='')}/models/{quote(self.model, safe='')}"
        data = self.client.get(base)  # a missing model raises NotFound at once
        card = self._call(lambda: self.client.get(f"{base}/card")) or data.get("card", {})
        self.description = str(data.get("description") or "")
        self.aliases = {k: str(v) for k, v in (data.get("aliases") or {}).items()}
        self.versions = [
            {**v, "aliases": sorted(a for a, n in self.aliases.items() if n == str(v["version"]))}
            for v in sorted(data.get("versions", []), key=lambda v: -int(v["version"]))
        ]
        self.card = {k: v for k, v in card.items() if k != "lineage"}
        if alias is not None:
            version = self.aliases.get(alias)
            if version is None:
                known = ", ".join(sorted(self.aliases)) or "none"
                raise NotFound(f"model {self.model!r} has no alias {alias!r} (aliases: {known})")
        if version is None:
            version = self.aliases.get("production") or (
                str(self.versions[0]["version"]) if self.versions else ""
            )
        elif not any(str(v["version"]) == str(version) for v in self.versions):
            # as wb.models.get: "churn/9" names nothing (was an empty card of "v9")
            known = ", ".join(str(v["version"]) for v in reversed(self.versions)) or "none yet"
            raise NotFound(f"model {self.model!r} has no version {version} (versions: {known})")
        if version == self.version:
            self._load_lineage()
        else:
            self.version = str(version)
        return self

    def reload(self) -> None:
        try:
            self.refresh(version=self.version or None)
        except WorkbenchError as exc:  # the model or version went: said in the view
            self.error = exc.message if hasattr(exc, "message") else str(exc)

    def _load_lineage(self, _change: Any = None) -> None:
        found = next((v for v in self.versions if str(v["version"]) == self.version), None)
        if found is None or not found.get("run_id"):
            self.lineage = {}
            return
        lineage = self._call(lambda: self.client.get(f"runs/{found['run_id']}/lineage"))
        self.lineage = lineage or {}

    def summary(self) -> str:
        return f"{self.project}/{self.model} v{self.version}"

    def _repr_markdown_(self) -> str:
        # markdown stays markdown; HTML in it (a card's author is someone else) shows as text:
        # a frontend that renders this markdown trusted would have run an <img onerror=...>
        return self._markdown(html.escape)

    def _markdown(self, plain: Callable[[str], str] = str) -> str:
        """The card as Markdown, every text the workbench's users wrote passed to ``plain``."""
        lines = [f"## {plain(self.model)}", ""]
        if self.description:
            lines += [plain(self.description), ""]
        if self.aliases:
            lines += [
                "aliases: " + ", ".join(f"`{a}` → v{v}" for a, v in sorted(self.aliases.items())),
                "",
            ]
        if self.card.get("markdown"):
            lines += [plain(str(self.card["markdown"])), ""]
        for key in FIELDS:
            value = (self.card.get("fields") or {}).get(key)
            if value:
                lines += [f"**{key.replace('_', ' ')}**: {plain(str(value))}", ""]
        if self.lineage:
            ln = self.lineage
            lines.append(f"lineage of v{self.version}: run `{ln.get('run_id', '')[:8]}`")
            if ln.get("datasets_read"):
                lines.append(f"- read: {plain(_datasets(ln['datasets_read']))}")
            if ln.get("datasets_written"):
                lines.append(f"- wrote: {plain(_datasets(ln['datasets_written']))}")
            if (ln.get("code") or {}).get("path"):
                lines.append(f"- code: {plain(str(ln['code']['path']))}")
        return "\n".join(lines)

    def fallback_html(self) -> str:
        import mistune

        render = mistune.create_markdown(escape=True, plugins=["table"])
        versions = html_table(
            ["version", "aliases", "run", "status", "datasets"],
            [
                [
                    v["version"],
                    ", ".join(v.get("aliases", [])),
                    str(v.get("run_id", ""))[:8],
                    v.get("status", ""),
                    _datasets(v.get("datasets", [])),
                ]
                for v in self.versions
            ],
            caption="versions",
        )
        return f"{render(self._markdown())}{versions}"  # mistune escapes HTML itself
