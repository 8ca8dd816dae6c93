#!/bin/sh
# examples/cow-demo.sh BUILDDIR: what the workers' full collections cost in
# memory, measured. Runs examples/cow_app.py (a 200 MB object graph built
# in the master) under `pygcprofiler run -m gunicorn --workers 4 --preload`
# twice: without gc.freeze() (examples/cow_conf.py) and with it in
# when_ready (examples/cow_freeze_conf.py); each worker runs one full
# collection, then gunicorn is stopped and both reports' memory lines are
# printed side by side. Bounded waits; writes only in a private temp dir.
# Needs about 1.2 GB of memory for a few seconds.
set -eu

builddir=${1:?usage: examples/cow-demo.sh BUILDDIR}
builddir=$(cd "$builddir" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
PY=${GCMON_PYTHON:-/usr/bin/python3}
prof="$builddir/client/pygcprofiler"
[ -x "$prof" ] || { echo "cow-demo: $prof not built (run make in $builddir)" >&2; exit 1; }
"$PY" -c 'import gunicorn' 2>/dev/null ||
	{ echo "cow-demo: gunicorn missing for $PY (apt-get install python3-gunicorn)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gcmon-cow-XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# run NAME CONF: one profiled gunicorn until its 4 workers have collected.
run() {
	mkdir "$tmp/$1"
	port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	echo "cow-demo: $1: pygcprofiler run -m gunicorn -c $2 --workers 4 --preload cow_app:app"
	COW_DEMO_DIR="$tmp/$1" "$prof" run --python "$PY" --stats-only \
		-m gunicorn --chdir "$top/examples" -c "$top/examples/$2" \
		--workers 4 --preload --bind "127.0.0.1:$port" \
		--log-level warning cow_app:app > "$tmp/$1.report" 2>&1 &
	pid=$!
	n=0
	while [ "$(ls "$tmp/$1" | wc -l)" -lt 4 ]; do
		n=$((n + 1))
		[ "$n" -le 1200 ] || { echo "cow-demo: $1: workers not ready in 120 s" >&2; cat "$tmp/$1.report" >&2; exit 1; }
		kill -0 "$pid" 2>/dev/null || { echo "cow-demo: $1: pygcprofiler ended early" >&2; cat "$tmp/$1.report" >&2; exit 1; }
		sleep 0.1
	done
	kill -INT "$pid"
	wait "$pid" || true
	pid=
	grep -E '^(Peak RSS|Memory|Unshared|Frozen)|unshared' "$tmp/$1.report" |
		fold -s -w 56 > "$tmp/$1.lines" || true
}

run "without gc.freeze()" cow_conf.py
run "with gc.freeze() in when_ready" cow_freeze_conf.py
echo
printf '%-57s| %s\n' "WITHOUT gc.freeze()" "WITH gc.freeze() in when_ready"
paste -d'|' "$tmp/without gc.freeze().lines" "$tmp/with gc.freeze() in when_ready.lines" |
	awk -F'|' '{ printf "%-57s| %s\n", $1, $2 }'
