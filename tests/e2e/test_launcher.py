"""test_launcher: pygcprofiler end to end, with the real gcmond, the real
agent and real Python programs (gunicorn, uvicorn, multiprocessing).

Each test runs in a private temp dir; every wait is bounded. Run by
`make check`, or by hand:

    GCMON_BUILDDIR=$PWD/build GCMON_SRCDIR=$PWD /usr/bin/python3 -m pytest tests/e2e/test_launcher.py
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import time
import sys
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcmontest as gt  # noqa: E402

PROG = gt.PYGCPROFILER
LOOP = os.path.join(gt.PROGRAMS, "launcher_loop.py")
ARGV = os.path.join(gt.PROGRAMS, "launcher_argv.py")
GARBAGE = os.path.join(gt.PROGRAMS, "launcher_garbage.py")
EXIT = os.path.join(gt.PROGRAMS, "launcher_exit.py")
MP = os.path.join(gt.PROGRAMS, "launcher_mp.py")
GUNICORN_CONF = os.path.join(gt.PROGRAMS, "launcher_gunicorn_conf.py")
SOCKETS = os.path.join(gt.PROGRAMS, "launcher_sockets.py")
MAN = os.path.join(gt.SRCDIR, "man", "pygcprofiler.1")


def base_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GCMON_") or k in ("GCMON_BUILDDIR", "GCMON_SRCDIR",
                                                     "GCMON_AGENT_DIR", "GCMON_GCMOND")}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def launch(args, env=None, timeout=90, **kw):
    """pygcprofiler run --python PYTHON ARGS; CompletedProcess (text)."""
    return subprocess.run([PROG, "run", "--python", gt.PYTHON] + list(args),
                          env=env if env is not None else base_env(),
                          capture_output=True, text=True, timeout=timeout, **kw)


def json_lines(text):
    """The JSON lines of text; an unterminated last line is one the
    launcher is still writing (a file read while it grows), not a line."""
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def of_type(objs, t):
    return [o for o in objs if o.get("type") == t]


def stats_total(stats):
    return sum(g["collections"] for g in stats)


def wait_http(url, proc, timeout=30):
    def ok():
        if proc.poll() is not None:
            raise AssertionError("launcher exited %s before serving" % proc.returncode)
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return True
        except OSError:
            return False
    gt.wait_for(ok, timeout, 0.1, "%s to answer" % url)


def load(url, n):
    for _ in range(n):
        urllib.request.urlopen(url, timeout=10).read()


def serve(args, path, n, env=None, then=None):
    """pygcprofiler run --python PYTHON ARGS, a server on PORT (ARGS may
    use {port}): wait until URL/path answers, send n requests to URL,
    call then(url) if given, SIGINT the launcher. (returncode, out, err)."""
    port = gt.free_port()
    p = subprocess.Popen([PROG, "run", "--python", gt.PYTHON] +
                         [a.replace("{port}", str(port)) for a in args],
                         env=env if env is not None else base_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = "http://127.0.0.1:%d/" % port
        wait_http(url + path, p)
        load(url, n)
        if then is not None:
            then(url)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, out, err


# ---- command line ---------------------------------------------------------

def test_help_lists_every_option_and_each_is_in_the_man_page():
    r = subprocess.run([PROG, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    opts = set(re.findall(r"(--[a-z][a-z-]+)", r.stdout))
    for must in ("--interval", "--json", "--stats-only", "--dump-objects", "--dump-garbage",
                 "--log-file", "--alert-threshold-ms", "--flamegraph-file",
                 "--flamegraph-bucket", "--terminal-flamegraph", "--terminal-flamegraph-width",
                 "--terminal-flamegraph-color", "--duration-buckets", "--prompt", "--socket",
                 "--python", "--help", "--version"):
        assert must in opts, must
    with open(MAN) as f:
        # mdoc: ".Fl \-interval" renders as --interval.
        man = re.sub(r"Fl \\-", "--", f.read()).replace("\\-", "-")
    missing = [o for o in opts if not re.search(re.escape(o) + r"\b", man)]
    assert not missing, "options in --help but not in pygcprofiler.1: %s" % missing
    r2 = subprocess.run([PROG, "help", "run"], capture_output=True, text=True, timeout=10)
    assert r2.returncode == 0 and r2.stdout == r.stdout


def test_version_prints_the_package_version():
    r = subprocess.run([PROG, "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    assert re.match(r"pygcprofiler \(gcmon\) \d+\.\d+\.\d+\n$", r.stdout)


@pytest.mark.parametrize("args,names", [
    (["--interval", "-1", ARGV], "--interval"),
    (["--interval=abc", ARGV], "--interval"),
    (["--interval", "0", ARGV], "--interval"),
    (["--duration-buckets", "5,1", ARGV], "--duration-buckets"),
    (["--duration-buckets=0,1", ARGV], "--duration-buckets"),
    (["--duration-buckets", "1,x", ARGV], "--duration-buckets"),
    (["--alert-threshold-ms", "-5", ARGV], "--alert-threshold-ms"),
    (["--flamegraph-bucket", "0", ARGV], "--flamegraph-bucket"),
    (["--terminal-flamegraph-width", "5", ARGV], "--terminal-flamegraph-width"),
    (["--terminal-flamegraph-width=wide", ARGV], "--terminal-flamegraph-width"),
    (["--no-such-flag", ARGV], "--no-such-flag"),
    (["--json=1", ARGV], "--json"),
    (["--log-file"], "--log-file"),
    (["-m"], "-m"),
    ([], "no script"),
    (["/nonexistent/dir/script.py"], "Script file not found: /nonexistent/dir/script.py"),
])
def test_bad_input_is_one_line_naming_it_and_exit_2(args, names, tmp):
    r = launch(args, cwd=tmp)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert names in lines[0]
    assert r.stdout == ""
    assert os.listdir(tmp) == []


def test_bad_log_file_is_reported_before_the_program_runs(tmp):
    out = os.path.join(tmp, "argv.json")
    r = launch(["--log-file", os.path.join(tmp, "no", "such", "dir.log"), ARGV],
               env=base_env(LAUNCHER_OUT=out))
    assert r.returncode == 2
    assert "--log-file" in r.stderr
    assert not os.path.exists(out)


def test_a_module_name_given_as_script_gets_the_m_hint(tmp):
    r = launch(["uvicorn", "main:app"], cwd=tmp)
    assert r.returncode == 2
    assert "Script file not found: uvicorn" in r.stderr
    assert "pygcprofiler run -m uvicorn" in r.stderr


# ---- what the program sees --------------------------------------------------

def run_direct_and_launched(tmp, prog_args, env_extra=None, launcher_opts=()):
    direct_out = os.path.join(tmp, "direct.json")
    launched_out = os.path.join(tmp, "launched.json")
    work = os.path.join(tmp, "work dir")
    os.mkdir(work)
    extra = dict(env_extra or {})
    d = subprocess.run([gt.PYTHON] + prog_args, env=base_env(LAUNCHER_OUT=direct_out, **extra),
                       cwd=work, input="stdin text\n", capture_output=True, text=True, timeout=30)
    assert d.returncode == 0, d.stderr
    r = launch(list(launcher_opts) + prog_args, env=base_env(LAUNCHER_OUT=launched_out, **extra),
               cwd=work, input="stdin text\n")
    assert r.returncode == 0, r.stderr
    with open(direct_out) as f:
        direct = json.load(f)
    with open(launched_out) as f:
        launched = json.load(f)
    return d, r, direct, launched


def test_script_mode_passes_argv_cwd_stdin_and_stdout_untouched(tmp):
    args = [ARGV, "a b", "--json", "-m", "x", "--interval=3", "--", ""]
    d, r, direct, launched = run_direct_and_launched(tmp, args)
    assert launched["argv"] == direct["argv"] == [ARGV] + args[1:]
    assert launched["cwd"] == direct["cwd"]
    assert launched["stdin"] == direct["stdin"] == "stdin text\n"
    assert r.stdout == d.stdout == "launcher_argv stdout line\n"
    assert launched["agent_loaded"] is True
    assert launched["sigint_default"] is True
    env = launched["env"]
    assert env["GCMON_RUN_ID"] and env["GCMON_SOCKET"]
    # The sample interval is the private gcmond's (--sample-interval),
    # not the program's business.
    assert "GCMON_INTERVAL" not in env
    assert "GMEM Running: " in r.stderr


def test_module_mode_lets_python_set_argv(tmp):
    args = ["-m", "launcher_argv", "x", "--json", "-m", "y"]
    d, r, direct, launched = run_direct_and_launched(
        tmp, args, env_extra={"PYTHONPATH": gt.PROGRAMS})
    assert launched["argv"] == direct["argv"]
    assert os.path.samefile(launched["argv"][0], ARGV)
    assert launched["argv"][1:] == ["x", "--json", "-m", "y"]
    assert launched["cwd"] == direct["cwd"]
    assert r.stdout == d.stdout
    assert launched["agent_loaded"] is True


def test_options_reach_the_agent_environment(tmp):
    out = os.path.join(tmp, "argv.json")
    r = launch(["--interval", "0.5", "--dump-objects", "--dump-garbage", ARGV],
               env=base_env(LAUNCHER_OUT=out), input="")
    assert r.returncode == 0, r.stderr
    with open(out) as f:
        env = json.load(f)["env"]
    assert "GCMON_INTERVAL" not in env      # gcmond samples, not the agent
    assert env["GCMON_DUMP_OBJECTS"] == "1"
    assert env["GCMON_DUMP_GARBAGE"] == "1"
    assert "--dump-objects" in r.stderr and "--dump-garbage" in r.stderr


FIND_GCMOND = r"""
import json, os, sys
sock = os.environ["GCMON_SOCKET"]
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            argv = f.read().decode().split("\0")
    except OSError:
        continue
    if sock in argv and any(a.endswith("gcmond") for a in argv[:1]):
        with open(sys.argv[1], "w") as f:
            json.dump(argv, f)
