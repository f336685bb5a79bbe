#!/bin/bash
# NetworkPolicy port ranges through the port-range slots, with real traffic:
# pods allowed on an endPort range (from the namespaces labelled team=a) and
# on every TCP port (`protocol: TCP` without a port) are admitted exactly on
# those ports, their addresses sit in the slot sets (in4_rangeN with the
# ports in in4_rangeN_ports), not in the concatenated interval set
# in4_port_iv; a namespace label change that removes one peer closes the
# range to it, keeps the other peers, and reaches the kernel as element
# updates only (no table replace).
. "$(dirname "$0")/../lib.sh"
t_require_root
SOCK="$T_TMP/api.sock"

t_endpoints a:2 db:3 b:4 c:5 || { t_fail "setup"; t_done; exit 1; }
for p in 8000 8050 8100 8101 7999 9000; do t_tcp_server db $p; done
for p in 8000 8050 8100 8101 7999 9000; do t_wait_port db $p || t_fail "server on $p"; done
echo "endpoints: []" >"$T_TMP/endpoints.yaml"
t_msegd_start --endpoints "$T_TMP/endpoints.yaml" --resync 0 --log-level debug
t_check "msegd ready" t_wait_log "msegd ready"
req() { local m=$1 p=$2; shift 2; code=$(curl -s -o "$T_TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X "$m" "$@" "http://x$p"); }
metric() { curl -s --unix-socket "$SOCK" http://x/metrics | awk -v m="$1" '$1 == m {print $2}'; }
ep() { # ID NAMESPACE APP N
	req PUT "/v1/endpoints/$1" -d "{\"namespace\": \"$2\", \"labels\": {\"app\": \"$3\"}, \"netns\": \"$(t_netns_path "$1")\", \"ips\": [\"10.201.0.$4\", \"fd00:201::$4\"]}"
	[ "$code" = 201 ]
}
req PUT /v1/namespaces/ops -d '{"labels": {"team": "a"}}'
t_check "namespace ops with team=a" [ "$code" = 201 ]
req PUT /v1/namespaces/dev -d '{"labels": {"team": "a"}}'
t_check "namespace dev with team=a" [ "$code" = 201 ]
t_check "a (ops) registered" ep a ops client 2
t_check "b (dev) registered" ep b dev client 4
t_check "c (shop, app=tool) registered" ep c shop tool 5
t_check "db (shop) registered" ep db shop db 3
cat >"$T_TMP/np.yaml" <<'EOF2'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {team: a}}
      ports: [{port: 8000, endPort: 8100}]
    - from:
        - podSelector: {matchLabels: {app: tool}}
      ports: [{protocol: TCP}]
EOF2
req PUT /v1/policies/shop/db --data-binary @"$T_TMP/np.yaml"
t_check "the NetworkPolicy PUT: 201" [ "$code" = 201 ]

for p in 8000 8050 8100; do
	t_check "a -> db:$p (in the endPort range) allowed" t_tcp a 10.201.0.3 $p
done
t_check "b -> db:8050 allowed" t_tcp b 10.201.0.3 8050
for p in 7999 8101 9000; do
	t_check_not "a -> db:$p (outside the range) refused" t_tcp a 10.201.0.3 $p
done
for p in 7999 8050 9000; do
	t_check "c -> db:$p (every TCP port) allowed" t_tcp c 10.201.0.3 $p
done
t_check "a -> db:8050 over IPv6 allowed" t_tcp a fd00:201::3 8050
t_check_not "a -> db:8101 over IPv6 refused" t_tcp a fd00:201::3 8101

# where the kernel holds them: c (0-65535 sorts first) in slot 0, a and b
# (8000-8100) in slot 1, none of the three in the interval set
set_has() { t_nft db list set inet mseg "$1" 2>/dev/null | grep -q "$2"; }
t_check "c is in in4_range0" set_has in4_range0 "10.201.0.5 . tcp"
t_check "in4_range0_ports is every port" set_has in4_range0_ports "0-65535"
t_check "a is in in4_range1" set_has in4_range1 "10.201.0.2 . tcp"
t_check "b is in in4_range1" set_has in4_range1 "10.201.0.4 . tcp"
t_check "in4_range1_ports is the endPort range" set_has in4_range1_ports "8000-8100"
t_check "a is in in6_range1 (IPv6)" set_has in6_range1 "fd00:201::2 . tcp"
t_check "in6_range1_ports is the endPort range" set_has in6_range1_ports "8000-8100"
t_check_not "no pod address in in6_port_iv" set_has in6_port_iv "fd00:201::"
t_check_not "no pod address in in4_port_iv" set_has in4_port_iv "10.201.0"
t_check "the slot rule is in the chain" bash -c \
	"ip netns exec '$(t_ns db)' nft list chain inet mseg ingress | grep -q 'ip saddr . meta l4proto @in4_range1 th dport @in4_range1_ports goto in4_seen'"
req GET /v1/rules/db
t_check "GET /v1/rules/db: in sync, shows the slot elements" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
text = json.dumps(d)
assert d.get("in_sync") is True, d.get("drift")
assert "in4_range1" in text and "10.201.0.2 . tcp" in text and "8000-8100" in text, text[:2000]
' "$T_TMP/body"

# the label change: ops loses team=a, so a loses the range; b and c keep theirs
handle() { ip netns exec "$(t_ns db)" nft -a list table inet mseg 2>/dev/null | sed -n 's/^table inet mseg .*# handle \([0-9]*\).*/\1/p'; }
h0=$(handle)
replaces0=$(metric 'mseg_batches_total{kind="replace"}')
updates0=$(metric 'mseg_batches_total{kind="update"}')
mark=$(t_log_lines)
req PUT /v1/namespaces/ops -d '{"labels": {"team": "b"}}'
t_check "PUT /v1/namespaces/ops team=b: 200" [ "$code" = 200 ]
t_check "db's update removed a's two elements (IPv4, IPv6)" t_wait_log "endpoint 'db': update \+0 -2" "$mark"
t_check_not "a -> db:8050 refused after the label change" t_tcp a 10.201.0.3 8050
t_check_not "a -> db:8000 refused after the label change" t_tcp a 10.201.0.3 8000
t_check "b -> db:8050 still allowed" t_tcp b 10.201.0.3 8050
t_check "c -> db:9000 still allowed" t_tcp c 10.201.0.3 9000
t_check_not "a -> db:8050 over IPv6 refused after the label change" t_tcp a fd00:201::3 8050
t_check "b -> db:8050 over IPv6 still allowed" t_tcp b fd00:201::3 8050
t_check_not "a left in4_range1" set_has in4_range1 "10.201.0.2 . tcp"
t_check "b still in in4_range1" set_has in4_range1 "10.201.0.4 . tcp"
t_check "in4_range1_ports unchanged" set_has in4_range1_ports "8000-8100"
t_check "no table replace (metric)" [ "$(metric 'mseg_batches_total{kind="replace"}')" = "$replaces0" ]
t_check "element batches sent (metric)" [ "$(metric 'mseg_batches_total{kind="update"}')" -gt "$updates0" ]
t_check "db's table kept its handle" [ "$(handle)" = "$h0" ]
t_check_not "no replace logged" bash -c "tail -n +$((mark + 1)) '$T_TMP/msegd.log' | grep -q \"endpoint 'db': replace\""

# b leaves too: the slot's address set is empty, the other slot unchanged
mark=$(t_log_lines)
req PUT /v1/namespaces/dev -d '{"labels": {"team": "b"}}'
t_check "db's update removed b and the slot's ports" t_wait_log "endpoint 'db': update \+0 -[1-9]" "$mark"
t_check_not "in4_range1_ports emptied" set_has in4_range1_ports "8000"
t_check_not "b -> db:8050 refused" t_tcp b 10.201.0.3 8050
t_check "c -> db:8050 still allowed" t_tcp c 10.201.0.3 8050
t_check "no table replace (metric)" [ "$(metric 'mseg_batches_total{kind="replace"}')" = "$replaces0" ]

# b back, then the policy's range grows to 8000-8200: the slot's signature
# changes (the port set's start element at 8000 goes and comes back, its
# end moves), in one element batch that the kernel takes
mark=$(t_log_lines)
req PUT /v1/namespaces/dev -d '{"labels": {"team": "a"}}'
t_check "b back: element adds" t_wait_log "endpoint 'db': update \+[1-9][0-9]* -0" "$mark"
t_check_not "b -> db:8101 refused (outside 8000-8100)" t_tcp b 10.201.0.3 8101
mark=$(t_log_lines)
sed -i 's/endPort: 8100/endPort: 8200/' "$T_TMP/np.yaml"
req PUT /v1/policies/shop/db --data-binary @"$T_TMP/np.yaml"
t_check "the policy with endPort 8200: 200" [ "$code" = 200 ]
t_check "the signature change is an element update" t_wait_log "endpoint 'db': update \+[1-9][0-9]* -[1-9]" "$mark"
t_check "b -> db:8101 allowed (inside 8000-8200)" t_tcp b 10.201.0.3 8101
t_check "in4_range1_ports is 8000-8200" set_has in4_range1_ports "8000-8200"
t_check_not "the kernel took the update (no refusal, no replace)" bash -c \
	"tail -n +$((mark + 1)) '$T_TMP/msegd.log' | grep -Eq \"endpoint 'db': (replace|the kernel refused)\""
t_check "no table replace (metric)" [ "$(metric 'mseg_batches_total{kind="replace"}')" = "$replaces0" ]
req GET /v1/rules/db
t_check "GET /v1/rules/db: still in sync" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("in_sync") is True, d
' "$T_TMP/body"
t_done
