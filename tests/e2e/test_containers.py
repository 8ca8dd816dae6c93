"""Containers and pods, with the kernel's own namespaces (unshare(1), and
bubblewrap when installed): the two shapes operators deploy, each exact
against every process's own gc.get_stats() and naming the right process.

- The node's gcmond (a DaemonSet, `docker run --pid=host`): gcmond in the
  host's PID namespace, the program in one of its own. gcmond sees the
  process under another pid, finds it through the lock its agent holds
  and watches it as any other (pidfd, /proc figures).
- The sidecar without shareProcessNamespace: gcmond in a PID namespace of
  its own, the program in another; gcmond cannot see the process, counts
  every collection all the same, learns of its end from the lock, and
  says which figures it cannot read.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import gcmontest as gt  # noqa: E402
from shmarea import FakeArea  # noqa: E402

PROG = os.path.join(gt.PROGRAMS, "container_prog.py")
GUNICORN_CONF = os.path.join(gt.PROGRAMS, "launcher_gunicorn_conf.py")
UNSHARE = shutil.which("unshare")
BWRAP = shutil.which("bwrap")
HOST, SIDECAR = "host", "sidecar"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="PID namespaces need root here"),
    pytest.mark.skipif(UNSHARE is None, reason="unshare(1) missing: apt-get install util-linux"),
    pytest.mark.skipif(not gt.HAVE_AGENT, reason=gt.NO_AGENT),
]


@pytest.fixture
def tmp():
    d = gt.private_dir("containers-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def pidns(argv, user=False):
    """argv as PID 1's child of a new PID namespace with its own /proc
    (and, with user, a user namespace mapping the caller to root)."""
    pre = [UNSHARE] + (["--user", "--map-root-user"] if user else [])
    return pre + ["--pid", "--fork", "--mount-proc"] + list(argv)


class HostDaemon(gt.Daemon):
    """gcmond in the test's PID namespace (the node's); a sanitizer's
    report in its stderr fails the test."""

    def __exit__(self, *exc):
        self.stop()
        try:
            if exc[0] is None:
                err = self.stderr()
                assert "Sanitizer" not in err and "runtime error" not in err, err[-3000:]
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class NsDaemon(HostDaemon):
    """gcmond in a PID namespace of its own (the sidecar's)."""

    def start(self):
        cmd = pidns([gt.GCMOND, "--socket", self.sock] + self.args)
        if gt.VALGRIND:
            cmd = pidns(gt.VALGRIND_CMD + [gt.GCMOND, "--socket", self.sock] + self.args)
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._stderr)
        gt.wait_for(lambda: self.proc.poll() is not None or self.ping_ok(),
                    60 if gt.VALGRIND else 10, what="gcmond to answer ping")
        if self.proc.poll() is not None:
            raise AssertionError("gcmond exited %s: %s" % (self.proc.returncode, self.stderr()))
        return self

    def stop(self):
        # unshare waits for its child: stop gcmond itself, as a runtime
        # stops a container's init.
        if self.proc and self.proc.poll() is None:
            for c in children(self.proc.pid):
                os.kill(c, signal.SIGTERM)
            try:
                self.proc.wait(60 if gt.VALGRIND else 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_stderr", None):
            self._stderr.close()
        # unshare exits with its child's status: valgrind's error code.
        if gt.VALGRIND and self.proc and self.proc.returncode == gt.VALGRIND_ERROR:
            raise AssertionError("valgrind found errors or leaks in gcmond:\n" + self.stderr())


def daemon(shape, *args, sock=None):
    # The sidecar's gcmond shares the test's network namespace: its
    # --metrics-listen port is reachable from here.
    return (HostDaemon if shape == HOST else NsDaemon)(*args, sock=sock)


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def nspid(pid):
    """The NSpid line of a host pid: [pid here, ..., its own]."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("NSpid:"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError("no NSpid for %d" % pid)


def procs(d, run):
    return d.request({"cmd": "processes", "run": run}).get("processes", [])


def wait_procs(d, run, n, ended=True, timeout=30):
    def ok():
        ps = procs(d, run)
        if len(ps) >= n and (not ended or all(p["state"] != "live" for p in ps)):
            return ps
        return None
    try:
        return gt.wait_for(ok, timeout * (4 if gt.VALGRIND else 1), 0.05,
                           "%d processes of run %s%s" % (n, run, " to end" if ended else ""))
    except AssertionError as e:
        # What gcmond said of the areas (attached, refused and why).
        raise AssertionError("%s; gcmond's processes: %s; its stderr:\n%s"
                             % (e, d.request({"cmd": "processes"}).get("processes"),
                                d.stderr()[-4000:])) from None


def load(path):
    with open(path) as f:
        return json.load(f)


def wait_file(path, p=None, timeout=60):
    def ok():
        if p is not None and p.poll() is not None:
            raise AssertionError("exited %s: %s" % (p.returncode, p.stderr.read() if p.stderr else ""))
        return os.path.exists(path)
    gt.wait_for(ok, timeout, 0.02, path)


def stats_totals(rec):
    return [[s["collections"], s["collected"], s["uncollectable"]] for s in rec["stats"]]


def start_prog(d, tmp, name, how="exit", run=None, user=False, extra_env=None, wrap=None):
    """container_prog.py in a PID namespace of its own, reporting to d."""
    out = os.path.join(tmp, name + ".json")
    env = gt.agent_env(d.sock, run_id=run or name)
    env.update(extra_env or {})
    argv = [gt.PYTHON, PROG, out, how]
    argv = wrap(argv) if wrap else pidns(argv, user=user)
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p, out


# ---- one program in a PID namespace of its own ------------------------------

@pytest.mark.parametrize("shape", [HOST, SIDECAR])
def test_a_program_in_its_own_pid_namespace_is_exact_and_named(shape, tmp):
    """The case that lost 97%: counted exactly, state ended by exit, pid
    in gcmond's namespace where it can see the process (checked against
    the kernel's NSpid while it runs) and ns_pid its own."""
    with daemon(shape) as d:
        p, out = start_prog(d, tmp, "one")
        wait_file(out, p)
        mine = load(out)
        assert mine["pid"] == 1                 # PID 1 of its namespace
        (live,) = wait_procs(d, "one", 1, ended=False)
        assert live["ns_pid"] == 1 and live["state"] == "live"
        if shape == HOST:
            (child,) = children(p.pid)
            assert live["pid"] == child and live["pid"] != 1
            assert nspid(child) == [child, 1]
            assert live["visible"] is True
        else:
            assert live["pid"] == 1 and live["visible"] is False
            assert live["memory"].startswith("unavailable: ")
            assert live["rss_bytes"] is None and live["cpu_s"] is None
        open(out + ".go", "w").close()
        assert p.wait(60) == 0, p.stderr.read()
        (proc,) = wait_procs(d, "one", 1)
        assert gt.totals(proc) == stats_totals(mine)
        assert proc["ended_by"] == "exit", proc
        assert proc["hostname"] == mine["hostname"]
        if shape == SIDECAR:
            # What it wrote at its exit, not /proc: there, never zeros.
            assert proc["cpu_s"] > 0 and proc["max_rss_bytes"] > 0
            assert proc["rss_bytes"] is None
        assert "ended abrupt" not in d.stderr()


@pytest.mark.parametrize("shape", [HOST, SIDECAR])
def test_sigkill_and_os_exit_inside_the_namespace(shape, tmp):
    """A process SIGKILLed inside its namespace ends abrupt with every
    collection counted; one that calls os._exit ends by os._exit with
    its code; gcmond learns both ends across the namespace."""
    with daemon(shape) as d:
        k, kout = start_prog(d, tmp, "killed", how="hang")
        x, xout = start_prog(d, tmp, "osexit", how="os_exit")
        wait_file(kout, k)
        wait_file(xout, x)
        wait_procs(d, "killed", 1, ended=False)
        open(xout + ".go", "w").close()
        assert x.wait(60) == 7, x.stderr.read()
        (victim,) = children(k.pid)
        os.kill(victim, signal.SIGKILL)
        k.wait(60)
        (killed,) = wait_procs(d, "killed", 1)
        assert gt.totals(killed) == stats_totals(load(kout))
        assert killed["ended_by"] == "abrupt"
        (osexit,) = wait_procs(d, "osexit", 1)
        assert gt.totals(osexit) == stats_totals(load(xout))
        assert osexit["ended_by"] == "os._exit" and osexit["exit_code"] == 7


@pytest.mark.parametrize("shape", [HOST, SIDECAR])
def test_two_containers_with_the_same_pids_are_never_mixed(shape, tmp):
    """Two namespaces at once, each program its namespace's PID 1: each
    exact, with its own hostname, neither mixed up with the other; and a
    process of gcmond's own namespace whose pid is 1 (init) is taken for
    neither."""
    with daemon(shape) as d:
        a, aout = start_prog(d, tmp, "ctr-a", wrap=lambda v: [UNSHARE, "--uts", "sh", "-c",
                             'hostname ctr-a && exec "$@"', "sh"] + pidns(v))
        b, bout = start_prog(d, tmp, "ctr-b", wrap=lambda v: [UNSHARE, "--uts", "sh", "-c",
                             'hostname ctr-b && exec "$@"', "sh"] + pidns(v))
        for p, out in ((a, aout), (b, bout)):
            wait_file(out, p)
        for out in (aout, bout):
            open(out + ".go", "w").close()
        assert a.wait(60) == 0 and b.wait(60) == 0
        for name, out in (("ctr-a", aout), ("ctr-b", bout)):
            mine = load(out)
            assert mine["pid"] == 1 and mine["hostname"] == name
            (proc,) = wait_procs(d, name, 1)
            assert gt.totals(proc) == stats_totals(mine), name
            assert proc["hostname"] == name and proc["ns_pid"] == 1
            assert proc["ended_by"] == "exit"
            if shape == HOST:
                assert proc["pid"] != 1
        ps = d.request({"cmd": "processes"})["processes"]
        assert sorted(p["hostname"] for p in ps) == ["ctr-a", "ctr-b"]


@pytest.mark.parametrize("shape", [HOST, SIDECAR])
def test_gcmond_restarted_while_the_containers_run(shape, tmp):
    """A new gcmond finds the areas of live processes of other namespaces
    again (through their locks), and one that ended while no gcmond ran;
    totals stay exact."""
    sock = os.path.join(tmp, "gcmon.sock")
    d = daemon(shape, sock=sock).start()
    try:
        live, lout = start_prog(d, tmp, "stays")
        gone, gout = start_prog(d, tmp, "goes")
        wait_file(lout, live)
        wait_file(gout, gone)
        wait_procs(d, "stays", 1, ended=False)
        wait_procs(d, "goes", 1, ended=False)
        d.stop()
        open(gout + ".go", "w").close()          # ends while no gcmond runs
        assert gone.wait(60) == 0
        d = daemon(shape, sock=sock).start()
        (p,) = wait_procs(d, "stays", 1, ended=False)
        assert p["state"] == "live" and p["ns_pid"] == 1
        open(lout + ".go", "w").close()
        assert live.wait(60) == 0
        for name, out in (("stays", lout), ("goes", gout)):
            (proc,) = wait_procs(d, name, 1)
            assert gt.totals(proc) == stats_totals(load(out)), name
            assert proc["ended_by"] == "exit", proc
    finally:
        d.stop()


# ---- gunicorn inside a namespace --------------------------------------------

def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read()


@pytest.mark.parametrize("shape", [HOST, SIDECAR])
def test_gunicorn_four_workers_in_a_namespace_under_load(shape, tmp):
    """A master and four workers in one PID namespace: one run, each
    process exact against its own gc.get_stats() (keyed by the pids they
    see), roles right; a worker SIGKILLed inside the namespace is counted
    to its last collection and gunicorn's replacement is seen too."""
    stats_dir = os.path.join(tmp, "stats")
    ready_dir = os.path.join(tmp, "ready")
    os.mkdir(stats_dir)
    os.mkdir(ready_dir)
    port = gt.free_port()
    url = "http://127.0.0.1:%d/" % port
    with daemon(shape) as d:
        env = gt.agent_env(d.sock, run_id="pod")
        env["LAUNCHER_STATS_DIR"] = stats_dir
        env["LAUNCHER_READY_DIR"] = ready_dir
        g = subprocess.Popen(pidns(
            [gt.PYTHON, "-m", "gunicorn", "-c", GUNICORN_CONF, "--chdir", gt.EXAMPLES,
             "--workers", "4", "--bind", "127.0.0.1:%d" % port, "--log-level", "warning",
             "app:app"]), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            gt.wait_for(lambda: len(os.listdir(ready_dir)) == 4 or g.poll() is not None,
                        60, 0.05, "four workers")
            assert g.poll() is None, g.stderr.read()
            for _ in range(200):
                assert get(url)[0] == 200
            ps = wait_procs(d, "pod", 5, ended=False)
            assert sorted(p["role"] for p in ps) == ["master"] + ["worker"] * 4
            (master,) = [p for p in ps if p["role"] == "master"]
            assert master["ns_pid"] == 1
            # Kill one worker inside the namespace; gunicorn forks another.
            (host_master,) = children(g.pid)
            victim = children(host_master)[0]
            os.kill(victim, signal.SIGKILL)
            gt.wait_for(lambda: len(os.listdir(ready_dir)) == 5, 60, 0.05, "the replacement")
            for _ in range(200):
                assert get(url)[0] == 200
            wait_procs(d, "pod", 6, ended=False)
            os.kill(host_master, signal.SIGTERM)
            assert g.wait(60) == 0, g.stderr.read()
        finally:
            if g.poll() is None:
                g.kill()
                g.wait()
        recs = {}
        for f in os.listdir(stats_dir):
            r = load(os.path.join(stats_dir, f))
            recs[r["pid"]] = r
        assert sorted(r["role"] for r in recs.values()) == ["master"] + ["worker"] * 4
        ps = {p["ns_pid"]: p for p in wait_procs(d, "pod", 6)}
        assert len(ps) == 6
        for nspid_, rec in recs.items():
            assert gt.totals(ps[nspid_]) == stats_totals(rec), (nspid_, rec["role"])
            assert ps[nspid_]["ended_by"] == "exit"
        (killed,) = [p for n, p in ps.items() if n not in recs]
        assert killed["ended_by"] == "abrupt" and killed["role"] == "worker"
        if shape == HOST:
            assert all(p["visible"] and p["pid"] != n for n, p in ps.items())
            assert all(p["ppid"] == ps[1]["pid"] for n, p in ps.items() if n != 1)
        else:
            assert not any(p["visible"] for p in ps.values())


# ---- user namespaces, rootless -------------------------------------------------

MEMBER = 65533


def test_rootless_program_in_a_user_namespace_is_judged_by_its_real_uid(tmp):
    """An unprivileged user's program in a user namespace that maps it to
    root (rootless containers): the area says uid 0, the kernel says the
    user's uid; gcmond judges by the kernel's (served only with
    --allow-uid), and the totals are exact."""
    agent = os.path.join(tmp, "agent")
    shutil.copytree(gt.AGENT_DIR, agent, ignore=shutil.ignore_patterns("*.o", ".deps"))
    shutil.copy2(PROG, tmp)
    for root, dirs, files in os.walk(tmp):
        for x in dirs:
            os.chmod(os.path.join(root, x), 0o755)
    probe = subprocess.run(pidns(["true"], user=True), user=MEMBER, group=MEMBER,
                           extra_groups=[], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("no unprivileged user namespaces here: %s" % probe.stderr.strip())
    outdir = os.path.join(tmp, "out")
    os.mkdir(outdir)
    os.chmod(outdir, 0o777)
    for allowed in (False, True):
        args = ["--socket-group", str(MEMBER)] + (["--allow-uid", str(MEMBER)] if allowed else [])
        with gt.Daemon(*args) as d:
            os.chmod(d.dir, 0o711)
            out = os.path.join(outdir, "rootless-%d.json" % allowed)
            env = gt.agent_env(d.sock, run_id="rootless")
            env["PYTHONPATH"] = agent
            r = subprocess.Popen(pidns([gt.PYTHON, os.path.join(tmp, "container_prog.py"),
                                        out, "exit"], user=True),
                                 env=env, user=MEMBER, group=MEMBER, extra_groups=[MEMBER],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_file(out, r)
            open(out + ".go", "w").close()
            assert r.wait(60) == 0, r.stderr.read()
            if not allowed:
                gt.wait_for(lambda: "belongs to a user not allowed" in d.stderr(), 10,
                            what="the refusal")
                assert procs(d, "rootless") == []
                continue
            (proc,) = wait_procs(d, "rootless", 1)
            assert gt.totals(proc) == stats_totals(load(out))
            assert proc["ended_by"] == "exit" and proc["ns_pid"] == 1
            assert "another uid" not in d.stderr()


# ---- claims that do not check out ------------------------------------------------

def test_a_claim_of_another_namespace_that_does_not_check_out_is_refused(tmp):
    """An area that says it is of another PID namespace but whose lock is
    held by a process of gcmond's own (or by none) is refused with the
    reason, logged once and counted in the health series; it is never
    attributed to the process of gcmond's namespace with that pid."""
    with gt.Daemon("--metrics-listen", "127.0.0.1:%d" % gt.free_port()) as d:
        liar = FakeArea(d.sock, run="liar", place=(12345, 67), lock=True).publish()
        nolock = FakeArea(d.sock, run="nolock", place=(12345, 67), lock=False).publish()
        gt.wait_for(lambda: d.stderr().count("refused") >= 2, 10, what="two refusals")
        err = d.stderr()
        assert "locked by a process whose own pid is not the one it names" in err, err
        assert "holds no lock" in err, err
        assert d.request({"cmd": "processes"})["processes"] == []
        port = [a for a in d.args if a.startswith("127.0.0.1:")][0].split(":")[1]
        with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=10) as r:
            text = r.read().decode()
        assert "gcmond_shared_areas_refused_namespace_total 2" in text, text
        liar.kill()
        nolock.kill()


# ---- what users read: the container, the pod ------------------------------------

CGROUP_ROOTS = ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup")


def docker_cgroup(tmp):
    """A real cgroup named as docker names a container's
    (system.slice/docker-<id>.scope), or skip where none can be made."""
    cid = os.urandom(32).hex()
    for root in CGROUP_ROOTS:
        if not os.path.exists(os.path.join(root, "cgroup.procs")):
            continue
        path = os.path.join(root, "system.slice", "docker-%s.scope" % cid)
        try:
            os.makedirs(path)
            return cid, path
        except OSError:
            continue
    pytest.skip("no cgroup hierarchy here lets the test make a cgroup")


@pytest.mark.parametrize("shape", [HOST, SIDECAR])
def test_container_and_pod_columns_name_what_the_kernel_and_the_pod_say(shape, tmp):
    """A program in a cgroup of docker's naming shows its container id in
    JSON and a CONTAINER column in gcmonctl processes and top; one whose
    environment carries the downward API's pod names shows a POD column;
    a bare host's table has neither."""
    cid, cg = docker_cgroup(tmp)
    port = gt.free_port()
    try:
        with daemon(shape, "--metrics-listen", "127.0.0.1:%d" % port,
                    "--metrics-per-process", "10") as d:
            into = 'echo $$ > %s/cgroup.procs && exec "$@"' % cg
            p, out = start_prog(d, tmp, "ctr", wrap=lambda v: ["sh", "-c", into, "sh"] + pidns(v))
            q, qout = start_prog(d, tmp, "podded", extra_env={
                "POD_NAME": "web-7d4b9", "POD_NAMESPACE": "shop"})
            wait_file(out, p)
            wait_file(qout, q)
            wait_procs(d, "ctr", 1, ended=False)
            wait_procs(d, "podded", 1, ended=False)
            (ctr,) = procs(d, "ctr")
            assert ctr["container"] == cid
            (podded,) = procs(d, "podded")
            assert podded["pod"] == "web-7d4b9" and podded["namespace"] == "shop"
            assert podded["container"] is None
            r = subprocess.run([gt.GCMONCTL, "--socket", d.sock, "processes", "--run", "ctr"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            head, row = r.stdout.splitlines()[:2]
            assert "CONTAINER" in head.split() and cid[:12] in row.split(), r.stdout
            r = subprocess.run([gt.GCMONCTL, "--socket", d.sock, "processes"],
                               capture_output=True, text=True, timeout=30)
            assert "POD" in r.stdout.splitlines()[0].split() and "shop/web-7d4b9" in r.stdout
            r = subprocess.run([gt.GCMONCTL, "--socket", d.sock, "top", "--once", "--run", "ctr"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            assert "CONTAINER" in r.stdout and cid[:12] in r.stdout, r.stdout
            # Labels only on the per-process series the user asked for.
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as m:
                text = m.read().decode()
            mine = [ln for ln in text.splitlines() if 'container="%s"' % cid in ln]
            assert mine and all(ln.startswith("cpython_gc_process_") for ln in mine), text
            assert any('pod="web-7d4b9"' in ln for ln in text.splitlines())
            for o in (out, qout):
                open(o + ".go", "w").close()
            assert p.wait(60) == 0 and q.wait(60) == 0
            wait_procs(d, "ctr", 1)
            wait_procs(d, "podded", 1)
    finally:
        os.rmdir(cg)


def test_a_bare_host_table_has_no_container_column(tmp):
    with gt.Daemon() as d:
        r = gt.run_python(["-c", "import gc; gc.collect()"], gt.agent_env(d.sock, run_id="bare"))
        assert r.returncode == 0, r.stderr
        (p,) = wait_procs(d, "bare", 1)
        assert p["container"] is None and p["pod"] is None and p["ns_pid"] == p["pid"]
        r = subprocess.run([gt.GCMONCTL, "--socket", d.sock, "processes"],
                           capture_output=True, text=True, timeout=30)
        head = r.stdout.splitlines()[0].split()
        assert "CONTAINER" not in head and "POD" not in head, r.stdout


@pytest.mark.skipif(BWRAP is None, reason="bubblewrap missing: apt-get install bubblewrap")
@pytest.mark.parametrize("shape", [HOST, SIDECAR])
def test_a_bubblewrap_container_is_exact(shape, tmp):
    """bubblewrap, a real container runtime: PID, UTS and IPC namespaces,
    its own /proc; the program inside is exact and named by its hostname."""
    def box(argv):
        return [BWRAP, "--dev-bind", "/", "/", "--proc", "/proc", "--unshare-pid",
                "--unshare-uts", "--unshare-ipc", "--hostname", "box-1",
                "--die-with-parent", "--"] + argv
    with daemon(shape) as d:
        p, out = start_prog(d, tmp, "bwrap", wrap=box)
        wait_file(out, p)
        mine = load(out)
        open(out + ".go", "w").close()
        assert p.wait(60) == 0, p.stderr.read()
        (proc,) = wait_procs(d, "bwrap", 1)
        assert gt.totals(proc) == stats_totals(mine)
        assert proc["hostname"] == "box-1" == mine["hostname"]
        assert proc["ns_pid"] == mine["pid"] and proc["ended_by"] == "exit"
        assert proc["visible"] is (shape == HOST)
