"""The style sheet and the script the HTML report inlines (:mod:`~spikedetect.evaluate.report_html`).

The script reads the report's data from the page's ``report-data`` JSON and draws the charts
as SVG; it sets text from the data only with ``textContent``, never as HTML.
"""

CSS = """
:root { --fg:#1d2430; --muted:#667085; --line:#d0d5dd; --obs:#1f5fbf; --exp:#444; --band:#9db8e8;
        --span:#f2b84b; --ok:#2e9d5b; --bad:#d64545; --trap:#8a63d2; --outage:#f08c2e; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 960px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 0; } .muted { color: var(--muted); } .small { font-size: 12px; }
.facts { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 8px 0; }
.facts b { font-variant-numeric: tabular-nums; }
.incident { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin: 14px 0; }
.incident header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 14px; }
.tag { border-radius: 10px; padding: 0 8px; font-size: 12px; color: #fff; background: var(--muted); }
.tag.matched { background: var(--ok); } .tag.unmatched { background: var(--bad); } .tag.trap { background: var(--trap); }
svg { display: block; width: 100%; height: auto; overflow: visible; }
svg text { font-size: 11px; fill: var(--muted); }
.axis line, .grid line { stroke: var(--line); stroke-width: 1; }
path.obs { fill: none; stroke: var(--obs); stroke-width: 1.6; }
path.exp { fill: none; stroke: var(--exp); stroke-width: 1.1; stroke-dasharray: 4 3; }
path.band { fill: var(--band); fill-opacity: .45; stroke: none; }
rect.span { fill: var(--span); fill-opacity: .22; }
rect.truth { fill: var(--outage); fill-opacity: .8; } rect.trapspan { fill: var(--trap); fill-opacity: .7; }
rect.inc { fill: var(--obs); fill-opacity: .8; stroke: #fff; stroke-width: .6; } rect.inc.matched { fill: var(--ok); } rect.inc.unmatched { fill: var(--bad); }
rect.inc.trap { fill: var(--trap); } rect.inc:hover { stroke: #000; stroke-width: 1; cursor: pointer; }
rect.bar { fill: var(--obs); fill-opacity: .8; }
.cols { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 24px; margin-top: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
td, th { padding: 2px 6px; border-bottom: 1px solid #eef0f3; text-align: right; }
td:first-child, th:first-child { text-align: left; }
td.spark { width: 180px; } .legend span { margin-right: 14px; }
.legend i { display: inline-block; width: 18px; height: 8px; margin-right: 4px; vertical-align: middle; }
"""

