#!/bin/bash
# What an operator sees from mseg, printed text and exit status: no silent
# success (an endpoint stored but not programmed exits 1; warnings and
# `unchanged` shown), coverage (COVERS, a policy's groups), a scriptable
# check (exit 0/1/2/3, the policies' port syntax and hints, audit mode
# named), truthful views (rules: empty sets left out, --all, --fresh),
# endpoint label through PATCH with --dry-run field changes, option-named
# errors, and flows for forensics (UID, source ports of an aggregated
# record, --follow new records only unless --updates, a stream msegd
# closes, records surviving kill -9 + restart with the default flow log).
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds socat setpriv
export MSEG_SERVER="unix:$T_TMP/api.sock"

t_endpoints web:1 db:3 attacker:4 aud:5 || { t_fail "setup"; exit 1; }
t_tcp_server db 5432

# run NAME WANT-STATUS CMD...: output in $T_TMP/out, $T_TMP/err
run() {
	local n=$1 want=$2; shift 2
	"$@" >"$T_TMP/out" 2>"$T_TMP/err"
	local rc=$?
	if [ "$rc" = "$want" ]; then return 0; fi
	t_fail "$n: exit $rc, want $want: $(head -c 300 "$T_TMP/err") $(head -c 300 "$T_TMP/out")"
	return 1
}
out_has() { grep -q -- "$1" "$T_TMP/out"; }
err_has() { grep -q -- "$1" "$T_TMP/err"; }
msegd_up() {
	t_msegd_start --resync 0 --flow-window 30 "$@"
	local i
	for i in $(seq 1 50); do [ -S "$T_TMP/api.sock" ] && "$MSEG" status >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

# ---- usage: --server must say which kind of server
run "--server without a scheme" 2 "$MSEG" --server "$T_TMP/api.sock" status && \
	t_check "--server error names the option" err_has "^mseg: --server '$T_TMP/api.sock': expected unix:/PATH"
run "check: msegd unreachable" 3 "$MSEG" check --from a --to b --port tcp/1 && \
	t_check "unreachable: says so" err_has "cannot reach msegd"

t_check "msegd starts (no --flow-log flag)" msegd_up

# ---- endpoints: created, not programmed, option-named errors
run "endpoint add web" 0 "$MSEG" endpoint add web --netns "$(t_netns_path web)" --ip 10.201.0.1 \
	--namespace shop --label app=web && t_check "endpoint add: created" out_has "^endpoint web created (generation"
run "endpoint add db" 0 "$MSEG" endpoint add db --netns "$(t_netns_path db)" --ip 10.201.0.3 \
	--namespace shop --label app=db
run "endpoint add db again" 0 "$MSEG" endpoint add db --netns "$(t_netns_path db)" --ip 10.201.0.3 \
	--namespace shop --label app=db && t_check "the same endpoint again: unchanged" out_has "^endpoint db unchanged$"
run "endpoint add aud" 0 "$MSEG" endpoint add aud --netns "$(t_netns_path aud)" --ip 10.201.0.5 \
	--namespace lab --label app=aud
run "endpoint add ghost" 1 "$MSEG" endpoint add ghost --netns "/run/netns/${T_PREFIX}-nosuch" \
	--ip 10.201.0.77 && {
	t_check "ghost: stored, but NOT programmed, and why" \
		err_has "^endpoint ghost stored (generation [0-9]*), but NOT programmed: .*${T_PREFIX}-nosuch"
	t_check_not "ghost: no success line" out_has "created"
}
run "endpoint add ghost again" 1 "$MSEG" endpoint add ghost --netns "/run/netns/${T_PREFIX}-nosuch" \
	--ip 10.201.0.77 && \
	t_check "ghost again: unchanged, but still NOT programmed" err_has "^endpoint ghost unchanged, but NOT programmed: "
run "endpoint del ghost" 0 "$MSEG" endpoint del ghost && t_check "del: deleted" out_has "^endpoint ghost deleted"
run "bad --label" 2 "$MSEG" endpoint add x --netns /run/netns/x --ip 10.0.0.1 --label 'bad key=v' && {
	t_check "bad --label: names the option" err_has "^mseg endpoint: --label 'bad key=v': 'bad key' is not a valid label key"
	t_check_not "bad --label: no position in built JSON" err_has "api:1:"
}
run "bad --ip" 2 "$MSEG" endpoint add x --netns /run/netns/x --ip 10.0.0.300 && \
	t_check "bad --ip: names the option" err_has "^mseg endpoint: --ip '10.0.0.300': not an IPv4 or IPv6 address"
run "duplicate --ip (refused by msegd)" 2 "$MSEG" endpoint add x --netns /run/netns/x --ip 10.201.0.88 --ip 10.201.0.88 && \
	t_check "msegd's refusal names the option" err_has "^mseg endpoint: --ip '10.201.0.88': .*duplicate address"
run "bad id" 2 "$MSEG" endpoint add 'x y' --netns /run/netns/x --ip 10.0.0.1 && \
	t_check "bad id: says the rule" err_has "endpoint id 'x y'"

# ---- endpoint label (PATCH), with --dry-run field changes
run "label --dry-run" 0 "$MSEG" endpoint label web app=api tier=fe --dry-run && {
	t_check "label dry run: would replace" out_has "^endpoint web would replace"
	t_check "label dry run: the field change" out_has "^  labels: app=web -> app=api,tier=fe$"
}
t_check "label dry run changed nothing" bash -c "'$MSEG' get endpoints web -o json | grep -q '\"app\": \"web\"'"
run "label" 0 "$MSEG" endpoint label web tier=fe && t_check "label: replaced" out_has "^endpoint web replaced (generation"
run "label remove" 0 "$MSEG" endpoint label web tier- && \
	t_check "label K- removes it" bash -c "'$MSEG' get endpoints web -o json | python3 -c 'import json,sys; assert json.load(sys.stdin)[\"labels\"] == {\"app\": \"web\"}'"
run "label bad" 2 "$MSEG" endpoint label web 'Bad Key=1' && t_check "label bad key: names the argument" err_has "label 'Bad Key=1'"
run "label unknown endpoint" 1 "$MSEG" endpoint label nosuch a=b && t_check "label unknown: says so" err_has "no endpoint 'nosuch'"
run "add --dry-run new" 0 "$MSEG" endpoint add new1 --netns "$(t_netns_path attacker)" --ip 10.201.0.4 --dry-run && \
	t_check "add dry run: new endpoint's fields" out_has "^  ips: - -> 10.201.0.4$"

# ---- apply: warnings, unchanged, COVERS, groups
mkdir -p "$T_TMP/pol"
t_pair_policy_yaml web db 5432 shop shop >"$T_TMP/pol/shop.yaml"
cat >"$T_TMP/pol/typo.yaml" <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: typo, namespace: shop}
spec:
  groups:
    db: {selector: {ap: db}}
  allow:
    - {from: world, to: db, ports: [tcp/5432]}
