"""test_daemon: gcmond and gcmonctl end to end, with the real daemon,
monitored processes played by tests/e2e/shmarea.py (a real `sleep` and a
shared area whose counters we control; broken and hostile areas), hostile
socket peers from tests/e2e/frames.py and, once agent/ is built, real
Python programs through the agent.

Every test uses a private socket directory and bounded waits. Run by
`make check`, or by hand:

    GCMON_BUILDDIR=$PWD/build-daemon GCMON_SRCDIR=$PWD /usr/bin/python3 -m pytest tests/e2e/test_daemon.py
"""
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import frames  # noqa: E402
import gcmontest as gt  # noqa: E402
import shmarea  # noqa: E402
from shmarea import FakeArea  # noqa: E402

STATS = os.path.join(gt.PROGRAMS, "daemon_stats.py")
FORK = os.path.join(gt.PROGRAMS, "daemon_fork.py")

pytestmark = pytest.mark.skipif(not os.access(gt.GCMOND, os.X_OK),
                                reason="gcmond not built")


class Daemon(gt.Daemon):
    """gt.Daemon that also asserts a clean exit (0 after SIGTERM, and no
    sanitizer report in a --enable-sanitizers build)."""

    def __exit__(self, *exc):
        self.stop()
        try:
            if exc[0] is None:
                err = self.stderr()
                assert self.proc.returncode == 0, (self.proc.returncode, err[-3000:])
                assert "Sanitizer" not in err and "runtime error" not in err, err[-3000:]
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def need_fds(n):
    """Raise our open-file limit to n, or skip the test."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= n:
        return
    if hard != resource.RLIM_INFINITY and hard < n:
        pytest.skip("needs %d open files, the hard limit is %d" % (n, hard))
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


def proc_of(d, pid):
    for p in d.request({"cmd": "processes"})["processes"]:
        if p["pid"] == pid:
            return p
    return None


def wait_events(d, pid, n, timeout=10):
    """Until gcmond has drained n records of pid's ring (its own count)."""
    def ok():
        p = proc_of(d, pid)
        return p is not None and p["events"] >= n
    gt.wait_for(ok, timeout, what="pid %d to reach %d records" % (pid, n))


def ctl(sock, *args, user=None, group=None, groups=None, timeout=30):
    """gcmonctl --socket sock args; user: as that uid (group, groups: with
    that gid and those supplementary groups)."""
    kw = {}
    prog = gt.GCMONCTL
    if user is not None:
        kw["user"] = user
        if group is not None:
            kw["group"] = group
        if groups is not None:
            kw["extra_groups"] = groups
        # The build tree may sit below a 0700 directory (/root): run a copy
        # from a directory the other user can reach.
        d = os.path.join(os.path.dirname(sock), "bin")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        prog = os.path.join(d, "gcmonctl")
        if not os.path.exists(prog):
            shutil.copy2(gt.GCMONCTL, prog)
            os.chmod(prog, 0o755)
    return subprocess.run([prog, "--socket", sock] + list(args),
                          capture_output=True, text=True, timeout=timeout, **kw)


# ---- totals ----------------------------------------------------------------

def test_totals_exact_with_drops_and_across_a_gcmond_restart(tmp):
    """A live area outlives its gcmond: a new gcmond on the same socket finds
    it again (and the file of a process that ended while none was there),
    drains what was recorded meanwhile and keeps the totals exact."""
    sock = os.path.join(tmp, "gcmon.sock")
    with Daemon(sock=sock) as d:
        a = FakeArea(sock, run="r").publish()
        gone = FakeArea(sock, run="r").publish()
        for i in range(20):
            a.collect(i % 3, 100000 + i, collected=i, send=(i % 4 != 0))
        gone.collect(1, 7000)
        wait_events(d, a.pid, 15)
        wait_events(d, gone.pid, 1)
        assert proc_of(d, a.pid)["dropped"] == 5
        assert proc_of(d, a.pid)["events"] == 15
    # No gcmond: the process goes on counting, one ends for good.
    assert os.path.exists(a.path) and os.path.exists(gone.path)
    for i in range(10):
        a.collect(0, 50000, collected=1)
    gone.collect(2, 9000)
    gone.end(clean=False)
    with Daemon(sock=sock) as d:
        wait_events(d, a.pid, 10)       # what the first gcmond had not read
        p = d.ctl("summary", "--pid", str(a.pid))["summary"]
        base = [5, 0, 0]                # frames.hello default baseline
        for g, gen in enumerate(p["generations"]):
            assert gen["collections"] == a.gens[g][0] + base[g]
            assert gen["collected"] == a.gens[g][3] + (10 if g == 0 else 0)
        # Records: the 10 written while no gcmond ran, no more, no fewer.
        assert proc_of(d, a.pid)["events"] == 10
        assert [g["seen"] for g in proc_of(d, a.pid)["generations"]] == \
            [g[0] for g in a.gens]
        assert p["dropped"] == 5
        assert proc_of(d, a.pid)["state"] == "live"
        g = proc_of(d, gone.pid)        # ended while no gcmond watched
        assert g["state"] == "ended" and g["ended_by"] == "abrupt"
        assert [x["collections"] for x in g["generations"]] == gone.totals()
        assert not os.path.exists(gone.path)
        assert len(d.ctl("processes")["processes"]) == 2
        a.end()
        gt.wait_for(lambda: proc_of(d, a.pid)["state"] == "ended", 10)
        assert proc_of(d, a.pid)["ended_by"] == "exit"
        assert [x["collections"] for x in proc_of(d, a.pid)["generations"]] == a.totals()
        gt.wait_for(lambda: not os.path.exists(a.path), 10, what="the area removed")
        assert "attached" in d.stderr()


def test_fork_baseline_not_counted_twice_in_run():
    with Daemon() as d:
        m = FakeArea(d.sock, run="svc",
                     base=((8, 100, 0, 700), (1, 0, 0, 10), (0, 0, 0, 10))).publish()
        m.collect(0, 1000)
        w = []
        for i in range(3):
            # Each worker inherits the master's stats at fork as baseline.
            w.append(FakeArea(d.sock, run="svc", ppid=m.pid,
                              origin=frames.ORIGIN_FORK,
                              flags=frames.HELLO_BASELINE_INHERITED,
                              base=((9, 100, 0, 700), (1, 0, 0, 10), (0, 0, 0, 10))).publish())
            w[-1].collect(0, 2000)
            w[-1].collect(2, 3000)
        for x in [m] + w:
            wait_events(d, x.pid, sum(g[0] for g in x.gens))
        s = d.ctl("summary", "--run", "svc")["summary"]
        # master: baseline 8+1 and 1 seen; workers: own 2 each.
        assert s["collections"] == 9 + 1 + 3 * 2
        assert s["unseen"] == 9
        assert s["generations"][2]["collections"] == 3
        # Per process, the inherited baseline is part of its own stats.
        assert d.ctl("summary", "--pid", str(w[0].pid))["summary"]["collections"] == 10 + 2
        # Their gen 2s were seen, and their memory read: a fake worker (a
        # real sleep) unshared nothing, below the 4 MiB a worker the
        # finding needs (test_memory has the finding with figures).
        recs = {r["rule"] for r in d.ctl("recommendations", "--run", "svc")["recommendations"]}
        assert "prefork_freeze" not in recs
        assert all(proc_of(d, x.pid)["unshared_by_gc_bytes"] == 0 for x in w)
        runs = d.ctl("runs")["runs"]
        assert runs[0]["run"] == "svc" and runs[0]["root_pid"] == m.pid


