"""The "Python 3 (Workbench, GPU)" kernel: it loads the workbench magics and says, with the first
cell's output, which GPUs it sees, honouring ``CUDA_VISIBLE_DEVICES``, without starting CUDA in
the kernel (a first cell that picks a GPU must still be obeyed).

This machine has no GPU: the ``nvidia-smi`` answers come from a stand-in script on ``PATH`` that
prints what the real one prints for ``--query-gpu=index,uuid,name,memory.total,mig.mode.current
--format=csv,noheader,nounits`` and ``-L`` on a two-GPU machine (and on one whose second GPU is
split into MIG instances)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from jupyter_workbench.client import gpu

from .test_magics_kernel import KERNELS, REPO, run

H100 = "GPU-1111aaaa-0000-0000-0000-000000000000"
OTHER = "GPU-2222bbbb-0000-0000-0000-000000000000"
MIG_A = "MIG-aaaa0000-0000-0000-0000-000000000000"
MIG_B = "MIG-bbbb0000-0000-0000-0000-000000000000"

TWO_GPUS = {
    "query": [
        f"0, {H100}, NVIDIA H100 80GB HBM3, 81559, Disabled",
        f"1, {OTHER}, NVIDIA H200, 143771, [N/A]",
    ],
    "list": [f"GPU 0: NVIDIA H100 80GB HBM3 (UUID: {H100})", f"GPU 1: NVIDIA H200 (UUID: {OTHER})"],
}
SECOND_SPLIT = {  # GPU 1 in MIG mode with two instances
    "query": [
        f"0, {H100}, NVIDIA H100 80GB HBM3, 81559, Disabled",
        f"1, {OTHER}, NVIDIA A100-SXM4-80GB, 81920, Enabled",
    ],
    "list": [
        f"GPU 0: NVIDIA H100 80GB HBM3 (UUID: {H100})",
        f"GPU 1: NVIDIA A100-SXM4-80GB (UUID: {OTHER})",
        f"  MIG 3g.40gb     Device  0: (UUID: {MIG_A})",
        f"  MIG 1g.10gb     Device  1: (UUID: {MIG_B})",
    ],
}
SMI = """#!{python}
import sys
answers = {answers!r}
if sys.argv[1:2] == ["-L"]:
    print("\\n".join(answers["list"]))
elif sys.argv[1].startswith("--query-gpu=index,uuid,name,memory.total,mig.mode.current"):
    print("\\n".join(answers["query"]))
else:
    sys.exit("unexpected arguments: " + " ".join(sys.argv[1:]))
"""


def fake_smi(tmp_path: Path, answers: dict[str, list[str]] = TWO_GPUS) -> str:
    """A ``PATH`` whose ``nvidia-smi`` answers as on a machine with ``answers``'s GPUs."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    smi = folder / "nvidia-smi"
    smi.write_text(SMI.format(python=sys.executable, answers=answers))
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def report(monkeypatch: pytest.MonkeyPatch, path: str, visible: str | None) -> list[str]:
    monkeypatch.setenv("PATH", path)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    return gpu.gpu_report().splitlines()


def test_cuda_visible_devices_picks_orders_and_stops_like_cuda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = fake_smi(tmp_path)
    assert report(monkeypatch, path, "1,0") == [
        "Workbench GPU kernel: 2 GPU(s) visible (CUDA_VISIBLE_DEVICES='1,0')",
        "  cuda:0 NVIDIA H200 (140 GiB, nvidia-smi index 1)",
        "  cuda:1 NVIDIA H100 80GB HBM3 (80 GiB, nvidia-smi index 0)",
    ]
    # CUDA ignores everything from the first entry it cannot find
    assert report(monkeypatch, path, "0,7,1")[1:] == [
        "  cuda:0 NVIDIA H100 80GB HBM3 (80 GiB, nvidia-smi index 0)"
    ]
    assert report(monkeypatch, path, "7,0")[0] == (
        "Workbench GPU kernel: no GPU visible (CUDA_VISIBLE_DEVICES='7,0')"
    )
    assert report(monkeypatch, path, "-1")[0].endswith("no GPU visible (CUDA_VISIBLE_DEVICES='-1')")


def test_mig_instances_are_the_devices_of_a_gpu_in_mig_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = fake_smi(tmp_path, SECOND_SPLIT)
    assert report(monkeypatch, path, None) == [
        "Workbench GPU kernel: 3 GPU(s) visible",
        "  cuda:0 NVIDIA H100 80GB HBM3 (80 GiB, nvidia-smi index 0)",
        "  cuda:1 MIG 3g.40gb on NVIDIA A100-SXM4-80GB (nvidia-smi index 1)",
        "  cuda:2 MIG 1g.10gb on NVIDIA A100-SXM4-80GB (nvidia-smi index 1)",
    ]
    assert report(monkeypatch, path, "MIG-bbbb")[1:] == [
        "  cuda:0 MIG 1g.10gb on NVIDIA A100-SXM4-80GB (nvidia-smi index 1)"
    ]
    # a whole GPU's index never names a MIG instance
    assert report(monkeypatch, path, "1")[0].endswith("no GPU visible (CUDA_VISIBLE_DEVICES='1')")


def test_without_nvidia_smi_or_device_files_nothing_is_probed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty").mkdir()
    calls: list[object] = []
    monkeypatch.setattr(gpu.glob, "glob", lambda pattern: [])  # no /dev/nvidia0 ...
    monkeypatch.setattr(gpu.subprocess, "run", lambda *a, **k: calls.append(a))
    lines = report(monkeypatch, str(tmp_path / "empty"), None)
    assert lines == ["Workbench GPU kernel: no GPU visible"]
    assert calls == []  # no torch process started on a machine without NVIDIA devices


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
        second = (
            "import os, sys; print('ok', os.environ['CUDA_DEVICE_ORDER'], 'torch' in sys.modules)"
        )
        return [await run(client, "%wb help"), await run(client, second)]
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


@pytest.mark.slow
async def test_no_gpu_is_said_once_and_the_magics_are_loaded() -> None:
    help_out, second = await first_outputs({}, drop=("CUDA_VISIBLE_DEVICES",))
    first_line, rest = help_out.split("\n", 1)
    assert first_line == "Workbench GPU kernel: no GPU visible"
    assert rest.startswith("%wb help")  # the extension is loaded
    # said once, with the first cell; torch (CUDA) untouched, so a cell can still pick the GPU
    assert second == "ok PCI_BUS_ID False\n"
    # CUDA numbers GPUs in nvidia-smi's (PCI) order: CUDA_VISIBLE_DEVICES means the same to both


@pytest.mark.slow
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
