# shellcheck shell=bash
# Sourced by scripts that add an apt source of their own (bookworm-backports,
# Debian's source packages).  bookworm_mirror sets $mirror_uri and
# $mirror_keyring ("-" when none) from the machine's existing bookworm "deb"
# source, so no mirror is ever written in this repo.  Returns 1 if there is
# none.  $1: a sources file of ours to skip.
bookworm_mirror() {
	local skip=${1:-} f
	mirror_uri="" mirror_keyring=""
	# deb822 sources: find the stanza whose Suites include "bookworm".
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		[ "$f" = "$skip" ] && continue
		read -r mirror_uri mirror_keyring < <(awk '
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
		[ -n "$mirror_uri" ] && return 0
	done
	# One-line sources.list format: "deb [opts] URI bookworm main ...".
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		mirror_uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i !~ /=/) { if ($(i+1) == "bookworm") { print $i; exit } break } }' "$f")
		mirror_keyring=-
		[ -n "$mirror_uri" ] && return 0
	done
	return 1
}

# deb822_stanza TYPES SUITES: an apt source on the same mirror and keyring.
deb822_stanza() {
	echo "Types: $1"
	echo "URIs: $mirror_uri"
	echo "Suites: $2"
	echo "Components: main"
	if [ -n "$mirror_keyring" ] && [ "$mirror_keyring" != "-" ]; then
		echo "Signed-By: $mirror_keyring"
	fi
}
