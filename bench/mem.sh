#!/bin/bash
# msegd memory per endpoint, measured as a user would on a dense host:
# msegd with one AllowList of 10 label groups (allows between them) and N
# endpoints registered through PUT /v1/endpoints, each in its own network
# namespace (no links: programming and the NFQUEUE listener do not need
# any). After the last endpoint is programmed and msegd settles, prints its
# VmRSS, VmHWM, heap in use (process_heap_bytes from /metrics, mallinfo2)
# and file descriptors, minus the same figures with 0 endpoints, per
# endpoint, against the targets (docs/benchmarks.md, "msegd memory per
# endpoint"): RSS <= 16 MiB + 8 KiB per endpoint, <= 3 fds per endpoint.
#
#   MEM_BENCH_ENDPOINTS=N   endpoints (default 1000)
#   MSEGD_BASELINE=path     another msegd build measured the same way in the
#                           same run, for ratios against it (e.g. the build
#                           of an older commit)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${MEM_BENCH_ENDPOINTS:-1000}
P="mb$$"
MSEGD="$PWD/$BUILD/msegd"
[ "$(id -u)" -eq 0 ] || { echo "mem: needs root, skipped"; exit 0; }
command -v curl >/dev/null || { echo "mem: curl missing, skipped"; exit 0; }
[ -x "$MSEGD" ] || { echo "mem: $MSEGD missing (make)"; exit 1; }
TMP=$(mktemp -d /tmp/mseg-bench-mem.XXXXXX)
MPID=
cleanup() {
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	wait 2>/dev/null
	for i in $(seq 1 "$N"); do ip netns del "$P-$i" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
for i in $(seq 1 "$N"); do ip netns add "$P-$i" || exit 1; done

cat >"$TMP/policy.yaml" <<'YAML'
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: bench, namespace: bench}
spec:
  groups:
    g0: {selector: {app: g0}}
    g1: {selector: {app: g1}}
    g2: {selector: {app: g2}}
    g3: {selector: {app: g3}}
    g4: {selector: {app: g4}}
    g5: {selector: {app: g5}}
    g6: {selector: {app: g6}}
    g7: {selector: {app: g7}}
    g8: {selector: {app: g8}}
    g9: {selector: {app: g9}}
    office: {cidrs: [192.0.2.0/24]}
  allow:
    - {from: world, to: g0, ports: [tcp/443]}
    - {from: g0, to: g1, ports: [tcp/8080]}
    - {from: g1, to: g2, ports: [tcp/9000]}
    - {from: g1, to: g3, ports: [tcp/9001]}
    - {from: g2, to: g4, ports: [tcp/5432]}
    - {from: g3, to: g4, ports: [tcp/5432]}
    - {from: g3, to: g5, ports: [tcp/6379]}
    - {from: g5, to: g6, ports: [udp/53, tcp/53]}
    - {from: g6, to: g7, ports: [tcp/8000-8010]}
    - {from: g7, to: g8, ports: [tcp/9092]}
    - {from: g8, to: g9, ports: [tcp/2379]}
    - {from: g9, to: g0, ports: [tcp/80]}
    - {from: office, to: g4, ports: [tcp/5432]}
YAML

api() { curl -s -o /dev/null -w '%{http_code}' --unix-socket "$TMP/api.sock" "$@"; }
# status -> "rss_kib hwm_kib fds"
proc_figures() {
	awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { printf "%s %s ", r, h }' "/proc/$MPID/status"
	ls "/proc/$MPID/fd" | wc -l
}
heap_bytes() {
	curl -s --unix-socket "$TMP/api.sock" http://l/metrics |
		awk '$1 == "process_heap_bytes" { print $2; f = 1 } END { if (!f) print "-" }'
}
settle() { # wait for RSS to stop moving (1 s apart)
	local a b
	a=$(awk '/^VmRSS:/ { print $2 }' "/proc/$MPID/status")
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		sleep 1
		b=$(awk '/^VmRSS:/ { print $2 }' "/proc/$MPID/status")
		[ "$a" = "$b" ] && return
		a=$b
	done
}