"""


def test_interval_is_the_private_gcmonds_sample_interval(tmp):
    out = os.path.join(tmp, "gcmond-argv.json")
    prog = os.path.join(tmp, "find_gcmond.py")
    with open(prog, "w") as f:
        f.write(FIND_GCMOND)
    r = launch(["--interval", "0.5", "--stats-only", prog, out],
               env=base_env(), input="")
    assert r.returncode == 0, r.stderr
    with open(out) as f:
        argv = json.load(f)
    i = argv.index("--sample-interval")
    assert float(argv[i + 1]) == 0.5, argv


def test_sigint_ignored_by_the_parent_is_default_again_in_the_program(tmp):
    out = os.path.join(tmp, "argv.json")
    r = subprocess.run([PROG, "run", "--python", gt.PYTHON, ARGV], env=base_env(LAUNCHER_OUT=out),
                       capture_output=True, text=True, input="", timeout=60,
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert r.returncode == 0, r.stderr
    with open(out) as f:
        assert json.load(f)["sigint_default"] is True


# ---- exit status and signals ------------------------------------------------

@pytest.mark.parametrize("how,n,want", [
    ("exit", 0, 0), ("exit", 3, 3), ("signal", 9, 137), ("signal", 15, 143)])
def test_exit_status_is_the_programs(how, n, want):
    r = launch([EXIT, how, str(n)])
    assert r.returncode == want, r.stderr
    assert "=== GC MONITORING SUMMARY ===" in r.stderr
    if how == "signal":
        assert "killed by signal %d" % n in r.stderr
    else:
        assert "killed by signal" not in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signals_are_forwarded_and_the_report_still_prints(sig, tmp):
    out = os.path.join(tmp, "sig")
    p = subprocess.Popen([PROG, "run", "--python", gt.PYTHON, LOOP, out], env=base_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([p.stdout], [], [], 30)     # bounded wait
        assert ready and p.stdout.readline() == "ready\n"
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    with open(out) as f:
        assert f.read() == signal.Signals(sig).name
    assert "=== GC MONITORING SUMMARY ===" in err
    assert "=== GC THRESHOLD RECOMMENDATIONS ===" in err


def test_a_program_that_cannot_start_is_reported(tmp):
    r = subprocess.run([PROG, "run", "--python", os.path.join(tmp, "no-python"), ARGV],
                       env=base_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 127
    assert "cannot run" in r.stderr and "no-python" in r.stderr
    # It never ran: no report of it (once a summary saying "no run").
    assert "===" not in r.stderr, r.stderr


def write_script(tmp, name, text, mode=0o700):
    """tmp/name holding text, with mode; its path."""
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def marking_program(tmp, before=""):
    """A Python program that runs before, then creates a file: (path, that file)."""
    mark = os.path.join(tmp, "mark")
    return write_script(tmp, "marking.py", before + "open(%r, 'w').close()\n" % mark, 0o600), mark


def gcmond_wrapper(tmp, body):
    """A GCMON_GCMOND that runs body (sh), then the real gcmond."""
    return write_script(tmp, "gcmond-wrapper", "#!/bin/sh\n%s\nexec %s \"$@\"\n" % (body, gt.GCMOND))


def test_a_gcmond_slow_to_start_misses_no_collection_line(tmp):
    # The program starts while gcmond does; this one is over before
    # gcmond is up, and each of its collections still has its line.
    up = os.path.join(tmp, "gcmond-exec")
    slow = gcmond_wrapper(tmp, "sleep 1; : > %s" % up)
    r, stats = run_garbage(tmp, env=base_env(GCMON_GCMOND=slow))
    # It ran in parallel: its last write came before gcmond's exec.
    assert os.stat(os.path.join(tmp, "stats.json")).st_mtime < os.stat(up).st_mtime
    events = EVENT_RE.findall(r.stderr)
    m = re.search(r"^Pause durations \(from (\d+) pauses\)", r.stderr, re.M)
    assert m, r.stderr
    assert len(events) == int(m.group(1)) > 0
    m = re.search(r"^Total GC collections: (\d+)", r.stderr, re.M)
    assert m and int(m.group(1)) == stats_total(stats)


def test_a_gcmond_that_fails_at_start_stops_the_program_it_raced(tmp):
    failing = write_script(tmp, "gcmond-failing",
                           "#!/bin/sh\necho 'gcmond: cannot listen (this test)' >&2\nexit 1\n")
    prog, mark = marking_program(tmp, "import time\ntime.sleep(5)\n")
    t = time.monotonic()
    r = launch([prog], env=base_env(GCMON_GCMOND=failing))
    assert r.returncode == 1, r.stderr
    assert time.monotonic() - t < 4
    assert "gcmond: cannot listen (this test)\n" in r.stderr
    assert "pygcprofiler: %s exited at start (see its message above)\n" % failing in r.stderr
    assert re.search(r"pygcprofiler: the program \(pid \d+\) was stopped\n", r.stderr)
    assert "===" not in r.stderr
    time.sleep(0.2)
    assert not os.path.exists(mark)


def test_a_gcmond_that_cannot_be_run_is_named_and_nothing_starts(tmp):
    # Not executable, or absent: the exec in gcmond's (vforked) child
    # fails, and the launcher says why before any program runs.
    notexec = write_script(tmp, "gcmond-not-executable", "#!/bin/sh\nexit 0\n", 0o600)
    prog, mark = marking_program(tmp)
    for path, why in ((notexec, "Permission denied"),
                      (os.path.join(tmp, "no-such-gcmond"), "No such file or directory")):
        r = launch([prog], env=base_env(GCMON_GCMOND=path))
        assert r.returncode == 1, r.stderr
        assert r.stderr == "pygcprofiler: cannot start %s: %s\n" % (path, why), r.stderr
        assert not os.path.exists(mark)


# ---- output ---------------------------------------------------------------

def run_garbage(tmp, opts=(), rounds=30, **kw):
    out = os.path.join(tmp, "stats.json")
    r = launch(list(opts) + [GARBAGE, out, str(rounds)], **kw)
    assert r.returncode == 0, r.stderr
    with open(out) as f:
        stats = json.load(f)
    return r, stats


EVENT_RE = re.compile(r"^GMEM GC STOP  \| Gen: (\d+) \| Duration: ([0-9.]+)(ms|s|\u00b5s) \| "
                      r"Collected: (\d+) \| Uncollectable: (\d+)$", re.M)


def test_default_output_has_events_summary_and_recommendations(tmp):
    r, stats = run_garbage(tmp)
    err = r.stderr
    assert r.stdout == "garbage done\n"
    assert err.startswith("GMEM Monitoring initialized")
    assert "GMEM Running: %s %s" % (gt.PYTHON, GARBAGE) in err
    events = EVENT_RE.findall(err)
    assert len(events) > 0
    assert {int(e[0]) for e in events} >= {0, 2}
    assert "GMEM PID" not in err            # one process: no pid column
    assert "=== GC MONITORING SUMMARY ===" in err
    m = re.search(r"^Total GC collections: (\d+)", err, re.M)
    assert m and int(m.group(1)) == stats_total(stats)
    for g, s in enumerate(stats):
        assert re.search(r"^  Generation %d: %d collections" % (g, s["collections"]), err, re.M)
    assert "Pause durations" in err
    for label in ("<1ms", "1-5ms", "5-20ms", "20-50ms", "50-100ms", ">=100ms"):
        assert re.search(r"^  %s " % re.escape(label), err, re.M), label
    assert err.index("=== GC MONITORING SUMMARY ===") < err.index("=== GC THRESHOLD RECOMMENDATIONS ===")


def test_stats_only_prints_no_event_lines(tmp):
    r, stats = run_garbage(tmp, ["--stats-only"])
    assert "GC STOP" not in r.stderr
    m = re.search(r"^Total GC collections: (\d+)", r.stderr, re.M)
    assert m and int(m.group(1)) == stats_total(stats)


def test_stats_only_report_is_the_daemons_and_says_what_each_figure_is_of(tmp):
    r, stats = run_garbage(tmp, ["--stats-only"])
    err = r.stderr
    total = stats_total(stats)
    # The share of wall time names its whole; no share of CPU time.
    assert re.search(r"^Total GC time: [0-9.]+m?s \([0-9.]+% of [0-9.]+ process-seconds", err, re.M), err
    assert "of CPU time" not in err
    assert re.search(r"^CPU time \(processes added up\): [0-9.]+s$", err, re.M), err
    assert all(float(p) <= 100 for p in re.findall(r"([0-9.]+)%", err)), err
    assert re.search(r"^Peak RSS \(largest process\): [0-9.]+ [MG]iB$", err, re.M), err
    # Collections before the agent loaded have no pause: the percentiles
    # and the durations table say how many pauses they come from, and
    # the table (gcmond's histograms: no event stream here) counts them all.
    m = re.search(r"^Total GC collections: (\d+) \((\d+) before the agent loaded", err, re.M)
    assert m and int(m.group(1)) == total, err
    seen = total - int(m.group(2))
    assert re.search(r"^Pause percentiles: .* \(from %d pauses\)$" % seen, err, re.M), err
    assert re.search(r"^Pause durations \(from %d pauses\):$" % seen, err, re.M), err
    counts = re.findall(r"^  (?:<1ms|1-5ms|5-20ms|20-50ms|50-100ms|>=100ms) +(\d+) ", err, re.M)
    assert sum(int(c) for c in counts) == seen, err


@pytest.mark.parametrize("opts,want", [
    (["--stats-only"], 1),                       # the control connection only
    (["--json", "--stats-only"], 1),
    (["--stats-only", "--terminal-flamegraph"], 2),   # the flame graph needs events
    ([], 2),                                     # event lines printed
])
def test_the_event_stream_is_read_only_when_something_prints_it(opts, want, tmp):
    out = os.path.join(tmp, "sockets")
    r = launch(opts + [SOCKETS, out])
    assert r.returncode == 0, r.stderr
    with open(out) as f:
        assert int(f.read()) == want


def test_a_run_no_agent_reached_says_so_in_one_line(tmp):
    """An interpreter that does not load the agent (Python 3.9, here an
    agent directory with nothing in it): no report to wait for, and no
    guess at the agent's directory."""
    empty = os.path.join(tmp, "no-agent")
    os.mkdir(empty)
    out = os.path.join(tmp, "stats.json")
    r = launch(["--stats-only", GARBAGE, out, "2"], env=base_env(GCMON_AGENT_DIR=empty))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "garbage done\n"
    lines = [l for l in r.stderr.splitlines() if "No Python process" in l]
    assert lines == ["GMEM No Python process loaded the agent: an interpreter that "
                     "refuses it says why on the program's stderr"], r.stderr
    assert "is the agent in" not in r.stderr
    assert "=== GC MONITORING SUMMARY ===" not in r.stderr


