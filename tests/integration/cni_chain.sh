#!/bin/bash
# mseg-cni chained after the real bridge + host-local plugins, run the way a
# container runtime runs them (CNI_* variables, config on stdin), against a
# running msegd: ADD registers the container and returns only once its table
# is programmed (real traffic before and after), CHECK, DEL (twice, and with
# msegd down), fail-closed and fail-open when msegd is unreachable, and CNI
# error objects with the spec's codes. The bridge lives in a hub namespace of
# this test (the plugins run inside it); addresses are 10.203.0.0/24.
. "$(dirname "$0")/../lib.sh"
t_require_root

CNI_BIN=${CNI_BIN:-/usr/lib/cni}
# mseg-cni with its tombstone dir in this test's state dir (a DEL that finds
# msegd down leaves one there; the default is /var/lib/mseg/tombstones)
printf '#!/bin/sh\nexec %s --tombstone-dir %s "$@"\n' "$MSEG_ROOT/$BUILD/mseg-cni" \
	"$T_TMP/state/tombstones" >"$T_TMP/mseg-cni-tomb"
chmod 0755 "$T_TMP/mseg-cni-tomb"
MSEG_CNI="$T_TMP/mseg-cni-tomb"
for p in bridge host-local; do
	[ -x "$CNI_BIN/$p" ] || { echo "SKIP: $CNI_BIN/$p missing (containernetworking-plugins)"; exit 77; }
done
t_require_cmds jq
SOCK="$T_TMP/api.sock"
BR="mb$$"
BR=${BR:0:15}

ip netns add "$T_HUB" || { t_fail "hub namespace"; exit 1; }
ip -n "$T_HUB" link set lo up
for n in api db attacker other; do
	ip netns add "$(t_ns $n)" || { t_fail "setup $n"; exit 1; }
	T_NS+=("$(t_ns $n)")
done

# plugin_conf TYPE VERSION [EXTRA-JSON]: one plugin's config as the runtime
# builds it from a conflist (name and cniVersion copied in)
plugin_conf() {
	local type=$1 ver=$2 extra=${3:-'{}'}
	case $type in
	bridge)
		jq -nc --arg v "$ver" --arg br "$BR" --arg dd "$T_TMP/ipam" '{cniVersion: $v,
			name: "msegtest", type: "bridge", bridge: $br, isGateway: true,
			ipam: {type: "host-local", dataDir: $dd,
			       ranges: [[{subnet: "10.203.0.0/24"}]]}}' ;;
	mseg-cni)
		jq -nc --arg v "$ver" --arg s "unix:$SOCK" --argjson x "$extra" '{cniVersion: $v,
			name: "msegtest", type: "mseg-cni", server: $s, timeoutSeconds: 5} + $x' ;;
	esac
}

# cni CMD ID NAME PLUGIN-BIN CONF [CNI_ARGS]: run one plugin in the hub
# namespace; stdout to $T_TMP/out, status returned
cni() {
	local cmd=$1 id=$2 name=$3 bin=$4 conf=$5 args=${6:-}
	ip netns exec "$T_HUB" env -i PATH="$PATH" CNI_COMMAND="$cmd" CNI_CONTAINERID="$id" \
		CNI_NETNS="$(t_netns_path "$name")" CNI_IFNAME=eth0 CNI_PATH="$CNI_BIN" \
		CNI_ARGS="$args" "$bin" <<<"$conf" >"$T_TMP/out" 2>"$T_TMP/err"
}
# with_prev CONF RESULT: CONF with "prevResult"
with_prev() { jq -c --argjson p "$2" '. + {prevResult: $p}' <<<"$1"; }

bridge_add() { # NAME VERSION: the bridge plugin alone; result in $T_TMP/bridge-NAME.json
	cni ADD "c-$1" "$1" "$CNI_BIN/bridge" "$(plugin_conf bridge "$2")" &&
		cp "$T_TMP/out" "$T_TMP/bridge-$1.json"
}
mseg_add() { # NAME VERSION EXTRA-JSON CNI_ARGS: mseg-cni with the bridge's result
	cni ADD "c-$1" "$1" "$MSEG_CNI" \
		"$(with_prev "$(plugin_conf mseg-cni "$2" "$3")" "$(cat "$T_TMP/bridge-$1.json")")" "$4"
}
mseg_cmd() { # CMD NAME VERSION [EXTRA-JSON]: DEL or CHECK with the bridge's result
	local extra=${4:-'{}'}
	cni "$1" "c-$2" "$2" "$MSEG_CNI" \
		"$(with_prev "$(plugin_conf mseg-cni "$3" "$extra")" "$(cat "$T_TMP/bridge-$2.json")")"
}
jqq() { jq -e "$@" >/dev/null; }
has_table() { t_nft "$1" list table inet mseg >/dev/null 2>&1; }
api() { curl -s --max-time 5 --unix-socket "$SOCK" "http://mseg$1"; }
api_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$SOCK" "http://mseg$1"; }
out_code() { jq -r '.code // empty' "$T_TMP/out" 2>/dev/null; }
addr_of() { jq -r '.ips[0].address | split("/")[0]' "$T_TMP/bridge-$1.json"; }

