#!/bin/bash
# Flow follow streams: a backlog far larger than the follower's buffer
# arrives whole (every record once) while being sent in pieces; at most
# 32 followers are open at once (the 33rd gets 503, and a place frees when
# one hangs up); HEAD on a follow URL answers the headers and opens no
# stream.
. "$(dirname "$0")/../lib.sh"
t_require_root
SOCK="$T_TMP/api.sock"

t_endpoints db:3 attacker:4 || { t_fail "setup"; t_done; exit 1; }
t_pair_policy api db 5432
cat >"$T_TMP/endpoints.yaml" <<EOF2
endpoints:
  - {id: db, labels: {app: db}, netns: $(t_netns_path db), ips: [10.201.0.3]}
EOF2
t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" \
	--queue-rate 100000 --queue-burst 100000
t_check "msegd ready" t_wait_log "msegd ready"
metric() { curl -s --unix-socket "$SOCK" http://x/metrics | awk -v m="$1" '$1 == m {print $2}'; }
nflows() { curl -s --unix-socket "$SOCK" "http://x/v1/flows" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["flows"]))'; }

# 3000 refused UDP attempts to distinct ports: 3000 records, ~1 MB of JSON.
# Paced, and sent again while some are missing (a slow sanitized msegd may
# lose packets to a full kernel queue; a repeat only adds to a record)
send_all() {
	ip netns exec "$(t_ns attacker)" python3 - <<'PY'
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port in range(20000, 23000):
    s.sendto(b"x", ("10.201.0.3", port))
    if port % 100 == 0:
        time.sleep(0.01)
PY
}
for round in 1 2 3 4 5; do
	send_all
	for i in $(seq 1 30); do [ "$(nflows)" -ge 3000 ] && break; sleep 0.2; done
	[ "$(nflows)" -ge 3000 ] && break
done
total=$(nflows)
t_check "3000 refused attempts recorded ($total)" [ "$total" -eq 3000 ]

# the whole backlog through one follow stream
curl -sN --max-time 4 --unix-socket "$SOCK" "http://x/v1/flows?follow=1&since=1" >"$T_TMP/follow.out"
got=$(wc -l <"$T_TMP/follow.out")
bytes=$(wc -c <"$T_TMP/follow.out")
uniq=$(python3 -c 'import json,sys; print(len({json.loads(l)["id"] for l in open(sys.argv[1])}))' "$T_TMP/follow.out")
t_check "the follow stream sent all $total records ($got lines, $bytes bytes > 64 KiB buffer)" \
	[ "$got" -eq "$total" ] && [ "$bytes" -gt 65536 ]
t_check "each record once ($uniq distinct ids)" [ "$uniq" -eq "$total" ]
t_check "a new attempt after the backlog arrives on a live stream" bash -c '
	curl -sN --max-time 6 --unix-socket "$1" "http://x/v1/flows?follow=1" >"$2" &
	sleep 1
	ip netns exec "$3" python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3):
    s.sendto(b\"x\", (\"10.201.0.3\", 29999)); time.sleep(1)"
	wait
	grep -q "\"dport\":29999" "$2" || { echo "live stream got:"; head -c 300 "$2"; false; }' _ "$SOCK" "$T_TMP/live.out" "$(t_ns attacker)"

# HEAD: headers, no stream (first let the streams above be reaped)
for i in $(seq 1 50); do [ "$(metric mseg_api_flow_followers)" = 0 ] && break; sleep 0.1; done
hdr=$(curl -sI --max-time 3 --unix-socket "$SOCK" "http://x/v1/flows?follow=1")
t_check "HEAD on a follow URL answers at once" grep -q "^HTTP/1.1 200" <<<"$hdr"
t_check "HEAD carries the stream's content type" grep -qi "^content-type: application/x-ndjson" <<<"$hdr"
t_check "HEAD opened no follower" [ "$(metric mseg_api_flow_followers)" = 0 ]

# 32 followers, then the 33rd is refused
pids=()
for i in $(seq 1 32); do
	curl -sN --max-time 30 --unix-socket "$SOCK" "http://x/v1/flows?follow=1" >/dev/null &
	pids+=($!); T_PIDS+=($!)
done
for i in $(seq 1 50); do [ "$(metric mseg_api_flow_followers)" = 32 ] && break; sleep 0.1; done
t_check "32 followers open" [ "$(metric mseg_api_flow_followers)" = 32 ]
code=$(curl -s -o "$T_TMP/body" -w '%{http_code}' --max-time 3 --unix-socket "$SOCK" "http://x/v1/flows?follow=1")
t_check "the 33rd follower gets 503" [ "$code" = 503 ]
t_check "503 says why" grep -q "too many flow followers (32)" "$T_TMP/body"
t_check "plain flow queries still work meanwhile" [ "$(nflows)" -ge 3000 ]
kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null
for i in $(seq 1 50); do [ "$(metric mseg_api_flow_followers)" = 0 ] && break; sleep 0.1; done
t_check "hung-up followers are gone" [ "$(metric mseg_api_flow_followers)" = 0 ]
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --unix-socket "$SOCK" "http://x/v1/flows?follow=1")
t_check "a follower is accepted again (stream runs until the client stops)" [ "$code" = 200 ]
t_done