def test_dump_garbage_names_the_objects_debug_saveall_kept(tmp):
    r, _ = run_garbage(tmp, ["--stats-only", "--dump-garbage"], rounds=3)
    assert "UNCOLLECTABLE GARBAGE" not in r.stderr
    assert re.search(r"^=== OBJECTS KEPT BY gc.DEBUG_SAVEALL \(gc.garbage\) \(pid \d+, \d+ objects\) ===$",
                     r.stderr, re.M), r.stderr


def test_json_output_is_one_object_per_line_with_stable_keys(tmp):
    log = os.path.join(tmp, "out.jsonl")
    r, stats = run_garbage(tmp, ["--json", "--log-file", log])
    assert "GMEM" not in r.stderr
    with open(log) as f:
        text = f.read()
    objs = [json.loads(line) for line in text.splitlines()]   # every line is JSON
    assert objs[0]["type"] == "start" and objs[-1]["type"] == "exit"
    assert objs[-1]["status"] == 0 and objs[-1]["signal"] is None
    assert objs[0]["command"] == [gt.PYTHON, GARBAGE, os.path.join(tmp, "stats.json"), "30"]
    events = of_type(objs, "event")
    assert events
    for e in events:
        assert {"pid", "run", "gen", "time", "duration_ms", "collected",
                "uncollectable"} <= set(e)
    (summary,) = of_type(objs, "summary")
    assert summary["summary"]["collections"] == stats_total(stats)
    assert sum(d["count"] for d in summary["durations"]) == len(events) == summary["pauses"]
    assert [d["le_ms"] for d in summary["durations"]] == [1, 5, 20, 50, 100, None]
    assert len(of_type(objs, "recommendations")) == 1


