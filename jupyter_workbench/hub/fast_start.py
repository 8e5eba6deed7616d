"""Faster start of the hub's Python processes (the workbench service, user servers).

jsonschema (imported by jupyter-server through jupyter-events) compiles a Lark grammar at import
time when ``rfc3987-syntax`` is installed, only to check the rarely used ``iri`` string format:
1-2 s of CPU on an idle machine, 10 s on a busy one — and JupyterHub gives a managed service only
10 s to answer. Without it jsonschema simply does not check that one format.
"""

from __future__ import annotations

import sys

SLOW_OPTIONAL_IMPORTS = ("rfc3987_syntax",)


def skip_slow_imports() -> None:
    """Make the slow optional imports fail fast (call before jupyter-server is imported)."""
    for name in SLOW_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
