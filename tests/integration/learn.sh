#!/bin/bash
# From audit to enforce with `mseg learn`: a small app (web, api, db, each
# in its own namespace, several ports) and one outside peer (a namespace
# that is no endpoint) run under an audit list; `mseg learn` turns the
# audited flows into an AllowList; applied (and the audit list removed),
# the same traffic passes with no drop; a new port and a new peer are
# refused and recorded. The same with the NetworkPolicies that
# `mseg learn --format networkpolicy` gives (checked against the Kubernetes
# schema when node and tests/kube/node_modules are there).
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds socat

t_endpoints web:1 api:2 db:3 outside:7 || { t_fail "setup"; exit 1; }
export MSEG_SERVER="unix:$T_TMP/api.sock"
LOG="$T_TMP/flows.jsonl"

t_tcp_server web 80
t_tcp_server api 8080
t_tcp_server api 8081
t_tcp_server db 5432
t_udp_server outside 53
for p in "web 80" "api 8080" "api 8081" "db 5432"; do
	t_wait_port $p || { t_fail "server $p"; exit 1; }
done

# the app's traffic; every step must succeed (audit passes everything)
traffic() {
	t_tcp outside 10.201.0.1 80 &&     # an outside client of web
	t_tcp web 10.201.0.2 8080 &&
	t_tcp web 10.201.0.2 8081 &&
	t_tcp api 10.201.0.3 5432 &&
	t_udp api 10.201.0.7 53            # api asks an outside resolver
}
dropped() { # how many dropped records the API holds
	"$MSEG" flows --verdict dropped -o json 2>/dev/null | grep -c .
}

t_msegd_start --resync 0 --flow-log "$LOG"
t_check "msegd ready" t_wait_log "msegd ready"
for e in web:1 api:2 db:3; do
	"$MSEG" endpoint add "${e%%:*}" --netns "$(t_netns_path "${e%%:*}")" --ip "10.201.0.${e##*:}" \
		--label app="${e%%:*}" --label tier=t"${e##*:}" >/dev/null || t_fail "endpoint $e"
done
cat >"$T_TMP/audit.yaml" <<EOF
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: audit, namespace: default}
spec:
  mode: audit
  groups:
    all: {selector: {}}
EOF
t_check "audit list applied" "$MSEG" apply -f "$T_TMP/audit.yaml"
t_check "the app's traffic passes in audit mode" traffic
t_check "its flows are recorded as audited" t_flow_has "$LOG" endpoint=db direction=ingress \
	dport=5432 verdict=audited

"$MSEG" learn --namespace default >"$T_TMP/learned.yaml" 2>"$T_TMP/learn.err"
t_check "mseg learn succeeds" [ $? -eq 0 ]
sed 's/^/    /' "$T_TMP/learned.yaml"
has() { grep -qE -- "$1" "$T_TMP/learned.yaml"; }
t_check "learned: groups by label, not address" has '^    web: \{selector: \{"app": "web"\}\}$'
t_check "learned: web -> api on both ports" has '\{from: web, to: api, ports: \[tcp/8080, tcp/8081\]\}'
t_check "learned: api -> db tcp/5432" has '\{from: api, to: db, ports: \[tcp/5432\]\}'
t_check "learned: the outside client as a /32" has 'web-clients: \{cidrs: \[10.201.0.7/32\]\}'
t_check "learned: api's outside resolver, udp/53" has '\{from: api, to: api-upstreams, ports: \[udp/53\]\}'
t_check "learned: a comment with count and times per rule" \
	has '^    # [0-9]+ flows?, first 20[0-9-]+T[0-9:.]+Z, last 20[0-9-]+T[0-9:.]+Z$'
ports=$(grep -oE '(tcp|udp)/[0-9]+' "$T_TMP/learned.yaml" | sort -u | tr '\n' ' ')
t_check "learned: exactly the destination ports used, no ephemeral source port ($ports)" \
	[ "$ports" = "tcp/5432 tcp/80 tcp/8080 tcp/8081 udp/53 " ]

