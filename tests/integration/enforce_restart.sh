#!/bin/bash
# kill -9 msegd: denied pairs stay denied, allowed pairs keep working, and a
# restart adopts the tables with no gap: probes every 50 ms across the kill
# and the restart never see the attacker get through nor the client refused.
. "$(dirname "$0")/../lib.sh"
t_require_root

t_api_db_scene || { t_fail "setup"; exit 1; }
args=(--policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 0)
t_msegd_start "${args[@]}"
t_check "msegd ready" t_wait_log "msegd ready"

# probe loops: one line per attempt, "ok" or "no"
probe() { # FROM OUTFILE
	while [ ! -e "$T_TMP/stop" ]; do
		if echo x | timeout 1 ip netns exec "$(t_ns "$1")" \
			socat -T0.3 - TCP:10.201.0.3:5432,connect-timeout=0.3 2>/dev/null | grep -q x; then
			echo ok >>"$2"
		else
			echo no >>"$2"
		fi
		sleep 0.05
	done
}
probe api "$T_TMP/good" & T_PIDS+=($!)
probe attacker "$T_TMP/bad" & T_PIDS+=($!)
sleep 1
kill -9 "$T_MSEGD_PID"; wait "$T_MSEGD_PID" 2>/dev/null
sleep 1
t_check "table stays after kill -9" t_nft db list table inet mseg
mark=$(t_log_lines)
t_msegd_start "${args[@]}"
t_check "restarted msegd ready" t_wait_log "msegd ready" "$mark"
t_check "restart adopted the tables in sync (no replace)" t_wait_log "adopted 2" "$mark"
sleep 1
# enough probes after the restart too, however slow a loaded machine runs them
for i in $(seq 1 300); do
	[ "$(grep -c ok "$T_TMP/good")" -ge 20 ] && [ "$(grep -c no "$T_TMP/bad")" -ge 5 ] && break
	sleep 0.1
done
touch "$T_TMP/stop"; sleep 0.5

good_no=$(grep -c no "$T_TMP/good"); good_ok=$(grep -c ok "$T_TMP/good")
bad_ok=$(grep -c ok "$T_TMP/bad"); bad_no=$(grep -c no "$T_TMP/bad")
echo "allowed probes: $good_ok ok, $good_no refused; denied probes: $bad_ok got through, $bad_no refused"
t_check "enough probes across the restart" [ "$good_ok" -ge 20 ] && [ "$bad_no" -ge 5 ]
t_check "allowed pair never refused across kill -9 and restart" [ "$good_no" -eq 0 ]
t_check "denied pair never got through across kill -9 and restart" [ "$bad_ok" -eq 0 ]
t_done
