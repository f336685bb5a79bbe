#!/bin/bash
# Reloads as they happen in production, checked with real traffic:
# - a policy dir laid out like a Kubernetes ConfigMap volume (timestamped
#   dir, `..data` symlink, `name.yaml -> ..data/name.yaml`) updated the way
#   kubelet does it: new timestamped dir, `..data_tmp` symlink renamed over
#   `..data` (rename(2), atomic), new keys linked, removed keys unlinked, old
#   dir removed;
# - a bad file swapped in keeps the previous policy in force, logged with
#   file:line:col; the fixed file then takes effect;
# - a plain policy dir where files are written and removed in place;
# - the inventory file replaced by rename, also as a ConfigMap key.
. "$(dirname "$0")/../lib.sh"
t_require_root

# web .1, api .2, db .3; api2 .4 joins and leaves the inventory
t_endpoints web:1 api:2 db:3 api2:4 || { t_fail "setup"; exit 1; }
t_tcp_server db 5432
t_wait_port db 5432

# policy NAME FROM [BADKEY]: an AllowList admitting FROM -> db tcp/5432 on
# stdout. BADKEY misspells db's selector key, at line 9 column 7.
policy() {
	cat <<EOF2
apiVersion: mseg.io/v1
kind: AllowList
metadata: {name: $1}
spec:
  groups:
    web: {selector: {app: web}}
    api: {selector: {app: api}}
    db:
      ${3:-selector}: {app: db}
  allow:
    - {from: $2, to: db, ports: [tcp/5432]}
EOF2
}
inventory() { # extra endpoint lines...
	local l
	echo "endpoints:"
	echo "  - {id: web, labels: {app: web}, netns: $(t_netns_path web), ips: [10.201.0.1]}"
	echo "  - {id: api, labels: {app: api}, netns: $(t_netns_path api), ips: [10.201.0.2]}"
	echo "  - {id: db, labels: {app: db}, netns: $(t_netns_path db), ips: [10.201.0.3]}"
	for l in "$@"; do echo "  $l"; done
}
api2_line="- {id: api2, labels: {app: api}, netns: $(t_netns_path api2), ips: [10.201.0.4]}"

