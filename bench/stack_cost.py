"""bench/stack_cost.py: what capturing the Python stack costs the agent's
callback (in benchmark 1 of bench/run-all.sh, once per CPython 3.10-3.13, the
agent loaded through its bootstrap and writing to a real gcmond).

It calls _gcmon.callback("start"/"stop") directly, at a given Python stack
depth, with an info dict saying generation 0 (no capture: the path every
young collection takes, which must not have changed) or generation 2
(a capture: walk, code ids, one stack slot). Warm: the same frames every
time (3.11+ has materialised their frame objects after the first walk).
Cold: a fresh call chain for each capture, so on 3.11+ the walk
materialises a frame object for each frame (the worst case); the chain's
own cost is measured without a capture and subtracted. Rounds
interleaved, minimum kept. It measures and prints; it never asserts.

    python3 stack_cost.py [--n N] [--rounds N]
"""
import argparse
import sys
from time import perf_counter_ns

from gcmon import _gcmon  # loaded by the bootstrap (agent/gcmon/)

G0 = {"generation": 0, "collected": 0, "uncollectable": 0}
G2 = {"generation": 2, "collected": 0, "uncollectable": 0}
cb = _gcmon.callback


def at_depth(depth, fn, *args):
    if depth <= 1:
        return fn(*args)
    return at_depth(depth - 1, fn, *args)


def warm(info, n):
    t = perf_counter_ns()
    for _ in range(n):
        cb("start", info)
        cb("stop", info)
    return (perf_counter_ns() - t) / n


def one(info):
    cb("start", info)
    cb("stop", info)


def cold(info, n, depth):
    t = perf_counter_ns()
    for _ in range(n):
        at_depth(depth, one, info)
    return (perf_counter_ns() - t) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    if not _gcmon.stats()["started"]:
        print("verdict: SKIP the agent did not start (no gcmond socket?)")
        return
    v = "%d.%d.%d" % sys.version_info[:3]
    print("CPython %s, %d calls x %d rounds, ns per start+stop pair (min)"
          % (v, a.n, a.rounds))
    print("| depth | gen 0 (no capture) | gen 2 warm | capture warm | "
          "chain alone | gen 2 cold | capture cold |")
    worst = 0
    for depth in (2, 10, 32, 64):
        best = {}
        for r in range(a.rounds):
            runs = [("g0", lambda: at_depth(depth, warm, G0, a.n)),
                    ("g2", lambda: at_depth(depth, warm, G2, a.n)),
                    ("c0", lambda: cold(G0, a.n, depth)),
                    ("c2", lambda: cold(G2, a.n, depth))]
            if r % 2:
                runs.reverse()
            for k, fn in runs:
                t = fn()
                best[k] = min(best.get(k, t), t)
        cap_w = best["g2"] - best["g0"]
        cap_c = best["c2"] - best["c0"]
        worst = max(worst, cap_c)
        print("| %d | %.0f | %.0f | %+.0f | %.0f | %.0f | %+.0f |" % (
            depth, best["g0"], best["g2"], cap_w, best["c0"], best["c2"], cap_c))
    st = _gcmon.stats()
    print("events dropped by a full ring: %d (stacks beyond the 128-slot "
          "stack ring are walked, then refused)" % st["dropped"])
    print("verdict: CPython %s: a capture costs at most %.1f us (cold, "
          "deepest); gen-0 collections never capture" % (v, worst / 1000))


if __name__ == "__main__":
    main()
