# Helpers for tests/reliability/*.sh (sourced after tests/lib.sh).
#
# MSEG_RELIABILITY=short (default; what tests/run runs) or full (what
# `make reliability` runs): r_size SHORT FULL prints the size for the form.
# A figure is a line "FIGURE: name=value"; `make reliability` collects them.

MSEG_RELIABILITY=${MSEG_RELIABILITY:-short}
R_TRAFFIC="$MSEG_ROOT/tests/reliability/traffic.py"
R_SOCK="$T_TMP/api.sock"

r_size() { if [ "$MSEG_RELIABILITY" = full ]; then echo "$2"; else echo "$1"; fi; }
r_figure() { echo "FIGURE: $1=$2"; }
r_now() { python3 -c 'import time; print("%.4f" % time.monotonic())'; }

# r_api METHOD PATH [CURL-ARGS...]: the HTTP status on stdout, body in $T_TMP/body
r_api() {
	local m=$1 p=$2; shift 2
	curl -s -o "$T_TMP/body" -w '%{http_code}' --max-time 5 --unix-socket "$R_SOCK" \
		-X "$m" "http://mseg$p" "$@"
}
r_wait_sock() { local i; for i in $(seq 1 100); do [ -S "$R_SOCK" ] && return 0; sleep 0.1; done; return 1; }

r_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
r_fds() { ls "/proc/$1/fd" | wc -l; }

# r_streams FROM DST PORT N NAME: N echo streams (a line every 100 ms) from
# endpoint FROM; stopped by r_stop, result in $T_TMP/NAME.json
r_streams() {
	t_bg "$(t_ns "$1")" python3 "$R_TRAFFIC" streams "$2" "$3" "$4" 0.1 "$T_TMP/stop" \
		"$T_TMP/$5.json" 2>>"$T_TMP/$5.err"
}
# r_probe FROM DST PORT INTERVAL TIMEOUT NAME: connect probes, lines in $T_TMP/NAME.log
r_probe() {
	t_bg "$(t_ns "$1")" python3 "$R_TRAFFIC" probe "$2" "$3" "$4" "$5" "$T_TMP/stop" \
		"$T_TMP/$6.log"
}
# r_wait_started FILE...: wait (20 s) until the streams/probes writing
# $T_TMP/FILE have started (the machine may be loaded: python starts slowly)
r_wait_started() {
	local f i
	for f in "$@"; do
		for i in $(seq 1 200); do [ -e "$T_TMP/$f.ready" ] && break; sleep 0.1; done
		[ -e "$T_TMP/$f.ready" ] || return 1
	done
}
# r_stop NAME...: ends streams and probes; waits (5 s) for $T_TMP/NAME.json
r_stop() {
	local n i
	touch "$T_TMP/stop"
	for n in "$@"; do
		for i in $(seq 1 50); do [ -e "$T_TMP/$n.json" ] && break; sleep 0.1; done
	done
	sleep 0.5
}
r_json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T_TMP/$1.json" "$2" 2>/dev/null || echo "?"; }
r_count() { awk -v w="$2" '$3 == w {n++} END {print n + 0}' "$T_TMP/$1.log" 2>/dev/null; }
# r_log_time REGEX [FROM-LINE]: wall-clock seconds of the first msegd log line matching
r_log_time() {
	tail -n +"$((${2:-0} + 1))" "$T_TMP/msegd.log" | grep -E -m1 "$1" | cut -d' ' -f1 |
		python3 -c 'import sys, datetime; t = sys.stdin.read().strip().rstrip("Z"); print("%.3f" % datetime.datetime.fromisoformat(t).replace(tzinfo=datetime.timezone.utc).timestamp())'
}
# r_count_in NAME WHAT FROM [TO]: probes in $T_TMP/NAME.log with outcome WHAT started in [FROM, TO)
r_count_in() {
	awk -v w="$2" -v a="$3" -v b="${4:-1e12}" '$3 == w && $1 >= a && $1 < b {n++} END {print n + 0}' "$T_TMP/$1.log"
}
