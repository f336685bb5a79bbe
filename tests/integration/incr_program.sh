#!/bin/bash
# Incremental programming ends where a fresh full program ends: msegd takes
# 60 random changes through the REST API (endpoint labels, addresses and
# named ports, namespace labels, AllowLists and NetworkPolicies put and
# deleted) for 8 endpoints in network namespaces of their own, each change
# programmed as element updates (or a replace when the structure changes).
# Then every table is read back (in sync with the desired state) and listed;
# msegd stops, the tables are deleted, and a new msegd programs the same
# state from scratch: `nft list table inet mseg` must be the same in every
# namespace (set elements compared as sets: a hash set lists in insertion
# order). No traffic: nothing leaves the namespaces this test creates.
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds curl nft python3

N=8
STEPS=60
SOCK="$T_TMP/api.sock"
RANDOM=${INCR_SEED:-4242}
echo "# seed ${INCR_SEED:-4242}"
# api ARGS...: the HTTP status in $c (no subshell around the callers:
# $RANDOM stays one reproducible sequence, and they keep their state)
api() { c=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "$@"); }
get() { curl -s --unix-socket "$SOCK" "$@"; }

for i in $(seq 1 $N); do
	ip netns add "${T_PREFIX}-e$i" || exit 1
	T_NS+=("${T_PREFIX}-e$i")
done

# the listing with every `elements = { ... }` sorted
nft_norm() { # endpoint-number
	ip netns exec "${T_PREFIX}-e$1" nft list table inet mseg 2>/dev/null | python3 -c '
import re, sys
t = sys.stdin.read()
def norm(m):
    els = sorted(e.strip() for e in m.group(1).split(",") if e.strip())
    return "elements = {\n" + "\n".join(els) + "\n}"
sys.stdout.write(re.sub(r"elements = \{(.*?)\}", norm, t, flags=re.S))'
}

apps=(a b c d)
put_endpoint() { # i
	local i=$1 labels ips ports=""
	labels="\"app\": \"${apps[RANDOM % 4]}\""
	[ $((RANDOM % 2)) = 0 ] && labels="$labels, \"tier\": \"t$((RANDOM % 2))\""
	ips="\"10.201.$((RANDOM % 3)).$((10 + RANDOM % 20))\""
	[ $((RANDOM % 2)) = 0 ] && ips="$ips, \"fd00:201::$((RANDOM % 40 + 1))\""
	[ $((RANDOM % 3)) != 0 ] &&
		ports=", \"ports\": [{\"name\": \"http\", \"port\": $((8080 + RANDOM % 2)), \"protocol\": \"TCP\"}]"
	api -X PUT "http://l/v1/endpoints/e$i" -d "{\"namespace\": \"ns$((i % 2))\", \"labels\": {$labels}, \"netns\": \"/run/netns/${T_PREFIX}-e$i\", \"ips\": [$ips]$ports}"
}
put_namespace() { # k
	api -X PUT "http://l/v1/namespaces/ns$1" -d "{\"labels\": {\"team\": \"t$((RANDOM % 2))\"}}"
}
policy_yaml() { # k variant
	local v=$2 ports=(tcp/80 tcp/80-90 udp/53 tcp)
	case $1 in
	0) cat <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: p0, namespace: ns0}
spec:
  groups:
    a: {selector: {app: a}}
    b: {selector: {app: $([ $((v % 2)) = 1 ] && echo b || echo c)}}
    office: {cidrs: [10.201.0.0/22], except: [10.201.1.$((8 + 4 * v))/30]}
  allow:
    - {from: b, to: a, ports: [${ports[v]}]}
    - {from: office, to: a, ports: [tcp/443-450]}
    - {from: a, to: world, ports: [udp/53]}
EOF2
	;;
	1) cat <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: p1, namespace: ns1}
spec:
  mode: $([ "$v" = 3 ] && echo audit || echo enforce)
  isolation: $([ "$v" = 2 ] && echo ingress || echo both)
  groups:
    c: {selector: {app: c}}
    d: {selector: {app: d}}
  allow:
    - {from: c, to: d, ports: [${ports[(v + 1) % 4]}, icmp]}
EOF2
	;;
	2) cat <<EOF2
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p2, namespace: ns$((v % 2))}
spec:
  podSelector: {matchLabels: {app: a}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: b}}, namespaceSelector: {}}]
      ports: [{port: http}]
  egress:
    - to: [{ipBlock: {cidr: 10.201.0.0/16}}]
      ports: [{port: http}]
EOF2
	;;
	3) cat <<EOF2
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p3, namespace: ns$((v % 2))}
spec:
  podSelector: {matchExpressions: [{key: tier, operator: $([ "$v" -lt 2 ] && echo Exists || echo DoesNotExist)}]}
  policyTypes: [Ingress]
  ingress:
    - from: [{namespaceSelector: {matchLabels: {team: t$((v % 2))}}}]
      ports: [{port: 5432}]
