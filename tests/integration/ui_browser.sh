#!/bin/bash
# The flow map in a real browser (Debian's chromium + chromium-driver +
# python3-selenium, headless): the incident's four containers under
# policies/examples/incident.yaml, three outside hosts, msegd and
# `mseg ui`. The page loads without console errors and shows the four
# containers and the three outside hosts as text; a refused attempt made
# during the test appears as a red edge within 2 s; a click on a node
# shows its rules as the kernel holds them; without the secret or the
# cookie there is no data (401, the page says "Not signed in"); the TCP
# listener's page asks for the token. Also times a first render of 200
# endpoints and 10,000 flow records and a live update (synthetic data fed
# to the page's render function). msegd, `mseg ui` and the browser run in
# the test's hub namespace, so their ports are private.
#   UI_SCREENSHOT=docs/img/flow-map.png   also saves the map there
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds chromium chromedriver socat
PY=/usr/bin/python3
$PY -c 'import selenium' 2>/dev/null || { echo "SKIP: python3-selenium missing"; exit 77; }

t_endpoints web-ui:2 gateway:3 microservice:4 postgres:5 out1:66 out2:67 out3:68 ||
	{ t_fail setup; t_done; exit 1; }
HUB="ip netns exec $T_HUB"
$HUB ip link set lo up
mkdir -p "$T_TMP/policies"
cp "$MSEG_ROOT/policies/examples/incident.yaml" "$T_TMP/policies/"
ep() { # ID N APP TIER
	cat <<EOF2
  - {id: $1, name: $1, namespace: shop, labels: {app: $3, tier: $4},
     netns: $(t_netns_path "$1"), ips: [10.201.0.$2, "fd00:201::$2"]}
EOF2
}
{
	echo "endpoints:"
	ep web-ui 2 web-ui frontend
	ep gateway 3 gateway edge
	ep microservice 4 microservice backend
	ep postgres 5 postgres data
} >"$T_TMP/endpoints.yaml"
TOKEN=$(head -c 48 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
printf '%s\n' "$TOKEN" >"$T_TMP/token"
chmod 600 "$T_TMP/token"

t_tcp_server postgres 5432
t_tcp_server out2 80
t_tcp_server out3 3333
t_wait_port postgres 5432 && t_wait_port out2 80 && t_wait_port out3 3333 || t_fail "servers"

$HUB "$MSEGD" --state-dir "$T_TMP/state" --listen "unix:$T_TMP/api.sock" \
	--listen-tcp 127.0.0.1:8443 --token-file "$T_TMP/token" \
	--policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" >>"$T_TMP/msegd.log" 2>&1 &
T_MSEGD_PID=$!
T_PIDS+=("$T_MSEGD_PID")
t_check "msegd ready" t_wait_log "msegd ready"

# the incident before anybody looks: the botnet's login, the download and
# the mining pool are refused; the app's own path works
t_check_not "outside login to postgres:5432 refused" t_tcp out1 10.201.0.5 5432
t_check_not "postgres cannot download from out2:80" t_tcp postgres 10.201.0.67 80
t_check_not "postgres cannot reach the mining pool out3:3333" t_tcp postgres 10.201.0.68 3333
t_check "microservice reaches postgres:5432" t_tcp microservice 10.201.0.5 5432

# what msegd serves, straight from its socket
S=(curl -s --max-time 5 --unix-socket "$T_TMP/api.sock")
hdr=$("${S[@]}" -D - -o /dev/null http://x/ui/)
t_check "/ui/ is HTML" grep -qi '^content-type: text/html; charset=utf-8' <<<"$hdr"
t_check "/ui/ has the strict CSP" grep -qiF "content-security-policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'" <<<"$hdr"
t_check "/ui/ says nosniff" grep -qi '^x-content-type-options: nosniff' <<<"$hdr"
t_check "/ui/app.js is JavaScript" bash -c "\"\$@\" -D - -o /dev/null http://x/ui/app.js | grep -qi '^content-type: text/javascript'" _ "${S[@]}"
t_check "/ui redirects to /ui/" bash -c "\"\$@\" -D - -o /dev/null http://x/ui | grep -qi '^location: /ui/'" _ "${S[@]}"
t_check "/ui/nothing.js is 404" [ "$("${S[@]}" -o /dev/null -w '%{http_code}' http://x/ui/nothing.js)" = 404 ]
t_check "the page has no inline script or style" bash -c "! \"\$@\" http://x/ui/ | grep -Eqi '<script>|<style|style=|onclick=|onload='" _ "${S[@]}"
graph=$("${S[@]}" http://x/v1/graph)
t_check "/v1/graph: microservice may reach postgres on tcp/5432 (shop/shop rule 3)" $PY -c '
import json, sys
g = json.loads(sys.argv[1])
assert {"from": "microservice", "to": "postgres", "ports": ["tcp/5432"], "policy": "shop/shop", "rule": 3} in g["edges"], g["edges"]
assert not any(e["to"] == "postgres" and e["from"] != "microservice" for e in g["edges"])
assert any(p["group"] == "world" and p["endpoint"] == "web-ui" and p["direction"] == "ingress" for p in g["peers"])' "$graph"
t_check "a foreign Origin is refused (403)" [ "$("${S[@]}" -o /dev/null -w '%{http_code}' -H 'Origin: http://evil.example' http://x/v1/graph)" = 403 ]
t_check "a browser's POST without X-Mseg-UI is refused (403)" [ "$("${S[@]}" -o /dev/null -w '%{http_code}' -H 'Origin: http://x' -H 'Sec-Fetch-Site: same-origin' -X POST -d '{"from":"web-ui","to":"postgres","port":"tcp/5432"}' http://x/v1/check)" = 403 ]
t_check "the CLI's POST (no Origin) still works" [ "$("${S[@]}" -o /dev/null -w '%{http_code}' -X POST -d '{"from":"web-ui","to":"postgres","port":"tcp/5432"}' http://x/v1/check)" = 200 ]

$HUB "$MSEG" --server "unix:$T_TMP/api.sock" ui >"$T_TMP/ui.out" 2>"$T_TMP/ui.err" &
T_PIDS+=($!)
for i in $(seq 1 50); do grep -q 'secret=' "$T_TMP/ui.out" && break; sleep 0.1; done
URL=$(grep -o 'http://127.0.0.1:[0-9]*/ui/?secret=[0-9a-f]*' "$T_TMP/ui.out")
t_check "mseg ui prints a URL with a one-time secret" [ -n "$URL" ]

export UI_URL="$URL" UI_TCP="http://127.0.0.1:8443" UI_TOKEN="$TOKEN" UI_TMP="$T_TMP"
export UI_NS_ATTACKER="$(t_ns out1)" UI_SHOT="${UI_SCREENSHOT:-}" HOME="$T_TMP"
$HUB timeout 150 $PY "$MSEG_ROOT/tests/integration/ui_browser.py" || t_fail "browser script exited with $?"
t_done
