#!/bin/bash
# What msegd says at start when it cannot run: a second msegd on the same
# state dir is refused with the owner's pid and touches nothing (the first
# keeps serving and enforcing); a missing --policy-dir is one clear error,
# not "keeping the previous 0 policies" followed by an exit; the lock goes
# with the process that held it.
. "$(dirname "$0")/../lib.sh"
t_require_root

t_api_db_scene || { t_fail "scene"; t_done; exit 1; }
t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml"
t_check "first msegd ready" t_wait_log "msegd ready"
first=$T_MSEGD_PID

# a second msegd on the same state dir, with its own socket
out=$("$MSEGD" --state-dir "$T_TMP/state" --listen "unix:$T_TMP/api2.sock" \
	--policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" 2>&1)
rc=$?
t_check "second msegd exits 1" [ "$rc" -eq 1 ]
t_check "second msegd names the state dir and the owner's pid" \
	grep -q "state dir '$T_TMP/state' is in use by another msegd (pid $first); refusing to run a second one on it" <<<"$out"
t_check "second msegd never says ready" bash -c '! grep -q "ready" <<<"$1"' _ "$out"
t_check "second msegd printed one error line" [ "$(grep -c 'error:' <<<"$out")" -eq 1 ]
t_check "second msegd left no socket behind" [ ! -e "$T_TMP/api2.sock" ]
t_check "first msegd still answers" bash -c "\"$MSEG\" --server unix:$T_TMP/api.sock status >/dev/null"
t_check "first msegd still enforces: api reaches db" t_tcp api 10.201.0.3 5432
t_check_not "first msegd still enforces: attacker refused" t_tcp attacker 10.201.0.3 5432

t_msegd_stop
# the lock went with the first process: a new one starts on the same dir
mark=$(t_log_lines)
t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml"
t_check "msegd starts again on the released state dir" t_wait_log "msegd ready" "$mark"
t_msegd_stop

# a stored document that no longer parses: moved aside, the rest loads
printf 'kind: [' >"$T_TMP/state/policies/shop.broken"
mark=$(t_log_lines)
t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml"
t_check "a bad file in the state dir does not stop msegd" t_wait_log "msegd ready" "$mark"
t_check "the bad file is logged with its error and new place" \
	t_wait_log "state dir: $T_TMP/state/policies/shop.broken:.*; moved to $T_TMP/state/quarantine/policies.shop.broken" "$mark"
t_check "it was moved aside" [ -e "$T_TMP/state/quarantine/policies.shop.broken" ] && [ ! -e "$T_TMP/state/policies/shop.broken" ]
t_check "the metric counts it" bash -c "curl -s --unix-socket '$T_TMP/api.sock' http://x/metrics | grep -qx 'mseg_state_quarantined_total 1'"
t_check "api reaches db after the quarantine" t_tcp api 10.201.0.3 5432
t_check_not "attacker refused after the quarantine" t_tcp attacker 10.201.0.3 5432
t_msegd_stop

# a missing policy dir: one error that says msegd does not start and why
out=$("$MSEGD" --state-dir "$T_TMP/state" --listen "unix:$T_TMP/api3.sock" \
	--policy-dir "$T_TMP/no-such-dir" 2>&1)
rc=$?
t_check "missing policy dir: exit 1" [ "$rc" -eq 1 ]
t_check "missing policy dir: one error line" [ "$(grep -c 'error:\|warn:' <<<"$out")" -eq 1 ]
t_check "missing policy dir: names the dir and says msegd does not start" \
	grep -q "$T_TMP/no-such-dir: cannot open directory: No such file or directory; msegd does not start" <<<"$out"
t_check "missing policy dir: no 'keeping the previous' message" \
	bash -c '! grep -q "keeping the previous" <<<"$1"' _ "$out"
t_check "the kernel probe line needs no decoding" \
	bash -c '! grep -q "queue: No such file or directory" <<<"$1"' _ "$out"
t_done
