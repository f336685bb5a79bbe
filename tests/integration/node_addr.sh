#!/bin/bash
# Traffic to and from the pod's own node is never isolated (Kubernetes
# NetworkPolicy: kubelet's probes come from the node): with --node-addr,
# a default-deny NetworkPolicy still lets the node reach the pod and the
# pod reach the node, and nobody else.
. "$(dirname "$0")/../lib.sh"
t_require_root

t_endpoints client:2 db:3 || { t_fail "setup"; t_done; exit 1; }
# the "node": the hub namespace, with an address on the bridge
ip -n "$T_HUB" addr add 10.201.0.254/24 dev br0
t_tcp_server db 5432
t_wait_port db 5432
mkdir -p "$T_TMP/policies"
cat >"$T_TMP/policies/deny.yaml" <<'EOF2'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: default}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress, Egress]
EOF2
cat >"$T_TMP/endpoints.yaml" <<EOF2
endpoints:
  - {id: db, labels: {app: db}, netns: $(t_netns_path db), ips: [10.201.0.3]}
  - {id: client, labels: {app: client}, netns: $(t_netns_path client), ips: [10.201.0.2]}
EOF2
t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" \
	--node-addr 10.201.0.254 --node-addr fd00:201::fe
t_check "msegd ready" t_wait_log "msegd ready"
hub_tcp() { [ "$(echo "n-$$" | timeout 3 ip netns exec "$T_HUB" socat -T1 - "TCP:$1:$2,connect-timeout=1" 2>/dev/null)" = "n-$$" ]; }
t_check "the node reaches the pod under default deny" hub_tcp 10.201.0.3 5432
t_check_not "another pod does not" t_tcp client 10.201.0.3 5432
t_bg "$T_HUB" socat -T5 TCP-LISTEN:10250,fork,reuseaddr EXEC:/bin/cat
for i in $(seq 1 30); do ip netns exec "$T_HUB" ss -Hltn "sport = :10250" | grep -q . && break; sleep 0.1; done
t_check "the pod reaches the node (egress isolated too)" t_tcp db 10.201.0.254 10250
t_check "the node's addresses are in the allow sets" bash -c \
	"ip netns exec $(t_ns db) nft list table inet mseg 2>/dev/null | grep -q 10.201.0.254"
t_done
