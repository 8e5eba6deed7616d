// Shared helpers of the workbench widgets (prepended to each widget's module by the kernel).
const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "className") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const NOT_FINITE = { NaN: "nan", Infinity: "inf", "-Infinity": "-inf" };  // MLflow's JSON

function fmt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    // MLflow's SQL store keeps an infinity as the largest float: "inf", as %wb runs says
    // (was 1.80e+308); NaN and infinities as the kernel side's fallback writes them
    if (Math.abs(v) === Number.MAX_VALUE || !isFinite(v)) return Number.isNaN(v) ? "nan" : v > 0 ? "inf" : "-inf";
    if (Number.isInteger(v)) return String(v);
    const r = parseFloat(v.toPrecision(4));
    return Math.abs(r) >= 1e6 || (r !== 0 && Math.abs(r) < 1e-4) ? r.toExponential(2) : String(r);
  }
  return Object.hasOwn(NOT_FINITE, v) ? NOT_FINITE[v] : String(v);  // ('constructor' is text)
}

// el.replaceChildren without the holes (null, undefined, false) that conditionals leave
function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

function num(v) {
  const x = typeof v === "number" ? v : parseFloat(v);
  return Number.isFinite(x) ? x : null;
}

// Exponential moving average, debiased (TensorBoard's smoothing); nulls pass through.
function ema(values, smoothing) {
  if (!smoothing || smoothing <= 0) return values.slice();
  let last = 0, weight = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return null;
    last = last * smoothing + (1 - smoothing) * v;
    weight = weight * smoothing + (1 - smoothing);
    return last / weight;
  });
}

function ticks(lo, hi, n = 5) {
  if (hi <= lo) return [lo];
  const step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
  const err = (n * step) / (hi - lo);
  const nice = step * (err <= 0.15 ? 10 : err <= 0.35 ? 5 : err <= 0.75 ? 2 : 1);
  const out = [];
  // at most n * 3 ticks, and none once t stops moving: past 2**53 floats are further apart
  // than a small tick step (steps 1000 apart at 2**62: t += 500 left t as it was, forever)
  for (let t = Math.ceil(lo / nice) * nice, k = 0; t <= hi + nice * 1e-9 && k < n * 3; t += nice, k++) {
    out.push(+t.toPrecision(12));
    if (t + nice === t) break;
  }
  return [...new Set(out)];
}

// An SVG line chart: series = [{label, color, xs, ys, faint}]; ys may hold nulls (gaps).
function lineChart(series, { width = 600, height = 260, xlabel = "step", title = "" } = {}) {
  const pts = [];
  for (const ser of series) ser.xs.forEach((x, i) => { const y = ser.ys[i]; if (y !== null && Number.isFinite(y)) pts.push([x, y]); });
  const svg = s("svg", { width, height, class: "wb-chart", role: "img", "aria-label": title || "chart" });
  if (!pts.length) {
    svg.append(s("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "wb-muted" }, "no points yet"));
    return svg;
  }
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) { const pad = Math.abs(y0) * 0.1 || 1; y0 -= pad; y1 += pad; }
  const m = { l: 60, r: 12, t: 12, b: 30 };
  const w = width - m.l - m.r, hh = height - m.t - m.b;
  const sx = (x) => m.l + ((x - x0) / (x1 - x0)) * w;
  const sy = (y) => m.t + (1 - (y - y0) / (y1 - y0)) * hh;
  const g = s("g", { class: "wb-axes" });
  for (const t of ticks(y0, y1)) {
    g.append(s("line", { x1: m.l, x2: m.l + w, y1: sy(t), y2: sy(t), class: "wb-grid" }));
    g.append(s("text", { x: m.l - 6, y: sy(t) + 3, "text-anchor": "end" }, fmt(t)));
  }
  for (const t of ticks(x0, x1, 6)) g.append(s("text", { x: sx(t), y: m.t + hh + 14, "text-anchor": "middle" }, fmt(t)));
  g.append(s("text", { x: m.l + w, y: height - 2, "text-anchor": "end", class: "wb-muted" }, xlabel));
  g.append(s("rect", { x: m.l, y: m.t, width: w, height: hh, class: "wb-frame" }));
  svg.append(g);
  series.forEach((ser, i) => {
    let d = "", pen = false;
    ser.xs.forEach((x, j) => {
      const y = ser.ys[j];
      if (y === null || !Number.isFinite(y)) { pen = false; return; }
      d += `${pen ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`;
      pen = true;
    });
    const color = ser.color || PALETTE[i % PALETTE.length];
    svg.append(s("path", { d, fill: "none", stroke: color, "stroke-width": ser.faint ? 1 : 1.8, opacity: ser.faint ? 0.3 : 1 }, s("title", {}, ser.label)));
  });
  return svg;
}

function legend(items) {
  return h("div", { className: "wb-legend" }, items.map(([label, color]) => h("span", {}, h("i", { style: `background:${color}` }), label)));
}

function table(headers, rows, { className = "wb-table" } = {}) {
  return h("table", { className },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c instanceof Node ? c : fmt(c)))))));
}

