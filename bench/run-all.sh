#!/bin/sh
# bench/run-all.sh: what `make bench` runs. Five benchmarks, each printing
# figures measured side by side in one run and a one-line verdict:
#   1 callback cost per collection (callback_cost.py, every CPython 3.10-3.13),
#     and in the same run what a captured Python stack adds (stack_cost.py)
#     and what recording a request costs (request_cost.py)
#   2 whole program (whole_program.sh: GC-heavy script, gunicorn under wrk)
#   3 daemon ingest (ingest_run.py fills shared areas a real gcmond drains)
#   4 memory: the agent over a long run, gcmond with 1000 live areas (memory.py)
#   5 gcmond's log bytes per hour for the demo's workload (log_size.py)
#   6 launcher latency and interpreter start-up (launcher.py)
#   7 the CPU watching costs: launcher + gcmond per collection (watch_cost.py)
#   8 near zero (issue 26): start-up, shared, embedded, whole command and
#     the pipeline per collection, side by side (quick.py; `make bench-quick`)
# Usage: bench/run-all.sh [1] [2] [3] [4] [5] [6] [7] [8]   (default: all)
# Environment: GCMON_BUILDDIR (built tree), GCMON_SRCDIR, GCMON_PYTHON.
# It builds its C helpers with cc into a private temp dir and writes
# nothing else; it never asserts timings (benchmarks measure, tests assert).
# A part that is not built is skipped with a message, never faked.
set -u

here=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${GCMON_SRCDIR:-$(dirname "$here")}
BUILDDIR=${GCMON_BUILDDIR:-$SRCDIR/build}
PY=${GCMON_PYTHON:-/usr/bin/python3}
CC=${CC:-cc}
export GCMON_SRCDIR="$SRCDIR" GCMON_BUILDDIR="$BUILDDIR" GCMON_PYTHON="$PY"
export PYTHONDONTWRITEBYTECODE=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gcmon-bench.XXXXXX") || exit 1
daemon_pid=
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

AGENT_DIR=$BUILDDIR/agent
GCMOND=$BUILDDIR/daemon/gcmond
have_agent() { [ -f "$AGENT_DIR/gcmon/_gcmon.abi3.so" ] && [ -f "$AGENT_DIR/sitecustomize.py" ]; }
have_gcmond() { [ -x "$GCMOND" ]; }

sections=${*:-1 2 3 4 5 6 7 8}
verdicts=$tmp/verdicts
: >"$verdicts"
note() { echo "$*" | tee -a "$verdicts"; }

# Every CPython 3.10-3.13 here: Debian's and pyenv's, each once.
pythons() {
	for p in /usr/bin/python3 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[0-9]*/bin/python3; do
		[ -x "$p" ] || continue
		v=$("$p" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
		case $v in 3.10|3.11|3.12|3.13) echo "$p" ;; esac
	done
}

