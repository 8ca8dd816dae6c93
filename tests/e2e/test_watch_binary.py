"""test_watch_binary: the launcher's text lines come from gcmond's binary
watch records (WATCH_EVENTS, doc/control.md) and must be, byte for byte,
the lines the JSON events would give; and the records themselves, on the
wire, must say what the JSON events say.

    GCMON_BUILDDIR=$PWD/build GCMON_SRCDIR=$PWD /usr/bin/python3 -m pytest tests/e2e/test_watch_binary.py
"""
import json
import os
import re
import socket
import stat
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcmontest as gt  # noqa: E402

PROG = os.path.join(gt.PROGRAMS, "watch_lines.py")
GARBAGE = os.path.join(gt.PROGRAMS, "launcher_garbage.py")
FRAME_CONTROL, FRAME_WATCH_EVENTS = 7, 8
REC = struct.Struct("<IHBBQQQQII")      # protocol.h, WATCH_EVENTS record
PLAIN = ["generation %d" % g for g in range(8)]
LABELS = {0: PLAIN,
          1: ["young (explicit)", "young+incremental", "full (explicit)"] + PLAIN[3:],
          2: ["whole heap", "whole heap (explicit gen 1)", "full (explicit)"] + PLAIN[3:]}


def base_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GCMON_") or k in ("GCMON_BUILDDIR", "GCMON_SRCDIR",
                                                     "GCMON_AGENT_DIR")}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def fmt_ms(ms):
    """client/report.c report_fmt_ms."""
    if 0 < ms < 0.001:
        return "%.2f\u00b5s" % (ms * 1000.0)
    if ms < 1.0:
        return "%.3fms" % ms
    if ms < 1000.0:
        return "%.1fms" % ms
    return "%.2fs" % (ms / 1000.0)


def event_line(o, with_pid):
    """client/report.c report_event_line of an EVENT object."""
    label = o.get("label")
    lab = "" if label is None or label.startswith("generation ") else " (%s)" % label
    return "GMEM %sGC STOP  | Gen: %d%s | Duration: %s | Collected: %d | Uncollectable: %d" % (
        "PID %d | " % o["pid"] if with_pid else "", o["gen"], lab,
        fmt_ms(o["duration_ms"]), o["collected"], o["uncollectable"])


def replay(objs):
    """The GC STOP lines the JSON watch would have printed: the log's
    objects in their order (the same calls write the log and the watch),
    pids noted as watch.c notes them."""
    pids, lines = [], []
    for o in objs:
        t = o.get("type")
        pid = o["process"]["pid"] if t in ("process_start", "process_end") else o.get("pid")
        if t in ("process_start", "process_end", "event") and pid not in pids:
            pids.append(pid)
        if t == "event":
            lines.append(event_line(o, len(pids) > 1))
    return lines


def wrapper(tmp, log):
    """A gcmond that also logs every collection as JSON (GCMON_GCMOND)."""
    path = os.path.join(tmp, "gcmond-logging")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec %s --log-file %s --log-events all \"$@\"\n" % (gt.GCMOND, log))
    os.chmod(path, stat.S_IRWXU)
    return path


