#!/bin/bash
# Membership changes are set element updates only: the table (and its
# chains) keep their kernel handles when an endpoint appears, changes its
# address or goes away; a structural change (isolation) replaces the table
# atomically. An endpoint's table disappears with the endpoint.
. "$(dirname "$0")/../lib.sh"
t_require_root

t_endpoints web:1 api:2 db:3 web2:4 || { t_fail "setup"; exit 1; }
t_pair_policy web db 5432
write_inventory() { # extra lines...
	{
		echo "endpoints:"
		echo "  - {id: web, labels: {app: web}, netns: $(t_netns_path web), ips: [10.201.0.1]}"
		echo "  - {id: db, labels: {app: db}, netns: $(t_netns_path db), ips: [10.201.0.3]}"
		for l in "$@"; do echo "  $l"; done
	} >"$T_TMP/endpoints.yaml.tmp"
	mv "$T_TMP/endpoints.yaml.tmp" "$T_TMP/endpoints.yaml"
}
handles() { # the kernel handles of db's table and chains
	t_nft db -a list table inet mseg 2>/dev/null | grep -E '^(table|\s+chain) ' | tr -d '\n'
}
in_set() { # ADDR: is ADDR an element of db's in4_port set?
	t_nft db list set inet mseg in4_port 2>/dev/null | grep -q "$1 . tcp . 5432"
}
write_inventory
t_tcp_server db 5432
t_wait_port db 5432

t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 0 --log-level debug
t_check "msegd ready" t_wait_log "msegd ready"
t_check "web allowed" t_tcp web 10.201.0.3 5432
t_check_not "web2 (not yet an endpoint) refused" t_tcp web2 10.201.0.3 5432
h0=$(handles)
t_check "db has a table" [ -n "$h0" ]

# an endpoint appears: web2 gets in, through element adds only
mark=$(t_log_lines)
write_inventory "- {id: web2, labels: {app: web}, netns: $(t_netns_path web2), ips: [10.201.0.4]}"
t_check "reload after inventory change" t_wait_log "loaded 1 policies, 3 endpoints" "$mark"
t_check "web2's address is now a set element in db" in_set 10.201.0.4
t_check "web2 allowed" t_tcp web2 10.201.0.3 5432
t_check "db's table and chains kept their handles (element update, no replace)" [ "$(handles)" = "$h0" ]
t_check "the log says element update for db" t_wait_log "endpoint 'db': update \+1 -0" "$mark"

# an address changes: one delete, one add
mark=$(t_log_lines)
ip -n "$(t_ns web2)" addr add 10.201.0.5/24 dev eth0
write_inventory "- {id: web2, labels: {app: web}, netns: $(t_netns_path web2), ips: [10.201.0.5]}"
t_check "reload after address change" t_wait_log "loaded 1 policies, 3 endpoints" "$mark"
t_check "db's set follows the address" in_set 10.201.0.5
t_check_not "the old address is gone from the set" in_set 10.201.0.4
t_check "db's table kept its handles" [ "$(handles)" = "$h0" ]
t_check "the log says +1 -1 for db" t_wait_log "endpoint 'db': update \+1 -1" "$mark"

# the endpoint goes away: its own table disappears, db loses the element
mark=$(t_log_lines)
write_inventory
t_check "reload after removal" t_wait_log "loaded 1 policies, 2 endpoints" "$mark"
t_check_not "web2's namespace has no mseg table any more" t_nft web2 list table inet mseg
t_check_not "db's set no longer has web2" in_set 10.201.0.5
t_check "db's table kept its handles" [ "$(handles)" = "$h0" ]

# a structural change (isolation ingress only) replaces db's table atomically
mark=$(t_log_lines)
sed -i 's/^spec:/spec:\n  isolation: ingress/' "$T_TMP/policies/p.yaml"
t_check "reload after isolation change" t_wait_log "loaded 1 policies" "$mark"
t_check "the log says replace for db" t_wait_log "endpoint 'db': replace" "$mark"
t_check "db's table was replaced (new handles)" [ "$(handles)" != "$h0" ]
t_check_not "db has no egress chain any more" t_nft db list chain inet mseg egress
t_check "web still allowed" t_tcp web 10.201.0.3 5432
t_done
