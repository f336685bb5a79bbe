#!/bin/bash
# Policy flips under probing: one policy is PUT through the API alternately
# as A (c1 -> db tcp/5432) and B (c2 -> db tcp/5432), 1,000 times in the full
# form, while c1, c2 and an outside attacker probe db:5432 continuously.
# Each probe's outcome matches the policy in force at its start or at its
# end (either one while a PUT is in flight), never neither; the attacker,
# allowed by neither, never connects.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/helpers.bash"
t_require_root
t_require_cmds socat python3 curl

flips=$(r_size ${R_FLIPS:-50} 1000)
t_endpoints c1:2 db:3 attacker:4 c2:5 || { t_fail "setup"; exit 1; }
t_tcp_server db 5432
t_wait_port db 5432
flip_doc() { # ALLOWED-GROUP
	cat <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: flip, namespace: rel}
spec:
  groups:
    c1: {selector: {app: c1}}
    c2: {selector: {app: c2}}
    db: {selector: {app: db}}
  allow:
    - {from: $1, to: db, ports: [tcp/5432]}
EOF2
}
flip_doc c1 >"$T_TMP/A.yaml"
flip_doc c2 >"$T_TMP/B.yaml"
cat >"$T_TMP/endpoints.yaml" <<EOF2
endpoints:
  - {id: c1, namespace: rel, labels: {app: c1}, netns: $(t_netns_path c1), ips: [10.201.0.2]}
  - {id: c2, namespace: rel, labels: {app: c2}, netns: $(t_netns_path c2), ips: [10.201.0.5]}
  - {id: db, namespace: rel, labels: {app: db}, netns: $(t_netns_path db), ips: [10.201.0.3]}
EOF2
t_msegd_start --endpoints "$T_TMP/endpoints.yaml" --resync 0
t_check "msegd ready" t_wait_log "msegd ready"
r_wait_sock
t_check "policy A in force" [ "$(r_api PUT /v1/policies/rel/flip -H 'Content-Type: application/yaml' --data-binary @"$T_TMP/A.yaml")" = 201 ]
t_check "A: c1 reaches db" t_tcp c1 10.201.0.3 5432
t_check_not "A: c2 refused" t_tcp c2 10.201.0.3 5432

r_probe c1 10.201.0.3 5432 0.02 0.25 c1
r_probe c2 10.201.0.3 5432 0.02 0.25 c2
r_probe attacker 10.201.0.3 5432 0.05 0.25 attacker
t_check "probes started" r_wait_started c1.log c2.log attacker.log
sleep 0.5
t0=$(date +%s.%N)
python3 "$R_TRAFFIC" flip "$R_SOCK" /v1/policies/rel/flip "$T_TMP/A.yaml" "$T_TMP/B.yaml" \
	"$flips" 0.05 "$T_TMP/flips.log"
t1=$(date +%s.%N)
sleep 0.5
r_stop
good=$(awk '$4 == 200 {n++} END {print n + 0}' "$T_TMP/flips.log")
t_check "all $flips PUTs answered 200 ($good)" [ "$good" -eq "$flips" ]
for p in c1:A c2:B attacker:-; do
	python3 "$R_TRAFFIC" classify "$T_TMP/flips.log" "$T_TMP/${p%%:*}.log" "${p##*:}" \
		>"$T_TMP/${p%%:*}.json" 2>"$T_TMP/${p%%:*}.neither"
	echo "${p%%:*}: $(cat "$T_TMP/${p%%:*}.json")"
	head -5 "$T_TMP/${p%%:*}.neither"
done
probes=$(( $(r_json c1 probes) + $(r_json c2 probes) + $(r_json attacker probes) ))
neither=$(( $(r_json c1 neither) + $(r_json c2 neither) + $(r_json attacker neither) ))
r_figure flips "$flips"
r_figure flips_seconds "$(echo "$t1 - $t0" | bc)"
r_figure flips_probes "$probes"
r_figure flips_probes_neither "$neither"
r_figure flips_attacker_through "$(r_json attacker ok)"
t_check "c1 and c2 saw both outcomes (the flips took effect)" \
	[ "$(r_json c1 ok)" -gt 0 ] && [ "$(r_json c1 no)" -gt 0 ] && [ "$(r_json c2 ok)" -gt 0 ] && [ "$(r_json c2 no)" -gt 0 ]
t_check "every probe matches the old or the new policy ($probes probes, $neither neither)" [ "$neither" -eq 0 ]
t_check "the attacker never connects" [ "$(r_json attacker ok)" -eq 0 ]
t_check "A in force at the end: c1 reaches db" t_tcp c1 10.201.0.3 5432
t_done
