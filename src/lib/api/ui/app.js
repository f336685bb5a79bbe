// The flow map page (docs/ui.md): loads the graph and the flow records,
// follows the flow stream, and draws with map.js. It only reads, except
// POST /v1/check, which changes nothing. Every request carries X-Mseg-UI
// (and the bearer token on msegd's TCP listener).
import { newModel, flowApply, visible, layout, draw, edgeLabel } from './map.js';

const $ = id => document.getElementById(id);
const TOKEN_KEY = 'mseg-token';
// edges drawn at most (the refused ones first): more is neither readable
// nor fast; the filters narrow it down
const MAX_DRAWN = 400;
const state = {
  graph: { endpoints: [], edges: [], peers: [] }, graphText: '',
  flows: new Map(), agg: null, model: null, selected: null,
  filters: { ns: '', ep: '', verdict: '', window: 0 },
  timer: 0, stream: null, stats: { first: null, last: null, renders: 0 },
};

class AuthError extends Error {
  constructor(code, body) { super(body.error || `HTTP ${code}`); this.code = code; this.body = body; }
}

function headers(extra) {
  const h = { 'X-Mseg-UI': '1', ...extra };
  const t = sessionStorage.getItem(TOKEN_KEY);
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

async function api(path, opts = {}) {
  const res = await fetch(path, { credentials: 'same-origin', cache: 'no-store', ...opts,
    headers: headers(opts.headers) });
  if (res.status === 401 || res.status === 403) {
    let body = {};
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    throw new AuthError(res.status, body);
  }
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    try { msg = (await res.json()).error || msg; } catch (e) { /* keep */ }
    throw new Error(`${path}: ${msg}`);
  }
  return res;
}

function setStatus(text) { $('status').textContent = text; }

function showAuth(err) {
  $('main').hidden = true;
  if (state.stream) state.stream.abort();
  if (err.body && err.body.login === 'mseg-ui') {
    $('denied').hidden = false;
    $('login').hidden = true;
    setStatus('not signed in');
    return;
  }
  $('login').hidden = false;
  $('denied').hidden = true;
  $('login-error').textContent = sessionStorage.getItem(TOKEN_KEY) ? `refused: ${err.message}` : '';
  sessionStorage.removeItem(TOKEN_KEY);
  setStatus('sign in with the API token');
}

// ---- drawing ----

function render() {
  state.timer = 0;
  const t0 = performance.now();
  if (!state.agg) rebuild();
  const t1 = performance.now();
  state.model = visible(state.agg, state.filters, MAX_DRAWN);
  const lay = layout(state.model);
  const t2 = performance.now();
  draw($('map'), state.model, lay, state.selected);
  const t3 = performance.now();
  renderLists(state.model);
  const ms = performance.now() - t0;
  state.stats.phases = { aggregate: t1 - t0, select: t2 - t1, draw: t3 - t2, lists: performance.now() - t3 };
  if (state.stats.first === null) state.stats.first = ms;
  state.stats.last = ms;
  state.stats.renders++;
  const n = state.model;
  let dropped = 0;
  for (const e of n.edges.values()) if (e.kind === 'dropped') dropped += e.count;
  setStatus(`${state.graph.endpoints.length} endpoints, ${state.flows.size} flow records, ` +
    `${dropped} dropped packets shown` +
    `${n.hidden ? `; ${n.hidden} more connections not drawn (filter to see them)` : ''}; drawn in ${ms.toFixed(1)} ms`);
  return ms;
}

// the aggregate of every record from scratch (graph or time window changed)
function rebuild() {
  const w = state.filters.window;
  state.agg = newModel(state.graph, w > 0 ? Date.now() - w * 1000 : 0);
  for (const r of state.flows.values()) flowApply(state.agg, r, 1);
}

function scheduleRender() {
  if (!state.timer) state.timer = setTimeout(render, 40);
}

// The map as text: one table row per drawn connection, one item per node.
// Rows and items are kept by key and rebuilt only when their text changed.
const listCache = { rows: new Map(), items: new Map() };

