"""``%%wb_run EXPERIMENT [--param K=V ...] [--name NAME]``: run a cell as a tracked run.

The run is the active run while the cell executes (``wb.log({...})``, ``mlflow.log_metric``
and the datasets it reads with ``wb.datasets.get`` go to it). Afterwards it records the cell's
source (the artifact ``cell.py`` and its SHA-256), the Python version and the versions of the
packages the kernel has imported, then ends FINISHED, or FAILED when the cell raised.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import importlib
import importlib.metadata
import json
import os
import platform
import sys
from typing import Any

from . import default
from .errors import WorkbenchError
from .magics import (
    EXPERIMENT_OPTIONS,
    UsageError,
    _option_value,
    _Parser,
    complete_experiment,
    experiment_name,
    help_of,
    split_equals,
)
from .runs import Run

__all__ = ["complete_wb_run", "kernel_packages", "wb_run_magic"]

PACKAGES_JSON_LIMIT = 200_000  # far below the API's request size limit (the server keeps it whole)


def _parser() -> _Parser:
    parser = _Parser(prog="%%wb_run", add_help=False)
    parser.add_argument("experiment", nargs="*")  # a name may hold spaces, quoted or not
    parser.add_argument("--experiment", "-e", nargs="+", dest="experiment_option")
    parser.add_argument("--param", "-p", action="append", default=[], metavar="K=V")
    parser.add_argument("--name", "-n", nargs="+")  # 'first try', quoted or not
    return parser


def parse_line(line: str) -> argparse.Namespace:
    import shlex

    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    opts = _parser().parse_args(split_equals(words, (*EXPERIMENT_OPTIONS, "--name", "-n")))
    if opts.experiment and opts.experiment_option:
        raise UsageError("name the experiment once: %%wb_run EXPERIMENT or --experiment EXPERIMENT")
    if not opts.experiment and opts.experiment_option is None:
        if opts.name and len(opts.name) > 1:  # '--name run1 sweep': the name took them all
            raise UsageError(
                f"--name took {' '.join(opts.name)!r} and left no EXPERIMENT: put EXPERIMENT "
                "first (%%wb_run EXPERIMENT --name NAME) or quote the name"
            )
        raise UsageError("usage: %%wb_run EXPERIMENT [--param K=V ...] [--name NAME]")
    opts.experiment = experiment_name(opts.experiment or None, "EXPERIMENT") + experiment_name(
        opts.experiment_option, "--experiment"
    )
    opts.name = " ".join(opts.name) if opts.name else None
    params: dict[str, str] = {}
    for item in opts.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {item!r}: write it as KEY=VALUE")
        if key in params:
            raise UsageError(f"--param {key!r} given twice")
        params[key] = value
    opts.params = params
    return opts


@functools.cache
def _distributions() -> dict[str, list[str]]:
    """Top-level module -> distributions (read once per kernel: it scans every install)."""
    return dict(importlib.metadata.packages_distributions())


def kernel_packages() -> dict[str, str]:
    """Versions of the installed distributions whose modules this kernel has imported."""
    by_module = _distributions()
    found: dict[str, str] = {}
    for module in sorted({m.split(".")[0] for m in list(sys.modules)}):
        for dist in by_module.get(module, []):
            if dist not in found:
                try:
                    found[dist] = importlib.metadata.version(dist)
                except importlib.metadata.PackageNotFoundError:
                    continue
    names = sorted(found, key=str.lower)
    while names and len(json.dumps({n: found[n] for n in names})) > PACKAGES_JSON_LIMIT:
        names.pop()
    return {n: found[n] for n in names}


def _record(run: Run, cell: str) -> None:
    run.log_text(cell, "cell.py")
    code: dict[str, str] = {"sha256": hashlib.sha256(cell.encode()).hexdigest()}
    notebook = os.environ.get("JPY_SESSION_NAME")
    if notebook:
        code["path"] = notebook[-1000:]
    run.record_lineage(
        {
            "code": code,
            "environment": {"python": platform.python_version(), "packages": kernel_packages()},
        }
    )


def _finish(run: Run, cell: str, status: str) -> WorkbenchError | None:
    """Record the cell and end the run, in any case (a run left open would stay the kernel's
    active run: ``wb.log`` and MLflow calls would go on to it), ``KILLED`` when interrupted
    meanwhile; what went wrong, if anything."""
    problem: WorkbenchError | None = None
    try:
        _record(run, cell)
    except WorkbenchError as exc:
        problem = exc
    except KeyboardInterrupt:  # ended all the same, then the interrupt shows
        status = "KILLED"
        raise
    finally:
        try:
            run.end(status)
        except WorkbenchError as exc:
            problem = problem or exc
    return problem


def _ends_in_semicolon(shell: Any, cell: str) -> bool:
    try:
        return bool(shell.displayhook.semicolon_at_end_of_expression(shell.transform_cell(cell)))
    except Exception:  # a cell that does not parse: its error shows when it runs
        return False


def _check_runnable(shell: Any, cell: str) -> None:
    """Refuse a cell with top-level ``await`` inside a running event loop (a kernel): IPython
    runs a cell magic's cell synchronously, so it would fail with "This event loop is already
    running" -- after the run had started."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # a terminal IPython: it runs the cell on a loop of its own
        return
    try:
        transformed = shell.transform_cell(cell)
    except Exception:  # the cell's own error shows when it runs, as for any cell
        return
    if shell.should_run_async(cell, transformed_cell=transformed, preprocessing_exc_tuple=None):
        raise UsageError(
            "%%wb_run cannot run a cell that awaits at top level (IPython runs a cell magic's "
            "cell synchronously); start the run in the cell instead: "
            "with wb.run('EXPERIMENT') as run: ..."
        )


