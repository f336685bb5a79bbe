#!/bin/bash
# Pod events that change no local table (docs/kubernetes.md): msegd
# watching the API stand-in, two pods of this node (web, db; db isolated by
# a NetworkPolicy that admits app=web) and a pod of another node (remote:
# a network namespace of this test that msegd knows only as a peer). A
# label change of the remote pod that the local policy selects still opens
# the pair, and the change back closes it, each within the one reconcile
# that includes its event (probed right after msegd logs that reconcile's
# acknowledgement); events on pods no local policy looks at (label changes,
# creates, deletes in another namespace) reconcile nothing at once: they are
# counted as mseg_kube_pod_events_total{effect="none"}, logged as changing
# no local table, are in the desired state at once (POST /v1/check), and
# the local pairs stay as they were meanwhile.
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds node npm curl jq socat
. "$MSEG_ROOT/tests/kube/standin.sh"

t_endpoints web:1 db:3 remote:9 || { t_fail "setup"; exit 1; }
t_tcp_server db 5432
t_wait_port db 5432
not() { ! "$@"; }
metric() { mseg_api /metrics | awk -v m="$1" '$1 == m {print $2}'; }
# apply OBJECT: through the stand-in; prints the resourceVersion it made
apply_rv() { kc POST /_objects "{\"op\":\"apply\",\"object\":$1}" | jq -er '.resourceVersion'; }
delete_rv() { kc POST /_objects "{\"op\":\"delete\",\"object\":$1}" | jq -er '.resourceVersion'; }
# applied RV [FROM-LINE]: msegd logged a reconcile acknowledged with every
# pod event up to RV in
applied() {
	local rv=$1 from=${2:-0} i
	for i in $(seq 1 100); do
		tail -n +"$((from + 1))" "$T_TMP/msegd.log" |
			grep -o 'pods resourceVersion [0-9]* applied' |
			awk -v rv="$rv" '$3 >= rv {f = 1} END {exit !f}' && return 0
		sleep 0.05
	done
	return 1
}
folded() { grep -q "pods event resourceVersion $1 changes no local table" "$T_TMP/msegd.log"; }

t_check "stand-in starts" kube_standin_start
kube_apply '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}'
kube_apply '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"far"}}'
kube_apply "$(kube_pod web-1 shop n1 10.201.0.1 '{"app":"web"}')"
kube_apply "$(kube_pod db-0 shop n1 10.201.0.3 '{"app":"db"}')"
kube_apply "$(kube_pod remote-0 shop n2 10.201.0.9 '{"app":"other"}')"
for i in $(seq 1 5); do
	kube_apply "$(kube_pod far-$i far n2 10.202.0.$i '{"app":"x"}')"
done
t_check "NetworkPolicy: db admits app=web of its namespace on 5432" kube_apply \
	'{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"db","namespace":"shop"},"spec":{"podSelector":{"matchLabels":{"app":"db"}},"policyTypes":["Ingress"],"ingress":[{"from":[{"podSelector":{"matchLabels":{"app":"web"}}}],"ports":[{"protocol":"TCP","port":5432}]}]}}'
kube_kubeconfig

t_msegd_start --kubeconfig "$K/kubeconfig" --node-name n1 --resync 0 --log-level debug
t_check "msegd ready" t_wait_log "msegd ready"
t_check "web registered" [ "$(kube_register c-web web-1 shop 10.201.0.1 "$(t_netns_path web)")" = 201 ]
t_check "db registered" [ "$(kube_register c-db db-0 shop 10.201.0.3 "$(t_netns_path db)")" = 201 ]
t_check "web -> db:5432 allowed" eventually t_tcp web 10.201.0.3 5432
t_check "remote (app=other, a pod of node n2) -> db refused" eventually not t_tcp remote 10.201.0.3 5432

# a probe of the local pair through everything below
( while :; do t_tcp web 10.201.0.3 5432 && echo ok || echo CLOSED; sleep 0.2; done ) \
	>"$T_TMP/probe-web" 2>/dev/null &
