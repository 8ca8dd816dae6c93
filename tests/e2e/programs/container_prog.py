"""container_prog: makes garbage of every generation, then stops the
collector and writes its own gc.get_stats() (with its pid as it sees it)
to argv[1], so a test can compare gcmond's totals with the interpreter's
own wherever the process runs. Then it waits for argv[1] + ".go" to exist
and ends as argv[2] says: "exit" (a clean exit), "os_exit" (os._exit(7))
or "hang" (until a signal kills it). argv[3]: rounds of work (100)."""
import gc
import json
import os
import socket
import sys
import time


class Node:
    def __init__(self):
        self.ref = self


def main():
    out, how = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    keep = []
    for i in range(rounds):
        for _ in range(2000):
            Node()
        keep.append([{} for _ in range(200)])
        if i % 10 == 9:
            gc.collect()
    gc.disable()
    with open(out + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), "hostname": socket.gethostname(),
                   "stats": gc.get_stats()}, f)
    os.rename(out + ".tmp", out)
    deadline = time.monotonic() + 120
    while not os.path.exists(out + ".go") and time.monotonic() < deadline:
        time.sleep(0.01)
    if how == "os_exit":
        os._exit(7)
    if how == "hang":
        while True:
            time.sleep(1)


main()
