// The flow map's model, layout and SVG drawing: pure functions of the
// graph (GET /v1/graph), the flow records (GET /v1/flows) and the filters.
// No library; everything the picture shows is also text in the DOM.

const SVGNS = 'http://www.w3.org/2000/svg';
const NODE_W = 150, NODE_H = 40, CELL_W = 200, CELL_H = 80, PAD = 24, HEAD = 36;
const MAX_ROW_W = 2000;

// "10.99.0.0/24" for IPv4, "2001:db8:0:1::/64" for IPv6
export function peerNet(addr) {
  if (!addr.includes(':')) {
    const p = addr.split('.');
    return `${p[0]}.${p[1]}.${p[2]}.0/24`;
  }
  let [head, tail] = addr.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.slice(0, 4).map(g => parseInt(g || '0', 16).toString(16)).join(':') + '::/64';
}

// The model: endpoint nodes and allowed edges from the graph, flow edges
// aggregated from the records (flowApply adds or takes back one record, so
// a live update costs what changed, not the 10,000 records).
export function newModel(graph, sinceMs) {
  const m = { nodes: new Map(), edges: new Map(), ipToEp: new Map(), since: sinceMs || 0 };
  for (const ep of graph.endpoints) {
    m.nodes.set('ep:' + ep.id, { key: 'ep:' + ep.id, kind: 'endpoint', id: ep.id, name: ep.name || ep.id,
      ns: ep.namespace, ips: ep.ips, labels: ep.labels || {}, hits: 0 });
    for (const ip of ep.ips) m.ipToEp.set(ip, 'ep:' + ep.id);
  }
  for (const a of graph.edges) {
    const e = edgeOf(m, 'ep:' + a.from, 'ep:' + a.to, 'allowed');
    a.ports.forEach(p => e.ports.add(p));
    e.policy = a.policy; e.rule = a.rule;
  }
  for (const p of graph.peers) {
    const gkey = `grp:${p.group}|${p.cidrs.join(',')}`;
    if (!m.nodes.has(gkey))
      m.nodes.set(gkey, { key: gkey, kind: 'group', id: p.group, name: p.group, ns: null,
        ips: p.cidrs, labels: {}, hits: 0 });
    const ep = 'ep:' + p.endpoint;
    const e = p.direction === 'ingress' ? edgeOf(m, gkey, ep, 'allowed') : edgeOf(m, ep, gkey, 'allowed');
    p.ports.forEach(x => e.ports.add(x));
    e.policy = p.policy; e.rule = p.rule;
  }
  return m;
}

function edgeOf(m, from, to, kind) {
  const key = from + '|' + to + '|' + kind;
  let e = m.edges.get(key);
  if (!e) {
    e = { key, from, to, kind, ports: new Set(), count: 0, last: '', sample: null };
    m.edges.set(key, e);
  }
  return e;
}

// Add (@sign 1) or take back (-1) flow record @r.
export function flowApply(m, r, sign) {
  if (!r.endpoint || !r.endpoint.id) return;
  if (m.since && Date.parse(r.last_seen) < m.since) return;
  const me = 'ep:' + r.endpoint.id;
  let self = m.nodes.get(me);
  if (!self) {
    self = { key: me, kind: 'endpoint', id: r.endpoint.id, name: r.endpoint.name || r.endpoint.id,
      ns: r.endpoint.namespace, ips: [], labels: {}, hits: 0 };
    m.nodes.set(me, self);
  }
  const ing = r.direction === 'ingress';
  const otherAddr = ing ? r.src : r.dst;
  let other = m.ipToEp.get(otherAddr);
  if (!other) {
    const net = peerNet(otherAddr);
    other = 'peer:' + net;
    let n = m.nodes.get(other);
    if (!n) {
      n = { key: other, kind: 'peer', id: net, name: net, ns: null, ips: [], labels: {}, hits: 0 };
      m.nodes.set(other, n);
    }
    if (sign > 0 && n.ips.length < 64 && !n.ips.includes(otherAddr)) n.ips.push(otherAddr);
  }
  const e = edgeOf(m, ing ? other : me, ing ? me : other, r.verdict === 'audited' ? 'audited' : 'dropped');
  const c = (r.count || 1) * sign;
  e.count += c;
  self.hits += c;
  if (sign > 0) {
    e.ports.add(r.dport !== undefined ? r.proto + '/' + r.dport : String(r.proto));
    if (r.last_seen >= e.last) { e.last = r.last_seen; e.sample = r; }
  } else if (e.count <= 0) {
    m.edges.delete(e.key);
  }
}