def test_several_fake_processes_at_once_totals_per_process():
    with Daemon() as d:
        areas = [FakeArea(d.sock, run="many").publish() for i in range(8)]
        for rnd in range(25):
            for i, a in enumerate(areas):
                a.collect(rnd % 3, 1000 * (i + 1), collected=i)
        for a in areas:
            wait_events(d, a.pid, 25)
        procs = {p["pid"]: p for p in d.ctl("processes", "--run", "many")["processes"]}
        for a in areas:
            got = [g["seen"] for g in procs[a.pid]["generations"]]
            assert got == [g[0] for g in a.gens]
            assert [g["collections"] for g in procs[a.pid]["generations"]] == a.totals()
            assert procs[a.pid]["max_pause_ms"] == pytest.approx(a.gens[0][2] / 1e6)
        for a in areas:
            a.end(clean=False)
        for a in areas:
            gt.wait_for(lambda: proc_of(d, a.pid)["state"] == "ended", 10)
            assert proc_of(d, a.pid)["ended_by"] == "abrupt"


# ---- real Python programs through the agent -----------------------------------

def _pythons():
    found = gt.python_versions() if gt.HAVE_AGENT else {}
    return [vs[0] for _, vs in sorted(found.items())] or [gt.PYTHON]


def _check_process(p, stats):
    assert p["state"] == "ended", p
    for g, st in enumerate(stats):
        gen = p["generations"][g]
        assert gen["collections"] == st["collections"], (g, gen, st)
        assert gen["collected"] == st["collected"]
        assert gen["uncollectable"] == st["uncollectable"]


@pytest.mark.skipif(not gt.HAVE_AGENT, reason=gt.NO_AGENT)
@pytest.mark.parametrize("python", _pythons())
def test_real_programs_totals_equal_gc_get_stats(tmp, python):
    with Daemon() as d:
        env = gt.agent_env(d.sock, run_id="real")
        outs = [os.path.join(tmp, "stats%d.json" % i) for i in range(4)]
        procs = [subprocess.Popen([python, STATS, o, str(20 + 10 * i)], env=env)
                 for i, o in enumerate(outs)]
        for p in procs:
            assert p.wait(60) == 0
        ans = d.request({"cmd": "wait", "run": "real", "timeout_ms": 20000,
                         "min_processes": 4}, timeout=30)
        assert ans["ok"] and not ans["timed_out"]
        got = {p["pid"]: p for p in d.ctl("processes", "--run", "real")["processes"]}
        assert len(got) == 4
        for o in outs:
            with open(o) as f:
                mine = json.load(f)
            _check_process(got[mine["pid"]], mine["stats"])
            s = d.ctl("summary", "--pid", str(mine["pid"]))["summary"]
            assert s["collections"] == sum(st["collections"] for st in mine["stats"])


@pytest.mark.skipif(not gt.HAVE_AGENT, reason=gt.NO_AGENT)
def test_real_forked_workers_add_up_without_double_counting(tmp):
    with Daemon() as d:
        env = gt.agent_env(d.sock, run_id="forked")
        r = gt.run_python([FORK, tmp, "3"], env)
        assert r.returncode == 0, r.stderr
        ans = d.request({"cmd": "wait", "run": "forked", "timeout_ms": 20000,
                         "min_processes": 4}, timeout=30)
        assert ans["ok"] and not ans["timed_out"], ans
        got = {p["pid"]: p for p in d.ctl("processes", "--run", "forked")["processes"]}
        dumps = []
        for name in os.listdir(tmp):
            with open(os.path.join(tmp, name)) as f:
                dumps.append(json.load(f))
        assert len(dumps) == 4 and len(got) == 4
        want = 0
        for m in dumps:
            p = got[m["pid"]]
            _check_process(p, m["stats"])
            own = sum(st["collections"] for st in m["stats"])
            if m["inherited"] is not None:
                assert p["role"] == "worker" and p["origin"] == "fork"
                own -= sum(st["collections"] for st in m["inherited"])
            else:
                assert p["role"] == "master"
            want += own
        s = d.ctl("summary", "--run", "forked")["summary"]
        assert s["collections"] == want


# ---- hostile peers ---------------------------------------------------------------

def _send_and_close(path, data, read=False):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(data)
        if read:
            # The daemon closes a bad peer: we see EOF, not a hang.
            assert s.recv(100) == b""
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        s.close()


def test_hostile_clients_are_cut_off_and_areas_stay_exact():
    need_fds(2000)
    with Daemon() as d:
        a = FakeArea(d.sock, run="good").publish()
        a.collect(0, 1000)
        _send_and_close(d.sock, os.urandom(4096), read=True)
        _send_and_close(d.sock, b"\xff" * 64, read=True)
        _send_and_close(d.sock, frames.hello(4002)[:30])            # truncated
        _send_and_close(d.sock, frames.HDR.pack(0xFFFFFFFF, 2, 1, 0) + b"x" * 100, read=True)
        _send_and_close(d.sock, frames.frame(frames.EVENTS, b"", version=9), read=True)
        _send_and_close(d.sock, frames.frame(42, b"abc"), read=True)  # unknown type
        _send_and_close(d.sock, frames.frame(frames.EVENTS, b"\0" * 12), read=True)  # EVENTS first
        # The old agent frames: a socket peer can no longer pose as a
        # monitored process, even with a well-formed HELLO.
        _send_and_close(d.sock, frames.hello(4003)[:-4] + b"\xff\xff\xff\xff", read=True)
        _send_and_close(d.sock, frames.hello(4004) + frames.events([(1, 0, 0, 0, 0)],
                        [frames.event(0, 1000)]), read=True)
        # A control client sending an agent frame.
        _send_and_close(d.sock, frames.frame(frames.CONTROL, b'{"cmd":"ping"}')
                        + frames.frame(frames.SAMPLE, b"\0" * 32))
        # Many connections at once, each idle or garbage.
        many = []
        for i in range(1500):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.sock)
            if i % 2:
                s.send(b"\x08\0\0\0\x63\0\x01\0")
            many.append(s)
        for i in range(50):
            a.collect(1 + i % 2, 2000 + i)
        assert d.request({"cmd": "ping"})["ok"]
        for s in many:
            s.close()
        wait_events(d, a.pid, 51)
        p = proc_of(d, a.pid)
        assert [g["seen"] for g in p["generations"]] == [g[0] for g in a.gens]
        assert [g["collections"] for g in p["generations"]] == a.totals()
        assert p["state"] == "live"
        err = d.stderr()
        assert "frame length" in err or "length" in err
        assert re.search(r"pid %d \(uid \d+, new connection\)" % os.getpid(), err)
        # Each bad peer is logged once, not once per byte.
        assert err.count("closing it") < 1500
        # Nothing a socket peer said became a process.
        assert [x["pid"] for x in d.ctl("processes")["processes"]] == [a.pid]
        a.end()


# ---- hostile areas ---------------------------------------------------------------
# Each case: a good area and a hostile one side by side. gcmond logs the
# hostile one, ignores that process (refused, or lost when it turns bad
# mid-run), and keeps the good one exact.

def _refused_at_attach(d, bad, why):
    gt.wait_for(lambda: "refused %s" % bad.name in d.stderr(), 10,
                what="gcmond to refuse %s" % bad.name)
    assert re.search(r"refused %s in the agent directory: it [^\n]*%s"
                     % (re.escape(bad.name), why), d.stderr()), d.stderr()[-2000:]
    assert proc_of(d, bad.pid) is None
    gt.wait_for(lambda: not os.path.lexists(bad.path), 10, what="the refused file removed")


def _lost_mid_run(d, bad, why):
    gt.wait_for(lambda: re.search(why, d.stderr()), 10, what="gcmond to give up %s" % bad.name)
    assert re.search(r"pid %d: shared area %s %s; no longer read"
                     % (bad.pid, re.escape(bad.name), why), d.stderr()), d.stderr()[-2000:]
    gt.wait_for(lambda: proc_of(d, bad.pid)["state"] == "lost", 10)


