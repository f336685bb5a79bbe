#!/bin/bash
# Every REST route over the real unix socket: success paths, and the errors
# (400 with line/column for bad YAML and JSON, 404, 405, 409, 413, 415, bad
# path segments). After each failing request the state is unchanged: the
# GET answers, the state dir and the kernel table are byte for byte the same.
# Real traffic shows a policy PUT over the API takes effect.
. "$(dirname "$0")/../lib.sh"
t_require_root
SOCK="$T_TMP/api.sock"

t_endpoints web:1 db:3 attacker:4 filed:5 || { t_fail "setup"; exit 1; }
t_tcp_server db 5432

# a file policy and a file endpoint: the API must not touch those names
mkdir -p "$T_TMP/policies"
cat >"$T_TMP/policies/file.yaml" <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: filepol, namespace: ops}
spec:
  groups:
    box: {selector: {app: box}}
  allow:
    - {from: world, to: box, ports: [tcp/22]}
EOF2
cat >"$T_TMP/endpoints.yaml" <<EOF2
endpoints:
  - {id: filed, namespace: ops, labels: {app: box}, netns: $(t_netns_path filed), ips: [10.201.0.5]}
EOF2

t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 0
t_check "msegd starts" t_wait_log "msegd ready"
for i in $(seq 1 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
t_check "socket is mode 0600" [ "$(stat -c %a "$SOCK")" = 600 ]

# req METHOD PATH [curl args...]: body in $T_TMP/body, status in $code
req() {
	local m=$1 p=$2; shift 2
	code=$(curl -s -o "$T_TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X "$m" "$@" \
		"http://localhost$p")
}
body() { cat "$T_TMP/body"; }
jq_() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T_TMP/body" "$1"; }
expect() { # NAME CODE METHOD PATH [curl args]
	local n=$1 want=$2; shift 2
	req "$@"
	if [ "$code" = "$want" ]; then t_pass "$n ($code)"; else t_fail "$n: got $code, want $want: $(body | head -c 300)"; fi
}
snapshot() { # the state as the API and the disk see it
	{
		curl -s --unix-socket "$SOCK" http://localhost/v1/policies
		curl -s --unix-socket "$SOCK" http://localhost/v1/endpoints
		(cd "$T_TMP/state" && find . -type f | sort | xargs -r sha256sum)
		# the seen sets' elements count down to their timeout: not state
		t_nft db list ruleset 2>/dev/null | sed -E 's/ expires [0-9dhms]+//g'
	} >"$T_TMP/snap.$1"
}
unchanged() { # NAME: compare with the snapshot "before"
	snapshot after
	if [ -s "$T_TMP/snap.after" ] && grep -q policies "$T_TMP/snap.after" && cmp -s "$T_TMP/snap.before" "$T_TMP/snap.after"; then t_pass "$1: state unchanged"
	else t_fail "$1: state changed"; diff "$T_TMP/snap.before" "$T_TMP/snap.after" | head -10; fi
}
has_pos() { # the error names a line and a column
	[ "$(jq_ 'd.get("line",0) > 0 and d.get("column",0) > 0')" = True ]
}

# ---- health, status, metrics
expect "GET /healthz" 200 GET /healthz
expect "GET /readyz" 200 GET /readyz
expect "GET /v1/status" 200 GET /v1/status
t_check "status has version and counts" [ "$(jq_ 'd["version"] != "" and d["policies"]["file"] == 1 and d["endpoints"]["file"] == 1')" = True ]
expect "GET /metrics" 200 GET /metrics
t_check "metrics: endpoints gauge" grep -q '^mseg_endpoints{source="file"} 1$' "$T_TMP/body"

# ---- endpoints
expect "PUT endpoint (JSON) creates" 201 PUT /v1/endpoints/db -H 'Content-Type: application/json' \
	-d "{\"namespace\": \"shop\", \"labels\": {\"app\": \"db\"}, \"netns\": \"$(t_netns_path db)\", \"ips\": [\"10.201.0.3\", \"fd00:201::3\"]}"
printf 'namespace: shop\nlabels: {app: web}\nnetns: %s\nips: [10.201.0.1]\n' "$(t_netns_path web)" >"$T_TMP/web.yaml"
expect "PUT endpoint (YAML) creates" 201 PUT /v1/endpoints/web -H 'Content-Type: application/yaml' --data-binary @"$T_TMP/web.yaml"
expect "PUT endpoint again replaces" 200 PUT /v1/endpoints/web --data-binary @"$T_TMP/web.yaml"
expect "GET /v1/endpoints" 200 GET /v1/endpoints
t_check "three endpoints listed" [ "$(jq_ 'len(d["endpoints"])')" = 3 ]
expect "GET /v1/endpoints/db" 200 GET /v1/endpoints/db
t_check "endpoint fields" [ "$(jq_ 'd["namespace"] == "shop" and d["ips"] == ["10.201.0.3", "fd00:201::3"] and d["source"] == "api"')" = True ]
t_check "endpoint stored" [ -f "$T_TMP/state/endpoints/db" ]

# ---- policies
t_pair_policy_yaml web db 5432 shop shop >"$T_TMP/shop.yaml"
t_check "before: attacker reaches db" t_tcp attacker 10.201.0.3 5432

snapshot before
expect "PUT policy dry run" 200 PUT "/v1/policies/shop/shop?dry_run=1" --data-binary @"$T_TMP/shop.yaml"
t_check "dry run names db's new entry" grep -q '10.201.0.1 . tcp . 5432' "$T_TMP/body"
t_check "dry run: db and web change" [ "$(jq_ 'sorted(c["endpoint"] for c in d["changes"])')" = "['db', 'web']" ]
unchanged "dry run"

expect "PUT policy creates" 201 PUT /v1/policies/shop/shop -H 'Content-Type: application/yaml' --data-binary @"$T_TMP/shop.yaml"
t_check "answer says programmed" [ "$(jq_ 'd["programmed"]')" = True ]
t_check "kernel: db's table has web's entry" bash -c "ip netns exec $(t_ns db) nft list set inet mseg in4_port | grep -q '10.201.0.1 . tcp . 5432'"
t_check     "web -> db tcp/5432 passes"  t_tcp web 10.201.0.3 5432
t_check_not "attacker -> db tcp/5432 refused" t_tcp attacker 10.201.0.3 5432
expect "PUT the same policy replaces" 200 PUT /v1/policies/shop/shop --data-binary @"$T_TMP/shop.yaml"
expect "GET /v1/policies" 200 GET /v1/policies
t_check "file and API policies listed" [ "$(jq_ 'sorted(p["namespace"]+"/"+p["name"]+"="+p["source"][:4] for p in d["policies"])')" = "['ops/filepol=file', 'shop/shop=api']" ]
expect "GET /v1/policies/shop/shop" 200 GET /v1/policies/shop/shop
t_check "policy has its document" [ "$(jq_ '"tcp/5432" in d["document"] and len(d["rules"]) == 2')" = True ]
# JSON body
expect "PUT policy as JSON" 201 PUT /v1/policies/shop/json -H 'Content-Type: application/json' \
	-d '{"apiVersion": "mseg.io/v1", "kind": "AllowList", "metadata": {"name": "json", "namespace": "shop"}, "spec": {"groups": {"db": {"selector": {"app": "db"}}}, "allow": [{"from": "world", "to": "db", "ports": ["udp/53"]}]}}'

# ---- rules read back
expect "GET /v1/rules" 200 GET /v1/rules
t_check "db in sync" [ "$(jq_ '[e["state"] for e in d["endpoints"] if e["endpoint"] == "db"][0]')" = in_sync ]
expect "GET /v1/rules/db" 200 GET /v1/rules/db
t_check "rules/db has the table text" [ "$(jq_ '"table inet mseg" in d["table"]')" = True ]
ip netns exec "$(t_ns db)" nft delete element inet mseg in4_port '{ 10.201.0.1 . tcp . 5432 }'
expect "GET /v1/rules/db after tampering" 200 GET /v1/rules/db
t_check "drift is reported with the difference" [ "$(jq_ 'd["state"] == "drifted" and any("10.201.0.1" in x for x in d["differences"])')" = True ]
drift_listed() { req GET /v1/rules; [ "$(jq_ '[e["state"] for e in d["endpoints"] if e["endpoint"] == "db"][0]')" = drifted ]; }
eventually() { local i; for i in $(seq 1 30); do "$@" && return 0; sleep 0.1; done; return 1; }
t_check "the list shows the drift within 3 s (background read-back)" eventually drift_listed
ip netns exec "$(t_ns db)" nft add element inet mseg in4_port '{ 10.201.0.1 . tcp . 5432 }'
in_sync_listed() { req GET /v1/rules; [ "$(jq_ '[e["state"] for e in d["endpoints"] if e["endpoint"] == "db"][0]')" = in_sync ]; }
t_check "and in sync again after the repair" eventually in_sync_listed
expect "GET /v1/rules?fresh=1" 200 GET "/v1/rules?fresh=1"
t_check "fresh read: nothing stale" [ "$(jq_ 'd["stale"]')" = 0 ]
expect "GET /v1/rules/nope" 404 GET /v1/rules/nope

# ---- check
expect "POST /v1/check allowed" 200 POST /v1/check -d '{"from": "web", "to": "db", "port": "tcp/5432"}'
t_check "check: allowed by shop/shop rule 0" [ "$(jq_ 'd["allowed"] and d["ingress"]["policy"] == "shop/shop" and d["ingress"]["rule"] == 0')" = True ]
expect "POST /v1/check denied" 200 POST /v1/check -d '{"from": "10.201.0.4", "to": "db", "proto": "tcp", "port": 5432}'
t_check "check: denied, isolated by shop/shop" [ "$(jq_ 'not d["allowed"] and "shop/shop" in d["ingress"]["isolated_by"]')" = True ]
expect "POST /v1/check bad JSON" 400 POST /v1/check -d $'{"from": "web",\n "to": }'
t_check "check: JSON error has line/column" has_pos
expect "POST /v1/check unknown endpoint" 400 POST /v1/check -d '{"from": "nope", "to": "db", "port": "tcp/1"}'

# ---- an endpoint whose namespace is missing: accepted, not ready
snapshot before
expect "PUT endpoint dry run" 200 PUT "/v1/endpoints/ghost?dry_run=1" -d '{"namespace": "shop", "labels": {"app": "db"}, "netns": "/run/netns/nonexistent-mseg", "ips": ["10.201.0.77"]}'
t_check "endpoint dry run: web's egress gains ghost's address" grep -q '10.201.0.77 . tcp . 5432' "$T_TMP/body"
unchanged "endpoint dry run"
expect "PUT endpoint with a missing netns" 201 PUT /v1/endpoints/ghost -d '{"namespace": "shop", "labels": {"app": "db"}, "netns": "/run/netns/nonexistent-mseg", "ips": ["10.201.0.77"]}'
t_check "answer says not programmed, with the error" [ "$(jq_ 'not d["programmed"] and d["errors"][0]["endpoint"] == "ghost"')" = True ]
expect "GET /readyz: not ready" 503 GET /readyz
t_check "readyz names the endpoint" [ "$(jq_ 'd["not_programmed"]')" = "['ghost']" ]
expect "DELETE ghost" 200 DELETE /v1/endpoints/ghost
expect "GET /readyz: ready again" 200 GET /readyz

# ---- failures change nothing
snapshot before
printf 'apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: bad, namespace: shop}\nspec:\n  groups:\n    db: {selectr: {app: db}}\n' >"$T_TMP/bad.yaml"
expect "bad policy (unknown key) -> 400" 400 PUT /v1/policies/shop/bad --data-binary @"$T_TMP/bad.yaml"
t_check "error at line 6" [ "$(jq_ 'd["line"]')" = 6 ]
unchanged "unknown key"
expect "YAML syntax error -> 400" 400 PUT /v1/policies/shop/bad --data-binary $'apiVersion: mseg.io/v1\nkind: [AllowList\n'
t_check "YAML error has line/column" has_pos
unchanged "YAML syntax"
expect "JSON syntax error -> 400" 400 PUT /v1/policies/shop/bad -H 'Content-Type: application/json' --data-binary $'{"apiVersion": "mseg.io/v1",\n  "kind": "AllowList",,\n}'
t_check "JSON error has line/column" has_pos
unchanged "JSON syntax"
expect "name mismatch -> 400" 400 PUT /v1/policies/shop/other --data-binary @"$T_TMP/shop.yaml"
unchanged "name mismatch"
expect "bad endpoint -> 400" 400 PUT /v1/endpoints/x1 -d '{"ips": ["10.0.0.300"]}'
t_check "endpoint error has line/column" has_pos
unchanged "bad endpoint"
expect "file policy PUT -> 409" 409 PUT /v1/policies/ops/filepol --data-binary @"$T_TMP/policies/file.yaml"
t_check "409 names the file" grep -q "$T_TMP/policies/file.yaml" "$T_TMP/body"
expect "file policy DELETE -> 409" 409 DELETE /v1/policies/ops/filepol
expect "file endpoint PUT -> 409" 409 PUT /v1/endpoints/filed -d '{"ips": ["10.201.0.5"]}'
t_check "409 names the inventory file" grep -q "$T_TMP/endpoints.yaml" "$T_TMP/body"
expect "file endpoint DELETE -> 409" 409 DELETE /v1/endpoints/filed
unchanged "409s"
head -c 2097152 /dev/zero | tr '\0' 'a' >"$T_TMP/big"
expect "oversized body -> 413" 413 PUT /v1/policies/shop/big --data-binary @"$T_TMP/big"
expect "oversized chunked body -> 413" 413 PUT /v1/policies/shop/big -H 'Transfer-Encoding: chunked' --data-binary @"$T_TMP/big"
expect "multipart form -> 415" 415 PUT /v1/policies/shop/shop -F "f=@$T_TMP/shop.yaml"
unchanged "413 and 415"
expect "unknown policy -> 404" 404 GET /v1/policies/shop/nope
expect "DELETE unknown policy -> 404" 404 DELETE /v1/policies/shop/nope
expect "unknown endpoint -> 404" 404 GET /v1/endpoints/nope
expect "unknown route -> 404" 404 GET /v2/status
expect "trailing slash -> 404" 404 GET /v1/policies/
expect "POST /v1/policies -> 405" 405 POST /v1/policies -d x
t_check "405 says what is allowed" grep -qi '"error"' "$T_TMP/body"
code=$(curl -s -o /dev/null -D "$T_TMP/hdr" -w '%{http_code}' --unix-socket "$SOCK" -X DELETE http://localhost/healthz)
t_check "DELETE /healthz -> 405 with Allow" bash -c "[ $code = 405 ] && grep -qi '^Allow: GET' '$T_TMP/hdr'"
expect "GET /v1/check -> 405" 405 GET /v1/check
expect "'..' segment -> 400" 400 GET /v1/policies/../x --path-as-is
expect "'..' in a PUT -> 400" 400 PUT /v1/endpoints/.. --path-as-is -d '{"ips": ["10.0.0.1"]}'
expect "%00 segment -> 400" 400 PUT /v1/endpoints/a%00b -d '{"ips": ["10.0.0.1"]}'
expect "%2F segment -> 400" 400 GET /v1/endpoints/a%2Fb
expect "escaped .. -> 400" 400 DELETE /v1/policies/%2e%2e/x --path-as-is
expect "overlong segment -> 400" 400 GET "/v1/endpoints/$(head -c 300 /dev/zero | tr '\0' a)"
expect "bad endpoint id -> 400" 400 PUT /v1/endpoints/-x -d '{"ips": ["10.0.0.1"]}'
expect "huge header -> refused" 431 GET /v1/status -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' a)"
[ "$code" = 431 ] || { [ "$code" -ge 400 ] 2>/dev/null && t_pass "huge header refused with $code"; }
unchanged "404/405/400s"
t_check "no temporary files left in the state dir" bash -c "! find '$T_TMP/state' -name '.tmp*' | grep -q ."

# ---- deletes
expect "DELETE policy dry run" 200 DELETE "/v1/policies/shop/shop?dry_run=1"
t_check "dry run delete: db loses isolation" [ "$(jq_ '[c for c in d["changes"] if c["endpoint"] == "web"][0]["egress"]["isolated"]')" = "[True, False]" ]
expect "DELETE policy" 200 DELETE /v1/policies/shop/shop
expect "DELETE policy json" 200 DELETE /v1/policies/shop/json
t_check "policy file removed" [ ! -e "$T_TMP/state/policies/shop.shop" ]
t_check_not "kernel: db's table gone (no policy isolates it)" t_nft db list table inet mseg
t_check "attacker reaches db again" t_tcp attacker 10.201.0.3 5432
expect "DELETE endpoint" 200 DELETE /v1/endpoints/web
expect "DELETE endpoint again -> 404" 404 DELETE /v1/endpoints/web
expect "GET /v1/flows answers" 200 GET /v1/flows
[ "$code" = 200 ] || echo "  (flows: $(body))"
t_check "metrics count answers by code" bash -c "curl -s --unix-socket '$SOCK' http://localhost/metrics | grep -q '^mseg_api_requests_total{code=\"404\"} [1-9]'"
if command -v promtool >/dev/null; then
	curl -s --unix-socket "$SOCK" http://localhost/metrics >"$T_TMP/metrics"
	t_check "promtool check metrics" bash -c "promtool check metrics <'$T_TMP/metrics'"
else
	echo "SKIP: promtool check metrics (promtool not installed; tests/tools/promcheck.py checks instead)"
fi
curl -s --unix-socket "$SOCK" http://localhost/metrics >"$T_TMP/metrics"
t_check "metrics: exposition format (promcheck.py)" python3 "$MSEG_ROOT/tests/tools/promcheck.py" <"$T_TMP/metrics"
t_check "SIGTERM exits cleanly" t_msegd_stop
t_check "socket removed on exit" [ ! -e "$SOCK" ]
t_done
