"""test_attach_pid: `pygcprofiler attach PID` / `detach PID`, end to end:
real gdb, real CPython processes (Debian's /usr/bin/python3 and each
pyenv CPython 3.10-3.13 present), a real gcmond, real gunicorn.

A GC-heavy program is attached mid-run; when it ends it writes its own
gc.get_stats(), and gcmond's totals for it must equal them: the
collections before the attach counted as before the agent loaded (the
figure attach prints), every later one seen. Every refusal is checked to
leave the target as it was: its output, exit status and signal
dispositions the same as without the attach. (Not tests/e2e/test_attach.py:
that one is about gcmond finding agents' areas.)

    GCMON_BUILDDIR=$PWD/build GCMON_SRCDIR=$PWD /usr/bin/python3 -m pytest tests/e2e/test_attach_pid.py
"""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcmontest as gt  # noqa: E402

PROG = os.path.join(gt.PROGRAMS, "attach_pid_prog.py")
GUNICORN_CONF = os.path.join(gt.PROGRAMS, "launcher_gunicorn_conf.py")
GDB = shutil.which("gdb")

pytestmark = [
    pytest.mark.skipif(not gt.HAVE_AGENT, reason=gt.NO_AGENT),
    pytest.mark.skipif(GDB is None, reason="gdb not installed (apt-get install gdb)"),
]

VERSIONS = gt.python_versions()


def pythons():
    """(version, interpreter) for /usr/bin/python3 and every pyenv CPython
    3.10-3.13 (a version that is absent is a skip that says so)."""
    out = []
    for v in ("3.10", "3.11", "3.12", "3.13"):
        for py in VERSIONS.get(v, []):
            out.append(pytest.param(py, id="%s-%s" % (v, py.split("/")[-3]
                                                      if "pyenv" in py else "debian")))
        if v not in VERSIONS:
            out.append(pytest.param(None, id=v, marks=pytest.mark.skip(
                reason="no CPython %s here (pyenv install %s)" % (v, v))))
    return out


