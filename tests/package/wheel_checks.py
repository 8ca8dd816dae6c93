"""wheel_checks: what the gcmon wheel must do once pip installed it, in a
venv of one interpreter. Run by tests/package/test_wheel.py for every
CPython of the machine, and by wheel_root.sh inside a fresh bookworm root
that has python3 and python3-venv but none of gcmon's libraries. Only the
standard library: it must run in that root.

  python3 wheel_checks.py --python PY --wheel W --version V --work DIR
      [--old-wheel OLD] [--other OTHERPY]

Makes DIR/venv with PY; installs OLD then W over it (or W alone); checks
the versions, that ldd of each binary resolves (and to the wheel's own
libraries), gcmond starts and gcmonctl ping/summary read it, gcmond maps
libmicrohttpd only with --http-listen, and then the wheel's copy, a program
with the .pth opt-in, one with gcmon.start() and one under pygcprofiler
run (the venv's python, and OTHERPY with --python) are exact against
their own gc.get_stats(), the launcher ran its own gcmond and agent (a
decoy gcmond first on PATH must not run); then pip uninstall gcmon must
leave nothing of it in the venv. Exits 0, or 1 naming what failed.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PROG = os.path.join(HERE, "wheel_prog.py")
COMMANDS = ("pygcprofiler", "gc-monitor", "gcmonctl", "gcmond")
GLIBC = ("libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2",
         "librt.so.1", "ld-linux-x86-64.so.2", "linux-vdso.so.1")
# pip's own files in the venv, which running pip may byte-compile.
PIP_OWN = ("pip", "setuptools", "pkg_resources", "_distutils_hack")


class Failed(Exception):
    pass


def say(msg):
    print("wheel check: " + msg, flush=True)


def run(cmd, env=None, timeout=120, check=True):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise Failed("%s: exit %d\n%s%s" % (" ".join(cmd), r.returncode,
                                            r.stdout[-3000:], r.stderr[-3000:]))
    return r


def tree(top):
    out = set()
    for d, dirs, files in os.walk(top):
        for f in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            out.add(os.path.relpath(os.path.join(d, f), top))
    return out


def pip_own(rel):
    parts = rel.split(os.sep)
    return "site-packages" in parts and \
        parts[parts.index("site-packages") + 1:][:1] and \
        parts[parts.index("site-packages") + 1].split("-")[0] in PIP_OWN


def clean_env(decoy, **extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GCMON_", "PYTHON", "VIRTUAL_ENV", "PIP_"))}
    env["PATH"] = decoy + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def exact(stats, generations, what):
    """gcmond's per-generation figures against the program's own."""
    for g, st in enumerate(stats):
        got = generations[g]
        for k in ("collections", "collected", "uncollectable"):
            if got[k] != st[k]:
                raise Failed("%s: generation %d %s: gcmon %d, gc.get_stats() %d"
                             % (what, g, k, got[k], st[k]))
    if sum(st["collections"] for st in stats) == 0:
        raise Failed("%s made no collection: nothing was tested" % what)


def load(path):
    with open(path) as f:
        return json.load(f)


def check_versions(venv, version, env):
    for c in COMMANDS:
        out = run([os.path.join(venv, "bin", c), "--version"], env).stdout
        if version not in out.split():
            raise Failed("%s --version says %r, not %s" % (c, out.strip(), version))
    py = run([os.path.join(venv, "bin", "python"), "-c",
              "import gcmon; print(gcmon.__version__)"], env).stdout.strip()
    if py != version:
        raise Failed("gcmon.__version__ is %r, not %s" % (py, version))
    say("versions: the four commands and gcmon.__version__ say %s" % version)


def check_ldd(venv, env):
    libs = os.path.realpath(os.path.join(venv, "lib", "gcmon", "libs"))
    ext = run([os.path.join(venv, "bin", "python"), "-c",
               "import gcmon._gcmon as m; print(m.__file__)"], env).stdout.strip()
    for path in [os.path.join(venv, "bin", c) for c in COMMANDS] + [ext]:
        out = run(["ldd", path], env).stdout
        for line in out.splitlines():
            if "not found" in line:
                raise Failed("ldd %s: %s" % (path, line.strip()))
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "=>":
                where = os.path.realpath(parts[2])
                if parts[0] not in GLIBC and not where.startswith(libs + os.sep):
                    raise Failed("%s loads %s from %s, not from the wheel's %s"
                                 % (path, parts[0], where, libs))
    say("ldd: every library of the four commands and the agent resolves "
        "(glibc's, or the wheel's own in %s)" % libs)


class Gcmond:
    def __init__(self, venv, work, env, *args, name="sock"):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.sock = os.path.join(self.dir, "gcmon.sock")
        self.err = open(os.path.join(work, "gcmond-%s.err" % name), "w+")
        self.proc = subprocess.Popen([os.path.join(venv, "bin", "gcmond"),
                                      "--socket", self.sock] + list(args), env=env,
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None:
                self.err.seek(0)
                raise Failed("gcmond exited %d at start: %s"
                             % (self.proc.returncode, self.err.read()))
            if time.monotonic() > deadline:
                raise Failed("gcmond made no socket at %s in 20 s" % self.sock)
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


def ctl(venv, sock, env, *args):
    r = run([os.path.join(venv, "bin", "gcmonctl"), "--socket", sock,
             "--json"] + list(args), env)
    return json.loads(r.stdout)


def wait_ended(venv, sock, env, pid):
    deadline = time.monotonic() + 30
    while True:
        procs = {p["pid"]: p for p in ctl(venv, sock, env, "processes")["processes"]}
        if pid in procs and procs[pid]["state"] != "live":
            return procs[pid]
        if time.monotonic() > deadline:
            raise Failed("gcmond does not show pid %d as ended: %s" % (pid, procs.get(pid)))
        time.sleep(0.1)


def check_daemon(venv, work, env):
    d = Gcmond(venv, work, env)
    try:
        run([os.path.join(venv, "bin", "gcmonctl"), "--socket", d.sock, "ping"], env)
        say("gcmond started; gcmonctl ping answered")
        py = os.path.join(venv, "bin", "python")
        # The .pth opt-in: GCMON_SOCKET and nothing else.
        out = os.path.join(work, "pth.json")
        run([py, PROG, out], clean_env(env["PATH"].split(os.pathsep)[0],
                                       GCMON_SOCKET=d.sock, GCMON_RUN_ID="wheel-pth"))
        mine = load(out)
        exact(mine["stats"], wait_ended(venv, d.sock, env, mine["pid"])["generations"],
              "the .pth opt-in")
        s = ctl(venv, d.sock, env, "summary", "--run", "wheel-pth")["summary"]
        want = sum(st["collections"] for st in mine["stats"])
        if s["collections"] != want:
            raise Failed("gcmonctl summary --run wheel-pth: %d collections, "
                         "gc.get_stats() %d" % (s["collections"], want))
        say("the .pth opt-in: exact; gcmonctl summary reads %d collections" % want)
        # gcmon.start() from the program's own code, no environment.
        out = os.path.join(work, "start.json")
        run([py, "-c", "import gcmon, runpy, sys\n"
             "gcmon.start(socket=sys.argv[1], service='wheel-start')\n"
             "sys.argv = sys.argv[2:]\n"
             "runpy.run_path(sys.argv[0], run_name='__main__')",
             d.sock, PROG, out], env)
        mine = load(out)
        p = wait_ended(venv, d.sock, env, mine["pid"])
        exact(mine["stats"], p["generations"], "gcmon.start()")
        if p.get("service") != "wheel-start":
            raise Failed("gcmon.start(service=...) shows as service %r" % p.get("service"))
        say("gcmon.start(): exact")
    finally:
        d.stop()
    if d.proc.returncode != 0:
        raise Failed("gcmond exited %d on SIGTERM" % d.proc.returncode)


def mapped(pid):
    """The realpaths of the files mapped into process pid."""
    with open("/proc/%d/maps" % pid) as f:
        return {os.path.realpath(line.split(None, 5)[5].strip())
                for line in f if len(line.split(None, 5)) == 6}


def check_http(venv, work, env):
    """gcmond dlopens libmicrohttpd only to serve HTTP: without
    --http-listen it maps none; with it, the wheel's copy (found through
    gcmond's RUNPATH), which serves /metrics."""
    libs = os.path.realpath(os.path.join(venv, "lib", "gcmon", "libs")) + os.sep
    d = Gcmond(venv, work, env, name="nohttp")
    try:
        got = [p for p in mapped(d.proc.pid) if "libmicrohttpd" in p]
        if got:
            raise Failed("gcmond without --http-listen maps %s" % got)
    finally:
        d.stop()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = Gcmond(venv, work, env, "--http-listen", "127.0.0.1:%d" % port,
               name="http")
    try:
        body = b""
        deadline = time.monotonic() + 20
        while not body:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                            timeout=5) as r:
                    body = r.read()
            except OSError:
                if time.monotonic() > deadline:
                    raise Failed("gcmond --http-listen: no /metrics on port %d" % port)
                time.sleep(0.1)
        if b"# TYPE " not in body:
            raise Failed("gcmond /metrics: %r" % body[:200])
        got = sorted(p for p in mapped(d.proc.pid)
                     if "libmicrohttpd" in p or "libgnutls" in p)
        if len(got) < 2 or not all(p.startswith(libs) for p in got):
            raise Failed("gcmond --http-listen maps %s, not the wheel's copies in %s"
                         % (got, libs))
    finally:
        d.stop()
    say("gcmond loads libmicrohttpd only for --http-listen, the wheel's own (%s)"
        % ", ".join(os.path.basename(p) for p in got))


