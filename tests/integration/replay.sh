#!/bin/bash
# Replay of a candidate policy against what the current one does, with
# real traffic: `client` reaches `server` on tcp/8080 (3 connections) and
# tcp/8081 (2) under an enforced list; one attempt on tcp/9090 is refused
# and recorded. A dry run of a tightening (8081 removed) reports exactly
# that pair and port with its 2 connections, from the kernel's
# accepted-connection summaries; a dry run of a loosening (9090 added)
# reports the recorded drop it would allow. Neither dry run changes the
# kernel: same table handle, same generation, 8081 still passes, 9090
# still refused. A full seen set (4096 elements) stops the recording, not
# the traffic.
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds socat python3

t_endpoints client:1 server:2 || { t_fail "setup"; exit 1; }
export MSEG_SERVER="unix:$T_TMP/api.sock"
LOG="$T_TMP/flows.jsonl"
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)

t_tcp_server server 8080
t_tcp_server server 8081
t_tcp_server server 9090
for p in 8080 8081 9090; do
	t_wait_port server $p || { t_fail "server $p"; exit 1; }
done

t_msegd_start --resync 0 --flow-log "$LOG"
t_check "msegd ready" t_wait_log "msegd ready"
for e in client:1 server:2; do
	"$MSEG" endpoint add "${e%%:*}" --netns "$(t_netns_path "${e%%:*}")" \
		--ip "10.201.0.${e##*:}" --label app="${e%%:*}" >/dev/null || t_fail "endpoint $e"
done
policy() { # PORTS...
	local ports
	ports=$(printf 'tcp/%s, ' "$@")
	cat <<EOF
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: pair, namespace: default}
spec:
  groups:
    client: {selector: {app: client}}
    server: {selector: {app: server}}
  allow:
    - {from: client, to: server, ports: [${ports%, }]}
EOF
}
policy 8080 8081 >"$T_TMP/now.yaml"
policy 8080 >"$T_TMP/tight.yaml"
policy 8080 8081 9090 >"$T_TMP/loose.yaml"
t_check "the list applies" "$MSEG" apply -f "$T_TMP/now.yaml"

ok=0
for i in 1 2 3; do t_tcp client 10.201.0.2 8080 && ok=$((ok + 1)); done
for i in 1 2; do t_tcp client 10.201.0.2 8081 && ok=$((ok + 1)); done
t_check "5 allowed connections pass ($ok)" [ "$ok" = 5 ]
t_check_not "tcp/9090 is refused" t_tcp client 10.201.0.2 9090
t_check "... and recorded" t_flow_has "$LOG" endpoint=client direction=egress dport=9090 \
	verdict=dropped
t_nft server list set inet mseg in4_seen_port 2>/dev/null | sed 's/^/    /'
t_check "the kernel counted server's 2 connections on 8081" \
	bash -c "ip netns exec $(t_ns server) nft list set inet mseg in4_seen_port | grep -q '10.201.0.1 . tcp . 8081 counter packets 2 '"

state() { # the table handles and msegd's generation: what a dry run must not move
	t_nft client -a list table inet mseg 2>/dev/null | head -1
	t_nft server -a list table inet mseg 2>/dev/null | head -1
	curl -s --unix-socket "$T_TMP/api.sock" http://x/v1/status |
		"$PY" -c 'import json, sys; print(json.load(sys.stdin)["generation"])'
}
before=$(state)

# tightening: 8081 goes
"$MSEG" apply --dry-run --replay -f "$T_TMP/tight.yaml" -o json >"$T_TMP/tight.json"
t_check "apply --dry-run --replay (tightening): exit 0" [ $? -eq 0 ]
groups() { # FILE EXPR over the groups g
	"$PY" -c 'import json, sys
j = json.load(open(sys.argv[1]))
g = j["replay"]["groups"]
ok = eval(sys.argv[2])
if not ok:
    print("    groups:", json.dumps(g))
sys.exit(0 if ok else 1)' "$1" "$2"
}
t_check "tightening: exactly server <- 10.201.0.1 and client -> 10.201.0.2 on tcp/8081, 2 connections each" \
	groups "$T_TMP/tight.json" 'sorted((x["endpoint"], x["direction"], x["peer"], x["proto"], x.get("port"), x["from"], x["to"], x.get("connections")) for x in g) == [("client", "egress", "10.201.0.2", "tcp", 8081, "allowed", "dropped", 2), ("server", "ingress", "10.201.0.1", "tcp", 8081, "allowed", "dropped", 2)]'
t_check "tightening: each group says when it was last seen" \
	groups "$T_TMP/tight.json" 'all(x["last_seen"].startswith("20") for x in g)'
out=$("$MSEG" apply --dry-run --replay -f "$T_TMP/tight.yaml")
echo "$out" | sed 's/^/    /'
t_check "tightening (table): the pair, the port and the count on one line" \
	grep -qE '^ +server +ingress +10\.201\.0\.1 +tcp +8081 +allowed +-> dropped +2 connections$' <<<"$out"

# loosening: 9090 comes
"$MSEG" apply --dry-run --replay -f "$T_TMP/loose.yaml" -o json >"$T_TMP/loose.json"
t_check "apply --dry-run --replay (loosening): exit 0" [ $? -eq 0 ]
t_check "loosening: the recorded 9090 drop would be allowed, nothing would be refused" \
	groups "$T_TMP/loose.json" 'any(x["endpoint"] == "client" and x["direction"] == "egress" and x["peer"] == "10.201.0.2" and x.get("port") == 9090 and x["from"] == "dropped" and x["to"] == "allowed" and x["records"] >= 1 for x in g) and not any(x["to"] == "dropped" for x in g)'

t_check "the dry runs changed nothing: same table handles and generation" [ "$(state)" = "$before" ]
t_check "tcp/8081 still passes" t_tcp client 10.201.0.2 8081
t_check_not "tcp/9090 still refused" t_tcp client 10.201.0.2 9090

# a full seen set stops the recording, never the traffic
{
	echo "flush set inet mseg in4_seen_port"
	printf 'add element inet mseg in4_seen_port { '
	for ((i = 0; i < 4096; i++)); do
		printf '%s10.99.%d.%d . tcp . 1' "${i:+, }" $((i / 256)) $((i % 256))
	done
	echo ' }'
} | sed 's/{ , /{ /' >"$T_TMP/fill.nft"
t_check "server's in4_seen_port filled to its 4096 elements" \
	ip netns exec "$(t_ns server)" nft -f "$T_TMP/fill.nft"
t_check "with the seen set full, an allowed new connection still passes" \
	t_tcp client 10.201.0.2 8080
t_check_not "... and is not recorded (the set had no room)" \
	bash -c "ip netns exec $(t_ns server) nft list set inet mseg in4_seen_port 2>/dev/null | grep -q '10.201.0.1 . tcp . 8080'"

out=$("$MSEG" apply --replay -f "$T_TMP/tight.yaml" 2>&1); rc=$?
t_check "--replay without --dry-run: usage error (exit 2)" [ "$rc" -eq 2 ]
t_check "... saying why" grep -q -- "--replay needs --dry-run" <<<"$out"
t_done
