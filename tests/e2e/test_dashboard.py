"""test_dashboard: gcmond's web dashboard (--http-listen) in a real browser.

A real gcmond serves the page; gunicorn with four workers is under load;
headless Chromium (Debian's `chromium`) loads the page and is read through
the DevTools protocol over --remote-debugging-pipe (the page keeps its
event stream open, so --dump-dom with a virtual time budget would wait
for ever): the table shows the five processes of `processes --json`, the
timeline has points from the live stream, a screenshot is taken
($GCMON_SCREENSHOT_DIR/dashboard.png when set: doc/dashboard.png comes
from there). A process with a hostile argv shows it as text, never as
markup. The requests panel is hidden while no request was recorded, and
shows a real middleware run's figures, those of `requests --json`. The /api/ answers are the control protocol's, verbatim; a browser
that reads nothing loses events, is told so, and the daemon goes on.

    GCMON_BUILDDIR=$PWD/build GCMON_SRCDIR=$PWD /usr/bin/python3 -m pytest tests/e2e/test_dashboard.py
"""
import base64
import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcmontest as gt  # noqa: E402

GUNICORN_CONF = os.path.join(gt.PROGRAMS, "launcher_gunicorn_conf.py")
CHROMIUM = shutil.which("chromium")
HOSTILE = "<img src=x onerror=alert(1)>"
# Collections of generation 0, as fast as it goes, after a round of
# garbage; argv[1] is what the page must show as text.
BURST = r"""
import gc, sys
for i in range(int(sys.argv[2])):
    gc.collect(0)
"""
# A WSGI app behind gcmon.wsgi.Middleware: every fourth request runs a
# full collection over many cycles (a real pause inside it), the rest
# nothing.
REQUESTS_PROG = r"""
import gc
import gcmon, gcmon.wsgi
gcmon.start()
keep = []
def app(environ, start_response):
    if environ["PATH_INFO"] == "/cycles":
        for _ in range(20000):
            x = []
            x.append(x)
        gc.collect()
    start_response("200 OK", [])
    return [b"x"]
mw = gcmon.wsgi.Middleware(app)
for i in range(40):
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/cycles" if i % 4 == 0 else "/plain"}
    it = mw(env, lambda s, h, e=None: None)
    list(it)
    it.close()
"""


