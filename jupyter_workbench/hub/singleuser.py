"""``python -m jupyter_workbench.hub.singleuser``: JupyterHub's single-user server, started
faster (see :mod:`jupyter_workbench.fast_start`); what the workbench's spawners run."""

from __future__ import annotations

from ..fast_start import skip_slow_imports


def main() -> None:
    skip_slow_imports()
    from jupyterhub.singleuser import main as singleuser_main

    singleuser_main()


if __name__ == "__main__":  # pragma: no cover
    main()
