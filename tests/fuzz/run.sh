#!/bin/bash
# Run every fuzz target built in $FUZZ_BUILD (make fuzz-build): first its
# seed corpus (tests/fuzz/corpus_NAME/) and regression inputs
# (tests/fuzz/regress_NAME/) once each, then FUZZ_S seconds of fuzzing on a
# copy of the corpus (nothing is written back into the repository).
# One line per target: "PASS: fuzz/NAME ..." with libFuzzer's executions
# and coverage, or "FAIL: fuzz/NAME ..." with the path of the input that
# crashed (kept under /tmp with libFuzzer's log).
#
#   FUZZ_S=N            seconds of fuzzing per target (default 20; 0: none)
#   FUZZ_TARGETS=regex  only the targets whose name matches
set -u
cd "$(dirname "$0")/../.."
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
FUZZ_S=${FUZZ_S:-20}
filter=${FUZZ_TARGETS:-}
fails=0 ran=0

# the largest input each target takes (a read-back dump is ~20 KiB)
max_len() {
	case $1 in
	pkt|queue) echo 2048 ;;
	cni) echo 8192 ;;
	readback) echo 65536 ;;
	*) echo 16384 ;;
	esac
}

# readback: libnftnl's exit() on a bad attribute is caught by the target
# and leaks (see tests/fuzz/fuzz_readback.c)
extra_opts() {
	case $1 in
	readback) echo -detect_leaks=0 ;;
	esac
}

# "#123 DONE cov: 456 ft: 789 corp: ..." -> "cov 456, ft 789"
stats_of() {
	sed -n 's/^#\([0-9]*\)[[:space:]]*DONE[[:space:]]*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/\1 executions, cov \2, ft \3, corpus \4/p' "$1" | tail -1
}

for bin in "$FUZZ_BUILD"/fuzz_*; do
	[ -x "$bin" ] || continue
	name=${bin##*/fuzz_}
	if [ -n "$filter" ] && ! [[ $name =~ $filter ]]; then continue; fi
	ran=$((ran + 1))
	tmp=$(mktemp -d "/tmp/mseg-fuzz-$name.XXXXXX")
	corpus=tests/fuzz/corpus_$name
	regress=tests/fuzz/regress_$name
	mapfile -t inputs < <(find "$corpus" "$regress" -type f 2>/dev/null | sort)
	export TMPDIR=$tmp   # fuzz_api's state dir goes there too

	# 1. every saved input once
	if [ ${#inputs[@]} -gt 0 ] &&
	   ! "$bin" -runs=1 -rss_limit_mb=2048 $(extra_opts "$name") "${inputs[@]}" \
		>"$tmp/regress.log" 2>&1; then
		bad=$(sed -n 's/^Running: //p' "$tmp/regress.log" | tail -1)
		echo "FAIL: fuzz/$name: saved input ${bad:-?} crashes; log: $tmp/regress.log"
		fails=$((fails + 1))
		continue
	fi
	if [ "$FUZZ_S" -le 0 ]; then
		echo "PASS: fuzz/$name: ${#inputs[@]} saved inputs"
		rm -rf "$tmp"
		continue
	fi

	# 2. fuzz a copy of the corpus for FUZZ_S seconds
	mkdir -p "$tmp/corpus"
	[ -d "$corpus" ] && cp -r "$corpus/." "$tmp/corpus/"
	"$bin" -max_total_time="$FUZZ_S" -max_len="$(max_len "$name")" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$tmp/" \
		$(extra_opts "$name") "$tmp/corpus" >"$tmp/fuzz.log" 2>&1
	rc=$?
	crash=$(find "$tmp" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
		-o -name 'timeout-*' -o -name 'oom-*' \) | head -1)
	if [ "$rc" -ne 0 ] || [ -n "$crash" ]; then
		echo "FAIL: fuzz/$name: crashing input ${crash:-?} (exit $rc); log: $tmp/fuzz.log"
		grep -m3 -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$tmp/fuzz.log" | sed 's/^/    /'
		fails=$((fails + 1))
		continue
	fi
	echo "PASS: fuzz/$name: ${#inputs[@]} saved inputs; ${FUZZ_S} s: $(stats_of "$tmp/fuzz.log")"
	rm -rf "$tmp"
done
if [ "$ran" -eq 0 ]; then
	echo "FAIL: fuzz: no fuzz targets in $FUZZ_BUILD (make fuzz-build)"
	exit 1
fi
[ "$fails" -eq 0 ]
