#!/bin/bash
# NFQUEUE listener + packet parser + flow records on the real kernel.
#
# Two endpoints, cli (10.201.0.1, fd00:201::1) and db (10.201.0.2,
# fd00:201::2). Rules queue with the xtables NFQUEUE target through
# nft_compat (iptables-nft: this kernel has no native nft queue expression;
# it is the target msegd programs too):
#   db  INPUT : tcp 5432, udp 5353, icmp/icmpv6 echo requests -> queue 0
#   cli OUTPUT: tcp 9000, udp 9001 to db; anything to .99 / ::99 -> queue 3
# nfqtool (queue.c -> pkt.c -> flow.c) listens in each namespace from the
# root namespace (its socket is created inside through netns_socket).
# Checks the flow records: endpoint, direction, addresses, ports, protocol,
# ICMP type, verdict, uid/gid of egress sockets, SYN retransmissions
# aggregated into one record; malformed raw packets counted, not fatal;
# accept mode lets traffic through (audited); no listener drops (fail-closed).
. "$(dirname "$0")/../lib.sh"
t_require_root

NFQ="$MSEG_ROOT/$BUILD/tests/nfqtool"
t_require_built "$NFQ"
t_require_cmds iptables-nft ip6tables-nft python3 jq socat setpriv

t_endpoint cli 1 || { t_fail "setup"; exit 1; }
t_endpoint db 2 || { t_fail "setup"; exit 1; }
CLI=$(t_ns cli)
DB=$(t_ns db)

ipt() { local ns=$1; shift; ip netns exec "$ns" iptables-nft "$@"; }
ip6t() { local ns=$1; shift; ip netns exec "$ns" ip6tables-nft "$@"; }

ipt "$DB" -A INPUT -p tcp --dport 5432 -j NFQUEUE --queue-num 0
ipt "$DB" -A INPUT -p udp --dport 5353 -j NFQUEUE --queue-num 0
ipt "$DB" -A INPUT -p icmp --icmp-type echo-request -j NFQUEUE --queue-num 0
ip6t "$DB" -A INPUT -p tcp --dport 5432 -j NFQUEUE --queue-num 0
ip6t "$DB" -A INPUT -p udp --dport 5353 -j NFQUEUE --queue-num 0
ip6t "$DB" -A INPUT -p ipv6-icmp --icmpv6-type echo-request -j NFQUEUE --queue-num 0
ipt "$CLI" -A OUTPUT -d 10.201.0.2 -p tcp --dport 9000 -j NFQUEUE --queue-num 3
ipt "$CLI" -A OUTPUT -d 10.201.0.2 -p udp --dport 9001 -j NFQUEUE --queue-num 3
ipt "$CLI" -A OUTPUT -d 10.201.0.99 -j NFQUEUE --queue-num 3
ip6t "$CLI" -A OUTPUT -d fd00:201::2 -p tcp --dport 9000 -j NFQUEUE --queue-num 3
ip6t "$CLI" -A OUTPUT -d fd00:201::99 -j NFQUEUE --queue-num 3
# the neighbours of .99/::99 are never resolved (packets are dropped
# first), but give them static entries so nothing waits on them
ip -n "$CLI" neigh replace 10.201.0.99 lladdr 02:00:00:00:00:99 dev eth0
ip -n "$CLI" -6 neigh replace fd00:201::99 lladdr 02:00:00:00:00:99 dev eth0

# nfqtool NAME NS ARGS...: start in the background; wait until bound
nfq_start() {
	local name=$1 ns=$2 i
	shift 2
	rm -f "$T_TMP/$name.ready"
	"$NFQ" --netns "/run/netns/$ns" --timeout 60 --ready "$T_TMP/$name.ready" "$@" \
		>"$T_TMP/$name.jsonl" 2>"$T_TMP/$name.err" &
	eval "PID_$name=$!"
	T_PIDS+=($!)
	for i in $(seq 1 50); do
		[ -e "$T_TMP/$name.ready" ] && return 0
		sleep 0.1
	done
	return 1
}
# nfq_stop NAME: SIGTERM, wait; its exit status
nfq_stop() {
	local pid
	eval "pid=\$PID_$1"
	kill -TERM "$pid" 2>/dev/null
	wait "$pid"
}
# has NAME JQ-CONDITION: some record of NAME matches
has() { jq -s -e "any(.[]; $2)" "$T_TMP/$1.jsonl" >/dev/null 2>&1; }
# stat NAME KEY: a counter from nfqtool's stats line
stat() { tail -n1 "$T_TMP/$1.err" | jq -r "$2" 2>/dev/null; }