// What the filters let through, and at most @max edges (the refused ones
// first, newest first): {nodes, edges, hidden}
export function visible(m, f, max) {
  const nodes = new Map(), edges = new Map();
  const sel = f.ep ? (n => n && n.key === 'ep:' + f.ep) : f.ns ? (n => n && n.ns === f.ns) : null;
  const list = [];
  for (const e of m.edges.values()) {
    if (f.verdict && e.kind !== f.verdict) continue;
    if (sel && !sel(m.nodes.get(e.from)) && !sel(m.nodes.get(e.to))) continue;
    list.push(e);
  }
  const rank = { dropped: 0, audited: 1, allowed: 2 };
  if (list.length > max)
    list.sort((a, b) => rank[a.kind] - rank[b.kind] || (a.last < b.last ? 1 : a.last > b.last ? -1 : b.count - a.count));
  const shown = list.length > max ? list.slice(0, max) : list;
  for (const e of shown) edges.set(e.key, e);
  for (const n of m.nodes.values())
    if (n.kind === 'endpoint' && (!sel || sel(n))) nodes.set(n.key, n);
  // every outside node with a connection that passes the filters (so that
  // the picture keeps its places while the drawn edges change), unless
  // there are too many: then those of the drawn edges
  const outside = new Set();
  for (const e of list) {
    if (!e.from.startsWith('ep:')) outside.add(e.from);
    if (!e.to.startsWith('ep:')) outside.add(e.to);
    if (outside.size > 150) break;
  }
  if (outside.size <= 150)
    for (const k of outside) nodes.set(k, m.nodes.get(k));
  for (const e of shown)
    for (const k of [e.from, e.to])
      if (!nodes.has(k)) nodes.set(k, m.nodes.get(k));
  return { nodes, edges, hidden: list.length - shown.length };
}

