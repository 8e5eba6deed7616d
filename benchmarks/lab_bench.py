"""The lab extension's performance goals (issue 6, point 5), measured in Debian's Chromium against
a real ``jupyter lab`` with the workbench (its own MLflow, SQLite, a temporary folder):

1. First render of the sidebar once the API answered, with ``--projects`` (200) projects: the
   panel's ``data-render-ms`` (from the projects response to the next painted frame), median over
   ``--repeat`` page loads; beside it, how long the projects request itself took in the browser
   (Resource Timing). Goal <= 300 ms.
2. A chart of 10 runs x 2,000 points: the chart's ``data-draw-ms`` (uPlot built and drawn with
   the data, the series already fetched), median over ``--repeat`` rebuilds (each log-scale
   toggle builds the chart anew). Goal <= 100 ms.
3. Scrolling an experiment of ``--runs`` (10,000) runs: the table is scrolled from top to bottom
   in 120 steps, one per animation frame; the frame intervals' p50/p95/max and the most rows the
   page held at once. Goal: p95 <= two frames at 60 Hz (33.4 ms; animation frames come in
   16.7 ms steps, so one frame in twenty may miss one vsync) with the rows in the page bounded.

The goals are the issue's; there is no other UI to set beside ours in the same run. The 1-minute
load average is printed: Chromium shares the 2 cores with the server and with whatever else runs.
Making 10,000 MLflow runs takes 1-3 minutes; ``--quick`` makes 2,000 runs and 50 projects.

Run (from the repository root, after ``make install``)::

    .venv/bin/python benchmarks/lab_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
PANEL = "#jupyter-workbench-panel"
VIEW = ".jp-WorkbenchExperiment"
CURVES, CURVE_POINTS = 10, 2000
GOAL_RENDER_MS, GOAL_DRAW_MS = 300.0, 100.0
GOAL_FRAME_P95_MS = 2 * 1000 / 60 + 0.1  # two frames at 60 Hz (frame times come in 16.7 ms steps)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Lab:
    """``jupyter lab`` with the workbench on a free loopback port, in a folder of its own."""

    def __init__(self, tmp: Path) -> None:
        self.port, self.token = free_port(), "lab-bench-" + os.urandom(6).hex()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "lab.log"
        (tmp / "notebooks").mkdir()
        env = {
            **os.environ,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            "JUPYTER_CONFIG_DIR": str(tmp / "config"),
            "JUPYTER_DATA_DIR": str(tmp / "data"),
            "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
            "WORKBENCH_DATA_DIR": str(tmp / "wbdata"),
        }
        env.pop("DATABASE_URL", None)
        cmd = [
            sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            "--ServerApp.open_browser=False", "--allow-root",
            f"--ServerApp.root_dir={tmp / 'notebooks'}", f"--IdentityProvider.token={self.token}",
            "--ServerApp.identity_provider_class=jupyter_workbench.identity.WorkbenchIdentityProvider",
            f"--Workbench.database_url=sqlite:///{tmp / 'workbench.db'}",
        ]  # fmt: skip
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(self.api("me"), headers=self.auth, timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(self.log.read_text()[-3000:])
            time.sleep(0.3)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def api(self, path: str) -> str:
        return f"{self.url}/workbench/api/v1/{path}"

    def post(self, path: str, body: Any) -> Any:
        r = requests.post(self.api(path), json=body, headers=self.auth, timeout=60)
        if r.status_code >= 300:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")
        return r.json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def seed(lab: Lab, projects: int, runs: int) -> str:
    """``projects`` projects; in the first one an experiment of ``runs`` runs, the newest
    ``CURVES`` of them with a ``CURVE_POINTS``-point curve. Returns the first project's slug."""
    from jupyter_workbench.client import Client

    slugs = [lab.post("projects", {"name": f"Bench {i:04d}"})["slug"] for i in range(projects)]
    slug = sorted(slugs)[0]
    client = Client(lab.url, lab.token, project=slug)
    experiment_id = client.experiment_id(slug, "grid")
    base = client.mlflow_url(slug) + "/api/2.0/mlflow"

    def one(i: int) -> None:
        info = client.request(
            "POST", f"{base}/runs/create",
            json={"experiment_id": experiment_id, "run_name": f"run-{i:05d}", "start_time": i},
        )["run"]["info"]  # fmt: skip
        metrics = [{"key": "score", "value": i, "step": 0}]
        if i >= runs - CURVES:
            metrics += [
                {"key": "curve", "value": (i % 7) + 1 / (s + 1), "step": s}
                for s in range(CURVE_POINTS)
            ]
        client.post(f"runs/{info['run_id']}/batch", {"params": {"i": str(i)}, "metrics": metrics})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(runs)))
    client.close()
    # JupyterLab's news question would cover part of the page
    requests.put(
        f"{lab.url}/lab/api/settings/@jupyterlab/apputils-extension:notification",
        json={"raw": '{"fetchNews": "false"}'}, headers=lab.auth, timeout=30,
    )  # fmt: skip
    return slug


