"""test_metrics: gcmond --metrics-listen scraped by a real Prometheus.

A real gcmond serves /metrics; Debian's prometheus (started here on a free
port, with a private data dir) scrapes it every second while a gunicorn
with 4 workers under load and a GC-heavy script run through
`pygcprofiler run --socket` against that one gcmond. The figures are then
read back through Prometheus' HTTP API and compared with what the
processes' own gc.get_stats() said and with the daemon's own p99.
Skips (pytest skip, make check's 77 equivalent) only if prometheus is not
installed. Run by `make check`, or by hand:

    GCMON_BUILDDIR=$PWD/build GCMON_SRCDIR=$PWD /usr/bin/python3 -m pytest tests/e2e/test_metrics.py
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcmontest as gt  # noqa: E402

PROG = gt.PYGCPROFILER
GARBAGE = os.path.join(gt.PROGRAMS, "launcher_garbage.py")
GUNICORN_CONF = os.path.join(gt.PROGRAMS, "launcher_gunicorn_conf.py")
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
OM_ACCEPT = ("application/openmetrics-text;version=1.0.0,text/plain;"
             "version=0.0.4;q=0.5,*/*;q=0.1")
# The classic buckets gcmond exports (gcmond(8)), in seconds.
LE = [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2,
      2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]


def base_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCMON_")}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def get(url, accept=None, method="GET"):
    """(status, content type, body text) of one request."""
    req = urllib.request.Request(url, method=method)
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def samples(text):
    """{series: value} of an exposition (comments left out)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


# ---- the listener on its own --------------------------------------------

@pytest.mark.parametrize("bad", ["0", "65536", "x", "localhost:9464", "1.2.3.4:",
                                 ":9464", "[::1]", "1.2.3.4:99999"])
def test_bad_listen_address_is_refused_with_exit_2(bad):
    r = subprocess.run([gt.GCMOND, "--socket", "/nonexistent/s", "--metrics-listen", bad],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "--metrics-listen: '%s' is not PORT, ADDR:PORT" % bad in r.stderr


def test_port_in_use_is_named_and_exits_1():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        d = gt.Daemon("--metrics-listen", str(port), "--quiet")
        with pytest.raises(AssertionError) as e:
            d.start()
        assert d.proc.returncode == 1
        assert ("--metrics-listen: cannot listen on %d: Address already in use" % port
                in str(e.value))
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)
    finally:
        busy.close()


def mapped(pid):
    """The files mapped into process pid, one path a line."""
    with open("/proc/%d/maps" % pid) as f:
        return "\n".join(sorted({line.split(None, 5)[5].strip() for line in f
                                 if len(line.split(None, 5)) == 6}))


def test_without_http_libmicrohttpd_is_not_loaded():
    with gt.Daemon("--quiet") as d:
        maps = mapped(d.proc.pid)
        assert "libuv.so" in maps, maps
        assert "libmicrohttpd" not in maps and "libgnutls" not in maps, maps


def test_with_http_libmicrohttpd_is_loaded():
    port = gt.free_port()
    with gt.Daemon("--http-listen", "127.0.0.1:%d" % port, "--quiet") as d:
        assert get("http://127.0.0.1:%d/metrics" % port)[0] == 200
        maps = mapped(d.proc.pid)
        assert "/libmicrohttpd.so." in maps and "/libgnutls.so." in maps, maps


def gcmond_libs():
    """{soname: file} of what ldd says gcmond links (the dynamic loader
    too), so a root can hold those and nothing else."""
    out = subprocess.run(["ldd", gt.GCMOND], capture_output=True, text=True,
                         check=True).stdout
    libs = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("/"):
            libs[parts[0]] = os.path.realpath(parts[2])
        elif parts and parts[0].startswith("/") and "ld-linux" in parts[0]:
            libs[os.path.basename(parts[0])] = os.path.realpath(parts[0])
    return libs


