#!/bin/bash
# `make demo` as a test: scripts/demo.sh runs the incident of README.md
# (containers set up through bridge + host-local + mseg-cni, msegd with
# policies/examples/incident.yaml) and, with DEMO_TEST=1, prints a PASS or
# FAIL line for every outcome: legitimate traffic passes, the attacker's
# login, the download and the mining-pool connection are refused and
# recorded, postgres's table is programmed, CNI DEL removes it. Unique
# namespace names (DEMO_PREFIX) keep it apart from a running demo.
set -u
[ "$(id -u)" -eq 0 ] || { echo "SKIP: demo needs root"; exit 77; }
cd "$(dirname "$0")/../.." || exit 1
[ -x /usr/lib/cni/bridge ] || { echo "SKIP: containernetworking-plugins missing"; exit 77; }
export DEMO_TEST=1 DEMO_PREFIX="md$$" BUILD=${BUILD:-build}
unset KEEP
scripts/demo.sh
rc=$?
# nothing may be left behind
if ip netns list | grep -q "^md$$-"; then
	echo "FAIL: demo left namespaces behind"
	exit 1
fi
echo "PASS: demo cleaned up its namespaces"
exit $rc
