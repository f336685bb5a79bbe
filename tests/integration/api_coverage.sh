#!/bin/bash
# Coverage is visible: a policy whose namespace has no endpoints, a group
# whose selector matches nothing, a policy without a namespace, and an
# endpoint whose netns does not exist each come back as a warning in the
# answer (also on dry runs); GET shows how many endpoints each policy
# covers and which endpoints each group resolves to.
. "$(dirname "$0")/../lib.sh"
t_require_root
SOCK="$T_TMP/api.sock"

t_endpoints web:1 db:3 || { t_fail "setup"; t_done; exit 1; }
t_msegd_start --resync 0
t_check "msegd starts" t_wait_log "msegd ready"

req() { # METHOD PATH [curl args]: body in $T_TMP/body, status in $code
	local m=$1 p=$2; shift 2
	code=$(curl -s -o "$T_TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X "$m" "$@" \
		"http://localhost$p")
}
jq_() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T_TMP/body" "$1"; }
has_warning() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if sys.argv[2] in d.get("warnings", []) else 1)' "$T_TMP/body" "$1" || { echo "  warnings: $(jq_ 'd.get("warnings")')"; return 1; }; }

for e in web:1 db:3; do
	id=${e%%:*} n=${e##*:}
	req PUT "/v1/endpoints/$id" -d "{\"namespace\": \"shop\", \"labels\": {\"app\": \"$id\"}, \"netns\": \"$(t_netns_path "$id")\", \"ips\": [\"10.201.0.$n\"]}"
	t_check "endpoint $id created ($code)" [ "$code" = 201 ]
	t_check "endpoint $id: no warnings" [ "$(jq_ 'd["warnings"]')" = "[]" ]
done

pol() { # NAME NAMESPACE-LINE DB-SELECTOR
	cat <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: $1$2}
spec:
  groups:
    web: {selector: {app: web}}
    db: {selector: {app: $3}}
  allow:
    - {from: web, to: db, ports: [tcp/5432]}
EOF2
}
pol good ", namespace: shop" db >"$T_TMP/good.yaml"
req PUT /v1/policies/shop/good --data-binary @"$T_TMP/good.yaml"
t_check "a policy that covers endpoints: created, no warnings" [ "$code" = 201 ] && [ "$(jq_ 'd["warnings"]')" = "[]" ]

pol typo ", namespace: labb" db >"$T_TMP/typo.yaml"
req PUT "/v1/policies/labb/typo?dry_run=1" --data-binary @"$T_TMP/typo.yaml"
t_check "namespace typo, dry run: warned" has_warning "namespace 'labb' has no endpoints: the policy covers nothing yet"
req PUT /v1/policies/labb/typo --data-binary @"$T_TMP/typo.yaml"
t_check "namespace typo: created (201)" [ "$code" = 201 ]
t_check "namespace typo: warned" has_warning "namespace 'labb' has no endpoints: the policy covers nothing yet"
t_check "namespace typo: no group warnings on top" [ "$(jq_ 'len(d["warnings"])')" = 1 ]

pol keytypo ", namespace: shop" postgress >"$T_TMP/keytypo.yaml"
req PUT /v1/policies/shop/keytypo --data-binary @"$T_TMP/keytypo.yaml"
t_check "selector typo: warned, naming group, selector and namespace" \
	has_warning "group 'db' selects no endpoint (app=postgress in namespace shop)"

pol nons "" db >"$T_TMP/nons.yaml"
req PUT /v1/policies/default/nons --data-binary @"$T_TMP/nons.yaml"
t_check "no namespace: says it went to default" \
	has_warning "metadata.namespace is not set: the policy went to namespace 'default'"

req GET /v1/policies
t_check "list: good covers 2 endpoints" [ "$(jq_ '[p["covers"] for p in d["policies"] if p["name"] == "good"][0]')" = 2 ]
t_check "list: typo covers 0" [ "$(jq_ '[p["covers"] for p in d["policies"] if p["name"] == "typo"][0]')" = 0 ]
t_check "list: keytypo covers 1 (web)" [ "$(jq_ '[p["covers"] for p in d["policies"] if p["name"] == "keytypo"][0]')" = 1 ]
req GET /v1/policies/shop/good
t_check "get: groups resolve to endpoints" [ "$(jq_ 'sorted(d["groups"].items())')" = "[('db', ['db']), ('web', ['web'])]" ]
req GET /v1/policies/shop/keytypo
t_check "get: an empty group and its warning" [ "$(jq_ 'd["groups"]["db"]')" = "[]" ] && has_warning "group 'db' selects no endpoint (app=postgress in namespace shop)"

# an endpoint whose netns does not exist
req PUT "/v1/endpoints/ghost?dry_run=1" -d '{"netns": "/run/netns/no-such-ns-'$$'", "ips": ["10.201.0.9"]}'
t_check "missing netns, dry run: warned" has_warning "netns '/run/netns/no-such-ns-$$' does not exist: the endpoint cannot be programmed"
t_done
