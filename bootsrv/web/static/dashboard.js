// The bootsrv dashboard: tables from /api/overview, charts (uPlot) from /api/history,
// and the same operations the CLI runs (POST /api/<operation>). No build step.
"use strict";

const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get("token")) { localStorage.setItem("bootsrv-token", hash.get("token")); history.replaceState(null, "", location.pathname); }
let token = localStorage.getItem("bootsrv-token");
if (!token) { token = prompt("bootsrv dashboard token ([web] token in the configuration)") || ""; localStorage.setItem("bootsrv-token", token); }

const $ = id => document.getElementById(id);
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const when = t => t ? new Date(t * 1000).toLocaleString() : "–";
const size = n => { if (n == null) return "–"; const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; while (Math.abs(n) >= 1024 && i < 4) { n /= 1024; i++; } return (i ? n.toFixed(1) : Math.round(n)) + " " + u[i]; };
const rate = n => n == null ? "–" : size(n) + "/s";
const num = n => n == null ? "–" : n >= 100 ? Math.round(n).toString() : (+n.toFixed(2)).toString();
const ms = n => n == null ? "–" : num(n) + " ms";
const seconds = s => s == null ? "–" : s >= 3600 ? (s / 3600).toFixed(1) + " h" : s >= 60 ? Math.round(s / 60) + " min" : (s < 10 ? +s.toFixed(1) : Math.round(s)) + " s";