@pytest.fixture
def tmp():
    d = gt.private_dir("attach-pid-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# gcmond: conftest.py's; tmp is this file's own, 0755: another user
# (test_not_permitted_other_uid) runs a copy of the launcher from it.

def plain_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GCMON_") and k != "PYTHONPATH"}
    env.update(extra)
    return env


class Target:
    """attach_pid_prog.py running under python (optionally behind a prefix
    such as unshare); .pid is the interpreter's pid as we see it."""

    def __init__(self, tmp, mode, *args, python=None, prefix=(), env=None, name="t"):
        self.outdir = os.path.join(tmp, name)
        os.mkdir(self.outdir)
        os.chmod(self.outdir, 0o777)
        self.proc = subprocess.Popen(
            list(prefix) + [python or gt.PYTHON, PROG, mode, self.outdir] + [str(a) for a in args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env if env is not None else plain_env())
        gt.wait_for(lambda: glob.glob(os.path.join(self.outdir, "ready-*")) or
                    self.proc.poll() is not None, 30, what="the target to start")
        assert self.proc.poll() is None, self.proc.communicate()
        self.pid = self.proc.pid
        if prefix:
            # unshare --fork: the interpreter is its child.
            kids = gt.wait_for(lambda: open("/proc/%d/task/%d/children" % (
                self.pid, self.pid)).read().split(), 10, what="unshare's child")
            self.pid = int(kids[0])
        self.sig = signals(self.pid)    # untouched() compares

    def stop(self, timeout=60):
        open(os.path.join(self.outdir, "stop"), "w").close()
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def stats(self):
        import json
        (path,) = glob.glob(os.path.join(self.outdir, "stats-*.json"))
        with open(path) as f:
            return json.load(f)

    def kill(self):
        if self.proc.poll() is not None:
            return
        # The interpreter first: behind unshare it holds the pipes, and as
        # its namespace's pid 1 only SIGKILL reaches it from here.
        for pid in dict.fromkeys([self.pid, self.proc.pid]):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.communicate(timeout=30)


def signals(pid):
    """The signal mask and dispositions of pid's main thread."""
    with open("/proc/%d/status" % pid) as f:
        return {k: v.strip() for k, v in (l.split(":", 1) for l in f)
                if k in ("SigBlk", "SigIgn", "SigCgt")}


def pgp(*args, env=None, timeout=120, pre=()):
    return subprocess.run(list(pre) + [gt.PYGCPROFILER] + list(args), capture_output=True,
                          text=True, timeout=timeout,
                          env=env if env is not None else plain_env())


def attach(d, *pids, extra=(), **kw):
    return pgp("attach", "--socket", d.sock, *extra, *[str(p) for p in pids], **kw)


def before_of(out, pid):
    m = re.search(r"pid %d: attached \(CPython [0-9.]+\): reporting to \S+; "
                  r"(\d+) collections before the attach" % pid, out)
    assert m, out
    return int(m.group(1))


def stopped_ms(out, pid):
    m = re.search(r"pid %d: .*stopped ([0-9.]+) ms" % pid, out)
    assert m, out
    return float(m.group(1))


def check_exact(d, pid, rec, before=None, idle=False):
    """gcmond's totals for pid equal its own gc.get_stats(); the ones it did
    not see are the ones before the attach (idle: it may have collected
    nothing since, as a gunicorn master waiting in select)."""
    procs = gt.wait_ended(d, [pid])
    p = procs[pid]
    got = gt.totals(p)
    want = rec["stats"]
    got += [[0, 0, 0]] * (len(want) - len(got))
    assert got == want, "pid %d: gcmond %r != gc.get_stats() %r" % (pid, got, want)
    seen = sum(g["seen"] for g in p["generations"])
    unseen = sum(g["collections"] for g in p["generations"]) - seen
    assert (idle or seen > 0) and unseen > 0, p
    assert p["events"] + p["dropped"] == seen, p
    if before is not None:
        assert unseen == before, (unseen, before)
    return p


# ---- attached mid-run, exact ------------------------------------------------

@pytest.mark.parametrize("python", pythons())
def test_attached_mid_run_totals_equal_gc_get_stats(tmp, gcmond, python):
    t = Target(tmp, "loop", 3, python=python)
    try:
        time.sleep(0.3)             # collections before the attach
        sig = signals(t.pid)
        r = attach(gcmond, t.pid)
        assert r.returncode == 0, r.stderr
        before = before_of(r.stdout, t.pid)
        ms = stopped_ms(r.stdout, t.pid)
        assert 0 < ms < 2000, r.stdout
        assert signals(t.pid) == sig
        os.kill(t.pid, signal.SIGUSR1)     # the program's own handler still runs
        gt.wait_for(lambda: t.proc.poll() is None and any(
            p["pid"] == t.pid for p in gcmond.request({"cmd": "processes"})["processes"]),
            10, what="gcmond to see the attached process")
        time.sleep(0.3)             # collections after it
        rc, out, err = t.stop()
    finally:
        t.kill()
    assert (rc, out, err) == (3, "usr1\ndone\n", ""), (rc, out, err)
    check_exact(gcmond, t.pid, t.stats(), before)


def test_attach_twice_is_a_no_op_saying_so(tmp, gcmond):
    t = Target(tmp, "loop")
    try:
        assert attach(gcmond, t.pid).returncode == 0
        r = attach(gcmond, t.pid)
        assert r.returncode == 0, r.stderr
        assert "pid %d: already attached (reporting to %s" % (t.pid, gcmond.sock) in r.stdout
        rc, out, err = t.stop()
    finally:
        t.kill()
    assert (rc, out, err) == (0, "done\n", "")
    p = check_exact(gcmond, t.pid, t.stats())
    assert p["origin"] == "root"


def test_a_process_started_with_the_agent_is_already_attached(tmp, gcmond):
    t = Target(tmp, "loop", env=gt.agent_env(gcmond.sock, base=plain_env()))
    try:
        r = attach(gcmond, t.pid)
        assert r.returncode == 0, r.stderr
        assert "already attached" in r.stdout and "sitecustomize" in r.stdout, r.stdout
        rc, out, err = t.stop()
    finally:
        t.kill()
    assert (rc, out, err) == (0, "done\n", "")


def records(d, pid):
    """Every process record gcmond has for pid, in the order they ended
    (the live one last)."""
    return sorted((p for p in d.request({"cmd": "processes"})["processes"]
                   if p["pid"] == pid),
                  key=lambda p: float("inf") if p["end"] is None else p["end"])


def summed(recs):
    """Per-generation [collections, collected, uncollectable] of records."""
    n = max(len(r["generations"]) for r in recs)
    out = [[0, 0, 0] for _ in range(n)]
    for r in recs:
        for i, g in enumerate(gt.totals(r)):
            out[i] = [a + b for a, b in zip(out[i], g)]
    return out


@pytest.mark.parametrize("python", pythons())
def test_detach_then_attach_again(tmp, gcmond, python):
    """detach ends the agent's record (gcmond has exactly the collections
    up to it; ended_by "detach") and the process runs on; an attach again
    is a new record whose totals are the process's own gc.get_stats(),
    and the host's totals count every collection once: the ones between
    detach and attach as before the agent loaded."""
    t = Target(tmp, "loop", python=python)
    try:
        time.sleep(0.2)
        sig = signals(t.pid)
        r = attach(gcmond, t.pid)
        assert r.returncode == 0, r.stderr
        before1 = before_of(r.stdout, t.pid)
        time.sleep(0.3)
        r = pgp("detach", str(t.pid))
        assert r.returncode == 0, r.stderr
        assert "pid %d: detached" % t.pid in r.stdout, r.stdout
        first = gt.wait_for(lambda: [p for p in records(gcmond, t.pid)
                                     if p["ended_by"] == "detach"], 20,
                            what="gcmond to end the detached record")[0]
        assert first["state"] == "ended" and first["exit_code"] is None, first
        time.sleep(0.3)             # collections while detached
        assert records(gcmond, t.pid) == [first] or \
            gt.totals(records(gcmond, t.pid)[0]) == gt.totals(first)
        r = pgp("detach", str(t.pid))
        assert r.returncode == 0 and "pid %d: already detached" % t.pid in r.stdout, r
        r = attach(gcmond, t.pid)
        assert r.returncode == 0, r.stdout + r.stderr
        m = re.search(r"pid %d: attached again \(CPython [0-9.]+\): reporting to \S+; "
                      r"(\d+) collections since the detach count as before" % t.pid, r.stdout)
        assert m, r.stdout
        gap = int(m.group(1))
        assert gap > 0, r.stdout
        gt.wait_for(lambda: any(p["state"] == "live" for p in records(gcmond, t.pid)),
                    20, what="gcmond to see the new record")
        time.sleep(0.3)
        assert signals(t.pid) == sig
        rc, out, err = t.stop()
    finally:
        t.kill()
    assert (rc, out, err) == (0, "done\n", ""), (rc, out, err)
    want = t.stats()["stats"]
    gt.wait_for(lambda: all(p["state"] == "ended" for p in records(gcmond, t.pid)), 20,
                what="gcmond to see it end")
    recs = records(gcmond, t.pid)
    assert [p["ended_by"] for p in recs] == ["detach", "exit"], recs
    assert [(p["origin"], p["role"]) for p in recs] == [("root", "master")] * 2, recs
    assert gt.totals(recs[0]) == gt.totals(first)
    # The new record alone is the process: exact, as gcmonctl summary --pid says.
    second = recs[1]
    got = gt.totals(second) + [[0, 0, 0]] * (len(want) - len(second["generations"]))
    assert got == want, (got, want)
    by_pid = gcmond.request({"cmd": "summary", "pid": t.pid})["summary"]
    assert by_pid["collections"] == sum(g[0] for g in want), by_pid
    # The host: each collection once; unseen = before the first attach
    # and while detached; seen = what both records saw.
    host = gcmond.request({"cmd": "summary"})["summary"]
    assert host["collections"] == sum(g[0] for g in want), (host, want)
    seen = sum(g["seen"] for p in recs for g in p["generations"])
    assert seen == sum(g[0] for g in want) - before1 - gap, (seen, want, before1, gap)
    assert sum(g[0] for g in gt.totals(first)) < sum(g[0] for g in want)


def test_detach_of_a_process_without_the_agent_says_so(tmp):
    t = Target(tmp, "loop")
    try:
        r = pgp("detach", str(t.pid))
        assert r.returncode == 0 and "pid %d: not attached: nothing done" % t.pid in r.stdout, r
        rc, out, err = t.stop()
    finally:
        t.kill()
    assert (rc, out, err) == (0, "done\n", "")


# ---- gunicorn --tree ---------------------------------------------------------

def test_gunicorn_tree_every_worker_exact_no_request_failed(tmp, gcmond):
    import threading
    import urllib.request
    if subprocess.run([gt.PYTHON, "-c", "import gunicorn"]).returncode != 0:
        pytest.skip("gunicorn not installed (apt-get install python3-gunicorn)")
    stats, ready = os.path.join(tmp, "stats"), os.path.join(tmp, "ready")
    os.mkdir(stats)
    os.mkdir(ready)
    port = gt.free_port()
    g = subprocess.Popen([gt.PYTHON, "-m", "gunicorn", "-c", GUNICORN_CONF, "--chdir",
                          gt.EXAMPLES, "--workers", "4", "--bind", "127.0.0.1:%d" % port,
                          "--log-level", "warning", "app:app"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=plain_env(LAUNCHER_STATS_DIR=stats, LAUNCHER_READY_DIR=ready))
    ok, failed, stop = [0], [], threading.Event()

    def load():
        while not stop.is_set():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10) as r:
                    r.read()
                    ok[0] += 1
            except Exception as e:     # noqa: BLE001 (every failure counts)
                failed.append(repr(e))
    threads = []
    try:
        gt.wait_for(lambda: len(os.listdir(ready)) == 4 or g.poll() is not None, 30,
                    what="four gunicorn workers")
        assert g.poll() is None, g.communicate()
        workers = sorted(int(w) for w in os.listdir(ready))
        threads = [threading.Thread(target=load) for _ in range(4)]
        for th in threads:
            th.start()
        gt.wait_for(lambda: ok[0] > 50, 30, what="load")
        r = attach(gcmond, g.pid, extra=["--tree"])
        assert r.returncode == 0, r.stdout + r.stderr
        for pid in [g.pid] + workers:
            assert re.search(r"pid %d: attached" % pid, r.stdout), r.stdout
        gt.wait_for(lambda: set([g.pid] + workers) <= set(gt.processes(gcmond)), 10,
                    what="gcmond to list the master and its workers")
        n = ok[0]
        gt.wait_for(lambda: ok[0] > n + 50, 30, what="load after the attach")
    finally:
        stop.set()
        for th in threads:
            th.join(30)
        if g.poll() is None:
            g.send_signal(signal.SIGTERM)
        out, err = g.communicate(timeout=60)
    assert failed == [], failed[:5]
    assert g.returncode == 0, err
    import json
    recs = {}
    for name in os.listdir(stats):
        with open(os.path.join(stats, name)) as f:
            rec = json.load(f)
        recs[rec["pid"]] = {"stats": [[s["collections"], s["collected"], s["uncollectable"]]
                                      for s in rec["stats"]]}
    assert set(workers) | {g.pid} <= set(recs), recs.keys()
    for pid in workers:
        check_exact(gcmond, pid, recs[pid])
    check_exact(gcmond, g.pid, recs[g.pid], idle=True)


# ---- namespaces ----------------------------------------------------------------

def _unshare_ok():
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                       capture_output=True)
    return r.returncode == 0


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                    reason="needs unshare(1) and root")
@pytest.mark.parametrize("how", ["same-files", "agent-hidden", "in-a-chroot"])
def test_target_in_pid_and_mount_namespace_attached_from_outside(tmp, gcmond, how):
    """unshare --pid --fork --mount-proc: pid 1 inside, another pid here.
    agent-hidden: a tmpfs over the agent's directory in the target's mount
    namespace, so the attach must take the agent along (/proc/PID/root).
    in-a-chroot: both sides chrooted into a bind of / (as on a build
    machine's chroot): the target's maps then name its files by paths
    neither root reaches, so its symbols are read through map_files."""
    if not _unshare_ok():
        pytest.skip("unshare --pid --mount-proc is not permitted here")
    prefix = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"]
    py = gt.PYTHON
    pre = ()
    if how == "agent-hidden":
        prefix += ["sh", "-c", 'mount -t tmpfs none "$0" && exec "$@"', gt.AGENT_DIR]
    if how == "in-a-chroot":
        # Outside tmp, and removed by rmdir only: a tree removal that
        # met a mount of / still there would remove the machine.
        root = tempfile.mkdtemp(prefix="gcmon-chroot-")
        subprocess.run(["mount", "--rbind", "/", root], check=True)
        pre = ("chroot", root)
        prefix = list(pre) + prefix
    try:
        t = Target(tmp, "loop", python=py, prefix=prefix)
        try:
            if how == "agent-hidden":
                assert not os.path.exists("/proc/%d/root%s" % (t.pid, gt.AGENT_SO))
            r = attach(gcmond, t.pid, pre=pre)
            assert r.returncode == 0, r.stdout + r.stderr
            before_of(r.stdout, t.pid)
            rc, out, err = t.stop()
        finally:
            t.kill()
    finally:
        if pre:
            subprocess.run(["umount", "-R", "-l", pre[1]], check=True)
            os.rmdir(pre[1])
    assert (rc, out, err) == (0, "done\n", "")
    rec = t.stats()
    assert rec["pid"] == 1
    # gcmond knows it by its pid here (issue 22), its own pid as ns_pid.
    p = check_exact(gcmond, t.pid, rec)
    assert p["ns_pid"] == 1, p


