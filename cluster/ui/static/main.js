// Wiring: the configuration, the event stream (Server-Sent Events with replay), and throttled rendering.
const CONFIG = JSON.parse(document.getElementById("config").textContent);
const RENDER_INTERVAL_MS = 80;
const CLOCK_TICK_MS = 1000;

const ui = {model: modelNew(), live: false, clockOffsetS: 0, renderPending: false, renderCount: 0, renderedAtMs: 0, drawnEventCount: -1};
ui.model.showAllClusters = CONFIG.cluster === null;
window.shardsimUi = ui;  // for the curious (and the browser tests): the model and counters

function nowS() {
  return Date.now() / 1000 + ui.clockOffsetS;
}

function render() {
  ui.renderPending = false;
  ui.renderedAtMs = performance.now();
  ui.renderCount += 1;
  const now = nowS();
  const eventsNew = ui.drawnEventCount !== ui.model.eventCount;
  ui.drawnEventCount = ui.model.eventCount;
  renderCounters(ui.model, ui.live);
  renderReplicas(ui.model, now);
  renderFaults(ui.model, now);
  renderDecisions(ui.model, now);
  renderSwimlane(ui.model, now);
  if (eventsNew) {  // these do not change with time alone
    renderPeers(ui.model);
    renderTransfers(ui.model);
  }
}

function renderSoon() {
  if (ui.renderPending) return;
  ui.renderPending = true;  // at once after a quiet spell, then at most every RENDER_INTERVAL_MS
  setTimeout(render, Math.max(0, ui.renderedAtMs + RENDER_INTERVAL_MS - performance.now()));
}

function connect() {
  const source = new EventSource("events");
  source.addEventListener("hello", (message) => {
    const hello = JSON.parse(message.data);
    ui.clockOffsetS = hello.server_ts - Date.now() / 1000;
    if (hello.reset) {
      ui.model = modelNew();
      ui.model.showAllClusters = CONFIG.cluster === null;
      ui.drawnEventCount = -1;
    }
    ui.live = true;
    renderSoon();
  });
  source.onmessage = (message) => {
    applyEvent(ui.model, JSON.parse(message.data));
    renderSoon();
  };
  source.onerror = () => {
    ui.live = false;
    renderSoon();
  };
}

document.getElementById("cluster-name").textContent = CONFIG.cluster === null ? "every cluster" : CONFIG.cluster;
document.title = `shardsim live · ${CONFIG.cluster === null ? "every cluster" : CONFIG.cluster}`;
renderLegend();
connect();
setInterval(renderSoon, CLOCK_TICK_MS);
