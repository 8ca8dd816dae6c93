"""bench/memory.py: memory over a long run (benchmark 4 of bench/run-all.sh).

One fresh interpreter per variant runs gc.collect(0) 10^6 times and reports
its RSS after 10^4, 10^5 and 10^6 collections (and 3x10^6 but for the
Python callback, which would need gigabytes): with the agent (loaded through
its bootstrap, as pygcprofiler loads it) it should stay flat; with the
pure-Python callback (a tuple per collection, as the Python tool keeps) it
grows. "none" is the interpreter alone. Each child also counts
len(gc.get_objects()) before and after 10^5 collections: the agent must not
leave a Python object behind. It measures and prints; it asserts nothing.

    python3 memory.py --agent-dir DIR --socket PATH [--floor-dir DIR]
"""
import argparse
import gc
import json
import os
import subprocess
import sys
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
        import _gcmon               # loaded and registered by the bootstrap
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
            out["agent_stats"] = "%d events, %d dropped, ring %d, %d frames sent" % (
                sum(g["count"] for g in st["generations"]), st["dropped"],
                st["ring_capacity"], st["frames_sent"])
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child")
    ap.add_argument("--agent-dir", default="")
    ap.add_argument("--socket", default="")
    ap.add_argument("--floor-dir", default="")
    a = ap.parse_args()
    if a.child:
        return child(a.child)

    variants = ["none"]
    if a.floor_dir:
        variants.append("floor")
    have_agent = os.path.exists(os.path.join(a.agent_dir, "_gcmon.abi3.so"))
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
    # Flat: once the ring and the flusher's buffers are touched (by 10^6),
    # under 0.1 byte per collection, i.e. < 200 KB over 2x10^6 (page noise).
    ok = gla < 0.1 and oa == on
    print("verdict: %s agent RSS %+.3f B/collection from 10^6 to 3x10^6 (%+.2f from 10^4"
          " to 10^6; python %+.1f), objects left %d (none %d)"
          % ("PASS" if ok else "MISS", gla, ga, gp, oa, on))
    return 0


if __name__ == "__main__":
    sys.exit(main())
