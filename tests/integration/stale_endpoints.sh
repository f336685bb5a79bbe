#!/bin/bash
# A stale endpoint never lends its address's access to another, and a
# namespace that is gone is noticed:
# - two endpoints claim one address (a CNI DEL that never reached msegd,
#   then IPAM gives the address to a new pod): the newer registration has
#   it, the older loses it (logged), so the new pod does not inherit the
#   old pod's access;
# - `ip netns del` of a registered endpoint: at the next resync msegd
#   removes the API endpoint, closes its sockets (the namespace is freed:
#   its veth leaves the bridge), and a file endpoint is reported as not
#   enforced;
# - at start, an API endpoint whose netns is gone is removed.
. "$(dirname "$0")/../lib.sh"
t_require_root
SOCK="$T_TMP/api.sock"

t_endpoints client:2 db:3 newpod:5 gone:6 filegone:7 || { t_fail "setup"; t_done; exit 1; }
t_tcp_server db 5432
t_wait_port db 5432
t_pair_policy client db 5432
cat >"$T_TMP/endpoints.yaml" <<EOF2
endpoints:
  - {id: filegone, labels: {app: x}, netns: $(t_netns_path filegone), ips: [10.201.0.7]}
EOF2
t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 1
t_check "msegd ready" t_wait_log "msegd ready"
put() { curl -s -m 10 -o "$T_TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X PUT "http://x/v1/endpoints/$1" -d "$2"; }
get_code() { curl -s -o "$T_TMP/body" -w '%{http_code}' --unix-socket "$SOCK" "http://x/v1/endpoints/$1"; }

t_check "db registered" [ "$(put db "{\"labels\": {\"app\": \"db\"}, \"netns\": \"$(t_netns_path db)\", \"ips\": [\"10.201.0.3\"]}")" = 201 ]
# the old pod: app=client at 10.201.0.5, its netns long gone (stands for a
# pod whose CNI DEL never reached msegd) -- registered with client's netns
t_check "old pod registered (app=client, 10.201.0.5)" \
	[ "$(put oldpod "{\"labels\": {\"app\": \"client\"}, \"netns\": \"$(t_netns_path client)\", \"ips\": [\"10.201.0.5\"]}")" = 201 ]
sleep 0.2
t_check "the address of the old pod is in db's allow set" bash -c "ip netns exec $(t_ns db) nft list table inet mseg 2>/dev/null | grep -q 10.201.0.5"
# IPAM gives 10.201.0.5 to a new pod with other labels
mark=$(t_log_lines)
t_check "new pod registered (app=other, 10.201.0.5)" \
	[ "$(put newpod "{\"labels\": {\"app\": \"other\"}, \"netns\": \"$(t_netns_path newpod)\", \"ips\": [\"10.201.0.5\"]}")" = 201 ]
t_check "the conflict is logged, the newer registration has the address" \
	t_wait_log "address 10.201.0.5 is claimed by endpoints 'newpod' and 'oldpod': the newer registration, 'newpod', has it; 'oldpod' lost it" "$mark"
t_check "db's allow set no longer has 10.201.0.5" bash -c "! ip netns exec $(t_ns db) nft list table inet mseg 2>/dev/null | grep -q 10.201.0.5"
t_check_not "the new pod does not inherit the old pod's access to db" t_tcp newpod 10.201.0.3 5432

# one endpoint per network namespace, whatever path names it
t_check "another endpoint on db's netns path: 409" [ "$(put twin "{\"netns\": \"$(t_netns_path db)\", \"ips\": [\"10.201.0.30\"]}")" = 409 ]
t_check "409 names the owner" grep -q "is the namespace of endpoint 'db' already" "$T_TMP/body"
dbpid=$(ip netns pids "$(t_ns db)" | head -1)
t_check "the same namespace through /proc/PID/ns/net: 409" [ "$(put twin "{\"netns\": \"/proc/$dbpid/ns/net\", \"ips\": [\"10.201.0.30\"]}")" = 409 ]
t_check "db itself may be re-put with its netns" [ "$(put db "{\"labels\": {\"app\": \"db\"}, \"netns\": \"/proc/$dbpid/ns/net\", \"ips\": [\"10.201.0.3\"]}")" = 200 ]
put db "{\"labels\": {\"app\": \"db\"}, \"netns\": \"$(t_netns_path db)\", \"ips\": [\"10.201.0.3\"]}" >/dev/null

# a netns path that is a FIFO (or anything but a namespace) is refused
# without blocking msegd's loop on open()
mkfifo "$T_TMP/fifo"
t_check "an endpoint whose netns is a FIFO is stored" [ "$(put fifo "{\"netns\": \"$T_TMP/fifo\", \"ips\": [\"10.201.0.40\"]}")" = 201 ]
t_check "and reported not programmed, as not a network namespace" \
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["programmed"] is False and "Invalid argument" in json.dumps(d["errors"]) else 1)' "$T_TMP/body"
t_check "msegd still answers at once" bash -c "[ \"\$(curl -s -m 2 -o /dev/null -w '%{http_code}' --unix-socket '$SOCK' http://x/healthz)\" = 200 ]"
curl -s -o /dev/null --unix-socket "$SOCK" -X DELETE http://x/v1/endpoints/fifo

# ip netns del of an API endpoint: removed at the next resync, namespace freed
t_check "endpoint gone registered" [ "$(put gone "{\"labels\": {\"app\": \"client\"}, \"netns\": \"$(t_netns_path gone)\", \"ips\": [\"10.201.0.6\"]}")" = 201 ]
t_check "its veth is on the bridge" bash -c "ip -n $T_HUB link show v6 >/dev/null"
mark=$(t_log_lines)
ip netns del "$(t_ns gone)"
t_check "msegd says the netns is gone and removes the endpoint" \
	t_wait_log "endpoint 'gone': its netns '$(t_netns_path gone)' is gone; endpoint removed" "$mark"
t_check "GET of the endpoint: 404" [ "$(get_code gone)" = 404 ]
gone_freed() { for i in $(seq 1 30); do ip -n "$T_HUB" link show v6 >/dev/null 2>&1 || return 0; sleep 0.1; done; return 1; }
t_check "msegd let go of the namespace: its veth left the bridge" gone_freed
t_check "the store no longer has it (a restart will not bring it back)" [ ! -e "$T_TMP/state/endpoints/gone" ]

# a file endpoint whose netns is deleted: reported, not enforced
mark=$(t_log_lines)
ip netns del "$(t_ns filegone)"
t_check "file endpoint: reported as not enforced" \
	t_wait_log "endpoint 'filegone': its netns '$(t_netns_path filegone)' is gone; not enforced until it comes back" "$mark"
get_code filegone >/dev/null
t_check "GET shows it not programmed, with the reason" \
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["programmed"] is False and "is gone" in d["error"] else 1)' "$T_TMP/body"
freed() { for i in $(seq 1 30); do ip -n "$T_HUB" link show v7 >/dev/null 2>&1 || return 0; sleep 0.1; done; return 1; }
t_check "its namespace is freed too" freed

# at start: an API endpoint whose netns is gone is removed
t_msegd_stop
mkdir -p "$T_TMP/state/endpoints"
echo '{"labels": {"app": "client"}, "netns": "/run/netns/'"$T_PREFIX"'-never", "ips": ["10.201.0.8"]}' >"$T_TMP/state/endpoints/stale"
mark=$(t_log_lines)
t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 1
t_check "restart: ready" t_wait_log "msegd ready" "$mark"
t_check "restart: the stored endpoint with a missing netns is removed" \
	t_wait_log "endpoint 'stale': its netns '/run/netns/$T_PREFIX-never' is gone; endpoint removed" "$mark"
t_check "restart: the conflict is still resolved the same way" \
	bash -c "! ip netns exec $(t_ns db) nft list table inet mseg 2>/dev/null | grep -q 10.201.0.5"
t_check_not "restart: the new pod still cannot reach db" t_tcp newpod 10.201.0.3 5432
t_done
