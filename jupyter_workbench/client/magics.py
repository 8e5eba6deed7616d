"""``%wb``: the workbench from IPython (``%load_ext jupyter_workbench``; workbench kernels
load it by themselves). Bad arguments and server errors print one line, never a traceback."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import re
import shlex
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from . import default
from .errors import WorkbenchError

__all__ = ["load_ipython_extension", "wb_magic"]

HELP = """\
%wb help                                  this help
%wb projects                              the projects you can see (* marks the current one)
%wb project                               the current project
%wb project use SLUG                      make SLUG the current project
%wb datasets                              the current project's datasets
%wb dataset NAME                          the versions of a dataset
%wb runs [--experiment E] [--filter F] [--max N]
                                          the current project's runs (MLflow filter syntax)
%wb compare RUN RUN...                    params that differ and metrics of runs (id prefixes)
%%wb_run EXPERIMENT [--param K=V ...] [--name NAME]
                                          run the cell as a tracked run: its source, the
                                          kernel's packages and the datasets it reads are
                                          recorded (wb.log({...}) / mlflow.log_metric log to it)"""


class UsageError(Exception):
    """A bad ``%wb`` command line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit the kernel
        raise UsageError(message)


def _runs_parser() -> _Parser:
    parser = _Parser(prog="%wb runs", add_help=False)
    parser.add_argument("--experiment", "-e", nargs="+")  # a name may hold spaces
    parser.add_argument("--filter", "-f", nargs="+", default=[])  # quoted or not
    parser.add_argument("--max", type=int, default=50)
    return parser


EXPERIMENT_OPTIONS = ("--experiment", "-e")
SPACED_OPTIONS = (*EXPERIMENT_OPTIONS, "--filter", "-f")  # their value may be several words


def split_equals(words: list[str], options: Sequence[str] = SPACED_OPTIONS) -> list[str]:
    """``--experiment=my sweep`` as ``--experiment my sweep`` (argparse would take ``my`` as
    the value and refuse ``sweep``), for the ``options`` whose value may be several words."""
    out: list[str] = []
    for word in words:
        option, sep, value = word.partition("=")
        out.extend([option, value] if sep and value and option in options else [word])
    return out


def experiment_name(words: list[str] | None, what: str = "--experiment") -> str:
    """The words of an experiment's name as one name, without the spaces around it that the
    server drops (refused when given empty)."""
    name = " ".join(words or []).strip()
    if words is not None and not name:
        raise UsageError(f"{what}: the name of an experiment, not empty")
    return name


def _one_line(value: Any) -> str:
    """A table cell on one line (a multi-line description or message would break the
    columns): line breaks and tabs shown escaped."""
    text = "" if value is None else str(value)
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


CELL_MAX = 40  # characters of a value shown in a column that others follow


def _cut(text: str) -> str:
    return text if len(text) <= CELL_MAX else text[: CELL_MAX - 1] + "\u2026"


def table(rows: Sequence[Sequence[Any]], header: Sequence[str], *, cut_last: bool = False) -> str:
    """Plain aligned columns, a row a line; a value longer than ``CELL_MAX`` is cut (``…``)
    but in the last column (unless ``cut_last``): one long name or param value pushed every
    column after it off the screen."""
    last = len(header) - (0 if cut_last else 1)
    body = [[_one_line(c) for c in r] for r in rows]
    body = [[_cut(c) if i < last else c for i, c in enumerate(r)] for r in body]
    cells = [[str(c) for c in header], *body]
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
    if args[0] != "use" or len(args) != 2 or not args[1].strip():
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


def number(value: Any) -> str:
    """A metric or param value, short: ``0.1235``, ``nan``, ``inf`` (MLflow's JSON gives
    non-finite values as the strings ``"NaN"``/``"Infinity"``, and its SQL store keeps an
    infinity as the largest float), or the text as it is; from 10,000 on with its digits
    (``123456``, ``12345.7``: 4 significant digits made a count of ``123456`` ``1.235e+05``)."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return str(value)
    if abs(as_float) == sys.float_info.max:
        as_float = math.copysign(math.inf, as_float)
    if 1e4 <= abs(as_float) < 1e15:
        return f"{as_float:.0f}" if as_float.is_integer() else f"{as_float:.1f}"
    return f"{as_float:.4g}"


def last_value(entry: Any) -> str:
    """A metric's last value in a comparison (``None`` there: the last point was NaN)."""
    if isinstance(entry, dict):
        return "nan" if "last" in entry and entry["last"] is None else number(entry.get("last"))
    return number(entry)


METRICS_SHOWN = 8  # metrics a row of %wb runs shows (a run may log hundreds)


def metrics_cell(metrics: dict[str, Any]) -> str:
    """A run's last metric values on one line: the first ``METRICS_SHOWN`` by name, then how
    many more (``%wb compare`` shows them all)."""
    items = sorted(metrics.items())
    shown = ", ".join(f"{k}={number(v)}" for k, v in items[:METRICS_SHOWN])
    more = len(items) - METRICS_SHOWN
    return f"{shown}, ... (+{more} more)" if more > 0 else shown