def _check_good_stays_exact(d, good, bad=None):
    for i in range(30):
        good.collect(i % 3, 1000 + i, collected=i)
        if bad is not None:
            bad.collect(0, 500)         # the refused one goes on writing
    n = sum(g[0] for g in good.gens)
    wait_events(d, good.pid, n)
    p = proc_of(d, good.pid)
    assert p["events"] == n
    assert [g["seen"] for g in p["generations"]] == [g[0] for g in good.gens]
    assert [g["collections"] for g in p["generations"]] == good.totals()
    assert p["state"] == "live"
    assert d.ping_ok()
    good.end()
    gt.wait_for(lambda: proc_of(d, good.pid)["state"] == "ended", 10)
    assert [g["collections"] for g in proc_of(d, good.pid)["generations"]] == good.totals()


BAD_AT_ATTACH = {
    "wrong_magic": (lambda a: a.set("magic", b"GCMONSH0"), "is not a valid area"),
    "other_version": (lambda a: a.set("version", shmarea.VERSION + 1), "is not a valid area"),
    "huge_ring_capacity": (lambda a: a.set("ring_cap", 1 << 31), "is not a valid area"),
    "ring_beyond_file": (lambda a: a.set("ring_off", 0xFFFFF000), "is not a valid area"),
    "hello_beyond_file": (lambda a: a.set("hello_len", 0x7FFFFFFF), "is not a valid area"),
    # The header names a live process of ours that is not the sleep (this
    # test process), with that process's start time: the HELLO says otherwise.
    "header_claims_other_pid": (lambda a: a.set("pid", os.getpid()).set(
        "start_ticks", shmarea.start_ticks(os.getpid())), "names another pid"),
    "header_claims_other_pid_stale_ticks": (lambda a: a.set("pid", os.getpid()),
                                            "names another pid"),
}


@pytest.mark.parametrize("case", sorted(BAD_AT_ATTACH))
def test_hostile_area_refused_at_attach_others_stay_exact(case):
    make_bad, why = BAD_AT_ATTACH[case]
    with Daemon() as d:
        good = FakeArea(d.sock, run="good").publish()
        good.collect(0, 1000)
        bad = FakeArea(d.sock, run="bad")
        make_bad(bad)
        bad.publish()
        _refused_at_attach(d, bad, why)
        _check_good_stays_exact(d, good, bad)
        bad.kill()
        assert [x["pid"] for x in d.ctl("processes")["processes"]] == [good.pid]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to nobody")
def test_area_of_another_owner_refused_even_when_allowed():
    nobody = 65534
    with Daemon() as d:         # nobody is not allowed: refused for its owner
        good = FakeArea(d.sock, run="good").publish()
        bad = FakeArea(d.sock, run="bad").publish(chown=(nobody, nobody))
        _refused_at_attach(d, bad, r"belongs to a user not allowed")
        _check_good_stays_exact(d, good, bad)
        bad.kill()
    with Daemon("--allow-uid", str(nobody)) as d:   # allowed, but it lies
        good = FakeArea(d.sock, run="good").publish()
        bad = FakeArea(d.sock, run="bad").publish(chown=(nobody, nobody))
        _refused_at_attach(d, bad, "claims a process of another user than its file's owner")
        _check_good_stays_exact(d, good, bad)
        bad.kill()


def test_owner_is_the_file_s_not_the_uid_the_area_writes():
    """The uid in the header is the agent's own view (a user namespace
    maps it): gcmond judges by the file's owner as the kernel reports it,
    so an area that writes another uid is still its owner's process, and
    a version-2 area (no namespace, no lock) is read as before."""
    with Daemon() as d:
        a = FakeArea(d.sock, run="mapped").set("uid", os.geteuid() + 4242).publish()
        old = FakeArea(d.sock, run="v2").set("version", 2).publish()
        for x in (a, old):
            x.collect(0, 1000)
            x.collect(2, 5000)
        wait_events(d, a.pid, 2)
        wait_events(d, old.pid, 2)
        for x in (a, old):
            p = proc_of(d, x.pid)
            assert [g["collections"] for g in p["generations"]] == x.totals()
            assert p["ns_pid"] == x.pid and p["visible"] is True
            x.end()
        gt.wait_for(lambda: all(proc_of(d, x.pid)["state"] == "ended" for x in (a, old)), 10)
        assert "refused" not in d.stderr()


def test_symlink_in_place_of_an_area_is_not_followed(tmp):
    with Daemon() as d:
        good = FakeArea(d.sock, run="good").publish()
        # A complete, valid area of a live process, outside the directory.
        bad = FakeArea(os.path.join(tmp, "elsewhere.sock"), run="bad").publish()
        link = os.path.join(shmarea.agent_dir(d.sock), bad.name)
        os.symlink(bad.path, link)
        bad.path = link
        _refused_at_attach(d, bad, "is a symbolic link")
        assert os.path.exists(os.path.join(tmp, "elsewhere.sock.d", bad.name))
        _check_good_stays_exact(d, good, bad)
        bad.kill()


# Through the mapping, as a process would (a write() would also wake
# gcmond's directory watch).
def _head_backwards(bad):
    bad.mpoke(shmarea.OFF_HEAD, struct.pack("<Q", bad.head - 3))


def _head_far_ahead(bad):
    bad.mpoke(shmarea.OFF_HEAD, struct.pack("<Q", bad.head + (1 << 40)))


def _truncated(bad):
    bad.mpoke(shmarea.OFF_HEAD, struct.pack("<Q", bad.head))   # mapped first
    os.ftruncate(bad.fd, 4096)          # header page only: the ring is gone
    bad.mpoke(shmarea.OFF_HEAD, struct.pack("<Q", bad.head + 1))


def _truncated_to_nothing(bad):
    os.ftruncate(bad.fd, 0)


BAD_MID_RUN = {
    "ring_head_backwards": (_head_backwards, r"is inconsistent \(ring indexes\)"),
    "ring_head_huge": (_head_far_ahead, r"is inconsistent \(ring indexes\)"),
    "truncated_ring": (_truncated, "was truncated under gcmond"),
    "truncated_header": (_truncated_to_nothing, "was truncated under gcmond"),
}


@pytest.mark.parametrize("case", sorted(BAD_MID_RUN))
def test_area_turning_hostile_mid_run_is_dropped_others_stay_exact(case):
    """Attached and drained first, then broken under gcmond: the ring's
    head moving backwards or jumping far ahead, the file truncated (gcmond
    catches the SIGBUS of reading it): that process is given up as lost."""
    make_bad, why = BAD_MID_RUN[case]
    with Daemon() as d:
        good = FakeArea(d.sock, run="good").publish()
        good.collect(0, 1000)
        bad = FakeArea(d.sock, run="bad").publish()
        for i in range(5):
            bad.collect(0, 700)
        wait_events(d, bad.pid, 5)
        make_bad(bad)
        _lost_mid_run(d, bad, why)
        _check_good_stays_exact(d, good)
        bad.kill()
        assert proc_of(d, bad.pid)["state"] == "lost"
        assert proc_of(d, bad.pid)["events"] == 5


