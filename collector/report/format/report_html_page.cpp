// The HTML timeline's page: plain CSS and JavaScript written for it (no
// library: the page needs divs positioned in percent, a table and three
// selects, which a charting library would only make heavier to inline).
// Lanes are built as one HTML string and inserted once, so 10,000 lanes cost
// one layout; filters toggle a class.
#include "collector/report/format/report_html.h"

namespace connleak {

const char* const kHtmlDataPlaceholder = "@CONNLEAK_DATA@";

const char* const kHtmlPage = R"PAGE(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>connleak timeline</title>
<style>
:root { --label: 300px; --red: #d32f2f; --green: #388e3c; --grey: #90a4ae; --amber: #f9a825; }
body { font: 13px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
header { padding: 8px 12px; background: #263238; color: #eceff1; }
header h1 { font-size: 16px; margin: 0 0 4px; }
header .sum span { margin-right: 14px; }
#filters { padding: 6px 12px; background: #eceff1; position: sticky; top: 0; z-index: 3; }
#filters label { margin-right: 12px; }
#main { display: flex; align-items: flex-start; }
#timeline { flex: 1; min-width: 0; }
#detail { width: 420px; max-height: 100vh; overflow: auto; position: sticky; top: 34px;
  border-left: 1px solid #cfd8dc; padding: 8px 12px; font-size: 12px; }
#detail:empty::before { content: "Click a lane or a bar to see its stacks."; color: #78909c; }
#axis, .lane { display: flex; }
#axis { border-bottom: 1px solid #b0bec5; height: 18px; font-size: 11px; color: #546e7a; }
#axis .lbl { width: var(--label); flex: none; }
#axis .trk { position: relative; flex: 1; }
#axis .tick { position: absolute; transform: translateX(-50%); white-space: nowrap; }
#lanes { position: relative; }
.ghead { background: #f5f7f8; font-weight: 600; padding: 2px 6px; border-top: 1px solid #cfd8dc; }
.lane { height: 18px; border-bottom: 1px solid #f0f0f0; cursor: pointer; }
.lane:hover { background: #fffde7; }
.lane.sel { background: #e3f2fd; }
.lane .lbl { width: var(--label); flex: none; overflow: hidden; white-space: nowrap;
  text-overflow: ellipsis; padding-left: 14px; box-sizing: border-box; }
.lane .trk { position: relative; flex: 1; }
.bar { position: absolute; top: 3px; height: 12px; min-width: 2px; border-radius: 2px; }
.bar.conn { background: var(--grey); }
.bar.conn.st-open, .bar.conn.st-pooled { background: var(--green); }
.bar.conn.st-leaked { background: var(--red); }
.txn { position: absolute; top: 1px; height: 16px; background: rgba(249, 168, 37, .45);
  border: 1px dashed var(--amber); box-sizing: border-box; }
.bar.co { top: 6px; height: 6px; background: #1565c0; }
.bar.co.st-leaked, .bar.co.st-reclaimed { background: #7f0000; }
.mk { position: absolute; top: 0; width: 0; height: 0; border-left: 5px solid transparent;
  border-right: 5px solid transparent; border-top: 8px solid #000; transform: translateX(-5px); }
.vline { position: absolute; top: 0; bottom: 0; width: 0; border-left: 2px dotted #6a1b9a; z-index: 2; }
.status { font-size: 11px; padding: 0 4px; border-radius: 3px; background: #eceff1; }
.status.leaked, .status.reclaimed { background: var(--red); color: #fff; }
.hidden { display: none !important; }
table { border-collapse: collapse; margin: 12px; }
td, th { border: 1px solid #cfd8dc; padding: 2px 6px; text-align: left; }
#detail ol { padding-left: 22px; margin: 4px 0; }
#detail li.lib { color: #78909c; }
#detail code { word-break: break-all; }
#detail h3 { margin: 10px 0 2px; font-size: 13px; }
</style>
</head>
<body>
<header><h1>connleak timeline</h1><div id="meta"></div><div class="sum" id="summary"></div></header>
<div id="filters">
<label>process <select id="f-pid"></select></label>
<label>library <select id="f-lib"></select></label>
<label>pool <select id="f-pool"></select></label>
<label>status <select id="f-status"></select></label>
<span id="shown"></span>
</div>
<div id="main">
<div id="timeline"><div id="axis"></div><div id="lanes"></div>
<h2 style="margin:12px;font-size:15px">Sites by count</h2>
<table id="sites"><thead><tr><th>count</th><th>site</th><th>kind</th><th>statuses</th></tr></thead><tbody></tbody></table>
</div>
<aside id="detail"></aside>
</div>
<script type="application/json" id="connleak-data">@CONNLEAK_DATA@</script>
<script>
"use strict";
(function () {
  var t0 = performance.now();
  var D = JSON.parse(document.getElementById("connleak-data").textContent);
  var span = Math.max(D.meta.span_ms, 1);
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function pct(t) { return Math.max(0, Math.min(100, 100 * t / span)); }
  function secs(ms) { return (ms / 1000).toFixed(ms < 10000 ? 3 : 1) + " s"; }
  function bar(cls, b, e, extendToEdge, attrs) {
    var l = pct(b), r = extendToEdge ? 100 : pct(e);
    return '<div class="' + cls + '" style="left:' + l.toFixed(3) + "%;width:" +
      Math.max(0, r - l).toFixed(3) + '%"' + (attrs || "") + "></div>";
  }
  function markers(alerts) {
    var h = "";
    (alerts || []).forEach(function (a) {
      h += '<div class="mk" style="left:' + pct(a[1]).toFixed(3) + '%" title="alert: ' +
        esc(a[0]) + " after " + a[2] + ' s"></div>';
    });
    return h;
  }

  // Lanes: one per connection; a checkout lends a connection, so it is drawn
  // inside that connection's lane; a checkout without one gets its own lane.
  var lanes = [], byConn = {};
  D.conns.forEach(function (c) {
    var lane = { key: "c" + c.pid + "-" + c.id, kind: "conn", item: c, pid: c.pid, lib: c.lib,
      pool: c.pool || "(no pool)", status: c.status, endpoint: c.endpoint, b: c.b, cos: [] };
    byConn[c.pid + "-" + c.id] = lane;
    lanes.push(lane);
  });
  D.checkouts.forEach(function (k, i) {
    k.index = i;
    var lane = k.conn != null ? byConn[k.pid + "-" + k.conn] : null;
    if (lane) { lane.cos.push(k); return; }
    lanes.push({ key: "k" + k.pid + "-" + k.id, kind: "checkout", item: k, pid: k.pid,
      lib: "checkout", pool: k.pool, status: k.status, endpoint: "", b: k.b, cos: [k] });
  });
  lanes.forEach(function (l, i) { l.index = i; });
  var groups = {};
  lanes.forEach(function (l) {
    var g = "pid " + l.pid + " \u00b7 " + l.pool + (l.endpoint ? " \u00b7 " + l.endpoint : "");
    (groups[g] = groups[g] || { name: g, pid: l.pid, lanes: [] }).lanes.push(l);
  });
  var order = Object.keys(groups).sort(function (a, b) {
    return groups[a].pid - groups[b].pid || (a < b ? -1 : a > b ? 1 : 0);
  });

  var html = [];
  order.forEach(function (name, gi) {
    var g = groups[name];
    g.lanes.sort(function (a, b) { return a.b - b.b; });
    html.push('<div class="group" data-group="' + gi + '"><div class="ghead">' + esc(name) +
      ' <span class="count">(' + g.lanes.length + ")</span></div>");
    g.lanes.forEach(function (l) {
      var it = l.item, h = '<div class="lane st-' + esc(l.status) + '" data-lane="' + l.index +
        '" data-key="' + esc(l.key) + '" data-status="' + esc(l.status) + '">';
      var title = l.kind === "conn" ? it.lib + " #" + it.id : "checkout #" + it.id;
      h += '<div class="lbl" title="' + esc(it.site) + '">' + esc(title) + ' <span class="status ' +
        esc(l.status) + '">' + esc(l.status) + "</span> " + esc(it.site) + '</div><div class="trk">';
      if (l.kind === "conn") {
        h += bar("bar conn st-" + esc(it.status), it.b, it.e, it.status === "leaked" && it.open);
        if (it.txn) h += bar("txn", it.txn[0], it.txn[1], false, ' title="' + esc(it.txn[2]) + '"');
      }
      l.cos.forEach(function (k) {
        h += bar("bar co st-" + esc(k.status), k.b, k.e, k.status === "leaked" && k.open,
          ' data-co="' + k.index + '" title="checkout #' + k.id + " " + esc(k.status) + '"');
        h += markers(k.alerts);
      });
      if (l.kind === "conn") h += markers(it.alerts);
      html.push(h + "</div></div>");
    });
    html.push("</div>");
  });
  D.snapshots.forEach(function (s) {
    html.push('<div class="vline" style="left:calc(var(--label) + (100% - var(--label)) * ' +
      (pct(s.t) / 100).toFixed(5) + ')" title="' + esc(s.trigger + " (pid " + s.pid + ")" +
      (s.pool ? " " + s.pool : "") + (s.refusal ? " " + s.refusal : "")) + '"></div>');
  });
  var lanesEl = document.getElementById("lanes");
  lanesEl.innerHTML = html.join("");

  var axis = '<div class="lbl"></div><div class="trk">';
  [0, 0.25, 0.5, 0.75, 1].forEach(function (f) {
    axis += '<span class="tick" style="left:' + (f * 100) + '%">+' + secs(f * span) + "</span>";
  });
  document.getElementById("axis").innerHTML = axis + "</div>";
  var m = D.meta, s = m.summary;
  document.getElementById("meta").textContent = (m.argv || []).join(" ") + " \u2014 trigger " +
    m.trigger + ", written " + m.generated_at + ", timeline starts " +
    new Date(m.start_epoch_ms).toISOString();
  document.getElementById("summary").innerHTML = ["opened", "closed", "open", "leaked", "flagged",
    "pooled", "checkouts_leaked"].map(function (k) {
      return "<span>" + k.replace("_", " ") + ": <b>" + s[k] + "</b></span>";
    }).join("") + "<span>lanes: <b>" + lanes.length + "</b></span>";

  var rows = D.sites.map(function (r) {
    var st = Object.keys(r.statuses).map(function (k) { return k + " " + r.statuses[k]; });
    return "<tr><td>" + r.count + "</td><td>" + esc(r.site) + "</td><td>" + esc(r.kind) +
      "</td><td>" + esc(st.join(", ")) + "</td></tr>";
  });
  document.querySelector("#sites tbody").innerHTML = rows.join("");

  // Filters.
  var filters = { pid: "f-pid", lib: "f-lib", pool: "f-pool", status: "f-status" };
  Object.keys(filters).forEach(function (field) {
    var seen = {};
    lanes.forEach(function (l) {
      seen[l[field]] = 1;
      if (field === "status") l.cos.forEach(function (k) { seen[k.status] = 1; });
    });
    var sel = document.getElementById(filters[field]);
    sel.innerHTML = '<option value="">all</option>' + Object.keys(seen).sort().map(function (v) {
      return '<option value="' + esc(v) + '">' + esc(v) + "</option>";
    }).join("");
    sel.addEventListener("change", applyFilters);
  });
  var laneEls = lanesEl.querySelectorAll(".lane");
  function applyFilters() {
    var want = {};
    Object.keys(filters).forEach(function (f) { want[f] = document.getElementById(filters[f]).value; });
    var shown = 0;
    for (var i = 0; i < laneEls.length; i++) {
      var l = lanes[+laneEls[i].getAttribute("data-lane")];
      var ok = (!want.pid || String(l.pid) === want.pid) && (!want.lib || l.lib === want.lib) &&
        (!want.pool || l.pool === want.pool) &&
        (!want.status || l.status === want.status ||
          l.cos.some(function (k) { return k.status === want.status; }));
      laneEls[i].classList.toggle("hidden", !ok);
      if (ok) shown++;
    }
    lanesEl.querySelectorAll(".group").forEach(function (g) {
      g.classList.toggle("hidden", !g.querySelector(".lane:not(.hidden)"));
    });
    document.getElementById("shown").textContent = shown + " of " + laneEls.length + " lanes";
  }
  applyFilters();

  // Details: the program's own frames first, library frames folded after them.
  function frameText(f) {
    var t = (f[0] || "<unknown>");
    if (f[1]) t += " " + f[1] + (f[2] != null ? ":" + f[2] : "");
    else if (f[3]) t += " (" + f[3] + ")";
    return (f[5] ? "[py] " : "") + t;
  }
  function stack(title, frames) {
    if (!frames) return "";
    var user = frames.filter(function (f) { return f[4]; });
    var lib = frames.filter(function (f) { return !f[4]; });
    var h = "<h3>" + esc(title) + '</h3><ol class="stack user">' + user.map(function (f) {
      return "<li><code>" + esc(frameText(f)) + "</code></li>";
    }).join("") + "</ol>";
    if (lib.length) h += "<details><summary>" + lib.length + ' library frames</summary><ol class="stack lib">' +
      lib.map(function (f) { return '<li class="lib"><code>' + esc(frameText(f)) + "</code></li>"; }).join("") +
      "</ol></details>";
    return h;
  }
  function field(name, value) {
    return value == null || value === "" ? "" : "<div><b>" + esc(name) + ":</b> <code>" + esc(value) + "</code></div>";
  }
  function showConn(c) {
    var h = "<h2>" + esc(c.lib + " connection #" + c.id) + ' <span class="status ' + esc(c.status) +
      '">' + esc(c.status) + "</span></h2>";
    h += field("process", c.pid) + field("thread", c.tid) + field("target", c.target) +
      field("server id", c.server_id) + field("state", c.state) + field("pool", c.pool) +
      field("opened at", c.opened_at) + field("closed at", c.closed_at) + field("closed by", c.closed_by) +
      field("open for", secs(c.e - c.b)) + field("statements", c.stmts) + field("last statement", c.last);
    if (c.txn) h += field("transaction", c.txn[2] + " for " + c.txn[3] + " s");
    (c.alerts || []).forEach(function (a) { h += field("alert", a[0] + " after " + a[2] + " s"); });
    h += stack("opened from", c.stack) + stack("transaction began at", c.txn_began) +
      stack("closed from", c.closed_from);
    return h;
  }
  function showCheckout(k) {
    var h = "<h2>" + esc("checkout #" + k.id) + ' <span class="status ' + esc(k.status) + '">' +
      esc(k.status) + "</span></h2>";
    h += field("process", k.pid) + field("pool", k.pool) + field("connection", k.conn) +
      field("thread", k.tid) + field("task", k.task) + field("held", k.held + " s") +
      field("in transaction", k.in_txn);
    (k.alerts || []).forEach(function (a) { h += field("alert", a[0] + " after " + a[2] + " s"); });
    return h + stack("checked out from", k.stack) + stack("the holder was doing", k.holder);
  }
  var selected = null;
  lanesEl.addEventListener("click", function (ev) {
    var laneEl = ev.target.closest(".lane");
    if (!laneEl) return;
    if (selected) selected.classList.remove("sel");
    selected = laneEl;
    laneEl.classList.add("sel");
    var l = lanes[+laneEl.getAttribute("data-lane")];
    var co = ev.target.getAttribute("data-co");
    var h = co != null ? showCheckout(D.checkouts[+co]) :
      l.kind === "conn" ? showConn(l.item) : showCheckout(l.item);
    if (co == null && l.kind === "conn") l.cos.forEach(function (k) { h += showCheckout(k); });
    document.getElementById("detail").innerHTML = h;
  });
  // #select=<lane key> opens a lane's details on load (links, and the headless test).
  var want = /^#select=(.+)$/.exec(location.hash);
  if (want) {
    var el = lanesEl.querySelector('.lane[data-key="' + want[1].replace(/[^\w-]/g, "") + '"]');
    if (el) el.querySelector(".lbl").click();
  }
  document.body.setAttribute("data-lanes", String(lanes.length));
  document.body.setAttribute("data-render-ms", (performance.now() - t0).toFixed(1));
})();
</script>
</body>
</html>
)PAGE";

}  // namespace connleak
