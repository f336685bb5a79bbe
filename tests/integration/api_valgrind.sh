#!/bin/bash
# msegd under valgrind while the API is exercised: every route, errors, a
# follow stream, a dry run, a 413; no invalid read, no uninitialized value,
# no leak at exit. Runs the plain build ($VALGRIND_BUILD, else build/).
. "$(dirname "$0")/../lib.sh"
t_require_root
VBUILD=${VALGRIND_BUILD:-$BUILD}
VMSEGD="$MSEG_ROOT/$VBUILD/msegd"
command -v valgrind >/dev/null || { echo "SKIP: $(basename "$0"): valgrind not installed"; exit 77; }
[ -x "$VMSEGD" ] || { echo "SKIP: $(basename "$0"): no build at $VMSEGD"; exit 77; }
if nm "$VMSEGD" 2>/dev/null | grep -q __asan_init; then
	echo "SKIP: $(basename "$0"): $VMSEGD is built with ASan (set VALGRIND_BUILD)"; exit 77
fi
SOCK="$T_TMP/api.sock"
t_endpoints web:1 db:3 attacker:4 || { t_fail "setup"; exit 1; }
t_tcp_server db 5432
# msegd allocates through jemalloc: valgrind watches its malloc and free
valgrind --soname-synonyms=somalloc='*jemalloc*' -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--log-file="$T_TMP/vg.log" "$VMSEGD" --state-dir "$T_TMP/state" --listen "unix:$SOCK" --resync 0 \
	>>"$T_TMP/msegd.log" 2>&1 &
T_MSEGD_PID=$!
T_PIDS+=("$T_MSEGD_PID")
for i in $(seq 1 300); do curl -s --unix-socket "$SOCK" http://l/healthz >/dev/null 2>&1 && break; sleep 0.1; done
c() { curl -s -o /dev/null -w '%{http_code}' --max-time 20 --unix-socket "$SOCK" "$@"; }
t_check "PUT endpoints" [ "$(c -X PUT http://l/v1/endpoints/db -d "{\"namespace\": \"shop\", \"labels\": {\"app\": \"db\"}, \"netns\": \"$(t_netns_path db)\", \"ips\": [\"10.201.0.3\"]}")$(c -X PUT http://l/v1/endpoints/web -d "{\"namespace\": \"shop\", \"labels\": {\"app\": \"web\"}, \"netns\": \"$(t_netns_path web)\", \"ips\": [\"10.201.0.1\"]}")" = 201201 ]
pol='{"apiVersion": "mseg.io/v1", "kind": "AllowList", "metadata": {"name": "shop", "namespace": "shop"}, "spec": {"groups": {"web": {"selector": {"app": "web"}}, "db": {"selector": {"app": "db"}}}, "allow": [{"from": "web", "to": "db", "ports": ["tcp/5432"]}]}}'
t_check "PUT policy dry run" [ "$(c -X PUT "http://l/v1/policies/shop/shop?dry_run=1" -d "$pol")" = 200 ]
t_check "PUT policy" [ "$(c -X PUT http://l/v1/policies/shop/shop -d "$pol")" = 201 ]
curl -s -N --max-time 6 --unix-socket "$SOCK" "http://l/v1/flows?follow=1" >"$T_TMP/follow" &
fpid=$!
sleep 1
t_check_not "attacker -> db refused" t_tcp attacker 10.201.0.3 5432
for p in /v1/status /v1/policies /v1/policies/shop/shop /v1/endpoints /v1/endpoints/db /v1/rules \
	/v1/rules/db /metrics /readyz /v1/flows "/v1/flows?endpoint=db&direction=ingress&limit=2"; do
	t_check "GET $p" [ "$(c "http://l$p")" = 200 ]
done
t_check "POST /v1/check" [ "$(c -X POST http://l/v1/check -d '{"from": "web", "to": "db", "port": "tcp/5432"}')" = 200 ]
t_check "bad YAML" [ "$(c -X PUT http://l/v1/policies/shop/x --data-binary $'kind: [\n')" = 400 ]
t_check "bad JSON check" [ "$(c -X POST http://l/v1/check -d '{')" = 400 ]
t_check "bad path" [ "$(c http://l/v1/endpoints/a%00b)" = 400 ]
head -c 1100000 /dev/zero | tr '\0' a >"$T_TMP/big"
t_check "413" [ "$(c -X PUT -H 'Transfer-Encoding: chunked' --data-binary @"$T_TMP/big" http://l/v1/policies/shop/x)" = 413 ]
wait "$fpid"
t_check "the follow stream got the record" grep -q '"dport":5432' "$T_TMP/follow"
t_check "DELETE policy" [ "$(c -X DELETE http://l/v1/policies/shop/shop)" = 200 ]
kill -TERM "$T_MSEGD_PID"
wait "$T_MSEGD_PID"
rc=$?
t_check "msegd exits 0 under valgrind (no errors, no leaks)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || head -60 "$T_TMP/vg.log"
t_done
