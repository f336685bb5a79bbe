#!/usr/bin/env node
// A stand-in for the Kubernetes API server, for mseg's tests: the list and
// watch protocol of the real one (JSON lists with metadata.resourceVersion,
// chunked watch streams with bookmarks, resume from a resourceVersion, 410
// Gone after compaction, bearer tokens, TLS), for the resources msegd
// watches. Every object it serves is validated against the Kubernetes
// OpenAPI models (kubernetes-models), offline. Fault injection through
// POST /_control, object changes through POST /_objects. docs/kubernetes.md
// says what it implements and what it does not.
//
//   node standin.js --port-file F [--listen 127.0.0.1] [--port 0]
//       [--tls-cert C --tls-key K] [--token-file F] [--state F]
//       [--rv-start N] [--history N] [--bookmark-ms N]
//       [--preload MODULE.js --preload-args JSON [--validate-every N]]
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const crypto = require('crypto');
const v1 = require('kubernetes-models/v1');
const netv1 = require('kubernetes-models/networking.k8s.io/v1');
const discv1 = require('kubernetes-models/discovery.k8s.io/v1');
const { ObjectMeta } = require('@kubernetes-models/apimachinery/apis/meta/v1');

function arg(name, def) {
	const i = process.argv.indexOf('--' + name);
	return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

// An AllowList custom resource: ObjectMeta from the models, the spec as the
// CRD's schema (deploy/kubernetes/crd-allowlist.yaml) requires at its top.
class AllowList {
	constructor(o) { Object.assign(this, o); }
	validate() {
		new ObjectMeta(this.metadata || {}).validate();
		if (typeof this.spec !== 'object' || this.spec === null || Array.isArray(this.spec))
			throw new Error('data/spec must be object');
		const known = ['mode', 'isolation', 'groups', 'allow'];
		for (const k of Object.keys(this.spec))
			if (!known.includes(k))
				throw new Error(`data/spec must NOT have additional property '${k}'`);
		if (typeof this.spec.groups !== 'object' || this.spec.groups === null)
			throw new Error("data/spec must have required property 'groups'");
	}
}

// path (cluster-wide list) -> what it serves
const RESOURCES = {
	'/api/v1/pods': { kind: 'Pod', apiVersion: 'v1', model: v1.Pod, namespaced: true },
	'/api/v1/namespaces': { kind: 'Namespace', apiVersion: 'v1', model: v1.Namespace },
	'/api/v1/nodes': { kind: 'Node', apiVersion: 'v1', model: v1.Node },
	'/api/v1/services': { kind: 'Service', apiVersion: 'v1', model: v1.Service, namespaced: true },
	'/apis/networking.k8s.io/v1/networkpolicies': { kind: 'NetworkPolicy',
		apiVersion: 'networking.k8s.io/v1', model: netv1.NetworkPolicy, namespaced: true },
	'/apis/discovery.k8s.io/v1/endpointslices': { kind: 'EndpointSlice',
		apiVersion: 'discovery.k8s.io/v1', model: discv1.EndpointSlice, namespaced: true },
	'/apis/mseg.io/v1/allowlists': { kind: 'AllowList', apiVersion: 'mseg.io/v1',
		model: AllowList, namespaced: true },
};
const BY_KIND = {};
for (const [path, r] of Object.entries(RESOURCES)) {
	r.path = path;
	BY_KIND[r.apiVersion + '/' + r.kind] = r;
}

const statePath = arg('state', null);
const tokenFile = arg('token-file', null);
const historyMax = Number(arg('history', '1000'));
const bookmarkMs = Number(arg('bookmark-ms', '1000'));

let rv = Number(arg('rv-start', '1000'));
let oldestRv = rv;              // a watch from an RV older than this: 410
const objects = new Map();      // "path\0ns\0name" -> object
let events = [];                // { rv, path, type, object }
const watches = new Set();
const faults = { status: 0, statusCount: 0, stall: false, cutMidEvent: false,
	expireContinue: 0 };
const stats = { lists: {}, pages: {}, watches: {}, gone: 0, continueGone: 0, unauthorized: 0,
	requests: 0 };
// paged lists (limit/continue): the snapshot each list started from, as the
// real server reads one etcd revision for every page of a list
const snapshots = new Map();    // id -> { rv, items }
const SNAPSHOTS_MAX = 64;

function key(r, o) {
	return r.path + '\0' + (r.namespaced ? o.metadata.namespace || 'default' : '') + '\0' +
		o.metadata.name;
}

function validate(r, o) {
	if (!o || typeof o !== 'object' || !o.metadata || typeof o.metadata.name !== 'string')
		throw new Error('metadata.name is required');
	if (r.namespaced && !o.metadata.namespace)
		o.metadata.namespace = 'default';
	const m = new r.model(o);
	m.validate();
}

function saveState() {
	if (!statePath)
		return;
	const list = [...objects.values()];
	fs.writeFileSync(statePath + '.tmp', JSON.stringify(list));
	fs.renameSync(statePath + '.tmp', statePath);
}

function emit(path, type, object) {
	const ev = { rv, path, type, object };
	events.push(ev);
	while (events.length > historyMax) {
		events.shift();
		oldestRv = events[0].rv - 1;
	}
	for (const w of watches)
		if (w.path === path)
			w.send(type, object);
}

// apply (create or update) or delete one object; throws with a message.
// @trusted: a generated object of a shape already validated (--preload)
function change(op, o, trusted) {
	const r = o && BY_KIND[o.apiVersion + '/' + o.kind];
	if (!r)
		throw new Error(`unknown apiVersion/kind '${o && o.apiVersion}/${o && o.kind}'`);
	if (!trusted)
		validate(r, o);
	const k = key(r, o);
	const old = objects.get(k);
	if (op === 'delete') {
		if (!old)
			throw new Error(`${r.kind} '${o.metadata.name}' not found`);
		objects.delete(k);
		rv++;
		const gone = JSON.parse(JSON.stringify(old));
		gone.metadata.resourceVersion = String(rv);
		emit(r.path, 'DELETED', gone);
		return gone;
	}
	const obj = trusted ? o : JSON.parse(JSON.stringify(o));
	rv++;
	obj.metadata.resourceVersion = String(rv);
	obj.metadata.uid = old ? old.metadata.uid : obj.metadata.uid || crypto.randomUUID();
	obj.metadata.creationTimestamp = old ? old.metadata.creationTimestamp :
		new Date().toISOString().replace(/\.\d+Z$/, 'Z');
	if (!trusted)
		validate(r, obj);
	objects.set(k, obj);
	emit(r.path, old ? 'MODIFIED' : 'ADDED', obj);
	return obj;
}

function status(res, code, reason, message) {
	const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {},
		status: 'Failure', message, reason, code });
	res.writeHead(code, { 'Content-Type': 'application/json' });
	res.end(body + '\n');
}