// positions: namespaces as clusters (a grid of nodes each), the outside first
export function layout(model) {
  const clusters = new Map();
  // tiers: an endpoint sits after those allowed to reach it (a few rounds
  // of relaxation over the allowed edges; cycles just stop growing)
  const rank = new Map();
  for (let round = 0; round < 6; round++) {
    let moved = false;
    for (const e of model.edges.values()) {
      if (e.kind !== 'allowed' || !e.from.startsWith('ep:') || !e.to.startsWith('ep:')) continue;
      const r = (rank.get(e.from) || 0) + 1;
      if (r > (rank.get(e.to) || 0) && r < 8) { rank.set(e.to, r); moved = true; }
    }
    if (!moved) break;
  }
  for (const n of model.nodes.values()) {
    const c = n.kind === 'endpoint' ? n.ns : '(outside)';
    if (!clusters.has(c)) clusters.set(c, []);
    clusters.get(c).push(n);
  }
  const names = [...clusters.keys()].sort((a, b) =>
    (a === '(outside)' ? -1 : b === '(outside)' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  const out = { clusters: [], pos: new Map(), width: 0, height: 0, sig: '' };
  let x = PAD, y = PAD, rowH = 0;
  for (const name of names) {
    const list = clusters.get(name).sort((a, b) =>
      (a.kind === b.kind ? 0 : a.kind === 'group' ? -1 : 1) ||
      (rank.get(a.key) || 0) - (rank.get(b.key) || 0) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    // a small namespace is one row, in tier order; a large one a grid
    const cols = name === '(outside)' ? Math.max(1, Math.ceil(list.length / 12)) :
      list.length <= 6 ? list.length : Math.ceil(Math.sqrt(list.length / 2));
    const rows = Math.ceil(list.length / cols);
    const w = cols * CELL_W + PAD, h = HEAD + rows * CELL_H + PAD / 2;
    if (x > PAD && x + w > MAX_ROW_W) { x = PAD; y += rowH + PAD; rowH = 0; }
    out.clusters.push({ name, x, y, w, h, outside: name === '(outside)' });
    list.forEach((n, i) => {
      out.sig += n.key + ';';
      out.pos.set(n.key, { x: x + PAD / 2 + (i % cols) * CELL_W + (CELL_W - NODE_W) / 2,
        y: y + HEAD + Math.floor(i / cols) * CELL_H });
    });
    x += w + PAD * 2;
    rowH = Math.max(rowH, h);
    out.width = Math.max(out.width, x);
  }
  out.height = y + rowH + PAD;
  return out;
}

function el(name, attrs, text) {
  const e = document.createElementNS(SVGNS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

function nodeLabel(n) {
  if (n.kind === 'endpoint') return `endpoint ${n.name} in namespace ${n.ns}, ${n.ips.join(', ')}`;
  if (n.kind === 'group') return `address group ${n.name}: ${n.ips.join(', ')}`;
  return `outside hosts ${n.name}: ${n.ips.join(', ')}`;
}

export function edgeLabel(e, nodes) {
  const a = nodes.get(e.from), b = nodes.get(e.to);
  const ports = [...e.ports].join(' ');
  if (e.kind === 'allowed')
    return `allowed: ${a.name} to ${b.name} on ${ports} (policy ${e.policy} rule ${e.rule})`;
  return `${e.kind}: ${a.name} to ${b.name} on ${ports}, ${e.count} packets, last seen ${e.last}`;
}

// Draw the map into @svg. When the nodes and their places are those of the
// last call, only the edges and nodes that changed are touched (a live
// update costs what changed); otherwise everything is drawn anew.
export function draw(svg, model, lay, selected) {
  // the places follow from the sorted nodes: same list, same picture
  const sigNodes = lay.sig;
  let c = svg.__mseg;
  if (!c || c.sigNodes !== sigNodes || c.width !== lay.width || c.height !== lay.height) {
    c = drawFrame(svg, model, lay);
    c.sigNodes = sigNodes;
    svg.__mseg = c;
  }
  // nodes: only their classes change
  for (const n of model.nodes.values()) {
    const cls = `node ${n.kind === 'endpoint' ? 'endpoint' : 'peer'}${n.hits > 0 ? ' hit' : ''}${selected === n.key ? ' selected' : ''}`;
    const g = c.nodes.get(n.key);
    if (g.__cls !== cls) { g.setAttribute('class', cls); g.__cls = cls; }
  }
  const labels = model.edges.size <= 160;
  const pairs = new Map(), seen = new Set();
  for (const e of model.edges.values()) {
    const p = lay.pos.get(e.from), q = lay.pos.get(e.to);
    if (!p || !q) continue;
    const pk = e.from < e.to ? e.from + '|' + e.to : e.to + '|' + e.from;
    const k = pairs.get(pk) || 0;
    pairs.set(pk, k + 1);
    const off = (k % 2 ? -1 : 1) * Math.ceil(k / 2) * 14;
    let x1, y1, x2, y2, c1x, c1y, c2x, c2y;
    if (Math.abs(p.x - q.x) < 4) {
      // same column: bow out to the right
      x1 = p.x + NODE_W; y1 = p.y + NODE_H / 2; x2 = q.x + NODE_W; y2 = q.y + NODE_H / 2;
      const b = 30 + Math.abs(y2 - y1) / 4 + off;
      c1x = x1 + b; c1y = y1; c2x = x2 + b; c2y = y2;
    } else {
      const right = q.x > p.x;
      x1 = right ? p.x + NODE_W : p.x; y1 = p.y + NODE_H / 2 + off / 2;
      x2 = right ? q.x : q.x + NODE_W; y2 = q.y + NODE_H / 2 + off / 2;
      const d = Math.max(40, Math.abs(x2 - x1) / 2) * (right ? 1 : -1);
      c1x = x1 + d; c1y = y1 + off; c2x = x2 - d; c2y = y2 + off;
    }
    const d = `M${x1},${y1} C${c1x},${c1y} ${c2x},${c2y} ${x2},${y2}`;
    const label = edgeLabel(e, model.nodes);
    const short = e.kind === 'allowed' ? [...e.ports].join(' ') : `${e.kind} ×${e.count} ${[...e.ports].slice(0, 2).join(' ')}`;
    const sig = d + label + (selected === e.key) + labels;
    seen.add(e.key);
    let el2 = c.edges.get(e.key);
    if (el2 && el2.sig === sig) continue;
    if (!el2) {
      const path = el('path', { 'marker-end': `url(#arrow-${e.kind})`, tabindex: '0', role: 'button', 'data-edge': e.key });
      const title = el('title', {});
      path.appendChild(title);
      const text = el('text', { class: `edge-label ${e.kind}`, 'text-anchor': 'middle' });
      c.edgeGroup.appendChild(path);
      c.labelGroup.appendChild(text);
      el2 = { path, title, text };
      c.edges.set(e.key, el2);
    }
    el2.sig = sig;
    el2.path.setAttribute('d', d);
    el2.path.setAttribute('class', `edge ${e.kind}${selected === e.key ? ' selected' : ''}`);
    el2.path.setAttribute('stroke-width', e.kind === 'allowed' ? 1.2 : Math.min(6, 1.5 + Math.log10(1 + e.count) * 1.5));
    el2.path.setAttribute('aria-label', label);
    el2.title.textContent = label;
    if (labels) {
      el2.text.setAttribute('x', 0.125 * x1 + 0.375 * c1x + 0.375 * c2x + 0.125 * x2);
      el2.text.setAttribute('y', 0.125 * y1 + 0.375 * c1y + 0.375 * c2y + 0.125 * y2 - 3);
      el2.text.textContent = short;
    } else if (el2.text.textContent) {
      el2.text.textContent = '';
    }
  }
  for (const [k, v] of c.edges)
    if (!seen.has(k)) { v.path.remove(); v.text.remove(); c.edges.delete(k); }
}

// The parts that change only with the nodes: clusters, nodes, markers.
function drawFrame(svg, model, lay) {
  const c = { nodes: new Map(), edges: new Map(), width: lay.width, height: lay.height };
  svg.setAttribute('width', lay.width);
  svg.setAttribute('height', lay.height);
  svg.setAttribute('viewBox', `0 0 ${lay.width} ${lay.height}`);
  const defs = el('defs', {});
  for (const k of ['allowed', 'dropped', 'audited']) {
    const m = el('marker', { id: 'arrow-' + k, viewBox: '0 0 10 10', refX: '9', refY: '5',
      markerWidth: '9', markerHeight: '9', markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' });
    m.appendChild(el('path', { d: 'M0,0 L10,5 L0,10 z', class: k }));
    defs.appendChild(m);
  }
  const gc = el('g', { class: 'clusters' });
  for (const cl of lay.clusters) {
    const g = el('g', { class: 'cluster' + (cl.outside ? ' outside' : ''), 'aria-label':
      cl.outside ? 'outside hosts' : `namespace ${cl.name}` });
    g.appendChild(el('rect', { x: cl.x, y: cl.y, width: cl.w, height: cl.h, rx: 8 }));
    g.appendChild(el('text', { x: cl.x + 10, y: cl.y + 19 }, cl.outside ? 'outside' : `namespace ${cl.name}`));
    gc.appendChild(g);
  }
  c.edgeGroup = el('g', { class: 'edges' });
  c.labelGroup = el('g', { class: 'edge-labels', 'aria-hidden': 'true' });
  const gn = el('g', { class: 'nodes' });
  for (const n of model.nodes.values()) {
    const p = lay.pos.get(n.key);
    const g = el('g', { class: 'node', transform: `translate(${p.x},${p.y})`, tabindex: '0', role: 'button',
      'data-key': n.key, 'aria-label': nodeLabel(n) });
    g.appendChild(el('rect', { width: NODE_W, height: NODE_H, rx: 5 }));
    g.appendChild(el('text', { x: 8, y: 16 }, n.name.length > 22 ? n.name.slice(0, 21) + '…' : n.name));
    const sub = n.kind === 'peer' ? `${n.ips.length} host${n.ips.length === 1 ? '' : 's'}: ${n.ips.slice(0, 2).join(' ')}` : n.ips.slice(0, 2).join(' ');
    g.appendChild(el('text', { x: 8, y: 31, class: 'sub' }, sub.length > 28 ? sub.slice(0, 27) + '…' : sub));
    g.appendChild(el('title', {}, nodeLabel(n)));
    gn.appendChild(g);
    c.nodes.set(n.key, g);
  }
  svg.replaceChildren(defs, gc, c.edgeGroup, c.labelGroup, gn);
  return c;
}
