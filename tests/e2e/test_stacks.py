"""Where the pauses land: the Python stack behind each gen-2 (and long)
collection, captured by the agent, aggregated by a real gcmond, read back
as folded stacks (pygcprofiler --stacks-file) and `gcmonctl stacks`, on
every CPython 3.10-3.13 found here."""
import json
import os
import subprocess

import pytest

import gcmontest

PROG = os.path.join(gcmontest.PROGRAMS, "stacks_prog.py")
VERSIONS = ["3.10", "3.11", "3.12", "3.13"]


def python_for(version):
    found = gcmontest.python_versions().get(version)
    if not found:
        pytest.skip("CPython %s not found (Debian's or pyenv's)" % version)
    return found[0]


def folded(path):
    """[(frames, generation, weight)] of a folded stacks file."""
    rows = []
    with open(path) as f:
        for line in f:
            stack, weight = line.rstrip("\n").rsplit(" ", 1)
            parts = stack.split(";")
            gen = parts[-1]
            rows.append((parts[:-1], gen, int(weight)))
    return rows


def profile(tmp, py, *extra, rounds=12, args=()):
    out = os.path.join(tmp, "stacks.folded")
    cp = subprocess.run([gcmontest.PYGCPROFILER, "run", "--stats-only",
                         "--python", py, "--stacks-file", out] + list(extra) +
                        [PROG, str(rounds)] + list(args),
                        capture_output=True, text=True, timeout=180)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return cp, folded(out)


@pytest.mark.parametrize("version", VERSIONS)
def test_gen2_pause_time_lands_in_build_cycles(tmp, version):
    cp, rows = profile(tmp, python_for(version))
    gen2 = [r for r in rows if r[1] == "gen 2"]
    total = sum(w for _, _, w in gen2)
    cycles = sum(w for frames, _, w in gen2
                 if any(f.endswith(":build_cycles") for f in frames))
    idle = sum(w for frames, _, w in rows
               if any(f.endswith(":idle_work") for f in frames))
    assert total > 0, cp.stderr
    assert cycles >= 0.9 * total, rows
    assert idle == 0, rows
    # Root first, as flamegraph.pl and speedscope read it.
    path = next(frames for frames, _, _ in gen2
                if frames and frames[-1].endswith(":build_cycles"))
    assert path[0].endswith("stacks_prog.py:<module>")
    assert path[-2].endswith("stacks_prog.py:main")
    assert "=== WHERE THE PAUSES LAND ===" in cp.stderr
    assert "stacks_prog.py:build_cycles:" in cp.stderr


def test_stacks_by_count_weighs_collections(tmp):
    py = python_for("3.12")
    cp, rows = profile(tmp, py, "--stacks-by", "count", "--json")
    gen2 = sum(w for _, gen, w in rows if gen == "gen 2")
    summary = next(json.loads(l) for l in cp.stderr.splitlines()
                   if l.startswith("{") and json.loads(l).get("type") == "summary")
    stacks = next(json.loads(l) for l in cp.stderr.splitlines()
                  if l.startswith("{") and json.loads(l).get("type") == "stacks")
    assert stacks["stacks"]["count"] == sum(w for _, _, w in rows)
    # Every gen-2 collection the agent saw carries its stack.
    seen2 = next(g["seen"] for g in summary["summary"]["generations"]
                 if g["gen"] == 2)
    assert gen2 == seen2 and gen2 >= 1


