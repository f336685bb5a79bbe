#!/bin/bash
# msegd receives every unmatched packet through NFQUEUE in the endpoint's own
# namespace, gives the verdict of the direction's mode and records it: a
# denied TCP connect, UDP datagram and ICMP echo over IPv4 and IPv6 each
# become a flow record with the right endpoint, direction, addresses, ports,
# protocol and verdict; egress records carry the sender's uid; retransmitted
# SYNs aggregate; after kill -9 the drops go on (fail-closed) and a restart
# reattaches; audit lets traffic pass and records it; a flood stays within
# the rate limit and is counted in the kernel.
. "$(dirname "$0")/../lib.sh"
t_require_root

t_endpoints db:3 attacker:4 dl:80 || { t_fail "setup"; exit 1; }
cat >"$T_TMP/endpoints.yaml" <<EOF2
endpoints:
  - {id: db, name: postgres, namespace: shop, labels: {app: db}, netns: $(t_netns_path db), ips: [10.201.0.3, "fd00:201::3"]}
EOF2
mkdir -p "$T_TMP/policies"
write_policy() { # MODE
	cat >"$T_TMP/policies/p.yaml.tmp" <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: p, namespace: shop}
spec:
  mode: $1
  groups:
    db: {selector: {app: db}}
  allow: []
EOF2
	sed -i '/allow: \[\]/d' "$T_TMP/policies/p.yaml.tmp"
	mv "$T_TMP/policies/p.yaml.tmp" "$T_TMP/policies/p.yaml"
}
write_policy enforce
LOG="$T_TMP/flows.jsonl"
args=(--policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 0
      --flow-log "$LOG" --flow-window 2 --queue-rate 50 --queue-burst 50)
t_tcp_server db 5432
t_udp_server db 5353
t_tcp_server dl 80
t_wait_port dl 80
t_msegd_start "${args[@]}"
t_check "msegd ready" t_wait_log "msegd ready"
t_check "listener attached" t_wait_log "endpoint 'db': listening on NFQUEUE"

t_check_not "attacker -> db tcp/5432 refused (v4)" t_tcp attacker 10.201.0.3 5432
t_check "flow: ingress tcp v4 dropped" t_flow_has "$LOG" endpoint=db direction=ingress \
	src=10.201.0.4 dst=10.201.0.3 dport=5432 proto=tcp verdict=dropped
# a client that waits 2.5 s sends its SYN again after 1 s: one record, count 2
echo x | timeout 4 ip netns exec "$(t_ns attacker)" \
	socat -T1 - TCP:10.201.0.3:5433,connect-timeout=2.5 >/dev/null 2>&1
t_check "flow: retransmitted SYNs aggregate into one record (count >= 2)" t_flow_has "$LOG" \
	endpoint=db src=10.201.0.4 dport=5433 proto=tcp count\>=2
t_check_not "attacker -> db tcp/5432 refused (v6)" t_tcp attacker fd00:201::3 5432
t_check "flow: ingress tcp v6 dropped" t_flow_has "$LOG" endpoint=db direction=ingress \
	src=fd00:201::4 dst=fd00:201::3 dport=5432 proto=tcp verdict=dropped
t_check_not "attacker -> db udp/5353 refused" t_udp attacker 10.201.0.3 5353
t_check "flow: ingress udp dropped" t_flow_has "$LOG" endpoint=db direction=ingress \
	src=10.201.0.4 dport=5353 proto=udp verdict=dropped
t_check_not "attacker -> db icmp echo refused" t_ping attacker 10.201.0.3
t_check "flow: ingress icmp dropped" t_flow_has "$LOG" endpoint=db direction=ingress \
	src=10.201.0.4 proto=icmp verdict=dropped
t_check_not "attacker -> db icmpv6 echo refused" t_ping attacker fd00:201::3
t_check "flow: ingress icmpv6 dropped" t_flow_has "$LOG" endpoint=db direction=ingress \
	src=fd00:201::4 proto=icmpv6 verdict=dropped

# egress: the download attempt, made by uid 70 (like user postgres)
egress_as_70() {
	echo x | timeout 3 ip netns exec "$(t_ns db)" setpriv --reuid=70 --regid=70 --clear-groups \
		socat -T1 - TCP:10.201.0.80:80,connect-timeout=1 2>/dev/null | grep -q x
}
t_check_not "db -> download host refused" egress_as_70
t_check "flow: egress tcp with uid 70" t_flow_has "$LOG" endpoint=db direction=egress \
	src=10.201.0.3 dst=10.201.0.80 dport=80 proto=tcp verdict=dropped uid=70 gid=70