def leftovers(d):
    """The attach directories of requests for gcmond d still on disk."""
    out = []
    for req in glob.glob("/tmp/gcmon-attach-*/*"):
        try:
            with open(req) as f:
                if d.sock in f.read():
                    out.append(req)
        except OSError:
            pass
    return out


# ---- refusals: a clear message, a non-zero status, the target untouched ------

def untouched(t, attach_result, want_rc=0, want_out="done\n"):
    """The refused target runs on: its signal mask and dispositions as at
    its start, then its output and exit status as without the attach."""
    assert t.proc.poll() is None, attach_result
    assert signals(t.pid) == t.sig, attach_result
    rc, out, err = t.stop()
    assert (rc, out, err) == (want_rc, want_out, ""), (rc, out, err, attach_result)


def test_not_cpython(tmp, gcmond):
    p = subprocess.Popen(["sleep", "30"])
    try:
        gt.wait_for(lambda: os.readlink("/proc/%d/exe" % p.pid).endswith("/sleep"), 10,
                    what="sleep to start")
        sig = signals(p.pid)
        r = attach(gcmond, p.pid)
        assert r.returncode == 1
        assert "pid %d: not a CPython process (its executable /usr/bin/sleep" % p.pid in r.stderr
        assert p.poll() is None
        assert signals(p.pid) == sig
    finally:
        p.kill()
        p.wait()
    assert p.returncode == -signal.SIGKILL


