// The dashboard page: renders the driver's snapshots as they arrive on the WebSocket. Everything a
// worker or the bus said (log lines, error reasons) is set as text, never parsed as HTML.
'use strict';

/** Driver clock minus this browser's, so uptimes do not depend on the two agreeing. */
let skew = 0;
/** The last snapshot, re-rendered every second so uptimes move. */
let last;
const rows = new Map();

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
}

function duration(ms) {
  if (ms === undefined || ms < 0) return '';
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s % 60}s` : `${s}s`;
}

function number(v, digits) {
  return v === undefined || v === null ? '–' : v.toFixed(digits);
}

const COLUMNS = ['partition', 'state', 'attempt', 'host', 'pid', 'uptime', 'restarts', 'rate', 'requests', 'errors', 'p50', 'p99', 'updates', 'log'];
const NUMERIC = new Set(['partition', 'attempt', 'pid', 'uptime', 'rate', 'requests', 'errors', 'p50', 'p99', 'updates']);

function rowFor(partition) {
  let tr = rows.get(partition);
  if (tr) return tr;
  tr = el('tr');
  tr.dataset.partition = String(partition);
  for (const c of COLUMNS) tr.append(el('td', { className: NUMERIC.has(c) ? `${c} num` : c }));
  tr.querySelector('td.state').append(el('span'));
  document.querySelector('#partitions tbody').append(tr);
  rows.set(partition, tr);
  return tr;
}

/** Sets a cell's text only when it changed, so an open `<details>` and the selection stay put. */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** A `<details>` cell: a one-line summary, the whole text below. Kept open across updates. */
function setDetails(cell, summary, body) {
  let d = cell.querySelector('details');
  if (!summary) {
    if (d) d.remove();
    return;
  }
  if (!d) {
    d = el('details', {}, el('summary'), el('pre'));
    cell.append(d);
  }
  setText(d.querySelector('summary'), summary);
  setText(d.querySelector('pre'), body);
}

function renderPartition(p, now) {
  const tr = rowFor(p.partition);
  tr.dataset.state = p.state ?? 'pending';
  tr.dataset.attempt = p.attempt === undefined ? '' : String(p.attempt);
  const cell = (c) => tr.querySelector(`td.${c}`);
  setText(cell('partition'), String(p.partition));
  setText(cell('state').firstChild, p.state ?? 'pending');
  setText(cell('attempt'), p.attempt === undefined ? '' : String(p.attempt));
  setText(cell('host'), p.host ? (p.port === null || p.port === undefined ? `${p.host} (NATS only)` : `${p.host}:${p.port}`) : '');
  setText(cell('pid'), p.pid ? String(p.pid) : '');
  setText(cell('uptime'), p.since && p.state !== 'lost' && p.state !== 'finished' ? duration(now - p.since) : '');
  const causes = p.restarts.map((r) => `attempt ${r.previousAttempt} → ${r.attempt}: ${r.reason ?? 'no reason given'}`).join('\n');
  const lastCause = p.restarts.at(-1)?.reason ?? p.lastError;
  setText(cell('restarts').firstChild ?? cell('restarts').appendChild(document.createTextNode('')), String(p.restartCount));
  setDetails(cell('restarts'), lastCause ? lastCause.split('\n')[0] : '', causes || lastCause || '');
  const r = p.requests;
  setText(cell('rate'), r ? number(r.rate, 1) : '–');
  setText(cell('requests'), r ? String(r.requests) : '–');
  setText(cell('errors'), r ? String(r.errors) : '–');
  setText(cell('p50'), r ? number(r.p50, 2) : '–');
  setText(cell('p99'), r ? number(r.p99, 2) : '–');
  setText(cell('updates'), p.updates ? String(p.updates.pending) : '–');
  setDetails(cell('log'), p.log.at(-1) ?? '', p.log.join('\n'));
}

function renderTimeline(entries) {
  const list = document.getElementById('timeline');
  const items = entries
    .slice()
    .reverse()
    .map((e) => {
      const who = e.partition === undefined ? '' : `partition ${e.partition}${e.attempt === undefined ? '' : ` attempt ${e.attempt}`} `;
      const item = el('li', {}, el('time', { textContent: new Date(e.at).toLocaleTimeString() }), `${who}${e.kind}${e.detail ? `: ${e.detail}` : ''}`);
      item.dataset.kind = e.kind;
      return item;
    });
  list.replaceChildren(...items);
}

function render(s) {
  const now = Date.now() + skew;
  const c = s.cluster;
  setText(document.getElementById('cluster-id'), c.id ?? '');
  setText(document.getElementById('cluster-state'), c.state);
  document.body.dataset.clusterState = c.state;
  setText(document.getElementById('cluster-launcher'), c.launcher ?? '');
  const serving = s.partitions.filter((p) => p.state === 'serving').length;
  setText(document.getElementById('cluster-serving'), `${serving}/${c.partitions} serving`);
  const spark = [
    c.spark ? `${c.spark.applicationId} (${c.spark.master}, Spark ${c.spark.sparkVersion})` : '',
    c.job
      ? `job ${c.job.group ?? ''} ${c.job.state}${c.job.stage ? ` (stage ${c.job.stage.id}: ${c.job.stage.active} running, ${c.job.stage.completed}/${c.job.stage.tasks} done)` : ''}${c.job.error ? `: ${c.job.error}` : ''}`
      : '',
  ]
    .filter(Boolean)
    .join(' · ');
  document.getElementById('spark-row').hidden = !spark;
  setText(document.getElementById('cluster-spark'), spark);
  for (const p of s.partitions) renderPartition(p, now);
}

function connect(delay) {
  const status = document.getElementById('connection');
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  ws.onopen = () => {
    delay = 500;
    status.dataset.connected = 'true';
    setText(status, 'connected');
  };
  ws.onmessage = (m) => {
    const s = JSON.parse(m.data);
    skew = s.now - Date.now();
    const timelineChanged = !last || last.timeline.length !== s.timeline.length || last.timeline.at(-1)?.at !== s.timeline.at(-1)?.at;
    last = s;
    render(s);
    if (timelineChanged) renderTimeline(s.timeline);
  };
  ws.onclose = () => {
    status.dataset.connected = 'false';
    setText(status, 'disconnected; retrying');
    setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
  };
}

document.addEventListener('DOMContentLoaded', () => {
  connect(500);
  setInterval(() => last && render(last), 1000);
});
