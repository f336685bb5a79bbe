#!/bin/bash
# deploy/ validated offline: every Kubernetes manifest against the API
# schemas (the npm package kubernetes-models: types, required fields, enums,
# formats; plus a strict check that every field exists in the type, as
# `kubectl apply --validate=strict` does), the CNI conflist's chain, the
# installer's chaining and unchaining on a copy of a node's config dir, the
# Dockerfile's structure and the systemd unit (systemd-analyze verify).
# Deliberately broken manifests must be refused.
# The security layout (tests/tools/deploy_check.py): msegd's container does
# not mount the CNI directories, the init container and the uninstall Job
# do; msegd's seccomp profile denies by default and allows no mount. And, as
# root with python3-seccomp, the real msegd runs under that profile
# (tests/tools/seccomp_exec.py): it gets ready, programs a table, enforces
# and records a flow, reloads and exits cleanly, while mount, umount2,
# pivot_root, ptrace, bpf, keyctl... fail with EPERM.
#
# The npm packages go into $BUILD/.npm (ignored by git); offline with no
# copy there, the schema checks are skipped.
. "$(dirname "$0")/../lib.sh"
cd "$MSEG_ROOT" || exit 1

NPM_DIR="$MSEG_ROOT/$BUILD/.npm"
K8S_MODELS_VERSION=5.1.0
JS_YAML_VERSION=4.1.0

have_models() {
	[ -f "$NPM_DIR/node_modules/kubernetes-models/package.json" ] &&
		[ -f "$NPM_DIR/node_modules/js-yaml/package.json" ]
}

npm_install() {
	have_models && return 0
	command -v npm >/dev/null || return 1
	mkdir -p "$NPM_DIR"
	[ -f "$NPM_DIR/package.json" ] || echo '{"name": "mseg-deploy-validate", "private": true}' >"$NPM_DIR/package.json"
	timeout 600 npm install --prefix "$NPM_DIR" --no-audit --no-fund --silent \
		"kubernetes-models@$K8S_MODELS_VERSION" "js-yaml@$JS_YAML_VERSION" >"$T_TMP/npm.log" 2>&1 ||
		{ cat "$T_TMP/npm.log"; return 1; }
	have_models
}

# The validator: node validate.mjs FILE... prints "ok FILE#N KIND NAME" or
# "error FILE#N: message" per document; exits 1 if any document failed.
VALIDATOR="$T_TMP/validate.mjs"
cat >"$VALIDATOR" <<'EOF'
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const npmDir = process.env.NPM_DIR;
const nm = path.join(npmDir, "node_modules");
const require = createRequire(path.join(npmDir, "package.json"));
const yaml = require("js-yaml");

// "apps/v1" + "DaemonSet" -> module and .d.ts of kubernetes-models
function modelPath(apiVersion, kind) {
	const [a, b] = apiVersion.split("/");
	const dir = b === undefined ? a : `${a}/${b}`;
	return `kubernetes-models/${dir}/${kind}`;
}

