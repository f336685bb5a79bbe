# Shared helpers for integration tests (source it). Each test builds its own
# network: a hub namespace holding a bridge, and one namespace per endpoint
# joined to it with a veth pair. Addresses: 10.201.0.0/24 and fd00:201::/64,
# inside namespaces this test created; nothing else is ever a target.
# Everything is removed on exit, also on failure (trap).

T_PREFIX="mt$$"
T_HUB="${T_PREFIX}-hub"
T_NS=()
T_PIDS=()
T_TMP=$(mktemp -d /tmp/mseg-test.XXXXXX)
T_FAILS=0
BUILD=${BUILD:-build}
MSEG_ROOT=${MSEG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
MSEGD="$MSEG_ROOT/$BUILD/msegd"
MSEG="$MSEG_ROOT/$BUILD/mseg"
# sanitizer reports fail the test loudly
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

t_require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: $(basename "$0") needs root"
		exit 77
	fi
}

t_cleanup() {
	local pid ns
	for pid in "${T_PIDS[@]}"; do
		kill -9 "$pid" 2>/dev/null
	done
	for pid in "${T_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	for ns in "${T_NS[@]}" "$T_HUB"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$T_TMP"
}
trap t_cleanup EXIT

# t_require_cmds CMD...: skip the test (exit 77) unless every command is installed
t_require_cmds() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || { echo "SKIP: $c missing"; exit 77; }
	done
}
# t_require_built PATH: skip the test (exit 77) unless the test program PATH is built
t_require_built() { [ -x "$1" ] || { echo "SKIP: $1 not built"; exit 77; }; }

t_pass() { echo "PASS: $*"; }
t_fail() { echo "FAIL: $*"; T_FAILS=$((T_FAILS + 1)); }
# t_check NAME CMD...: PASS when CMD succeeds
t_check() { local n=$1; shift; if "$@"; then t_pass "$n"; else t_fail "$n"; fi; }
# t_check_not NAME CMD...: PASS when CMD fails
t_check_not() { local n=$1; shift; if "$@"; then t_fail "$n"; else t_pass "$n"; fi; }

t_hub() {
	ip netns add "$T_HUB" || return 1
	ip -n "$T_HUB" link add br0 type bridge || return 1
	ip -n "$T_HUB" link set br0 up
	ip -n "$T_HUB" link set lo up
}

# t_endpoints NAME:N...: t_endpoint for each; fails at the first that fails
t_endpoints() {
	local e
	for e in "$@"; do
		t_endpoint "${e%%:*}" "${e##*:}" || return 1
	done
}
# t_endpoint NAME N: namespace ${T_PREFIX}-NAME with 10.201.0.N and fd00:201::N
t_endpoint() {
	local name=$1 n=$2 ns="${T_PREFIX}-$1"
	[ -e "/run/netns/$T_HUB" ] || t_hub || return 1
	ip netns add "$ns" || return 1
	T_NS+=("$ns")
	ip -n "$T_HUB" link add "v$n" type veth peer name eth0 netns "$ns" || return 1
	ip -n "$T_HUB" link set "v$n" master br0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "10.201.0.$n/24" dev eth0
	ip -n "$ns" -6 addr add "fd00:201::$n/64" dev eth0 nodad
	ip -n "$ns" link set eth0 up
}

t_ns() { echo "${T_PREFIX}-$1"; }
t_netns_path() { echo "/run/netns/${T_PREFIX}-$1"; }

# Background process inside a namespace; remembered for cleanup.
t_bg() { local ns=$1; shift; ip netns exec "$ns" "$@" & T_PIDS+=($!); }

# TCP echo server on PORT in endpoint NAME (IPv4 and IPv6).
t_tcp_server() {
	t_bg "$(t_ns "$1")" socat -T5 TCP6-LISTEN:"$2",fork,reuseaddr,ipv6only=0 EXEC:/bin/cat
}
# UDP echo server.
t_udp_server() {
	t_bg "$(t_ns "$1")" socat -T2 UDP6-RECVFROM:"$2",fork,reuseaddr,ipv6only=0 EXEC:/bin/cat
}

t_wait_port() { # NAME PORT [tcp|udp]
	local ns proto=${3:-tcp} i
	ns=$(t_ns "$1")
	for i in $(seq 1 50); do
		if [ "$proto" = tcp ]; then
			ip netns exec "$ns" ss -Hltn "sport = :$2" | grep -q . && return 0
		else
			ip netns exec "$ns" ss -Hlun "sport = :$2" | grep -q . && return 0
		fi
		sleep 0.1
	done
	return 1
}

