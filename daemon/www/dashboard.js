// dashboard.js: the dashboard's behaviour (index.html, served by gcmond's
// daemon/http.c). Reads /api/{summary,processes,recommendations,requests} every
// REFRESH_MS and the live stream /api/events (Server-Sent Events: the
// watch stream's objects, doc/control.md). Draws on <canvas> by hand.
// Never writes markup from a peer: every agent string (argv, run, rule
// messages) goes in through textContent. Sends nothing but GETs.
"use strict";

const REFRESH_MS = 2000;
const MAX_POINTS = 20000;          // pauses kept for the timeline
const SHARE_SAMPLES = 300;         // GC share points kept per process
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
  "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
const GEN_RADIUS = [2, 3.5, 5];
const WINDOW_S = 60;               // the timeline's span

const run = new URLSearchParams(location.search).get("run");
const q = run ? "?run=" + encodeURIComponent(run) : "";
const points = [];                 // {t, ms, pid, gen}
const genLabels = [];              // gen -> gcmond's label (its GC model)

// " (young+incremental)": a generation's label where it says more than
// its number (gcmond's, by the process's collector model).
function genLabel(label) {
  return label && !label.startsWith("generation ") ? ` (${label})` : "";
}
const shares = new Map();          // pid -> [{t, pct}]
const colours = new Map();         // pid -> colour
const alerts = [];
let lost = 0;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function colour(pid) {
  if (!colours.has(pid)) colours.set(pid, PALETTE[colours.size % PALETTE.length]);
  return colours.get(pid);
}

function mib(b) { return b === null || b === undefined ? "" : (b / 1048576).toFixed(1); }
function num(x, d) { return x === null || x === undefined ? "" : Number(x).toFixed(d); }

async function getJSON(path) {
  const r = await fetch(path + q, { cache: "no-store" });
  return r.json();
}

// The container (or pod) column, shown when a process runs in one, as
// gcmonctl processes does: the pod's "namespace/pod", else the container
// id's first 12 characters.
function placeOf(p, kind) {
  if (kind === "pod" && p.pod) return (p.namespace ? p.namespace + "/" : "") + p.pod;
  return p.container ? String(p.container).slice(0, 12) : "-";
}

function renderProcesses(procs) {
  const body = document.querySelector("#processes tbody");
  const rows = [];
  const kind = procs.some((p) => p.pod) ? "pod" :
    procs.some((p) => p.container) ? "container" : null;
  const head = document.getElementById("place");
  head.hidden = kind === null;
  head.textContent = kind || "container";
  for (const p of procs) {
    const tr = el("tr");
    tr.dataset.pid = p.pid;
    tr.style.borderLeft = "4px solid " + colour(p.pid);
    const argv = Array.isArray(p.argv) ? p.argv.join(" ") : "";
    const cells = [[p.pid], [p.role, "text"], [p.state, "text"], [argv, "text"],
      [p.collections], [num(p.gc_wall_pct, 2)], [num(p.max_pause_ms, 2)],
      [num(p.p99_ms, 2)], [mib(p.rss_bytes)], [mib(p.pss_bytes)],
      [mib(p.unshared_by_gc_bytes)]];
    if (kind !== null) cells.splice(1, 0, [placeOf(p, kind), "text"]);
    for (const [v, cls] of cells) tr.appendChild(el("td", v, cls));
    tr.children[kind !== null ? 4 : 3].title = argv;
    rows.push(tr);
    const s = shares.get(p.pid) || [];
    s.push({ t: Date.now() / 1000, pct: p.gc_wall_pct || 0 });
    if (s.length > SHARE_SAMPLES) s.shift();
    shares.set(p.pid, s);
  }
  body.replaceChildren(...rows);
}

function renderSummary(s) {
  const t = document.getElementById("totals");
  t.textContent = `${s.processes} processes (${s.live} live), ` +
    `${s.collections} collections, GC ${num(s.gc_wall_pct, 2)} % of wall, ` +
    `max pause ${num(s.max_pause_ms, 2)} ms, p99 ` +
    `${num(s.percentiles_ms && s.percentiles_ms.p99, 2)} ms, ` +
    `${s.alerts} alerts` + (lost ? `, ${lost} events not received` : "");
}

