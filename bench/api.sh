#!/bin/bash
# REST API benchmarks, all in the same run:
#  1. GET /v1/rules (100 endpoints, each read back from its namespace's
#     kernel table) and GET /v1/status under wrk with keep-alive, against
#     nginx serving the same JSON from a file. wrk cannot use a unix socket,
#     so msegd's TCP listener is used (bearer token sent by a Lua script);
#     both servers run in one private namespace, one worker each (msegd is
#     one event loop). Targets: >= 0.8 of nginx's requests/s, p99 < 2 ms.
#  2. Policy propagation: PUT of a policy that changes the entries of all
#     100 endpoints; the API answers after every namespace's table holds
#     the new rule, so the PUT's latency is the propagation time (checked
#     against the kernel at the end). Target: p99 < 50 ms.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${API_BENCH_ENDPOINTS:-100}
SECS=${API_BENCH_SECS:-5}
CONNS=${API_BENCH_CONNS:-8}
PUTS=${API_BENCH_PUTS:-50}
P="ab$$"
MSEGD="$PWD/$BUILD/msegd"
[ "$(id -u)" -eq 0 ] || { echo "api: needs root, skipped"; exit 0; }
for t in wrk nginx curl python3; do
	command -v $t >/dev/null || { echo "api: $t missing (scripts/install-deps.sh), skipped"; exit 0; }
