"""wheel_prog: the program the wheel's checks monitor (wheel_checks.py).
Makes garbage of every generation; as its last act stops the collector
and writes to argv[1] (JSON) its pid, gc.get_stats(), where the gcmon
package it runs came from (if loaded), and the executable of any gcmond
that is its sibling (started by the same pygcprofiler)."""
import gc
import json
import os
import sys


class Node:
    def __init__(self):
        self.ref = self


def sibling_gcmond():
    ppid = os.getppid()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
            # comm may hold spaces: the ppid follows its closing parenthesis.
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            if comm == "gcmond" and int(stat[stat.rindex(")") + 2:].split()[1]) == ppid:
                return os.readlink("/proc/%s/exe" % pid)
        except (OSError, ValueError):
            continue
    return None


def main():
    keep = []
    for i in range(30):
        for _ in range(2000):
            Node()
        keep.append([{} for _ in range(200)])
        if i % 10 == 9:
            gc.collect()
    gc.disable()
    mod = sys.modules.get("gcmon")
    out = {"pid": os.getpid(), "stats": gc.get_stats(),
           "executable": sys.executable,
           "gcmon_file": getattr(mod, "__file__", None),
           "gcmond": sibling_gcmond()}
    with open(sys.argv[1] + ".tmp", "w") as f:
        json.dump(out, f)
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])


main()
