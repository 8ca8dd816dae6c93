"""test_uwsgi: a real uWSGI (Debian's uwsgi-core + uwsgi-plugin-python3)
under the agent, with a real gcmond.

`uwsgi --master --processes 4 --plugin python3 --http-socket ...` serves
tests/e2e/programs/uwsgi_app.py with the agent's documented environment
(gcmontest.agent_env) and no flag that changes how uWSGI runs Python:
the master initialises the interpreter (sitecustomize loads the agent),
then forks its workers in C, where no os.register_at_fork hook runs; the
agent's pthread_atfork child handler gives each worker its own area.
After load from the test, GET /stats makes each worker stop collecting
and write its gc.get_stats(); gcmond's totals for it must equal those,
and every collection it counted must have arrived as an event or been
counted as dropped. `--no-site` is the documented limit: sitecustomize
never loads, so nothing is monitored.

Skipped only when the uwsgi binary or its python3 plugin is missing
(./quickstart installs both). Everything lives in private temp dirs.
"""
import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcmontest  # noqa: E402
import shmarea  # noqa: E402

APP = os.path.join(gcmontest.PROGRAMS, "uwsgi_app.py")
UWSGI = shutil.which("uwsgi")
PLUGIN = "/usr/lib/uwsgi/plugins/python3_plugin.so"   # Debian's path
WORKERS = 4
LOAD = 400            # requests to / before the stats round
CLIENTS = 8           # concurrent client threads: every worker gets some

pytestmark = [
    pytest.mark.skipif(
        not gcmontest.HAVE_AGENT,
        reason=gcmontest.NO_AGENT),
    pytest.mark.skipif(UWSGI is None,
                       reason="uwsgi not installed (apt-get install uwsgi-core)"),
    pytest.mark.skipif(not os.path.exists(PLUGIN),
                       reason="uWSGI python3 plugin not installed "
                              "(apt-get install uwsgi-plugin-python3: %s)" % PLUGIN),
]


def app_env(sock, outdir):
    env = dict(os.environ)
    for k in [k for k in env if k.startswith(("GCMON_", "UWSGI_")) or k == "PYTHONPATH"]:
        del env[k]
    env = gcmontest.agent_env(sock, base=env)
    env["GCMONTEST_UWSGI_OUTDIR"] = outdir
    return env


class Uwsgi:
    """uwsgi --master --processes 4 serving uwsgi_app.py on a free port;
    prefix: words before uwsgi (test_exec.py's `pygcprofiler exec --`),
    which signals reach first."""

    def __init__(self, tmp, env, extra=(), prefix=(), loader=("--wsgi-file", APP)):
        self.tmp, self.env, self.extra = tmp, env, list(extra)
        self.prefix = list(prefix)
        self.loader = list(loader)
        self.log_path = os.path.join(tmp, "uwsgi.log")
        self.proc = None

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def start(self):
        # A free port can be taken between our probe and uWSGI's bind
        # (other tests run at once): try a few.
        for _ in range(5):
            self.port = gcmontest.free_port()
            cmd = self.prefix + [UWSGI, "--master", "--processes", str(WORKERS),
                   "--plugin", "python3",
                   "--http-socket", "127.0.0.1:%d" % self.port,
                   # A worker that ignores the stop is killed after 15 s,
                   # not uWSGI's 60 (one once never answered SIGINT on a
                   # loaded machine, without the agent loaded at all).
                   "--worker-reload-mercy", "15",
                   ] + self.loader + ["--need-app"] + self.extra
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(cmd, env=self.env, cwd=self.tmp,
                                             stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT)
            gcmontest.wait_for(lambda: self.proc.poll() is not None or self.answers(),
                               30, what="uWSGI to answer on port %d" % self.port)
            if self.proc.poll() is None:
                return self
            if "Address already in use" not in self.log():
                break
        raise AssertionError("uwsgi exited %s:\n%s" % (self.proc.returncode, self.log()))

    def answers(self):
        try:
            self.get("/env")
            return True
        except OSError:
            return False

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                raise AssertionError("GET %s: %d %r\n%s" % (path, r.status, body, self.log()))
            return body
        finally:
            c.close()

    def get_many(self, path, n):
        """n concurrent-ish GETs of path; the bodies."""
        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as ex:
            return list(ex.map(lambda _: self.get(path), range(n)))

    def stop(self):
        """SIGINT: uWSGI 2.0's master kills its workers ("SIGINT/SIGTERM
        received...killing workers...", each worker gets SIGINT), reaps
        them and exits 0; SIGQUIT does the same. SIGTERM is not a stop
        in 2.0 without --die-on-term: the master re-execs itself (a
        reload) and spawns new workers."""
        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("uwsgi did not exit on SIGINT:\n" + self.log())
        assert rc == 0, "uwsgi exited %d on SIGINT:\n%s" % (rc, self.log())
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def worker_pids(srv):
    """Load on / until every worker has served requests; their pids."""
    served = {}
    for _ in range(10):
        for body in srv.get_many("/", LOAD):
            pid = int(body)
            served[pid] = served.get(pid, 0) + 1
        if len(served) >= WORKERS:
            break
    assert len(served) == WORKERS, "requests served by %r, not %d workers:\n%s" % (
        served, WORKERS, srv.log())
    return set(served)


