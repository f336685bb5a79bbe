#!/bin/bash
# msegd watching a 5,000-node cluster through the API stand-in
# (tests/kube/standin.js, preloaded by bench/kube_scale.js): 150,000 pods
# in 5,000 namespaces, 10,000 NetworkPolicies, 110 pods of this node (each
# a real network namespace, registered as mseg-cni does, with its uid).
# Measures, against the targets of docs/benchmarks.md ("Kubernetes scale"):
#   - msegd start (its state dir holds the 110 registrations, as on a node
#     whose pods run) -> every local table programmed (/readyz ready): < 10 s;
#     also msegd's CPU time over it (the wall time depends on the load)
#   - msegd peak RSS (VmHWM): < 256 MiB; and in bytes per pod, over the
#     peak of an msegd with the registrations and no cluster
#   - churn (KUBE_CHURN_RATE events/s for KUBE_CHURN_SECONDS: creates,
#     deletes, label changes across the cluster, one label change in ten on
#     a local pod): watch event -> kernel ack, p50/p99/max: p99 < 100 ms;
#     msegd CPU over the churn, % of one core: < 25 %; of each reconcile,
#     reconciler_apply() and the rest (the desired view and the cluster
#     source's sync, which msegd also times)
# An event's latency: from the moment the driver sends it to the stand-in
# (which sends the watch event before it answers) to the end of the first
# msegd reconcile that included its resourceVersion, as msegd's debug log
# says ("pods resourceVersion R applied at T ms", written after the
# reconciler has every netlink ack). An event msegd judges to change no
# local table (docs/kubernetes.md, "Pod events that change no local
# table") is done when it is judged: its ack is vacuous, no table needs
# it; msegd logs "pods event resourceVersion R changes no local table at T
# ms" for it, and that event (that one only) is timed by that line. The
# latencies are printed for every event, for those that may change a local
# table ("relevant") and those that cannot ("irrelevant"), and per kind of
# the driver's events (create, delete, label, label-local), with counts; a
# build without the filter (a baseline) has no irrelevant events. The
# target is that of the relevant events.
#
#   KUBE_PODS, KUBE_NAMESPACES, KUBE_NETPOLS, KUBE_LOCAL   (150000 5000 10000 110)
#   KUBE_CHURN_RATE, KUBE_CHURN_SECONDS                    (100 60)
#   MSEGD_BASELINE=path   another msegd build, measured the same way in the
#                         same run (ratios printed)
#   MSEGD_ARGS, MSEGD_BASELINE_ARGS   more msegd flags for each, e.g.
#                         MSEGD_BASELINE=build/msegd
#                         MSEGD_BASELINE_ARGS="--kube-reconcile-share 100"
set -u
case ${1:-} in
-h | --help) sed -n '2,/^set -u/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
"") ;;
*) echo "kube_scale: no arguments (sizes come from the environment; --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PODS=${KUBE_PODS:-150000}
NSS=${KUBE_NAMESPACES:-5000}
NPS=${KUBE_NETPOLS:-10000}
LOCAL=${KUBE_LOCAL:-110}
RATE=${KUBE_CHURN_RATE:-100}
SECS=${KUBE_CHURN_SECONDS:-60}
P="ks$$"
ROOT=$PWD
[ "$(id -u)" -eq 0 ] || { echo "kube_scale: needs root, skipped"; exit 0; }
for c in node curl jq; do
	command -v $c >/dev/null || { echo "kube_scale: $c missing, skipped"; exit 0; }
done
[ -d tests/kube/node_modules/kubernetes-models ] ||
	{ echo "kube_scale: npm ci in tests/kube first, skipped"; exit 0; }
