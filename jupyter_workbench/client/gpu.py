"""The "Python 3 (Workbench, GPU)" kernel's extension: loads ``jupyter_workbench`` (the ``%wb``
magics) and, with the first cell's output, says which GPUs the kernel sees.

The GPUs come from ``torch.cuda`` when torch is importable and finds CUDA, else from
``nvidia-smi``, restricted to ``CUDA_VISIBLE_DEVICES`` (indices or ``GPU-...`` UUIDs) the way
CUDA restricts them; an empty ``CUDA_VISIBLE_DEVICES`` (or ``-1``) hides every GPU.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
from typing import Any

__all__ = ["gpu_report", "load_ipython_extension", "visible_gpus"]

NVIDIA_SMI_TIMEOUT = 10
HIDDEN = {"", "-1", "none", "nodevfiles", "void"}


def _from_torch() -> list[str] | None:
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        torch: Any = importlib.import_module("torch")
        if not torch.cuda.is_available():
            return None
        out = []
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            out.append(f"cuda:{index} {props.name} ({props.total_memory / 2**30:.0f} GiB)")
        return out or None
    except Exception:  # a broken CUDA install: fall back to nvidia-smi
        return None


def _from_nvidia_smi(visible: list[str] | None) -> list[str] | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        answer = subprocess.run(
            [smi, "--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    gpus = []
    for line in answer.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 4:
            gpus.append(parts[:4])
    if visible is not None:  # CUDA's order: as listed in CUDA_VISIBLE_DEVICES
        chosen = []
        for want in visible:
            for gpu in gpus:
                if want == gpu[0] or (want.startswith("GPU-") and gpu[1].startswith(want)):
                    chosen.append(gpu)
                    break
            else:
                break  # CUDA ignores everything after an entry it cannot find
        gpus = chosen
    out = []
    for number, (index, _uuid, name, memory) in enumerate(gpus):
        size = f"{float(memory) / 1024:.0f} GiB" if memory.replace(".", "").isdigit() else memory
        out.append(f"cuda:{number} {name} ({size}, nvidia-smi index {index})")
    return out or None


def visible_gpus() -> list[str]:
    """One line per GPU this process may use (empty when none)."""
    setting = os.environ.get("CUDA_VISIBLE_DEVICES")
    if setting is not None and setting.strip().lower() in HIDDEN:
        return []
    visible = [v.strip() for v in setting.split(",")] if setting is not None else None
    return _from_torch() or _from_nvidia_smi(visible) or []


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
