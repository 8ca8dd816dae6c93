"""examples/gc_heavy.py: a plain script that keeps the collector busy:
short-lived cycles (generation 0 and 1) and a growing long-lived cache
that makes the occasional generation 2 collection slow.

    pygcprofiler run examples/gc_heavy.py [seconds]
"""
import sys
import time


class Record:
    def __init__(self, i):
        self.i = i
        self.me = self                # a self-cycle: only the GC frees it
        self.data = [i, str(i), {"i": i}]


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    cache = []
    end = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < end:
        batch = [Record(i) for i in range(2000)]
        cache.extend(batch[:50])      # the long-lived part grows
        del batch
        rounds += 1
    print("rounds=%d cached=%d" % (rounds, len(cache)))


if __name__ == "__main__":
    main()