def test_gcmonctl_stacks_names_fork_child_paths(tmp):
    import urllib.request
    port = gcmontest.free_port()
    with gcmontest.Daemon("--http-listen", "127.0.0.1:%d" % port) as d:
        env = gcmontest.agent_env(d.sock, run_id="stk")
        cp = gcmontest.run_python([PROG, "8", "fork"], env, timeout=120)
        assert cp.returncode == 0, cp.stderr
        procs = gcmontest.wait_ended(d, [p for p in gcmontest.processes(d, "stk")])
        assert len(procs) == 2
        for pid in procs:
            ans = d.ctl("stacks", "--pid", str(pid))["stacks"]
            leaves = [p["frames"][-1] for p in ans["paths"] if p["frames"]]
            assert any(f["function"] == "build_cycles" and
                       f["file"].endswith("stacks_prog.py") for f in leaves), ans
            for p in ans["paths"]:
                for f in p["frames"]:
                    assert not f["function"].startswith("?#"), (pid, p)
        run = d.ctl("stacks", "--run", "stk")["stacks"]
        assert run["count"] == sum(d.ctl("stacks", "--pid", str(p))["stacks"]["count"]
                                   for p in procs)
        assert run["given_up"] == 0
        assert abs(sum(p["share_time"] for p in run["paths"]) - 1.0) < 1e-6 or \
            run["other"]["count"] > 0
        text = subprocess.run([gcmontest.GCMONCTL, "--socket", d.sock, "stacks",
                               "--run", "stk"], capture_output=True, text=True,
                              timeout=30)
        assert text.returncode == 0, text.stderr
        assert "By total pause:" in text.stdout and "By count:" in text.stdout
        assert "stacks_prog.py:build_cycles:" in text.stdout
        # The metrics stay free of stacks (their cardinality is unbounded).
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                    timeout=10) as r:
            metrics = r.read().decode()
        assert "cpython_gc_collections_total" in metrics
        assert "build_cycles" not in metrics and "<module>" not in metrics


