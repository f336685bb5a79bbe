#!/bin/bash
# Loads every golden ruleset (tests/golden/*/expected.nft) into the kernel:
# each endpoint's chunk with `nft -f` in a fresh network namespace made by
# this test, then reads the table back (`nft list table inet mseg`) and checks
# that the same sets hold the same elements, and the same chains exist.
# Chunks using the native `queue` expression are skipped when the kernel
# lacks it (probed once). Needs root (exit 77 otherwise). Namespaces are
# always removed (trap), also on failure.
set -u
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: golden_load needs root"
	exit 77
fi
if ! command -v nft >/dev/null || ! command -v ip >/dev/null; then
	echo "SKIP: golden_load needs nft and ip"
	exit 77
fi

NS_PREFIX="mseg-t-$$"
created=()
tmp=$(mktemp -d /tmp/mseg-gload.XXXXXX)
fails=0
seq_no=0

cleanup() {
	local ns
	for ns in "${created[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ns_new() { # -> name of a fresh namespace
	seq_no=$((seq_no + 1))
	local ns="$NS_PREFIX-$seq_no"
	ip netns add "$ns" || return 1
	created+=("$ns")
	echo "$ns"
}

# "SET COUNT" then the sorted elements of each set ("SET ELEMENT"), and
# "chain NAME" / "counter NAME" / "limit NAME" lines: the same for our text
# and nft's listing, whatever the line breaks.
summarize() {
	awk '
	function flush_elems(   n, i, parts, e) {
		n = split(elems, parts, ",")
		cnt = 0
		for (i = 1; i <= n; i++) {
			e = parts[i]
			gsub(/^[ \t\n]+|[ \t\n]+$/, "", e)
			if (e == "") continue
			cnt++
			print "elem " set " " e
		}
		elems = ""
	}
	/^\tset [a-z0-9_]+ \{/ { set = $2; inel = 0; elems = ""; next }
	/^\t(chain|counter|limit) [a-z0-9_]+ \{/ { print $1 " " $2; next }
	set != "" && /elements = \{/ { inel = 1; sub(/.*elements = \{/, "") }
	set != "" && inel {
		line = $0
		if (line ~ /\}/) { sub(/\}.*/, "", line); inel = 0 }
		elems = elems " " line ","
		if (!inel) { flush_elems(); print "count " set " " cnt; done[set] = 1 }
		next
	}
	set != "" && /^\t\}/ { if (!(set in done)) print "count " set " 0"; set = "" }
	' "$1" | sort
}

# Native queue expression present?
native_queue=0
probe_ns=$(ns_new) || { echo "FAIL: golden_load: cannot create a namespace"; exit 1; }
if ip netns exec "$probe_ns" nft -f - 2>/dev/null <<'PROBE'
table inet mseg_probe {
	chain c {
		type filter hook input priority filter; policy accept;
		queue num 0 bypass
	}
}
PROBE
then
	native_queue=1
fi
ip netns del "$probe_ns"

for expected in tests/golden/*/expected.nft; do
	case_name=$(basename "$(dirname "$expected")")
	rm -f "$tmp"/chunk.*
	# split at the endpoint header lines
	awk -v dir="$tmp" '
	/^# endpoint / { n++; file = sprintf("%s/chunk.%03d", dir, n) }
	n { print > file }
	' "$expected"
	for chunk in "$tmp"/chunk.*; do
		[ -f "$chunk" ] || continue
		ep=$(head -1 "$chunk" | awk '{print $3}')
		name="load/$case_name/$ep"
		grep -q '^table inet mseg {' "$chunk" || continue
		if grep -qP '^\t\tqueue num ' "$chunk" && [ $native_queue -eq 0 ]; then
			echo "SKIP: $name (no native queue expression in this kernel)"
			continue
		fi
		ns=$(ns_new) || { echo "FAIL: $name: cannot create a namespace"; fails=$((fails + 1)); continue; }
		if ! ip netns exec "$ns" nft -f "$chunk" 2>"$tmp/err"; then
			echo "FAIL: $name: nft -f failed"
			sed 's/^/    /' "$tmp/err" | head -20
			fails=$((fails + 1))
		elif ! ip netns exec "$ns" nft list table inet mseg >"$tmp/readback" 2>"$tmp/err"; then
			echo "FAIL: $name: nft list failed"
			sed 's/^/    /' "$tmp/err" | head -20
			fails=$((fails + 1))
		else
			summarize "$chunk" >"$tmp/want"
			summarize "$tmp/readback" >"$tmp/got"
			if cmp -s "$tmp/want" "$tmp/got"; then
				echo "PASS: $name ($(grep -c '^elem ' "$tmp/want") elements)"
			else
				echo "FAIL: $name: read back differs"
				diff -u "$tmp/want" "$tmp/got" | head -40 | sed 's/^/    /'
				fails=$((fails + 1))
			fi
		fi
		ip netns del "$ns" 2>/dev/null
	done
done
[ $fails -eq 0 ]
