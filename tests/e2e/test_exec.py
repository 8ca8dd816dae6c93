"""test_exec: `pygcprofiler exec [options] -- COMMAND [ARGS...]` end to
end, with the real launcher, its private gcmond and real commands: a
shell that starts Python, Debian's uWSGI (master + 4 workers, under
load, no extra uWSGI flag; and --no-site, which the report must explain),
and a real Celery worker (Debian's celery + python3-celery, prefork pool
of 2, kombu's filesystem broker: no server) whose billiard workers end
by os._exit. The totals of every worker must equal its own
gc.get_stats(). Also the command-line contract: lookup on PATH, 127/126
like a shell, --python refused, `help exec` and the man page agreeing.

Skipped only when uwsgi / celery are not installed (./quickstart
installs them). Everything lives in private temp dirs.
"""
import json
import os
import re
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcmontest as gt  # noqa: E402
import test_uwsgi as tu  # noqa: E402  (its Uwsgi, load and stats rounds)

PROG = gt.PYGCPROFILER
GARBAGE = os.path.join(gt.PROGRAMS, "launcher_garbage.py")
MAN = os.path.join(gt.SRCDIR, "man", "pygcprofiler.1")
CELERY = "/usr/bin/celery"      # Debian's: a sh wrapper that execs python3
CELERY_WORKERS = 2

need_agent = pytest.mark.skipif(
    not gt.HAVE_AGENT,
    reason=gt.NO_AGENT)
need_uwsgi = pytest.mark.skipif(
    tu.UWSGI is None or not os.path.exists(tu.PLUGIN),
    reason="uwsgi or its python3 plugin not installed "
           "(apt-get install uwsgi-core uwsgi-plugin-python3)")
need_celery = pytest.mark.skipif(
    not os.path.exists(CELERY) or subprocess.run(
        [gt.PYTHON, "-c", "import celery"], capture_output=True).returncode != 0,
    reason="celery not installed (apt-get install celery python3-celery)")


def base_env(**extra):
    """The caller's environment without gcmon's variables and PYTHONPATH,
    Debian's interpreter first on PATH (Debian's wrappers run `python3`)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GCMON_", "UWSGI_")) or
           k in ("GCMON_BUILDDIR", "GCMON_SRCDIR", "GCMON_AGENT_DIR", "GCMON_GCMOND")}
    env.pop("PYTHONPATH", None)
    env["PATH"] = os.path.dirname(gt.PYTHON) + os.pathsep + env.get("PATH", "/bin")
    env.update(extra)
    return env


def pgp_exec(args, env=None, timeout=90, **kw):
    return subprocess.run([PROG, "exec"] + list(args),
                          env=env if env is not None else base_env(),
                          capture_output=True, text=True, timeout=timeout, **kw)


def report(path):
    """The --json report's summary object and exit object."""
    with open(path) as f:
        objs = [json.loads(line) for line in f if line.startswith("{")]
    summary = [o for o in objs if o["type"] == "summary"]
    done = [o for o in objs if o["type"] == "exit"]
    assert len(summary) == 1 and len(done) == 1, objs
    return summary[0], done[0]


# ---- the command line -----------------------------------------------------

