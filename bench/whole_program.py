"""bench/whole_program.py: benchmark 2, whole programs plain and monitored
(run through bench/whole_program.sh by bench/run-all.sh).

a) bench/gc_work.py (fixed work) plain vs `pygcprofiler run --stats-only`,
   runs interleaved (the order flips each pair); median of the program's
   own elapsed and CPU time, and of the whole command's wall time (which
   adds the launcher's private gcmond start-up and the report).
b) gunicorn --workers 4 (examples/app.py) under wrk on loopback, plain vs
   monitored, interleaved rounds of bounded length: requests/s and p99
   latency, median ratio.
c) the same, `pygcprofiler run` without and with --requests side by side
   (what recording and joining every request costs the server).
It measures and prints; it asserts nothing.

    python3 whole_program.py TMPDIR
"""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SRCDIR = os.environ["GCMON_SRCDIR"]
BUILDDIR = os.environ["GCMON_BUILDDIR"]
PY = os.environ.get("GCMON_PYTHON", "/usr/bin/python3")
PYGCPROFILER = os.path.join(BUILDDIR, "client", "pygcprofiler")
GCMOND = os.path.join(BUILDDIR, "daemon", "gcmond")
AGENT_DIR = os.path.join(BUILDDIR, "agent")
HERE = os.path.dirname(os.path.abspath(__file__))
PAIRS = int(os.environ.get("BENCH_WP_PAIRS", "9"))
ROUNDS = os.environ.get("BENCH_WP_ROUNDS", "900")
WRK_S = int(os.environ.get("BENCH_WRK_SECONDS", "4"))
WRK_ROUNDS = int(os.environ.get("BENCH_WRK_ROUNDS", "6"))


def env():
    e = dict(os.environ)
    for k in [k for k in e if k.startswith("GCMON_") or k == "PYTHONPATH"]:
        del e[k]
    e["GCMON_GCMOND"] = GCMOND
    e["GCMON_AGENT_DIR"] = AGENT_DIR
    return e


def monitored(args):
    return [PYGCPROFILER, "run", "--stats-only", "--python", PY] + args


def run_script(cmd, tmp):
    out = os.path.join(tmp, "wp.out")
    t = time.perf_counter()
    with open(out, "wb") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env(),
                           timeout=120, cwd=tmp)
    wall = time.perf_counter() - t
    text = open(out, errors="replace").read()
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (cmd[0], r.returncode, text[-600:]))
    m = [line for line in text.splitlines() if line.startswith('{"work_s"')]
    if not m:
        raise RuntimeError("no result line from %s: %s" % (cmd, text[-600:]))
    d = json.loads(m[0])
    d["wall"] = wall
    d["report"] = text
    return d


def script_bench(tmp):
    plain = [PY, os.path.join(HERE, "gc_work.py"), ROUNDS]
    mon = monitored([os.path.join(HERE, "gc_work.py"), ROUNDS])
    res = {"plain": [], "monitored": []}
    run_script(plain, tmp)          # warm the page cache
    for i in range(PAIRS):
        order = ("plain", "monitored") if i % 2 == 0 else ("monitored", "plain")
        for k in order:
            res[k].append(run_script(plain if k == "plain" else mon, tmp))
    last = res["monitored"][-1]["report"]
    seen = re.search(r"Total GC collections: [^\n]*", last)
    print("a) gc_work.py %s rounds (%d collections), %d interleaved pairs, median:"
          % (ROUNDS, res["plain"][0]["collections"], PAIRS))
    rat = {}
    for key, what in (("work_s", "program elapsed"), ("cpu_s", "program CPU"),
                      ("wall", "whole command wall")):
        p = statistics.median(x[key] for x in res["plain"])
        m = statistics.median(x[key] for x in res["monitored"])
        pr = statistics.median(b[key] / a[key] for a, b in zip(res["plain"], res["monitored"]))
        rat[key] = pr
        pl = [x[key] for x in res["plain"]]
        mo = [x[key] for x in res["monitored"]]
        print("   %-20s plain %.3f s, monitored %.3f s: ratio of medians %.4f,"
              " median of pair ratios %.4f, ratio of minimums %.4f" % (
                  what, p, m, m / p, pr, min(mo) / min(pl)))
        print("   %-20s spread (noise): plain %.3f-%.3f s, monitored %.3f-%.3f s"
              % ("", min(pl), max(pl), min(mo), max(mo)))
    if seen:
        print("   (monitored report line: %s)" % seen.group(0).strip()[:120])
    ok = rat["work_s"] <= 1.01
    print("verdict: %s script: program elapsed ratio %.4f (median of pair ratios; target"
          " <= 1.01), CPU ratio %.4f, whole command %.4f" % ("PASS" if ok else "MISS", rat["work_s"], rat["cpu_s"],
                                   rat["wall"]))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_http(url, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def unit(v, u):
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[u]


def wrk_round(monitor, tmp):
    port = free_port()
    args = ["-m", "gunicorn", "--chdir", os.path.join(SRCDIR, "examples"),
            "--workers", "4", "--bind", "127.0.0.1:%d" % port, "--log-level", "warning",
            "app:app"]
    # monitor: False plain, True pygcprofiler run, "requests" with
    # --requests (every request recorded and joined by gcmond).
    cmd = monitored(args) if monitor else [PY] + args
    if monitor == "requests":
        cmd[2:2] = ["--requests"]
    log = open(os.path.join(tmp, "gunicorn.log"), "wb")
    g = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env(), cwd=tmp,
                         start_new_session=True)
    try:
        url = "http://127.0.0.1:%d/" % port
        if not wait_http(url + "health", g):
            raise RuntimeError("gunicorn did not answer (%s)" % " ".join(cmd))
        subprocess.run(["wrk", "-t2", "-c16", "-d1s", url], capture_output=True, timeout=30)
        r = subprocess.run(["wrk", "-t2", "-c16", "-d%ds" % WRK_S, "--latency", url],
                           capture_output=True, text=True, timeout=WRK_S + 30)
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", r.stdout).group(1))
        m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", r.stdout)
        p99 = unit(m.group(1), m.group(2))
        errs = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: ([^\n]*)", r.stdout)
        if errs:
            print("   wrk: %s" % errs.group(0))
        return rps, p99
    finally:
        if g.poll() is None:
            os.kill(g.pid, signal.SIGINT)
            try:
                g.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(g.pid, signal.SIGKILL)
                g.wait()
        log.close()