SCROLL_JS = """async (steps) => {
  const table = document.querySelector('.jp-WorkbenchExperiment-table');
  const frames = [];
  let most = 0;
  let last = await new Promise(r => requestAnimationFrame(r));
  for (let i = 1; i <= steps; i++) {
    table.scrollTop = (table.scrollHeight - table.clientHeight) * i / steps;
    const now = await new Promise(r => requestAnimationFrame(r));
    frames.push(now - last);
    last = now;
    most = Math.max(most, table.querySelectorAll('.jp-WorkbenchExperiment-row').length);
  }
  return { frames, most };
}"""


def measure(lab: Lab, slug: str, args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise SystemExit("Chromium is missing: `make chromium` installs Debian's chromium")
    out: dict[str, Any] = {"render": [], "api": [], "draw": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            for _ in range(args.repeat):
                page.goto(f"{lab.url}/lab?token={lab.token}")
                page.wait_for_selector("#jp-main-dock-panel")
                if page.locator(f"{PANEL}").is_hidden():
                    page.click(f".jp-SideBar [data-id='{PANEL[1:]}']")
                page.wait_for_selector(f"{PANEL}[data-render-ms]")
                out["render"].append(float(page.get_attribute(PANEL, "data-render-ms") or "nan"))
                out["api"].append(
                    page.evaluate(
                        "() => performance.getEntriesByType('resource')"
                        ".filter(e => e.name.includes('/workbench/api/v1/projects?'))"
                        ".map(e => e.responseEnd - e.requestStart).pop() ?? NaN"
                    )
                )
                out["projects_shown"] = page.locator(
                    f"{PANEL} li.jp-WorkbenchPanel-project"
                ).count()
            # the experiment: 10 curves on one chart, then the scroll
            page.locator(f"{PANEL} li.jp-WorkbenchPanel-experiment[data-experiment=grid]").click()
            view = page.locator(f"{VIEW}[data-loaded=true]")
            view.wait_for()
            out["rows_total"] = view.locator(".jp-WorkbenchExperiment-table").get_attribute(
                "aria-rowcount"
            )
            for index in range(1, CURVES + 1):
                view.locator(f".jp-WorkbenchExperiment-row[aria-rowindex='{index + 1}']").click()
            chart = view.locator(".jp-WorkbenchExperiment-chart").first
            view.locator("select[name=metric]").select_option("curve")
            page.wait_for_selector(
                f"{VIEW} .jp-WorkbenchExperiment-chart[data-points='{CURVES * CURVE_POINTS}']"
            )
            log = view.locator("input[name=log]")
            for _ in range(args.repeat):
                # each log-scale toggle builds the chart again with the same 20,000 points
                chart.evaluate("c => { delete c.dataset.drawMs; }")
                log.click()
                page.wait_for_selector(f"{VIEW} .jp-WorkbenchExperiment-chart[data-draw-ms]")
                out["draw"].append(float(chart.get_attribute("data-draw-ms") or "nan"))
            scroll = page.evaluate(SCROLL_JS, 120)
            out["frames"], out["most_rows"] = scroll["frames"], scroll["most"]
        finally:
            browser.close()
    return out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2,000 runs, 50 projects, 3 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.projects, args.runs, args.repeat = 50, 2000, 3
    load = os.getloadavg()[0]
    print(
        f"lab benchmark: {args.projects} projects, an experiment of {args.runs:,} runs "
        f"({CURVES} with {CURVE_POINTS:,}-point curves), {args.repeat} repeats"
    )
    with tempfile.TemporaryDirectory(prefix="wb-lab-bench-") as tmp:
        started = time.monotonic()
        lab = Lab(Path(tmp))
        try:
            print(f"  # jupyter lab started in {time.monotonic() - started:.1f} s; seeding ...")
            started = time.monotonic()
            slug = seed(lab, args.projects, args.runs)
            print(f"  # seeded in {time.monotonic() - started:.1f} s; measuring in Chromium ...")
            got = measure(lab, slug, args)
        finally:
            lab.stop()
    render, draw = statistics.median(got["render"]), statistics.median(got["draw"])
    api = statistics.median(got["api"])
    p50, p95 = percentile(got["frames"], 50), percentile(got["frames"], 95)
    rows = [
        (
            f"sidebar first render after the API answered ({got['projects_shown']} projects shown)",
            f"{render:.1f} ms",
            f"<= {GOAL_RENDER_MS:.0f} ms",
            verdict(render <= GOAL_RENDER_MS),
        ),
        (f"  (the projects request itself, in the browser: {api:.1f} ms)", "", "", ""),
        (
            f"chart of {CURVES} runs x {CURVE_POINTS:,} points drawn",
            f"{draw:.1f} ms",
            f"<= {GOAL_DRAW_MS:.0f} ms",
            verdict(draw <= GOAL_DRAW_MS),
        ),
        (
            f"scrolling {int(got['rows_total']) - 1:,} runs: frame p95 (p50 {p50:.1f}, max "
            f"{max(got['frames']):.1f} ms), at most {got['most_rows']} rows in the page",
            f"{p95:.1f} ms",
            f"<= {GOAL_FRAME_P95_MS:.1f} ms",
            verdict(p95 <= GOAL_FRAME_P95_MS and got["most_rows"] <= 100),
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, goal, ok in rows:
        print(f"  {name:<{width}}  {value:>10}  {goal:<10} {ok}")
    print(f"  (1-min load average {load:.2f} -> {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")
    print(json.dumps({"render_ms": got["render"], "draw_ms": got["draw"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