function renderRecommendations(recs) {
  const ul = document.getElementById("recommendations");
  const items = recs.map(r => {
    const li = el("li", null, r.severity);
    li.appendChild(el("b", `${r.severity} ${r.rule}` + (r.pid ? ` (pid ${r.pid})` : "") + ": "));
    li.appendChild(document.createTextNode(r.message));
    if (Array.isArray(r.actions) && r.actions.length) {
      const sub = el("ul");
      for (const a of r.actions) sub.appendChild(el("li", a));
      li.appendChild(sub);
    }
    return li;
  });
  if (!items.length) items.push(el("li", "none"));
  ul.replaceChildren(...items);
}

// The figures of one row of the requests panel: requests, delayed,
// delayed share, p99 as served, without GC, and what GC adds.
function requestCells(f) {
  return [[f.requests], [f.delayed], [num(100 * f.delayed_share, 1)],
    [num(f.p99_ms, 2)], [num(f.p99_without_gc_ms, 2)], [num(f.gc_adds_p99_ms, 2)]];
}

function requestRow(head, f) {
  const tr = el("tr");
  for (const [v, cls] of head.concat(requestCells(f))) tr.appendChild(el("td", v, cls));
  return tr;
}

// The requests panel, shown only when the scope recorded requests: the
// scope's total, a row per process (with its service, from the process
// table's answer) and per route.
function renderRequests(r, procs) {
  const sec = document.getElementById("requests");
  sec.hidden = !(r && r.requests > 0);
  if (sec.hidden) return;
  const service = new Map((procs || []).map(p => [p.pid, p.service_label]));
  document.getElementById("requests-total").textContent =
    `${r.requests} requests in ${r.processes} processes, ${r.delayed} delayed ` +
    `by GC (${num(100 * r.delayed_share, 1)} %), p99 ${num(r.p99_ms, 2)} ms, ` +
    `${num(r.p99_without_gc_ms, 2)} ms without GC: GC adds ` +
    `${num(r.gc_adds_p99_ms, 2)} ms` +
    (r.p99_without_full_ms === undefined ? "" :
      `, the collections that trace the old objects ` +
      `${num(r.full_adds_p99_ms, 2)} ms of it`);
  const rows = [requestRow([["all", "text"], [""], ["", "text"]], r)];
  for (const w of r.workers || []) {
    const tr = requestRow([[service.get(w.pid) || "", "text"], [w.pid], [w.role, "text"]], w);
    tr.dataset.pid = w.pid;
    tr.style.borderLeft = "4px solid " + colour(w.pid);
    rows.push(tr);
  }
  document.querySelector("#requests-procs tbody").replaceChildren(...rows);
  document.querySelector("#requests-routes tbody").replaceChildren(
    ...(r.routes || []).map(x => requestRow([[x.route, "text"]], x)));
}

function axes(ctx, w, h, pad, ymax, ylabel) {
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#999";
  ctx.fillStyle = "#555";
  ctx.font = "11px sans-serif";
  ctx.beginPath();
  ctx.moveTo(pad, 5); ctx.lineTo(pad, h - 20); ctx.lineTo(w - 5, h - 20);
  ctx.stroke();
  ctx.fillText(ylabel + " " + ymax.toPrecision(3), 2, 12);
}

function drawTimeline() {
  const c = document.getElementById("timeline"), ctx = c.getContext("2d");
  const w = c.width, h = c.height, pad = 40;
  const now = Date.now() / 1000;
  // The last minute, or less while the page is younger than that.
  const span = points.length ?
    Math.min(WINDOW_S, Math.max(10, Math.ceil(now - points[0].t + 2))) : WINDOW_S;
  const t0 = now - span;
  const shown = points.filter(p => p.t >= t0);
  const ymax = Math.max(1, ...shown.map(p => p.ms));
  axes(ctx, w, h, pad, ymax, "ms");
  ctx.fillText(`${span} s ago`, pad, h - 5);
  ctx.fillText("now", w - 30, h - 5);
  for (const p of shown) {
    const x = pad + (p.t - t0) / Math.max(1e-3, now - t0) * (w - pad - 10);
    const y = h - 20 - p.ms / ymax * (h - 30);
    ctx.fillStyle = colour(p.pid);
    ctx.beginPath();
    ctx.arc(x, y, GEN_RADIUS[Math.min(p.gen, 2)], 0, 2 * Math.PI);
    ctx.fill();
  }
  document.getElementById("timeline-count").textContent =
    `${points.length} pauses` + (lost ? ` (${lost} not received: this page fell behind)` : "");
  c.dataset.points = points.length;
  const legend = document.getElementById("legend");
  const items = [...colours.entries()].map(([pid, col]) => {
    const s = el("span", `\u25cf pid ${pid}`);
    s.style.color = col;
    return s;
  });
  items.push(el("span", "dot size: generation " +
    [0, 1, 2].map(g => g + genLabel(genLabels[g])).join(" < ")));
  legend.replaceChildren(...items);
}

