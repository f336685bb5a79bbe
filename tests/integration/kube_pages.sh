#!/bin/bash
# msegd lists in pages (limit/continue) from the Kubernetes API stand-in:
# 2,500 pods of another node (peers, half of them app=web) listed with
# --kube-page-size 500 give the local db pod exactly the allow set an
# unpaged list gives (the same addresses in the kernel, real traffic from
# a peer's address); a continue token that expires in the middle of a list
# (410 "The provided continue parameter is too old") starts the list again
# from the first page, and the state is the same after it.
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds node npm curl jq nft

. "$MSEG_ROOT/tests/kube/standin.sh"
SOCK="$T_TMP/api.sock"
KC_MAX_TIME=30
kube_standin_start --history 100000 || { t_fail "stand-in"; exit 1; }
api() { curl -s --max-time 10 --unix-socket "$SOCK" "http://mseg$1"; }
api_put() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$SOCK" -X PUT \
	-H 'Content-Type: application/json' -d "$2" "http://mseg$1"; }
jqq() { jq -e "$@" >/dev/null; }
eventually() { local i; for i in $(seq 1 150); do "$@" && return 0; sleep 0.2; done; return 1; }
never_reaches() { ! t_tcp "$@"; }

t_endpoints web:1 other:2 db:3 || { t_fail "setup"; exit 1; }
t_tcp_server db 5432
t_wait_port db 5432

# 25 namespaces, 2,500 pods of node n2 (p-0 is 10.201.0.1 = netns web,
# p-1 is 10.201.0.2 = netns other), db-0 of this node, a NetworkPolicy
# letting app=web pods of every namespace reach db:5432
node -e '
const items = [];
for (let n = 0; n < 25; n++)
	items.push({ op: "apply", object: { apiVersion: "v1", kind: "Namespace",
		metadata: { name: "ns" + n } } });
items.push({ op: "apply", object: { apiVersion: "v1", kind: "Namespace",
	metadata: { name: "shop" } } });
for (let i = 0; i < 2500; i++) {
	const ip = i < 2 ? "10.201.0." + (i + 1) : "10.210." + (i >> 8) + "." + (i & 255);
	items.push({ op: "apply", object: { apiVersion: "v1", kind: "Pod",
		metadata: { name: "p-" + i, namespace: i < 2 ? "shop" : "ns" + (i % 25),
			labels: { app: i % 2 ? "other" : "web" } },
		spec: { nodeName: "n2", containers: [{ name: "c", image: "x" }] },
		status: { phase: "Running", podIPs: [{ ip }] } } });
}
items.push({ op: "apply", object: { apiVersion: "v1", kind: "Pod",
	metadata: { name: "db-0", namespace: "shop", labels: { app: "db" } },
	spec: { nodeName: "n1", containers: [{ name: "c", image: "x" }] },
	status: { phase: "Running", podIPs: [{ ip: "10.201.0.3" }] } } });
items.push({ op: "apply", object: { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy",
	metadata: { name: "db", namespace: "shop" },
	spec: { podSelector: { matchLabels: { app: "db" } }, policyTypes: ["Ingress"],
		ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { app: "web" } } }],
			ports: [{ protocol: "TCP", port: 5432 }] }] } } });
process.stdout.write(JSON.stringify({ items }));
' >"$K/objects.json"
t_check "stand-in: 2,500 pods, 26 namespaces, a NetworkPolicy created" \
	bash -c "curl -s --max-time 120 -H 'Content-Type: application/json' \
		--data-binary @'$K/objects.json' http://127.0.0.1:$PORT/_objects | jq -e '.objects | length == 2528' >/dev/null"
t_check "stand-in: a page of 500 has a continue token and the remaining count" \
	bash -c "curl -s 'http://127.0.0.1:$PORT/api/v1/pods?limit=500' | jq -e '(.items | length) == 500 and .metadata.remainingItemCount == 2001 and (.metadata.continue | length) > 0' >/dev/null"

kube_kubeconfig

