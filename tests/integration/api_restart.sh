#!/bin/bash
# Persistence: what the API acknowledged survives a restart and a kill -9,
# also in the middle of a burst of writes; the restarted msegd reprograms
# the kernel from it, and nothing unacknowledged is half-present.
. "$(dirname "$0")/../lib.sh"
t_require_root
SOCK="$T_TMP/api.sock"

t_endpoints web:1 db:3 attacker:4 || { t_fail "setup"; exit 1; }
t_tcp_server db 5432

api() { curl -s -o "$T_TMP/body" -w '%{http_code}' --unix-socket "$SOCK" "$@"; }
wait_sock() { local i; for i in $(seq 1 100); do curl -s --unix-socket "$SOCK" http://l/healthz >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
policy() { t_pair_policy_yaml web db "$2" "$1" shop; } # NAME PORT
db_set() { ip netns exec "$(t_ns db)" nft list set inet mseg in4_port 2>/dev/null; }

t_msegd_start --resync 0
t_check "msegd starts" t_wait_log "msegd ready"
t_check "API answers" wait_sock
t_check "PUT endpoint db" [ "$(api -X PUT http://l/v1/endpoints/db -d "{\"namespace\": \"shop\", \"labels\": {\"app\": \"db\"}, \"netns\": \"$(t_netns_path db)\", \"ips\": [\"10.201.0.3\"]}")" = 201 ]
t_check "PUT endpoint web" [ "$(api -X PUT http://l/v1/endpoints/web -d "{\"namespace\": \"shop\", \"labels\": {\"app\": \"web\"}, \"netns\": \"$(t_netns_path web)\", \"ips\": [\"10.201.0.1\"]}")" = 201 ]
policy shop 5432 >"$T_TMP/shop.yaml"
t_check "PUT policy" [ "$(api -X PUT http://l/v1/policies/shop/shop --data-binary @"$T_TMP/shop.yaml")" = 201 ]
curl -s --unix-socket "$SOCK" http://l/v1/policies >"$T_TMP/pols.before"
curl -s --unix-socket "$SOCK" http://l/v1/endpoints | python3 -c 'import json,sys; print(sorted((e["id"], e["namespace"], tuple(e["ips"])) for e in json.load(sys.stdin)["endpoints"]))' >"$T_TMP/eps.before"

# kill -9, remove the tables as a reboot would, restart
kill -9 "$T_MSEGD_PID"; wait "$T_MSEGD_PID" 2>/dev/null
ip netns exec "$(t_ns db)" nft delete table inet mseg
ip netns exec "$(t_ns web)" nft delete table inet mseg
t_check_not "tables gone" t_nft db list table inet mseg
mark=$(t_log_lines)
t_msegd_start --resync 0
t_check "restarted after kill -9" t_wait_log "msegd ready" "$mark"
t_check "API answers again" wait_sock
t_check "policies are back, the same" bash -c "curl -s --unix-socket '$SOCK' http://l/v1/policies | cmp -s - '$T_TMP/pols.before'"
t_check "endpoints are back, the same" bash -c "curl -s --unix-socket '$SOCK' http://l/v1/endpoints | python3 -c 'import json,sys; print(sorted((e[\"id\"], e[\"namespace\"], tuple(e[\"ips\"])) for e in json.load(sys.stdin)[\"endpoints\"]))' | cmp -s - '$T_TMP/eps.before'"
t_check "kernel reprogrammed: db's table holds web's entry" bash -c "ip netns exec $(t_ns db) nft list set inet mseg in4_port | grep -q '10.201.0.1 . tcp . 5432'"
t_check     "web -> db tcp/5432 passes"       t_tcp web 10.201.0.3 5432
t_check_not "attacker -> db tcp/5432 refused" t_tcp attacker 10.201.0.3 5432

# a clean restart adopts the tables as they are
mark=$(t_log_lines)
t_check "SIGTERM exits" t_msegd_stop
t_msegd_start --resync 0
t_check "clean restart adopts the table" t_wait_log "endpoint 'db': table in sync, adopted" "$mark"
wait_sock

# a burst of writes killed in the middle: every acknowledged policy is back
# and programmed; at most the one in flight is present without an
# acknowledgement, and it is whole (it loaded)
: >"$T_TMP/acked"
(
	for i in $(seq 1 400); do
		policy "p$i" $((10000 + i)) >"$T_TMP/p.yaml.$i"
		c=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X PUT \
			--data-binary @"$T_TMP/p.yaml.$i" "http://l/v1/policies/shop/p$i")
		[ "$c" = 201 ] && echo "$i" >>"$T_TMP/acked"
		[ "$c" = 000 ] && break
	done
) &
burst=$!
sleep 1
kill -9 "$T_MSEGD_PID"
wait "$burst" 2>/dev/null
wait "$T_MSEGD_PID" 2>/dev/null
n_acked=$(wc -l <"$T_TMP/acked")
t_check "some writes were acknowledged before the kill ($n_acked)" [ "$n_acked" -gt 0 ]
t_check "the kill came in the middle of the burst" [ "$n_acked" -lt 400 ]
mark=$(t_log_lines)
t_msegd_start --resync 0
t_check "restarted after kill -9 during the burst" t_wait_log "msegd ready" "$mark"
t_check "API answers after the burst restart" wait_sock
curl -s --unix-socket "$SOCK" http://l/v1/policies | python3 -c '
import json, sys
print("\n".join(sorted(p["name"][1:] for p in json.load(sys.stdin)["policies"] if p["name"].startswith("p"))))' | sort -n >"$T_TMP/present"
missing=$(sort -n "$T_TMP/acked" | comm -23 - "$T_TMP/present" | wc -l)
extra=$(sort -n "$T_TMP/acked" | comm -13 - "$T_TMP/present" | wc -l)
t_check "every acknowledged policy is back ($n_acked acked, $missing missing)" [ "$missing" -eq 0 ]
t_check "at most the one in flight is extra ($extra)" [ "$extra" -le 1 ]
t_check "no temporary files survive the restart" bash -c "! find '$T_TMP/state' -name '.tmp*' | grep -q ."
db_set >"$T_TMP/dbset"
notprog=0
while read -r i; do
	grep -q "10.201.0.1 . tcp . $((10000 + i))" "$T_TMP/dbset" || notprog=$((notprog + 1))
done <"$T_TMP/acked"
t_check "every acknowledged policy is programmed in db's kernel table ($notprog missing)" [ "$notprog" -eq 0 ]
t_check "the first policy still works: web -> db tcp/5432" t_tcp web 10.201.0.3 5432
t_done