def test_client_cap_refuses_beyond_and_serves_after():
    need_fds(4400)      # the daemon inherits it: room for its 4096 clients
    socks = []
    # A held client says what it is (a watch of a run that never comes):
    # a silent one would lose its slot after 10 s.
    hold = frames.frame(frames.CONTROL, b'{"cmd":"watch","run":"nobody"}')
    wait = 5 if gt.VALGRIND else 1

    def held():
        """One more client: False if gcmond refused it (busy, then close;
        a reset when our unread frame made the close one)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.sock)
        socks.append(s)
        s.settimeout(wait)
        try:
            s.sendall(hold)
            data = s.recv(4096)
        except socket.timeout:
            return True
        except (ConnectionResetError, BrokenPipeError):
            return False
        if data and json.loads(data[gt.HDR.size:]).get("code") == "busy":
            return False
        return data != b""

    try:
        with Daemon() as d:
            for _ in range(4090):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(d.sock)
                socks.append(s)
                s.sendall(hold)
            # Fill up to the cap, then once more after a pause: a client
            # still closing (Daemon's own ping) may free a slot late.
            for _ in range(2):
                n = 0
                while held():
                    n += 1
                    assert n < 20, "gcmond took more than its 4096 clients"
                time.sleep(wait)
            # The one refused was told why before the close (above); a
            # client now is refused the same way, and says so.
            r = ctl(d.sock, "ping")
            assert r.returncode == 1 and "4096 clients already" in r.stderr, r.stderr
            for s in socks:
                s.close()
            socks = []
            gt.wait_for(d.ping_ok, 60 if gt.VALGRIND else 10, what="ping after the flood")
            assert "refusing" in d.stderr()
    finally:
        for s in socks:
            s.close()


def test_slow_watcher_never_stalls_ingestion():
    with Daemon() as d:
        w = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        w.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        w.connect(d.sock)
        body = b'{"cmd":"watch"}'
        w.sendall(frames.frame(frames.CONTROL, body))
        # Subscribed before the first event (under valgrind the burst can
        # be drained before gcmond has read the request).
        w.settimeout(60 if gt.VALGRIND else 10)
        assert json.loads(gt.read_frame(w)[1])["ok"]
        a = FakeArea(d.sock, run="fast", ring=4096).publish()
        # ~130 bytes of JSON each: 13 MB for the watcher, far beyond what
        # its socket and gcmond's 1 MiB watch queue hold.
        n = 100000
        a.burst(0, n, 1000, wait_s=60)  # waits for the ring, never the watcher
        wait_events(d, a.pid, n, timeout=240 if gt.VALGRIND else 60)
        p = proc_of(d, a.pid)
        assert [g["seen"] for g in p["generations"]] == [n, 0, 0]
        assert p["events"] == n
        assert p["dropped"] == 0
        assert d.request({"cmd": "ping"})["ok"]
        # Now read the watcher: it was told how much it lost.
        w.settimeout(60 if gt.VALGRIND else 10)
        lost = 0
        deadline = time.monotonic() + (120 if gt.VALGRIND else 20)
        while time.monotonic() < deadline and lost == 0:
            typ, payload = gt.read_frame(w)
            o = json.loads(payload)
            if o.get("type") == "lost":
                lost = o["events"]
        assert lost > 0
        w.close()
        a.end()


# ---- logs and signals ------------------------------------------------------------

def _log_lines(*paths):
    return gt.json_lines(*paths)


def test_sighup_rotation_loses_no_line(tmp):
    log = os.path.join(tmp, "gcmond.jsonl")
    with Daemon("--log-events", "all", log_file=log) as d:
        a = FakeArea(d.sock, run="rot").publish()
        for i in range(30):
            a.collect(0, 1000 + i)
        wait_events(d, a.pid, 30)
        os.rename(log, log + ".1")
        d.proc.send_signal(signal.SIGHUP)
        gt.wait_for(lambda: os.path.exists(log), 10, what="the new log")
        for i in range(30):
            a.collect(1, 2000 + i)
        wait_events(d, a.pid, 60)
        a.end()
        gt.wait_for(lambda: proc_of(d, a.pid)["state"] == "ended", 10)
        old = [o for o in _log_lines(log + ".1") if o.get("type") == "event"]
        new = [o for o in _log_lines(log) if o.get("type") == "event"]
        assert len(old) + len(new) == 60
        assert len(new) >= 30
        durs = sorted(round(o["duration_ms"] * 1e6) for o in old + new)
        assert durs == sorted([1000 + i for i in range(30)] + [2000 + i for i in range(30)])
        ev = new[-1]
        for k in ("pid", "run", "gen", "time", "duration_ms", "collected", "uncollectable"):
            assert k in ev
        assert any(o.get("type") == "process_end" for o in _log_lines(log))


def test_sigterm_writes_final_summary_and_exits_0(tmp):
    log = os.path.join(tmp, "gcmond.jsonl")
    d = Daemon("--alert-threshold-ms", "1", log_file=log).start()
    try:
        a = FakeArea(d.sock, run="fin").publish()
        a.collect(2, 5_000_000)        # 5 ms: above the 1 ms threshold
        wait_events(d, a.pid, 1)
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(10) == 0
        lines = _log_lines(log)
        assert any(o["type"] == "alert" and o["pid"] == a.pid for o in lines)
        final = [o for o in lines if o["type"] == "summary" and o["final"]]
        assert len(final) == 1
        assert final[0]["summary"]["collections"] == 5 + 1
        assert not os.path.exists(d.sock)
        assert os.path.exists(a.path)  # a live process's area stays
        a.kill()
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


def test_unwritable_log_reported_once_and_daemon_serves():
    with Daemon(log_file="/dev/full") as d:
        a = FakeArea(d.sock, run="full").publish()
        for i in range(20):
            a.collect(0, 1000)
        wait_events(d, a.pid, 20)
        a.end()
        gt.wait_for(lambda: proc_of(d, a.pid)["state"] == "ended", 10)
        assert d.stderr().count("cannot write /dev/full") == 1


def test_stop_command_and_exit_status(tmp):
    d = Daemon().start()
    try:
        r = ctl(d.sock, "stop")
        assert r.returncode == 0, r.stderr
        assert d.proc.wait(10) == 0
        r = ctl(d.sock, "ping")
        assert r.returncode == 3
        assert "no gcmond at %s (start one: gcmond --socket %s)" % (d.sock, d.sock) in r.stderr
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


# ---- the socket --------------------------------------------------------------------

def test_second_daemon_on_live_socket_refuses():
    with Daemon() as d:
        r = subprocess.run([gt.GCMOND, "--socket", d.sock], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 1
        assert "gcmond: a daemon is already listening on %s" % d.sock in r.stderr
        assert d.ping_ok()


def test_stale_socket_is_replaced(tmp):
    path = os.path.join(tmp, "gcmon.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()                      # the file stays, nobody listens
    with Daemon(sock=path) as d:
        assert d.ping_ok()
        assert os.stat(path).st_mode & 0o777 == 0o600


def test_world_writable_directory_refused(tmp):
    os.chmod(tmp, 0o777)
    r = subprocess.run([gt.GCMOND, "--socket", os.path.join(tmp, "s.sock")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "writable by everyone" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody")
def test_other_uid_refused_unless_allowed():
    nobody = 65534
    with Daemon() as d:
        os.chmod(d.dir, 0o711)
        os.chmod(d.sock, 0o666)    # only SO_PEERCRED stands in the way
        r = ctl(d.sock, "ping", user=nobody)
        assert r.returncode == 1
        assert "uid %d may not use this gcmond" % nobody in r.stderr
        assert "uid %d is not allowed" % nobody in d.stderr()
    with Daemon("--allow-uid", str(nobody)) as d:
        os.chmod(d.dir, 0o711)
        os.chmod(d.sock, 0o666)
        r = ctl(d.sock, "ping", user=nobody)
        assert r.returncode == 0, r.stderr
        r = ctl(d.sock, "stop", user=nobody)
        assert r.returncode == 1 and "only the daemon's own user" in r.stderr
        assert d.ping_ok()


GROUP, OTHER_GROUP, MEMBER, STRANGER = 4242, 4243, 65533, 65532


def as_user(uid, gid, groups, argv, **kw):
    return subprocess.run(argv, user=uid, group=gid, extra_groups=groups,
                          capture_output=True, text=True, timeout=60, **kw)


def shared_agent_env(d, run):
    """An agent environment other users can read: a copy of the agent and
    of daemon_stats.py in the daemon's private directory (the build tree
    may sit below a 0700 one)."""
    os.chmod(d.dir, 0o711)
    agent = os.path.join(d.dir, "agent")
    shutil.copytree(gt.AGENT_DIR, agent, ignore=shutil.ignore_patterns("*.o", ".deps"))
    for root, dirs, _ in os.walk(agent):
        for x in dirs + [""]:
            os.chmod(os.path.join(root, x), 0o755)
    shutil.copy2(os.path.join(gt.PROGRAMS, "daemon_stats.py"), d.dir)
    env = gt.agent_env(d.sock, run_id=run)
    env["PYTHONPATH"] = agent
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become other users")
@pytest.mark.skipif(not gt.HAVE_AGENT, reason=gt.NO_AGENT)
def test_allow_group_serves_the_group_s_processes_and_peers():
    """--allow-group GID: a process running with the group (effective or
    supplementary, as the kernel says) is served, its peers and its
    shared area; one without it is refused, whatever its uid."""
    with Daemon("--socket-group", str(GROUP), "--allow-group", str(GROUP)) as d:
        env = shared_agent_env(d, "grp")
        out = os.path.join(d.dir, "out")
        os.mkdir(out)
        os.chmod(out, 0o777)
        stats = os.path.join(out, "member.json")
        r = as_user(MEMBER, MEMBER, [GROUP], [gt.PYTHON, "daemon_stats.py", stats],
                    env=env, cwd=d.dir)
        assert r.returncode == 0 and "gcmon:" not in r.stderr, r.stderr
        with open(stats) as f:
            mine = json.load(f)
        p = gt.wait_ended(d, [mine["pid"]])[mine["pid"]]
        assert gt.totals(p) == [[s["collections"], s["collected"], s["uncollectable"]]
                                for s in mine["stats"]]
        # Its peers: by a supplementary group, by the effective gid.
        r = ctl(d.sock, "ping", user=MEMBER, group=MEMBER, groups=[GROUP])
        assert r.returncode == 0, r.stderr
        r = ctl(d.sock, "ping", user=MEMBER, group=GROUP, groups=[])
        assert r.returncode == 0, r.stderr
        # Without the group: refused by gcmond (the socket opened to all,
        # so only SO_PEERCRED and SO_PEERGROUPS stand in the way).
        os.chmod(d.sock, 0o666)
        r = ctl(d.sock, "ping", user=STRANGER, group=STRANGER, groups=[])
        assert r.returncode == 1 and "may not use this gcmond" in r.stderr, r.stderr
    # A process that may write the agent directory (--socket-group) but
    # runs without the allowed group: its area is refused, it runs on.
    with Daemon("--socket-group", str(GROUP), "--allow-group", str(OTHER_GROUP)) as d:
        env = shared_agent_env(d, "nogrp")
        r = as_user(STRANGER, STRANGER, [GROUP], [gt.PYTHON, "-c", "import gc; gc.collect()"],
                    env=env, cwd=d.dir)
        assert r.returncode == 0, r.stderr
        gt.wait_for(lambda: "belongs to a user not allowed (see --allow-uid, --allow-group)"
                    in d.stderr(), 10, what="the refused area's line")
        assert d.request({"cmd": "processes"})["processes"] == []


# ---- gcmonctl ------------------------------------------------------------------------

def test_gcmonctl_exit_codes_and_errors(tmp):
    r = ctl(os.path.join(tmp, "none.sock"), "ping")
    assert r.returncode == 3
    assert "start one: gcmond --socket" in r.stderr
    for bad in (["frobnicate"], [], ["summary", "--run", "a", "--pid", "1"],
                ["runs", "--pid", "1"], ["--bogus", "ping"], ["summary", "--pid", "x"]):
        r = ctl(os.path.join(tmp, "none.sock"), *bad)
        assert r.returncode == 2, (bad, r.stderr)
    with Daemon() as d:
        r = ctl(d.sock, "summary", "--run", "nosuch")
        assert r.returncode == 1 and "no run" in r.stderr
        assert d.request({"cmd": "summary", "bogus": 1})["code"] == "bad_request"
        assert d.request({"cmd": "wait"})["code"] == "bad_request"
        assert d.request({"cmd": "wait", "run": "x", "timeout_ms": 10 ** 6})["code"] == "bad_request"
        ans = d.request({"cmd": "wait", "run": "x", "timeout_ms": 50})
        assert ans["ok"] and ans["timed_out"]


def test_gcmonctl_human_and_json_outputs():
    with Daemon() as d:
        a = FakeArea(d.sock, run="hum").publish()
        a.collect(0, 1000)
        wait_events(d, a.pid, 1)
        for cmd in (["summary"], ["processes"], ["runs"], ["recommendations"], ["ping"]):
            r = ctl(d.sock, *cmd)
            assert r.returncode == 0, (cmd, r.stderr)
            assert r.stdout.strip(), cmd
            j = d.ctl(*cmd)
            assert j["ok"] is True
        assert str(a.pid) in ctl(d.sock, "processes").stdout
        a.end()


def test_gcmonctl_watch_streams_events():
    with Daemon() as d:
        w = subprocess.Popen([gt.GCMONCTL, "--socket", d.sock, "--json", "watch", "--run", "w"],
                             stdout=subprocess.PIPE, text=True)
        try:
            a = FakeArea(d.sock, run="w", ring=4096).publish()
            b = FakeArea(d.sock, run="other", ring=4096).publish()
            seen = []
            deadline = time.monotonic() + 15
            # Collect until the watcher (connecting concurrently) shows one.
            while not any(o.get("type") == "event" for o in seen):
                assert time.monotonic() < deadline, seen
                a.collect(2, 3000, collected=7)
                b.collect(0, 1000)
                while select.select([w.stdout], [], [], 0.1)[0]:
                    line = w.stdout.readline()
                    assert line, "gcmonctl watch ended"
                    seen.append(json.loads(line))
            ev = [o for o in seen if o["type"] == "event"][0]
            assert ev["pid"] == a.pid and ev["gen"] == 2 and ev["collected"] == 7
            assert all(o.get("run", "w") == "w" for o in seen)
            a.end()
            b.end()
        finally:
            w.send_signal(signal.SIGINT)
            assert w.wait(10) == 0


def test_help_and_version_match_man_pages():
    for prog, page in ((gt.GCMOND, "gcmond.8"), (gt.GCMONCTL, "gcmonctl.1")):
        r = subprocess.run([prog, "--version"], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0 and re.match(r"\w+ \d+\.\d+", r.stdout)
        r = subprocess.run([prog, "--help"], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0
        with open(os.path.join(gt.SRCDIR, "man", page)) as f:
            man = f.read().replace("\\-", "-")
        for opt in set(re.findall(r"--[a-z][a-z-]+", r.stdout)):
            assert opt in man, (page, opt)
        assert "EXIT STATUS" in man


def test_report_objects_garbage_and_wait_for_run_end():
    def types(ftype, total, entries):
        p = struct.pack("<QI", total, len(entries))
        for name, count in entries:
            p += struct.pack("<Q", count) + frames._str(name)
        return frames.frame(ftype, p)

    with Daemon() as d:
        a = FakeArea(d.sock, run="rep").publish()
        a.collect(0, 1000, uncollectable=2)
        wait_events(d, a.pid, 1)
        ans = d.request({"cmd": "wait", "run": "rep", "timeout_ms": 200})
        assert ans["timed_out"] and ans["live"] == 1
        # The exit handler leaves its dumps in the exit area, then exits.
        a.end(frames_bytes=types(frames.OBJECTS, 500, [("list", 100), ("dict", 300), ("int", 1)])
              + types(frames.GARBAGE, 2, [("Cycle", 2)]))
        ans = d.request({"cmd": "wait", "run": "rep", "timeout_ms": 10000}, timeout=20)
        assert ans["ok"] and not ans["timed_out"] and ans["live"] == 0
        rep = d.request({"cmd": "report", "run": "rep"})
        assert rep["ok"]
        assert rep["objects"] == [{"pid": a.pid, "total": 500, "types": [
            {"type": "dict", "count": 300}, {"type": "list", "count": 100},
            {"type": "int", "count": 1}]}]
        assert rep["garbage"][0]["types"] == [{"type": "Cycle", "count": 2}]
        assert rep["summary"]["uncollectable"] == 2
        assert "uncollectable" in {r["rule"] for r in rep["recommendations"]}
        assert [p["pid"] for p in rep["processes"]] == [a.pid]
        assert rep["processes"][0]["ended_by"] == "exit"


def test_requests_behind_a_wait_are_answered_after_it_in_order():
    # pygcprofiler sends its wait and what it asks next in one write.
    def ask(s, *reqs):
        s.sendall(b"".join(gt.HDR.pack(gt.HDR.size + len(b), gt.FRAME_CONTROL,
                                       gt.PROTO_VERSION, 0) + b
                           for b in (json.dumps(r).encode() for r in reqs)))

    def answer(s):
        typ, body = gt.read_frame(s)
        assert typ == gt.FRAME_CONTROL
        return json.loads(body)

    with Daemon() as d:
        a = FakeArea(d.sock, run="inorder").publish()
        a.collect(0, 1000)
        wait_events(d, a.pid, 1)
        before = d.request({"cmd": "summary", "run": "inorder"})["summary"]["collections"]
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(20)
            s.connect(d.sock)
            ask(s, {"cmd": "wait", "run": "inorder", "timeout_ms": 10000},
                {"cmd": "ping"}, {"cmd": "summary", "run": "inorder"})
            s.settimeout(0.5)
            with pytest.raises(socket.timeout):
                s.recv(1, socket.MSG_PEEK)      # nothing before the wait
            s.settimeout(20)
            a.collect(2, 5000)
            a.end()
            w = answer(s)
            assert w["ok"] and not w["timed_out"] and w["live"] == 0, w
            assert answer(s)["version"]
            # Answered after the wait: the collection made meanwhile is in.
            assert answer(s)["summary"]["collections"] == before + 1
            # A wait timing out lets the next request through as well.
            ask(s, {"cmd": "wait", "run": "none-such", "timeout_ms": 100,
                    "min_processes": 1}, {"cmd": "ping"})
            assert answer(s)["timed_out"]
            assert answer(s)["ok"]


def test_answers_to_pipelined_requests_come_in_one_write():
    """What a client asks in one write is answered in one write: it wakes
    once (pygcprofiler asks for its whole report so), and the order and
    every answer are kept. Answered a write each, 401 answers take
    gcmond milliseconds, and the first read holds only part of them."""
    reqs = ([{"cmd": "ping"}] * 200 + [{"cmd": "summary", "run": "corked"}]
            + [{"cmd": "ping"}] * 200)
    body = b"".join(gt.HDR.pack(gt.HDR.size + len(b), gt.FRAME_CONTROL,
                                gt.PROTO_VERSION, 0) + b
                    for b in (json.dumps(r).encode() for r in reqs))
    with Daemon() as d:
        a = FakeArea(d.sock, run="corked").publish()
        a.collect(0, 1000)
        wait_events(d, a.pid, 1)
        want = d.request({"cmd": "summary", "run": "corked"})["summary"]
        for _ in range(3):
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(20)
                s.connect(d.sock)
                s.sendall(body)
                select.select([s], [], [], 20)
                got = s.recv(1 << 20, socket.MSG_DONTWAIT)
                answers = []
                while len(got) >= gt.HDR.size:
                    n, typ = struct.unpack_from("<IH", got)
                    assert typ == gt.FRAME_CONTROL and n <= len(got), (n, len(got))
                    answers.append(json.loads(got[gt.HDR.size:n]))
                    got = got[n:]
                assert got == b"" and len(answers) == len(reqs), len(answers)
                assert all(x["ok"] and "version" in x
                           for x in answers[:200] + answers[201:])
                assert answers[200]["summary"]["collections"] == want["collections"]


def test_malformed_exit_data_logged_counters_kept():
    """Exit data is hostile input too: a frame that lies about its length
    is logged, what came before it is kept, the totals are exact."""
    def objs(total, entries):
        p = struct.pack("<QI", total, len(entries))
        for name, count in entries:
            p += struct.pack("<Q", count) + frames._str(name)
        return frames.frame(frames.OBJECTS, p)

    with Daemon() as d:
        a = FakeArea(d.sock, run="badexit").publish()
        a.collect(1, 1000)
        wait_events(d, a.pid, 1)
        a.end(frames_bytes=objs(7, [("list", 7)]) + frames.HDR.pack(0xFFFF, 5, 1, 0)
              + b"\xff" * 64)
        gt.wait_for(lambda: proc_of(d, a.pid)["state"] == "ended", 10)
        assert "pid %d: exit data malformed at byte" % a.pid in d.stderr()
        rep = d.request({"cmd": "report", "run": "badexit"})
        assert rep["objects"] == [{"pid": a.pid, "total": 7,
                                   "types": [{"type": "list", "count": 7}]}]
        assert [g["collections"] for g in proc_of(d, a.pid)["generations"]] == a.totals()


def test_socket_group_makes_it_0660_and_chgrps():
    import grp
    try:
        gid = grp.getgrnam("nogroup").gr_gid
    except KeyError:
        pytest.skip("no group 'nogroup' here")
    with Daemon("--socket-group", "nogroup") as d:
        st = os.stat(d.sock)
        assert st.st_mode & 0o777 == 0o660 and st.st_gid == gid
    r = subprocess.run([gt.GCMOND, "--socket-group", "no-such-group-x"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "no group" in r.stderr


def test_sigterm_as_soon_as_the_socket_exists_still_drains_and_exits_0(tmp):
    """The socket is connectable before start-up ends (the pidfile is
    written after it). A SIGTERM in between must be the daemon's handled
    signal (exit 0, socket and pidfile removed), not the default action.
    A FIFO as pidfile holds gcmond in that window until we open it."""
    sock = os.path.join(tmp, "gcmon.sock")
    pidfile = os.path.join(tmp, "pid")
    os.mkfifo(pidfile)
    p = subprocess.Popen([gt.GCMOND, "--quiet", "--socket", sock, "--pidfile", pidfile],
                         stderr=subprocess.PIPE, text=True)
    try:
        gt.wait_for(lambda: os.path.exists(sock) or p.poll() is not None, 10,
                    what="the socket")
        p.send_signal(signal.SIGTERM)
        fd = os.open(pidfile, os.O_RDONLY | os.O_NONBLOCK)
        try:
            _, err = p.communicate(timeout=10)
        finally:
            os.close(fd)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, (p.returncode, err)
    assert not os.path.exists(sock)
    assert not os.path.exists(pidfile)


def test_peer_strings_reach_no_terminal_raw():
    """Run ids, argv and the Python version come from any allowed peer: a
    control byte in them (a terminal escape, a newline forging a line) is
    shown escaped by gcmonctl and in gcmond's stderr lines, never raw."""
    run = "evil\x1b[2J\nrun"
    with Daemon() as d:
        a = FakeArea(d.sock, run=run, argv=("prog.py", "\x1b]0;owned\x07")).publish()
        a.collect(0, 1000)
        wait_events(d, a.pid, 1)
        assert proc_of(d, a.pid)["run"] == run      # JSON keeps the bytes exact
        for cmd in (["processes"], ["runs"]):
            r = ctl(d.sock, *cmd)
            assert r.returncode == 0, r.stderr
            assert "\x1b" not in r.stdout and "\x07" not in r.stdout, (cmd, r.stdout)
        assert "\\x1b]0;owned\\x07" in ctl(d.sock, "processes").stdout
        assert "evil\\x1b[2J\\x0arun" in ctl(d.sock, "runs").stdout
        a.end()
        gt.wait_for(lambda: proc_of(d, a.pid)["state"] == "ended", 10,
                    what="pid %d to end" % a.pid)
        err = d.stderr()
    assert "\x1b" not in err, err
    assert "evil\\x1b[2J\\x0arun" in err, err


