#!/bin/sh
# examples/demo.sh BUILDDIR: the README's demo, run by `./quickstart demo`.
# Profiles gunicorn with 4 workers under a short local load and prints the
# report of the master and every worker. Bounded: the load lasts 5 seconds
# and every wait has a limit. Writes nothing outside a private temp dir.
set -eu

builddir=${1:?usage: examples/demo.sh BUILDDIR}
builddir=$(cd "$builddir" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
PY=${GCMON_PYTHON:-/usr/bin/python3}
prof="$builddir/client/pygcprofiler"
[ -x "$prof" ] || { echo "demo: $prof not built (run make in $builddir)" >&2; exit 1; }
"$PY" -c 'import gunicorn' 2>/dev/null ||
	{ echo "demo: gunicorn missing for $PY (apt-get install python3-gunicorn)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gcmon-demo-XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# A free port: bind port 0, read what the kernel chose, release it.
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port/"

echo "demo: pygcprofiler run --requests -m gunicorn --workers 4 app:app on 127.0.0.1:$port"
"$prof" run --python "$PY" --stats-only --requests --terminal-flamegraph \
	--flamegraph-bucket 1 --flamegraph-file "$tmp/gc.folded" \
	--stacks-file "$tmp/stacks.folded" \
	-m gunicorn --chdir "$top/examples" --workers 4 \
	--bind "127.0.0.1:$port" --log-level warning app:app &
pid=$!

# Wait (at most 20 s) until gunicorn answers.
"$PY" - "$url" <<'PYEOF'
import sys, time, urllib.request
deadline = time.monotonic() + 20
while True:
    try:
        urllib.request.urlopen(sys.argv[1] + "health", timeout=1).read()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("demo: gunicorn did not answer within 20 s")
        time.sleep(0.1)
PYEOF

echo "demo: 5 seconds of load on $url"
if command -v wrk >/dev/null 2>&1; then
	wrk -t 2 -c 16 -d 5s "$url" | sed 's/^/demo: wrk: /'
else
	"$PY" - "$url" <<'PYEOF'
import sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
end = time.monotonic() + 5
def loop(_):
    n = 0
    while time.monotonic() < end:
        urllib.request.urlopen(sys.argv[1], timeout=5).read()
        n += 1
    return n
with ThreadPoolExecutor(8) as ex:
    print("demo: %d requests" % sum(ex.map(loop, range(8))))
PYEOF
fi

echo "demo: stopping gunicorn with SIGINT; the report follows"
kill -INT "$pid"
status=0
wait "$pid" || status=$?
pid=
echo "demo: pygcprofiler exited $status; time x generation flame graph: $(wc -l < "$tmp/gc.folded") lines"
if [ -s "$tmp/stacks.folded" ]; then
	echo "demo: --stacks-file (the Python stacks behind the pauses, for flamegraph.pl or speedscope), heaviest first:"
	# Heaviest first (the weight, pause µs, ends a line); the leaf end of
	# each path, which is where the code that pays is.
	awk '{ print $NF "\t" $0 }' "$tmp/stacks.folded" | sort -n -r |
	    cut -f 2- | head -n 5 | awk -F';' '{
		s = $NF
		for (i = NF - 1; i >= 1 && i >= NF - 4; i--) s = $i ";" s
		if (NF > 5) s = "...;" s
		print "demo:   " s
	    }'
fi
exit "$status"
