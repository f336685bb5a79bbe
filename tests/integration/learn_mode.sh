#!/bin/bash
# `mode: learn` learns: an app (web, api, db) under a broad list in mode
# learn, real TCP and UDP traffic on a few ports between namespaces (and
# with an outside peer that is no endpoint); msegd folds the kernel's
# accepted-connection counters into summaries (`mseg get accepted`), which
# survive a kill -9 (first_seen unchanged) and a table replace (a replay
# still sees them); `mseg learn` turns them into a list that covers exactly
# the ports and peers used; when the learning stage ends (its end put in
# the past in STATE/stages) the mode shows enforce and the summaries stop
# growing; the learned list, enforced, passes the same traffic with no drop
# and refuses an unused port.
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds socat python3

t_endpoints web:1 api:2 db:3 outside:7 || { t_fail "setup"; exit 1; }
export MSEG_SERVER="unix:$T_TMP/api.sock"
LOG="$T_TMP/flows.jsonl"

t_tcp_server web 80
t_tcp_server api 8080
t_tcp_server api 8081
t_tcp_server db 5432
t_udp_server db 5353
t_udp_server outside 53
for p in "web 80" "api 8080" "api 8081" "db 5432" "db 5353 udp" "outside 53 udp"; do
	t_wait_port $p || { t_fail "server $p"; exit 1; }
done

# the app's traffic; every step must pass
traffic() {
	t_tcp outside 10.201.0.1 80 &&     # an outside client of web
	t_tcp web 10.201.0.2 8080 &&
	t_tcp web 10.201.0.2 8080 &&
	t_tcp api 10.201.0.3 5432 &&
	t_udp api 10.201.0.3 5353 &&
	t_udp api 10.201.0.7 53            # api asks an outside resolver
}
dropped() { "$MSEG" flows --verdict dropped -o json 2>/dev/null | grep -c .; }
# acc EP DIR PEER PORT FIELD: a field of one summary (None: no such summary)
acc() {
	"$MSEG" get accepted "$1" -o json | python3 -c 'import json, sys
e = json.load(sys.stdin)
ep, d, peer, port, field = sys.argv[1:]
m = [a for a in e["accepted"] if a["direction"] == d and a["peer"] == peer and str(a.get("port")) == port]
print(m[0][field] if m else None)' "$@"
}
acc_is() { local want=$1; shift; [ "$(acc "$@")" = "$want" ]; }
ep_mode() { # ID DIR
	"$MSEG" get endpoints "$1" -o json | python3 -c 'import json, sys
print(json.load(sys.stdin)["mode"][sys.argv[1]])' "$2"
}
wait_for() { # SECONDS CMD...: until CMD succeeds
	local n=$(($1 * 10)); shift
	while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done
	return 1
}

t_msegd_start --resync 0 --seen-interval 1 --flow-log "$LOG"
t_check "msegd ready" t_wait_log "msegd ready"
for e in web:1 api:2 db:3; do
	"$MSEG" endpoint add "${e%%:*}" --netns "$(t_netns_path "${e%%:*}")" --ip "10.201.0.${e##*:}" \
		--label app="${e%%:*}" >/dev/null || t_fail "endpoint $e"
done
cat >"$T_TMP/broad.yaml" <<EOF
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: broad, namespace: default}
spec:
  mode: learn
  learnFor: 1h
  groups:
    all: {selector: {}}
    net: {cidrs: [10.201.0.0/24]}
  allow:
    - {from: all, to: all, ports: [tcp/1-65535, udp/1-65535]}
    - {from: net, to: all, ports: [tcp/1-65535]}
    - {from: all, to: net, ports: [udp/1-65535]}
EOF
t_check "a broad list in mode learn applies" "$MSEG" apply -f "$T_TMP/broad.yaml"
t_check "api's ingress is in learn mode" [ "$(ep_mode api ingress)" = learn ]
d0=$(dropped)
t_check "the app's traffic passes under it" traffic
t_check "summaries within 3 s: web -> api tcp/8080, 2 connections" \
	wait_for 3 acc_is 2 web egress 10.201.0.2 8080 connections
