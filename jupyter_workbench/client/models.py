"""The model registry: ``wb.models.register(run, "name")``, ``wb.models.load("name@production")``.

A reference names a registered model of the current (or a given) project and one version:
``"name"`` (the newest version), ``"name/3"`` (version 3) or ``"name@alias"`` (the version an
alias such as ``production`` points at). ``load`` answers an MLflow pyfunc model when the version
is one (a folder with an ``MLmodel`` file), else the local folder of its files.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..files import seal, sealed
from .cache import LAYOUT, cache_dir, made, publish
from .errors import NotFound
from .resources import SEALED, _text

if TYPE_CHECKING:  # pragma: no cover
    from . import Client
    from .runs import Run

__all__ = ["ModelVersion", "Models", "parse_ref"]

LOGGED_MODEL_PAGES = 10  # pages of a run's logged models looked through (100 each)
_REF = re.compile(r"^(?P<name>[^@/]+)(?:@(?P<alias>[^@/]+)|/(?P<version>[0-9]+))?$")


def _token(rel: str) -> str:
    """What ``files.seal`` stamps a cached model file with (MLflow lists no digests)."""
    return hashlib.sha256(rel.encode()).hexdigest()


def _whole(copy: Path, index: Path) -> bool:
    """Whether a cached model version's files are all as they were downloaded (read-only,
    stamped, of their sizes): one written to or deleted since is not trusted."""
    try:
        entries = json.loads(index.read_text())
    except (OSError, ValueError):
        return False
    return all(sealed(copy / e["path"], int(e["size"]), _token(e["path"])) for e in entries)


def parse_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``(name, alias, version)`` of ``"name"``, ``"name@alias"`` or ``"name/3"``."""
    if not isinstance(ref, str):
        raise TypeError(
            f"model reference: expected a string ('name', 'name/3' or 'name@alias'), got "
            f"{type(ref).__name__} {ref!r:.60}"
        )
    found = _REF.match(ref.strip())
    if not found:
        raise ValueError(
            f"model reference {ref!r}: use 'name', 'name/3' (a version) or 'name@alias'"
        )
    return found["name"], found["alias"], found["version"]


@dataclass(frozen=True)
class ModelVersion:
    """One version of a registered model."""

    project: str
    name: str
    version: str
    run_id: str
    source: str
    aliases: tuple[str, ...] = ()

    @property
    def artifact_path(self) -> str:
        prefix = f"runs:/{self.run_id}/"
        return self.source[len(prefix) :] if self.source.startswith(prefix) else "model"

    def __str__(self) -> str:
        return f"{self.name}/{self.version}"


