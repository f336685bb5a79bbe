#!/bin/bash
# The TCP listener: msegd refuses to start without a token file or with a
# short token; 401 (missing or malformed Authorization) and 403 (wrong
# token) are distinct and change nothing; the token never reaches the log;
# TLS with --tls-cert/--tls-key; the per-IP connection limit; a slow client
# (one byte every 2 s) is cut off and does not hold up other requests.
# msegd runs inside a namespace of its own, so its port is private.
. "$(dirname "$0")/../lib.sh"
t_require_root
t_hub || { t_fail setup; exit 1; }
HUB="ip netns exec $T_HUB"
$HUB ip link set lo up
TOKEN=$(head -c 48 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
printf '%s\n' "$TOKEN" >"$T_TMP/token"
printf 'short-token\n' >"$T_TMP/short"
chmod 600 "$T_TMP/token" "$T_TMP/short"

start() { # LOGFILE ARGS...: msegd in the hub namespace
	local log=$1; shift
	$HUB "$MSEGD" --state-dir "$T_TMP/state" --listen "unix:$T_TMP/api.sock" --resync 0 "$@" >>"$log" 2>&1 &
	T_MSEGD_PID=$!
	T_PIDS+=("$T_MSEGD_PID")
}
hcurl() { $HUB curl -s -o "$T_TMP/body" -w '%{http_code}' --max-time 5 "$@"; }
wait_http() { local i; for i in $(seq 1 100); do $HUB curl -s -o /dev/null --max-time 1 "$@" && return 0; sleep 0.05; done; return 1; }

# ---- refusing to start
start "$T_TMP/nofile.log" --listen-tcp 127.0.0.1:8080 --token-file "$T_TMP/nope"
wait "$T_MSEGD_PID"; rc=$?
t_check "missing token file: msegd refuses to start" [ "$rc" -ne 0 ]
t_check "missing token file: says so" grep -q "token file" "$T_TMP/nofile.log"
start "$T_TMP/short.log" --listen-tcp 127.0.0.1:8080 --token-file "$T_TMP/short"
wait "$T_MSEGD_PID"; rc=$?
t_check "short token: msegd refuses to start" [ "$rc" -ne 0 ]
t_check "short token: says how long it must be" grep -q "at least 32" "$T_TMP/short.log"
t_check_not "short token: not in the log" grep -q "short-token" "$T_TMP/short.log"
$HUB "$MSEGD" --state-dir "$T_TMP/state" --listen-tcp 127.0.0.1:8080 >"$T_TMP/notok.log" 2>&1
t_check "--listen-tcp without --token-file: refused" [ $? -ne 0 ]

# ---- bearer token on plain TCP
start "$T_TMP/msegd.log" --listen-tcp 127.0.0.1:8080 --token-file "$T_TMP/token"
t_check "msegd with a TCP listener starts" wait_http http://127.0.0.1:8080/healthz
t_check "no Authorization -> 401" [ "$(hcurl http://127.0.0.1:8080/v1/status)" = 401 ]
t_check "401 carries WWW-Authenticate: Bearer" bash -c "$HUB curl -s -D - -o /dev/null http://127.0.0.1:8080/v1/status | grep -qi '^WWW-Authenticate: Bearer'"
t_check "Basic auth -> 401" [ "$(hcurl -H 'Authorization: Basic Zm9vOmJhcg==' http://127.0.0.1:8080/v1/status)" = 401 ]
t_check "wrong token -> 403" [ "$(hcurl -H 'Authorization: Bearer 0123456789012345678901234567890123456789' http://127.0.0.1:8080/v1/status)" = 403 ]
t_check "token prefix -> 403" [ "$(hcurl -H "Authorization: Bearer ${TOKEN:0:39}" http://127.0.0.1:8080/v1/status)" = 403 ]
t_check "right token -> 200" [ "$(hcurl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/v1/status)" = 200 ]
ep='{"namespace": "shop", "ips": ["10.201.0.9"]}'
t_check "PUT with a wrong token -> 403" [ "$(hcurl -X PUT -H 'Authorization: Bearer 0123456789012345678901234567890123456789' -d "$ep" http://127.0.0.1:8080/v1/endpoints/e1)" = 403 ]
t_check "PUT without a token -> 401" [ "$(hcurl -X PUT -d "$ep" http://127.0.0.1:8080/v1/endpoints/e1)" = 401 ]
t_check "nothing stored by refused requests" [ -z "$(ls -A "$T_TMP/state/endpoints")" ]
t_check "PUT with the token -> 201" [ "$(hcurl -X PUT -H "Authorization: Bearer $TOKEN" -d "$ep" http://127.0.0.1:8080/v1/endpoints/e1)" = 201 ]
t_check "the unix socket needs no token" [ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$T_TMP/api.sock" http://l/v1/endpoints/e1)" = 200 ]
t_check "CLI over TCP with MSEG_TOKEN" bash -c "MSEG_TOKEN='$TOKEN' $HUB '$MSEG' --server http://127.0.0.1:8080 get endpoints | grep -q '^e1 '"
MSEG_TOKEN=0123456789012345678901234567890123456789 $HUB "$MSEG" --server http://127.0.0.1:8080 status >/dev/null 2>"$T_TMP/cli.err"
t_check "CLI with a wrong token: exit 1" [ $? -eq 1 ]
t_check "CLI with a wrong token: says so" grep -q "refused the token" "$T_TMP/cli.err"
$HUB "$MSEG" --server http://127.0.0.1:8080 status >/dev/null 2>"$T_TMP/cli.err"
t_check "CLI without a token: asks for one" grep -q "wants a token" "$T_TMP/cli.err"
t_check "CLI with --token-file" bash -c "$HUB '$MSEG' --server http://127.0.0.1:8080 --token-file '$T_TMP/token' status | grep -q '^version:'"

# per-IP limit: 20 idle connections from one address, the surplus is closed
n_closed=$($HUB python3 - <<'PY'
import socket, time
socks = []
for i in range(20):
    s = socket.create_connection(("127.0.0.1", 8080))
    socks.append(s)
time.sleep(0.5)
closed = 0
for s in socks:
    s.settimeout(0.02)
    try:
        if s.recv(1) == b"":
            closed += 1
    except socket.timeout:
        pass
    except OSError:
        closed += 1
print(closed)
PY
)
t_check "per-IP limit: connections beyond 16 are refused ($n_closed closed)" [ "${n_closed:-0}" -eq 4 ]

# ---- a slow client does not hold up others, and is cut off
$HUB python3 - "$T_TMP/api.sock" >"$T_TMP/slow.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
t0 = time.time()
req = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
try:
    for b in req:
        s.send(bytes([b]))
        time.sleep(2)
        s.settimeout(0.01)
        try:
            if s.recv(1) == b"":
                break
        except socket.timeout:
            pass
        except OSError:
            break
    print("cut off after %.1f s" % (time.time() - t0))
except OSError:
    print("cut off after %.1f s" % (time.time() - t0))
PY
slow=$!
T_PIDS+=("$slow")
sleep 3
worst=0
for i in $(seq 1 20); do
	t=$(curl -s -o /dev/null -w '%{time_total}' --unix-socket "$T_TMP/api.sock" http://l/v1/status)
	worst=$(echo "if ($t > $worst) $t else $worst" | bc)
	sleep 0.2
done
t_check "others are served while the slow client trickles (worst ${worst}s)" [ "$(echo "$worst < 0.5" | bc)" = 1 ]
for i in $(seq 1 30); do kill -0 "$slow" 2>/dev/null || break; sleep 1; done
t_check "the slow client is cut off: $(cat "$T_TMP/slow.out")" bash -c "grep -q 'cut off after' '$T_TMP/slow.out' && [ \$(sed 's/cut off after \([0-9]*\).*/\1/' '$T_TMP/slow.out') -le 20 ]"
t_check_not "the token is not in the log" grep -qF "$TOKEN" "$T_TMP/msegd.log"
t_check "plain TCP with a token: msegd warns that it crosses the network in clear" \
	grep -q "http:127.0.0.1:8080: TCP listener without TLS: the bearer token and every answer cross the network in clear text" "$T_TMP/msegd.log"
kill -TERM "$T_MSEGD_PID"; wait "$T_MSEGD_PID"

# ---- a token file others can read
cp "$T_TMP/token" "$T_TMP/token644"; chmod 644 "$T_TMP/token644"
start "$T_TMP/mode.log" --listen-tcp 127.0.0.1:8080 --token-file "$T_TMP/token644"
wait "$T_MSEGD_PID"; rc=$?
t_check "token file mode 0644: msegd refuses to start" [ "$rc" -ne 0 ]
t_check "token file mode 0644: says the mode and the fix" grep -q "readable or writable by group or others (mode 0644); chmod 600 it" "$T_TMP/mode.log"

# ---- TLS
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
	-addext "subjectAltName=IP:127.0.0.1" -keyout "$T_TMP/key.pem" -out "$T_TMP/cert.pem" >/dev/null 2>&1
start "$T_TMP/msegd.log" --listen-tcp 127.0.0.1:8443 --token-file "$T_TMP/token" \
	--tls-cert "$T_TMP/cert.pem" --tls-key "$T_TMP/key.pem"
t_check "TLS listener starts" wait_http --cacert "$T_TMP/cert.pem" https://127.0.0.1:8443/healthz
t_check "TLS: right token -> 200" [ "$(hcurl --cacert "$T_TMP/cert.pem" -H "Authorization: Bearer $TOKEN" https://127.0.0.1:8443/v1/status)" = 200 ]
t_check "TLS: no token -> 401" [ "$(hcurl --cacert "$T_TMP/cert.pem" https://127.0.0.1:8443/v1/status)" = 401 ]
t_check "TLS: plain HTTP gets no answer" [ "$(hcurl http://127.0.0.1:8443/v1/status)" != 200 ]
t_check "TLS 1.2 is accepted" [ "$(hcurl --cacert "$T_TMP/cert.pem" --tlsv1.2 --tls-max 1.2 -H "Authorization: Bearer $TOKEN" https://127.0.0.1:8443/v1/status)" = 200 ]
t_check "TLS 1.1 is refused" [ "$(hcurl --cacert "$T_TMP/cert.pem" --tlsv1.1 --tls-max 1.1 -H "Authorization: Bearer $TOKEN" https://127.0.0.1:8443/v1/status)" != 200 ]
t_check "TLS 1.0 is refused" [ "$(hcurl --cacert "$T_TMP/cert.pem" --tlsv1.0 --tls-max 1.0 -H "Authorization: Bearer $TOKEN" https://127.0.0.1:8443/v1/status)" != 200 ]
t_check "CLI over https" bash -c "MSEG_TOKEN='$TOKEN' $HUB '$MSEG' --server https://127.0.0.1:8443 --cacert '$T_TMP/cert.pem' get endpoints | grep -q '^e1 '"
kill -TERM "$T_MSEGD_PID"; wait "$T_MSEGD_PID"
t_done
