#!/bin/bash
# Revocation asks the kernel how many conntrack entries a namespace has
# before walking its table: a namespace without any entry is not walked
# (mseg_conntrack_walks_skipped_total counts it, mseg_conntrack_walks_total
# does not move), and one with entries is walked as before: a connection
# that lost its allow is cut while another one, still allowed, keeps
# flowing in the same table.
#
# Real traffic: long-lived TCP streams, one line every 100 ms, from web
# (.1) and api (.2) to db (.3); the server in db notes when each stream's
# last line arrived.
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds python3 curl
. "$(dirname "$0")/../revoke_lib.sh"

t_endpoints web:1 api:2 db:3 || { t_fail "setup"; exit 1; }
export MSEG_SERVER="unix:$T_TMP/api.sock"

streams_serve 5432 6000 || { t_fail "stream server"; exit 1; }

metric() {
	curl -s --unix-socket "$T_TMP/api.sock" http://x/metrics | awk -v m="$1" '$1 == m {print $2}'
}
# ct_count NAME: the conntrack entries of endpoint NAME's namespace
ct_count() { ip netns exec "$(t_ns "$1")" cat /proc/sys/net/netfilter/nf_conntrack_count; }

t_msegd_start --resync 0
t_check "msegd up" t_wait_log "msegd ready"
for e in web:1 api:2 db:3; do
	"$MSEG" endpoint add "${e%%:*}" --netns "$(t_netns_path "${e%%:*}")" \
		--ip "10.201.0.${e##*:}" --label "app=${e%%:*}" >/dev/null
done
t_check "full policy applied" policy full

# ---- no connection yet: db's and web's conntrack tables are empty; the
# tightened policy takes allows from both, and neither is walked
both_empty() { [ "$(ct_count db)" = 0 ] && [ "$(ct_count web)" = 0 ]; }
t_check "db's and web's conntrack tables are empty" both_empty
walks0=$(metric mseg_conntrack_walks_total)
skipped0=$(metric mseg_conntrack_walks_skipped_total)
t_check "the metrics are there" [ -n "$walks0" -a -n "$skipped0" ]
t_check "tightened policy applied" policy tight
echo "    walks $walks0 -> $(metric mseg_conntrack_walks_total)," \
	"skipped $skipped0 -> $(metric mseg_conntrack_walks_skipped_total)"
t_check "empty tables: no walk" [ "$(metric mseg_conntrack_walks_total)" = "$walks0" ]
t_check "empty tables: db's and web's walks skipped" \
	[ "$(metric mseg_conntrack_walks_skipped_total)" = "$((skipped0 + 2))" ]
t_check_not "a new web -> db connection is refused" t_tcp web 10.201.0.3 5432

# ---- with connections: db's table holds web's stream and api's; the
# tightened policy cuts web's and leaves api's running
t_check "full policy again" policy full
stream s1 web 5432
stream s2 api 6000
t_check "web -> db stream flows" flowing s1
t_check "api -> db stream flows" flowing s2
t_check "db's conntrack table has entries" [ "$(ct_count db)" -ge 2 ]
walks0=$(metric mseg_conntrack_walks_total)
skipped0=$(metric mseg_conntrack_walks_skipped_total)
revoked0=$(metric mseg_conntrack_revoked_total)
mark=$(t_log_lines)
policy tight
t0=$(now)
t_check "tightened policy: web's established stream stops within 1 s" stopped_within s1 "$t0" 1.0
t_check "api's stream (still allowed, same table) keeps flowing" flowing s2
t_check "the log names db and a count" \
	t_wait_log "endpoint 'db': [1-9][0-9]* established connections revoked" "$mark"
echo "    walks $walks0 -> $(metric mseg_conntrack_walks_total)," \
	"skipped $skipped0 -> $(metric mseg_conntrack_walks_skipped_total)"
t_check "tables with entries are walked (db's and web's)" \
	[ "$(metric mseg_conntrack_walks_total)" = "$((walks0 + 2))" ]
t_check "nothing skipped this time" \
	[ "$(metric mseg_conntrack_walks_skipped_total)" = "$skipped0" ]
t_check "mseg_conntrack_revoked_total counts the cut" \
	[ "$(metric mseg_conntrack_revoked_total)" -gt "$revoked0" ]
t_check "msegd stops cleanly" t_msegd_stop
t_done
