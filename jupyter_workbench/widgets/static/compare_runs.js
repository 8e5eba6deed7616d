// CompareRuns: params that differ, one metric overlaid, parallel coordinates.
function render({ model, el }) {
  const root = h("div", { className: "wb-widget wb-compare" });
  const pick = h("select", { "aria-label": "metric" });
  const smooth = h("input", { type: "range", min: 0, max: 0.99, step: 0.01, value: 0, "aria-label": "smoothing" });
  const params = h("div"), overlay = h("div"), pcoords = h("div");
  root.append(errorBox(model), params,
    h("div", { className: "wb-toolbar" }, h("label", {}, "metric ", pick), h("label", {}, "smoothing ", smooth), reloadButton(model)),
    overlay, h("div", { className: "wb-panel-title" }, "parallel coordinates"), pcoords);
  el.append(root);
  pick.addEventListener("change", () => { model.set("metric", pick.value); model.save_changes(); });
  smooth.addEventListener("input", drawOverlay);

  const runInfo = () => {
    const runs = (model.get("comparison").runs || []);
    return runs.map((r, i) => ({ id: r.run_id, label: r.name || r.run_id.slice(0, 8), color: PALETTE[i % PALETTE.length] }));
  };

  function drawParams() {
    const c = model.get("comparison"), runs = runInfo();
    if (!runs.length) { fill(params, h("p", { className: "wb-muted" }, "select runs to compare")); return; }
    const differ = c.params?.differ || {}, same = c.params?.same || {};
    const rows = Object.keys(differ).sort().map((k) => [k, ...runs.map((r) => differ[k][r.id] ?? "—")]);
    // a last value of null: the last point was NaN ("nan", as the fallback; it was a blank)
    const last = (e) => (e && "last" in e && e.last === null ? "nan" : e?.last ?? null);
    const mrows = Object.keys(c.metrics || {}).sort().map((k) => [k, ...runs.map((r) => last(c.metrics[k][r.id]))]);
    const heads = () => ["", ...runs.map((r) => h("span", { className: "wb-legend" }, h("span", {}, h("i", { style: `background:${r.color}` }), r.label)))];
    fill(params, 
      h("div", { className: "wb-panel-title" }, "params that differ"),
      rows.length ? table(heads(), rows) : h("p", { className: "wb-muted" }, "none"),
      Object.keys(same).length ? h("p", { className: "wb-muted" }, "same in all: " + Object.entries(same).map(([k, v]) => `${k}=${v}`).join(", ")) : null,
      h("div", { className: "wb-panel-title" }, "metrics (last value)"), table(heads(), mrows));
    const keys = Object.keys(c.metrics || {}).sort();
    fill(pick, ...keys.map((k) => h("option", { value: k, selected: k === model.get("metric") }, k)));
  }

  function drawOverlay() {
    const hist = model.get("histories") || {}, smoothing = parseFloat(smooth.value);
    const series = runInfo().filter((r) => hist[r.id]).map((r) => ({ label: r.label, color: r.color, xs: hist[r.id].steps, ys: ema(hist[r.id].values, smoothing) }));
    fill(overlay, legend(series.map((x) => [x.label, x.color])), lineChart(series, { width: 640, height: 260 }));
  }

  function drawParallel() {
    const axes = model.get("axes") || [], runs = runInfo();
    if (axes.length < 2 || !runs.length) { fill(pcoords, h("p", { className: "wb-muted" }, "needs two or more params/metrics that vary")); return; }
    const width = Math.max(360, 120 * axes.length), height = 240, m = { t: 28, b: 20, l: 50, r: 50 };
    const x = (i) => m.l + (i * (width - m.l - m.r)) / (axes.length - 1);
    const scales = axes.map((a) => {
      const vals = runs.map((r) => a.values[r.id]);
      const nums = vals.map(num);
      if (nums.every((v, i) => v !== null || vals[i] === null || vals[i] === undefined)) {
        const present = nums.filter((v) => v !== null);
        let lo = Math.min(...present), hi = Math.max(...present);
        if (!(hi > lo)) { lo -= 1; hi += 1; }
        return { y: (v) => { const n = num(v); return n === null ? null : m.t + (1 - (n - lo) / (hi - lo)) * (height - m.t - m.b); }, lo: fmt(lo), hi: fmt(hi) };
      }
      const cats = [...new Set(vals.filter((v) => v !== null && v !== undefined).map(String))].sort();
      const step = (height - m.t - m.b) / Math.max(1, cats.length - 1);
      return { y: (v) => (v === null || v === undefined ? null : m.t + (cats.length === 1 ? (height - m.t - m.b) / 2 : cats.indexOf(String(v)) * step)), cats, step };
    });
    const svg = s("svg", { width, height, class: "wb-chart wb-pcoords" });
    axes.forEach((a, i) => {
      svg.append(s("line", { x1: x(i), x2: x(i), y1: m.t, y2: height - m.b, class: "wb-axis" }));
      svg.append(s("text", { x: x(i), y: 12, "text-anchor": "middle" }, a.name));
      const sc = scales[i];
      if (sc.cats) sc.cats.forEach((c) => svg.append(s("text", { x: x(i) + 4, y: sc.y(c) + 3 }, c)));
      else { svg.append(s("text", { x: x(i) + 4, y: m.t + 3 }, sc.hi)); svg.append(s("text", { x: x(i) + 4, y: height - m.b + 3 }, sc.lo)); }
    });
    for (const r of runs) {
      let d = "", pen = false;
      axes.forEach((a, i) => {
        const y = scales[i].y(a.values[r.id]);
        if (y === null) { pen = false; return; }
        d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y.toFixed(1)}`; pen = true;
      });
      svg.append(s("path", { d, stroke: r.color }, s("title", {}, r.label)));
    }
    fill(pcoords, svg);
  }

  model.on("change:comparison", () => { drawParams(); drawOverlay(); });
  model.on("change:metric", drawParams);
  model.on("change:histories", drawOverlay);
  model.on("change:axes", drawParallel);
  drawParams(); drawOverlay(); drawParallel();
}
export default { render };