mkdir -p "$T_TMP/policies"
cat >"$T_TMP/policies/shop.yaml" <<'EOF2'
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: shop, namespace: shop}
spec:
  mode: enforce
  isolation: both
  groups:
    api: {selector: {app: api}}
    db: {selector: {app: db}}
  allow:
    - {from: api, to: db, ports: [tcp/5432]}
EOF2
t_msegd_start --policy-dir "$T_TMP/policies" --resync 0
t_check "msegd starts" t_wait_log "msegd ready"
for _ in $(seq 1 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
t_check "msegd serves the API" [ "$(api_status /v1/status)" = 200 ]

# --- the bridge alone: containers have a network, nothing is enforced
t_check "bridge ADD: attacker" bridge_add attacker 1.0.0
t_check "bridge ADD: db" bridge_add db 1.0.0
t_check "bridge ADD: api (0.4.0)" bridge_add api 0.4.0
t_check "the bridge is in the hub namespace, not the host's" \
	sh -c "ip -n '$T_HUB' link show '$BR' >/dev/null && ! ip link show '$BR' >/dev/null 2>&1"
DB=$(addr_of db)
t_tcp_server db 5432
t_wait_port db 5432
t_check "before mseg-cni: attacker reaches db:5432" t_tcp attacker "$DB" 5432
t_check_not "before mseg-cni: no table in db's namespace" has_table db

# --- ADD
t_check "mseg-cni ADD db (1.0.0, Kubernetes args, labels from runtimeConfig)" \
	mseg_add db 1.0.0 '{"labelsFromConfig": true, "runtimeConfig": {"labels": {"app": "db"}},
		"labels": {"net": "t"}}' \
	"IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=db-0;K8S_POD_INFRA_CONTAINER_ID=c-db"
t_check "ADD prints prevResult unchanged" \
	[ "$(jq -S . "$T_TMP/out")" = "$(jq -S . "$T_TMP/bridge-db.json")" ]
t_check "ADD returns with the table programmed (no wait needed)" has_table db
ep=$(api /v1/endpoints/c-db)
t_check "endpoint registered: name, namespace, netns, address, labels" \
	jqq --arg ip "$DB" --arg nn "$(t_netns_path db)" '.name == "db-0" and .namespace == "shop"
		and .netns == $nn and (.ips | index($ip)) and .labels.app == "db"
		and .labels.net == "t"' <<<"$ep"
t_check "GET /v1/rules/c-db: programmed" jqq '.programmed == true' <<<"$(api /v1/rules/c-db)"
t_check_not "after ADD: attacker -> db:5432 refused" t_tcp attacker "$DB" 5432

t_check "mseg-cni ADD api (0.4.0 config)" \
	mseg_add api 0.4.0 '{"labelsFromConfig": true, "labels": {"app": "api"}}' "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=api-0;IgnoreUnknown=true"
t_check "0.4.0: result keeps cniVersion 0.4.0 and ips[].version" \
	jqq '.cniVersion == "0.4.0" and .ips[0].version == "4"' "$T_TMP/out"
t_check "after ADD: api -> db:5432 allowed" t_tcp api "$DB" 5432

t_check "bridge ADD: other" bridge_add other 1.0.0
t_check "mseg-cni ADD of a container no policy selects returns at once" mseg_add other 1.0.0 '{}' ""
t_check "  ... and it is registered, with no table" \
	sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --unix-socket '$SOCK' http://mseg/v1/endpoints/c-other)\" = 200 ] && ! ip netns exec '$(t_ns other)' nft list table inet mseg >/dev/null 2>&1"
t_check "DEL other" mseg_cmd DEL other 1.0.0

# --- CHECK
if mseg_cmd CHECK db 1.0.0 && [ ! -s "$T_TMP/out" ]; then t_pass "CHECK db"; else t_fail "CHECK db"; cat "$T_TMP/out"; fi
if ! cni CHECK c-ghost attacker "$MSEG_CNI" \
	"$(with_prev "$(plugin_conf mseg-cni 1.0.0)" "$(cat "$T_TMP/bridge-attacker.json")")" &&
   [ "$(out_code)" = 999 ]; then
	t_pass "CHECK of an unregistered container fails (code 999)"
