#!/bin/bash
# Egress to a Service's ClusterIP: a pod's packet leaves its namespace with
# the VIP as destination, and the node translates it to a backend later
# (kube-proxy's DNAT). msegd watches Services and EndpointSlices in the API
# stand-in and admits VIP:port wherever egress to a ready backend's
# address and target port is admitted. The "node" is the hub namespace:
# it routes the pods' VIP range (10.96.0.0/16, routed only inside this
# test's namespaces) and DNATs each VIP:port to the backend as kube-proxy
# does, with masquerade for the hairpin (pods share one bridge). The pods
# are registered as mseg-cni does, their labels come from the Pod
# objects. A NetworkPolicy lets client reach db:5432 only. When the
# EndpointSlice leads elsewhere, new connections to the VIP are refused and
# an established one through it is revoked (msegd's default --revoke).
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds node npm curl jq socat nft
. "$MSEG_ROOT/tests/kube/standin.sh"

t_endpoints client:2 db:3 other:4 || { t_fail "setup"; exit 1; }
ip -n "$T_HUB" addr add 10.201.0.254/24 dev br0
ip netns exec "$T_HUB" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$T_HUB" sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.br0.send_redirects=0
for n in client db other; do
	ip -n "$(t_ns "$n")" route add 10.96.0.0/16 via 10.201.0.254
done
t_tcp_server db 5432
t_tcp_server other 5432
t_wait_port db 5432
t_wait_port other 5432
# kube_proxy: the node's nat table, VIP:port -> backend:port for each pair
kube_proxy() { # VIP:PORT=BACKEND:PORT...
	local m front rules=
	for m in "$@"; do
		front=${m%%=*}
		rules+="ip daddr ${front%%:*} tcp dport ${front#*:} dnat to ${m#*=}; "
	done
	ip netns exec "$T_HUB" nft -f - <<EOF
table ip kubeproxy
delete table ip kubeproxy
table ip kubeproxy {
	chain prerouting {
		type nat hook prerouting priority dstnat;
		$rules
	}
	chain postrouting {
		type nat hook postrouting priority srcnat;
		ct status dnat masquerade
	}
}
EOF
}
# kube_svc NAME VIP PORT TARGET: a Service with one named port "pg"
kube_svc() {
	printf '{"apiVersion":"v1","kind":"Service","metadata":{"name":"%s","namespace":"shop"},"spec":{"clusterIP":"%s","clusterIPs":["%s"],"ports":[{"name":"pg","port":%s,"targetPort":%s,"protocol":"TCP"}]}}' \
		"$1" "$2" "$2" "$3" "$4"
}
# kube_slice NAME SERVICE ADDR READY PORT: an EndpointSlice with one endpoint
kube_slice() {
	printf '{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"%s","namespace":"shop","labels":{"kubernetes.io/service-name":"%s"}},"addressType":"IPv4","endpoints":[{"addresses":["%s"],"conditions":{"ready":%s}}],"ports":[{"name":"pg","port":%s,"protocol":"TCP"}]}' \
		"$1" "$2" "$3" "$4" "$5"
}
not() { ! "$@"; }
metric() { mseg_api /metrics | awk -v m="$1" '$1 == m {print $2}'; }
client_nft() { t_nft_rules client; }
vip_in_set() { client_nft | grep -q "10.96.0.10 . tcp . 80"; }
kube_routes_are() { [ "$(mseg_api /v1/status | jq '.kubernetes.service_routes')" = "$1" ]; }

t_check "stand-in starts" kube_standin_start
t_check "stand-in refuses an invalid EndpointSlice (422)" \
	bash -c "! curl -s http://127.0.0.1:$PORT/_objects -d '{\"object\":{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"x\"},\"endpoints\":[]}}' | grep -q '\"objects\"'"