// Strict field check from the package's TypeScript declarations: each
// interface lists its properties with their types.
const ifaceCache = new Map();
function iface(dtsFile) {
	if (ifaceCache.has(dtsFile)) return ifaceCache.get(dtsFile);
	const src = fs.readFileSync(dtsFile, "utf8");
	const imports = new Map();
	for (const m of src.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
		const spec = m[2];
		let file = spec.startsWith(".") ? path.resolve(path.dirname(dtsFile), spec)
			: path.join(nm, spec);
		file = file.replace(/\.js$/, "") + ".d.ts";
		imports.set(m[1], file);
	}
	const body = src.match(/^export interface I\w+(?: extends [^{]+)? \{\n([\s\S]*?)^\}/m);
	const props = new Map();
	if (body) {
		for (const m of body[1].matchAll(/^ {4}"?([A-Za-z0-9_$-]+)"?\??: (.*?);?$/gm)) {
			let t = m[2].trim();
			const arr = t.match(/^Array<(\w+)>$/);
			if (arr) t = arr[1];
			props.set(m[1], imports.has(t) ? imports.get(t) : null);
		}
	}
	const r = { props, open: !body };
	ifaceCache.set(dtsFile, r);
	return r;
}

function strict(obj, dtsFile, where, errs) {
	if (obj === null || typeof obj !== "object") return;
	if (Array.isArray(obj)) {
		obj.forEach((v, i) => strict(v, dtsFile, `${where}[${i}]`, errs));
		return;
	}
	const t = iface(dtsFile);
	if (t.open || t.props.size === 0) return;
	for (const [k, v] of Object.entries(obj)) {
		if (!t.props.has(k)) {
			errs.push(`${where}: unknown field "${k}"`);
			continue;
		}
		const sub = t.props.get(k);
		if (sub && fs.existsSync(sub)) strict(v, sub, `${where}.${k}`, errs);
	}
}

let failed = false;
for (const file of process.argv.slice(2)) {
	let docs;
	try {
		docs = yaml.loadAll(fs.readFileSync(file, "utf8"));
	} catch (e) {
		console.log(`error ${file}: YAML: ${e.message.split("\n")[0]}`);
		failed = true;
		continue;
	}
	let n = 0;
	for (const doc of docs) {
		n++;
		if (doc === null || doc === undefined) continue;
		const id = `${file}#${n}`;
		if (typeof doc !== "object" || !doc.apiVersion || !doc.kind) {
			console.log(`error ${id}: not a Kubernetes object (apiVersion, kind)`);
			failed = true;
			continue;
		}
		const mod = modelPath(doc.apiVersion, doc.kind);
		let Model;
		try {
			Model = (await import(pathToFileURL(path.join(nm, mod + ".js")).href))[doc.kind];
			if (!Model) throw new Error("no model");
		} catch (e) {
			console.log(`error ${id}: unknown apiVersion/kind ${doc.apiVersion} ${doc.kind}`);
			failed = true;
			continue;
		}
		const errs = [];
		try {
			new Model(doc).validate();
		} catch (e) {
			errs.push(e.message);
		}
		strict(doc, path.join(nm, mod + ".d.ts"), doc.kind, errs);
		if (!doc.metadata || !doc.metadata.name) errs.push("metadata.name is missing");
		if (errs.length) {
			console.log(`error ${id}: ${doc.kind} ${doc.metadata?.name}: ${errs.join("; ")}`);
			failed = true;
		} else {
			console.log(`ok ${id}: ${doc.kind} ${doc.metadata.name}`);
		}
	}
}
process.exit(failed ? 1 : 0);
EOF

validate() { NPM_DIR="$NPM_DIR" node "$VALIDATOR" "$@"; }

# every manifest; the uninstall Job as it is applied (a template: @NODE@
# replaced by a node's name); kustomization.yaml is kubectl's, not the API's
manifests=()
for f in deploy/kubernetes/*.yaml; do
	case $f in
	*/kustomization.yaml) ;;
	*/uninstall-job.yaml)
		sed 's/@NODE@/node-1/g' "$f" >"$T_TMP/uninstall-job.yaml"
		manifests+=("$T_TMP/uninstall-job.yaml") ;;
	*) manifests+=("$f") ;;
	esac
done
t_check "deploy/kubernetes has the namespace, RBAC, ConfigMap, DaemonSet and uninstall Job" \
	[ "${#manifests[@]}" -ge 5 ]
