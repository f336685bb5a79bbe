#!/bin/bash
# A batch the kernel refuses leaves `nft list ruleset` byte-identical. The
# refusal is produced with a deliberately broken namespace: another process
# (kept running) holds an owner-flagged table named inet mseg there,
# so the kernel refuses every change msegd sends to it (EPERM). Repeated
# attempts (endpoint PUT, policy PUTs, resyncs) change nothing in it, and
# other namespaces are programmed as usual.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/helpers.bash"
t_require_root
t_require_cmds socat python3 curl nft

attempts=$(r_size 5 50)
t_api_db_scene || { t_fail "setup"; exit 1; }
t_endpoint broken 6 || { t_fail "setup broken"; exit 1; }
BROKEN=$(t_ns broken)
# the squatter: an owner-flagged table with a rule, alive while its process runs
t_bg "$BROKEN" python3 "$R_TRAFFIC" nft-own 'add table inet mseg { flags owner; };
	add chain inet mseg ingress { type filter hook input priority 0; policy accept; };
	add rule inet mseg ingress tcp dport 7 counter accept' "$T_TMP/owned"
for _ in $(seq 1 200); do [ -e "$T_TMP/owned" ] && break; sleep 0.1; done
t_check "the broken namespace holds a foreign owned table" \
	bash -c "ip netns exec $BROKEN nft list table inet mseg | grep -q 'flags owner'"
ip netns exec "$BROKEN" nft list ruleset >"$T_TMP/before"

t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 1
t_check "msegd ready" t_wait_log "msegd ready"
r_wait_sock
ep='{"labels": {"app": "db"}, "netns": "'"$(t_netns_path broken)"'", "ips": ["10.201.0.6"]}'
code=$(r_api PUT /v1/endpoints/broken -d "$ep")
echo "PUT endpoint into the broken namespace: $code $(head -c 400 "$T_TMP/body")"
t_check "the PUT answers and names the kernel's refusal" grep -qi "Operation not permitted\|EPERM\|refused" "$T_TMP/body"
refused=0 identical=0
for i in $(seq 1 "$attempts"); do
	# a policy change that touches the broken namespace's sets (port flips)
	t_pair_policy_yaml api db $((5432 + i % 2)) p >"$T_TMP/p.yaml"
	code=$(r_api PUT /v1/policies/default/p$((i % 2)) -H 'Content-Type: application/yaml' --data-binary @"$T_TMP/p.yaml")
	r_api DELETE /v1/policies/default/p$((i % 2)) >/dev/null
	sleep 0.2
	ip netns exec "$BROKEN" nft list ruleset >"$T_TMP/after"
	cmp -s "$T_TMP/before" "$T_TMP/after" && identical=$((identical + 1))
done
sleep 1.5   # at least one resync retries it too
ip netns exec "$BROKEN" nft list ruleset >"$T_TMP/after"
cmp -s "$T_TMP/before" "$T_TMP/after" && identical=$((identical + 1))
refused=$(grep -c "endpoint 'broken'.*\(Operation not permitted\|failed\)" "$T_TMP/msegd.log")
echo "msegd log lines about the refused batches: $refused"
grep -m3 "endpoint 'broken'" "$T_TMP/msegd.log"
r_figure failed_batch_attempts "$((attempts + 1))"
r_figure failed_batch_refused_logged "$refused"
r_figure failed_batch_ruleset_identical "$identical/$((attempts + 1))"
t_check "the kernel refused msegd's batches ($refused logged)" [ "$refused" -ge 1 ]
t_check "ruleset byte-identical after every refused batch ($identical/$((attempts + 1)))" \
	[ "$identical" -eq $((attempts + 1)) ]
r_api GET /v1/rules/broken >/dev/null
t_check "GET /v1/rules/broken: not programmed" grep -q '"programmed": *false' "$T_TMP/body"
t_check "msegd still up" kill -0 "$T_MSEGD_PID"
t_check "others unaffected: api reaches db" t_tcp api 10.201.0.3 5432
t_check_not "others unaffected: attacker refused" t_tcp attacker 10.201.0.3 5432
t_done