def test_missing_libmicrohttpd_is_named_and_exits_1(tmp_path):
    """A system without libmicrohttpd: bwrap hides the library directory
    and gives back only what gcmond links, so the dlopen finds nothing."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        pytest.skip("bwrap (Debian: bubblewrap) is not installed")
    libdir = os.path.dirname(gcmond_libs()["libc.so.6"])
    box = [bwrap, "--die-with-parent", "--dev-bind", "/", "/", "--tmpfs", libdir]
    for soname, path in gcmond_libs().items():
        box += ["--ro-bind", path, os.path.join(libdir, soname)]
    if subprocess.run(box + [gt.GCMOND, "--version"], capture_output=True,
                      timeout=30).returncode != 0:
        pytest.skip("bwrap cannot make a mount namespace here")
    r = subprocess.run(box + [gt.GCMOND, "--socket", str(tmp_path / "s"),
                              "--http-listen", str(gt.free_port())],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r.stderr
    assert ("gcmond: --http-listen: cannot load libmicrohttpd.so.12 "
            "(libmicrohttpd.so.12: cannot open shared object file: No such "
            "file or directory): install libmicrohttpd12\n") in r.stderr, r.stderr
    # Without the option, the same root runs gcmond all the same. (bwrap
    # stays gcmond's parent: the session is signalled, not bwrap alone.)
    sock = str(tmp_path / "t")
    with open(tmp_path / "err", "wb") as err:
        d = subprocess.Popen(box + [gt.GCMOND, "--socket", sock, "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=err,
                             start_new_session=True)
    try:
        gt.wait_for(lambda: d.poll() is not None or subprocess.run(
            [gt.GCMONCTL, "--socket", sock, "ping"], capture_output=True,
            timeout=30).returncode == 0, 60 if gt.SANITIZED else 10, 0.1,
            "gcmond to answer ping")
        assert d.poll() is None, (tmp_path / "err").read_text()
    finally:
        os.killpg(d.pid, signal.SIGTERM)
        d.wait(30)


def test_libmicrohttpd_without_a_function_is_named_and_exits_1(tmp_path):
    """A libmicrohttpd.so.12 (first on LD_LIBRARY_PATH) that lacks
    MHD_start_daemon: refused at start, not a crash at a request."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler to build the stand-in library")
    src = tmp_path / "stub.c"
    src.write_text("int MHD_run(void *d) { (void)d; return 0; }\n")
    (tmp_path / "lib").mkdir()
    subprocess.run([cc, "-shared", "-fPIC", "-Wl,-soname,libmicrohttpd.so.12",
                    "-o", str(tmp_path / "lib" / "libmicrohttpd.so.12"), str(src)],
                   check=True, timeout=60)
    env = dict(os.environ, LD_LIBRARY_PATH=str(tmp_path / "lib"))
    r = subprocess.run([gt.GCMOND, "--socket", str(tmp_path / "s"),
                        "--metrics-listen", str(gt.free_port())],
                       capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 1, r.stderr
    assert ("gcmond: --metrics-listen: libmicrohttpd.so.12 has no "
            "MHD_start_daemon: install libmicrohttpd12 >= 0.9.71\n") in r.stderr, r.stderr


def test_formats_by_accept_and_other_paths_answered():
    port = gt.free_port()
    with gt.Daemon("--metrics-listen", "127.0.0.1:%d" % port, "--quiet"):
        url = "http://127.0.0.1:%d" % port
        st, ctype, body = get(url + "/metrics")
        assert st == 200 and ctype == "text/plain; version=0.0.4; charset=utf-8"
        assert "# TYPE cpython_gc_collections_total counter" in body
        assert "# EOF" not in body
        assert samples(body)["gcmond_connections"] == 0
        st, ctype, body = get(url + "/metrics", accept=OM_ACCEPT)
        assert st == 200
        assert ctype == "application/openmetrics-text; version=1.0.0; charset=utf-8"
        assert body.endswith("# EOF\n")
        assert "# TYPE cpython_gc_collections counter" in body
        assert get(url + "/nothing")[0] == 404
        assert get(url + "/metrics", method="POST")[0] == 405
        assert get(url + "/metrics", method="HEAD")[0] == 200


def test_ipv6_loopback_listen():
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with gt.Daemon("--metrics-listen", "[::1]:%d" % port, "--quiet"):
        st, _, body = get("http://[::1]:%d/metrics" % port)
        assert st == 200 and "gcmond_events_ingested_total 0" in body


# ---- against a real Prometheus ---------------------------------------------

class Prometheus:
    def __init__(self, tmp, target):
        self.port = gt.free_port()
        self.dir = os.path.join(tmp, "prometheus")
        os.mkdir(self.dir)
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: gcmond\n"
                    "    static_configs:\n      - targets: ['%s']\n" % target)
        self.log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + cfg,
             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = "http://127.0.0.1:%d" % self.port
        gt.wait_for(self.ready, 60, 0.2, "prometheus to be ready")

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited %s: %s" % (self.proc.returncode,
                                                               self.output()))
        try:
            return get(self.url + "/-/ready")[0] == 200
        except OSError:
            return False

    def output(self):
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")[-3000:]

    def query(self, q):
        """[(labels, value)] of an instant query."""
        st, _, body = get(self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": q}))
        ans = json.loads(body)
        assert st == 200 and ans["status"] == "success", body
        return [(r["metric"], float(r["value"][1])) for r in ans["data"]["result"]]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def run_gunicorn(d, tmp, stats_dir):
    ready_dir = os.path.join(tmp, "ready")
    os.mkdir(ready_dir)
    port = gt.free_port()
    p = subprocess.Popen(
        [PROG, "run", "--python", gt.PYTHON, "--socket", d.sock,
         "-m", "gunicorn", "-c", GUNICORN_CONF, "--chdir", gt.EXAMPLES, "--workers", "4",
         "--bind", "127.0.0.1:%d" % port, "--log-level", "warning", "app:app"],
        env=base_env(LAUNCHER_STATS_DIR=stats_dir, LAUNCHER_READY_DIR=ready_dir,
                     GCMON_RUN_ID="metrics-gunicorn"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = "http://127.0.0.1:%d/" % port

        def up():
            if p.poll() is not None:
                raise AssertionError("gunicorn exited %s" % p.returncode)
            try:
                return get(url + "health")[0] == 200
            except OSError:
                return False
        gt.wait_for(up, 30, 0.1, "gunicorn to answer")
        for _ in range(300):
            get(url)
        gt.wait_for(lambda: len(os.listdir(ready_dir)) == 4, 30, 0.05,
                    "the four workers to finish booting")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err


def expected_by_generation(d, stats_dir, garbage_stats):
    """Each collection once: every process's gc.get_stats(), less what a
    forked worker inherited from its master (counted in the master's)."""
    procs = d.request({"cmd": "report", "run": "metrics-gunicorn"})["processes"]
    by_pid = {p["pid"]: p for p in procs}
    want = [0, 0, 0]
    for name in os.listdir(stats_dir):
        with open(os.path.join(stats_dir, name)) as f:
            mine = json.load(f)
        p = by_pid[mine["pid"]]
        assert [g["collections"] for g in p["generations"]] == \
            [g["collections"] for g in mine["stats"]]
        for g, st in enumerate(mine["stats"]):
            want[g] += st["collections"]
            if p["origin"] == "fork":
                want[g] -= p["generations"][g]["unseen"]
    assert len(by_pid) == 5
    for g, st in enumerate(garbage_stats):
        want[g] += st["collections"]
    return want


@pytest.mark.skipif(PROMETHEUS is None or PROMTOOL is None,
                    reason="prometheus not installed (apt-get install prometheus)")
def test_prometheus_sees_exact_collections_and_p99(tmp):
    stats_dir = os.path.join(tmp, "stats")
    os.mkdir(stats_dir)
    mport = gt.free_port()
    with gt.Daemon("--metrics-listen", str(mport), "--quiet") as d:
        prom = Prometheus(tmp, "127.0.0.1:%d" % mport)
        try:
            run_gunicorn(d, tmp, stats_dir)
            out = os.path.join(tmp, "garbage.json")
            r = subprocess.run([PROG, "run", "--python", gt.PYTHON, "--socket", d.sock,
                                GARBAGE, out, "400"],
                               env=base_env(GCMON_RUN_ID="metrics-garbage"),
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr
            with open(out) as f:
                garbage_stats = json.load(f)
            for run in ("metrics-gunicorn", "metrics-garbage"):
                assert d.request({"cmd": "wait", "run": run, "timeout_ms": 10000})["ok"]
            want = expected_by_generation(d, stats_dir, garbage_stats)

            # One scrape as the test sees it, linted by promtool.
            st, _, body = get("http://127.0.0.1:%d/metrics" % mport)
            lint = subprocess.run([PROMTOOL, "check", "metrics"], input=body,
                                  capture_output=True, text=True, timeout=30)
            assert lint.returncode == 0, lint.stdout + lint.stderr
            mine = samples(body)
            assert mine['cpython_gc_processes{service="gunicorn app:app",role="worker"}'] == 0
            assert not any("pid=" in k for k in mine)

            def scraped_all():
                got = prom.query("sum by (generation) (cpython_gc_collections_total)")
                return {int(m["generation"]): v for m, v in got} == dict(enumerate(want))
            gt.wait_for(scraped_all, 60, 0.5,
                        "prometheus to have scraped %s collections by generation" % want)
            services = {m["service"] for m, _ in prom.query(
                "sum by (service) (cpython_gc_collections_total)")}
            assert services == {"gunicorn app:app", "launcher_garbage.py"}, services
            # The JSON names each process's service as /metrics labels it.
            labels = {p["service_label"]: p["service"]
                      for p in d.request({"cmd": "processes"})["processes"]}
            assert set(labels) == services and set(labels.values()) == {None}, labels
            roles = {m["role"]: v for m, v in prom.query(
                'sum by (role) (cpython_gc_collections_total{service="gunicorn app:app"})')}
            assert set(roles) == {"master", "worker"} and roles["worker"] > 0
            assert prom.query('up{job="gcmond"}')[0][1] == 1

            summary = d.request({"cmd": "summary"})["summary"]
            p99_s = summary["percentiles_ms"]["p99"] / 1e3
            seen = sum(v for k, v in mine.items()
                       if k.startswith("cpython_gc_pause_seconds_count{"))
            assert seen > 0
            q = ("histogram_quantile(0.99, sum by (le) "
                 "(cpython_gc_pause_seconds_bucket))")
            gt.wait_for(lambda: prom.query("sum(cpython_gc_pause_seconds_count)")[0][1]
                        == seen, 30, 0.5, "every pause scraped")
            (_, prom_p99), = prom.query(q)
            # Within the classic bucket that holds the daemon's p99 (whose
            # own error is 1%; an le edge is placed within 1.6%), or either
            # bucket when that p99 sits within those 2% of an edge: the
            # edge's count may then fall on either side of it.
            hi = next(le for le in LE + [float("inf")] if le >= p99_s * 1.02)
            lo = max([0] + [le for le in LE if le < p99_s * 0.98])
            assert lo * 0.97 <= prom_p99 <= hi * 1.03, (prom_p99, p99_s, lo, hi)
        except AssertionError:
            print(prom.output())
            raise
        finally:
            prom.stop()
