// Drawing the model into the page's panels (innerHTML from escaped strings; one function per panel).
const DECISIONS_SHOWN_MAX = 200;
const CHANGED_FLASH_S = 1.5;

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

function stateColours(state) {
  return CONFIG.states[state] || CONFIG.states.other;
}

function chip(state) {
  if (state === null || state === undefined) return '<span class="chip none">none</span>';
  const colours = stateColours(state);
  return `<span class="chip" style="background:${colours.fill};color:${colours.text}">${esc(state)}</span>`;
}

function bytesHuman(count) {
  if (!Number.isFinite(count)) return "? B";
  const units = ["B", "KiB", "MiB", "GiB"];
  let size = count, unit = 0;
  while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
  return unit === 0 ? `${size} B` : `${size.toFixed(1)} ${units[unit]}`;
}

function clock(ts) {
  const date = new Date(ts * 1000);
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

function durationHuman(seconds) {
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

function peerLabel(model, peerId) {
  const peer = model.peers.get(String(peerId));
  return peer && peer.name ? `${peer.name}` : `peer ${peerId}`;
}

function sortedKeys(iterable) {
  return [...iterable].sort((a, b) => (Number(a) - Number(b)) || String(a).localeCompare(String(b)));
}

function renderLegend() {
  document.getElementById("legend").innerHTML =
    Object.keys(CONFIG.states).filter((state) => state !== "other").map(chip).join("");
}

function renderCounters(model, live) {
  const up = [...model.peers.values()].filter((peer) => peer.up).length;
  const last = model.lastTs === null ? "–" : clock(model.lastTs);
  document.getElementById("counters").textContent =
    `${model.eventCount} events · ${up}/${model.peers.size} peers up · ${model.transfers.size} transfers · last event ${last}`;
  const pill = document.getElementById("connection");
  pill.dataset.status = live ? "live" : "reconnecting";
  pill.textContent = live ? "live" : "reconnecting…";
}

function renderReplicas(model, now) {
  const box = document.getElementById("replicas");
  if (!model.collections.size) { box.innerHTML = '<p class="empty">Waiting for replica states…</p>'; return; }
  const peers = sortedKeys(model.peers.keys());
  box.innerHTML = sortedKeys(model.collections.keys()).map((collection) => {
    const shards = model.collections.get(collection);
    const head = peers.map((peer) => {
      const down = model.peers.get(peer).up ? "" : ' <span class="down" title="node stopped">■ down</span>';
      return `<th>${esc(peerLabel(model, peer))}${down}</th>`;
    }).join("");
    const rows = sortedKeys(shards.keys()).map((shard) => {
      const cells = peers.map((peer) => replicaCell(collection, shard, peer, shards.get(shard).get(peer), now)).join("");
      return `<tr><th class="row">shard ${esc(shard)}</th>${cells}</tr>`;
    }).join("");
    return `<div class="collection"><h3>${esc(collection)} <span class="muted">${shards.size} shards</span></h3>
      <table class="grid"><thead><tr><th></th>${head}</tr></thead><tbody>${rows}</tbody></table></div>`;
  }).join("");
}

function replicaCell(collection, shard, peer, replica, now) {
  const cell = `data-cell="${esc(`${collection}/${shard}/${peer}`)}"`;
  if (!replica) return `<td class="cell absent" ${cell} data-state="">·</td>`;
  const colours = stateColours(replica.state);
  const age = now - replica.changedTs;
  // Redrawn often: a negative delay keeps the flash where it was instead of restarting it.
  const flash = age < CHANGED_FLASH_S ? `animation-delay:-${Math.max(0, age).toFixed(2)}s;` : "";
  return `<td class="cell${flash ? " changed" : ""}" ${cell} data-state="${esc(replica.state)}"
    title="since ${clock(replica.changedTs)}" style="${flash}background:${colours.fill};color:${colours.text}">${esc(replica.state)}</td>`;
}

function renderTransfers(model) {
  const box = document.getElementById("transfers");
  const running = [...model.transfers.values()];
  const done = [...model.transfersDone].reverse();
  if (!running.length && !done.length) { box.innerHTML = '<p class="empty">No transfer yet.</p>'; return; }
  box.innerHTML = running.map((t) => transferRow(model, t)).join("") + done.map((t) => transferRow(model, t)).join("");
}

function transferRow(model, transfer) {
  const known = Number.isFinite(transfer.bytesTotal) && transfer.bytesTotal > 0;
  const percent = known ? Math.min(100, Math.round(100 * transfer.bytes / transfer.bytesTotal))
                        : (transfer.outcome === "finished" ? 100 : null);
  const figures = known ? `${bytesHuman(transfer.bytes)} of ${bytesHuman(transfer.bytesTotal)} (${percent}%)`
                        : bytesHuman(transfer.bytes);
  const outcome = transfer.outcome
    ? `<span class="outcome-${transfer.outcome}">${transfer.outcome}</span>`
    : `<span class="phase">${esc(transfer.phase)}</span>`;
  const reason = transfer.reason ? `<span class="reason">${esc(transfer.reason)}</span>` : "";
  const classes = `transfer${transfer.outcome ? ` done ${transfer.outcome}` : ""}`;
  const bar = percent === null
    ? '<div class="bar unknown" role="progressbar"><div class="fill"></div></div>'
    : `<div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${percent}">
         <div class="fill" style="width:${percent}%"></div></div>`;
  return `<div class="${classes}" data-transfer="${esc(transfer.key)}">
    <div class="transfer-line"><span class="route">${esc(transfer.collection)} / shard ${esc(transfer.shard)}:
      ${esc(peerLabel(model, transfer.from))} → ${esc(peerLabel(model, transfer.to))}</span>
      <span class="muted">${esc(transfer.method || "snapshot")} · attempt ${esc(transfer.attempt)}</span>
      ${outcome} ${reason}<span class="figures">${figures}</span></div>${bar}</div>`;
}

function renderPeers(model) {
  const box = document.getElementById("peers");
  if (!model.peers.size) { box.innerHTML = '<p class="empty">No peer seen yet.</p>'; return; }
  box.innerHTML = '<div class="peers">' + sortedKeys(model.peers.keys()).map((id) => {
    const peer = model.peers.get(id);
    const name = peer.name ? `${esc(peer.name)} <span class="muted">#${esc(id)}</span>` : `peer ${esc(id)}`;
    const address = peer.address ? ` <span class="addr">${esc(peer.address)}</span>` : "";
    return `<div class="peer${peer.up ? "" : " down"}" data-peer="${esc(id)}" title="${peer.up ? "up" : "down"}">
      <span class="dot"></span>${name}${address}</div>`;
  }).join("") + "</div>";
}

function renderFaults(model, now) {
  const box = document.getElementById("faults");
  if (!model.faults.size) { box.innerHTML = '<p class="empty">None.</p>'; return; }
  box.innerHTML = [...model.faults.values()].map((fault) => {
    const params = fault.params && Object.keys(fault.params).length ? JSON.stringify(fault.params) : "";
    return `<div class="fault" data-fault="${esc(fault.faultId)}"><span class="name">${esc(fault.fault)}</span>
      <span class="target">${esc(fault.target)}</span>
      <span class="since">since ${clock(fault.start).slice(0, 8)} (${durationHuman(Math.max(0, now - fault.start))})</span>
      ${params ? `<span class="params">${esc(params)}</span>` : ""}</div>`;
  }).join("");
}

function renderDecisions(model, now) {
  const shown = model.decisions.slice(-DECISIONS_SHOWN_MAX).reverse();
  document.getElementById("decisions").innerHTML = shown.length ? shown.map((d) => {
    const where = d.collection === null ? "" : `${esc(d.collection)}/${esc(d.shard)}` +
      (d.peer === null ? "" : ` · ${esc(peerLabel(model, d.peer))}`);
    const change = d.kind === "replica.state" ? `${chip(d.from)}<span class="arrow">→</span>${chip(d.to)}` : "";
    const rule = d.rule ? `<span class="rule">${esc(d.rule)}</span>` : "";
    const explanation = d.explanation ? `<span class="explanation">${esc(d.explanation)}</span>` : "";
    const age = now - d.ts;
    const fresh = age < CHANGED_FLASH_S ? ` class="fresh" style="animation-delay:-${Math.max(0, age).toFixed(2)}s"` : "";
    return `<li${fresh}><span class="time">${clock(d.ts)}</span><span class="where">${where}</span>${change}${rule}${explanation}</li>`;
  }).join("") : '<li class="empty">No decision yet.</li>';
}
