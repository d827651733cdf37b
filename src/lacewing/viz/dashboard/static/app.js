// lacewing dashboard: polls the dashboard server's JSON every 2 s and draws tables, SVG charts
// (the last 5 minutes from Prometheus' range queries, then one point per poll) and the edges.
// No library: plain DOM and SVG.
"use strict";
const POLL_MS = 2000;
const HISTORY = 210; // points kept per workload (the 5-minute history and ~5 minutes of polls)
const params = new URLSearchParams(location.search);
const ns = params.get("ns");
const windowSelect = document.getElementById("window");
if (params.get("window")) windowSelect.value = params.get("window");
const history = new Map(); // workload -> [{at, rps, success, p99}]

function pct(v) { return v === null || v === undefined ? "-" : (v * 100).toFixed(2) + "%"; }
function ms(v) { return v === null || v === undefined ? "-" : (v >= 10 ? v.toFixed(0) : v.toFixed(1)) + "ms"; }
function rps(row) { return row.requests > 0 || row.meshed ? row.rps.toFixed(1) : "-"; }
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function cell(tr, field, text, cls) {
  const td = el("td", { "data-field": field }, text);
  if (cls) td.className = cls;
  tr.appendChild(td);
}

function fillStats(tbody, rows, link, tcp) {
  tbody.replaceChildren();
  for (const row of rows) {
    const tr = el("tr", { "data-ns": row.namespace, "data-name": row.name });
    const first = el("td", { "data-field": "name" });
    if (link) {
      const q = new URLSearchParams({ ns: row.name, window: windowSelect.value });
      first.appendChild(el("a", { href: "?" + q }, row.name));
    } else first.textContent = row.name;
    tr.appendChild(first);
    cell(tr, "meshed", row.meshed || "-");
    const sr = row.success;
    cell(tr, "success", pct(sr), sr === null ? "" : sr < 0.95 ? "bad" : "good");
    cell(tr, "rps", rps(row));
    cell(tr, "p50", ms(row.latency_ms_p50));
    cell(tr, "p95", ms(row.latency_ms_p95));
    cell(tr, "p99", ms(row.latency_ms_p99));
    cell(tr, "tls", pct(row.tls));
    if (tcp) cell(tr, "tcp", row.tcp_open_connections === null ? "-" : String(row.tcp_open_connections));
    tbody.appendChild(tr);
  }
  if (!rows.length) {
    const tr = el("tr");
    tr.appendChild(el("td", { colspan: 9 }, "No traffic found."));
    tbody.appendChild(tr);
  }
}

function chart(title, points, key, format, color) {
  const W = 300, H = 90, box = el("div", { class: "chart", "data-key": key, "data-points": points.length });
  box.appendChild(el("h3", {}, title));
  const s = svg("svg", { width: W, height: H + 14, viewBox: `0 0 ${W} ${H + 14}` });
  s.appendChild(svg("rect", { x: 0, y: 0, width: W, height: H, fill: "#fafbfc", stroke: "#e2e5ea" }));
  const values = points.map(p => p[key]).filter(v => v !== null && v !== undefined);
  const max = Math.max(...values, key === "success" ? 1 : 0) || 1;
  if (points.length > 1) {
    const t0 = points[0].at, span = points[points.length - 1].at - t0 || 1;
    let d = "";
    for (const p of points) {
      if (p[key] === null || p[key] === undefined) continue;
      const x = ((p.at - t0) / span) * (W - 2) + 1, y = H - (p[key] / max) * (H - 4) - 2;
      d += (d ? " L" : "M") + x.toFixed(1) + "," + y.toFixed(1);
    }
    if (d) s.appendChild(svg("path", { d, fill: "none", stroke: color, "stroke-width": 1.5 }));
  }
  const label = svg("text", { x: 2, y: H + 12, "font-size": 10, fill: "#5b6475" });
  const last = values.length ? values[values.length - 1] : null;
  label.textContent = `max ${format(max)} · now ${last === null ? "-" : format(last)} · ${points.length} points`;
  s.appendChild(label);
  box.appendChild(s);
  return box;
}

let historyError = "";
async function loadHistory() {
  historyError = "";
  history.clear();
  try { await fetchHistory(); } catch (err) { historyError = "; no history: " + (err.message || err); }
}

async function fetchHistory() {
  const q = `ns=${encodeURIComponent(ns)}&window=${encodeURIComponent(windowSelect.value)}&span=5m`;
  const data = await getJSON(`api/history?${q}`);
  for (const [name, points] of Object.entries(data.series)) {
    history.set(name, points.map(p => ({ at: p.at, rps: p.rps, success: p.success, p99: p.latency_ms_p99 })));
  }
}

