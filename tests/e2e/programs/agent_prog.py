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


def pool_task(i):
    work(300)
    return i


def pool_last(outdir):
    """Each worker's last act: its stats, the collector off for good; then
    it holds its task until four workers have written theirs, so that
    no worker takes two of these (a sleep did not, on a loaded machine:
    a worker slow to be scheduled left its task to one done sleeping)."""
    write_stats(outdir, {"role": "pool"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(
            1 for n in os.listdir(outdir)
            if n.startswith("stats-") and n.endswith(".json")) < 4:
        time.sleep(0.01)
    return os.getpid()


def pool(method, outdir):
    import multiprocessing
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(4) as p:              # __exit__: terminate(), SIGTERM
        p.map(pool_task, range(40), chunksize=1)
        pids = p.map(pool_last, [outdir] * 4, chunksize=1)
        if len(set(pids)) != 4:
            sys.exit("agent_prog: the last tasks ran in %d workers" % len(set(pids)))
    work(300)
    write_stats(outdir, {"role": "root"})


def die(outdir, how):
    """Collects, then stops collecting, writes its stats, and dies the
    given way once told to (or is SIGKILLed by the test)."""
    work(2000)
    write_stats(outdir, {"role": "root"})
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(outdir, "go")):
        if time.monotonic() > deadline:
            sys.exit("agent_prog: no go file after 60 s")
        x = [0] * 1000                  # allocates; the collector is off
        del x
    if how == "os_exit":
        os._exit(3)
    elif how == "sigterm":
        os.kill(os.getpid(), 15)
    elif how == "abort":
        import ctypes
        ctypes.CDLL(None).abort()
    while True:                         # sigkill: the test's to send
        time.sleep(1)


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
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        work(500)
        write_stats(outdir, {"role": "root"})
        sys.exit(0 if status == 0 else 1)
    elif mode in ("mp_fork", "mp_spawn", "mp_forkserver"):
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
    elif mode.startswith("pool_"):
        pool(mode[5:], outdir)
    elif mode == "die":
        die(outdir, arg)
    elif mode == "big":
        held = [bytearray(1 << 20) for _ in range(100)]    # ~100 MiB
        del held
        work(500)
        write_stats(outdir, {"role": "root"})
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
