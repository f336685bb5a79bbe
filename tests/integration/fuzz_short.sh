#!/bin/bash
# Every libFuzzer target (tests/fuzz/fuzz_*.c, built by `make fuzz-build`):
# its seed corpus and regression inputs once, then FUZZ_S seconds of
# fuzzing (default 12: the six targets take about 1.5 minutes after the
# build). One PASS/FAIL line per target; a crash names the saved input
# under /tmp. Skipped when clang or its libFuzzer runtime is missing.
set -u
cd "$(dirname "$0")/../.."
if ! command -v clang >/dev/null; then
	echo "SKIP: fuzz: clang is not installed (scripts/install-deps.sh)"
	exit 77
fi
probe=$(mktemp /tmp/mseg-fuzz-probe.XXXXXX)
trap 'rm -f "$probe" "$probe.c"' EXIT
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' >"$probe.c"
if ! clang -fsanitize=fuzzer -o "$probe" "$probe.c" 2>/dev/null; then
	echo "SKIP: fuzz: clang has no libFuzzer runtime (libclang-rt-14-dev)"
	exit 77
fi
if ! make -s -j2 fuzz-build >"$probe.log" 2>&1; then
	cat "$probe.log"
	rm -f "$probe.log"
	echo "FAIL: fuzz: make fuzz-build"
	exit 1
fi
rm -f "$probe.log"
FUZZ_S=${FUZZ_S:-12} tests/fuzz/run.sh
