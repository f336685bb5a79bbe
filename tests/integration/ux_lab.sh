#!/bin/bash
# A new user's lab, replayed: the mistakes people make in their first hour,
# and what mseg tells them about each. A typo in a selector's label key, a
# policy for a namespace without endpoints, an endpoint whose netns does not
# exist, a second msegd on the same state dir, deleting a registered
# endpoint's netns, and `mseg check` with each spelling of a port.
. "$(dirname "$0")/../lib.sh"
t_require_root
export MSEG_SERVER="unix:$T_TMP/api.sock"

t_endpoints web:1 db:3 tmp:9 || { t_fail "setup"; exit 1; }

run() { # NAME WANT-STATUS CMD...: output in $T_TMP/out, $T_TMP/err
	local n=$1 want=$2; shift 2
	"$@" >"$T_TMP/out" 2>"$T_TMP/err"
	local rc=$?
	[ "$rc" = "$want" ] && return 0
	t_fail "$n: exit $rc, want $want: $(head -c 300 "$T_TMP/err")"
	return 1
}
out_has() { grep -q -- "$1" "$T_TMP/out"; }
err_has() { grep -q -- "$1" "$T_TMP/err"; }

# Labs 1-4 run without a resync in their way: a resync removes the endpoint
# of lab 3 (its netns does not exist) and could do so before its row is read.
t_msegd_start --resync 600
for i in $(seq 1 50); do "$MSEG" status >/dev/null 2>&1 && break; sleep 0.1; done
t_check "msegd is up" "$MSEG" status

# The user registers two endpoints
run "add web" 0 "$MSEG" endpoint add web --netns "$(t_netns_path web)" --ip 10.201.0.1 --namespace shop --label app=web
run "add db" 0 "$MSEG" endpoint add db --netns "$(t_netns_path db)" --ip 10.201.0.3 --namespace shop --label app=db

# 1. a typo in a selector's label key: 'ap' for 'app'
cat >"$T_TMP/typo.yaml" <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: shop, namespace: shop}
spec:
  groups:
    web: {selector: {app: web}}
    db: {selector: {ap: db}}
  allow:
    - {from: web, to: db, ports: [tcp/5432]}
EOF2
run "apply the typo" 0 "$MSEG" apply -f "$T_TMP/typo.yaml" && \
	t_check "lab 1: apply warns that group 'db' selects nothing" \
		err_has "^warning: group 'db' selects no endpoint (ap=db in namespace shop)"
sed -i 's/{ap: db}/{app: db}/' "$T_TMP/typo.yaml"
run "apply the fix" 0 "$MSEG" apply -f "$T_TMP/typo.yaml" && \
	t_check_not "lab 1: the fix has no warning" err_has "warning"

# 2. a policy for a namespace that has no endpoints
sed -e 's/namespace: shop}/namespace: shopp}/' -e 's/name: shop,/name: other,/' "$T_TMP/typo.yaml" >"$T_TMP/ns.yaml"
run "apply to an empty namespace" 0 "$MSEG" apply -f "$T_TMP/ns.yaml" && \
	t_check "lab 2: apply warns the namespace has no endpoints" \
		err_has "^warning: namespace 'shopp' has no endpoints: the policy covers nothing yet"
run "covers" 0 "$MSEG" get policies && \
	t_check "lab 2: COVERS 0 for it" bash -c "grep -Eq '^shopp +other .* 0  api' '$T_TMP/out'"

# 3. an endpoint whose netns does not exist (a typo in the path)
run "endpoint with a missing netns" 1 "$MSEG" endpoint add ghost --netns "/run/netns/${T_PREFIX}-dbb" \
	--ip 10.201.0.30 --namespace shop && \
	t_check "lab 3: says stored but NOT programmed, exit 1" err_has "^endpoint ghost stored (generation [0-9]*), but NOT programmed"
run "get endpoints" 0 "$MSEG" get endpoints && \
	t_check "lab 3: the table says NO" bash -c "grep -Eq '^ghost +shop .* NO ' '$T_TMP/out'"
"$MSEG" endpoint del ghost >/dev/null 2>&1

# 4. a second msegd on the same state dir
"$MSEGD" --state-dir "$T_TMP/state" --listen "unix:$T_TMP/api2.sock" >"$T_TMP/second.log" 2>&1
rc=$?
t_check "lab 4: a second msegd exits 1" [ "$rc" = 1 ]
t_check "lab 4: and names the pid of the first" grep -q "in use by another msegd (pid $T_MSEGD_PID)" "$T_TMP/second.log"

# 5. the netns of a registered endpoint is deleted: msegd again, with a
# resync every second
t_check "msegd stops for lab 5" t_msegd_stop
t_msegd_start --resync 1
for i in $(seq 1 50); do "$MSEG" status >/dev/null 2>&1 && break; sleep 0.1; done
run "add tmp" 0 "$MSEG" endpoint add tmp --netns "$(t_netns_path tmp)" --ip 10.201.0.9 --namespace shop --label app=web
ip netns pids "$(t_ns tmp)" 2>/dev/null | xargs -r kill -9 2>/dev/null
ip netns del "$(t_ns tmp)"
gone=0
for i in $(seq 1 40); do
	"$MSEG" get endpoints >"$T_TMP/out" 2>&1
	grep -Eq '^tmp ' "$T_TMP/out" || { gone=1; break; }
	sleep 0.1
done
t_check "lab 5: the endpoint of a deleted netns is removed at the next resync" [ $gone = 1 ]
t_check "lab 5: msegd says why" t_wait_log "endpoint 'tmp': its netns '$(t_netns_path tmp)' is gone; endpoint removed"

# 6. mseg check with each spelling of a port
run "check tcp/5432" 0 "$MSEG" check --from web --to db --port tcp/5432 && \
	t_check "lab 6: tcp/5432 is allowed (exit 0)" out_has "^allowed: web -> db tcp/5432"
run "check tcp/80" 1 "$MSEG" check --from web --to db --port tcp/80 && \
	t_check "lab 6: tcp/80 is denied (exit 1)" out_has "^denied: web -> db tcp/80"
run "check 5432" 2 "$MSEG" check --from web --to db --port 5432 && \
	t_check "lab 6: 5432 needs a protocol (exit 2)" err_has "^mseg check: --port: '5432' needs a protocol, like tcp/5432"
run "check TCP/5432" 2 "$MSEG" check --from web --to db --port TCP/5432 && \
	t_check "lab 6: TCP/5432 must be lowercase (exit 2)" err_has "^mseg check: --port: unknown protocol 'TCP' (protocols are lowercase: 'tcp')"
run "check udp" 2 "$MSEG" check --from web --to db --port udp && \
	t_check "lab 6: udp alone needs one port for a check (exit 2)" err_has "a check needs one port, like udp/53 (in a policy, 'udp' means every port)"
run "check udp/53" 1 "$MSEG" check --from web --to db --port udp/53 && \
	t_check "lab 6: udp/53 is denied (exit 1)" out_has "^denied:"
run "check with a typo in the endpoint" 2 "$MSEG" check --from wbe --to db --port tcp/5432 && \
	t_check "lab 6: an unknown endpoint is exit 2" err_has "'wbe': not an endpoint id or an address"

t_check "msegd stops cleanly" t_msegd_stop
t_done