def get(url, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method),
                                    timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class Browser:
    """Headless Chromium driven over --remote-debugging-pipe (fds 3 and 4:
    NUL-separated JSON messages of the DevTools protocol)."""

    def __init__(self, tmp):
        self.ud = tempfile.mkdtemp(prefix="profile-", dir=tmp)
        to_chrome_r, self.w = os.pipe()
        self.r, from_chrome_w = os.pipe()

        def fds():
            a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)
        self.err = open(os.path.join(tmp, "chromium.stderr"), "wb")
        self.p = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--user-data-dir=" + self.ud,
             "--remote-debugging-pipe", "--window-size=1300,1300", "about:blank"],
            preexec_fn=fds, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self.err)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.id = 0

    def call(self, method, session=None, timeout=30, **params):
        self.id += 1
        msg = {"id": self.id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                m = json.loads(raw)
                if m.get("id") == self.id:
                    assert "error" not in m, (method, m["error"])
                    return m["result"]
            left = deadline - time.monotonic()
            assert left > 0, "chromium did not answer %s" % method
            if select.select([self.r], [], [], left)[0]:
                data = os.read(self.r, 1 << 20)
                assert data, "chromium exited (see chromium.stderr)"
                self.buf += data

    def open(self, url):
        target = self.call("Target.createTarget", url=url)["targetId"]
        return self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def eval(self, session, expr):
        r = self.call("Runtime.evaluate", session=session, expression=expr,
                      returnByValue=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def screenshot(self, session, path):
        data = self.call("Page.captureScreenshot", session=session, format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except (AssertionError, OSError):
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        os.close(self.w)
        os.close(self.r)
        self.err.close()


ROW_PIDS = "[...document.querySelectorAll('#processes tbody tr')].map(r => +r.dataset.pid)"
POINTS = "+(document.getElementById('timeline').dataset.points || 0)"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (quickstart installs it)")
def test_dashboard_shows_gunicorn_under_load_and_escapes_a_hostile_argv(tmp):
    port = gt.free_port()
    base = "http://127.0.0.1:%d" % port
    stats_dir = os.path.join(tmp, "stats")
    os.mkdir(stats_dir)
    with gt.Daemon("--http-listen", "127.0.0.1:%d" % port) as d:
        env = gt.agent_env(d.sock, run_id="dash-gunicorn")
        env["LAUNCHER_STATS_DIR"] = stats_dir
        app_port = gt.free_port()
        app = "http://127.0.0.1:%d/" % app_port
        g = subprocess.Popen(
            [gt.PYTHON, "-m", "gunicorn", "-c", GUNICORN_CONF, "--chdir", gt.EXAMPLES,
             "--workers", "4", "--bind", "127.0.0.1:%d" % app_port, "--log-level",
             "warning", "app:app"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        b = Browser(tmp)
        try:
            gt.wait_for(lambda: len(gt.processes(d, "dash-gunicorn")) == 5, 30, 0.1,
                        "the master and four workers")

            def serving():
                try:
                    return get(app + "health")[0] == 200
                except OSError:
                    return False
            gt.wait_for(serving, 30, 0.1, "gunicorn to serve")
            s = b.open(base + "/?run=dash-gunicorn")
            want = set(gt.processes(d, "dash-gunicorn"))

            def loaded():
                for _ in range(20):            # load: the workers collect
                    assert get(app)[0] == 200
                return (set(b.eval(s, ROW_PIDS)) == want and b.eval(s, POINTS) > 0)
            gt.wait_for(loaded, 60, 0.1, "the page to show five processes and pauses")
            # No middleware: no request recorded, no requests panel.
            assert b.eval(s, "document.getElementById('requests').hidden") is True
            # The table's figures are the control answer's.
            ans = d.ctl("processes", "--run", "dash-gunicorn")
            roles = b.eval(s, "Object.fromEntries([...document.querySelectorAll("
                           "'#processes tbody tr')].map(r => [r.dataset.pid, "
                           "r.children[1].textContent]))")
            assert {int(k): v for k, v in roles.items()} == \
                {p["pid"]: p["role"] for p in ans["processes"]}
            assert sorted(roles.values()) == ["master"] + ["worker"] * 4
            # Every point is a pause of one of these processes.
            assert b.eval(s, "document.getElementById('legend').textContent").count("pid") >= 1
            # GC share over time: a few refreshes of the table, under load.
            gt.wait_for(lambda: loaded() and b.eval(
                s, "+(document.getElementById('share').dataset.samples || 0)") >= 4,
                60, 0.2, "four samples of the GC share")
            shot = os.path.join(os.environ.get("GCMON_SCREENSHOT_DIR") or tmp, "dashboard.png")
            b.screenshot(s, shot)
            with open(shot, "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n"

            # A hostile argv, then a second load of the page.
            r = subprocess.run([gt.PYTHON, "-c", BURST, HOSTILE, "50"],
                               env=gt.agent_env(d.sock, run_id="dash-hostile"),
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            (hostile,) = gt.processes(d, "dash-hostile")
            s2 = b.open(base + "/")
            gt.wait_for(lambda: hostile in b.eval(s2, ROW_PIDS), 30, 0.1,
                        "the hostile process's row")
            cell = b.eval(s2, "document.querySelector('#processes tr[data-pid=\"%d\"]')"
                          ".children[3].textContent" % hostile)
            assert cell.endswith(" " + HOSTILE + " 50")
            assert b.eval(s2, "document.querySelectorAll('img').length") == 0
            dom = b.eval(s2, "document.documentElement.outerHTML")
            assert "&lt;img src=x onerror=alert(1)&gt;" in dom and "<img" not in dom
        finally:
            b.close()
            g.send_signal(signal.SIGTERM)
            try:
                g.wait(60)
            except subprocess.TimeoutExpired:
                g.kill()
                g.wait()


REQ_CELLS = ("Object.fromEntries(['procs', 'routes'].map(t => [t, [...document."
             "querySelectorAll('#requests-' + t + ' tbody tr')].map(r => [...r.children]"
             ".map(c => c.textContent))]))")


def _request_figures(f):
    return [f["requests"], f["delayed"], 100 * f["delayed_share"], f["p99_ms"],
            f["p99_without_gc_ms"], f["gc_adds_p99_ms"]]


def _assert_row(cells, want):
    got = [float(c) for c in cells]
    assert got[:2] == want[:2], (cells, want)
    assert got[2] == pytest.approx(want[2], abs=0.051), (cells, want)
    assert got[3:] == pytest.approx(want[3:], abs=0.0051), (cells, want)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (quickstart installs it)")
def test_dashboard_requests_panel_shows_a_middleware_runs_figures(tmp):
    port = gt.free_port()
    base = "http://127.0.0.1:%d" % port
    prog = os.path.join(tmp, "reqs.py")
    with open(prog, "w") as f:
        f.write(REQUESTS_PROG)
    with gt.Daemon("--http-listen", "127.0.0.1:%d" % port) as d:
        r = gt.run_python([prog], gt.agent_env(d.sock, run_id="dash-req"))
        assert r.returncode == 0, r.stderr
        (pid,) = gt.processes(d, "dash-req")
        gt.wait_ended(d, [pid])
        ans = d.ctl("requests", "--run", "dash-req")["requests"]
        assert ans["requests"] == 40 and ans["delayed"] >= 10, ans
        assert ans["p99_ms"] > ans["p99_without_gc_ms"]
        (svc,) = [p["service_label"] for p in
                  d.ctl("processes", "--run", "dash-req")["processes"]]
        b = Browser(tmp)
        try:
            s = b.open(base + "/?run=dash-req")
            gt.wait_for(lambda: b.eval(s, "(document.getElementById('requests') || "
                                       "{hidden: true}).hidden") is False,
                        30, 0.1, "the requests panel")
            cells = b.eval(s, REQ_CELLS)
            total = b.eval(s, "document.getElementById('requests-total').textContent")
        finally:
            b.close()
    procs, routes = cells["procs"], cells["routes"]
    assert len(procs) == 2 and procs[0][:3] == ["all", "", ""], procs
    _assert_row(procs[0][3:], _request_figures(ans))
    assert procs[1][:3] == [svc, str(pid), "master"], procs
    (w,) = ans["workers"]
    _assert_row(procs[1][3:], _request_figures(w))
    assert [r[0] for r in routes] == [x["route"] for x in ans["routes"]]
    assert sorted(r[0] for r in routes) == ["GET /cycles", "GET /plain"]
    for row, x in zip(routes, ans["routes"]):
        _assert_row(row[1:], _request_figures(x))
    assert total.startswith("40 requests in 1 processes, %d delayed" % ans["delayed"])
    # The browser's toFixed(2): within half a unit of the last digit.
    m = re.search(r", the collections that trace the old objects ([0-9.]+) ms of it$", total)
    assert m and abs(float(m.group(1)) - ans["full_adds_p99_ms"]) <= 0.005 + 1e-9, total


def test_api_answers_are_the_control_answers_and_nothing_writes(tmp):
    port = gt.free_port()
    base = "http://127.0.0.1:%d" % port
    with gt.Daemon("--http-listen", "127.0.0.1:%d" % port) as d:
        r = subprocess.run([gt.PYTHON, "-c", BURST, "api", "30"],
                           env=gt.agent_env(d.sock, run_id="dash-api"),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        (pid,) = gt.processes(d, "dash-api")
        gt.wait_ended(d, [pid])
        for path, req in (("/api/processes?run=dash-api", {"cmd": "processes", "run": "dash-api"}),
                          ("/api/recommendations?pid=%d" % pid,
                           {"cmd": "recommendations", "pid": pid}),
                          ("/api/summary?run=dash-api", {"cmd": "summary", "run": "dash-api"}),
                          ("/api/requests?run=dash-api", {"cmd": "requests", "run": "dash-api"})):
            status, headers, body = get(base + path)
            assert status == 200 and headers["Content-Type"] == "application/json"
            assert json.loads(body) == d.request(req)
        status, _, body = get(base + "/api/runs")
        assert status == 200 and "dash-api" in [x["run"] for x in json.loads(body)["runs"]]
        # Errors are the control protocol's too.
        status, _, body = get(base + "/api/summary?run=nope")
        assert status == 400 and json.loads(body)["code"] == "not_found"
        status, _, body = get(base + "/api/summary?pid=x")
        assert status == 400 and json.loads(body)["code"] == "bad_request"
        # No writes: only GET and HEAD.
        for method in ("POST", "PUT", "DELETE"):
            assert get(base + "/api/runs", method)[0] == 405
        status, headers, body = get(base + "/")
        assert status == 200 and b"dashboard.js" in body
        assert headers["Content-Security-Policy"] == "default-src 'self'"
        assert get(base + "/nothing")[0] == 404
        assert get(base + "/metrics")[0] == 200
        # A stream open, waiting for events, when gcmond stops: it ends.
        stream = socket.create_connection(("127.0.0.1", port))
        stream.sendall(b"GET /api/events HTTP/1.0\r\n\r\n")
        gt.wait_for(lambda: b"retry:" in stream.recv(4096, socket.MSG_PEEK), 10, 0.05,
                    "the stream's first bytes")
    stream.settimeout(30)
    data = b""
    while True:
        chunk = stream.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 200") and b"text/event-stream" in data
    stream.close()


def read_events(sock, deadline):
    """The SSE data objects read from sock until deadline or the end."""
    buf = b""
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            data = sock.recv(1 << 16)
        except socket.timeout:
            if b"\"type\":\"lost\"" in buf:
                break
            continue
        if not data:
            break
        buf += data
    return [json.loads(l[6:]) for l in buf.split(b"\n") if l.startswith(b"data: ")]


def test_a_browser_that_reads_nothing_loses_events_and_is_told(tmp):
    port = gt.free_port()
    base = "http://127.0.0.1:%d" % port
    with gt.Daemon("--http-listen", "127.0.0.1:%d" % port) as d:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", port))
        slow.sendall(b"GET /api/events HTTP/1.0\r\n\r\n")     # not chunked
        gt.wait_for(lambda: slow.recv(1, socket.MSG_PEEK), 10, 0.05,
                    "the stream's headers")
        env = gt.agent_env(d.sock, run_id="dash-flood")
        p = subprocess.Popen([gt.PYTHON, "-c", BURST, "flood", "60000"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # While the browser reads nothing, the daemon answers.
        assert p.wait(60) == 0, p.stderr.read()
        (pid,) = gt.processes(d, "dash-flood")
        gt.wait_ended(d, [pid])
        status, _, body = get(base + "/api/summary?run=dash-flood")
        assert status == 200 and json.loads(body)["ok"]
        events = read_events(slow, time.monotonic() + 30)
        lost = [e for e in events if e["type"] == "lost"]
        assert lost and lost[0]["events"] > 0, events[-3:]
        seen = [e for e in events if e["type"] == "event"]
        assert seen and all(e["pid"] == pid for e in seen)
        slow.close()


def test_launcher_live_prints_the_url_first_and_serves_the_run(tmp):
    """pygcprofiler run --live=PORT: the URL is the first line; the
    embedded gcmond serves the dashboard and the run's processes there
    while the program runs."""
    port = gt.free_port()
    stop = os.path.join(tmp, "stop")
    prog = os.path.join(tmp, "live_prog.py")
    with open(prog, "w") as f:
        f.write("import gc, os, time\n"
                "for i in range(50):\n    gc.collect(0)\n"
                "deadline = time.monotonic() + 60\n"
                "while not os.path.exists(%r) and time.monotonic() < deadline:\n"
                "    time.sleep(0.05)\n" % stop)
    env = dict(os.environ, GCMON_PYTHON=gt.PYTHON)
    p = subprocess.Popen([gt.PYGCPROFILER, "run", "--live=%d" % port, "--stats-only", prog],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        first = p.stdout.readline().decode()
        url = "http://127.0.0.1:%d/" % port
        assert first == "pygcprofiler: live dashboard at %s (while the program runs)\n" % url
        status, _, body = get(url)
        assert status == 200 and b"dashboard.js" in body

        # The process shows as soon as its area exists, which can be
        # before its loop ran: wait for the loop's collections.
        def seen():
            ans = json.loads(get(url + "api/processes")[2])
            return ans["ok"] and [x for x in ans["processes"] if x["argv"][-1] == prog
                                  and x["collections"] >= 50]
        (proc,) = gt.wait_for(seen, 30, 0.05, "the program's 50 collections on the dashboard's API")
        assert proc["state"] == "live"
    finally:
        open(stop, "w").close()
        out, _ = p.communicate(timeout=60)
    assert p.returncode == 0, out
    assert b"GC MONITORING SUMMARY" in out


def test_launcher_live_refuses_a_bad_port_and_a_shared_daemon(tmp):
    r = subprocess.run([gt.PYGCPROFILER, "run", "--live=0", "x.py"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "invalid value '0' for --live" in r.stderr
    r = subprocess.run([gt.PYGCPROFILER, "run", "--live", "--socket",
                        os.path.join(tmp, "s"), "-m", "x"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "not with --socket" in r.stderr
