"""attach_pid_prog: a running program for test_attach_pid.py to attach to.

    attach_pid_prog.py loop OUTDIR [EXIT_CODE]    GC-heavy until OUTDIR/stop
    attach_pid_prog.py sleep OUTDIR SECONDS       blocked in time.sleep, then exits 7
    attach_pid_prog.py exit OUTDIR SECONDS        main thread blocked in time.sleep;
                                                  another thread os._exit(7)s after SECONDS

It writes OUTDIR/ready once running. At OUTDIR/stop the loop ends: the
collector off for good, its own gc.get_stats() into OUTDIR/stats-<pid>.json,
"done" on stdout, and exit with EXIT_CODE (0). A SIGUSR1 handler prints
"usr1" (a program's own signal handling, which an attach must leave as
it was). Output and exit status are fixed, so a test can see that the
attach changed neither.
"""
import gc
import json
import os
import signal
import sys
import time


def write_stats(outdir):
    gc.disable()
    stats = [[s["collections"], s["collected"], s["uncollectable"]]
             for s in gc.get_stats()]
    rec = {"pid": os.getpid(), "ppid": os.getppid(), "stats": stats}
    path = os.path.join(outdir, "stats-%d.json" % os.getpid())
    with open(path + ".tmp", "w") as f:
        json.dump(rec, f)
    os.rename(path + ".tmp", path)


def churn():
    """Cycles for every generation, and a few explicit collections."""
    keep = []
    for i in range(2000):
        a = []
        a.append([a])
        keep.append({"i": i})
    gc.collect(0)
    return len(keep)


def main():
    mode, outdir = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGUSR1, lambda *_: print("usr1", flush=True))
    open(os.path.join(outdir, "ready-%d" % os.getpid()), "w").close()
    if mode == "exit":
        import threading

        def leave():
            time.sleep(float(sys.argv[3]))
            print("exiting", flush=True)
            os._exit(7)
        threading.Thread(target=leave).start()
        time.sleep(600)
    if mode == "sleep":
        time.sleep(float(sys.argv[3]))
        print("slept", flush=True)
        sys.exit(7)
    stop = os.path.join(outdir, "stop")
    n = 0
    while not os.path.exists(stop):
        churn()
        n += 1
        if n % 10 == 0:
            gc.collect(n // 10 % 3)
    write_stats(outdir)
    print("done", flush=True)
    sys.exit(int(sys.argv[3]) if len(sys.argv) > 3 else 0)


main()