PROBE=$!
T_PIDS+=("$PROBE")

# the remote pod relabelled: the local policy's peer selects it now
local0=$(metric 'mseg_kube_pod_events_total{effect="local"}')
mark=$(t_log_lines)
rv=$(apply_rv "$(kube_pod remote-0 shop n2 10.201.0.9 '{"app":"web"}')")
t_check "remote relabelled app=web (resourceVersion $rv): a reconcile acknowledges it" \
	applied "$rv" "$mark"
t_check "... and remote -> db is open right then" t_tcp remote 10.201.0.3 5432
t_check_not "... not logged as changing no local table" folded "$rv"
t_check "counted as effect=local" \
	[ "$(metric 'mseg_kube_pod_events_total{effect="local"}')" -gt "${local0:-0}" ]
mark=$(t_log_lines)
rv=$(apply_rv "$(kube_pod remote-0 shop n2 10.201.0.9 '{"app":"other"}')")
t_check "relabelled back (resourceVersion $rv): a reconcile acknowledges it" applied "$rv" "$mark"
t_check "... and remote -> db is closed right then" not t_tcp remote 10.201.0.3 5432

# events on pods no local policy looks at: label changes, a create, a delete
none0=$(metric 'mseg_kube_pod_events_total{effect="none"}')
rvs=()
for i in $(seq 1 5); do
	rvs+=("$(apply_rv "$(kube_pod far-$i far n2 10.202.0.$i "{\"app\":\"y$i\"}")")")
done
rvs+=("$(apply_rv "$(kube_pod far-new far n2 10.202.0.99 '{"app":"x"}')")")
rvs+=("$(delete_rv "$(kube_pod far-1 far n2 10.202.0.1 '{"app":"y1"}')")")
none_at_least() { [ "$(metric 'mseg_kube_pod_events_total{effect="none"}')" -ge "$1" ]; }
t_check "7 unrelated pod events counted as effect=none" \
	eventually none_at_least $((${none0:-0} + 7))
missing=
for rv in "${rvs[@]}"; do folded "$rv" || missing+=" $rv"; done
t_check "each logged as changing no local table (missing:${missing:- none})" [ -z "$missing" ]
check() { curl -s -o "$T_TMP/check" -w '%{http_code}' --max-time 5 --unix-socket "$T_TMP/api.sock" \
	-X POST -H 'Content-Type: application/json' \
	-d "{\"from\":\"$1\",\"to\":\"c-db\",\"port\":\"tcp/5432\"}" http://mseg/v1/check; }
knows() { [ "$(check "$1")" = 200 ] && jq -e '.allowed == false' "$T_TMP/check" >/dev/null; }
t_check "the created pod is in the desired state: POST /v1/check knows it (refused)" \
	knows k8s.far.far-new
t_check "... and not the deleted one" [ "$(check k8s.far.far-1)" != 200 ]
mseg_api /v1/status >"$T_TMP/status"
t_check "status: pod_events local and none" \
	jq -e '.kubernetes.pod_events.none >= 7 and .kubernetes.pod_events.local >= 2' "$T_TMP/status"
t_check "web -> db still allowed" t_tcp web 10.201.0.3 5432
t_check "remote -> db still refused" not t_tcp remote 10.201.0.3 5432
kill "$PROBE" 2>/dev/null
wait "$PROBE" 2>/dev/null
t_check "the probe of web -> db never saw it closed" \
	bash -c "grep -q ok '$T_TMP/probe-web' && ! grep -q CLOSED '$T_TMP/probe-web'"

# an unrelated pod that takes a local pod's address is no unrelated event
mark=$(t_log_lines)
rv=$(apply_rv "$(kube_pod far-2 far n2 10.201.0.1 '{"app":"x"}')")
t_check "a remote pod claiming web's address (resourceVersion $rv) reconciles" applied "$rv" "$mark"
t_check_not "... it is not logged as changing no local table" folded "$rv"

t_done
