"""daemon_fork: a master that forks argv[2] workers (default 3); each
process makes garbage, then, as its last act, stops the collector and
writes {"pid", "ppid", "inherited", "stats"} to argv[1]/PID.json:
inherited is gc.get_stats() as the child saw it right after fork (what
it got from the master), stats is its final gc.get_stats()."""
import gc
import json
import os
import sys


class Node:
    def __init__(self):
        self.ref = self


def work(rounds):
    keep = []
    for i in range(rounds):
        for _ in range(1500):
            Node()
        keep.append([{} for _ in range(100)])
        if i % 7 == 6:
            gc.collect()


def dump(outdir, inherited):
    gc.disable()
    path = os.path.join(outdir, "%d.json" % os.getpid())
    with open(path + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), "ppid": os.getppid(),
                   "inherited": inherited, "stats": gc.get_stats()}, f)
    os.rename(path + ".tmp", path)


def main():
    outdir = sys.argv[1]
    nworkers = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    work(10)
    kids = []
    for i in range(nworkers):
        pid = os.fork()
        if pid == 0:
            inherited = gc.get_stats()
            work(15 + 5 * i)
            dump(outdir, inherited)
            sys.exit(0)   # a normal exit: the agent marks its area exited
        kids.append(pid)
    work(5)
    for pid in kids:
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
    dump(outdir, None)


main()