[ -x "$BUILD/msegd" ] || { echo "kube_scale: $BUILD/msegd missing (make)"; exit 1; }
TMP=$(mktemp -d /tmp/mseg-bench-kube.XXXXXX)
SPID= MPID=
cleanup() {
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	[ -n "$SPID" ] && kill "$SPID" 2>/dev/null
	wait 2>/dev/null
	for i in $(seq 0 $((LOCAL - 1))); do ip netns del "$P-$i" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
ARGS="{\"pods\":$PODS,\"namespaces\":$NSS,\"netpols\":$NPS,\"local\":$LOCAL,\"node\":\"bench-node\"}"
now_ms() { date +%s%3N; }

echo "kube_scale: $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kube_scale: cluster: $PODS pods, $NSS namespaces, $NPS NetworkPolicies, $LOCAL local pods"
node tests/kube/standin.js --port-file "$TMP/port" --history 100000 --bookmark-ms 1000 \
	--preload bench/kube_scale.js --preload-args "$ARGS" --validate-every 1 \
	>"$TMP/standin.log" 2>&1 &
SPID=$!
for _ in $(seq 1 1200); do [ -s "$TMP/port" ] && break; sleep 0.1; done
[ -s "$TMP/port" ] || { echo "kube_scale: the stand-in did not start"; cat "$TMP/standin.log"; exit 1; }
PORT=$(cat "$TMP/port")
sed 's/^/kube_scale: /' "$TMP/standin.log"
cat >"$TMP/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: b
clusters: [{name: s, cluster: {server: "http://127.0.0.1:$PORT"}}]
contexts: [{name: b, context: {cluster: s, user: u}}]
users: [{name: u, user: {}}]
EOF
for i in $(seq 0 $((LOCAL - 1))); do ip netns add "$P-$i" || exit 1; done
node bench/kube_scale.js locals "$ARGS" >"$TMP/locals.jsonl"

# the node's pods were registered by mseg-cni before (msegd's state dir
# holds them): registered here through an msegd without the cluster
register() { # STATE-DIR MSEGD
	local sock="$TMP/reg.sock" pid i=0 id
	"$2" --state-dir "$1" --listen "unix:$sock" --resync 0 >"$TMP/reg.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 200); do [ -S "$sock" ] && break; sleep 0.05; done
	while read -r l; do
		id=$(jq -r .id <<<"$l")
		jq -c --arg ns "/run/netns/$P-$i" 'del(.id) + {netns: $ns}' <<<"$l" |
			curl -s -o /dev/null --max-time 60 --unix-socket "$sock" -X PUT \
				-H 'Content-Type: application/json' --data-binary @- "http://mseg/v1/endpoints/$id"
		i=$((i + 1))
	done <"$TMP/locals.jsonl"
	# msegd with the registrations and no cluster: what the cluster adds is
	# counted per pod
	grep VmHWM "/proc/$pid/status" | awk '{print $2}' >"$TMP/reg.hwm"
	kill "$pid"
	wait "$pid" 2>/dev/null
}

# run NAME MSEGD: one measurement; figures in $TMP/NAME.*
run() {
	local name=$1 msegd=$2 extra=$3 sock="$TMP/$1.sock" t0 t1 i pid
	rm -rf "$TMP/$name.state"
	register "$TMP/$name.state" "$msegd"
	cp "$TMP/reg.hwm" "$TMP/$name.hwm_base"
	# msegd (re)starts on a node with its pods running: list -> programmed
	t0=$(now_ms)
	# shellcheck disable=SC2086 # $extra: flags, split on purpose
	"$msegd" --state-dir "$TMP/$name.state" --listen "unix:$sock" --kubeconfig "$TMP/kubeconfig" \
		--node-name bench-node --resync 0 --log-level debug $extra >"$TMP/$name.log" 2>&1 &
	MPID=$!
	pid=$MPID
	for _ in $(seq 1 200); do [ -S "$sock" ] && break; sleep 0.05; done
	# ready: synced, and every endpoint (the local pods) programmed
	for _ in $(seq 1 1200); do
		curl -s --max-time 60 --unix-socket "$sock" http://mseg/readyz >"$TMP/$name.readyz" 2>/dev/null
		jq -e ".ready == true" "$TMP/$name.readyz" >/dev/null 2>&1 && break
		sleep 0.1
	done
	t1=$(now_ms)
	local prog late=0
	# a netns whose `nft list` fails is asked once more a second later:
	# in about one start in ten, 2-4 of the 110 failed right after
	# /readyz and listed on the next try, while msegd's log had every
	# table replaced before it answered ready; the second tries are
	# printed, not hidden
	prog=$(for i in $(seq 0 $((LOCAL - 1))); do
		ip netns exec "$P-$i" nft list table inet mseg >/dev/null 2>&1 && echo x
	done | wc -l)
	if [ "$prog" -lt "$LOCAL" ]; then
		sleep 1
		late=$prog
		prog=$(for i in $(seq 0 $((LOCAL - 1))); do
			ip netns exec "$P-$i" nft list table inet mseg >/dev/null 2>&1 && echo x
		done | wc -l)
		late=$((prog - late))
	fi
	# msegd's own CPU over the start: the wall time depends on the load
	# (the stand-in and other work share the cores)
	local hz0 cpu0
	hz0=$(getconf CLK_TCK)
	cpu0=$(awk -v hz="$hz0" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$pid/stat")
	echo "$((t1 - t0)) $prog $cpu0 $late" >"$TMP/$name.initial"
	grep VmHWM "/proc/$pid/status" | awk '{print $2}' >"$TMP/$name.hwm_initial"
	# churn
	local c0 c1 hz
	hz=$(getconf CLK_TCK)
	c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	t0=$(now_ms)
	node bench/kube_scale.js churn "http://127.0.0.1:$PORT" "$RATE" "$SECS" "$ARGS" \
		"$TMP/$name.events" || echo "kube_scale: churn failed"
	sleep 1   # the last events' reconciles
	t1=$(now_ms)
	c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	awk -v c="$((c1 - c0))" -v hz="$hz" -v ms="$((t1 - t0))" \
		'BEGIN {printf "%.1f\n", 100 * c / hz / (ms / 1000)}' >"$TMP/$name.cpu"
	grep VmHWM "/proc/$pid/status" | awk '{print $2}' >"$TMP/$name.hwm"
	kill "$pid"
	wait "$pid" 2>/dev/null
	MPID=
	# latencies: each event -> the first reconcile that applied its rv,
	# or, for an event judged to change no local table, that judgement;
	# "LATENCY KIND relevant|irrelevant" per event
	grep -o 'pods resourceVersion [0-9]* applied at [0-9]* ms (reconcile [0-9.]* ms' \
		"$TMP/$name.log" | awk '{print $3, $6, $9}' >"$TMP/$name.applied"
	grep -o 'pods event resourceVersion [0-9]* changes no local table at [0-9]* ms' \
		"$TMP/$name.log" | awk '{print $4, $10}' >"$TMP/$name.folded"
	awk 'FILENAME == ARGV[1] {fold[$1] = $2; next}
	     FILENAME == ARGV[2] {rv[n] = $1; at[n] = $2; n++; next}
	     ($2 in fold) {print fold[$2] - $1, $3, "irrelevant"; next}
	     {while (j < n && (rv[j] < $2 || at[j] < $1)) j++;
	      if (j < n) print at[j] - $1, $3, "relevant"; else print "lost", $3, "relevant"}' \
		"$TMP/$name.folded" "$TMP/$name.applied" <(sort -n -k2 "$TMP/$name.events") \
		>"$TMP/$name.lat"
	awk '{print $3}' "$TMP/$name.applied" | sort -n >"$TMP/$name.rec"
	# of each reconcile, reconciler_apply() (compile, diffs, batches;
	# older builds do not say)
	grep -o 'policies; reconciler [0-9.]* ms' "$TMP/$name.log" | awk '{print $3}' |
		sort -n >"$TMP/$name.recapply"
	# the rest of each reconcile (the desired view, the cluster source's
	# sync, the logs), and what msegd says of the first two when it does
	grep -o 'reconcile [0-9.]* ms, [0-9]* endpoints, [0-9]* policies; reconciler [0-9.]* ms' \
		"$TMP/$name.log" | awk '{print $2 - $9}' | sort -n >"$TMP/$name.recrest"
	grep -o 'kubernetes sync [0-9.]* ms, desired view [0-9.]* ms' "$TMP/$name.log" |
		awk '{print $3}' | sort -n >"$TMP/$name.recsync"
	grep -o 'kubernetes sync [0-9.]* ms, desired view [0-9.]* ms' "$TMP/$name.log" |
		awk '{print $7}' | sort -n >"$TMP/$name.recview"
}

pct() { # FILE P: the P-th percentile of a sorted column of numbers
	awk -v p="$2" '{v[NR] = $1} END {if (!NR) {print "n/a"; exit}
		i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i]}' "$1"
}
report() { # NAME
	local n=$1 init prog scpu late hwm0 hwmb hwm cpu lost p50 p99 max r50 r99 rp99
	read -r init prog scpu late <"$TMP/$n.initial"
	hwm0=$(cat "$TMP/$n.hwm_initial")
	hwmb=$(cat "$TMP/$n.hwm_base")
	hwm=$(cat "$TMP/$n.hwm")
	cpu=$(cat "$TMP/$n.cpu")
	lost=$(grep -c lost "$TMP/$n.lat")
	grep -v lost "$TMP/$n.lat" | sort -n >"$TMP/$n.lat.sorted"
	p50=$(pct "$TMP/$n.lat.sorted" 50)
	p99=$(pct "$TMP/$n.lat.sorted" 99)
	max=$(pct "$TMP/$n.lat.sorted" 100)
	# the relevant events' p99: the target's
	awk '$3 == "relevant"' "$TMP/$n.lat.sorted" >"$TMP/$n.lat.relevant"
	rp99=$(pct "$TMP/$n.lat.relevant" 99)
	r50=$(pct "$TMP/$n.rec" 50)
	r99=$(pct "$TMP/$n.rec" 99)
	echo "kube_scale: [$n] start -> $prog local tables programmed: $init ms (target < 10000), msegd CPU $scpu s$([ "$late" -gt 0 ] && echo " ($late listed only on a second try)")"
	echo "kube_scale: [$n] peak RSS: after the list $((hwm0 / 1024)) MiB, after the churn $((hwm / 1024)) MiB (target < 256); without the cluster $((hwmb / 1024)) MiB: $(((hwm0 - hwmb) * 1024 / PODS)) bytes per pod after the list"
	echo "kube_scale: [$n] churn $RATE/s for $SECS s: $(wc -l <"$TMP/$n.events") events, $(wc -l <"$TMP/$n.applied") reconciles (each p50 $r50 ms, p99 $r99 ms), $lost not seen applied"
	[ -s "$TMP/$n.recapply" ] &&
		echo "kube_scale: [$n] of each reconcile, reconciler_apply() p50 $(pct "$TMP/$n.recapply" 50) ms, p99 $(pct "$TMP/$n.recapply" 99) ms; the rest p50 $(pct "$TMP/$n.recrest" 50) ms, p99 $(pct "$TMP/$n.recrest" 99) ms"
	[ -s "$TMP/$n.recview" ] &&
		echo "kube_scale: [$n] of the rest, desired view + programmable p50 $(pct "$TMP/$n.recview" 50) ms, p99 $(pct "$TMP/$n.recview" 99) ms; kubernetes sync p50 $(pct "$TMP/$n.recsync" 50) ms, p99 $(pct "$TMP/$n.recsync" 99) ms"
	echo "kube_scale: [$n] event -> kernel ack, every event: p50 $p50 ms, p99 $p99 ms, max $max ms"
	local effect kind f
	for effect in relevant irrelevant; do
		for kind in all create delete label label-local; do
			f="$TMP/$n.lat.$effect.$kind"
			awk -v e="$effect" -v k="$kind" '$3 == e && (k == "all" || $2 == k)' \
				"$TMP/$n.lat.sorted" >"$f"
			[ "$kind" != all ] && [ ! -s "$f" ] && continue
			echo "kube_scale: [$n]   $effect, $kind: $(wc -l <"$f") events, p50 $(pct "$f" 50) ms, p99 $(pct "$f" 99) ms, max $(pct "$f" 100) ms$([ "$effect.$kind" = relevant.all ] && echo " (target p99 < 100)")"
		done
	done
	echo "kube_scale: [$n] msegd CPU during the churn: $cpu % of one core (target < 25)"
	echo "$init $hwm $rp99 $cpu $scpu" >"$TMP/$n.summary"
}

run msegd "$ROOT/$BUILD/msegd" "${MSEGD_ARGS:-}"
report msegd
if [ -n "${MSEGD_BASELINE:-}" ]; then
	run baseline "$MSEGD_BASELINE" "${MSEGD_BASELINE_ARGS:-}"
	report baseline
	read -r i1 h1 p1 c1 s1 <"$TMP/msegd.summary"
	read -r i0 h0 p0 c0 s0 <"$TMP/baseline.summary"
	awk -v i1="$i1" -v i0="$i0" -v h1="$h1" -v h0="$h0" -v p1="$p1" -v p0="$p0" \
		-v c1="$c1" -v c0="$c0" -v s1="$s1" -v s0="$s0" 'BEGIN {
		printf "kube_scale: msegd / baseline: start %.2f (CPU %.2f), peak RSS %.2f, p99 of relevant events %.2f, CPU %.2f\n",
			i1 / i0, (s0 > 0 ? s1 / s0 : 0), h1 / h0, (p0 > 0 ? p1 / p0 : 0), (c0 > 0 ? c1 / c0 : 0) }'
fi
echo "kube_scale: load after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "${KUBE_SCALE_KEEP:-}" ] && cp -r "$TMP" "$KUBE_SCALE_KEEP"
exit 0
