#!/bin/bash
# New TCP connections per second between two namespaces, server side
# isolated by mseg's table with 1, 1k and 100k allow elements (the client's
# own plus fillers), against no firewall and against an iptables-nft chain of
# 10k linear rules (the classic design mseg replaces), and against the same
# table without the seen chain (what counting accepted connections costs),
# all in the same run.
# Target: at 100k elements, at least 0.95 of the no-firewall rate.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECS=${CONN_SECS:-2}
REPS=${CONN_REPS:-3}
P="mb$$"
CR="$PWD/$BUILD/tests/connrate"
[ "$(id -u)" -eq 0 ] || { echo "conn_rate: needs root, skipped"; exit 0; }
[ -x "$CR" ] || { echo "conn_rate: $CR missing (make tests)"; exit 1; }
cleanup() {
	kill "${SRV:-}" 2>/dev/null; wait 2>/dev/null
	ip netns pids "$P-srv" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$P-cli" 2>/dev/null; ip netns del "$P-srv" 2>/dev/null
	rm -f "/tmp/$P".*
}
trap cleanup EXIT
ip netns add "$P-cli"; ip netns add "$P-srv"
ip -n "$P-cli" link add eth0 type veth peer name eth0 netns "$P-srv"
for n in cli:1 srv:2; do
	ns="$P-${n%%:*}"
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "10.202.0.${n##*:}/24" dev eth0
	ip -n "$ns" link set eth0 up
done
ip netns exec "$P-srv" "$CR" server 5432 &
SRV=$!
sleep 0.3

# a table following docs/ruleset.md (ingress only) with N elements in
# in4_port: the client's address plus N-1 fillers from 10.64.0.0/10; with
# "seen", the lookups go to the seen chain that counts each admitted new
# connection in the kernel (the current layout), else they accept directly
# (the layout before the seen sets: the baseline of their cost)
mseg_table() { # N [seen]
	local n=$1 seen=${2:-} verdict=accept
	[ -n "$seen" ] && verdict="goto in4_seen"
	{
		echo "table inet mseg {"
		echo "  limit flood { rate over 100/second burst 200 packets }"
		echo "  counter in_overlimit { }"
		echo "  set in4_port { type ipv4_addr . inet_proto . inet_service; size 262144; elements = { 10.202.0.1 . tcp . 5432"
		python3 - "$n" <<'PY'
import sys
n = int(sys.argv[1])
out = []
for i in range(1, n):
    out.append(", 10.%d.%d.%d . tcp . 5432" % (64 + (i >> 16), (i >> 8) & 255, i & 255))
    if len(out) == 1000:
        print("".join(out)); out = []
if out:
    print("".join(out))
PY
		echo "  } }"
		echo "  set in4_port_iv { type ipv4_addr . inet_proto . inet_service; flags interval; }"
		echo "  set in4_proto { type ipv4_addr . inet_proto; }"
		echo "  set in4_any { type ipv4_addr; }"
		if [ -n "$seen" ]; then
			echo "  set in4_seen_port { type ipv4_addr . inet_proto . inet_service; size 4096; flags dynamic,timeout; counter; timeout 86400s; }"
			echo "  set in4_seen_proto { type ipv4_addr . inet_proto; size 4096; flags dynamic,timeout; counter; timeout 86400s; }"
			echo "  chain in4_seen {"
			echo "    meta l4proto { tcp, udp, sctp, udplite } update @in4_seen_port { ip saddr . meta l4proto . th dport }"
			echo "    meta l4proto != { tcp, udp, sctp, udplite } update @in4_seen_proto { ip saddr . meta l4proto }"
			echo "    accept"
			echo "  }"
		fi
		echo "  chain ingress { type filter hook input priority filter; policy accept;"
		echo "    ct state established,related accept"
		echo "    ct state invalid drop"
		echo "    iif \"lo\" accept"
		echo "    ip saddr . meta l4proto . th dport @in4_port $verdict"
		echo "    ip saddr . meta l4proto . th dport @in4_port_iv $verdict"
		echo "    ip saddr . meta l4proto @in4_proto $verdict"
		echo "    ip saddr @in4_any $verdict"
		echo "    limit name \"flood\" counter name \"in_overlimit\" drop"
		echo "    log group 0 drop"
		echo "  }"
		echo "}"
	} >"/tmp/$P.nft"
	ip netns exec "$P-srv" nft -f "/tmp/$P.nft"
}
# conntrack and nothing else: what any stateful firewall costs per connection
ct_only() {
	printf 'table inet ctonly {\n chain input_ct {\n type filter hook input priority filter; policy accept;\n ct state established,related accept\n }\n}\n' >"/tmp/$P.ct"
	ip netns exec "$P-srv" nft -f "/tmp/$P.ct"
}
iptables_linear() { # N rules; the client's rule is the last one
	local n=$1 i
	{
		echo "*filter"
		echo ":INPUT ACCEPT [0:0]"
		echo "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
		for ((i = 1; i < n; i++)); do
			echo "-A INPUT -s 10.$((64 + (i >> 16))).$(((i >> 8) & 255)).$((i & 255))/32 -p tcp --dport 5432 -j ACCEPT"
		done
		echo "-A INPUT -s 10.202.0.1/32 -p tcp --dport 5432 -j ACCEPT"
		echo "-A INPUT -p tcp --dport 5432 -j DROP"
		echo "COMMIT"
	} >"/tmp/$P.ipt"
	ip netns exec "$P-srv" iptables-nft-restore <"/tmp/$P.ipt"
}
reset_fw() {
	ip netns exec "$P-srv" nft flush ruleset
}
one_run() { ip netns exec "$P-cli" "$CR" client 10.202.0.2 5432 "$SECS" | cut -d' ' -f1; }
median() { sort -n | sed -n "$(((REPS + 1) / 2))p"; }
setup() { # configuration name
	reset_fw
	case $1 in
	none) ;;
	ct-only) ct_only ;;
	mseg-*) mseg_table "${1#mseg-}" ;;
	seen-*) mseg_table "${1#seen-}" seen ;;
	ipt-*) iptables_linear "${1#ipt-}" ;;
	esac
}

