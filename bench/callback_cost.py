"""bench/callback_cost.py: what one garbage collection costs with each kind
of gc callback, measured side by side in one interpreter (benchmark 1 of
bench/run-all.sh, which runs it once per CPython with gcfloor built for
that interpreter and the agent loaded through its bootstrap).

Variants: no callback; gcfloor.noop (a C callback that does nothing: the
floor, what CPython spends to call any callback); gcfloor.record (c_rec, a
reference and not the agent: clock, three dict reads, one ring slot, the
least a C recorder does); _gcmon.callback (the agent, if it is loaded); a
pure-Python callback doing what the Python tool does (perf_counter() and a
tuple appended to a list). Workloads: gc.collect(0)
on a nearly empty generation 0, and a loop making cyclic garbage so the
collector runs by itself. Rounds are interleaved (order reversed every
other round) and the minimum is kept, so drift of a noisy machine hits
every variant alike. It measures and prints; it never asserts a timing.

    python3 callback_cost.py [--collect N] [--objects N] [--rounds N]
"""
import argparse
import gc
import statistics
import sys
import time
from time import perf_counter, perf_counter_ns

_starts = [0.0]
_events = []


def py_callback(phase, info):
    """What the pure-Python tool does per collection."""
    t = perf_counter()
    if phase == "start":
        _starts[0] = t
    else:
        _events.append((_starts[0], t - _starts[0], info["generation"],
                        info["collected"], info["uncollectable"]))


class Node:
    def __init__(self):
        self.me = self


def collections():
    return sum(s["collections"] for s in gc.get_stats())


def bench_collect0(n):
    c = gc.collect
    t = perf_counter_ns()
    for _ in range(n):
        c(0)
    return (perf_counter_ns() - t) / n


def bench_cyclic(n):
    before = collections()
    t = perf_counter_ns()
    for _ in range(n):
        Node()
    dt = perf_counter_ns() - t
    return dt, collections() - before


def find_variants():
    variants = {"none": None}
    try:
        import gcfloor
        variants["floor"] = gcfloor.noop
        variants["c_rec"] = gcfloor.record
    except ImportError as e:
        print("callback_cost: no gcfloor module (%s); floor skipped" % e)
    agent = None
    try:
        from gcmon import _gcmon
        agent = _gcmon
        variants["agent"] = _gcmon.callback
    except (ImportError, AttributeError) as e:
        print("callback_cost: agent not loaded (%s); agent skipped" % e)
    variants["python"] = py_callback
    # The bootstrap registered the agent already: take it out so that
    # "none" and "floor" run without it.
    if agent is not None:
        while agent.callback in gc.callbacks:
            gc.callbacks.remove(agent.callback)
    return variants, agent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--collect", type=int, default=100000)
    ap.add_argument("--objects", type=int, default=500000)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()

    variants, agent = find_variants()
    c0 = {k: [] for k in variants}
    cyc = {k: [] for k in variants}
    ncyc = {k: [] for k in variants}
    bench_collect0(1000)            # warm up
    for r in range(a.rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(list(variants)))
        for k in order:
            cb = variants[k]
            gc.collect()
            if cb is not None:
                gc.callbacks.append(cb)
            try:
                c0[k].append(bench_collect0(a.collect))
                dt, n = bench_cyclic(a.objects)
            finally:
                if cb is not None:
                    gc.callbacks.remove(cb)
            cyc[k].append(dt)
            ncyc[k].append(n)
            _events.clear()

    ver = sys.version.split()[0]
    print("CPython %s (%s): %d x gc.collect(0), %d cyclic objects, %d rounds, min (median)"
          % (ver, sys.executable, a.collect, a.objects, a.rounds))
    base0 = min(c0["none"])
    basec = min(cyc["none"])
    print("  %-7s %18s %12s %26s %8s" % ("variant", "collect(0) ns", "over none",
                                          "cyclic loop ns/collection", "over none"))
    marg = {}
    for k in variants:
        n = max(1, min(ncyc[k]))
        m0 = min(c0[k])
        mc = min(cyc[k]) / n
        marg[k] = m0 - base0
        print("  %-7s %8.0f (%6.0f) %12.0f %12.0f (%6.0f) %12.0f   [%d collections]"
              % (k, m0, statistics.median(c0[k]), m0 - base0, mc,
                 statistics.median(cyc[k]) / n, (min(cyc[k]) - basec) / n, n))
    dropped = None
    if agent is not None and hasattr(agent, "stats"):
        try:
            st = agent.stats()
            dropped = st.get("dropped")
            print("  agent: %d events recorded, %s dropped (ring %s, area %s)"
                  % (sum(g["count"] for g in st.get("generations", [])), dropped,
                     st.get("ring_capacity"), st.get("path")))
        except Exception as e:      # report, do not hide the figures
            print("  agent stats failed:", e)
    if dropped:
        print("  note: the ring overflowed, so part of the agent figure is its"
              " drop path (set GCMON_RING larger)")
    if "floor" not in variants:
        print("verdict: SKIP %s: no floor module" % ver)
        return 0
    fl = min(c0["floor"])
    print("  floor marginal %.0f ns; python marginal over floor %.0f ns"
          % (fl - base0, marg["python"] - marg["floor"]))
    if "agent" not in variants:
        print("verdict: SKIP %s: agent not loaded (python/floor = %.2f)"
              % (ver, min(c0["python"]) / fl))
        return 0
    total = min(c0["agent"]) / fl
    am = marg["agent"] - marg["floor"]
    pm = marg["python"] - marg["floor"]
    frac = am / pm if pm > 0 else float("inf")
    ok = total <= 1.2 and frac <= 0.2
    print("  agent/floor = %.3f (target <= 1.2); python/floor = %.3f; "
          "agent marginal %.0f ns = %.3f of python marginal %.0f ns (target <= 0.2)"
          % (total, min(c0["python"]) / fl, am, frac, pm))
    print("verdict: %s %s: agent %.2fx floor, marginal %.2f of python's (%s dropped)"
          % ("PASS" if ok else "MISS", ver, total, frac, dropped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
