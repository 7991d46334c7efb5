// kubeplex status page: redraws from GET / (JSON) every few seconds. The page reads whole
// without this script. Text goes in with textContent only.
"use strict";
(function () {
  const every = Number(document.body.dataset.refreshMs) || 2000;
  const $ = (id) => document.getElementById(id);
  const rate = (r) => (r === null || r === undefined) ? "–" : r === 0 ? "0" : r < 10 ? r.toFixed(2) : r.toFixed(0);
  const uptime = (s) => {
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s % 60}s`;
    return `${s}s`;
  };
  function cell(tr, text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function draw(s) {
    const ready = $("ready");
    ready.className = "pill " + (s.ready ? "ok" : "bad");
    ready.textContent = s.ready ? "ready" : "not ready: " + (s.reason || "");
    $("uptime").textContent = uptime(s.uptimeSeconds);
    const up = s.clusters.filter((c) => c.state === "up").length;
    const down = s.clusters.filter((c) => c.state === "down").length;
    $("counts").textContent = `${s.clusters.length} (${up} up, ${down} down)`;
    const r = s.lastReload;
    $("reload").textContent = !r ? "none since start" : `${r.at} (${r.ok ? "ok" : "failed"})`;
    const err = $("reload-error");
    err.hidden = !(r && !r.ok);
    err.textContent = r && r.error ? r.error : "";
    const body = document.querySelector("#clusters tbody");
    const rows = document.createDocumentFragment();
    for (const c of s.clusters) {
      const tr = document.createElement("tr");
      tr.dataset.key = c.key;
      tr.className = c.state;
      cell(tr, c.name, "name");
      const key = cell(tr, "", "key");
      const code = document.createElement("code");
      code.textContent = c.key;
      key.appendChild(code);
      cell(tr, c.locator);
      cell(tr, c.title || "");
      cell(tr, c.authProvider || "");
      const st = cell(tr, "", "state");
      const badge = document.createElement("span");
      badge.className = "badge " + c.state;
      badge.textContent = c.state;
      badge.title = c.error || "";
      st.appendChild(badge);
      cell(tr, c.latencyMs === null ? "–" : c.latencyMs.toFixed(1) + " ms", "num");
      cell(tr, rate(c.requestsPerSecond), "num");
      cell(tr, rate(c.errorsPerSecond), "num");
      cell(tr, c.checkedAt || "–", "checked");
      rows.appendChild(tr);
    }
    body.replaceChildren(rows);
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  }
  async function tick() {
    try {
      const res = await fetch("/", { headers: { Accept: "application/json" }, cache: "no-store" });
      if (res.ok) draw(await res.json());
      else $("updated").textContent = "kubeplex answered " + res.status;
    } catch (e) {
      $("updated").textContent = "kubeplex did not answer";
    }
    setTimeout(tick, every);
  }
  setTimeout(tick, every);
})();
