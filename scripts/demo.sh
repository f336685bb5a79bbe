#!/bin/bash
# The incident of README.md ("Why"), end to end, on this machine (root needed):
# the four-container shop (web-ui, gateway, microservice, postgres) is set
# up the way a container runtime does it, through the real bridge and
# host-local CNI plugins chained with mseg-cni, under the allow list
# policies/examples/incident.yaml; an outside attacker, a malware download
# host and a mining pool sit on the same network. Legitimate traffic passes;
# the botnet's login, the download and the mining-pool connection are
# refused and show up in `mseg flows`.
#
#   make demo                 run it, then remove everything
#   KEEP=1 make demo          leave it running to explore (then:
#                             scripts/demo.sh clean)
#   scripts/demo.sh clean     remove what a KEEP=1 run left (with the same
#                             DEMO_PREFIX as the run, when it had one)
#   KEEP=1 DEMO_POLICY=none make demo
#                             the app with msegd but no allow list, left
#                             running: the start of docs/zero-to-enforce.md
#
# Everything lives in network namespaces the demo creates (a hub namespace
# holds the bridge), on 10.89.0.0/24; nothing touches the host's own
# network or firewall. Environment: BUILD (build dir, default build),
# CNI_BIN (/usr/lib/cni), DEMO_PREFIX (namespace prefix, default mseg),
# DEMO_TEST=1 prints PASS:/FAIL: lines instead of narration marks (used by
# tests/integration/demo.sh).
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
BUILD=${BUILD:-build}
CNI_BIN=${CNI_BIN:-/usr/lib/cni}
P=${DEMO_PREFIX:-mseg}
WORK=/tmp/$P-demo
# how to run the clean-up for this prefix
CLEAN_CMD="scripts/demo.sh clean"
[ "$P" = mseg ] || CLEAN_CMD="DEMO_PREFIX=$P scripts/demo.sh clean"
HUB=$P-hub
BR=${P}-br0
BR=${BR:0:15}
SOCK=$WORK/api.sock
MSEGD=$ROOT/$BUILD/msegd
MSEG=$ROOT/$BUILD/mseg
MSEG_CNI=$ROOT/$BUILD/mseg-cni
TEST=${DEMO_TEST:-}
POLICY=${DEMO_POLICY:-policies/examples/incident.yaml}
APPS="web-ui gateway microservice postgres"
OUTSIDE="attacker download pool"
UNEXPECTED=0

if [ -t 1 ] && [ -z "$TEST" ]; then
	B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'
else
	B='' G='' R='' N=''