def test_older_than_3_10(tmp, gcmond):
    root = os.path.expanduser("~/.pyenv/versions")
    olds = sorted(glob.glob(os.path.join(root, "3.[6-9].*", "bin", "python3")))
    if not olds:
        pytest.skip("no CPython older than 3.10 here (pyenv install 3.9)")
    t = Target(tmp, "loop", python=olds[-1])
    try:
        r = attach(gcmond, t.pid)
        assert r.returncode == 1
        assert re.search(r"it runs Python 3\.[6-9] .*needs CPython 3\.10 or later", r.stderr), r.stderr
    finally:
        untouched(t, r)


def test_free_threaded(tmp, gcmond):
    fts = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[3-9]*t/bin/python3*t")))
    if not fts:
        pytest.skip("no free-threaded CPython here (pyenv install 3.13t); "
                    "tests/unit/check_attach covers the names")
    t = Target(tmp, "loop", python=fts[-1])
    try:
        sig = signals(t.pid)
        r = attach(gcmond, t.pid)
        assert r.returncode == 1
        assert re.search(r"pid %d: it runs a free-threaded CPython 3\.\d+t .*cannot load "
                         r"abi3 extensions" % t.pid, r.stderr), r.stderr
        assert signals(t.pid) == sig
    finally:
        untouched(t, r)


