"""bench/quick.py: `make bench-quick`, issue 26's near-zero figures in under
two minutes, so that a change can be checked before it lands:

  start-up   python3 -c pass with the bootstrap (sitecustomize on PYTHONPATH,
             the .pth hook with GCMON_SOCKET set) over plain
  shared     pygcprofiler run --socket S of an empty script over plain
  embedded   pygcprofiler run --stats-only of an empty script (private
             gcmond, report) over plain
  whole      pygcprofiler run (the per-collection lines to /dev/null) of a
             GC-heavy script (bench/gc_work.py, ~0.35 s, ~1,100
             collections) over plain, and the CPU the launcher and its
             gcmond spend per collection of it
  floors     this machine's own: an exec of `true`, and what gcmond's
             start beside an interpreter's costs that interpreter

Every pair is interleaved (the order flips each round). Wall figures are
the median of the rounds' differences (ratios for the whole command) with
the p10-p90 spread; CPU figures (user+sys of the command and everything it
waited for, os.wait4) beside them, since a loaded machine inflates those
less, and the page faults of the same processes, which the load does not
change at all. The load average is printed before each part: a figure
from a loaded run is no pass. It measures and prints; it asserts nothing.

    python3 quick.py TMPDIR        (GCMON_BUILDDIR, GCMON_PYTHON; knobs
                                    BENCH_QUICK_ROUNDS, BENCH_QUICK_WORK)
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BUILDDIR = os.environ["GCMON_BUILDDIR"]
SRCDIR = os.environ.get("GCMON_SRCDIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
PY = os.environ.get("GCMON_PYTHON", "/usr/bin/python3")
PYGCPROFILER = os.path.join(BUILDDIR, "client", "pygcprofiler")
GCMOND = os.path.join(BUILDDIR, "daemon", "gcmond")
AGENT_DIR = os.path.join(BUILDDIR, "agent")
HERE = os.path.dirname(os.path.abspath(__file__))
ROUNDS = int(os.environ.get("BENCH_QUICK_ROUNDS", "40"))
WORK = os.environ.get("BENCH_QUICK_WORK", "135")

sys.path.insert(0, HERE)
from launcher import start_gcmond  # noqa: E402  (gcmond on tmpfs, ready)

# gc_work.py, then this process's whole CPU (start-up included), so the
# launcher's and gcmond's share can be told from the program's.
WRAPPER = r"""
import json, resource, runpy, sys
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
r = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"self_cpu": r.ru_utime + r.ru_stime}), flush=True)
"""

TARGETS = {"start-up": 0.5, "shared": 1.0, "embedded": 5.0}


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def env(**extra):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("GCMON_") and k != "PYTHONPATH"}
    e["GCMON_GCMOND"] = GCMOND
    e["GCMON_AGENT_DIR"] = AGENT_DIR
    e.update(extra)
    return e


def spawn(argv, e, out=None, faults=None):
    """(wall s, CPU s of it and all it waited for, its stdout or None);
    the page faults of the same processes appended to faults."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, env=e, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE if out else subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    data = p.stdout.read() if out else None
    _, st, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(st)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d" % (argv, p.returncode))
    if faults is not None:
        faults.append(ru.ru_minflt + ru.ru_majflt)
    return wall, ru.ru_utime + ru.ru_stime, data


def spread(xs):
    s = sorted(xs)
    return s[int(0.1 * (len(s) - 1))], s[int(round(0.9 * (len(s) - 1)))]


def pairs(variants, rounds, warm=2):
    """Interleaved runs of each (name, argv, env):
    {name: [(wall, cpu, page faults)]}."""
    res = {v[0]: [] for v in variants}
    for _ in range(warm):
        for v in variants:
            spawn(v[1], v[2])
    for i in range(rounds):
        order = variants if i % 2 == 0 else variants[::-1]
        for name, argv, e in order:
            f = []
            w, c, _ = spawn(argv, e, faults=f)
            res[name].append((w, c, f[0]))
    return res


def diff_line(label, base, other, target=None):
    """The median of round differences, ms, wall and CPU, and the page
    faults (of it and all it waited for), which the load does not move:
    on this kind of VM each costs tens of microseconds."""
    dw = [(o[0] - b[0]) * 1e3 for b, o in zip(base, other)]
    dc = [(o[1] - b[1]) * 1e3 for b, o in zip(base, other)]
    df = [o[2] - b[2] for b, o in zip(base, other)]
    mw, mc = statistics.median(dw), statistics.median(dc)
    verdict = ""
    if target is not None:
        verdict = "  %s (target <= +%.1f ms)" % ("PASS" if mw <= target else "MISS", target)
    print("  %-34s wall %+6.2f ms (p10-p90 %+.2f..%+.2f)  CPU %+6.2f ms (%+.2f..%+.2f)  faults %+d%s"
          % ((label, mw) + spread(dw) + (mc,) + spread(dc) +
             (int(statistics.median(df)), verdict)))
    return mw


