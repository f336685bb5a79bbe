#!/bin/bash
# Endpoint churn without leaks: endpoints in real namespaces are added and
# removed in a loop (1,000 through the API's PUT/DELETE and 300 through the
# real mseg-cni chained after bridge + host-local in the full form); each
# is covered by a policy, so each gets a table and a queue listener. msegd's
# RSS and fd count are printed per cycle and must stay flat.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/helpers.bash"
t_require_root
t_require_cmds socat python3 curl jq

api_cycles=$(r_size 2 20) api_per=$(r_size 25 50)
cni_cycles=$(r_size 2 6) cni_per=$(r_size 10 50)
CNI_BIN=${CNI_BIN:-/usr/lib/cni}
MSEG_CNI="$MSEG_ROOT/$BUILD/mseg-cni"
t_api_db_scene || { t_fail "setup"; exit 1; }
t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 1
t_check "msegd ready" t_wait_log "msegd ready"
# ASan keeps freed memory in quarantine: RSS says nothing there (the full
# run, `make reliability`, uses the plain build)
asan=false
ldd "$MSEGD" 2>/dev/null | grep -q libasan && asan=true
r_wait_sock
P=$T_PREFIX-churn
trap 'ip netns del "$P" 2>/dev/null; ip netns del "$T_PREFIX-cni" 2>/dev/null; t_cleanup' EXIT

# flat NAME FIRST LAST: RSS may grow by 1 MiB at most after the first cycle
# (allocator noise), the fd count not at all
sample() { echo "$(r_rss_kb "$T_MSEGD_PID") $(r_fds "$T_MSEGD_PID")"; }

# ---- through the API
ok=0 first="" last=""
for c in $(seq 1 "$api_cycles"); do
	for i in $(seq 1 "$api_per"); do
		ip netns add "$P" || break
		ip -n "$P" link set lo up
		a=$(r_api PUT "/v1/endpoints/churn" -d '{"labels": {"app": "api"}, "netns": "/run/netns/'"$P"'", "ips": ["10.201.1.'"$i"'"]}')
		d=$(r_api DELETE "/v1/endpoints/churn")
		ip netns del "$P"
		[ "$a" = 201 ] && [ "$d" = 200 ] && ok=$((ok + 1))
	done
	s=$(sample)
	echo "api cycle $c: $((c * api_per)) endpoints added and removed; msegd RSS ${s% *} KiB, fds ${s#* }"
	[ -z "$first" ] && first=$s
	last=$s
done
n=$((api_cycles * api_per))
r_figure churn_api_endpoints "$ok/$n"
r_figure churn_api_rss_kb "${first% *}->${last% *}"
r_figure churn_api_fds "${first#* }->${last#* }"
t_check "API churn: every PUT and DELETE succeeded ($ok/$n)" [ "$ok" -eq "$n" ]
t_check "API churn: fd count flat (${first#* } -> ${last#* })" [ "${first#* }" -eq "${last#* }" ]
if $asan; then
	echo "API churn: RSS ${first% *} -> ${last% *} KiB (not checked under ASan: freed memory stays in its quarantine)"
else
	t_check "API churn: RSS flat (${first% *} -> ${last% *} KiB)" [ "${last% *}" -le $(( ${first% *} + 1024 )) ]
fi

# ---- through the real mseg-cni, chained after bridge + host-local
if [ ! -x "$CNI_BIN/bridge" ] || [ ! -x "$CNI_BIN/host-local" ]; then
	echo "SKIP: $CNI_BIN/bridge or host-local missing: no CNI churn"
	t_done; exit
fi
HUB=$T_PREFIX-cni BR="mc$$"; BR=${BR:0:15}
ip netns add "$HUB" && ip -n "$HUB" link set lo up
conf() { # TYPE
	case $1 in
	bridge) jq -nc --arg br "$BR" --arg dd "$T_TMP/ipam" '{cniVersion: "1.0.0",
		name: "rel", type: "bridge", bridge: $br, isGateway: true,
		ipam: {type: "host-local", dataDir: $dd, ranges: [[{subnet: "10.204.0.0/24"}]]}}' ;;
	mseg) jq -nc --arg s "unix:$R_SOCK" --argjson p "$(cat "$T_TMP/prev")" '{cniVersion: "1.0.0",
		name: "rel", type: "mseg-cni", server: $s, timeoutSeconds: 5,
		labelsFromConfig: true, labels: {app: "api"}, prevResult: $p}' ;;
	esac
}
cni() { # CMD BIN CONF
	ip netns exec "$HUB" env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID=c-churn \
		CNI_NETNS="/run/netns/$P" CNI_IFNAME=eth0 CNI_PATH="$CNI_BIN" \
		CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=churn" "$2" <<<"$3" >"$T_TMP/out" 2>"$T_TMP/err"
}
ok=0 first="" last=""
for c in $(seq 1 "$cni_cycles"); do
	for i in $(seq 1 "$cni_per"); do
		ip netns add "$P" || break
		good=0
		cni ADD "$CNI_BIN/bridge" "$(conf bridge)" && cp "$T_TMP/out" "$T_TMP/prev" &&
			cni ADD "$MSEG_CNI" "$(conf mseg)" &&
			ip netns exec "$P" nft list table inet mseg >/dev/null 2>&1 && good=1
		[ "$good" = 1 ] || { echo "cni ADD $c/$i failed:"; cat "$T_TMP/out" "$T_TMP/err"; }
		cni DEL "$MSEG_CNI" "$(conf mseg)" || { good=0; echo "mseg-cni DEL failed"; }
		cni DEL "$CNI_BIN/bridge" "$(conf bridge)" || { good=0; echo "bridge DEL failed"; }
		ok=$((ok + good))
		ip netns del "$P"
	done
	s=$(sample)
	echo "cni cycle $c: $((c * cni_per)) containers ADD/DEL; msegd RSS ${s% *} KiB, fds ${s#* }"
	[ -z "$first" ] && first=$s
	last=$s
done
n=$((cni_cycles * cni_per))
r_figure churn_cni_containers "$ok/$n"
r_figure churn_cni_rss_kb "${first% *}->${last% *}"
r_figure churn_cni_fds "${first#* }->${last#* }"
t_check "CNI churn: every ADD (table programmed) and DEL succeeded ($ok/$n)" [ "$ok" -eq "$n" ]
t_check "CNI churn: fd count flat (${first#* } -> ${last#* })" [ "${first#* }" -eq "${last#* }" ]
if $asan; then
	echo "CNI churn: RSS ${first% *} -> ${last% *} KiB (not checked under ASan)"
else
	t_check "CNI churn: RSS flat (${first% *} -> ${last% *} KiB)" [ "${last% *}" -le $(( ${first% *} + 1024 )) ]
fi
t_check "msegd still up" kill -0 "$T_MSEGD_PID"
t_check_not "attacker still refused" t_tcp attacker 10.201.0.3 5432
t_done
