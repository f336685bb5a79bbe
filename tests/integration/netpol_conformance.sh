#!/bin/bash
# NetworkPolicy conformance with real traffic: every tests/conformance/cases/
# CASE.yaml is a data file (namespaces with labels, pods with labels and
# named ports, NetworkPolicy/AllowList documents, the expected reachability
# matrix; format in tests/conformance/README.md). For each case this test
# writes the inventory file (with its namespaces: section) and a policy dir,
# starts msegd on them, probes every (from, to) pod pair with TCP and UDP on
# ports 80 and 81 over IPv4 and IPv6, compares with the matrix, and stops
# msegd. One "PASS:/FAIL: conformance/CASE" line per case, one FAIL line per
# cell that differs (CELLS=1 prints the passing cells too).
#
# Pods are network namespaces on one bridge (tests/lib.sh), reused by every
# case: the k-th pod of a case is slot k, 10.201.0.(10+k) and fd00:201::(10+k),
# with TCP and UDP echo servers on 80 and 81. The probing, echo and matrix
# code is tests/conformance/conformance.py.
#
#   CASES=regex        only the cases whose name matches
#   PROBE_TIMEOUT=S    how long a probe waits for its echo (default 1.5)
. "$(dirname "$0")/../lib.sh"
t_require_root
t_require_cmds socat python3 nft
t_require_built "$MSEGD"
python3 -c 'import yaml' 2>/dev/null || { echo "SKIP: python3 yaml module missing"; exit 77; }

CASE_DIR="$MSEG_ROOT/tests/conformance/cases"
HELPER="$MSEG_ROOT/tests/conformance/conformance.py"
PROBE_TIMEOUT=${PROBE_TIMEOUT:-1.5}
SLOTS=0

# slot K: namespace "s$K" with TCP and UDP echo on 80 and 81
slot_ensure() { # K
	local k
	for ((k = SLOTS + 1; k <= $1; k++)); do
		t_endpoint "s$k" $((10 + k)) || return 1
		t_bg "$(t_ns "s$k")" python3 "$HELPER" echo
		SLOTS=$k
	done
	for ((k = 1; k <= $1; k++)); do
		t_wait_port "s$k" 81 || return 1
		t_wait_port "s$k" 81 udp || return 1
	done
}

tables_clear() {
	local k
	for ((k = 1; k <= SLOTS; k++)); do
		ip netns exec "$(t_ns "s$k")" nft delete table inet mseg 2>/dev/null
	done
}

run_case() { # NAME (prepared in $T_TMP/cases/NAME)
	local name=$1 dir="$T_TMP/cases/$1" mark
	if [ -f "$dir/error" ]; then
		t_fail "conformance/$name: bad case file: $(cat "$dir/error")"
		return
	fi
	if ! slot_ensure "$(cat "$dir/nslots")"; then
		t_fail "conformance/$name: network setup"
		return
	fi
	tables_clear
	rm -rf "$T_TMP/state"
	mark=$(t_log_lines)
	t_msegd_start --policy-dir "$dir/policies" --endpoints "$dir/endpoints.yaml" --resync 0
	if ! t_wait_log "msegd ready" "$mark"; then
		t_fail "conformance/$name: msegd did not start"
		tail -n +"$((mark + 1))" "$T_TMP/msegd.log"
		t_msegd_stop >/dev/null 2>&1
		return
	fi
	if ! python3 "$HELPER" check "$name" "$dir" "$T_PREFIX" "$PROBE_TIMEOUT"; then
		T_FAILS=$((T_FAILS + 1))
		echo "--- $name: msegd log"
		tail -n +"$((mark + 1))" "$T_TMP/msegd.log"
	fi
	t_msegd_stop >/dev/null 2>&1
}

: >>"$T_TMP/msegd.log"
cases=()
for file in "$CASE_DIR"/*.yaml; do
	name=$(basename "$file" .yaml)
	if [ -n "${CASES:-}" ] && ! [[ $name =~ $CASES ]]; then continue; fi
	cases+=("$file")
done
n_cases=${#cases[@]}
if [ "$n_cases" -gt 0 ]; then
	python3 "$HELPER" prepare "$T_TMP/cases" "$T_PREFIX" "${cases[@]}"
	for file in "${cases[@]}"; do
		run_case "$(basename "$file" .yaml)"
	done
fi
tables_clear
[ "$n_cases" -gt 0 ] || t_fail "conformance: no case in $CASE_DIR"
[ "$T_FAILS" -eq 0 ]