def test_help_exec_lists_the_options_of_the_man_page():
    r = subprocess.run([PROG, "help", "exec"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert "pygcprofiler exec [options] -- command [args...]" in r.stdout
    opts = set(re.findall(r"(--[a-z][a-z-]+)", r.stdout))
    assert {"--json", "--stats-only", "--socket", "--log-file"} <= opts
    with open(MAN) as f:
        man = re.sub(r"Fl \\-", "--", f.read()).replace("\\-", "-")
    assert re.search(r"\.Cm exec", man), "no exec in pygcprofiler.1's synopsis"
    missing = [o for o in opts if not re.search(re.escape(o) + r"\b", man)]
    assert not missing, "options in help exec but not in pygcprofiler.1: %s" % missing


@pytest.mark.parametrize("cmd,status,says", [
    (["no-such-command-gcmon"], 127, "no-such-command-gcmon: command not found on PATH"),
    (["/nonexistent/gcmon-cmd"], 127, "/nonexistent/gcmon-cmd: No such file or directory"),
    (["{tmp}/data.txt"], 126, "{tmp}/data.txt: not executable"),
    (["/"], 126, "/: Is a directory"),
])
def test_a_command_that_cannot_run_is_named_with_a_shells_status(cmd, status, says, tmp):
    with open(os.path.join(tmp, "data.txt"), "w") as f:
        f.write("not a program\n")
    os.chmod(os.path.join(tmp, "data.txt"), 0o644)
    cmd, says = [c.replace("{tmp}", tmp) for c in cmd], says.replace("{tmp}", tmp)
    r = pgp_exec(["--stats-only", "--"] + cmd, timeout=20)
    assert r.returncode == status, r.stderr
    assert says in r.stderr and "exit status %d" % status in r.stderr, r.stderr
    assert "GMEM" not in r.stderr       # nothing started


@pytest.mark.parametrize("args,says", [
    (["--python", gt.PYTHON, "--", "true"], "--python has no meaning with exec"),
    (["--stats-only"], "no command given"),
    (["--stats-only", "--"], "no command given"),
    (["--no-such-option", "--", "true"], "unknown option '--no-such-option'"),
])
def test_bad_usage_is_refused_before_anything_starts(args, says):
    r = pgp_exec(args, timeout=20)
    assert r.returncode == 2 and says in r.stderr, r.stderr


def test_a_script_without_a_shebang_runs_under_sh_as_execvp_runs_it(tmp):
    """execvp(3) hands an executable without "#!" to /bin/sh; the
    launcher's spawn does the same, with the arguments, and its status."""
    script = os.path.join(tmp, "plain-script")
    with open(script, "w") as f:
        f.write('echo "ran $# args: $1 $2"\nexit 5\n')
    os.chmod(script, 0o755)
    r = pgp_exec(["--stats-only", "--", script, "one", "two words"])
    assert r.returncode == 5, r.stderr
    assert r.stdout == "ran 2 args: one two words\n"


@need_agent
def test_a_shell_that_starts_python_is_monitored_exactly(tmp):
    """sh runs python3 (found on PATH by the shell): the interpreter loads
    the agent through the environment; its totals are its own; the
    shell's exit status is the launcher's."""
    out = os.path.join(tmp, "stats.json")
    log = os.path.join(tmp, "report.json")
    r = pgp_exec(["--json", "--stats-only", "--log-file", log, "--", "sh", "-c",
                  'python3 "$0" "$1" 5 && exit 7', GARBAGE, out])
    assert r.returncode == 7, r.stderr
    assert r.stdout == "garbage done\n"
    summary, done = report(log)
    assert done["status"] == 7 and summary["not_monitored"] is None
    procs = summary["processes"]
    assert len(procs) == 1, procs
    with open(out) as f:
        want = [[g["collections"], g["collected"], g["uncollectable"]] for g in json.load(f)]
    assert gt.totals(procs[0]) == want
    assert procs[0]["ended_by"] == "exit"


@need_agent
def test_shared_mode_reports_the_commands_python_to_the_running_daemon(tmp):
    """exec --socket: the launcher prints nothing; the interpreter the
    shell starts reports to that gcmond under GCMON_RUN_ID; the shell's
    status is the launcher's."""
    out = os.path.join(tmp, "stats.json")
    with gt.Daemon() as d:
        r = pgp_exec(["--socket", d.sock, "--", "sh", "-c",
                      'python3 "$0" "$1" 5; exit 4', GARBAGE, out],
                     env=base_env(GCMON_RUN_ID="exec-shared"))
        assert r.returncode == 4, r.stderr
        assert r.stderr == "" and r.stdout == "garbage done\n"
        with open(out) as f:
            want = [[g["collections"], g["collected"], g["uncollectable"]]
                    for g in json.load(f)]
        ans = d.request({"cmd": "wait", "run": "exec-shared", "timeout_ms": 5000})
        assert ans["ok"] and ans["processes"] == 1, ans
        (proc,) = gt.processes(d, "exec-shared").values()
        assert gt.totals(proc) == want and proc["ended_by"] == "exit"


@need_agent
def test_python_dash_s_is_named_as_why_nothing_was_monitored(tmp):
    r = pgp_exec(["--stats-only", "--", gt.PYTHON, "-S", "-c", "print('ran')"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ran\n"
    assert ("GMEM No Python process loaded the agent: python -S disables site, "
            "so the agent's sitecustomize never runs") in r.stderr, r.stderr


@need_agent
def test_a_command_without_python_gets_the_generic_reason(tmp):
    log = os.path.join(tmp, "report.json")
    r = pgp_exec(["--json", "--stats-only", "--log-file", log, "--", "sh", "-c", "exit 3"])
    assert r.returncode == 3, r.stderr
    summary, done = report(log)
    assert done["status"] == 3
    assert summary["summary"] is None and summary["processes"] is None
    assert summary["not_monitored"].startswith("the command may start no Python"), summary


# ---- uWSGI ----------------------------------------------------------------

@need_agent
@need_uwsgi
def test_uwsgi_master_and_four_workers_under_load_exact(tmp):
    """`pygcprofiler exec -- uwsgi --master --processes 4 ...` with no
    extra uWSGI flag: the master and its 4 workers are in the report, each
    worker's totals equal to its own gc.get_stats() after load; SIGINT to
    the launcher reaches the master, which stops its workers and exits 0."""
    outdir = os.path.join(tmp, "out")
    os.mkdir(outdir)
    log = os.path.join(tmp, "report.json")
    env = base_env(GCMONTEST_UWSGI_OUTDIR=outdir)
    srv = tu.Uwsgi(tmp, env, prefix=[PROG, "exec", "--json", "--stats-only",
                                     "--log-file", log, "--"]).start()
    try:
        assert json.loads(srv.get("/env"))["agent"]
        workers = tu.worker_pids(srv)
        recs = tu.collect_stats(srv, outdir, workers)
        srv.stop()
    finally:
        srv.kill()
    summary, done = report(log)
    assert done["status"] == 0
    procs = {p["pid"]: p for p in summary["processes"]}
    masters = [p for p in procs.values() if p["role"] == "master"]
    assert len(masters) == 1 and set(procs) == workers | {masters[0]["pid"]}, (
        sorted(procs), sorted(workers))
    for pid in workers:
        p, rec = procs[pid], recs[pid]
        assert p["role"] == "worker" and p["ppid"] == masters[0]["pid"], p
        got = gt.totals(p)
        got += [[0, 0, 0]] * (len(rec["stats"]) - len(got))
        assert got == rec["stats"], "worker %d: %r != gc.get_stats() %r" % (
            pid, got, rec["stats"])
        assert sum(g["seen"] for g in p["generations"]) > 0, p


@need_agent
@need_uwsgi
def test_uwsgi_no_site_report_says_why_nothing_was_monitored(tmp):
    outdir = os.path.join(tmp, "out")
    os.mkdir(outdir)
    log = os.path.join(tmp, "report.txt")
    env = base_env(GCMONTEST_UWSGI_OUTDIR=outdir)
    srv = tu.Uwsgi(tmp, env, ["--no-site"], prefix=[
        PROG, "exec", "--stats-only", "--log-file", log, "--"]).start()
    try:
        env = json.loads(srv.get("/env"))
        assert env["socket"] and not env["agent"], env
        # Every worker serving before SIGINT: a worker still starting
        # can miss the master's SIGINT, which then waits its 60 s mercy.
        tu.worker_pids(srv)
        srv.stop()
    finally:
        srv.kill()
    with open(log) as f:
        text = f.read()
    assert ("GMEM No Python process loaded the agent: the command line has "
            "uWSGI's --no-site, which stops its Python from importing site, "
            "so the agent's sitecustomize never runs") in text, text


# ---- Celery ---------------------------------------------------------------

def celery_send(env, task, n):
    """Sends n `task` messages through the filesystem broker (from a
    Python with no agent: the test's own side)."""
    code = ("import celery_app as a\n"
            "for i in range(%d): a.%s.delay(%s)\n" % (
                n, task, "str(i)" if task == "cycles" else ""))
    env = dict(env, PYTHONPATH=gt.PROGRAMS)
    subprocess.run([gt.PYTHON, "-c", code], env=env, check=True, timeout=60,
                   capture_output=True)


@need_agent
@need_celery
def test_celery_prefork_workers_end_by_os_exit_with_exact_totals(tmp):
    """celery's billiard pool forks its workers and ends them by
    os._exit(0) at warm shutdown (SIGTERM to the launcher, forwarded to
    the celery master): each worker is in the report as ended by os._exit
    with exit code 0, not lost or abrupt, its totals its own."""
    base = os.path.join(tmp, "celery")
    out = os.path.join(base, "out")
    os.makedirs(os.path.join(base, "queue"))
    os.mkdir(out)
    log = os.path.join(tmp, "report.json")
    # No __pycache__ beside celery_app.py: the source tree may be read-only.
    env = base_env(GCMONTEST_CELERY_DIR=base, PYTHONPATH=gt.PROGRAMS,
                   PYTHONDONTWRITEBYTECODE="1")
    cmd = [PROG, "exec", "--json", "--stats-only", "--log-file", log, "--",
           "celery", "-A", "celery_app", "worker", "--pool", "prefork",
           "--concurrency", str(CELERY_WORKERS), "-l", "warning",
           "--without-heartbeat", "--without-gossip", "--without-mingle"]
    p = subprocess.Popen(cmd, env=env, cwd=tmp, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        celery_send(env, "cycles", 40)
        gt.wait_for(lambda: p.poll() is not None or len(
            [n for n in os.listdir(out) if n.startswith("done-")]) == 40,
            60, 0.1, "40 cycles tasks done")
        assert p.poll() is None, p.communicate()
        written = lambda: {n for n in os.listdir(out) if n.endswith(".json")}
        for _ in range(20):
            celery_send(env, "stats", 2 * CELERY_WORKERS)
            try:
                gt.wait_for(lambda: len(written()) == CELERY_WORKERS, 5, 0.1,
                            "stats from both pool workers")
                break
            except AssertionError:
                continue
        assert len(written()) == CELERY_WORKERS, written()
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    summary, done = report(log)
    assert done["status"] == 0
    procs = {q["pid"]: q for q in summary["processes"]}
    recs = {}
    for name in os.listdir(out):
        if name.endswith(".json"):
            with open(os.path.join(out, name)) as f:
                rec = json.load(f)
            recs[rec["pid"]] = rec
    master = {rec["ppid"] for rec in recs.values()}
    assert len(master) == 1 and set(procs) == set(recs) | master, (sorted(procs), recs)
    for pid, rec in recs.items():
        q = procs[pid]
        assert q["role"] == "worker" and q["state"] == "ended", q
        assert q["ended_by"] == "os._exit" and q["exit_code"] == 0, q
        got = gt.totals(q)
        got += [[0, 0, 0]] * (len(rec["stats"]) - len(got))
        assert got == rec["stats"], "pool worker %d: %r != gc.get_stats() %r" % (
            pid, got, rec["stats"])
        assert sum(g["seen"] for g in q["generations"]) > 0, q
    assert procs[master.pop()]["ended_by"] == "exit"
