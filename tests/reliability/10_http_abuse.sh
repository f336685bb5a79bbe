#!/bin/bash
# HTTP abuse of the API socket, in rounds: slow connections (slowloris),
# oversized bodies and headers, random bytes. Abusers are answered 4xx or
# cut off, normal calls keep answering within 1 s, and msegd's RSS is flat
# from round to round (printed per round).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/helpers.bash"
t_require_root
t_require_cmds python3 curl
ABUSE="$MSEG_ROOT/tests/reliability/httpabuse.py"

rounds=$(r_size 2 5) slow=40 slow_s=$(r_size 3 10) big=$(r_size 5 20) junk=$(r_size 40 200)
t_msegd_start --resync 0
t_check "msegd ready" t_wait_log "msegd ready"
r_wait_sock
r_api GET /v1/status >/dev/null
j() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], 0))' "$out" "$1"; }
sl_fail=0 sl_calls=0 sl_worst=0 ov_bad=0 gb_hung=0 gb_bad=0 over_fail=0 over_calls=0
rss=()
for r in $(seq 1 "$rounds"); do
	# $slow slow connections, under the listener's limit of 64
	out=$(python3 "$ABUSE" "$R_SOCK" slowloris "$slow" "$slow_s"); echo "round $r: slowloris: $out"
	sl_fail=$((sl_fail + $(j calls_failed))); sl_calls=$((sl_calls + $(j calls)))
	[ "$(j worst_ms)" -gt "$sl_worst" ] && sl_worst=$(j worst_ms)
	# beyond the limit: slow clients that keep sending hold their slots (the
	# idle timeout never fires) and normal calls are refused while they
	# last. Measured, not asserted: a known limit (the unix socket is
	# root's only; TCP has a per-address limit of 16)
	out=$(python3 "$ABUSE" "$R_SOCK" slowloris 100 2); echo "round $r: 100 slow connections: $out"
	over_fail=$((over_fail + $(j calls_failed))); over_calls=$((over_calls + $(j calls)))
	out=$(python3 "$ABUSE" "$R_SOCK" oversize "$big"); echo "round $r: oversize: $out"
	[ "$(j declared:413)" -eq "$big" ] || ov_bad=$((ov_bad + 1))
	[ $(( $(j chunked:413) + $(j chunked:closed) )) -eq "$big" ] || ov_bad=$((ov_bad + 1))
	[ $(( $(j header:431) + $(j header:413) + $(j header:400) + $(j header:closed) )) -eq "$big" ] || ov_bad=$((ov_bad + 1))
	out=$(python3 "$ABUSE" "$R_SOCK" garbage "$junk"); echo "round $r: garbage: $out"
	gb_hung=$((gb_hung + $(j hung)))
	grep -q '"[25][0-9][0-9]"' <<<"$out" && gb_bad=$((gb_bad + 1))
	rss+=("$(r_rss_kb "$T_MSEGD_PID")")
	echo "round $r: msegd RSS ${rss[-1]} KiB, fds $(r_fds "$T_MSEGD_PID")"
done
r_figure http_rounds "$rounds"
r_figure http_slowloris40_calls_failed "$sl_fail/$sl_calls"
r_figure http_slowloris40_worst_ms "$sl_worst"
r_figure http_slowloris100_calls_failed "$over_fail/$over_calls"
r_figure http_oversize_requests "$((rounds * big * 3))"
r_figure http_garbage_connections "$((rounds * junk))"
r_figure http_rss_kb "$(IFS=-; echo "${rss[*]}")"
t_check "slowloris ($slow connections): every normal call answered within 1 s ($sl_fail of $sl_calls failed, worst $sl_worst ms)" \
	[ "$sl_fail" -eq 0 ] && [ "$sl_calls" -gt 0 ]
t_check "oversize: 2 MiB bodies 413 (or cut off when chunked), 64 KiB headers 4xx" [ "$ov_bad" -eq 0 ]
t_check "oversize: nothing stored" [ "$(r_api GET /v1/policies/default/big)" = 404 ]
t_check "garbage: no connection left hanging ($gb_hung)" [ "$gb_hung" -eq 0 ]
t_check "garbage: never a 2xx or 5xx answer" [ "$gb_bad" -eq 0 ]
t_check "API responsive after the abuse" [ "$(r_api GET /v1/status)" = 200 ]
# ASan keeps freed memory in quarantine: RSS says nothing there (the full
# run, `make reliability`, uses the plain build)
if ldd "$MSEGD" 2>/dev/null | grep -q libasan; then
	echo "RSS ${rss[0]} -> ${rss[-1]} KiB (not checked under ASan)"
else
	t_check "RSS flat from round 1 to round $rounds (${rss[0]} -> ${rss[-1]} KiB; 512 KiB slack)" \
		[ "${rss[-1]}" -le $(( ${rss[0]} + 512 )) ]
fi
t_check "msegd still up" kill -0 "$T_MSEGD_PID"
t_done
