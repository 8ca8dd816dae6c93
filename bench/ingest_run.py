"""bench/ingest_run.py: benchmark 3 (daemon ingest), run by bench/run-all.sh.

gcmond reads every monitored process's shared area (common/shm.h) on a
timer. For N = 1, 100, 1000 simulated processes (tests/e2e/shmarea.py: a
real `sleep` each, so that gcmond's /proc checks and pidfds see a process;
default ring, SHM_RING_DEFAULT slots) it starts a fresh real gcmond, pins
it to one CPU and this producer to another when there are two, waits until
gcmond has attached every area, then:

  idle   measures gcmond's CPU with N attached areas and no event (the
         cost of draining N rings every 10 ms when nothing happens);
  load   fills every ring through a shared mapping as fast as gcmond
         empties it (whole free spans at once, counters before the head,
         as the agent publishes), for a bounded time; then waits until
         gcmond's tail equals the head in every area, so every event
         counted below was drained by gcmond, and checks gcmond's own
         count of records ("events" per process) against what was written.

It prints events/s per wall second and per gcmond CPU-second (CPU from
/proc/<pid>/stat), CPU per million events and the idle CPU, and a verdict
line. It measures; it asserts nothing about speed.

    python3 ingest_run.py GCMOND TMPDIR
"""
import json
import mmap
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import shmarea  # noqa: E402

RUNS = tuple((int(n), float(t)) for n, t in (x.split(":") for x in os.environ.get(
    "BENCH_INGEST_RUNS", "1:4 100:4 1000:6").split()))
RING = int(os.environ.get("BENCH_INGEST_RING", "4096"))     # SHM_RING_DEFAULT
IDLE_S = float(os.environ.get("BENCH_INGEST_IDLE_S", "2"))
HZ = os.sysconf("SC_CLK_TCK")
Q = struct.Struct("<Q")
HEAD, TAIL, GEN0 = shmarea.OFF_HEAD, shmarea.OFF_TAIL, shmarea.OFF_GEN


def pin(cpu):
    if len(os.sched_getaffinity(0)) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    f = s[s.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / HZ


def request(sock, req, timeout=60):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock)
        body = json.dumps(req).encode()
        s.sendall(struct.pack("<IHBB", 8 + len(body), 7, 1, 0) + body)
        hdr = b""
        while len(hdr) < 8:
            hdr += s.recv(8 - len(hdr))
        n = struct.unpack("<IHBB", hdr)[0] - 8
        buf = b""
        while len(buf) < n:
            c = s.recv(n - len(buf))
            if not c:
                raise ConnectionError("gcmond closed")
            buf += c
        return json.loads(buf)
    finally:
        s.close()


# A ring's worth of records (1 us pauses, generation 0), shared by all.
BLOCK = memoryview(shmarea.SLOT.pack(time.monotonic_ns(), 1000, 0, 0, 0, 0, 0) * RING)


class Producer:
    """One area written through a shared mapping, generation 0 only."""

    def __init__(self, sock):
        self.a = shmarea.FakeArea(sock, ngen=3, ring=RING, run="bench-ingest").publish()
        self.mm = mmap.mmap(self.a.fd, self.a.size)
        self.count = 0

    def fill(self):
        """Publishes every free slot; the number published."""
        a, mm = self.a, self.mm
        k = a.ring - (a.head - self.tail())
        if k <= 0:
            return 0
        pos = a.head % a.ring
        first = min(k, a.ring - pos)
        sz = shmarea.SLOT.size
        off = a.ring_off + pos * sz
        mm[off:off + first * sz] = BLOCK[:first * sz]
        if k > first:
            mm[a.ring_off:a.ring_off + (k - first) * sz] = BLOCK[:(k - first) * sz]
        self.count += k
        # Counters first (count, pause_ns, max_pause_ns), then the head.
        mm[GEN0:GEN0 + shmarea.GEN.size] = shmarea.GEN.pack(
            self.count, self.count * 1000, 1000, 0, 0)
        a.head += k
        # One 8-byte store (pack_into would write the head byte by byte,
        # and gcmond could see it move backwards).
        mm[HEAD:HEAD + 8] = Q.pack(a.head)
        return k

    def tail(self):
        return Q.unpack(self.mm[TAIL:TAIL + 8])[0]

    def drained(self):
        return self.tail() == self.a.head

    def close(self):
        self.mm.close()
        self.a.kill()


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.05)