def test_bad_stacks_requests_say_what_was_wrong(tmp):
    with gcmontest.Daemon() as d:
        r = subprocess.run([gcmontest.GCMONCTL, "--socket", d.sock, "stacks",
                            "--pid", "999999"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 1 and "no process 999999" in r.stderr
        r = subprocess.run([gcmontest.GCMONCTL, "--socket", d.sock, "stacks",
                            "--run", "a", "--pid", "1"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 2 and "not both" in r.stderr
    r = subprocess.run([gcmontest.PYGCPROFILER, "run", "--stacks-by", "size",
                        PROG, "1"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--stacks-by" in r.stderr and "count or time" in r.stderr
    r = subprocess.run([gcmontest.PYGCPROFILER, "run", "--socket", "/nonexistent",
                        "--stacks-file", os.path.join(tmp, "x"), PROG, "1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--stacks-file" in r.stderr
    r = subprocess.run([gcmontest.PYGCPROFILER, "run", "--stacks-file",
                        os.path.join(tmp, "no", "such", "dir"), PROG, "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "cannot write --stacks-file" in r.stderr


def test_hostile_stack_ring_and_names_are_given_up(tmp):
    """A stack of impossible depth gives up that area's stacks, a bad name
    record its names; its events still count and gcmond keeps serving."""
    import shmarea
    with gcmontest.Daemon("--alert-threshold-ms", "20") as d:
        a = shmarea.FakeArea(d.sock, run="hostile").publish()
        try:
            gcmontest.wait_for(lambda: a.pid in gcmontest.processes(d),
                               what="gcmond to attach the area")
            # gcmond's threshold reaches the agent through the area.
            assert a.read_u64(shmarea.OFF_STACK_MIN_PAUSE) == 20_000_000
            a.add_name(1, "app.py", "handler")
            a.collect(2, 5_000_000, stack=[(1, 10), (2, 3)])

            def one():
                s = d.ctl("stacks", "--pid", str(a.pid))["stacks"]
                return s if s["count"] == 1 else None
            s = gcmontest.wait_for(one, what="the first stack")
            frames_ = s["paths"][0]["frames"]
            assert [(f["file"], f["function"], f["line"]) for f in frames_] == \
                [("?", "?#2", 3), ("app.py", "handler", 10)]
            a.add_name(2, "", "", raw=shmarea.NAME_REC.pack(2, 1, 60000, 1))
            a.collect(2, 1_000_000, stack=[(1, 10)], depth=999)
            a.collect(2, 1_000_000, stack=[(1, 11)])
            gcmontest.wait_for(
                lambda: gcmontest.processes(d)[a.pid]["generations"][2]
                ["collections"] == 3, what="the events to count")
            s = d.ctl("stacks", "--pid", str(a.pid))["stacks"]
            assert s["count"] == 1 and s["given_up"] == 1
            assert d.ping_ok()
        finally:
            a.kill()


def test_pause_alert_line_carries_the_stack(tmp):
    log = os.path.join(tmp, "gcmond.log")
    with gcmontest.Daemon("--alert-threshold-ms", "2", log_file=log) as d:
        env = gcmontest.agent_env(d.sock, run_id="alerting")
        # Until gcmond attaches (late under valgrind) and writes its 2 ms,
        # the agent captures from its own default: the same here.
        env["GCMON_STACK_MIN_PAUSE_MS"] = "2"
        cp = gcmontest.run_python([PROG, "8"], env, timeout=120)
        assert cp.returncode == 0, cp.stderr
        pid = next(iter(gcmontest.processes(d, "alerting")))
        gcmontest.wait_ended(d, [pid])
    with open(log) as f:
        lines = [json.loads(l) for l in f if l.startswith("{")]
    alerts = [o for o in lines if o.get("type") == "alert" and o.get("alert") == "pause"]
    assert alerts, lines[-5:]
    stack = alerts[0]["stack"]
    assert 1 <= len(stack) <= 5
    # Leaf first: the function that was allocating when the pause began.
    assert stack[0]["function"] == "build_cycles"
    assert stack[0]["file"].endswith("stacks_prog.py") and stack[0]["line"] > 0
    assert stack[1]["function"] == "main"


def test_gunicorn_stacks_name_the_view_that_builds_cycles(tmp):
    import signal
    import urllib.request
    port = gcmontest.free_port()
    with gcmontest.Daemon() as d:
        env = gcmontest.agent_env(d.sock, run_id="web")
        g = subprocess.Popen([gcmontest.PYTHON, "-m", "gunicorn", "--chdir",
                              gcmontest.PROGRAMS, "--workers", "2", "--bind",
                              "127.0.0.1:%d" % port, "--log-level", "warning",
                              "stacks_wsgi:app"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            base = "http://127.0.0.1:%d/" % port

            def up():
                try:
                    return urllib.request.urlopen(base + "plain", timeout=2).status == 200
                except OSError:
                    return False
            gcmontest.wait_for(up, 30, 0.1, "gunicorn to answer")
            for i in range(400):
                for view in ("plain", "cycles"):
                    with urllib.request.urlopen(base + view, timeout=10) as r:
                        assert r.status == 200
        finally:
            g.send_signal(signal.SIGTERM)
            _, err = g.communicate(timeout=60)
        assert g.returncode == 0, err
        gcmontest.wait_ended(d, list(gcmontest.processes(d, "web")))
        ans = d.ctl("stacks", "--run", "web")["stacks"]
        text = subprocess.run([gcmontest.GCMONCTL, "--socket", d.sock, "stacks",
                               "--run", "web"], capture_output=True, text=True,
                              timeout=30).stdout
    # The collections without a Python frame are each interpreter's own at
    # exit (a worker's heap still holds its kept cycles): at most one each.
    bare = sum(p["count"] for p in ans["paths"] if not p["frames"])
    assert bare <= 3, ans
    gen2 = [p for p in ans["paths"] if p["generation"] == 2 and p["frames"]]
    total = sum(p["pause_ns"] for p in gen2)
    views = sum(p["pause_ns"] for p in gen2
                if any(f["function"] == "cycles_view" for f in p["frames"]))
    assert total > 0, ans
    assert views >= 0.9 * total, ans
    assert not any(f["function"] == "plain_view" for p in ans["paths"]
                   for f in p["frames"]), ans
    top = max(gen2, key=lambda p: p["pause_ns"])
    assert top["frames"][-1]["function"] == "build_cycles"
    assert "stacks_wsgi.py:build_cycles:" in text, text


def test_stack_sample_takes_one_in_n_young_collections(tmp):
    # A threshold no young pause reaches, even on a loaded machine.
    with gcmontest.Daemon("--alert-threshold-ms", "60000") as d:
        env = gcmontest.agent_env(d.sock, run_id="sampled")
        env["GCMON_STACK_SAMPLE"] = "10"
        cp = gcmontest.run_python([PROG, "3"], env, timeout=120)
        assert cp.returncode == 0, cp.stderr
        (pid,) = gcmontest.processes(d, "sampled")
        proc = gcmontest.wait_ended(d, [pid])[pid]
        ans = d.ctl("stacks", "--pid", str(pid))["stacks"]
    seen0 = proc["generations"][0]["seen"]
    young = sum(p["count"] for p in ans["paths"] if p["generation"] == 0)
    assert seen0 >= 100
    # 1 in 10 (the stack ring may refuse some, never add).
    assert 1 <= young <= seen0 // 10 + 1, (young, seen0)
    assert any(p["generation"] == 0 and p["frames"] and
               p["frames"][-1]["function"] == "build_cycles" for p in ans["paths"])
