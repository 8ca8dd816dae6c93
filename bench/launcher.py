"""bench/launcher.py: benchmark 6, what the launcher and the bootstrap add
to a command (run by bench/run-all.sh; issue 12's targets).

a) `pygcprofiler run --stats-only` on bench/gc_work.py against plain
   python3 on the same script, interleaved (the order flips each round):
   the whole command's wall time, and the launcher's latency, from the
   instant the program's process ends (a pidfd on it, so no clock inside
   the program) to the report's last line on the launcher's stderr.
b) Interpreter start-up: `python3 -c pass` plain, with the agent's
   environment (PYTHONPATH, GCMON_SOCKET of a real gcmond, GCMON_RUN_ID)
   so that sitecustomize loads the agent, and with gcmon-autoload.pth in
   the user site directory (PYTHONUSERBASE), GCMON_SOCKET unset (the
   hook's cost to every unmonitored program) and set; interleaved rounds.
Medians with the spread (min-max for a, p10-p90 for b). It measures and
prints; it asserts nothing.

    python3 launcher.py TMPDIR
"""
import os
import select
import statistics
import shutil
import subprocess
import sys
import tempfile
import time

BUILDDIR = os.environ["GCMON_BUILDDIR"]
PY = os.environ.get("GCMON_PYTHON", "/usr/bin/python3")
PYGCPROFILER = os.path.join(BUILDDIR, "client", "pygcprofiler")
GCMOND = os.path.join(BUILDDIR, "daemon", "gcmond")
AGENT_DIR = os.path.join(BUILDDIR, "agent")
SRCDIR = os.environ.get("GCMON_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
ROUNDS = int(os.environ.get("BENCH_LAUNCH_ROUNDS", "15"))
WORK = os.environ.get("BENCH_LAUNCH_WORK", "600")
START_ROUNDS = int(os.environ.get("BENCH_STARTUP_ROUNDS", "200"))

# Runs gc_work.py after writing its own pid, so the driver can hold a
# pidfd on the program (not on the launcher) and see the instant it ends.
WRAPPER = ("import os, runpy, sys\n"
           "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
           "sys.argv = sys.argv[2:]\n"
           "runpy.run_path(sys.argv[0], run_name='__main__')\n")


def env(**extra):
    e = dict(os.environ)
    for k in [k for k in e if k.startswith("GCMON_") or k == "PYTHONPATH"]:
        del e[k]
    e["GCMON_GCMOND"] = GCMOND
    e["GCMON_AGENT_DIR"] = AGENT_DIR
    e.update(extra)
    return e


def plain_round(tmp):
    t = time.perf_counter()
    subprocess.run([PY, os.path.join(HERE, "gc_work.py"), WORK], env=env(),
                   stdout=subprocess.DEVNULL, check=True, cwd=tmp)
    return time.perf_counter() - t


def pidfd_of(pidfile, launcher):
    """A pidfd on the program once its wrapper wrote its pid."""
    while launcher.poll() is None:
        try:
            with open(pidfile) as f:
                pid = int(f.read() or "0")
            if pid > 0:
                return os.pidfd_open(pid)
        except (OSError, ValueError):
            pass
        time.sleep(0.001)
    return None


def monitored_round(tmp, wrapper):
    """(whole command s, program end -> report's last line s)."""
    pidfile = os.path.join(tmp, "prog.pid")
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    t0 = time.perf_counter()
    p = subprocess.Popen([PYGCPROFILER, "run", "--stats-only", "--python", PY, wrapper,
                          pidfile, os.path.join(HERE, "gc_work.py"), WORK],
                         env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         cwd=tmp)
    pfd = pidfd_of(pidfile, p)
    t_end = t_last = None
    buf = b""
    fds = [p.stderr.fileno()] + ([pfd] if pfd is not None else [])
    while p.stderr.fileno() in fds:
        ready = select.select(fds, [], [])[0]
        now = time.perf_counter()
        # The end first: a report in the same wake-up came after it.
        for fd in sorted(ready, key=lambda fd: fd != pfd):
            if fd == pfd:
                t_end = now
                fds.remove(pfd)
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                fds.remove(fd)
            elif t_end is not None:
                buf += chunk
                t_last = now
    p.wait()
    wall = time.perf_counter() - t0
    if pfd is not None:
        os.close(pfd)
    if p.returncode != 0 or t_end is None or t_last is None or b"SUMMARY" not in buf:
        raise RuntimeError("launcher exit %s; after the program: %r" % (p.returncode, buf[-400:]))
    return wall, t_last - t_end


def spread(xs, lo=0.0, hi=1.0):
    s = sorted(xs)
    return s[int(lo * (len(s) - 1))], s[int(round(hi * (len(s) - 1)))]


def launcher_bench(tmp):
    wrapper = os.path.join(tmp, "wrapper.py")
    with open(wrapper, "w") as f:
        f.write(WRAPPER)
    plain_round(tmp)                    # warm the page cache
    plain, mon, lat = [], [], []
    for i in range(ROUNDS):
        for k in (("plain", "mon") if i % 2 == 0 else ("mon", "plain")):
            if k == "plain":
                plain.append(plain_round(tmp))
            else:
                w, l = monitored_round(tmp, wrapper)
                mon.append(w)
                lat.append(l)
    pm, mm = statistics.median(plain), statistics.median(mon)
    ratio = statistics.median(m / p for p, m in zip(plain, mon))
    print("a) gc_work.py %s rounds, %d interleaved rounds of each, median (min-max):" % (WORK, ROUNDS))
    print("   plain python3                  %.3f s (%.3f-%.3f)" % ((pm,) + spread(plain)))
    print("   pygcprofiler run --stats-only  %.3f s (%.3f-%.3f)" % ((mm,) + spread(mon)))
    print("   whole command / plain          %.4f (median of round ratios; ratio of medians %.4f)"
          % (ratio, mm / pm))
    lm = statistics.median(lat) * 1000
    print("   program end -> report          %.1f ms (%.1f-%.1f ms)"
          % ((lm,) + tuple(x * 1000 for x in spread(lat))))
    ok = lm <= 20 and ratio <= 1.03
    print("verdict: %s launcher: report %.1f ms after the program ends (target <= 20),"
          " whole command %.4fx plain (target <= 1.03), %d rounds"
          % ("PASS" if ok else "MISS", lm, ratio, ROUNDS))


def start_gcmond(tmp):
    # The agent directory (<socket>.d) on tmpfs, as /run/gcmon and the
    # launcher's private directory are: an area's pages are reserved when
    # a process starts, which costs more on a disk.
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tmp
    d = tempfile.mkdtemp(prefix="gcmon-bench-", dir=base)
    sock = os.path.join(d, "gcmon.sock")
    rfd, wfd = os.pipe()
    g = subprocess.Popen([GCMOND, "--quiet", "--socket", sock, "--ready-fd", str(wfd)],
                         pass_fds=(wfd,), stderr=subprocess.DEVNULL)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as ready:
        if ready.read(1) != b"R":
            raise RuntimeError("gcmond did not start")
    return g, sock


def spawn_wait(argv, e):
    t = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, e)
    _, st = os.waitpid(pid, 0)
    dt = time.perf_counter() - t
    if st != 0:
        raise RuntimeError("%s: wait status %d" % (argv, st))
    return dt


