"""gcmontest: what the end-to-end tests share.

Paths come from the environment `make check` sets (GCMON_BUILDDIR,
GCMON_SRCDIR, GCMON_PYTHON), so the tests run the same from a VPATH build,
from `make distcheck` (read-only source tree) and by hand:

    GCMON_BUILDDIR=$PWD/build GCMON_SRCDIR=$PWD /usr/bin/python3 -m pytest tests/e2e

Everything a test writes goes to a private temporary directory; sockets
live in fresh 0700 directories, so tests run in parallel and twice at once.
"""
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

SRCDIR = os.environ.get("GCMON_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILDDIR = os.environ.get("GCMON_BUILDDIR") or os.path.join(SRCDIR, "build")
PYTHON = os.environ.get("GCMON_PYTHON") or "/usr/bin/python3"

AGENT_DIR = os.path.join(BUILDDIR, "agent")       # sitecustomize.py + gcmon/ (the package)
# The one test of whether the agent is built; a test that needs it skips
# with NO_AGENT, never on a path of its own that could go stale.
AGENT_SO = os.path.join(AGENT_DIR, "gcmon", "_gcmon.abi3.so")
HAVE_AGENT = os.path.exists(AGENT_SO)
NO_AGENT = "agent not built: make agent/gcmon/_gcmon.abi3.so"
GCMOND = os.path.join(BUILDDIR, "daemon", "gcmond")
GCMONCTL = os.path.join(BUILDDIR, "client", "gcmonctl")
PYGCPROFILER = os.path.join(BUILDDIR, "client", "pygcprofiler")
PROGRAMS = os.path.join(SRCDIR, "tests", "e2e", "programs")
EXAMPLES = os.path.join(SRCDIR, "examples")

# `make check-valgrind`: every Daemon runs under valgrind, and one that
# ends with errors or leaks fails its test.
VALGRIND = os.environ.get("GCMON_VALGRIND") == "1"
VALGRIND_ERROR = 99
VALGRIND_CMD = ["valgrind", "--quiet", "--error-exitcode=%d" % VALGRIND_ERROR,
                "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                "--show-leak-kinds=definite,indirect"]


def _asan_built(path):
    """Whether the program was linked with AddressSanitizer (configure
    --enable-sanitizers): its quarantine holds freed memory, so memory
    bounds in tests get the same allowance as under valgrind."""
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SANITIZED = _asan_built(GCMOND)

# Frame header: u32 len, u16 type, u8 version, u8 flags (common/protocol.h).
HDR = struct.Struct("<IHBB")
PROTO_VERSION = 1
FRAME_CONTROL = 7


def free_port():
    """A TCP port of 127.0.0.1 free now, for a server the caller starts."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


@contextlib.contextmanager
def small_tmpfs(parent, size="64k"):
    """A tmpfs of size mounted at parent/fs for the block (a filesystem to
    fill); the test is skipped where mounting is not allowed."""
    import pytest
    fs = os.path.join(parent, "fs")
    os.mkdir(fs)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", fs],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % r.stderr.strip())
    try:
        yield fs
    finally:
        subprocess.run(["umount", "-l", fs], capture_output=True)


def private_dir(prefix="gcmon-test-"):
    """A fresh 0700 directory; the caller removes it (shutil.rmtree)."""
    return tempfile.mkdtemp(prefix=prefix)


def agent_env(sock, run_id="test-run", base=None, **opts):
    """Environment that makes a Python interpreter load the agent.

    opts: ring, dump_objects, dump_garbage (see
    agent/bootstrap/sitecustomize.py).
    """
    env = dict(os.environ if base is None else base)
    for k in [k for k in env if k.startswith("GCMON_") and k not in
              ("GCMON_BUILDDIR", "GCMON_SRCDIR", "GCMON_PYTHON")]:
        del env[k]
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = AGENT_DIR + (os.pathsep + old if old else "")
    env["GCMON_SOCKET"] = sock
    env["GCMON_RUN_ID"] = run_id
    names = {"ring": "GCMON_RING", "dump_objects": "GCMON_DUMP_OBJECTS",
             "dump_garbage": "GCMON_DUMP_GARBAGE"}
    for k, v in opts.items():
        env[names[k]] = str(int(v) if isinstance(v, bool) else v)
    return env


def totals(proc):
    """[[collections, collected, uncollectable]] per generation of a
    process object of gcmond's answers (baseline included)."""
    return [[g["collections"], g["collected"], g["uncollectable"]]
            for g in proc["generations"]]


def processes(d, run=None):
    """{pid: process object} of gcmond d (optionally one run)."""
    req = {"cmd": "processes"}
    if run is not None:
        req["run"] = run
    return {p["pid"]: p for p in d.request(req).get("processes", [])}


def wait_ended(d, pids, timeout=20):
    """The process objects of pids once gcmond has seen each one end."""
    def done():
        ps = processes(d)
        return ps if all(p in ps and ps[p]["state"] != "live" for p in pids) else None
    return wait_for(done, timeout * (4 if VALGRIND else 1),
                    what="gcmond to see pids %s end" % sorted(pids))


def wait_for(pred, timeout=10.0, step=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(step)


def json_lines(*paths):
    """The records of JSON lines files that a live writer may be appending
    to, as a tailer reads them: only whole lines. gcmond writes each line
    with one write(2), but a reader racing it can see the part the kernel
    has copied so far (a page at a time), so the last line may be cut."""
    out = []
    for p in paths:
        if os.path.exists(p):
            with open(p) as f:
                out += [json.loads(x) for x in f if x.endswith("\n") and x.strip()]
    return out


class Daemon:
    """A real gcmond on a private socket; use as a context manager."""

    def __init__(self, *args, sock=None, log_file=None):
        self.dir = private_dir("gcmond-")
        self.sock = sock or os.path.join(self.dir, "gcmon.sock")
        self.log_file = log_file
        self.args = list(args)
        self.proc = None
        self.stderr_path = os.path.join(self.dir, "gcmond.stderr")

    def start(self):
        cmd = [GCMOND, "--socket", self.sock] + self.args
        if self.log_file:
            cmd += ["--log-file", self.log_file]
        if VALGRIND:
            cmd = VALGRIND_CMD + cmd
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._stderr)
        wait_for(lambda: self.proc.poll() is not None or self.ping_ok(),
                 60 if VALGRIND else 10, what="gcmond to answer ping")
        if self.proc.poll() is not None:
            raise AssertionError("gcmond exited %s: %s" % (self.proc.returncode, self.stderr()))
        return self

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def ping_ok(self):
        try:
            return self.request({"cmd": "ping"}).get("ok") is True
        except OSError:
            return False

    def request(self, req, timeout=10.0):
        """One control request over the wire, answered as a dict."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.sock)
            body = json.dumps(req).encode()
            s.sendall(HDR.pack(HDR.size + len(body), FRAME_CONTROL, PROTO_VERSION, 0) + body)
            return json.loads(read_frame(s)[1])
        finally:
            s.close()

    def ctl(self, *args, check=True):
        """gcmonctl --json ARGS against this daemon, parsed."""
        r = subprocess.run([GCMONCTL, "--socket", self.sock, "--json"] + list(args),
                           capture_output=True, timeout=30)
        if check and r.returncode != 0:
            raise AssertionError("gcmonctl %s: exit %d: %s" % (args, r.returncode, r.stderr.decode()))
        return json.loads(r.stdout) if r.stdout.strip() else None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60 if VALGRIND else 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_stderr", None):
            self._stderr.close()
        if VALGRIND and self.proc and self.proc.returncode == VALGRIND_ERROR:
            raise AssertionError("valgrind found errors or leaks in gcmond:\n" + self.stderr())

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_frame(s):
    """(type, payload bytes) of the next frame on socket s."""
    ln, typ, ver, _ = HDR.unpack(read_exact(s, HDR.size))
    if ver != PROTO_VERSION:
        raise ConnectionError("frame version %d" % ver)
    return typ, read_exact(s, ln - HDR.size)


def run_python(args, env, timeout=60, **kw):
    """Run PYTHON args under env; CompletedProcess with text output."""
    return subprocess.run([PYTHON] + list(args), env=env, capture_output=True,
                          text=True, timeout=timeout, **kw)


def python_versions():
    """Every CPython 3.10-3.13 on this machine: Debian's and pyenv's."""
    found = {}
    cands = ["/usr/bin/python3"]
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    vdir = os.path.join(root, "versions")
    if os.path.isdir(vdir):
        cands += [os.path.join(vdir, v, "bin", "python3") for v in sorted(os.listdir(vdir))]
    for py in cands:
        if not os.access(py, os.X_OK):
            continue
        try:
            out = subprocess.run([py, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out in ("3.10", "3.11", "3.12", "3.13"):
            found.setdefault(out, []).append(py)
    return found
