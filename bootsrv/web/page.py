"""The dashboard: one page, no build step, no outside assets (the appliance is
often on a network with no internet). It reads /api/overview every few seconds
and calls the same operations the CLI does (POST /api/<operation>)."""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bootsrv</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 10px 20px; display: flex; gap: 20px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  header span { opacity: .8; }
  main { padding: 12px 20px; display: grid; gap: 16px; }
  section { background: #fff; border-radius: 6px; padding: 10px 14px; box-shadow: 0 1px 2px #0002; }
  h2 { font-size: 15px; margin: 4px 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e4e6eb; white-space: nowrap; }
  th { font-weight: 600; color: #555; }
  .on { color: #177d3c; font-weight: 600; } .off { color: #999; }
  .bad { color: #b3261e; font-weight: 600; } .warn { color: #8a5a00; }
  button { font: inherit; padding: 2px 10px; border: 1px solid #7a869a; border-radius: 4px; background: #fff; cursor: pointer; }
  button:hover { background: #eef1f6; }
  #message { min-height: 1.4em; }
  #message.error { color: #b3261e; }
  .empty { color: #999; }
</style>
</head>
<body>
<header><h1>bootsrv</h1><span id="summary">connecting…</span></header>
<main>
  <div id="message" role="status"></div>
  <section><h2>Clients</h2><table id="clients"></table></section>
  <section><h2>Disks</h2><table id="disks"></table></section>
  <section><h2>Images</h2><table id="images"></table></section>
  <section><h2>iSCSI sessions</h2><table id="sessions"></table></section>
  <section><h2>Snapshots</h2><table id="snapshots"></table></section>
  <section><h2>Schedules</h2><table id="schedules"></table></section>
</main>
<script>
"use strict";
const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get("token")) { localStorage.setItem("bootsrv-token", hash.get("token")); history.replaceState(null, "", location.pathname); }
let token = localStorage.getItem("bootsrv-token");
if (!token) { token = prompt("bootsrv dashboard token ([web] token in the configuration)") || ""; localStorage.setItem("bootsrv-token", token); }

const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const when = t => t ? new Date(t * 1000).toLocaleString() : "–";
const size = n => { const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; while (n >= 1024 && i < 4) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + " " + u[i]; };

async function api(path, body) {
  const response = await fetch(path, {method: body ? "POST" : "GET", headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"}, body: body ? JSON.stringify(body) : undefined});
  const reply = await response.json();
  if (!reply.ok) throw new Error(reply.error || response.statusText);
  return reply;
}

function say(text, error) { const m = document.getElementById("message"); m.textContent = text; m.className = error ? "error" : ""; }

async function act(label, op, args) {
  say(label + "…");
  try { const reply = await api("/api/" + op, args); say(label + ": done" + (reply.result && reply.result.path ? " (" + reply.result.path + ")" : "")); }
  catch (e) { say(label + ": " + e.message, true); }
  refresh();
}

function table(id, headers, rows, empty) {
  const head = "<tr>" + headers.map(h => "<th>" + h + "</th>").join("") + "</tr>";
  document.getElementById(id).innerHTML = head + (rows.length ? rows.join("") : '<tr><td class="empty" colspan="' + headers.length + '">' + empty + "</td></tr>");
}

// Which image version a client boots: "v2", "v1 (current v2)", or the edit it is the maintenance client of.
const version = c => c.editing ? "(editing)" : c.version == null ? "" : "v" + c.version + (c.behind ? " (current v" + c.current + ")" : "");

function render(o) {
  const s = o.status;
  document.getElementById("summary").textContent = "portals " + s.portals.join(", ") + " · " + s.sessions + " session(s) · up " + (s.uptime / 3600).toFixed(1) + " h";
  table("clients", ["Client", "State", "IP", "MAC", "Last boot", "Disk used", "Image", ""], o.clients.map(c =>
    "<tr><td>" + esc(c.name) + '</td><td class="' + (c.online ? "on" : "off") + '">' + (c.online ? "online" : "offline") + "</td><td>" + esc(c.ip || "–") +
    "</td><td>" + esc(c.mac) + "</td><td>" + when(c.last_boot) + "</td><td>" + size(c.disk_bytes) + "</td><td>" + esc(c.image) + " " + version(c) +
    '</td><td><button data-testid="snapshot-' + esc(c.name) + '" data-disk="' + esc(c.name) + '">Take snapshot</button></td></tr>'), "no clients configured");
  const clientNames = new Set(o.clients.map(c => c.name));
  table("disks", ["Disk", "Size", "Sessions", "Snapshots", "Held by snapshots", ""], s.disks.filter(d => !clientNames.has(d.name)).map(d =>
    "<tr><td>" + esc(d.name) + "</td><td>" + size(d.size) + "</td><td>" + d.sessions + "</td><td>" + d.snapshots + "</td><td>" + size(d.snapshot_bytes) +
    '</td><td><button data-testid="snapshot-' + esc(d.name) + '" data-disk="' + esc(d.name) + '">Take snapshot</button></td></tr>'), "no standalone disks");
  table("images", ["Image", "Size", "Current version", "Versions", "Edit", "Clients", "Not on the current version"], s.images.map(i =>
    "<tr><td>" + esc(i.name) + "</td><td>" + size(i.size) + "</td><td>" + i.current + "</td><td>" + i.versions + "</td><td>" +
    (i.edit ? esc(i.edit.client) + " over v" + i.edit.base + (i.edit.booted ? " (booted into it)" : " (from its next power-on)") : "–") +
    "</td><td>" + esc(i.clients.join(", ") || "–") + '</td><td class="' + (i.behind.length ? "warn" : "") + '">' + esc(i.behind.join(", ") || "–") + "</td></tr>"), "no images");
  table("sessions", ["TSIH", "Initiator", "Target"], o.sessions.map(x =>
    "<tr><td>" + x.tsih + "</td><td>" + esc(x.initiator) + "</td><td>" + esc(x.target) + "</td></tr>"), "no sessions");
  table("snapshots", ["ID", "Disk", "Taken", "Label", "Origin", "Data", "Mounted", "Exports", ""], o.snapshots.slice().reverse().map(x =>
    '<tr data-snapshot="' + x.id + '"><td>' + x.id + "</td><td>" + esc(x.disk) + "</td><td>" + when(x.created) + "</td><td>" + esc(x.label) + "</td><td>" + esc(x.origin) +
    "</td><td>" + size(x.unique_bytes) + "</td><td>" + [x.mount_iscsi ? "iSCSI" : "", x.mount_local ? esc(x.mount_local) : ""].filter(Boolean).join(", ") +
    "</td><td>" + x.exports.length + '</td><td><button data-export="' + x.id + '">Export</button> <button data-rollback="' + x.id + '" data-disk="' + esc(x.disk) +
    '">Roll back</button> <button data-delete="' + x.id + '">Delete</button></td></tr>'), "no snapshots yet");
  table("schedules", ["Schedule", "Cron", "Disks", "Export", "Last run", "Result", "Next run", ""], s.schedules.map(x =>
    "<tr><td>" + esc(x.name) + "</td><td>" + esc(x.cron) + "</td><td>" + esc(x.disks.join(" ")) + "</td><td>" + esc(x.export) + "</td><td>" + when(x.last_run) +
    '</td><td class="' + (x.last_result && x.last_result !== "ok" && x.last_result !== "running" ? "bad" : "") + '">' + esc(x.last_result || "–") + "</td><td>" + when(x.next_run) +
    '</td><td><button data-run="' + esc(x.name) + '">Run now</button></td></tr>'), "no schedules");
}

document.addEventListener("click", e => {
  const b = e.target.closest("button"); if (!b) return;
  if (b.dataset.testid && b.dataset.disk) act("Snapshot of " + b.dataset.disk, "snapshot.create", {disk: b.dataset.disk});
  else if (b.dataset.export) act("Export of snapshot " + b.dataset.export, "snapshot.export", {id: +b.dataset.export});
  else if (b.dataset.rollback && confirm("Roll " + b.dataset.disk + " back to snapshot " + b.dataset.rollback + "? What it holds since then is discarded and its client is disconnected."))
    act("Rollback to snapshot " + b.dataset.rollback, "snapshot.rollback", {id: +b.dataset.rollback, force: true});
  else if (b.dataset.delete && confirm("Delete snapshot " + b.dataset.delete + "?")) act("Delete of snapshot " + b.dataset.delete, "snapshot.delete", {id: +b.dataset.delete});
  else if (b.dataset.run) act("Schedule " + b.dataset.run, "schedule.run", {name: b.dataset.run});
});

async function refresh() {
  try { render(await api("/api/overview")); }
  catch (e) { document.getElementById("summary").textContent = "not connected: " + e.message; }
}
refresh();
setInterval(refresh, 5000);
</script>
</body>
</html>
"""
