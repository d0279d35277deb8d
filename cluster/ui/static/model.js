// The page's model of the cluster, folded from bus events in arrival order (like cluster/events/view.py).
// No DOM here: applyEvent(model, event) changes the model; the render functions draw it.
const DECISIONS_MAX = 400;
const TRANSFERS_DONE_MAX = 6;
const FAULT_HISTORY_MAX = 200;

function modelNew() {
  return {
    eventCount: 0, firstTs: null, lastTs: null, clusters: new Set(),
    peers: new Map(),        // peer id -> {id, name, address, up}
    collections: new Map(),  // collection -> Map shard -> Map peer -> {state, changedTs}
    lanes: new Map(),        // "collection/shard/peer" -> {collection, shard, peer, segments: [{state, start, end, rule}]}
    transfers: new Map(),    // "collection/shard/from/to" -> transfer
    transfersDone: [],       // newest last
    faults: new Map(),       // fault_id -> {faultId, fault, target, params, start}
    faultHistory: [],        // {faultId, fault, target, start, end}
    decisions: [],           // newest last
  };
}

function eventTs(event) {
  if (typeof event.ts === "number") return event.ts;
  return typeof event.recv_ts === "number" ? event.recv_ts : Date.now() / 1000;
}

function applyEvent(model, event) {
  model.eventCount += 1;
  const ts = eventTs(event);
  if (model.firstTs === null || ts < model.firstTs) model.firstTs = ts;
  if (model.lastTs === null || ts > model.lastTs) model.lastTs = ts;
  if (typeof event.topic === "string") model.clusters.add(event.topic.split("/")[1]);
  const handler = EVENT_HANDLERS[event.kind];
  if (!handler) return;
  try {
    handler(model, event, ts);
  } catch (error) {
    console.warn("event not understood", event, error);
  }
}

function peerOf(model, peerId) {
  const key = String(peerId);
  if (!model.peers.has(key)) model.peers.set(key, {id: key, name: "", address: "", up: true});
  return model.peers.get(key);
}

function collectionKey(model, event) {
  // Events of several clusters (ui --cluster '*') are told apart by the cluster in the topic.
  if (model.showAllClusters && typeof event.topic === "string") return `${event.topic.split("/")[1]}:${event.collection}`;
  return String(event.collection);
}

function onNodeStarted(model, event) {
  const peer = peerOf(model, event.peer_id);
  peer.name = event.name || peer.name;
  peer.address = event.address || peer.address;
  peer.up = true;
}

function onNodeStopped(model, event) {
  peerOf(model, event.peer_id).up = false;
}

function onReplicaState(model, event, ts) {
  const collection = collectionKey(model, event);
  const shard = String(event.shard);
  const peer = String(event.peer);
  peerOf(model, peer);
  if (!model.collections.has(collection)) model.collections.set(collection, new Map());
  const shards = model.collections.get(collection);
  if (!shards.has(shard)) shards.set(shard, new Map());
  const to = event.to === null || event.to === undefined ? null : String(event.to);
  if (to === null) shards.get(shard).delete(peer);
  else shards.get(shard).set(peer, {state: to, changedTs: ts});
  laneChange(model, collection, shard, peer, to, ts, event.rule || event.reason || "");
  decisionAdd(model, {ts, kind: "replica.state", collection, shard, peer, from: event.from ?? null, to,
                      rule: event.rule || event.reason || "", explanation: event.explanation || ""});
}

function laneChange(model, collection, shard, peer, state, ts, rule) {
  const key = `${collection}/${shard}/${peer}`;
  if (!model.lanes.has(key)) model.lanes.set(key, {collection, shard, peer, segments: []});
  const segments = model.lanes.get(key).segments;
  const open = segments.length ? segments[segments.length - 1] : null;
  if (open && open.end === null) open.end = Math.max(ts, open.start);
  if (state !== null) segments.push({state, start: ts, end: null, rule});
}

function onDecision(model, event, ts) {
  decisionAdd(model, {ts, kind: "decision", collection: event.collection == null ? null : collectionKey(model, event),
                      shard: event.shard ?? null, peer: event.peer ?? null, from: null, to: null,
                      rule: event.rule || event.reason || "", explanation: event.explanation || ""});
}

function decisionAdd(model, decision) {
  model.decisions.push(decision);
  if (model.decisions.length > DECISIONS_MAX) model.decisions.splice(0, model.decisions.length - DECISIONS_MAX);
}

function transferKey(model, event) {
  return `${collectionKey(model, event)}/${event.shard}/${event.from}/${event.to}`;
}

function onTransferUpdate(model, event, ts) {
  const key = transferKey(model, event);
  let transfer = model.transfers.get(key);
  if (!transfer) {
    transfer = {key, collection: collectionKey(model, event), shard: String(event.shard), from: String(event.from),
                to: String(event.to), method: "", phase: "started", bytes: 0, bytesTotal: null, attempt: 1,
                reason: "", start: ts, outcome: null};
    model.transfers.set(key, transfer);
  }
  transfer.method = event.method || transfer.method;
  transfer.phase = event.phase || (event.kind === "transfer.started" ? "started" : transfer.phase);
  if (Number.isFinite(event.bytes)) transfer.bytes = event.bytes;
  if (Number.isFinite(event.bytes_total)) transfer.bytesTotal = event.bytes_total;
  if (Number.isFinite(event.attempt)) transfer.attempt = event.attempt;
  transfer.reason = event.reason || "";
  transfer.updated = ts;
}

function onTransferEnd(model, event, ts) {
  const key = transferKey(model, event);
  const transfer = model.transfers.get(key) || {key, collection: collectionKey(model, event), shard: String(event.shard),
    from: String(event.from), to: String(event.to), method: event.method || "", phase: "", bytes: 0, bytesTotal: null,
    attempt: 1, start: ts};
  model.transfers.delete(key);
  if (Number.isFinite(event.bytes)) transfer.bytes = event.bytes;
  if (Number.isFinite(event.bytes_total)) transfer.bytesTotal = event.bytes_total;
  transfer.outcome = event.kind === "transfer.finished" ? "finished" : "aborted";
  transfer.reason = event.reason || "";
  transfer.end = ts;
  model.transfersDone.push(transfer);
  if (model.transfersDone.length > TRANSFERS_DONE_MAX) model.transfersDone.shift();
}

function onFaultApplied(model, event, ts) {
  const fault = {faultId: String(event.fault_id), fault: String(event.fault || ""), target: String(event.target || ""),
                 params: event.params ?? null, start: ts, end: null};
  model.faults.set(fault.faultId, fault);
  model.faultHistory.push(fault);
  if (model.faultHistory.length > FAULT_HISTORY_MAX) model.faultHistory.shift();
}

function onFaultHealed(model, event, ts) {
  const fault = model.faults.get(String(event.fault_id));
  if (fault) fault.end = ts;
  model.faults.delete(String(event.fault_id));
}

const EVENT_HANDLERS = {
  "node.started": onNodeStarted,
  "node.stopped": onNodeStopped,
  "replica.state": onReplicaState,
  "decision": onDecision,
  "transfer.started": onTransferUpdate,
  "transfer.phase": onTransferUpdate,
  "transfer.finished": onTransferEnd,
  "transfer.aborted": onTransferEnd,
  "fault.applied": onFaultApplied,
  "fault.healed": onFaultHealed,
};