t_check "listener bound in db (queue 0)" \
	nfq_start db "$DB" --queue 0 --mode drop --endpoint db-1 --name db --namespace shop \
	--log "$T_TMP/flows.jsonl"
t_check "listener bound in cli (queue 3)" \
	nfq_start cli "$CLI" --queue 3 --mode drop --endpoint cli-1 --name cli --namespace shop

# a second listener on a bound queue is refused
second_bind_refused() {
	local out
	out=$(timeout 5 "$NFQ" --netns "/run/netns/$DB" --queue 0 --timeout 1 2>&1 >/dev/null) &&
		return 1
	echo "$out" | grep -q 'busy'
}
t_check "second bind refused (EBUSY)" second_bind_refused

# ---- traffic ----
AS70=(ip netns exec "$CLI" setpriv --reuid=70 --regid=70 --clear-groups)

# TCP connects (dropped: the SYN is retransmitted)
timeout 6 ip netns exec "$CLI" socat -T1 /dev/null TCP:10.201.0.2:5432,connect-timeout=3.5 \
	>/dev/null 2>&1 &
c1=$!
timeout 6 ip netns exec "$CLI" socat -T1 /dev/null "TCP:[fd00:201::2]:5432,connect-timeout=3.5" \
	>/dev/null 2>&1 &
c2=$!
timeout 6 "${AS70[@]}" socat -T1 /dev/null TCP:10.201.0.2:9000,connect-timeout=3.5 >/dev/null 2>&1 &
c3=$!
timeout 6 "${AS70[@]}" socat -T1 /dev/null "TCP:[fd00:201::2]:9000,connect-timeout=3.5" >/dev/null 2>&1 &
c4=$!
# UDP, one datagram each
echo hello | timeout 3 ip netns exec "$CLI" socat -u - UDP:10.201.0.2:5353 >/dev/null 2>&1
echo hello | timeout 3 ip netns exec "$CLI" socat -u - "UDP:[fd00:201::2]:5353" >/dev/null 2>&1
echo hello | timeout 3 "${AS70[@]}" socat -u - UDP:10.201.0.2:9001 >/dev/null 2>&1
# ICMP echo (dropped: no reply)
t_check_not "ping dropped" t_ping cli 10.201.0.2
t_check_not "ping6 dropped" t_ping cli fd00:201::2

# malformed and unusual packets through raw sockets (IP_HDRINCL), egress
# of cli (tests/tools/malformed.py says which ones and why).
sent=$(ip netns exec "$CLI" python3 "$MSEG_ROOT/tests/tools/malformed.py" 10.201.0.1 10.201.0.99 fd00:201::1 fd00:201::99)
t_check "raw packets sent" [ "$sent" = 7 ]

wait $c1
rc1=$?
wait $c2 $c3 $c4 2>/dev/null
t_check "tcp connect dropped" [ "$rc1" -ne 0 ]

t_check "db listener exits cleanly" nfq_stop db
t_check "cli listener exits cleanly" nfq_stop cli

# ---- records: ingress on db ----
ING='.endpoint.id == "db-1" and .endpoint.name == "db" and .endpoint.namespace == "shop"
	and .direction == "ingress" and .verdict == "dropped"'