function authorized(req) {
	if (!tokenFile)
		return true;
	let tok;
	try {
		tok = fs.readFileSync(tokenFile, 'utf8').trim();
	} catch (e) {
		return false;
	}
	return req.headers.authorization === 'Bearer ' + tok;
}

function readBody(req) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
		req.on('error', reject);
	});
}

async function control(req, res, url) {
	if (url.pathname === '/_control' && req.method === 'GET') {
		res.writeHead(200, { 'Content-Type': 'application/json' });
		res.end(JSON.stringify({ resourceVersion: String(rv), oldest: String(oldestRv),
			activeWatches: watches.size, objects: objects.size, ...stats }) + '\n');
		return;
	}
	let body;
	try {
		body = JSON.parse(await readBody(req));
	} catch (e) {
		return status(res, 400, 'BadRequest', 'body: ' + e.message);
	}
	if (url.pathname === '/_control') {
		if ('status' in body) {
			faults.status = Number(body.status) || 0;
			faults.statusCount = Number(body.count || 0);   // 0: until cleared
		}
		if ('stall' in body)
			faults.stall = !!body.stall;
		if (body.cutMidEvent)
			faults.cutMidEvent = true;
		if (body.closeWatches)
			for (const w of [...watches])
				w.end();
		if ('expireContinue' in body)
			faults.expireContinue = Number(body.expireContinue) || 0;   // the next N continues: 410
		if (body.expireAll) {
			// compact the whole history: every watch ends with 410,
			// every resume from an RV before now gets 410, and so does
			// every continue token of a list started before
			events = [];
			oldestRv = rv;
			snapshots.clear();
			for (const w of [...watches])
				w.gone();
		}
		res.writeHead(200, { 'Content-Type': 'application/json' });
		res.end(JSON.stringify(faults) + '\n');
		return;
	}
	// /_objects: {"op":"apply"|"delete","object":{...}} or {"items":[...]}
	const ops = Array.isArray(body.items) ? body.items : [body];
	const out = [];
	try {
		for (const o of ops)
			out.push(change(o.op || 'apply', o.object));
	} catch (e) {
		return status(res, 422, 'Invalid', e.message);
	}
	saveState();
	res.writeHead(200, { 'Content-Type': 'application/json' });
	res.end(JSON.stringify({ resourceVersion: String(rv), objects: out }) + '\n');
}

