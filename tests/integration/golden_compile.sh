#!/bin/bash
# Golden tests of `mseg compile`: for every tests/golden/CASE/, the policy
# (policy.yaml, or a directory policy/), endpoints.yaml and the extra
# arguments in `args` must give expected.nft byte for byte.
#
#   UPDATE_GOLDEN=1   rewrite expected.nft from the current output
#   GOLDEN=regex      only cases whose name matches
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
MSEG=$PWD/$BUILD/mseg
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
fails=0
tmp=$(mktemp -d /tmp/mseg-golden.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$MSEG" ]; then
	echo "FAIL: golden_compile: $MSEG not built"
	exit 1
fi

for dir in tests/golden/*/; do
	dir=${dir%/}
	name=$(basename "$dir")
	if [ -n "${GOLDEN:-}" ] && ! [[ $name =~ $GOLDEN ]]; then continue; fi
	if [ -d "$dir/policy" ]; then policy=$dir/policy; else policy=$dir/policy.yaml; fi
	args=()
	if [ -f "$dir/args" ]; then read -r -a args <"$dir/args"; fi
	out=$tmp/$name.nft
	"$MSEG" compile -f "$policy" --endpoints "$dir/endpoints.yaml" "${args[@]}" \
		>"$out" 2>"$tmp/$name.err"
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "FAIL: golden/$name: mseg compile exited $rc"
		sed 's/^/    /' "$tmp/$name.err"
		fails=$((fails + 1))
		continue
	fi
	if [ -n "${UPDATE_GOLDEN:-}" ]; then
		cp "$out" "$dir/expected.nft"
		echo "PASS: golden/$name (updated)"
	elif [ ! -f "$dir/expected.nft" ]; then
		echo "FAIL: golden/$name: no expected.nft (run with UPDATE_GOLDEN=1)"
		fails=$((fails + 1))
	elif cmp -s "$out" "$dir/expected.nft"; then
		echo "PASS: golden/$name"
	else
		echo "FAIL: golden/$name: output differs from expected.nft"
		diff -u "$dir/expected.nft" "$out" | head -60 | sed 's/^/    /'
		fails=$((fails + 1))
	fi
done
[ $fails -eq 0 ]
