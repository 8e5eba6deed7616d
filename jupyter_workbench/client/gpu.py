"""The "Python 3 (Workbench, GPU)" kernel's extension: loads ``jupyter_workbench`` (the ``%wb``
magics) and, with the first cell's output, says which GPUs the kernel sees.

The report never touches CUDA inside the kernel: a first cell that sets
``CUDA_VISIBLE_DEVICES`` (the usual way to pick a GPU) must still be obeyed by torch afterwards,
and CUDA reads that variable once, when the process first initialises it. So the GPUs come from
``nvidia-smi`` (which CUDA's numbering matches: the kernel spec sets
``CUDA_DEVICE_ORDER=PCI_BUS_ID``), restricted to ``CUDA_VISIBLE_DEVICES`` (indices, ``GPU-...``
or ``MIG-...`` UUIDs) the way CUDA restricts them; only where there is no ``nvidia-smi`` but
there are NVIDIA device files does a separate Python process ask ``torch.cuda``. An empty
``CUDA_VISIBLE_DEVICES`` (or ``-1``) hides every GPU.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["gpu_report", "load_ipython_extension", "visible_gpus"]

NVIDIA_SMI_TIMEOUT = 10
TORCH_PROBE_TIMEOUT = 60
HIDDEN = {"", "-1", "none", "nodevfiles", "void"}
QUERY = "index,uuid,name,memory.total,mig.mode.current"
MIG_LINE = re.compile(
    r"^\s+MIG\s+(?P<profile>\S+)\s+Device\s+(?P<number>\d+):\s+\(UUID:\s+(?P<uuid>MIG-[^)\s]+)\)"
)
GPU_LINE = re.compile(r"^GPU\s+(?P<index>\d+):")

TORCH_PROBE = """
import json, torch
out = []
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        out.append([p.name, p.total_memory])
print(json.dumps(out))
"""


@dataclass
class Device:
    """One device CUDA would number: a whole GPU, or a MIG instance of one."""

    index: str  # nvidia-smi's GPU index
    uuid: str
    name: str
    memory: str  # MiB as nvidia-smi prints it ("" when unknown)
    mig_profile: str = ""

    def describe(self, number: int) -> str:
        if self.mig_profile:
            where = f"on {self.name} (nvidia-smi index {self.index})"
            return f"cuda:{number} MIG {self.mig_profile} {where}"
        size = _gib(self.memory)
        return f"cuda:{number} {self.name} ({size}nvidia-smi index {self.index})"


def _gib(mib: str) -> str:
    try:
        return f"{float(mib) / 1024:.0f} GiB, "
    except ValueError:
        return ""


def _smi(smi: str, *args: str) -> str | None:
    try:
        return subprocess.run(
            [smi, *args], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def _mig_devices(smi: str) -> dict[str, list[tuple[str, str]]]:
    """``nvidia-smi -L``'s MIG instances per GPU index: [(profile, MIG-uuid), ...]."""
    listing = _smi(smi, "-L") or ""
    found: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in listing.splitlines():
        gpu = GPU_LINE.match(line)
        if gpu:
            current = gpu["index"]
            continue
        mig = MIG_LINE.match(line)
        if mig and current:
            found.setdefault(current, []).append((mig["profile"], mig["uuid"]))
    return found


def _from_nvidia_smi() -> list[Device] | None:
    """Every device on the machine in CUDA's PCI order, MIG instances in place of their GPU."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    fmt = "--format=csv,noheader,nounits"
    answer = _smi(smi, f"--query-gpu={QUERY}", fmt)
    if answer is None:  # a driver too old for the MIG field
        answer = _smi(smi, f"--query-gpu={QUERY.rsplit(',', 1)[0]}", fmt)
    if answer is None:
        return None
    rows = [[p.strip() for p in line.split(",")] for line in answer.splitlines()]
    rows = [row for row in rows if len(row) >= 4]
    migs = _mig_devices(smi) if any(len(r) > 4 and r[4] == "Enabled" for r in rows) else {}
    devices: list[Device] = []
    for index, uuid, name, memory, *_ in rows:
        instances = migs.get(index)
        if instances:
            devices += [Device(index, mig, name, "", profile) for profile, mig in instances]
        else:
            devices.append(Device(index, uuid, name, memory))
    return devices


def _restrict(devices: list[Device], visible: list[str]) -> list[Device]:
    """What CUDA makes of ``CUDA_VISIBLE_DEVICES``: the listed devices in the listed order,
    up to the first entry it cannot find."""
    whole = [d for d in devices if not d.mig_profile]
    chosen: list[Device] = []
    for want in visible:
        if want.isdigit():
            match = next((d for d in whole if d.index == want), None)
        elif want.startswith(("GPU-", "MIG-")):
            match = next((d for d in devices if d.uuid.startswith(want)), None)
        else:
            match = None
        if match is None:
            break
        chosen.append(match)
    return chosen


def _from_torch_process() -> list[str] | None:
    """Ask ``torch.cuda`` in a separate process (CUDA never starts in the kernel)."""
    if not glob.glob("/dev/nvidia[0-9]*") and not glob.glob("/dev/dxg"):
        return None
    try:
        answer = subprocess.run(
            [sys.executable, "-c", TORCH_PROBE],
            capture_output=True,
            text=True,
            timeout=TORCH_PROBE_TIMEOUT,
            check=True,
        ).stdout
        found = json.loads(answer.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    return [f"cuda:{i} {name} ({memory / 2**30:.0f} GiB)" for i, (name, memory) in enumerate(found)]


def visible_gpus() -> list[str]:
    """One line per GPU this process may use (empty when none)."""
    setting = os.environ.get("CUDA_VISIBLE_DEVICES")
    if setting is not None and setting.strip().lower() in HIDDEN:
        return []
    devices = _from_nvidia_smi()
    if devices is None:
        return _from_torch_process() or []
    if setting is not None:
        devices = _restrict(devices, [v.strip() for v in setting.split(",")])
    return [device.describe(number) for number, device in enumerate(devices)]


def gpu_report() -> str:
    setting = os.environ.get("CUDA_VISIBLE_DEVICES")
    note = f" (CUDA_VISIBLE_DEVICES={setting!r})" if setting is not None else ""
    gpus = visible_gpus()
    if not gpus:
        return f"Workbench GPU kernel: no GPU visible{note}"
    return f"Workbench GPU kernel: {len(gpus)} GPU(s) visible{note}\n" + "\n".join(
        f"  {g}" for g in gpus
    )


def load_ipython_extension(ipython: Any) -> None:
    """Load the workbench magics; print the GPU report with the first cell's output."""
    ipython.extension_manager.load_extension("jupyter_workbench")

    def report_once(*_args: Any) -> None:
        ipython.events.unregister("pre_run_cell", report_once)
        print(gpu_report())

    ipython.events.register("pre_run_cell", report_once)
