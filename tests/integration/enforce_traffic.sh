#!/bin/bash
# msegd programs real namespaces; real TCP/UDP/ICMP over IPv4 and IPv6 shows
# allowed pairs connect and every other pair fails: CIDR except, port
# ranges, world, egress isolation, audit mode, and a policy change that keeps
# an open connection alive.
. "$(dirname "$0")/../lib.sh"
t_require_root

# web .1, api .2, db .3; outside hosts (no endpoint): attacker .4,
# office .70, office host excluded by `except` .71, download host .80
t_endpoints web:1 api:2 db:3 attacker:4 office:70 officex:71 dl:80 || { t_fail "setup"; exit 1; }

cat >"$T_TMP/endpoints.yaml" <<EOF2
endpoints:
  - {id: web, namespace: shop, labels: {app: web}, netns: $(t_netns_path web), ips: [10.201.0.1, "fd00:201::1"]}
  - {id: api, namespace: shop, labels: {app: api}, netns: $(t_netns_path api), ips: [10.201.0.2, "fd00:201::2"]}
  - {id: db, namespace: shop, labels: {app: db}, netns: $(t_netns_path db), ips: [10.201.0.3, "fd00:201::3"]}
EOF2
mkdir -p "$T_TMP/policies"
write_policy() { # MODE
	cat >"$T_TMP/policies/shop.yaml.tmp" <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: shop, namespace: shop}
spec:
  mode: $1
  groups:
    web: {selector: {app: web}}
    api: {selector: {app: api}}
    db: {selector: {app: db}}
    office: {cidrs: [10.201.0.64/26, "fd00:201::40/122"], except: [10.201.0.71/32]}
  allow:
    - {from: world, to: web, ports: [tcp/8443]}
    - {from: web, to: api, ports: [tcp/9000-9010, icmp]}
    - {from: api, to: db, ports: [tcp/5432, udp/5353]}
    - {from: office, to: db, ports: [tcp/5432]}
EOF2
	mv "$T_TMP/policies/shop.yaml.tmp" "$T_TMP/policies/shop.yaml"
}
write_policy enforce

t_tcp_server web 8443
t_tcp_server api 9000
t_tcp_server api 9005
t_tcp_server api 9010
t_tcp_server api 9011
t_tcp_server api 9020
t_tcp_server db 5432
t_udp_server db 5353
t_tcp_server dl 80
t_tcp_server attacker 80
t_wait_port dl 80

# before msegd: everything is open (the incident)
t_check "no policy: attacker reaches db:5432" t_tcp attacker 10.201.0.3 5432

t_msegd_start --policy-dir "$T_TMP/policies" --endpoints "$T_TMP/endpoints.yaml" --resync 0
t_check "msegd starts and programs" t_wait_log "msegd ready"
t_check "table present in db's namespace" t_nft db list table inet mseg

t_check     "world -> web tcp/8443 (v4)"          t_tcp attacker 10.201.0.1 8443
t_check     "world -> web tcp/8443 (v6)"          t_tcp attacker fd00:201::1 8443
t_check     "web -> api tcp/9005 in range"        t_tcp web 10.201.0.2 9005
t_check     "web -> api tcp/9005 in range (v6)"   t_tcp web fd00:201::2 9005
t_check     "web -> api tcp/9000 first of range"  t_tcp web 10.201.0.2 9000
t_check     "web -> api tcp/9010 last of range"   t_tcp web 10.201.0.2 9010
t_check_not "web -> api tcp/9011 just past range" t_tcp web 10.201.0.2 9011
t_check_not "web -> api tcp/9020 out of range"    t_tcp web 10.201.0.2 9020
t_check     "web -> api icmp echo"                t_ping web 10.201.0.2
t_check_not "attacker -> api icmp echo"           t_ping attacker 10.201.0.2
t_check     "api -> db tcp/5432 (v4)"             t_tcp api 10.201.0.3 5432
t_check     "api -> db tcp/5432 (v6)"             t_tcp api fd00:201::3 5432
t_check     "api -> db udp/5353"                  t_udp api 10.201.0.3 5353
t_check_not "web -> db udp/5353"                  t_udp web 10.201.0.3 5353
t_check_not "web -> db tcp/5432"                  t_tcp web 10.201.0.3 5432
t_check_not "attacker -> db tcp/5432 (v4)"        t_tcp attacker 10.201.0.3 5432
t_check_not "attacker -> db tcp/5432 (v6)"        t_tcp attacker fd00:201::3 5432
t_check     "office cidr -> db tcp/5432"          t_tcp office 10.201.0.3 5432
t_check_not "office except host -> db tcp/5432"   t_tcp officex 10.201.0.3 5432
t_check_not "db -> download host tcp/80 (egress)" t_tcp db 10.201.0.80 80
t_check_not "web -> attacker tcp/80 (egress)"     t_tcp web 10.201.0.4 80
t_check     "outside hosts unaffected"            t_tcp attacker 10.201.0.80 80

# An open allowed connection survives a policy change; the change holds for
# new connections.
coproc CONN { ip netns exec "$(t_ns api)" socat -T30 - TCP:10.201.0.3:5432; }
T_PIDS+=("$CONN_PID")
echo hello >&"${CONN[1]}"
read -r -t 2 line <&"${CONN[0]}"
t_check "long connection established" [ "$line" = hello ]

mark=$(t_log_lines)
write_policy audit
t_check "policy change reloads" t_wait_log "loaded 1 policies" "$mark"
sleep 0.3
echo again >&"${CONN[1]}"
read -r -t 2 line <&"${CONN[0]}"
t_check "open connection survives the policy change" [ "$line" = again ]
t_check "audit: web -> db tcp/5432 passes"        t_tcp web 10.201.0.3 5432
t_check "audit: db -> download host passes"       t_tcp db 10.201.0.80 80

mark=$(t_log_lines)
write_policy enforce
t_check "back to enforce" t_wait_log "loaded 1 policies" "$mark"
sleep 0.3
t_check_not "enforce again: web -> db tcp/5432"   t_tcp web 10.201.0.3 5432
t_check     "enforce again: api -> db tcp/5432"   t_tcp api 10.201.0.3 5432

t_check "SIGTERM exits cleanly" t_msegd_stop
t_check "rules stay after exit" t_nft db list table inet mseg
t_check_not "after exit: attacker -> db still refused" t_tcp attacker 10.201.0.3 5432
t_check     "after exit: api -> db still allowed"      t_tcp api 10.201.0.3 5432
t_done
