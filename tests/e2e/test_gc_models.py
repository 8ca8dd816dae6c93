"""test_gc_models: what gcmond shows and advises under each CPython
collector model (daemon/model/gcmodel.h), and how the agent decides which one
it runs under (agent/boot.c, _gcmon.gc_model_of).

No CPython 3.14 or 3.15 (nor a free-threaded build) can be installed on
these machines: the incremental, 3.15 and free-threaded processes here
are played by tests/e2e/shmarea.py (a real `sleep` and a real shared area
that the real gcmond reads, declaring the model and writing events as
such an interpreter's agent would). The classic model is checked with the
real interpreters found (Debian's 3.11, pyenv's 3.10-3.13), and the
agent's detection over version tuples with the function itself.

    GCMON_BUILDDIR=$PWD/build GCMON_SRCDIR=$PWD /usr/bin/python3 -m pytest tests/e2e/test_gc_models.py
"""
import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import frames  # noqa: E402
import gcmontest as gt  # noqa: E402
from shmarea import FakeArea  # noqa: E402

CLASSIC, INCREMENTAL, FREE_THREADED = 0, 1, 2      # enum proto_gc_model
HELLO_FREE_THREADED = 0x0001

STATS = os.path.join(gt.PROGRAMS, "daemon_stats.py")

needs_gcmond = pytest.mark.skipif(not os.access(gt.GCMOND, os.X_OK),
                                  reason="gcmond not built")


def hexversion(major, minor, micro, level=0xF, serial=0):
    return major << 24 | minor << 16 | micro << 8 | level << 4 | serial


def model_of(rows):
    """The agent's rule (_gcmon.gc_model_of, the one load() applies) for
    each (hexversion, gil enabled, Py_GIL_DISABLED), by name, from the
    built extension in a fresh interpreter."""
    code = ("import json, sys; sys.path.insert(0, %r); from gcmon import _gcmon; "
            "names = {getattr(_gcmon, n): n[9:] for n in dir(_gcmon) if n.startswith('GC_MODEL_')}; "
            "print(json.dumps([names[_gcmon.gc_model_of(*r)] for r in json.loads(sys.argv[1])]))"
            % gt.AGENT_DIR)
    r = gt.run_python(["-c", code, json.dumps(rows)], dict(os.environ))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# (version, level, gil enabled, Py_GIL_DISABLED, model)
DETECTION = [
    ((3, 10, 0), 0xF, True, False, "CLASSIC"),
    ((3, 11, 2), 0xF, True, False, "CLASSIC"),
    ((3, 12, 7), 0xF, True, False, "CLASSIC"),
    ((3, 13, 0), 0xF, True, False, "CLASSIC"),
    ((3, 13, 9), 0xF, True, False, "CLASSIC"),
    ((3, 14, 0), 0xA, True, False, "INCREMENTAL"),     # 3.14.0a1
    ((3, 14, 0), 0xF, True, False, "INCREMENTAL"),
    ((3, 14, 2), 0xF, True, False, "INCREMENTAL"),
    ((3, 14, 4), 0xF, True, False, "INCREMENTAL"),
    ((3, 14, 5), 0xF, True, False, "CLASSIC"),         # python/cpython#148720
    ((3, 14, 9), 0xF, True, False, "CLASSIC"),
    ((3, 15, 0), 0xA, True, False, "CLASSIC"),         # + the interpreter's duration
    ((3, 15, 2), 0xF, True, False, "CLASSIC"),
    ((3, 13, 1), 0xF, False, True, "FREE_THREADED"),   # 3.13t
    ((3, 14, 0), 0xF, False, True, "FREE_THREADED"),   # 3.14t, not incremental
    ((3, 14, 2), 0xF, True, True, "FREE_THREADED"),    # 3.14t with PYTHON_GIL=1
]


