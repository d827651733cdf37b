// lacewing dashboard: polls the dashboard server's JSON every 2 s and draws tables, SVG charts
// (the last 5 minutes from Prometheus' range queries, then one point per poll) and the edges.
// The live tap reads api/tap's JSON lines as they come (newest row first) until its bounds
// end it or Stop aborts the fetch (the server then closes the taps). ?tap=NAME starts one.
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
  if (!link) fillTapChoices(rows.map(r => r.name));
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


const TAP_ROWS = 200; // rows kept on the page
let tapAbort = null;

function fillTapChoices(names) {
  const select = document.getElementById("tap-resource");
  const keep = select.value || params.get("tap") || "";
  const all = [...new Set([...names, ...(keep ? [keep] : [])])].sort();
  if (all.join() === [...select.options].map(o => o.value).join()) return;
  select.replaceChildren(...all.map(n => el("option", { value: n }, n)));
  if (keep) select.value = keep;
}

function endCell(tr, field, end) {
  end = end || {};
  const td = el("td", { "data-field": field, "data-identity": end.identity || "" });
  const short = end.identity ? end.identity.split(".serviceaccount.")[0] : "";
  td.textContent = end.pod || end.deployment || short || end.ip || "-";
  td.appendChild(el("small", {}, end.identity || "(no identity)"));
  tr.appendChild(td);
}

function tapRow(e) {
  const tr = el("tr", { "data-path": e.path, "data-pod": e.pod || "" });
  const when = e.ended ? new Date(e.ended * 1000).toLocaleTimeString() : "-";
  cell(tr, "time", when);
  cell(tr, "proxy", e.direction === "inbound" ? "in" : "out");
  cell(tr, "method", e.method);
  cell(tr, "authority", e.authority);
  cell(tr, "path", e.path);
  const bad = e.status >= 500 || (e.grpc_status !== undefined && e.grpc_status !== 0);
  cell(tr, "status", String(e.status) + (e.grpc_status !== undefined ? ` grpc ${e.grpc_status}` : ""), bad ? "bad" : "good");
  cell(tr, "latency", ms(e.latency_ms));
  endCell(tr, "src", e.source);
  endCell(tr, "dst", e.destination);
  cell(tr, "tls", e.tls || "-");
  return tr;
}

function tapStatus(text, state) {
  const status = document.getElementById("tap-status");
  status.textContent = text;
  status.dataset.state = state;
  status.className = state === "error" ? "error" : "";
  document.getElementById("tap-toggle").textContent = state === "running" || state === "opening" ? "Stop" : "Start";
}

function tapMessage(msg, tbody, counts) {
  if (msg.error) { tapStatus(msg.error, "error"); return; }
  if (msg.tapping) {
    tapStatus(`tapping ${msg.tapping.length} pod(s)` + (msg.through ? ` through ${msg.through}` : ""), "running");
    return;
  }
  if (msg.end) {
    tapStatus(`ended (${msg.end === "ended" ? "the streams ended" : msg.end + " reached"}): ${msg.events} events`, "ended");
    return;
  }
  counts.n += 1;
  tbody.insertBefore(tapRow(msg), tbody.firstChild);
  while (tbody.rows.length > TAP_ROWS) tbody.deleteRow(tbody.rows.length - 1);
  document.getElementById("tap").dataset.events = String(counts.n);
}

async function startTap() {
  const name = document.getElementById("tap-resource").value;
  if (!name) { tapStatus("no workload to tap", "error"); return; }
  const q = new URLSearchParams({ namespace: ns, resource: "deploy/" + name,
                                  duration: document.getElementById("tap-duration").value, max_events: "1000" });
  const prefix = document.getElementById("tap-path").value.trim();
  if (prefix) q.set("path", prefix);
  const tbody = document.querySelector("#tap tbody");
  tbody.replaceChildren();
  const counts = { n: 0 };
  const abort = new AbortController();
  tapAbort = abort;
  tapStatus(`opening a tap on deploy/${name}…`, "opening");
  try {
    const r = await fetch(`api/tap?${q}`, { cache: "no-store", signal: abort.signal });
    if (!r.ok) {
      const data = await r.json().catch(() => ({}));
      throw new Error(data.error || r.statusText);
    }
    const reader = r.body.getReader(), decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      const lines = buf.split("\n");
      buf = lines.pop();
      for (const line of lines) if (line.trim()) tapMessage(JSON.parse(line), tbody, counts);
    }
    if (document.getElementById("tap-status").dataset.state !== "ended" &&
        document.getElementById("tap-status").dataset.state !== "error") tapStatus(`stopped: ${counts.n} events`, "ended");
  } catch (err) {
    if (abort.signal.aborted) tapStatus(`stopped: ${counts.n} events`, "stopped");
    else tapStatus(String(err.message || err), "error");
  } finally {
    if (tapAbort === abort) tapAbort = null;
  }
}

document.getElementById("tap-form").addEventListener("submit", ev => {
  ev.preventDefault();
  if (tapAbort) tapAbort.abort();
  else startTap();
});

if (ns) {
  document.getElementById("namespaces-view").hidden = true;
  document.getElementById("namespace-view").hidden = false;
  document.getElementById("ns-name").textContent = ns;
  document.title = `lacewing · ${ns}`;
}
async function start() {
  if (ns) {
    if (params.get("tap")) {
      fillTapChoices([]);
      if (params.get("tap_path")) document.getElementById("tap-path").value = params.get("tap_path");
      if (params.get("tap_duration")) document.getElementById("tap-duration").value = params.get("tap_duration");
      startTap();
    }
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
