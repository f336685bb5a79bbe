#!/bin/bash
# One process, one event loop, one flow ring, a listener per network
# namespace (as msegd runs them): each listener's socket is created inside
# its namespace, every namespace uses the same queue number, and each
# packet is recorded for the endpoint whose namespace queued it (the
# listener's context).
. "$(dirname "$0")/../lib.sh"
t_require_root

NFQ="$MSEG_ROOT/$BUILD/tests/nfqtool"
t_require_built "$NFQ"
t_require_cmds iptables-nft python3 jq socat

for e in a:1 b:2 c:3; do
	t_endpoint "${e%:*}" "${e#*:}" || { t_fail "setup"; exit 1; }
	ns=$(t_ns "${e%:*}")
	ip netns exec "$ns" iptables-nft -A INPUT -p tcp --dport 7000 -j NFQUEUE --queue-num 0
	ip netns exec "$ns" iptables-nft -A OUTPUT -p udp --dport 7001 -j NFQUEUE --queue-num 0
done

"$NFQ" --queue 0 --mode drop --timeout 30 --ready "$T_TMP/ready" \
	--netns "$(t_netns_path a)" --endpoint a-1 --name a --namespace shop \
	--netns "$(t_netns_path b)" --endpoint b-1 --name b --namespace shop \
	--netns "$(t_netns_path c)" --endpoint c-1 --name c --namespace other \
	>"$T_TMP/flows.jsonl" 2>"$T_TMP/err" &
PID=$!
T_PIDS+=("$PID")
for i in $(seq 1 50); do
	[ -e "$T_TMP/ready" ] && break
	sleep 0.1
done
t_check "three listeners bound" [ -e "$T_TMP/ready" ]

tcp_try() { # FROM ADDR: one connection attempt to port 7000
	timeout 3 ip netns exec "$(t_ns "$1")" socat -T1 /dev/null "TCP:$2:7000,connect-timeout=1.5" \
		>/dev/null 2>&1
}
udp_send() { # FROM ADDR
	echo x | timeout 2 ip netns exec "$(t_ns "$1")" socat -u - "UDP:$2:7001" >/dev/null 2>&1
}
tcp_try a 10.201.0.2 &     # ingress at b
c1=$!
tcp_try b 10.201.0.3 &     # ingress at c
c2=$!
tcp_try c 10.201.0.1 &     # ingress at a
c3=$!
udp_send a 10.201.0.3      # egress at a
udp_send c 10.201.0.2      # egress at c
wait "$c1" "$c2" "$c3" 2>/dev/null
kill -TERM "$PID"
t_check "listener process exits cleanly" wait "$PID"

has() { jq -s -e "any(.[]; $1)" "$T_TMP/flows.jsonl" >/dev/null 2>&1; }
t_check "b: ingress from a" has '.endpoint.id == "b-1" and .direction == "ingress"
	and .src == "10.201.0.1" and .dst == "10.201.0.2" and .dport == 7000'
t_check "c: ingress from b" has '.endpoint.id == "c-1" and .endpoint.namespace == "other"
	and .direction == "ingress" and .src == "10.201.0.2" and .dst == "10.201.0.3"'
t_check "a: ingress from c" has '.endpoint.id == "a-1" and .direction == "ingress"
	and .src == "10.201.0.3" and .dst == "10.201.0.1"'
t_check "a: egress to c" has '.endpoint.id == "a-1" and .direction == "egress"
	and .dst == "10.201.0.3" and .dport == 7001 and .proto == "udp"'
t_check "c: egress to b" has '.endpoint.id == "c-1" and .direction == "egress"
	and .dst == "10.201.0.2" and .dport == 7001'
# every record belongs where its addresses say
t_check "no record attributed to the wrong endpoint" [ "$(jq -s '[.[] | select(
	(.direction == "ingress" and .dst != ({"a-1": "10.201.0.1", "b-1": "10.201.0.2",
		"c-1": "10.201.0.3"}[.endpoint.id])) or
	(.direction == "egress" and .src != ({"a-1": "10.201.0.1", "b-1": "10.201.0.2",
		"c-1": "10.201.0.3"}[.endpoint.id])))] | length' "$T_TMP/flows.jsonl")" = 0 ]
t_check "five records" [ "$(wc -l <"$T_TMP/flows.jsonl")" = 5 ]

if [ "$T_FAILS" -ne 0 ]; then
	cat "$T_TMP/flows.jsonl" "$T_TMP/err"
fi
[ "$T_FAILS" -eq 0 ]
