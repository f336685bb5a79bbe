#!/bin/bash
# Relabelling without resending the endpoint: PATCH /v1/endpoints/{id} with
# a JSON merge patch of the labels keeps the netns, addresses and named
# ports, and a label flip opens or closes a pair under real traffic. A bad
# patch is refused naming the field and changes nothing. Re-sending an
# identical policy or endpoint says "unchanged" and does not move the
# generation.
. "$(dirname "$0")/../lib.sh"
t_require_root
SOCK="$T_TMP/api.sock"

t_endpoints api:2 db:3 other:4 filed:5 || { t_fail "setup"; t_done; exit 1; }
t_tcp_server db 5432
t_wait_port db 5432
cat >"$T_TMP/endpoints.yaml" <<EOF2
endpoints:
  - {id: filed, labels: {app: box}, netns: $(t_netns_path filed), ips: [10.201.0.5]}
EOF2
t_msegd_start --endpoints "$T_TMP/endpoints.yaml" --resync 0
t_check "msegd starts" t_wait_log "msegd ready"

req() { # METHOD PATH [curl args]: body in $T_TMP/body, status in $code
	local m=$1 p=$2; shift 2
	code=$(curl -s -o "$T_TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X "$m" "$@" \
		"http://localhost$p")
}
jq_() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T_TMP/body" "$1"; }
expect() { # NAME CODE METHOD PATH [curl args]
	local n=$1 want=$2; shift 2
	req "$@"
	if [ "$code" = "$want" ]; then t_pass "$n ($code)"; else t_fail "$n: got $code, want $want: $(head -c 300 "$T_TMP/body")"; fi
}
gen() { curl -s --unix-socket "$SOCK" http://localhost/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])'; }

t_pair_policy_yaml api db 5432 p >"$T_TMP/p.yaml"
expect "policy created" 201 PUT /v1/policies/default/p --data-binary @"$T_TMP/p.yaml"
for e in api:2 db:3 other:4; do
	id=${e%%:*} n=${e##*:}
	expect "endpoint $id created" 201 PUT "/v1/endpoints/$id" -d \
		"{\"labels\": {\"app\": \"$id\", \"tier\": \"t$n\"}, \"netns\": \"$(t_netns_path "$id")\", \"ips\": [\"10.201.0.$n\", \"fd00:201::$n\"], \"ports\": [{\"name\": \"pg\", \"port\": 5432, \"protocol\": \"TCP\"}]}"
done
t_check "api reaches db" t_tcp api 10.201.0.3 5432
t_check_not "other is refused" t_tcp other 10.201.0.3 5432

# PATCH other's labels: app=api opens the pair, the rest of it stays
g0=$(gen)
expect "PATCH labels" 200 PATCH /v1/endpoints/other -H 'Content-Type: application/merge-patch+json' \
	-d '{"labels": {"app": "api", "tier": null, "new": "x"}}'
t_check "PATCH answers replaced" [ "$(jq_ 'd["result"]')" = replaced ]
t_check "PATCH answer programmed" [ "$(jq_ 'd["programmed"]')" = True ]
t_check "PATCH moves the generation" [ "$(gen)" -eq $((g0 + 1)) ]
req GET /v1/endpoints/other
t_check "labels patched: app=api, tier removed, new added" \
	[ "$(jq_ 'sorted(d["labels"].items())')" = "[('app', 'api'), ('new', 'x')]" ]
t_check "netns kept" [ "$(jq_ 'd["netns"]')" = "$(t_netns_path other)" ]
t_check "both addresses kept" [ "$(jq_ 'd["ips"]')" = "['10.201.0.4', 'fd00:201::4']" ]
t_check "named port kept" [ "$(jq_ 'd["ports"][0]["name"]')" = pg ]
t_check "other now reaches db (IPv4)" t_tcp other 10.201.0.3 5432
t_check "other now reaches db (IPv6)" t_tcp other fd00:201::3 5432

# a dry run shows the change and changes nothing
expect "PATCH dry run" 200 PATCH "/v1/endpoints/other?dry_run=1" -d '{"labels": {"app": "other"}}'
t_check "dry run says would replace" [ "$(jq_ 'd["result"]')" = "would replace" ]
t_check "dry run lists db's ingress change" [ "$(jq_ '[c["endpoint"] for c in d["changes"]]')" != "[]" ]
t_check "after the dry run other still reaches db" t_tcp other 10.201.0.3 5432

# flip back: closed again
expect "PATCH back" 200 PATCH /v1/endpoints/other -d '{"labels": {"app": "other"}}'
t_check_not "other refused again" t_tcp other 10.201.0.3 5432

# bad patches: refused, naming the field, nothing changed
snap() { { curl -s --unix-socket "$SOCK" http://localhost/v1/endpoints; (cd "$T_TMP/state" && find . -type f | sort | xargs -r sha256sum); t_nft db list ruleset | sed -E 's/ expires [0-9dhms]+//g'; } >"$T_TMP/snap.$1"; }   # the seen sets' timeouts count down
snap before
g1=$(gen)
expect "PATCH ips refused" 400 PATCH /v1/endpoints/other -d '{"ips": ["10.201.0.9"]}'
t_check "ips: says only labels can be patched" grep -q "'ips': only labels can be patched" "$T_TMP/body"
expect "PATCH bad label value type" 400 PATCH /v1/endpoints/other -d '{"labels": {"app": 5}}'
t_check "names labels.app" grep -q 'labels.app: expected a string' "$T_TMP/body"
expect "PATCH invalid label key" 400 PATCH /v1/endpoints/other -d '{"labels": {"bad key": "v"}}'
t_check "names the bad key" grep -q "bad key" "$T_TMP/body"
expect "PATCH not JSON" 400 PATCH /v1/endpoints/other -d '{"labels": '
t_check "syntax error has a line" [ "$(jq_ 'd["line"]')" = 1 ]
expect "PATCH of an unknown endpoint" 404 PATCH /v1/endpoints/ghost -d '{"labels": {}}'
expect "PATCH of a file endpoint" 409 PATCH /v1/endpoints/filed -d '{"labels": {"a": "b"}}'
snap after
t_check "bad patches changed nothing" cmp -s "$T_TMP/snap.before" "$T_TMP/snap.after"
t_check "bad patches did not move the generation" [ "$(gen)" -eq "$g1" ]

# identical documents: unchanged, no generation bump
g2=$(gen)
expect "same policy again" 200 PUT /v1/policies/default/p --data-binary @"$T_TMP/p.yaml"
t_check "same policy: unchanged" [ "$(jq_ 'd["result"]')" = unchanged ]
expect "same policy, dry run" 200 PUT "/v1/policies/default/p?dry_run=1" --data-binary @"$T_TMP/p.yaml"
t_check "same policy dry run: unchanged" [ "$(jq_ 'd["result"]')" = unchanged ]
doc="{\"labels\": {\"app\": \"db\", \"tier\": \"t3\"}, \"netns\": \"$(t_netns_path db)\", \"ips\": [\"10.201.0.3\", \"fd00:201::3\"], \"ports\": [{\"name\": \"pg\", \"port\": 5432, \"protocol\": \"TCP\"}]}"
expect "same endpoint again" 200 PUT /v1/endpoints/db -d "$doc"
t_check "same endpoint: unchanged" [ "$(jq_ 'd["result"]')" = unchanged ]
t_check "unchanged does not move the generation" [ "$(gen)" -eq "$g2" ]
t_pair_policy_yaml api db 5433 p >"$T_TMP/p2.yaml"
expect "a changed policy is replaced" 200 PUT /v1/policies/default/p --data-binary @"$T_TMP/p2.yaml"
t_check "changed policy: replaced" [ "$(jq_ 'd["result"]')" = replaced ]
t_check "a real change moves the generation" [ "$(gen)" -eq $((g2 + 1)) ]
t_done