# the same allows as NetworkPolicies (applied further down)
"$MSEG" learn --namespace default --format networkpolicy >"$T_TMP/netpol.yaml" 2>"$T_TMP/learn.err"
t_check "mseg learn --format networkpolicy succeeds" [ $? -eq 0 ]
sed 's/^/    /' "$T_TMP/netpol.yaml"
t_check "networkpolicy: one NetworkPolicy per group (web, api, db)" \
	[ "$(grep -c '^kind: NetworkPolicy$' "$T_TMP/netpol.yaml")" = 3 ]
t_check "networkpolicy: api's ingress from web's pods on both ports" python3 -c '
import sys, yaml
d = {x["metadata"]["name"]: x for x in yaml.safe_load_all(open(sys.argv[1])) if x}
api = d["learned-api"]["spec"]
assert api["podSelector"] == {"matchLabels": {"app": "api"}}, api
assert api["policyTypes"] == ["Ingress", "Egress"], api
assert {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
        "ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 8081}]} in api["ingress"], api
assert {"to": [{"ipBlock": {"cidr": "10.201.0.7/32"}}],
        "ports": [{"protocol": "UDP", "port": 53}]} in api["egress"], api
' "$T_TMP/netpol.yaml"
t_check "networkpolicy: a comment with count and times per rule" \
	grep -qE '^    # [0-9]+ flows?, first 20[0-9-]+T[0-9:.]+Z, last 20[0-9-]+T[0-9:.]+Z$' "$T_TMP/netpol.yaml"
# the Kubernetes schema (kubernetes-models, installed for the API stand-in)
KM="$MSEG_ROOT/tests/kube/node_modules/kubernetes-models"
if command -v node >/dev/null && [ -d "$KM" ]; then
	python3 -c 'import json, sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
	if d: print(json.dumps(d))' "$T_TMP/netpol.yaml" >"$T_TMP/netpol.jsonl"
	t_check "networkpolicy: valid against the Kubernetes schema (kubernetes-models)" \
		env KM="$KM" node -e '
const { NetworkPolicy } = require(process.env.KM + "/networking.k8s.io/v1/NetworkPolicy");
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n");
for (const l of lines) new NetworkPolicy(JSON.parse(l)).validate();
console.log("    " + lines.length + " NetworkPolicies valid");
' "$T_TMP/netpol.jsonl"
else
	echo "SKIP: NetworkPolicy schema check (node or tests/kube/node_modules missing)"
fi

t_check "the learned list applies" "$MSEG" apply -f "$T_TMP/learned.yaml"
t_check "the audit list is removed" "$MSEG" delete policy default/audit
t_check "enforced: web is isolated now" bash -c "ip netns exec $(t_ns web) nft list chain inet mseg ingress >/dev/null"
before=$(dropped)
t_check "enforced: the same traffic passes" traffic
t_check "enforced: no drop recorded for it" [ "$(dropped)" = "$before" ]
t_check_not "enforced: a new port (web -> api tcp/9999) is refused" t_tcp web 10.201.0.2 9999
t_check "... and recorded as dropped (at web's egress, where it is first refused)" \
	t_flow_has "$LOG" endpoint=web direction=egress dst=10.201.0.2 dport=9999 verdict=dropped
t_check_not "enforced: a new peer (outside -> api tcp/8080) is refused" t_tcp outside 10.201.0.2 8080
t_check "... and recorded as dropped" t_flow_has "$LOG" endpoint=api direction=ingress \
	src=10.201.0.7 dport=8080 verdict=dropped

# replay: a dry run of the learned list plus web -> api tcp/9999 says which
# recorded flows would change verdict, and changes nothing
{ cat "$T_TMP/learned.yaml"; echo "    - {from: web, to: api, ports: [tcp/9999]}"; } >"$T_TMP/wider.yaml"
curl -s -X PUT --data-binary @"$T_TMP/wider.yaml" --unix-socket "$T_TMP/api.sock" \
	"http://x/v1/policies/default/learned?dry_run=1&replay=1" >"$T_TMP/replay.json"
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)
replay_has() { # a python expression over the replay's groups g
	"$PY" -c 'import json, sys
g = json.load(open(sys.argv[1]))["replay"]["groups"]
sys.exit(0 if eval(sys.argv[2]) else 1)' "$T_TMP/replay.json" "$1"
}
t_check "replay: web -> api tcp/9999, recorded dropped, would be allowed" replay_has \
	'any(x["endpoint"] == "web" and x["direction"] == "egress" and x["peer"] == "10.201.0.2" and x.get("port") == 9999 and x["from"] == "dropped" and x["to"] == "allowed" and x["records"] >= 1 for x in g)'
