"""Faster start of the workbench's Python processes: the hub, its service and user servers,
and ``make lab``'s JupyterLab.

jsonschema (imported by jupyter-server and JupyterHub through jupyter-events) compiles a Lark
grammar at import time when ``rfc3987-syntax`` is installed, only to check the rarely used
``iri`` string format: 1-3 s of CPU on an idle machine, 10 s on a busy one -- and JupyterHub
gives a managed service only 10 s to answer. Without it jsonschema simply does not check that
one format (no Jupyter schema uses it).

``python -m jupyter_workbench.fast_start MODULE [ARGS...]`` runs ``python -m MODULE [ARGS...]``
that way (``jupyterhub``, ``jupyterlab``, ``jupyter_server``).
"""

from __future__ import annotations

import runpy
import sys

SLOW_OPTIONAL_IMPORTS = ("rfc3987_syntax",)


def skip_slow_imports() -> None:
    """Make the slow optional imports fail fast (call before jupyter-server is imported)."""
    for name in SLOW_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def command(module: str, *args: str) -> list[str]:
    """The command line that runs ``python -m module args...`` with the slow imports skipped."""
    return [sys.executable, "-m", __name__, module, *args]


def main(argv: list[str] | None = None) -> None:
    """Run ``python -m MODULE ARGS...`` (``argv``: ``[MODULE, *ARGS]``) without the slow imports."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        sys.exit("usage: python -m jupyter_workbench.fast_start MODULE [ARGS...]")
    skip_slow_imports()
    sys.argv = args
    runpy.run_module(args[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":  # pragma: no cover
    main()