// ↻: the kernel side fetches again (a custom message, see WorkbenchWidget._on_view_message)
function reloadButton(model) {
  return h("button", { type: "button", className: "wb-reload", title: "load again", "aria-label": "reload", onclick: () => model.send({ type: "reload" }) }, "↻");
}

function errorBox(model) {
  const box = h("div", { className: "wb-error", role: "alert" });
  const show = () => { box.textContent = model.get("error") || ""; box.hidden = !model.get("error"); };
  model.on("change:error", show);
  show();
  return box;
}

function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

// A small, safe Markdown renderer (headings, lists, emphasis, code, links, tables, paragraphs).
function markdown(text) {
  const root = h("div", { className: "wb-markdown" });
  const inline = (line) => {
    const frag = document.createDocumentFragment();
    const re = /(`[^`]+`|\*\*[^*]+\*\*|\*[^*]+\*|\[[^\]]+\]\([^)\s]+\))/g;
    let last = 0, m;
    while ((m = re.exec(line))) {
      frag.append(line.slice(last, m.index));
      const t = m[0];
      if (t.startsWith("`")) frag.append(h("code", {}, t.slice(1, -1)));
      else if (t.startsWith("**")) frag.append(h("strong", {}, t.slice(2, -2)));
      else if (t.startsWith("*")) frag.append(h("em", {}, t.slice(1, -1)));
      else {
        const [, label, href] = t.match(/\[([^\]]+)\]\(([^)\s]+)\)/);
        frag.append(/^(https?:|#|\/)/.test(href) ? h("a", { href, target: "_blank", rel: "noopener" }, label) : label);
      }
      last = m.index + t.length;
    }
    frag.append(line.slice(last));
    return frag;
  };
  const lines = String(text || "").split(/\r?\n/);
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^```/.test(line)) {
      const body = [];
      for (i++; i < lines.length && !/^```/.test(lines[i]); i++) body.push(lines[i]);
      root.append(h("pre", {}, h("code", {}, body.join("\n"))));
      i++;
    } else if (/^#{1,6}\s/.test(line)) {
      const level = line.match(/^#+/)[0].length;
      root.append(h(`h${Math.min(level + 2, 6)}`, {}, inline(line.replace(/^#+\s*/, ""))));
      i++;
    } else if (/^\s*([-*]|\d+\.)\s+/.test(line)) {
      const ordered = /^\s*\d+\./.test(line);
      const list = h(ordered ? "ol" : "ul");
      while (i < lines.length && /^\s*([-*]|\d+\.)\s+/.test(lines[i])) {
        list.append(h("li", {}, inline(lines[i].replace(/^\s*([-*]|\d+\.)\s+/, ""))));
        i++;
      }
      root.append(list);
    } else if (/^\|/.test(line)) {
      const rows = [];
      while (i < lines.length && /^\|/.test(lines[i])) {
        if (!/^\|[\s:|-]+\|$/.test(lines[i])) rows.push(lines[i].replace(/^\||\|$/g, "").split("|").map((c) => c.trim()));
        i++;
      }
      const [head, ...body] = rows;
      root.append(h("table", { className: "wb-table" }, h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, inline(c))))),
        h("tbody", {}, body.map((r) => h("tr", {}, r.map((c) => h("td", {}, inline(c))))))));
    } else if (line.trim() === "") {
      i++;
    } else {
      const para = [];
      while (i < lines.length && lines[i].trim() !== "" && !/^(#{1,6}\s|```|\||\s*([-*]|\d+\.)\s+)/.test(lines[i])) para.push(lines[i++]);
      root.append(h("p", {}, inline(para.join(" "))));
    }
  }
  return root;
}
