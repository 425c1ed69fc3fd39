// spikedetect dashboard: open outage incidents (each expandable into its regions), a chart of the
// selected one, its region breakdown.
// Plain DOM and SVG; every value from the API is written with textContent or as a
// numeric attribute, never parsed as HTML.
"use strict";

(function () {
  const REFRESH_MS = 5000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const BEFORE_WINDOWS = 30; // chart context before the incident opened
  const AFTER_WINDOWS = 15; // and after it closed
  let selected = null; // incident_id
  let selectedMember = null; // region incident_id of an outage's member, when one is shown
  const expanded = new Set(); // outage ids whose member regions are listed
  let userPicked = false;

  const $ = (id) => document.getElementById(id);

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function ms(iso) {
    const t = Date.parse(iso);
    return Number.isNaN(t) ? null : t;
  }

  function fmtTime(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().slice(0, 16).replace("T", " ") + "Z";
  }

  function fmtDuration(msValue) {
    if (msValue === null || msValue === undefined) return "–";
    const minutes = Math.round(msValue / 60000);
    if (minutes < 60) return minutes + " min";
    const h = Math.floor(minutes / 60);
    return h + " h " + (minutes % 60) + " min";
  }

  function fmtNum(x, digits) {
    if (x === null || x === undefined || Number.isNaN(Number(x))) return "–";
    const n = Number(x);
    return Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(digits === undefined ? 1 : digits);
  }

  function depth(region) {
    return region === "*" ? 0 : String(region).split("/").length;
  }

  function regionName(region) {
    return region === "*" ? "global (*)" : region;
  }

  // "feed 45%, login 20%" from {name: share}
  function topShares(shares, n) {
    return Object.entries(shares || {})
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => k + " " + Math.round(v * 100) + "%")
      .join(", ");
  }

  // the signals of issue 18 (composition shifts, ingest gaps) carry their own fields, not an
  // outage's peak and expected count
  function signalLabel(inc) {
    if (inc.kind === "composition") return "composition shift: ";
    if (inc.kind === "ingest_gap") return "ingest gap (" + (inc.sources || []).join(", ") + "): ";
    return "";
  }

  // "server_connection 4% → 15%" for each risen (or fallen) category of a composition shift
  function shareMoves(inc, names) {
    return (names || []).map((c) => c + " " + Math.round(((inc.expected_categories || {})[c] || 0) * 100) +
      "% \u2192 " + Math.round(((inc.categories || {})[c] || 0) * 100) + "%").join(", ");
  }

  async function getJSON(url) {
    const resp = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      body = null;
    }
    if (!resp.ok) {
      const err = new Error((body && (body.reason || body.error)) || "HTTP " + resp.status);
      err.status = resp.status;
      err.body = body;
      throw err;
    }
    return body;
  }

  function cell(tr, text, kind) {
    tr.appendChild(el("td", text, kind === true ? "num" : kind || ""));
  }

  function markSelected() {
    for (const row of document.querySelectorAll("table.incidents tbody tr")) {
      const id = row.dataset.memberId || row.dataset.incidentId;
      row.className = (row.dataset.memberId ? "member " : "") +
        (id === (selectedMember || selected) ? "selected" : "");
    }
  }

  function memberRows(tbody, inc) {
    const members = (inc.regions || []).slice().sort((a, b) => depth(a.region) - depth(b.region) ||
      (b.peak_count || 0) - (a.peak_count || 0) || (a.region < b.region ? -1 : 1));
    for (const m of members) {
      const tr = document.createElement("tr");
      tr.dataset.memberId = m.incident_id;
      tr.className = "member" + (m.incident_id === selectedMember ? " selected" : "");
      cell(tr, "\u21b3", "muted");
      cell(tr, regionName(m.region));
      cell(tr, fmtTime(m.opened_at));
      cell(tr, m.closed_at ? fmtDuration(ms(m.closed_at) - ms(m.opened_at)) : "affected", true);
      cell(tr, fmtNum(m.peak_count, 0), true);
      cell(tr, fmtNum(m.expected), true);
      cell(tr, ""); cell(tr, m.level || ""); cell(tr, "");
      tr.addEventListener("click", () => {
        selected = inc.incident_id;
        selectedMember = m.incident_id;
        userPicked = true;
        markSelected();
        renderMember(inc, m).catch(showError);
      });
      tbody.appendChild(tr);
    }
  }

  function renderIncidents(tbody, emptyNote, items) {
    clear(tbody);
    emptyNote.hidden = items.length > 0;
    for (const inc of items) {
      const tr = document.createElement("tr");
      tr.dataset.incidentId = inc.incident_id;
      if (inc.incident_id === selected && !selectedMember) tr.className = "selected";
      cell(tr, inc.service, "wrap");
      // composition shifts and ingest gaps (issue 18) say so before the region
      const regionCell = el("td", signalLabel(inc) + regionName(inc.region), "");
      const n = (inc.regions || []).length;
      if (n > 1) {
        const open = expanded.has(inc.incident_id);
        const toggle = el("button", (open ? "\u25be " : "\u25b8 ") + n + " regions", "toggle");
        toggle.type = "button";
        toggle.addEventListener("click", (ev) => {
          ev.stopPropagation();
          if (expanded.has(inc.incident_id)) expanded.delete(inc.incident_id); else expanded.add(inc.incident_id);
          renderIncidents(tbody, emptyNote, items);
        });
        regionCell.appendChild(document.createTextNode(" "));
        regionCell.appendChild(toggle);
      }
      tr.appendChild(regionCell);
      cell(tr, fmtTime(inc.opened_at));
      cell(tr, fmtDuration(inc.duration_ms), true);
      const gap = inc.kind === "ingest_gap";
      cell(tr, fmtNum(gap ? inc.observed : inc.peak_count, 0), true);
      cell(tr, fmtNum(gap ? inc.expected_reports : inc.expected), true);
      cell(tr, fmtNum(inc.score), true);
      cell(tr, inc.kind === "composition" ? shareMoves(inc, inc.rose) : topShares(inc.categories, 3), "wrap");
      cell(tr, gap ? "" : topShares(inc.sources, 3), "wrap");
      tr.addEventListener("click", () => {
        selected = inc.incident_id;
        selectedMember = null;
        userPicked = true;
        markSelected();
        renderDetail(selected).catch(showError);
      });
      tbody.appendChild(tr);
      if (n > 1 && expanded.has(inc.incident_id)) memberRows(tbody, inc);
    }
  }

  function drawChart(svg, windows, windowMs, startMs, endMs) {
    clear(svg);
    const W = 640, H = 260, L = 46, R = 12, T = 12, B = 30;
    if (!windows.length) return;
    const x0 = windows[0].ws_ms, x1 = windows[windows.length - 1].ws_ms + windowMs;
    let yMax = 1;
    for (const w of windows) yMax = Math.max(yMax, w.observed || 0, w.expected || 0);
    yMax *= 1.1;
    const sx = (t) => L + ((t - x0) / Math.max(1, x1 - x0)) * (W - L - R);
    const sy = (v) => H - B - (v / yMax) * (H - T - B);
    for (let i = 0; i <= 4; i++) {
      const v = (yMax / 4) * i;
      svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), class: "grid" }));
      svg.appendChild(svgEl("text", { x: L - 4, y: sy(v) + 3, "text-anchor": "end" }, fmtNum(v, 0)));
    }
    if (startMs !== null) {
      const a = Math.max(x0, startMs), b = Math.min(x1, endMs === null ? x1 : endMs);
      if (b > a) svg.appendChild(svgEl("rect", { x: sx(a), y: T, width: sx(b) - sx(a), height: H - T - B,
                                                  class: "incident" }));
    }
    for (let i = 0; i <= 4; i++) {
      const t = x0 + ((x1 - x0) / 4) * i;
      const anchor = i === 0 ? "start" : i === 4 ? "end" : "middle";
      svg.appendChild(svgEl("text", { x: sx(t), y: H - B + 16, "text-anchor": anchor },
                            new Date(t).toISOString().slice(11, 16)));
    }
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
    svg.appendChild(svgEl("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
    const line = (field) => windows.map((w) => sx(w.ws_ms + windowMs / 2).toFixed(1) + "," +
                                               sy(w[field] || 0).toFixed(1)).join(" ");
    svg.appendChild(svgEl("polyline", { points: line("expected"), class: "expected" }));
    svg.appendChild(svgEl("polyline", { points: line("observed"), class: "observed" }));
  }

  function drawRegions(svg, children) {
    clear(svg);
    const rows = (children || []).slice(0, 8);
    if (!rows.length) return;
    const W = 420, L = 130, R = 120, rowH = 30, T = 8;
    svg.setAttribute("viewBox", "0 0 " + W + " " + (T * 2 + rows.length * rowH));
    let max = 1;
    for (const c of rows) max = Math.max(max, c.reports || 0, c.expected || 0);
    const sx = (v) => ((v || 0) / max) * (W - L - R);
    rows.forEach((c, i) => {
      const y = T + i * rowH;
      svg.appendChild(svgEl("text", { x: L - 6, y: y + 14, "text-anchor": "end", class: "label" },
                            regionName(c.region)));
      svg.appendChild(svgEl("rect", { x: L, y: y + 3, width: sx(c.reports), height: 12, class: "bar-reports" }));
      svg.appendChild(svgEl("rect", { x: L, y: y + 17, width: sx(c.expected), height: 6, class: "bar-expected" }));
      svg.appendChild(svgEl("text", { x: L + sx(c.reports) + 4, y: y + 14 },
                            fmtNum(c.reports, 0) + " (exp " + fmtNum(c.expected, 0) + ")"));
    });
  }

  function renderEvents(tbody, history) {
    clear(tbody);
    for (const e of history.slice().reverse()) {
      const tr = document.createElement("tr");
      cell(tr, e.seq, true);
      cell(tr, e.type);
      cell(tr, fmtTime(e.updated_at || e.detected_at));
      cell(tr, fmtNum(e.observed, 0), true);
      cell(tr, fmtNum(e.kind === "ingest_gap" ? e.expected_reports : e.expected), true);
      cell(tr, fmtNum(e.score), true);
      cell(tr, fmtNum(e.peak_count, 0), true);
      cell(tr, fmtNum(e.total_reports, 0), true);
      tbody.appendChild(tr);
    }
  }

  async function renderDetail(id) {
    const inc = await getJSON("/incidents/" + encodeURIComponent(id));
    if (selected !== id || selectedMember) return;
    $("detail").hidden = false;
    if (inc.kind === "composition" || inc.kind === "ingest_gap") {
      renderSignal(inc);
      await drawSeries(id, inc.service, inc.region, inc.window_ms || 60000, inc.opened_at, inc.closed_at,
                       inc.active_until);
      return;
    }
    $("regions-caption").textContent = "Affected regions (reports vs expected)";
    $("detail-title").textContent = inc.service + " · " + regionName(inc.region) + " · " + inc.state;
    $("detail-meta").textContent = "opened " + fmtTime(inc.opened_at) +
      (inc.closed_at ? ", closed " + fmtTime(inc.closed_at) : "") +
      ", duration " + fmtDuration(inc.duration_ms) + ", peak " + fmtNum(inc.peak_count, 0) +
      " at " + fmtTime(inc.peak_at) + ", " + fmtNum(inc.total_reports, 0) + " reports (" +
      fmtNum(inc.excess_reports, 0) + " above expected), baseline " + inc.baseline;
    renderEvents($("events-table").querySelector("tbody"), inc.history || []);
    // an outage (v2): its member regions by peak excess; a region incident (v1): its children
    const bars = inc.regions
      ? inc.regions.filter((m) => m.region !== inc.region)
          .sort((a, b) => ((b.peak_count || 0) - (b.expected || 0)) - ((a.peak_count || 0) - (a.expected || 0)))
          .map((m) => ({ region: m.region, reports: m.peak_count, expected: m.expected }))
      : inc.children || [];
    const hasChildren = bars.length > 0;
    $("regions").style.display = hasChildren ? "" : "none";
    drawRegions($("regions"), bars);
    $("regions-note").textContent = hasChildren
      ? (inc.regions ? inc.regions.length + " affected regions in " + (inc.countries || []).join(", ") +
         " (peak window each; expand the row to list them all)" : "")
      : "No other affected region.";
    await drawSeries(id, inc.service, inc.region, inc.window_ms || 60000, inc.opened_at, inc.closed_at,
                     inc.active_until);
  }

  // a composition shift: its share moves and the category bars; an ingest gap: what went silent
  function renderSignal(inc) {
    const closed = inc.closed_at ? ", closed " + fmtTime(inc.closed_at) + " (" + inc.close_reason + ")" : "";
    renderEvents($("events-table").querySelector("tbody"), inc.history || []);
    if (inc.kind === "ingest_gap") {
      $("detail-title").textContent = inc.service + " · ingest gap · " + inc.state;
      $("detail-meta").textContent = "silent: " + (inc.sources || []).join(", ") + "; opened " +
        fmtTime(inc.opened_at) + closed + ", " + inc.missing_windows + " windows without a report where " +
        fmtNum(inc.expected_reports, 0) + " were expected, score " + fmtNum(inc.score);
      $("regions").style.display = "none";
      $("regions-note").textContent = "";
      return;
    }
    $("detail-title").textContent = inc.service + " · composition shift · " + regionName(inc.region) + " · " +
      inc.state;
    $("detail-meta").textContent = "opened " + fmtTime(inc.opened_at) + closed + ", duration " +
      fmtDuration(inc.duration_ms) + ", " + fmtNum(inc.total_reports, 0) + " reports, score " +
      fmtNum(inc.score) + "; rose: " + (shareMoves(inc, inc.rose) || "–") + "; fell: " +
      (shareMoves(inc, inc.fell) || "–");
    // observed vs expected share of each category, in percent, the largest moves first
    const cats = Object.keys(Object.assign({}, inc.categories || {}, inc.expected_categories || {}));
    const share = (m, c) => Math.round(((m || {})[c] || 0) * 1000) / 10;
    const bars = cats.map((c) => ({ region: c, reports: share(inc.categories, c),
                                    expected: share(inc.expected_categories, c) }))
      .sort((a, b) => Math.abs(b.reports - b.expected) - Math.abs(a.reports - a.expected));
    $("regions-caption").textContent = "Category shares, % (observed vs expected)";
    $("regions").style.display = bars.length ? "" : "none";
    drawRegions($("regions"), bars);
    $("regions-note").textContent = (inc.regions || []).length + " region(s): " +
      (inc.regions || []).map((m) => regionName(m.region)).join(", ");
  }

  async function renderMember(outage, m) {
    const id = m.incident_id;
    $("detail").hidden = false;
    $("detail-title").textContent = outage.service + " · " + regionName(m.region) + " · " +
      (m.closed_at ? "closed" : "open") + " (a region of the outage at " + regionName(outage.region) + ")";
    $("detail-meta").textContent = "opened " + fmtTime(m.opened_at) + ", detected " + fmtTime(m.detected_at) +
      (m.closed_at ? ", closed " + fmtTime(m.closed_at) : "") + ", peak " + fmtNum(m.peak_count, 0) +
      ", latest " + fmtNum(m.observed, 0) + " vs expected " + fmtNum(m.expected);
    renderEvents($("events-table").querySelector("tbody"), []);
    $("regions").style.display = "none";
    $("regions-note").textContent = "Region " + m.region + " of outage " + outage.incident_id + ".";
    await drawSeries(id, outage.service, m.region, outage.window_ms || 60000, m.opened_at, m.closed_at,
                     outage.active_until);
  }

  async function drawSeries(id, service, region, windowMs, openedAt, closedAt, activeUntil) {
    const opened = ms(openedAt);
    const closed = closedAt ? ms(closedAt) : null;
    const inc = { service: service, region: region, active_until: activeUntil };
    const params = new URLSearchParams();
    if (opened !== null) params.set("since", String(opened - BEFORE_WINDOWS * windowMs));
    if (closed !== null) params.set("until", String(closed + AFTER_WINDOWS * windowMs));
    const url = "/series/" + encodeURIComponent(inc.service) + "/" + encodeURIComponent(inc.region) +
      "?" + params.toString();
    let windows = [];
    let note = "";
    try {
      windows = (await getJSON(url)).windows;
      if (!windows.length) note = "No retained windows in this range.";
    } catch (e) {
      note = e.status === 404 ? "No recent windows for this key (older than the retained history)."
                              : "Series unavailable: " + e.message;
    }
    if ((selectedMember || selected) !== id) return;
    drawChart($("chart"), windows, windowMs, opened, closed === null ? ms(inc.active_until) : closed);
    $("chart-note").textContent = note || windows.length + " windows";
  }

  function showError(e) {
    const s = $("status");
    s.textContent = "error: " + (e && e.message ? e.message : String(e));
    s.className = "pill bad";
  }

  async function refreshStatus() {
    const s = $("status");
    try {
      await getJSON("/ready");
      s.textContent = "ready";
      s.className = "pill ok";
    } catch (e) {
      s.textContent = "not ready: " + e.message;
      s.className = "pill bad";
    }
  }

  async function refresh() {
    try {
      const [open, closed] = await Promise.all([
        getJSON("/incidents?state=open&limit=100"), getJSON("/incidents?state=closed&limit=20"),
      ]);
      $("open-count").textContent = "(" + open.count + ")";
      // widest first (global, country, state, city), then the highest peak
      open.incidents.sort((a, b) => depth(a.region) - depth(b.region) || (b.peak_count || 0) - (a.peak_count || 0));
      const all = open.incidents.concat(closed.incidents);
      if (!userPicked || !all.some((i) => i.incident_id === selected)) {
        selected = all.length ? all[0].incident_id : null;
        selectedMember = null;
        userPicked = false;
      }
      renderIncidents($("open-table").querySelector("tbody"), $("open-empty"), open.incidents);
      renderIncidents($("closed-table").querySelector("tbody"), $("closed-empty"), closed.incidents);
      if (selected) await renderDetail(selected);
      else $("detail").hidden = true;
      await refreshStatus();
      $("updated").textContent = "updated " + new Date().toISOString().slice(11, 19) + "Z";
    } catch (e) {
      showError(e);
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }

  refresh();
})();
