#!/bin/bash
# Pod identity with the Kubernetes watcher and the real CNI chain (bridge +
# host-local, then mseg-cni, run as a runtime runs them, with the
# K8S_POD_NAMESPACE/NAME/UID a kubelet passes): an ADD whose Pod object
# the API server has not shown msegd yet waits for it (nothing is
# programmed without the pod's labels), and returns once the Pod, created
# 1 s later in the stand-in, has programmed the table with its
# label-based rules (real traffic); an ADD for a pod that never appears
# fails when timeoutSeconds runs out, naming the pod, with no table made;
# a Pod of the same name but another uid (the pod was deleted and created
# again) is not the registration's pod.
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds node npm curl jq nft

CNI_BIN=${CNI_BIN:-/usr/lib/cni}
for p in bridge host-local; do
	[ -x "$CNI_BIN/$p" ] || { echo "SKIP: $CNI_BIN/$p missing (containernetworking-plugins)"; exit 77; }
done
. "$MSEG_ROOT/tests/kube/standin.sh"
printf '#!/bin/sh\nexec %s --tombstone-dir %s "$@"\n' "$MSEG_ROOT/$BUILD/mseg-cni" \
	"$T_TMP/state/tombstones" >"$T_TMP/mseg-cni"
chmod 0755 "$T_TMP/mseg-cni"
MSEG_CNI="$T_TMP/mseg-cni"
SOCK="$T_TMP/api.sock"
BR="mk$$"
BR=${BR:0:15}

ip netns add "$T_HUB" || { t_fail "hub namespace"; exit 1; }
ip -n "$T_HUB" link set lo up
for n in api db attacker ghost web; do
	ip netns add "$(t_ns $n)" || { t_fail "setup $n"; exit 1; }
	T_NS+=("$(t_ns $n)")
done

kube_standin_start || { t_fail "stand-in"; exit 1; }
apply() { kube_apply "$1"; }
pod() { # NAME UID APP: a pod of this node (n1); its podIPs do not matter here
	printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","namespace":"shop","uid":"%s","labels":{"app":"%s"}},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"x"}]},"status":{"phase":"Running","podIPs":[{"ip":"10.203.0.250"}]}}' \
		"$1" "$2" "$3"
}
apply '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}'
apply '{"apiVersion":"mseg.io/v1","kind":"AllowList","metadata":{"name":"shop","namespace":"shop"},"spec":{"groups":{"api":{"selector":{"app":"api"}},"db":{"selector":{"app":"db"}}},"allow":[{"from":"api","to":"db","ports":["tcp/5432"]}]}}'
apply "$(pod api-0 11111111-0000-4000-8000-000000000001 api)"
apply "$(pod web-0 11111111-0000-4000-8000-000000000005 db)"

kube_kubeconfig

plugin_conf() { # TYPE [TIMEOUT]
	case $1 in
	bridge)
		jq -nc --arg br "$BR" --arg dd "$T_TMP/ipam" '{cniVersion: "1.0.0",
			name: "msegtest", type: "bridge", bridge: $br, isGateway: true,
			ipam: {type: "host-local", dataDir: $dd, ranges: [[{subnet: "10.203.0.0/24"}]]}}' ;;
	mseg-cni)
		jq -nc --arg s "unix:$SOCK" --argjson t "${2:-10}" '{cniVersion: "1.0.0",
			name: "msegtest", type: "mseg-cni", server: $s, timeoutSeconds: $t}' ;;
	esac
}
cni() { # CMD NAME BIN CONF CNI_ARGS: stdout to $T_TMP/out-NAME
	ip netns exec "$T_HUB" env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID="c-$2" \
		CNI_NETNS="$(t_netns_path "$2")" CNI_IFNAME=eth0 CNI_PATH="$CNI_BIN" \
		CNI_ARGS="$5" "$3" <<<"$4" >"$T_TMP/out-$2" 2>"$T_TMP/err-$2"
}
bridge_add() { cni ADD "$1" "$CNI_BIN/bridge" "$(plugin_conf bridge)" "" &&
	cp "$T_TMP/out-$1" "$T_TMP/bridge-$1.json"; }
mseg_add() { # NAME POD UID [TIMEOUT]
	cni ADD "$1" "$MSEG_CNI" "$(jq -c --argjson p "$(cat "$T_TMP/bridge-$1.json")" \
		'. + {prevResult: $p}' <<<"$(plugin_conf mseg-cni "${4:-10}")")" \
		"K8S_POD_NAMESPACE=shop;K8S_POD_NAME=$2;K8S_POD_UID=$3;K8S_POD_INFRA_CONTAINER_ID=c-$1"
}
addr_of() { jq -r '.ips[0].address | split("/")[0]' "$T_TMP/bridge-$1.json"; }
has_table() { t_nft "$1" list table inet mseg >/dev/null 2>&1; }
never_reaches() { ! t_tcp "$@"; }
jqq() { jq -e "$@" >/dev/null; }
now_ms() { date +%s%3N; }