kust_ok() { # kustomization.yaml lists every manifest but the uninstall Job
	local want have
	want=$(cd deploy/kubernetes && ls -1 ./*.yaml | sed 's#^\./##' |
		grep -vx -e kustomization.yaml -e uninstall-job.yaml | sort)
	have=$(sed -n 's/^  - \(.*\.yaml\)$/\1/p' deploy/kubernetes/kustomization.yaml | sort)
	[ "$want" = "$have" ] || { echo "kustomization.yaml lists: $have; want: $want"; return 1; }
}
t_check "kustomization.yaml: every manifest but the uninstall Job" kust_ok
t_check "the uninstall Job template cannot be applied unfilled (@NODE@ in its name)" \
	grep -q '^  name: mseg-uninstall-@NODE@$' deploy/kubernetes/uninstall-job.yaml

if ! command -v node >/dev/null || ! npm_install; then
	echo "SKIP: Kubernetes schema validation (node/npm or the registry unavailable)"
else
	for f in "${manifests[@]}"; do
		if validate "$f" >"$T_TMP/out" 2>&1; then
			t_pass "schema: $f"
		else
			t_fail "schema: $f"
			cat "$T_TMP/out"
		fi
	done

	# negative checks: each broken copy of the DaemonSet must be refused
	ds=deploy/kubernetes/daemonset.yaml
	broken() { # NAME SED-EXPR NEEDLE: the DaemonSet edited by SED-EXPR must
		   # fail with an error that mentions NEEDLE
		local name=$1 expr=$2 needle=$3 f="$T_TMP/broken-$1.yaml"
		sed -e "$expr" "$ds" >"$f"
		if cmp -s "$ds" "$f"; then
			t_fail "broken manifest '$name': the edit did not apply"
		elif validate "$f" >"$T_TMP/out" 2>&1; then
			t_fail "broken manifest '$name' was accepted"
			cat "$T_TMP/out"
		elif ! grep -q -- "$needle" "$T_TMP/out"; then
			t_fail "broken manifest '$name' refused for another reason than '$needle'"
			cat "$T_TMP/out"
		else
			t_pass "broken manifest '$name' is refused"
		fi
	}
	broken wrong-type 's/hostNetwork: true/hostNetwork: "yes"/' 'hostNetwork must be boolean'
	broken unknown-field 's/imagePullPolicy: IfNotPresent/imagePulPolicy: IfNotPresent/' \
		'unknown field "imagePulPolicy"'
	broken bad-enum 's/type: RollingUpdate/type: Rolling/' 'updateStrategy/type must be equal to one of'
	broken missing-selector '/^  selector:/,/^  updateStrategy:/{/^  updateStrategy:/!d}' \
		'required property selector'
	broken bad-probe-field 's/periodSeconds: 10/periodSecond: 10/' 'unknown field "periodSecond"'
	broken bad-quantity 's/memory: 256Mi/memory: lots/' 'memory'
	broken wrong-kind 's/^kind: DaemonSet/kind: DaemonSett/' 'unknown apiVersion/kind'
	printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: [1]}\n' >"$T_TMP/cm.yaml"
	if validate "$T_TMP/cm.yaml" >"$T_TMP/out" 2>&1 || ! grep -q 'data/a must be string' "$T_TMP/out"; then
		t_fail "broken ConfigMap (data not strings) is refused"
		cat "$T_TMP/out"
	else
		t_pass "broken ConfigMap (data not strings) is refused"
	fi

	# the policies in the ConfigMap parse with mseg's own parser
	if [ -x "$MSEG" ] && [ -f "$NPM_DIR/node_modules/js-yaml/package.json" ]; then
		mkdir -p "$T_TMP/cmpol"
		NPM_DIR="$NPM_DIR" OUT="$T_TMP/cmpol" node --input-type=module -e '
			import { createRequire } from "node:module";
			import fs from "node:fs";
			const require = createRequire(process.env.NPM_DIR + "/package.json");
			const yaml = require("js-yaml");
			const cm = yaml.load(fs.readFileSync("deploy/kubernetes/policies-configmap.yaml", "utf8"));
			for (const [k, v] of Object.entries(cm.data)) fs.writeFileSync(process.env.OUT + "/" + k, v);
		'
		printf 'endpoints: []\n' >"$T_TMP/noeps.yaml"
		t_check "ConfigMap policies compile (mseg compile)" \
			"$MSEG" compile -f "$T_TMP/cmpol" --endpoints "$T_TMP/noeps.yaml" >/dev/null
	fi
fi

jqq() { jq -e "$@" >/dev/null; }

# --- the CNI conflist: JSON, a chain ending in mseg-cni after IPAM
cl=deploy/cni/10-mseg.conflist
t_check "conflist is valid JSON" jqq . "$cl"
t_check "conflist: cniVersion and name" \
	jqq '(.cniVersion == "1.0.0" or .cniVersion == "0.4.0") and (.name | type == "string")' "$cl"
t_check "conflist: bridge with host-local first, mseg-cni last" \
	jqq '.plugins[0].type == "bridge" and .plugins[0].ipam.type == "host-local"
	       and .plugins[-1].type == "mseg-cni"' "$cl"
t_check "conflist: mseg-cni options have valid values" \
	jqq '.plugins[-1] | (.server | startswith("unix:/"))
	       and (.onUnreachable == "fail" or .onUnreachable == "allow")
	       and (.timeoutSeconds | type == "number")' "$cl"
t_check "conflist: its labels are used (labelsFromConfig), or there are none" \
	jqq '.plugins[-1] | (has("labels") | not) or .labelsFromConfig == true' "$cl"

# --- install-cni.sh on a copy of a node's config dir
inst=deploy/kubernetes/install-cni.sh
export CNI_BIN_DIR="$T_TMP/node/bin" CNI_CONF_DIR="$T_TMP/node/net.d" MSEG_WAIT_CONF=0
mkdir -p "$CNI_BIN_DIR" "$CNI_CONF_DIR"
printf '#!/bin/sh\nexit 0\n' >"$T_TMP/fake-mseg-cni"
chmod +x "$T_TMP/fake-mseg-cni"
export MSEG_CNI_BIN="$T_TMP/fake-mseg-cni"
export SECCOMP_DIR="$T_TMP/node/seccomp/mseg" MSEG_SECCOMP_PROFILE="$MSEG_ROOT/deploy/kubernetes/seccomp/msegd.json"
cat >"$CNI_CONF_DIR/10-net.conflist" <<'EOF2'
{"cniVersion": "1.0.0", "name": "k8s-pod-network", "plugins": [
  {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local", "subnet": "10.244.0.0/24"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF2
cp "$CNI_CONF_DIR/10-net.conflist" "$T_TMP/orig.conflist"
echo '{"cniVersion": "1.0.0", "name": "later", "type": "bridge"}' >"$CNI_CONF_DIR/99-later.conf"
t_check "install-cni.sh installs" sh "$inst" 2>"$T_TMP/inst.log"
t_check "installer: plugin binary in the bin dir" [ -x "$CNI_BIN_DIR/mseg-cni" ]
t_check "installer: msegd's seccomp profile in the seccomp dir" \
	cmp -s "$MSEG_SECCOMP_PROFILE" "$SECCOMP_DIR/msegd.json"
t_check "installer: mseg-cni chained last, other plugins kept in order" \
	jqq '[.plugins[].type] == ["bridge", "portmap", "mseg-cni"]' "$CNI_CONF_DIR/10-net.conflist"
t_check "installer: only the first config is touched" \
	jqq '.type == "bridge"' "$CNI_CONF_DIR/99-later.conf"
cp "$CNI_CONF_DIR/10-net.conflist" "$T_TMP/once.conflist"
t_check "install-cni.sh is idempotent" sh "$inst" 2>>"$T_TMP/inst.log"
t_check "installer: second run changes nothing" cmp -s "$T_TMP/once.conflist" "$CNI_CONF_DIR/10-net.conflist"
t_check "installer: no temporary files left" \
	[ -z "$(find "$T_TMP/node" -name '*tmp*')" ]
t_check "install-cni.sh --check" sh "$inst" --check
t_check "install-cni.sh --uninstall" sh "$inst" --uninstall 2>>"$T_TMP/inst.log"
t_check "uninstall: config back to the original plugins" \
	[ "$(jq -S . "$T_TMP/orig.conflist")" = "$(jq -S . "$CNI_CONF_DIR/10-net.conflist")" ]
t_check "uninstall: binary removed" [ ! -e "$CNI_BIN_DIR/mseg-cni" ]
t_check "uninstall: seccomp profile removed" [ ! -e "$SECCOMP_DIR/msegd.json" ]
t_check_not "install-cni.sh --check after uninstall" sh "$inst" --check
# a single-plugin .conf becomes a conflist and comes back on uninstall
rm -f "$CNI_CONF_DIR"/*
echo '{"cniVersion": "0.4.0", "name": "single", "type": "bridge", "ipam": {"type": "host-local"}}' \
	>"$CNI_CONF_DIR/05-single.conf"
cp "$CNI_CONF_DIR/05-single.conf" "$T_TMP/single.orig"
t_check "installer: a .conf is converted to a chain" sh -c "sh '$inst' 2>>'$T_TMP/inst.log' &&
	jq -e '.name == \"single\" and .cniVersion == \"0.4.0\" and
	       [.plugins[].type] == [\"bridge\", \"mseg-cni\"]' '$CNI_CONF_DIR/05-single.conflist' >/dev/null"
t_check "uninstall restores the .conf" sh -c "sh '$inst' --uninstall 2>>'$T_TMP/inst.log' &&
	cmp -s '$T_TMP/single.orig' '$CNI_CONF_DIR/05-single.conf' && [ ! -e '$CNI_CONF_DIR/05-single.conflist' ]"
rm -f "$CNI_CONF_DIR"/*
t_check_not "installer fails without any CNI config" sh "$inst" 2>>"$T_TMP/inst.log"
unset CNI_BIN_DIR CNI_CONF_DIR MSEG_WAIT_CONF MSEG_CNI_BIN SECCOMP_DIR MSEG_SECCOMP_PROFILE

# --- Dockerfile: stages, no :latest, runtime without -dev packages
df=deploy/Dockerfile
t_check "Dockerfile: every line is a known instruction or a continuation" \
	awk 'BEGIN { ok = 1 }
	     /^[ \t]*#/ || /^[ \t]*$/ { next }
	     cont { cont = /\\$/; next }
	     { split($0, w, /[ \t]+/)
	       if (w[1] !~ /^(FROM|RUN|CMD|LABEL|EXPOSE|ENV|ADD|COPY|ENTRYPOINT|VOLUME|USER|WORKDIR|ARG|ONBUILD|STOPSIGNAL|HEALTHCHECK|SHELL)$/) { print "bad line " NR ": " $0; ok = 0 }
	       cont = /\\$/ }
	     END { exit !ok }' "$df"
t_check "Dockerfile: a build stage and a runtime stage from debian:12-slim" \
	[ "$(grep -c '^FROM debian:12-slim' "$df")" -eq 2 ]
t_check "Dockerfile: the runtime copies from the build stage" grep -q '^COPY --from=build ' "$df"
t_check_not "Dockerfile: no -dev package in the runtime stage" \
	sh -c "sed -n '/^FROM debian:12-slim\$/,\$p' '$df' | grep -q -- '-dev'"
for f in $(sed -n 's/^COPY \(deploy\/[^ ]*\|Makefile\|include\|src\) .*/\1/p' "$df"); do
	t_check "Dockerfile: COPY source $f exists" [ -e "$f" ]
done
if command -v docker >/dev/null && docker buildx version >/dev/null 2>&1; then
	t_check "Dockerfile: docker build --check" docker build --check -f "$df" .
fi

# --- systemd unit
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$T_TMP/unit"
	# verify checks the ExecStart binary exists: point it at a stand-in
	sed "s#/usr/local/sbin/msegd#$T_TMP/unit/msegd#" deploy/systemd/msegd.service \
		>"$T_TMP/unit/msegd.service"
	cp "$T_TMP/fake-mseg-cni" "$T_TMP/unit/msegd"
	if systemd-analyze verify "$T_TMP/unit/msegd.service" >"$T_TMP/out" 2>&1 &&
	   ! grep -q . "$T_TMP/out"; then
		t_pass "systemd-analyze verify msegd.service"
	else
		t_fail "systemd-analyze verify msegd.service"
		cat "$T_TMP/out"
	fi
else
	echo "SKIP: systemd-analyze not installed"
fi
t_check "unit: capability bounding set is NET_ADMIN and SYS_ADMIN only" \
	grep -qx 'CapabilityBoundingSet=CAP_NET_ADMIN CAP_SYS_ADMIN' deploy/systemd/msegd.service
t_check "unit: system call filter without @privileged, @mount, @keyring, @debug" \
	grep -qx 'SystemCallFilter=~@privileged @mount @keyring @debug' deploy/systemd/msegd.service

# --- the security layout: mounts, uninstall Job, seccomp profile
ds=deploy/kubernetes/daemonset.yaml
job=deploy/kubernetes/uninstall-job.yaml
prof=deploy/kubernetes/seccomp/msegd.json
PY=/usr/bin/python3
if ! "$PY" -c 'import yaml' 2>/dev/null; then
	echo "SKIP: security layout (python3-yaml missing)"
else
	dcheck() { "$PY" tests/tools/deploy_check.py "$@" >"$T_TMP/out" 2>&1; }
	if dcheck "$ds" "$job" "$prof"; then
		t_pass "layout: msegd mounts no CNI dir and writes only /run/mseg, /var/lib/mseg; init container and Job mount them; profile denies mount & co."
	else
		t_fail "layout"; cat "$T_TMP/out"
	fi
	t_check "seccomp profile is valid JSON, default SCMP_ACT_ERRNO" \
		jqq '.defaultAction == "SCMP_ACT_ERRNO"' "$prof"
	# layout_broken NAME FILE-KIND EDIT NEEDLE: a copy edited by EDIT (sed on
	# the YAML, jq on the profile) must be refused with NEEDLE in the message
	layout_broken() {
		local name=$1 kind=$2 edit=$3 needle=$4 d=$ds j=$job p=$prof f="$T_TMP/lb-$1"
		case $kind in
		ds) sed -e "$edit" "$ds" >"$f"; d=$f ;;
		job) sed -e "$edit" "$job" >"$f"; j=$f ;;
		prof) jq "$edit" "$prof" >"$f"; p=$f ;;
		esac
		if cmp -s "$f" "$(case $kind in ds) echo "$ds" ;; job) echo "$job" ;; *) echo "$prof" ;; esac)"; then
			t_fail "layout '$name': the edit did not apply"
		elif dcheck "$d" "$j" "$p"; then
			t_fail "layout '$name' was accepted"
		elif ! grep -qF -- "$needle" "$T_TMP/out"; then
			t_fail "layout '$name' refused for another reason than '$needle'"; cat "$T_TMP/out"
		else
			t_pass "layout '$name' is refused"
		fi
	}
	layout_broken msegd-mounts-cni-bin ds \
		's#^            - {name: tmp, mountPath: /tmp}#&\n            - {name: cni-bin, mountPath: /host/opt/cni/bin}#' \
		"container 'msegd': hostPath /opt/cni/bin"
	layout_broken msegd-mounts-cni-conf-ro ds \
		's#^            - {name: tmp, mountPath: /tmp}#&\n            - {name: cni-conf, mountPath: /c, readOnly: true}#' \
		"hostPath /etc/cni/net.d at /c: the long-running container must not mount"
	layout_broken msegd-netns-rw ds \
		's#mountPropagation: HostToContainer, readOnly: true}#mountPropagation: HostToContainer}#' \
		"hostPath /run/netns at /run/netns is read-write"
	layout_broken msegd-runtime-default ds 's#type: Localhost#type: RuntimeDefault#' \
		"msegd's seccompProfile"
	layout_broken init-without-cni-conf ds \
		'/^            - {name: cni-conf, mountPath: \/host\/etc\/cni\/net.d}$/d' \
		"init container 'install-cni': does not mount /etc/cni/net.d read-write"
	layout_broken job-without-cni-bin job '/{name: cni-bin, mountPath/d' \
		"does not mount /opt/cni/bin read-write"
	layout_broken job-not-uninstall job 's#, "--uninstall"##' "does not run install-cni.sh --uninstall"
	layout_broken job-pod-network job 's#hostNetwork: true#hostNetwork: false#' "hostNetwork"
	layout_broken profile-allows-mount prof '.syscalls[0].names += ["mount", "umount2"]' \
		"allows mount"
	layout_broken profile-allows-pivot-root prof \
		'.syscalls += [{names: ["pivot_root"], action: "SCMP_ACT_ALLOW"}]' "allows pivot_root"
	layout_broken profile-default-allow prof '.defaultAction = "SCMP_ACT_ALLOW"' "does not deny"
	layout_broken profile-any-unshare prof \
		'(.syscalls[] | select(.names == ["unshare"])) |= del(.args)' \
		"allows unshare for more than network namespaces"
