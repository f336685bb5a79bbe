#!/bin/sh
# Installs mseg-cni on a node and chains it into the node's CNI config, and
# msegd's seccomp profile into the kubelet's seccomp dir; or (--uninstall)
# takes all of it out again. Run by the DaemonSet's init container and by
# the uninstall Job: msegd's own container mounts none of these directories. Idempotent: running it twice changes
# nothing the second time. Every config change is written to a temporary
# file in the same directory and renamed over the old one, so the container
# runtime never reads a half-written config.
#
#   install-cni.sh [--uninstall] [--check]
#
# Environment (defaults are the paths the DaemonSet mounts):
#   CNI_BIN_DIR        host CNI binary dir      (/host/opt/cni/bin)
#   CNI_CONF_DIR       host CNI config dir      (/host/etc/cni/net.d)
#   MSEG_CNI_BIN       plugin binary to install (/usr/lib/cni/mseg-cni)
#   MSEG_CNI_CONFLIST  config file to chain into (default: the one the runtime
#                      uses, the first *.conflist/*.conf/*.json by name)
#   MSEG_SERVER        the plugin's "server"     (unix:/run/mseg/api.sock)
#   MSEG_ON_UNREACHABLE fail|allow                (fail)
#   MSEG_TIMEOUT       timeoutSeconds             (10)
#   MSEG_WAIT_CONF     seconds to wait for the node's network plugin to write
#                      its config (0 = do not wait; default 300)
#   SECCOMP_DIR        where msegd's profile goes: the kubelet's seccomp dir
#                      + mseg/ (/host/seccomp/mseg; empty: leave it alone)
#   MSEG_SECCOMP_PROFILE the profile to install (/usr/share/mseg/seccomp/msegd.json)
#
# A single-plugin *.conf is converted into a *.conflist of the same name
# (the original is kept as NAME.conf.mseg-orig and restored by --uninstall).
set -eu

CNI_BIN_DIR=${CNI_BIN_DIR:-/host/opt/cni/bin}
CNI_CONF_DIR=${CNI_CONF_DIR:-/host/etc/cni/net.d}
MSEG_CNI_BIN=${MSEG_CNI_BIN:-/usr/lib/cni/mseg-cni}
MSEG_SERVER=${MSEG_SERVER:-unix:/run/mseg/api.sock}
MSEG_ON_UNREACHABLE=${MSEG_ON_UNREACHABLE:-fail}
MSEG_TIMEOUT=${MSEG_TIMEOUT:-10}
MSEG_WAIT_CONF=${MSEG_WAIT_CONF:-300}
SECCOMP_DIR=${SECCOMP_DIR-/host/seccomp/mseg}
MSEG_SECCOMP_PROFILE=${MSEG_SECCOMP_PROFILE:-/usr/share/mseg/seccomp/msegd.json}
PLUGIN=mseg-cni

log() { echo "install-cni: $*" >&2; }
die() { log "$*"; exit 1; }

command -v jq >/dev/null || die "jq is required"

# The config file the runtime uses: libcni sorts *.conf, *.conflist and
# *.json by name and takes the first.
find_conf() {
	if [ -n "${MSEG_CNI_CONFLIST:-}" ]; then
		echo "$MSEG_CNI_CONFLIST"
		return 0
	fi
	# shellcheck disable=SC2012
	ls -1 "$CNI_CONF_DIR" 2>/dev/null | LC_ALL=C sort |
		grep -E '\.(conf|conflist|json)$' | head -n 1 | sed "s#^#$CNI_CONF_DIR/#"
}

# write_atomic FILE: stdin -> FILE via a temporary file and rename
write_atomic() {
	tmp="$1.mseg-tmp.$$"
	cat >"$tmp" || { rm -f "$tmp"; return 1; }
	chmod 0644 "$tmp"
	mv -f "$tmp" "$1"
}

install_bin() {
	[ -x "$MSEG_CNI_BIN" ] || die "no plugin binary at $MSEG_CNI_BIN"
	mkdir -p "$CNI_BIN_DIR"
	if cmp -s "$MSEG_CNI_BIN" "$CNI_BIN_DIR/$PLUGIN"; then
		log "$CNI_BIN_DIR/$PLUGIN is up to date"
		return 0
	fi
	cp "$MSEG_CNI_BIN" "$CNI_BIN_DIR/.$PLUGIN.tmp.$$"
	chmod 0755 "$CNI_BIN_DIR/.$PLUGIN.tmp.$$"
	mv -f "$CNI_BIN_DIR/.$PLUGIN.tmp.$$" "$CNI_BIN_DIR/$PLUGIN"
	log "installed $CNI_BIN_DIR/$PLUGIN"
}

