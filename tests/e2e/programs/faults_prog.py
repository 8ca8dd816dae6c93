"""faults_prog: programs for test_faults.py.

    faults_prog.py MODE OUTDIR [ARG]

Each process writes OUTDIR/<pid>.json ({"pid", "role", "stats"}) as its
last act, after gc.disable(), so no collection can follow the snapshot
the tests compare the daemon's totals with.
"""
import gc
import json
import os
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
    arg = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    if mode == "until":
        # Collections until the test creates OUTDIR/stop (at most 60 s);
        # OUTDIR/started says 20 rounds (some 100 collections) are done.
        deadline = time.monotonic() + 60
        rounds = 0
        while not os.path.exists(os.path.join(outdir, "stop")):
            if time.monotonic() > deadline:
                sys.exit("faults_prog: nobody created %s/stop" % outdir)
            work(2000)
            rounds += 1
            if rounds == 20:
                open(os.path.join(outdir, "started"), "w").close()
            time.sleep(0.01)
        dump(outdir, "root")
    elif mode == "burst":
        for _ in range(arg):
            gc.collect(0)
        dump(outdir, "root")
    elif mode == "killed_child":
        # Two forked children: a victim that dumps its stats, says its
        # pid on stdout and waits for the test to SIGKILL it, and a
        # sibling that ends normally.
        work(3000)
        pids = []
        for role in ("victim", "sibling"):
            pid = os.fork()
            if pid == 0:
                work(6000)
                dump(outdir, role)
                if role == "victim":
                    time.sleep(60)     # bounded: the test kills it long before
                    os._exit(3)
                sys.exit(0)            # a normal interpreter exit
            pids.append(pid)
        print(pids[0], flush=True)
        for pid in pids:
            os.waitpid(pid, 0)
        work(1000)
        dump(outdir, "root")
    else:
        sys.exit("unknown mode %r" % mode)


if __name__ == "__main__":
    main()