def _runs(args: list[str]) -> str:
    opts = _runs_parser().parse_args(split_equals(args))
    opts.experiment = experiment_name(opts.experiment)
    opts.filter = " ".join(opts.filter)  # 'metrics.loss < 0.5' unquoted: three words
    if opts.max < 1:
        raise UsageError("--max must be at least 1")
    client = default.client()
    slug = client.project_slug()
    runs = client.search_runs(
        [slug],
        experiment=opts.experiment or None,
        filter=opts.filter,
        max_results=opts.max + 1,  # one more: to tell whether there are more than --max
        order_by=["start_time DESC"],
    )
    more, runs = len(runs) > opts.max, runs[: opts.max]
    if not runs:
        return "no runs" + (f" in experiment {opts.experiment}" if opts.experiment else "")
    rows = []
    for r in runs:
        started = r.get("start_time")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(started / 1000)) if started else ""
        metrics = metrics_cell(r.get("metrics", {}))
        experiment = str(r.get("experiment") or "").split("/", 1)[-1]
        rows.append((r["run_id"][:8], r.get("name"), experiment, r.get("status"), when, metrics))
    listing = table(rows, ["run", "name", "experiment", "status", "started", "metrics"])
    if more:  # not a list that looks whole
        listing += f"\n(the newest {opts.max}; there are more: --max N)"
    return listing


VERSIONS_SHOWN = 20  # versions %wb dataset shows (a dataset committed hourly has thousands)


def _dataset(args: list[str]) -> str:
    if len(args) != 1 or not args[0].strip():
        raise UsageError("usage: %wb dataset NAME")
    client = default.client()
    slug = client.project_slug()
    path = f"projects/{quote(slug, safe='')}/datasets/{quote(args[0], safe='')}/versions"
    # the newest, and one more to tell whether there are more (not every page of them)
    versions = list(
        itertools.islice(client.paged(path, limit=VERSIONS_SHOWN + 1), VERSIONS_SHOWN + 1)
    )
    if not versions:
        return f"{args[0]} has no versions yet"
    more, versions = len(versions) > VERSIONS_SHOWN, versions[:VERSIONS_SHOWN]
    rows = [
        (
            f"v{v['version']}",
            ", ".join(v.get("tags") or []),
            v.get("file_count"),
            _size(v.get("total_bytes") or 0),
            v.get("author") or "",
            local_time(v.get("created_at")),
            v.get("message") or "",
        )
        for v in versions
    ]
    listing = table(rows, ["version", "tags", "files", "size", "author", "created", "message"])
    if more:
        listing += (
            f"\n(the newest {VERSIONS_SHOWN}; all of them: wb.datasets.versions({args[0]!r}))"
        )
    return listing


def local_time(iso: Any) -> str:
    """A server's ISO timestamp (UTC) in this kernel's time zone, to the minute, as
    ``%wb runs`` shows its times."""
    if not iso:
        return ""
    try:
        when = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone().strftime("%Y-%m-%d %H:%M")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


_FULL_RUN_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_RUN_ID_PREFIX = re.compile(r"^[0-9a-fA-F]{1,31}$")


def resolve_runs(prefixes: list[str]) -> list[str]:
    """Full run ids of the current project's runs that the prefixes name (one each): MLflow
    looks each prefix up (``attributes.run_id LIKE 'prefix%'``) among all the project's runs."""
    client = default.client()
    slug = client.project_slug()
    out = []
    for prefix in prefixes:
        if _FULL_RUN_ID.match(prefix):
            out.append(prefix.lower())  # a whole id: the server checks it
            continue
        if not _RUN_ID_PREFIX.match(prefix):
            raise UsageError(f"{prefix!r} is not a run id or the start of one (hex digits)")
        found = client.search_runs(
            [slug], filter=f"attributes.run_id LIKE '{prefix.lower()}%'", max_results=2
        )
        if not found:
            raise UsageError(f"no run {prefix!r} in project {slug} (see %wb runs)")
        if len(found) > 1:
            raise UsageError(f"{prefix!r} matches more than one run; give more characters")
        out.append(found[0]["run_id"])
    return out


def _compare(args: list[str]) -> str:
    if len(args) < 2:
        raise UsageError("usage: %wb compare RUN RUN... (two runs or more, ids or id prefixes)")
    run_ids = resolve_runs(args)
    if len(set(run_ids)) < 2:
        raise UsageError("name two different runs")
    data = default.client().compare(run_ids)
    runs = data["runs"]
    header = ["", *(r["run_id"][:8] for r in runs)]
    rows: list[list[Any]] = [
        ["name", *(r.get("name") for r in runs)],
        ["experiment", *(str(r.get("experiment") or "").split("/", 1)[-1] for r in runs)],
        ["status", *(r.get("status") for r in runs)],
    ]
    differ = data["params"]["differ"]
    if differ:
        rows.append(["params that differ:", *([""] * len(runs))])
        for key, values in sorted(differ.items()):
            rows.append([f"  {key}", *(values.get(r["run_id"]) for r in runs)])
    if data["metrics"]:
        rows.append(["metrics (last):", *([""] * len(runs))])
        for key, values in sorted(data["metrics"].items()):
            rows.append([f"  {key}", *(last_value(values.get(r["run_id"])) for r in runs)])
    same = data["params"]["same"]
    tail = "\nsame params: " + ", ".join(f"{k}={v}" for k, v in sorted(same.items()))
    return table(rows, header, cut_last=True) + (tail if same else "")