def wb_run_magic(line: str, cell: str) -> None:
    """Run the cell as a tracked run (errors in the arguments print one line)."""
    from IPython import get_ipython

    if line.split() in (["-h"], ["--help"]):  # the help, not a run of the cell
        print(help_of("%%wb_run"))
        return
    try:
        opts = parse_line(line)
        _check_runnable(get_ipython(), cell)
        client = default.client()
        slug = client.project_slug()
        run = client.run(slug, opts.experiment, params=opts.params, name=opts.name)
    except (UsageError, WorkbenchError, ValueError) as exc:  # ValueError: a refused argument
        print(f"wb: error: {getattr(exc, 'message', exc)}")
        return
    failed = True
    try:
        shell = get_ipython()
        # a cell ending in ';' shows no value, as without the magic (IPython's check reads
        # the %%wb_run cell itself); silent: no displayhook, output and tracebacks as usual
        quiet = _ends_in_semicolon(shell, cell)
        result = shell.run_cell(cell, store_history=False, silent=quiet)
        failed = not result.success
    finally:
        status = "FAILED" if failed else "FINISHED"
        problem = _finish(run, cell, status)
    if problem is not None:
        print(f"wb: error: run {run.run_id[:8]} could not be recorded: {problem.message}")
        return
    read = ", ".join(  # another project's dataset with its project: which 'events' was it?
        f"{'' if project == slug else project + '/'}{name} v{version}"
        for project, name, version in run.datasets_read
    )
    print(
        f"wb: run {run.run_id[:8]} in {slug}/{opts.experiment}: {status}"
        + (f" (read {read})" if read else "")
    )


def complete_wb_run(_shell: Any, event: Any) -> list[str]:
    """Completion of ``%%wb_run``: experiment names, then the options."""
    words = event.line.split()
    if event.line.endswith(" "):
        words.append("")
    typed = _option_value(words)
    if typed:
        return complete_experiment(typed)
    if not any(w.startswith("-") for w in words[1:]):  # the name, maybe of several words
        return complete_experiment(words[1:])
    return [o for o in ("--param", "--name", "--experiment") if o.startswith(words[-1])]