// fieldSelector "metadata.name=N,metadata.namespace=NS" ('=' or '==') ->
// a predicate on objects; throws on another field, as the API server
// answers 400 for a field label it does not support
function fieldSelector(text) {
	const reqs = [];
	for (const part of (text || '').split(',').filter((p) => p !== '')) {
		const m = part.match(/^([^=!]+)==?(.*)$/);
		if (!m || !['metadata.name', 'metadata.namespace'].includes(m[1]))
			throw new Error(`field label not supported: ${m ? m[1] : part}`);
		reqs.push([m[1].slice('metadata.'.length), m[2]]);
	}
	return (o) => reqs.every(([f, v]) => o.metadata && o.metadata[f] === v);
}

function listOf(r, ns, match) {
	const items = [];
	for (const [k, o] of objects)
		if (k.startsWith(r.path + '\0') && (!ns || o.metadata.namespace === ns) &&
		    (!match || match(o)))
			items.push(o);
	items.sort((a, b) => key(r, a) < key(r, b) ? -1 : 1);
	return items;
}

function watch(req, res, r, ns, params, match) {
	const from = params.get('resourceVersion');
	const bookmarks = params.get('allowWatchBookmarks') === 'true' ||
		params.get('allowWatchBookmarks') === '1';
	const timeout = Number(params.get('timeoutSeconds') || '0');
	stats.watches[r.path] = (stats.watches[r.path] || 0) + 1;
	res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
	const w = {
		path: r.path,
		closed: false,
		send(type, object) {
			if (this.closed || (type !== 'BOOKMARK' && type !== 'ERROR' &&
					    ((ns && object.metadata && object.metadata.namespace !== ns) ||
					     !match(object))))
				return;
			if (faults.stall)
				return;   // the connection stays open, silent
			const line = JSON.stringify({ type, object }) + '\n';
			if (faults.cutMidEvent) {
				faults.cutMidEvent = false;
				res.write(line.slice(0, line.length >> 1));
				this.closed = true;
				watches.delete(this);
				res.socket.destroy();
				return;
			}
			res.write(line);
		},
		end() {
			if (this.closed)
				return;
			this.closed = true;
			watches.delete(this);
			clearInterval(this.bm);
			clearTimeout(this.to);
			res.end();
		},
		gone() {
			stats.gone++;
			this.send('ERROR', { kind: 'Status', apiVersion: 'v1', metadata: {},
				status: 'Failure', reason: 'Expired', code: 410,
				message: `too old resource version: ${from} (${oldestRv})` });
			this.end();
		},
	};
	req.on('close', () => {
		w.closed = true;
		watches.delete(w);
		clearInterval(w.bm);
		clearTimeout(w.to);
	});
	if (timeout > 0)
		w.to = setTimeout(() => w.end(), timeout * 1000);
	if (bookmarks)
		w.bm = setInterval(() => w.send('BOOKMARK', { kind: r.kind, apiVersion: r.apiVersion,
			metadata: { resourceVersion: String(rv) } }), bookmarkMs);
	if (!from || from === '0') {
		// no resourceVersion: the current state as ADDED events, then changes
		for (const o of listOf(r, ns, match))
			w.send('ADDED', o);
	} else {
		const n = Number(from);
		if (!Number.isInteger(n) || n < oldestRv) {
			w.gone();
			return;
		}
		for (const ev of events)
			if (ev.rv > n && ev.path === r.path)
				w.send(ev.type, ev.object);
	}
	if (!w.closed)
		watches.add(w);
}

