#!/bin/bash
# Namespaces are objects with labels: PUT /v1/namespaces/{name} relabels a
# namespace, and a NetworkPolicy's namespaceSelector opens or closes the
# pair under real traffic with element updates only (the table is not
# replaced); the label kubernetes.io/metadata.name is always there; a file
# namespace cannot be changed over the API; a NetworkPolicy is PUT like an
# AllowList.
. "$(dirname "$0")/../lib.sh"
t_require_root
SOCK="$T_TMP/api.sock"

t_endpoints client:2 db:3 || { t_fail "setup"; t_done; exit 1; }
t_tcp_server db 5432
t_wait_port db 5432
cat >"$T_TMP/endpoints.yaml" <<EOF2
namespaces:
  - {name: frozen, labels: {team: z}}
endpoints: []
EOF2
t_msegd_start --endpoints "$T_TMP/endpoints.yaml" --resync 0
t_check "msegd ready" t_wait_log "msegd ready"
req() { local m=$1 p=$2; shift 2; code=$(curl -s -o "$T_TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X "$m" "$@" "http://x$p"); }
jq_() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T_TMP/body" "$1"; }

req PUT /v1/endpoints/client -d "{\"namespace\": \"ops\", \"labels\": {\"app\": \"client\"}, \"netns\": \"$(t_netns_path client)\", \"ips\": [\"10.201.0.2\"]}"
t_check "client (namespace ops) registered" [ "$code" = 201 ]
req PUT /v1/endpoints/db -d "{\"namespace\": \"shop\", \"labels\": {\"app\": \"db\"}, \"netns\": \"$(t_netns_path db)\", \"ips\": [\"10.201.0.3\"]}"
t_check "db (namespace shop) registered" [ "$code" = 201 ]
cat >"$T_TMP/np.yaml" <<'EOF2'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {team: a}}
      ports: [{port: 5432}]
EOF2
req PUT /v1/policies/shop/db --data-binary @"$T_TMP/np.yaml"
t_check "a NetworkPolicy PUT over the API: 201" [ "$code" = 201 ]
t_check "its namespaceSelector selects nothing yet: warned" grep -q "selects no endpoint" "$T_TMP/body"
t_check_not "namespace ops without team=a: refused" t_tcp client 10.201.0.3 5432

handle() { ip netns exec "$(t_ns db)" nft -a list table inet mseg 2>/dev/null | sed -n 's/^table inet mseg .*# handle \([0-9]*\).*/\1/p'; }
h0=$(handle)
mark=$(t_log_lines)
req PUT /v1/namespaces/ops -d '{"labels": {"team": "a"}}'
t_check "PUT /v1/namespaces/ops: 201" [ "$code" = 201 ]
t_check "namespace ops with team=a: allowed" t_tcp client 10.201.0.3 5432
t_check "the label change was an element update" t_wait_log "endpoint 'db': update \+1 -0" "$mark"
t_check "and not a replace (same table handle $h0)" [ "$(handle)" = "$h0" ]
t_check_not "no replace logged" bash -c "tail -n +$((mark + 1)) '$T_TMP/msegd.log' | grep -q \"endpoint 'db': replace\""
req GET /v1/namespaces/ops
t_check "GET shows both labels" [ "$(jq_ 'sorted(d["labels"].items())')" = "[('kubernetes.io/metadata.name', 'ops'), ('team', 'a')]" ]
t_check "GET counts its endpoints" [ "$(jq_ 'd["endpoints"]')" = 1 ]
t_check "mseg get namespaces lists ops with its label and endpoint count" bash -c \
	"'$MSEG' --server unix:$SOCK get namespaces | grep -Eq '^ops +1 +team=a +api\$'"
req PUT /v1/namespaces/ops -d '{"labels": {"team": "a"}}'
t_check "the same labels again: unchanged" [ "$(jq_ 'd["result"]')" = unchanged ]
req PUT /v1/namespaces/ops -d '{"labels": {"team": "b"}}'
t_check "team=b: 200" [ "$code" = 200 ]
t_check_not "namespace ops with team=b: refused again" t_tcp client 10.201.0.3 5432
req DELETE /v1/namespaces/ops
t_check "DELETE: 200" [ "$code" = 200 ]
req GET /v1/namespaces/ops
t_check "deleted: 404" [ "$code" = 404 ]

req PUT /v1/namespaces/frozen -d '{"labels": {"team": "a"}}'
t_check "a namespace from the inventory file: 409" [ "$code" = 409 ]
req PUT /v1/namespaces/Bad_Name -d '{}'
t_check "an invalid name: 400" [ "$code" = 400 ]
req PUT /v1/namespaces/ops -d '{"labels": {"bad key": "v"}}'
t_check "a bad label: 400 naming it" bash -c "[ '$code' = 400 ] && grep -q 'bad key' '$T_TMP/body'"
req GET /v1/namespaces
t_check "the list has the file's namespace with its name label" \
	[ "$(jq_ '[n["labels"].get("kubernetes.io/metadata.name") for n in d["namespaces"] if n["name"] == "frozen"]')" = "['frozen']" ]
t_done
