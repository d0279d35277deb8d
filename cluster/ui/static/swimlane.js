// The swimlane: an SVG with one lane per collection / shard / peer, a coloured segment per state held,
// translucent bands for faults, and a time axis; it grows with time (open segments reach "now").
const SWIM = {labelPx: 150, rightPx: 14, lanePx: 18, laneGapPx: 3, groupHeadPx: 16, groupGapPx: 8, topPx: 16,
              axisPx: 22, pxPerSecondMin: 3, spanSecondsMin: 10, segmentLabelPxMin: 64};
const TICK_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600];

function swimlaneGroups(model) {
  const groups = new Map();  // "collection/shard" -> {collection, shard, lanes: []}
  for (const lane of model.lanes.values()) {
    const key = `${lane.collection}/${lane.shard}`;
    if (!groups.has(key)) groups.set(key, {collection: lane.collection, shard: lane.shard, lanes: []});
    groups.get(key).lanes.push(lane);
  }
  const ordered = [...groups.values()].sort((a, b) =>
    a.collection.localeCompare(b.collection) || (Number(a.shard) - Number(b.shard)));
  for (const group of ordered) group.lanes.sort((a, b) => Number(a.peer) - Number(b.peer));
  return ordered;
}

function renderSwimlane(model, now) {
  const box = document.getElementById("swimlane-box");
  if (!model.lanes.size) return;
  const atRightEdge = box.scrollLeft + box.clientWidth >= box.scrollWidth - 4;
  const t0 = model.firstTs;
  const t1 = Math.max(now, model.lastTs);
  const spanS = Math.max(t1 - t0, SWIM.spanSecondsMin);
  const plotPx = Math.max(box.clientWidth - SWIM.labelPx - SWIM.rightPx - 2, spanS * SWIM.pxPerSecondMin, 200);
  const x = (ts) => SWIM.labelPx + (Math.min(Math.max(ts, t0), t0 + spanS) - t0) / spanS * plotPx;
  const width = SWIM.labelPx + plotPx + SWIM.rightPx;
  const parts = [];
  let y = SWIM.topPx;
  for (const group of swimlaneGroups(model)) {
    parts.push(`<text class="group-label" x="4" y="${y + 12}">${esc(group.collection)} / shard ${esc(group.shard)}</text>`);
    y += SWIM.groupHeadPx;
    for (const lane of group.lanes) {
      parts.push(laneSvg(model, lane, y, x, t1, plotPx));
      y += SWIM.lanePx + SWIM.laneGapPx;
    }
    y += SWIM.groupGapPx;
  }
  const bottom = y;
  parts.push(...faultBands(model, x, t1, bottom));
  parts.push(...axisSvg(t0, spanS, x, bottom));
  parts.push(`<line x1="${x(t1)}" y1="${SWIM.topPx - 4}" x2="${x(t1)}" y2="${bottom}" stroke="#111827" stroke-dasharray="2 3"/>`);
  box.innerHTML = `<svg id="swimlane" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${bottom + SWIM.axisPx}"
    role="img" aria-label="replica states over time">${parts.join("")}</svg>`;
  if (atRightEdge) box.scrollLeft = box.scrollWidth;
}

function laneSvg(model, lane, y, x, t1, plotPx) {
  const parts = [`<rect x="${SWIM.labelPx}" y="${y}" width="${plotPx}" height="${SWIM.lanePx}" fill="#f3f4f6"/>`,
    `<text class="lane-label" x="${SWIM.labelPx - 6}" y="${y + 13}" text-anchor="end">${esc(peerLabel(model, lane.peer))}</text>`];
  for (const segment of lane.segments) {
    const end = segment.end === null ? t1 : segment.end;
    const left = x(segment.start), right = Math.max(x(end), left + 1);
    const colours = stateColours(segment.state);
    const title = `${segment.state} on ${peerLabel(model, lane.peer)}: ${clock(segment.start)} → ` +
      (segment.end === null ? "now" : clock(segment.end)) + ` (${durationHuman(end - segment.start)})` +
      (segment.rule ? `, rule ${segment.rule}` : "");
    parts.push(`<rect class="segment" data-state="${esc(segment.state)}" x="${left}" y="${y}" width="${right - left}"
      height="${SWIM.lanePx}" fill="${colours.fill}"><title>${esc(title)}</title></rect>`);
    if (right - left >= SWIM.segmentLabelPxMin) {
      parts.push(`<text class="segment-label" x="${left + 4}" y="${y + 13}" fill="${colours.text}">${esc(segment.state)}</text>`);
    }
  }
  return parts.join("");
}

function faultBands(model, x, t1, bottom) {
  return model.faultHistory.map((fault) => {
    const left = x(fault.start), right = Math.max(x(fault.end === null ? t1 : fault.end), left + 2);
    return `<rect x="${left}" y="${SWIM.topPx - 2}" width="${right - left}" height="${bottom - SWIM.topPx + 2}"
        fill="#d64541" fill-opacity="0.10" stroke="#d64541" stroke-opacity="0.5" stroke-dasharray="3 2">
        <title>${esc(`${fault.fault} ${fault.target}`)}</title></rect>
      <text class="fault-label" x="${left + 3}" y="${SWIM.topPx - 5}">⚡ ${esc(fault.fault)} ${esc(fault.target)}</text>`;
  });
}

function axisSvg(t0, spanS, x, bottom) {
  const step = TICK_STEPS_S.find((s) => spanS / s <= 12) || TICK_STEPS_S[TICK_STEPS_S.length - 1];
  const parts = [`<line x1="${SWIM.labelPx}" y1="${bottom}" x2="${x(t0 + spanS)}" y2="${bottom}" stroke="#9ca3af"/>`,
    `<text class="tick" x="4" y="${bottom + 14}">from ${clock(t0).slice(0, 8)}</text>`];
  for (let offset = 0; offset <= spanS; offset += step) {
    const tx = x(t0 + offset);
    const label = offset >= 60 ? `${Math.floor(offset / 60)}m${offset % 60 ? `${offset % 60}s` : ""}` : `${offset}s`;
    parts.push(`<line x1="${tx}" y1="${bottom}" x2="${tx}" y2="${bottom + 4}" stroke="#9ca3af"/>`,
               `<text class="tick" x="${tx}" y="${bottom + 15}" text-anchor="middle">${label}</text>`);
  }
  return parts;
}
