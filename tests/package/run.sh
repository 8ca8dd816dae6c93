#!/bin/sh
# tests/package/run.sh: the Debian package's test (make check-package,
# .ci/run; never part of make check or distcheck: it is slow and needs
# root and the Debian archive). Builds the package with dpkg-buildpackage
# in a copy of the work tree (the tree stays clean), runs lintian on it,
# then installs it with apt into a fresh minimal bookworm root
# (debootstrap --variant=minbase; the base is cached as a tarball under
# $GCMON_PKGTEST_CACHE, default /var/cache/gcmon-pkgtest, and unpacked
# anew each run) and runs in_root.sh there: gcmond started as the unit
# starts it, a Python program of a member of the gcmon group read back
# with gcmonctl. It must never leave a mount, a process or a file behind.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
here="$top/tests/package"
cache=${GCMON_PKGTEST_CACHE:-/var/cache/gcmon-pkgtest}
mirror=${GCMON_PKGTEST_MIRROR:-$(sed -n 's/^URIs: //p' \
	/etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)}
mirror=${mirror:-http://deb.debian.org/debian}

die() { echo "package test: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, mount, chroot)"
for tool in dpkg-buildpackage dh fakeroot lintian debootstrap setpriv; do
	command -v "$tool" >/dev/null 2>&1 ||
	    die "$tool not found: ./quickstart build installs it (packages debhelper dpkg-dev fakeroot lintian debootstrap)"
done

work=$(mktemp -d /var/tmp/gcmon-pkgtest.XXXXXX)
root="$work/root"
cleanup() {
	st=$?
	# Processes of ours still running in the root (in_root.sh stops
	# gcmond itself; this is for a test killed half way).
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
	done
	if mountpoint -q "$root/proc" 2>/dev/null; then
		umount "$root/proc" || umount -l "$root/proc"
	fi
	if mountpoint -q "$root/proc" 2>/dev/null; then
		echo "package test: $root/proc still mounted; $work left in place" >&2
	else
		rm -rf "$work"
	fi
	exit $st
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The version of the package is the release's.
want=$(sed -n 's/^AC_INIT(\[gcmon\], \[\([^]]*\)\].*/\1/p' "$top/configure.ac")
have=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
[ "$want" = "$have" ] ||
    die "debian/changelog is at version $have, configure.ac at $want: add a changelog entry (dch -v $want)"

echo "== building the package (dpkg-buildpackage -us -uc -b) in a copy of the tree"
mkdir "$work/src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# The work tree as it is (uncommitted edits too), without what git ignores.
	(cd "$top" && git ls-files -co --exclude-standard) | while IFS= read -r f; do
		if [ -e "$top/$f" ] || [ -L "$top/$f" ]; then printf '%s\n' "$f"; fi
	done >"$work/files"
	tar -C "$top" -cf - -T "$work/files" | tar -C "$work/src" -xf -
else
	# An exported tree (git archive): all of it but the build directories.
	tar -C "$top" --exclude=./build --exclude='./build-*' -cf - . |
	    tar -C "$work/src" -xf -
fi
if ! (cd "$work/src" && dpkg-buildpackage -us -uc -b -j2) >"$work/build.log" 2>&1; then
	tail -n 60 "$work/build.log"
	die "dpkg-buildpackage failed (above: the end of its log)"
fi
deb=$(ls "$work"/gcmon_"$have"_*.deb)

echo "== lintian"
lintian --fail-on error --info "$work"/gcmon_"$have"_*.changes ||
    die "lintian found errors in the package (above)"

echo "== a fresh bookworm root"
base="$cache/bookworm-minbase.tar"
if [ ! -f "$base" ]; then
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/debootstrap.XXXXXX")
	echo "   debootstrap --variant=minbase bookworm from $mirror (once; cached as $base)"
	if ! debootstrap --variant=minbase bookworm "$tmp" "$mirror" >"$work/debootstrap.log" 2>&1; then
		tail -n 20 "$work/debootstrap.log"
		rm -rf "$tmp"
		die "debootstrap of bookworm from $mirror failed: no network, or no Debian archive there? (set GCMON_PKGTEST_MIRROR)"
	fi
	chmod 0755 "$tmp"	# mktemp made it 0700: the root of the root
	tar -C "$tmp" -cf "$base.tmp" . && mv "$base.tmp" "$base"
	rm -rf "$tmp"
fi
mkdir "$root"
tar -C "$root" -xf "$base"
chmod 0755 "$root"
# Packages fetched by an earlier run: apt checks them against the
# archive's lists before it uses them.
mkdir -p "$cache/archives"
cp "$cache"/archives/*.deb "$root/var/cache/apt/archives/" 2>/dev/null || true
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mkdir "$root/tmp/pkg"
cp "$deb" "$here/in_root.sh" "$top/tests/e2e/programs/daemon_stats.py" "$root/tmp/pkg/"
chmod 0755 "$root/tmp/pkg"
chmod 0644 "$root/tmp/pkg"/*
mount -t proc proc "$root/proc"

echo "== in the root: install, gcmond as the unit runs it, a program of the gcmon group"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
	LANG=C.UTF-8 /bin/sh /tmp/pkg/in_root.sh "$(basename "$deb")"
cp "$root"/var/cache/apt/archives/*.deb "$cache/archives/" 2>/dev/null || true
echo "== package test passed"