def check_launcher(venv, work, env, python, what):
    out = os.path.join(work, "run-%s.json" % what)
    log = os.path.join(work, "run-%s.log" % what)
    run([os.path.join(venv, "bin", "pygcprofiler"), "run", "--json",
         "--stats-only", "--log-file", log, "--python", python, PROG, out], env)
    mine = load(out)
    with open(log) as f:
        objs = [json.loads(line) for line in f if line.startswith("{")]
    summaries = [o for o in objs if o.get("type") == "summary"]
    if len(summaries) != 1:
        raise Failed("pygcprofiler run (%s): %d summary lines" % (what, len(summaries)))
    procs = {p["pid"]: p for p in summaries[0]["processes"]}
    if mine["pid"] not in procs:
        raise Failed("pygcprofiler run (%s): pid %d not in the report" % (what, mine["pid"]))
    exact(mine["stats"], procs[mine["pid"]]["generations"], "pygcprofiler run (%s)" % what)
    own = os.path.realpath(os.path.join(venv, "bin", "gcmond"))
    if mine["gcmond"] is None or os.path.realpath(mine["gcmond"]) != own:
        raise Failed("pygcprofiler run (%s) started gcmond %s, not its own %s"
                     % (what, mine["gcmond"], own))
    agent = os.path.realpath(os.path.join(venv, "lib", "gcmon")) + os.sep
    if not os.path.realpath(mine["gcmon_file"] or "/").startswith(agent):
        raise Failed("pygcprofiler run (%s): the agent came from %s, not %s"
                     % (what, mine["gcmon_file"], agent))
    if os.path.realpath(mine["executable"]) != os.path.realpath(python):
        raise Failed("pygcprofiler run (%s) ran %s, not %s" % (what, mine["executable"], python))
    say("pygcprofiler run --python %s: exact, with the venv's own gcmond and agent" % python)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", required=True)
    ap.add_argument("--wheel", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--old-wheel")
    ap.add_argument("--other")
    a = ap.parse_args()
    venv = os.path.join(a.work, "venv")
    decoy = os.path.join(a.work, "decoy")
    os.makedirs(decoy)
    marker = os.path.join(a.work, "decoy-ran")
    with open(os.path.join(decoy, "gcmond"), "w") as f:
        f.write("#!/bin/sh\necho \"$0\" >%s\nexit 1\n" % marker)
    os.chmod(os.path.join(decoy, "gcmond"), 0o755)
    env = clean_env(decoy)
    try:
        r = run([a.python, "-m", "venv", venv], env, check=False)
        if r.returncode != 0:
            raise Failed("%s -m venv failed (python3-venv missing?): %s" % (a.python, r.stderr))
        pip = [os.path.join(venv, "bin", "python"), "-m", "pip", "install",
               "--no-index", "--no-deps", "-q"]
        run([os.path.join(venv, "bin", "python"), "-m", "pip", "--version"], env)
        before = tree(venv)
        if a.old_wheel:
            run(pip + [a.old_wheel], env)
            run(pip + [a.wheel], env)
            left = os.path.join(venv, "lib", "gcmon", "gcmon", "_old_release.py")
            if os.path.exists(left):
                raise Failed("installing over the older wheel left %s" % left)
            say("installed over the older release (%s)" % os.path.basename(a.old_wheel))
        else:
            run(pip + [a.wheel], env)
        for page in ("man1/pygcprofiler.1", "man1/gcmonctl.1", "man8/gcmond.8"):
            if not os.path.isfile(os.path.join(venv, "share", "man", page)):
                raise Failed("the wheel installed no share/man/%s" % page)
        check_versions(venv, a.version, env)
        check_ldd(venv, env)
        check_daemon(venv, a.work, env)
        check_http(venv, a.work, env)
        check_launcher(venv, a.work, env, os.path.join(venv, "bin", "python"), "venv")
        if a.other:
            check_launcher(venv, a.work, env, a.other, "other")
        if os.path.exists(marker):
            raise Failed("the decoy gcmond on PATH ran")
        run([os.path.join(venv, "bin", "python"), "-m", "pip", "uninstall", "-y",
             "-q", "gcmon"], env)
        left = sorted(p for p in tree(venv) - before if not pip_own(p))
        if left:
            raise Failed("pip uninstall gcmon left:\n  " + "\n  ".join(left))
        say("pip uninstall gcmon left nothing behind")
    except Failed as e:
        print("wheel check FAILED (%s): %s" % (a.python, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