done
[ -x "$MSEGD" ] || { echo "api: $MSEGD missing (make)"; exit 1; }
TMP=$(mktemp -d /tmp/mseg-bench-api.XXXXXX)
HUB="$P-hub"
cleanup() {
	[ -n "${MPID:-}" ] && kill "$MPID" 2>/dev/null
	[ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null
	wait 2>/dev/null
	for i in $(seq 1 "$N"); do ip netns del "$P-$i" 2>/dev/null; done
	ip netns del "$HUB" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$HUB"
ip -n "$HUB" link set lo up
for i in $(seq 1 "$N"); do ip netns add "$P-$i"; done

TOKEN=$(head -c 48 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
echo "$TOKEN" >"$TMP/token"; chmod 600 "$TMP/token"
ip netns exec "$HUB" "$MSEGD" --state-dir "$TMP/state" --listen "unix:$TMP/api.sock" \
	--listen-tcp 127.0.0.1:8080 --token-file "$TMP/token" --resync 0 --log-level warn \
	>"$TMP/msegd.log" 2>&1 &
MPID=$!
for i in $(seq 1 100); do curl -s --unix-socket "$TMP/api.sock" http://l/healthz >/dev/null && break; sleep 0.05; done
api() { curl -s -o /dev/null -w '%{http_code}' --unix-socket "$TMP/api.sock" "$@"; }
for i in $(seq 1 "$N"); do
	c=$(api -X PUT "http://l/v1/endpoints/ep$i" -d "{\"namespace\": \"bench\", \"labels\": {\"app\": \"a$((i % 2))\"}, \"netns\": \"/run/netns/$P-$i\", \"ips\": [\"10.203.$((i / 250)).$((i % 250 + 1))\"]}")
	[ "$c" = 201 ] || { echo "api: PUT endpoint ep$i: $c"; exit 1; }
done
policy() { # PORT
	printf 'apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: bench, namespace: bench}\nspec:\n  groups:\n    a0: {selector: {app: a0}}\n    a1: {selector: {app: a1}}\n  allow:\n    - {from: a0, to: a1, ports: [tcp/%s]}\n    - {from: a1, to: a0, ports: [tcp/%s]}\n' "$1" "$1"
}
policy 5432 >"$TMP/p.yaml"
c=$(api -X PUT http://l/v1/policies/bench/bench --data-binary @"$TMP/p.yaml")
[ "$c" = 201 ] || { echo "api: PUT policy: $c"; exit 1; }

# the same documents for nginx
curl -s --unix-socket "$TMP/api.sock" http://l/v1/rules >"$TMP/rules.json"
curl -s --unix-socket "$TMP/api.sock" http://l/v1/status >"$TMP/status.json"
python3 -c "import json,sys; d=json.load(open('$TMP/rules.json')); assert len(d['endpoints']) == $N and d['not_in_sync'] == 0, d.get('not_in_sync')" ||
	{ echo "api: /v1/rules is not all in sync"; exit 1; }
mkdir -p "$TMP/www/v1"
cp "$TMP/rules.json" "$TMP/www/v1/rules"
cp "$TMP/status.json" "$TMP/www/v1/status"
cat >"$TMP/nginx.conf" <<EOF
daemon on;
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx.err;
events { worker_connections 256; }
http {
	access_log off;
	keepalive_requests 1000000;
	default_type application/json;
	server {
		listen 127.0.0.1:8081;
		root $TMP/www;
	}
}
EOF
ip netns exec "$HUB" nginx -c "$TMP/nginx.conf" -e "$TMP/nginx.err" || { echo "api: nginx did not start"; exit 1; }
cat >"$TMP/auth.lua" <<EOF
wrk.headers["Authorization"] = "Bearer $TOKEN"
EOF

# wrk ... -> "rps p99_ms non2xx"
bench() { # URL
	ip netns exec "$HUB" wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$TMP/auth.lua" "$1" 2>&1 |
		awk '/Requests\/sec/ { rps = $2 }
		     /^ +99%/ { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 }
				else if (v ~ /ms$/) { sub(/ms/, "", v) }
				else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }
				p99 = v }
		     /Non-2xx/ { bad = $NF }
		     END { printf "%s %s %s\n", rps, p99, bad ? bad : 0 }'
}
printf '%-30s %12s %10s %12s %10s %8s\n' "GET (keep-alive, $CONNS conns)" "msegd rps" "p99 ms" "nginx rps" "p99 ms" "ratio"
for path in /v1/status /v1/rules; do
	read -r m_rps m_p99 m_bad < <(bench "http://127.0.0.1:8080$path")
	read -r n_rps n_p99 n_bad < <(bench "http://127.0.0.1:8081$path")
	[ "$m_bad" = 0 ] || echo "  msegd: $m_bad non-2xx answers"
	label="$path"
	[ "$path" = /v1/rules ] && label="$path ($N endpoints)"
	printf '%-30s %12s %10s %12s %10s %8s\n' "$label" "$m_rps" "$m_p99" "$n_rps" "$n_p99" \
		"$(echo "scale=3; $m_rps / $n_rps" | bc)"
done
echo "targets: msegd >= 0.8 of nginx rps, msegd p99 < 2 ms"

# ---- propagation
: >"$TMP/lat"
for k in $(seq 1 "$PUTS"); do
	policy $((20000 + k)) >"$TMP/p.yaml"
	curl -s -o "$TMP/put.out" -w '%{time_total}\n' --unix-socket "$TMP/api.sock" -X PUT \
		--data-binary @"$TMP/p.yaml" http://l/v1/policies/bench/bench >>"$TMP/lat"
done
grep -q '"programmed":true' "$TMP/put.out" || echo "  last PUT: $(cat "$TMP/put.out")"
miss=0
for i in $(seq 1 "$N"); do
	ip netns exec "$P-$i" nft list table inet mseg 2>/dev/null | grep -q "tcp . $((20000 + PUTS))" || miss=$((miss + 1))
done
sort -n "$TMP/lat" | awk -v n="$PUTS" -v N="$N" -v miss="$miss" '
	{ v[NR] = $1 * 1000 }
	END { p50 = v[int((n + 1) / 2)]; i99 = int(n * 0.99 + 0.999); if (i99 < 1) i99 = 1
	      printf "policy propagation, PUT -> %d namespaces: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d PUTs); kernel tables missing the rule: %d\n",
		     N, p50, v[i99], v[n], n, miss }'
echo "target: p99 < 50 ms"