@pytest.mark.parametrize("cmd", ["ping", "watch"])
def test_gcmonctl_timeout_applies_to_every_command(cmd, tmp):
    """A peer that accepts and never answers: --timeout bounds the wait of
    watch's first answer too, with the same message as other commands."""
    sock = os.path.join(tmp, "mute.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock)
    srv.listen(4)
    try:
        r = subprocess.run([gt.GCMONCTL, "--socket", sock, "--timeout", "0.5", cmd],
                           capture_output=True, text=True, timeout=8)
    finally:
        srv.close()
    assert r.returncode == 1, r.stderr
    assert "did not answer within 0.5 s" in r.stderr, r.stderr


def test_a_peer_that_never_says_what_it_is_loses_its_slot():
    """Idle connections, or a first frame never finished, would otherwise
    hold client slots forever (4096 of them lock every control client
    out): gcmond closes them; the monitored processes, which need no
    connection, are not affected, and a control client still gets in."""
    with Daemon() as d:
        idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        part = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for s in (idle, part):
            s.settimeout(40)
            s.connect(d.sock)
        part.sendall(frames.frame(frames.CONTROL, b'{"cmd":"ping"}')[:9])
        a = FakeArea(d.sock, run="idle").publish()
        assert idle.recv(1) == b""
        assert part.recv(1) == b""
        a.collect(0, 1000)
        wait_events(d, a.pid, 1)
        assert proc_of(d, a.pid)["state"] == "live"
        assert d.ping_ok()
        for s in (idle, part):
            s.close()
        a.end()


@pytest.mark.parametrize("resume", ["space-freed", "space-freed-then-sighup"])
def test_a_line_cut_by_a_full_disk_does_not_swallow_the_next(resume, tmp):
    """The JSON log on a small tmpfs fills up mid-line. Once space is back
    (with or without a SIGHUP reopening the same file), the next line
    starts on a line of its own: every line but the cut one parses."""
    with gt.small_tmpfs(tmp) as fs:
        filler = os.path.join(fs, "filler")
        with open(filler, "wb") as f:
            f.write(b"x" * 48 * 1024)
        log = os.path.join(fs, "gcmond.jsonl")
        with Daemon("--log-events", "all", log_file=log) as d:
            a = FakeArea(d.sock, run="full").publish()
            n = 0
            while "No space left on device" not in d.stderr():
                assert n < 2000, "the log never filled the disk"
                a.collect(0, 1000 + n)
                n += 1
                if n % 20 == 0:
                    wait_events(d, a.pid, n)
            os.unlink(filler)
            if resume.endswith("sighup"):
                d.proc.send_signal(signal.SIGHUP)
                gt.wait_for(lambda: "reopened" in d.stderr(), 10, what="the reopen")
            b = FakeArea(d.sock, run="after").publish()
            b.collect(2, 777)

            def logged():
                with open(log, errors="replace") as f:
                    return '"pid":%d' % b.pid in f.read()
            gt.wait_for(logged, 10, what="the second process in the log")
            a.end()
            b.end()
        with open(log, errors="replace") as f:
            lines = f.read().split("\n")
        bad = []
        for line in lines:
            try:
                json.loads(line) if line else None
            except ValueError:
                bad.append(line)
        assert len(bad) <= 1, bad       # the line the disk cut, alone
        assert not any(str(b.pid) in x for x in bad), bad
        objs = [json.loads(x) for x in lines if x and x not in bad]
        assert any(o["type"] == "process_start" and o["process"]["pid"] == b.pid for o in objs)
        assert any(o["type"] == "event" and o["pid"] == b.pid for o in objs)


# ---- issue 12: rules and figures

SHORT_GC = """
import gc
class N:
    def __init__(self):
        self.me = self
gc.disable()
keep = [[N() for _ in range(150000)]]
gc.enable()
for _ in range(5):
    gc.collect()
"""

LONG_GC = """
import gc, time
class N:
    def __init__(self):
        self.me = self
keep = [[{} for _ in range(100)] for _ in range(2000)]
end = time.monotonic() + 1.3
while time.monotonic() < end:
    for _ in range(2000):
        N()
    gc.collect()
"""


def _run_program(d, tmp, run, source, nproc=1):
    path = os.path.join(tmp, run + ".py")
    with open(path, "w") as f:
        f.write(source)
    r = gt.run_python([path], gt.agent_env(d.sock, run_id=run))
    assert r.returncode == 0, r.stderr
    ans = d.request({"cmd": "wait", "run": run, "timeout_ms": 20000,
                     "min_processes": nproc}, timeout=30)
    assert ans["ok"] and not ans["timed_out"], ans
    return d.request({"cmd": "report", "run": run})


@pytest.mark.skipif(not gt.HAVE_AGENT, reason=gt.NO_AGENT)
def test_too_small_a_sample_gets_no_finding_and_a_real_one_gets_derived_advice(tmp):
    with Daemon() as d:
        rep = _run_program(d, tmp, "short", SHORT_GC)
        s = rep["summary"]
        # What used to fire: GC a large share of a short script's wall
        # time, generation 2 most of its collections.
        assert s["gc_wall_pct"] > rules_gc_wall_pct(), s
        assert s["generations"][2]["collections"] * 10 > s["collections"], s
        rules = {r["rule"] for r in rep["recommendations"]}
        assert not rules & {"gc_time", "gen2_share"}, rep["recommendations"]
        assert s["proc_wall_s"] < 1.0 or s["seen"] < 20, s

        rep = _run_program(d, tmp, "long", LONG_GC)
        s, proc = rep["summary"], rep["processes"][0]
        assert s["proc_wall_s"] >= 1.0 and s["seen"] >= 20, s
        recs = {r["rule"]: r for r in rep["recommendations"]}
        assert "gc_time" in recs, rep["recommendations"]
        assert recs["gc_time"]["severity"] == "critical"
        # The advice starts from this interpreter's own gen 0 threshold
        # and says what it buys.
        t0 = proc["thresholds"][0]
        advice = [a for a in recs["gc_time"]["actions"] if "gc.set_threshold(" in a]
        assert len(advice) == 1, recs["gc_time"]["actions"]
        m = re.search(r"threshold %d -> (\d+); estimated gen 0 collections "
                      r"([\d.]+) -> ([\d.]+) a second, GC time ([\d.]+) -> at most "
                      r"([\d.]+) ms a second" % t0, advice[0])
        assert m, advice[0]
        new_t0 = int(m.group(1))
        assert new_t0 >= 2 * t0 and advice[0].startswith("gc.set_threshold(%d" % new_t0)
        assert float(m.group(3)) < float(m.group(2))
        assert float(m.group(5)) <= float(m.group(4))
        assert "x10" not in advice[0]


def rules_gc_wall_pct():
    """RULES_GC_WALL_PCT, read from daemon/model/rules.h (not copied)."""
    with open(os.path.join(gt.SRCDIR, "daemon", "model", "rules.h")) as f:
        return float(re.search(r"#define RULES_GC_WALL_PCT\s+([\d.]+)", f.read()).group(1))


@pytest.mark.skipif(not gt.HAVE_AGENT, reason=gt.NO_AGENT)
def test_spawned_workers_are_workers_and_the_resource_tracker_a_child(tmp):
    prog = os.path.join(gt.PROGRAMS, "launcher_mp.py")
    with Daemon() as d:
        env = gt.agent_env(d.sock, run_id="spawned")
        r = gt.run_python([prog, "spawn", tmp], env)
        assert r.returncode == 0, r.stderr
        ans = d.request({"cmd": "wait", "run": "spawned", "timeout_ms": 20000,
                         "min_processes": 3}, timeout=30)
        assert ans["ok"] and not ans["timed_out"], ans
        procs = d.ctl("processes", "--run", "spawned")["processes"]
        roles = {}
        for p in procs:
            argv = " ".join(p["argv"])
            kind = ("spawned" if "--multiprocessing-fork" in p["argv"] else
                    "tracker" if "resource_tracker" in argv else "master")
            roles.setdefault(kind, []).append(p["role"])
        assert roles["spawned"] == ["worker", "worker"], procs
        assert roles["master"] == ["master"], procs
        assert roles.get("tracker", ["child"]) == ["child"], procs
        assert {p["origin"] for p in procs if "--multiprocessing-fork" in p["argv"]} == {"exec"}


def _man_keys():
    """{kind: set of keys} from man/gcmond.8's JSON LOG section."""
    with open(os.path.join(gt.SRCDIR, "man", "gcmond.8")) as f:
        text = f.read()
    sect = text.split(".SH JSON LOG", 1)[1].split("\n.SH ", 1)[0]
    keys, tags, lines = {}, [], sect.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line == ".TP":
            tag = lines[i + 1]
            tags = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", re.sub(r'^\.BR? ', "", tag))
            i += 2
            continue
        if line.startswith("Keys:"):
            buf = line[len("Keys:"):]
            while not buf.rstrip().endswith("."):
                i += 1
                buf += " " + lines[i]
            ks = {k.strip() for k in buf.strip().rstrip(".").split(",")}
            for t in tags:
                keys[t] = ks
        i += 1
    return keys


@pytest.mark.skipif(not gt.HAVE_AGENT, reason=gt.NO_AGENT)
def test_every_log_key_is_in_the_man_page_and_no_share_passes_100(tmp):
    man = _man_keys()
    log = os.path.join(tmp, "gcmond.jsonl")
    with Daemon("--alert-threshold-ms", "0.001", "--log-events", "all",
                log_file=log) as d:
        env = gt.agent_env(d.sock, run_id="keys")
        procs = [subprocess.Popen([gt.PYTHON, STATS, os.path.join(tmp, "s%d" % i), "20"],
                                  env=env) for i in range(3)]
        for p in procs:
            assert p.wait(60) == 0
        ans = d.request({"cmd": "wait", "run": "keys", "timeout_ms": 20000,
                         "min_processes": 3}, timeout=30)
        assert ans["ok"] and not ans["timed_out"], ans
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.sock)
        s.sendall(gt.HDR.pack(gt.HDR.size + 2, 1, 99, 0) + b"{}")  # wrong version
        s.settimeout(10)
        try:
            s.recv(100)
        except OSError:
            pass
        s.close()
        gt.wait_for(lambda: os.path.exists(log) and "protocol_error" in open(log).read(),
                    10, what="the protocol_error line")
    with open(log) as f:
        objs = [json.loads(x) for x in f if x.strip()]
    seen = {}
    for o in objs:
        seen.setdefault(o["type"], []).append(o)
    assert set(seen) == {"event", "alert", "process_start", "process_end",
                         "summary", "protocol_error"}, set(seen)
    for kind, group in seen.items():
        for o in group:
            # An alert has the keys of every alert and those of its kind.
            want = man[kind] | (man[o["alert"]] if kind == "alert" else set())
            assert set(o) == want, (kind, set(o) ^ want)
    nested = [("PROCESS", o["process"]) for k in ("process_start", "process_end")
              for o in seen[k]]
    nested += [("SUMMARY", o["summary"]) for o in seen["summary"]]
    nested += [("RUN", r) for o in seen["summary"] for r in o["runs"]]
    for _, o in list(nested):
        nested += [("GEN", g) for g in o.get("generations", [])]
    for name, o in nested:
        assert set(o) == man[name], (name, set(o) ^ man[name])
        assert all(v <= 100 for k, v in o.items() if k.endswith("_pct")), o
    # proc_wall_s is what gc_wall_pct is of: the processes' wall times.
    final = [o for o in seen["summary"] if o["final"]][-1]["summary"]
    walls = sum(o["process"]["wall_s"] for o in seen["process_end"])
    assert abs(final["proc_wall_s"] - walls) <= 1e-6 * max(1.0, walls), (final, walls)
    assert abs(final["gc_wall_pct"] -
               final["gc_time_ms"] / 1000 / final["proc_wall_s"] * 100) < 1e-6


