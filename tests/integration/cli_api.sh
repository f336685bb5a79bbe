#!/bin/bash
# The mseg CLI against a running msegd over its unix socket: status, help,
# endpoint add/del, apply (file, directory, multi-document, a List's items
# one by one, --dry-run),
# get (table, json, yaml), check (allowed and denied pairs, exit status),
# delete, flows with each filter and --follow while traffic arrives, and the
# messages when msegd is not there. Exit status: 0 ok, 1 failure, 2 usage.
. "$(dirname "$0")/../lib.sh"
t_require_root
export MSEG_SERVER="unix:$T_TMP/api.sock"

t_endpoints web:1 db:3 attacker:4 || { t_fail "setup"; exit 1; }
t_tcp_server db 5432
t_tcp_server db 5433

# run NAME WANT-STATUS CMD...: output in $T_TMP/out, $T_TMP/err
run() {
	local n=$1 want=$2; shift 2
	"$@" >"$T_TMP/out" 2>"$T_TMP/err"
	local rc=$?
	if [ "$rc" = "$want" ]; then return 0; fi
	t_fail "$n: exit $rc, want $want: $(head -c 300 "$T_TMP/err")"
	return 1
}
out_has() { grep -q -- "$1" "$T_TMP/out"; }
err_has() { grep -q -- "$1" "$T_TMP/err"; }

# ---- no daemon
run "no daemon" 1 "$MSEG" status && t_check "no daemon: clear message" \
	err_has "cannot reach msegd at unix:$T_TMP/api.sock: No such file or directory"

t_msegd_start --resync 0
t_check "msegd starts" t_wait_log "msegd ready"
for i in $(seq 1 50); do [ -S "$T_TMP/api.sock" ] && break; sleep 0.1; done

run "help" 0 "$MSEG" help && {
	ok=1
	for c in status apply delete get endpoint flows check compile help; do
		grep -q "^  $c " "$T_TMP/out" || { ok=0; echo "  help lacks $c"; }
	done
	t_check "help lists every command" [ $ok = 1 ]
}
run "help flows" 0 "$MSEG" help flows && t_check "help flows lists --since" out_has "--since"
run "status" 0 "$MSEG" status && t_check "status table" out_has "^version:"
run "status -o json" 0 "$MSEG" status -o json && t_check "status json" python3 -c "import json; json.load(open('$T_TMP/out'))"

# ---- endpoints
run "endpoint add db" 0 "$MSEG" endpoint add db --netns "$(t_netns_path db)" --ip 10.201.0.3 --ip fd00:201::3 \
	--namespace shop --label app=db && t_check "endpoint add says created" out_has "endpoint db created"
run "endpoint add web" 0 "$MSEG" endpoint add web --netns "$(t_netns_path web)" --ip 10.201.0.1 --namespace shop --label app=web
run "endpoint add tmp" 0 "$MSEG" endpoint add tmp --netns "$(t_netns_path attacker)" --ip 10.201.0.99
run "get endpoints" 0 "$MSEG" get endpoints && t_check "endpoints table" bash -c "grep -Eq '^db +shop +db +10.201.0.3,fd00:201::3 +yes +[a-z:,-]+ +api' '$T_TMP/out'"
run "get endpoints -o json" 0 "$MSEG" get endpoints -o json && t_check "endpoints json" \
	python3 -c "import json; d=json.load(open('$T_TMP/out')); assert sorted(e['id'] for e in d['endpoints']) == ['db','tmp','web']"
run "endpoint del" 0 "$MSEG" endpoint del tmp
run "endpoint del again" 1 "$MSEG" endpoint del tmp && t_check "endpoint del: says what is missing" err_has "no endpoint 'tmp'"
run "endpoint add without --ip" 2 "$MSEG" endpoint add x --netns /run/netns/x && t_pass "endpoint add without --ip: usage"
run "endpoint add bad label" 2 "$MSEG" endpoint add x --netns /x --ip 10.0.0.1 --label nolabel && t_pass "bad --label: usage"

# ---- apply
mkdir -p "$T_TMP/pol"
{
	t_pair_policy_yaml web db 5432 shop shop
	echo ---
	cat <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: extra, namespace: shop}
spec:
  groups:
    db: {selector: {app: db}}
  allow:
    - {from: world, to: db, ports: [udp/53]}