EOF2
cat >"$T_TMP/pol/empty.yaml" <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: e, namespace: nobody}
spec:
  groups:
    x: {selector: {app: x}}
  allow:
    - {from: world, to: x, ports: [tcp/80]}
EOF2
cat >"$T_TMP/pol/aud.yaml" <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: aud, namespace: lab}
spec:
  mode: audit
  groups:
    aud: {selector: {app: aud}}
  allow:
    - {from: world, to: aud, ports: [tcp/22]}
EOF2
run "apply --dry-run typo" 0 "$MSEG" apply -f "$T_TMP/pol/typo.yaml" --dry-run && \
	t_check "dry run: the warning too" err_has "^warning: group 'db' selects no endpoint"
run "apply typo" 0 "$MSEG" apply -f "$T_TMP/pol/typo.yaml" && {
	t_check "apply: created" out_has "^policy shop/typo created"
	t_check "apply: warning on stderr" err_has "^warning: group 'db' selects no endpoint (ap=db"
}
run "apply empty ns" 0 "$MSEG" apply -f "$T_TMP/pol/empty.yaml" && \
	t_check "apply: namespace without endpoints" err_has "^warning: namespace 'nobody' has no endpoints"
run "apply shop" 0 "$MSEG" apply -f "$T_TMP/pol/shop.yaml"
run "apply aud" 0 "$MSEG" apply -f "$T_TMP/pol/aud.yaml"
run "apply shop again" 0 "$MSEG" apply -f "$T_TMP/pol/shop.yaml" && \
	t_check "apply again: unchanged" out_has "^policy shop/shop unchanged$"
