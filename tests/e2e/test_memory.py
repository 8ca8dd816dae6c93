"""test_memory: what gcmond says of the memory of forked workers, against
the test's own reading of /proc/<pid>/smaps_rollup. A real gcmond, a real
Python master (tests/e2e/programs/memory_cow.py) that builds
examples/cow_app.py's object graph and forks workers; each worker runs one
full collection while the test reads its memory before and after. Without
gc.freeze() the collection unshares most of the graph; with it, almost
nothing. And gcmond as nobody, refused a root process's figures, says so.

No timing assertion: every wait is for a state (bounded), never a speed.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcmontest as gt  # noqa: E402

PROG = os.path.join(gt.PROGRAMS, "memory_cow.py")

GRAPH_MB = 120
NWORKERS = 2

pytestmark = pytest.mark.skipif(not (gt.HAVE_AGENT and os.access(gt.GCMOND, os.X_OK)),
                                reason="gcmond or the agent not built")


def smaps(pid):
    """{key: bytes} of a process's smaps_rollup, read by the test."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            key, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def private(pid):
    m = smaps(pid)
    return m["Private_Clean"] + m["Private_Dirty"]


class Master:
    """memory_cow.py under the agent, its lines read as they come."""

    def __init__(self, sock, freeze, run):
        env = gt.agent_env(sock, run_id=run)
        self.proc = subprocess.Popen(
            [gt.PYTHON, PROG, str(GRAPH_MB), str(NWORKERS), "1" if freeze else "0"],
            env=env, stdout=subprocess.PIPE, text=True)

    def expect(self, word):
        line = self.proc.stdout.readline().split()
        assert line and line[0] == word, (word, line)
        return int(line[1])

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self.proc.stdout.close()


def worker_collected(d, pid):
    p = gt.processes(d).get(pid)
    return p if p is not None and p["generations"][2]["seen"] >= 1 else None


def unshared_metric(text, role):
    """cpython_gc_unshared_bytes_total of role, summed over services."""
    return sum(float(v) for v in re.findall(
        r'^cpython_gc_unshared_bytes_total\{[^}]*role="%s"[^}]*\} (\S+)$' % role,
        text, re.M))


def measure(freeze):
    """(graph bytes, [(gcmond's unshared_by_gc_bytes, the test's), ...]),
    the run's summary, the workers' process objects."""
    port = gt.free_port()
    with gt.Daemon("--sample-interval", "0.1",
                   "--metrics-listen", "127.0.0.1:%d" % port) as d:
        m = Master(d.sock, freeze, "cow-%d" % freeze)
        try:
            graph = m.expect("graph")
            pids = [m.expect("ready") for _ in range(NWORKERS)]
            before = {}
            for pid in pids:
                # A paused worker's memory stands still: once gcmond's
                # reading equals ours, its "before" is ours.
                gt.wait_for(lambda: (gt.processes(d).get(pid) or {}).get(
                    "private_dirty_bytes") == smaps(pid)["Private_Dirty"], 30,
                    what="gcmond to read worker %d" % pid)
                before[pid] = private(pid)
            for pid in pids:
                os.kill(pid, signal.SIGUSR1)
            for _ in pids:
                m.expect("collected")
            pairs, procs = [], []
            for pid in pids:
                mine = private(pid) - before[pid]
                p = gt.wait_for(lambda: worker_collected(d, pid), 30,
                                what="gcmond to drain worker %d's collection" % pid)
                assert p["role"] == "worker" and p["memory"] == "read", p
                pairs.append((p["unshared_by_gc_bytes"], mine))
                procs.append(p)
            summary = d.request({"cmd": "summary", "run": "cow-%d" % freeze})
            summary["recommendations"] = d.request(
                {"cmd": "recommendations", "run": "cow-%d" % freeze})["recommendations"]
            for pid in pids:
                os.kill(pid, signal.SIGUSR1)
            assert m.proc.wait(60) == 0
            ended = gt.wait_ended(d, pids + [m.proc.pid])
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                        timeout=10) as r:
                summary["metrics"] = r.read().decode()
            summary["final"] = d.request(
                {"cmd": "recommendations", "run": "cow-%d" % freeze})["recommendations"]
            return graph, pairs, summary, procs, [ended[p] for p in pids]
        finally:
            m.close()


def agree(reported, mine):
    """Within 10% of the test's figure (256 KiB at least: the pages the
    worker touches between gcmond's read and ours, returning from
    gc.collect() and printing, were 72 KiB once on a loaded machine; a
    graph unshared is GRAPH_MB)."""
    return abs(reported - mine) <= max(0.10 * mine, 256 * 1024)