fi
say() { [ -n "$TEST" ] || printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
note() { [ -n "$TEST" ] || printf '   %s\n' "$*"; }

clean() {
	if [ -f "$WORK/msegd.pid" ]; then
		kill "$(cat "$WORK/msegd.pid")" 2>/dev/null
		sleep 0.3
	fi
	for n in $APPS $OUTSIDE old-postgres; do
		ip netns pids "$P-$n" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$P-$n" 2>/dev/null
	done
	ip netns pids "$HUB" 2>/dev/null | xargs -r kill 2>/dev/null
	ip netns del "$HUB" 2>/dev/null
	rm -rf "$WORK"
}

if [ "${1:-}" = clean ]; then
	clean
	echo "demo removed"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "the demo needs root (network namespaces, nftables)"
	exit 77
fi
for f in "$MSEGD" "$MSEG" "$MSEG_CNI" "$CNI_BIN/bridge" "$CNI_BIN/host-local"; do
	[ -x "$f" ] || { echo "missing $f (run: scripts/install-deps.sh && make)"; exit 1; }
done
for c in jq socat curl; do
	command -v $c >/dev/null || { echo "missing $c (run: scripts/install-deps.sh)"; exit 1; }
done
if ip netns list | grep -q "^$HUB\b"; then
	echo "a demo is already set up ($HUB); remove it first: $CLEAN_CMD"
	exit 1
fi
[ -n "${KEEP:-}" ] || trap clean EXIT
mkdir -p "$WORK/policies" "$WORK/ipam"

# expect allowed|refused DESCRIPTION FROM ADDR PORT [setpriv args]
expect() {
	local want=$1 desc=$2 from=$3 addr=$4 port=$5 got out
	shift 5
	out=$(echo "hello" | timeout 4 ip netns exec "$P-$from" "$@" \
		socat -T1 - "TCP:$addr:$port,connect-timeout=1" 2>/dev/null)
	if [ "$out" = hello ]; then got=allowed; else got=refused; fi
	if [ -n "$TEST" ]; then
		if [ "$got" = "$want" ]; then echo "PASS: $desc: $got"; else echo "FAIL: $desc: $got, want $want"; fi
	elif [ "$got" = "$want" ]; then
		printf '   %s%-8s%s %s\n' "$G" "$got" "$N" "$desc"
	else
		printf '   %s%-8s%s %s (UNEXPECTED: want %s)\n' "$R" "$got" "$N" "$desc" "$want"
	fi
	[ "$got" = "$want" ] || UNEXPECTED=$((UNEXPECTED + 1))
}
check() { # DESCRIPTION CMD...: a PASS/FAIL line in test mode
	local desc=$1
	shift
	if "$@"; then
		[ -z "$TEST" ] || echo "PASS: $desc"
	else
		if [ -n "$TEST" ]; then echo "FAIL: $desc"; else echo "   ${R}failed:${N} $desc"; fi
		UNEXPECTED=$((UNEXPECTED + 1))
	fi
}

# The CNI chain as a runtime runs it: bridge (with host-local IPAM), then,
# for the shop's containers, mseg-cni with the bridge's result.
conf() { # TYPE [EXTRA-JSON]
	local extra=${2:-'{}'}
	case $1 in
	bridge)
		jq -nc --arg br "$BR" --arg dd "$WORK/ipam" '{cniVersion: "1.0.0", name: "shop",
			type: "bridge", bridge: $br, isGateway: true, ipMasq: false,
			ipam: {type: "host-local", dataDir: $dd,
			       ranges: [[{subnet: "10.89.0.0/24", gateway: "10.89.0.1"}]]}}' ;;
	mseg-cni)
		jq -nc --arg s "unix:$SOCK" --argjson x "$extra" '{cniVersion: "1.0.0",
			name: "shop", type: "mseg-cni", server: $s, onUnreachable: "fail",
			timeoutSeconds: 10} + $x' ;;
	esac
}
plugin() { # CMD NAME BIN CONF ARGS
	ip netns exec "$HUB" env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID="$2" \
		CNI_NETNS="/run/netns/$P-$2" CNI_IFNAME=eth0 CNI_PATH="$CNI_BIN" CNI_ARGS="$5" \
		"$3" <<<"$4"
}
container_add() { # NAME [APP-LABEL]: network namespace + CNI ADD
	local name=$1 app=${2:-} res
	ip netns add "$P-$name" || return 1
	ip -n "$P-$name" link set lo up
	res=$(plugin ADD "$name" "$CNI_BIN/bridge" "$(conf bridge)" "") || { echo "$res"; return 1; }
	echo "$res" >"$WORK/$name.bridge.json"
	if [ -n "$app" ]; then
		res=$(plugin ADD "$name" "$MSEG_CNI" \
			"$(conf mseg-cni "{\"labelsFromConfig\": true,
				\"runtimeConfig\": {\"labels\": {\"app\": \"$app\"}}}" |
			   jq -c --argjson p "$res" '. + {prevResult: $p}')" \
			"IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=$name") ||
			{ echo "$res"; return 1; }
	fi
	jq -r '.ips[0].address | split("/")[0]' <<<"$res" >"$WORK/$name.ip"
}
ip_of() { cat "$WORK/$1.ip"; }
serve() { # NAME PORT...
	local n=$1 port
	shift
	for port in "$@"; do
		ip netns exec "$P-$n" socat -T5 "TCP-LISTEN:$port,fork,reuseaddr" EXEC:/bin/cat \
			>/dev/null 2>&1 &
	done
}
mseg() { MSEG_SERVER="unix:$SOCK" "$MSEG" "$@"; }

if [ "$POLICY" = none ]; then
	say "1. msegd starts with no allow list (DEMO_POLICY=none): nothing is isolated"
else
	say "1. msegd starts with the shop's allow list ($POLICY)"
	note "only the microservice may reach postgres:5432; postgres may open no connection"
	cp "$POLICY" "$WORK/policies/" || exit 1
fi
"$MSEGD" --state-dir "$WORK/state" --listen "unix:$SOCK" --policy-dir "$WORK/policies" \
	--resync 30 >"$WORK/msegd.log" 2>&1 &
echo $! >"$WORK/msegd.pid"
for _ in $(seq 1 100); do
	curl -sf --unix-socket "$SOCK" http://mseg/readyz >/dev/null 2>&1 && break
	sleep 0.1
done
check "msegd is ready" curl -sf --unix-socket "$SOCK" http://mseg/readyz -o /dev/null
note "log: $WORK/msegd.log"

say "2. The containers start: bridge + host-local + mseg-cni, as a runtime runs the chain"
ip netns add "$HUB" && ip -n "$HUB" link set lo up
note "outside the shop, on the same network (they stand for the internet):"
for n in $OUTSIDE; do
	check "host $n: CNI ADD (bridge, host-local)" container_add "$n"
	note "$(printf '%-13s %s' "$n" "$(ip_of "$n")")"
done
serve download 80
serve pool 3333

note "first, as in the incident: a postgres started without mseg-cni in the chain"
check "container old-postgres: CNI ADD (bridge, host-local only)" container_add old-postgres
serve old-postgres 5432
sleep 0.3
expect allowed "attacker -> old-postgres:5432 (the botnet's login)" attacker "$(ip_of old-postgres)" 5432
expect allowed "old-postgres -> download host:80 (the miner download)" old-postgres "$(ip_of download)" 80
expect allowed "old-postgres -> mining pool:3333" old-postgres "$(ip_of pool)" 3333
plugin DEL old-postgres "$CNI_BIN/bridge" "$(conf bridge)" "" >/dev/null
ip netns pids "$P-old-postgres" | xargs -r kill 2>/dev/null
ip netns del "$P-old-postgres"

note "now the shop, with mseg-cni chained after the bridge:"
for n in $APPS; do
	check "container $n: CNI ADD (bridge, host-local, mseg-cni)" container_add "$n" "$n"
	note "$(printf '%-13s %-12s registered with msegd, table programmed before ADD returned' "$n" "$(ip_of "$n")")"
done
serve web-ui 80 443
serve gateway 8080
serve microservice 9000
serve postgres 5432
sleep 0.5

if [ "$POLICY" = none ]; then
	say "Left running without an allow list (DEMO_POLICY=none)"
	note "the app and the outside hosts, servers listening; msegd's API: unix:$SOCK"
	note "next: docs/zero-to-enforce.md; remove it: $CLEAN_CMD"
	exit 0
fi

say "3. Legitimate traffic passes"
expect allowed "customer (outside) -> web-ui:443" attacker "$(ip_of web-ui)" 443
expect allowed "web-ui -> gateway:8080" web-ui "$(ip_of gateway)" 8080
expect allowed "gateway -> microservice:9000" gateway "$(ip_of microservice)" 9000
expect allowed "microservice -> postgres:5432" microservice "$(ip_of postgres)" 5432

say "4. The attack is refused in the kernel"
expect refused "botnet login: attacker -> postgres:5432" attacker "$(ip_of postgres)" 5432
expect refused "web-ui -> postgres:5432 (skipping the tiers)" web-ui "$(ip_of postgres)" 5432
note "COPY ... FROM PROGRAM runs curl as the postgres user (uid 65534 here):"
expect refused "postgres -> download host:80 (fetch the miner)" postgres "$(ip_of download)" 80 \
	setpriv --reuid=65534 --regid=65534 --clear-groups
expect refused "postgres -> mining pool:3333 (Monero stratum)" postgres "$(ip_of pool)" 3333 \
	setpriv --reuid=65534 --regid=65534 --clear-groups

say "5. Every refused attempt is recorded: mseg flows"
sleep 0.5
flows=$(mseg flows 2>&1)
[ -n "$TEST" ] || echo "$flows" | sed 's/^/   /'
flows_json=$(curl -s --unix-socket "$SOCK" http://mseg/v1/flows)
has_flow() { # ENDPOINT DIRECTION DST-ADDR DPORT [UID]
	jq -e --arg e "$1" --arg d "$2" --arg a "$3" --argjson p "$4" --arg u "${5:-}" \
		'[.flows[] | select(.endpoint.id == $e and .direction == $d and .dst == $a
		  and .dport == $p and .verdict == "dropped"
		  and ($u == "" or (.uid | tostring) == $u))] | length > 0' \
		<<<"$flows_json" >/dev/null 2>&1
}
if grep -q '"error"' <<<"$flows_json"; then
	# this msegd build records no flows (no queue listener): say so
	if [ -n "$TEST" ]; then echo "SKIP: flow log: $(jq -r .error <<<"$flows_json")"; fi
	note "(no flow log from this msegd: $(jq -r .error <<<"$flows_json"))"
