"""test_top: `gcmonctl top` against the real gcmond and real programs.

--once prints a frame to stdout; the full-screen view runs inside a real
terminal (tmux: new-session, send-keys to sort and quit, capture-pane to
read the screen). The figures of ended processes no longer move, so the
rows must equal `gcmonctl processes --json` exactly (as top rounds them).

    GCMON_BUILDDIR=$PWD/build GCMON_SRCDIR=$PWD /usr/bin/python3 -m pytest tests/e2e/test_top.py
"""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcmontest as gt  # noqa: E402

# A program that makes cyclic garbage for N rounds (a collection of each
# generation in turn), then waits for $STOP to exist (or exits at once).
PROG = r"""
import gc, os, sys, time
for i in range(int(os.environ["ROUNDS"])):
    junk = [[] for _ in range(200)]
    for j in junk:
        j.append(junk)
    del junk
    gc.collect(i % 3)
stop = os.environ.get("STOP")
deadline = time.monotonic() + 120
while stop and not os.path.exists(stop) and time.monotonic() < deadline:
    time.sleep(0.05)
"""

HEAD = "    PID ROLE"


def run_ended(d, run, rounds_list):
    """Runs one program per rounds value to its end; {pid: PROCESS}."""
    env = gt.agent_env(d.sock, run_id=run)
    for rounds in rounds_list:
        env["ROUNDS"] = str(rounds)
        p = subprocess.run([gt.PYTHON, "-c", PROG, "ended-%d" % rounds], env=env,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
    procs = gt.wait_for(lambda: len(gt.processes(d, run)) == len(rounds_list) and
                        all(x["state"] == "ended" for x in gt.processes(d, run).values()) and
                        gt.processes(d, run), 20, 0.05, "the programs to end")
    return procs


def fmt(v, scale=1.0, prec=2):
    return "-" if v is None else "%.*f" % (prec, v / scale)


def expected_cells(p):
    """The cells top prints for process p (rates aside)."""
    return {"pid": str(p["pid"]), "role": p["role"], "state": p["state"],
            "coll": str(p["collections"]), "gc": fmt(p["gc_wall_pct"]),
            "max": fmt(p["max_pause_ms"]), "p99": fmt(p["p99_ms"]),
            "rss": fmt(p["rss_bytes"], 1048576, 1),
            "pss": fmt(p.get("pss_bytes"), 1048576, 1)}


def parse_rows(lines):
    """{pid: cells} of the process rows of a frame."""
    rows = {}
    try:
        start = next(i for i, l in enumerate(lines) if l.startswith(HEAD)) + 1
    except StopIteration:
        return rows
    for line in lines[start:]:
        f = line.split()
        if len(f) < 14 or not f[0].isdigit():
            continue
        rows[int(f[0])] = {"pid": f[0], "role": f[1], "state": f[2], "coll": f[3],
                           "rates": f[4:7], "gc": f[7], "max": f[8], "p99": f[9],
                           "rss": f[10], "pss": f[11], "cmd": " ".join(f[13:])}
    return rows


def test_once_prints_a_frame_equal_to_the_processes_answer(tmp):
    with gt.Daemon() as d:
        procs = run_ended(d, "top-once", [30, 90, 60])
        r = subprocess.run([gt.GCMONCTL, "--socket", d.sock, "top", "--once",
                            "--run", "top-once"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        rows = parse_rows(r.stdout.splitlines())
        assert sorted(rows) == sorted(procs)
        for pid, p in procs.items():
            got = {k: v for k, v in rows[pid].items() if k not in ("rates", "cmd")}
            assert got == expected_cells(p), (got, p)
            # The argv, its newlines escaped for the terminal.
            assert rows[pid]["cmd"].endswith(" " + p["argv"][-1])
            assert "\\x0aimport gc" in rows[pid]["cmd"]
        # Sorted by GC share, largest first (the default key).
        order = [int(l.split()[0]) for l in r.stdout.splitlines()
                 if l.split() and l.split()[0].isdigit()]
        shares = [procs[p]["gc_wall_pct"] for p in order]
        assert shares == sorted(shares, reverse=True)


def test_once_refuses_bad_usage_and_a_missing_daemon(tmp):
    r = subprocess.run([gt.GCMONCTL, "top", "--interval", "0"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "--interval needs seconds" in r.stderr
    r = subprocess.run([gt.GCMONCTL, "summary", "--once"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "--once does not apply to summary" in r.stderr
    r = subprocess.run([gt.GCMONCTL, "--socket", os.path.join(tmp, "none.sock"), "top",
                        "--once"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 3 and "no gcmond" in r.stderr


class Tmux:
    """A private tmux server running one command in a 200x40 pane."""

    def __init__(self, tmp, cmd):
        self.sock = os.path.join(tmp, "tmux.sock")
        self.tmux(["new-session", "-d", "-s", "t", "-x", "200", "-y", "40",
                   cmd + "; echo EXIT=$?; sleep 120"])

    def tmux(self, args):
        r = subprocess.run(["tmux", "-S", self.sock] + args, capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def screen(self):
        return self.tmux(["capture-pane", "-p", "-t", "t"]).splitlines()

    def keys(self, *keys):
        self.tmux(["send-keys", "-t", "t"] + list(keys))

    def pane_pid(self):
        return int(self.tmux(["list-panes", "-t", "t", "-F", "#{pane_pid}"]).strip())

    def kill(self):
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], capture_output=True,
                       timeout=30)


def wait_screen(t, pred, what):
    return gt.wait_for(lambda: pred(t.screen()), 20, 0.05, what)


def sort_line(screen):
    return next((l for l in screen if l.startswith("gcmon top")), "")


def test_top_in_tmux_sorts_on_keys_quits_and_restores_the_terminal(tmp):
    with gt.Daemon() as d:
        procs = run_ended(d, "top-tmux", [150, 20, 80])
        # A live process too: its row is there, with its pid.
        env = gt.agent_env(d.sock, run_id="top-tmux")
        env["ROUNDS"] = "10"
        stop = os.path.join(tmp, "stop")
        env["STOP"] = stop
        live = subprocess.Popen([gt.PYTHON, "-c", PROG, "live"], env=env)
        t = None
        try:
            gt.wait_for(lambda: live.pid in gt.processes(d, "top-tmux"), 20, 0.05,
                        "the live program to be seen")
            t = Tmux(tmp, "%s --socket %s top --run top-tmux --interval 0.3" %
                     (gt.GCMONCTL, d.sock))
            want = set(procs) | {live.pid}
            screen = wait_screen(t, lambda s: set(parse_rows(s)) == want and s,
                                 "top to show the four processes")
            assert "sort: GC share" in sort_line(screen)
            rows = parse_rows(screen)
            for pid, p in procs.items():      # ended: the figures hold still
                got = rows[pid]
                exp = expected_cells(p)
                for k in ("pid", "role", "state", "coll", "gc", "rss", "pss"):
                    assert got[k] == exp[k], (k, got, p)
            # p: by pid, smallest first.
            t.keys("p")
            screen = wait_screen(t, lambda s: "sort: pid" in sort_line(s) and s,
                                 "the sort by pid")
            order = [int(l.split()[0]) for l in screen[screen.index(
                next(l for l in screen if l.startswith(HEAD))) + 1:] if l.split()]
            assert order == sorted(want)
            # r: by RSS, largest first.
            t.keys("r")
            screen = wait_screen(t, lambda s: "sort: RSS" in sort_line(s) and s,
                                 "the sort by RSS")
            rows = parse_rows(screen)
            order = [int(l.split()[0]) for l in screen if l.split() and
                     l.split()[0].isdigit() and int(l.split()[0]) in want]
            rss = [float(rows[p]["rss"]) for p in order]
            assert rss == sorted(rss, reverse=True)
            # q: gcmonctl exits 0 and the shell's screen is back.
            t.keys("q")
            screen = wait_screen(t, lambda s: any(l.startswith("EXIT=") for l in s) and s,
                                 "gcmonctl to exit")
            assert "EXIT=0" in screen
            assert not any(l.startswith("gcmon top") for l in screen), screen
        finally:
            if t is not None:
                t.kill()
            open(stop, "w").close()
            live.wait(30)


def test_top_restores_the_terminal_on_sigterm(tmp):
    with gt.Daemon() as d:
        run_ended(d, "top-term", [10])
        t = Tmux(tmp, "%s --socket %s top --interval 0.3" % (gt.GCMONCTL, d.sock))
        try:
            wait_screen(t, lambda s: any(l.startswith("gcmon top") for l in s),
                        "top to draw")
            pid = None
            for cand in subprocess.run(["pgrep", "-P", str(t.pane_pid())],
                                       capture_output=True, text=True).stdout.split():
                with open("/proc/%s/cmdline" % cand, "rb") as f:
                    if b"gcmonctl" in f.read():
                        pid = int(cand)
            assert pid is not None
            os.kill(pid, signal.SIGTERM)
            screen = wait_screen(t, lambda s: any(l.startswith("EXIT=") for l in s) and s,
                                 "gcmonctl to exit on SIGTERM")
            assert "EXIT=0" in screen
            assert not any(l.startswith("gcmon top") for l in screen), screen
        finally:
            t.kill()
