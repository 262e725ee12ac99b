#!/usr/bin/env bash
# Installs what the Chromium interop peer needs, only when missing:
#   - Debian's chromium (/usr/bin/chromium), from apt;
#   - tests/interop/node_modules (playwright-core, pinned in package-lock.json),
#     with `npm ci` from the npm registry configured for npm on this machine.
# No browser download: playwright-core drives Debian's /usr/bin/chromium.
# Idempotent.  Run as root (or it re-runs itself through sudo when available).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null; then exec sudo -E "$0" "$@"; fi
	echo "install-browser: run as root to install packages" >&2
	exit 1
fi

here=$(cd "$(dirname "$0")" && pwd)
interop=$(cd "$here/../tests/interop" && pwd)

if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" ||
	[ ! -x /usr/bin/chromium ]; then
	echo "install-browser: installing chromium"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# Node.js: the machine's own when present (these machines ship 20), else
# Debian's 18 (playwright-core declares >= 20: npm warns; not tried here).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "install-browser: installing Debian's nodejs and npm"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

if [ ! -d "$interop/node_modules/playwright-core" ]; then
	echo "install-browser: npm ci in tests/interop"
	# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: belt and braces, playwright-core
	# itself downloads nothing on install.
	(cd "$interop" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
