#!/bin/bash
# Tampering inside a namespace (flush of the table, element deletes, the
# table deleted, the elements of a port-range slot) is found by the periodic
# read-back and repaired within one resync period.
. "$(dirname "$0")/../lib.sh"
t_require_root

t_api_db_scene || { t_fail "setup"; exit 1; }
# api -> db on a port range too: 10.201.0.2 . tcp goes into a port-range
# slot (in4_range0, ports in in4_range0_ports), not into in4_port_iv
t_pair_policy_yaml api db 6000-6100 r >"$T_TMP/policies/r.yaml"
t_tcp_server db 6050
t_wait_port db 6050
t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 1
t_check "msegd ready" t_wait_log "msegd ready"
t_check_not "attacker refused" t_tcp attacker 10.201.0.3 5432

repaired() { # wait up to 3 s (one period is 1 s) for the repair
	local i
	for i in $(seq 1 30); do
		t_nft db list set inet mseg in4_port 2>/dev/null | grep -q "10.201.0.2 . tcp . 5432" &&
			t_nft db list chain inet mseg ingress >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

mark=$(t_log_lines)
t_nft db flush table inet mseg
t_check "flush table repaired within a resync period" repaired
t_check "drift was logged" t_wait_log "endpoint 'db': drift found" "$mark"
t_check_not "attacker refused again" t_tcp attacker 10.201.0.3 5432
t_check "api allowed again" t_tcp api 10.201.0.3 5432

mark=$(t_log_lines)
t_nft db delete element inet mseg in4_port '{ 10.201.0.2 . tcp . 5432 }'
t_check "deleted element repaired" repaired
t_check "element drift was logged" t_wait_log "drift found" "$mark"
t_check "api allowed after element repair" t_tcp api 10.201.0.3 5432

slot_repaired() { # wait up to 3 s for the slot's sets as programmed
	local i
	for i in $(seq 1 30); do
		t_nft db list set inet mseg in4_range0 2>/dev/null | grep -q "10.201.0.2 . tcp" &&
			t_nft db list set inet mseg in4_range0_ports 2>/dev/null | grep -q "6000-6100" &&
			! t_nft db list set inet mseg in4_range0_ports 2>/dev/null | grep -q "7000" &&
			return 0
		sleep 0.1
	done
	return 1
}
t_check "api allowed on the range (slot)" t_tcp api 10.201.0.3 6050
t_check "the range is in a slot" slot_repaired
mark=$(t_log_lines)
t_nft db delete element inet mseg in4_range0 '{ 10.201.0.2 . tcp }'
t_check "deleted slot element repaired" slot_repaired
t_check "slot drift was logged" t_wait_log "endpoint 'db': drift found" "$mark"
t_check "api allowed on the range after the repair" t_tcp api 10.201.0.3 6050
mark=$(t_log_lines)
t_nft db add element inet mseg in4_range0_ports '{ 7000-7100 }'
t_check "an added slot port range removed" slot_repaired
t_check "its drift was logged" t_wait_log "endpoint 'db': drift found" "$mark"

mark=$(t_log_lines)
t_nft db delete table inet mseg
t_check "deleted table repaired" repaired
t_check_not "attacker refused after table repair" t_tcp attacker 10.201.0.3 5432
t_done