EOF2
} >"$T_TMP/pol/shop.yaml"
run "apply --dry-run" 0 "$MSEG" apply -f "$T_TMP/pol/shop.yaml" --dry-run && {
	t_check "dry run: would create both" bash -c "grep -q 'policy shop/shop would create' '$T_TMP/out' && grep -q 'policy shop/extra would create' '$T_TMP/out'"
	t_check "dry run: shows db's new entry" out_has "+ 10.201.0.1 . tcp . 5432"
}
t_check "dry run stored nothing" [ -z "$(ls -A "$T_TMP/state/policies")" ]
t_check_not "dry run programmed nothing" t_nft db list table inet mseg
run "apply" 0 "$MSEG" apply -f "$T_TMP/pol/shop.yaml" && t_check "apply: created" out_has "policy shop/shop created"
t_check "applied: db's kernel table" bash -c "ip netns exec $(t_ns db) nft list set inet mseg in4_port | grep -q '10.201.0.1 . tcp . 5432'"
run "apply dir" 0 "$MSEG" apply -f "$T_TMP/pol" && t_check "apply dir: the same document is unchanged" out_has "^policy shop/shop unchanged$"
printf 'apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: bad, namespace: shop}\nspec:\n  groups:\n    db: {selectr: {app: db}}\n' >"$T_TMP/bad.yaml"
run "apply bad file" 1 "$MSEG" apply -f "$T_TMP/bad.yaml" && t_check "apply error names file:line:col" err_has "^$T_TMP/bad.yaml:6:"
run "apply missing -f" 2 "$MSEG" apply && t_pass "apply without -f: usage"
run "get policies" 0 "$MSEG" get policies && t_check "policies table" bash -c "grep -q '^shop  *shop  *AllowList  *enforce  *ingress,egress' '$T_TMP/out'"
run "get policy -o yaml" 0 "$MSEG" get policies shop/shop -o yaml && t_check "yaml shows the document" out_has "tcp/5432"
run "get rules" 0 "$MSEG" get rules && t_check "rules table: db in sync" bash -c "grep -q '^db  *yes  *in_sync' '$T_TMP/out'"
run "get rules db" 0 "$MSEG" get rules db && t_check "rules db: the table" out_has "table inet mseg"
run "get bogus" 2 "$MSEG" get bogus && t_pass "get bogus: usage"

# ---- check
run "check allowed" 0 "$MSEG" check --from web --to db --port tcp/5432 && \
	t_check "check: names the rule" out_has "ingress of 'db' allowed by policy shop/shop rule 0"
run "check denied" 1 "$MSEG" check --from 10.201.0.4 --to db --port tcp/5432 && \
	t_check "check: names the isolating policy" out_has "isolated by policy shop/shop"
run "check by addresses" 0 "$MSEG" check --from 10.201.0.1 --to 10.201.0.3 --port tcp/5432
run "check -o json" 1 "$MSEG" check --from web --to db --port tcp/80 -o json && \
	t_check "check json" python3 -c "import json; d=json.load(open('$T_TMP/out')); assert d['verdict'] == 'denied'"
run "check unknown" 2 "$MSEG" check --from nope --to db --port tcp/1 && t_check "check unknown: message" err_has "not an endpoint id or an address"
run "check usage" 2 "$MSEG" check --from web && t_pass "check without --to: usage"

# ---- flows: refused connections become records
have_flows=1
run "flows" 0 "$MSEG" flows || have_flows=0
if [ $have_flows = 1 ]; then
	"$MSEG" flows --follow -o json >"$T_TMP/follow" 2>"$T_TMP/follow.err" &
	follow=$!
	T_PIDS+=("$follow")
	sleep 0.5
	t_check_not "attacker -> db 5432 refused" t_tcp attacker 10.201.0.3 5432
	t_check_not "web -> db 5433 refused" t_tcp web 10.201.0.3 5433
	sleep 1.5
	t_check "follow: records arrived while it ran" grep -q '"dport":5432' "$T_TMP/follow"
	t_check "follow: later records too" grep -q '"dport":5433' "$T_TMP/follow"
	kill "$follow" 2>/dev/null; wait "$follow" 2>/dev/null
	flows_has() { # EXPECT(0 match|1 none) ARGS...
		local want=$1; shift
		"$MSEG" flows -o json "$@" >"$T_TMP/fl" 2>&1 || return 1
		if [ "$want" = 0 ]; then grep -q '"dport":5432' "$T_TMP/fl"; else ! grep -q '"dport":5432' "$T_TMP/fl"; fi
	}
	t_check "flows: table" bash -c "'$MSEG' flows | grep -q '10.201.0.3:5432 .* dropped'"
	t_check "flows --endpoint db" flows_has 0 --endpoint db
	t_check "flows --endpoint web (none)" flows_has 1 --endpoint web
	t_check "flows --namespace shop" flows_has 0 --namespace shop
	t_check "flows --namespace other (none)" flows_has 1 --namespace other
	t_check "flows --direction ingress" flows_has 0 --direction ingress
	t_check "flows --direction egress (none for 5432)" flows_has 1 --direction egress
	t_check "flows --verdict dropped" flows_has 0 --verdict dropped
	t_check "flows --verdict audited (none)" flows_has 1 --verdict audited
	t_check "flows --proto tcp" flows_has 0 --proto tcp
	t_check "flows --proto udp (none)" flows_has 1 --proto udp
	t_check "flows --port 5432" flows_has 0 --port 5432
	t_check "flows --port 1 (none)" flows_has 1 --port 1
	t_check "flows --since 5m" flows_has 0 --since 5m
	t_check "flows --since (future) none" flows_has 1 --since "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
	t_check "flows --limit 1: one record" bash -c "[ \$('$MSEG' flows -o json --limit 1 | wc -l) = 1 ]"
	run "flows --since bogus" 2 "$MSEG" flows --since yesterday && t_pass "flows --since bogus: usage"
