// The cluster of bench/kube_scale.sh, and its churn. Three uses:
//
//   require()d by the stand-in (--preload bench/kube_scale.js, with
//   --preload-args '{"pods":150000,...}'): objects() yields the cluster
//   (namespaces, pods, NetworkPolicies; `local` pods on node `node`);
//
//   node kube_scale.js locals ARGS-JSON: the local pods as msegd's endpoint
//   registrations (one JSON line each: id, name, namespace, pod_uid, ips);
//
//   node kube_scale.js churn URL RATE SECONDS ARGS-JSON OUT: RATE changes a
//   second (a third creates, a third deletes, a third label changes, one
//   in ten of those on a local pod) through the stand-in's /_objects, each
//   written to OUT as "send_ms rv kind" when the stand-in has accepted it
//   (it sends the watch event before it answers).
'use strict';

const http = require('http');
const fs = require('fs');

function ipOf(k) {      // pod k -> 10.x.y.z (k < 2^24 - 2)
	const v = k + 1;
	return `10.${(v >> 16) & 255}.${(v >> 8) & 255}.${v & 255}`;
}
function uidOf(k) {
	return '00000000-0000-4000-8000-' + k.toString(16).padStart(12, '0');
}
const APPS = 10, TEAMS = 50;

function pod(a, k, labels) {
	const perNs = Math.ceil(a.pods / a.namespaces);
	const ns = 'ns-' + Math.floor(k / perNs);
	// the first pod of each of the first `local` namespaces is this node's
	const local = k % perNs === 0 && Math.floor(k / perNs) < a.local;
	return { apiVersion: 'v1', kind: 'Pod',
		metadata: { name: 'p-' + k, namespace: ns, uid: uidOf(k),
			labels: labels || { app: 'a' + (k % APPS), tier: k % 3 ? 'back' : 'front' } },
		spec: { nodeName: local ? a.node : 'node-' + (k % 4999),
			containers: [{ name: 'c', image: 'registry.example/app:1',
				ports: [{ name: 'http', containerPort: 8080 }] }] },
		status: { phase: 'Running', podIP: ipOf(k), podIPs: [{ ip: ipOf(k) }] } };
}

// Two NetworkPolicies per namespace (10,000 for 5,000): the namespace's
// app=aN pods accept app=aN+1 pods of the namespaces of its team on 8080;
// every pod of the namespace accepts its own namespace on the named port.
function netpol(a, n, which) {
	const ns = 'ns-' + n;
	if (which === 0)
		return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy',
			metadata: { name: 'team-in', namespace: ns },
			spec: { podSelector: { matchLabels: { app: 'a' + (n % APPS) } },
				policyTypes: ['Ingress'],
				ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 't' + (n % TEAMS) } },
					podSelector: { matchLabels: { app: 'a' + ((n + 1) % APPS) } } }],
					ports: [{ protocol: 'TCP', port: 8080 }] }] } };
	return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy',
		metadata: { name: 'same-ns', namespace: ns },
		spec: { podSelector: {}, policyTypes: ['Ingress'],
			ingress: [{ from: [{ podSelector: {} }], ports: [{ protocol: 'TCP', port: 'http' }] }] } };
}

function* objects(a) {
	for (let n = 0; n < a.namespaces; n++)
		yield { apiVersion: 'v1', kind: 'Namespace',
			metadata: { name: 'ns-' + n, labels: { team: 't' + (n % TEAMS) } } };
	for (let k = 0; k < a.pods; k++)
		yield pod(a, k);
	for (let i = 0; i < a.netpols; i++)
		yield netpol(a, i % a.namespaces, i < a.namespaces ? 0 : 1);
}

function locals(a) {
	const perNs = Math.ceil(a.pods / a.namespaces);
	const out = [];
	for (let n = 0; n < a.local; n++) {
		const k = n * perNs;
		out.push({ id: 'c-' + k, name: 'p-' + k, namespace: 'ns-' + n, pod_uid: uidOf(k),
			ips: [ipOf(k)] });
	}
	return out;
}

function post(url, body) {
	return new Promise((resolve, reject) => {
		const req = http.request(url + '/_objects', { method: 'POST',
			headers: { 'Content-Type': 'application/json' } }, (res) => {
			let data = '';
			res.on('data', (c) => { data += c; });
			res.on('end', () => res.statusCode === 200 ? resolve(JSON.parse(data)) :
				reject(new Error(`HTTP ${res.statusCode}: ${data}`)));
		});
		req.on('error', reject);
		req.end(JSON.stringify(body));
	});
}

async function churn(url, rate, seconds, a, outPath) {
	const out = fs.createWriteStream(outPath);
	const perNs = Math.ceil(a.pods / a.namespaces);
	const localKs = locals(a).map((l) => Number(l.id.slice(2)));
	const created = [];
	let next = a.pods, seq = 0;
	const rnd = (n) => Math.floor(Math.random() * n);
	const t0 = Date.now();
	const total = rate * seconds;
	for (let i = 0; i < total; i++) {
		const due = t0 + (i * 1000) / rate;
		const wait = due - Date.now();
		if (wait > 0)
			await new Promise((r) => setTimeout(r, wait));
		let op, obj, kind;
		const r = seq++ % 3;
		if (r === 0) {
			kind = 'create';
			const k = next++;
			obj = pod(a, k);
			obj.spec.nodeName = 'node-' + (k % 4999);   // never this node's
			obj.metadata.namespace = 'ns-' + rnd(a.namespaces);
			created.push(obj);
			op = 'apply';
		} else if (r === 1 && created.length) {
			kind = 'delete';
			obj = created.splice(rnd(created.length), 1)[0];
			op = 'delete';
		} else {
			// a label change: one in ten on a local pod
			const local = rnd(10) === 0;
			let k = local ? localKs[rnd(localKs.length)] : rnd(a.pods);
			if (!local && k % perNs === 0)
				k++;                     // not a local one by accident
			kind = local ? 'label-local' : 'label';
			obj = pod(a, k, { app: 'a' + rnd(APPS), tier: 'x' + (i % 7) });
			op = 'apply';
		}
		const send = Date.now();
		const res = await post(url, { op, object: obj });
		out.write(`${send} ${res.resourceVersion} ${kind}\n`);
	}
	await new Promise((r) => out.end(r));
}

module.exports = { objects, locals };

if (require.main === module) {
	const [mode, ...rest] = process.argv.slice(2);
	if (mode === 'locals') {
		for (const l of locals(JSON.parse(rest[0])))
			process.stdout.write(JSON.stringify(l) + '\n');
	} else if (mode === 'churn') {
		churn(rest[0], Number(rest[1]), Number(rest[2]), JSON.parse(rest[3]), rest[4])
			.catch((e) => { console.error('churn: ' + e.message); process.exit(1); });
	} else {
		console.error('usage: kube_scale.js locals ARGS | churn URL RATE SECONDS ARGS OUT');
		process.exit(2);
	}
}
