"""bench/log_size.py: benchmark 5, gcmond's log bytes per hour for the
demo's workload (examples/demo.sh: gunicorn --workers 4 examples/app.py
under wrk -t2 -c16), once per --log-events mode (alerts, the default, and
all), extrapolated from the bytes the log grew by during the load.

Each mode: a real gcmond with --log-file (other flags at their defaults),
gunicorn with the agent loaded through the environment (as `pygcprofiler
run --socket` does), one warm-up second of wrk, then BENCH_LOG_SECONDS
(default 25) of wrk; the log's size is read just before and just after
that load, so process start lines (fixed costs, not per hour) are left
out; summaries are counted apart (60 an hour, each the size of the
largest one written). Prints the figures and a verdict against the
target (default mode under 10 MB/hour); asserts nothing.

Usage: log_size.py TMPDIR (run by bench/run-all.sh 5). Reads
GCMON_BUILDDIR, GCMON_SRCDIR, GCMON_PYTHON.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

SRCDIR = os.environ.get("GCMON_SRCDIR") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDDIR = os.environ.get("GCMON_BUILDDIR") or os.path.join(SRCDIR, "build")
PY = os.environ.get("GCMON_PYTHON") or "/usr/bin/python3"
GCMOND = os.path.join(BUILDDIR, "daemon", "gcmond")
AGENT_DIR = os.path.join(BUILDDIR, "agent")
SECONDS = float(os.environ.get("BENCH_LOG_SECONDS", "25"))
TARGET_MB_H = 10.0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def http_ok(url):
    try:
        urllib.request.urlopen(url, timeout=1).read()
        return True
    except OSError:
        return False


def stop(p, sig, timeout=30):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def one_mode(mode, tmp):
    d = os.path.join(tmp, "log-" + mode)
    os.makedirs(d, mode=0o700)
    sock, log = os.path.join(d, "gcmon.sock"), os.path.join(d, "gcmond.jsonl")
    gd = subprocess.Popen([GCMOND, "--quiet", "--socket", sock, "--log-file", log,
                           "--log-events", mode], stderr=subprocess.DEVNULL)
    g = None
    try:
        if not wait_for(lambda: os.path.exists(sock), 10):
            raise RuntimeError("gcmond did not start")
        env = dict(os.environ, PYTHONPATH=AGENT_DIR, GCMON_SOCKET=sock,
                   GCMON_RUN_ID="bench-log-" + mode)
        port = free_port()
        url = "http://127.0.0.1:%d/" % port
        g = subprocess.Popen([PY, "-m", "gunicorn", "--chdir", os.path.join(SRCDIR, "examples"),
                              "--workers", "4", "--bind", "127.0.0.1:%d" % port,
                              "--log-level", "warning", "app:app"],
                             env=env, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for(lambda: http_ok(url + "health"), 20):
            raise RuntimeError("gunicorn did not answer")
        subprocess.run(["wrk", "-t2", "-c16", "-d1s", url], capture_output=True, timeout=30)
        size0, t0 = os.path.getsize(log), time.monotonic()
        r = subprocess.run(["wrk", "-t2", "-c16", "-d%ds" % SECONDS, url],
                           capture_output=True, text=True, timeout=SECONDS + 60)
        size1, t1 = os.path.getsize(log), time.monotonic()
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", r.stdout).group(1))
    finally:
        if g is not None:
            stop(g, signal.SIGINT)
        time.sleep(0.5)
        stop(gd, signal.SIGTERM)
    with open(log, "rb") as f:
        raw = f.read()
    lines = [json.loads(x) for x in raw.splitlines() if x.strip()]
    final = [o for o in lines if o.get("type") == "summary" and o.get("final")]
    coll = final[-1]["summary"]["collections"] if final else 0
    # Summaries come once a minute (--summary-interval 60): a 25 s load
    # may hold none or one, so they are counted apart, at 60 an hour of
    # the size of the final one.
    load = [x for x in raw[size0:size1].splitlines() if x.strip()]
    summary_b = max((len(x) + 1 for x in raw.splitlines() if b'"type":"summary"' in x), default=0)
    other_b = sum(len(x) + 1 for x in load if b'"type":"summary"' not in x)
    kinds = {}
    for o in lines:
        k = o.get("type") + ("/" + o["alert"] if o.get("type") == "alert" else "")
        kinds[k] = kinds.get(k, 0) + 1
    per_h = other_b / (t1 - t0) * 3600 + 60 * summary_b
    print("   %-6s %8d bytes of other lines in %.1f s of load + 60 summaries of %d bytes, "
          "%.0f requests/s, %d collections in all: %.3f MB/hour; lines by kind %s"
          % (mode, other_b, t1 - t0, summary_b, rps, coll, per_h / 1e6,
             json.dumps(kinds, sort_keys=True)))
    shutil.rmtree(d, ignore_errors=True)
    return per_h


def main():
    tmp = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    if not os.access(GCMOND, os.X_OK):
        print("verdict: SKIP gcmond not built (%s)" % GCMOND)
        return
    if shutil.which("wrk") is None or subprocess.run(
            [PY, "-c", "import gunicorn"], capture_output=True).returncode != 0:
        print("verdict: SKIP log size: needs wrk and gunicorn for %s" % PY)
        return
    print("gunicorn --workers 4 examples/app.py under wrk -t2 -c16 -d%gs, gcmond defaults but --log-events:"
          % SECONDS)
    res = {m: one_mode(m, tmp) for m in ("alerts", "all")}
    print("verdict: %s log size: %.3f MB/hour at the default (target < %g), %.0f MB/hour with all (%.0fx)"
          % ("PASS" if res["alerts"] < TARGET_MB_H * 1e6 else "MISS", res["alerts"] / 1e6,
             TARGET_MB_H, res["all"] / 1e6, res["all"] / max(res["alerts"], 1)))


if __name__ == "__main__":
    main()
