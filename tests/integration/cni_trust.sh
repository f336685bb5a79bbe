#!/bin/bash
# What mseg-cni's network config may and may not make the plugin do, end to
# end: the real mseg-cni binary with a JSON config on stdin and the CNI_*
# variables, against a real msegd (unix socket and a token-protected TCP
# listener on the loopback of this test's hub namespace).
#   - "tokenFile" is read only from a root-owned token directory: /etc/mseg,
#     or the one mseg-cni's own command line names (--token-dir, here
#     through a wrapper script); a file elsewhere, a symlink out of the
#     directory, a file others may read or root does not own: code 7, and
#     msegd never hears of the container;
#   - a token never goes over plain http:// to a host that is not loopback:
#     code 7 and not one byte reaches that host (a listener records it);
#   - labels in the config (labels, args, runtimeConfig) reach msegd only
#     with "labelsFromConfig": true; otherwise they are ignored, with a
#     warning on stderr.
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds jq socat curl
MSEG_CNI="$MSEG_ROOT/$BUILD/mseg-cni"
t_require_built "$MSEG_CNI"
SOCK="$T_TMP/api.sock"
PORT=18081
SINK_ADDR=10.201.0.254   # the hub's own address: a "remote" msegd that only records
SINK_PORT=18082

t_endpoints db:5 || { t_fail "setup"; exit 1; }
ip -n "$T_HUB" addr add "$SINK_ADDR/24" dev br0

mkdir -m 0700 "$T_TMP/tokens" "$T_TMP/elsewhere"
(umask 077
 head -c 48 /dev/urandom | base64 | tr -d '/+=\n' >"$T_TMP/tokens/token"
 cp "$T_TMP/tokens/token" "$T_TMP/elsewhere/token"
 cp "$T_TMP/tokens/token" "$T_TMP/tokens/foreign")
TOKEN=$(cat "$T_TMP/tokens/token")
cp "$T_TMP/tokens/token" "$T_TMP/tokens/readable" && chmod 0640 "$T_TMP/tokens/readable"
chown 65534:65534 "$T_TMP/tokens/foreign"
ln -s "$T_TMP/elsewhere/token" "$T_TMP/tokens/escape"
# the administrator's way to add a token directory: a wrapper in CNI_PATH
printf '#!/bin/sh\nexec %s --token-dir %s "$@"\n' "$MSEG_CNI" "$T_TMP/tokens" >"$T_TMP/mseg-cni-wrap"
chmod 0755 "$T_TMP/mseg-cni-wrap"
WRAP="$T_TMP/mseg-cni-wrap"

mkdir -p "$T_TMP/policies"
cat >"$T_TMP/policies/shop.yaml" <<'EOF'
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: shop, namespace: shop}
spec:
  mode: enforce
  isolation: both
  groups:
    db: {selector: {app: db}}
  allow:
    - {from: db, to: db, ports: [tcp/5432]}
EOF
ip netns exec "$T_HUB" "$MSEGD" --state-dir "$T_TMP/state" --listen "unix:$SOCK" \
	--listen-tcp "127.0.0.1:$PORT" --token-file "$T_TMP/tokens/token" \
	--policy-dir "$T_TMP/policies" --resync 0 >>"$T_TMP/msegd.log" 2>&1 &
T_MSEGD_PID=$!
T_PIDS+=("$T_MSEGD_PID")
t_check "msegd starts" t_wait_log "msegd ready"
for _ in $(seq 1 50); do
	ip netns exec "$T_HUB" ss -Hltn "sport = :$PORT" | grep -q . && break
	sleep 0.1
done
# the sink: whatever reaches SINK_ADDR:SINK_PORT ends up in $T_TMP/sink
: >"$T_TMP/sink"
t_bg "$T_HUB" socat -u "TCP-LISTEN:$SINK_PORT,bind=$SINK_ADDR,reuseaddr,fork" \
	"OPEN:$T_TMP/sink,append"
for _ in $(seq 1 50); do
	ip netns exec "$T_HUB" ss -Hltn "sport = :$SINK_PORT" | grep -q . && break
	sleep 0.1
done

PREV='{"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}],
       "ips": [{"address": "10.201.0.5/24", "interface": 0}]}'
