#!/bin/bash
# This node's addresses from its Node object: msegd (no --node-addr)
# watches its own Node in the API stand-in and never isolates traffic
# between its pods and the node's InternalIP/ExternalIP addresses. The
# "node" is the hub namespace (addresses on the bridge). Under a
# default-deny NetworkPolicy the node reaches the pod and another pod does
# not; another Node's address gets nothing; changing the Node's address in
# the stand-in moves the exemption (an element update, no table replace).
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds node npm curl jq socat
. "$MSEG_ROOT/tests/kube/standin.sh"

t_endpoints client:2 db:3 || { t_fail "setup"; exit 1; }
ip -n "$T_HUB" addr add 10.201.0.254/24 dev br0
ip -n "$T_HUB" addr add 10.201.0.253/24 dev br0
t_tcp_server db 5432
t_wait_port db 5432
# hub_tcp SRC ADDR PORT: a TCP echo round trip from the node's address SRC
hub_tcp() {
	[ "$(echo "n-$$" | timeout 3 ip netns exec "$T_HUB" \
		socat -T1 - "TCP:$2:$3,bind=$1,connect-timeout=1" 2>/dev/null)" = "n-$$" ]
}
not() { ! "$@"; }
metric() { mseg_api /metrics | awk -v m="$1" '$1 == m {print $2}'; }

t_check "stand-in starts" kube_standin_start
t_check "stand-in refuses a field selector it does not support (400)" \
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/v1/nodes?fieldSelector=spec.unschedulable%3Dtrue")" = 400 ]
t_check "stand-in refuses an invalid Node (422)" \
	bash -c "! curl -s http://127.0.0.1:$PORT/_objects -d '{\"object\":{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"x\"},\"status\":{\"addresses\":[{\"type\":3}]}}}' | grep -q '\"objects\"'"
kube_apply '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}'
t_check "Node n1 (this node) with its InternalIP and a Hostname" \
	kube_apply "$(kube_node n1 InternalIP=10.201.0.254 Hostname=n1 InternalIP=fd00:201::fe)"
t_check "Node n2 (another node)" kube_apply "$(kube_node n2 InternalIP=10.201.0.253)"
t_check "only this node's Node through the field selector" \
	bash -c "kc() { curl -s http://127.0.0.1:$PORT\$1; }; kc '/api/v1/nodes?fieldSelector=metadata.name%3Dn1' | jq -e '.items | length == 1 and .[0].metadata.name == \"n1\"' >/dev/null"
kube_apply "$(kube_pod db-0 shop n1 10.201.0.3 '{"app":"db"}')"
kube_apply "$(kube_pod client-0 shop n1 10.201.0.2 '{"app":"client"}')"
t_check "a default-deny NetworkPolicy for db" kube_apply '{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"deny","namespace":"shop"},"spec":{"podSelector":{"matchLabels":{"app":"db"}},"policyTypes":["Ingress","Egress"]}}'
kube_kubeconfig

t_msegd_start --kubeconfig "$K/kubeconfig" --node-name n1 --resync 0
t_check "msegd ready" t_wait_log "msegd ready"
t_check "db registered" [ "$(kube_register c-db db-0 shop 10.201.0.3 "$(t_netns_path db)")" = 201 ]
t_check "client registered" \
	[ "$(kube_register c-client client-0 shop 10.201.0.2 "$(t_netns_path client)")" = 201 ]
t_check "the node's addresses come from the Node object (logged)" \
	t_wait_log "node 'n1': addresses never isolated: 10.201.0.254, fd00:201::fe"
t_check "db isolated: client -> db refused" eventually not t_tcp client 10.201.0.3 5432
t_check "the node (10.201.0.254) reaches the pod under default deny" hub_tcp 10.201.0.254 10.201.0.3 5432
t_check_not "another pod does not" t_tcp client 10.201.0.3 5432
t_check_not "another node's address (10.201.0.253) does not" hub_tcp 10.201.0.253 10.201.0.3 5432
t_bg "$T_HUB" socat -T5 TCP-LISTEN:10250,fork,reuseaddr EXEC:/bin/cat
for i in $(seq 1 30); do ip netns exec "$T_HUB" ss -Hltn "sport = :10250" | grep -q . && break; sleep 0.1; done
t_check "the pod reaches the node (egress isolated too)" t_tcp db 10.201.0.254 10250
mseg_api /v1/status >"$T_TMP/status"
t_check "status: node addresses, and the nodes watch holds one object" \
	jq -e '.kubernetes.node_addresses == ["10.201.0.254", "fd00:201::fe"] and
		(.kubernetes.resources[] | select(.resource == "nodes") | .objects == 1 and .synced)' \
	"$T_TMP/status" >/dev/null
t_check "metrics: mseg_kube_objects for nodes" [ "$(metric 'mseg_kube_objects{resource="nodes"}')" = 1 ]

# the Node's address changes: the exemption moves with it
replaces0=$(metric 'mseg_batches_total{kind="replace"}')
updates0=$(metric 'mseg_batches_total{kind="update"}')
t_check "Node n1 now has 10.201.0.253" kube_apply "$(kube_node n1 InternalIP=10.201.0.253 Hostname=n1)"
t_check "the new address reaches the pod" eventually hub_tcp 10.201.0.253 10.201.0.3 5432
t_check_not "the old one no longer does" hub_tcp 10.201.0.254 10.201.0.3 5432
t_check_not "another pod still does not" t_tcp client 10.201.0.3 5432
replaces=$(metric 'mseg_batches_total{kind="replace"}')
updates=$(metric 'mseg_batches_total{kind="update"}')
t_check "an element update, no table replace" \
	test "$replaces" = "$replaces0" -a "$updates" -gt "$updates0"
holds_new_not_old() {
	t_nft_rules db >"$T_TMP/nft" && grep -q 10.201.0.253 "$T_TMP/nft" &&
		! grep -q 10.201.0.254 "$T_TMP/nft"
}
t_check "the allow sets hold the new address, not the old" holds_new_not_old

# --node-addr always applies, next to the Node's addresses
t_msegd_stop
t_msegd_start --kubeconfig "$K/kubeconfig" --node-name n1 --resync 0 --node-addr 10.201.0.254
t_check "msegd restarted with --node-addr 10.201.0.254" t_wait_log "addresses never isolated: 10.201.0.254, 10.201.0.253"
t_check "the flag's address reaches the pod" eventually hub_tcp 10.201.0.254 10.201.0.3 5432
t_check "and the Node's" hub_tcp 10.201.0.253 10.201.0.3 5432
t_check "Node n1 deleted: only the flag's address is left" kube_delete "$(kube_node n1)"
t_check "the Node's address no longer reaches the pod" eventually not hub_tcp 10.201.0.253 10.201.0.3 5432
t_check "the flag's still does" hub_tcp 10.201.0.254 10.201.0.3 5432
t_check "msegd exits cleanly on SIGTERM (sanitizers: no leak)" t_msegd_stop
t_done
