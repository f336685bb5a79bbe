#!/bin/bash
# Refresh the captured seed inputs: netlink messages of the running kernel,
# taken in a network namespace made here (and removed on exit).
#   tests/fuzz/corpus_readback/: the read-back's dump replies of each
#     endpoint of tests/fuzz/fuzz_plan.h, programmed by ep_table_replace();
#   tests/fuzz/corpus_queue/: NFQUEUE packet messages of loopback traffic
#     (ICMP, ICMPv6, TCP, UDP, UDP over IPv6; input, and output for UDP)
#     inside the namespace.
# Needs root, iptables, ping and nc; BUILD=build (default) holds tests/nlcapture.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CAP=$BUILD/tests/nlcapture
[ -x "$CAP" ] || { echo "build $CAP first (make tests)"; exit 1; }
NS="mseg-fuzzcap-$$"
trap 'ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del "$NS" 2>/dev/null' EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up

mkdir -p tests/fuzz/corpus_readback tests/fuzz/corpus_queue
for ep in 0 1 2 3; do
	ip netns exec "$NS" "$CAP" readback "$ep" "tests/fuzz/corpus_readback/kernel-ep$ep"
done

# xt NFQUEUE (what msegd uses where nft's own queue expression is missing)
ip netns exec "$NS" iptables -A INPUT -j NFQUEUE --queue-num 7
ip netns exec "$NS" ip6tables -A INPUT -j NFQUEUE --queue-num 7
# egress too, where packets of local sockets carry uid and gid
ip netns exec "$NS" iptables -A OUTPUT -p udp -j NFQUEUE --queue-num 7
ip netns exec "$NS" "$CAP" queue 7 10 tests/fuzz/corpus_queue/kernel &
cap=$!
sleep 0.5
ip netns exec "$NS" ping -c1 -W1 127.0.0.1 >/dev/null || true
ip netns exec "$NS" ping -c1 -W1 -s 300 ::1 >/dev/null || true
ip netns exec "$NS" nc -z -w1 127.0.0.1 5432 || true
echo hello | ip netns exec "$NS" nc -u -w1 127.0.0.1 53 || true
echo hello | ip netns exec "$NS" nc -u -w1 ::1 514 || true
ip netns exec "$NS" nc -z -w1 ::1 443 || true
wait "$cap" || echo "(fewer packets than asked for: kept what came)"
ls -l tests/fuzz/corpus_readback tests/fuzz/corpus_queue
