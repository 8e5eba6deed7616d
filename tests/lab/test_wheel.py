"""``pip wheel`` of a source tree ships the prebuilt JupyterLab extension (hatch_build.py):
whoever installs the wheel gets the lab UI enabled without Node.js."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = "jupyter_workbench-0.1.0.data/data/"
EXTENSION = "share/jupyter/labextensions/jupyter-workbench/"


def source_tree(target: Path) -> None:
    """A copy of the checkout's tracked files as a fresh clone has them: no built extension;
    the npm packages are linked from the checkout so that the test does not download them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    )  # fmt: skip
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    modules = REPO / "labextension" / "node_modules"
    if modules.is_dir():
        (target / "labextension" / "node_modules").symlink_to(modules)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_wheel_built_from_source_carries_the_enabled_lab_extension(tmp_path: Path) -> None:
    tree = tmp_path / "src"
    source_tree(tree)
    assert not (tree / "jupyter_workbench" / "labextension").exists()
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist")],
        cwd=tree, capture_output=True, text=True, timeout=840,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("jupyter_workbench-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert DATA + EXTENSION + "package.json" in names
        assert DATA + EXTENSION + "install.json" in names
        assert any(n.startswith(DATA + EXTENSION + "static/remoteEntry.") for n in names)
        assert DATA + EXTENSION + "schemas/jupyter-workbench/plugin.json" in names
        assert DATA + "share/jupyter/kernels/workbench-python3/kernel.json" in names
        assert "jupyter_workbench/py.typed" in names  # the client's types reach its users
        archive.extractall(tmp_path / "wheel")
    # what pip lays out from the wheel's data, seen by JupyterLab as an installed extension
    env = {
        **os.environ,
        "JUPYTER_PATH": str(tmp_path / "wheel" / DATA / "share" / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
    }
    listed = subprocess.run(
        [sys.executable, "-m", "jupyterlab.labextensions", "list"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    listing = listed.stdout + listed.stderr
    here = listing.split(str(tmp_path / "wheel"))[1].split("\n\n")[0]
    assert "jupyter-workbench v0.1.0" in here and "enabled" in here and "OK" in here, listing
    assert "(python, jupyter-workbench)" in here, listing
