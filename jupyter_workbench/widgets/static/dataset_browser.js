// DatasetBrowser: versions (click to show files and lineage), files, diff of two versions.
function render({ model, el }) {
  const root = h("div", { className: "wb-widget wb-datasets" });
  const title = h("div", { className: "wb-head" });
  const reload = reloadButton(model);
  const tabs = h("div", { className: "wb-tabs", role: "tablist" });
  const pane = h("div");
  root.append(title, errorBox(model), tabs, pane);
  el.append(root);
  let tab = "versions";
  const set = (values) => { for (const [k, v] of Object.entries(values)) model.set(k, v); model.save_changes(); };

  function tagsOf(name) {
    return Object.entries(model.get("info").tags || {}).filter(([, v]) => v === name).map(([t]) => t).sort();
  }

  function versionsPane() {
    const chosen = model.get("version");
    const rows = model.get("versions").map((v) => h("tr", { className: v.version === chosen ? "wb-selected" : "", "data-version": v.version },
      h("td", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); set({ version: v.version }); tab = "files"; draw(); } }, v.name)),
      h("td", {}, tagsOf(v.name).map((t) => h("span", { className: "wb-pill" }, t))),
      h("td", { className: "wb-num" }, v.file_count), h("td", { className: "wb-num" }, bytes(v.total_bytes)),
      h("td", {}, v.author || ""), h("td", {}, v.message || ""), h("td", {}, String(v.created_at || "").slice(0, 16).replace("T", " "))));
    return h("table", { className: "wb-table" },
      h("thead", {}, h("tr", {}, ["version", "tags", "files", "size", "author", "message", "created"].map((x) => h("th", {}, x)))),
      h("tbody", {}, rows));
  }

  function filesPane() {
    const chosen = model.get("version");
    const pick = h("select", { "aria-label": "version", onchange: (e) => set({ version: parseInt(e.target.value, 10) }) },
      model.get("versions").map((v) => h("option", { value: v.version, selected: v.version === chosen }, v.name)));
    const files = model.get("files").map((f) => [f.path, bytes(f.size), f.media_type || ""]);
    const lineage = model.get("lineage").map((l) => [l.consumer, l.direction, l.recorded_by || "", String(l.time || "").slice(0, 16).replace("T", " ")]);
    return h("div", {}, h("div", { className: "wb-toolbar" }, h("label", {}, "version ", pick)),
      files.length ? table(["path", "size", "type"], files) : h("p", { className: "wb-muted" }, "no files"),
      h("div", { className: "wb-panel-title" }, "lineage (who used this version)"),
      lineage.length ? table(["consumer", "direction", "by", "when"], lineage) : h("p", { className: "wb-muted" }, "no runs recorded"));
  }

  function diffPane() {
    const versions = model.get("versions");
    const select = (key) => h("select", { "aria-label": key, onchange: (e) => set({ [key]: parseInt(e.target.value, 10) }) },
      h("option", { value: 0 }, "—"), versions.map((v) => h("option", { value: v.version, selected: v.version === model.get(key) }, v.name)));
    const d = model.get("diff");
    const body = [];
    if (d && d.summary) {
      const sm = d.summary;
      body.push(h("p", {}, `${sm.added} added, ${sm.removed} removed, ${sm.modified} modified (+${bytes(sm.bytes_added)}, −${bytes(sm.bytes_removed)})`));
      const rows = [
        ...d.added.map((f) => [h("span", { className: "wb-added" }, "added"), f.path, bytes(f.size)]),
        ...d.removed.map((f) => [h("span", { className: "wb-removed" }, "removed"), f.path, bytes(f.size)]),
        ...d.modified.map((f) => [h("span", { className: "wb-modified" }, "modified"), f.path, `${bytes(f.old_size)} → ${bytes(f.new_size)}`]),
      ];
      if (rows.length) body.push(table(["change", "path", "size"], rows));
      for (const t of d.tables || []) {
        const sc = t.schema || {}, r = t.rows || {};
        // a table not compared (too large, unreadable) read "rows ? → ? (+0, −0)": no change
        const why = t.skipped ? `not compared: ${t.skipped}` : t.error ? `could not be compared: ${t.error}` : null;
        body.push(h("div", { className: "wb-panel" }, h("div", { className: "wb-panel-title" }, `${t.path} (${t.format})`),
          why ? h("p", { className: "wb-muted" }, why) : h("p", {}, `rows ${r.old ?? "?"} → ${r.new ?? "?"} (+${r.added ?? 0}, −${r.removed ?? 0})`),
          (sc.added || []).length ? h("p", { className: "wb-added" }, "columns added: " + sc.added.map((c) => c.name || c).join(", ")) : null,
          (sc.removed || []).length ? h("p", { className: "wb-removed" }, "columns removed: " + sc.removed.map((c) => c.name || c).join(", ")) : null,
          (sc.changed || []).length ? h("p", { className: "wb-modified" }, "columns retyped: " + sc.changed.map((c) => `${c.column} ${c.old_type} → ${c.new_type}`).join(", ")) : null));
      }
    } else body.push(h("p", { className: "wb-muted" }, "pick two versions"));
    return h("div", {}, h("div", { className: "wb-toolbar" }, h("label", {}, "from ", select("diff_from")), h("label", {}, "to ", select("diff_to"))), ...body);
  }

  function draw() {
    const info = model.get("info");
    fill(title, h("strong", {}, `${model.get("project")}/${model.get("dataset")}`), " ",
      h("span", { className: "wb-muted" }, `${model.get("versions").length} versions` + (info.description ? ` · ${info.description}` : "")), " ", reload);
    fill(tabs, ...["versions", "files", "diff"].map((name) =>
      h("button", { type: "button", role: "tab", "aria-selected": String(tab === name), onclick: () => { tab = name; draw(); } },
        name === "files" && model.get("version") ? `files (v${model.get("version")})` : name)));
    fill(pane, tab === "versions" ? versionsPane() : tab === "files" ? filesPane() : diffPane());
  }
  for (const name of ["info", "versions", "version", "files", "lineage", "diff", "diff_from", "diff_to"]) model.on(`change:${name}`, draw);
  draw();
}
export default { render };
