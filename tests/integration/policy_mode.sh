#!/bin/bash
# Staged enforcement per policy: a list in `mode: learn` (spec.learnFor)
# enforces (a refused port is dropped) and shows as learn, with the end of
# its stage, on its endpoints (`mseg get endpoints`, GET /v1/endpoints);
# `mseg mode` switches a policy to audit (a refused port passes, recorded
# audited) and back to learn for a given time; the mode and the end of
# learning survive a restart (kill -9) unchanged; bad input is refused
# naming the field, and changes nothing.
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds socat python3
SOCK="$T_TMP/api.sock"
export MSEG_SERVER="unix:$SOCK"
LOG="$T_TMP/flows.jsonl"

t_endpoints client:1 server:2 || { t_fail "setup"; exit 1; }
t_tcp_server server 8080
t_tcp_server server 9090
t_wait_port server 8080 && t_wait_port server 9090 || { t_fail "servers"; exit 1; }

ep_json() { # ID FIELD: mode.ingress, mode.egress or learn_until of endpoint ID
	"$MSEG" get endpoints "$1" -o json | python3 -c 'import json, sys
e = json.load(sys.stdin)
f = sys.argv[1].split(".")
v = e.get(f[0])
if len(f) > 1:
    v = (v or {}).get(f[1])
print(v)' "$2"
}

t_msegd_start --resync 0 --flow-log "$LOG"
t_check "msegd ready" t_wait_log "msegd ready"
for e in client:1 server:2; do
	"$MSEG" endpoint add "${e%%:*}" --netns "$(t_netns_path "${e%%:*}")" \
		--ip "10.201.0.${e##*:}" --label app="${e%%:*}" >/dev/null || t_fail "endpoint $e"
done
cat >"$T_TMP/pair.yaml" <<EOF
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: pair, namespace: default}
spec:
  mode: learn
  learnFor: 2h
  groups:
    client: {selector: {app: client}}
    server: {selector: {app: server}}
  allow:
    - {from: client, to: server, ports: [tcp/8080]}
EOF
t0=$(date +%s)
t_check "a learn list applies" "$MSEG" apply -f "$T_TMP/pair.yaml"
t_check "learn enforces: tcp/8080 passes" t_tcp client 10.201.0.2 8080
t_check_not "learn enforces: tcp/9090 is refused" t_tcp client 10.201.0.2 9090
t_check "server's ingress is in learn mode" [ "$(ep_json server mode.ingress)" = learn ]
t_check "client's egress too" [ "$(ep_json client mode.egress)" = learn ]
until1=$(ep_json server learn_until)
t_check "learning ends 2h after the apply ($until1)" python3 -c '
import sys, datetime
u = datetime.datetime.strptime(sys.argv[1][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()
sys.exit(0 if abs(u - (int(sys.argv[2]) + 7200)) <= 5 else 1)' "$until1" "$t0"
"$MSEG" get endpoints >"$T_TMP/table"
sed 's/^/    /' "$T_TMP/table"
t_check "get endpoints: a MODE column saying learn" grep -Eq '^server +default +server +10\.201\.0\.2 +yes +learn +api' "$T_TMP/table"
t_check "get endpoints: when learning ends" grep -q "^  learning until $until1" "$T_TMP/table"

# switched through the CLI: audit, then learn again for 30m
t_check "mseg mode default/pair audit" "$MSEG" mode default/pair audit
t_check "audit: server's ingress says audit" [ "$(ep_json server mode.ingress)" = audit ]
t_check "get policies: MODE audit" bash -c "'$MSEG' get policies | grep -Eq '^default +pair +AllowList +audit '"
t_check "GET /v1/policies/default/pair: mode audit, set through the API" python3 -c '
import json, subprocess, sys
p = json.loads(subprocess.run(sys.argv[1:], capture_output=True).stdout)
sys.exit(0 if p["mode"] == "audit" and p["mode_set"] == "api" and "learn_until" not in p else 1)' \
	"$MSEG" get policies default/pair -o json
t_check "audit: tcp/9090 passes" t_tcp client 10.201.0.2 9090
t_check "... recorded as audited" t_flow_has "$LOG" endpoint=client direction=egress dport=9090 \
	verdict=audited
out=$("$MSEG" mode default/pair learn --for 30m)
t_check "mseg mode default/pair learn --for 30m ($out)" grep -q "mode learn until 20" <<<"$out"
t_check_not "learn again: tcp/9090 refused" t_tcp client 10.201.0.2 9090
until2=$(ep_json server learn_until)
t_check "the new stage ends 30m from now ($until2)" python3 -c '
import sys, datetime, time
u = datetime.datetime.strptime(sys.argv[1][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()
sys.exit(0 if abs(u - (time.time() + 1800)) <= 10 else 1)' "$until2"

# a restart keeps the mode and the end of learning
kill -9 "$T_MSEGD_PID"; wait "$T_MSEGD_PID" 2>/dev/null
mark=$(t_log_lines)
t_msegd_start --resync 0 --flow-log "$LOG"
t_check "restarted after kill -9" t_wait_log "msegd ready" "$mark"
t_check "after the restart: still learn" [ "$(ep_json server mode.ingress)" = learn ]
t_check "after the restart: the same end ($until2)" [ "$(ep_json server learn_until)" = "$until2" ]
t_check_not "after the restart: tcp/9090 refused" t_tcp client 10.201.0.2 9090

# back to the document; then enforce
t_check "mseg mode default/pair enforce" "$MSEG" mode default/pair enforce
t_check "enforce: no learning shown" [ "$(ep_json server learn_until)" = None ] 
t_check "enforce: server's ingress says enforce" [ "$(ep_json server mode.ingress)" = enforce ]

# bad input: refused, naming the field; nothing changes
gen=$(curl -s --unix-socket "$SOCK" http://x/v1/status | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])')
out=$("$MSEG" mode default/pair learn --for 5y 2>&1); rc=$?
t_check "mode --for 5y: usage error (exit 2)" [ "$rc" = 2 ]
t_check "... naming --for" grep -q -- "--for '5y'" <<<"$out"
out=$("$MSEG" mode default/nope audit 2>&1); rc=$?
t_check "mode of a missing policy: exit 1" [ "$rc" = 1 ]
t_check "... naming it" grep -q "no policy 'default/nope'" <<<"$out"
code=$(curl -s -o "$T_TMP/r.json" -w '%{http_code}' -X PUT --unix-socket "$SOCK" \
	http://x/v1/policies/default/pair/mode -d '{"mode": "audit", "learnFor": "1h"}')
t_check "PUT .../mode with learnFor and audit: 400 naming learnFor" \
	bash -c "[ $code = 400 ] && grep -q 'learnFor: only with mode learn' '$T_TMP/r.json'"
sed 's/learnFor: 2h/learnFor: 2 hours/' "$T_TMP/pair.yaml" >"$T_TMP/bad.yaml"
out=$("$MSEG" apply -f "$T_TMP/bad.yaml" 2>&1); rc=$?
t_check "spec.learnFor '2 hours': refused (exit 1)" [ "$rc" = 1 ]
t_check "... with file:line:col and the field ($out)" grep -q 'bad.yaml:6:[0-9]*: spec.learnFor' <<<"$out"
gen2=$(curl -s --unix-socket "$SOCK" http://x/v1/status | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])')
t_check "the refusals changed nothing (generation $gen)" [ "$gen2" = "$gen" ]
t_check "still enforce" [ "$(ep_json server mode.ingress)" = enforce ]
t_done
