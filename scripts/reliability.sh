#!/bin/bash
# `make reliability`: tests/reliability/*.sh at full size (MSEG_RELIABILITY=full),
# each test's output as it runs, then every FIGURE line. Exit 1 if one failed.
#   TESTS=regex    only the scripts whose name matches
set -u
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build} MSEG_ROOT=$PWD MSEG_RELIABILITY=${MSEG_RELIABILITY:-full}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
failed=()
for t in tests/reliability/*.sh; do
	name=$(basename "$t" .sh)
	if [ -n "${TESTS:-}" ] && ! [[ $name =~ $TESTS ]]; then continue; fi
	echo "==== $name ($MSEG_RELIABILITY)"
	start=$(date +%s)
	bash "$t" </dev/null 2>&1 | tee -a "$out"
	rc=${PIPESTATUS[0]}
	echo "==== $name: exit $rc, $(( $(date +%s) - start )) s"
	[ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] || failed+=("$name")
done
echo "==== figures"
grep '^FIGURE: ' "$out" | sed 's/^FIGURE: //'
echo "$(grep -c '^PASS: ' "$out") passed, $(grep -c '^FAIL: ' "$out") failed"
[ ${#failed[@]} -eq 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
