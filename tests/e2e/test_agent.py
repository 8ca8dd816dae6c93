"""test_agent: the in-process agent, end to end, with real interpreters
and the real gcmond.

Each test runs tests/e2e/programs/agent_prog.py under the agent (the
bootstrap on PYTHONPATH, gcmontest.agent_env) with a gcmond on a private
socket, and compares what gcmond read from the process's shared area
(baseline + final counters, event records) with the gc.get_stats() that
the same process wrote as its last act. Processes end every way a
process can (exit, os._exit, SIGTERM, SIGKILL, abort): the counts stay
exact and no event record is lost. Everything lives in private temp dirs.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcmontest  # noqa: E402
import shmarea  # noqa: E402

PROG = os.path.join(gcmontest.PROGRAMS, "agent_prog.py")

pytestmark = pytest.mark.skipif(
    not gcmontest.HAVE_AGENT,
    reason=gcmontest.NO_AGENT)


def plain_env():
    env = dict(os.environ)
    for k in [k for k in env if k.startswith("GCMON_") or k == "PYTHONPATH"]:
        del env[k]
    return env


def env_for(sock, **opts):
    return gcmontest.agent_env(sock, base=plain_env(), **opts)


def run(mode, outdir, env, *args, python=None, timeout=60, pyflags=()):
    return subprocess.run([python or gcmontest.PYTHON] + list(pyflags) +
                          [PROG, mode, outdir] + list(args),
                          env=env, capture_output=True, text=True, timeout=timeout)


def stats_files(outdir):
    out = {}
    for name in os.listdir(outdir):
        if name.startswith("stats-") and name.endswith(".json"):
            with open(os.path.join(outdir, name)) as f:
                rec = json.load(f)
            out[rec["pid"]] = rec
    return out


def check_exact(proc, rec):
    """gcmond's totals for one process equal its own gc.get_stats(), and
    every collection it counted arrived as an event record."""
    got = gcmontest.totals(proc)
    want = rec["stats"]
    # Generations the interpreter has but the agent never saw count zero.
    got += [[0, 0, 0]] * (len(want) - len(got))
    assert got == want, "pid %d: gcmond totals %r != gc.get_stats() %r" % (rec["pid"], got, want)
    assert proc["ppid"] == rec["ppid"]
    seen = sum(g["seen"] for g in proc["generations"])
    assert proc["events"] + proc["dropped"] == seen, proc
    return proc


def run_and_settle(d, mode, outdir, env, *args, python=None, rc=0, pyflags=()):
    cp = run(mode, outdir, env, *args, python=python, pyflags=pyflags)
    assert cp.returncode == rc, cp.stderr
    recs = stats_files(outdir)
    assert recs, "the program wrote no stats: " + cp.stderr
    procs = gcmontest.wait_ended(d, recs)
    return cp, recs, procs


def test_totals_equal_gc_get_stats_at_exit(tmp, gcmond):
    cp, recs, procs = run_and_settle(gcmond, "basic", tmp, env_for(gcmond.sock))
    assert len(recs) == 1
    rec = next(iter(recs.values()))
    p = check_exact(procs[rec["pid"]], rec)
    assert p["origin"] == "root" and p["run"] == "test-run"
    assert p["argv"][-3:] == [PROG, "basic", tmp]
    assert p["thresholds"][0] > 0
    assert p["ended_by"] == "exit"
    # Nothing dropped: every collection the agent saw arrived as an event.
    assert p["dropped"] == 0 and p["events"] > 0
    # gcmond removes the area of a process once it has read it to the end.
    assert os.listdir(shmarea.agent_dir(gcmond.sock)) == []


def test_identity_is_escaped_and_capped_as_the_protocol_says(tmp):
    """The identity load() copies from the interpreter's own objects, read
    back from the area's HELLO (no gcmond: it keeps only 4 KiB of argv):
    undecodable bytes (surrogateescape) as backslashreplace, an argument
    cut to PROTO_MAX_STR at a character's start, the arguments that fit
    in PROTO_MAX_ARGV, the run id cut to PROTO_MAX_ID, sys.executable
    and sys.version's first line as they are."""
    max_argv = 64 << 10
    sock = os.path.join(tmp, "none.sock")
    env = {k.encode(): v.encode() for k, v in env_for(sock).items()}
    env[b"GCMON_RUN_ID"] = b"r\xff" + b"\xc3\xa9" * 200    # 403 bytes
    filler = [b"f%02d" % i + b"y" * 3996 for i in range(20)]  # 3999 each
    args = [gcmontest.PYTHON.encode(), PROG.encode(), b"basic", tmp.encode(),
            b"0", b"caf\xff", ("x" + "\u00e9" * 3000).encode()] + filler
    cp = subprocess.run(args, env=env, capture_output=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    (area,) = os.listdir(sock + ".d")
    h = shmarea.read_hello(os.path.join(sock + ".d", area))
    # 4095 of 4096 bytes: the next é would be split.
    want = args[:5] + [b"caf\\udcff", ("x" + "\u00e9" * 2047).encode()]
    used = sum(map(len, want))
    for f in filler:
        if used + len(f) > max_argv:
            break
        want.append(f)
        used += len(f)
    assert len(want) < len(args), "the filler did not reach the cap"
    assert h["argv"] == want
    # "r", the escape (7 bytes) and 124 é: 255 of 256 bytes.
    assert h["run_id"] == b"r\\udcff" + "\u00e9".encode() * 124
    assert h["executable"] == gcmontest.PYTHON.encode()
    ver = subprocess.run([gcmontest.PYTHON, "-c",
                          "import sys; print(sys.version.splitlines()[0])"],
                         capture_output=True).stdout.rstrip(b"\n")
    assert h["py_version"] == ver
    assert h["origin"] == 0 and h["ngen"] >= 3


def test_extension_under_another_name_is_found_by_the_import_system(tmp, gcmond):
    """gcmon/__init__.py loads _gcmon.abi3.so without the import system's
    search; a package whose extension has another name (_gcmon.so, a
    suffix the import system also takes) falls back to the import
    statement, and the program is monitored all the same."""
    agent = os.path.join(tmp, "agent")
    shutil.copytree(gcmontest.AGENT_DIR, agent)
    pkg = os.path.join(agent, "gcmon")
    os.rename(os.path.join(pkg, "_gcmon.abi3.so"),
              os.path.join(pkg, "_gcmon.so"))
    shutil.rmtree(os.path.join(pkg, "__pycache__"), ignore_errors=True)
    env = env_for(gcmond.sock)
    env["PYTHONPATH"] = agent
    out = os.path.join(tmp, "out")
    os.mkdir(out)
    cp, recs, procs = run_and_settle(gcmond, "basic", out, env)
    assert "gcmon:" not in cp.stderr
    rec = next(iter(recs.values()))
    check_exact(procs[rec["pid"]], rec)


def test_ring_smaller_than_burst_drops_detail_keeps_totals(tmp, gcmond):
    env = env_for(gcmond.sock, ring=64)
    _, recs, procs = run_and_settle(gcmond, "burst", tmp, env, "20000")
    rec = next(iter(recs.values()))
    p = check_exact(procs[rec["pid"]], rec)
    assert p["dropped"] > 0, "a 64-slot ring held a 20000-collection burst?"


def test_os_fork_child_reported_with_inherited_baseline(tmp, gcmond):
    _, recs, procs = run_and_settle(gcmond, "fork", tmp, env_for(gcmond.sock))
    roles = {rec["role"]: rec for rec in recs.values()}
    assert set(roles) == {"root", "fork"}
    root = check_exact(procs[roles["root"]["pid"]], roles["root"])
    child = check_exact(procs[roles["fork"]["pid"]], roles["fork"])
    assert root["origin"] == "root" and child["origin"] == "fork"
    assert child["ppid"] == roles["root"]["pid"]
    # The child counts only its own collections; it left by os._exit(0).
    assert child["events"] > 0 and child["ended_by"] == "os._exit"
    assert child["exit_code"] == 0 and root["exit_code"] is None


@pytest.mark.parametrize("method,origin", [("fork", "fork"), ("spawn", "exec"),
                                           ("forkserver", "fork")])
def test_multiprocessing_children_reported(tmp, gcmond, method, origin):
    _, recs, procs = run_and_settle(gcmond, "mp_" + method, tmp, env_for(gcmond.sock))
    roles = {rec["role"]: rec for rec in recs.values()}
    assert set(roles) == {"root", "mp"}
    check_exact(procs[roles["root"]["pid"]], roles["root"])
    child = check_exact(procs[roles["mp"]["pid"]], roles["mp"])
    assert child["origin"] == origin
    # A forked Process ends by os._exit(exitcode) after its bootstrap; a
    # spawned one returns from spawn_main through the interpreter's exit.
    if origin == "fork":
        assert child["ended_by"] == "os._exit" and child["exit_code"] == 0, child
    else:
        assert child["ended_by"] == "exit" and child["exit_code"] is None, child


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_pool_terminated_workers_are_all_exact(tmp, gcmond, method):
    """`with Pool(4)` ends its workers with SIGTERM (terminate()): each
    worker is in gcmond's answer with its own exact totals."""
    _, recs, procs = run_and_settle(gcmond, "pool_" + method, tmp, env_for(gcmond.sock))
    workers = [r for r in recs.values() if r["role"] == "pool"]
    assert len(workers) == 4, "stats from %d pool workers, not 4" % len(workers)
    for rec in recs.values():
        check_exact(procs[rec["pid"]], rec)


@pytest.mark.parametrize("how", ["sigkill", "os_exit", "sigterm", "abort"])
def test_every_kind_of_death_keeps_totals_and_events(tmp, gcmond, how):
    p = subprocess.Popen([gcmontest.PYTHON, PROG, "die", tmp, how],
                         env=env_for(gcmond.sock), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        if how == "sigkill":
            p.send_signal(signal.SIGKILL)
        open(os.path.join(tmp, "go"), "w").close()
        p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    want = {"sigkill": -9, "os_exit": 3, "sigterm": -15, "abort": -6}[how]
    assert p.returncode == want
    recs = stats_files(tmp)
    procs = gcmontest.wait_ended(gcmond, recs)
    proc = check_exact(procs[p.pid], recs[p.pid])
    assert proc["dropped"] == 0
    # os._exit(3) is a normal end with its code (the agent's os._exit
    # wrote it); a signal or abort() is not.
    if how == "os_exit":
        assert proc["ended_by"] == "os._exit" and proc["exit_code"] == 3, proc
    else:
        assert proc["ended_by"] == "abrupt" and proc["exit_code"] is None, proc


def test_subprocess_child_reported_as_exec(tmp, gcmond):
    _, recs, procs = run_and_settle(gcmond, "subprocess", tmp, env_for(gcmond.sock))
    children = [r for r in recs.values() if r["ppid"] != os.getpid()]
    assert len(recs) == 2 and len(children) == 1
    root = [r for r in recs.values() if r not in children][0]
    check_exact(procs[root["pid"]], root)
    child = check_exact(procs[children[0]["pid"]], children[0])
    assert child["origin"] == "exec" and child["ppid"] == root["pid"]


def test_output_and_exit_status_unchanged(tmp, gcmond):
    plain = run("basic", tmp, plain_env(), "3")
    with_agent = run("basic", tmp, env_for(gcmond.sock), "3")
    assert plain.returncode == with_agent.returncode == 3
    assert plain.stdout == with_agent.stdout
    assert plain.stderr == with_agent.stderr


def test_no_thread_and_os_fork_untouched(tmp, gcmond):
    code = ("import os, posix, threading; print(os.fork is posix.fork, "
            "getattr(os, 'forkpty', None) is getattr(posix, 'forkpty', None), "
            "threading.active_count(), len(os.listdir('/proc/self/task')))")
    cp = gcmontest.run_python(["-c", code], env_for(gcmond.sock))
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == "True True 1 1\n"


@pytest.mark.parametrize("version", ["3.11", "3.12", "3.13"])
def test_fork_prints_no_new_warning(tmp, gcmond, version):
    # CPython 3.12+ warns when a multi-threaded process forks; as an error
    # here, so any warning at all fails the child.
    found = gcmontest.python_versions().get(version)
    if not found:
        pytest.skip("CPython %s not found (Debian's or pyenv's)" % version)
    flags = ["-W", "error::DeprecationWarning", "-W", "always"]
    plain = run("fork", tmp, plain_env(), python=found[0], pyflags=flags)
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    _, recs, procs = run_and_settle(gcmond, "fork", tmp, env_for(gcmond.sock),
                                    python=found[0], pyflags=flags)
    assert plain.returncode == 0 and plain.stderr == ""
    assert len(recs) == 2
    for rec in recs.values():
        check_exact(procs[rec["pid"]], rec)


def test_no_new_objects_tracked_by_gc(tmp, gcmond):
    plain = run("tracked", tmp, plain_env())
    agent = run("tracked", tmp, env_for(gcmond.sock))
    assert plain.returncode == agent.returncode == 0
    assert agent.stdout == plain.stdout, "agent left objects tracked by gc"


def test_user_sitecustomize_still_runs(tmp, gcmond):
    site = os.path.join(tmp, "usersite")
    os.mkdir(site)
    with open(os.path.join(site, "sitecustomize.py"), "w") as f:
        f.write("import sys\nsys.stdout.write('user sitecustomize ran\\n')\n")
    code = ("import sys, sitecustomize; print(sitecustomize.__file__); "
            "print(any(p.rstrip('/').endswith('agent') and 'sitecustomize' not in p "
            "for p in sys.path if p == %r))" % gcmontest.AGENT_DIR)
    env = env_for(gcmond.sock)
    env["PYTHONPATH"] += os.pathsep + site
    plain = plain_env()
    plain["PYTHONPATH"] = site
    a = subprocess.run([gcmontest.PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    b = subprocess.run([gcmontest.PYTHON, "-c", code], env=plain, capture_output=True, text=True, timeout=60)
    assert a.returncode == b.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    assert a.stdout.startswith("user sitecustomize ran\n" + os.path.join(site, "sitecustomize.py"))
    assert a.stdout.endswith("False\n"), "the agent's directory stayed on sys.path"


def test_agent_directory_by_another_name_leaves_sys_path(tmp, gcmond):
    """The chaining drops the agent's directory from sys.path also where
    a link of the same name reaches it."""
    os.mkdir(os.path.join(tmp, "other"))
    alias = os.path.join(tmp, "other", os.path.basename(gcmontest.AGENT_DIR))
    os.symlink(gcmontest.AGENT_DIR, alias)
    env = env_for(gcmond.sock)
    env["PYTHONPATH"] += os.pathsep + alias
    code = ("import sys; print([p for p in sys.path if p in (%r, %r)])"
            % (gcmontest.AGENT_DIR, alias))
    cp = subprocess.run([gcmontest.PYTHON, "-c", code], env=env,
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == "[]\n"


def test_missing_daemon_changes_nothing(tmp):
    sock = os.path.join(tmp, "nobody-listens.sock")
    plain = run("basic", tmp, plain_env(), "5")
    agent = run("basic", tmp, env_for(sock), "5", timeout=30)
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


def test_daemon_killed_mid_run_then_back_loses_nothing(tmp):
    d1 = gcmontest.Daemon("--quiet").start()
    sock = d1.sock
    p = start_until(tmp, env_for(sock))
    d2 = None
    try:
        gcmontest.wait_for(lambda: any(q["events"] > 0 for q in
                                       gcmontest.processes(d1).values()),
                           what="first events")
        # Hold the program still to know what the first gcmond read.
        os.kill(p.pid, signal.SIGSTOP)
        time.sleep(0.1)
        first = gcmontest.processes(d1)[p.pid]["events"]
        d1.proc.kill()                      # the daemon dies mid-run
        d1.proc.wait()
        os.kill(p.pid, signal.SIGCONT)
        time.sleep(0.2)                     # collections with no daemon
        d2 = gcmontest.Daemon("--quiet", sock=sock).start()
        gcmontest.wait_for(lambda: p.pid in gcmontest.processes(d2),
                           what="the restarted gcmond to find the live area")
        rec = finish_until(tmp, p)
        procs = gcmontest.wait_ended(d2, [rec["pid"]])
        proc = procs[rec["pid"]]
        # The second gcmond reads on from where the first one stopped.
        assert first > 0 and proc["dropped"] == 0
        proc["events"] += first
        check_exact(proc, rec)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if d2 is not None:
            d2.stop()
        d1.stop()
        shutil.rmtree(d1.dir, ignore_errors=True)


def test_daemon_appearing_later_gets_every_event(tmp):
    sockdir = tempfile.mkdtemp(prefix="gcmond-late-")
    sock = os.path.join(sockdir, "gcmon.sock")
    p = start_until(tmp, env_for(sock))
    try:
        time.sleep(0.2)                     # collections with no daemon
        with gcmontest.Daemon("--quiet", "--sample-interval", "0.05", sock=sock) as d:
            live = gcmontest.wait_for(
                lambda: (gcmontest.processes(d).get(p.pid) or {}).get("rss_bytes"),
                what="the area found and the process sampled")
            assert live > 1 << 20
            q = gcmontest.processes(d)[p.pid]
            assert q["state"] == "live" and q["cpu_s"] > 0
            rec = finish_until(tmp, p)
            procs = gcmontest.wait_ended(d, [rec["pid"]])
            proc = check_exact(procs[rec["pid"]], rec)
            assert proc["dropped"] == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        shutil.rmtree(sockdir, ignore_errors=True)


def test_exit_data_covers_the_whole_process(tmp):
    # A sample interval far longer than the run: CPU time and peak RSS come
    # from what the agent wrote at exit (getrusage), for its whole life.
    with gcmontest.Daemon("--quiet", "--sample-interval", "3600") as d:
        _, recs, procs = run_and_settle(d, "big", tmp, env_for(d.sock))
        proc = check_exact(procs[next(iter(recs))], next(iter(recs.values())))
        assert proc["cpu_s"] > 0
        # The program held ~100 MiB for a moment: the peak says so.
        assert proc["max_rss_bytes"] > 90 << 20, proc["max_rss_bytes"]


def test_bad_settings_warn_once_and_use_defaults(tmp, gcmond):
    env = env_for(gcmond.sock)
    env["GCMON_RING"] = "-4"
    env["GCMON_DUMP_OBJECTS"] = "yes"
    cp, recs, procs = run_and_settle(gcmond, "basic", tmp, env)
    lines = [l for l in cp.stderr.splitlines() if l.startswith("gcmon:")]
    assert len(lines) == 2 and "GCMON_RING" in lines[0] and "GCMON_DUMP_OBJECTS" in lines[1]
    check_exact(procs[next(iter(recs))], next(iter(recs.values())))


def test_dump_objects_and_garbage_at_exit(tmp, gcmond):
    env = env_for(gcmond.sock, dump_objects=True, dump_garbage=True)
    cp, recs, procs = run_and_settle(gcmond, "basic", tmp, env)
    assert "gcmon: --dump-garbage: gc.DEBUG_SAVEALL is set for this process" in cp.stderr
    rep = gcmond.request({"cmd": "report", "run": "test-run"})
    assert [o["pid"] for o in rep["objects"]] == list(recs)
    objects = {t["type"]: t["count"] for t in rep["objects"][0]["types"]}
    assert 0 < len(objects) <= 50 and "dict" in objects and "list" in objects
    assert rep["objects"][0]["total"] >= sum(objects.values())
    # DEBUG_SAVEALL keeps the program's cycles: lists in gc.garbage.
    garbage = {t["type"]: t["count"] for t in rep["garbage"][0]["types"]}
    assert garbage.get("list", 0) > 0


@pytest.mark.parametrize("version", ["3.10", "3.11", "3.12", "3.13"])
def test_same_abi3_binary_in_every_cpython(tmp, gcmond, version):
    found = gcmontest.python_versions().get(version)
    if not found:
        pytest.skip("CPython %s not found (Debian's or pyenv's)" % version)
    _, recs, procs = run_and_settle(gcmond, "basic", tmp, env_for(gcmond.sock),
                                    python=found[0])
    rec = next(iter(recs.values()))
    p = check_exact(procs[rec["pid"]], rec)
    assert p["python"].startswith(version + ".")


def test_a_full_filesystem_leaves_the_program_unmonitored_not_killed(tmp):
    """The agent directory on a full tmpfs: the area's pages cannot be
    reserved, so the program runs unmonitored (one line saying why) and
    exits as it would; a write to an unreserved page of a shared mapping
    would have been a SIGBUS in the program."""
    with gcmontest.small_tmpfs(tmp) as fs:
        # 8000 collections: a 4096-slot ring (160 KiB) written through,
        # far beyond the 64 KiB the filesystem has.
        plain = run("burst", tmp, plain_env(), "8000")
        agent = run("burst", tmp, env_for(os.path.join(fs, "gcmon.sock")), "8000")
        assert agent.returncode == plain.returncode == 0, agent.stderr
        assert agent.stdout == plain.stdout
        lines = [l for l in agent.stderr.splitlines() if l.startswith("gcmon:")]
        assert len(lines) == 1 and "No space left on device" in lines[0], agent.stderr
        assert os.listdir(os.path.join(fs, "gcmon.sock.d")) == []


def test_a_program_that_closes_every_descriptor_keeps_its_files(tmp, gcmond):
    """A daemonizing program closes every descriptor, the area's among
    them, and its next open() gets that number: the agent never writes
    its names or exit data there (it checks the file is still its area),
    and the program's file keeps exactly what the program wrote."""
    path = os.path.join(tmp, "mine.bin")
    code = (
        "import gc, os\n"
        "os.closerange(3, 65536)\n"
        "fd = os.open(%r, os.O_RDWR | os.O_CREAT, 0o600)\n"
        "os.write(fd, b'x' * 100)\n"
        "def deep(n):\n"
        "    return deep(n - 1) if n else gc.collect()\n"
        "deep(5)\n"            # a gen-2 collection: a stack, then names
        "gc.collect()\n" % path)
    env = env_for(gcmond.sock, dump_objects=True)
    r = subprocess.run([gcmontest.PYTHON, "-c", code], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(path, "rb") as f:
        assert f.read() == b"x" * 100
