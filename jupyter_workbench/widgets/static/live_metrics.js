// LiveMetrics: one chart per metric (or all on one chart), smoothing slider, live status.
function render({ model, el }) {
  const root = h("div", { className: "wb-widget wb-live" });
  const head = h("div", { className: "wb-head" });
  const slider = h("input", { type: "range", min: 0, max: 0.99, step: 0.01, "aria-label": "smoothing" });
  const sval = h("span", { className: "wb-muted" });
  const together = h("input", { type: "checkbox", "aria-label": "one chart" });
  const toolbar = h("div", { className: "wb-toolbar" },
    h("label", {}, "smoothing ", slider, " ", sval),
    h("label", {}, together, " one chart"));
  const charts = h("div", { className: "wb-charts" });
  root.append(head, toolbar, errorBox(model), charts);
  el.append(root);

  slider.addEventListener("input", () => {
    model.set("smoothing", parseFloat(slider.value));
    model.save_changes();
  });
  together.addEventListener("change", draw);

  function draw() {
    const status = model.get("status");
    const mode = model.get("mode");
    fill(head, 
      h("strong", {}, `run ${model.get("run_name") || model.get("run_id").slice(0, 8)}`), " ",
      h("span", { className: `wb-status wb-status-${status.toLowerCase()}` }, status), " ",
      h("span", { className: "wb-muted" }, `${model.get("points")} points` + (mode && mode !== "stopped" ? ` · live (${mode})` : "")));
    const smoothing = model.get("smoothing");
    slider.value = smoothing;
    sval.textContent = smoothing.toFixed(2);
    const series = model.get("series") || {};
    const keys = model.get("metrics").filter((k) => series[k]);
    const width = Math.max(320, Math.min(720, (el.clientWidth || 640) - 8));
    const lines = (k, i) => {
      const d = series[k], color = PALETTE[i % PALETTE.length];
      const out = [{ label: k, color, xs: d.steps, ys: ema(d.values, smoothing) }];
      if (smoothing > 0) out.unshift({ label: `${k} (raw)`, color, xs: d.steps, ys: d.values, faint: true });
      return out;
    };
    if (!keys.length) {
      fill(charts, h("p", { className: "wb-muted" }, "no metrics logged yet"));
    } else if (together.checked) {
      fill(charts, legend(keys.map((k, i) => [k, PALETTE[i % PALETTE.length]])),
        lineChart(keys.flatMap(lines), { width, height: 300 }));
    } else {
      fill(charts, ...keys.map((k, i) => {
        const d = series[k], n = d.steps.length, last = d.values[n - 1];
        // a metric asked for but not logged yet read "last  @ undefined" (its chart says "no
        // points yet"); a NaN/inf last value "last  @ 5"
        const said = !n ? "" : ` last ${last === null ? "NaN/inf" : fmt(last)} @ ${d.steps[n - 1]}`;
        return h("div", { className: "wb-panel" },
          h("div", { className: "wb-panel-title" }, h("i", { style: `background:${PALETTE[i % PALETTE.length]}` }), k,
            h("span", { className: "wb-muted" }, said)),
          lineChart(lines(k, i), { width: keys.length > 1 ? Math.max(300, width / 2 - 12) : width, height: 200 }));
      }));
    }
  }
  for (const name of ["series", "metrics", "status", "smoothing", "points", "mode", "run_name"]) model.on(`change:${name}`, draw);
  draw();
}
export default { render };