fi

# --- the Kubernetes watcher's identity, the AllowList CRD, NODE_NAME
# (tests/tools/kube_deploy_check.py): the ClusterRole grants get, list and
# watch on exactly the watched resources and nothing else; the CRD's schema
# accepts every example AllowList and refuses broken ones; the DaemonSet
# runs msegd in-cluster with NODE_NAME from the downward API.
KCHECK=tests/tools/kube_deploy_check.py
if ! python3 -c 'import yaml' 2>/dev/null; then
	echo "SKIP: kube deploy checks (python3-yaml missing)"
else
	kcheck() { python3 "$KCHECK" "$@" >"$T_TMP/kout" 2>&1 || { cat "$T_TMP/kout"; return 1; }; }
	t_check "rbac: the ClusterRole reads exactly pods, namespaces, nodes, services, networkpolicies, endpointslices, allowlists" \
		kcheck rbac deploy/kubernetes/rbac.yaml
	t_check "rbac: bound to the DaemonSet's service account, whose token is mounted" \
		kcheck binding deploy/kubernetes/rbac.yaml deploy/kubernetes/daemonset.yaml
	t_check "daemonset: msegd runs --kubernetes=in-cluster with NODE_NAME from spec.nodeName" \
		kcheck nodename deploy/kubernetes/daemonset.yaml
	examples=(policies/examples/*.yaml)
	t_check "crd: allowlists.mseg.io accepts the example AllowLists and the ConfigMap's" \
		kcheck crd deploy/kubernetes/crd-allowlist.yaml deploy/kubernetes/policies-configmap.yaml "${examples[@]}"
	rbac_broken() { # NAME SED-EXPR: a broken copy of rbac.yaml must be refused
		sed "$2" deploy/kubernetes/rbac.yaml >"$T_TMP/rbac-$1.yaml"
		if python3 "$KCHECK" rbac "$T_TMP/rbac-$1.yaml" >/dev/null 2>&1; then
			t_fail "rbac: broken copy '$1' refused"
		else
			t_pass "rbac: broken copy '$1' refused"
		fi
	}
	rbac_broken write-verb 's/verbs: \[get, list, watch\]/verbs: [get, list, watch, create]/'
	rbac_broken secrets 's/resources: \[pods, namespaces, nodes, services\]/resources: [pods, namespaces, nodes, services, secrets]/'
	rbac_broken no-allowlists 's/resources: \[allowlists\]/resources: []/'
	printf 'apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: x}\nspec:\n  mode: block\n  groups: {a: {selector: {app: a}}}\n' >"$T_TMP/bad-al.yaml"
	t_check_not "crd: an AllowList with mode 'block' is refused by the schema" \
		python3 "$KCHECK" crd deploy/kubernetes/crd-allowlist.yaml "$T_TMP/bad-al.yaml"
	printf 'apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: x}\nspec:\n  groups: {a: {selector: {app: a}}}\n  allow: [{from: a, to: a, ports: [5432]}]\n' >"$T_TMP/bad-al2.yaml"
	t_check_not "crd: a bare port number is refused by the schema" \
		python3 "$KCHECK" crd deploy/kubernetes/crd-allowlist.yaml "$T_TMP/bad-al2.yaml"
	printf 'apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: x}\nspec:\n  groups: {a: {selectr: {app: a}}}\n' >"$T_TMP/bad-al3.yaml"
	t_check_not "crd: an unknown field (selectr) is refused (kubectl's strict validation)" \
		python3 "$KCHECK" crd deploy/kubernetes/crd-allowlist.yaml "$T_TMP/bad-al3.yaml"
fi
if [ -x "$MSEGD" ]; then
	t_check "msegd --help lists --kubeconfig, --kubernetes and --node-name" \
		bash -c "'$MSEGD' --help | grep -q -- '--kubeconfig FILE' && '$MSEGD' --help | grep -q -- '--kubernetes in-cluster' && '$MSEGD' --help | grep -q -- '--node-name NAME'"
	t_check "msegd --kubernetes in-cluster without NODE_NAME: a clear usage error" \
		bash -c "env -u NODE_NAME '$MSEGD' --kubernetes in-cluster 2>&1 | grep -q 'need --node-name (or NODE_NAME'"
fi

# --- msegd for real under its seccomp profile
seccomp_skip() { echo "SKIP: msegd under its seccomp profile ($1)"; }
if [ "$(id -u)" -ne 0 ]; then
	seccomp_skip "needs root"
elif ! "$PY" -c 'import seccomp' 2>/dev/null; then
	seccomp_skip "python3-seccomp missing"
elif [ ! -x "$MSEGD" ] || ! command -v socat >/dev/null; then
	seccomp_skip "msegd not built or socat missing"
else
	SC="tests/tools/seccomp_exec.py"
	# what the filter does to single system calls (arguments that cannot
	# change anything outside the helper's own process)
	"$PY" "$SC" "$prof" try >"$T_TMP/try" 2>&1
	for c in mount umount2 pivot_root chroot ptrace bpf keyctl kexec_load init_module \
		 'unshare(CLONE_NEWNS)' 'unshare(CLONE_NEWUSER)' 'socket(AF_PACKET)'; do
		t_check "seccomp: $c fails with EPERM" grep -qxF "$c errno EPERM" "$T_TMP/try"
	done
	for c in 'unshare(CLONE_NEWNET)' 'socket(AF_NETLINK)'; do
		t_check "seccomp: $c is allowed" grep -qxF "$c ok" "$T_TMP/try"
	done
	"$PY" "$SC" --no-filter "$prof" try >"$T_TMP/try0" 2>&1
	t_check_not "seccomp: without the filter, none of them fails with EPERM (the test means something)" \
		grep -q 'errno EPERM' "$T_TMP/try0"

	# the real msegd under the filter: a scene of three endpoints, a policy
	# "api -> db tcp/5432", NFQUEUE for the rest; LeakSanitizer (a sanitized
	# build) needs ptrace, which the filter denies
	t_api_db_scene || t_fail "seccomp: test scene"
	ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" "$PY" "$SC" "$prof" exec "$MSEGD" \
		--state-dir "$T_TMP/state" --listen "unix:$T_TMP/api.sock" \
		--policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 1 \
		--flow-log "$T_TMP/flows.jsonl" >>"$T_TMP/msegd.log" 2>&1 &
	T_MSEGD_PID=$!
	T_PIDS+=("$T_MSEGD_PID")
	t_check "seccomp: msegd reaches 'msegd ready' (kernel probe: unshare; setns into each namespace)" \
		t_wait_log "msegd ready: 2 endpoints, all programmed"
	t_check "seccomp: db's table is programmed" sh -c "ip netns exec '$(t_ns db)' nft list table inet mseg >/dev/null 2>&1"
	t_check "seccomp: api -> db:5432 allowed" t_tcp api 10.201.0.3 5432
	t_check_not "seccomp: attacker -> db:5432 dropped" t_tcp attacker 10.201.0.3 5432
	t_check "seccomp: the dropped flow is recorded (NFQUEUE path)" \
		t_flow_has "$T_TMP/flows.jsonl" endpoint=db src=10.201.0.4 dport=5432 verdict=dropped
	t_check "seccomp: the API answers on its unix socket" \
		sh -c "curl -sf --max-time 5 --unix-socket '$T_TMP/api.sock' http://mseg/v1/status | jq -e '.ready == true' >/dev/null"
	lines=$(t_log_lines)
	sleep 1.5   # a kernel read-back (--resync 1)
	kill -HUP "$T_MSEGD_PID"
	t_check "seccomp: SIGHUP reload" t_wait_log "loaded 1 policies, 2 endpoints" "$lines"
	t_check "seccomp: msegd exits cleanly on SIGTERM" t_msegd_stop
	t_check_not "seccomp: no 'Operation not permitted' in msegd's log" \
		grep -q 'Operation not permitted' "$T_TMP/msegd.log"
	# the kernel probe finds the same features with and without the filter
	"$MSEGD" --state-dir "$T_TMP/state0" --listen "unix:$T_TMP/api0.sock" \
		--policy-dir "$T_TMP/policies" --resync 0 >"$T_TMP/msegd0.log" 2>&1 &
	pid0=$!
	T_PIDS+=("$pid0")
	for _ in $(seq 1 100); do grep -q 'msegd ready' "$T_TMP/msegd0.log" && break; sleep 0.1; done
	kill -TERM "$pid0"; wait "$pid0" 2>/dev/null
	probe_of() { sed -n 's/^[^ ]* [a-z]*: kernel: //p' "$1"; }
	p1=$(probe_of "$T_TMP/msegd.log")
	p0=$(probe_of "$T_TMP/msegd0.log")
	t_check "seccomp: the kernel probe finds the same as without the filter ('${p1:0:40}...')" \
		[ -n "$p1" ] && [ "$p1" = "$p0" ]
fi
t_done