function drawCharts(data) {
  const charts = document.getElementById("charts");
  charts.replaceChildren();
  for (const row of data.rows) {
    const points = history.get(row.name) || [];
    if (!points.length || points[points.length - 1].at < data.at)
      points.push({ at: data.at, rps: row.rps, success: row.success, p99: row.latency_ms_p99 });
    while (points.length > HISTORY) points.shift();
    history.set(row.name, points);
    const group = el("div", { class: "chart-group", "data-name": row.name });
    group.appendChild(chart(`${row.name} · RPS`, points, "rps", v => v.toFixed(1), "#2f6fdf"));
    group.appendChild(chart(`${row.name} · success`, points, "success", pct, "#1e7b34"));
    group.appendChild(chart(`${row.name} · p99 latency`, points, "p99", ms, "#b36b00"));
    charts.appendChild(group);
  }
}

function drawEdges(list) {
  const tbody = document.querySelector("#edges tbody");
  tbody.replaceChildren();
  for (const e of list) {
    const tr = el("tr", { "data-src": e.src, "data-dst": e.dst });
    for (const [f, v] of [["src", e.src], ["dst", e.dst], ["src_ns", e.src_namespace],
                          ["dst_ns", e.dst_namespace]]) cell(tr, f, v);
    cell(tr, "secured", e.secured ? "√" : e.reason, e.secured ? "good" : "bad");
    cell(tr, "server_id", e.server_id || "-");
    tbody.appendChild(tr);
  }
  const graph = document.getElementById("edge-graph");
  graph.replaceChildren();
  if (!list.length) { graph.textContent = "No edges found."; return; }
  const srcs = [...new Set(list.map(e => e.src_namespace + "/" + e.src))];
  const dsts = [...new Set(list.map(e => e.dst_namespace + "/" + e.dst))];
  const W = 520, row = 34, H = Math.max(srcs.length, dsts.length) * row + 10;
  const s = svg("svg", { width: W, height: H });
  const y = (names, name) => names.indexOf(name) * row + 22;
  for (const e of list) {
    const y1 = y(srcs, e.src_namespace + "/" + e.src), y2 = y(dsts, e.dst_namespace + "/" + e.dst);
    s.appendChild(svg("line", { x1: 150, y1, x2: W - 150, y2, stroke: e.secured ? "#1e7b34" : "#b3261e",
      "stroke-width": 2, "stroke-dasharray": e.secured ? "" : "5,4" }));
  }
  for (const [names, x, anchor] of [[srcs, 140, "end"], [dsts, W - 140, "start"]]) {
    for (const name of names) {
      const t = svg("text", { x, y: y(names, name) + 4, "text-anchor": anchor, "font-size": 12 });
      t.textContent = name;
      s.appendChild(t);
    }
  }
  graph.appendChild(s);
}

async function poll() {
  const status = document.getElementById("status");
  const w = encodeURIComponent(windowSelect.value);
  try {
    if (ns) {
      const q = `ns=${encodeURIComponent(ns)}&window=${w}`;
      const [work, edg] = await Promise.all([getJSON(`api/workloads?${q}`), getJSON(`api/edges?${q}`)]);
      fillStats(document.querySelector("#workloads tbody"), work.rows, false, true);
      drawCharts(work);
      drawEdges(edg.edges);
      document.body.dataset.updated = String(work.at);
      document.getElementById("where").textContent = "Prometheus: " + work.prometheus;
    } else {
      const data = await getJSON(`api/namespaces?window=${w}`);
      fillStats(document.querySelector("#namespaces tbody"), data.rows, true, false);
      document.body.dataset.updated = String(data.at);
      document.getElementById("where").textContent = "Prometheus: " + data.prometheus;
    }
    status.className = "";
    status.textContent = "updated " + new Date(Number(document.body.dataset.updated) * 1000).toLocaleTimeString() + historyError;
  } catch (err) {
    status.className = "error";
    status.textContent = String(err.message || err);
  }
}

if (ns) {
  document.getElementById("namespaces-view").hidden = true;
  document.getElementById("namespace-view").hidden = false;
  document.getElementById("ns-name").textContent = ns;
  document.title = `lacewing · ${ns}`;
}
async function start() {
  if (ns) {
    await loadHistory();
  }
  await poll();
  setInterval(poll, POLL_MS);
}
windowSelect.addEventListener("change", async () => {
  history.clear();
  if (ns) await loadHistory();
  poll();
});
start();
