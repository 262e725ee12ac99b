#!/usr/bin/env bash
# Enables Debian bookworm-backports (Suricata 7 comes from there), using the
# same mirror and keyring as the machine's existing bookworm source: the mirror
# is read from the apt configuration at run time, never written in this repo.
# Idempotent.  Run as root.
set -euo pipefail

out=/etc/apt/sources.list.d/peerpipe-backports.sources
[ -f "$out" ] && exit 0

uri="" keyring=""
# deb822 sources: find the stanza whose Suites include "bookworm".
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	[ "$f" = "$out" ] && continue
	read -r uri keyring < <(awk '
		function flush() {
			if (suites ~ /(^| )bookworm( |$)/ && types ~ /(^| )deb( |$)/ && uri == "")
				{ uri = uris; key = signed }
			types = uris = suites = signed = ""
		}
		/^[ \t]*$/ { flush(); next }
		/^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
		/^URIs:/ { sub(/^URIs:[ \t]*/, ""); split($0, u, " "); uris = u[1] }
		/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
		/^Signed-By:/ { sub(/^Signed-By:[ \t]*/, ""); signed = $0 }
		END { flush(); if (uri != "") print uri, (key == "" ? "-" : key) }
	' "$f") || true
	[ -n "$uri" ] && break
done
# One-line sources.list format: "deb [opts] URI bookworm main ...".
if [ -z "$uri" ]; then
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i !~ /=/) { if ($(i+1) == "bookworm") { print $i; exit } break } }' "$f")
		[ -n "$uri" ] && break
	done
fi
if [ -z "$uri" ]; then
	echo "enable-backports: no 'bookworm' apt source found to derive the mirror from;" >&2
	echo "add bookworm-backports to /etc/apt/sources.list.d/ by hand" >&2
	exit 1
fi
{
	echo "Types: deb"
	echo "URIs: $uri"
	echo "Suites: bookworm-backports"
	echo "Components: main"
	if [ -n "$keyring" ] && [ "$keyring" != "-" ]; then
		echo "Signed-By: $keyring"
	fi
} > "$out"
echo "enable-backports: added bookworm-backports from the machine's bookworm mirror"
