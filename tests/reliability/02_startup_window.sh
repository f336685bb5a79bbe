#!/bin/bash
# The startup window. Namespaces and policies exist before msegd starts:
# with no table yet traffic is open (by design); from the moment msegd says
# ready, no denied pair connects. Then msegd is killed and restarted with its
# tables present: no denied pair connects at any moment.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/helpers.bash"
t_require_root
t_require_cmds socat python3

rounds=$(r_size 1 10)
t_api_db_scene || { t_fail "setup"; exit 1; }
: >"$T_TMP/msegd.log"
args=(--policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 0)
r_probe attacker 10.201.0.3 5432 0.02 0.3 denied
r_probe api 10.201.0.3 5432 0.05 0.5 allowed
t_check "probes started" r_wait_started denied.log allowed.log
sleep 1
t_check "before msegd: no table, the attacker connects (open by design)" \
	[ "$(r_count denied ok)" -gt 0 ]

after_ready=0 before_ready=0 restart_through=0 restart_probes=0
for r in $(seq 1 "$rounds"); do
	# a cold start: no table in any namespace
	for n in api db; do t_nft "$n" delete table inet mseg 2>/dev/null; done
	sleep 0.5
	mark=$(t_log_lines)
	t_msegd_start "${args[@]}"
	t_wait_log "msegd ready" "$mark" || t_fail "round $r: msegd not ready"
	ready=$(r_log_time "msegd ready" "$mark")
	sleep 1.5
	kill -9 "$T_MSEGD_PID"; wait "$T_MSEGD_PID" 2>/dev/null
	killed=$(date +%s.%N)
	after_ready=$((after_ready + $(r_count_in denied ok "$ready" "$killed")))
	# a restart with the tables present
	sleep 0.3
	mark=$(t_log_lines)
	t_msegd_start "${args[@]}"
	t_wait_log "msegd ready" "$mark" || t_fail "round $r: restart not ready"
	sleep 1
	kill -9 "$T_MSEGD_PID"; wait "$T_MSEGD_PID" 2>/dev/null
	end=$(date +%s.%N)
	restart_through=$((restart_through + $(r_count_in denied ok "$killed" "$end")))
	restart_probes=$((restart_probes + $(r_count_in denied ok "$killed" "$end") + $(r_count_in denied no "$killed" "$end")))
	last_ready=$ready
done
r_stop
# the allowed pair works after ready (the probes see both outcomes)
allowed_ok=$(r_count_in allowed ok "$last_ready")
echo "denied probes: $(r_count denied ok) through in total (open before each cold start), $after_ready after 'ready'; $restart_probes across restarts with tables present, $restart_through through"
r_figure startup_rounds "$rounds"
r_figure startup_denied_probes "$(( $(r_count denied ok) + $(r_count denied no) ))"
r_figure startup_denied_through_after_ready "$after_ready"
r_figure startup_restart_denied_probes "$restart_probes"
r_figure startup_restart_denied_through "$restart_through"
t_check "allowed pair connects after ready ($allowed_ok)" [ "$allowed_ok" -gt 0 ]
t_check "no denied probe connects after 'msegd ready'" [ "$after_ready" -eq 0 ]
t_check "restarts with tables present: probes ran ($restart_probes)" [ "$restart_probes" -ge $((rounds * 20)) ]
t_check "restarts with tables present: no denied probe connects" [ "$restart_through" -eq 0 ]
t_done
