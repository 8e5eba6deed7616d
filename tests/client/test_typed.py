"""The client is typed for its users: mypy sees through ``import jupyter_workbench as wb``'s
lazy names to the real signatures (``py.typed`` ships with the package, see test_wheel)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """\
import jupyter_workbench as wb

reveal_type(wb.datasets.get("events", version="v3"))
reveal_type(wb.run(experiment="baseline").log)
wb.use(5)
"""


def test_mypy_checks_a_users_script(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), str(script)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    said = done.stdout
    assert 'Revealed type is "jupyter_workbench.client.resources.DatasetVersion"' in said, said
    assert "def (metrics: dict[str, float], step: int | None =)" in said, said
    assert 'Argument 1 to "use" has incompatible type "int"; expected "str"' in said, said