function renderLists(model) {
  const order = { dropped: 0, audited: 1, allowed: 2 };
  // a stable order (kind, then the pair), so that a live update changes
  // rows in place instead of moving them
  const list = [...model.edges.values()].sort((a, b) =>
    order[a.kind] - order[b.kind] || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const rows = [], seenRows = new Map();
  for (const e of list) {
    const cells = [model.nodes.get(e.from).name, model.nodes.get(e.to).name, e.kind,
      [...e.ports].join(' '), e.kind === 'allowed' ? '' : String(e.count), e.last || ''];
    const sig = cells.join('\t');
    let tr = listCache.rows.get(e.key);
    if (!tr || tr.__sig !== sig) {
      tr = document.createElement('tr');
      cells.forEach((c, i) => {
        const td = document.createElement('td');
        td.textContent = c;
        if (i === 2) td.className = e.kind;
        tr.appendChild(td);
      });
      tr.dataset.edge = e.key;
      tr.__sig = sig;
    }
    seenRows.set(e.key, tr);
    rows.push(tr);
  }
  listCache.rows = seenRows;
  childrenSync($('edge-table').tBodies[0], rows);
  const items = [], seenItems = new Map();
  for (const n of model.nodes.values()) {
    const labels = Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(' ');
    const text = `${n.name} (${n.kind === 'endpoint' ? 'namespace ' + n.ns : n.kind === 'group' ? 'address group' : 'outside'})` +
      `${n.ips.length ? ': ' + n.ips.join(', ') : ''}${labels ? ' [' + labels + ']' : ''}`;
    let li = listCache.items.get(n.key);
    if (!li || li.textContent !== text) {
      li = document.createElement('li');
      li.textContent = text;
      li.dataset.key = n.key;
    }
    seenItems.set(n.key, li);
    items.push(li);
  }
  listCache.items = seenItems;
  childrenSync($('node-list'), items);
}

// Make @parent's children @want (in that order), moving and removing as
// few elements as possible: the order is stable, so a live update only
// inserts and removes what changed.
function childrenSync(parent, want) {
  const keep = new Set(want);
  for (const ch of [...parent.children]) if (!keep.has(ch)) ch.remove();
  let cur = parent.firstElementChild;
  for (const w of want) {
    if (cur === w) { cur = cur.nextElementSibling; continue; }
    parent.insertBefore(w, cur);
  }
}

function fillFilters() {
  const sel = (id, values) => {
    const s = $(id), cur = s.value;
    const opts = [s.options[0]];
    for (const v of values) {
      const o = document.createElement('option');
      o.value = v; o.textContent = v;
      opts.push(o);
    }
    s.replaceChildren(...opts);
    s.value = values.includes(cur) ? cur : '';
  };
  sel('f-ns', [...new Set(state.graph.endpoints.map(e => e.namespace))].sort());
  sel('f-ep', state.graph.endpoints.map(e => e.id).sort());
}

// ---- details ----

function detailsShow(title, ...content) {
  const h = document.createElement('h2');
  h.textContent = title;
  $('details').replaceChildren(h, ...content);
}

function para(text, cls) {
  const p = document.createElement('p');
  p.textContent = text;
  if (cls) p.className = cls;
  return p;
}

function flowTable(list) {
  const t = document.createElement('table');
  const head = document.createElement('tr');
  for (const h of ['last seen', 'dir', 'from', 'to', 'port', 'verdict', 'count']) {
    const th = document.createElement('th');
    th.textContent = h; th.scope = 'col';
    head.appendChild(th);
  }
  t.appendChild(head);
  for (const f of list) {
    const tr = document.createElement('tr');
    [f.last_seen.slice(11, 19), f.direction, f.src, f.dst, f.dport !== undefined ? `${f.proto}/${f.dport}` : f.proto,
      f.verdict, String(f.count)].forEach((c, i) => {
      const td = document.createElement('td');
      td.textContent = c;
      if (i === 5) td.className = f.verdict;
      tr.appendChild(td);
    });
    t.appendChild(tr);
  }
  return t;
}

function recentFlows(pred) {
  return [...state.flows.values()].filter(pred)
    .sort((a, b) => b.last_seen.localeCompare(a.last_seen)).slice(0, 15);
}

async function nodeClick(key) {
  const n = state.model.nodes.get(key);
  if (!n) return;
  state.selected = key;
  scheduleRender();
  if (n.kind !== 'endpoint') {
    const ips = new Set(n.ips);
    detailsShow(`${n.kind === 'group' ? 'address group' : 'outside hosts'} ${n.name}`,
      para(n.ips.join(', ')), para('Recent flows'),
      flowTable(recentFlows(f => ips.has(f.src) || ips.has(f.dst))));
    return;
  }
  const labels = Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(' ');
  const flows = flowTable(recentFlows(f => f.endpoint && f.endpoint.id === n.id));
  detailsShow(`endpoint ${n.name}`, para(`namespace ${n.ns}; ${n.ips.join(', ')}${labels ? '; ' + labels : ''}`),
    para('loading the rules the kernel holds…'));
  try {
    const r = await (await api(`/v1/rules/${encodeURIComponent(n.id)}`)).json();
    const pre = document.createElement('pre');
    pre.textContent = r.table || '(no table: not isolated)';
    pre.setAttribute('aria-label', `rules of ${n.id}`);
    pre.id = 'rules-text';
    const iso = r.isolated || {};
    detailsShow(`endpoint ${n.name}`,
      para(`namespace ${n.ns}; ${n.ips.join(', ')}${labels ? '; ' + labels : ''}`),
      para(`programmed: ${r.programmed ? 'yes' : 'no'}; kernel ${r.state || 'unknown'}` +
        `${r.n_differences ? ` (${r.n_differences} differences)` : ''}; isolated ingress ${iso.ingress ? 'yes' : 'no'}, egress ${iso.egress ? 'yes' : 'no'}` +
        `${r.error ? '; error: ' + r.error : ''}`),
      para('Rules in the kernel (table inet mseg):'), pre, para('Recent flows'), flows);
  } catch (e) {
    if (e instanceof AuthError) return showAuth(e);
    detailsShow(`endpoint ${n.name}`, para(String(e.message), 'error'), flows);
  }
}

async function edgeClick(key) {
  const e = state.model.edges.get(key);
  if (!e) return;
  state.selected = key;
  scheduleRender();
  const a = state.model.nodes.get(e.from), b = state.model.nodes.get(e.to);
  let q;
  if (e.sample) {
    const f = e.sample;
    q = { from: f.src, to: f.dst, proto: f.proto };
    if (f.dport !== undefined) q.port = f.dport;
  } else {
    const port = [...e.ports][0] || 'any';
    q = { from: a.kind === 'endpoint' ? a.id : (a.ips[0] || '').replace(/\/.*/, ''),
      to: b.kind === 'endpoint' ? b.id : (b.ips[0] || '').replace(/\/.*/, '') };
    if (port.includes('/')) q.port = port.replace(/-.*/, ''); else q.proto = port;
  }
  detailsShow(edgeLabel(e, state.model.nodes), para('asking msegd which rule decides…'));
  try {
    const r = await (await api('/v1/check', { method: 'POST', body: JSON.stringify(q),
      headers: { 'Content-Type': 'application/json' } })).json();
    const ul = document.createElement('ul');
    for (const reason of r.reasons || []) {
      const li = document.createElement('li');
      li.textContent = reason;
      ul.appendChild(li);
    }
    const extra = e.sample ? [para('Recent flows'), flowTable(recentFlows(f =>
      (f.src === e.sample.src || f.dst === e.sample.dst) && f.endpoint.id === e.sample.endpoint.id))] : [];
    detailsShow(edgeLabel(e, state.model.nodes),
      para(`check ${r.src} → ${r.dst} ${r.proto}${r.port !== undefined ? '/' + r.port : ''}: ` +
        `${r.allowed ? 'allowed' : 'denied'} (${r.verdict})`, r.allowed ? 'verdict-allowed' : 'verdict-denied'),
      ul, ...extra);
  } catch (err) {
    if (err instanceof AuthError) return showAuth(err);
    detailsShow(edgeLabel(e, state.model.nodes), para(String(err.message), 'error'));
  }
}

function chipsShow(key, target) {
  const n = state.model && state.model.nodes.get(key);
  const box = $('chips');
  if (!n) { box.hidden = true; return; }
  const chips = Object.entries(n.labels).map(([k, v]) => {
    const s = document.createElement('span');
    s.className = 'chip';
    s.textContent = `${k}=${v}`;
    return s;
  });
  const head = document.createElement('div');
  head.textContent = n.kind === 'endpoint' ? `${n.id} · ${n.ns}` : n.name;
  box.replaceChildren(head, ...(chips.length ? chips : [document.createTextNode(n.ips.slice(0, 4).join(' '))]));
  const wrap = $('map-wrap').getBoundingClientRect(), r = target.getBoundingClientRect();
  box.style.left = `${r.left - wrap.left + $('map-wrap').scrollLeft}px`;
  box.style.top = `${r.bottom - wrap.top + $('map-wrap').scrollTop + 4}px`;
  box.hidden = false;
}

// ---- data ----

async function loadGraph() {
  const text = await (await api('/v1/graph')).text();
  if (text === state.graphText) return false;
  state.graphText = text;
  state.graph = JSON.parse(text);
  state.agg = null;
  fillFilters();
  return true;
}

function flowAdd(rec) {
  const old = state.flows.get(rec.id);
  if (old) {
    if (state.agg) flowApply(state.agg, old, -1);
    state.flows.delete(rec.id);
  }
  state.flows.set(rec.id, rec);
  if (state.agg) flowApply(state.agg, rec, 1);
  if (state.flows.size > 10000) {
    // the oldest record goes (insertion order is arrival order)
    const first = state.flows.values().next().value;
    if (state.agg) flowApply(state.agg, first, -1);
    state.flows.delete(first.id);
  }
}

async function follow() {
  let since = '';
  for (;;) {
    const ctl = new AbortController();
    state.stream = ctl;
    try {
      const res = await api(`/v1/flows?follow=1${since ? '&since=' + encodeURIComponent(since) : ''}`,
        { signal: ctl.signal });
      setStatus('following the flow stream');
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (!line.trim()) continue;
          const rec = JSON.parse(line);
          flowAdd(rec);
          if (!since || rec.last_seen > since) since = rec.last_seen;
        }
        scheduleRender();
      }
    } catch (e) {
      if (e instanceof AuthError) return showAuth(e);
      if (e.name === 'AbortError') return;
    }
    setStatus('flow stream interrupted; reconnecting');
    await new Promise(r => setTimeout(r, 2000));
  }
}

