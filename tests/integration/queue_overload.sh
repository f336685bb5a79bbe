#!/bin/bash
# Failure semantics of the NFQUEUE listener when it cannot keep up (it is
# stopped with SIGSTOP while 100-200 UDP datagrams are queued):
#   - queue full, fail-closed (enforce): packets beyond the queue length
#     are dropped by the kernel and counted (queue_dropped);
#   - queue full, --fail-open (audit): they pass, nothing is counted as
#     dropped;
#   - socket overrun (tiny receive buffer): the kernel drops what the socket
#     cannot take (user_dropped), the listener sees ENOBUFS, counts it and
#     goes on; every packet is accounted for and none stays queued.
. "$(dirname "$0")/../lib.sh"
t_require_root

NFQ="$MSEG_ROOT/$BUILD/tests/nfqtool"
t_require_built "$NFQ"
t_require_cmds iptables-nft python3 jq

t_endpoint a 1 || { t_fail "setup"; exit 1; }
NS=$(t_ns a)
ip netns exec "$NS" iptables-nft -A OUTPUT -o lo -p udp --dport 9999 -j NFQUEUE --queue-num 0

cat >"$T_TMP/udp.py" <<'EOF'
import socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
if mode == 'recv':        # count datagrams until idle for IDLE seconds
    idle, out = float(sys.argv[3]), sys.argv[4]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(('127.0.0.1', port))
    open(out + '.ready', 'w').close()
    s.settimeout(idle)
    n = 0
    try:
        while True:
            s.recv(2048)
            n += 1
    except socket.timeout:
        pass
    open(out, 'w').write('%d\n' % n)
else:                     # send N datagrams, ignoring errors (dropped ones)
    n = int(sys.argv[3])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        try:
            s.sendto(b'x' * 32, ('127.0.0.1', port))
        except OSError:
            pass
EOF

# run NAME SEND_COUNT NFQTOOL-ARGS...: listener stopped while SEND_COUNT
# datagrams go out, then continued; receiver count in $T_TMP/NAME.count
run() {
	local name=$1 count=$2 i pid
	shift 2
	rm -f "$T_TMP/$name.ready" "$T_TMP/$name.count" "$T_TMP/$name.count.ready"
	t_bg "$NS" python3 "$T_TMP/udp.py" recv 9999 2 "$T_TMP/$name.count"
	"$NFQ" --netns "/run/netns/$NS" --queue 0 --timeout 30 --ready "$T_TMP/$name.ready" \
		--endpoint a-1 "$@" >"$T_TMP/$name.jsonl" 2>"$T_TMP/$name.err" &
	pid=$!
	T_PIDS+=("$pid")
	for i in $(seq 1 50); do
		[ -e "$T_TMP/$name.ready" ] && [ -e "$T_TMP/$name.count.ready" ] && break
		sleep 0.1
	done
	kill -STOP "$pid"
	ip netns exec "$NS" python3 "$T_TMP/udp.py" send 9999 "$count"
	sleep 0.3
	kill -CONT "$pid"
	# the receiver stops 2 s after the last datagram
	for i in $(seq 1 60); do
		[ -e "$T_TMP/$name.count" ] && break
		sleep 0.1
	done
	kill -TERM "$pid"
	wait "$pid"
}
stat() { tail -n1 "$T_TMP/$1.err" | jq -r "$2" 2>/dev/null; }
received() { cat "$T_TMP/$1.count" 2>/dev/null; }

# 1. enforce-like: accept what reaches us, but the queue holds 16
t_check "listener survives a full queue" run full 100 --mode accept --queue-len 16
t_check "queue full: 16 queued packets delivered after the pause" [ "$(received full)" = 16 ]
t_check "queue full: 84 dropped and counted by the kernel" \
	[ "$(stat full .kernel.queue_dropped)" = 84 ]
t_check "queue full: every queued packet got a verdict" \
	[ "$(stat full '.stats.packets == 16 and .stats.accepted == 16 and .kernel.queue_total == 0')" = true ]
t_check "queue full: one aggregated record of 16" \
	[ "$(jq -s 'length == 1 and .[0].count == 16 and .[0].verdict == "audited"' "$T_TMP/full.jsonl")" = true ]

# 2. audit: fail-open lets the overflow pass; what was queued is dropped
t_check "listener survives a full queue (fail-open)" \
	run open 100 --mode drop --queue-len 16 --fail-open
t_check "fail-open: 84 passed while the listener was stopped" [ "$(received open)" = 84 ]
t_check "fail-open: not counted as dropped by the kernel" \
	[ "$(stat open '.kernel.queue_dropped == 0 and .stats.dropped == 16 and .kernel.queue_total == 0')" = true ]

# 3. socket overrun: tiny receive buffer
t_check "listener survives a socket overrun" run overrun 200 --mode accept --rcvbuf 4096
t_check "overrun: ENOBUFS seen and counted" [ "$(stat overrun '.stats.enobufs >= 1')" = true ]
t_check "overrun: the kernel counted what the socket could not take" \
	[ "$(stat overrun '.kernel.user_dropped > 0')" = true ]
t_check "overrun: every packet accounted for (verdict or user_dropped)" \
	[ "$(stat overrun '.stats.packets + .kernel.user_dropped')" = 200 ]
t_check "overrun: nothing left in the queue" [ "$(stat overrun .kernel.queue_total)" = 0 ]
t_check "overrun: receiver got exactly the accepted packets" \
	[ "$(received overrun)" = "$(stat overrun .stats.accepted)" ]

if [ "$T_FAILS" -ne 0 ]; then
	for f in full open overrun; do
		echo "--- $f (received $(received $f))"
		cat "$T_TMP/$f.jsonl" "$T_TMP/$f.err" 2>/dev/null
	done
fi
[ "$T_FAILS" -eq 0 ]
