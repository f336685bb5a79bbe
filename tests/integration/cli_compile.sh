#!/bin/bash
# `mseg help` and `mseg compile` as a user meets them: exit status 0 / 1 / 2,
# errors that name file:line:col, --endpoint selection. Offline, no root.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
MSEG=$PWD/$BUILD/mseg
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
tmp=$(mktemp -d /tmp/mseg-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
ex=policies/examples

check() { # name expected-status cmd... ; output in $tmp/out, $tmp/err
	local name=$1 want=$2; shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	if [ "$rc" -eq "$want" ]; then
		return 0
	fi
	echo "FAIL: $name: exit status $rc, want $want"
	sed 's/^/    stderr: /' "$tmp/err" | head -5
	fails=$((fails + 1))
	return 1
}
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }

if check help 0 "$MSEG" help; then
	if grep -q '^  compile ' "$tmp/out" && grep -q '^  help ' "$tmp/out"; then pass help
	else fail "help: the command table is not listed"; fi
fi
if check help_compile 0 "$MSEG" help compile; then
	if grep -q -- '--endpoints FILE' "$tmp/out"; then pass help_compile
	else fail "help_compile: no options listed"; fi
fi
check no_command 2 "$MSEG" && pass no_command
if check unknown_command 2 "$MSEG" compil -f x; then
	if grep -q "unknown command 'compil'" "$tmp/err"; then pass "unknown_command (no prefix matching)"
	else fail "unknown_command: message: $(cat "$tmp/err")"; fi
fi
check missing_file_option 2 "$MSEG" compile --endpoints "$ex/inventory/incident.yaml" &&
	pass missing_file_option
check bad_queue 2 "$MSEG" compile -f "$ex/incident.yaml" --endpoints "$ex/inventory/incident.yaml" \
	--queue fast && pass bad_queue
check bad_rate 2 "$MSEG" compile -f "$ex/incident.yaml" --endpoints "$ex/inventory/incident.yaml" \
	--rate 0 && pass bad_rate

cat >"$tmp/bad.yaml" <<'YAML'
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: shop, namespace: shop}
spec:
  groups:
    db: {selectr: {app: postgres}}
YAML
if check policy_error 1 "$MSEG" compile -f "$tmp/bad.yaml" --endpoints "$ex/inventory/incident.yaml"; then
	if grep -q "^$tmp/bad.yaml:6:[0-9]*: " "$tmp/err"; then pass "policy_error names file:line:col"
	else fail "policy_error: no file:line:col in: $(cat "$tmp/err")"; fi
fi
printf 'endpoints:\n  - {id: a, ips: [10.0.0.300]}\n' >"$tmp/eps.yaml"
if check inventory_error 1 "$MSEG" compile -f "$ex/incident.yaml" --endpoints "$tmp/eps.yaml"; then
	if grep -q "^$tmp/eps.yaml:2:[0-9]*: " "$tmp/err"; then pass "inventory_error names file:line:col"
	else fail "inventory_error: no file:line:col in: $(cat "$tmp/err")"; fi
fi
check missing_policy 1 "$MSEG" compile -f "$tmp/nope.yaml" --endpoints "$ex/inventory/incident.yaml" &&
	pass missing_policy

if check one_endpoint 0 "$MSEG" compile -f "$ex/incident.yaml" \
	--endpoints "$ex/inventory/incident.yaml" --endpoint postgres; then
	if [ "$(grep -c '^# endpoint ' "$tmp/out")" -eq 1 ] &&
	   head -1 "$tmp/out" | grep -q '^# endpoint postgres (shop/postgres) netns /run/netns/mseg-postgres$'
	then pass one_endpoint
	else fail "one_endpoint: output has other endpoints"; fi
fi
check unknown_endpoint 1 "$MSEG" compile -f "$ex/incident.yaml" \
	--endpoints "$ex/inventory/incident.yaml" --endpoint nope && pass unknown_endpoint
# the other examples compile
for p in "$ex"/office-admin.yaml; do
	check "example $(basename "$p")" 0 "$MSEG" compile -f "$p" \
		--endpoints "$ex/inventory/incident.yaml" && pass "example $(basename "$p")"
done
check "example audit-rollout.yaml" 0 "$MSEG" compile -f "$ex/audit-rollout.yaml" \
	--endpoints "$ex/inventory/audit-rollout.yaml" && pass "example audit-rollout.yaml"
# --node-addr: the node's address is admitted both ways under default deny
printf 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n' >"$tmp/deny.yaml"
printf 'endpoints:\n  - {id: db, labels: {app: db}, ips: [10.0.0.3]}\n' >"$tmp/inv.yaml"
check "compile --node-addr" 0 "$MSEG" compile -f "$tmp/deny.yaml" --endpoints "$tmp/inv.yaml" \
	--node-addr 10.0.0.1 && [ "$(grep -c '10.0.0.1' "$tmp/out")" -ge 2 ] &&
	pass "the node address is in both directions' sets"
check "compile --node-addr bogus" 2 "$MSEG" compile -f "$tmp/deny.yaml" --endpoints "$tmp/inv.yaml" \
	--node-addr bogus && grep -q "not an IPv4 or IPv6 address" "$tmp/err" && pass "a bad --node-addr is a usage error"
# a FIFO among the policies must not hang the reader (msegd reads the same
# way from its event loop): refused at once as not a regular file
mkdir -p "$tmp/fifo"
mkfifo "$tmp/fifo/x.yaml"
check "a FIFO in the policy dir is refused, not waited on" 1 timeout 5 "$MSEG" compile \
	-f "$tmp/fifo" --endpoints "$ex/inventory/incident.yaml" &&
	grep -q "x.yaml: not a regular file" "$tmp/err" && pass "the FIFO is named as not a regular file"
[ $fails -eq 0 ]