REFUSED_CLIENT = """
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
# Refused at connect: the answer comes before any request.
hdr = b""
while len(hdr) < 8:
    hdr += s.recv(8 - len(hdr))
n = struct.unpack("<IHBB", hdr)[0] - 8
data = b""
while len(data) < n:
    data += s.recv(n - len(data))
print(json.loads(data)["code"])
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as other uids")
def test_a_refused_uid_is_logged_once_a_minute_even_quiet():
    d = Daemon("--quiet", "--socket-group", "65534")
    os.chmod(d.dir, 0o711)
    with d:
        for uid in (65534, 65534, 65534, 65533):
            r = subprocess.run([gt.PYTHON, "-c", REFUSED_CLIENT, d.sock],
                               user=uid, group=65534, capture_output=True,
                               text=True, timeout=30)
            assert r.returncode == 0 and r.stdout.strip() == "forbidden", r
        gt.wait_for(lambda: "uid 65533" in d.stderr(), 10, what="the second uid's line")
        err = d.stderr()
    lines = [x for x in err.splitlines() if "refused pid" in x]
    assert len(lines) == 2, err
    assert "uid 65534 is not allowed (gcmond --allow-uid 65534, or --allow-group)" in lines[0], lines
    assert "uid 65533 is not allowed" in lines[1], lines


FROZEN_MASTER = r"""
import gc, os, sys
keep = [[i] for i in range(20000)]          # objects the master owns
if sys.argv[1] == "freeze":
    gc.freeze()
