#!/bin/bash
# Tampering (flush ruleset, element delete, chain delete) inside an
# endpoint's namespace is repaired within one resync period (--resync 1);
# the time from the tamper to the repaired table is measured.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/helpers.bash"
t_require_root
t_require_cmds socat python3

rounds=$(r_size 1 10)
t_api_db_scene || { t_fail "setup"; exit 1; }
t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 1
t_check "msegd ready" t_wait_log "msegd ready"
t_nft db list ruleset >"$T_TMP/good" 2>/dev/null

# repair_ms: milliseconds until db's ruleset equals the programmed one (5 s max)
repair_ms() {
	local t0 i
	t0=$(date +%s%N)
	for i in $(seq 1 500); do
		t_nft db list ruleset 2>/dev/null | cmp -s - "$T_TMP/good" && {
			echo $(( ($(date +%s%N) - t0) / 1000000 )); return 0; }
		sleep 0.01
	done
	echo 99999
}
for kind in flush element chain; do
	worst=0
	for r in $(seq 1 "$rounds"); do
		case $kind in
		flush) t_nft db flush ruleset ;;
		element) t_nft db delete element inet mseg in4_port '{ 10.201.0.2 . tcp . 5432 }' ;;
		chain) t_nft db delete chain inet mseg ingress ;;
		esac
		ms=$(repair_ms)
		[ "$ms" -gt "$worst" ] && worst=$ms
		sleep 0.$((RANDOM % 10))   # tamper at another point of the period
	done
	echo "$kind: worst repair $worst ms over $rounds"
	r_figure "tamper_${kind}_repair_ms_max" "$worst"
	t_check "$kind repaired within one resync period (worst $worst ms; period 1000 ms + read-back)" [ "$worst" -le 1500 ]
done
t_check_not "attacker refused after the repairs" t_tcp attacker 10.201.0.3 5432
t_check "api reaches db after the repairs" t_tcp api 10.201.0.3 5432
t_done