# malformed and unusual packets leaving db (its egress is isolated): the
# ones conntrack finds invalid are dropped and counted by the `ct state
# invalid` rule before the queue (sendto says EPERM); the others reach
# msegd, which must record them and stay up
metric() { curl -s --unix-socket "$T_TMP/api.sock" http://msegd/metrics | awk -v m="$1" '$1 == m {print $2}'; }
q0=$(metric 'mseg_queue_packets_total{verdict="dropped"}')
i0=$(metric 'mseg_invalid_packets_total{endpoint="db",direction="egress"}')
ip netns exec "$(t_ns db)" python3 "$MSEG_ROOT/tests/tools/malformed.py" \
	10.201.0.3 10.201.0.80 fd00:201::3 fd00:201::50 >"$T_TMP/raw.out" 2>&1
cat "$T_TMP/raw.out"
t_check "IPv4 with IP options reaches msegd and is recorded" t_flow_has "$LOG" endpoint=db \
	direction=egress dst=10.201.0.80 dport=7003 proto=tcp verdict=dropped
t_check "IPv6 with an extension header chain is recorded" t_flow_has "$LOG" endpoint=db \
	direction=egress dst=fd00:201::50 dport=7004 proto=tcp verdict=dropped
t_check "msegd alive after malformed packets" kill -0 "$T_MSEGD_PID"
q1=$(metric 'mseg_queue_packets_total{verdict="dropped"}')
echo "queued packets before/after: ${q0:-?} ${q1:-?}"
t_check "msegd's API answers and counted the queued ones" [ "${q1:-0}" -gt "${q0:-0}" ]
refused=$(grep -c "Operation not permitted" "$T_TMP/raw.out")
# per-endpoint kernel counters are read in the background: at most ~5 s old
for i in $(seq 1 70); do
	i1=$(metric 'mseg_invalid_packets_total{endpoint="db",direction="egress"}')
	[ "$((${i1:-0} - ${i0:-0}))" -ge "$refused" ] && break
	sleep 0.1
done
echo "conntrack-invalid: $refused refused at sendto, counter ${i0:-?} -> ${i1:-?}"
t_check "the ones conntrack refused are counted (mseg_invalid_packets_total)" \
	[ "$refused" -ge 1 ] && [ "$((${i1:-0} - ${i0:-0}))" -ge "$refused" ]
t_check_not "and still refuses the attacker" t_tcp attacker 10.201.0.3 5432

# kill -9: unmatched traffic stays blocked; restart reattaches and records again
kill -9 "$T_MSEGD_PID"; wait "$T_MSEGD_PID" 2>/dev/null
t_check_not "msegd dead: attacker still refused (fail-closed)" t_tcp attacker 10.201.0.3 5432
mark=$(t_log_lines)
t_msegd_start "${args[@]}"
t_check "restart: listener reattached" t_wait_log "endpoint 'db': listening on NFQUEUE" "$mark"
t_check "restart: flow log reloaded" t_wait_log "flow log: [0-9]+ records reloaded" "$mark"
t_check_not "after restart: attacker refused (port 6000)" t_tcp attacker 10.201.0.3 6000
t_check "after restart: new flows recorded" t_flow_has "$LOG" endpoint=db src=10.201.0.4 dport=6000 verdict=dropped

# audit: the same traffic passes and is recorded as audited
mark=$(t_log_lines)
write_policy audit
t_check "audit reload" t_wait_log "loaded 1 policies" "$mark"
sleep 0.3
t_check "audit: attacker -> db tcp/5432 passes" t_tcp attacker 10.201.0.3 5432
t_check "flow: audited record" t_flow_has "$LOG" endpoint=db src=10.201.0.4 dport=5432 verdict=audited
t_check "audit: db -> download host passes" t_tcp db 10.201.0.80 80
kill -9 "$T_MSEGD_PID"; wait "$T_MSEGD_PID" 2>/dev/null
t_check "audit with msegd down: traffic passes (fail-open)" t_tcp attacker 10.201.0.3 5432

# flood above the rate limit (50/s): msegd stays responsive, the kernel counts
mark=$(t_log_lines)
write_policy enforce
t_msegd_start "${args[@]}"
t_check "enforce again" t_wait_log "msegd ready" "$mark"
ip netns exec "$(t_ns attacker)" timeout 3 python3 - <<'PY'
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + 2
n = 0
while time.time() < end:
    s.sendto(b"x", ("10.201.0.3", 7000 + n % 500))
    n += 1
PY
over=$(t_nft db list counter inet mseg in_overlimit | awk '/packets/ {print $2}')
echo "over-limit packets counted by the kernel: ${over:-none}"
t_check "flood: over-limit packets counted in the kernel" [ "${over:-0}" -gt 100 ]
t_check "flood: msegd alive" kill -0 "$T_MSEGD_PID"
t_check "flood: flows still recorded" t_flow_has "$LOG" endpoint=db src=10.201.0.4 proto=udp
t_check_not "flood: attacker still refused" t_tcp attacker 10.201.0.3 5432
t_done
