# Helpers for integration tests that run msegd against the API stand-in
# (standin.js) on loopback: over plain HTTP without a token by default; a
# test that serves TLS sets KUBE_SCHEME=https and KUBE_CURL_OPTS (e.g.
# --cacert) and passes standin.js its TLS flags. Source it after
# tests/lib.sh; it sets KUBE_DIR, K (a directory in $T_TMP), PORT and
# STANDIN_PID.

KUBE_DIR="$MSEG_ROOT/tests/kube"
if [ ! -d "$KUBE_DIR/node_modules/kubernetes-models" ]; then
	(cd "$KUBE_DIR" && { npm ci --offline --no-audit --no-fund >/dev/null 2>&1 ||
		npm ci --no-audit --no-fund >/dev/null 2>&1; }) ||
		{ echo "SKIP: cannot install the stand-in's npm packages"; exit 77; }
fi
K="$T_TMP/kube"
mkdir -p "$K"
PORT=
STANDIN_PID=
KUBE_SCHEME=${KUBE_SCHEME:-http}
KUBE_CURL_OPTS=()

# kube_standin_start [ARGS...]: start it (on PORT again when set), remembered
# for cleanup; sets PORT and STANDIN_PID
kube_standin_start() {
	local i
	rm -f "$K/port"
	node "$KUBE_DIR/standin.js" --port-file "$K/port" --port "${PORT:-0}" \
		--bookmark-ms 500 "$@" >>"$K/standin.log" 2>&1 &
	STANDIN_PID=$!
	T_PIDS+=("$STANDIN_PID")
	for i in $(seq 1 100); do
		[ -s "$K/port" ] && { PORT=$(cat "$K/port"); return 0; }
		sleep 0.1
	done
	return 1
}
# kube_kubeconfig: $K/kubeconfig for the stand-in (no credentials)
kube_kubeconfig() {
	cat >"$K/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: standin
  cluster: {server: "http://127.0.0.1:$PORT"}
contexts:
- name: test
  context: {cluster: standin, user: msegd}
users:
- name: msegd
  user: {}
EOF
}
# kc METHOD PATH [BODY]: the stand-in's control, object and API endpoints
# (KC_MAX_TIME seconds at most, 10 unless set)
kc() {
	curl -s --max-time "${KC_MAX_TIME:-10}" "${KUBE_CURL_OPTS[@]}" -X "$1" \
		"$KUBE_SCHEME://127.0.0.1:$PORT$2" \
		${3:+-H 'Content-Type: application/json' --data-binary "$3"}
}
# kube_apply OBJECT / kube_delete OBJECT: through POST /_objects (validated)
kube_apply() { kc POST /_objects "{\"op\":\"apply\",\"object\":$1}" | jq -e '.objects' >/dev/null; }
kube_delete() { kc POST /_objects "{\"op\":\"delete\",\"object\":$1}" | jq -e '.objects' >/dev/null; }
# kube_pod NAME NS NODE IP LABELS_JSON: a running Pod object
kube_pod() {
	printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","namespace":"%s","labels":%s},"spec":{"nodeName":"%s","containers":[{"name":"c","image":"busybox"}]},"status":{"phase":"Running","podIPs":[{"ip":"%s"}]}}' \
		"$1" "$2" "$5" "$3" "$4"
}
# kube_node NAME ADDRESS...: a Node object with these status.addresses
# (TYPE=ADDR, e.g. InternalIP=10.0.0.1 Hostname=n1)
kube_node() {
	local name=$1 a sep= addrs=
	shift
	for a in "$@"; do
		addrs+="$sep{\"type\":\"${a%%=*}\",\"address\":\"${a#*=}\"}"
		sep=,
	done
	printf '{"apiVersion":"v1","kind":"Node","metadata":{"name":"%s"},"status":{"addresses":[%s]}}' \
		"$name" "$addrs"
}
# kube_register ID NAME NS IP NETNS: as mseg-cni registers a pod (no labels)
kube_register() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$T_TMP/api.sock" \
		-X PUT -H 'Content-Type: application/json' \
		-d "{\"name\":\"$2\",\"namespace\":\"$3\",\"netns\":\"$5\",\"ips\":[\"$4\"]}" \
		"http://mseg/v1/endpoints/$1"
}
# msegd's API
mseg_api() { curl -s --max-time 5 --unix-socket "$T_TMP/api.sock" "http://mseg$1"; }
# eventually CMD...: true within 6 s
eventually() { local i; for i in $(seq 1 30); do "$@" && return 0; sleep 0.2; done; return 1; }
