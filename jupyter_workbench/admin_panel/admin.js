// The workbench admin panel: plain DOM code over the workbench REST API (no build step).
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("wb-config").textContent);
  const $ = (sel, root) => (root || document).querySelector(sel);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== null && value !== undefined) node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    }
    return node;
  }

  function showError(message) {
    const box = $("#wb-alert");
    box.textContent = message;
    box.classList.remove("d-none");
  }

  function clearError() {
    $("#wb-alert").classList.add("d-none");
  }

  async function api(method, path, body) {
    const init = {
      method,
      credentials: "same-origin",
      headers: { "X-XSRFToken": config.xsrf, Accept: "application/json" },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(config.api + path, init);
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(data.message || `${method} ${path}: HTTP ${response.status}`);
      error.status = response.status;
      error.code = data.error;
      throw error;
    }
    return data;
  }

  function table(headers, rows, empty) {
    if (!rows.length) return el("p", { class: "text-body-secondary mb-0" }, empty);
    return el(
      "div",
      { class: "table-responsive" },
      el(
        "table",
        { class: "table table-sm table-hover align-middle mb-0" },
        el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows)
      )
    );
  }

  function setBody(section, content) {
    const body = $(`#${section} .wb-body`);
    body.replaceChildren(content);
  }

  // a paged list's rows: the first page replaces the table, a later one ("more") adds to it
  function showPage(section, headers, rows, empty, more) {
    const existing = $(`#${section} .wb-body tbody`);
    if (more && existing) existing.append(...rows);
    else setBody(section, table(headers, rows, empty));
  }

  // one paged list: ``load(more)`` fetches the first page (or, with ``more``, the next one) of
  // ``path`` with the parameters ``query()`` gives and shows it; an answer a later load made
  // stale is dropped
  function pagedList(section, path, query, show) {
    let cursor = null;
    let generation = 0;
    return async function load(more) {
      const mine = ++generation;
      const params = query();
      if (more && cursor) params.set("cursor", cursor);
      const data = await api("GET", params.toString() ? `${path}?${params}` : path);
      if (mine !== generation) return;
      cursor = data.next_cursor;
      $(`#${section}-more`).classList.toggle("d-none", !cursor);
      show(data, Boolean(more));
    };
  }

  const hours = (h) => (Math.round(h * 100) / 100).toFixed(2);
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

  // -- overview, users and teams ---------------------------------------------------------
  const loadPeople = pagedList(
    "people",
    "admin/people",
    () => {
      const q = $("#people-q").value.trim();
      const params = new URLSearchParams(q ? { q } : {});
      if ($("#people-left").checked) params.set("left", "true");
      return params;
    },
    showPeople
  );
  function showPeople(data, more) {
    const t = data.totals;
    const card = (label, value, id) =>
      el(
        "div",
        { class: "col-6 col-md-3" },
        el(
          "div",
          { class: "card h-100" },
          el(
            "div",
            { class: "card-body" },
            el("div", { class: "text-body-secondary small" }, label),
            el("div", { class: "wb-card-value", id }, value)
          )
        )
      );
    $("#overview").replaceChildren(
      card("Users", t.left_hub ? `${t.users} (${t.left_hub} left the hub)` : t.users, "total-users"),
      card("Teams", t.teams, "total-teams"),
      card("Servers running", t.servers_running, "total-servers"),
      card("GPUs in use", t.gpus_in_use, "total-gpus")
    );
    const rows = data.items.map((p) =>
      el(
        "tr",
        { "data-user": p.username },
        el("td", {}, el("strong", {}, p.username), p.is_admin ? el("span", { class: "badge text-bg-danger ms-1" }, "admin") : null),
        el("td", {}, p.display_name),
        el("td", {}, p.teams.map((m) => el("span", { class: "badge text-bg-secondary", title: m.role }, `${m.team} (${m.role})`))),
        el("td", {}, p.servers.map((s) => el("span", { class: "badge text-bg-success" }, `${s.server_name || "default"}: ${s.profile}, ${s.gpus} GPU`))),
        el("td", { class: "wb-num" }, hours(p.server_hours_this_month)),
        el("td", { class: "wb-num" }, hours(p.gpu_hours_this_month)),
        el("td", {}, when(p.last_seen_at), p.left_hub_at ? el("span", { class: "badge text-bg-warning ms-1", title: "The hub no longer has this user" }, `left ${when(p.left_hub_at)}`) : null)
      )
    );
    const headers = ["User", "Name", "Teams", "Servers", `Server-h (${t.month})`, `GPU-h (${t.month})`, "Last seen"];
    const none = $("#people-left").checked ? "No user has left the hub." : "No users yet.";
    showPage("people", headers, rows, none, more);
  }

  // -- pending sign-ups -------------------------------------------------------------------
  async function loadSignups() {
    let data;
    try {
      data = await api("GET", "admin/signups");
    } catch (error) {
      if (error.code === "no_hub" || error.code === "no_signups") {
        const why = error.code === "no_hub" ? "Sign-ups are handled by JupyterHub; this workbench runs without one." : error.message;
        setBody("signups", el("p", { class: "text-body-secondary mb-0" }, why));
        return;
      }
      throw error;
    }
    const act = (name, action) => async () => {
      clearError();
      try {
        await api("POST", `admin/signups/${encodeURIComponent(name)}`, { action });
        // an approved account is a user at once: the users list and its totals show it
        await Promise.all([loadSignups(), loadPeople(false), loadAudit(false)]);
      } catch (error) {
        showError(error.message);
      }
    };
    const rows = data.items.map((s) =>
      el(
        "tr",
        { "data-signup": s.name },
        el("td", {}, el("strong", {}, s.name)),
        el("td", {}, s.email || ""),
        el(
          "td",
          { class: "text-end" },
          el("button", { class: "btn btn-sm btn-success me-1", type: "button", onclick: act(s.name, "approve"), "aria-label": `Approve ${s.name}` }, "Approve"),
          el("button", { class: "btn btn-sm btn-outline-danger", type: "button", onclick: act(s.name, "discard"), "aria-label": `Discard ${s.name}` }, "Discard")
        )
      )
    );
    setBody("signups", table(["User", "E-mail", ""], rows, "No one is waiting for approval."));
  }

  // -- running servers --------------------------------------------------------------------
  const loadServers = pagedList("servers", "admin/servers", () => new URLSearchParams(), showServers);
  function showServers(data, more) {
    const rows = data.items.map((r) =>
      el(
        "tr",
        {},
        el("td", {}, r.user),
        el("td", {}, r.server_name || "default"),
        el("td", {}, r.profile),
        el("td", { class: "wb-num" }, r.gpus),
        el("td", {}, r.project || ""),
        el("td", {}, when(r.started_at)),
        el("td", { class: "wb-num" }, hours(r.hours))
      )
    );
    showPage("servers", ["User", "Server", "Profile", "GPUs", "Project", "Started", "Hours"], rows, "No server is running.", more);
  }

  // -- usage charts -----------------------------------------------------------------------
  function usageQuery() {
    const params = new URLSearchParams();
    const from = $("#usage-from").value;
    const to = $("#usage-to").value;
    if (from) params.set("from", from);
    if (to) params.set("to", to);
    return params;
  }

  function chart(points, bucket) {
    const width = 800;
    const height = 220;
    const pad = 28;
    const max = Math.max(0.01, ...points.map((p) => Math.max(p.server_hours, p.gpu_hours)));
    const slot = (width - pad) / Math.max(1, points.length);
    const bar = Math.max(1, slot / 2 - 1);
    const y = (v) => height - pad - (v / max) * (height - 2 * pad);
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const add = (tag, attrs, text) => {
      const node = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
      if (text !== undefined) node.textContent = text;
      svg.append(node);
      return node;
    };
    add("text", { x: 0, y: pad - 14 }, `${hours(max)} h`);
    add("line", { x1: pad, y1: height - pad, x2: width, y2: height - pad, stroke: "currentColor", "stroke-width": 0.5 });
    points.forEach((p, i) => {
      const x = pad + i * slot;
      const s = add("rect", { class: "server", x, y: y(p.server_hours), width: bar, height: height - pad - y(p.server_hours) });
      s.append(Object.assign(document.createElementNS(ns, "title"), { textContent: `${p.start}: ${hours(p.server_hours)} server-h` }));
      const g = add("rect", { class: "gpu", x: x + bar + 1, y: y(p.gpu_hours), width: bar, height: height - pad - y(p.gpu_hours) });
      g.append(Object.assign(document.createElementNS(ns, "title"), { textContent: `${p.start}: ${hours(p.gpu_hours)} GPU-h` }));
      if (i % Math.ceil(points.length / 12) === 0) {
        // day buckets: MM-DD; hour buckets: MM-DD HH:00
        const label = bucket === "hour" ? `${p.start.slice(5, 10)} ${p.start.slice(11, 13)}:00` : p.start.slice(5, 10);
        add("text", { x, y: height - 8 }, label);
      }
    });
    const legend = el(
      "div",
      { class: "small mt-1" },
      el("span", { class: "badge text-bg-primary me-1" }, "server-hours"),
      el("span", { class: "badge text-bg-warning" }, "GPU-hours")
    );
    return [svg, legend];
  }

  // the period's chart and table; a period the API refuses empties them (the figures of the
  // period before are not this one's), and an answer a later change made stale is dropped
  let usageGeneration = 0;
  async function loadUsage() {
    const mine = ++usageGeneration;
    const params = usageQuery();
    const series = new URLSearchParams(params);
    series.set("bucket", $("#usage-bucket").value);
    const report = new URLSearchParams(params);
    report.set("group_by", $("#usage-group").value);
    let points, byGroup;
    try {
      [points, byGroup] = await Promise.all([
        api("GET", `admin/usage/series?${series}`),
        api("GET", `admin/usage?${report}`),
      ]);
    } catch (error) {
      if (mine !== usageGeneration) return;
      $("#usage-chart").replaceChildren();
      $("#usage-csv").classList.add("disabled");
      setBody("usage", el("p", { class: "text-body-secondary mb-0" }, "No figures for this choice (see the message above)."));
      throw error;
    }
    if (mine !== usageGeneration) return;
    $("#usage-csv").classList.remove("disabled");
    $("#usage-chart").replaceChildren(...chart(points.points, points.bucket));
    const csv = new URLSearchParams(report);
    csv.set("format", "csv");
    $("#usage-csv").href = `${config.api}admin/usage?${csv}`;
    const rows = byGroup.items.map((r) =>
      el("tr", {}, el("td", {}, r.key), el("td", { class: "wb-num" }, hours(r.server_hours)), el("td", { class: "wb-num" }, hours(r.gpu_hours)), el("td", { class: "wb-num" }, r.runs))
    );
    setBody("usage", table([byGroup.group_by, "Server-hours", "GPU-hours", "Runs"], rows, "No usage in this period."));
  }

  // -- quotas -----------------------------------------------------------------------------
  const LIMITS = [
    ["max_servers", "Max servers", "1"],
    ["max_gpus", "Max GPUs", "1"],
    ["gpu_hours_per_month", "GPU-hours / month", "0.5"],
  ];

  function quotaRow(quota, isNew) {
    const inputs = {};
    const subject = isNew
      ? el("input", { class: "form-control form-control-sm", placeholder: "default, user:NAME or team:NAME", "aria-label": "Subject", name: "subject" })
      : null;
    const cells = LIMITS.map(([key, label, step]) => {
      inputs[key] = el("input", {
        class: "form-control form-control-sm wb-quota-input",
        type: "number",
        min: "0",
        step,
        name: key,
        "aria-label": `${label} of ${quota.subject || "new quota"}`,
        value: quota[key] === null || quota[key] === undefined ? "" : quota[key],
      });
      return el("td", {}, inputs[key]);
    });
    const save = async () => {
      clearError();
      const body = {};
      for (const [key] of LIMITS) {
        const raw = inputs[key].value.trim();
        body[key] = raw === "" ? null : Number(raw);
      }
      const name = isNew ? subject.value.trim() : quota.subject;
      if (!name) return showError("subject: say whose quota it is (default, user:NAME or team:NAME)");
      try {
        await api("PUT", `admin/quotas/${encodeURIComponent(name)}`, body);
        await Promise.all([loadQuotas(), loadAudit(false)]);
      } catch (error) {
        showError(error.message);
      }
    };
    const remove = async () => {
      clearError();
      try {
        await api("DELETE", `admin/quotas/${encodeURIComponent(quota.subject)}`);
        await Promise.all([loadQuotas(), loadAudit(false)]);
      } catch (error) {
        showError(error.message);
      }
    };
    return el(
      "tr",
      { "data-quota": isNew ? "new" : quota.subject },
      el("td", {}, isNew ? subject : el("code", {}, quota.subject)),
      cells,
      el(
        "td",
        { class: "text-end text-nowrap" },
        el("button", { class: "btn btn-sm btn-primary me-1", type: "button", onclick: save }, isNew ? "Add" : "Save"),
        isNew ? null : el("button", { class: "btn btn-sm btn-outline-danger", type: "button", onclick: remove, "aria-label": `Remove quota of ${quota.subject}` }, "Remove")
      )
    );
  }

  // a page at a time ("more": the next one); a reload after a change asks for as many as are
  // shown, up to 500; a new search ("search") starts again from the first page
  let quotasCursor = null;
  let quotasGeneration = 0; // a later load makes an earlier one's answer stale
  async function loadQuotas(how) {
    const more = how === "more";
    const generation = ++quotasGeneration;
    const body = $("#quotas .wb-body");
    const shown = how === "search" ? 0 : body.querySelectorAll("tr[data-quota]:not([data-quota=new])").length;
    const params = new URLSearchParams({ limit: String(more ? 50 : Math.min(Math.max(shown, 50), 500)) });
    const q = $("#quotas-q").value.trim();
    if (q) params.set("q", q);
    if (more && quotasCursor) params.set("cursor", quotasCursor);
    const data = await api("GET", `admin/quotas?${params}`);
    if (generation !== quotasGeneration) return;
    quotasCursor = data.next_cursor;
    $("#quotas-more").classList.toggle("d-none", !quotasCursor);
    const rows = data.items.map((quota) => quotaRow(quota, false));
    if (more) {
      $("tr[data-quota=new]", body).before(...rows);
      return;
    }
    rows.push(quotaRow({ subject: "" }, true));
    setBody("quotas", table(["Subject", ...LIMITS.map((l) => l[1]), ""], rows, ""));
    body.dataset.q = q; // what the table shows the quotas of
  }

  // -- audit log --------------------------------------------------------------------------
  const loadAudit = pagedList(
    "audit",
    "audit",
    () => {
      const form = $("#audit-form");
      const params = new URLSearchParams({ limit: "25", sort: "-time" });
      for (const name of ["action", "actor", "since"]) {
        const value = form.elements[name].value.trim();
        if (value) params.set(name, name === "since" ? `${value}T00:00:00Z` : value);
      }
      return params;
    },
    showAudit
  );

  function showAudit(data, more) {
    const rows = data.items.map((e) =>
      el(
        "tr",
        {},
        el("td", { class: "text-nowrap" }, when(e.time)),
        el("td", {}, e.actor),
        el("td", {}, el("code", {}, e.action)),
        el("td", {}, `${e.object_type} ${e.object_id}`),
        el("td", {}, e.project || ""),
        el("td", { class: "small" }, e.summary && Object.keys(e.summary).length ? JSON.stringify(e.summary) : "")
      )
    );
    showPage("audit", ["Time", "Actor", "Action", "Object", "Project", "Change"], rows, "No matching events.", more);
  }

  // -- wiring -----------------------------------------------------------------------------
  // a user's action: the last one's error is cleared as it starts (its own, if any, shows)
  function guarded(fn) {
    return (...args) => {
      clearError();
      return fn(...args).catch((error) => {
        showError(error.message);
      });
    };
  }

  async function main() {
    if (!config.admin) {
      $("#wb-forbidden").classList.remove("d-none");
      for (const section of document.querySelectorAll("#wb-admin section")) section.classList.add("d-none");
      return;
    }
    let timer = null;
    $("#people-q").addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => guarded(loadPeople)(false), 250);
    });
    $("#people-left").addEventListener("change", () => guarded(loadPeople)(false));
    $("#people-more").addEventListener("click", () => guarded(loadPeople)(true));
    $("#servers-more").addEventListener("click", () => guarded(loadServers)(true));
    for (const id of ["#usage-from", "#usage-to", "#usage-bucket", "#usage-group"]) {
      $(id).addEventListener("change", guarded(loadUsage));
    }
    $("#audit-form").addEventListener("submit", (event) => {
      event.preventDefault();
      guarded(loadAudit)(false);
    });
    $("#audit-more").addEventListener("click", () => guarded(loadAudit)(true));
    let quotaTimer = null;
    $("#quotas-q").addEventListener("input", () => {
      clearTimeout(quotaTimer);
      quotaTimer = setTimeout(() => guarded(loadQuotas)("search"), 250);
    });
    $("#quotas-more").addEventListener("click", () => guarded(loadQuotas)("more"));
    await Promise.all(
      [() => loadPeople(false), loadSignups, () => loadServers(false), loadUsage, loadQuotas, () => loadAudit(false)].map((fn) => guarded(fn)())
    );
    document.body.dataset.loaded = "true";
  }

  main();
})();