t_check "... api's ingress from web, 2 connections" [ "$(acc api ingress 10.201.0.1 8080 connections)" = 2 ]
t_check "... db's udp/5353 from api" [ "$(acc db ingress 10.201.0.2 5353 connections)" = 1 ]
t_check "... api's egress to the outside resolver udp/53" [ "$(acc api egress 10.201.0.7 53 connections)" = 1 ]
t_check "... web's ingress from the outside client" [ "$(acc web ingress 10.201.0.7 80 connections)" = 1 ]
t_check "... no summary of the unused tcp/8081" [ "$(acc api ingress 10.201.0.1 8081 connections)" = None ]
"$MSEG" get accepted >"$T_TMP/table"
sed 's/^/    /' "$T_TMP/table"
t_check "get accepted (table): a row per endpoint, direction, peer and port" \
	grep -qE '^web +egress +10\.201\.0\.2 +tcp/8080 +2 +20' "$T_TMP/table"
first=$(acc web egress 10.201.0.2 8080 first_seen)
t_check "the summaries are in the state dir" grep -q '^ep web ' "$T_TMP/state/accepted"
curl -s --unix-socket "$T_TMP/api.sock" http://x/metrics >"$T_TMP/metrics"
t_check "/metrics: 8 summaries kept (web 2, api 4, db 2), none dropped" bash -c \
	"grep -q '^mseg_accepted_summaries 8$' '$T_TMP/metrics' &&
	 grep -q '^mseg_accepted_dropped_total 0$' '$T_TMP/metrics'"

# kill -9 keeps them: the same first_seen, and they go on counting
kill -9 "$T_MSEGD_PID"; wait "$T_MSEGD_PID" 2>/dev/null
mark=$(t_log_lines)
t_msegd_start --resync 0 --seen-interval 1 --flow-log "$LOG"
t_check "restarted after kill -9" t_wait_log "msegd ready" "$mark"
t_check "after the restart: web -> api still 2 connections" [ "$(acc web egress 10.201.0.2 8080 connections)" = 2 ]
t_check "after the restart: first_seen unchanged ($first)" [ "$(acc web egress 10.201.0.2 8080 first_seen)" = "$first" ]
t_check "one more connection" t_tcp web 10.201.0.2 8080
t_check "... counted once: 3" \
	wait_for 3 acc_is 3 web egress 10.201.0.2 8080 connections
t_check "... first_seen still $first" [ "$(acc web egress 10.201.0.2 8080 first_seen)" = "$first" ]

# mseg learn: exactly the ports and peers used, counts in the comments
"$MSEG" learn --namespace default >"$T_TMP/learned.yaml" 2>"$T_TMP/learn.err"
t_check "mseg learn succeeds" [ $? -eq 0 ]
sed 's/^/    /' "$T_TMP/learned.yaml"
t_check "learned from accepted connections (header)" \
	grep -qE '^# learned by mseg from 0 recorded flows and [0-9]+ accepted connections' "$T_TMP/learned.yaml"
t_check "rules carry accepted-connection counts and first/last seen" \
	grep -qE '^    # [0-9]+ accepted connections?, first 20.*, last 20' "$T_TMP/learned.yaml"
t_check "the learned rules: exactly the traffic seen" python3 -c '
import re, sys
text = open(sys.argv[1]).read()
groups = dict(re.findall(r"^    ([a-z0-9-]+): \{(.*)\}$", text, re.M))
rules = set()
for f, t, p in re.findall(r"- \{from: ([a-z0-9-]+), to: ([a-z0-9-]+), ports: \[(.*)\]\}", text):
    for port in p.split(", "):
        rules.add((groups[f], groups[t], port))
want = {
    ("cidrs: [10.201.0.7/32]", "selector: {\"app\": \"web\"}", "tcp/80"),
    ("selector: {\"app\": \"web\"}", "selector: {\"app\": \"api\"}", "tcp/8080"),
    ("selector: {\"app\": \"api\"}", "selector: {\"app\": \"db\"}", "tcp/5432"),
    ("selector: {\"app\": \"api\"}", "selector: {\"app\": \"db\"}", "udp/5353"),
    ("selector: {\"app\": \"api\"}", "cidrs: [10.201.0.7/32]", "udp/53"),
}
if rules != want:
    print("    got ", sorted(rules)); print("    want", sorted(want))