else
	t_fail "CHECK of an unregistered container fails (code 999)"; cat "$T_TMP/out"
fi

# --- DEL (twice)
t_check "DEL db" mseg_cmd DEL db 1.0.0
t_check "DEL prints nothing" [ ! -s "$T_TMP/out" ]
t_check "DEL: endpoint gone from msegd" [ "$(api_status /v1/endpoints/c-db)" = 404 ]
ok=0
for _ in $(seq 1 30); do has_table db || { ok=1; break; }; sleep 0.1; done
t_check "DEL: db's table removed" [ "$ok" = 1 ]
t_check "after DEL: attacker reaches db:5432 again (nothing left behind)" t_tcp attacker "$DB" 5432
t_check "DEL db again (idempotent)" mseg_cmd DEL db 1.0.0
del_gone() {
	ip netns exec "$T_HUB" env -i CNI_COMMAND=DEL CNI_CONTAINERID=c-gone \
		CNI_NETNS="/run/netns/none-$$" CNI_IFNAME=eth0 "$MSEG_CNI" \
		<<<"$(plugin_conf mseg-cni 1.0.0)" >/dev/null
}
t_check "DEL of a container whose namespace is gone" del_gone

# --- msegd down
# (a clean exit status is enforce_traffic's business; here it only must be gone)
t_msegd_stop >/dev/null 2>&1
t_check_not "msegd is down" curl -s --max-time 2 --unix-socket "$SOCK" -o /dev/null http://mseg/healthz
t_check "DEL with msegd down succeeds" mseg_cmd DEL api 0.4.0
t_check "... and leaves a tombstone for msegd" [ -f "$T_TMP/state/tombstones/c-api" ]
t_check "... and says so" grep -q "left as a tombstone msegd removes at start" "$T_TMP/err"
mark=$(t_log_lines)
t_msegd_start --policy-dir "$T_TMP/policies" --resync 0
t_check "msegd back up" t_wait_log "msegd ready" "$mark"
t_check "msegd applied the tombstone at start" \
	t_wait_log "endpoint 'c-api': removed \\(its CNI DEL could not reach msegd\\)" "$mark"
t_check "the endpoint is gone" [ "$(api_status /v1/endpoints/c-api)" = 404 ]
t_check "the tombstone is gone" [ ! -e "$T_TMP/state/tombstones/c-api" ]
t_msegd_stop >/dev/null 2>&1
if ! mseg_add db 1.0.0 '{"labels": {"app": "db"}}' "" && [ "$(out_code)" = 11 ]; then
	t_pass "ADD with msegd down, onUnreachable=fail: code 11 (fail-closed)"
else
	t_fail "ADD with msegd down, onUnreachable=fail: code 11"; cat "$T_TMP/out"
fi
if mseg_add db 1.0.0 '{"onUnreachable": "allow"}' "" &&
   [ "$(jq -S . "$T_TMP/out")" = "$(jq -S . "$T_TMP/bridge-db.json")" ] &&
   grep -q "onUnreachable=allow" "$T_TMP/err"; then
	t_pass "ADD with msegd down, onUnreachable=allow: passes prevResult on, warns"
else
	t_fail "ADD with msegd down, onUnreachable=allow"; cat "$T_TMP/out" "$T_TMP/err"
fi

# --- errors: CNI error objects with the spec's codes, exit status non-zero
expect_code() { # NAME CODE CMD...
	local name=$1 code=$2
	shift 2
	if "$@"; then
		t_fail "$name: succeeded"
	elif [ "$(out_code)" != "$code" ] ||
	     ! jq -e '(.msg | type == "string") and (.cniVersion | type == "string")' "$T_TMP/out" >/dev/null; then
		t_fail "$name: want code $code"; cat "$T_TMP/out"
	else
		t_pass "$name: code $code"
	fi
}
expect_code "malformed JSON on stdin" 6 cni ADD c-x db "$MSEG_CNI" '{"cniVersion": "1.0.0", "name": '
expect_code "empty stdin" 6 cni ADD c-x db "$MSEG_CNI" ''
expect_code "unsupported cniVersion" 1 cni ADD c-x db "$MSEG_CNI" \
	'{"cniVersion": "0.2.0", "name": "n", "type": "mseg-cni"}'
expect_code "no prevResult" 7 cni ADD c-x db "$MSEG_CNI" "$(plugin_conf mseg-cni 1.0.0)"
expect_code "bad onUnreachable" 7 cni DEL c-x db "$MSEG_CNI" \
	"$(plugin_conf mseg-cni 1.0.0 '{"onUnreachable": "maybe"}')"