# msegd's seccomp profile, for the DaemonSet's securityContext.seccompProfile
# (type Localhost, mseg/msegd.json): the container runtime reads it when it
# creates msegd's container, after this init container has finished.
install_seccomp() {
	[ -n "$SECCOMP_DIR" ] || return 0
	[ -f "$MSEG_SECCOMP_PROFILE" ] || die "no seccomp profile at $MSEG_SECCOMP_PROFILE"
	jq -e '.defaultAction | type == "string"' "$MSEG_SECCOMP_PROFILE" >/dev/null ||
		die "$MSEG_SECCOMP_PROFILE is not a seccomp profile"
	mkdir -p "$SECCOMP_DIR"
	if cmp -s "$MSEG_SECCOMP_PROFILE" "$SECCOMP_DIR/msegd.json"; then
		log "$SECCOMP_DIR/msegd.json is up to date"
		return 0
	fi
	write_atomic "$SECCOMP_DIR/msegd.json" <"$MSEG_SECCOMP_PROFILE"
	log "installed $SECCOMP_DIR/msegd.json"
}

# The plugin entry, as JSON.
entry() {
	jq -n --arg server "$MSEG_SERVER" --arg onu "$MSEG_ON_UNREACHABLE" \
		--argjson timeout "$MSEG_TIMEOUT" \
		'{type: "mseg-cni", server: $server, onUnreachable: $onu, timeoutSeconds: $timeout}'
}

install_conf() {
	conf=""
	waited=0
	while :; do
		conf=$(find_conf)
		[ -n "$conf" ] && [ -f "$conf" ] && break
		[ "$waited" -lt "$MSEG_WAIT_CONF" ] || die "no CNI config in $CNI_CONF_DIR"
		[ "$waited" -eq 0 ] && log "waiting for a CNI config in $CNI_CONF_DIR"
		sleep 2
		waited=$((waited + 2))
	done
	case $conf in
	*.conflist) list=$conf ;;
	*)
		# a single plugin config: make it a list of one, same name
		list="${conf%.*}.conflist"
		jq -e 'type == "object" and has("type")' "$conf" >/dev/null ||
			die "$conf is not a CNI plugin config"
		jq '{cniVersion: (.cniVersion // "1.0.0"), name: .name,
		     plugins: [del(.cniVersion, .name)]}' "$conf" | write_atomic "$list"
		mv -f "$conf" "$conf.mseg-orig"
		log "converted $conf into $list (original kept as $conf.mseg-orig)"
		;;
	esac
	jq -e '.plugins | type == "array" and length > 0' "$list" >/dev/null ||
		die "$list has no plugins list"
	new=$(jq --argjson e "$(entry)" \
		'.plugins = ([.plugins[] | select(.type != "mseg-cni")] + [$e])' "$list") ||
		die "cannot chain into $list"
	if [ "$(jq -S . "$list")" = "$(echo "$new" | jq -S .)" ]; then
		log "$list already chains $PLUGIN"
		return 0
	fi
	echo "$new" | write_atomic "$list"
	log "chained $PLUGIN into $list"
}

uninstall() {
	for f in "$CNI_CONF_DIR"/*.conflist; do
		[ -f "$f" ] || continue
		jq -e 'any(.plugins[]?; .type == "mseg-cni")' "$f" >/dev/null 2>&1 || continue
		orig="${f%.conflist}.conf.mseg-orig"
		if [ -f "$orig" ]; then
			mv -f "$orig" "${f%.conflist}.conf"
			rm -f "$f"
			log "restored ${f%.conflist}.conf"
		else
			jq '.plugins = [.plugins[] | select(.type != "mseg-cni")]' "$f" | write_atomic "$f"
			log "removed $PLUGIN from $f"
		fi
	done
	rm -f "$CNI_BIN_DIR/$PLUGIN"
	log "removed $CNI_BIN_DIR/$PLUGIN"
	if [ -n "$SECCOMP_DIR" ] && [ -e "$SECCOMP_DIR/msegd.json" ]; then
		rm -f "$SECCOMP_DIR/msegd.json"
		log "removed $SECCOMP_DIR/msegd.json"
	fi
}

check() {
	conf=$(find_conf)
	[ -n "$conf" ] && jq -e 'any(.plugins[]?; .type == "mseg-cni")' "$conf" >/dev/null &&
		[ -x "$CNI_BIN_DIR/$PLUGIN" ]
}

case "${1:-}" in
"") install_bin; install_seccomp; install_conf ;;
--uninstall) uninstall ;;
--check) check ;;
*) die "usage: install-cni.sh [--uninstall|--check]" ;;
esac