# Interleaved: every repetition runs every configuration once, so drift in
# the machine's load hits all of them alike; the median of REPS is reported.
configs=(none ct-only mseg-1 mseg-1000 mseg-100000 seen-1 seen-1000 seen-100000 ipt-10000)
declare -A results
for ((r = 0; r < REPS; r++)); do
	for c in "${configs[@]}"; do
		setup "$c"
		results[$c]+="$(one_run) "
	done
done
reset_fw
base=$(echo ${results[none]} | tr ' ' '\n' | median)
printf '%-34s %10s %8s   (runs of %s s, median of %s)\n' "configuration" "conns/s" "ratio" "$SECS" "$REPS"
for c in "${configs[@]}"; do
	v=$(echo ${results[$c]} | tr ' ' '\n' | median)
	case $c in
	none) label="no firewall" ;;
	ct-only) label="conntrack only (ct state rule)" ;;
	mseg-*) label="no seen chain, ${c#mseg-} elements" ;;
	seen-*) label="mseg table, ${c#seen-} elements" ;;
	ipt-*) label="iptables-nft, ${c#ipt-} linear rules" ;;
	esac
	printf '%-34s %10s %8s\n' "$label" "$v" "$(echo "scale=3; $v / $base" | bc)"
done
ct=$(echo ${results[ct-only]} | tr ' ' '\n' | median)
m=$(echo ${results[seen-100000]} | tr ' ' '\n' | median)
echo "mseg at 100000 elements / conntrack only: $(echo "scale=3; $m / $ct" | bc)"
for n in 1 1000 100000; do
	a=$(echo ${results[seen-$n]} | tr ' ' '\n' | median)
	b=$(echo ${results[mseg-$n]} | tr ' ' '\n' | median)
	echo "seen chain cost at $n elements: with / without = $(echo "scale=3; $a / $b" | bc)"
done
echo "target: mseg at 100000 elements >= 0.95 of no firewall"
