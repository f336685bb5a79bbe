// The flow map's model, layout and SVG drawing: pure functions of the
// graph (GET /v1/graph), the flow records (GET /v1/flows) and the filters.
// No library; everything the picture shows is also text in the DOM.

const SVGNS = 'http://www.w3.org/2000/svg';
const NODE_W = 150, NODE_H = 40, CELL_W = 172, CELL_H = 58, PAD = 16, HEAD = 30;
const MAX_ROW_W = 1500;

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

function portText(f) {
  return f.dport !== undefined ? `${f.proto}/${f.dport}` : String(f.proto);
}

// graph + flows + filters -> {nodes: Map, edges: Map, namespaces: [...]}
export function buildModel(graph, flows, filters, nowMs) {
  const nodes = new Map(), edges = new Map(), ipToEp = new Map();
  const f = filters || {};
  const since = f.window > 0 ? nowMs - f.window * 1000 : 0;

  for (const ep of graph.endpoints) {
    nodes.set('ep:' + ep.id, { key: 'ep:' + ep.id, kind: 'endpoint', id: ep.id, name: ep.name || ep.id,
      ns: ep.namespace, ips: ep.ips, labels: ep.labels || {}, ingress: ep.ingress, egress: ep.egress, hits: 0 });
    for (const ip of ep.ips) ipToEp.set(ip, ep.id);
  }
  const edgeOf = (from, to, kind) => {
    const key = `${from}|${to}|${kind}`;
    let e = edges.get(key);
    if (!e) {
      e = { key, from, to, kind, ports: new Set(), count: 0, last: '', flows: [] };
      edges.set(key, e);
    }
    return e;
  };
  if (!f.verdict || f.verdict === 'allowed') {
    for (const a of graph.edges) {
      const e = edgeOf('ep:' + a.from, 'ep:' + a.to, 'allowed');
      a.ports.forEach(p => e.ports.add(p));
      e.policy = a.policy; e.rule = a.rule;
    }
    for (const p of graph.peers) {
      const gkey = `grp:${p.group}|${p.cidrs.join(',')}`;
      if (!nodes.has(gkey))
        nodes.set(gkey, { key: gkey, kind: 'group', id: p.group, name: p.group, ns: null,
          ips: p.cidrs, labels: {}, hits: 0 });
      const ep = 'ep:' + p.endpoint;
      const e = p.direction === 'ingress' ? edgeOf(gkey, ep, 'allowed') : edgeOf(ep, gkey, 'allowed');
      p.ports.forEach(x => e.ports.add(x));
      e.policy = p.policy; e.rule = p.rule;
    }
  }
  if (f.verdict !== 'allowed') {
    for (const r of flows) {
      if (f.verdict && r.verdict !== f.verdict) continue;
      if (since && Date.parse(r.last_seen) < since) continue;
      if (!r.endpoint || !r.endpoint.id) continue;
      const me = 'ep:' + r.endpoint.id;
      if (!nodes.has(me))
        nodes.set(me, { key: me, kind: 'endpoint', id: r.endpoint.id, name: r.endpoint.name || r.endpoint.id,
          ns: r.endpoint.namespace, ips: [], labels: {}, hits: 0 });
      const otherAddr = r.direction === 'ingress' ? r.src : r.dst;
      let other;
      if (ipToEp.has(otherAddr)) {
        other = 'ep:' + ipToEp.get(otherAddr);
      } else {
        const net = peerNet(otherAddr);
        other = 'peer:' + net;
        let n = nodes.get(other);
        if (!n) {
          n = { key: other, kind: 'peer', id: net, name: net, ns: null, ips: [], labels: {}, hits: 0 };
          nodes.set(other, n);
        }
        if (!n.ips.includes(otherAddr) && n.ips.length < 64) n.ips.push(otherAddr);
      }
      const from = r.direction === 'ingress' ? other : me, to = r.direction === 'ingress' ? me : other;
      const e = edgeOf(from, to, r.verdict === 'audited' ? 'audited' : 'dropped');
      e.ports.add(portText(r));
      e.count += r.count || 1;
      if (r.last_seen > e.last) { e.last = r.last_seen; e.sample = r; }
      nodes.get(me).hits += r.count || 1;
    }
  }
  // namespace and endpoint filters keep what touches them
  let keep = null;
  if (f.ns || f.ep) {
    const sel = n => n && (f.ep ? n.key === 'ep:' + f.ep : n.ns === f.ns);
    keep = new Set();
    for (const n of nodes.values()) if (sel(n)) keep.add(n.key);
    for (const [k, e] of edges) {
      if (sel(nodes.get(e.from)) || sel(nodes.get(e.to))) { keep.add(e.from); keep.add(e.to); }
      else edges.delete(k);
    }
  }
  // outside peers and groups appear only with an edge
  const touched = new Set();
  for (const e of edges.values()) { touched.add(e.from); touched.add(e.to); }
  for (const [k, n] of nodes)
    if ((keep && !keep.has(k)) || (n.kind !== 'endpoint' && !touched.has(k))) nodes.delete(k);
  return { nodes, edges };
}

