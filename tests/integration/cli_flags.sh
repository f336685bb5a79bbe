#!/bin/bash
# Flags as a user types them, offline (no daemon, no root): long options
# match exactly in mseg and msegd (an abbreviation such as --def is refused
# with exit 2 and says so), every option `mseg help CMD` lists is one the
# command accepts, and an option value of any length is refused or sent,
# never cut short or written past a buffer.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
MSEG=$PWD/$BUILD/mseg
MSEGD=$PWD/$BUILD/msegd
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
tmp=$(mktemp -d /tmp/mseg-flags.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
ex=policies/examples
# no msegd is asked: a server that is not there
nosrv=unix:$tmp/nothing.sock

check() { # name expected-status cmd... ; output in $tmp/out, $tmp/err
	local name=$1 want=$2; shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	if [ "$rc" -eq "$want" ]; then
		return 0
	fi
	echo "FAIL: $name: exit status $rc, want $want"
	sed 's/^/    stderr: /' "$tmp/err" | head -5
	fails=$((fails + 1))
	return 1
}
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }
err_has() { grep -qF -- "$1" "$tmp/err"; }

abbrev() { # name expected-message cmd...
	local name=$1 msg=$2; shift 2
	if check "$name" 2 "$@"; then
		if err_has "$msg"; then pass "$name"
		else fail "$name: message: $(head -1 "$tmp/err")"; fi
	fi
}

abbrev "mseg flows --fol refused" \
	"mseg flows: unknown option '--fol' (abbreviations are not accepted)" \
	"$MSEG" flows --fol --server "$nosrv"
abbrev "mseg compile --def refused" \
	"mseg compile: unknown option '--def' (abbreviations are not accepted)" \
	"$MSEG" compile -f "$ex/incident.yaml" --endpoints "$ex/inventory/incident.yaml" --def
abbrev "mseg check --fr=x refused" "unknown option '--fr' (abbreviations are not accepted)" \
	"$MSEG" check --fr=a --to b --port tcp/1 --server "$nosrv"
abbrev "mseg status --serv refused" "unknown option '--serv' (abbreviations are not accepted)" \
	"$MSEG" status --serv "$nosrv"
abbrev "msegd --def refused" "msegd: unknown option '--def' (abbreviations are not accepted)" \
	"$MSEGD" --def --state-dir "$tmp/state"

# the full names work: flows reaches for the (absent) server, compile
# prints, msegd parses its flags up to --help
if check "mseg flows --follow accepted" 1 "$MSEG" flows --follow --server "$nosrv"; then
	if err_has "cannot reach msegd at $nosrv"; then pass "mseg flows --follow accepted"
	else fail "mseg flows --follow: $(head -1 "$tmp/err")"; fi
fi
check "mseg compile --default-deny accepted" 0 "$MSEG" compile -f "$ex/incident.yaml" \
	--endpoints "$ex/inventory/incident.yaml" --default-deny && pass "mseg compile --default-deny accepted"
check "msegd --default-deny accepted" 0 "$MSEGD" --default-deny --mode=audit --help &&
	pass "msegd --default-deny accepted"
# a value that looks like an abbreviation is a value
if check "value like a flag" 1 "$MSEG" flows --endpoint --fol --server "$nosrv"; then
	if err_has "cannot reach msegd"; then pass "value like a flag"
	else fail "value like a flag: $(head -1 "$tmp/err")"; fi
fi

# every long option that `mseg help CMD` lists is accepted by CMD (the
# help text and the parser come from one table)
ok=1
for c in status apply delete get endpoint flows check compile; do
	"$MSEG" help "$c" >"$tmp/help" || { ok=0; echo "  help $c failed"; continue; }
	for o in $(grep -o -- '^  \(-., \)\?--[a-z-]*' "$tmp/help" | sed 's/.*--/--/'); do
		case $o in --server|--token-file|--cacert) continue ;; esac
		args=(); [ "$c" = endpoint ] && args=(add x)
		"$MSEG" "$c" "${args[@]}" "$o" 1 --server "$nosrv" >/dev/null 2>"$tmp/err"
		# refused as an option (a bad value such as "-o 1" is another message)
		if grep -qF -- "option '$o" "$tmp/err"; then
			ok=0; echo "  mseg $c $o: $(head -1 "$tmp/err")"
		fi
	done
done
[ $ok = 1 ] && pass "every option in help is accepted" || fail "help lists options the parser refuses"

# option values of any length: 70 000 bytes (210 000 encoded) are refused
# with a message naming the option; nothing is sent, nothing overflows
long=$(head -c 70000 /dev/zero | tr '\0' '&')
abbrev "flows: a 70 KB --endpoint refused" \
	"mseg flows: --endpoint: the query would be longer than 8192 bytes" \
	"$MSEG" flows --endpoint "$long" --server "$nosrv"
# a 2 KiB value (the old fixed buffer's size) is encoded whole and sent
if check "flows: a 2 KiB --namespace sent" 1 "$MSEG" flows --namespace "$(head -c 2100 /dev/zero | tr '\0' a)" \
	--since 5m --server "$nosrv"; then
	if err_has "cannot reach msegd"; then pass "flows: a 2 KiB --namespace sent"
	else fail "flows: a 2 KiB --namespace: $(head -1 "$tmp/err")"; fi
fi
# long ids in a path are escaped whole (no truncated path)
if check "get: a long id" 1 "$MSEG" get endpoints "$(head -c 5000 /dev/zero | tr '\0' '/')" \
	--server "$nosrv"; then
	if err_has "cannot reach msegd"; then pass "get: a long id"
	else fail "get: a long id: $(head -1 "$tmp/err")"; fi
fi
[ $fails -eq 0 ]