def test_duration_buckets_change_the_histogram(tmp):
    r, _ = run_garbage(tmp, ["--duration-buckets=0.5,2"])
    for label in ("<0.5ms", "0.5-2ms", ">=2ms"):
        assert re.search(r"^  %s " % re.escape(label), r.stderr, re.M), label
    assert "20-50ms" not in r.stderr


def test_alert_threshold_alerts_every_longer_pause(tmp):
    r, _ = run_garbage(tmp, ["--alert-threshold-ms", "0.0001"])
    events = EVENT_RE.findall(r.stderr)
    alerts = re.findall(r"^GMEM ALERT \| Gen (\d+) pause ([0-9.]+m?s) exceeded 0.0ms threshold$",
                        r.stderr, re.M)
    assert len(alerts) == len(events) > 0
    m = re.search(r"^Pauses over 0.0ms: (\d+)", r.stderr, re.M)
    assert m and int(m.group(1)) >= len(alerts)
    r2, _ = run_garbage(tmp, ["--alert-threshold-ms", "100000"])
    assert "GMEM ALERT" not in r2.stderr


def test_log_file_gets_the_output_mode_0600(tmp):
    log = os.path.join(tmp, "gc.log")
    r, stats = run_garbage(tmp, ["--log-file=" + log])
    assert "GMEM" not in r.stderr
    assert r.stdout == "garbage done\n"
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    with open(log) as f:
        text = f.read()
    assert "GMEM GC STOP" in text and "=== GC MONITORING SUMMARY ===" in text


