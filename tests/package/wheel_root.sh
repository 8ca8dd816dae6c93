#!/bin/sh
# tests/package/wheel_root.sh WHEEL: the wheel where none of gcmon's
# libraries is installed (test_wheel.py runs it as root; make
# check-wheel, .ci/run). Unpacks the fresh minimal bookworm root that
# run.sh caches (debootstrap --variant=minbase, made once under
# $GCMON_PKGTEST_CACHE), installs python3 and python3-venv there and
# nothing else, checks that libuv, jansson and libmicrohttpd are absent, and runs wheel_checks.py in it: a venv with the
# wheel, ldd of each binary, exact totals under pygcprofiler run (also
# --python /usr/bin/python3, not the venv's), gcmon.start() and the .pth
# opt-in, gcmond and gcmonctl, pip uninstall. It must never leave a
# mount, a process or a file behind.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
wheel=${1:?usage: wheel_root.sh WHEEL}
version=${2:?usage: wheel_root.sh WHEEL VERSION}
cache=${GCMON_PKGTEST_CACHE:-/var/cache/gcmon-pkgtest}
mirror=${GCMON_PKGTEST_MIRROR:-$(sed -n 's/^URIs: //p' \
	/etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)}
mirror=${mirror:-http://deb.debian.org/debian}

die() { echo "wheel root test: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, mount, chroot)"
[ -f "$wheel" ] || die "no wheel at $wheel"
command -v debootstrap >/dev/null 2>&1 ||
    die "debootstrap not found: apt-get install debootstrap"

work=$(mktemp -d /var/tmp/gcmon-wheelroot.XXXXXX)
root="$work/root"
cleanup() {
	st=$?
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
	done
	if mountpoint -q "$root/proc" 2>/dev/null; then
		umount "$root/proc" || umount -l "$root/proc"
	fi
	if mountpoint -q "$root/proc" 2>/dev/null; then
		echo "wheel root test: $root/proc still mounted; $work left in place" >&2
	else
		rm -rf "$work"
	fi
	exit $st
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

base="$cache/bookworm-minbase.tar"
if [ ! -f "$base" ]; then
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/debootstrap.XXXXXX")
	echo "   debootstrap --variant=minbase bookworm from $mirror (once; cached as $base)"
	if ! debootstrap --variant=minbase bookworm "$tmp" "$mirror" >"$work/debootstrap.log" 2>&1; then
		tail -n 20 "$work/debootstrap.log"
		rm -rf "$tmp"
		die "debootstrap of bookworm from $mirror failed (set GCMON_PKGTEST_MIRROR)"
	fi
	chmod 0755 "$tmp"
	tar -C "$tmp" -cf "$base.tmp" . && mv "$base.tmp" "$base"
	rm -rf "$tmp"
fi
mkdir "$root"
tar -C "$root" -xf "$base"
chmod 0755 "$root"
mkdir -p "$cache/archives"
cp "$cache"/archives/*.deb "$root/var/cache/apt/archives/" 2>/dev/null || true
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mkdir "$root/tmp/wheel"
cp "$wheel" "$here/wheel_checks.py" "$here/wheel_prog.py" "$root/tmp/wheel/"
mount -t proc proc "$root/proc"

in_root() {
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
echo "== in a fresh bookworm root: python3 and python3-venv, none of the libraries"
in_root apt-get update -q >"$work/apt.log" 2>&1 ||
    { tail -n 20 "$work/apt.log"; die "apt-get update in the root failed"; }
in_root apt-get install -y -q --no-install-recommends python3 python3-venv \
	>"$work/install.log" 2>&1 ||
    { tail -n 30 "$work/install.log"; die "apt-get install python3 python3-venv failed"; }
cp "$root"/var/cache/apt/archives/*.deb "$cache/archives/" 2>/dev/null || true
# (gnutls is there, apt needs it; ncursesw too, python3's curses module
# does. The wheel's binaries load their own copies all the same, which
# wheel_checks.py's ldd check sees.)
for lib in libuv.so.1 libjansson.so.4 libmicrohttpd.so.12; do
	if in_root /sbin/ldconfig -p | grep -qF "$lib"; then
		die "the root has $lib: it would not show that the wheel brings its own"
	fi
done
in_root /usr/bin/python3 /tmp/wheel/wheel_checks.py --python /usr/bin/python3 \
	--wheel "/tmp/wheel/$(basename "$wheel")" --version "$version" \
	--work /tmp/wheel/work --other /usr/bin/python3 ||
    die "the checks failed in the fresh root (above)"
echo "== wheel root test passed"
