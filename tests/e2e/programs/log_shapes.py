"""log_shapes: GC-heavy programs, each built to trip one of gcmond's
alerts (or none), for test_log.py. Usage: log_shapes.py MODE [SECONDS]
(default 3); prints its pid (and, for outlier, the heavy worker's).

  slow     20 full collections over a 300k-object heap (~15 ms each)
  p99      20 gen-0 collections, then one full one over a 300k heap, in a
           loop: ~5% of pauses slow
  share    full collections over a 300k heap back to back: most of the
           wall time is GC
  gen2     10 full collections a second over a small heap
  outlier  freezes, forks 4 workers; one builds a 500k heap, each makes
           5 full collections a second
  quiet    50 gen-0 collections of an empty generation a second
  quiet-workers  outlier's 4 workers, all with a small heap
"""
import gc
import os
import sys
import time


def heap(n):
    return [[i] for i in range(n)]


def loop(seconds, step, pause=0.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        step()
        if pause:
            time.sleep(pause)


def p99_step():
    for _ in range(20):
        gc.collect(0)
    gc.collect(2)


def workers(seconds, heavy):
    # Frozen before fork (as gunicorn users are told to): the workers'
    # full collections skip the inherited objects, so copy-on-write page
    # faults do not make a light worker's pauses look heavy.
    gc.freeze()
    kids = []
    for i in range(4):
        pid = os.fork()
        if pid == 0:
            keep = heap(500_000) if heavy and i == 0 else None
            loop(seconds, lambda: gc.collect(2), 0.2)
            del keep
            os._exit(0)
        if heavy and i == 0:
            print("heavy", pid, flush=True)
        kids.append(pid)
    for pid in kids:
        _, status = os.waitpid(pid, 0)
        if status != 0:
            sys.exit("worker %d: status %d" % (pid, status))


def main():
    mode = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    print("pid", os.getpid(), flush=True)
    if mode == "slow":
        keep = heap(300_000)
        for _ in range(20):
            gc.collect()
            time.sleep(0.05)
        del keep
    elif mode == "p99":
        keep = heap(300_000)
        loop(seconds, p99_step, 0.005)
    elif mode == "share":
        keep = heap(300_000)
        loop(seconds, gc.collect)
    elif mode == "gen2":
        loop(seconds, lambda: gc.collect(2), 0.1)
    elif mode == "outlier":
        workers(seconds, True)
    elif mode == "quiet":
        loop(seconds, lambda: gc.collect(0), 0.02)
    elif mode == "quiet-workers":
        workers(seconds, False)
    else:
        sys.exit("log_shapes: unknown mode %r" % mode)


if __name__ == "__main__":
    main()
