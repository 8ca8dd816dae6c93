"""test_agent: the in-process agent, end to end, with real interpreters.

Each test runs tests/e2e/programs/agent_prog.py under the agent (the
bootstrap on PYTHONPATH, gcmontest.agent_env) against receiver.py, a
frame receiver that decodes protocol.h in Python, and compares what the
agent reported (baseline + last counters) with the gc.get_stats() that
the same process wrote as its last act. To run against the real daemon
instead, replace the Receiver with gcmontest.Daemon and read the same
totals from its control answers. Everything lives in private temp dirs.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcmontest  # noqa: E402
import receiver  # noqa: E402

PROG = os.path.join(gcmontest.PROGRAMS, "agent_prog.py")
FLUSH_MS = 50

pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(gcmontest.AGENT_DIR, "_gcmon.abi3.so")),
    reason="agent not built: make agent/_gcmon.abi3.so agent/sitecustomize.py")


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="gcmon-agent-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def recv(tmp):
    r = receiver.Receiver(os.path.join(tmp, "gcmon.sock")).start()
    yield r
    r.close()


def plain_env():
    env = dict(os.environ)
    for k in [k for k in env if k.startswith("GCMON_") or k == "PYTHONPATH"]:
        del env[k]
    return env


def env_for(sock, **opts):
    opts.setdefault("flush_ms", FLUSH_MS)
    return gcmontest.agent_env(sock, base=plain_env(), **opts)


def run(mode, outdir, env, *args, python=None, timeout=60):
    return subprocess.run([python or gcmontest.PYTHON, PROG, mode, outdir] + list(args),
                          env=env, capture_output=True, text=True, timeout=timeout)


def stats_files(outdir):
    out = {}
    for name in os.listdir(outdir):
        if name.startswith("stats-") and name.endswith(".json"):
            with open(os.path.join(outdir, name)) as f:
                rec = json.load(f)
            out[rec["pid"]] = rec
    return out


def settled(r, pids):
    """Every pid reported, its counters in, and no connection open."""
    return all(r.by_pid(p) is not None and r.by_pid(p).counters is not None
               and r.by_pid(p).open == 0 for p in pids) and \
        all(p.open == 0 for p in r.procs.values())


def check_exact(r, rec):
    p = r.by_pid(rec["pid"])
    assert p is not None, "pid %d never said HELLO" % rec["pid"]
    got = [[g["collections"], g["collected"], g["uncollectable"]] for g in p.totals()]
    want = rec["stats"]
    # Generations the interpreter has but the agent never saw count zero.
    got += [[0, 0, 0]] * (len(want) - len(got))
    assert got == want, "pid %d: agent totals %r != gc.get_stats() %r" % (rec["pid"], got, want)
    assert p.hello["ppid"] == rec["ppid"]
    return p


def run_and_settle(r, mode, outdir, env, *args, python=None, rc=0):
    cp = run(mode, outdir, env, *args, python=python)
    assert cp.returncode == rc, cp.stderr
    recs = stats_files(outdir)
    r.wait(lambda rr: settled(rr, recs), what="frames of %r" % sorted(recs))
    assert r.errors == []
    return cp, recs


def test_totals_equal_gc_get_stats_at_exit(tmp, recv):
    cp, recs = run_and_settle(recv, "basic", tmp, env_for(recv.path))
    assert len(recs) == 1
    rec = next(iter(recs.values()))
    p = check_exact(recv, rec)
    assert p.hello["origin"] == receiver.ORIGIN_ROOT
    assert p.hello["pid"] == rec["pid"]
    assert p.hello["run_id"] == "test-run"
    assert p.hello["argv"][-3:] == [PROG, "basic", tmp]
    assert p.hello["base"][0]["threshold"] > 0
    assert p.bye is not None, "no BYE at exit"
    # Nothing dropped: every collection the agent saw arrived as an event.
    assert p.counters["dropped"] == 0
    assert len(p.events) == p.seen() > 0
    assert all(e["generation"] < 3 and e["start_ns"] > 0 for e in p.events)
    assert sum(e["collected"] for e in p.events) == \
        sum(g["collected"] for g in p.counters["gen"])
    starts = [e["start_ns"] for e in p.events]
    assert starts == sorted(starts)


def test_ring_smaller_than_burst_drops_detail_keeps_totals(tmp, recv):
    env = env_for(recv.path, ring=16, flush_ms=1000)
    _, recs = run_and_settle(recv, "burst", tmp, env, "5000")
    rec = next(iter(recs.values()))
    p = check_exact(recv, rec)
    dropped = p.counters["dropped"]
    assert dropped > 0, "a 16-slot ring held a 5000-collection burst?"
    assert len(p.events) + dropped == p.seen()
    assert p.seen() >= 5000


def test_os_fork_child_reported_with_inherited_baseline(tmp, recv):
    _, recs = run_and_settle(recv, "fork", tmp, env_for(recv.path))
    roles = {rec["role"]: rec for rec in recs.values()}
    assert set(roles) == {"root", "fork"}
    root = check_exact(recv, roles["root"])
    child = check_exact(recv, roles["fork"])
    assert root.hello["origin"] == receiver.ORIGIN_ROOT
    assert child.hello["origin"] == receiver.ORIGIN_FORK
    assert child.hello["ppid"] == roles["root"]["pid"]
    assert child.hello["flags"] & receiver.HELLO_BASELINE_INHERITED
    assert not root.hello["flags"] & receiver.HELLO_BASELINE_INHERITED
    # The child counts only its own collections.
    assert child.seen() > 0 and len(child.events) == child.seen()


@pytest.mark.parametrize("method,origin", [("fork", receiver.ORIGIN_FORK),
                                           ("spawn", receiver.ORIGIN_EXEC)])
def test_multiprocessing_children_reported(tmp, recv, method, origin):
    _, recs = run_and_settle(recv, "mp_" + method, tmp, env_for(recv.path))
    roles = {rec["role"]: rec for rec in recs.values()}
    assert set(roles) == {"root", "mp"}
    check_exact(recv, roles["root"])
    child = check_exact(recv, roles["mp"])
    assert child.hello["origin"] == origin
    assert child.hello["ppid"] == roles["root"]["pid"]
    # A fork child leaves by os._exit; multiprocessing's exit path still
    # sends BYE, so nothing of its last flush interval is lost.
    assert child.bye is not None, "multiprocessing child ended without BYE"


def test_subprocess_child_reported_as_exec(tmp, recv):
    _, recs = run_and_settle(recv, "subprocess", tmp, env_for(recv.path))
    roots = [r for r in recs.values() if r["ppid"] != os.getpid()]
    assert len(recs) == 2 and len(roots) == 1
    root = [r for r in recs.values() if r not in roots][0]
    check_exact(recv, root)
    child = check_exact(recv, roots[0])
    assert child.hello["origin"] == receiver.ORIGIN_EXEC
    assert child.hello["ppid"] == root["pid"]


def test_output_and_exit_status_unchanged(tmp, recv):
    plain = run("basic", tmp, plain_env(), "3")
    with_agent = run("basic", tmp, env_for(recv.path), "3")
    assert plain.returncode == with_agent.returncode == 3
    assert plain.stdout == with_agent.stdout
    assert plain.stderr == with_agent.stderr


def test_fork_prints_no_new_warning(tmp, recv):
    # CPython 3.12+ warns when a multi-threaded process forks.
    args = [gcmontest.PYTHON, "-W", "always", PROG, "fork", tmp]
    plain = subprocess.run(args, env=plain_env(), capture_output=True, text=True, timeout=60)
    agent = subprocess.run(args, env=env_for(recv.path), capture_output=True, text=True, timeout=60)
    assert plain.returncode == agent.returncode == 0
    assert plain.stderr == agent.stderr == ""


def test_no_new_objects_tracked_by_gc(tmp, recv):
    plain = run("tracked", tmp, plain_env())
    agent = run("tracked", tmp, env_for(recv.path))
    assert plain.returncode == agent.returncode == 0
    assert agent.stdout == plain.stdout, "agent left objects tracked by gc"


def test_user_sitecustomize_still_runs(tmp, recv):
    site = os.path.join(tmp, "usersite")
    os.mkdir(site)
    with open(os.path.join(site, "sitecustomize.py"), "w") as f:
        f.write("import sys\nsys.stdout.write('user sitecustomize ran\\n')\n")
    code = ("import sys, sitecustomize; print(sitecustomize.__file__); "
            "print(any(p.rstrip('/').endswith('agent') and 'sitecustomize' not in p "
            "for p in sys.path if p == %r))" % gcmontest.AGENT_DIR)
    env = env_for(recv.path)
    env["PYTHONPATH"] += os.pathsep + site
    plain = plain_env()
    plain["PYTHONPATH"] = site
    a = subprocess.run([gcmontest.PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    b = subprocess.run([gcmontest.PYTHON, "-c", code], env=plain, capture_output=True, text=True, timeout=60)
    assert a.returncode == b.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    assert a.stdout.startswith("user sitecustomize ran\n" + os.path.join(site, "sitecustomize.py"))
    assert a.stdout.endswith("False\n"), "the agent's directory stayed on sys.path"


def test_missing_daemon_changes_nothing(tmp):
    sock = os.path.join(tmp, "nobody-listens.sock")
    plain = run("basic", tmp, plain_env(), "5")
    # Bounded: a hang past the subprocess timeout fails the test.
    agent = run("basic", tmp, env_for(sock, exit_timeout_ms=500), "5", timeout=30)
    assert (agent.returncode, agent.stdout, agent.stderr) == \
        (plain.returncode, plain.stdout, plain.stderr)


def start_until(tmp, env):
    p = subprocess.Popen([gcmontest.PYTHON, PROG, "until", tmp], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    return p


def finish_until(tmp, p):
    open(os.path.join(tmp, "stop"), "w").close()
    out, err = p.communicate(timeout=60)
    assert (p.returncode, out, err) == (0, "stopped\n", "")
    return next(iter(stats_files(tmp).values()))


def test_daemon_killed_mid_run_then_back_gets_exact_totals(tmp):
    sock = os.path.join(tmp, "gcmon.sock")
    r1 = receiver.Receiver(sock).start()
    p = start_until(tmp, env_for(sock))
    try:
        r1.wait(lambda r: any(pp.seen() > 0 for pp in r.procs.values()), what="first events")
    finally:
        r1.close()                      # the daemon dies mid-run
    r2 = receiver.Receiver(sock).start()
    try:
        r2.wait(lambda r: any(pp.hello["reconnects"] >= 1 for pp in r.procs.values()),
                what="a reconnect")
        rec = finish_until(tmp, p)
        r2.wait(lambda r: settled(r, [rec["pid"]]), what="BYE after reconnect")
        proc = check_exact(r2, rec)
        assert proc.bye is not None
        assert r2.errors == []
    finally:
        r2.close()
        if p.poll() is None:
            p.kill()
            p.wait()


def test_daemon_appearing_later_gets_exact_totals(tmp):
    sock = os.path.join(tmp, "gcmon.sock")
    p = start_until(tmp, env_for(sock, interval=0.05))
    r = receiver.Receiver(sock).start()
    try:
        r.wait(lambda rr: len(rr.procs) == 1, what="HELLO once the daemon is up")
        rec = finish_until(tmp, p)
        r.wait(lambda rr: settled(rr, [rec["pid"]]), what="BYE")
        proc = check_exact(r, rec)
        assert proc.hello["reconnects"] == 0 and proc.bye is not None
        # SAMPLE every GCMON_INTERVAL while connected: RSS and CPU.
        assert proc.samples, "no SAMPLE at a 50 ms interval"
        s = proc.samples[-1]
        assert s["rss_bytes"] > 1 << 20 and s["cpu_user_ns"] + s["cpu_sys_ns"] > 0
    finally:
        r.close()
        if p.poll() is None:
            p.kill()
            p.wait()


def test_final_sample_at_exit_covers_the_whole_process(tmp, recv):
    # An interval far longer than the run: the only SAMPLE is the one the
    # agent sends with its BYE, so CPU and RSS cover the process's life.
    _, recs = run_and_settle(recv, "basic", tmp, env_for(recv.path, interval=3600))
    proc = check_exact(recv, next(iter(recs.values())))
    assert proc.bye is not None
    assert len(proc.samples) == 1, proc.samples
    s = proc.samples[0]
    assert s["rss_bytes"] > 1 << 20 and s["cpu_user_ns"] + s["cpu_sys_ns"] > 0


def test_bad_settings_warn_once_and_use_defaults(tmp, recv):
    env = env_for(recv.path)
    env["GCMON_FLUSH_MS"] = "often"
    env["GCMON_RING"] = "-4"
    cp, recs = run_and_settle(recv, "basic", tmp, env)
    lines = [l for l in cp.stderr.splitlines() if l.startswith("gcmon:")]
    assert len(lines) == 2 and "GCMON_FLUSH_MS" in lines[0] and "GCMON_RING" in lines[1]
    check_exact(recv, next(iter(recs.values())))


def test_dump_objects_and_garbage_at_exit(tmp, recv):
    env = env_for(recv.path, dump_objects=True, dump_garbage=True)
    cp, recs = run_and_settle(recv, "basic", tmp, env)
    assert "gcmon: --dump-garbage: gc.DEBUG_SAVEALL is set for this process" in cp.stderr
    p = recv.by_pid(next(iter(recs)))
    assert p.objects is not None and 0 < len(p.objects["types"]) <= 50
    assert p.objects["total"] >= sum(n for _, n in p.objects["types"])
    names = [t for t, _ in p.objects["types"]]
    assert "dict" in names and "list" in names
    # DEBUG_SAVEALL keeps the program's cycles: lists in gc.garbage.
    assert p.garbage is not None and dict(p.garbage["types"]).get("list", 0) > 0
    assert p.hello["flags"] & 0x0002


@pytest.mark.parametrize("version", ["3.10", "3.11", "3.12", "3.13"])
def test_same_abi3_binary_in_every_cpython(tmp, recv, version):
    found = gcmontest.python_versions().get(version)
    if not found:
        pytest.skip("CPython %s not found (Debian's or pyenv's)" % version)
    _, recs = run_and_settle(recv, "basic", tmp, env_for(recv.path), python=found[0])
    rec = next(iter(recs.values()))
    p = check_exact(recv, rec)
    hexv = p.hello["py_hexversion"]
    assert "%d.%d" % (hexv >> 24, (hexv >> 16) & 0xff) == version


@pytest.mark.skipif(not os.access(gcmontest.GCMOND, os.X_OK), reason="gcmond not built")
def test_real_gcmond_reports_exact_totals_for_root_and_fork(tmp):
    with gcmontest.Daemon() as d:
        cp = run("fork", tmp, env_for(d.sock))
        assert cp.returncode == 0, cp.stderr
        recs = stats_files(tmp)

        def procs():
            ps = {p["pid"]: p for p in d.request({"cmd": "processes"}).get("processes", [])}
            done = all(pid in ps and ps[pid].get("state") != "live" for pid in recs)
            return ps if done else None
        ps = gcmontest.wait_for(procs, 20, what="gcmond to see both processes end")
        for pid, rec in recs.items():
            got = [[g["collections"], g["collected"], g["uncollectable"]]
                   for g in ps[pid]["generations"]]
            assert got == rec["stats"][:len(got)], (pid, got, rec["stats"])
            assert ps[pid]["ppid"] == rec["ppid"]
            assert ps[pid]["origin"] == ("fork" if rec["role"] == "fork" else "root")