else
	echo "SKIP: flows (msegd has no flow ring: $(cat "$T_TMP/err"))"
fi

# ---- apply of a List (as kubectl get -o yaml|json prints): each item is a
# request, and msegd stores that item alone as the policy's document
cat >"$T_TMP/list.yaml" <<'EOF2'
apiVersion: v1
kind: List
metadata: {resourceVersion: ""}
items:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    name: np-a
    namespace: lists
  spec:
    # from app b only
    podSelector: {matchLabels: {app: a}}
    ingress:
    - from:
      - podSelector: {matchLabels: {app: b}}
      ports:
      - {port: 80}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: np-b, namespace: lists}
  spec: {podSelector: {}, policyTypes: [Ingress]}
EOF2
cat >"$T_TMP/list.json" <<'EOF2'
{
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicyList",
    "items": [
        {
            "metadata": {"name": "np-c", "namespace": "lists"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]}
        },
        {
            "metadata": {"name": "np-d", "namespace": "lists"},
            "spec": {"podSelector": {"matchLabels": {"app": "d"}}, "ingress": [{}]}
        }
    ]
}
EOF2
# the stored document of lists/NAME: one NetworkPolicy named NAME, no list
stored_is_item() { # NAME OTHER
	"$MSEG" get policies "lists/$1" -o json >"$T_TMP/got" 2>&1 || return 1
	python3 - "$T_TMP/got" "$1" "$2" <<'EOF2'
import json, sys
doc = json.load(open(sys.argv[1]))["document"]
name, other = sys.argv[2], sys.argv[3]
if doc.lstrip().startswith("{"):
    d = json.loads(doc)
    assert d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == name, d
else:
    lines = doc.splitlines()
    assert "apiVersion: networking.k8s.io/v1" in lines and "kind: NetworkPolicy" in lines, doc
    assert "  name: " + name in lines or "metadata: {name: " + name + ", namespace: lists}" in lines, doc
assert "items" not in doc and "List" not in doc and other not in doc, doc
EOF2
}
run "apply a List" 0 "$MSEG" apply -f "$T_TMP/list.yaml" && t_check "List: each item created" \
	bash -c "grep -q '^policy lists/np-a created' '$T_TMP/out' && grep -q '^policy lists/np-b created' '$T_TMP/out'"
t_check "List: np-a is stored alone" stored_is_item np-a np-b
t_check "List: np-b is stored alone" stored_is_item np-b np-a
run "apply the List again" 0 "$MSEG" apply -f "$T_TMP/list.yaml" && t_check "List again: both unchanged" \
	bash -c "grep -q '^policy lists/np-a unchanged' '$T_TMP/out' && grep -q '^policy lists/np-b unchanged' '$T_TMP/out'"
run "apply a NetworkPolicyList" 0 "$MSEG" apply -f "$T_TMP/list.json" && t_check "NetworkPolicyList: each item created" \
	bash -c "grep -q '^policy lists/np-c created' '$T_TMP/out' && grep -q '^policy lists/np-d created' '$T_TMP/out'"
t_check "NetworkPolicyList: np-c is stored alone, with its kind" stored_is_item np-c np-d
t_check "NetworkPolicyList: np-d is stored alone, with its kind" stored_is_item np-d np-c
for n in np-a np-b np-c np-d; do run "delete $n" 0 "$MSEG" delete policy "lists/$n"; done

# ---- delete
run "delete policy --dry-run" 0 "$MSEG" delete policy shop/extra --dry-run && t_check "delete dry run" out_has "would delete"
run "delete policy" 0 "$MSEG" delete policy shop/extra && t_check "delete: deleted" out_has "policy shop/extra deleted"
run "delete policy again" 1 "$MSEG" delete policy shop/extra
run "delete usage" 2 "$MSEG" delete shop/extra && t_pass "delete without 'policy': usage"
t_check "msegd still fine" t_msegd_stop
t_done
