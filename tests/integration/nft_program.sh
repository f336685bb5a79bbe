#!/bin/bash
# The kernel backend on a real kernel: program `inet mseg` tables into fresh
# network namespaces with tests/tools/nftprog (libmseg's netlink code), and
# check them with `nft list`, with read-back, and with real traffic over a
# veth pair (10.200.0.0/24, fd00:200::/64; nothing leaves the namespaces).
#
# A = the endpoint (tables go here), B = its peer. Scenarios (nftprog.c):
#   basic   ingress: 10.200.0.2 tcp 8080, 10.200.0.0/24 udp 5353-5360,
#                    icmp from 10.200.0.2, fd00:200::2 tcp 8080, icmpv6 from the /64
#           egress:  10.200.0.2 tcp 9090 + icmp, fd00:200::2 tcp 9090 + icmpv6
#   basic2  membership changes of basic: + tcp 8081, udp 5353-5370, + egress
#           tcp 9091, - egress fd00:200::2 tcp 9090, ...
set -u
ROOT=${MSEG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
P=$ROOT/$BUILD/tests/nftprog

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: nft_program needs root"
	exit 77
fi
for t in ip nft socat ping timeout; do
	command -v "$t" >/dev/null || { echo "SKIP: $t is not installed"; exit 77; }
done
if [ ! -x "$P" ]; then
	echo "FAIL: $P is not built"
	exit 1
fi

A=mseg-t-$$-a
B=mseg-t-$$-b
C=mseg-t-$$-c
D=mseg-t-$$-d
NSA=/run/netns/$A
pids=()
tmp=$(mktemp -d)

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	for n in $A $B $C $D; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

failed=0
check() { # name command...
	local name=$1
	shift
	if "$@"; then
		echo "PASS: $name"
	else
		echo "FAIL: $name"
		failed=1
	fi
}
not() { ! "$@"; }

in_ns() { local n=$1; shift; ip netns exec "$n" "$@"; }

# ---- namespaces and servers ----
for n in $A $B $C $D; do ip netns add "$n" || exit 1; done
ip -n $A link add eth0 type veth peer name eth0 netns $B || exit 1
for n in $A $B $C $D; do ip -n "$n" link set lo up; done
ip -n $A link set eth0 up
ip -n $B link set eth0 up
ip -n $A addr add 10.200.0.1/24 dev eth0
ip -n $B addr add 10.200.0.2/24 dev eth0
ip -n $A addr add fd00:200::1/64 dev eth0 nodad
ip -n $B addr add fd00:200::2/64 dev eth0 nodad

serve() { # ns socat-listen-address
	ip netns exec "$1" socat "$2" SYSTEM:'echo ok' 2>/dev/null &
	pids+=($!)
}
serve $A TCP6-LISTEN:8080,fork,reuseaddr,ipv6only=0
serve $A TCP6-LISTEN:8081,fork,reuseaddr,ipv6only=0
serve $A UDP4-RECVFROM:5353,fork
serve $A UDP4-RECVFROM:5365,fork
serve $A UDP4-RECVFROM:5400,fork
serve $B TCP6-LISTEN:9090,fork,reuseaddr,ipv6only=0
serve $B TCP6-LISTEN:9091,fork,reuseaddr,ipv6only=0
sleep 0.5

tcp_ok() { # from-ns addr port: the server answers "ok"
	local out
	out=$(in_ns "$1" timeout 5 socat -T2 -u "TCP:$2:$3,connect-timeout=2" - 2>/dev/null)
	[ "$out" = ok ]
}
udp_once() { # from-ns addr port: one datagram answered within 2 s
	local out
	out=$(echo ping | in_ns "$1" timeout 4 socat -T2 - "UDP4:$2:$3" 2>/dev/null)
	[ "$out" = ok ]
}
udp_ok() { # from-ns addr port: answered within three tries (a datagram
	# or its answer can be lost under load; a refusal is checked with
	# `not udp_once`, a single try)
	udp_once "$@" || udp_once "$@" || udp_once "$@"
}
ping_ok() { # from-ns addr
	in_ns "$1" ping -c1 -W2 "$2" >/dev/null 2>&1
}
nft_list() { in_ns "$1" nft list table inet mseg 2>/dev/null; }
listed() { # ns fixed-string: `nft list table inet mseg` shows it (whitespace folded)
	nft_list "$1" | tr -s ' \t\n' ' ' | grep -qF -- "$2"
}
line_listed() { # ns whole-line: `nft list table inet mseg` has exactly this line
	nft_list "$1" | grep -qxF -- "$2"
}
counters_match() { # regex on `nftprog counters`
	"$P" counters $NSA | grep -q -- "$1"
}
genid() { "$P" genid "$1"; }
stat_of() { # stats-line field
	sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"$1"
}
verify_in_sync() { # scenario [options]
	local sc=$1
	shift
	"$P" verify $NSA "$sc" --queue "$Q" "$@" >"$tmp/verify" 2>&1
}

# ---- kernel features ----
probe=$("$P" probe)
check "probe runs in a throwaway namespace" test $? -eq 0
echo "# $probe" | head -1
case $(sed -n 's/.* queue=\([a-z-]*\).*/\1/p' <<<"$probe") in
queue) Q=native ;;
xt-nfqueue) Q=xt ;;
*) Q=nflog ;;
esac
echo "# queue method: $Q"
check "probe leaves no table behind" test -z "$(nft list tables 2>/dev/null | grep mseg)"

