#!/bin/bash
# kill -9 and restart msegd again and again (20 times in the full form)
# while 10 long-lived allowed TCP streams carry a line every 100 ms and an
# outside attacker tries a denied connection every 50 ms: no stream breaks,
# no denied probe gets through.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/helpers.bash"
t_require_root
t_require_cmds socat python3

restarts=$(r_size 3 20)
t_api_db_scene || { t_fail "setup"; exit 1; }
args=(--policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 0)
t_msegd_start "${args[@]}"
t_check "msegd ready" t_wait_log "msegd ready"

r_streams api 10.201.0.3 5432 10 streams
r_probe attacker 10.201.0.3 5432 0.05 0.3 denied
t_check "streams and probes started" r_wait_started streams.json denied.log
sleep 1
ok=0
for i in $(seq 1 "$restarts"); do
	kill -9 "$T_MSEGD_PID"; wait "$T_MSEGD_PID" 2>/dev/null
	sleep 0.5
	mark=$(t_log_lines)
	t_msegd_start "${args[@]}"
	if t_wait_log "msegd ready" "$mark"; then ok=$((ok + 1)); else echo "restart $i: not ready"; fi
	sleep 0.5
done
t_check "msegd came back ready after each of $restarts kill -9 ($ok)" [ "$ok" -eq "$restarts" ]
r_stop streams

broken=$(r_json streams broken); secs=$(r_json streams seconds); msgs=$(r_json streams messages)
through=$(r_count denied ok); refused=$(r_count denied no)
echo "streams: $secs allowed-stream seconds, $msgs echoed lines, $broken broken"
echo "denied probes: $refused refused, $through got through"
cat "$T_TMP/streams.err" 2>/dev/null
r_figure restart_kills "$restarts"
r_figure restart_allowed_stream_seconds "$secs"
r_figure restart_streams_broken "$broken"
r_figure restart_denied_probes "$((through + refused))"
r_figure restart_denied_through "$through"
t_check "10 streams ran across the restarts" [ "$(r_json streams streams)" = 10 ]
t_check "no allowed stream broken" [ "$broken" = 0 ]
t_check "denied probes fired throughout ($refused)" [ "$refused" -ge $((restarts * 5)) ]
t_check "no denied probe got through" [ "$through" -eq 0 ]
t_done