def one(gcmond, tmp, n, seconds):
    d = tempfile.mkdtemp(prefix="ingest-", dir=tmp)
    os.chmod(d, 0o700)
    sock = os.path.join(d, "gcmon.sock")
    err = open(os.path.join(d, "gcmond.stderr"), "wb")
    dm = subprocess.Popen(pin(0) + [gcmond, "--quiet", "--socket", sock],
                          stdout=subprocess.DEVNULL, stderr=err)
    prods = []
    try:
        wait(lambda: os.path.exists(sock) or dm.poll() is not None, 10, "the socket")
        if dm.poll() is not None:
            print("ingest: gcmond exited %s" % dm.returncode)
            return None
        prods = [Producer(sock) for _ in range(n)]
        wait(lambda: len(request(sock, {"cmd": "processes"})["processes"]) == n,
             60, "gcmond to attach %d areas" % n)
        c0 = cpu_s(dm.pid)
        time.sleep(IDLE_S)
        idle = (cpu_s(dm.pid) - c0) / IDLE_S
        c0, t0 = cpu_s(dm.pid), time.monotonic()
        end = t0 + seconds
        while time.monotonic() < end:
            for p in prods:
                p.fill()
        try:
            wait(lambda: all(p.drained() for p in prods), 60, "gcmond to drain")
        except RuntimeError:
            left = [(p.a.pid, p.a.head - p.tail())
                    for p in prods if not p.drained()]
            with open(err.name, "rb") as f:
                tail = f.read()[-600:].decode(errors="replace")
            raise RuntimeError("gcmond left %d areas undrained %s; its stderr:\n%s"
                               % (len(left), left[:3], tail))
        wall, cpu = time.monotonic() - t0, cpu_s(dm.pid) - c0
        events = sum(p.count for p in prods)
        got = sum(p["events"] for p in request(sock, {"cmd": "processes"})["processes"])
        return {"events": events, "gcmond_events": got, "wall_s": wall,
                "cpu_s": cpu, "idle_cpu": idle}
    finally:
        for p in prods:
            p.close()
        if dm.poll() is None:
            dm.terminate()
            try:
                dm.wait(30)
            except subprocess.TimeoutExpired:
                dm.kill()
                dm.wait()
        err.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    gcmond, tmp = sys.argv[1:3]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(n for n, _ in RUNS) * 2 + 256
    if soft < want and (hard == resource.RLIM_INFINITY or hard >= want):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    res = {}
    for n, secs in RUNS:
        print("-- N=%d areas (ring %d), %.0f s under load" % (n, RING, secs))
        try:
            res[n] = one(gcmond, tmp, n, secs)
        except (RuntimeError, OSError) as e:
            print("ingest: N=%d failed: %s" % (n, e))
            res[n] = None
    print("  %6s %12s %14s %14s %18s %8s" % ("areas", "M ev/s wall", "M ev/CPU-s",
                                             "CPU-s per M", "idle CPU (%/core)", "exact"))
    rates = []
    ok = True
    for n, _ in RUNS:
        r = res[n]
        if r is None:
            print("  %6d failed" % n)
            ok = False
            continue
        rate = r["events"] / r["cpu_s"] / 1e6 if r["cpu_s"] > 0 else float("inf")
        rates.append(rate)
        exact = r["gcmond_events"] == r["events"]
        ok = ok and exact
        print("  %6d %12.2f %14.2f %14.3f %18.1f %8s" % (
            n, r["events"] / r["wall_s"] / 1e6, rate,
            r["cpu_s"] / (r["events"] / 1e6), 100 * r["idle_cpu"],
            "yes" if exact else "NO %d/%d" % (r["gcmond_events"], r["events"])))
    if not ok or not rates:
        print("verdict: MISS ingest did not complete exactly for every N (see above)")
        return 0
    print("verdict: %s ingest %.2f M events per CPU-second (min over N; target >= 5),"
          " every written event drained" % ("PASS" if min(rates) >= 5 else "MISS", min(rates)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