# ---- the table in the kernel = the text renderer's table ----
same_as_text() { # scenario mode: nft list of our netlink table == nft -f of the text renderer (table_text)
	"$P" replace /run/netns/$C "$1" --queue nflog --mode "$2" >/dev/null || return 1
	"$P" text "$1" --queue nflog --mode "$2" >"$tmp/text.nft" || return 1
	in_ns $D nft flush ruleset
	in_ns $D nft -f "$tmp/text.nft" || return 1
	nft_list $C >"$tmp/nl.txt"
	nft_list $D >"$tmp/text.txt"
	cmp -s "$tmp/nl.txt" "$tmp/text.txt" || { diff "$tmp/nl.txt" "$tmp/text.txt" | head -20; return 1; }
}
for sc in basic basic2 ingress; do
	for mode in enforce audit; do
		check "nft list of netlink table == nft -f of text renderer ($sc, $mode)" same_as_text $sc $mode
	done
done

# ---- enforce ----
out=$("$P" replace $NSA basic --queue "$Q")
check "replace basic (enforce): one batch" test "$(stat_of "$out" batches)" = 1
check "nft lists the concatenated lookup" listed $A "ip saddr . meta l4proto . th dport @in4_port goto in4_seen"
check "nft lists an exact element" listed $A "elements = { 10.200.0.2 . tcp . 8080 }"
check "nft lists a concatenated interval" listed $A "elements = { 10.200.0.0/24 . udp . 5353-5360 }"
check "nft lists plain intervals (one open to the top)" listed $A "elements = { 10.97.0.0-10.97.0.9, 240.0.0.0/4 }"
check "nft lists an IPv6 interval open to the top" listed $A "elements = { ffff::/16 }"
check "nft lists the queue step: queue num 0, no bypass" line_listed $A $'\t\tqueue num 0'
check "nft lists the over-limit rule" listed $A 'limit name "flood" counter name "in_overlimit" drop'
check "table has no owner flag" not listed $A "flags owner"
check "read-back: in sync" verify_in_sync basic
check "tcp 8080 from peer (allowed, v4)" tcp_ok $B 10.200.0.1 8080
check "tcp 8080 from peer (allowed, v6)" tcp_ok $B "[fd00:200::1]" 8080
check "tcp 8081 from peer dropped: queue without listener, fail-closed (v4)" not tcp_ok $B 10.200.0.1 8081
check "tcp 8081 from peer dropped (v6)" not tcp_ok $B "[fd00:200::1]" 8081
check "udp 5353 in the allowed port range" udp_ok $B 10.200.0.1 5353
check "udp 5400 outside it dropped" not udp_once $B 10.200.0.1 5400
check "ping from peer (icmp allowed)" ping_ok $B 10.200.0.1
check "ping6 from peer (icmpv6 range allowed)" ping_ok $B fd00:200::1
check "egress tcp 9090 (allowed, v4)" tcp_ok $A 10.200.0.2 9090
check "egress tcp 9090 (allowed, v6)" tcp_ok $A "[fd00:200::2]" 9090
check "egress tcp 9091 dropped" not tcp_ok $A 10.200.0.2 9091
check "egress ping (allowed)" ping_ok $A 10.200.0.2
check "counters read: nothing over the limit yet" counters_match '^in_overlimit packets=0 bytes=0$'

