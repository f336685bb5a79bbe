#!/bin/bash
# Endpoints come and go (pods on a busy node): 50 endpoints, each in a fresh
# network namespace, registered through PUT /v1/endpoints and removed
# through DELETE, then their namespaces deleted, for 5 cycles. While
# registered, each namespace has msegd's table and msegd holds at most 3
# fds per endpoint; after each cycle msegd's fd count is back where it
# started and its RSS stays within 1 MiB of the first cycle's level (no
# leak per endpoint; docs/operations.md, memory).
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds curl

N=50
CYCLES=5
SOCK="$T_TMP/api.sock"
api() { curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "$@"; }
fds() { ls "/proc/$T_MSEGD_PID/fd" | wc -l; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$T_MSEGD_PID/status"; }
# ASan keeps freed memory in quarantine: RSS says nothing there
asan=false
ldd "$MSEGD" 2>/dev/null | grep -q libasan && asan=true

cat >"$T_TMP/policy.yaml" <<'EOF2'
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: churn, namespace: churn}
spec:
  groups:
    g0: {selector: {app: g0}}
    g1: {selector: {app: g1}}
    g2: {selector: {app: g2}}
    g3: {selector: {app: g3}}
    g4: {selector: {app: g4}}
  allow:
    - {from: g0, to: g1, ports: [tcp/8080]}
    - {from: g1, to: g2, ports: [tcp/9000]}
    - {from: g2, to: g3, ports: [tcp/5432]}
    - {from: g3, to: g4, ports: [udp/53]}
    - {from: g4, to: g0, ports: [tcp/443]}
EOF2

t_msegd_start --resync 0 --log-level warn
for _ in $(seq 1 100); do curl -s --unix-socket "$SOCK" http://l/healthz >/dev/null && break; sleep 0.05; done
t_check "policy stored" [ "$(api -X PUT http://l/v1/policies/churn/churn --data-binary @"$T_TMP/policy.yaml")" = 201 ]
fd0=$(fds)
rss1=
for c in $(seq 1 "$CYCLES"); do
	ok=true
	for i in $(seq 1 "$N"); do
		ns="${T_PREFIX}-c$i"
		ip netns add "$ns" || ok=false
		T_NS+=("$ns")
		code=$(api -X PUT "http://l/v1/endpoints/ep$i" -d "{\"namespace\": \"churn\", \"labels\": {\"app\": \"g$((i % 5))\"}, \"netns\": \"/run/netns/$ns\", \"ips\": [\"10.201.$c.$i\"]}")
		[ "$code" = 201 ] || { ok=false; echo "  PUT ep$i: $code"; }
	done
	t_check "cycle $c: $N endpoints registered" $ok
	missing=0
	for i in $(seq 1 "$N"); do
		ip netns exec "${T_PREFIX}-c$i" nft list table inet mseg >/dev/null 2>&1 || missing=$((missing + 1))
	done
	t_check "cycle $c: every namespace has msegd's table ($missing missing)" [ "$missing" = 0 ]
	fd1=$(fds)
	t_check "cycle $c: at most 3 fds per endpoint ($((fd1 - fd0)) for $N)" [ $((fd1 - fd0)) -le $((3 * N)) ]
	ok=true
	for i in $(seq 1 "$N"); do
		code=$(api -X DELETE "http://l/v1/endpoints/ep$i")
		[ "$code" = 200 ] || [ "$code" = 204 ] || { ok=false; echo "  DELETE ep$i: $code"; }
		ip netns del "${T_PREFIX}-c$i"
	done
	T_NS=()
	t_check "cycle $c: $N endpoints deleted" $ok
	fd2=$(fds)
	t_check "cycle $c: fd count back to $fd0 (is $fd2)" [ "$fd2" = "$fd0" ]
	rss=$(rss_kib)
	[ -n "$rss1" ] || rss1=$rss
	if $asan; then
		echo "cycle $c: RSS $((rss / 1024)) MiB (not checked under ASan)"
	else
		t_check "cycle $c: RSS ${rss} KiB within 1 MiB of the first cycle's ${rss1} KiB" \
			[ "$rss" -le $((rss1 + 1024)) ]
	fi
done
t_check "msegd still running" kill -0 "$T_MSEGD_PID"
t_done