t_check "replay: outside -> api tcp/8080 stays refused (not listed)" replay_has \
	'not any(x.get("port") == 8080 and x["peer"] == "10.201.0.7" for x in g)'
t_check "replay: the app's audited flows would be allowed, none dropped" replay_has \
	'any(x.get("port") == 5432 and x["from"] == "audited" and x["to"] == "allowed" for x in g) and not any(x.get("port") in (80, 5432, 8080, 8081, 53) and x["to"] == "dropped" for x in g)'
t_check_not "replay is a dry run: web -> api tcp/9999 still refused" t_tcp web 10.201.0.2 9999

# the NetworkPolicies instead of the list: the same traffic passes, a new
# port is refused
t_check "the learned list is removed" "$MSEG" delete policy default/learned
t_check "the learned NetworkPolicies apply" "$MSEG" apply -f "$T_TMP/netpol.yaml"
t_check "NetworkPolicies: web is isolated" bash -c "ip netns exec $(t_ns web) nft list chain inet mseg ingress >/dev/null"
before=$(dropped)
t_check "NetworkPolicies: the same traffic passes" traffic
t_check "NetworkPolicies: no drop recorded for it" [ "$(dropped)" = "$before" ]
t_check_not "NetworkPolicies: a new port (api -> db tcp/5433) is refused" t_tcp api 10.201.0.3 5433
t_check "... and recorded as dropped" \
	t_flow_has "$LOG" endpoint=api direction=egress dst=10.201.0.3 dport=5433 verdict=dropped

out=$("$MSEG" learn --format nftables 2>&1); rc=$?
t_check "learn --format nftables: usage error (exit 2) naming the choices" \
	bash -c "[ $rc -eq 2 ] && grep -q -- \"--format 'nftables': allowlist or networkpolicy\" <<<\"\$1\"" _ "$out"
out=$("$MSEG" learn --aggregate /99 2>&1); rc=$?
t_check "learn --aggregate /99: usage error (exit 2)" [ "$rc" -eq 2 ]
t_check "... naming the flag and the range" grep -q -- "--aggregate '/99': a prefix length /1 to /32" <<<"$out"
code=$(curl -s -o "$T_TMP/r.json" -w '%{http_code}' --unix-socket "$T_TMP/api.sock" \
	"http://x/v1/recommendations?namespace=Bad_NS")
t_check "GET /v1/recommendations with a bad namespace: 400 naming it" \
	bash -c "[ $code = 400 ] && grep -q \"namespace 'Bad_NS'\" '$T_TMP/r.json'"
code=$(curl -s -o "$T_TMP/r.json" -w '%{http_code}' --unix-socket "$T_TMP/api.sock" \
	"http://x/v1/recommendations?format=nft")
t_check "GET /v1/recommendations with a bad format: 400 naming it and the choices" \
	bash -c "[ $code = 400 ] && grep -q \"format 'nft': allowlist or networkpolicy\" '$T_TMP/r.json'"
t_done
