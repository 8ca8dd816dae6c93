"""bench/watch_cost.py: benchmark 7, the CPU that watching costs: what the
launcher and its private gcmond spend per collection of the program they
watch (issue 12's target: at most 0.5 us). CPU time, not wall time, so a
loaded machine inflates it less than it does elapsed figures.

    python3 watch_cost.py TMPDIR [ROUNDS]

Runs bench/gc_work.py under `pygcprofiler run --stats-only` and plainly,
in turns; os.wait4 gives the CPU of each command and every process it
waited for, and the program prints its own CPU (getrusage RUSAGE_SELF) as
its last line. What the monitored command spends beyond its program, less
what the plain one does (the interpreter's finalization after that line),
over the program's collections, is the cost of watching: the launcher and
gcmond, start-up and report included. Reads GCMON_BUILDDIR, GCMON_SRCDIR, GCMON_PYTHON; asserts no
timing; prints a verdict line.
"""
import json
import os
import statistics
import subprocess
import sys

BUILDDIR = os.environ.get("GCMON_BUILDDIR", "build")
SRCDIR = os.environ.get("GCMON_SRCDIR", ".")
PYTHON = os.environ.get("GCMON_PYTHON", "/usr/bin/python3")
PYGCPROFILER = os.path.join(BUILDDIR, "client", "pygcprofiler")
WORK = os.path.join(SRCDIR, "bench", "gc_work.py")
TARGET_US = 0.5

# gc_work.py, then this process's whole CPU (start-up included).
WRAPPER = r"""
import json, resource, runpy, sys
sys.argv = [sys.argv[1], sys.argv[2]]
runpy.run_path(sys.argv[0], run_name="__main__")
r = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"self_cpu": r.ru_utime + r.ru_stime}), flush=True)
"""


def run(cmd, env):
    """(CPU of the process and all it waited for, the program's own CPU,
    its collections), from os.wait4 and the program's last line."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env)
    out, err = p.stdout.read(), p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("watch_cost: %s failed: %s" % (cmd[0], err.decode()))
    lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    work = [x for x in lines if "collections" in x][0]
    self_cpu = [x for x in lines if "self_cpu" in x][0]["self_cpu"]
    return ru.ru_utime + ru.ru_stime, self_cpu, work["collections"]


def one(tmp, work_rounds):
    """CPU beyond the program's own up to its last line: plain (its
    finalization) and monitored (that, the launcher and gcmond)."""
    wrapper = os.path.join(tmp, "watch_cost_prog.py")
    with open(wrapper, "w") as f:
        f.write(WRAPPER)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GCMON_") and k != "PYTHONPATH"}
    env["TMPDIR"] = tmp
    total, self_cpu, coll = run([PYGCPROFILER, "run", "--stats-only",
                                 "--python", PYTHON, wrapper, WORK,
                                 str(work_rounds)], env)
    ptotal, pself, _ = run([PYTHON, wrapper, WORK, str(work_rounds)], env)
    return (total - self_cpu) - (ptotal - pself), coll, total, self_cpu


def main():
    tmp = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    per = []
    print("watch cost: pygcprofiler run --stats-only gc_work.py 900, %d rounds" % rounds)
    for i in range(rounds):
        extra, coll, total, self_cpu = one(tmp, 900)
        per.append(extra / coll * 1e6)
        print("  round %d: %d collections, program %.3f s CPU, launcher+gcmond %.1f ms"
              " = %.2f us a collection" % (i + 1, coll, self_cpu, extra * 1e3, per[-1]))
    med = statistics.median(per)
    print("  median %.2f us a collection (min %.2f, max %.2f)" % (med, min(per), max(per)))
    verdict = "PASS" if med <= TARGET_US else "MISS"
    print("verdict: %s watch cost: launcher+gcmond %.2f us CPU a collection (target <= %.1f)"
          % (verdict, med, TARGET_US))


if __name__ == "__main__":
    main()
