#!/bin/bash
# Revocation: when a change removes an allow, established connections it had
# admitted stop within a second of the change being acknowledged (their
# conntrack entries are deleted, the next packet meets the allow sets and is
# refused); connections still allowed keep flowing; --revoke new-only and
# spec.revoke: new-only leave them running; a label change and deleting the
# list that held the allow revoke too; so does an endpoint's address change,
# at the peer that named the old address and, for connections on the old
# address that lost their allow, in the endpoint's own namespace.
#
# Real traffic: long-lived TCP streams, one line every 100 ms, from web
# (.1), api (.2) and an outside client (.7, no endpoint) to db (.3); the
# server in db notes when each stream's last line arrived.
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds python3 socat curl
. "$(dirname "$0")/../revoke_lib.sh"

t_endpoints web:1 api:2 db:3 outside:7 || { t_fail "setup"; exit 1; }
export MSEG_SERVER="unix:$T_TMP/api.sock"

streams_serve 5432 6000 || { t_fail "stream server"; exit 1; }

metric_curl() {
	curl -s --unix-socket "$T_TMP/api.sock" http://x/metrics | awk -v m="$1" '$1 == m {print $2}'
}

start() { # msegd ARGS
	local mark
	mark=$(t_log_lines)   # a restart: wait for this msegd's line, not the last one's
	t_msegd_start --resync 0 "$@"
	t_wait_log "msegd ready" "$mark" || return 1
	"$MSEG" endpoint add web --netns "$(t_netns_path web)" --ip 10.201.0.1 --label app=web >/dev/null &&
	"$MSEG" endpoint add api --netns "$(t_netns_path api)" --ip 10.201.0.2 --label app=api >/dev/null &&
	"$MSEG" endpoint add db --netns "$(t_netns_path db)" --ip 10.201.0.3 --label app=db >/dev/null
}

# ---- default (--revoke established): a tightened policy cuts web's stream
t_check "msegd up, endpoints registered" start
t_check "full policy applied" policy full
stream s1 web 5432
stream s2 api 6000
t_check "web -> db stream flows" flowing s1
t_check "api -> db stream flows" flowing s2
mark=$(t_log_lines)
policy tight
t0=$(now)
t_check "tightened policy: web's established stream stops within 1 s" stopped_within s1 "$t0" 1.0
t_check "api's stream (still allowed) keeps flowing" flowing s2
t_check_not "a new web -> db connection is refused" t_tcp web 10.201.0.3 5432
t_check "the log names db and a count" \
	t_wait_log "endpoint 'db': [1-9][0-9]* established connections revoked" "$mark"
t_check "mseg_conntrack_revoked_total counts them" \
	[ "$(metric_curl mseg_conntrack_revoked_total)" -ge 1 ]
stream_stop s1

# ---- spec.revoke: new-only on the tightened policy leaves the stream running
t_check "full policy again" policy full
stream s3 web 5432
t_check "new web stream flows" flowing s3
mark=$(t_log_lines)
policy tight "revoke: new-only"
sleep 1.5
t_check "spec.revoke: new-only: web's stream keeps flowing" flowing s3
t_check_not "spec.revoke: new-only: a new web -> db connection is refused" t_tcp web 10.201.0.3 5432
t_check "the log says the connection was kept" t_wait_log "endpoint 'db': 0 established connections revoked, [1-9][0-9]* kept \(revoke: new-only\)" "$mark"
stream_stop s3

# ---- a label change revokes: web is no longer app=web
t_check "full policy again" policy full
stream s4 web 5432
t_check "web stream flows" flowing s4
"$MSEG" endpoint add web --netns "$(t_netns_path web)" --ip 10.201.0.1 --label app=other >/dev/null
t0=$(now)
t_check "label change: web's stream stops within 1 s" stopped_within s4 "$t0" 1.0
t_check "api's stream keeps flowing" flowing s2
stream_stop s4
"$MSEG" endpoint add web --netns "$(t_netns_path web)" --ip 10.201.0.1 --label app=web >/dev/null

# ---- deleting the list that held the allow revokes (another list still
# isolates db): web -> db tcp/5432 lives in its own list p2
policy tight
cat >"$T_TMP/p2.yaml" <<EOF
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: p2, namespace: default}
spec:
  groups:
    web: {selector: {app: web}}
    db: {selector: {app: db}}
  allow:
    - {from: web, to: db, ports: [tcp/5432]}
EOF
t_check "list p2 (web -> db) applied" "$MSEG" apply -f "$T_TMP/p2.yaml"
stream s6 web 5432
t_check "web stream flows through p2" flowing s6
"$MSEG" delete policy default/p2 >/dev/null
t0=$(now)
t_check "deleting p2: web's stream stops within 1 s" stopped_within s6 "$t0" 1.0
t_check "api's stream keeps flowing" flowing s2
stream_stop s6

