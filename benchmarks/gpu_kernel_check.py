"""The "Python 3 (Workbench, GPU)" kernel on a machine with a real GPU: what it says, whether a
first cell can still pick the GPU, a training step on it, and its start-up cost beside a plain
``ipykernel``.

Made to run on a lent GPU machine (the ``device`` tool), where nothing can be installed from a
registry: ``make device-wheels`` puts the kernel's packages (ipykernel, jupyter_client, ...) for
that machine's Python 3.12 into ``.whl``; then one call there:

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \\
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit; \\
    PYTHONUNBUFFERED=1 python3 benchmarks/gpu_kernel_check.py --out "$OUT"

(``carry``: ``.whl``). On a machine without a GPU it runs the same steps and says what it saw
("no GPU visible"); ``--expect-gpu`` makes that a failure.

Checks (exit status 1 when one fails):

1. The first cell's output starts with the report, and it names every GPU ``nvidia-smi -L``
   lists (as many lines, the same names), or ``no GPU visible`` where there is none.
2. The report did not start CUDA in the kernel: ``torch`` is not imported after the first cell,
   and a first cell that sets ``CUDA_VISIBLE_DEVICES=""`` leaves ``torch.cuda.is_available()``
   False in the kernel (where torch and a GPU exist).
3. ``CUDA_VISIBLE_DEVICES`` given to the kernel (the last GPU's index) is honoured by the report
   and by torch alike: one GPU, the same name.
4. Training: a small MLP trains on ``cuda:0`` in the kernel (loss falls).

Timing: seconds from starting the kernel to the first cell's reply, the median of ``--repeat``
starts, for the GPU kernel beside the stock ``python3`` ``ipykernel`` (anchor).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

REPO = Path(__file__).resolve().parents[1]
KERNELS = REPO / "kernels"

TRAIN = """
import torch
torch.manual_seed(0)
x = torch.randn(4096, 32, device="cuda:0")
y = (x[:, :1] * 2 - x[:, 1:2]).sin()
model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
model = model.to("cuda:0")
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
losses = []
for step in range(300):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    losses.append(loss.item())
print("trained", torch.cuda.get_device_name(0), round(losses[0], 4), round(losses[-1], 4))
"""


async def execute(client: Any, code: str) -> str:
    """Run ``code``; its printed output, or ``ERROR name: value``."""
    msg_id = client.execute(code)
    out: list[str] = []
    while True:
        msg = await client.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind == "error":
            out.append(f"ERROR {content['ename']}: {content['evalue']}\n")
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(out)


async def session(
    kernel: str, cells: list[str], env: dict[str, str] | None = None
) -> tuple[float, list[str]]:
    """Start ``kernel``, run ``cells``; (seconds from start to the first cell's reply, outputs)."""
    specs = (
        KernelSpecManager(kernel_dirs=[str(KERNELS)]) if kernel.startswith("workbench") else None
    )
    manager = AsyncKernelManager(
        kernel_name=kernel, **({"kernel_spec_manager": specs} if specs else {})
    )
    environ = {**os.environ, "WORKBENCH_URL": "http://127.0.0.1:9", **(env or {})}
    started = time.perf_counter()
    await manager.start_kernel(env=environ)
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=120)
        outputs = [await execute(client, cells[0])]
        first = time.perf_counter() - started
        outputs += [await execute(client, cell) for cell in cells[1:]]
        return first, outputs
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


def smi_gpus() -> list[str]:
    """``nvidia-smi -L``'s GPU names (empty without nvidia-smi)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    return [
        line.split(": ", 1)[1].rsplit(" (UUID", 1)[0]
        for line in listing.splitlines()
        if line.startswith("GPU ")
    ]


def has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


async def main(args: argparse.Namespace) -> int:
    results: dict[str, Any] = {"checks": {}, "outputs": {}}
    checks: dict[str, bool] = results["checks"]
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)  # the report's own default first
    gpus = smi_gpus()
    torch_here = has_torch()
    print(f"nvidia-smi GPUs: {gpus or 'none'}; torch importable: {torch_here}")

    # 1 + 2a: the report, and torch left alone
    _, (first, after) = await session(
        "workbench-python3-gpu", ["%wb help", "import sys; print('torch' in sys.modules)"]
    )
    results["outputs"]["first_cell"] = first
    report = first.split("%wb help", 1)[0].rstrip().splitlines()
    print("\n".join(report))
    if gpus:
        listed = [line.strip().split(" ", 1)[1] for line in report[1:]]
        checks["report names every GPU"] = len(listed) == len(gpus) and all(
            line.startswith(name) for line, name in zip(listed, gpus, strict=True)
        )
    else:
        checks["report says no GPU"] = report[:1] == ["Workbench GPU kernel: no GPU visible"]
    checks["magics loaded"] = "%wb project use SLUG" in first
    checks["report leaves torch unimported"] = after.strip() == "False"

    if torch_here and gpus:
        # 2b: a first cell can still hide every GPU from torch
        _, (_, hidden) = await session(
            "workbench-python3-gpu",
            [
                "import os; os.environ['CUDA_VISIBLE_DEVICES'] = ''",
                "import torch; print(torch.cuda.is_available())",
            ],
        )
        checks["first cell's CUDA_VISIBLE_DEVICES obeyed"] = hidden.strip() == "False"
        # 3: the kernel's CUDA_VISIBLE_DEVICES, report and torch agree
        last = str(len(gpus) - 1)
        _, (chosen, seen) = await session(
            "workbench-python3-gpu",
            [
                "pass",
                "import torch; print(torch.cuda.device_count(), torch.cuda.get_device_name(0))",
            ],
            env={"CUDA_VISIBLE_DEVICES": last},
        )
        results["outputs"]["chosen"] = chosen + seen
        checks["CUDA_VISIBLE_DEVICES: report and torch agree"] = (
            f"1 GPU(s) visible (CUDA_VISIBLE_DEVICES='{last}')" in chosen
            and seen.startswith("1 ")
            and seen.split(" ", 1)[1].strip() in chosen
        )
        # 4: training on the GPU in the kernel
        _, (_, trained) = await session("workbench-python3-gpu", ["pass", TRAIN])
        results["outputs"]["trained"] = trained
        words = trained.split()
        checks["trains on cuda:0"] = (
            trained.startswith("trained") and float(words[-1]) < float(words[-2]) / 2
        )
        print(trained.strip())
    elif args.expect_gpu:
        checks["a GPU and torch are here"] = False

    # timing: kernel start -> first cell's reply
    ours, anchor = [], []
    for _ in range(args.repeat):
        ours.append((await session("workbench-python3-gpu", ["1"]))[0])
        anchor.append((await session("python3", ["1"]))[0])
    results["start_to_first_reply_s"] = {
        "workbench_gpu": statistics.median(ours),
        "ipykernel": statistics.median(anchor),
    }
    label = f"start -> first cell reply, s (median of {args.repeat})"
    print(f"{label:48} {'ours':>8} {'ipykernel':>10}")
    print(f"{'':48} {statistics.median(ours):8.2f} {statistics.median(anchor):10.2f}")

    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "gpu_kernel_check.json").write_text(json.dumps(results, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3, help="kernel starts timed per kernel")
    parser.add_argument("--expect-gpu", action="store_true", help="fail where no GPU is seen")
    parser.add_argument("--out", default="", help="folder for gpu_kernel_check.json")
    sys.exit(asyncio.run(main(parser.parse_args())))