def test_unfrozen_workers_unshare_the_graph_in_their_full_collection():
    graph, pairs, summary, procs, ended = measure(freeze=False)
    assert graph > GRAPH_MB * 1024 * 1024 // 2, graph
    for reported, mine in pairs:
        assert reported >= graph // 2, (reported, graph)
        assert agree(reported, mine), (reported, mine)
    s = summary["summary"]
    assert s["unshared_processes"] == NWORKERS, s
    assert s["unshared_by_gc_bytes"] >= sum(r for r, _ in pairs), s
    assert s["master_anon_bytes"] >= graph, s
    for p in procs:
        assert p["shared_bytes"] is not None and p["pss_bytes"] > 0, p
    rec = [r for r in summary["recommendations"] if r["rule"] == "prefork_freeze"]
    assert rec, summary["recommendations"]
    assert ("%d workers unshared %.1f MiB" % (NWORKERS, s["unshared_by_gc_bytes"] / 2**20)
            in rec[0]["message"]), rec
    assert "gc.freeze()" in rec[0]["message"], rec
    # The counter survives the workers' exit: what they said, at least.
    assert unshared_metric(summary["metrics"], "worker") >= sum(r for r, _ in pairs)
    assert unshared_metric(summary["metrics"], "master") == 0
    # Ended, a worker keeps its figure (grown, if a collection at exit
    # unshared a little more), and says it froze nothing.
    for p, (reported, _) in zip(ended, pairs):
        assert p["unshared_by_gc_bytes"] >= reported, p
        assert p["frozen_objects"] == 0, p


def test_frozen_workers_keep_the_graph_shared():
    graph, pairs, summary, procs, ended = measure(freeze=True)
    for reported, mine in pairs:
        assert reported < graph // 10, (reported, graph)
        assert agree(reported, mine), (reported, mine)
    for p in ended:
        assert p["frozen_objects"] > graph // 1000, p   # ~1 object per 80 B
    recs = {r["rule"]: r for r in summary["recommendations"]}
    assert "prefork_freeze" not in recs, recs
    # Once the master has said it froze (at its exit): the measured result.
    recs = {r["rule"]: r for r in summary["final"]}
    assert "prefork_freeze" not in recs, recs
    assert "%d workers unshared" % NWORKERS in recs["prefork_frozen"]["message"], recs


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody")
def test_memory_of_another_users_process_is_not_readable_not_zero():
    """gcmond as nobody (allowed to watch uid 0) may read a root process's
    shared area but not its smaps_rollup: the answer says so."""
    nobody = 65534
    tmp = gt.private_dir("memory-")
    try:
        os.chmod(tmp, 0o755)
        prog = os.path.join(tmp, "gcmond")
        shutil.copy2(gt.GCMOND, prog)
        os.chmod(prog, 0o755)
        sockdir = os.path.join(tmp, "run")
        os.mkdir(sockdir)
        os.chown(sockdir, nobody, nobody)
        sock = os.path.join(sockdir, "gcmon.sock")
        # Its group (nogroup) on the agent directory lets it open the root
        # process's area (0660), as a system gcmond's group does.
        d = gt.Daemon("--allow-uid", "0", "--socket-group", str(nobody),
                      "--sample-interval", "0.1", sock=sock)
        daemon_run_as(d, prog, nobody)
        try:
            py = subprocess.Popen([gt.PYTHON, "-c", "import sys; sys.stdin.read()"],
                                  env=gt.agent_env(sock, run_id="root"),
                                  stdin=subprocess.PIPE)
            try:
                p = gt.wait_for(lambda: tried(d, py.pid), 30,
                    what="gcmond to try the root process's memory")
                assert p["memory"] == "not readable: permission", p
                assert p["pss_bytes"] is None and p["shared_bytes"] is None, p
                assert p["private_dirty_bytes"] is None, p
                s = d.request({"cmd": "summary", "run": "root"})["summary"]
                assert s["memory_refused"] == 1 and s["pss_bytes"] is None, s
            finally:
                py.stdin.close()
                py.wait(30)
        finally:
            d.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def tried(d, pid):
    """pid's process object once gcmond has tried to read its memory."""
    p = gt.processes(d).get(pid)
    return p if p is not None and p["memory"] != "not read" else None


def daemon_run_as(d, prog, uid):
    """Starts gt.Daemon d from binary prog as uid."""
    cmd = [prog, "--socket", d.sock] + d.args
    d._stderr = open(d.stderr_path, "wb")
    d.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=d._stderr,
                              preexec_fn=lambda: (os.setgid(uid), os.setuid(uid)))
    gt.wait_for(lambda: d.proc.poll() is not None or d.ping_ok(), 10,
                what="gcmond to answer ping")
    assert d.proc.poll() is None, d.stderr()
