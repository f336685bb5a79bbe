#!/bin/bash
# Write errors in the state dir: PUT answers 500 and nothing changes, in
# memory (GET) nor in the kernel (rules and allow sets byte-identical), and the
# attacker stays refused. ENOSPC: a 64 KiB tmpfs as the state dir, filled
# up; EROFS: the same made read-only (a read-only bind mount over it). (EIO would need device-mapper's
# error target, which this kernel does not have: not tested here.)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/helpers.bash"
t_require_root
t_require_cmds socat python3 curl

attempts=$(r_size 3 50)
t_api_db_scene || { t_fail "setup"; exit 1; }
mkdir -p "$T_TMP/state"
mount -t tmpfs -o size=64k,mode=0700 mseg-rel "$T_TMP/state" || { echo "SKIP: tmpfs mount"; exit 77; }
trap 'umount -l "$T_TMP/state" 2>/dev/null; umount -l "$T_TMP/state" 2>/dev/null; t_cleanup' EXIT
rm -f "$T_TMP/policies/p.yaml"   # the policy comes through the API here
t_msegd_start --endpoints "$T_TMP/endpoints.yaml" --resync 1
t_check "msegd ready" t_wait_log "msegd ready"
r_wait_sock
yput() { r_api PUT "/v1/policies/default/$1" -H 'Content-Type: application/yaml' --data-binary @"$2"; }
t_pair_policy_yaml api db 5432 p >"$T_TMP/p.yaml"
t_pair_policy_yaml attacker db 5432 open >"$T_TMP/open.yaml"
t_check "policy stored through the API" [ "$(yput p "$T_TMP/p.yaml")" = 201 ]
t_check_not "attacker refused" t_tcp attacker 10.201.0.3 5432

snapshot() { # NAME: what a user sees, in memory and in the kernel
	r_api GET /v1/policies >/dev/null; cp "$T_TMP/body" "$T_TMP/$1.policies"
	r_api GET /v1/endpoints >/dev/null; cp "$T_TMP/body" "$T_TMP/$1.endpoints"
	# the rules and allow sets (the seen sets count connections and expire)
	for n in api db; do t_nft_rules "$n" >"$T_TMP/$1.$n.nft"; done
}
same() {
	local f
	for f in policies endpoints api.nft db.nft; do
		cmp -s "$T_TMP/before.$f" "$T_TMP/after.$f" || { echo "changed: $f"; return 1; }
	done
}
# try KIND: ATTEMPTS writes that must fail with 500 and change nothing
try() {
	local kind=$1 i c500=0 unchanged=0
	snapshot before
	for i in $(seq 1 "$attempts"); do
		[ "$(yput open "$T_TMP/open.yaml")" = 500 ] && c500=$((c500 + 1))
		[ "$i" = 1 ] && echo "$kind: PUT policy: $(head -c 300 "$T_TMP/body")"
		[ "$(r_api PUT /v1/endpoints/attacker -d '{"labels": {"app": "attacker"}, "netns": "'"$(t_netns_path attacker)"'", "ips": ["10.201.0.4"]}')" = 500 ] && c500=$((c500 + 1))
		# deleting needs no space: only on a read-only state dir must it fail
		if [ "$kind" = erofs ]; then
			[ "$(r_api DELETE /v1/policies/default/p)" = 500 ] && c500=$((c500 + 1))
		else
			c500=$((c500 + 1))
		fi
		snapshot after
		same && unchanged=$((unchanged + 1))
	done
	r_figure "state_${kind}_500" "$c500/$((attempts * 3))"
	r_figure "state_${kind}_unchanged" "$unchanged/$attempts"
	t_check "$kind: every write answered 500 ($c500/$((attempts * 3)))" [ "$c500" -eq $((attempts * 3)) ]
	t_check "$kind: nothing changed in memory nor in the kernel ($unchanged/$attempts)" [ "$unchanged" -eq "$attempts" ]
	t_check_not "$kind: attacker still refused" t_tcp attacker 10.201.0.3 5432
	t_check "$kind: api still reaches db" t_tcp api 10.201.0.3 5432
}
dd if=/dev/zero of="$T_TMP/state/fill" bs=1k 2>/dev/null
echo "state dir: $(df -k --output=avail "$T_TMP/state" | tail -1) KiB free"
try enospc
rm -f "$T_TMP/state/fill"
# msegd holds its lock file open for writing, so the tmpfs itself cannot be
# remounted read-only: a read-only bind mount over it does the same for
# every path msegd opens
mount --bind "$T_TMP/state" "$T_TMP/state" && mount -o remount,bind,ro "$T_TMP/state" ||
	t_fail "read-only bind mount"
try erofs
umount "$T_TMP/state"
t_check "writable again: the PUT is stored" [ "$(yput open "$T_TMP/open.yaml")" = 201 ]
t_check "writable again: the endpoint PUT is stored" [ "$(r_api PUT /v1/endpoints/attacker -d '{"labels": {"app": "attacker"}, "netns": "'"$(t_netns_path attacker)"'", "ips": ["10.201.0.4"]}')" = 201 ]
t_check "writable again: the attacker's allow is in force" t_tcp attacker 10.201.0.3 5432
t_check "msegd still up" kill -0 "$T_MSEGD_PID"
t_done
