"""launcher_garbage OUT [ROUNDS]: makes cyclic garbage (all generations
collect), then disables the collector and writes gc.get_stats() to OUT, so
the report's totals can be compared with the interpreter's own."""
import gc
import json
import sys


class Cycle:
    def __init__(self, i):
        self.me = self
        self.i = [i, str(i)]


def main():
    out = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    keep = []
    for r in range(rounds):
        batch = [Cycle(i) for i in range(3000)]
        keep.extend(batch[:20])
        del batch
    gc.collect()            # one explicit full collection, reported too
    gc.disable()            # from here on, nothing changes the counts
    with open(out, "w") as f:
        json.dump(gc.get_stats(), f)
    print("garbage done")


main()