# ---- audit: queue with bypass, msegd absent -> unmatched traffic passes ----
"$P" replace $NSA basic --queue "$Q" --mode audit >/dev/null
check "audit: nft lists queue ... bypass" listed $A "queue num 0 bypass"
check "audit: tcp 8081 passes (bypass, fail-open)" tcp_ok $B 10.200.0.1 8081
check "audit: egress tcp 9091 passes" tcp_ok $A 10.200.0.2 9091
check "audit: over-limit accepts" listed $A 'counter name "in_overlimit" accept'

# ---- NFLOG method ----
"$P" replace $NSA basic --queue nflog >/dev/null
check "nflog: nft lists log group 0 drop" listed $A "log group 0 drop"
check "nflog enforce: tcp 8081 dropped" not tcp_ok $B 10.200.0.1 8081
check "nflog enforce: tcp 8080 allowed" tcp_ok $B 10.200.0.1 8080
"$P" replace $NSA basic --queue nflog --mode audit >/dev/null
check "nflog audit: tcp 8081 passes" tcp_ok $B 10.200.0.1 8081

# ---- rate limit: over it, counted and dropped ----
"$P" replace $NSA basic --queue "$Q" --rate 1 --burst 1 >/dev/null
check "nft lists the limit object" listed $A "rate over 1/second burst 1 packets"
for i in $(seq 30); do echo x | in_ns $B socat -u - UDP4:10.200.0.1:5400 2>/dev/null; done
check "unmatched packets over the limit are counted" counters_match '^in_overlimit packets=[1-9]'

# ---- membership change = element updates only, one transaction ----
"$P" replace $NSA basic --queue "$Q" >/dev/null
g0=$(genid $NSA)
out=$("$P" update $NSA basic basic2 --queue "$Q")
rc=$?
echo "# $out"
g1=$(genid $NSA)
check "update: succeeds" test $rc -eq 0
check "update: one batch" test "$(stat_of "$out" batches)" = 1
check "update: only element messages" test "$(stat_of "$out" other_msgs)" = 0
check "update: elements added and deleted" \
	test "$(stat_of "$out" elems_added)" -gt 0 -a "$(stat_of "$out" elems_deleted)" -gt 0
check "update: the ruleset generation moved by exactly one commit" test "$g1" = "$((g0 + 1))"
check "update: read-back in sync with the new plan" verify_in_sync basic2
check "update: tcp 8081 now allowed" tcp_ok $B 10.200.0.1 8081
check "update: udp 5365 in the widened range" udp_ok $B 10.200.0.1 5365
check "update: egress tcp 9091 now allowed" tcp_ok $A 10.200.0.2 9091
check "update: egress v6 tcp 9090 now dropped" not tcp_ok $A "[fd00:200::2]" 9090
check "update: plain interval changed in place" listed $A "10.96.0.0/24, 10.97.0.0-10.97.0.19, 240.0.0.0/4"
out=$("$P" update $NSA basic2 basic2 --queue "$Q")
check "update to the same plan sends nothing" test "$(stat_of "$out" batches)" = 0
check "update with a structural change is refused (replace needed)" \
	not "$P" update $NSA basic2 ingress --queue "$Q"