t_msegd_start --kubeconfig "$K/kubeconfig" --node-name n1 --resync 0
t_check "msegd starts" t_wait_log "msegd ready"
t_check "msegd has listed the cluster" t_wait_log "kubernetes: .*watching|msegd ready"
for n in api db attacker ghost web; do
	t_check "bridge ADD: $n" bridge_add "$n"
done
DB=$(addr_of db)
t_tcp_server db 5432
t_wait_port db 5432

t_check "ADD api-0 (its Pod is known): returns with the table programmed" \
	mseg_add api api-0 11111111-0000-4000-8000-000000000001
t_check "... api's table is there" has_table api

# db-0: the ADD comes before the Pod object
t0=$(now_ms)
mseg_add db db-0 11111111-0000-4000-8000-000000000002 &
ADD_PID=$!
T_PIDS+=("$ADD_PID")
sleep 1
t_check "ADD db-0 before its Pod exists: still waiting after 1 s" kill -0 "$ADD_PID"
t_check "... and nothing is programmed in db's namespace meanwhile" bash -c "! ip netns exec '$(t_ns db)' nft list table inet mseg >/dev/null 2>&1"
t_check "GET /v1/rules/c-db says what it waits for" bash -c "curl -s --unix-socket '$SOCK' http://mseg/v1/rules/c-db | jq -e '.error | test(\"waits for Pod shop/db-0\")' >/dev/null"
t_check "attacker -> db:5432 (no table yet: not isolated)" t_tcp attacker "$DB" 5432
t_create=$(now_ms)
t_check "Pod db-0 created in the stand-in" apply "$(pod db-0 11111111-0000-4000-8000-000000000002 db)"
wait "$ADD_PID"
rc=$?
t_end=$(now_ms)
t_check "ADD db-0 succeeds once the Pod is there (after $((t_end - t0)) ms, $((t_end - t_create)) ms after the Pod)" \
	[ "$rc" = 0 -a "$t_end" -ge "$t_create" ]
t_check "ADD prints prevResult" jqq '.ips[0].address' "$T_TMP/out-db"
t_check "db's table is programmed" has_table db
t_check "api -> db:5432 allowed (labels from the Pod objects)" t_tcp api "$DB" 5432
t_check "attacker -> db:5432 refused" never_reaches attacker "$DB" 5432
t_check "api -> db:6000 refused" never_reaches api "$DB" 6000

# a pod that never appears: the ADD gives up after timeoutSeconds
t0=$(now_ms)
if ! mseg_add ghost ghost-0 11111111-0000-4000-8000-000000000003 2 &&
   [ "$(jq -r .code "$T_TMP/out-ghost")" = 11 ]; then
	t_pass "ADD ghost-0 (no Pod ever): fails with code 11 after $(($(now_ms) - t0)) ms"
else
	t_fail "ADD ghost-0 (no Pod ever): code 11"; cat "$T_TMP/out-ghost"
fi
t_check "... the error names the pod it waited for" \
	jqq '(.msg + " " + (.details // "")) | test("waits for Pod shop/ghost-0")' "$T_TMP/out-ghost"
t_check "... and nothing is programmed in its namespace" bash -c "! ip netns exec '$(t_ns ghost)' nft list table inet mseg >/dev/null 2>&1"

# web-0 of the stand-in has uid ...005 and app=db; the runtime adds a new
# web-0 (uid ...006) whose Pod msegd has not seen: not the old pod's labels
if ! mseg_add web web-0 11111111-0000-4000-8000-000000000006 2; then
	t_pass "ADD web-0 of a new uid: waits, and fails (the old pod's object is not its)"
else
	t_fail "ADD web-0 of a new uid: must not take the old web-0's labels"
fi
t_check "... no table for the new web-0" bash -c "! ip netns exec '$(t_ns web)' nft list table inet mseg >/dev/null 2>&1"
t_check "... GET /v1/rules/c-web: waits for the Pod of uid ...006" bash -c "curl -s --unix-socket '$SOCK' http://mseg/v1/rules/c-web | jq -e '.error | test(\"uid 11111111-0000-4000-8000-000000000006\")' >/dev/null"
t_check "msegd exits cleanly on SIGTERM" t_msegd_stop
t_done
