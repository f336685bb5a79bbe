#!/bin/bash
# /metrics never reads the kernel on the loop: per-endpoint counters come
# from the background read and show traffic within seconds; a live read of
# every namespace (GET /v1/rules?fresh=1) is served at most once a second.
. "$(dirname "$0")/../lib.sh"
t_require_root
SOCK="$T_TMP/api.sock"

t_api_db_scene || { t_fail "scene"; t_done; exit 1; }
t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" \
	--queue-rate 1 --queue-burst 1
t_check "msegd ready" t_wait_log "msegd ready"
metric() { curl -s --unix-socket "$SOCK" http://x/metrics | awk -v m="$1" '$1 == m {print $2}'; }
code() { curl -s -o "$T_TMP/body" -w '%{http_code}' --unix-socket "$SOCK" "http://x$1"; }

metric mseg_ready >/dev/null   # a scrape: the background read starts
# 40 refused UDP attempts against a limit of 1/s: most are over the limit
ip netns exec "$(t_ns attacker)" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for p in range(40): s.sendto(b"x", ("10.201.0.3", 30000 + p))'
over_seen() {
	local i v
	for i in $(seq 1 80); do
		v=$(metric 'mseg_overlimit_packets_total{endpoint="db",direction="ingress"}')
		[ "${v:-0}" -ge 30 ] && { echo "over-limit counter: $v"; return 0; }
		sleep 0.1
	done
	echo "over-limit counter: ${v:-none}"; return 1
}
t_check "the over-limit packets show in /metrics within seconds" over_seen
t_check "a scrape is quick (no netlink round trip per endpoint)" bash -c \
	"t=\$(curl -s -o /dev/null -w '%{time_total}' --unix-socket '$SOCK' http://x/metrics); echo \"scrape: \$t s\"; awk -v t=\"\$t\" 'BEGIN{exit !(t < 0.5)}'"

t_check "GET /v1/rules?fresh=1: 200" [ "$(code '/v1/rules?fresh=1')" = 200 ]
t_check "again within a second: 429" [ "$(code '/v1/rules?fresh=1')" = 429 ]
t_check "429 says why and what to do" grep -q "less than 1000 ms ago; try again in a second" "$T_TMP/body"
t_check "?table=1 shares the limit: 429" [ "$(code '/v1/rules?table=1')" = 429 ]
t_check "the background list is served meanwhile" [ "$(code '/v1/rules')" = 200 ]
sleep 1.1
t_check "after a second: fresh again 200" [ "$(code '/v1/rules?fresh=1')" = 200 ]

# process_heap_bytes of the plain build, which allocates through jemalloc
# (the sanitized one above runs on ASan's allocator): jemalloc's own count,
# not glibc's idle arena (which says 0 there)
PLAIN="$MSEG_ROOT/${VALGRIND_BUILD:-build}/msegd"
if [ -x "$PLAIN" ] && ldd "$PLAIN" | grep -q jemalloc; then
	PSOCK="$T_TMP/plain.sock"
	"$PLAIN" --state-dir "$T_TMP/plain-state" --listen "unix:$PSOCK" --resync 0 \
		>"$T_TMP/plain.log" 2>&1 &
	T_PIDS+=("$!")
	for _ in $(seq 1 50); do [ -S "$PSOCK" ] && break; sleep 0.1; done
	heap=$(curl -s --unix-socket "$PSOCK" http://x/metrics |
		awk '$1 == "process_heap_bytes" {print $2}')
	t_check "jemalloc build: process_heap_bytes counts its heap ($heap bytes, > 512 KiB)" \
		[ "${heap:-0}" -gt 524288 ]
else
	echo "note: no plain build linked with jemalloc at $PLAIN; its heap gauge not checked"
fi
t_done
