#!/usr/bin/env bash
# Enables Debian bookworm-backports (Suricata 7 comes from there), using the
# same mirror and keyring as the machine's existing bookworm source: the mirror
# is read from the apt configuration at run time, never written in this repo.
# Idempotent.  Run as root.
set -euo pipefail
. "$(dirname "$0")/lib/apt-mirror.sh"

out=/etc/apt/sources.list.d/peerpipe-backports.sources
[ -f "$out" ] && exit 0

if ! bookworm_mirror "$out"; then
	echo "enable-backports: no 'bookworm' apt source found to derive the mirror from;" >&2
	echo "add bookworm-backports to /etc/apt/sources.list.d/ by hand" >&2
	exit 1
fi
deb822_stanza deb bookworm-backports > "$out"
echo "enable-backports: added bookworm-backports from the machine's bookworm mirror"