# Start a private gcmond (if built) for the agent to talk to.
start_gcmond() {
	have_gcmond || return 1
	[ -n "$daemon_pid" ] && return 0
	mkdir -p "$tmp/d" && chmod 700 "$tmp/d"
	"$GCMOND" --quiet --socket "$tmp/d/gcmon.sock" 2>"$tmp/d/gcmond.stderr" &
	daemon_pid=$!
	i=0
	while [ ! -S "$tmp/d/gcmon.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	[ -S "$tmp/d/gcmon.sock" ]
}

bench_callback_cost() {
	echo "== 1. callback cost per collection"
	if have_agent && start_gcmond; then
		sock=$tmp/d/gcmon.sock; echo "agent: $AGENT_DIR, sending to a real gcmond ($GCMOND)"
	elif have_agent; then
		sock=$tmp/nobody.sock; echo "agent: $AGENT_DIR, socket nobody listens on (gcmond not built)"
	else
		sock=$tmp/nobody.sock; echo "agent not built in $AGENT_DIR: agent variant skipped"
	fi
	found=0
	for p in $(pythons); do
		found=$((found + 1))
		d=$tmp/floor$found
		mkdir -p "$d"
		inc=$("$p" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
		if ! $CC -O2 -shared -fPIC -I"$inc" "$here/gcfloor.c" -o "$d/gcfloor.so" 2>"$d/cc.err"; then
			note "verdict 1: SKIP $p: cannot build gcfloor ($(head -1 "$d/cc.err"))"
			continue
		fi
		pp=$d
		have_agent && pp=$AGENT_DIR:$d
		# No drops: a tight collect(0) loop makes ~2 M collections/s,
		# which the default ring (4096 slots, drained every 10 ms) cannot
		# hold, so the callback would mostly take its cheaper full-ring
		# path. 65536 slots (2.5 MiB) hold 30 ms of it.
		timeout 600 env PYTHONPATH="$pp" GCMON_SOCKET="$sock" GCMON_RUN_ID=bench-cost \
		    GCMON_RING=${BENCH_COST_RING:-65536} \
		    "$p" "$here/callback_cost.py" ${BENCH_COST_ARGS:-} >"$d/out" 2>&1
		cat "$d/out"
		grep '^verdict:' "$d/out" | sed 's/^verdict:/verdict 1:/' >>"$verdicts"
		if have_agent; then
			timeout 600 env PYTHONPATH="$pp" GCMON_SOCKET="$sock" \
			    GCMON_RUN_ID=bench-stack "$p" "$here/stack_cost.py" \
			    ${BENCH_STACK_ARGS:-} >"$d/stack" 2>&1
			cat "$d/stack"
			grep '^verdict:' "$d/stack" | sed 's/^verdict:/verdict 1s:/' >>"$verdicts"
			timeout 600 env PYTHONPATH="$pp" GCMON_SOCKET="$sock" \
			    GCMON_RUN_ID=bench-requests "$p" "$here/request_cost.py" \
			    ${BENCH_REQUEST_ARGS:-} >"$d/req" 2>&1
			cat "$d/req"
			grep '^verdict:' "$d/req" | sed 's/^verdict:/verdict 1r:/' >>"$verdicts"
		fi
		echo
	done
	for v in 3.10 3.11 3.12 3.13; do
		for p in $(pythons); do
			[ "$("$p" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = $v ] && continue 2
		done
		note "verdict 1: SKIP CPython $v: not installed"
	done
}

bench_whole_program() {
	echo "== 2. whole program"
	timeout 900 sh "$here/whole_program.sh" "$tmp" | tee "$tmp/wp.out"
	grep '^verdict' "$tmp/wp.out" | sed 's/^verdict/verdict 2/' >>"$verdicts"
}

bench_ingest() {
	echo "== 3. daemon ingest"
	if ! have_gcmond; then
		note "verdict 3: SKIP gcmond not built ($GCMOND)"
		return
	fi
	timeout 600 "$PY" "$here/ingest_run.py" "$GCMOND" "$tmp" | tee "$tmp/ingest.out"
	grep '^verdict' "$tmp/ingest.out" | sed 's/^verdict/verdict 3/' >>"$verdicts"
}

bench_memory() {
	echo "== 4. memory over a long run"
	d=$tmp/mem
	mkdir -p "$d"
	inc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
	$CC -O2 -shared -fPIC -I"$inc" "$here/gcfloor.c" -o "$d/gcfloor.so" || return
	if have_agent && start_gcmond; then
		sock=$tmp/d/gcmon.sock
	else
		sock=$tmp/nobody.sock
	fi
	timeout 600 "$PY" "$here/memory.py" --agent-dir "$AGENT_DIR" --socket "$sock" \
	    --floor-dir "$d" ${BENCH_MEM_ARGS:-} | tee "$d/out"
	if have_gcmond; then
		echo
		timeout 600 "$PY" "$here/memory.py" --gcmond "$GCMOND" \
		    --areas "${BENCH_MEM_AREAS:-1000}" | tee -a "$d/out"
	else
		note "verdict 4: SKIP gcmond not built ($GCMOND): 1000 areas not measured"
	fi
	grep '^verdict' "$d/out" | sed 's/^verdict/verdict 4/' >>"$verdicts"
}

bench_log_size() {
	echo "== 5. log bytes per hour"
	timeout 600 "$PY" "$here/log_size.py" "$tmp" | tee "$tmp/log.out"
	grep '^verdict' "$tmp/log.out" | sed 's/^verdict/verdict 5/' >>"$verdicts"
}

bench_launcher() {
	echo "== 6. launcher latency and interpreter start-up"
	if ! have_agent || ! have_gcmond || [ ! -x "$BUILDDIR/client/pygcprofiler" ]; then
		note "verdict 6: SKIP launcher, gcmond or agent not built in $BUILDDIR"
		return
	fi
	timeout 900 "$PY" "$here/launcher.py" "$tmp" | tee "$tmp/launcher.out"
	grep '^verdict' "$tmp/launcher.out" | sed 's/^verdict/verdict 6/' >>"$verdicts"
}

bench_watch_cost() {
	echo "== 7. the CPU watching costs"
	if ! have_agent || ! have_gcmond || [ ! -x "$BUILDDIR/client/pygcprofiler" ]; then
		note "verdict 7: SKIP launcher, gcmond or agent not built in $BUILDDIR"
		return
	fi
	timeout 900 "$PY" "$here/watch_cost.py" "$tmp" | tee "$tmp/watch.out"
	grep '^verdict' "$tmp/watch.out" | sed 's/^verdict/verdict 7/' >>"$verdicts"
}

bench_quick() {
	echo "== 8. near zero: start-up, shared, embedded, whole command, pipeline"
	if ! have_agent || ! have_gcmond || [ ! -x "$BUILDDIR/client/pygcprofiler" ]; then
		note "verdict 8: SKIP launcher, gcmond or agent not built in $BUILDDIR"
		return
	fi
	mkdir -p "$tmp/quick"
	timeout 600 "$PY" "$here/quick.py" "$tmp/quick" | tee "$tmp/quick.out"
	grep '^verdict' "$tmp/quick.out" | sed 's/^verdict/verdict 8/' >>"$verdicts"
}

start=$(date +%s)
echo "machine: $(nproc) CPUs, $(uname -sr); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for s in $sections; do
	echo "(load average $(cut -d' ' -f1-3 /proc/loadavg))"
	case $s in
	1) bench_callback_cost ;;
	2) bench_whole_program ;;
	3) bench_ingest ;;
	4) bench_memory ;;
	5) bench_log_size ;;
	6) bench_launcher ;;
	7) bench_watch_cost ;;
	8) bench_quick ;;
	*) echo "run-all.sh: no benchmark $s (1-8)" >&2; exit 2 ;;
	esac
	echo
done
echo "== verdicts ($(($(date +%s) - start)) s)"
cat "$verdicts"