def test_socket_directory_missing_then_attach_elsewhere(tmp, gcmond):
    """gcmon.start()'s own refusal comes back as the reason; nothing was
    loaded, so a later attach to a real gcmond works."""
    t = Target(tmp, "loop")
    try:
        r = attach(gcmond, t.pid, extra=["--socket", "/nonexistent-gcmon/gcmon.sock"])
        assert r.returncode == 1
        assert "pid %d: GcmonError: gcmon.start: no directory /nonexistent-gcmon for the " \
               "gcmond socket" % t.pid in r.stderr, r.stderr
        r = attach(gcmond, t.pid)
        assert r.returncode == 0, r.stderr
        rc, out, err = t.stop()
    finally:
        t.kill()
    assert (rc, out, err) == (0, "done\n", "")
    check_exact(gcmond, t.pid, t.stats())


def test_no_such_process(gcmond):
    r = attach(gcmond, 2 ** 31 - 2)
    assert r.returncode == 1 and "no such process" in r.stderr, r


def test_process_exits_during_the_attach(tmp, gcmond):
    """Its main thread blocked in time.sleep, another thread ends it
    (os._exit(7)) before the main thread reaches a safe point."""
    t = Target(tmp, "exit", 1.5)
    r = attach(gcmond, t.pid, extra=["--timeout", "30"])
    out, err = t.proc.communicate(timeout=30)
    assert r.returncode == 1
    assert "pid %d: it exited during the attach, before its main thread reached a " \
           "safe point; nothing was loaded" % t.pid in r.stderr, r.stderr
    assert (t.proc.returncode, out, err) == (7, "exiting\n", "")
    assert leftovers(gcmond) == []