class Models:
    """``client.models``: registered models of the current (or a given) project."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def _path(self, slug: str, name: str = "") -> str:
        base = f"projects/{quote(slug, safe='')}/models"
        return f"{base}/{quote(name, safe='')}" if name else base

    def list(self, project: str | None = None) -> list[dict[str, Any]]:
        """Every registered model of the project, by name: name, latest versions, aliases."""
        return list(self.client.paged(self._path(self.client.project_slug(project))))

    def register(
        self,
        run: Run | str,
        name: str,
        *,
        artifact_path: str = "model",
        description: str = "",
        project: str | None = None,
    ) -> ModelVersion:
        """Register the model a run logged (``run.log_model``) as a new version of ``name``
        (the model is created on first use). ``run`` is a ``Run`` or a run id. Where the
        server could not check that the run holds ``artifact_path`` (an artifact store MLflow
        cannot list), the version is made and a ``UserWarning`` says so."""
        if not isinstance(run, str) and not hasattr(run, "run_id"):
            raise TypeError(
                f"run: expected a Run or a run id, got {type(run).__name__} {run!r:.60}"
            )
        name = _text(name, "name")
        if "@" in name or name != name.strip():  # 'a@b' would read as model 'a', alias 'b'
            raise ValueError(
                f"name: {name!r} cannot be named by a reference ('name', 'name/3', "
                "'name@alias'): no '@', no spaces at either end"
            )
        artifact_path = _text(artifact_path, "artifact_path")
        run_id = run if isinstance(run, str) else run.run_id
        slug = project or (None if isinstance(run, str) else run.project)
        slug = self.client.project_slug(slug)
        body = {"run_id": run_id, "artifact_path": artifact_path, "description": description}
        made = self.client.post(f"{self._path(slug, name)}/versions", body)
        for said in made.get("warnings") or ():  # e.g. MLflow could not list the run's files
            warnings.warn(f"{name}/{made['version']}: {said}", UserWarning, stacklevel=2)
        return ModelVersion(slug, name, str(made["version"]), run_id, str(made["source"]))

    def set_alias(
        self, ref: str | ModelVersion, alias: str, *, project: str | None = None
    ) -> ModelVersion:
        """Point ``alias`` at a version. Protected aliases (``production``, ``champion``...)
        need a project admin; others ask with a promotion request in the Workbench UI."""
        alias = _text(alias, "alias")  # (MLflow's word was "Missing value for ... 'alias'")
        mv = ref if isinstance(ref, ModelVersion) else self.get(ref, project=project)
        url = f"{self.client.mlflow_url(mv.project)}/api/2.0/mlflow/registered-models/alias"
        self.client.request(
            "POST", url, json={"name": mv.name, "alias": alias, "version": mv.version}
        )
        return self.get(f"{mv.name}/{mv.version}", project=mv.project)

    def get(self, ref: str, *, project: str | None = None) -> ModelVersion:
        """The version a reference names (``NotFound`` with what exists when there is none);
        ``"name@latest"`` is the newest, as in MLflow."""
        name, alias, version = parse_ref(ref)
        if alias is not None and alias.lower() == "latest":  # MLflow's reserved alias
            alias = None  # the newest version, as MLflow reads "name@latest"
        if version is not None:
            version = str(int(version))  # "name/01": version 1
        slug = self.client.project_slug(project)
        data = self.client.get(self._path(slug, name))
        versions = {str(v["version"]): v for v in data.get("versions", [])}
        aliases: dict[str, str] = {k: str(v) for k, v in (data.get("aliases") or {}).items()}
        if alias is not None:
            if alias not in aliases:
                known = ", ".join(sorted(aliases)) or "none"
                raise NotFound(f"model {name!r} has no alias {alias!r} (aliases: {known})")
            version = aliases[alias]
        elif version is None:
            if not versions:
                raise NotFound(f"model {name!r} has no versions yet")
            version = max(versions, key=int)
        if version not in versions:
            raise NotFound(f"model {name!r} has no version {version}")
        found = versions[version]
        return ModelVersion(
            slug,
            name,
            version,
            str(found.get("run_id") or ""),
            str(found.get("source") or ""),
            tuple(sorted(a for a, v in aliases.items() if v == version)),
        )

    def download(self, ref: str | ModelVersion, *, project: str | None = None) -> Path:
        """A local copy of a version's files (downloaded once, then cached)."""
        mv = ref if isinstance(ref, ModelVersion) else self.get(ref, project=project)
        root = cache_dir("models")
        made_of = f"{LAYOUT} {SEALED} {self.client.url} {mv.run_id} {mv.source}"
        key = hashlib.sha256(made_of.encode()).hexdigest()
        target = root / mv.project / mv.name / f"v{mv.version}-{key[:12]}"
        index = target.with_name(f"{target.name}.json")
        if target.is_dir():
            if _whole(target, index):
                return target
            # a file of it written to or deleted (an edit of ``load``'s folder): fetched again
            stale = target.with_name(f".stale-{uuid.uuid4().hex[:16]}")
            with contextlib.suppress(FileNotFoundError):  # another process's did first
                target.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        made(root)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".download-"))
        try:
            files = self._artifact_files(mv, mv.artifact_path)
            if not files:
                raise NotFound(f"{mv}: the run {mv.run_id[:8]} has no files under {mv.source}")
            entries = []
            for rel, url in files:
                dest = staging / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                with dest.open("wb") as out:
                    for piece in self.client.stream_bytes(url):
                        out.write(piece)
                seal(dest, _token(rel))
                entries.append({"path": rel, "size": dest.stat().st_size})
            tmp = index.with_name(f".{index.name}.{uuid.uuid4().hex[:16]}.tmp")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(entries))
            os.replace(tmp, index)  # (before the copy: a copy there always has its index)
            publish(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def load(self, ref: str | ModelVersion, *, project: str | None = None) -> Any:
        """An MLflow pyfunc model when the version is one, else its local folder (a ``Path``)."""
        mv = ref if isinstance(ref, ModelVersion) else self.get(ref, project=project)
        folder = self.download(mv)
        if (folder / "MLmodel").exists():
            import mlflow.pyfunc
            from mlflow.models import Model

            flavors = Model.load(str(folder / "MLmodel")).flavors
            if mlflow.pyfunc.FLAVOR_NAME not in flavors:  # mlflow's error named neither
                raise ValueError(
                    f"model {mv}: MLflow cannot load it as a python_function model (its "
                    f"flavours: {', '.join(sorted(flavors)) or 'none'}); its files are at "
                    f"{folder} (wb.models.download): load them with the flavour's own "
                    "mlflow.<flavour>.load_model"
                )
            return mlflow.pyfunc.load_model(str(folder))
        return folder

    def _artifact_files(self, mv: ModelVersion, path: str) -> builtins.list[tuple[str, str]]:
        """``(path under the model folder, download URL)`` of every file under ``path``."""
        base = self.client.mlflow_url(mv.project)
        if not mv.source.startswith("runs:/"):  # MLflow 3's log_model: models:/m-...
            got = self.client.request(
                "GET",
                f"{base}/api/2.0/mlflow/model-versions/get-download-uri",
                params={"name": mv.name, "version": mv.version},
            )
            return self._files_under(mv, str((got or {}).get("artifact_uri") or mv.source))
        info = self.client.request(
            "GET", f"{base}/api/2.0/mlflow/runs/get", params={"run_id": mv.run_id}
        )["run"]["info"]
        out = self._files_under(mv, f"{info['artifact_uri']}/{path}".rstrip("/"))
        if not out and path:  # runs:/<run>/<name>: a model the run logged with MLflow 3
            name, _, rest = path.partition("/")
            logged = self._logged_model(mv, str(info.get("experiment_id") or ""), name)
            if logged:
                return self._files_under(mv, f"{logged}/{rest}".rstrip("/"))
        return out

    def _logged_model(self, mv: ModelVersion, experiment_id: str, name: str) -> str | None:
        """Where the model that ``mv``'s run logged as ``name`` (MLflow 3's ``log_model``)
        keeps its files, as MLflow resolves ``runs:/<run>/<name>``; ``None`` if it logged none."""
        if not experiment_id or "'" in name:
            return None
        url = f"{self.client.mlflow_url(mv.project)}/api/2.0/mlflow/logged-models/search"
        body: dict[str, Any] = {
            "experiment_ids": [experiment_id],
            "filter": f"name = '{name}'",
            "max_results": 100,
        }
        for _ in range(LOGGED_MODEL_PAGES):
            page = self.client.request("POST", url, json=body) or {}
            for model in page.get("models") or []:
                info = model.get("info") or {}
                if info.get("source_run_id") == mv.run_id and info.get("artifact_uri"):
                    return str(info["artifact_uri"])
            if not page.get("next_page_token"):
                break
            body["page_token"] = page["next_page_token"]
        return None

    def _files_under(self, mv: ModelVersion, uri: str) -> builtins.list[tuple[str, str]]:
        """``(path under the folder, download URL)`` of every file under ``uri`` (a folder
        MLflow serves: ``mlflow-artifacts:/...``)."""
        if not uri.startswith("mlflow-artifacts:"):
            raise NotFound(f"{mv}: its files at {uri} are not served by the workbench")
        base = self.client.mlflow_url(mv.project)
        root = uri[len("mlflow-artifacts:") :].strip("/")
        out: builtins.list[tuple[str, str]] = []
        pending = [""]
        while pending:
            folder = pending.pop()
            listing = self.client.request(
                "GET",
                f"{base}/api/2.0/mlflow-artifacts/artifacts",
                params={"path": f"{root}/{folder}".rstrip("/")},
            )
            for entry in (listing or {}).get("files", []):
                rel = f"{folder}/{entry['path']}" if folder else str(entry["path"])
                if entry.get("is_dir"):
                    pending.append(rel)
                    continue
                url = f"{base}/api/2.0/mlflow-artifacts/artifacts/{quote(root)}/{quote(rel)}"
                out.append((rel, url))
        return sorted(out)