JS = r"""
(() => {
const NS = "http://www.w3.org/2000/svg";  // the SVG namespace name, not a request
const data = JSON.parse(document.getElementById("report-data").textContent);
const W = 860;
function el(tag, attrs, parent, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
function h(tag, attrs, parent, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
const pad2 = n => String(n).padStart(2, "0");
function fmt(ms, withDate) {
  const d = new Date(ms);
  const t = pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes());
  return withDate === false ? t : d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate()) + " " + t;
}
const num = x => x === null || x === undefined ? "-" : (Math.abs(x) >= 100 ? Math.round(x).toLocaleString("en") : (+x).toFixed(1));
function niceStep(span, n) {
  const raw = span / Math.max(1, n), p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map(m => m * 60000);
function timeTicks(t0, t1, n) {
  const step = TIME_STEPS.find(s => (t1 - t0) / s <= n) || TIME_STEPS[TIME_STEPS.length - 1];
  const out = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) out.push(t);
  return out;
}
function line(xs, ys) {
  let d = "", pen = false;
  ys.forEach((y, i) => {
    if (y === null) { pen = false; return; }
    d += (pen ? "L" : "M") + xs[i].toFixed(1) + "," + y.toFixed(1);
    pen = true;
  });
  return d;
}
function area(xs, lo, hi) {
  let d = "", run = [];
  const flush = () => {
    if (run.length > 1) {
      d += "M" + run.map(i => xs[i].toFixed(1) + "," + hi[i].toFixed(1)).join("L");
      d += "L" + run.slice().reverse().map(i => xs[i].toFixed(1) + "," + lo[i].toFixed(1)).join("L") + "Z";
    }
    run = [];
  };
  lo.forEach((v, i) => { if (v === null || hi[i] === null) flush(); else run.push(i); });
  flush();
  return d;
}
function chart(parent, s, opts) {
  const H = opts.height, m = opts.margin;
  const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, class: opts.cls, role: "img"}, parent);
  const n = s.obs.length, t0 = s.t0, t1 = s.t0 + n * s.step;
  const x = t => m.l + (t - t0) / (t1 - t0) * (W - m.l - m.r);
  const vals = s.obs.concat(opts.band ? s.hi : s.exp).filter(v => v !== null);
  const ymax = Math.max(1, ...vals) * 1.08;
  const y = v => H - m.b - v / ymax * (H - m.t - m.b);
  const xs = s.obs.map((_, i) => x(t0 + (i + 0.5) * s.step));
  if (opts.axes) {
    const g = el("g", {class: "grid"}, svg), step = niceStep(ymax, 4);
    for (let v = 0; v <= ymax; v += step) {
      el("line", {x1: m.l, x2: W - m.r, y1: y(v), y2: y(v)}, g);
      el("text", {x: m.l - 6, y: y(v) + 4, "text-anchor": "end"}, g, num(v));
    }
    let lastDay = null;
    for (const t of timeTicks(t0, t1, 8)) {
      const day = fmt(t).slice(0, 10);
      el("text", {x: x(t), y: H - 8, "text-anchor": "middle"}, g, day === lastDay ? fmt(t, false) : fmt(t));
      lastDay = day;
    }
  }
  for (const sp of opts.spans || []) {
    const a = Math.max(t0, sp.from), b = Math.min(t1, sp.to);
    if (b > a) {
      const r = el("rect", {x: x(a), y: sp.top ? m.t - 6 : m.t, width: Math.max(1, x(b) - x(a)),
                            height: sp.top ? 5 : H - m.t - m.b, class: sp.cls}, svg);
      el("title", {}, r, sp.title);
    }
  }
  if (opts.band) el("path", {class: "band", d: area(xs, s.lo.map(v => v === null ? null : y(v)), s.hi.map(v => v === null ? null : y(v)))}, svg);
  el("path", {class: "exp", d: line(xs, s.exp.map(v => v === null ? null : y(v)))}, svg);
  el("path", {class: "obs", d: line(xs, s.obs.map(v => v === null ? null : y(v)))}, svg);
  return svg;
}
function bars(parent, title, shares) {
  const entries = Object.entries(shares || {}).sort((a, b) => b[1] - a[1]);
  const box = h("div", {}, parent);
  h("div", {class: "small muted"}, box, title);
  const rowH = 16, H = Math.max(1, entries.length) * rowH + 4, BW = 420;
  const svg = el("svg", {viewBox: `0 0 ${BW} ${H}`, class: "bars"}, box);
  entries.forEach(([name, share], i) => {
    el("text", {x: 118, y: i * rowH + 12, "text-anchor": "end"}, svg, name);
    el("rect", {class: "bar", x: 124, y: i * rowH + 3, width: Math.max(1, share * 250), height: rowH - 5}, svg);
    el("text", {x: 128 + Math.max(1, share * 250), y: i * rowH + 12}, svg, (100 * share).toFixed(0) + "%");
  });
}
function matchClass(m) { return !m ? "" : m === "unmatched" ? "unmatched" : m.startsWith("trap:") ? "trap" : "matched"; }
function overview(parent) {
  const t0 = data.start_ms, t1 = data.end_ms, m = {l: 190, r: 10, t: 8, b: 26};
  const lanes = [];
  if (data.truth) {
    lanes.push({label: "truth: outages", items: data.truth.outages.map(o => ({from: o.start_ms, to: o.end_ms, cls: "truth", title: `${o.id} ${o.service} ${o.key} ${fmt(o.start_ms)} - ${fmt(o.end_ms)}`}))});
    lanes.push({label: "truth: traps", items: data.truth.traps.map(o => ({from: o.start_ms, to: o.end_ms, cls: "trapspan", title: `${o.id} ${o.service} ${o.key}`}))});
  }
  // one lane per service and country (or "*"): deeper keys sit in their country's lane, inset
  const byKey = new Map();
  for (const inc of data.incidents) {
    const top = inc.region.split("/")[0], k = inc.service + " " + top;
    if (!byKey.has(k)) byKey.set(k, {label: k, items: [], n: 0, service: inc.service, top});
    const lane = byKey.get(k), depth = inc.region === "*" ? 0 : inc.region.split("/").length - 1;
    lane.n += 1;
    lane.items.push({from: inc.opened_ms, to: inc.until_ms, cls: "inc " + matchClass(inc.match), depth,
      title: `${inc.service} ${inc.region}: ${fmt(inc.opened_ms)} - ${inc.closed_at ? fmt(inc.until_ms) : "open"} (${inc.match || "no truth"})`, id: inc.incident_id});
  }
  for (const lane of byKey.values()) {
    if (lane.n > 1) lane.label += ` (${lane.n})`;
    lane.items.sort((a, b) => a.depth - b.depth);
  }
  lanes.push(...[...byKey.values()].sort((a, b) => a.service.localeCompare(b.service) || (a.top === "*" ? -1 : b.top === "*" ? 1 : a.top.localeCompare(b.top))));
  const laneH = 14, H = m.t + m.b + lanes.length * laneH;
  const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, id: "overview", role: "img"}, parent);
  const x = t => m.l + (t - t0) / Math.max(1, t1 - t0) * (W - m.l - m.r);
  const g = el("g", {class: "grid"}, svg);
  for (const t of timeTicks(t0, t1, 8)) {
    el("line", {x1: x(t), x2: x(t), y1: m.t, y2: H - m.b}, g);
    el("text", {x: x(t), y: H - 8, "text-anchor": "middle"}, g, fmt(t).slice(5));
  }
  lanes.forEach((lane, i) => {
    const yy = m.t + i * laneH;
    el("text", {x: m.l - 6, y: yy + 11, "text-anchor": "end"}, svg, lane.label.length > 30 ? lane.label.slice(0, 29) + "…" : lane.label);
    for (const it of lane.items) {
      const inset = Math.min(it.depth || 0, 3) * 1.5;
      const r = el("rect", {x: x(it.from), y: yy + 2 + inset, width: Math.max(2, x(it.to) - x(it.from)), height: laneH - 4 - 2 * inset, class: it.cls}, svg);
      el("title", {}, r, it.title);
      if (it.id) r.addEventListener("click", () => { location.hash = it.id; });
    }
  });
}
function incidentCard(parent, inc) {
  const sec = h("section", {class: "incident", id: inc.incident_id}, parent);
  const head = h("header", {}, sec);
  const title = {outage: "Outage: ", composition: "Composition shift: ", ingest_gap: "Ingest gap: "}[inc.kind] || "";
  h("h3", {}, head, title + `${inc.service} · ${inc.region}`);
  if (inc.group_id) { const p = h("span", {class: "muted small"}, head, "part of outage ");
    h("a", {href: "#" + inc.group_id}, p, inc.group_id); }
  h("span", {class: "muted"}, head, `${inc.level} · opened ${fmt(inc.opened_ms)} · ` +
    (inc.closed_at ? `closed ${fmt(inc.until_ms)} (${inc.close_reason})` : "still open"));
  if (inc.match) h("span", {class: "tag " + matchClass(inc.match)}, head, inc.match);
  const facts = h("div", {class: "facts small"}, sec);
  const list = (x) => Array.isArray(x) ? x.join(", ") : "";
  const facts_of = inc.kind === "composition"
    ? [["rose", list(inc.rose)], ["fell", list(inc.fell)], ["reports", num(inc.total_reports)],
       ["detected", fmt(Date.parse(inc.detected_at))]]
    : inc.kind === "ingest_gap"
    ? [["silent sources", list(inc.sources)], ["missing windows", num(inc.missing_windows)],
       ["expected reports", num(inc.expected_reports)], ["detected", fmt(Date.parse(inc.detected_at))]]
    : [["peak", num(inc.peak_count) + " at " + fmt(Date.parse(inc.peak_at), false)],
       ["reports", num(inc.total_reports)], ["excess", num(inc.excess_reports)],
       ["baseline", inc.baseline], ["detected", fmt(Date.parse(inc.detected_at))]];
  for (const [k, v] of facts_of) {
    const s = h("span", {}, facts, k + " "); h("b", {}, s, v);
  }
  if (!inc.series) { h("p", {class: "muted small"}, sec, "(not charted: over --max-incidents)"); return; }
  const spans = [{from: inc.opened_ms, to: inc.until_ms, cls: "span", title: "incident"}];
  for (const o of (data.truth ? data.truth.outages : []).filter(o => o.service === inc.service))
    spans.push({from: o.start_ms, to: o.end_ms, cls: "truth", top: true, title: "truth outage " + o.id});
  chart(sec, inc.series, {height: 230, margin: {l: 52, r: 12, t: 12, b: 28}, band: true, axes: true, cls: "chart", spans});
  const legend = h("div", {class: "legend small muted"}, sec);
  for (const [c, label] of [["var(--obs)", "observed"], ["var(--exp)", "expected"], ["var(--band)", "expected ± 2·sqrt(phi·expected)"], ["var(--span)", "incident"]]) {
    const s = h("span", {}, legend); h("i", {style: "background:" + c}, s); s.append(label);
  }
  const cols = h("div", {class: "cols"}, sec);
  bars(cols, "categories", inc.categories);
  if (inc.kind === "composition") bars(cols, "expected categories", inc.expected_categories);
  else if (inc.kind !== "ingest_gap") bars(cols, "sources", inc.sources);
  if (inc.kind === "outage" && (inc.regions || []).length) {
    h("div", {class: "small muted", style: "margin-top:8px"}, sec,
      `${inc.regions.length} affected regions in ${(inc.countries || []).join(", ")}`);
    const table = h("table", {class: "children"}, sec);
    const tr = h("tr", {}, table);
    for (const c of ["region", "level", "opened", "closed", "peak", "observed vs expected"]) h("th", {}, tr, c);
    const series = new Map((inc.child_series || []).map(c => [c.region, c]));
    for (const m of inc.regions) {
      const row = h("tr", {}, table);
      const cell0 = h("td", {}, row); h("a", {href: "#" + m.incident_id}, cell0, m.region);
      h("td", {}, row, m.level); h("td", {}, row, fmt(Date.parse(m.opened_at), false));
      h("td", {}, row, m.closed_at ? fmt(Date.parse(m.closed_at), false) : "open"); h("td", {}, row, num(m.peak_count));
      const cell = h("td", {class: "spark"}, row);
      if (series.has(m.region)) chart(cell, series.get(m.region), {height: 40, margin: {l: 0, r: 0, t: 2, b: 2}, cls: "spark",
        spans: [{from: inc.opened_ms, to: inc.until_ms, cls: "span", title: "incident"}]});
    }
  } else if ((inc.children || []).length) {
    h("div", {class: "small muted", style: "margin-top:8px"}, sec, "affected child regions (whole incident)");
    const table = h("table", {class: "children"}, sec);
    const tr = h("tr", {}, table);
    for (const c of ["region", "reports", "expected", "excess", "observed vs expected"]) h("th", {}, tr, c);
    const series = new Map((inc.child_series || []).map(c => [c.region, c]));
    for (const c of inc.children) {
      const row = h("tr", {}, table);
      h("td", {}, row, c.region); h("td", {}, row, num(c.reports)); h("td", {}, row, num(c.expected)); h("td", {}, row, num(c.excess));
      const cell = h("td", {class: "spark"}, row);
      if (series.has(c.region)) chart(cell, series.get(c.region), {height: 40, margin: {l: 0, r: 0, t: 2, b: 2}, cls: "spark",
        spans: [{from: inc.opened_ms, to: inc.until_ms, cls: "span", title: "incident"}]});
    }
  }
}
const root = document.getElementById("incidents");
const index = document.getElementById("index");
const outs = data.incidents.filter(i => ["outage", "composition", "ingest_gap"].includes(i.kind));
if (outs.length) {
  const ul = h("ul", {class: "small"}, index);
  for (const o of outs) {
    const li = h("li", {}, ul);
    h("a", {href: "#" + o.incident_id}, li, `${o.service} · ${o.region}`);
    const what = o.kind === "outage" ? `${(o.regions || []).length} regions` : o.kind.replace("_", " ");
    li.append(` · ${fmt(o.opened_ms)} · ${what}` + (o.match ? ` · ${o.match}` : ""));
  }
} else h("p", {class: "muted small"}, index, "No outage incidents (a v1 region stream: see the incidents below).");
overview(document.getElementById("timeline"));
for (const inc of data.incidents) incidentCard(root, inc);
if (!data.incidents.length) h("p", {class: "muted"}, root, "No incidents.");
document.body.setAttribute("data-rendered", String(data.incidents.length));
})();
"""
