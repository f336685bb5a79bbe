#!/bin/sh
# Installs the Debian 12 packages needed to build, test and benchmark mseg.
# Idempotent; needs root (or sudo). Set MSEG_SKIP_DEPS=1 to skip.
set -eu
[ "${MSEG_SKIP_DEPS:-}" = 1 ] && exit 0
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

PKGS="build-essential pkg-config
libnftnl-dev libmnl-dev libnetfilter-queue-dev libyaml-dev libmicrohttpd-dev
libjansson-dev libcurl4-openssl-dev libjemalloc-dev
nftables iptables iproute2 socat netcat-openbsd iputils-ping procps psmisc
containernetworking-plugins valgrind python3 python3-yaml python3-seccomp curl bc jq systemd
openssl wrk nginx-light prometheus
chromium chromium-driver python3-selenium
clang libclang-rt-14-dev"

# nodejs and npm (below): the Kubernetes API stand-in of tests/kube/
# (kube_watch.sh) and deploy_validate.sh's schema checks.
# chromium, chromium-driver and python3-selenium: ui_browser.sh drives the
# flow map in a real headless browser (Debian's, never a downloaded one).
# python3-seccomp and python3-yaml: deploy_validate.sh runs msegd under its
# seccomp profile and checks the manifests' mounts.
# clang and its libFuzzer runtime build the fuzz targets (make fuzz).
# prometheus brings promtool, which checks GET /metrics; where systemd runs,
# the package also starts a Prometheus server, which the tests do not want
# (stopped below).
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# Node.js: Debian's nodejs and npm, unless a node with npm is there already
# (a nodesource nodejs package carries its own npm and conflicts with
# Debian's npm package)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	missing=
	for p in nodejs npm; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "installing:$missing"
		$SUDO apt-get update -qq
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
	fi
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q prometheus 2>/dev/null; then
	$SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
# The stand-in's npm packages (kubernetes-models, pinned by package-lock.json),
# so that kube_watch.sh runs offline afterwards.
if command -v npm >/dev/null 2>&1 && [ ! -d "$(dirname "$0")/../tests/kube/node_modules/kubernetes-models" ]; then
	(cd "$(dirname "$0")/../tests/kube" && npm ci --no-audit --no-fund --silent) ||
		echo "install-deps: npm ci in tests/kube failed; kube_watch.sh will try again" >&2
fi