# measure LABEL MSEGD -> one result line
measure() {
	local label=$1 bin=$2 c i t0 t1 r0 h0 f0 hp0 r1 h1 f1 hp1 prog
	rm -rf "$TMP/state" "$TMP/api.sock"
	"$bin" --state-dir "$TMP/state" --listen "unix:$TMP/api.sock" --resync 0 \
		--log-level warn >"$TMP/msegd.log" 2>&1 &
	MPID=$!
	for _ in $(seq 1 100); do curl -s --unix-socket "$TMP/api.sock" http://l/healthz >/dev/null && break; sleep 0.05; done
	c=$(api -X PUT http://l/v1/policies/bench/bench --data-binary @"$TMP/policy.yaml")
	[ "$c" = 201 ] || { echo "mem: $label: PUT policy: $c"; return 1; }
	settle
	read -r r0 h0 f0 < <(proc_figures)
	hp0=$(heap_bytes)
	t0=$(date +%s.%N)
	for i in $(seq 1 "$N"); do
		c=$(api -X PUT "http://l/v1/endpoints/ep$i" -d "{\"namespace\": \"bench\", \"labels\": {\"app\": \"g$((i % 10))\"}, \"netns\": \"/run/netns/$P-$i\", \"ips\": [\"10.$((i / 62500)).$((i / 250 % 250)).$((i % 250 + 1))\", \"fd00::$(printf %x "$i")\"]}")
		[ "$c" = 201 ] || { echo "mem: $label: PUT endpoint ep$i: $c"; return 1; }
	done
	t1=$(date +%s.%N)
	settle
	read -r r1 h1 f1 < <(proc_figures)
	hp1=$(heap_bytes)
	prog=0
	for i in 1 $((N / 2)) "$N"; do
		ip netns exec "$P-$i" nft list table inet mseg >/dev/null 2>&1 && prog=$((prog + 1))
	done
	# a /metrics scrape at this size: it reads no namespace on the loop
	# (the per-endpoint counters come from the background read)
	for _ in 1 2 3 4 5 6 7; do
		curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$TMP/api.sock" http://l/metrics
		sleep 0.2
	done | sort -n | awk -v l="$label" -v n="$N" \
		'{ t[NR] = $1 } END { printf "%s: GET /metrics at %d endpoints: median %.2f ms, max %.2f ms (7 scrapes, curl time_total)\n", l, n, t[4] * 1000, t[NR] * 1000 }' \
		>"$TMP/scrape.$label"
	kill "$MPID"; wait "$MPID" 2>/dev/null; MPID=
	awk -v l="$label" -v n="$N" -v r0="$r0" -v r1="$r1" -v h1="$h1" -v f0="$f0" -v f1="$f1" \
	    -v hp0="$hp0" -v hp1="$hp1" -v t="$(echo "$t1 - $t0" | bc)" -v prog="$prog" 'BEGIN {
		heap = hp1 == "-" ? "-" : sprintf("%.1f MiB", hp1 / 1048576)
		heap_ep = hp1 == "-" ? "-" : sprintf("%.1f KiB", (hp1 - hp0) / 1024 / n)
		printf "%-10s %10.1f %10.1f %10.1f %10s %10s %12.1f %8.2f %8s %6d/3\n", l, r0 / 1024,
		       r1 / 1024, h1 / 1024, heap, heap_ep, (r1 - r0) / n, (f1 - f0) / n, t, prog
		printf "%s %s %s %s\n", r1, (r1 - r0) / n, (f1 - f0) / n, (hp1 == "-" ? "-" : (hp1 - hp0) / n) >"/dev/stderr"
	}' 2>"$TMP/res.$label"
}

echo "msegd, one AllowList (10 label groups), $N endpoints each in its own namespace (registered by PUT /v1/endpoints)"
printf '%-10s %10s %10s %10s %10s %10s %12s %8s %8s %8s\n' build "RSS@0 MiB" "RSS MiB" "HWM MiB" heap heap/ep "RSS/ep KiB" fds/ep "PUTs s" tables
measure current "$MSEGD" || exit 1
if [ -n "${MSEGD_BASELINE:-}" ]; then
	measure baseline "$MSEGD_BASELINE" || exit 1
fi
read -r rss rss_ep fds_ep heap_ep <"$TMP/res.current"
target_rss=$((16 * 1024 + 8 * N))
printf "targets: RSS <= 16 MiB + 8 KiB/endpoint (%.1f MiB at %d), fds <= 3/endpoint\n" "$(echo "$target_rss / 1024" | bc -l)" "$N"
printf 'ratio to target: RSS %.3f, fds/endpoint %.3f\n' "$(echo "$rss / $target_rss" | bc -l)" "$(echo "$fds_ep / 3" | bc -l)"
if [ -f "$TMP/res.baseline" ]; then
	read -r b_rss b_rss_ep b_fds_ep _ <"$TMP/res.baseline"
	printf 'current / baseline: RSS %.3f, RSS per endpoint %.3f, fds per endpoint %.3f\n' \
		"$(echo "$rss / $b_rss" | bc -l)" "$(echo "$rss_ep / $b_rss_ep" | bc -l)" "$(echo "$fds_ep / $b_fds_ep" | bc -l)"
fi
cat "$TMP"/scrape.* 2>/dev/null
echo "kernel memory per namespace (docs/benchmarks.md): bare namespace ~90 KiB, msegd's table + listener (exact peers) 52 KiB"