def pth_site(tmp):
    """A PYTHONUSERBASE whose user site directory holds the .pth hook and
    the build tree's package, as $(pythondir) does once installed."""
    base = os.path.join(tmp, "userbase")
    r = subprocess.run([PY, "-c", "import site; print(site.getusersitepackages())"],
                       env=env(PYTHONUSERBASE=base), capture_output=True, text=True)
    site_dir = r.stdout.strip()
    os.makedirs(site_dir, exist_ok=True)
    if not os.path.lexists(os.path.join(site_dir, "gcmon")):
        os.symlink(os.path.join(AGENT_DIR, "gcmon"), os.path.join(site_dir, "gcmon"))
    shutil.copy(os.path.join(SRCDIR, "agent", "bootstrap", "gcmon-autoload.pth"), site_dir)
    return base


def startup_bench(tmp):
    g, sock = start_gcmond(tmp)
    base = pth_site(tmp)
    names = ["plain", "with the agent's environment", ".pth installed, GCMON_SOCKET unset",
             ".pth installed, GCMON_SOCKET set"]
    envs = [env(), env(PYTHONPATH=AGENT_DIR, GCMON_SOCKET=sock, GCMON_RUN_ID="bench-startup"),
            env(PYTHONUSERBASE=base),
            env(PYTHONUSERBASE=base, GCMON_SOCKET=sock, GCMON_RUN_ID="bench-startup")]
    times = [[] for _ in envs]
    try:
        argv = [PY, "-c", "pass"]
        for _ in range(5):
            for e in envs:
                spawn_wait(argv, e)
        for i in range(START_ROUNDS):
            for k in range(len(envs)):          # a rotating order
                k = (k + i) % len(envs)
                times[k].append(spawn_wait(argv, envs[k]))
    finally:
        g.terminate()
        g.wait()
        shutil.rmtree(os.path.dirname(sock), ignore_errors=True)
    plain = times[0]
    print("b) python3 -c pass, %d interleaved rounds of each, median (p10-p90):" % START_ROUNDS)
    for name, t in zip(names, times):
        print("   %-37s %.2f ms (%.2f-%.2f)" % ((name, statistics.median(t) * 1000) +
                                              tuple(x * 1000 for x in spread(t, 0.1, 0.9))))
    diffs = [statistics.median((a - p) * 1000 for p, a in zip(plain, t)) for t in times]
    print("   added by the bootstrap         %.2f ms (median of round differences)" % diffs[1])
    print("   added by the .pth, unset       %.2f ms" % diffs[2])
    print("   added by the .pth, set         %.2f ms" % diffs[3])
    diff = diffs[1]
    print("verdict: %s start-up: the bootstrap adds %.2f ms to python3 -c pass (target <= 1),"
          " %d rounds" % ("PASS" if diff <= 1 else "MISS", diff, START_ROUNDS))


def main():
    tmp = sys.argv[1]
    launcher_bench(tmp)
    startup_bench(tmp)


if __name__ == "__main__":
    main()
