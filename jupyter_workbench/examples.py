"""The example notebooks a user copies into their own folder to start from (the lab's launcher
offers them): the package's own (``share/jupyter/workbench/examples`` once installed, the
checkout's ``examples/`` otherwise) or a folder of the administrator's (``examples_dir``).

A notebook's title is the first ``# heading`` of its first markdown cell, its description the
paragraph after it; ``metadata.workbench.rank`` orders them (lowest first, then by name)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_path

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
DESCRIPTION_MAX = 600
_CHECKOUT = Path(__file__).resolve().parents[1] / "examples"


@dataclass(frozen=True)
class Example:
    name: str  # the file name without .ipynb
    title: str
    description: str
    rank: int

    def json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "description": self.description}


def examples_folder(configured: str = "") -> Path | None:
    """Where the examples are: ``configured``, else the installed ones, else the checkout's."""
    if configured:
        return Path(configured).expanduser()
    for folder in [*map(Path, jupyter_path("workbench", "examples")), _CHECKOUT]:
        if folder.is_dir():
            return folder
    return None


def list_examples(folder: Path | None) -> list[Example]:
    """The folder's notebooks (a file that is not a readable notebook is left out)."""
    if folder is None or not folder.is_dir():
        return []
    found = [_read(path) for path in folder.glob("*.ipynb") if NAME.match(path.stem)]
    return sorted((e[0] for e in found if e is not None), key=lambda e: (e.rank, e.name))


def load_example(folder: Path | None, name: str) -> tuple[Example, dict[str, Any]] | None:
    """Example ``name`` and its notebook (nbformat 4 JSON), or ``None``."""
    if not NAME.match(name) or folder is None:
        return None
    path = folder / f"{name}.ipynb"
    return _read(path) if path.is_file() else None


def _read(path: Path) -> tuple[Example, dict[str, Any]] | None:
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(notebook, dict):
            return None
        title, description = _heading(notebook.get("cells"))
        metadata = notebook.get("metadata")
        workbench = metadata.get("workbench") if isinstance(metadata, dict) else None
        rank = workbench.get("rank") if isinstance(workbench, dict) else None
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    example = Example(
        name=path.stem,
        title=title or path.stem,
        description=description,
        rank=rank if isinstance(rank, int) and not isinstance(rank, bool) else 100,
    )
    return example, notebook


def _heading(cells: Any) -> tuple[str, str]:
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(map(str, source)) if isinstance(source, list) else str(source)
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        if not paragraphs or not paragraphs[0].startswith("# "):
            return "", ""
        title = paragraphs[0].splitlines()[0][2:].strip()
        description = _plain(paragraphs[1]) if len(paragraphs) > 1 else ""
        if len(description) > DESCRIPTION_MAX:
            description = description[: DESCRIPTION_MAX - 1].rstrip() + "…"
        return title, description
    return "", ""


def _plain(markdown: str) -> str:
    """A paragraph without emphasis, code marks or line breaks."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    return " ".join(re.sub(r"(\*\*|\*|`)(\S.*?)\1", r"\2", text).split())