def collect_stats(srv, outdir, pids):
    """Hit /stats until every worker has written its gc.get_stats()."""
    def written():
        return {int(n[:-5]) for n in os.listdir(outdir) if n.endswith(".json")}
    for _ in range(200):
        if written() >= pids:
            break
        srv.get_many("/stats", CLIENTS)
    assert written() == pids, "stats from %s, workers %s:\n%s" % (
        sorted(written()), sorted(pids), srv.log())
    recs = {}
    for pid in pids:
        with open(os.path.join(outdir, "%d.json" % pid)) as f:
            recs[pid] = json.load(f)
    return recs


def test_master_and_four_workers_exact(tmp, gcmond):
    outdir = os.path.join(tmp, "out")
    os.mkdir(outdir)
    srv = Uwsgi(tmp, app_env(gcmond.sock, outdir)).start()
    try:
        env = json.loads(srv.get("/env"))
        assert env["site"] and env["agent"] and env["socket"], env
        master = srv.proc.pid
        workers = worker_pids(srv)
        recs = collect_stats(srv, outdir, workers)
        srv.stop()
    finally:
        srv.kill()

    procs = gcmontest.wait_ended(gcmond, workers | {master})
    assert set(procs) == workers | {master}, (
        "gcmond knows %s; master %d, workers %s\n%s" % (
            sorted(procs), master, sorted(workers), gcmond.stderr()))
    assert procs[master]["role"] == "master"
    for pid in workers:
        p, rec = procs[pid], recs[pid]
        assert p["role"] == "worker", p
        assert rec["ppid"] == master and p["ppid"] == master, (rec, p)
        got = gcmontest.totals(p)
        want = rec["stats"]
        got += [[0, 0, 0]] * (len(want) - len(got))
        assert got == want, "worker %d: gcmond totals %r != gc.get_stats() %r\n%s" % (
            pid, got, want, gcmond.stderr())
        seen = sum(g["seen"] for g in p["generations"])
        assert seen > 0, "worker %d saw no collection under load: %r" % (pid, p)
        assert p["events"] + p["dropped"] == seen, p


def test_no_site_is_not_monitored(tmp, gcmond):
    """uWSGI's --no-site stops the interpreter importing site, so
    sitecustomize (the agent's bootstrap) never loads: the documented
    limit. The processes run and serve; gcmond never hears of them."""
    outdir = os.path.join(tmp, "out")
    os.mkdir(outdir)
    srv = Uwsgi(tmp, app_env(gcmond.sock, outdir), ["--no-site"]).start()
    try:
        env = json.loads(srv.get("/env"))
        assert env["socket"] and not env["site"] and not env["agent"], env
        served = {int(b) for b in srv.get_many("/", LOAD)}
        assert served, srv.log()
        srv.stop()
    finally:
        srv.kill()
    assert gcmontest.processes(gcmond) == {}
    adir = shmarea.agent_dir(gcmond.sock)
    assert not os.path.isdir(adir) or os.listdir(adir) == []


def _served(log):
    """Requests uWSGI's own request log says it served (one line each)."""
    return sum(1 for line in log.splitlines() if "} [" in line and " GET /" in line
               and "=> generated" in line)


def test_requests_of_a_module_app_recorded(tmp, gcmond):
    """GCMON_REQUESTS=1 (`pygcprofiler exec --requests -- uwsgi ...`) with
    the application named by --module: the hook wraps it as the module is
    imported in the master, every forked worker records its requests, and
    gcmond's count equals uWSGI's request log."""
    outdir = os.path.join(tmp, "out")
    os.mkdir(outdir)
    env = app_env(gcmond.sock, outdir)
    env["GCMON_REQUESTS"] = "1"
    srv = Uwsgi(tmp, env, loader=["--pythonpath", gcmontest.PROGRAMS,
                                  "--module", "uwsgi_app:application"]).start()
    try:
        workers = worker_pids(srv)
        # The client has its answers before a worker has closed its last
        # request (the middleware's end) and logged it: a stop now may
        # take one from both counts. Stop once uWSGI has logged them.
        gcmontest.wait_for(lambda: _served(srv.log()) > LOAD, 30,
                           what="uWSGI to log the requests it answered")
        srv.stop()
    finally:
        srv.kill()
    log = srv.log()
    assert "not recorded" not in log, log
    gcmontest.wait_ended(gcmond, workers | {srv.proc.pid})
    ans = gcmond.ctl("requests", "--run", "test-run")["requests"]
    assert ans["requests"] == _served(log) and ans["requests"] >= LOAD, (ans, log)
    routes = {r["route"] for r in ans["routes"]}
    assert "GET /" in routes, routes
    assert {w["pid"] for w in ans["workers"] if w["requests"]} == workers, ans["workers"]


def test_requests_of_a_wsgi_file_app_warn_not_recorded(tmp, gcmond):
    """--wsgi-file is loaded by uWSGI's C, with no Python hook before it
    reads the callable: one warning says so, the application serves as
    without gcmon, its collections are still counted."""
    outdir = os.path.join(tmp, "out")
    os.mkdir(outdir)
    env = app_env(gcmond.sock, outdir)
    env["GCMON_REQUESTS"] = "1"
    srv = Uwsgi(tmp, env).start()
    try:
        served = {int(b) for b in srv.get_many("/", 100)}
        srv.stop()
    finally:
        srv.kill()
    log = srv.log()
    assert log.count("--requests: uWSGI runs the application of --wsgi-file in C") == 1, log
    assert "--module MODULE[:CALLABLE]" in log, log
    gcmontest.wait_ended(gcmond, served | {srv.proc.pid})
    assert gcmond.ctl("requests", "--run", "test-run")["requests"]["requests"] == 0
    procs = gcmontest.processes(gcmond, "test-run")
    assert served <= set(procs), (served, procs)