run "get policies" 0 "$MSEG" get policies && {
	t_check "COVERS column" out_has "RULES COVERS  SOURCE"
	t_check "shop covers 2" bash -c "grep -Eq '^shop +shop +AllowList +enforce +ingress,egress +[0-9]+ +2  api' '$T_TMP/out'"
	t_check "typo covers 0" bash -c "grep -Eq '^shop +typo .* +1 +0  api' '$T_TMP/out'"
}
run "get policy shop/typo" 0 "$MSEG" get policies shop/typo && {
	t_check "policy: its group resolves to nothing" out_has "^  db  *(no endpoint)"
	t_check "policy: the warning" out_has "^warning: group 'db' selects no endpoint"
}
run "get policy shop/shop" 0 "$MSEG" get policies shop/shop && \
	t_check "policy: groups and their endpoints" out_has "^  web  *web$"
run "delete --dry-run" 0 "$MSEG" delete policy nobody/e --dry-run && \
	t_check "delete dry run" out_has "^policy nobody/e would delete"
run "delete" 0 "$MSEG" delete policy nobody/e

# ---- check: scriptable
run "check allowed" 0 "$MSEG" check --from web --to db --port tcp/5432 && out_has "^allowed: web -> db tcp/5432" && t_pass "check allowed: exit 0"
run "check denied" 1 "$MSEG" check --from 10.201.0.4 --to db --port tcp/5432
t_check "check denied: exit 1" out_has "^denied:"
run "check 5432" 2 "$MSEG" check --from web --to db --port 5432 && \
	t_check "check 5432: the policies' hint" err_has "'5432' needs a protocol, like tcp/5432"
run "check TCP/5432" 2 "$MSEG" check --from web --to db --port TCP/5432 && \
	t_check "check TCP/5432: lowercase hint" err_has "protocols are lowercase: 'tcp'"
run "check udp" 2 "$MSEG" check --from web --to db --port udp && \
	t_check "check udp: one port needed" err_has "a check needs one port, like udp/53"
run "check icmp" 1 "$MSEG" check --from 10.201.0.4 --to db --port icmp && t_pass "check icmp: no port needed (denied)"
run "check unknown endpoint" 2 "$MSEG" check --from nosuch --to db --port tcp/1 && \
	t_check "check unknown: says so" err_has "not an endpoint id or an address"
run "check audited" 0 "$MSEG" check --from 10.201.0.4 --to aud --port tcp/80 && \
	t_check "check audited: names the policy in audit mode" \
		out_has "^audited: 10.201.0.4 -> aud tcp/80 (policy lab/aud is in audit mode: the packet passes and is recorded)"

# ---- rules: STALE, compact by default, --all, --fresh
# msegd's first list reads at most 4 namespaces live; the rest come from its
# background read-back, and until then they are shown STALE
for n in 41 42; do
	t_endpoint "s$n" "$n"   # one endpoint per network namespace
	"$MSEG" endpoint add "s$n" --netns "$(t_netns_path "s$n")" --ip "10.201.0.$n" --namespace other >/dev/null
