"""agent_prog: a Python program the agent tests run with and without the agent.

    agent_prog.py MODE OUTDIR [ARG]

Every process involved writes OUTDIR/stats-<pid>.json as its last act:
pid, ppid and gc.get_stats(), taken after gc.disable() so that no
collection can follow it. Output and exit status are deterministic, so
a run with the agent can be compared with a run without it.
"""
import gc
import json
import os
import subprocess
import sys
import time

# A plain os.fork child ends with os._exit: the agent loses at most one
# flush interval, so it waits a few before leaving (the tests use 50 ms).
# multiprocessing children do not wait: the agent sends BYE from
# multiprocessing's own exit path, and the tests check that.
CHILD_LINGER_S = 0.5


def work(n=3000):
    """Allocations that trigger collections of every generation, cycles
    that they collect, and explicit collections."""
    keep = []
    for i in range(n):
        a = []
        b = [a]
        a.append(b)                     # a cycle for the collector
        keep.append({"i": i, "l": [i] * 3})
        if i % 500 == 0:
            gc.collect(i // 500 % 3)
    return len(keep)


def write_stats(outdir, extra=None):
    gc.disable()
    stats = [[s["collections"], s["collected"], s["uncollectable"]] for s in gc.get_stats()]
    rec = {"pid": os.getpid(), "ppid": os.getppid(), "stats": stats}
    rec.update(extra or {})
    path = os.path.join(outdir, "stats-%d.json" % os.getpid())
    with open(path + ".tmp", "w") as f:
        json.dump(rec, f)
    os.rename(path + ".tmp", path)


def mp_child(outdir):
    work(1000)
    write_stats(outdir, {"role": "mp"})


def main():
    mode, outdir = sys.argv[1], sys.argv[2]
    arg = sys.argv[3] if len(sys.argv) > 3 else None
    if mode == "basic":
        print("result", work())
        sys.stderr.write("a line on stderr\n")
        write_stats(outdir, {"role": "root"})
        sys.exit(int(arg or 0))
    elif mode == "burst":
        # Collections in a burst far larger than the ring.
        for _ in range(int(arg or 5000)):
            gc.collect(0)
        write_stats(outdir, {"role": "root"})
    elif mode == "fork":
        work(500)
        pid = os.fork()
        if pid == 0:
            work(1000)
            write_stats(outdir, {"role": "fork"})
            time.sleep(CHILD_LINGER_S)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        work(500)
        write_stats(outdir, {"role": "root"})
        sys.exit(0 if status == 0 else 1)
    elif mode in ("mp_fork", "mp_spawn"):
        import multiprocessing
        ctx = multiprocessing.get_context(mode[3:])
        p = ctx.Process(target=mp_child, args=(outdir,))
        p.start()
        p.join()
        work(300)
        write_stats(outdir, {"role": "root"})
        sys.exit(p.exitcode)
    elif mode == "subprocess":
        r = subprocess.run([sys.executable, __file__, "basic", outdir])
        work(300)
        write_stats(outdir, {"role": "root"})
        sys.exit(r.returncode)
    elif mode == "tracked":
        # Objects tracked by gc across a run of collections.
        for _ in range(3):
            gc.collect()            # start-up garbage out of the way
        before = len(gc.get_objects())
        for i in range(2000):
            gc.collect(i % 3)
        after = len(gc.get_objects())
        print("tracked delta", after - before)
    elif mode == "until":
        # Collects until OUTDIR/stop appears (bounded), so that a test can
        # kill and restart the daemon meanwhile.
        print("ready", flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(outdir, "stop")):
            if time.monotonic() > deadline:
                sys.exit("agent_prog: no stop file after 60 s")
            work(200)
            time.sleep(0.005)
        print("stopped", flush=True)
        write_stats(outdir, {"role": "root"})
    else:
        sys.exit("agent_prog: unknown mode %r" % mode)


if __name__ == "__main__":
    main()
