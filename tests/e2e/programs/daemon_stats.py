"""daemon_stats: makes garbage of every generation, then, as its last act,
stops the collector and writes gc.get_stats() as JSON to argv[1], so the
test can compare gcmond's totals for this pid with the interpreter's own.
argv[2] (optional): rounds of work (default 30)."""
import gc
import json
import os
import sys


class Node:
    def __init__(self):
        self.ref = self


def main():
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    keep = []
    for i in range(rounds):
        for _ in range(2000):
            Node()
        keep.append([{} for _ in range(200)])
        if i % 10 == 9:
            gc.collect()
    gc.disable()
    with open(sys.argv[1] + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), "stats": gc.get_stats()}, f)
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])


main()
