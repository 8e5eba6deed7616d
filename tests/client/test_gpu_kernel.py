"""The "Python 3 (Workbench, GPU)" kernel: it loads the workbench magics and says, with the first
cell's output, which GPUs it sees, honouring ``CUDA_VISIBLE_DEVICES``.

This machine has no GPU: the ``nvidia-smi`` answers come from a stand-in script on ``PATH`` that
prints what the real one prints for ``--query-gpu=index,uuid,name,memory.total
--format=csv,noheader,nounits`` on a two-GPU machine."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from .test_magics_kernel import KERNELS, REPO, run

pytestmark = pytest.mark.slow

SMI = """#!/bin/sh
echo "0, GPU-1111aaaa-0000-0000-0000-000000000000, NVIDIA H100 80GB HBM3, 81559"
echo "1, GPU-2222bbbb-0000-0000-0000-000000000000, NVIDIA H200, 143771"
"""


async def first_outputs(env_extra: dict[str, str], drop: tuple[str, ...] = ()) -> list[str]:
    """What the GPU kernel prints for two cells: ``%wb help`` and ``print('ok', ...)``."""
    specs = KernelSpecManager(kernel_dirs=[str(KERNELS)])
    manager = AsyncKernelManager(kernel_name="workbench-python3-gpu", kernel_spec_manager=specs)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "WORKBENCH_URL": "http://127.0.0.1:9",
        **env_extra,
    }
    for key in drop:
        env.pop(key, None)
    await manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        second = "import os; print('ok', os.environ['CUDA_DEVICE_ORDER'])"
        return [await run(client, "%wb help"), await run(client, second)]
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


def fake_smi(tmp_path: Path) -> str:
    folder = tmp_path / "bin"
    folder.mkdir()
    smi = folder / "nvidia-smi"
    smi.write_text(SMI)
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


async def test_no_gpu_is_said_once_and_the_magics_are_loaded() -> None:
    help_out, second = await first_outputs({}, drop=("CUDA_VISIBLE_DEVICES",))
    first_line, rest = help_out.split("\n", 1)
    assert first_line == "Workbench GPU kernel: no GPU visible"
    assert rest.startswith("%wb help")  # the extension is loaded
    assert second == "ok PCI_BUS_ID\n"  # said once, with the first cell
    # CUDA numbers GPUs in nvidia-smi's (PCI) order: CUDA_VISIBLE_DEVICES means the same to both


async def test_cuda_visible_devices_picks_and_hides_gpus(tmp_path: Path) -> None:
    path = fake_smi(tmp_path)
    both, _ = await first_outputs({"PATH": path}, drop=("CUDA_VISIBLE_DEVICES",))
    assert both.splitlines()[:3] == [
        "Workbench GPU kernel: 2 GPU(s) visible",
        "  cuda:0 NVIDIA H100 80GB HBM3 (80 GiB, nvidia-smi index 0)",
        "  cuda:1 NVIDIA H200 (140 GiB, nvidia-smi index 1)",
    ]
    second, _ = await first_outputs({"PATH": path, "CUDA_VISIBLE_DEVICES": "GPU-2222"})
    assert second.splitlines()[:2] == [
        "Workbench GPU kernel: 1 GPU(s) visible (CUDA_VISIBLE_DEVICES='GPU-2222')",
        "  cuda:0 NVIDIA H200 (140 GiB, nvidia-smi index 1)",
    ]
    hidden, _ = await first_outputs({"PATH": path, "CUDA_VISIBLE_DEVICES": ""})
    assert (
        hidden.splitlines()[0] == "Workbench GPU kernel: no GPU visible (CUDA_VISIBLE_DEVICES='')"
    )
