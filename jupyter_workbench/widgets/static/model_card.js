// ModelCard: the card (markdown and fields), versions with aliases, and a version's lineage.
function render({ model, el }) {
  const root = h("div", { className: "wb-widget wb-model" });
  const reload = reloadButton(model);
  el.append(root);
  const FIELDS = ["intended_use", "limitations", "metrics", "training_datasets", "ethical_considerations"];
  const ds = (items) => (items || []).map((d) => h("span", { className: "wb-pill" }, `${d.project}/${d.dataset} v${d.version}`));

  function draw() {
    const card = model.get("card") || {}, fields = card.fields || {}, aliases = model.get("aliases") || {};
    const chosen = model.get("version"), ln = model.get("lineage") || {};
    const versions = model.get("versions").map((v) => h("tr", { className: String(v.version) === chosen ? "wb-selected" : "" },
      h("td", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); model.set("version", String(v.version)); model.save_changes(); } }, `v${v.version}`)),
      h("td", {}, (v.aliases || []).map((a) => h("span", { className: "wb-pill" }, a))),
      h("td", {}, h("code", {}, String(v.run_id || "").slice(0, 8))), h("td", {}, v.status || ""),
      h("td", {}, v.created ? new Date(v.created).toISOString().slice(0, 16).replace("T", " ") : ""),
      h("td", {}, ds(v.datasets))));
    const fieldRows = FIELDS.filter((k) => fields[k]).map((k) => [k.replace(/_/g, " "), typeof fields[k] === "string" ? fields[k] : JSON.stringify(fields[k])]);
    const env = ln.environment || {}, code = ln.code || {};
    fill(root, 
      h("div", { className: "wb-head" }, h("strong", {}, model.get("model")), " ",
        Object.entries(aliases).sort().map(([a, v]) => h("span", { className: "wb-pill" }, `${a} → v${v}`)),
        card.revision ? h("span", { className: "wb-muted" }, ` card revision ${card.revision}` + (card.author ? ` by ${card.author}` : "")) : null, " ", reload),
      errorBox(model),
      model.get("description") ? h("p", {}, model.get("description")) : null,
      card.markdown ? markdown(card.markdown) : h("p", { className: "wb-muted" }, "no card written yet"),
      fieldRows.length ? table(["field", "value"], fieldRows) : null,
      h("div", { className: "wb-panel-title" }, "versions"),
      h("table", { className: "wb-table" }, h("thead", {}, h("tr", {}, ["version", "aliases", "run", "status", "created", "trained on"].map((x) => h("th", {}, x)))), h("tbody", {}, versions)),
      h("div", { className: "wb-panel-title" }, chosen ? `lineage of v${chosen}` : "lineage"),
      ln.run_id ? h("ul", {},
        h("li", {}, "run ", h("code", {}, ln.run_id.slice(0, 8))),
        h("li", {}, "read ", (ln.datasets_read || []).length ? ds(ln.datasets_read) : "nothing recorded"),
        (ln.datasets_written || []).length ? h("li", {}, "wrote ", ds(ln.datasets_written)) : null,
        code.path || code.sha256 ? h("li", {}, "code ", code.path || "", code.sha256 ? h("code", {}, ` ${code.sha256.slice(0, 12)}`) : null) : null,
        env.python ? h("li", {}, `python ${env.python}, ${Object.keys(env.packages || {}).length} packages`) : null)
        : h("p", { className: "wb-muted" }, "no lineage recorded"));
  }
  for (const name of ["card", "versions", "aliases", "version", "lineage", "description", "model"]) model.on(`change:${name}`, draw);
  draw();
}
export default { render };