def wrk_bench(tmp):
    if shutil.which("wrk") is None:
        print("verdict: SKIP gunicorn: wrk not installed (apt-get install wrk)")
        return
    if subprocess.run([PY, "-c", "import gunicorn"], capture_output=True).returncode != 0:
        print("verdict: SKIP gunicorn: not installed for %s" % PY)
        return
    res = {False: [], True: []}
    for i in range(WRK_ROUNDS):
        for mon in ((False, True) if i % 2 == 0 else (True, False)):
            res[mon].append(wrk_round(mon, tmp))
    print("b) gunicorn --workers 4 examples/app.py, wrk -t2 -c16 -d%ds, %d interleaved rounds:"
          % (WRK_S, WRK_ROUNDS))
    for mon in (False, True):
        print("   %-9s req/s %s   p99 ms %s" % (
            "monitored" if mon else "plain",
            " ".join("%.0f" % x[0] for x in res[mon]),
            " ".join("%.2f" % x[1] for x in res[mon])))
    # Rounds run in pairs (plain, monitored) next to each other: the ratio
    # within a pair cancels the drift of a shared machine between pairs.
    rps = statistics.median(m[0] / p[0] for p, m in zip(res[False], res[True]))
    p99 = statistics.median(m[1] / p[1] for p, m in zip(res[False], res[True]))
    print("   median of pair ratios: requests/s %.4f, p99 %.3f; ratio of medians:"
          " requests/s %.4f; ratio of maximums: requests/s %.4f" % (
              rps, p99, statistics.median(x[0] for x in res[True]) /
              statistics.median(x[0] for x in res[False]),
              max(x[0] for x in res[True]) / max(x[0] for x in res[False])))
    print("verdict: %s gunicorn: requests/s ratio %.4f (target >= 0.995), p99 latency ratio %.3f"
          % ("PASS" if rps >= 0.995 else "MISS", rps, p99))
    # --requests beside the same monitoring without it (issue 24's bench).
    req = {True: [], "requests": []}
    for i in range(WRK_ROUNDS):
        for mon in ((True, "requests") if i % 2 == 0 else ("requests", True)):
            req[mon].append(wrk_round(mon, tmp))
    print("c) the same under pygcprofiler run, without and with --requests:")
    for mon in (True, "requests"):
        print("   %-14s req/s %s   p99 ms %s" % (
            "--requests" if mon == "requests" else "monitored",
            " ".join("%.0f" % x[0] for x in req[mon]),
            " ".join("%.2f" % x[1] for x in req[mon])))
    rps = statistics.median(r[0] / m[0] for m, r in zip(req[True], req["requests"]))
    p99 = statistics.median(r[1] / m[1] for m, r in zip(req[True], req["requests"]))
    print("verdict: %s gunicorn --requests: requests/s ratio %.4f (target >= 0.99), "
          "p99 latency ratio %.3f" % ("PASS" if rps >= 0.99 else "MISS", rps, p99))


def main():
    tmp = tempfile.mkdtemp(prefix="wp-", dir=sys.argv[1] if len(sys.argv) > 1 else None)
    try:
        if not (os.access(PYGCPROFILER, os.X_OK) and os.access(GCMOND, os.X_OK)
                and os.path.exists(os.path.join(AGENT_DIR, "gcmon", "_gcmon.abi3.so"))):
            print("verdict: SKIP whole program: needs %s, %s and the agent in %s"
                  % (PYGCPROFILER, GCMOND, AGENT_DIR))
            return 0
        for f in (script_bench, wrk_bench):
            try:
                f(tmp)
            except (RuntimeError, subprocess.TimeoutExpired, AttributeError) as e:
                print("verdict: MISS %s failed: %s" % (f.__name__, e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