// positions: namespaces as clusters (a grid of nodes each), the outside first
export function layout(model) {
  const clusters = new Map();
  for (const n of model.nodes.values()) {
    const c = n.kind === 'endpoint' ? n.ns : '(outside)';
    if (!clusters.has(c)) clusters.set(c, []);
    clusters.get(c).push(n);
  }
  const names = [...clusters.keys()].sort((a, b) =>
    (a === '(outside)' ? -1 : b === '(outside)' ? 1 : a.localeCompare(b)));
  const out = { clusters: [], pos: new Map(), width: 0, height: 0 };
  let x = PAD, y = PAD, rowH = 0;
  for (const name of names) {
    const list = clusters.get(name).sort((a, b) =>
      (a.kind === b.kind ? 0 : a.kind === 'group' ? -1 : 1) || a.name.localeCompare(b.name));
    const cols = Math.max(1, Math.ceil(Math.sqrt(list.length / 2)));
    const rows = Math.ceil(list.length / cols);
    const w = cols * CELL_W + PAD, h = HEAD + rows * CELL_H + PAD / 2;
    if (x > PAD && x + w > MAX_ROW_W) { x = PAD; y += rowH + PAD; rowH = 0; }
    out.clusters.push({ name, x, y, w, h, outside: name === '(outside)' });
    list.forEach((n, i) => {
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

// (re)draw the whole map into @svg
export function draw(svg, model, lay, selected) {
  const parts = [];
  svg.setAttribute('width', lay.width);
  svg.setAttribute('height', lay.height);
  svg.setAttribute('viewBox', `0 0 ${lay.width} ${lay.height}`);
  const defs = el('defs', {});
  for (const k of ['allowed', 'dropped', 'audited']) {
    const m = el('marker', { id: 'arrow-' + k, viewBox: '0 0 10 10', refX: '9', refY: '5',
      markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse' });
    m.appendChild(el('path', { d: 'M0,0 L10,5 L0,10 z', class: k }));
    defs.appendChild(m);
  }
  parts.push(defs);
  const gc = el('g', { class: 'clusters' });
  for (const c of lay.clusters) {
    const g = el('g', { class: 'cluster' + (c.outside ? ' outside' : ''), 'aria-label':
      c.outside ? 'outside hosts' : `namespace ${c.name}` });
    g.appendChild(el('rect', { x: c.x, y: c.y, width: c.w, height: c.h, rx: 8 }));
    g.appendChild(el('text', { x: c.x + 10, y: c.y + 19 }, c.outside ? 'outside' : `namespace ${c.name}`));
    gc.appendChild(g);
  }
  parts.push(gc);
  const ge = el('g', { class: 'edges' });
  const labels = model.edges.size <= 160;
  const pairs = new Map();
  for (const e of model.edges.values()) {
    const p = lay.pos.get(e.from), q = lay.pos.get(e.to);
    if (!p || !q) continue;
    const pk = [e.from, e.to].sort().join('|');
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
    const w = e.kind === 'allowed' ? 1.2 : Math.min(6, 1.5 + Math.log10(1 + e.count) * 1.5);
    const path = el('path', { d: `M${x1},${y1} C${c1x},${c1y} ${c2x},${c2y} ${x2},${y2}`,
      class: `edge ${e.kind}${selected === e.key ? ' selected' : ''}`, 'stroke-width': w,
      'marker-end': `url(#arrow-${e.kind})`, tabindex: '0', role: 'button', 'data-edge': e.key,
      'aria-label': edgeLabel(e, model.nodes) });
    path.appendChild(el('title', {}, edgeLabel(e, model.nodes)));
    ge.appendChild(path);
    if (labels) {
      const mx = 0.125 * x1 + 0.375 * c1x + 0.375 * c2x + 0.125 * x2;
      const my = 0.125 * y1 + 0.375 * c1y + 0.375 * c2y + 0.125 * y2;
      const t = e.kind === 'allowed' ? [...e.ports].join(' ') : `${e.kind} ×${e.count} ${[...e.ports].slice(0, 2).join(' ')}`;
      ge.appendChild(el('text', { x: mx, y: my - 3, class: `edge-label ${e.kind}`, 'text-anchor': 'middle' }, t));
    }
  }
  parts.push(ge);
  const gn = el('g', { class: 'nodes' });
  for (const n of model.nodes.values()) {
    const p = lay.pos.get(n.key);
    const g = el('g', { class: `node ${n.kind === 'endpoint' ? 'endpoint' : 'peer'}${n.hits ? ' hit' : ''}${selected === n.key ? ' selected' : ''}`,
      transform: `translate(${p.x},${p.y})`, tabindex: '0', role: 'button', 'data-key': n.key,
      'aria-label': nodeLabel(n) });
    g.appendChild(el('rect', { width: NODE_W, height: NODE_H, rx: 5 }));
    g.appendChild(el('text', { x: 8, y: 16 }, n.name.length > 22 ? n.name.slice(0, 21) + '…' : n.name));
    const sub = n.kind === 'peer' ? `${n.ips.length} host${n.ips.length === 1 ? '' : 's'}: ${n.ips.slice(0, 2).join(' ')}` : n.ips.slice(0, 2).join(' ');
    g.appendChild(el('text', { x: 8, y: 31, class: 'sub' }, sub.length > 28 ? sub.slice(0, 27) + '…' : sub));
    g.appendChild(el('title', {}, nodeLabel(n)));
    gn.appendChild(g);
  }
  parts.push(gn);
  svg.replaceChildren(...parts);
}
