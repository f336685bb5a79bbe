#!/bin/bash
# A namespace deleted under msegd (ip netns del of a registered endpoint,
# again and again): msegd stays up, removes the endpoint at the next resync
# (--resync 1; its address leaves db's allow set), and the others are not
# affected: 4 allowed streams api -> db run unbroken throughout, the
# attacker stays refused.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/helpers.bash"
t_require_root
t_require_cmds socat python3 curl

rounds=$(r_size 3 20)
t_api_db_scene || { t_fail "setup"; exit 1; }
t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 1
t_check "msegd ready" t_wait_log "msegd ready"
r_wait_sock
r_streams api 10.201.0.3 5432 4 streams
r_probe attacker 10.201.0.3 5432 0.05 0.3 denied
t_check "streams and probes started" r_wait_started streams.json denied.log

removed=0 worst=0
for r in $(seq 1 "$rounds"); do
	n=$((100 + r))
	t_endpoint "gone$r" "$n" || { t_fail "setup gone$r"; break; }
	code=$(r_api PUT "/v1/endpoints/gone$r" -d '{"labels": {"app": "api"}, "netns": "'"$(t_netns_path "gone$r")"'", "ips": ["10.201.0.'"$n"'"]}')
	[ "$code" = 201 ] || t_fail "round $r: PUT answered $code"
	t_nft db list ruleset 2>/dev/null | grep -q "10.201.0.$n " || t_fail "round $r: address not in db's set"
	mark=$(t_log_lines)
	t0=$(date +%s%N)
	ip netns del "$(t_ns "gone$r")"
	if t_wait_log "endpoint 'gone$r': its netns .* is gone; endpoint removed" "$mark"; then
		ms=$(( ($(date +%s%N) - t0) / 1000000 ))
		[ "$ms" -gt "$worst" ] && worst=$ms
		[ "$(r_api GET "/v1/endpoints/gone$r")" = 404 ] &&
			! t_nft db list ruleset 2>/dev/null | grep -q "10.201.0.$n " && removed=$((removed + 1))
	fi
done
r_stop streams
broken=$(r_json streams broken)
echo "$removed/$rounds deleted namespaces removed (worst $worst ms after ip netns del); streams: $(r_json streams seconds) stream-seconds, $broken broken; denied probes: $(r_count denied ok) through of $(( $(r_count denied ok) + $(r_count denied no) ))"
r_figure netns_deleted "$rounds"
r_figure netns_deleted_removed "$removed"
r_figure netns_deleted_removal_ms_max "$worst"
r_figure netns_deleted_streams_broken "$broken"
t_check "msegd still up" kill -0 "$T_MSEGD_PID"
t_check "every deleted namespace's endpoint removed, its address gone from db's set ($removed/$rounds)" [ "$removed" -eq "$rounds" ]
t_check "removed within a resync period (worst $worst ms)" [ "$worst" -le 2000 ]
t_check "others unaffected: no stream broken" [ "$broken" = 0 ]
t_check "others unaffected: no denied probe through" [ "$(r_count denied ok)" -eq 0 ]
t_check "others unaffected: api reaches db" t_tcp api 10.201.0.3 5432
t_done