def test_flamegraph_file_is_folded_stacks_of_gc_time(tmp):
    fg = os.path.join(tmp, "gc.folded")
    log = os.path.join(tmp, "out.jsonl")
    run_garbage(tmp, ["--json", "--log-file", log, "--flamegraph-file", fg,
                      "--flamegraph-bucket", "0.1"])
    with open(fg) as f:
        lines = f.read().splitlines()
    assert lines
    total_us = 0
    for line in lines:
        m = re.match(r"^T\+[0-9.]+s;Gen (\d+);(<1ms|1-5ms|5-20ms|20-50ms|50-100ms|>=100ms) (\d+)$", line)
        assert m, line
        total_us += int(m.group(3))
    with open(log) as f:
        events = of_type(json_lines(f.read()), "event")
    want_us = sum(e["duration_ms"] for e in events) * 1000
    assert abs(total_us - want_us) <= len(lines) + 1
    assert stat.S_IMODE(os.stat(fg).st_mode) == 0o600


def test_terminal_flamegraph_width_and_colour(tmp):
    r, _ = run_garbage(tmp, ["--stats-only", "--terminal-flamegraph",
                             "--terminal-flamegraph-width", "40", "--flamegraph-bucket", "0.1"])
    assert "=== GC FLAME GRAPH (ASCII) ===" in r.stderr
    rows = re.findall(r"^ *T\+[0-9.]+s \| (.*) \| [0-9.]+ms \(G0:", r.stderr, re.M)
    assert rows and all(len(b) == 40 for b in rows), rows
    assert "\033[" not in r.stderr
    r2, _ = run_garbage(tmp, ["--stats-only", "--terminal-flamegraph",
                              "--terminal-flamegraph-color"])
    assert "\033[38;5;" in r2.stderr


def test_prompt_cites_the_measured_figures(tmp):
    r, stats = run_garbage(tmp, ["--stats-only", "--prompt"])
    assert "=== AI OPTIMIZATION PROMPT ===" in r.stderr
    prompt = r.stderr.split("=== AI OPTIMIZATION PROMPT ===", 1)[1]
    assert "Collections: %d in total" % stats_total(stats) in prompt
    assert "gc.freeze()" in prompt


def test_dump_objects_lists_types_at_exit(tmp):
    r, _ = run_garbage(tmp, ["--stats-only", "--dump-objects"])
    assert "=== OBJECT TYPES AT EXIT" in r.stderr
    assert re.search(r"^ +\d+  (dict|list|tuple|function)$", r.stderr, re.M)


# ---- shared mode ----------------------------------------------------------

@pytest.mark.parametrize("opts", [["--json"], ["--log-file", "x.log"], ["--prompt"],
                                  ["--flamegraph-file", "f.txt"], ["--terminal-flamegraph"],
                                  ["--stacks-file", "s.txt"], ["--live"]])
