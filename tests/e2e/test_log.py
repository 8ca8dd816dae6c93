"""gcmond's JSON lines log, sized for months: a real gcmond and real
GC-heavy Python programs (tests/e2e/programs/log_shapes.py).

The default log (--log-events alerts) has process start/end, periodic and
final summaries and rate-limited alerts, and no line per collection;
--log-events all has one per collection, none no alerts. Each shape alert
(p99, GC share, gen-2 storm, outlier worker) fires on a program built to
trip it and not on a quiet one run beside it.
"""
import os
import re
import shutil
import signal
import subprocess

import pytest

import gcmontest as gt

PROG = os.path.join(gt.PROGRAMS, "log_shapes.py")
WINDOW = 4.0                 # --alert-window in the shape tests


def log_lines(path):
    return gt.json_lines(path)


def start(d, run, mode, *args):
    env = gt.agent_env(d.sock, run_id=run)
    return subprocess.Popen([gt.PYTHON, PROG, mode] + list(args), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p):
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    return {k: int(v) for k, v in re.findall(r"^(\w+) (\d+)$", out, re.M)}


def wait_ended(d, run, nproc):
    ans = d.request({"cmd": "wait", "run": run, "timeout_ms": 30000,
                     "min_processes": nproc}, timeout=40)
    assert ans["ok"] and ans["live"] == 0, ans


def stop(d):
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(30) == 0


def of(lines, typ, **kw):
    return [o for o in lines if o.get("type") == typ and
            all(o.get(k) == v for k, v in kw.items())]


def test_default_log_has_lifecycle_summaries_and_rate_limited_alerts(tmp):
    log = os.path.join(tmp, "gcmond.jsonl")
    with gt.Daemon("--alert-threshold-ms", "5", "--summary-interval", "0.5",
                   log_file=log) as d:
        pid = finish(start(d, "slow", "slow"))["pid"]
        wait_ended(d, "slow", 1)
        alerts = d.request({"cmd": "summary", "pid": pid})["summary"]["alerts"]
        # A periodic summary written after the process ended.
        gt.wait_for(lambda: any(o["ts"] > of(log_lines(log), "process_end")[0]["ts"]
                                for o in of(log_lines(log), "summary", final=False)),
                    20, what="a periodic summary after the end")
        stop(d)
        err = d.stderr()
    lines = log_lines(log)
    assert of(lines, "event") == []
    assert [o["process"]["pid"] for o in of(lines, "process_start")] == [pid]
    assert [o["process"]["pid"] for o in of(lines, "process_end")] == [pid]
    assert len(of(lines, "summary", final=True)) == 1
    # 20 full collections of ~15 ms: all over 5 ms; one line, then the
    # count of the rest (written at exit: the window is 60 s).
    assert alerts >= 10
    first = of(lines, "alert", pid=pid, alert="pause")
    rest = of(lines, "alert", pid=pid, alert="pause_repeat")
    assert len(first) == 1 and len(rest) == 1, lines
    assert first[0]["duration_ms"] > 5 and first[0]["threshold_ms"] == 5
    assert 1 + rest[0]["count"] == alerts
    assert rest[0]["message"].startswith("%d more pauses over 5 ms in the last " % (alerts - 1))
    # The per-collection stderr line is --verbose's; the alerts are there.
    assert not re.search(r"pid %d gen \d pause" % pid, err)
    assert "pause_repeat alert: %d more pauses" % (alerts - 1) in err