# ---- an endpoint's own address changes: connections it made or took on
# its old address lose the allows that named that address
policy full
stream s7 web 5432
t_check "web stream flows" flowing s7
"$MSEG" endpoint add web --netns "$(t_netns_path web)" --ip 10.201.0.9 --label app=web >/dev/null
t0=$(now)
t_check "web's address changes (.1 -> .9): its stream from .1 stops within 1 s" stopped_within s7 "$t0" 1.0
t_check "api's stream keeps flowing" flowing s2
stream_stop s7
"$MSEG" endpoint add web --netns "$(t_netns_path web)" --ip 10.201.0.1 --label app=web >/dev/null
stream s8 web 5432
t_check "web stream flows" flowing s8
"$MSEG" endpoint add db --netns "$(t_netns_path db)" --ip 10.201.0.8 --label app=db >/dev/null
t0=$(now)
t_check "db's address changes (.3 -> .8): web's stream to .3 stops within 1 s" stopped_within s8 "$t0" 1.0
stream_stop s8
"$MSEG" endpoint add db --netns "$(t_netns_path db)" --ip 10.201.0.3 --label app=db >/dev/null

# ---- db's address and labels change in one update: the stream an outside
# client (.7, no endpoint, so no table of its own to revoke in) opened to
# db's old address .3 loses its allow, db's own walk cuts it; the client's
# other stream, still allowed, keeps flowing on the old address
cat >"$T_TMP/p.yaml" <<EOF
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: p, namespace: default}
spec:
  groups:
    db: {selector: {app: db}}
    db-x: {selector: {tier: x}}
    office: {cidrs: [10.201.0.7/32]}
  allow:
    - {from: office, to: db-x, ports: [tcp/5432]}
    - {from: office, to: db, ports: [tcp/6000]}
EOF
t_check "list: the outside client reaches db tcp/5432 (tier x) and tcp/6000" "$MSEG" apply -f "$T_TMP/p.yaml"
"$MSEG" endpoint add db --netns "$(t_netns_path db)" --ip 10.201.0.3 --label app=db --label tier=x >/dev/null
stream o1 outside 5432
stream o2 outside 6000
t_check "outside -> db tcp/5432 stream flows" flowing o1
t_check "outside -> db tcp/6000 stream flows" flowing o2
mark=$(t_log_lines)
"$MSEG" endpoint add db --netns "$(t_netns_path db)" --ip 10.201.0.8 --label app=db --label tier=y >/dev/null
t0=$(now)
t_check "db re-addressed (.3 -> .8) and tier y: the tcp/5432 stream to .3 stops within 1 s" \
	stopped_within o1 "$t0" 1.0
t_check "the tcp/6000 stream (still allowed) keeps flowing" flowing o2
t_check "the log names db and a count" \
	t_wait_log "endpoint 'db': [1-9][0-9]* established connections revoked" "$mark"
stream_stop o1
stream_stop o2
"$MSEG" endpoint add db --netns "$(t_netns_path db)" --ip 10.201.0.3 --label app=db >/dev/null

# ---- a bad spec.revoke is refused with its place, and changes nothing
printf 'apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: p, namespace: default}\nspec:\n  revoke: never\n  groups: {db: {selector: {app: db}}}\n' >"$T_TMP/bad.yaml"
out=$("$MSEG" apply -f "$T_TMP/bad.yaml" 2>&1)
t_check "bad spec.revoke: error names line, column and the choices" \
	grep -q "bad.yaml:5:11: spec.revoke: unknown revoke 'never' (established or new-only)" <<<"$out"

# ---- msegd --revoke new-only: nothing is cut
t_msegd_stop
t_check "msegd --revoke new-only" start --revoke new-only
t_check "full policy again" policy full
stream s5 web 5432
t_check "web stream flows" flowing s5
policy tight
sleep 1.5
t_check "--revoke new-only: web's stream keeps flowing" flowing s5
t_check_not "--revoke new-only: a new web -> db connection is refused" t_tcp web 10.201.0.3 5432
t_check "--revoke new-only: nothing revoked" [ "$(metric_curl mseg_conntrack_revoked_total)" = 0 ]
stream_stop s5

out=$("$MSEGD" --revoke sometimes --state-dir "$T_TMP/x" 2>&1)
t_check "bad --revoke refused, naming the flag" \
	grep -q -- "--revoke 'sometimes': expected established or new-only" <<<"$out"
t_done
