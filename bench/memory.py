"""bench/memory.py: memory (benchmark 4 of bench/run-all.sh), two parts.

a) Over a long run. One fresh interpreter per variant runs gc.collect(0)
10^6 times and reports its RSS after 10^4, 10^5 and 10^6 collections (and
3x10^6 but for the Python callback, which would need gigabytes): with the
agent (loaded through its bootstrap, as pygcprofiler loads it) it should
stay flat; with the pure-Python callback (a tuple per collection, as the
Python tool keeps) it grows. "none" is the interpreter alone. Each child
also counts len(gc.get_objects()) before and after 10^5 collections: the
agent must not leave a Python object behind.

b) gcmond with many live monitored processes (--gcmond): a fresh gcmond
and N shared areas (tests/e2e/shmarea.py: a real `sleep` each, ring of
SHM_RING_DEFAULT slots), each with collections of every generation (pauses
spread over the histogram's range); once gcmond has drained them all, its
RssAnon (private: the aggregates) and RssFile/RssShmem (the mapped areas,
shared with the processes) from /proc/<pid>/status, per process, then the
same after every ring has been filled once (all its pages touched). Also
an area's own cost: its file size, the blocks it holds and what of it is
resident in gcmond's mapping (/proc/<pid>/smaps).

It measures and prints; it asserts nothing.

    python3 memory.py --agent-dir DIR --socket PATH [--floor-dir DIR]
    python3 memory.py --gcmond GCMOND [--areas N]
"""
import argparse
import gc
import json
import os
import random
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from time import perf_counter

CHECKPOINTS = (10**4, 10**5, 10**6)
LONG = 3 * 10**6        # then on, without the Python callback (it would take GBs)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(variant):
    events = []
    starts = [0.0]

    def py_callback(phase, info):
        t = perf_counter()
        if phase == "start":
            starts[0] = t
        else:
            events.append((starts[0], t - starts[0], info["generation"],
                           info["collected"], info["uncollectable"]))

    if variant == "python":
        gc.callbacks.append(py_callback)
    elif variant == "floor":
        import gcfloor
        gc.callbacks.append(gcfloor.noop)
    elif variant == "agent":
        from gcmon import _gcmon    # loaded and registered by the bootstrap
        if _gcmon.callback not in gc.callbacks:
            gc.callbacks.append(_gcmon.callback)
    out = {"variant": variant}
    c = gc.collect
    out["rss0"] = rss_bytes()
    done = 0
    rss = {}
    for cp in CHECKPOINTS:
        for _ in range(cp - done):
            c(0)
        done = cp
        rss[cp] = rss_bytes()
    if variant != "python":
        for _ in range(LONG - done):
            c(0)
        rss[LONG] = rss_bytes()
    out["rss"] = rss
    # Then objects: the lists get_objects() returns are not in themselves.
    objs0 = len(gc.get_objects())
    for _ in range(10**5):
        c(0)
    out["objects_delta"] = len(gc.get_objects()) - objs0
    if variant == "agent" and hasattr(_gcmon, "stats"):
        try:
            st = _gcmon.stats()
            out["agent_stats"] = "%d events, %d dropped, ring %d, %d in the ring" % (
                sum(g["count"] for g in st["generations"]), st["dropped"],
                st["ring_capacity"], st["ring_count"])
        except Exception as e:
            out["agent_stats"] = "failed: %s" % e
    print(json.dumps(out))


def run(variant, a):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    for k in [k for k in env if k.startswith("GCMON_")]:
        del env[k]
    if variant == "agent":
        env["PYTHONPATH"] = a.agent_dir
        env["GCMON_SOCKET"] = a.socket
        env["GCMON_RUN_ID"] = "bench-memory"
    elif variant == "floor":
        env["PYTHONPATH"] = a.floor_dir
    r = subprocess.run([sys.executable, __file__, "--child", variant], env=env,
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        print("memory: %s child failed (exit %d): %s" % (variant, r.returncode,
                                                         r.stderr.strip()[-500:]))
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---- b) gcmond with N live areas ------------------------------------------