@pytest.mark.skipif(not gt.HAVE_AGENT, reason=gt.NO_AGENT)
@pytest.mark.parametrize("version,level,gil,ft_build,want", DETECTION,
                         ids=["%d.%d.%d-%x%s%s" % (v + (lv, "" if g else "-nogil",
                                                        "-t" if ft else ""))
                              for v, lv, g, ft, _ in DETECTION])
def test_agent_detects_the_model_from_the_version(version, level, gil, ft_build, want):
    assert model_of([[hexversion(*version, level=level), gil, ft_build]]) == [want]


@pytest.mark.skipif(not gt.HAVE_AGENT, reason=gt.NO_AGENT)
def test_every_detected_model_is_a_constant_of_the_extension():
    r = gt.run_python(["-c", "import sys; sys.path.insert(0, %r); from gcmon import _gcmon; "
                       "print(' '.join(n for n in dir(_gcmon) if n.startswith('GC_MODEL_')))"
                       % gt.AGENT_DIR], dict(os.environ))
    assert r.returncode == 0, r.stderr
    names = set(r.stdout.split())
    assert {"GC_MODEL_" + m for *_, m in DETECTION} <= names


def test_free_threaded_build_gets_one_line_and_no_import():
    """A real interpreter told it is free-threaded (sys._is_gil_enabled,
    which a 3.13t has): one line, no attempt to import the extension."""
    env = gt.agent_env("/nonexistent/gcmon.sock")
    env.pop("PYTHONPATH", None)
    code = ("import sys; sys._is_gil_enabled = lambda: False; "
            "sys.path.insert(0, %r); import sitecustomize; "
            "print('gcmon._gcmon' in sys.modules)" % gt.AGENT_DIR)
    r = gt.run_python(["-S", "-c", code], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("gcmon:")]
    assert lines == ["gcmon: Python %d.%d free-threaded builds cannot load abi3 "
                     "extensions such as the agent; not monitored"
                     % sys.version_info[:2]], r.stderr


# ---- the daemon side, with processes that declare each model ---------------

def proc_of(d, pid):
    for p in d.ctl("processes")["processes"]:
        if p["pid"] == pid:
            return p
    return None


def settle(d, area, n):
    """Until gcmond drained n records of area and the process has lived
    over a second (the rules read nothing shorter: rules.h)."""
    def ok():
        p = proc_of(d, area.pid)
        return p is not None and p["events"] >= n and p["wall_s"] > 1.2
    gt.wait_for(ok, 20, what="pid %d: %d records, 1.2 s" % (area.pid, n))


def rules(d, run):
    return {r["rule"]: r for r in d.ctl("recommendations", "--run", run)["recommendations"]}


def advice(recs):
    return sorted({a for r in recs.values() for a in r["actions"]
                   if a.startswith("gc.set_threshold(")})


