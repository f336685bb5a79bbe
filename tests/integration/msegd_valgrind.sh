#!/bin/bash
# msegd under valgrind through a daemon's life in real namespaces: start
# (kernel probe, first programming), a policy reload, a bad policy file, an
# inventory change (endpoint added, then removed), the API (an endpoint put
# and deleted, status reads), a refused connection queued to msegd, a resync
# repairing a flushed table, and SIGTERM. Passes when msegd exits 0 and
# valgrind reports no error and no definite or indirect leak.
#
# valgrind cannot run sanitized binaries: the plain build is
# $VALGRIND_BUILD, else build/ (tests/run may run with BUILD=build-san).
. "$(dirname "$0")/../lib.sh"
t_require_root

VBUILD=${VALGRIND_BUILD:-build}
case $VBUILD in /*) VMSEGD="$VBUILD/msegd" ;; *) VMSEGD="$MSEG_ROOT/$VBUILD/msegd" ;; esac
if ! command -v valgrind >/dev/null; then
	echo "SKIP: $(basename "$0"): valgrind not installed"
	exit 77
fi
if [ ! -x "$VMSEGD" ]; then
	echo "SKIP: $(basename "$0"): no plain build at $VMSEGD (set VALGRIND_BUILD)"
	exit 77
fi
if nm -an "$VMSEGD" 2>/dev/null | grep -q __asan_init; then
	echo "SKIP: $(basename "$0"): $VMSEGD is built with ASan (set VALGRIND_BUILD)"
	exit 77
fi

t_endpoints web:1 api:2 db:3 attacker:4 || { t_fail "setup"; exit 1; }
t_tcp_server db 5432
t_wait_port db 5432

write_policy() { # FROM [KEY]: FROM -> db tcp/5432, renamed into place
	cat >"$T_TMP/policies/p.yaml.tmp" <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: p}
spec:
  groups:
    web: {selector: {app: web}}
    api: {selector: {app: api}}
    db: {${2:-selector}: {app: db}}
  allow:
    - {from: $1, to: db, ports: [tcp/5432]}
EOF2
	mv "$T_TMP/policies/p.yaml.tmp" "$T_TMP/policies/p.yaml"
}
write_inventory() { # extra endpoint lines...
	local l
	{
		echo "endpoints:"
		echo "  - {id: api, labels: {app: api}, netns: $(t_netns_path api), ips: [10.201.0.2]}"
		echo "  - {id: db, labels: {app: db}, netns: $(t_netns_path db), ips: [10.201.0.3]}"
		for l in "$@"; do echo "  $l"; done
	} >"$T_TMP/endpoints.yaml.tmp"
	mv "$T_TMP/endpoints.yaml.tmp" "$T_TMP/endpoints.yaml"
}
mkdir -p "$T_TMP/policies"
write_policy api
write_inventory

# Everything is slower under valgrind: wait up to 60 s for a log line.
v_wait_log() { # REGEX [FROM]
	local i
	for i in $(seq 1 600); do
		tail -n +"$((${2:-0} + 1))" "$T_TMP/msegd.log" 2>/dev/null | grep -Eq "$1" && return 0
		kill -0 "$T_MSEGD_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
api() { # METHOD PATH [BODY]: prints the HTTP status
	curl -s -o "$T_TMP/api.out" -w '%{http_code}' --max-time 30 \
		--unix-socket "$T_TMP/api.sock" -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} \
		"http://localhost$2"
}

vlog="$T_TMP/valgrind.log"
# msegd allocates through jemalloc: valgrind watches its malloc and free
valgrind --soname-synonyms=somalloc='*jemalloc*' --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
	--show-leak-kinds=definite,indirect --num-callers=30 --log-file="$vlog" \
	"$VMSEGD" --state-dir "$T_TMP/state" --listen "unix:$T_TMP/api.sock" \
	--policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" \
	--resync 2 --flow-log "$T_TMP/flows.log" --log-level debug \
	>>"$T_TMP/msegd.log" 2>&1 &
T_MSEGD_PID=$!
T_PIDS+=("$T_MSEGD_PID")

t_check "start: msegd ready under valgrind" v_wait_log "msegd ready"
t_check "start: api -> db allowed" t_tcp api 10.201.0.3 5432
t_check_not "start: attacker -> db refused (queued to msegd)" t_tcp attacker 10.201.0.3 5432

mark=$(t_log_lines)
write_policy web
t_check "policy reload logged" v_wait_log "loaded 1 policies, 2 endpoints" "$mark"
mark=$(t_log_lines)
write_policy web selectr
t_check "bad policy file refused with file:line:col" v_wait_log "p.yaml:8:10: .*selectr" "$mark"
mark=$(t_log_lines)
write_policy web
t_check "fixed policy file loaded" v_wait_log "loaded 1 policies, 2 endpoints" "$mark"

mark=$(t_log_lines)
write_inventory "- {id: web, labels: {app: web}, netns: $(t_netns_path web), ips: [10.201.0.1]}"
t_check "inventory change: endpoint added" v_wait_log "loaded 1 policies, 3 endpoints" "$mark"
t_check "inventory change: web -> db allowed" t_tcp web 10.201.0.3 5432
mark=$(t_log_lines)
write_inventory
t_check "inventory change: endpoint removed" v_wait_log "loaded 1 policies, 2 endpoints" "$mark"
t_check_not "inventory change: web -> db refused again" t_tcp web 10.201.0.3 5432

if command -v curl >/dev/null; then
	body="{\"name\": \"web\", \"namespace\": \"default\", \"labels\": {\"app\": \"web\"},
	      \"netns\": \"$(t_netns_path web)\", \"ips\": [\"10.201.0.1\"]}"
	t_check "API: PUT endpoint" [ "$(api PUT /v1/endpoints/web-api "$body")" -lt 300 ]
	t_check "API: GET /v1/rules/web-api" [ "$(api GET /v1/rules/web-api)" = 200 ]
	for p in /healthz /readyz /metrics /v1/status /v1/endpoints /v1/policies /v1/rules /v1/flows; do
		api GET "$p" >/dev/null
	done
	t_check "API: DELETE endpoint" [ "$(api DELETE /v1/endpoints/web-api)" -lt 300 ]
	t_check "API: not found is an error, not a crash" [ "$(api GET /v1/endpoints/nope)" = 404 ]
fi

mark=$(t_log_lines)
t_nft db flush table inet mseg
t_check "resync: drift found in the flushed table" v_wait_log "endpoint 'db': drift found" "$mark"
t_check "resync: repaired" v_wait_log "resync repaired" "$mark"
t_check_not "resync: attacker -> db refused again" t_tcp attacker 10.201.0.3 5432

kill -TERM "$T_MSEGD_PID"
wait "$T_MSEGD_PID"
rc=$?
t_check "SIGTERM: msegd exits with status 0 under valgrind (99: valgrind errors)" [ "$rc" -eq 0 ]
t_check "valgrind ran to the end" grep -q "ERROR SUMMARY:" "$vlog"
t_check "valgrind: no errors" grep -q "ERROR SUMMARY: 0 errors" "$vlog"
t_check_not "valgrind: no definite or indirect leaks" \
	grep -Eq "(definitely|indirectly) lost: [1-9]" "$vlog"
if [ "$T_FAILS" -ne 0 ]; then
	echo "--- valgrind log"
	cat "$vlog"
fi
t_done
