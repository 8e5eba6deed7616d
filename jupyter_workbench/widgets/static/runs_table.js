// RunsTable: click a header to sort, type a filter, tick rows to select (feeds CompareRuns).
function render({ model, el }) {
  const root = h("div", { className: "wb-widget wb-runs" });
  const filter = h("input", { type: "search", placeholder: "filter: lr<0.05 loss<=0.2 status=FINISHED word", size: 48, "aria-label": "filter" });
  const count = h("span", { className: "wb-muted" });
  const clear = h("button", { type: "button" }, "clear selection");
  const body = h("div");
  root.append(h("div", { className: "wb-toolbar" }, filter, count, clear, reloadButton(model)), errorBox(model), body);
  el.append(root);

  let timer = null;
  filter.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { model.set("filter", filter.value); model.save_changes(); }, 250);
  });
  clear.addEventListener("click", () => { model.set("selected", []); model.save_changes(); });

  const setSort = (key) => {
    if (model.get("sort_by") === key) model.set("descending", !model.get("descending"));
    else { model.set("sort_by", key); model.set("descending", key.startsWith("metrics.") ? false : true); }
    model.save_changes();
  };
  const toggle = (id) => {
    const sel = model.get("selected").slice();
    const at = sel.indexOf(id);
    if (at >= 0) sel.splice(at, 1); else sel.push(id);
    model.set("selected", sel);
    model.save_changes();
  };

  function draw() {
    if (document.activeElement !== filter) filter.value = model.get("filter");
    const runs = Object.fromEntries(model.get("runs").map((r) => [r.run_id, r]));
    const visible = model.get("visible"), selected = new Set(model.get("selected"));
    const params = model.get("params"), metrics = model.get("metrics");
    const sortBy = model.get("sort_by"), desc = model.get("descending");
    const loaded = model.get("runs").length, more = model.get("more");
    count.textContent = `${visible.length} of ${more ? "the newest " : ""}${loaded} runs · ${selected.size} selected`;
    count.title = more ? "more runs than max_results: the older ones are not loaded" : "";
    // a table of every experiment (experiment ""): which experiment a run belongs to
    const everywhere = !model.get("experiment");
    const cols = [["", null], ["run", "run_id"], ["name", "name"], ...(everywhere ? [["experiment", "experiment"]] : []),
      ["status", "status"], ["started", "start_time"],
      ...params.map((p) => [p, `params.${p}`]), ...metrics.map((m) => [m, `metrics.${m}`])];
    const head = h("tr", {}, cols.map(([label, key]) => key === null ? h("th", {}) :
      h("th", { className: "wb-sortable", onclick: () => setSort(key), "aria-sort": sortBy === key ? (desc ? "descending" : "ascending") : "none", title: key },
        label, sortBy === key ? (desc ? " ▼" : " ▲") : "")));
    const rows = visible.map((id) => {
      const r = runs[id];
      if (!r) return null;
      const when = r.start_time ? new Date(r.start_time).toISOString().slice(0, 16).replace("T", " ") : "";
      return h("tr", { className: selected.has(id) ? "wb-selected" : "", "data-run": id },
        h("td", {}, h("input", { type: "checkbox", checked: selected.has(id), onchange: () => toggle(id), "aria-label": `select ${id}` })),
        h("td", {}, h("code", {}, id.slice(0, 8))), h("td", {}, r.name || ""),
        everywhere ? h("td", {}, String(r.experiment || "").replace(/^[^/]*\//, "")) : null,
        h("td", {}, h("span", { className: `wb-status wb-status-${String(r.status).toLowerCase()}` }, r.status)), h("td", {}, when),
        params.map((p) => h("td", {}, r.params?.[p] ?? "")),
        metrics.map((m) => h("td", { className: "wb-num" }, fmt(r.metrics?.[m]))));
    });
    fill(body, rows.length ? h("table", { className: "wb-table" }, h("thead", {}, head), h("tbody", {}, rows))
      : h("p", { className: "wb-muted" }, model.get("runs").length ? "no run matches the filter" : "no runs yet"));
  }
  for (const name of ["runs", "visible", "selected", "sort_by", "descending", "filter", "params", "metrics", "more"]) model.on(`change:${name}`, draw);
  draw();
}
export default { render };