async function handle(req, res) {
	const url = new URL(req.url, 'http://x');
	stats.requests++;
	if (url.pathname === '/_control' || url.pathname === '/_objects')
		return control(req, res, url);
	if (!authorized(req)) {
		stats.unauthorized++;
		return status(res, 401, 'Unauthorized', 'Unauthorized');
	}
	if (faults.status) {
		const code = faults.status;
		if (faults.statusCount > 0 && --faults.statusCount === 0)
			faults.status = 0;
		return status(res, code, 'InternalError', 'injected failure');
	}
	if (req.method !== 'GET')
		return status(res, 405, 'MethodNotAllowed', 'the stand-in serves GET only');
	let path = url.pathname.replace(/\/+$/, '');
	let ns = null;
	// namespaced lists: /api/v1/namespaces/NS/pods, /apis/G/V/namespaces/NS/R
	const m = path.match(/^(\/api\/v1|\/apis\/[^/]+\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)$/);
	if (m && RESOURCES[m[1] + '/' + m[3]] && RESOURCES[m[1] + '/' + m[3]].namespaced) {
		ns = m[2];
		path = m[1] + '/' + m[3];
	}
	// one object: /api/v1/nodes/NAME, /api/v1/namespaces/NAME
	const one = path.match(/^\/api\/v1\/(nodes|namespaces)\/([^/]+)$/);
	if (one) {
		const r = RESOURCES['/api/v1/' + one[1]];
		const o = objects.get(r.path + '\0\0' + one[2]);
		if (!o)
			return status(res, 404, 'NotFound', `${one[1]} "${one[2]}" not found`);
		res.writeHead(200, { 'Content-Type': 'application/json' });
		res.end(JSON.stringify(Object.assign({ kind: r.kind, apiVersion: r.apiVersion }, o)));
		return;
	}
	const r = RESOURCES[path];
	if (!r)
		return status(res, 404, 'NotFound', 'the server could not find the requested resource');
	let match;
	try {
		match = fieldSelector(url.searchParams.get('fieldSelector'));
	} catch (e) {
		return status(res, 400, 'BadRequest', e.message);
	}
	const w = url.searchParams.get('watch');
	if (w === '1' || w === 'true')
		return watch(req, res, r, ns, url.searchParams, match);
	return list(res, r, ns, url.searchParams, match);
}

