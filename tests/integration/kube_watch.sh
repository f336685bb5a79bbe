#!/bin/bash
# msegd watching a Kubernetes API server (the stand-in of tests/kube/, over
# TLS with a CA and a bearer token made here): endpoints registered through
# msegd's API as mseg-cni does (namespace/name, no labels), labels only in
# the stand-in's Pod objects, AllowLists created, changed and deleted in the
# stand-in, real traffic between network namespaces of this test. A pod
# label change opens and closes a pair; a pod of another node is a peer by
# its labels; the stand-in killed and restarted with a new resourceVersion
# history (410 on resume, relist) never opens anything; a 410 storm, an
# event cut in the middle, a silent (stalled) watch, 500s and a refused
# token (401, logged clearly) are all survived with the rules in force.
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds node npm openssl curl jq socat

. "$MSEG_ROOT/tests/kube/standin.sh"
SOCK="$T_TMP/api.sock"
KUBE_SCHEME=https
KUBE_CURL_OPTS=(--cacert "$K/ca.crt")
KC_MAX_TIME=5

# ---- the stand-in's TLS (a CA made here) and token ----
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=mseg test CA" \
	-keyout "$K/ca.key" -out "$K/ca.crt" >/dev/null 2>&1 &&
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$K/srv.key" \
	-out "$K/srv.csr" >/dev/null 2>&1 &&