expect_code "unknown CNI_ARGS key without IgnoreUnknown" 4 \
	cni ADD c-x db "$MSEG_CNI" "$(with_prev "$(plugin_conf mseg-cni 1.0.0)" "$(cat "$T_TMP/bridge-db.json")")" "FOO=1"
missing_env() { # VAR: ADD without VAR
	local env=(PATH="$PATH" CNI_COMMAND=ADD CNI_CONTAINERID=c-x CNI_NETNS="$(t_netns_path db)" CNI_IFNAME=eth0)
	local keep=()
	for e in "${env[@]}"; do [ "${e%%=*}" = "$1" ] || keep+=("$e"); done
	env -i "${keep[@]}" "$MSEG_CNI" <<<"$(with_prev "$(plugin_conf mseg-cni 1.0.0)" \
		"$(cat "$T_TMP/bridge-db.json")")" >"$T_TMP/out" 2>/dev/null
}
for v in CNI_COMMAND CNI_CONTAINERID CNI_NETNS CNI_IFNAME; do
	expect_code "ADD without $v" 4 missing_env "$v"
done
if env -i CNI_COMMAND=VERSION "$MSEG_CNI" </dev/null >"$T_TMP/out" &&
   jq -e '.supportedVersions == ["0.4.0", "1.0.0"]' "$T_TMP/out" >/dev/null; then
	t_pass "VERSION lists 0.4.0 and 1.0.0"
else
	t_fail "VERSION"; cat "$T_TMP/out"
fi

# --- msegd's TCP listener with a bearer token ("server": "http://...",
# "tokenFile"); msegd runs inside the hub namespace, so its port is there too.
# Token files come only from a root-owned directory: /etc/mseg, or the one
# mseg-cni's own --token-dir names, here through a wrapper as an
# administrator would install it (cni_trust.sh tests the rules)
mkdir -m 0700 "$T_TMP/tokens"
(umask 077
 head -c 48 /dev/urandom | base64 | tr -d '/+=\n' >"$T_TMP/tokens/token"
 echo "not-the-token-at-all-but-long-enough-0123456789" >"$T_TMP/tokens/badtoken")
printf '#!/bin/sh\nexec %s --token-dir %s "$@"\n' "$MSEG_CNI" "$T_TMP/tokens" >"$T_TMP/mseg-cni-wrap"
chmod 0755 "$T_TMP/mseg-cni-wrap"
MSEG_CNI_PLAIN=$MSEG_CNI
MSEG_CNI="$T_TMP/mseg-cni-wrap"
ip netns exec "$T_HUB" "$MSEGD" --state-dir "$T_TMP/state2" --listen "unix:$T_TMP/api2.sock" \
	--listen-tcp 127.0.0.1:18080 --token-file "$T_TMP/tokens/token" --policy-dir "$T_TMP/policies" \
	--resync 0 >>"$T_TMP/msegd.log" 2>&1 &
T_PIDS+=($!)
for _ in $(seq 1 50); do
	ip netns exec "$T_HUB" ss -Hltn "sport = :18080" | grep -q . && break
	sleep 0.1
done
tcp_extra() { jq -nc --arg t "$1" '{server: "http://127.0.0.1:18080", tokenFile: $t,
	labelsFromConfig: true, labels: {app: "db"}}'; }
t_check "ADD through the TCP listener with tokenFile" \
	mseg_add db 1.0.0 "$(tcp_extra "$T_TMP/tokens/token")" "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=db-0"
t_check "  ... the table is programmed" has_table db
if ! mseg_add db 1.0.0 "$(tcp_extra "$T_TMP/tokens/badtoken")" "" && [ "$(out_code)" = 999 ]; then
	t_pass "ADD with a wrong token is refused (code 999)"
else
	t_fail "ADD with a wrong token is refused (code 999)"; cat "$T_TMP/out"
fi
t_check "DEL through the TCP listener" mseg_cmd DEL db 1.0.0 "$(tcp_extra "$T_TMP/tokens/token")"
MSEG_CNI=$MSEG_CNI_PLAIN

# --- the bridge's own DEL releases the addresses (end of the chain)
for n in api db attacker other; do
	cni DEL "c-$n" "$n" "$CNI_BIN/bridge" "$(plugin_conf bridge 1.0.0)" || t_fail "bridge DEL $n"
done
t_check "host-local released every address" \
	sh -c "! ls '$T_TMP/ipam/msegtest' 2>/dev/null | grep -q '^10\.203\.'"
t_done
