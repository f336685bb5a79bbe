#!/bin/bash
# An audit -> enforce switch of an endpoint's queue (fail-open -> fail-closed
# when the kernel queue is full) that fails is not forgotten: it is logged,
# counted, and tried again at the next sync until the kernel acknowledges
# it. The failure is injected (MSEG_TEST_QUEUE_SWITCH_FAILURES=1: the first
# switch fails before anything is sent); the rest is the real kernel.
. "$(dirname "$0")/../lib.sh"
t_require_root
SOCK="$T_TMP/api.sock"

t_api_db_scene || { t_fail "scene"; t_done; exit 1; }
sed -i 's/^spec:$/spec:\n  mode: audit/' "$T_TMP/policies/p.yaml"
MSEG_TEST_QUEUE_SWITCH_FAILURES=1 t_msegd_start --policy-dir "$T_TMP/policies" \
	--endpoints "$T_TMP/endpoints.yaml" --resync 1
t_check "msegd ready (audit)" t_wait_log "msegd ready"
t_check "audit: the attacker passes (and is recorded)" t_tcp attacker 10.201.0.3 5432
metric() { curl -s --unix-socket "$SOCK" http://x/metrics | awk -v m="$1" '$1 == m {print $2}'; }

mark=$(t_log_lines)
sed -i '/^  mode: audit$/d' "$T_TMP/policies/p.yaml"
t_check "the failed switch to fail-closed is logged" \
	t_wait_log "endpoint '(api|db)': cannot switch its queue to fail-closed: Input/output error; retrying at the next sync" "$mark"
failed_ep=$(tail -n +"$((mark + 1))" "$T_TMP/msegd.log" | sed -n "s/.*endpoint '\([a-z]*\)': cannot switch.*/\1/p" | head -1)
t_check "and counted" [ "$(metric mseg_queue_mode_switch_failures_total)" -ge 1 ]
t_check "the next sync switches it ($failed_ep)" t_wait_log "endpoint '$failed_ep': queue is fail-closed" "$mark"
t_check_not "enforce: the attacker is refused" t_tcp attacker 10.201.0.3 5432
t_check "enforce: api still reaches db" t_tcp api 10.201.0.3 5432
t_done
