#!/bin/sh
# tests/package/in_root.sh: run by run.sh as root inside a fresh minimal
# bookworm root, with /proc mounted and the package's .deb as $1 in
# /tmp/pkg. Installs it with apt, checks the gcmon user, starts gcmond
# as gcmond.service would (no systemd in a chroot: its User, Group,
# RuntimeDirectory, LogsDirectory and ExecStart read from the installed
# unit), runs Python programs as a member of the gcmon group (the agent
# loaded by the .pth hook, by gcmon.start() and by pygcprofiler) and one
# as a user outside it, reads them back with gcmonctl, then purges the
# package. It stops the gcmond it started whatever happens.
set -eu
cd /tmp/pkg
deb=$1
export DEBIAN_FRONTEND=noninteractive

fail() { echo "package test: $*" >&2; exit 1; }
gpid=
stop_gcmond() {
	if [ -n "$gpid" ] && kill -0 "$gpid" 2>/dev/null; then
		kill -TERM "$gpid"
		wait "$gpid" || true
	fi
	gpid=
}
on_exit() {
	st=$?
	stop_gcmond
	exit "$st"
}
trap on_exit EXIT

echo "-- apt-get install ./$deb"
apt-get update -q >apt.log 2>&1 || {
	tail -n 20 apt.log
	fail "apt-get update in the fresh root failed: no network, or no Debian archive?"
}
apt-get install -y -q --no-install-recommends "./$deb" >install.log 2>&1 || {
	tail -n 40 install.log
	fail "apt-get install ./$deb failed (above: the end of its log)"
}

echo "-- the gcmon system user and group"
getent passwd gcmon >/dev/null || fail "postinst made no gcmon user"
uid=$(getent passwd gcmon | cut -d: -f3)
getent group gcmon >/dev/null || fail "postinst made no gcmon group"
[ "$(id -gn gcmon)" = gcmon ] || fail "gcmon's primary group is $(id -gn gcmon), not gcmon"
[ "$uid" -lt 1000 ] || fail "gcmon has uid $uid: not a system user"
dpkg-reconfigure -f noninteractive gcmon >reconfigure.log 2>&1 ||
    { cat reconfigure.log; fail "postinst configure failed when run a second time"; }
[ "$(getent passwd gcmon | cut -d: -f3)" = "$uid" ] ||
    fail "a second postinst run changed the gcmon user"
agentdir=$(dirname "$(dpkg -L gcmon | grep '/sitecustomize\.py$')")
ls "$agentdir"/__pycache__/sitecustomize.*.pyc >/dev/null 2>&1 ||
    fail "postinst did not byte-compile $agentdir/sitecustomize.py"
version=$(dpkg-query -W -f '${Version}' gcmon)
for cmd in gcmond gcmonctl pygcprofiler gc-monitor; do
	command -v "$cmd" >/dev/null || fail "$cmd is not installed"
	"$cmd" --version | grep -qF "$version" ||
	    fail "$cmd --version says $("$cmd" --version), not $version"
done
for f in /usr/share/man/man1/gcmonctl.1.gz /usr/share/man/man1/pygcprofiler.1.gz \
    /usr/share/man/man1/gc-monitor.1.gz /usr/share/man/man8/gcmond.8.gz \
    /etc/logrotate.d/gcmond /etc/default/gcmond; do
	[ -e "$f" ] || fail "the package installed no $f"
done

echo "-- alice (in the gcmon group: nothing else), bob (not)"
adduser --quiet --disabled-password --gecos "" alice
adduser --quiet alice gcmon
adduser --quiet --disabled-password --gecos "" bob
envfile=/etc/default/gcmond
grep -q '^GCMOND_OPTS=' "$envfile" || fail "$envfile sets no GCMOND_OPTS"
pth=$(dpkg -L gcmon | grep '/dist-packages/gcmon-autoload\.pth$') ||
    fail "the package installed no gcmon-autoload.pth in a dist-packages directory"
[ "$(python3 -c 'import gcmon, os; print(os.path.dirname(os.path.dirname(gcmon.__file__)))')" = "$(dirname "$pth")" ] ||
    fail "Debian's python3 does not import gcmon from $(dirname "$pth")"

echo "-- gcmond as gcmond.service starts it"
unit=/lib/systemd/system/gcmond.service
[ -f "$unit" ] || fail "no $unit"
key() { sed -n "s/^$1=//p" "$unit" | head -n 1; }
user=$(key User); group=$(key Group); exec_start=$(key ExecStart)
[ "$(key EnvironmentFile)" = "-$envfile" ] ||
    fail "the unit reads its options from $(key EnvironmentFile), not $envfile"
# shellcheck disable=SC1090
. "$envfile"
# $GCMOND_OPTS in ExecStart split into words, as systemd does.
eval "set -- $exec_start"
rundir=/run/$(key RuntimeDirectory); logdir=/var/log/$(key LogsDirectory)
install -d -o "$user" -g "$group" -m "$(key RuntimeDirectoryMode)" "$rundir"
install -d -o "$user" -g "$group" -m 0755 "$logdir"
sock=$(echo "$exec_start" | sed -n 's/.*--socket \([^ ]*\).*/\1/p')
[ -n "$sock" ] || fail "the unit's ExecStart names no --socket: $exec_start"
setpriv --reuid="$user" --regid="$group" --init-groups -- "$@" \
	>gcmond.out 2>&1 &
