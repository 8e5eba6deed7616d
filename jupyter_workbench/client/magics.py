"""``%wb``: the workbench from IPython (``%load_ext jupyter_workbench``; workbench kernels
load it by themselves). Bad arguments and server errors print one line, never a traceback."""

from __future__ import annotations

import argparse
import shlex
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import default
from .errors import WorkbenchError

__all__ = ["load_ipython_extension", "wb_magic"]

HELP = """\
%wb help                                  this help
%wb projects                              the projects you can see (* marks the current one)
%wb project                               the current project
%wb project use SLUG                      make SLUG the current project
%wb datasets                              the current project's datasets
%wb runs [--experiment E] [--filter F] [--max N]
                                          the current project's runs (MLflow filter syntax)"""


class UsageError(Exception):
    """A bad ``%wb`` command line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit the kernel
        raise UsageError(message)


def _runs_parser() -> _Parser:
    parser = _Parser(prog="%wb runs", add_help=False)
    parser.add_argument("--experiment", "-e")
    parser.add_argument("--filter", "-f", default="")
    parser.add_argument("--max", type=int, default=50)
    return parser


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Plain aligned columns."""
    cells = [[str(c) for c in header], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _projects(args: list[str]) -> str:
    if args:
        raise UsageError("%wb projects takes no arguments")
    current = default.client().current_project
    rows = [
        ("*" if p.slug == current else "", p.slug, p.name, p.data.get("visibility"), p.role)
        for p in default.projects()
    ]
    if not rows:
        return "no projects yet"
    return table(rows, ["", "slug", "name", "visibility", "your role"])


def _project(args: list[str]) -> str:
    if not args:
        client = default.client()
        if not client.current_project:
            return "no current project (%wb project use SLUG)"
        p = client.project()
        return f"current project: {p.slug} ({p.name}, your role: {p.role})"
    if args[0] != "use" or len(args) != 2:
        raise UsageError("usage: %wb project use SLUG")
    p = default.use(args[1])
    return f"current project: {p.slug} ({p.name}, your role: {p.role})"


def _datasets(args: list[str]) -> str:
    if args:
        raise UsageError("%wb datasets takes no arguments (it lists the current project's)")
    client = default.client()
    items = client.datasets.list()
    if not items:
        return f"no datasets in {client.project_slug()}"
    rows = [
        (
            d["name"],
            f"v{d['latest_version']}" if d.get("latest_version") else "-",
            ", ".join(f"{t}={v}" for t, v in (d.get("tags") or {}).items() if t != "latest"),
            d.get("description") or "",
        )
        for d in items
    ]
    return table(rows, ["name", "latest", "tags", "description"])


def _runs(args: list[str]) -> str:
    opts = _runs_parser().parse_args(args)
    if opts.max < 1:
        raise UsageError("--max must be at least 1")
    client = default.client()
    slug = client.project_slug()
    runs = client.search_runs(
        [slug], filter=opts.filter, max_results=min(opts.max, 1000), order_by=["start_time DESC"]
    )
    if opts.experiment:
        runs = [r for r in runs if r.get("experiment") == f"{slug}/{opts.experiment}"]
    if not runs:
        return "no runs" + (f" in experiment {opts.experiment}" if opts.experiment else "")
    rows = []
    for r in runs:
        started = r.get("start_time")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(started / 1000)) if started else ""
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(r.get("metrics", {}).items()))
        experiment = str(r.get("experiment") or "").split("/", 1)[-1]
        rows.append((r["run_id"][:8], r.get("name"), experiment, r.get("status"), when, metrics))
    return table(rows, ["run", "name", "experiment", "status", "started", "metrics"])


COMMANDS: dict[str, Callable[[list[str]], str]] = {
    "help": lambda _args: HELP,
    "projects": _projects,
    "project": _project,
    "datasets": _datasets,
    "runs": _runs,
}


def run_command(line: str) -> str:
    """What ``%wb <line>`` prints (errors included, as one line)."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        return f"wb: error: {exc}"
    if not words:
        return HELP
    command = COMMANDS.get(words[0])
    if command is None:
        return f"wb: error: unknown command {words[0]!r} (try %wb help)"
    try:
        return command(words[1:])
    except UsageError as exc:
        return f"wb: error: {exc}"
    except WorkbenchError as exc:
        return f"wb: error: {exc.message}"


def wb_magic(line: str) -> None:
    print(run_command(line))


def complete(_shell: Any, event: Any) -> list[str]:
    """Tab completion: subcommands, then project slugs after ``project use``."""
    words = event.line.split()
    if event.line.endswith(" "):
        words.append("")
    if len(words) <= 2:
        return [name for name in COMMANDS if name.startswith(words[-1])]
    if words[1] == "project" and len(words) == 3:
        return ["use"]
    if words[1:3] == ["project", "use"] and len(words) == 4:
        try:
            return [p.slug for p in default.projects() if p.slug.startswith(words[3])]
        except WorkbenchError:
            return []
    return []


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magic_function(wb_magic, "line", "wb")
    ipython.set_hook("complete_command", complete, str_key="%wb")