t_check "tcp4 ingress record, SYN retransmissions aggregated" has db "$ING and .proto == \"tcp\"
	and .src == \"10.201.0.1\" and .dst == \"10.201.0.2\" and .dport == 5432 and .sport > 1023
	and .count >= 2 and .first_seen < .last_seen and (has(\"uid\") | not) and (has(\"error\") | not)"
t_check "tcp6 ingress record, aggregated" has db "$ING and .proto == \"tcp\"
	and .src == \"fd00:201::1\" and .dst == \"fd00:201::2\" and .dport == 5432 and .count >= 2"
t_check "udp4 ingress record" has db "$ING and .proto == \"udp\" and .src == \"10.201.0.1\"
	and .dport == 5353 and .count == 1"
t_check "udp6 ingress record" has db "$ING and .proto == \"udp\" and .src == \"fd00:201::1\"
	and .dport == 5353"
t_check "icmp echo record" has db "$ING and .proto == \"icmp\" and .icmp_type == 8
	and .icmp_code == 0 and (has(\"dport\") | not)"
t_check "icmpv6 echo record" has db "$ING and .proto == \"icmpv6\" and .icmp_type == 128"
t_check "one tcp4 record for the retransmissions" \
	[ "$(jq -s '[.[] | select(.proto == "tcp" and .src == "10.201.0.1")] | length' \
		"$T_TMP/db.jsonl")" = 1 ]

# ---- egress on cli, with the socket's uid/gid ----
EG='.endpoint.id == "cli-1" and .direction == "egress" and .verdict == "dropped"'
t_check "tcp4 egress record with uid/gid 70" has cli "$EG and .proto == \"tcp\"
	and .src == \"10.201.0.1\" and .dst == \"10.201.0.2\" and .dport == 9000
	and .uid == 70 and .gid == 70 and .count >= 2"
t_check "tcp6 egress record with uid 70" has cli "$EG and .proto == \"tcp\"
	and .dst == \"fd00:201::2\" and .dport == 9000 and .uid == 70"
t_check "udp4 egress record with uid 70" has cli "$EG and .proto == \"udp\" and .dport == 9001
	and .uid == 70 and .gid == 70"

# ---- malformed packets ----
t_check "truncated tcp header: recorded with its ports and the reason" has cli "$EG
	and .dst == \"10.201.0.99\" and .dport == 7001 and .error == \"truncated l4 header\""
t_check "ip options: parsed through" has cli "$EG and .dport == 7003 and (has(\"error\") | not)"
t_check "ipv6 extension header chain: parsed through" has cli "$EG and .dst == \"fd00:201::99\"
	and .proto == \"tcp\" and .dport == 7004 and (has(\"error\") | not)"
t_check "later fragment: udp without ports" has cli "$EG and .proto == \"udp\"
	and .dst == \"10.201.0.99\" and (has(\"dport\") | not)"
t_check "bad ipv6 payload length recorded" has cli "$EG and .proto == \"tcp\"
	and .error == \"bad ip total length\""
t_check "bad ipv6 extension header recorded" has cli "$EG
	and .error == \"bad ipv6 extension header\""
t_check "parse errors counted (4)" [ "$(stat cli .stats.parse_errors)" = 4 ]
t_check "no lost or bad messages" [ "$(stat cli '.stats.enobufs + .stats.truncated +
	.stats.bad_msgs + .stats.kernel_errors + .stats.send_errors')" = 0 ]
t_check "every packet got a verdict" [ "$(stat db '.stats.packets == .stats.dropped and
	.kernel.queue_total == 0 and .kernel.queue_dropped == 0 and .kernel.user_dropped == 0
	and .kernel.id_sequence == .stats.packets and .kernel.copy_range == 128')" = true ]
t_check "verdicts batched (fewer sends than packets or equal)" \
	[ "$(stat cli '.stats.sends <= .stats.packets')" = true ]

# ---- the flow log ----
t_check "flow log holds every db record" [ "$(jq -s '[.[].id] | unique | length' \
	"$T_TMP/flows.jsonl")" = "$(wc -l <"$T_TMP/db.jsonl")" ]

# ---- accept mode (audit): traffic passes and is recorded ----
t_tcp_server db 5432
t_check "server up" t_wait_port db 5432
t_check "listener in accept mode" nfq_start dba "$DB" --queue 0 --mode accept --endpoint db-1
t_check "tcp4 passes in accept mode" t_tcp cli 10.201.0.2 5432
t_check "tcp6 passes in accept mode" t_tcp cli fd00:201::2 5432
t_check "accept listener exits cleanly" nfq_stop dba
t_check "audited record" has dba '.direction == "ingress" and .verdict == "audited"
	and .dport == 5432 and .src == "10.201.0.1"'

# ---- no listener: the queue drops (fail-closed) ----
t_check_not "no listener: tcp dropped" t_tcp cli 10.201.0.2 5432

if [ "$T_FAILS" -ne 0 ]; then
	for f in db cli dba; do
		echo "--- $f"
		cat "$T_TMP/$f.jsonl" "$T_TMP/$f.err" 2>/dev/null
	done
fi
[ "$T_FAILS" -eq 0 ]
