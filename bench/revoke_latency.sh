#!/bin/bash
# Revocation latency through msegd: 100 times, a TCP stream from web to db
# (a line every 10 ms) is admitted by a policy, then the policy is tightened
# with `mseg apply` (PUT); the time from the request and from its
# acknowledgement to the stream's last line at the server is measured.
# Baseline in the same run: the same PUT sequence with msegd --revoke
# new-only, where the stream must keep flowing (to show the streams would
# otherwise not stop). Target: p99 (acknowledged -> stream stops) < 1 s.
#
#   REVOKE_N=100 (iterations)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${REVOKE_N:-100}
P="mr$$"
T=$(mktemp -d /tmp/mseg-bench.XXXXXX)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
[ "$(id -u)" -eq 0 ] || { echo "revoke_latency: needs root, skipped"; exit 0; }
[ -x "$BUILD/msegd" ] && [ -x "$BUILD/mseg" ] || { echo "revoke_latency: build first"; exit 1; }
MSEG="$PWD/$BUILD/mseg"
export MSEG_SERVER="unix:$T/api.sock"
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	for n in web db; do
		ip netns pids "$P-$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$P-$n" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
ip netns add "$P-web"; ip netns add "$P-db"
ip -n "$P-web" link add eth0 type veth peer name eth0 netns "$P-db"
for n in web:1 db:3; do
	ns="$P-${n%%:*}"
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "10.203.0.${n##*:}/24" dev eth0
	ip -n "$ns" link set eth0 up
done

cat >"$T/stream.py" <<'PY'
# server DIR PORT: note each stream's last line time in DIR/ID
# client: reads "open ID ADDR PORT" / "close ID" from stdin; a line every 10 ms
import os, socket, sys, threading, time
if sys.argv[1] == "server":
    d = sys.argv[2]
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[3]))); s.listen(64)
    def conn(c):
        for line in c.makefile("rb"):
            sid = line.strip().decode()
            with open(os.path.join(d, "." + sid), "w") as o:
                o.write("%.6f\n" % time.time())
            os.replace(os.path.join(d, "." + sid), os.path.join(d, sid))
    while True:
        c, _ = s.accept()
        threading.Thread(target=conn, args=(c,), daemon=True).start()
else:
    socks = {}
    def run(sid, c):
        try:
            while sid in socks:
                c.sendall((sid + "\n").encode()); time.sleep(0.01)
        except OSError:
            pass
    for line in sys.stdin:
        w = line.split()
        if w[0] == "open":
            c = socket.create_connection((w[2], int(w[3])), timeout=2); c.settimeout(None)
            socks[w[1]] = c
            threading.Thread(target=run, args=(w[1], c), daemon=True).start()
        elif w[0] == "close" and w[1] in socks:
            socks.pop(w[1]).close()
PY
mkdir -p "$T/last"
ip netns exec "$P-db" "$PY" "$T/stream.py" server "$T/last" 5432 &
PIDS+=($!)

policy() { # full|tight [extra spec line]
	{
		printf 'apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: p, namespace: default}\nspec:\n'
		[ -n "${2:-}" ] && echo "  $2"
		printf '  groups:\n    web: {selector: {app: web}}\n    db: {selector: {app: db}}\n'
		printf '    other: {cidrs: [192.0.2.1/32]}\n  allow:\n'
		printf '    - {from: other, to: db, ports: [tcp/5432]}\n'
		[ "$1" = full ] && printf '    - {from: web, to: db, ports: [tcp/5432]}\n'
	} >"$T/p.yaml"
	"$MSEG" apply -f "$T/p.yaml" >/dev/null
}

# run MODE: N iterations; appends "t_send t_ack t_last" lines to $T/MODE
run() {
	local mode=$1 i t_send t_ack k
	rm -rf "$T/state"
	"$BUILD/msegd" --state-dir "$T/state" --listen "unix:$T/api.sock" --resync 0 \
		--revoke "$mode" >"$T/msegd-$mode.log" 2>&1 &
	local d=$!
	PIDS+=("$d")
	for k in $(seq 1 50); do "$MSEG" status >/dev/null 2>&1 && break; sleep 0.1; done
	"$MSEG" endpoint add web --netns "/run/netns/$P-web" --ip 10.203.0.1 --label app=web >/dev/null
	"$MSEG" endpoint add db --netns "/run/netns/$P-db" --ip 10.203.0.3 --label app=db >/dev/null
	exec 7> >(ip netns exec "$P-web" "$PY" "$T/stream.py" client)
	for i in $(seq 1 "$N"); do
		policy full
		echo "open $mode$i 10.203.0.3 5432" >&7
		for k in $(seq 1 200); do [ -s "$T/last/$mode$i" ] && break; sleep 0.01; done
		sleep 0.05
		t_send=$(date +%s.%N)
		policy tight
		t_ack=$(date +%s.%N)
		sleep 0.3
		echo "$t_send $t_ack $(cat "$T/last/$mode$i")" >>"$T/$mode"
		echo "close $mode$i" >&7
	done
	exec 7>&-
	kill "$d"; wait "$d" 2>/dev/null
}
run established
run new-only
"$PY" - "$T/established" "$T/new-only" "$N" <<'PY'
import sys
def load(p):
    return [tuple(map(float, l.split())) for l in open(p)]
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]
est, new, n = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
ack = [(l - a) * 1000 for s, a, l in est]
req = [(l - s) * 1000 for s, a, l in est]
put = [(a - s) * 1000 for s, a, l in est]
flow = sum(1 for s, a, l in new if l > a + 0.2)
print("revocations: %d (--revoke established), %d baseline (--revoke new-only)" % (len(est), len(new)))
print("  request sent -> last line:     p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms" % (pct(req, .5), pct(req, .99), max(req)))
print("  acknowledged -> last line:     p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  (negative: cut before the answer)" % (pct(ack, .5), pct(ack, .99), max(ack)))
print("  PUT round trip (mseg apply):   p50 %6.1f ms  p99 %6.1f ms" % (pct(put, .5), pct(put, .99)))
print("  baseline: streams still flowing 0.2 s after the answer: %d of %d" % (flow, len(new)))
ok = pct(ack, .99) < 1000 and flow == len(new)
print("  target p99 (acknowledged -> stopped) < 1000 ms: %s (ratio %.3f)" % ("met" if ok else "NOT met", pct(ack, .99) / 1000))
sys.exit(0 if ok else 1)
PY
