# What the revocation tests share (sourced after tests/lib.sh; endpoints
# web, api and db = 10.201.0.3): long-lived TCP streams to db, each sending
# a line every 100 ms while db notes the time of each stream's last line
# (tests/tools/linestream.py), so a test can tell whether a stream still
# flows and when it stopped; and the AllowList they tighten.
#
#   policy full|tight [EXTRA-SPEC-LINE]   apply it (mseg apply)
#   streams_serve PORT...      db serves those ports (waits for them)
#   stream ID FROM PORT        a new stream FROM -> db (10.201.0.3):PORT
#   stream_stop ID
#   flowing ID                 a line arrived in the last 0.5 s (waits up to 3 s)
#   stopped_within ID T0 SECS  no line later than T0 + SECS (checked SECS +
#                              1.5 s after T0); prints the gap
#   now                        the time, as `date +%s.%N`

# the system interpreter: a version manager's shim can take seconds to start
STREAMS_PY=/usr/bin/python3
[ -x "$STREAMS_PY" ] || STREAMS_PY=$(command -v python3)
declare -A T_STREAM

streams_serve() {
	local p
	mkdir -p "$T_TMP/last"
	t_bg "$(t_ns db)" "$STREAMS_PY" "$MSEG_ROOT/tests/tools/linestream.py" server \
		"$T_TMP/last" "$@"
	for p in "$@"; do
		t_wait_port db "$p" || return 1
	done
}
stream() {
	rm -f "$T_TMP/last/$1"
	t_bg "$(t_ns "$2")" "$STREAMS_PY" "$MSEG_ROOT/tests/tools/linestream.py" client "$1" \
		10.201.0.3 "$3"
	T_STREAM[$1]=$!
}
stream_stop() { kill -9 "${T_STREAM[$1]}" 2>/dev/null; wait "${T_STREAM[$1]}" 2>/dev/null; }
stream_last() { cat "$T_TMP/last/$1" 2>/dev/null || echo 0; }
now() { date +%s.%N; }
flowing() {
	local i
	for i in $(seq 1 30); do
		awk -v l="$(stream_last "$1")" -v n="$(now)" 'BEGIN { exit !(n - l < 0.5) }' &&
			return 0
		sleep 0.1
	done
	return 1
}
stopped_within() {
	sleep "$(awk -v t0="$2" -v lim="$3" -v n="$(now)" \
		'BEGIN { d = t0 + lim + 1.5 - n; printf "%.3f", (d > 0 ? d : 0) }')"
	awk -v l="$(stream_last "$1")" -v t0="$2" -v lim="$3" 'BEGIN {
		printf "    last line %.3f s after the acknowledgement (limit %.1f s)\n", l - t0, lim
		exit !(l - t0 < lim && l > t0 - 2) }'
}

# policy VERSION [EXTRA-SPEC-LINE]: "full" admits web -> db tcp/5432 and
# api -> db tcp/6000; "tight" only the latter
policy() {
	{
		cat <<EOF
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: p, namespace: default}
spec:
EOF
		[ -n "${2:-}" ] && echo "  $2"
		cat <<EOF
  groups:
    web: {selector: {app: web}}
    api: {selector: {app: api}}
    db: {selector: {app: db}}
  allow:
    - {from: api, to: db, ports: [tcp/6000]}
EOF
		[ "$1" = full ] && echo "    - {from: web, to: db, ports: [tcp/5432]}"
	} >"$T_TMP/p.yaml"
	"$MSEG" apply -f "$T_TMP/p.yaml" >/dev/null
}
