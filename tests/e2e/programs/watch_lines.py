"""watch_lines OUTDIR [child]: several processes of one run, each with
collections of every generation and a few long full collections (alerts
under a low --alert-threshold-ms): the parent, a forked child and an
exec'd one (this file again, with "child"). Each process then disables
the collector and writes its gc.get_stats() to OUTDIR/<pid>.json."""
import gc
import json
import os
import subprocess
import sys


class Cycle:
    def __init__(self, i):
        self.me = self
        self.i = [i, str(i)]


def work(rounds, heavy):
    keep = []
    for r in range(rounds):
        batch = [Cycle(i) for i in range(2000)]
        keep.extend(batch[:50])
        del batch
    # A big heap makes full collections long: alerts.
    big = [{"k": i, "v": [i]} for i in range(heavy)]
    for _ in range(3):
        gc.collect()
    return keep, big


def done(outdir):
    gc.disable()            # from here on, nothing changes the counts
    with open(os.path.join(outdir, "%d.json" % os.getpid()), "w") as f:
        json.dump({"pid": os.getpid(), "stats": gc.get_stats()}, f)


def main():
    outdir = sys.argv[1]
    if sys.argv[2:] == ["child"]:
        work(25, 150000)
        done(outdir)
        return
    keep = work(20, 200000)
    pid = os.fork()
    if pid == 0:
        work(15, 100000)
        done(outdir)
        os._exit(0)
    subprocess.run([sys.executable, __file__, outdir, "child"], check=True)
    os.waitpid(pid, 0)
    work(10, 0)
    del keep
    done(outdir)


main()