def floors(tmp):
    """What any start costs here, whatever gcmon does: an exec of a tiny
    dynamically linked program, and what a neighbour's start (gcmond
    --version, spawned just after the interpreter) adds to an empty
    interpreter's, whichever core it gets. Measured, not judged."""
    empty = os.path.join(tmp, "empty.py")
    open(empty, "w").close()
    true = shutil.which("true") or "/bin/true"
    print("(load average %s)" % load())
    print("floors of this machine, %d interleaved rounds" % ROUNDS)
    r = pairs([("true", [true], env())], ROUNDS)
    print("  an exec of %-23s wall %6.2f ms  CPU %6.2f ms  faults %d"
          % (true, statistics.median(x[0] for x in r["true"]) * 1e3,
             statistics.median(x[1] for x in r["true"]) * 1e3,
             statistics.median(x[2] for x in r["true"])))
    alone, beside = [], []
    e = env()
    for i in range(ROUNDS + 2):
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            t = time.perf_counter()
            p = subprocess.Popen([PY, empty], env=e, stdin=subprocess.DEVNULL)
            n = subprocess.Popen([GCMOND, "--version"], env=e,
                                 stdout=subprocess.DEVNULL) if k else None
            p.wait()
            w = time.perf_counter() - t
            if n is not None:
                n.wait()
            if i >= 2:
                (beside if k else alone).append(w)
    d = [(b - a) * 1e3 for a, b in zip(alone, beside)]
    print("  python3 empty.py, gcmond --version started beside it: %+.2f ms (p10-p90 %+.2f..%+.2f) over %.2f ms alone"
          % ((statistics.median(d),) + spread(d) + (statistics.median(alone) * 1e3,)))


def pth_base(tmp):
    # Fresh each run: the package link and the hook of this build only.
    base = tempfile.mkdtemp(prefix="userbase-", dir=tmp)
    r = subprocess.run([PY, "-c", "import site; print(site.getusersitepackages())"],
                       env=env(PYTHONUSERBASE=base), capture_output=True, text=True)
    site_dir = r.stdout.strip()
    os.makedirs(site_dir, exist_ok=True)
    if not os.path.lexists(os.path.join(site_dir, "gcmon")):
        os.symlink(os.path.join(AGENT_DIR, "gcmon"), os.path.join(site_dir, "gcmon"))
    shutil.copy(os.path.join(SRCDIR, "agent", "bootstrap", "gcmon-autoload.pth"), site_dir)
    return base


def startup(tmp, sock):
    print("(load average %s)" % load())
    print("start-up: python3 -c pass, %d interleaved rounds" % (ROUNDS * 2))
    base = pth_base(tmp)
    argv = [PY, "-c", "pass"]
    r = pairs([("plain", argv, env()),
               ("site", argv, env(PYTHONPATH=AGENT_DIR, GCMON_SOCKET=sock,
                                  GCMON_RUN_ID="quick")),
               ("pth", argv, env(PYTHONUSERBASE=base, GCMON_SOCKET=sock,
                                 GCMON_RUN_ID="quick"))], ROUNDS * 2)
    print("  plain                              wall %6.2f ms  CPU %6.2f ms"
          % (statistics.median(x[0] for x in r["plain"]) * 1e3,
             statistics.median(x[1] for x in r["plain"]) * 1e3))
    a = diff_line("+ bootstrap (sitecustomize)", r["plain"], r["site"], TARGETS["start-up"])
    b = diff_line("+ bootstrap (.pth, socket set)", r["plain"], r["pth"], TARGETS["start-up"])
    return max(a, b)


def shared_embedded(tmp, sock):
    empty = os.path.join(tmp, "empty.py")
    open(empty, "w").close()
    print("(load average %s)" % load())
    print("shared and embedded: an empty script, %d interleaved rounds" % ROUNDS)
    r = pairs([("plain", [PY, empty], env()),
               ("shared", [PYGCPROFILER, "run", "--socket", sock, "--python", PY, empty],
                env(GCMON_RUN_ID="quick")),
               ("embedded", [PYGCPROFILER, "run", "--stats-only", "--python", PY, empty],
                env(TMPDIR=tmp))], ROUNDS)
    a = diff_line("pygcprofiler run --socket S", r["plain"], r["shared"], TARGETS["shared"])
    b = diff_line("pygcprofiler run --stats-only", r["plain"], r["embedded"],
                  TARGETS["embedded"])
    return a, b