# socat address of ADDR:PORT, bracketing IPv6
t_hostport() { case $1 in *:*) echo "[$1]:$2" ;; *) echo "$1:$2" ;; esac; }
# t_tcp FROM ADDR PORT: succeeds when a TCP echo round trip works (1 s)
t_tcp() {
	local out
	out=$(echo "ping-$$" | timeout 3 ip netns exec "$(t_ns "$1")" \
		socat -T1 - "TCP:$(t_hostport "$2" "$3"),connect-timeout=1" 2>/dev/null)
	[ "$out" = "ping-$$" ]
}
# t_udp FROM ADDR PORT: succeeds when a UDP echo round trip works (1 s)
t_udp() {
	local out
	out=$(echo "ping-$$" | timeout 3 ip netns exec "$(t_ns "$1")" \
		socat -T1 - "UDP:$(t_hostport "$2" "$3")" 2>/dev/null)
	[ "$out" = "ping-$$" ]
}
t_ping() { # FROM ADDR
	ip netns exec "$(t_ns "$1")" ping -c1 -W1 -q "$2" >/dev/null 2>&1
}

# The ruleset of endpoint NAME's namespace.
t_nft() { local n=$1; shift; ip netns exec "$(t_ns "$n")" nft "$@"; }
# NAME's table without its seen sets: those count the connections the table
# admitted (by peer address), so they still name a peer after its allow went
t_nft_rules() {
	t_nft "$1" list table inet mseg 2>/dev/null |
		awk '/^\tset [a-z0-9]+_seen_/ {skip = 1} !skip {print} skip && /^\t}/ {skip = 0}'
}

# Start msegd with ARGS; its log goes to $T_TMP/msegd.log. Sets T_MSEGD_PID.
t_msegd_start() {
	"$MSEGD" --state-dir "$T_TMP/state" --listen "unix:$T_TMP/api.sock" "$@" \
		>>"$T_TMP/msegd.log" 2>&1 &
	T_MSEGD_PID=$!
	T_PIDS+=("$T_MSEGD_PID")
}
# Wait until the log has a line matching REGEX (after LINE, default 0); 10 s.
t_wait_log() {
	local re=$1 from=${2:-0} i
	for i in $(seq 1 100); do
		tail -n +"$((from + 1))" "$T_TMP/msegd.log" 2>/dev/null | grep -Eq "$re" && return 0
		kill -0 "$T_MSEGD_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
t_log_lines() { wc -l <"$T_TMP/msegd.log" 2>/dev/null || echo 0; }
t_msegd_stop() { # clean stop; returns msegd's exit status
	kill -TERM "$T_MSEGD_PID" 2>/dev/null
	wait "$T_MSEGD_PID"
}
t_show_log() { echo "--- msegd log"; cat "$T_TMP/msegd.log" 2>/dev/null; }

t_done() {
	[ "$T_FAILS" -eq 0 ] || t_show_log
	[ "$T_FAILS" -eq 0 ]
}

# t_flow_has LOGFILE key=value...: some flow record in the JSON-lines log
# (last line per id wins) has every given field. Keys: endpoint (the id),
# direction, src, dst, sport, dport, proto, verdict, uid, gid,
# count>=N. Waits up to 4 s (the log is flushed every second).
t_flow_has() {
	local log=$1 i; shift
	for i in $(seq 1 40); do
		python3 - "$log" "$@" <<'PY' && return 0
import json, sys
path, conds = sys.argv[1], sys.argv[2:]
recs = {}
try:
    for line in open(path):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        recs[r["id"]] = r
except OSError:
    sys.exit(1)
def ok(r, c):
    if c.startswith("count>="):
        return r.get("count", 0) >= int(c[7:])
    k, v = c.split("=", 1)
    got = r["endpoint"]["id"] if k == "endpoint" else r.get(k)
    return str(got) == v
sys.exit(0 if any(all(ok(r, c) for c in conds) for r in recs.values()) else 1)
PY
		sleep 0.1
	done
	return 1
}

# t_pair_policy_yaml FROM TO PORT [NAME [NAMESPACE]]: on stdout, one list
# (named p unless NAME) isolating the endpoints labelled app=FROM and
# app=TO, admitting FROM -> TO tcp/PORT.
t_pair_policy_yaml() {
	cat <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: ${4:-p}${5:+, namespace: $5}}
spec:
  groups:
    $1: {selector: {app: $1}}
    $2: {selector: {app: $2}}
  allow:
    - {from: $1, to: $2, ports: [tcp/$3]}
EOF2
}

# t_pair_policy FROM TO PORT: that list as $T_TMP/policies/p.yaml.
t_pair_policy() {
	mkdir -p "$T_TMP/policies"
	t_pair_policy_yaml "$@" >"$T_TMP/policies/p.yaml"
}

# The smallest scene: endpoints api (.2) and db (.3), an outside attacker
# (.4), "api -> db tcp/5432" with a server on db; $T_TMP/endpoints.yaml.
t_api_db_scene() {
	t_endpoints api:2 db:3 attacker:4 || return 1
	t_pair_policy api db 5432
	cat >"$T_TMP/endpoints.yaml" <<EOF2
endpoints:
  - {id: api, labels: {app: api}, netns: $(t_netns_path api), ips: [10.201.0.2]}
  - {id: db, labels: {app: db}, netns: $(t_netns_path db), ips: [10.201.0.3]}
EOF2
	t_tcp_server db 5432
	t_wait_port db 5432
}