async function api(path, body) {
  const response = await fetch(path, {method: body ? "POST" : "GET", headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"}, body: body ? JSON.stringify(body) : undefined});
  const reply = await response.json();
  if (!reply.ok) throw new Error(reply.error || response.statusText);
  return reply;
}
const op = async (name, args) => (await api("/api/" + name, args || {})).result;

function say(text, error) { const m = $("message"); m.textContent = text; m.className = error ? "error" : ""; }

async function act(label, name, args) {
  say(label + "…");
  try {
    const result = await op(name, args);
    const detail = result && result.path ? " (" + result.path + ")" : result && result.sent ? " (" + result.sent.map(s => s.mac + " → " + s.to).join(", ") + ")" : "";
    say(label + ": done" + detail);
  } catch (e) { say(label + ": " + e.message, true); }
  refresh();
}

function table(id, headers, rows, empty) {
  const head = "<tr>" + headers.map(h => Array.isArray(h) ? '<th class="' + h[1] + '">' + h[0] + "</th>" : "<th>" + h + "</th>").join("") + "</tr>";
  $(id).innerHTML = head + (rows.length ? rows.join("") : '<tr><td class="empty" colspan="' + headers.length + '">' + empty + "</td></tr>");
}

// ---- charts -------------------------------------------------------------------------------

const COLORS = ["#3b7dd8", "#d8743b", "#2e9e5b", "#9b59b6"];
// Each chart: where its series come from (the totals or the chosen client) and how values read.
const CHARTS = [
  {id: "io", title: "Throughput", source: "total", series: [["read", "read"], ["write", "write"]], fmt: rate},
  {id: "iops", title: "IOPS", source: "total", series: [["iops", "commands/s"]], fmt: num},
  {id: "latency", title: "Latency (mean)", source: "total", series: [["latency", "latency"]], fmt: ms},
  {id: "sessions", title: "iSCSI sessions", source: "total", series: [["sessions", "sessions"]], fmt: num},
  {id: "boot", title: "DHCP and TFTP", source: "total", series: [["dhcp", "DHCP requests/s"], ["tftp", "TFTP files/s"]], fmt: num},
  {id: "space", title: "Disk and snapshot space", source: "total", series: [["disk_used", "disks"], ["snapshot_bytes", "snapshots"]], fmt: size},
  {id: "client-io", title: "Throughput", source: "client", series: [["read", "read"], ["write", "write"]], fmt: rate},
  {id: "client-iops", title: "IOPS", source: "client", series: [["iops", "commands/s"]], fmt: num},
  {id: "client-latency", title: "Latency (mean)", source: "client", series: [["latency", "latency"]], fmt: ms},
];
const charts = {};  // id -> uPlot instance (the test reads their data)
window.bootsrvCharts = charts;
let hist = {t: [], total: {}, clients: {}, interval: 10, span: 3600};
let chartClient = localStorage.getItem("bootsrv-chart-client") || "";

function makeCharts() {
  for (const spec of CHARTS) {
    const box = document.createElement("div");
    box.className = "chart"; box.id = "chart-" + spec.id; box.dataset.points = "0";
    box.innerHTML = "<h3>" + esc(spec.title) + "</h3>";
    $(spec.source === "total" ? "total-charts" : "client-charts").appendChild(box);
    const fmt = spec.fmt;
    charts[spec.id] = new uPlot({
      width: Math.max(box.clientWidth, 200), height: 170,
      scales: {x: {time: true}, y: {range: (u, lo, hi) => [0, hi > 0 ? hi * 1.1 : 1]}},
      series: [{}, ...spec.series.map(([, label], i) => ({label, stroke: COLORS[i], width: 1.5, value: (u, v) => fmt(v), spanGaps: false}))],
      axes: [{}, {size: 70, values: (u, splits) => splits.map(v => fmt(v))}],
      legend: {live: true},
    }, [[]].concat(spec.series.map(() => [])), box);
  }
  new ResizeObserver(() => { for (const spec of CHARTS) { const box = $("chart-" + spec.id); charts[spec.id].setSize({width: Math.max(box.clientWidth, 200), height: 170}); } })
    .observe($("total-charts"));
}

function drawCharts() {
  for (const spec of CHARTS) {
    const source = spec.source === "total" ? hist.total : hist.clients[chartClient] || {};
    const data = [hist.t, ...spec.series.map(([key]) => source[key] || hist.t.map(() => null))];
    charts[spec.id].setData(data);
    $("chart-" + spec.id).dataset.points = String(data[1].filter(v => v != null).length);
  }
  $("history-note").textContent = hist.t.length ? "last " + seconds(hist.t[hist.t.length - 1] - hist.t[0]) + ", a point every " + seconds(hist.interval) : "collecting…";
}

// Appends a `history` reply (the samples after the newest one we have) and keeps the last hour.
function mergeHistory(reply) {
  hist.interval = reply.interval; hist.span = reply.span;
  const before = hist.t.length, added = reply.t.length;
  if (!added) return false;
  hist.t.push(...reply.t);
  for (const [key, values] of Object.entries(reply.total)) (hist.total[key] ||= Array(before).fill(null)).push(...values);
  for (const name of new Set([...Object.keys(hist.clients), ...Object.keys(reply.clients)])) {
    const mine = hist.clients[name] ||= {}, theirs = reply.clients[name] || {};
    for (const key of ["read", "write", "iops", "latency", "disk_used"]) (mine[key] ||= Array(before).fill(null)).push(...(theirs[key] || Array(added).fill(null)));
  }
  const extra = hist.t.length - Math.round(hist.span / hist.interval);
  if (extra > 0) {
    hist.t.splice(0, extra);
    for (const values of Object.values(hist.total)) values.splice(0, extra);
    for (const client of Object.values(hist.clients)) for (const values of Object.values(client)) values.splice(0, extra);
  }
  return true;
}

async function pollHistory() {
  try {
    const since = hist.t.length ? hist.t[hist.t.length - 1] : undefined;
    if (mergeHistory(await op("history", since === undefined ? {} : {since}))) drawCharts();
  } catch (e) { $("history-note").textContent = "no history: " + e.message; }
  setTimeout(pollHistory, 1000 * Math.min(5, Math.max(1, hist.interval)));
}

// ---- the overview ---------------------------------------------------------------------------

const version = c => c.editing ? "(editing)" : c.version == null ? "" : "v" + c.version + (c.behind ? " (current v" + c.current + ")" : "");

function clientActions(c, images) {
  const n = esc(c.name), image = images[c.image] || {};
  const b = (action, label, cls) => '<button data-action="' + action + '" data-client="' + n + '" data-testid="' + action + "-" + n + '"' + (cls ? ' class="' + cls + '"' : "") + ">" + label + "</button>";
  const maintenance = c.editing ? b("commit", "End maintenance: commit") + " " + b("discard", "Discard edit", "danger")
    : image.edit ? "" : b("edit", "Start maintenance");
  return '<button data-testid="snapshot-' + n + '" data-disk="' + n + '">Snapshot</button> ' + b("wake", "Wake") + " " +
    b("reset", "Reset disk", "danger") + " " + maintenance + " " + b("remove", "Remove", "danger");
}

let clientsByName = {};

function renderOverview(o) {
  const s = o.status;
  $("summary").textContent = "portals " + s.portals.join(", ") + " · " + s.sessions + " session(s) · up " + (s.uptime / 3600).toFixed(1) + " h";
  const images = Object.fromEntries(s.images.map(i => [i.name, i]));
  clientsByName = Object.fromEntries(o.clients.map(c => [c.name, c]));
  table("clients", ["Client", "State", "IP", ["MAC", "wide"], ["Last boot", "wide"], "Disk used", "Image", "Actions"], o.clients.map(c =>
    '<tr data-client="' + esc(c.name) + '"><td><a href="#" data-chart-client="' + esc(c.name) + '">' + esc(c.name) + '</a></td><td class="' + (c.online ? "on" : "off") + '">' + (c.online ? "online" : "offline") +
    "</td><td>" + esc(c.ip || "–") + '</td><td class="wide">' + esc(c.mac) + '</td><td class="wide">' + when(c.last_boot) + "</td><td>" + size(c.disk_bytes) +
    '</td><td><a href="#images/' + encodeURIComponent(c.image) + '">' + esc(c.image) + "</a> " + version(c) + '</td><td class="actions">' + clientActions(c, images) + "</td></tr>"), "no clients configured");
  const select = $("chart-client"), names = o.clients.map(c => c.name);
  if (!names.includes(chartClient)) chartClient = names[0] || "";
  if (select.options.length !== names.length || [...select.options].some((opt, i) => opt.value !== names[i])) {
    select.innerHTML = names.map(name => "<option>" + esc(name) + "</option>").join("");
  }
  select.value = chartClient;
  const clientNames = new Set(names);
  table("disks", ["Disk", "Size", "Sessions", "Snapshots", "Held by snapshots", ""], s.disks.filter(d => !clientNames.has(d.name)).map(d =>
    "<tr><td>" + esc(d.name) + "</td><td>" + size(d.size) + "</td><td>" + d.sessions + "</td><td>" + d.snapshots + "</td><td>" + size(d.snapshot_bytes) +
    '</td><td><button data-testid="snapshot-' + esc(d.name) + '" data-disk="' + esc(d.name) + '">Take snapshot</button></td></tr>'), "no standalone disks");
  table("sessions", ["TSIH", "Initiator", "Target"], o.sessions.map(x =>
    "<tr><td>" + x.tsih + "</td><td>" + esc(x.initiator) + "</td><td>" + esc(x.target) + "</td></tr>"), "no sessions");
  table("snapshots", ["ID", "Disk", "Taken", ["Label", "wide"], ["Origin", "wide"], "Data", ["Mounted", "wide"], ["Exports", "wide"], ""], o.snapshots.slice().reverse().map(x =>
    '<tr data-snapshot="' + x.id + '"><td>' + x.id + "</td><td>" + esc(x.disk) + "</td><td>" + when(x.created) + '</td><td class="wide">' + esc(x.label) + '</td><td class="wide">' + esc(x.origin) +
    "</td><td>" + size(x.unique_bytes) + '</td><td class="wide">' + [x.mount_iscsi ? "iSCSI" : "", x.mount_local ? esc(x.mount_local) : ""].filter(Boolean).join(", ") +
    '</td><td class="wide">' + x.exports.length + '</td><td class="actions"><button data-export="' + x.id + '">Export</button> <button data-rollback="' + x.id + '" data-disk="' + esc(x.disk) +
    '" class="danger">Roll back</button> <button data-delete="' + x.id + '" class="danger">Delete</button></td></tr>'), "no snapshots yet");
  // A schedule that has not run yet is not a failure: neutral, not red.
  table("schedules", ["Schedule", "Cron", ["Disks", "wide"], ["Export", "wide"], "Last run", "Result", "Next run", ""], s.schedules.map(x => {
    const ran = !!x.last_run, failed = ran && x.last_result && x.last_result !== "ok" && x.last_result !== "running";
    return "<tr><td>" + esc(x.name) + "</td><td>" + esc(x.cron) + '</td><td class="wide">' + esc(x.disks.join(" ")) + '</td><td class="wide">' + esc(x.export) + "</td><td" + (ran ? "" : ' class="muted"') + ">" + (ran ? when(x.last_run) : "not run yet") +
      '</td><td class="' + (failed ? "bad" : ran ? "" : "muted") + '">' + esc(ran ? x.last_result || "–" : "–") + "</td><td>" + when(x.next_run) +
      '</td><td><button data-run="' + esc(x.name) + '">Run now</button></td></tr>';
  }), "no schedules");
  renderImages(s.images);
}

function renderImages(images) {
  table("images", ["Image", "Size", "Current version", "Versions", "Maintenance", "Clients", "Not on the current version"], images.map(i =>
    '<tr><td><a href="#images/' + encodeURIComponent(i.name) + '">' + esc(i.name) + "</a></td><td>" + size(i.size) + "</td><td>" + i.current + "</td><td>" + i.versions + "</td><td>" +
    (i.edit ? esc(i.edit.client) + " over v" + i.edit.base + (i.edit.booted ? " (booted into it)" : " (from its next power-on)") : "–") +
    "</td><td>" + esc(i.clients.join(", ") || "–") + '</td><td class="' + (i.behind.length ? "warn" : "") + '">' + esc(i.behind.join(", ") || "–") + "</td></tr>"), "no images");
}

// ---- the image, task and log pages ------------------------------------------------------------

async function renderImage(name) {
  $("image-name").textContent = name;
  const [row] = await op("image.versions", {image: name});
  if (!row) throw new Error("no image named " + name);
  const edit = row.edit;
  $("image-facts").innerHTML = "<p>Current version: v" + row.current + ". " + (edit ? "Maintenance: " + esc(edit.client) + " edits a layer over v" + edit.base +
    (edit.booted ? " (booted into it). " : " (from its next power-on). ") + '<button data-action="commit" data-client="' + esc(edit.client) + '">Commit as a new version</button> ' +
    '<button data-action="discard" data-client="' + esc(edit.client) + '" class="danger">Discard the edit</button>' : "No maintenance under way.") + "</p>";
  table("image-versions", ["Version", "Label", "Made", "Own data", ["Made from", "wide"], "Clients on it"], row.versions.slice().reverse().map(v =>
    "<tr><td>v" + v.number + (v.current ? " (current)" : "") + "</td><td>" + esc(v.label || "–") + "</td><td>" + when(v.created) + "</td><td>" + size(v.bytes) +
    '</td><td class="wide">' + (v.parent ? "v" + v.parent : "–") + "</td><td>" + esc(v.clients.join(", ") || "–") + "</td></tr>"), "no versions recorded yet (the first maintenance records version 1)");
  $("image-elsewhere").textContent = row.clients_elsewhere.length ? "On no recorded version (disk made over another base): " + row.clients_elsewhere.join(", ") : "";
}

const progress = t => {
  if (t.total == null || !t.total) return esc(t.unit === "bytes" ? size(t.done) : t.done);
  const share = Math.min(1, t.done / t.total);
  return '<span class="progress"><i style="width:' + (share * 100).toFixed(1) + '%"></i></span> ' + (share * 100).toFixed(0) + "%";
};
const taskRate = t => t.rate == null ? "–" : t.unit === "bytes" ? rate(t.rate) : num(t.rate) + "/s";
const stateClass = s => s === "failed" ? "bad" : s === "done" ? "on" : "";

async function renderTasks() {
  const {tasks} = await op("task.list");
  table("tasks", ["Task", ["Kind", "wide"], "State", "Progress", ["Rate", "wide"], "Time left", "Started", ["Ended", "wide"]], tasks.map(t =>
    '<tr data-task="' + esc(t.id) + '"><td><a href="#tasks/' + encodeURIComponent(t.id) + '">' + esc(t.title) + '</a></td><td class="wide">' + esc(t.kind) + '</td><td class="' + stateClass(t.state) + '">' + esc(t.state) +
    "</td><td>" + progress(t) + '</td><td class="wide">' + taskRate(t) + "</td><td>" + (t.state === "running" ? seconds(t.eta) : "–") + "</td><td>" + when(t.started) + '</td><td class="wide">' + when(t.ended) + "</td></tr>"), "no tasks yet");
}

async function renderTask(id) {
  const t = await op("task.show", {id});
  $("task-title").textContent = t.title;
  const facts = [esc(t.kind), '<span class="' + stateClass(t.state) + '">' + esc(t.state) + "</span>", progress(t),
    t.rate == null ? "" : taskRate(t), t.state === "running" && t.eta != null ? seconds(t.eta) + " left" : "",
    "started " + when(t.started), t.ended ? "ended " + when(t.ended) : ""].filter(Boolean);
  $("task-facts").innerHTML = "<p>" + facts.join(" · ") + (t.error ? '<br><span class="bad">' + esc(t.error) + "</span>" : "") + "</p>";
  table("task-log", ["Time", "Level", "Message"], (t.log || []).map(line =>
    "<tr><td>" + when(line.time) + '</td><td class="level-' + esc(line.level) + '">' + esc(line.level) + '</td><td class="message">' + esc(line.message) + "</td></tr>"), "no log lines");
}

let logLines = [];
const LOG_KEPT = 2000;
const RANK = {DEBUG: 0, INFO: 1, WARNING: 2, ERROR: 3, CRITICAL: 4};

async function renderLog(force) {
  const after = logLines.length ? logLines[logLines.length - 1].seq : undefined;
  let {lines, last} = await op("log.tail", after === undefined ? {limit: 500} : {limit: 500, after});
  if (after !== undefined && last < after) {  // the server restarted: its lines are numbered from 1 again
    logLines = [];
    ({lines} = await op("log.tail", {limit: 500}));
    force = true;
  }
  if (!lines.length && !force && logLines.length) return;  // the table already shows them
  logLines = logLines.concat(lines).slice(-LOG_KEPT);
  const floor = RANK[$("log-level").value] ?? 0;
  table("log", ["Time", "Level", ["Logger", "wide"], "Message"], logLines.filter(l => (RANK[l.level] ?? 1) >= floor).reverse().map(l =>
    '<tr data-seq="' + l.seq + '"><td>' + new Date(l.time * 1000).toLocaleTimeString() + '</td><td class="level-' + esc(l.level) + '">' + esc(l.level) + '</td><td class="wide">' + esc(l.logger) +
    '</td><td class="message">' + esc(l.message) + "</td></tr>"), "no log lines yet");
}

// ---- navigation and actions ---------------------------------------------------------------------

function currentView() {
  const [page, ...rest] = location.hash.slice(1).split("/");
  const arg = decodeURIComponent(rest.join("/"));
  if (page === "images") return arg ? ["image", arg] : ["images", ""];
  if (page === "tasks") return arg ? ["task", arg] : ["tasks", ""];
  if (page === "logs") return ["logs", ""];
  return ["overview", ""];
}

async function refresh() {
  const [view, arg] = currentView();
  for (const el of document.querySelectorAll("[data-view]")) el.hidden = el.dataset.view !== view;
  const section = {image: "images", task: "tasks"}[view] || view;
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("current", a.dataset.nav === section);
  try {
    if (view === "overview" || view === "images") renderOverview(await api("/api/overview"));
    else if (view === "image") await renderImage(arg);
    else if (view === "tasks") await renderTasks();
    else if (view === "task") await renderTask(arg);
    else if (view === "logs") await renderLog();
  } catch (e) {
    if (view === "overview") $("summary").textContent = "not connected: " + e.message;
    else say(e.message, true);
  }
}

function clientAction(action, name) {
  const c = clientsByName[name] || {name, online: false, origin: "configured"};
  if (action === "wake") return act("Wake " + name, "client.wake", {names: [name]});
  if (action === "reset" && confirm("Reset " + name + "'s disk? Everything written to it since it was made is discarded; it starts again from its image's current version." +
    (c.online ? " It is online: its sessions are dropped." : ""))) return act("Reset of " + name, "client.reset", {name, force: !!c.online});
  if (action === "edit" && confirm("Start maintenance of image " + c.image + " on " + name + "? From its next power-on it boots a layer over the image; commit makes that the new version for every client.")) return act("Maintenance of " + c.image + " on " + name, "image.edit", {image: c.image, client: name});
  const image = c.editing || c.image, force = !!c.online;  // an online maintenance client is disconnected first
  const online = force ? " " + name + " is online: its sessions are dropped." : "";
  if (action === "commit") {
    const label = prompt("Commit the edit of image " + image + " as a new version for every client." + online + " Label (optional):", "");
    if (label !== null) return act("Commit of " + image, "image.commit", {image, label, force});
  }
  if (action === "discard" && confirm("Discard the edit of image " + image + "? What " + name + " changed in maintenance is lost." + online)) return act("Discard of the edit of " + image, "image.discard", {image, force});
  if (action === "remove" && confirm("Remove client " + name + "? It is no longer served (its disk file and snapshots stay).")) return act("Remove " + name, c.origin === "adopted" ? "client.forget" : "client.remove", {name});
}

document.addEventListener("click", e => {
  const link = e.target.closest("a[data-chart-client]");
  if (link) { e.preventDefault(); chartClient = link.dataset.chartClient; localStorage.setItem("bootsrv-chart-client", chartClient); $("chart-client").value = chartClient; drawCharts(); $("client-charts").scrollIntoView({behavior: "smooth"}); return; }
  const b = e.target.closest("button"); if (!b) return;
  if (b.dataset.action) clientAction(b.dataset.action, b.dataset.client);
  else if (b.dataset.disk && b.dataset.testid) act("Snapshot of " + b.dataset.disk, "snapshot.create", {disk: b.dataset.disk});
  else if (b.dataset.export) act("Export of snapshot " + b.dataset.export, "snapshot.export", {id: +b.dataset.export});
  else if (b.dataset.rollback && confirm("Roll " + b.dataset.disk + " back to snapshot " + b.dataset.rollback + "? What it holds since then is discarded and its client is disconnected."))
    act("Rollback to snapshot " + b.dataset.rollback, "snapshot.rollback", {id: +b.dataset.rollback, force: true});
  else if (b.dataset.delete && confirm("Delete snapshot " + b.dataset.delete + "?")) act("Delete of snapshot " + b.dataset.delete, "snapshot.delete", {id: +b.dataset.delete});
  else if (b.dataset.run) act("Schedule " + b.dataset.run, "schedule.run", {name: b.dataset.run});
});
$("chart-client").addEventListener("change", e => { chartClient = e.target.value; localStorage.setItem("bootsrv-chart-client", chartClient); drawCharts(); });
$("log-level").addEventListener("change", () => renderLog(true));
window.addEventListener("hashchange", () => { say(""); refresh(); });

// Tasks and the log move fast while one watches them: those pages are read more often.
function tick() { refresh().finally(() => setTimeout(tick, ["tasks", "task", "logs"].includes(currentView()[0]) ? 2000 : 5000)); }

makeCharts();
tick();
pollHistory();
