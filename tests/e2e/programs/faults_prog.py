"""faults_prog: programs for test_faults.py.

    faults_prog.py MODE OUTDIR [ARG]

Each process writes OUTDIR/<pid>.json ({"pid", "role", "stats"}) as its
last act, after gc.disable(), so no collection can follow the snapshot
the tests compare the daemon's totals with.
"""
import gc
import json
import os
import signal
import sys
import time


def work(n):
    keep = []
    for i in range(n):
        a = []
        a.append([a])                  # a cycle for the collector
        keep.append({"i": i})
        if i % 400 == 0:
            gc.collect(i // 400 % 3)
    return len(keep)


def dump(outdir, role):
    gc.disable()
    rec = {"pid": os.getpid(), "role": role,
           "stats": [[s["collections"], s["collected"], s["uncollectable"]]
                     for s in gc.get_stats()]}
    path = os.path.join(outdir, "%d.json" % os.getpid())
    with open(path + ".tmp", "w") as f:
        json.dump(rec, f)
    os.rename(path + ".tmp", path)


def main():
    mode, outdir = sys.argv[1], sys.argv[2]
    arg = float(sys.argv[3]) if len(sys.argv) > 3 else 0
    if mode == "timed":
        # Collections for ARG seconds (the daemon may come and go).
        deadline = time.monotonic() + arg
        while time.monotonic() < deadline:
            work(2000)
            time.sleep(0.01)
        dump(outdir, "root")
    elif mode == "burst":
        for _ in range(int(arg)):
            gc.collect(0)
        dump(outdir, "root")
    elif mode == "killed_child":
        # A child that has flushed what it did, then dies by SIGKILL, and
        # a sibling that ends normally.
        work(3000)
        pids = []
        for role in ("victim", "sibling"):
            pid = os.fork()
            if pid == 0:
                work(6000)
                dump(outdir, role)
                if role == "victim":
                    while True:        # the parent kills it
                        time.sleep(1)
                time.sleep(0.3)        # os._exit: let a flush interval pass
                os._exit(0)
            pids.append(pid)
        victim = os.path.join(outdir, "%d.json" % pids[0])
        deadline = time.monotonic() + 30
        while not os.path.exists(victim) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(float(os.environ.get("FAULTS_FLUSH_WAIT", "0.5")))
        os.kill(pids[0], signal.SIGKILL)
        for pid in pids:
            os.waitpid(pid, 0)
        work(1000)
        dump(outdir, "root")
    else:
        sys.exit("unknown mode %r" % mode)


if __name__ == "__main__":
    main()