@pytest.mark.parametrize("events", ["all", "none"])
def test_log_events_all_has_every_collection_none_no_alert(events, tmp):
    log = os.path.join(tmp, "gcmond.jsonl")
    with gt.Daemon("--alert-threshold-ms", "5", "--log-events", events,
                   "--verbose", log_file=log) as d:
        pid = finish(start(d, "slow-" + events, "slow"))["pid"]
        wait_ended(d, "slow-" + events, 1)
        summ = d.request({"cmd": "summary", "pid": pid})["summary"]
        stop(d)
        err = d.stderr()
    lines = log_lines(log)
    assert len(of(lines, "process_end")) == 1
    assert len(of(lines, "summary", final=True)) == 1
    if events == "all":
        assert len(of(lines, "event", pid=pid)) == summ["seen"] > 20
        assert len([o for o in of(lines, "alert", pid=pid)
                    if o["alert"] in ("pause", "pause_repeat")]) == 2
    else:
        assert of(lines, "event") == [] and of(lines, "alert") == []
    # --verbose: a stderr line per collection.
    assert len(re.findall(r"pid %d gen \d pause" % pid, err)) == summ["seen"]


OFF = ["--alert-threshold-ms", "1000", "--alert-p99-ms", "0", "--alert-gc-share", "0",
       "--alert-gen2-per-min", "0", "--alert-outlier-factor", "0"]
SHAPES = [
    # (alert, flags turning it on, hot program, quiet program)
    ("p99", ["--alert-p99-ms", "5"], "p99", "quiet"),
    ("gc_share", ["--alert-gc-share", "20"], "share", "quiet"),
    ("gen2_storm", ["--alert-gen2-per-min", "120"], "gen2", "quiet"),
    # 30 ms: the heavy worker's full collections take ~100 ms; a quiet
    # one's take well under 1 ms, but a loaded machine once preempted one
    # for 24.7 ms, which a 12 ms floor called an outlier.
    ("outlier", ["--alert-outlier-factor", "3", "--alert-threshold-ms", "30"],
     "outlier", "quiet-workers"),
]
def line_ms(alert, flags):
    """The pause length a pause must cross for alert to count it, where
    one (preempted) pause can cross it on a loaded machine: read from the
    flags that turn the alert on; None for the alerts of other shapes."""
    opt = {"p99": "--alert-p99-ms", "outlier": "--alert-threshold-ms"}.get(alert)
    return float(flags[flags.index(opt) + 1]) if opt else None


@pytest.mark.parametrize("alert,flags,hot,quiet", SHAPES, ids=[s[0] for s in SHAPES])
def test_shape_alert_fires_on_its_program_not_on_a_quiet_one(alert, flags, hot, quiet, tmp):
    log = os.path.join(tmp, "gcmond.jsonl")
    nproc = 5 if hot == "outlier" else 1
    with gt.Daemon("--alert-window", str(WINDOW), "--summary-interval", "0.5",
                   *(OFF + flags), log_file=log) as d:
        ph, pq = start(d, "hot", hot), start(d, "quiet", quiet)
        ids = finish(ph)
        finish(pq)
        wait_ended(d, "hot", nproc)
        wait_ended(d, "quiet", nproc)
        gt.wait_for(lambda: of(log_lines(log), "alert", alert=alert, run="hot"), 30,
                    what="a %s alert for the hot program" % alert)
        # Every evaluation of the quiet program's window is done once a
        # whole window has passed since its last process ended.
        end = max(o["ts"] for o in of(log_lines(log), "process_end")
                  if o["process"]["run"] == "quiet")
        gt.wait_for(lambda: any(o["ts"] > end + WINDOW + 1
                                for o in of(log_lines(log), "summary")),
                    30, what="a summary a window after the quiet program ended")
        procs = {run: d.request({"cmd": "processes", "run": run})["processes"]
                 for run in ("hot", "quiet")}
        stop(d)
    lines = log_lines(log)
    fired = of(lines, "alert", alert=alert, run="hot")
    # A pause a loaded machine stretched past the line (a quiet worker's
    # 0.5 ms collection preempted for 30 ms) is a real pause over it, and
    # the alert is right to count it: the quiet program must stay silent
    # whenever none of its pauses crossed the line, which is the rule.
    line = line_ms(alert, flags)
    stretched = [p["pid"] for p in procs["quiet"]
                 if line is not None and p["max_pause_ms"] > line]
    if not stretched:
        assert of(lines, "alert", alert=alert, run="quiet") == []
    # At most one line per window per process while it holds.
    per_pid = {}
    for o in fired:
        per_pid.setdefault(o["pid"], []).append(o["ts"])
    for ts in per_pid.values():
        assert all(b - a >= WINDOW - 0.2 for a, b in zip(ts, ts[1:])), ts
    o = fired[0]
    assert o["window_s"] == WINDOW and o["message"]
    if alert == "p99":
        assert o["pauses"] >= 100 and o["over_pct"] > 1 and o["max_ms"] > 5
    elif alert == "gc_share":
        assert o["gc_wall_pct"] > 20 and o["limit_pct"] == 20
    elif alert == "gen2_storm":
        assert o["gen"] == 2 and o["per_min"] > 120
    else:
        slow = {p["pid"] for p in procs["hot"] if p["max_pause_ms"] > line}
        assert ids["heavy"] in {x["pid"] for x in fired} <= slow | {ids["heavy"]}
        assert o["siblings"] == 3 and o["max_ms"] > 30
        assert o["max_ms"] > 3 * o["siblings_median_ms"]