gpid=$!
n=0
until [ -S "$sock" ]; do
	kill -0 "$gpid" 2>/dev/null || { cat gcmond.out; fail "gcmond exited at start (above: its output)"; }
	n=$((n + 1))
	[ "$n" -le 300 ] || fail "gcmond made no socket at $sock"
	sleep 0.1
done

echo "-- a Python program of alice (in the gcmon group), one of bob (not)"
as() {
	who=$1; shift
	setpriv --reuid="$who" --regid="$who" --init-groups -- \
		env HOME="/home/$who" "$@"
}
# The .pth hook: GCMON_SOCKET and nothing else.
as alice env GCMON_SOCKET="$sock" GCMON_RUN_ID=pkgtest \
	python3 daemon_stats.py /home/alice/env.json \
	2>alice-env.err || { cat alice-env.err; fail "alice's program failed"; }
# gcmon.start() from the program's own code, no environment.
as alice python3 -c 'import gcmon, runpy, sys
gcmon.start(socket=sys.argv[1], service="pkgtest-start")
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")' "$sock" daemon_stats.py \
	/home/alice/start.json 2>alice-start.err ||
    { cat alice-start.err; fail "alice's program with gcmon.start() failed"; }
as alice pygcprofiler run --socket "$sock" daemon_stats.py \
	/home/alice/launcher.json 2>alice-launcher.err ||
    { cat alice-launcher.err; fail "alice's program under pygcprofiler failed"; }
if grep -h '^gcmon:' alice-env.err alice-start.err alice-launcher.err; then
	fail "the agent complained in alice's programs (above)"
fi
as bob env GCMON_SOCKET="$sock" \
	python3 daemon_stats.py /home/bob/env.json 2>bob.err ||
    { cat bob.err; fail "bob's program failed: an agent that may not report must not stop it"; }
if as bob gcmonctl --socket "$sock" ping >bob-ctl.out 2>&1; then
	fail "gcmonctl of bob, who is not in the gcmon group, reached gcmond"
fi

echo "-- gcmonctl (as alice) against each program's gc.get_stats()"
for f in /home/alice/env.json /home/alice/start.json /home/alice/launcher.json; do
	pid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' "$f")
	n=0
	while :; do
		as alice gcmonctl --socket "$sock" --json processes >procs.json ||
		    fail "gcmonctl processes failed"
		python3 -c '
import json, sys
p = [p for p in json.load(open(sys.argv[1]))["processes"] if p["pid"] == int(sys.argv[2])]
sys.exit(0 if p and p[0]["state"] == "ended" else 1)' procs.json "$pid" && break
		n=$((n + 1))
		[ "$n" -le 300 ] || fail "gcmond does not show pid $pid as ended: $(cat procs.json)"
		sleep 0.1
	done
	python3 - procs.json "$f" <<'PY' || fail "gcmond's totals for $f differ from gc.get_stats()"
import json, sys
mine = json.load(open(sys.argv[2]))
procs = json.load(open(sys.argv[1]))["processes"]
p = [p for p in procs if p["pid"] == mine["pid"]][0]
ok = True
for g, st in enumerate(mine["stats"]):
    got = p["generations"][g]
    for k in ("collections", "collected", "uncollectable"):
        if got[k] != st[k]:
            print("pid %d generation %d %s: gcmond %d, gc.get_stats() %d"
                  % (mine["pid"], g, k, got[k], st[k]))
            ok = False
if sys.argv[2].endswith("/start.json") and p.get("service") != "pkgtest-start":
    print("pid %d: service %r, not the one gcmon.start() gave" % (mine["pid"], p.get("service")))
    ok = False
if sum(st["collections"] for st in mine["stats"]) == 0:
    print("pid %d made no collection: nothing was tested" % mine["pid"])
    ok = False
print("   pid %d: %s collections, as gc.get_stats() counts them"
      % (mine["pid"], [g["collections"] for g in p["generations"]]))
sys.exit(0 if ok else 1)
PY
done
bobpid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' /home/bob/env.json)
if python3 -c '
import json, sys
sys.exit(0 if any(p["pid"] == int(sys.argv[2]) for p in json.load(open(sys.argv[1]))["processes"]) else 1)' procs.json "$bobpid"; then
	fail "gcmond counted bob's program, though bob is not in the gcmon group"
fi

echo "-- stop gcmond, purge the package"
stop_gcmond
apt-get purge -y -q gcmon >purge.log 2>&1 || { tail -n 20 purge.log; fail "apt-get purge gcmon failed"; }
[ ! -e "$logdir" ] || fail "purge left $logdir"
[ ! -e "$envfile" ] || fail "purge left $envfile"
[ ! -e "$agentdir" ] || fail "purge left $agentdir: $(find "$agentdir")"
[ ! -e "$(dirname "$pth")/gcmon" ] && [ ! -e "$pth" ] ||
    fail "purge left the gcmon package or its .pth in $(dirname "$pth")"
getent passwd gcmon >/dev/null || fail "purge removed the gcmon user (Debian keeps system users)"
