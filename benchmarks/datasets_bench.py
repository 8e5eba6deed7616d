"""Versioned datasets: commit speed, bytes stored for a new version and peak memory, beside DVC.

What it measures, in one run, on data generated first with fixed seeds in a temporary folder
(then synced, so that every contender reads the same files from the page cache and none pays
for another's writeback):

1. A 1 GiB dataset: one 800 MiB file of random bytes + 20,000 small random files whose random
   sizes (log-normal) add up to 224 MiB. Each contender is timed ``--repeat`` times (default 2)
   and its best time kept:

   - raw BLAKE3, one thread, over every file (8 MiB reads);
   - raw ``chunk_file`` (FastCDC cut points + a BLAKE3 per chunk + the whole-file BLAKE3, no-op
     ``on_chunk``) over every file: "raw BLAKE3+chunking";
   - ours: ``DatasetJobs.commit_folder`` into a fresh SQLite database + local blob store, of the
     whole folder, of the large file alone and of the small files alone (each in its own fresh
     store, each in a child process: a fresh interpreter, nothing cached);
   - ``dvc add`` of the whole folder, in a ``git init`` + ``dvc init`` workspace holding the same
     files, with DVC's default cache (.dvc/cache) and link type, repository and DVC's state
     (its cache of file hashes) made afresh for each run; the time is the wall time of the
     command, DVC's start-up included (printed separately). Ours is timed around
     ``commit_folder`` in the child, without the interpreter's start-up.

   Goals: ours >= 5x faster than ``dvc add``; the large-file commit >= 0.5x the speed of raw
   ``chunk_file`` on that file; >= 5,000 small files/s.
2. A second version of a ~500 MB CSV (id,timestamp,user,amount,category; one run): 1% more rows
   appended and 100 single rows edited at scattered places. Bytes newly stored for v2: ours is
   the commit's ``bytes_new``, DVC's is the growth of .dvc/cache after ``dvc add`` of v2 (it
   stores whole files). Goal: ours <= 3% of the file. (With 100 edits each rewriting a ~64-256 KiB
   chunk, the goal only means something at the full size: a scaled-down CSV misses it.)
3. Peak RSS of the process running our whole 1 GiB commit: ``VmHWM`` read by that child
   process itself from /proc/self/status when it is done (the interpreter, the imports and the
   service included). Goal: <= 300 MB (10^6 bytes).

Our commit fsyncs each pack it stores; DVC does not fsync. Nothing is contacted over the
network: DVC runs with analytics, the update check and its daemons off, its site cache and
global config in the temporary folder.

DVC runs from its own virtual environment, created on first use with ``python -m venv`` +
``pip install dvc`` under ``~/.cache/workbench-bench/dvc-venv`` (``--dvc-venv``) and reused after;
``--skip-dvc`` leaves DVC out. Everything else is removed at the end.

The full size takes about 2 minutes on 2 cores (plus the DVC install, once) and needs about
5 GiB of free disk under ``--dir``. The load average is printed: other work on the machine
slows every contender, ours (one core) and DVC (which copies with several threads) unevenly.

Run (from the repository root)::

    .venv/bin/python benchmarks/datasets_bench.py                      # full size
    .venv/bin/python benchmarks/datasets_bench.py --large-mib 64 --small-files 2000 \\
        --csv-mib 20                                                     # a quick run
    .venv/bin/python benchmarks/datasets_bench.py --skip-dvc --profile   # + where ours spends
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import platform
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3 as blake3_module
from blake3 import blake3
from traitlets.config import Config

from jupyter_workbench.core import projects
from jupyter_workbench.core.context import Identity
from jupyter_workbench.service import WorkbenchService
from jupyter_workbench.settings import Workbench
from jupyter_workbench.storage import chunk_file

MIB = 1024 * 1024
BLOCK = 8 * MIB
SMALL_PER_DIR = 200
DEFAULT_SMALL_MIB_PER_FILE = 224 / 20_000  # 20,000 files make 224 MiB
IDENTITY = Identity("bench", "Bench")
PROJECT = "bench"
CHILD_TIMEOUT_S = 1800
DVC_TIMEOUT_S = 1800
RESULT_TAG = "RESULT "

GOAL_VS_DVC = 5.0  # ours this many times faster than dvc add
GOAL_VS_RAW = 0.5  # large-file commit at least this share of raw chunk_file speed
GOAL_FILES_PER_S = 5000.0
GOAL_CSV_SHARE = 0.03
GOAL_PEAK_RSS = 300e6

CATEGORIES = (
    "groceries",
    "travel",
    "books",
    "electronics",
    "garden",
    "health",
    "music",
    "sports",
    "toys",
    "fuel",
    "rent",
    "other",
)


# -- data -------------------------------------------------------------------------------
def write_random(path: Path, size: int, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(BLOCK, left)
            f.write(rng.randbytes(n))
            left -= n


def small_sizes(count: int, total: int, rng: random.Random) -> list[int]:
    """``count`` log-normal sizes (>= 1 byte) adding up to exactly ``total``."""
    weights = [rng.lognormvariate(0.0, 1.0) for _ in range(count)]
    scale = total / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[-1] = max(1, sizes[-1] + total - sum(sizes))
    return sizes


def write_small_files(root: Path, sizes: list[int], rng: random.Random) -> None:
    for i, size in enumerate(sizes):
        folder = root / f"d{i // SMALL_PER_DIR:03d}"
        if i % SMALL_PER_DIR == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.bin").write_bytes(rng.randbytes(size))


@dataclass
class CsvInfo:
    rows_v1: int
    rows_appended: int
    rows_edited: int
    size_v1: int
    size_v2: int


class CsvRows:
    """Deterministic rows ``id,timestamp,user,amount,category`` (row i from its own state)."""

    BASE = 1_704_067_200  # 2024-01-01T00:00:00Z

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._days: dict[int, str] = {}

    def _day(self, day: int) -> str:
        text = self._days.get(day)
        if text is None:
            text = time.strftime("%Y-%m-%d", time.gmtime(self.BASE + day * 86400))
            self._days[day] = text
        return text

    def row(self, i: int) -> str:
        rng = self.rng
        t = i * 3 + (i * 7919) % 3
        day, rest = divmod(t, 86400)
        hour, rest = divmod(rest, 3600)
        minute, second = divmod(rest, 60)
        return (
            f"{i},{self._day(day)}T{hour:02d}:{minute:02d}:{second:02d}Z,"
            f"user{rng.randrange(100_000):05d},{rng.randrange(100, 5_000_000) / 100:.2f},"
            f"{CATEGORIES[rng.randrange(len(CATEGORIES))]}\n"
        )


def edited(line: str, rng: random.Random) -> str:
    """The row with another amount and category (a single-row edit)."""
    fields = line.rstrip("\n").split(",")
    fields[3] = f"{rng.randrange(100, 5_000_000) / 100:.2f}"
    fields[4] = CATEGORIES[rng.randrange(len(CATEGORIES))]
    return ",".join(fields) + "\n"


def write_csv_versions(v1: Path, v2: Path, size: int, edits: int, seed: int) -> CsvInfo:
    """v1 of about ``size`` bytes; v2 = v1 with ``edits`` rows edited and 1% more rows."""
    header = "id,timestamp,user,amount,category\n"
    sample = CsvRows(seed + 1)
    rows = size // 40
    for _ in range(2):  # row length grows with the id: estimate it around the middle row
        mean = sum(len(sample.row(i)) for i in range(rows // 2, rows // 2 + 10_000)) / 10_000
        rows = max(edits, int((size - len(header)) / mean))
    appended = rows // 100
    rng = random.Random(seed)
    to_edit = set(rng.sample(range(rows), min(edits, rows)))
    gen = CsvRows(seed)
    v1.parent.mkdir(parents=True, exist_ok=True)
    v2.parent.mkdir(parents=True, exist_ok=True)
    batch = 50_000
    with open(v1, "w", encoding="ascii") as f1, open(v2, "w", encoding="ascii") as f2:
        f1.write(header)
        f2.write(header)
        for start in range(0, rows + appended, batch):
            end = min(start + batch, rows + appended)
            lines = [gen.row(i) for i in range(start, end)]
            if start < rows:
                f1.write("".join(lines[: rows - start]))
            for i in range(start, min(end, rows)):
                if i in to_edit:
                    lines[i - start] = edited(lines[i - start], rng)
            f2.write("".join(lines))
    return CsvInfo(rows, appended, len(to_edit), v1.stat().st_size, v2.stat().st_size)


def files_under(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        found.extend(Path(dirpath) / name for name in sorted(filenames))
    return found


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in files_under(root)) if root.exists() else 0


# -- raw hashing --------------------------------------------------------------------------
def raw_blake3(files: Sequence[Path]) -> float:
    buf = bytearray(BLOCK)
    view = memoryview(buf)
    started = time.perf_counter()
    for path in files:
        hasher = blake3(max_threads=1)
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(view):
                hasher.update(view[:n])
        hasher.hexdigest()
    return time.perf_counter() - started


def raw_chunking(files: Sequence[Path]) -> float:
    started = time.perf_counter()
    for path in files:
        chunk_file(path, on_chunk=lambda chunk: None)
    return time.perf_counter() - started


# -- ours, in a child process -------------------------------------------------------------
def proc_status(field_name: str) -> int:
    """A ``kB`` field of /proc/self/status, in bytes (0 where there is no /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def child_commit(spec: dict[str, Any]) -> None:
    """Commit each of ``spec['sources']`` as the next version of one dataset in a fresh store;
    print one result line (JSON) for all of them. Runs in the child process."""
    work = Path(spec["work"])
    config = {
        "database_url": f"sqlite:///{work / 'workbench.db'}",
        "data_dir": str(work / "data"),
        "storage_backend": "local",
        "storage_dir": str(work / "blobs"),
    }
    service = WorkbenchService(Workbench(config=Config({"Workbench": config})))
    try:
        service.call(
            IDENTITY,
            lambda s, ctx: projects.create(s, ctx, name="Bench", slug=PROJECT),
            write=True,
        )
        jobs = service.datasets
        rss_before = proc_status("VmRSS")
        profiler = cProfile.Profile() if spec.get("profile") else None
        commits: list[dict[str, Any]] = []
        for number, source in enumerate(spec["sources"], start=1):
            if profiler is not None:
                profiler.enable()
            started = time.perf_counter()
            result = jobs.commit_folder(
                IDENTITY, PROJECT, spec["dataset"], Path(source), message=f"v{number}"
            )
            seconds = time.perf_counter() - started
            if profiler is not None:
                profiler.disable()
            commits.append(
                {
                    "seconds": seconds,
                    "reported_seconds": result.seconds,
                    "version": result.version["version"],
                    "files": result.version["file_count"],
                    "bytes": result.version["total_bytes"],
                    "bytes_new": result.bytes_new,
                    "chunks_new": result.chunks_new,
                    "chunks_reused": result.chunks_reused,
                    "store_bytes": tree_bytes(work / "blobs"),
                }
            )
        out = {"commits": commits, "rss_before": rss_before, "peak_rss": proc_status("VmHWM")}
        print(RESULT_TAG + json.dumps(out), flush=True)
        if profiler is not None:
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
            print(text.getvalue(), file=sys.stderr, flush=True)
    finally:
        service.close()


def best_of_ours(work: Path, dataset: str, source: Path, repeat: int) -> dict[str, Any]:
    """The fastest of ``repeat`` commits of ``source``, each into a fresh store; its peak RSS
    is the highest of them all."""
    runs = [run_ours(work, dataset, [source]) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["commits"][0]["seconds"])
    return {**best, "peak_rss": max(r["peak_rss"] for r in runs)}


def best_of(repeat: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(repeat))


def run_ours(
    work: Path, dataset: str, sources: Sequence[Path], *, profile: bool = False
) -> dict[str, Any]:
    spec = {
        "work": str(work),
        "dataset": dataset,
        "sources": [str(s) for s in sources],
        "profile": profile,
    }
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child-commit", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    shutil.rmtree(work, ignore_errors=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        raise SystemExit(
            f"our commit of {dataset} failed (exit {proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_TAG) :])
    if profile:
        result["profile"] = proc.stderr
    return result


# -- DVC ----------------------------------------------------------------------------------
def ensure_dvc(venv: Path) -> Path:
    """DVC's executable in ``venv``, installed there first if it is not yet."""
    dvc = venv / "bin" / "dvc"
    marker = venv / ".installed-ok"
    if dvc.exists() and marker.exists():
        return dvc
    if venv.exists():
        shutil.rmtree(venv)  # an unfinished install of ours
    venv.parent.mkdir(parents=True, exist_ok=True)
    print(f"installing DVC into {venv} (once; a few minutes) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "dvc"],
        check=True,
    )
    marker.touch()
    return dvc


class Dvc:
    """One DVC executable, run offline with its state kept under ``scratch``."""

    def __init__(self, executable: Path, scratch: Path) -> None:
        self.executable = executable
        self.scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)
        (scratch / "global").mkdir(exist_ok=True)
        (scratch / "system").mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "DVC_NO_ANALYTICS": "1",
            "DVC_DAEMON": "1",  # never spawn the detached updater/analytics daemons
            "DVC_SITE_CACHE_DIR": str(scratch / "site-cache"),
            "DVC_GLOBAL_CONFIG_DIR": str(scratch / "global"),
            "DVC_SYSTEM_CONFIG_DIR": str(scratch / "system"),
            "GIT_CONFIG_NOSYSTEM": "1",
        }

    def run(self, cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.executable), *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=DVC_TIMEOUT_S,
        )
        if check and proc.returncode != 0:
            raise SystemExit(f"dvc {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def timed(self, cwd: Path, *args: str) -> float:
        started = time.perf_counter()
        self.run(cwd, *args)
        return time.perf_counter() - started

    def version(self, cwd: Path) -> str:
        return self.run(cwd, "--version").stdout.strip()

    def init(self, workspace: Path) -> None:
        """A fresh git + DVC repository in ``workspace`` (any earlier one and DVC's state, its
        cache of file hashes included, removed first: every ``dvc add`` hashes from scratch)."""
        for name in (".git", ".dvc"):
            shutil.rmtree(workspace / name, ignore_errors=True)
        for name in (".dvcignore", ".gitignore"):
            (workspace / name).unlink(missing_ok=True)
        for stage_file in workspace.glob("*.dvc"):
            stage_file.unlink()
        shutil.rmtree(self.scratch / "site-cache", ignore_errors=True)
        subprocess.run(["git", "init", "-q", str(workspace)], check=True, env=self.env)
        self.run(workspace, "init", "-q")
        self.run(workspace, "config", "core.analytics", "false")
        self.run(workspace, "config", "core.check_update", "false")

    def cache_type(self, workspace: Path) -> str:
        proc = self.run(workspace, "config", "cache.type", check=False)
        return proc.stdout.strip() or "unset, so the default reflink,copy"


def link_type(workspace_file: Path, cache: Path) -> str:
    """How DVC linked ``workspace_file`` to its cache copy (found by size: it is the only one)."""
    if workspace_file.is_symlink():
        return "symlink"
    st = workspace_file.stat()
    same_size = [p for p in files_under(cache) if p.stat().st_size == st.st_size]
    if not same_size:
        return "unknown (no cache object of that size)"
    cached = same_size[0].stat()
    if (cached.st_dev, cached.st_ino) == (st.st_dev, st.st_ino):
        return "hardlink"
    fs = subprocess.run(
        ["stat", "-f", "-c", "%T", str(cache)], capture_output=True, text=True, check=False
    ).stdout.strip()
    if fs.startswith("ext") or fs == "tmpfs":
        return f"copy ({fs} has no reflinks)"
    return f"copy or reflink ({fs})"


# -- report -------------------------------------------------------------------------------
def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6 if seconds > 0 else math.inf


def line(label: str, seconds: float, nbytes: int, files: int, note: str = "") -> None:
    print(
        f"  {label:<44}{seconds:9.2f} s {mbps(nbytes, seconds):9.1f} MB/s"
        f"{files / seconds if seconds > 0 else math.inf:11,.0f} files/s  {note}".rstrip()
    )


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def step(message: str) -> Callable[[], None]:
    print(f"# {message} ...", end="", flush=True)
    started = time.perf_counter()

    def done() -> None:
        print(f" {time.perf_counter() - started:.1f} s", flush=True)

    return done


# -- main ---------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large-mib", type=int, default=800, help="size of the large file")
    parser.add_argument("--small-files", type=int, default=20_000)
    parser.add_argument(
        "--small-mib",
        type=float,
        default=None,
        help="total size of the small files (default: 224 MiB per 20,000 files)",
    )
    parser.add_argument("--csv-mib", type=float, default=500e6 / MIB, help="size of CSV v1")
    parser.add_argument("--csv-edits", type=int, default=100, help="rows edited in CSV v2")
    parser.add_argument("--skip-dvc", action="store_true", help="leave DVC out")
    parser.add_argument(
        "--dvc-venv",
        type=Path,
        default=Path.home() / ".cache" / "workbench-bench" / "dvc-venv",
        help="virtual environment DVC is installed in (and reused from)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="time the 1 GiB contenders this many times and keep the best (the CSV runs once)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile one more whole commit of ours"
    )
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--dir", default=None, help="folder for the temporary files (default: tmp)")
    parser.add_argument("--child-commit", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_commit:
        child_commit(json.loads(args.child_commit))
        return 0
    if (
        args.large_mib < 1
        or args.small_files < 1
        or args.csv_mib <= 0
        or args.csv_edits < 0
        or args.repeat < 1
    ):
        parser.error("sizes and counts must be positive")

    large_bytes = args.large_mib * MIB
    small_mib = (
        args.small_mib
        if args.small_mib is not None
        else args.small_files * DEFAULT_SMALL_MIB_PER_FILE
    )
    small_total = int(small_mib * MIB)
    if small_total < args.small_files:
        parser.error("--small-mib too small for that many files")
    csv_bytes = int(args.csv_mib * MIB)
    dvc_exe = None if args.skip_dvc else ensure_dvc(args.dvc_venv)

    with tempfile.TemporaryDirectory(prefix="wb-datasets-bench-", dir=args.dir) as tmp_name:
        tmp = Path(tmp_name)
        dvc = Dvc(dvc_exe, tmp / "dvc-scratch") if dvc_exe is not None else None
        # Data first, for everyone: the dataset lives in what becomes DVC's workspace.
        workspace = tmp / "dvc-ws"
        data = workspace / "data"
        large_dir, small_dir = data / "large", data / "small"
        done = step(f"writing {args.large_mib} MiB + {args.small_files:,} small files")
        rng = random.Random(args.seed)
        write_random(large_dir / "large.bin", large_bytes, rng)
        sizes = small_sizes(args.small_files, small_total, rng)
        write_small_files(small_dir, sizes, rng)
        done()
        done = step(f"writing CSV v1 (~{csv_bytes / 1e6:.0f} MB) and v2")
        csv_v1, csv_v2 = tmp / "csv" / "v1" / "events.csv", tmp / "csv" / "v2" / "events.csv"
        csv = write_csv_versions(csv_v1, csv_v2, csv_bytes, args.csv_edits, args.seed)
        done()
        os.sync()
        all_files = files_under(data)
        large_files, small_files = files_under(large_dir), files_under(small_dir)
        total = large_bytes + small_total
        raw_blake3(all_files)  # read everything once: page cache warm for everyone

        done = step("raw BLAKE3 and chunk_file")
        n = args.repeat
        t_b3 = best_of(n, lambda: raw_blake3(all_files))
        t_chunk = best_of(n, lambda: raw_chunking(all_files))
        t_b3_large = best_of(n, lambda: raw_blake3(large_files))
        t_chunk_large = best_of(n, lambda: raw_chunking(large_files))
        t_chunk_small = best_of(n, lambda: raw_chunking(small_files))
        done()

        done = step("our commits (whole, large alone, small alone)")
        ours_all = best_of_ours(tmp / "ours-all", "all", data, n)
        ours_large = best_of_ours(tmp / "ours-large", "large", large_dir, n)
        ours_small = best_of_ours(tmp / "ours-small", "small", small_dir, n)
        profile = run_ours(tmp / "ours-prof", "all", [data], profile=True) if args.profile else {}
        done()

        dvc_version = dvc_link = dvc_cache_type = ""
        t_dvc = t_dvc_start = math.nan
        if dvc is not None:
            done = step(f"dvc add of the {total / MIB:,.0f} MiB folder")
            dvc_version = dvc.version(tmp)
            t_dvc_start = min(dvc.timed(tmp, "--version") for _ in range(3))
            large_inode = (large_dir / "large.bin").stat().st_ino
            dvc.init(workspace)
            dvc_cache_type = dvc.cache_type(workspace)
            t_dvc = dvc.timed(workspace, "add", "-q", "data")
            dvc_link = link_type(large_dir / "large.bin", workspace / ".dvc" / "cache")
            if (large_dir / "large.bin").stat().st_ino != large_inode:
                dvc_link += ", workspace files replaced"
            for _ in range(n - 1):
                dvc.init(workspace)
                t_dvc = min(t_dvc, dvc.timed(workspace, "add", "-q", "data"))
            done()
        shutil.rmtree(workspace)

        done = step("CSV v1 and v2: ours")
        ours_csv = run_ours(tmp / "ours-csv", "events", [csv_v1.parent, csv_v2.parent])
        done()
        dvc_csv_v2 = 0
        t_dvc_csv = [math.nan, math.nan]
        if dvc is not None:
            done = step("CSV v1 and v2: dvc add")
            ws = tmp / "dvc-csv"
            ws.mkdir()
            dvc.init(ws)
            target = ws / "events.csv"
            shutil.copyfile(csv_v1, target)
            t_dvc_csv[0] = dvc.timed(ws, "add", "-q", "events.csv")
            before = tree_bytes(ws / ".dvc" / "cache")
            target.unlink()
            shutil.copyfile(csv_v2, target)
            t_dvc_csv[1] = dvc.timed(ws, "add", "-q", "events.csv")
            dvc_csv_v2 = tree_bytes(ws / ".dvc" / "cache") - before
            shutil.rmtree(ws)
            done()

    # -- the report ------------------------------------------------------------------------
    whole = ours_all["commits"][0]
    large_c, small_c = ours_large["commits"][0], ours_small["commits"][0]
    v1, v2 = ours_csv["commits"]
    for label, commit, files, nbytes in (
        ("whole", whole, len(all_files), total),
        ("large", large_c, 1, large_bytes),
        ("small", small_c, args.small_files, small_total),
        ("CSV v2", v2, 1, csv.size_v2),
    ):
        if (commit["files"], commit["bytes"]) != (files, nbytes):
            print(
                f"WARNING: our {label} commit holds {commit['files']} files, {commit['bytes']} "
                f"bytes; expected {files}, {nbytes}"
            )
    print()
    print(
        f"Versioned datasets benchmark: Python {platform.python_version()}, blake3 "
        f"{blake3_module.__version__}, {os.cpu_count()} cpus, load average "
        f"{os.getloadavg()[0]:.2f} at the end"
    )
    print(
        f"  section 1: the best of {args.repeat} run{'s' if args.repeat > 1 else ''}; "
        "section 2: one run. Every file was generated first, and every contender reads it "
        "from the page cache."
    )
    print(
        "  ours = commit_folder into a fresh SQLite database + local blob store (it fsyncs "
        "its packs), in a fresh child process each time"
    )
    if dvc is not None:
        print(
            f"  dvc {dvc_version} = dvc add in a fresh git + dvc repository each time (no "
            f"fsync); cache.type {dvc_cache_type}"
        )
    print()
    print(
        f"1) {total / MIB:,.0f} MiB dataset: {args.large_mib} MiB file + {args.small_files:,} "
        f"small files ({small_total / MIB:,.0f} MiB, {min(sizes):,}-{max(sizes):,} bytes)"
    )
    n_all = len(all_files)
    line("raw BLAKE3, 1 thread, every file", t_b3, total, n_all)
    line("raw BLAKE3+chunking (chunk_file), every file", t_chunk, total, n_all)
    line("ours: commit_folder, whole dataset", whole["seconds"], total, n_all)
    if dvc is not None:
        line(
            "dvc add data",
            t_dvc,
            total,
            n_all,
            f"(start-up {t_dvc_start:.2f} s included; link: {dvc_link})",
        )
        ratio = t_dvc / whole["seconds"]
        print(
            f"  -> ours is {ratio:.2f}x as fast as dvc add"
            f"{'':18}goal >= {GOAL_VS_DVC:.0f}x: {verdict(ratio >= GOAL_VS_DVC)}"
        )
    else:
        print("  -> dvc add: skipped (--skip-dvc)")
    print(f"   large file alone ({args.large_mib} MiB):")
    line("raw BLAKE3, 1 thread", t_b3_large, large_bytes, 1)
    line("raw BLAKE3+chunking (chunk_file)", t_chunk_large, large_bytes, 1)
    line("ours: commit_folder", large_c["seconds"], large_bytes, 1)
    share = t_chunk_large / large_c["seconds"]
    print(
        f"  -> ours is {share:.2f}x the speed of raw chunk_file"
        f"{'':14}goal >= {GOAL_VS_RAW}x: {verdict(share >= GOAL_VS_RAW)}"
    )
    print(f"   small files alone ({args.small_files:,} files, {small_total / MIB:,.0f} MiB):")
    line("raw BLAKE3+chunking (chunk_file)", t_chunk_small, small_total, args.small_files)
    line("ours: commit_folder", small_c["seconds"], small_total, args.small_files)
    rate = args.small_files / small_c["seconds"]
    print(
        f"  -> ours commits {rate:,.0f} small files/s"
        f"{'':24}goal >= {GOAL_FILES_PER_S:,.0f}/s: {verdict(rate >= GOAL_FILES_PER_S)}"
    )
    print()
    print(
        f"2) CSV v2: {csv.rows_v1:,} rows ({csv.size_v1 / 1e6:,.1f} MB) + {csv.rows_appended:,} "
        f"appended, {csv.rows_edited} edited = {csv.size_v2 / 1e6:,.1f} MB"
    )
    ours_share = v2["bytes_new"] / csv.size_v2
    print(
        f"  ours: bytes_new {v2['bytes_new']:>14,} = {ours_share:7.2%} of the file "
        f"({v2['chunks_new']:,} chunks new, {v2['chunks_reused']:,} reused; "
        f"store grew {v2['store_bytes'] - v1['store_bytes']:,}; "
        f"commit v1 {v1['seconds']:.2f} s, v2 {v2['seconds']:.2f} s)"
    )
    if dvc is not None:
        print(
            f"  dvc:  cache grew  {dvc_csv_v2:>14,} = {dvc_csv_v2 / csv.size_v2:7.2%} of the file "
            f"(dvc add v1 {t_dvc_csv[0]:.2f} s, v2 {t_dvc_csv[1]:.2f} s)"
        )
    print(
        f"  -> ours stores {ours_share:.2%} of v2"
        f"{'':27}goal <= {GOAL_CSV_SHARE:.0%}: {verdict(ours_share <= GOAL_CSV_SHARE)}"
    )
    print()
    peak = ours_all["peak_rss"]
    print(
        f"3) peak RSS (VmHWM) of the process committing the {total / MIB:,.0f} MiB dataset: "
        f"{peak / 1e6:,.0f} MB ({peak / MIB:,.0f} MiB; {ours_all['rss_before'] / 1e6:,.0f} MB "
        "before the commit)"
    )
    print(
        f"  others: large alone {ours_large['peak_rss'] / 1e6:,.0f} MB, small alone "
        f"{ours_small['peak_rss'] / 1e6:,.0f} MB, CSV v1+v2 {ours_csv['peak_rss'] / 1e6:,.0f} MB"
    )
    print(
        f"  -> {peak / 1e6:,.0f} MB{'':43}goal <= {GOAL_PEAK_RSS / 1e6:.0f} MB: "
        f"{verdict(peak <= GOAL_PEAK_RSS)}"
    )
    if args.profile:
        print("\nprofile of our whole commit (cProfile, cumulative):")
        print(profile["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