def test_bad_log_options_are_refused_by_name():
    for args, name in ((["--log-events", "some"], "--log-events"),
                       (["--summary-interval", "-1"], "--summary-interval"),
                       (["--alert-window", "0"], "--alert-window"),
                       (["--alert-gc-share", "101"], "--alert-gc-share"),
                       (["--alert-p99-ms", "x"], "--alert-p99-ms"),
                       (["--alert-gen2-per-min", ""], "--alert-gen2-per-min"),
                       (["--alert-outlier-factor", "-3"], "--alert-outlier-factor")):
        r = subprocess.run([gt.GCMOND] + args, capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, args
        assert name in r.stderr, r.stderr


LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"


def test_contrib_logrotate_file_rotates_a_live_log(tmp):
    """contrib/logrotate.d/gcmond, pointed at a test log and at this
    gcmond: real logrotate moves the file, its postrotate SIGHUP makes
    gcmond write to a new one, and no line is lost."""
    if not os.access(LOGROTATE, os.X_OK):
        pytest.skip("logrotate is not installed (Debian: logrotate)")
    log = os.path.join(tmp, "gcmond.jsonl")
    with open(os.path.join(gt.SRCDIR, "contrib", "logrotate.d", "gcmond")) as f:
        conf = f.read()
    assert "/var/log/gcmon/gcmond.jsonl {" in conf and "postrotate" in conf
    with gt.Daemon("--summary-interval", "0.2", log_file=log) as d:
        finish(start(d, "rotated", "quiet", "0.2"))     # summaries need a run
        conf = conf.replace("/var/log/gcmon/gcmond.jsonl", log)
        conf = conf.replace("su gcmon gcmon", "").replace("create 0600 gcmon gcmon", "create 0600")
        conf = re.sub(r"systemctl kill [^\n]*", "kill -HUP %d" % d.proc.pid, conf)
        path = os.path.join(tmp, "logrotate.conf")
        with open(path, "w") as f:
            f.write(conf)
        gt.wait_for(lambda: len(of(log_lines(log), "summary")) >= 2, 20, what="summaries")
        r = subprocess.run([LOGROTATE, "-f", "-s", os.path.join(tmp, "state"), path],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        gt.wait_for(lambda: "reopened " + log in d.stderr(), 10, what="the SIGHUP reopen")
        gt.wait_for(lambda: len(of(log_lines(log), "summary")) >= 2, 20,
                    what="summaries in the new log")
        stop(d)
    old = log_lines(log + ".1")
    assert len(of(old, "summary")) >= 2
    assert os.stat(log).st_mode & 0o777 == 0o600
    assert of(log_lines(log), "summary", final=True)