function drawHistogram() {
  const c = document.getElementById("histogram"), ctx = c.getContext("2d");
  const w = c.width, h = c.height, pad = 40;
  // Octave buckets from 1/64 ms up.
  const edges = [];
  for (let e = 1 / 64; e < 4096; e *= 2) edges.push(e);
  const counts = edges.map(() => 0);
  for (const p of points) {
    let i = edges.findIndex(e => p.ms <= e);
    if (i < 0) i = edges.length - 1;
    counts[i]++;
  }
  const ymax = Math.max(1, ...counts);
  axes(ctx, w, h, pad, ymax, "n");
  const bw = (w - pad - 10) / edges.length;
  ctx.fillStyle = "#1f77b4";
  counts.forEach((n, i) => {
    const bh = n / ymax * (h - 30);
    ctx.fillRect(pad + i * bw + 1, h - 20 - bh, bw - 2, bh);
  });
  ctx.fillStyle = "#555";
  for (let i = 0; i < edges.length; i += 3)
    ctx.fillText("\u2264" + (edges[i] < 1 ? edges[i].toPrecision(2) : edges[i]), pad + i * bw, h - 5);
}

function drawShare() {
  const c = document.getElementById("share"), ctx = c.getContext("2d");
  const w = c.width, h = c.height, pad = 40;
  let t0 = Infinity, t1 = -Infinity, ymax = 0.1;
  for (const s of shares.values()) for (const v of s) {
    t0 = Math.min(t0, v.t); t1 = Math.max(t1, v.t); ymax = Math.max(ymax, v.pct);
  }
  axes(ctx, w, h, pad, ymax, "%");
  c.dataset.samples = Math.max(0, ...[...shares.values()].map(v => v.length));
  if (!(t1 > t0)) return;
  for (const [pid, s] of shares) {
    ctx.strokeStyle = colour(pid);
    ctx.beginPath();
    s.forEach((v, i) => {
      const x = pad + (v.t - t0) / (t1 - t0) * (w - pad - 10);
      const y = h - 20 - v.pct / ymax * (h - 30);
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.stroke();
  }
}

function onEvent(msg) {
  let o;
  try { o = JSON.parse(msg.data); } catch (e) { return; }
  if (o.type === "event") {
    points.push({ t: o.time, ms: o.duration_ms, pid: o.pid, gen: o.gen });
    if (o.gen >= 0 && o.gen < 3 && typeof o.label === "string") genLabels[o.gen] = o.label;
    if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
  } else if (o.type === "alert") {
    alerts.unshift(o);
    alerts.length = Math.min(alerts.length, 20);
    document.getElementById("alerts").replaceChildren(...alerts.map(a =>
      el("li", `pid ${a.pid} gen ${a.gen}${genLabel(a.label)}: ${num(a.duration_ms, 2)} ms ` +
        `(threshold ${num(a.threshold_ms, 1)} ms)`, "warning")));
  } else if (o.type === "lost") {
    lost += o.events;
  }
}

async function refresh() {
  try {
    const [s, p, r, rq] = await Promise.all([getJSON("/api/summary"),
      getJSON("/api/processes"), getJSON("/api/recommendations"),
      getJSON("/api/requests")]);
    if (p.ok) renderProcesses(p.processes);
    if (s.ok) renderSummary(s.summary);
    if (r.ok) renderRecommendations(r.recommendations);
    renderRequests(rq.ok ? rq.requests : null, p.ok ? p.processes : null);
    document.getElementById("status").textContent = s.ok ? "live" : (s.error || "error");
  } catch (e) {
    document.getElementById("status").textContent = "gcmond unreachable";
  }
  drawTimeline(); drawHistogram(); drawShare();
}

const es = new EventSource("/api/events" + q);
es.onmessage = onEvent;
refresh();
setInterval(refresh, REFRESH_MS);
setInterval(() => { drawTimeline(); drawHistogram(); }, 500);
