"""bench/ingest_run.py: the driver of benchmark 3 (daemon ingest), run by
bench/run-all.sh with the ingest generator it built from bench/ingest.c.

For N = 1, 100, 1000 simulated agents it starts a fresh real gcmond on a
private socket, pins it to one CPU and the generator to another when there
are two, lets ingest push EVENTS for a bounded time, and prints events/s
(per wall second and per gcmond CPU-second), CPU per million events and
gcmond's RSS against N and over the run. It measures; it asserts nothing.

    python3 ingest_run.py INGEST_BINARY GCMOND TMPDIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

RUNS = tuple((int(n), float(t)) for n, t in (x.split(":") for x in os.environ.get(
    "BENCH_INGEST_RUNS", "1:4 100:4 1000:10").split()))
BATCH = int(os.environ.get("BENCH_INGEST_BATCH", "256"))


def pin(cpu):
    if len(os.sched_getaffinity(0)) >= 2:
        return ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []
    return []


def one(ingest, gcmond, tmp, n, seconds):
    d = tempfile.mkdtemp(prefix="ingest-", dir=tmp)
    os.chmod(d, 0o700)
    sock = os.path.join(d, "gcmon.sock")
    err = open(os.path.join(d, "gcmond.stderr"), "wb")
    dm = subprocess.Popen(pin(0) + [gcmond, "--quiet", "--socket", sock],
                          stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and dm.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not os.path.exists(sock):
            print("ingest: gcmond did not create %s (exit %s)" % (sock, dm.poll()))
            return None
        time.sleep(0.2)
        r = subprocess.run(pin(1) + [ingest, "-s", sock, "-p", str(dm.pid), "-n", str(n),
                                     "-t", str(seconds), "-b", str(BATCH),
                                     "-i", str(max(0.5, seconds / 10))],
                           capture_output=True, text=True, timeout=seconds + 180)
        sys.stdout.write(r.stdout)
        if r.returncode != 0:
            sys.stdout.write(r.stderr)
            with open(err.name, "rb") as f:
                tail = f.read()[-800:].decode(errors="replace")
            print("ingest: N=%d failed (exit %d); gcmond stderr tail:\n%s"
                  % (n, r.returncode, tail))
            return None
        return json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        if dm.poll() is None:
            dm.terminate()
            try:
                dm.wait(10)
            except subprocess.TimeoutExpired:
                dm.kill()
                dm.wait()
        err.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ingest, gcmond, tmp = sys.argv[1:4]
    res = {}
    for n, secs in RUNS:
        print("-- N=%d agents, %.0f s, batches of %d events" % (n, secs, BATCH))
        res[n] = one(ingest, gcmond, tmp, n, secs)
    print("  %6s %12s %14s %14s %16s %16s" % ("agents", "M ev/s wall", "M ev/CPU-s",
                                              "CPU-s per M", "KiB/proc hello", "KiB/proc loaded"))
    ok = True
    rates = []
    for n, _ in RUNS:
        r = res[n]
        if r is None:
            print("  %6d failed" % n)
            ok = False
            continue
        rate = r["events"] / r["cpu_s"] / 1e6 if r["cpu_s"] > 0 else float("inf")
        rates.append(rate)
        loaded = r["rss_kib"][-1][1]
        print("  %6d %12.2f %14.2f %14.3f %16.1f %16.1f" % (
            n, r["events"] / r["wall_s"] / 1e6, rate, r["cpu_s"] / (r["events"] / 1e6),
            (r["rss_hello_kib"] - r["rss_idle_kib"]) / n,
            (loaded - r["rss_idle_kib"]) / n))
    nbig = max(n for n, _ in RUNS)
    big = res.get(nbig)
    if not ok or big is None:
        print("verdict: MISS ingest did not complete for every N (see above)")
        return 0
    per_proc = (big["rss_kib"][-1][1] - big["rss_idle_kib"]) / nbig
    s = big["rss_kib"]
    mid = s[len(s) // 2]
    growth = s[-1][1] - mid[1]
    print("  N=%d RSS over the run: %d KiB at t=%.1f s, %d KiB at t=%.1f s (%+d KiB)"
          % (nbig, mid[1], mid[0], s[-1][1], s[-1][0], growth))
    good = min(rates) >= 5 and per_proc <= 16 and growth <= 1000
    print("verdict: %s ingest %.2f M events per CPU-second (min over N; target >= 5),"
          " %.1f KiB per live process (target <= 16), RSS %+d KiB over the second half"
          " of the N=%d run" % ("PASS" if good else "MISS", min(rates), per_proc, growth, nbig))
    return 0


if __name__ == "__main__":
    sys.exit(main())
