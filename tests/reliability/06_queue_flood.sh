#!/bin/bash
# The queue listener flooded in enforce: an outside sender floods db with
# UDP to a denied port, far over the queue rate limit (default 100/s, burst
# 200). Denied connections are still refused, allowed ones still pass, and
# msegd stays responsive: every API call during the flood answers within 1 s.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/helpers.bash"
t_require_root
t_require_cmds socat python3 curl

secs=$(r_size 10 60)
t_api_db_scene || { t_fail "setup"; exit 1; }
t_endpoint flooder 7 || { t_fail "setup flooder"; exit 1; }
t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 1
t_check "msegd ready" t_wait_log "msegd ready"
r_wait_sock

t_bg "$(t_ns flooder)" python3 "$R_TRAFFIC" udpflood 10.201.0.3 9999 "$secs" "$T_TMP/flood1"
t_bg "$(t_ns flooder)" python3 "$R_TRAFFIC" udpflood 10.201.0.3 9998 "$secs" "$T_TMP/flood2"
r_probe api 10.201.0.3 5432 0.1 1.0 allowed
r_probe attacker 10.201.0.3 5432 0.05 0.3 denied
t_check "probes started" r_wait_started allowed.log denied.log
calls=0 slow=0 worst=0 bad=0
end=$(( $(date +%s) + secs - 2 ))
while [ "$(date +%s)" -lt "$end" ]; do
	out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 1 --unix-socket "$R_SOCK" http://mseg/v1/status)
	calls=$((calls + 1))
	set -- $out
	[ "$1" = 200 ] || bad=$((bad + 1))
	ms=$(echo "$2 * 1000 / 1" | bc)
	[ "$ms" -gt "$worst" ] && worst=$ms
	[ "$ms" -ge 1000 ] && slow=$((slow + 1))
	sleep 0.1
done
for _ in $(seq 1 100); do [ -e "$T_TMP/flood1" ] && [ -e "$T_TMP/flood2" ] && break; sleep 0.1; done
r_stop
sent=$(( $(cat "$T_TMP/flood1" 2>/dev/null || echo 0) + $(cat "$T_TMP/flood2" 2>/dev/null || echo 0) ))
r_api GET /metrics >/dev/null; sleep 1.5; r_api GET /metrics >/dev/null   # counters are read in the background
over=$(awk '/^mseg_overlimit_packets_total/ {s += $NF} END {print s + 0}' "$T_TMP/body")
queued=$(awk '/^mseg_queue_packets_total/ {s += $NF} END {print s + 0}' "$T_TMP/body")
echo "flood: $sent datagrams in $secs s ($((sent / secs))/s); msegd's metrics: $queued queued packets, $over over the limit"
echo "API: $calls calls, $bad not 200, $slow over 1 s, worst $worst ms"
echo "allowed probes: $(r_count allowed ok) ok, $(r_count allowed no) refused; denied: $(r_count denied ok) through, $(r_count denied no) refused"
r_figure flood_datagrams_per_s "$((sent / secs))"
r_figure flood_overlimit_packets "$over"
r_figure flood_queued_packets "$queued"
r_figure flood_api_calls "$calls"
r_figure flood_api_worst_ms "$worst"
r_figure flood_allowed_refused "$(r_count allowed no)/$(( $(r_count allowed ok) + $(r_count allowed no) ))"
r_figure flood_denied_through "$(r_count denied ok)/$(( $(r_count denied ok) + $(r_count denied no) ))"
t_check "the flood was over the limit ($sent datagrams)" [ "$sent" -gt $((secs * 1000)) ]
t_check "API answered every call, each within 1 s ($calls calls, worst $worst ms)" [ "$bad" -eq 0 ] && [ "$slow" -eq 0 ]
t_check "allowed connections passed during the flood" [ "$(r_count allowed ok)" -gt 0 ] && [ "$(r_count allowed no)" -eq 0 ]
t_check "denied connections refused during the flood" [ "$(r_count denied no)" -gt 0 ] && [ "$(r_count denied ok)" -eq 0 ]
t_check "msegd still up" kill -0 "$T_MSEGD_PID"
t_done