async function start() {
  try {
    await loadGraph();
    const flows = await (await api('/v1/flows?limit=10000')).json();
    for (const f of flows.flows || []) flowAdd(f);
  } catch (e) {
    if (e instanceof AuthError) return showAuth(e);
    setStatus(`cannot load: ${e.message}`);
    return;
  }
  $('login').hidden = true;
  $('denied').hidden = true;
  $('main').hidden = false;
  render();
  follow();
  setInterval(async () => {
    try { if (await loadGraph()) scheduleRender(); } catch (e) { if (e instanceof AuthError) showAuth(e); }
    // records leave the time window as time passes
    if (state.filters.window > 0) { state.agg = null; scheduleRender(); }
  }, 5000);
}

// ---- events ----

function wire() {
  $('login-form').addEventListener('submit', ev => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
    $('token').value = '';
    start();
  });
  const onFilter = () => {
    state.filters = { ns: $('f-ns').value, ep: $('f-ep').value, verdict: $('f-verdict').value,
      window: Number($('f-window').value) };
    state.agg = null;
    render();
  };
  for (const id of ['f-ns', 'f-ep', 'f-verdict', 'f-window']) $(id).addEventListener('change', onFilter);
  const map = $('map');
  const act = ev => {
    const n = ev.target.closest('[data-key]'), e = ev.target.closest('[data-edge]');
    if (n) nodeClick(n.dataset.key);
    else if (e) edgeClick(e.dataset.edge);
  };
  map.addEventListener('click', act);
  map.addEventListener('keydown', ev => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); act(ev); } });
  const hover = ev => {
    const n = ev.target.closest && ev.target.closest('[data-key]');
    if (n) chipsShow(n.dataset.key, n); else $('chips').hidden = true;
  };
  map.addEventListener('mouseover', hover);
  map.addEventListener('focusin', hover);
  map.addEventListener('mouseleave', () => { $('chips').hidden = true; });
  map.addEventListener('focusout', () => { $('chips').hidden = true; });
  $('edge-table').addEventListener('click', ev => {
    const tr = ev.target.closest('tr[data-edge]');
    if (tr) edgeClick(tr.dataset.edge);
  });
}

// For the browser test's scale measurement: draw synthetic data (no
// request is made) and time a first render and a live update.
window.msegUI = {
  stats: () => ({ ...state.stats }),
  renderSynthetic(graph, flows) {
    const t0 = performance.now();
    state.graph = graph;
    state.graphText = '';
    state.agg = null;
    state.flows = new Map();
    for (const f of flows) flowAdd(f);
    fillFilters();
    render();
    return performance.now() - t0;
  },
  update(flows) {
    const t0 = performance.now();
    for (const f of flows) flowAdd(f);
    render();
    return performance.now() - t0;
  },
};

wire();
start();