// GET of a list: whole, or a page of at most limit=N objects with a
// metadata.continue token for the rest (all pages from the snapshot of the
// first; a fieldSelector applies to every page). A token older than the
// retained history (expireAll, or expireContinue from /_control) gets the
// real server's 410.
function list(res, r, ns, params, match) {
	const limit = Number(params.get('limit') || '0');
	const cont = params.get('continue');
	let snap, start = 0;
	stats.pages[r.path] = (stats.pages[r.path] || 0) + 1;
	if (cont) {
		let tok;
		try {
			tok = JSON.parse(Buffer.from(cont, 'base64').toString('utf8'));
		} catch (e) {
			return status(res, 400, 'BadRequest', 'continue key is not valid: ' + e.message);
		}
		snap = snapshots.get(tok.id);
		if (faults.expireContinue > 0 || !snap || tok.rv < oldestRv || snap.path !== r.path) {
			if (faults.expireContinue > 0)
				faults.expireContinue--;
			stats.continueGone++;
			return status(res, 410, 'Expired', 'The provided continue parameter is too old ' +
				'to display a consistent list result. You can start a new list without ' +
				'the continue parameter, or use the continue token in this response to ' +
				'retrieve the remainder of the results. Continuing with the provided ' +
				'token results in an inconsistent list - objects that were created, ' +
				'modified, or deleted between the time the first chunk was returned and ' +
				'now may show up in the list.');
		}
		start = tok.start;
	} else {
		stats.lists[r.path] = (stats.lists[r.path] || 0) + 1;
		snap = { id: crypto.randomUUID(), rv, path: r.path, items: listOf(r, ns, match) };
	}
	const items = limit > 0 ? snap.items.slice(start, start + limit) : snap.items;
	const md = { resourceVersion: String(snap.rv) };
	if (limit > 0 && start + limit < snap.items.length) {
		md.continue = Buffer.from(JSON.stringify({ id: snap.id, rv: snap.rv,
			start: start + limit })).toString('base64');
		md.remainingItemCount = snap.items.length - start - limit;
		if (!snapshots.has(snap.id)) {
			snapshots.set(snap.id, snap);
			while (snapshots.size > SNAPSHOTS_MAX)
				snapshots.delete(snapshots.keys().next().value);
		}
	} else {
		snapshots.delete(snap.id);
	}
	res.writeHead(200, { 'Content-Type': 'application/json' });
	res.end(JSON.stringify({ kind: r.kind + 'List', apiVersion: r.apiVersion, metadata: md,
		items }));
}

// objects of an earlier run (same objects, new resourceVersion history)
if (statePath && fs.existsSync(statePath)) {
	for (const o of JSON.parse(fs.readFileSync(statePath, 'utf8'))) {
		delete o.metadata.resourceVersion;
		change('apply', o);
	}
	events = [];
	oldestRv = rv;
}

// a generated cluster (bench/kube_scale.js): objects() of the module, of
// which every --validate-every'th object is validated (all of them with 1);
// the generator makes every object of a kind from one template
const preload = arg('preload', null);
if (preload) {
	const gen = require(require('path').resolve(preload));
	const every = Math.max(1, Number(arg('validate-every', '1')));
	let i = 0, checked = 0;
	const t0 = Date.now();
	for (const o of gen.objects(JSON.parse(arg('preload-args', '{}')))) {
		const check = i++ % every === 0;
		checked += check;
		change('apply', o, !check);
	}
	events = [];
	oldestRv = rv;
	process.stdout.write(`standin: preloaded ${i} objects (${checked} validated) in ` +
			     `${Date.now() - t0} ms\n`);
}

const tlsCert = arg('tls-cert', null);
const server = tlsCert ?
	https.createServer({ cert: fs.readFileSync(tlsCert), key: fs.readFileSync(arg('tls-key')) },
			   handle) :
	http.createServer(handle);
server.keepAliveTimeout = 60000;
server.listen(Number(arg('port', '0')), arg('listen', '127.0.0.1'), () => {
	const port = server.address().port;
	const pf = arg('port-file', null);
	if (pf) {
		fs.writeFileSync(pf + '.tmp', String(port) + '\n');
		fs.renameSync(pf + '.tmp', pf);
	}
	process.stdout.write(`standin: listening on ${tlsCert ? 'https' : 'http'} port ${port}, ` +
			     `resourceVersion ${rv}\n`);
});
process.on('SIGTERM', () => process.exit(0));