# the rules db-0's table holds: the addresses of its allow set, sorted
db_set() { t_nft_rules db | grep -oE '10\.2[0-9]+\.[0-9]+\.[0-9]+' | sort -u; }
synced() {
	api /v1/status | jq -e '.kubernetes.synced and .endpoints.kubernetes == 2501' >/dev/null &&
		[ "$(db_set | wc -l)" = 1250 ]
}
pages() { kc GET /_control | jq -r --arg p "$1" '.pages[$p] // 0'; }
lists() { kc GET /_control | jq -r --arg p "$1" '.lists[$p] // 0'; }
register() {
	api_put /v1/endpoints/c-db "{\"name\":\"db-0\",\"namespace\":\"shop\",\"netns\":\"$(t_netns_path db)\",\"ips\":[\"10.201.0.3\"]}"
}
run_msegd() { # PAGE_SIZE
	local mark i
	mark=$(t_log_lines)
	rm -rf "$T_TMP/state" "$SOCK"
	t_msegd_start --kubeconfig "$K/kubeconfig" --node-name n1 --resync 0 --kube-page-size "$1"
	t_wait_log "msegd ready" "$mark" || return 1
	for i in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
	[ "$(register)" = 201 ]
}

# ---- unpaged: the reference ----
t_check "msegd (--kube-page-size 0) starts" run_msegd 0
t_check "unpaged: synced, db-0's allow set holds the 1,250 web pods" eventually synced
db_set >"$K/set.unpaged"
t_check "unpaged: one request per list" [ "$(pages /api/v1/pods)" = "$(lists /api/v1/pods)" ]
t_check "unpaged: web (a peer's address) -> db:5432 allowed" t_tcp web 10.201.0.3 5432
t_check "unpaged: other -> db:5432 refused" never_reaches other 10.201.0.3 5432
t_check "msegd stops" t_msegd_stop
# the table stays in the kernel after msegd: the paged run must make its own
t_check "db's table removed before the paged run" t_nft db delete table inet mseg

# ---- paged ----
p0=$(pages /api/v1/pods)
l0=$(lists /api/v1/pods)
t_check "msegd (--kube-page-size 500) starts" run_msegd 500
t_check "paged: synced, the allow set holds 1,250 addresses" eventually synced
db_set >"$K/set.paged"
t_check "paged: the same allow set as the unpaged list" cmp -s "$K/set.unpaged" "$K/set.paged"
got="$(($(pages /api/v1/pods) - p0)) pages, $(($(lists /api/v1/pods) - l0)) list"
t_check "paged: the 2,501 pods came in 6 pages (5 of 500, 1 of 1) of one list (got $got)" \
	[ "$got" = "6 pages, 1 list" ]
t_check "paged: web -> db:5432 allowed" t_tcp web 10.201.0.3 5432
t_check "paged: other -> db:5432 refused" never_reaches other 10.201.0.3 5432

# ---- a continue token expires in the middle of a relist ----
# expireAll compacts the history: every watch gets 410 and relists; the
# first continue of those lists gets 410 too and that list starts again
mark=$(t_log_lines)
g0=$(kc GET /_control | jq .continueGone)
kc POST /_control '{"expireContinue":1}' >/dev/null
kc POST /_control '{"expireAll":true}' >/dev/null
t_check "an expired continue token: msegd lists again from the first page" \
	t_wait_log "continue token expired \(410 Gone\); listing again from the first page" "$mark"
t_check "the stand-in sent that 410" [ "$(kc GET /_control | jq .continueGone)" -gt "$g0" ]
t_check "after the restarted list: synced" eventually synced
db_set >"$K/set.after"
t_check "after the restarted list: the same allow set" cmp -s "$K/set.unpaged" "$K/set.after"
t_check "web -> db:5432 still allowed" t_tcp web 10.201.0.3 5432
t_check "other -> db:5432 still refused" never_reaches other 10.201.0.3 5432
t_check "msegd exits cleanly on SIGTERM" t_msegd_stop
t_done