def test_text_lines_are_the_json_events_lines_byte_for_byte(tmp):
    log = os.path.join(tmp, "gcmond.jsonl")
    stats_dir = os.path.join(tmp, "stats")
    os.mkdir(stats_dir)
    r = subprocess.run([gt.PYGCPROFILER, "run", "--python", gt.PYTHON,
                        "--alert-threshold-ms", "2", PROG, stats_dir],
                       env=base_env(GCMON_GCMOND=wrapper(tmp, log)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "event stream was cut" not in r.stderr
    with open(log) as f:
        objs = [json.loads(line) for line in f if line.startswith("{")]
    text = r.stderr.splitlines()
    stops = [ln for ln in text if ln.startswith("GMEM ") and "GC STOP  |" in ln]
    want = replay(objs)
    assert len(want) > 100
    assert stops == want
    # Three processes, so most lines carry the pid.
    ends = {o["process"]["pid"]: o["process"] for o in objs if o.get("type") == "process_end"}
    assert len(ends) == 3
    assert {p["origin"] for p in ends.values()} == {"root", "fork", "exec"}
    assert sum(1 for ln in stops if ln.startswith("GMEM PID ")) > len(stops) // 2
    # Alerts (JSON frames between the records): each right after the
    # GC STOP line of its collection, one for each pause over 2 ms (the
    # log's own alert lines are rate-limited: not a count to compare).
    alerts = [i for i, ln in enumerate(text) if " ALERT | Gen " in ln]
    over = [o for o in objs if o.get("type") == "event" and round(o["duration_ms"] * 1e6) > 2000000]
    assert alerts and len(alerts) == len(over)
    for i in alerts:
        prev = text[i - 1]
        assert "GC STOP  |" in prev, (prev, text[i])
        assert prev.split("Duration: ")[1].split(" ")[0] in text[i]
    # Totals: every collection a line, and the report's are gc.get_stats()'s.
    events = [o for o in objs if o.get("type") == "event"]
    assert sum(p["events"] for p in ends.values()) == len(events) == len(stops)
    for name in os.listdir(stats_dir):
        with open(os.path.join(stats_dir, name)) as f:
            mine = json.load(f)
        p = ends[mine["pid"]]
        assert [g["collections"] for g in p["generations"]] == \
            [g["collections"] for g in mine["stats"]]
    own = sum(p["collections"] - (sum(g["unseen"] for g in p["generations"])
                                  if p["origin"] == "fork" else 0) for p in ends.values())
    assert "Total GC collections: %d " % own in r.stderr


def test_stats_only_and_json_outputs_are_unchanged(tmp):
    """--json still streams the JSON events (one object a line); the text
    run's line count and the --json run's event count are each exact."""
    out = os.path.join(tmp, "stats.json")
    r = subprocess.run([gt.PYGCPROFILER, "run", "--python", gt.PYTHON, "--json",
                        GARBAGE, out, "20"], env=base_env(), capture_output=True,
                       text=True, timeout=90)
    assert r.returncode == 0, r.stderr
    objs = [json.loads(ln) for ln in r.stderr.splitlines() if ln.startswith("{")]
    events = [o for o in objs if o["type"] == "event"]
    (summary,) = [o for o in objs if o["type"] == "summary"]
    assert events and set(events[0]) >= {"pid", "run", "gen", "label", "time",
                                         "duration_ms", "collector_ms", "collected",
                                         "uncollectable"}
    assert len(events) == summary["summary"]["seen"]


def watcher(sock, req):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock)
    body = json.dumps(req).encode()
    s.sendall(gt.HDR.pack(gt.HDR.size + len(body), FRAME_CONTROL, 1, 0) + body)
    typ, ans = gt.read_frame(s)
    assert typ == FRAME_CONTROL and json.loads(ans)["ok"] is True
    return s


def read_stream(s, until_ends):
    """(kind, object) in order: ("json", dict) or ("rec", tuple)."""
    out, ends = [], 0
    while ends < until_ends:
        typ, payload = gt.read_frame(s)
        if typ == FRAME_CONTROL:
            o = json.loads(payload)
            out.append(("json", o))
            ends += o.get("type") == "process_end"
            continue
        assert typ == FRAME_WATCH_EVENTS
        n, size = struct.unpack_from("<II", payload)
        assert size == REC.size and len(payload) == 8 + n * size and n > 0
        for i in range(n):
            out.append(("rec", REC.unpack_from(payload, 8 + i * size)))
    return out


def test_binary_records_say_what_the_json_events_say(tmp):
    with gt.Daemon() as d:
        js = watcher(d.sock, {"cmd": "watch", "run": "wb"})
        bn = watcher(d.sock, {"cmd": "watch", "run": "wb", "events": "binary"})
        out = os.path.join(tmp, "stats.json")
        r = gt.run_python([GARBAGE, out, "15"], gt.agent_env(d.sock, run_id="wb"))
        assert r.returncode == 0, r.stderr
        a, b = read_stream(js, 1), read_stream(bn, 1)
        js.close()
        bn.close()
    ev_json = [o for k, o in a if o.get("type") == "event"]
    recs = [o for k, o in b if k == "rec"]
    assert len(ev_json) == len(recs) > 10
    assert not [o for k, o in b if k == "json" and o.get("type") == "event"]
    # The same order of everything but the events' form.
    kinds = lambda s: [o.get("type") if k == "json" else "event" for k, o in s]  # noqa: E731
    assert kinds(a) == kinds(b)
    for o, (pid, gen, model, flags, t_ns, pause_ns, coll_ns, collected, unc, res) in \
            zip(ev_json, recs):
        assert (pid, gen, collected, unc, res) == \
            (o["pid"], o["gen"], o["collected"], o["uncollectable"], 0)
        assert LABELS[model][gen] == o["label"]
        assert pause_ns / 1e6 == o["duration_ms"]
        assert abs(t_ns / 1e9 - o["time"]) < 1e-4
        assert (o["collector_ms"] is None) == (not flags & 1)
        if flags & 1:
            assert coll_ns / 1e6 == o["collector_ms"]


def fake_run(tmp, mode):
    path = os.path.join(tmp, "fake-gcmond")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec %s %s %s \"$@\"\n" % (
            gt.PYTHON, os.path.join(gt.PROGRAMS, "fake_gcmond.py"), mode))
    os.chmod(path, stat.S_IRWXU)
    empty = os.path.join(tmp, "empty.py")
    open(empty, "w").close()
    return subprocess.run([gt.PYGCPROFILER, "run", "--python", gt.PYTHON, empty],
                          env=base_env(GCMON_GCMOND=path), capture_output=True,
                          text=True, timeout=60)


def test_a_bad_record_frame_is_named_and_ends_the_stream_not_the_run(tmp):
    r = fake_run(tmp, "hostile")
    assert r.returncode == 0, r.stderr
    assert "GMEM GC STOP  | Gen: 0 | Duration: 0.213ms | Collected: 7 | " \
        "Uncollectable: 0\n" in r.stderr
    assert r.stderr.count("GC STOP") == 1
    assert "pygcprofiler: gcmond's event stream was cut: truncated frame payload" in r.stderr


def test_a_refused_watch_is_said_and_stops_the_program_it_raced(tmp):
    # The program starts while gcmond does; a watch gcmond then refuses
    # must not leave it running unwatched.
    r = fake_run(tmp, "refuse")
    assert r.returncode == 1, r.stderr
    assert "pygcprofiler: cannot watch the run on " in r.stderr
    assert ": Protocol error\n" in r.stderr
    assert re.search(r"pygcprofiler: the program \(pid \d+\) was stopped", r.stderr)
    assert "GC STOP" not in r.stderr