@pytest.mark.parametrize("how", ["flag", "env"])
def test_shared_mode_refuses_the_reports_options_rather_than_ignore_them(opts, how, tmp):
    """Shared mode prints no report: an option for it would be silently
    lost, so it is refused before anything runs, by name, whether the
    socket came from --socket or from GCMON_SOCKET."""
    sock = os.path.join(tmp, "nobody.sock")
    ran = os.path.join(tmp, "ran")
    script = os.path.join(tmp, "touch.py")
    with open(script, "w") as f:
        f.write("open(%r, 'w').close()\n" % ran)
    work = os.path.join(tmp, "work")        # where the option's file would go
    os.mkdir(work)
    flag = ["--socket", sock] if how == "flag" else []
    env = base_env(**({"GCMON_SOCKET": sock} if how == "env" else {}))
    r = subprocess.run([PROG, "run"] + flag + opts + [script],
                       env=env, cwd=work, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("pygcprofiler: %s " % opts[0]), r.stderr
    assert ("GCMON_SOCKET is set" if how == "env" else "not with --socket") in r.stderr
    assert not os.path.exists(ran) and os.listdir(work) == []


def test_shared_mode_without_a_daemon_says_so_once_and_runs_the_program(tmp):
    out = os.path.join(tmp, "argv.json")
    sock = os.path.join(tmp, "nobody.sock")
    r = launch(["--socket", sock, ARGV], env=base_env(LAUNCHER_OUT=out), input="")
    assert r.returncode == 0
    assert r.stdout == "launcher_argv stdout line\n"
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "no gcmond answers at %s" % sock in lines[0]
    with open(out) as f:
        assert json.load(f)["env"]["GCMON_SOCKET"] == sock


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody")
def test_shared_mode_refused_by_gcmond_says_so_once_and_runs_the_program(tmp):
    nobody = 65534
    with gt.Daemon() as d:
        os.chmod(d.dir, 0o711)
        os.chmod(d.sock, 0o666)        # only SO_PEERCRED stands in the way
        bindir = os.path.join(d.dir, "bin")
        os.mkdir(bindir)
        os.chmod(bindir, 0o755)
        prog = os.path.join(bindir, "pygcprofiler")
        shutil.copy2(PROG, prog)
        script = os.path.join(bindir, "hello.py")
        with open(script, "w") as f:
            f.write("print('hello')\n")
        os.chmod(script, 0o644)
        r = subprocess.run([prog, "run", "--python", gt.PYTHON, "--socket", d.sock, script],
                           env=base_env(GCMON_AGENT_DIR=gt.AGENT_DIR), cwd=bindir,
                           capture_output=True, text=True, timeout=60,
                           preexec_fn=lambda: os.setuid(nobody))
        assert r.returncode == 0, r.stderr
        assert r.stdout == "hello\n"
        lines = [l for l in r.stderr.splitlines() if "pygcprofiler" in l]
        assert lines == ["pygcprofiler: gcmond at %s refused uid %d (see gcmond "
                         "--allow-uid, --allow-group); running the program unmonitored"
                         % (d.sock, nobody)], r.stderr
        assert "no gcmond answers" not in r.stderr


def test_shared_mode_reports_to_the_running_daemon_and_prints_nothing(tmp):
    out = os.path.join(tmp, "stats.json")
    with gt.Daemon() as d:
        r = subprocess.run([PROG, "run", "--python", gt.PYTHON, GARBAGE, out],
                           env=base_env(GCMON_SOCKET=d.sock, GCMON_RUN_ID="shared-test"),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stderr == "" and r.stdout == "garbage done\n"
        with open(out) as f:
            stats = json.load(f)
        ans = d.request({"cmd": "wait", "run": "shared-test", "timeout_ms": 5000})
        assert ans["ok"], ans
        s = d.request({"cmd": "summary", "run": "shared-test"})["summary"]
        assert s["collections"] == stats_total(stats)


def waiting_script(tmp, what):
    """A script that prints what (Python expressions) and sleeps."""
    script = os.path.join(tmp, "wait.py")
    with open(script, "w") as f:
        f.write("import os, time\nprint(%s, flush=True)\ntime.sleep(60)\n" % what)
    return script


def test_shared_mode_becomes_the_program_its_pid_signals_and_status(tmp):
    """Shared mode has nothing to do after the start: the launcher execs the
    program, which keeps its pid (gcmond's record too), gets signals sent
    to that pid itself, and whose end is the command's end."""
    script = waiting_script(tmp, "os.getpid()")
    with gt.Daemon() as d:
        p = subprocess.Popen([PROG, "run", "--python", gt.PYTHON, script],
                             env=base_env(GCMON_SOCKET=d.sock, GCMON_RUN_ID="shared-exec"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert int(p.stdout.readline()) == p.pid
            gt.wait_for(lambda: p.pid in gt.processes(d, "shared-exec"), 20,
                        what="gcmond to list the program under the launcher's pid")
            p.send_signal(signal.SIGTERM)
            assert p.wait(30) == -signal.SIGTERM
        finally:
            p.kill()
            p.wait()
        assert p.stderr.read() == ""
        gt.wait_ended(d, [p.pid])


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="a PID namespace needs root and unshare(1) here")
def test_shared_mode_as_pid_1_stays_the_programs_parent(tmp):
    """A container's entrypoint: as PID 1 the program would ignore SIGTERM
    (no default action for init) and leave orphans unreaped, so there the
    launcher stays, relays the signal and ends with the program's status."""
    script = waiting_script(tmp, "os.getpid(), os.getppid()")
    with gt.Daemon() as d:
        p = subprocess.Popen([shutil.which("unshare"), "--pid", "--fork", "--mount-proc",
                              PROG, "run", "--python", gt.PYTHON, script],
                             env=base_env(GCMON_SOCKET=d.sock, GCMON_RUN_ID="shared-pid1"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().split() == ["2", "1"]
            with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                (launcher,) = [int(x) for x in f.read().split()]
            gt.wait_for(lambda: gt.processes(d, "shared-pid1"), 20,
                        what="gcmond to list the program")
            os.kill(launcher, signal.SIGTERM)
            assert p.wait(30) == 128 + signal.SIGTERM
        finally:
            p.kill()
            p.wait()
        assert p.stderr.read() == ""


# ---- several processes ------------------------------------------------------

def report_of(log_text):
    objs = json_lines(log_text)
    (summary,) = of_type(objs, "summary")
    return objs, summary["summary"], summary["processes"]


def own_collections(procs):
    """The run's total: each process's collections, less what a forked
    child inherited from its parent (doc/control.md: counted once)."""
    return sum(p["collections"] - (sum(g["unseen"] for g in p["generations"])
                                   if p["origin"] == "fork" else 0) for p in procs)


def check_totals(procs, stats_dir):
    by_pid = {p["pid"]: p for p in procs}
    files = os.listdir(stats_dir)
    assert files
    for name in files:
        with open(os.path.join(stats_dir, name)) as f:
            mine = json.load(f)
        p = by_pid.get(mine["pid"])
        assert p is not None, "pid %d missing from the report" % mine["pid"]
        got = [g["collections"] for g in p["generations"]]
        want = [g["collections"] for g in mine["stats"]]
        assert got == want, "pid %d: report %s, gc.get_stats() %s" % (mine["pid"], got, want)
    return by_pid


def test_gunicorn_four_workers_all_reported_with_exact_totals(tmp):
    stats_dir = os.path.join(tmp, "stats")
    os.mkdir(stats_dir)
    ready_dir = os.path.join(tmp, "ready")
    os.mkdir(ready_dir)
    log = os.path.join(tmp, "out.jsonl")
    rc, out, err = serve(
        ["--json", "--log-file", log, "-m", "gunicorn", "-c", GUNICORN_CONF,
         "--chdir", gt.EXAMPLES, "--workers", "4", "--bind", "127.0.0.1:{port}",
         "--log-level", "warning", "app:app"], "health", 200,
        env=base_env(LAUNCHER_STATS_DIR=stats_dir, LAUNCHER_READY_DIR=ready_dir),
        then=lambda url: gt.wait_for(lambda: len(os.listdir(ready_dir)) == 4, 30, 0.05,
                                     "the four workers to finish booting"))
    assert rc == 0, err
    assert out == ""
    with open(log) as f:
        objs, summary, procs = report_of(f.read())
    roles = sorted(pr["role"] for pr in procs)
    assert roles.count("master") == 1 and roles.count("worker") == 4, roles
    by_pid = check_totals(procs, stats_dir)
    assert len(by_pid) == 5 and len(os.listdir(stats_dir)) == 5
    assert summary["processes"] == 5
    assert summary["collections"] == own_collections(procs)
    event_pids = {e["pid"] for e in of_type(objs, "event")}
    assert len(event_pids & {pr["pid"] for pr in procs if pr["role"] == "worker"}) >= 1


def test_gunicorn_human_report_has_a_line_per_process_and_pids_on_events(tmp):
    rc, _, err = serve(
        ["-m", "gunicorn", "--chdir", gt.EXAMPLES, "--workers", "2",
         "--bind", "127.0.0.1:{port}", "--log-level", "warning", "app:app"], "health", 100)
    assert rc == 0, err
    assert re.search(r"^GMEM PID \d+ \| GC STOP  \| Gen: ", err, re.M)
    assert re.search(r"^Processes: 3 ", err, re.M)
    assert len(re.findall(r"^  master +\d+ ", err, re.M)) == 1
    assert len(re.findall(r"^  worker +\d+ ", err, re.M)) == 2
    # RSS and the command line of each process (argv, shortened).
    assert re.search(r" RSS  COMMAND$", err, re.M)
    rows = re.findall(r"^  (?:master|worker) +\d+ .* ([0-9.]+ [MG]iB|n/a)  (.+)$", err, re.M)
    assert len(rows) == 3, err
    assert all(cmd.startswith(gt.PYTHON) and len(cmd) <= 40 for _, cmd in rows), rows


def test_a_worker_killed_with_sigkill_still_appears(tmp):
    log = os.path.join(tmp, "out.jsonl")
    victim = []

    def a_worker_with_events():
        # A forked worker (from PROCESS_START) that has streamed events.
        with open(log) as f:
            objs = json_lines(f.read())
        workers = {o["process"]["pid"] for o in of_type(objs, "process_start")
                   if o["process"]["role"] == "worker"}
        for e in of_type(objs, "event"):
            if e["pid"] in workers:
                return e["pid"]
        return None

    def workers_started():
        with open(log) as f:
            objs = json_lines(f.read())
        return len([o for o in of_type(objs, "process_start")
                    if o["process"]["role"] == "worker"]) >= 3

    def kill_one(url):
        victim.append(gt.wait_for(a_worker_with_events, 30, 0.1, "events from a worker"))
        os.kill(victim[0], signal.SIGKILL)
        load(url, 50)
        # gunicorn boots the replacement on its own time: the run must
        # not end before it has.
        gt.wait_for(workers_started, 30, 0.1, "the replacement worker")

    rc, _, err = serve(
        ["--json", "--log-file", log, "--interval", "0.2", "-m", "gunicorn",
         "--chdir", gt.EXAMPLES, "--workers", "2", "--bind", "127.0.0.1:{port}",
         "--log-level", "warning", "app:app"], "health", 100, then=kill_one)
    assert rc == 0, err
    with open(log) as f:
        _, summary, procs = report_of(f.read())
    (dead,) = [pr for pr in procs if pr["pid"] == victim[0]]
    # Killed, yet read to the end from its shared area: ended, abrupt.
    assert dead["state"] == "ended" and dead["ended_by"] == "abrupt"
    assert dead["collections"] > 0
    assert sum(1 for pr in procs if pr["role"] == "worker") >= 3    # the replacement too


def test_uvicorn_two_workers_all_reported(tmp):
    log = os.path.join(tmp, "out.jsonl")
    rc, _, err = serve(
        ["--json", "--log-file", log, "-m", "uvicorn", "--app-dir", gt.EXAMPLES,
         "--workers", "2", "--host", "127.0.0.1", "--port", "{port}",
         "--log-level", "warning", "asgi_app:app"], "", 100)
    assert rc == 0, err
    with open(log) as f:
        _, summary, procs = report_of(f.read())
    root = [pr for pr in procs if pr["role"] == "master"]
    assert len(root) == 1
    served = [pr for pr in procs if pr["role"] == "worker" and pr["collections"] > 0]
    assert len(served) == 2, procs       # the two spawned workers (issue 12: not "child")
    assert summary["collections"] == own_collections(procs)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_children_are_reported_with_exact_totals(method, tmp):
    stats_dir = os.path.join(tmp, "stats")
    os.mkdir(stats_dir)
    log = os.path.join(tmp, "out.jsonl")
    r = launch(["--json", "--log-file", log, MP, method, stats_dir])
    assert r.returncode == 0, r.stderr
    with open(log) as f:
        _, summary, procs = report_of(f.read())
    by_pid = check_totals(procs, stats_dir)
    assert len(os.listdir(stats_dir)) == 3
    # Forked or spawned, the two children run the program's own code:
    # workers (issue 12; spawned ones used to be labelled "child").
    assert sum(1 for pid in by_pid if by_pid[pid]["role"] == "worker") >= 2
    assert summary["collections"] == own_collections(procs)


# ---- the private gcmond and the man pages ------------------------------------

def test_gcmond_ready_fd_gets_one_byte_once_the_socket_listens(tmp):
    sock = os.path.join(tmp, "g.sock")
    rfd, wfd = os.pipe()
    p = subprocess.Popen([gt.GCMOND, "--socket", sock, "--quiet", "--ready-fd", str(wfd)],
                         pass_fds=(wfd,), stderr=subprocess.PIPE)
    os.close(wfd)
    try:
        with os.fdopen(rfd, "rb") as ready:
            assert ready.read(1) == b"R"       # blocks until gcmond says so
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)                    # listening: no retry needed
            s.close()
            assert ready.read() == b""         # and it closed the pipe
    finally:
        p.terminate()
        p.communicate(timeout=30)
    assert p.returncode == 0
    r = subprocess.run([gt.GCMOND, "--socket", sock, "--ready-fd", "999"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "--ready-fd: '999' is not an open file descriptor" in r.stderr


def test_man_gc_monitor_finds_the_pygcprofiler_page(tmp):
    if shutil.which("man") is None:
        pytest.skip("no man here")
    dest = os.path.join(tmp, "dest")
    r = subprocess.run(["make", "-s", "-C", gt.BUILDDIR, "install-man", "DESTDIR=" + dest,
                        "mandir=/man"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    page = os.path.join(dest, "man", "man1", "gc-monitor.1")
    with open(page) as f:
        assert f.read() == ".so man1/pygcprofiler.1\n"
    r = subprocess.run(["man", "-M", os.path.join(dest, "man"), "gc-monitor"],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80"))
    assert r.returncode == 0, r.stderr
    assert "pygcprofiler" in r.stdout and "SYNOPSIS" in r.stdout


OUTLIVES_THE_RUN = r"""
import os, time
if os.fork() == 0:              # a grandchild that outlives the run
    os.setsid()
    time.sleep(8)               # past the launcher's 5 s wait
    os._exit(0)
"""


def test_the_private_directory_goes_even_when_a_process_outlives_the_run(tmp):
    """The private directory holds gcmond's socket and its agent directory
    (the shared areas): all of it goes when the launcher ends, also when a
    process of the run is still alive then (its area is never read again,
    its own mapping stays)."""
    base = os.path.join(tmp, "base")
    os.mkdir(base)
    prog = os.path.join(tmp, "outlives.py")
    with open(prog, "w") as f:
        f.write(OUTLIVES_THE_RUN)
    r = launch(["--stats-only", prog], env=base_env(TMPDIR=base), input="")
    assert r.returncode == 0, r.stderr
    assert "cannot remove" not in r.stderr, r.stderr
    assert os.listdir(base) == [], os.listdir(base)
