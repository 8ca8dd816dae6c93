"""bench/gc_work.py: the GC-heavy program of benchmark 2, a fixed amount of
work (not a fixed time, so that a slower run shows as a longer one):
short-lived self-cycles in batches, a slowly growing long-lived cache that
makes generation 2 collections slower as it goes. Prints its own elapsed
and CPU time as one JSON line so the driver can tell the program's cost
from the launcher's start-up and report.

    python3 gc_work.py [ROUNDS]
"""
import gc
import json
import resource
import sys
import time


class Record:
    def __init__(self, i):
        self.i = i
        self.me = self
        self.data = [i, str(i), {"i": i}]


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    cache = []
    for _ in range(rounds):
        batch = [Record(i) for i in range(2000)]
        cache.extend(batch[:20])
        del batch
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    print(json.dumps({"work_s": wall, "cpu_s": cpu,
                      "collections": sum(s["collections"] for s in gc.get_stats())}))


if __name__ == "__main__":
    main()