else
	check "flow log: attacker -> postgres:5432, ingress of postgres, dropped" \
		has_flow postgres ingress "$(ip_of postgres)" 5432
	check "flow log: postgres -> download:80, egress, dropped, uid 65534" \
		has_flow postgres egress "$(ip_of download)" 80 65534
	check "flow log: postgres -> pool:3333, egress, dropped, uid 65534" \
		has_flow postgres egress "$(ip_of pool)" 3333 65534
	note "with the socket's uid (JSON: mseg flows -o json / GET /v1/flows):"
	[ -n "$TEST" ] || jq -r '.flows[] | select(.proto == "tcp") |
		"   \(.endpoint.name) \(.direction) \(.src):\(.sport) -> \(.dst):\(.dport) uid \(.uid // "-") \(.verdict)"' \
		<<<"$flows_json"
fi

say "6. What the kernel holds for postgres: mseg get rules postgres"
rules=$(mseg get rules postgres 2>&1)
# empty sets left out for the narration
[ -n "$TEST" ] || echo "$rules" | awk '
	/^\tset / { buf = $0 "\n"; inset = 1; has = 0; next }
	inset { buf = buf $0 "\n"; if (/elements/) has = 1
		if (/^\t}/) { if (has) printf "%s", buf; inset = 0 }
		next }
	/^\t(limit|counter) / { skip = 1 }
	skip { if (/^\t}/) skip = 2; else next }
	skip == 2 { skip = 0; next }
	/^$/ { next }
	{ print }' | sed 's/^/   /'