# ---- only ingress isolated; then nothing isolated: no table ----
"$P" replace $NSA ingress --queue "$Q" >/dev/null
check "ingress only: no egress chain" not listed $A "chain egress"
check "ingress only: no egress sets" not listed $A "set out4_port"
check "ingress only: egress tcp 9091 passes" tcp_ok $A 10.200.0.2 9091
check "ingress only: read-back in sync" verify_in_sync ingress
"$P" replace $NSA none --queue "$Q" >/dev/null
check "nothing isolated: the table is gone" test -z "$(in_ns $A nft list tables)"
check "nothing isolated: tcp 8081 passes" tcp_ok $B 10.200.0.1 8081
check "nothing isolated: read-back in sync" verify_in_sync none
"$P" replace $NSA none --queue "$Q" >/dev/null
check "removing an absent table works" test $? -eq 0

# ---- tampering: read-back reports drift, re-programming repairs ----
"$P" replace $NSA basic2 --queue "$Q" >/dev/null
in_ns $A nft flush table inet mseg
check "flush table: drift reported" not verify_in_sync basic2
check "flush table: the missing rules are named" grep -q "chain ingress: rule 1 is missing" "$tmp/verify"
out=$("$P" apply $NSA basic2 basic2 --queue "$Q")
check "flush table: apply re-programs the whole table" test "$(stat_of "$out" other_msgs)" -gt 0
check "flush table: in sync again" verify_in_sync basic2
check "flush table: allowed traffic again" tcp_ok $B 10.200.0.1 8080
check "flush table: unmatched dropped again" not tcp_ok $B 10.200.0.1 8082
in_ns $A nft delete element inet mseg in4_port '{ 10.200.0.2 . tcp . 8080 }'
in_ns $A nft add element inet mseg out4_any '{ 192.0.2.1 }'
check "element tampering: drift reported" not verify_in_sync basic2
check "element tampering: missing element named" \
	grep -q "set in4_port: missing element 10.200.0.2 . tcp . 8080" "$tmp/verify"
check "element tampering: extra element named" \
	grep -q "set out4_any: unexpected element 192.0.2.1" "$tmp/verify"
"$P" apply $NSA basic2 basic2 --queue "$Q" >/dev/null
check "element tampering: repaired" verify_in_sync basic2

# ---- a batch the kernel refuses changes nothing and names the rule ----
in_ns $A nft list ruleset >"$tmp/before" 2>/dev/null
g0=$(genid $NSA)
"$P" replace $NSA conflict --queue "$Q" >/dev/null 2>"$tmp/err"
rc=$?
in_ns $A nft list ruleset >"$tmp/after" 2>/dev/null
echo "# $(cat "$tmp/err")"
check "overlapping intervals: replace refused" test $rc -ne 0
check "refused: ruleset byte-identical" cmp -s "$tmp/before" "$tmp/after"
check "refused: generation unchanged" test "$(genid $NSA)" = "$g0"
check "refused: error names policy and rule" grep -q "policy shop/db rule 3:" "$tmp/err"
check "refused: error names the element and set" \
	grep -q "add element 10.200.9.0/24 . tcp . 85-95 to set in4_port_iv: File exists" "$tmp/err"
check "refused: still in sync with the old plan" verify_in_sync basic2

# ---- 100k elements: one replace, one transaction ----
out=$("$P" replace $NSA bulk:100000 --queue "$Q" 2>&1)
rc=$?
echo "# $out"
check "100k elements: replace succeeds (no ENOBUFS)" test $rc -eq 0
check "100k elements: one batch" test "$(stat_of "$out" batches)" = 1
check "100k elements: all sent" test "$(stat_of "$out" elems_added)" -ge 100000
check "100k elements: read-back in sync" verify_in_sync bulk:100000
# right after a large load the kernel grows the hash table in the
# background, and a dump racing with that may miss elements: look twice
for i in 1 2 3 4 5; do
	n=$(in_ns $A nft list set inet mseg in4_port | grep -o 'tcp \. 443' | wc -l)
	[ "$n" -eq 100000 ] && break
	sleep 0.2
done
check "100k elements: nft lists them all ($n)" test "$n" -eq 100000
out=$("$P" update $NSA bulk:100000 bulk:100000+1 --queue "$Q")
check "100k elements: one more is one element message" \
	test "$(stat_of "$out" elem_msgs)" = 1 -a "$(stat_of "$out" other_msgs)" = 0
out=$("$P" delete $NSA)
check "delete: table gone" test -z "$(in_ns $A nft list tables)"

exit $failed
