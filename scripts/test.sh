#!/bin/bash
# The README's test command: installs what the tests need, builds a normal and
# an ASan+UBSan build, runs every test against the sanitized build and the unit
# tests under valgrind too. The last line is "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
scripts/install-deps.sh || { echo "dependency install failed"; echo "0 passed, 1 failed"; exit 1; }
jobs=$(nproc 2>/dev/null || echo 2)
if ! make -s -j"$jobs" tests >/tmp/mseg-build.log 2>&1 ||
   ! make -s -j"$jobs" SANITIZE=1 tests >>/tmp/mseg-build.log 2>&1; then
	cat /tmp/mseg-build.log
	echo "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi
BUILD=build-san VALGRIND_BUILD=build exec tests/run
