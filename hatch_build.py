"""Hatch build hook: a wheel built from a source tree ships the prebuilt JupyterLab extension.

``pip install .`` / ``pip wheel .`` (and a wheel built from the sdist) compile ``labextension/``
with npm and ``@jupyterlab/builder`` into ``jupyter_workbench/labextension``, which the wheel
installs as ``share/jupyter/labextensions/jupyter-workbench``: users of the wheel never need
Node.js. The build is skipped when it is newer than its sources (``make labextension`` made
it), for editable installs (``make install`` builds and links it itself), and when
``SKIP_LABEXTENSION_BUILD`` is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCES = ("package.json", "package-lock.json", "tsconfig.json", "src", "style", "schema")


def newest_source(labextension: Path) -> float:
    """The latest modification time among the extension's sources."""
    times = []
    for name in SOURCES:
        path = labextension / name
        if path.is_dir():
            times += [p.stat().st_mtime for p in path.rglob("*") if p.is_file()]
        elif path.is_file():
            times.append(path.stat().st_mtime)
    return max(times, default=0.0)


class LabExtensionBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Build ``labextension/`` before the wheel collects its shared data."""

    PLUGIN_NAME = "labextension"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        if os.environ.get("SKIP_LABEXTENSION_BUILD"):
            return
        root = Path(self.root)
        source = root / "labextension"
        built = root / "jupyter_workbench" / "labextension" / "package.json"
        if not (source / "package.json").is_file():
            if built.is_file():
                return  # a tree that carries only the build output
            raise RuntimeError("labextension/ is missing: cannot build the JupyterLab extension")
        if built.is_file() and built.stat().st_mtime >= newest_source(source):
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "building jupyter-workbench from source needs Node.js and npm (for its "
                "JupyterLab extension); install them, or install a built wheel"
            )
        marker = source / "node_modules" / ".package-lock.json"
        lock = source / "package-lock.json"
        if not marker.is_file() or marker.stat().st_mtime < lock.stat().st_mtime:
            self._run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], source)
        self._run([str(source / "node_modules" / ".bin" / "tsc")], source)
        import jupyterlab  # a build requirement: its staging tree is the core the build targets

        core = Path(jupyterlab.__file__).parent / "staging"
        build = [sys.executable, "-m", "jupyterlab.labextensions", "build", str(source)]
        self._run([*build, "--core-path", str(core)], root)
        if not built.is_file():
            raise RuntimeError(f"the JupyterLab extension build did not produce {built}")
        built.touch()

    def _run(self, command: list[str], cwd: Path) -> None:
        self.app.display_info(f"labextension: {' '.join(command)}")
        env = {
            **os.environ,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        }
        subprocess.run(command, cwd=cwd, env=env, check=True)