# cm_update DIR STAGE: publish the files of directory STAGE into the
# ConfigMap volume DIR exactly as kubelet's AtomicWriter does.
cm_seq=0
cm_update() {
	local dir=$1 stage=$2 ts old f
	cm_seq=$((cm_seq + 1))
	ts=$(printf '..2026_11_27_10_%02d_00.%09d' "$cm_seq" "$((123456789 + cm_seq))")
	old=$(readlink "$dir/..data" 2>/dev/null)
	mkdir "$dir/$ts" && cp "$stage"/* "$dir/$ts/" || return 1
	ln -s "$ts" "$dir/..data_tmp" || return 1
	mv -Tf "$dir/..data_tmp" "$dir/..data" || return 1   # rename(2)
	for f in "$stage"/*; do   # keys added
		f=$(basename "$f")
		[ -L "$dir/$f" ] || ln -s "..data/$f" "$dir/$f" || return 1
	done
	for f in "$dir"/*; do     # keys removed
		[ -e "$stage/$(basename "$f")" ] || rm -f "$f"
	done
	[ -z "$old" ] || rm -rf "${dir:?}/$old"
}
# stage KEY=FROM[:BADKEY]...: a fresh staging dir with one policy per key
stage() {
	local s kv key from bad
	s=$(mktemp -d "$T_TMP/stage.XXXXXX")
	for kv in "$@"; do
		key=${kv%%=*}; from=${kv#*=}; bad=
		case $from in *:*) bad=${from#*:}; from=${from%%:*} ;; esac
		policy "${key%.yaml}" "$from" $bad >"$s/$key"
	done
	echo "$s"
}
api_ok()    { t_tcp api 10.201.0.3 5432; }
web_ok()    { t_tcp web 10.201.0.3 5432; }
api2_ok()   { t_tcp api2 10.201.0.3 5432; }
# reloaded MARK: msegd logged a successful load after log line MARK
reloaded()  { t_wait_log "loaded $2 policies, $3 endpoints" "$1"; }
no_load_since() { tail -n +"$(($1 + 1))" "$T_TMP/msegd.log" | grep -q "loaded "; }

# ---- 1. ConfigMap policy volume --------------------------------------
cm="$T_TMP/cm"
mkdir -p "$cm"
cm_update "$cm" "$(stage shop.yaml=api)" || { t_fail "ConfigMap setup"; exit 1; }
inventory >"$T_TMP/endpoints.yaml"
t_check "ConfigMap layout: ..data is a symlink to a timestamped dir" \
	[ -L "$cm/..data" ] && [ -d "$cm/$(readlink "$cm/..data")" ] && [ -L "$cm/shop.yaml" ]

args=(--policy-dir "$cm" --endpoints "$T_TMP/endpoints.yaml" --resync 0)
t_msegd_start "${args[@]}"
t_check "msegd ready on the ConfigMap volume" t_wait_log "msegd ready"
t_check     "v1: api -> db allowed" api_ok
t_check_not "v1: web -> db refused" web_ok

mark=$(t_log_lines)
old_ts=$(readlink "$cm/..data")
cm_update "$cm" "$(stage shop.yaml=web)"
t_check "the update swapped ..data and removed the old dir" \
	[ "$(readlink "$cm/..data")" != "$old_ts" ] && [ ! -e "$cm/$old_ts" ]
t_check     "..data swap: msegd logged the reload" reloaded "$mark" 1 3
t_check     "v2 in force: web -> db allowed (only v2 allows it)" web_ok
t_check_not "v2 in force: api -> db refused (only v1 allowed it)" api_ok

mark=$(t_log_lines)
cm_update "$cm" "$(stage shop.yaml=api:selectr)"
t_check "bad file: error logged with file:line:col" \
	t_wait_log "$cm/shop.yaml:9:7: group 'db': unknown key 'selectr'" "$mark"
t_check "bad file: msegd says the previous state stays" \
	t_wait_log "keeping the previous 1 policies and 3 endpoints in force" "$mark"
sleep 0.3
t_check     "bad file: v2 still in force, web -> db allowed" web_ok
t_check_not "bad file: v2 still in force, api -> db refused" api_ok
t_check_not "bad file: no reload happened" no_load_since "$mark"

mark=$(t_log_lines)
cm_update "$cm" "$(stage shop.yaml=api)"
t_check     "fixed file: reload logged" reloaded "$mark" 1 3
t_check     "fixed file in force: api -> db allowed" api_ok
t_check_not "fixed file in force: web -> db refused" web_ok

# a key added to the ConfigMap, then removed (its symlink goes away)
mark=$(t_log_lines)
cm_update "$cm" "$(stage shop.yaml=api extra.yaml=web)"
t_check     "key added: 2 policies loaded" reloaded "$mark" 2 3
t_check     "key added: web -> db allowed" web_ok
t_check     "key added: api -> db still allowed" api_ok
mark=$(t_log_lines)
cm_update "$cm" "$(stage shop.yaml=api)"
t_check     "key removed: 1 policy loaded" reloaded "$mark" 1 3
t_check_not "key removed: web -> db refused again" web_ok
t_check     "key removed: api -> db still allowed" api_ok
t_check "msegd still running" kill -0 "$T_MSEGD_PID"
t_check "SIGTERM exits cleanly" t_msegd_stop

# ---- 2. plain policy dir, inventory replaced by rename ---------------
plain="$T_TMP/plain"
mkdir -p "$plain"
policy shop api >"$plain/shop.yaml"
mark=$(t_log_lines)
t_msegd_start --policy-dir "$plain" --endpoints "$T_TMP/endpoints.yaml" --resync 0
t_check "msegd ready on a plain dir" t_wait_log "msegd ready" "$mark"
t_check "plain dir: adopted the tables left by the first msegd" t_wait_log "adopted [1-9]" "$mark"
t_check_not "plain dir: web -> db refused" web_ok

mark=$(t_log_lines)
policy extra web >"$plain/extra.yaml"       # written in place, no rename
t_check     "file added in place: 2 policies loaded" reloaded "$mark" 2 3
t_check     "file added in place: web -> db allowed" web_ok
mark=$(t_log_lines)
rm "$plain/extra.yaml"
t_check     "file removed: 1 policy loaded" reloaded "$mark" 1 3
t_check_not "file removed: web -> db refused" web_ok
t_check     "file removed: api -> db still allowed" api_ok

mark=$(t_log_lines)
policy shop api selectr >"$plain/shop.yaml"
t_check "bad file in place: error logged with file:line:col" \
	t_wait_log "$plain/shop.yaml:9:7: group 'db': unknown key 'selectr'" "$mark"
t_check "bad file in place: api -> db still allowed" api_ok
mark=$(t_log_lines)
policy shop web >"$plain/shop.yaml"
t_check     "fixed in place: reload logged" reloaded "$mark" 1 3
t_check     "fixed in place: web -> db allowed" web_ok
t_check_not "fixed in place: api -> db refused" api_ok
mark=$(t_log_lines)
policy shop api >"$plain/shop.yaml"
reloaded "$mark" 1 3

t_check_not "api2 not yet in the inventory: refused" api2_ok
mark=$(t_log_lines)
inventory "$api2_line" >"$T_TMP/endpoints.yaml.tmp"
mv "$T_TMP/endpoints.yaml.tmp" "$T_TMP/endpoints.yaml"
t_check     "inventory renamed into place: reload logged" reloaded "$mark" 1 4
t_check     "inventory renamed into place: api2 -> db allowed" api2_ok
mark=$(t_log_lines)
inventory >"$T_TMP/endpoints.yaml.tmp"
mv "$T_TMP/endpoints.yaml.tmp" "$T_TMP/endpoints.yaml"
t_check     "inventory without api2: reload logged" reloaded "$mark" 1 3
t_check_not "inventory without api2: api2 -> db refused" api2_ok
t_check "SIGTERM exits cleanly" t_msegd_stop

# ---- 3. the inventory as a ConfigMap key -----------------------------
cmi="$T_TMP/cminv"
mkdir -p "$cmi"
s=$(mktemp -d "$T_TMP/stage.XXXXXX"); inventory >"$s/endpoints.yaml"
cm_update "$cmi" "$s"
mark=$(t_log_lines)
t_msegd_start --policy-dir "$plain" --endpoints "$cmi/endpoints.yaml" --resync 0
t_check "msegd ready with a ConfigMap inventory" t_wait_log "msegd ready" "$mark"
mark=$(t_log_lines)
s=$(mktemp -d "$T_TMP/stage.XXXXXX"); inventory "$api2_line" >"$s/endpoints.yaml"
cm_update "$cmi" "$s"
t_check     "ConfigMap inventory ..data swap: reload logged" reloaded "$mark" 1 4
t_check     "ConfigMap inventory: api2 -> db allowed" api2_ok
mark=$(t_log_lines)
s=$(mktemp -d "$T_TMP/stage.XXXXXX"); inventory >"$s/endpoints.yaml"
cm_update "$cmi" "$s"
t_check     "ConfigMap inventory without api2: reload logged" reloaded "$mark" 1 3
t_check_not "ConfigMap inventory without api2: api2 -> db refused" api2_ok
t_check "SIGTERM exits cleanly" t_msegd_stop
t_done