pids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        for _ in range(3):
            gc.collect()                     # generation 2 in the worker
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
"""


@pytest.mark.skipif(not gt.HAVE_AGENT, reason=gt.NO_AGENT)
@pytest.mark.parametrize("mode", ["plain", "freeze"])
def test_prefork_finding_sees_whether_the_master_froze(mode, tmp):
    """The master's gc.get_freeze_count() reaches gcmond in its exit data:
    the advice to freeze before fork is given only when nothing froze, and
    a master that froze gets the measured result instead."""
    path = os.path.join(tmp, "prefork.py")
    with open(path, "w") as f:
        f.write(FROZEN_MASTER)
    with Daemon() as d:
        run = "prefork-" + mode
        cp = gt.run_python([path, mode], gt.agent_env(d.sock, run_id=run))
        assert cp.returncode == 0, cp.stderr
        ans = d.request({"cmd": "wait", "run": run, "timeout_ms": 20000,
                         "min_processes": 3}, timeout=30)
        assert ans["ok"] and not ans["timed_out"], ans
        procs = d.request({"cmd": "processes", "run": run})["processes"]
        master = [p for p in procs if p["role"] == "master"][0]
        recs = {r["rule"] for r in
                d.request({"cmd": "recommendations", "run": run})["recommendations"]}
        if mode == "freeze":
            assert "prefork_frozen" in recs and "prefork_freeze" not in recs, recs
        else:
            # Measured, these small workers unshared less than 4 MiB each:
            # no advice (test_memory has a graph large enough for it). A
            # worker may end before gcmond's first read of its memory (a
            # loaded machine): unmeasured, the fact itself is the finding.
            assert "prefork_frozen" not in recs, recs
            workers = [p for p in procs if p["role"] == "worker"]
            measured = [p for p in workers if p["memory"] == "read"]
            assert all(p["unshared_by_gc_bytes"] < 4 << 20 for p in measured), measured
            assert ("prefork_freeze" in recs) == (not measured), (recs, workers)
        assert master["ended_by"] == "exit"