def test_blocked_in_a_long_c_call_bounded_wait_then_nothing(tmp, gcmond):
    """time.sleep(3) with --timeout 0.5: a clear error after 0.5 s; when the
    sleep ends the queued loader finds the attach cancelled and does
    nothing: no output, same exit status, never seen by gcmond."""
    t = Target(tmp, "sleep", 3)
    sig = signals(t.pid)
    t0 = time.monotonic()
    r = attach(gcmond, t.pid, extra=["--timeout", "0.5"])
    took = time.monotonic() - t0
    assert r.returncode == 1
    assert "did not reach a safe point within 0.5 s" in r.stderr, r.stderr
    assert took < 2.5, took
    assert signals(t.pid) == sig
    out, err = t.proc.communicate(timeout=30)
    assert (t.proc.returncode, out, err) == (7, "slept\n", "")
    assert t.pid not in gt.processes(gcmond)
    assert leftovers(gcmond) == []


def test_gdb_missing_names_the_package(tmp, gcmond):
    t = Target(tmp, "loop")
    try:
        r = attach(gcmond, t.pid, env=plain_env(GCMON_GDB="/nonexistent/gdb"))
        assert r.returncode == 1
        assert "gdb is needed for CPython" in r.stderr and \
            "install Debian's gdb package: apt-get install gdb" in r.stderr, r.stderr
        empty = os.path.join(tmp, "empty")
        os.mkdir(empty)
        r = attach(gcmond, t.pid, env=plain_env(PATH=empty))
        assert r.returncode == 1 and "not found on PATH" in r.stderr, r.stderr
    finally:
        untouched(t, r)


def test_not_permitted_other_uid(tmp, gcmond):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv(1) to run attach as another user")
    # The build tree may sit below a 0700 directory (/root on a fresh
    # machine): the other user runs a copy of the launcher and of the
    # agent from a directory it can reach.
    bindir = os.path.join(tmp, "bin")
    shutil.copytree(gt.AGENT_DIR, os.path.join(bindir, "agent"),
                    ignore=shutil.ignore_patterns("*.o", ".deps"))
    shutil.copy2(gt.PYGCPROFILER, bindir)
    for root, dirs, _ in os.walk(bindir):
        for x in dirs + [""]:
            os.chmod(os.path.join(root, x), 0o755)
    env = plain_env()
    env["GCMON_AGENT_DIR"] = os.path.join(bindir, "agent")
    t = Target(tmp, "loop")
    try:
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            os.path.join(bindir, "pygcprofiler"), "attach", "--socket",
                            gcmond.sock, str(t.pid)], capture_output=True, text=True,
                           timeout=120, env=env)
        assert r.returncode == 1
        assert "pid %d: not permitted to attach: it runs as uid 0 and this runs as uid " \
               "65534 without CAP_SYS_PTRACE; run it as uid 0 or as root" % t.pid in r.stderr, r
    finally:
        untouched(t, r)