sys.exit(0 if rules == want else 1)' "$T_TMP/learned.yaml"

# a replace (to audit and back) starts the kernel's counters again; a
# replay still sees what was accepted, from the summaries
t_check "mseg mode default/broad audit" "$MSEG" mode default/broad audit
t_check "the kernel's seen set was replaced (empty)" bash -c \
	"! ip netns exec $(t_ns db) nft list set inet mseg in4_seen_port | grep -q 'tcp . 5432'"
grep -v 'tcp/5432' "$T_TMP/learned.yaml" | sed 's/name: "learned"/name: "broad"/' >"$T_TMP/tight.yaml"
"$MSEG" apply --dry-run --replay -f "$T_TMP/tight.yaml" -o json >"$T_TMP/tight.json"
t_check "replay of a list without tcp/5432: db <- api tcp/5432 allowed -> dropped, from the summaries" \
	python3 -c 'import json, sys
g = json.load(open(sys.argv[1]))["replay"]["groups"]
m = [x for x in g if x["endpoint"] == "db" and x["direction"] == "ingress" and x.get("port") == 5432]
ok = len(m) == 1 and m[0]["from"] == "allowed" and m[0]["to"] != "allowed" and m[0]["connections"] == 1
if not ok: print("    groups:", json.dumps(g))
sys.exit(0 if ok else 1)' "$T_TMP/tight.json"
t_check "mseg mode default/broad spec (learning again)" "$MSEG" mode default/broad spec
t_check "learn again" [ "$(ep_mode api ingress)" = learn ]

# the end of the learning stage, put in the past: enforce, no more counting
t_msegd_stop
awk -v t=$(( $(date +%s) - 10 )) '$1 == "default/broad" { $4 = t } { print }' \
	"$T_TMP/state/stages" >"$T_TMP/stages" && cp "$T_TMP/stages" "$T_TMP/state/stages"
mark=$(t_log_lines)
t_msegd_start --resync 0 --seen-interval 1 --flow-log "$LOG"
t_check "restarted with the stage's end in the past" t_wait_log "msegd ready" "$mark"
t_check "the stage is over: api's ingress says enforce" [ "$(ep_mode api ingress)" = enforce ]
n=$(acc web egress 10.201.0.2 8080 connections)
t_check "traffic after the stage" traffic
sleep 2.5
t_check "the summaries stopped growing ($n)" [ "$(acc web egress 10.201.0.2 8080 connections)" = "$n" ]
t_check "... and are still there for mseg learn" bash -c "'$MSEG' learn 2>/dev/null | grep -q 'tcp/8080'"

# the learned list, enforced in its place: the same traffic, no drop
t_check "the learned list applies" "$MSEG" apply -f "$T_TMP/learned.yaml"
t_check "the broad list goes" "$MSEG" delete policy default/broad
d1=$(dropped)
t_check "the same traffic passes under the learned list" traffic
sleep 1.5
t_check "... with no drop recorded ($d1 before, $(dropped) after)" [ "$(dropped)" = "$d1" ]
t_check_not "an unused port (tcp/8081) is refused" t_tcp web 10.201.0.2 8081
t_check "... and recorded dropped at web's egress" t_flow_has "$LOG" endpoint=web direction=egress dport=8081 \
	verdict=dropped
t_check "no drop before the learned list either ($d0)" [ "$d0" = 0 ]

# bad input names what is wrong
out=$("$MSEG" get accepted nope 2>&1); rc=$?
t_check "get accepted of an unknown endpoint: exit 1 naming it ($out)" \
	bash -c "[ $rc = 1 ] && grep -q \"no endpoint 'nope'\" <<<\"\$1\"" _ "$out"
out=$(timeout 5 "$MSEGD" --seen-interval 10s --state-dir "$T_TMP/x" \
	--listen "unix:$T_TMP/x.sock" 2>&1); rc=$?
t_check "msegd --seen-interval 10s: refused (exit 2) naming the flag" \
	bash -c "[ $rc = 2 ] && grep -q -- \"--seen-interval '10s'\" <<<\"\$1\"" _ "$out"
t_done
