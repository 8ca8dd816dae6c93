"""memory_cow: a master that builds examples/cow_app.py's object graph
(argv[1] MB), freezes it if argv[3] is 1, and forks argv[2] workers.
Prints "graph BYTES" (what the graph added to its private memory), then
each worker prints "ready PID", waits for SIGUSR1, runs gc.collect(),
prints "collected PID", waits for SIGUSR1 again and exits cleanly: the
test reads each worker's smaps_rollup while it waits, before and after.
"""
import gc
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.environ["GCMON_SRCDIR"], "examples"))
os.environ["COW_APP_MB"] = sys.argv[1]
import cow_app  # noqa: E402


def say(*words):
    os.write(1, (" ".join(str(w) for w in words) + "\n").encode())


def worker():
    say("ready", os.getpid())
    signal.sigwait({signal.SIGUSR1})
    gc.collect()
    say("collected", os.getpid())
    signal.sigwait({signal.SIGUSR1})
    sys.exit(0)


def main():
    nworkers, freeze = int(sys.argv[2]), sys.argv[3] == "1"
    say("graph", cow_app.GRAPH_BYTES)
    if freeze:
        gc.freeze()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    pids = []
    for _ in range(nworkers):
        pid = os.fork()
        if pid == 0:
            worker()
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)


main()
