#!/bin/sh
# need.sh WHAT CHECK:PACKAGE...
# Makes sure the Debian packages a make target needs are installed, the same way for every
# target (make e2e-deps, make cluster-deps): a CHECK is a program looked up on PATH and in the
# sbin directories, or an absolute path that must exist. As root on Debian/Ubuntu (apt-get
# present) the missing packages are installed; otherwise it names exactly what is missing and
# how to install it, and fails.
set -eu
what=$1
shift
missing_pkgs() {
	out=""
	for pair in "$@"; do
		check=${pair%%:*}
		pkg=${pair#*:}
		case $check in
		/*) [ -e "$check" ] && continue ;;
		*)
			command -v "$check" >/dev/null 2>&1 && continue
			found=""
			for d in /usr/sbin /sbin /usr/local/sbin; do
				[ -x "$d/$check" ] && found=1
			done
			[ -n "$found" ] && continue
			;;
		esac
		case " $out " in *" $pkg "*) ;; *) out="$out $pkg" ;; esac
	done
	echo "$out"
}
missing=$(missing_pkgs "$@")
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "$what: installing:$missing"
	# shellcheck disable=SC2086 # one word per package
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; }; then
		echo "$what: apt-get install$missing failed" >&2
		exit 1
	fi
	missing=$(missing_pkgs "$@")
	[ -z "$missing" ] && exit 0
	echo "$what: still missing after apt-get install:$missing" >&2
	exit 1
fi
echo "$what needs (as root) the Debian packages:$missing — install them with: sudo apt-get install -y$missing" >&2
exit 1