# conf EXTRA-JSON: mseg-cni's config (unix socket) + EXTRA, with prevResult
conf() {
	jq -nc --arg s "unix:$SOCK" --argjson x "$1" --argjson p "$PREV" '{cniVersion: "1.0.0",
		name: "trust", type: "mseg-cni", server: $s, timeoutSeconds: 3,
		prevResult: $p} + $x'
}
# cni CMD ID BIN CONF: run the plugin as a runtime does (in the hub namespace)
cni() {
	ip netns exec "$T_HUB" env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID="$2" \
		CNI_NETNS="$(t_netns_path db)" CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
		CNI_ARGS="K8S_POD_NAMESPACE=shop;K8S_POD_NAME=db-0" "$3" <<<"$4" \
		>"$T_TMP/out" 2>"$T_TMP/err"
}
api() { curl -s --max-time 5 --unix-socket "$SOCK" "http://mseg$1"; }
api_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$SOCK" "http://mseg$1"; }
has_table() { t_nft db list table inet mseg >/dev/null 2>&1; }
jqq() { jq -e "$@" >/dev/null; }

# refused NAME ID BIN EXTRA NEEDLE...: ADD fails with code 7, a message
# with every NEEDLE, nothing registered, the token in no output
refused() {
	local name=$1 id=$2 bin=$3 extra=$4 n
	shift 4
	if cni ADD "$id" "$bin" "$(conf "$extra")"; then
		t_fail "$name: ADD succeeded"; return
	fi
	if ! jqq '.code == 7' "$T_TMP/out"; then
		t_fail "$name: want code 7"; cat "$T_TMP/out"; return
	fi
	for n in "$@"; do
		if ! jq -r .msg "$T_TMP/out" | grep -qF -- "$n"; then
			t_fail "$name: message lacks '$n'"; cat "$T_TMP/out"; return
		fi
	done
	if [ "$(api_status "/v1/endpoints/$id")" != 404 ]; then
		t_fail "$name: the endpoint was registered anyway"; return
	fi
	if grep -qF "$TOKEN" "$T_TMP/out" "$T_TMP/err"; then
		t_fail "$name: the token appears in the plugin's output"; return
	fi
	t_pass "$name: code 7, $*"
}
tcp() { # EXTRA-JSON with the TCP listener and TOKEN-FILE
	jq -nc --arg t "$1" --arg s "http://127.0.0.1:$PORT" '{server: $s, tokenFile: $t}'
}

# --- tokenFile: where it may come from
t_check "ADD with a token from the allowed directory (--token-dir), plain http to loopback" \
	cni ADD c-tok "$WRAP" "$(conf "$(tcp "$T_TMP/tokens/token")")"
t_check "  ... registered" [ "$(api_status /v1/endpoints/c-tok)" = 200 ]
t_check "DEL with the token" cni DEL c-tok "$WRAP" "$(conf "$(tcp "$T_TMP/tokens/token")")"
t_check "  ... gone" [ "$(api_status /v1/endpoints/c-tok)" = 404 ]
refused "a token file outside the token directories" c-t1 "$WRAP" \
	"$(tcp "$T_TMP/elsewhere/token")" '"tokenFile"' 'not inside an allowed token directory'
refused "a token file no config may name (/etc/shadow)" c-t2 "$WRAP" \
	"$(tcp /etc/shadow)" '"tokenFile"' 'not inside an allowed token directory'
refused "a symlink from the token directory to elsewhere" c-t3 "$WRAP" \
	"$(tcp "$T_TMP/tokens/escape")" '"tokenFile"' 'not inside an allowed token directory'
refused "'..' out of the token directory" c-t4 "$WRAP" \
	"$(tcp "$T_TMP/tokens/../elsewhere/token")" '"tokenFile"' 'not inside'
refused "a group-readable token file" c-t5 "$WRAP" \
	"$(tcp "$T_TMP/tokens/readable")" '"tokenFile"' 'accessible to group or others (mode 0640)'
refused "a token file not owned by root" c-t6 "$WRAP" \
	"$(tcp "$T_TMP/tokens/foreign")" '"tokenFile"' 'owned by uid 65534, not by root'
refused "without --token-dir only /etc/mseg counts" c-t7 "$MSEG_CNI" \
	"$(tcp "$T_TMP/tokens/token")" '"tokenFile"' 'not inside an allowed token directory'