note "(empty sets, the rate limit and counters left out; all of it: mseg get rules postgres --all)"
note "ingress: only the microservice's address may reach tcp/5432; egress: no allow"
note "entry at all, so every new outbound connection goes to msegd and is dropped"
check "postgres's table is programmed" sh -c \
	"curl -s --unix-socket '$SOCK' http://mseg/v1/rules/postgres | jq -e '.programmed == true' >/dev/null"

say "7. A container goes away: CNI DEL"
note "the runtime calls DEL in reverse order: mseg-cni forgets the endpoint, msegd"
note "removes its table and the other tiers' sets; then the bridge frees the address"
del_postgres() {
	plugin DEL postgres "$MSEG_CNI" "$(conf mseg-cni)" "" >/dev/null &&
		plugin DEL postgres "$CNI_BIN/bridge" "$(conf bridge)" "" >/dev/null
}
check "CNI DEL postgres (mseg-cni, then bridge)" del_postgres
check "postgres is no longer an endpoint" sh -c \
	"[ \"\$(curl -s -o /dev/null -w '%{http_code}' --unix-socket '$SOCK' http://mseg/v1/endpoints/postgres)\" = 404 ]"

if [ -n "${KEEP:-}" ]; then
	say "Left running (KEEP=1)"
	note "the flow map of the incident in a browser (prints a URL with a one-time secret):"
	note "      $MSEG --server unix:$SOCK ui"
	note "try:  $MSEG --server unix:$SOCK flows --follow"
	note "      ip netns exec $P-attacker socat - TCP:$(ip_of microservice):9000"
	note "remove it: $CLEAN_CMD"
else
	say "Cleaning up"
	note "to see the incident as a flow map in a browser: KEEP=1 make demo, then"
	note "      $MSEG --server unix:$SOCK ui"
fi
if [ "$UNEXPECTED" -ne 0 ]; then
	echo "${R}$UNEXPECTED unexpected outcome(s); msegd log: $WORK/msegd.log${N}"
	[ -n "${KEEP:-}" ] || cat "$WORK/msegd.log"
	exit 1
fi
[ -n "$TEST" ] || echo "${G}every outcome as expected${N}"
exit 0
