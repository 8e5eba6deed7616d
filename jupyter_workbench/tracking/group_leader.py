"""``python -m jupyter_workbench.tracking.group_leader CMD...``: run CMD and take its whole
process group down with it.

``mlflow server`` starts uvicorn as a child and does not stop it when it is terminated itself,
and nothing stops either when the workbench process dies without a clean shutdown. This small
leader (started in a session of its own) runs CMD in its group and, on SIGTERM/SIGINT/SIGHUP or
when its parent — the workbench — dies (Linux ``PR_SET_PDEATHSIG``), terminates the whole group.
It exits with CMD's status, so a supervisor watching it sees CMD's exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from types import FrameType

PARENT_ENV = "WORKBENCH_GROUP_LEADER_PARENT"
PR_SET_PDEATHSIG = 1


def die_with_parent(expected_parent: int | None) -> None:
    """Ask Linux for SIGTERM when the parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if expected_parent is not None and os.getppid() != expected_parent:
        sys.exit(0)  # the parent died before the request took effect


def terminate_group(grace: float = 10.0) -> None:
    """SIGTERM to every other process of this group, SIGKILL to what is left after ``grace``."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no children left
        if pid == 0:
            time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m jupyter_workbench.tracking.group_leader CMD [ARGS...]")
        return 2
    if os.getpgrp() != os.getpid():
        os.setpgid(0, 0)  # lead a group of our own: terminate_group must never reach our caller
    parent = os.environ.pop(PARENT_ENV, None)
    die_with_parent(int(parent) if parent and parent.isdigit() else None)
    child = subprocess.Popen(argv)  # same process group as this leader

    def stop(signum: int, _frame: FrameType | None) -> None:
        terminate_group()
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    code = child.wait()
    terminate_group(grace=5.0)  # uvicorn and friends, if the command left them behind
    return code if code >= 0 else 128 - code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