def text(d, *args):
    r = subprocess.run([gt.GCMONCTL, "--socket", d.sock] + list(args),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


@needs_gcmond
def test_incremental_labels_no_gen2_share_no_threshold2():
    """3.14.2: automatic collections are generation 1, gc.collect() calls
    generation 2 (12% of all: a classic process with the same counts gets
    gen2_share). Beside it, the same pattern on 3.13 (classic)."""
    with gt.Daemon("--alert-threshold-ms", "5") as d:
        inc = FakeArea(d.sock, run="inc", gc_model=INCREMENTAL,
                       hexversion=hexversion(3, 14, 2),
                       base=((0, 0, 0, 2000), (3, 0, 0, 10), (0, 0, 0, 0))).publish()
        cls = FakeArea(d.sock, run="cls", hexversion=hexversion(3, 13, 5),
                       base=((3, 0, 0, 2000), (0, 0, 0, 10), (0, 0, 0, 10))).publish()
        for a, auto in ((inc, 1), (cls, 0)):
            a.burst(auto, 3000, pause_ns=200000)
            a.burst(2, 400, pause_ns=100000)
            a.collect(auto, 12000000)
        for a in (inc, cls):
            settle(d, a, 3401)

        p = proc_of(d, inc.pid)
        assert p["gc_model"] == "incremental" and p["python"] == "3.14.2"
        assert [g["label"] for g in p["generations"]] == [
            "young (explicit)", "young+incremental", "full (explicit)"]
        assert [g["collections"] for g in p["generations"]] == [0, 3004, 400]
        assert d.ctl("summary", "--run", "inc")["summary"]["gc_model"] == "incremental"
        assert [r["gc_model"] for r in d.ctl("runs")["runs"] if r["run"] == "inc"] == ["incremental"]
        recs = rules(d, "inc")
        assert "gen2_share" not in recs and "max_pause" in recs
        assert "(young+incremental)" in recs["max_pause"]["message"]
        got = advice(recs)
        assert got, recs
        for a in got:
            assert re.match(r"gc\.set_threshold\(\d+, 10\) after start-up: threshold0 2000 -> ", a), a
            assert "threshold2 is ignored" in a
        # The same kind of advice for the process alone (its figures move
        # on with the wall time).
        alone = advice({r["rule"]: r for r in d.ctl(
            "recommendations", "--pid", str(inc.pid))["recommendations"]})
        assert alone and all(re.match(r"gc\.set_threshold\(\d+, 10\) ", a) for a in alone)

        c = proc_of(d, cls.pid)
        assert c["gc_model"] == "classic"
        assert [g["label"] for g in c["generations"]] == [
            "generation 0", "generation 1", "generation 2"]
        recs = rules(d, "cls")
        assert "gen2_share" in recs
        assert all(re.match(r"gc\.set_threshold\(\d+, 10, 10\) ", a)
                   for a in advice(recs)) and advice(recs)

        out = text(d, "summary", "--run", "inc")
        assert "GC model: incremental" in out
        assert "Generation 1 (young+incremental): 3004 collections" in out
        assert "Generation 2 (full (explicit)): 400 collections" in out
        out = text(d, "summary", "--run", "cls")
        assert "GC model: classic" in out and "Generation 2: 400 collections" in out
        rows = [ln for ln in text(d, "processes").splitlines() if ln.split()[:1] == [str(inc.pid)]]
        assert len(rows) == 1 and " incremental " in rows[0], rows
        # top names the generations of its GEN0-2 columns, once per model.
        top = text(d, "top", "--once").splitlines()
        assert [ln for ln in top if ln.startswith("generations: ")] == [
            "generations: GEN0 young (explicit), GEN1 young+incremental, "
            "GEN2 full (explicit)"], top


@needs_gcmond
def test_free_threaded_whole_heap_threshold0_only():
    with gt.Daemon("--alert-threshold-ms", "5") as d:
        ft = FakeArea(d.sock, run="ft", gc_model=FREE_THREADED, flags=HELLO_FREE_THREADED,
                      hexversion=hexversion(3, 14, 2),
                      base=((2, 0, 0, 2000), (0, 0, 0, 10), (0, 0, 0, 10))).publish()
        ft.burst(0, 2000, pause_ns=3000000)
        ft.collect(0, 9000000)
        settle(d, ft, 2001)
        p = proc_of(d, ft.pid)
        assert p["gc_model"] == "free-threaded"
        assert p["generations"][0]["label"] == "whole heap"
        recs = rules(d, "ft")
        assert "gen2_share" not in recs
        got = advice(recs)
        assert got, recs
        # 3 ms whole-heap pauses: the classic model would hold threshold0
        # back to keep gen 0 pauses under 1 ms; here a pause does not grow.
        for a in got:
            assert re.match(r"gc\.set_threshold\(\d+\) after start-up: threshold0 2000 -> ", a), a


@needs_gcmond
def test_315_interpreter_duration_shown_beside_the_agent_pause():
    with gt.Daemon() as d:
        a = FakeArea(d.sock, run="py315", hexversion=hexversion(3, 15, 0)).publish()
        for _ in range(10):
            a.collect(0, 50000, collector_ns=30000)
        a.collect(1, 100000)                         # no duration in its info
        a.collect(2, 900000, collector_ns=800000)
        gt.wait_for(lambda: (proc_of(d, a.pid) or {}).get("events", 0) >= 12, 10)
        gens = proc_of(d, a.pid)["generations"]
        assert proc_of(d, a.pid)["gc_model"] == "classic"
        assert [g["collector_timed"] for g in gens] == [10, 0, 1]
        assert gens[0]["collector_time_ms"] == pytest.approx(0.3)
        assert gens[1]["collector_time_ms"] is None
        assert gens[2]["collector_time_ms"] == pytest.approx(0.8)
        # The pauses stay the agent's clock.
        assert gens[0]["gc_time_ms"] == pytest.approx(0.5)
        assert gens[2]["max_pause_ms"] == pytest.approx(0.9)
        s = d.ctl("summary", "--run", "py315")["summary"]["generations"]
        assert s[0]["collector_time_ms"] == pytest.approx(0.3)
        out = text(d, "summary", "--run", "py315")
        assert "interpreter-measured 0.300ms over 10" in out
        assert "interpreter-measured 0.800ms over 1" in out


@needs_gcmond
def test_mixed_run_plain_labels_no_threshold_advice_and_model_metric():
    port = gt.free_port()
    with gt.Daemon("--alert-threshold-ms", "5", "--metrics-listen",
                   "127.0.0.1:%d" % port) as d:
        m = FakeArea(d.sock, run="mix", hexversion=hexversion(3, 13, 5),
                     base=((0, 0, 0, 2000), (0, 0, 0, 10), (0, 0, 0, 10))).publish()
        w = FakeArea(d.sock, run="mix", ppid=m.pid, gc_model=INCREMENTAL,
                     origin=frames.ORIGIN_EXEC, hexversion=hexversion(3, 14, 1)).publish()
        m.burst(0, 2000, pause_ns=200000)
        w.burst(1, 2000, pause_ns=200000)
        m.collect(0, 9000000)
        settle(d, m, 2001)
        settle(d, w, 2000)
        s = d.ctl("summary", "--run", "mix")["summary"]
        assert s["gc_model"] == "mixed"
        assert [g["label"] for g in s["generations"]] == [
            "generation 0", "generation 1", "generation 2"]
        assert {p["gc_model"] for p in d.ctl("processes", "--run", "mix")["processes"]} == {
            "classic", "incremental"}
        recs = rules(d, "mix")
        assert "max_pause" in recs and advice(recs) == []
        # The model is an info series of its own; generations stay numbers.
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
            body = r.read().decode()
        models = re.findall(r'^cpython_gc_model_info\{service="[^"]*",role="(\w+)",'
                            r'model="([\w-]+)"\} 1$', body, re.M)
        assert sorted(models) == [("master", "classic"), ("worker", "incremental")], body
        assert not re.search(r'generation="[^0-9]', body)


@needs_gcmond
@pytest.mark.skipif(not gt.HAVE_AGENT, reason=gt.NO_AGENT)
@pytest.mark.parametrize("python", sorted({vs[0] for vs in gt.python_versions().values()})
                         or [gt.PYTHON])
def test_real_interpreter_is_classic(python, tmp_path):
    with gt.Daemon() as d:
        out = str(tmp_path / "stats.json")
        r = subprocess.run([python, STATS, out, "20"], env=gt.agent_env(d.sock, run_id="real"),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        with open(out) as f:
            pid = json.load(f)["pid"]
        p = gt.wait_ended(d, [pid])[pid]
        assert p["gc_model"] == "classic"
        assert [g["label"] for g in p["generations"]] == [
            "generation %d" % g for g in range(len(p["generations"]))]
        assert all(g["collector_timed"] == 0 and g["collector_time_ms"] is None
                   for g in p["generations"])
        assert d.ctl("summary", "--run", "real")["summary"]["gc_model"] == "classic"