printf 'subjectAltName=IP:127.0.0.1\n' >"$K/ext" &&
openssl x509 -req -in "$K/srv.csr" -CA "$K/ca.crt" -CAkey "$K/ca.key" -CAcreateserial \
	-days 1 -extfile "$K/ext" -out "$K/srv.crt" >/dev/null 2>&1 || { t_fail "TLS setup"; exit 1; }
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$K/server-token"
cp "$K/server-token" "$K/msegd-token"
chmod 600 "$K"/*

standin_start() { # extra args...
	kube_standin_start --tls-cert "$K/srv.crt" --tls-key "$K/srv.key" \
		--token-file "$K/server-token" --state "$K/state.json" "$@"
}
apply() { kube_apply "$1"; }
delete() { kube_delete "$1"; }
pod() { # NAME NODE IP APP
	printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","namespace":"shop","labels":{"app":"%s"}},"spec":{"nodeName":"%s","containers":[{"name":"c","image":"busybox","ports":[{"name":"pg","containerPort":5432}]}]},"status":{"phase":"Running","podIPs":[{"ip":"%s"}]}}' \
		"$1" "$4" "$2" "$3"
}
allowlist() { # PORT
	printf '{"apiVersion":"mseg.io/v1","kind":"AllowList","metadata":{"name":"shop","namespace":"shop"},"spec":{"groups":{"web":{"selector":{"app":"web"}},"db":{"selector":{"app":"db"}}},"allow":[{"from":"web","to":"db","ports":["tcp/%s"]}]}}' "$1"
}
api() { curl -s --max-time 5 --unix-socket "$SOCK" "http://mseg$1"; }
api_put() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$SOCK" -X PUT \
	-H 'Content-Type: application/json' -d "$2" "http://mseg$1"; }
# eventually CMD...: true within 6 s; slowly: within 20 s (reconnects back off)
eventually() { local i; for i in $(seq 1 30); do "$@" && return 0; sleep 0.2; done; return 1; }
slowly() { local i; for i in $(seq 1 100); do "$@" && return 0; sleep 0.2; done; return 1; }
never_reaches() { ! t_tcp "$@"; }
jqq() { jq -e "$@" >/dev/null; }
metric() { api /metrics | awk -v m="$1" '$1 == m {print $2}'; }

t_endpoints web:1 other:2 db:3 remote:9 || { t_fail "setup"; exit 1; }
t_tcp_server db 5432
t_tcp_server db 6000
t_wait_port db 5432

t_check "stand-in starts (TLS, token)" standin_start
t_check "stand-in validates objects: a bad Pod is refused" \
	bash -c "! curl -s --cacert '$K/ca.crt' https://127.0.0.1:$PORT/_objects -d '{\"object\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\"},\"spec\":{\"containers\":[{\"name\":3}]}}}' | grep -q '\"objects\"'"
t_check "stand-in refuses a request without the token (401)" \
	[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$K/ca.crt" "https://127.0.0.1:$PORT/api/v1/pods")" = 401 ]
apply '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop","labels":{"team":"a"}}}'
apply '{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}'
apply "$(pod web-1 n1 10.201.0.1 web)"
apply "$(pod other-0 n1 10.201.0.2 other)"
apply "$(pod db-0 n1 10.201.0.3 db)"
# a pod of another node: known to msegd only through the cluster
apply "$(pod remote-0 n2 10.201.0.9 web)"
t_check "AllowList created in the stand-in" apply "$(allowlist 5432)"

cat >"$K/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: standin
  cluster:
    server: https://127.0.0.1:$PORT
    certificate-authority: ca.crt
contexts:
- name: test
  context: {cluster: standin, user: msegd}
users:
- name: msegd
  user:
    tokenFile: msegd-token
EOF

t_msegd_start --kubeconfig "$K/kubeconfig" --node-name n1 --resync 0 --log-level debug \
	--kube-idle-timeout 3
t_check "msegd ready" t_wait_log "msegd ready"
t_check "msegd watches the stand-in" t_wait_log "kubernetes: watching https://127.0.0.1:$PORT"

# registered as mseg-cni does: namespace/name, netns, addresses; no labels
reg() { # ID NAME N
	api_put "/v1/endpoints/$1" "{\"name\":\"$2\",\"namespace\":\"shop\",\"netns\":\"$(t_netns_path "${1#c-}")\",\"ips\":[\"10.201.0.$3\"]}"
}
t_check "web registered" [ "$(reg c-web web-1 1)" = 201 ]
t_check "other registered" [ "$(reg c-other other-0 2)" = 201 ]
t_check "db registered" [ "$(reg c-db db-0 3)" = 201 ]

t_check "web -> db:5432 allowed (labels from the Pod objects)" eventually t_tcp web 10.201.0.3 5432
t_check "other -> db:5432 refused" never_reaches other 10.201.0.3 5432
t_check "remote (a pod of node n2, a peer by its labels) -> db:5432 allowed" t_tcp remote 10.201.0.3 5432
t_check "web -> db:6000 refused" never_reaches web 10.201.0.3 6000
st=$(api /v1/status)
t_check "status: kubernetes synced, 1 policy, 4 endpoints from the cluster" \
	jqq '.kubernetes.synced and .policies.kubernetes == 1 and .endpoints.kubernetes == 4 and (.kubernetes.stale | length) == 0' <<<"$st"
check() { curl -s --max-time 5 --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
	-d "$1" http://mseg/v1/check; }
check '{"from":"c-web","to":"c-db","port":"tcp/5432"}' >"$T_TMP/check"
t_check "POST /v1/check sees the pods' labels: c-web -> c-db allowed by shop/shop" \
	jqq '.allowed == true and .ingress.policy == "shop/shop"' "$T_TMP/check"
check '{"from":"c-other","to":"c-db","port":"tcp/5432"}' >"$T_TMP/check"
t_check "POST /v1/check: c-other -> c-db refused" jqq '.allowed == false' "$T_TMP/check"

# a label change in the stand-in opens, and closes, a pair while traffic runs
( while :; do t_tcp other 10.201.0.3 5432 && echo ok || echo no; sleep 0.2; done ) >"$T_TMP/probe-other" 2>/dev/null &
PROBE=$!
T_PIDS+=("$PROBE")
apply "$(pod other-0 n1 10.201.0.2 web)"
t_check "pod other-0 relabelled app=web: other -> db opens" eventually t_tcp other 10.201.0.3 5432
t_check "... and the running probe sees it open" eventually grep -q ok "$T_TMP/probe-other"
apply "$(pod other-0 n1 10.201.0.2 other)"
t_check "relabelled back: other -> db closes" eventually never_reaches other 10.201.0.3 5432
: >"$T_TMP/probe-other"
t_check "... and the running probe sees it closed" \
	eventually bash -c "grep -q no '$T_TMP/probe-other' && ! grep -q ok '$T_TMP/probe-other'"
kill "$PROBE" 2>/dev/null; wait "$PROBE" 2>/dev/null

# the AllowList changed and deleted in the stand-in
apply "$(allowlist 6000)"
t_check "AllowList changed to tcp/6000: web -> db:6000 allowed" eventually t_tcp web 10.201.0.3 6000
t_check "... and web -> db:5432 refused" eventually never_reaches web 10.201.0.3 5432
delete "$(allowlist 6000)"
t_check "AllowList deleted: db is no longer isolated" eventually t_tcp other 10.201.0.3 5432
apply "$(allowlist 5432)"
t_check "AllowList created again: other -> db refused" eventually never_reaches other 10.201.0.3 5432
t_check "web -> db:5432 allowed" eventually t_tcp web 10.201.0.3 5432

# from here on, other -> db must never open: a probe runs through every fault
( while :; do t_tcp other 10.201.0.3 5432 && echo OPEN; sleep 0.2; done ) >"$T_TMP/probe-closed" 2>/dev/null &
PROBE=$!
T_PIDS+=("$PROBE")

# the API server goes away: the last state stays, the status says stale since when
kill -9 "$STANDIN_PID"; wait "$STANDIN_PID" 2>/dev/null
t_check "stand-in gone: status says stale" \
	eventually bash -c "curl -s --unix-socket '$SOCK' http://mseg/v1/status | jq -e '(.kubernetes.stale | length) > 0 and (.kubernetes.stale[0].since | test(\"^20\"))' >/dev/null"
api /readyz >"$T_TMP/readyz"
t_check "/readyz still ready (the last state is enforced) and says what is stale" \
	jqq '.ready and (.kubernetes.stale | length) > 0' "$T_TMP/readyz"
t_check "web -> db:5432 still allowed" t_tcp web 10.201.0.3 5432
t_check "other -> db still refused" never_reaches other 10.201.0.3 5432
sleep 2
# restarted with the same objects and a new resourceVersion history: 410 on resume
relists0=$(metric 'mseg_kube_relists_total{resource="pods"}')
mark=$(t_log_lines)
t_check "stand-in restarted (new resourceVersion history)" standin_start --rv-start 50000
t_check "msegd: 410 Gone on resume, relists" slowly t_wait_log "too old \(410 Gone\): listing again" "$mark"
t_check "watching again" slowly bash -c "curl -s --unix-socket '$SOCK' http://mseg/v1/status | jq -e '.kubernetes.stale | length == 0' >/dev/null"
t_check "relists counted" [ "$(metric 'mseg_kube_relists_total{resource="pods"}')" -gt "${relists0:-0}" ]
t_check "watch restarts counted" [ "$(metric 'mseg_kube_watch_restarts_total{resource="pods"}')" -gt 0 ]
api /metrics >"$T_TMP/metrics"
if command -v promtool >/dev/null; then
	t_check "promtool check metrics (with the watcher's families)" \
		bash -c "promtool check metrics <'$T_TMP/metrics'"
fi
t_check "metrics: exposition format (promcheck.py)" python3 "$MSEG_ROOT/tests/tools/promcheck.py" <"$T_TMP/metrics"
t_check "metrics: mseg_kube_stale and the kubernetes source" \
	bash -c "grep -q '^mseg_kube_stale{resource=\"pods\"} 0$' '$T_TMP/metrics' && grep -q '^mseg_policies{source=\"kubernetes\"} 1$' '$T_TMP/metrics'"
t_check "after the relist: web -> db allowed" t_tcp web 10.201.0.3 5432

# a 410 storm: every watch expires at once
relists0=$(metric 'mseg_kube_relists_total{resource="allowlists"}')
kc POST /_control '{"expireAll":true}' >/dev/null
t_check "410 storm: every resource relists" eventually bash -c \
	"[ \"\$(curl -s --unix-socket '$SOCK' http://mseg/metrics | awk '\$1 == \"mseg_kube_relists_total{resource=\\\"allowlists\\\"}\" {print \$2}')\" -gt $relists0 ]"

t_check "after the storm: other -> db refused" never_reaches other 10.201.0.3 5432
kill "$PROBE" 2>/dev/null; wait "$PROBE" 2>/dev/null
t_check "other -> db never opened while the stand-in was killed, restarted, expired" \
	bash -c "! grep -q OPEN '$T_TMP/probe-closed'"

# an event cut in the middle: the watch resumes from the last whole event
kc POST /_control '{"cutMidEvent":true}' >/dev/null
apply "$(pod other-0 n1 10.201.0.2 web)"
t_check "event cut mid-way: replayed on resume, other -> db opens" eventually t_tcp other 10.201.0.3 5432
apply "$(pod other-0 n1 10.201.0.2 other)"
t_check "relabelled back: closed" eventually never_reaches other 10.201.0.3 5432

# a silent watch: no byte for --kube-idle-timeout seconds -> reconnect
mark=$(t_log_lines)
kc POST /_control '{"stall":true}' >/dev/null
t_check "stalled watch: reconnected after the idle timeout" t_wait_log "no byte for 3 s; reconnecting" "$mark"
kc POST /_control '{"stall":false}' >/dev/null

# 500s, then a refused token
kc POST /_control '{"status":500,"count":4}' >/dev/null
kc POST /_control '{"closeWatches":true}' >/dev/null
mark=$(t_log_lines)
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$K/server-token"
kc POST /_control '{"closeWatches":true}' >/dev/null
t_check "a refused token is logged clearly" t_wait_log "401 Unauthorized: the API server refused the token" "$mark"
t_check "errors counted" [ "$(metric 'mseg_kube_errors_total{resource="pods"}')" -gt 0 ]
t_check "401: the rules stay (web allowed, other refused)" \
	bash -c "$(declare -f t_tcp t_ns t_hostport); T_PREFIX=$T_PREFIX; t_tcp web 10.201.0.3 5432 && ! t_tcp other 10.201.0.3 5432"
# the token file is read again when it changes
cp "$K/server-token" "$K/msegd-token"
apply "$(pod other-0 n1 10.201.0.2 web)"
t_check "new token picked up: changes flow again" slowly t_tcp other 10.201.0.3 5432
t_check "msegd still running" kill -0 "$T_MSEGD_PID"
# a clean exit: with SANITIZE=1, LeakSanitizer checks the watcher's memory here
t_check "msegd exits cleanly on SIGTERM (sanitizers: no leak)" t_msegd_stop
t_done