COMMANDS: dict[str, Callable[[list[str]], str]] = {
    "help": lambda _args: HELP,
    "projects": _projects,
    "project": _project,
    "datasets": _datasets,
    "dataset": _dataset,
    "runs": _runs,
    "compare": _compare,
}


def run_command(line: str) -> str:
    """What ``%wb <line>`` prints (errors included, as one line)."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        return f"wb: error: {exc}"
    if not words or words[0] in ("-h", "--help"):
        return HELP
    command = COMMANDS.get(words[0])
    if command is None:
        return f"wb: error: unknown command {words[0]!r} (try %wb help)"
    if words[1:] in (["-h"], ["--help"]):
        return help_of(f"%wb {words[0]}")
    try:
        return command(words[1:])
    except WorkbenchError as exc:
        return f"wb: error: {exc.message}"
    except (UsageError, ValueError) as exc:  # ValueError: the client refused an argument
        return f"wb: error: {exc}"


def help_of(command: str) -> str:
    """The lines of ``HELP`` about one command (``%wb runs -h``)."""
    entries = re.split(r"\n(?=%)", HELP)
    return "\n".join(e for e in entries if re.match(rf"{re.escape(command)}( |$)", e))


def wb_magic(line: str) -> None:
    print(run_command(line))


COMPLETION_WAIT = 5.0  # seconds TAB waits for the server: the kernel answers nothing meanwhile


def _names(fetch: Callable[[], list[str]], prefix: str) -> list[str]:
    """The names ``fetch`` answers that start with ``prefix``; none when it fails or takes
    longer than ``COMPLETION_WAIT`` (a server that hangs: its reads time out after 30 s and
    are tried again, which froze the kernel on TAB for a minute and a half)."""
    found: list[list[str]] = []

    def work() -> None:
        with contextlib.suppress(Exception):  # completion never raises
            found.append(fetch())

    thread = threading.Thread(target=work, name="workbench-completion", daemon=True)
    thread.start()
    thread.join(COMPLETION_WAIT)
    return sorted(n for n in found[0] if n.startswith(prefix)) if found else []


def experiment_names(prefix: str) -> list[str]:
    """The current project's experiment names starting with ``prefix`` (for completion)."""
    return _names(lambda: [e["name"] for e in default.client().experiments(q=prefix)], prefix)


def complete_experiment(words: list[str]) -> list[str]:
    """Completion of an experiment's name typed as ``words`` (``--experiment=`` stripped): the
    names from the word being typed on (IPython replaces that word alone, so ``my s`` is
    completed by ``sweep`` of ``my sweep``)."""
    if not words:  # the bare magic, no space typed yet
        return []
    prefix, current = " ".join(words), words[-1]
    return [name[len(prefix) - len(current) :] for name in experiment_names(prefix)]


def _option_value(words: list[str]) -> list[str] | None:
    """The words typed so far after the last ``--experiment``/``-e`` (also
    ``--experiment=...``), when no other option follows it; else ``None``."""
    for i in range(len(words) - 1, 0, -1):
        option, sep, value = words[i].partition("=")
        if option in EXPERIMENT_OPTIONS:
            return [value, *words[i + 1 :]] if sep else words[i + 1 :] or None
        if words[i].startswith("-") and i < len(words) - 1:
            return None
    return None


def complete(_shell: Any, event: Any) -> list[str]:
    """Tab completion: subcommands, project slugs, dataset and experiment names, run ids."""
    words = event.line.split()
    if event.line.endswith(" "):
        words.append("")
    if len(words) <= 2:
        return [name for name in COMMANDS if name.startswith(words[-1])]
    command, current = words[1], words[-1]
    if command == "project" and len(words) == 3:
        return ["use"]
    if words[1:3] == ["project", "use"] and len(words) == 4:
        return _names(lambda: [p.slug for p in default.projects()], current)
    if command == "dataset" and len(words) == 3:
        return _names(lambda: [d["name"] for d in default.client().datasets.list()], current)
    if command == "runs":
        typed = _option_value(words)
        if typed:
            return complete_experiment(typed)
        return [o for o in ("--experiment", "--filter", "--max") if o.startswith(current)]
    if command == "compare":

        def run_ids() -> list[str]:
            client = default.client()
            return [r["run_id"][:8] for r in client.search_runs([client.project_slug()])]

        return _names(run_ids, current)
    return []


def load_ipython_extension(ipython: Any) -> None:
    from .cell_run import complete_wb_run, wb_run_magic

    ipython.register_magic_function(wb_magic, "line", "wb")
    ipython.register_magic_function(wb_run_magic, "cell", "wb_run")
    ipython.set_hook("complete_command", complete, str_key="%wb")
    ipython.set_hook("complete_command", complete_wb_run, str_key="%%wb_run")