kube_apply '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}'
kube_apply "$(kube_node n1 Hostname=n1)"
kube_apply "$(kube_pod client-0 shop n1 10.201.0.2 '{"app":"client"}')"
kube_apply "$(kube_pod db-0 shop n1 10.201.0.3 '{"app":"db"}')"
kube_apply "$(kube_pod other-0 shop n1 10.201.0.4 '{"app":"other"}')"
t_check "NetworkPolicy: client's egress only to db:5432" kube_apply '{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"client","namespace":"shop"},"spec":{"podSelector":{"matchLabels":{"app":"client"}},"policyTypes":["Egress"],"egress":[{"to":[{"podSelector":{"matchLabels":{"app":"db"}}}],"ports":[{"protocol":"TCP","port":5432}]}]}}'
t_check "Service db (10.96.0.10:80 -> pg)" kube_apply "$(kube_svc db 10.96.0.10 80 5432)"
t_check "Service other (10.96.0.11:80 -> pg)" kube_apply "$(kube_svc other 10.96.0.11 80 5432)"
t_check "db's EndpointSlice: db-0 not ready yet" kube_apply "$(kube_slice db-1 db 10.201.0.3 false 5432)"
t_check "other's EndpointSlice: other-0 ready" kube_apply "$(kube_slice other-1 other 10.201.0.4 true 5432)"
kube_proxy 10.96.0.10:80=10.201.0.3:5432 10.96.0.11:80=10.201.0.4:5432 ||
	{ t_fail "the node's DNAT"; exit 1; }
kube_kubeconfig