done
run "get rules (first list)" 0 "$MSEG" get rules && {
	t_check "rules: an endpoint not read yet is STALE" bash -c "grep -Eq '^[a-z0-9]+ +no +unknown .*  STALE$' '$T_TMP/out'"
	t_check "rules: STALE explained" out_has "^STALE: read back before msegd last programmed it (or not lately); \`mseg get rules --fresh\` reads now"
}
run "get rules db" 0 "$MSEG" get rules db && {
	t_check "rules db: empty sets left out" out_has "^# [0-9]* empty sets left out (--all shows them)"
	t_check_not "rules db: no empty set shown" out_has "set in6_port_iv {"
	t_check "rules db: the set with elements stays" out_has "10.201.0.1 . tcp . 5432"
}
run "get rules db --all" 0 "$MSEG" get rules db --all && t_check "rules --all: empty sets too" out_has "set in6_port_iv {"
run "get rules --fresh" 0 "$MSEG" get rules --fresh && {
	t_check "rules --fresh: db in sync" bash -c "grep -Eq '^db +yes +in_sync' '$T_TMP/out'"
	t_check_not "rules --fresh: nothing STALE" out_has "STALE"
}
run "get policies --fresh" 2 "$MSEG" get policies --fresh && t_pass "--fresh is for rules: usage"
# ---- flows: UID, source ports, follow, a closed stream, restart
"$MSEG" flows --follow >"$T_TMP/follow" 2>"$T_TMP/follow.err" &
follow=$!
T_PIDS+=("$follow")
"$MSEG" flows --follow --updates -o json >"$T_TMP/follow_up" 2>"$T_TMP/follow_up.err" &
follow_up=$!
T_PIDS+=("$follow_up")
"$MSEG" flows --follow --updates >"$T_TMP/follow_upt" 2>/dev/null &
follow_upt=$!
T_PIDS+=("$follow_upt")
sleep 0.5
for i in 1 2 3; do t_tcp attacker 10.201.0.3 5432; done   # three connects, three source ports
echo x | timeout 3 ip netns exec "$(t_ns db)" setpriv --reuid=70 --regid=70 --clear-groups \
	socat -T1 - TCP:10.201.0.1:80,connect-timeout=1 >/dev/null 2>&1
sleep 1.5
run "flows" 0 "$MSEG" flows && {
	t_check "flows: UID column" out_has "VERDICT     UID  COUNT"
	t_check "flows: an aggregated record shows its source ports as *N" \
		bash -c "grep -Eq '10\.201\.0\.4:\*[0-9]+ +10\.201\.0\.3:5432 +dropped +- ' '$T_TMP/out'"
	t_check "flows: egress record with uid 70" \
		bash -c "grep -Eq 'egress +tcp +10\.201\.0\.3:[0-9]+ +10\.201\.0\.1:80 +dropped +70 ' '$T_TMP/out'"
}
t_check "flows -o json: sports" bash -c "'$MSEG' flows -o json --port 5432 | grep -q '\"sports\":'"
t_check "follow: the record once" bash -c "[ \$(grep -c '10.201.0.3:5432' '$T_TMP/follow') = 1 ]"
t_check_not "follow: no update marks without --updates" grep -q '^~' "$T_TMP/follow"
t_check "follow --updates: updates marked" grep -q '"update":true' "$T_TMP/follow_up"
t_check "follow --updates: the new record too" bash -c "grep '\"dport\":5432' '$T_TMP/follow_up' | grep -vq '\"update\"'"
t_check "follow --updates (table): updates marked '~ '" bash -c "grep -Eq '^~ .* 10\.201\.0\.3:5432 ' '$T_TMP/follow_upt'"
t_check "follow --updates (table): the new record unmarked" bash -c "grep -Eq '^  .* 10\.201\.0\.3:5432 ' '$T_TMP/follow_upt'"
sleep 1   # the log is flushed every second
kill -9 "$T_MSEGD_PID"; wait "$T_MSEGD_PID" 2>/dev/null
wait "$follow"; rc=$?
t_check "follow: exit 1 when msegd goes" [ "$rc" = 1 ]
t_check "follow: msegd closed the stream" grep -q "^mseg flows: msegd closed the stream$" "$T_TMP/follow.err"
t_check_not "follow: not 'cannot reach'" grep -q "cannot reach" "$T_TMP/follow.err"
wait "$follow_up"
wait "$follow_upt"
t_check "default flow log in the state dir" [ -s "$T_TMP/state/flows.jsonl" ]
rm -f "$T_TMP/api.sock"
t_check "msegd restarts (no --flow-log flag)" msegd_up
# (a record's count and source ports of a window still open at kill -9
# are lost: the log has the record as it was created)
run "flows after kill -9 + restart" 0 "$MSEG" flows && {
	t_check "flows survive the restart" bash -c "grep -Eq '10\.201\.0\.4:[0-9]+ +10\.201\.0\.3:5432 +dropped' '$T_TMP/out'"
	t_check "uid survives the restart" bash -c "grep -Eq '10\.201\.0\.1:80 +dropped +70 ' '$T_TMP/out'"
}
t_check "msegd still fine" t_msegd_stop
t_done