def test_not_permitted_without_cap_sys_ptrace(tmp, gcmond):
    """Root in a container without CAP_SYS_PTRACE: capsh drops it."""
    if os.geteuid() != 0 or shutil.which("capsh") is None:
        pytest.skip("needs root and capsh(1)")
    t = Target(tmp, "loop")
    try:
        cmd = " ".join([gt.PYGCPROFILER, "attach", "--socket", gcmond.sock, str(t.pid)])
        r = subprocess.run(["capsh", "--drop=cap_sys_ptrace", "--", "-c", cmd],
                           capture_output=True, text=True, timeout=60, env=plain_env())
        assert r.returncode == 1, r
        assert "not permitted to attach: it holds capabilities this process lacks, and " \
               "this process has no CAP_SYS_PTRACE" in r.stderr, r.stderr
        assert "--cap-add=SYS_PTRACE" in r.stderr
    finally:
        untouched(t, r)


def test_yama_ptrace_scope(tmp, gcmond):
    """Yama at 1 or more: a process of the same user that is not our
    descendant is refused before gdb runs, naming the setting."""
    path = "/proc/sys/kernel/yama/ptrace_scope"
    if not os.path.exists(path):
        pytest.skip("no Yama in this kernel (%s); tests/unit/check_attach covers its "
                    "messages" % path)
    with open(path) as f:
        scope = int(f.read().strip())
    if scope == 0:
        pytest.skip("kernel.yama.ptrace_scope is 0 here")
    if os.geteuid() == 0 and scope < 3:
        pytest.skip("kernel.yama.ptrace_scope is %d, which root's CAP_SYS_PTRACE "
                    "passes; run the tests as a user to see it refuse" % scope)
    t = Target(tmp, "loop")
    try:
        sig = signals(t.pid)
        r = attach(gcmond, t.pid)
        assert r.returncode == 1, r
        assert "pid %d: not permitted to attach: kernel.yama.ptrace_scope is %d" % (
            t.pid, scope) in r.stderr, r.stderr
        assert signals(t.pid) == sig
    finally:
        untouched(t, r)


@pytest.mark.parametrize("args,says", [
    ([], "no process id given"),
    (["abc"], "'abc' is not a process id"),
    (["0"], "'0' is not a process id"),
    (["--bogus", "1"], "unknown option '--bogus'"),
    (["--timeout", "0", "1"], "invalid value '0' for --timeout"),
    (["--service", "", "1"], "invalid value '' for --service"),
    (["--tree=1", "1"], "option --tree takes no value"),
])
def test_bad_usage_exits_2(args, says):
    r = pgp("attach", *args)
    assert r.returncode == 2 and says in r.stderr, r


def test_detach_refuses_attach_options():
    r = pgp("detach", "--socket", "/x", "1")
    assert r.returncode == 2 and "unknown option '--socket'" in r.stderr, r


def test_help_lists_every_option_and_each_is_in_the_man_page():
    with open(os.path.join(gt.SRCDIR, "man", "pygcprofiler.1")) as f:
        # mdoc: ".Fl \-timeout" renders as --timeout.
        man = re.sub(r"Fl \\-", "--", f.read()).replace("\\-", "-")
    for topic in ("attach", "detach"):
        r = pgp("help", topic)
        assert r.returncode == 0 and r.stdout.startswith("Usage: pygcprofiler %s" % topic)
        opts = re.findall(r"^  (--[a-z-]+)", r.stdout, re.M)
        assert opts, r.stdout
        for o in opts:
            assert re.search(re.escape(o) + r"\b", man), \
                "%s %s is not in pygcprofiler(1)" % (topic, o)
    assert "pygcprofiler attach" in pgp("--help").stdout