def _request(sock, req, timeout=60):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock)
        body = json.dumps(req).encode()
        s.sendall(struct.pack("<IHBB", 8 + len(body), 7, 1, 0) + body)
        buf = b""
        while len(buf) < 8 or len(buf) < struct.unpack_from("<I", buf)[0]:
            c = s.recv(1 << 20)
            if not c:
                raise ConnectionError("gcmond closed the connection")
            buf += c
        return json.loads(buf[8:])
    finally:
        s.close()


def _status_kib(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(v.split()[0])
    return out


def _area_maps_kib(pid, agent_dir):
    """(mappings, Size KiB, Rss KiB) of gcmond's mappings of area files."""
    n = size = rss = 0
    inside = False
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                inside = line.rstrip().endswith(".gcmon") and agent_dir in line
                n += inside
            elif inside and first == "Size:":
                size += int(line.split()[1])
            elif inside and first == "Rss:":
                rss += int(line.split()[1])
    return n, size, rss


def _wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.1)


def gcmond_areas(gcmond, n):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "tests", "e2e"))
    import shmarea
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 3 * n + 256
    if soft < want and (hard == resource.RLIM_INFINITY or hard >= want):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    d = tempfile.mkdtemp(prefix="gcmon-mem-")
    sock = os.path.join(d, "gcmon.sock")
    err = open(os.path.join(d, "gcmond.stderr"), "wb")
    dm = subprocess.Popen([gcmond, "--quiet", "--socket", sock],
                          stdout=subprocess.DEVNULL, stderr=err)
    areas = []
    rnd = random.Random(11)
    try:
        _wait(lambda: os.path.exists(sock) or dm.poll() is not None, 10, "the socket")
        time.sleep(0.3)
        idle = _status_kib(dm.pid)
        events = 0
        for i in range(n):
            a = shmarea.FakeArea(sock, ring=shmarea.SHM_RING_DEFAULT,
                                 run="mem%d" % (i % 10)).publish()
            for gen, k in ((0, 20), (1, 4), (2, 1)):
                for _ in range(k):
                    a.collect(gen, int(10 ** rnd.uniform(4, 8)), collected=rnd.randrange(100))
            events += 25
            areas.append(a)

        def drained():
            ps = _request(sock, {"cmd": "processes"})["processes"]
            return len(ps) == n and sum(p["events"] for p in ps) == events
        _wait(drained, 120, "gcmond to drain %d areas" % n)
        time.sleep(0.5)
        some = _status_kib(dm.pid)
        maps_some = _area_maps_kib(dm.pid, shmarea.agent_dir(sock))
        st = os.stat(areas[0].path)
        for a in areas:         # every ring slot written once: all pages touched
            a.burst(0, a.ring, 1000)
        _wait(lambda: all(a.read_u64(shmarea.OFF_TAIL) == a.head for a in areas),
              120, "gcmond to drain every full ring")
        time.sleep(0.5)
        full = _status_kib(dm.pid)
        maps_full = _area_maps_kib(dm.pid, shmarea.agent_dir(sock))
        st_full = os.stat(areas[0].path)
        exact = sum(
            p["events"] for p in _request(sock, {"cmd": "processes"})["processes"]) \
            == events + n * shmarea.SHM_RING_DEFAULT
    finally:
        for a in areas:
            a.kill()
        if dm.poll() is None:
            dm.terminate()
            try:
                dm.wait(60)
            except subprocess.TimeoutExpired:
                dm.kill()
                dm.wait()
        err.close()
        shutil.rmtree(d, ignore_errors=True)
    print("gcmond with %d live areas (ring %d slots, %d KiB file each): KiB, and KiB"
          " per live process over gcmond idle" % (n, shmarea.SHM_RING_DEFAULT, st.st_size // 1024))
    print("  %-28s %9s %9s %9s %9s %11s %11s" % ("state", "VmRSS", "RssAnon", "RssFile",
                                                "RssShmem", "anon/proc", "mapped/proc"))
    anon = {}
    for name, s_, m in (("idle (no area)", idle, None), ("25 collections each", some, maps_some),
                        ("+ every ring filled once", full, maps_full)):
        per = (s_["RssAnon"] - idle["RssAnon"]) / n
        anon[name] = per
        mapped = (s_["RssFile"] + s_["RssShmem"] - idle["RssFile"] - idle["RssShmem"]) / n
        print("  %-28s %9d %9d %9d %9d %11.1f %11.1f" % (
            name, s_["VmRSS"], s_["RssAnon"], s_["RssFile"], s_["RssShmem"],
            per if m else 0, mapped if m else 0))
    print("  one area: file %d KiB, %d KiB of blocks after 25 collections, %d KiB after"
          " its ring was filled; resident in gcmond's mappings: %.1f then %.1f KiB per area"
          " (%d mappings)" % (st.st_size // 1024, st.st_blocks // 2, st_full.st_blocks // 2,
                              maps_some[2] / max(1, maps_some[0]),
                              maps_full[2] / max(1, maps_full[0]), maps_full[0]))
    worst = max(anon["25 collections each"], anon["+ every ring filled once"])
    print("verdict: %s gcmond RssAnon %.1f KiB per live process (target <= 16; %d areas),"
          " %s" % ("PASS" if worst <= 16 and exact else "MISS", worst, n,
                   "every record drained" if exact else "records MISSING"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child")
    ap.add_argument("--agent-dir", default="")
    ap.add_argument("--socket", default="")
    ap.add_argument("--floor-dir", default="")
    ap.add_argument("--gcmond", default="")
    ap.add_argument("--areas", type=int, default=1000)
    a = ap.parse_args()
    if a.child:
        return child(a.child)
    if a.gcmond:
        return gcmond_areas(a.gcmond, a.areas)

    variants = ["none"]
    if a.floor_dir:
        variants.append("floor")
    have_agent = os.path.exists(os.path.join(a.agent_dir, "gcmon", "_gcmon.abi3.so"))
    if have_agent:
        variants.append("agent")
    else:
        print("memory: agent not built in %r: agent variant skipped" % a.agent_dir)
    variants.append("python")
    res = {}
    for v in variants:
        res[v] = run(v, a)
    print("CPython %s: RSS (KiB) after N gc.collect(0); growth in bytes per collection"
          " from 10^4 to 10^6 and from 10^6 to 3x10^6; objects left by 10^5 collections"
          % sys.version.split()[0])
    print("  %-7s %8s %8s %8s %8s %8s %12s %12s %8s" % (
        "variant", "start", "10^4", "10^5", "10^6", "3x10^6", "B/c 4->6", "B/c 6->3x6",
        "objects"))
    growth = {}
    for v in variants:
        r = res[v]
        if r is None:
            print("  %-7s failed" % v)
            continue
        rs = {int(k): x for k, x in r["rss"].items()}
        g = (rs[10**6] - rs[10**4]) / (10**6 - 10**4)
        gl = (rs[LONG] - rs[10**6]) / (LONG - 10**6) if LONG in rs else None
        growth[v] = (g, r["objects_delta"], gl)
        print("  %-7s %8d %8d %8d %8d %8s %12.2f %12s %8d" % (
            v, r["rss0"] // 1024, rs[10**4] // 1024, rs[10**5] // 1024,
            rs[10**6] // 1024, rs[LONG] // 1024 if LONG in rs else "-", g,
            "%.3f" % gl if gl is not None else "-", r["objects_delta"]))
        if "agent_stats" in r:
            print("  agent stats:", r["agent_stats"])
    if "agent" not in growth:
        print("verdict: SKIP agent not measured; python callback grows %.1f B/collection"
              % growth.get("python", (float("nan"), 0))[0])
        return 0
    ga, oa, gla = growth["agent"]
    gn, on, _ = growth["none"]
    gp = growth["python"][0]
    # Flat: once the ring's pages are touched (by 10^6),
    # under 0.1 byte per collection, i.e. < 200 KB over 2x10^6 (page noise).
    ok = gla < 0.1 and oa == on
    print("verdict: %s agent RSS %+.3f B/collection from 10^6 to 3x10^6 (%+.2f from 10^4"
          " to 10^6; python %+.1f), objects left %d (none %d)"
          % ("PASS" if ok else "MISS", gla, ga, gp, oa, on))
    return 0


if __name__ == "__main__":
    sys.exit(main())