def whole(tmp):
    wrapper = os.path.join(tmp, "quick_prog.py")
    with open(wrapper, "w") as f:
        f.write(WRAPPER)
    work = os.path.join(HERE, "gc_work.py")
    rounds = max(5, ROUNDS // 4)
    print("(load average %s)" % load())
    print("whole command: gc_work.py %s with the per-collection lines, %d interleaved rounds"
          % (WORK, rounds))
    e = env(TMPDIR=tmp)
    plain_argv = [PY, wrapper, work, WORK]
    mon_argv = [PYGCPROFILER, "run", "--python", PY, wrapper, work, WORK]
    ratios, cpu_ratios, per = [], [], []
    coll = 0
    for i in range(rounds + 1):
        res = {}
        for k in (("plain", "mon") if i % 2 == 0 else ("mon", "plain")):
            w, c, out = spawn(plain_argv if k == "plain" else mon_argv, e, out=True)
            lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
            selfc = [x for x in lines if "self_cpu" in x][0]["self_cpu"]
            coll = [x for x in lines if "collections" in x][0]["collections"]
            res[k] = (w, c, selfc)
        if i == 0:
            continue            # warm-up
        p, m = res["plain"], res["mon"]
        ratios.append(m[0] / p[0])
        cpu_ratios.append(m[1] / p[1])
        per.append(((m[1] - m[2]) - (p[1] - p[2])) / coll * 1e6)
    # The marginal cost: a run six times as long, against the same, so
    # the launcher's and gcmond's fixed start-up and report cancel out.
    long_work = str(int(WORK) * 6)
    marg = []
    long_coll = coll
    for i in range(3):
        res = {}
        for k in ("short", "long"):
            argvs = [[PY, wrapper, work, WORK if k == "short" else long_work],
                     [PYGCPROFILER, "run", "--python", PY, wrapper, work,
                      WORK if k == "short" else long_work]]
            cpu = []
            for argv in (argvs if i % 2 == 0 else argvs[::-1]):
                w, c, out = spawn(argv, e, out=True)
                lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
                selfc = [x for x in lines if "self_cpu" in x][0]["self_cpu"]
                n = [x for x in lines if "collections" in x][0]["collections"]
                cpu.append((c - selfc, n))
            if i % 2:
                cpu.reverse()
            res[k] = (cpu[1][0] - cpu[0][0], cpu[1][1])
        long_coll = res["long"][1]
        marg.append((res["long"][0] - res["short"][0]) / (res["long"][1] - res["short"][1]) * 1e6)
    mc = statistics.median(marg)
    rw, rc, pc = statistics.median(ratios), statistics.median(cpu_ratios), statistics.median(per)
    print("  whole command / plain              wall %.4f (p10-p90 %.4f..%.4f)  CPU %.4f (%.4f..%.4f)  %s (target <= 1.02)"
          % ((rw,) + spread(ratios) + (rc,) + spread(cpu_ratios) +
             ("PASS" if rw <= 1.02 else "MISS",)))
    print("  launcher+gcmond CPU a collection   %.2f us (p10-p90 %.2f..%.2f; %d collections)  %s (target <= 0.5)"
          % ((pc,) + spread(per) + (coll, "PASS" if pc <= 0.5 else "MISS")))
    print("  of which per collection, marginal  %.2f us (%s; %d against %d collections, fixed costs cancelled)"
          % (mc, " ".join("%.2f" % x for x in marg), long_coll, coll))
    return rw, pc, mc


def main():
    tmp = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    t0 = time.time()
    print("machine: %d CPUs; load average at start: %s" % (os.cpu_count(), load()))
    floors(tmp)
    g, sock = start_gcmond(tmp)
    try:
        su = startup(tmp, sock)
        sh, em = shared_embedded(tmp, sock)
    finally:
        g.terminate()
        g.wait()
        shutil.rmtree(os.path.dirname(sock), ignore_errors=True)
    rw, pc, mc = whole(tmp)
    end_load = load()
    for ok, text in ((su <= TARGETS["start-up"], "start-up: the bootstrap adds %+.2f ms to python3 -c pass (target <= +0.5)" % su),
                     (sh <= TARGETS["shared"], "shared: run --socket adds %+.2f ms to an empty script (target <= +1)" % sh),
                     (em <= TARGETS["embedded"], "embedded: run --stats-only adds %+.2f ms to an empty script (target <= +5)" % em),
                     (rw <= 1.02, "whole command: %.4fx plain, gc_work.py %s with the lines (target <= 1.02)" % (rw, WORK)),
                     (pc <= 0.5, "pipeline: launcher+gcmond %.2f us CPU a collection (target <= 0.5; marginal %.2f us)" % (pc, mc))):
        print("verdict: %s %s, load %s" % ("PASS" if ok else "MISS", text, end_load))
    print("(%.0f s)" % (time.time() - t0))

if __name__ == "__main__":
    main()