chmod 0770 "$T_TMP/tokens"
refused "a token directory others may write to" c-t8 "$WRAP" \
	"$(tcp "$T_TMP/tokens/token")" '"tokenFile"' 'writable by group or others (mode 0770)'
chmod 0700 "$T_TMP/tokens"
if ip netns exec "$T_HUB" env -i CNI_COMMAND=VERSION "$MSEG_CNI" --token-dir tokens \
	</dev/null >/dev/null 2>"$T_TMP/err"; [ $? = 2 ] && grep -q 'not an absolute path' "$T_TMP/err"; then
	t_pass "--token-dir must be absolute (usage error, exit 2)"
else
	t_fail "--token-dir must be absolute"; cat "$T_TMP/err"
fi

# --- the token never crosses the network in clear text
refused "token with plain http:// to a host that is not loopback" c-h1 "$WRAP" \
	"$(jq -nc --arg t "$T_TMP/tokens/token" --arg s "http://$SINK_ADDR:$SINK_PORT" \
		'{server: $s, tokenFile: $t}')" '"tokenFile"' '"server"' 'unencrypted'
t_check "  ... and nothing reached that host" [ ! -s "$T_TMP/sink" ]
# https to the same host: allowed (the sink speaks no TLS, so ADD fails to
# connect, code 11), but what reached it is a TLS hello, not the token
cni ADD c-h2 "$WRAP" "$(conf "$(jq -nc --arg t "$T_TMP/tokens/token" \
	--arg s "https://$SINK_ADDR:$SINK_PORT" '{server: $s, tokenFile: $t, timeoutSeconds: 2}')")"
t_check "https:// with a token is no config error (code $(jq -r .code "$T_TMP/out"))" \
	jqq '.code != 7' "$T_TMP/out"
t_check "  ... the host saw a TLS handshake, never the token" \
	sh -c "[ -s '$T_TMP/sink' ] && ! grep -qF '$TOKEN' '$T_TMP/sink'"
plain_no_token() {
	cni DEL c-h3 "$MSEG_CNI" "$(conf "$(jq -nc --arg s "http://$SINK_ADDR:$SINK_PORT" \
		'{server: $s, timeoutSeconds: 1}')")"
	! jq -e '.code == 7' "$T_TMP/out" >/dev/null 2>&1
}
t_check "plain http:// without a token to that host is the operator's choice (no code 7)" \
	plain_no_token

# --- labels from the config are opt-in
LABELS='{"labels": {"app": "db"}, "runtimeConfig": {"labels": {"tier": "data"}},
	 "args": {"cni": {"labels": [{"key": "team", "value": "x"}]}}}'
t_check "ADD with labels but no labelsFromConfig" cni ADD c-l1 "$MSEG_CNI" "$(conf "$LABELS")"
t_check "  ... warns that they are ignored" grep -q 'labelsFromConfig' "$T_TMP/err"
t_check "  ... msegd got the endpoint without them" \
	jqq '.labels == {} and .name == "db-0" and .namespace == "shop"' <<<"$(api /v1/endpoints/c-l1)"
t_check_not "  ... so the policy does not select it: no table" has_table
t_check "DEL c-l1" cni DEL c-l1 "$MSEG_CNI" "$(conf '{}')"
t_check "ADD with labels and \"labelsFromConfig\": true" \
	cni ADD c-l2 "$MSEG_CNI" "$(conf "$(jq -c '. + {labelsFromConfig: true}' <<<"$LABELS")")"
t_check "  ... no warning" [ ! -s "$T_TMP/err" ]
t_check "  ... msegd got all three sources' labels" \
	jqq '.labels == {"app": "db", "tier": "data", "team": "x"}' <<<"$(api /v1/endpoints/c-l2)"
t_check "  ... the policy selects it: table programmed" has_table
t_check "DEL c-l2" cni DEL c-l2 "$MSEG_CNI" "$(conf '{}')"
expect7() { ! cni ADD c-l3 "$MSEG_CNI" "$(conf '{"labelsFromConfig": "yes"}')" &&
	jq -e '.code == 7 and (.msg | contains("labelsFromConfig"))' "$T_TMP/out" >/dev/null; }
t_check "\"labelsFromConfig\": \"yes\" is refused (code 7, names the field)" expect7
t_done
