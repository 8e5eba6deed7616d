"""The group leader takes MLflow and its uvicorn down however the workbench goes away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = (
        Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}").exists() else "X"
    )
    return status != "Z"


def wait_gone(pids: list[int], timeout: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_workbench_takes_the_whole_group_with_it(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # the "workbench": starts the leader, which runs a command that itself forks a child (as
    # `mlflow server` forks uvicorn); then the workbench is killed without any cleanup
    workbench = textwrap.dedent(f"""
        import os, subprocess, sys, time
        env = {{**os.environ, "WORKBENCH_GROUP_LEADER_PARENT": str(os.getpid())}}
        cmd = ["sh", "-c", "sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; wait"]
        leader = subprocess.Popen([sys.executable, "-m", "jupyter_workbench.tracking.group_leader",
                                   *cmd], env=env, start_new_session=True)
        with open("{pids}", "a") as f:
            f.write(f"{{leader.pid}}\\n")
        time.sleep(300)
    """)
    parent = subprocess.Popen([sys.executable, "-c", workbench])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not pids.exists() or len(pids.read_text().split()) < 3):
        time.sleep(0.1)
    group = [int(p) for p in pids.read_text().split()]
    assert len(group) == 3 and all(alive(p) for p in group)
    parent.kill()
    parent.wait()
    assert wait_gone(group) == [], "processes outlived the workbench"


def test_the_leader_exits_with_its_commands_status_and_stops_on_sigterm(tmp_path: Path) -> None:
    leader = [sys.executable, "-m", "jupyter_workbench.tracking.group_leader"]
    assert subprocess.run([*leader, "sh", "-c", "exit 3"], timeout=30).returncode == 3
    proc = subprocess.Popen([*leader, "sleep", "300"], start_new_session=True)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