EOF2
	;;
	esac
}
# a policy's namespace follows its variant (p2, p3): delete the old one first
pol_ns=("" "" "" "")
put_policy() { # k
	local k=$1 v=$((RANDOM % 4)) ns
	policy_yaml "$k" "$v" >"$T_TMP/p.yaml"
	ns=$(sed -n 's/^metadata: {name: p[0-9], namespace: \(ns[0-9]\)}/\1/p' "$T_TMP/p.yaml")
	if [ -n "${pol_ns[k]}" ] && [ "${pol_ns[k]}" != "$ns" ]; then
		api -X DELETE "http://l/v1/policies/${pol_ns[k]}/p$k"
		[ "$c" = 200 ] || [ "$c" = 204 ] || return
	fi
	pol_ns[k]=$ns
	api -X PUT "http://l/v1/policies/$ns/p$k" --data-binary @"$T_TMP/p.yaml"
}
delete_policy() { # k
	local k=$1
	[ -n "${pol_ns[k]}" ] || { c=404; return; }
	api -X DELETE "http://l/v1/policies/${pol_ns[k]}/p$k"
	pol_ns[k]=""
}

t_msegd_start --resync 0 --log-level info
t_check "msegd ready" t_wait_log "msegd ready"

ok=true
for k in 0 1; do put_namespace $k; [ "$c" = 200 ] || [ "$c" = 201 ] || { ok=false; echo "  ns$k: $c"; }; done
for i in $(seq 1 $N); do put_endpoint "$i"; [ "$c" = 201 ] || { ok=false; echo "  e$i: $c"; }; done
for k in 0 1 2 3; do put_policy $k; [ "$c" = 201 ] || { ok=false; echo "  p$k: $c"; }; done
t_check "start: namespaces, endpoints and policies accepted" $ok
log0=$(t_log_lines)

ok=true
for s in $(seq 1 $STEPS); do
	case $((RANDOM % 7)) in
	0 | 1 | 2) what="endpoint"; put_endpoint $((RANDOM % N + 1)) ;;
	3) what="namespace"; put_namespace $((RANDOM % 2)) ;;
	4 | 5) what="policy put"; put_policy $((RANDOM % 4)) ;;
	6) what="policy delete"; delete_policy $((RANDOM % 4)) ;;
	esac
	case $c in 200 | 201 | 204 | 404) ;; *) ok=false; echo "  step $s ($what): $c" ;; esac
done
t_check "$STEPS changes accepted" $ok
updates=$(tail -n +"$((log0 + 1))" "$T_TMP/msegd.log" | grep -c "': update +")
replaces=$(tail -n +"$((log0 + 1))" "$T_TMP/msegd.log" | grep -c "': replace (")
echo "# $updates element updates, $replaces replaces during the changes"
t_check "the changes were programmed mostly as element updates ($updates)" [ "$updates" -ge 10 ]
t_check_not "no element update was refused by the kernel" grep -q "refused the element update" "$T_TMP/msegd.log"

ok=true
for i in $(seq 1 $N); do
	r=$(get "http://l/v1/rules/e$i")
	grep -q '"in_sync": *true' <<<"$r" || { ok=false; echo "  e$i: $(head -c 300 <<<"$r")"; }
done
t_check "read-back: every table in sync with the desired state" $ok
mkdir -p "$T_TMP/incr" "$T_TMP/full"
tables=0 elems=0
for i in $(seq 1 $N); do
	nft_norm "$i" >"$T_TMP/incr/e$i"
	[ -s "$T_TMP/incr/e$i" ] && tables=$((tables + 1))
	elems=$((elems + $(grep -c '^[0-9a-f:.]* \.\|^[0-9][0-9.]*[-/]\|^[0-9][0-9.]*$' "$T_TMP/incr/e$i")))
done
echo "# $tables tables, about $elems elements"
t_check "some namespaces have tables with elements ($tables tables)" [ "$tables" -ge 2 ] && [ "$elems" -ge 4 ]

# the same state, programmed from scratch
t_msegd_stop
for i in $(seq 1 $N); do ip netns exec "${T_PREFIX}-e$i" nft delete table inet mseg 2>/dev/null; done
log1=$(t_log_lines)
t_msegd_start --resync 0 --log-level info
t_check "msegd restarted on the same state" t_wait_log "msegd ready" "$log1"
ok=true
for i in $(seq 1 $N); do
	nft_norm "$i" >"$T_TMP/full/e$i"
	if ! cmp -s "$T_TMP/incr/e$i" "$T_TMP/full/e$i"; then
		ok=false
		echo "  e$i: incremental (<) vs full (>):"
		diff "$T_TMP/incr/e$i" "$T_TMP/full/e$i" | head -20
	fi
done
t_check "every namespace: nft list after the increments == after a full program" $ok
t_check "msegd still running" kill -0 "$T_MSEGD_PID"
t_done