t_msegd_start --kubeconfig "$K/kubeconfig" --node-name n1 --resync 0
t_check "msegd ready" t_wait_log "msegd ready"
for e in client:2 db:3 other:4; do
	n=${e%%:*}
	t_check "$n registered" \
		[ "$(kube_register "c-$n" "$n-0" shop "10.201.0.${e##*:}" "$(t_netns_path "$n")")" = 201 ]
done
t_check "client isolated: client -> other:5432 refused" eventually not t_tcp client 10.201.0.4 5432
t_check "client -> db:5432 allowed (pod address)" t_tcp client 10.201.0.3 5432
t_check "the node's DNAT works (db -> other's VIP, db not isolated)" t_tcp db 10.96.0.11 80
t_check_not "client -> db's VIP refused while its backend is not ready" t_tcp client 10.96.0.10 80
t_check_not "... and not in client's egress set" vip_in_set

replaces0=$(metric 'mseg_batches_total{kind="replace"}')
t_check "db-0 becomes ready in the EndpointSlice" kube_apply "$(kube_slice db-1 db 10.201.0.3 true 5432)"
t_check "client -> 10.96.0.10:80 (db's VIP) allowed" eventually t_tcp client 10.96.0.10 80
t_check "the VIP is in client's egress set" vip_in_set
t_check_not "client -> 10.96.0.11:80 (other's VIP) refused" t_tcp client 10.96.0.11 80
curl -s --max-time 5 --unix-socket "$T_TMP/api.sock" -X POST -H 'Content-Type: application/json' \
	-d '{"from":"c-client","to":"10.96.0.10","port":"tcp/80"}' http://mseg/v1/check >"$T_TMP/check"
t_check "POST /v1/check: c-client -> 10.96.0.10 tcp/80 allowed by the NetworkPolicy" \
	jq -e '.allowed == true and .egress.policy == "shop/client"' "$T_TMP/check" >/dev/null
mseg_api /v1/status >"$T_TMP/status"
t_check "status: 2 service routes; 2 services and 2 slices held" \
	jq -e '.kubernetes.service_routes == 2 and
		([.kubernetes.resources[] | select(.resource == "services" or .resource == "endpointslices") | .objects] == [2, 2])' \
	"$T_TMP/status" >/dev/null
t_check "metrics: mseg_service_routes 2, mseg_kube_objects for services" \
	bash -c "[ \"\$(curl -s --unix-socket '$T_TMP/api.sock' http://mseg/metrics | awk '\$1 == \"mseg_service_routes\" || \$1 == \"mseg_kube_objects{resource=\\\"services\\\"}\" {print \$2}' | tr '\n' ' ')\" = '2 2 ' ]"

# db's backend replaced by other-0 (kube-proxy follows): the VIP path closes,
# for new connections (a probe) and for an established one (a stream of
# lines through the VIP, echoed by db)
( while :; do t_tcp client 10.96.0.10 80 && echo ok || echo no; sleep 0.2; done ) >"$T_TMP/probe" 2>/dev/null &
PROBE=$!
T_PIDS+=("$PROBE")
t_bg "$(t_ns client)" bash -c "while sleep 0.1; do echo line; done |
	socat -T30 - TCP:10.96.0.10:80 >'$T_TMP/stream'"
stream_size() { stat -c %s "$T_TMP/stream" 2>/dev/null || echo 0; }
grows() { local a; a=$(stream_size); sleep 0.5; [ "$(stream_size)" -gt "$a" ]; }
t_check "an established stream through db's VIP flows" eventually grows
mark=$(t_log_lines)
t_check "db's EndpointSlice now leads to other-0" kube_apply "$(kube_slice db-1 db 10.201.0.4 true 5432)"
kube_proxy 10.96.0.10:80=10.201.0.4:5432 10.96.0.11:80=10.201.0.4:5432
t_check "client -> db's VIP refused (its backend is not allowed)" eventually not vip_in_set
t_check_not "... with real traffic" t_tcp client 10.96.0.10 80
t_check "the established stream through the VIP is revoked (logged)" \
	t_wait_log "endpoint 'c-client': [1-9][0-9]* established connections revoked" "$mark"
t_check_not "... and no longer flows" grows
t_check "the running probe saw it open, then closed" \
	eventually bash -c "grep -q ok '$T_TMP/probe' && tail -n 2 '$T_TMP/probe' | grep -qv ok"
kill "$PROBE" 2>/dev/null; wait "$PROBE" 2>/dev/null
t_check "client -> db:5432 (pod address) still allowed" t_tcp client 10.201.0.3 5432
t_check "only element updates, no table replace" \
	[ "$(metric 'mseg_batches_total{kind="replace"}')" = "$replaces0" ]

t_check "back to db-0" kube_apply "$(kube_slice db-1 db 10.201.0.3 true 5432)"
kube_proxy 10.96.0.10:80=10.201.0.3:5432 10.96.0.11:80=10.201.0.4:5432
t_check "client -> db's VIP allowed again" eventually t_tcp client 10.96.0.10 80
# a LoadBalancer's ingress address: kube-proxy translates it on the node as
# it does the ClusterIP (ipMode VIP, the default), so it is a VIP too; with
# ipMode Proxy the balancer forwards, and the node does not translate it
kube_proxy 10.96.0.10:80=10.201.0.3:5432 10.96.0.11:80=10.201.0.4:5432 10.96.9.9:80=10.201.0.3:5432
kube_lb() { # MODE: Service db, type LoadBalancer, ingress 10.96.9.9 (MODE "" = no ipMode)
	local m=
	[ -n "$1" ] && m=",\"ipMode\":\"$1\""
	printf '{"apiVersion":"v1","kind":"Service","metadata":{"name":"db","namespace":"shop"},"spec":{"type":"LoadBalancer","clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10"],"ports":[{"name":"pg","port":80,"targetPort":5432,"protocol":"TCP"}]},"status":{"loadBalancer":{"ingress":[{"ip":"10.96.9.9"%s},{"hostname":"lb.example.com"}]}}}' "$m"
}
t_check_not "client -> 10.96.9.9:80 refused before it is db's balancer address" t_tcp client 10.96.9.9 80
t_check "Service db becomes a LoadBalancer with ingress 10.96.9.9" kube_apply "$(kube_lb "")"
t_check "client -> 10.96.9.9:80 (the balancer's address) allowed" eventually t_tcp client 10.96.9.9 80
t_check "status: 3 service routes" eventually kube_routes_are 3
t_check "ipMode Proxy: the balancer forwards" kube_apply "$(kube_lb Proxy)"
t_check "client -> 10.96.9.9:80 refused (not a VIP any more)" eventually not t_tcp client 10.96.9.9 80
t_check "client -> db's ClusterIP still allowed" t_tcp client 10.96.0.10 80
t_check "Service db deleted" kube_delete "$(kube_svc db 10.96.0.10 80 5432)"
t_check "client -> db's VIP refused (the node still translates it)" eventually not t_tcp client 10.96.0.10 80
t_check "msegd exits cleanly on SIGTERM (sanitizers: no leak)" t_msegd_stop
t_done
